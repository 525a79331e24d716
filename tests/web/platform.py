"""The whole sale platform in the test's process: every service of a sale and the gateway in
front of them, each served by uvicorn on a free port, on the test's real servers."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ticketing.common.settings import CommonSettings
from ticketing.event.app import create_app as event_app
from ticketing.gateway.app import create_app as gateway_app
from ticketing.gateway.settings import GatewaySettings
from ticketing.migrations.run import upgrade
from ticketing.payment.app import create_app as payment_app
from ticketing.queue.app import create_app as queue_app
from ticketing.reservation.app import create_app as reservation_app
from ticketing.seat.app import create_app as seat_app
from ticketing.seat.settings import SeatSettings
from ticketing.user.app import create_app as user_app
from ticketing.user.settings import UserSettings

from tests.serving import serving

from ..core.sale_kit import payment_settings, reservation_settings
from ..queue.factories import make_queue_settings


@asynccontextmanager
async def running_platform(settings: CommonSettings) -> AsyncIterator[str]:
    """The gateway's base URL while user, event, seat, queue (with its admission worker),
    reservation and payment run behind it; the test's database is migrated first."""
    # Alembic's environment runs its own event loop, so it cannot run on the test's loop.
    await asyncio.to_thread(upgrade, settings.database_url)
    common = settings.model_dump()
    async with AsyncExitStack() as stack:
        urls = {
            "user": await stack.enter_async_context(
                serving(user_app(UserSettings.model_validate(common)))
            ),
            "event": await stack.enter_async_context(serving(event_app(settings))),
            "queue": await stack.enter_async_context(
                serving(queue_app(make_queue_settings(settings)))
            ),
            "reservation": await stack.enter_async_context(
                serving(reservation_app(reservation_settings(settings)))
            ),
            "payment": await stack.enter_async_context(
                serving(payment_app(payment_settings(settings)))
            ),
        }
        seat_settings = SeatSettings.model_validate({**common, "event_service_url": urls["event"]})
        urls["seat"] = await stack.enter_async_context(serving(seat_app(seat_settings)))
        gateway_settings = GatewaySettings.model_validate(
            {**common, **{f"gateway_{name}_url": url for name, url in urls.items()}}
        )
        yield await stack.enter_async_context(serving(gateway_app(gateway_settings)))
