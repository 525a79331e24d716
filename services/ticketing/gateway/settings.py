"""The gateway's settings: where each service answers (TICKETING_GATEWAY_<SERVICE>_URL).

The defaults are the local ports of docs/gateway.md: the gateway on 8000, user 8001, event 8002,
seat 8003, queue 8004, reservation 8005, payment 8006.
"""

from functools import lru_cache

from pydantic import Field

from ticketing.common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    gateway_user_url: str = "http://127.0.0.1:8001"
    gateway_event_url: str = "http://127.0.0.1:8002"
    gateway_seat_url: str = "http://127.0.0.1:8003"
    gateway_queue_url: str = "http://127.0.0.1:8004"
    gateway_reservation_url: str = "http://127.0.0.1:8005"
    gateway_payment_url: str = "http://127.0.0.1:8006"
    gateway_timeout_seconds: float = Field(
        default=30.0, gt=0, description="longest wait for a service's answer before a 504"
    )

    def upstream(self, component: str) -> str:
        """The base URL of `component` (one of `routes.COMPONENTS`), without a trailing slash."""
        url: str = getattr(self, f"gateway_{component}_url")
        return url.rstrip("/")


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
