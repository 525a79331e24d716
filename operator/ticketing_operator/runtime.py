"""The sale's runtime configuration as the operator writes it: from the spec, the phase and the
admission rate it chose, into the Redis hash the queue and reservation services read live."""

from redis.exceptions import RedisError
from ticketing.common.redis_client import RedisClient
from ticketing.common.sale_config import (
    DEFAULT_MAX_SEATS_PER_BUYER,
    Phase,
    SaleConfig,
    delete_sale_config,
    read_sale_config,
    shortest_session_seconds,
    write_sale_config,
)

from ticketing_operator.figures import RedisUnavailable
from ticketing_operator.spec import TicketEventSpec

CLOSED_MESSAGE = "This sale has closed."


def sale_config(
    event_id: str, spec: TicketEventSpec, phase: Phase, tps: float, message: str | None = None
) -> SaleConfig:
    """The configuration for the admission rate `tps` in effect. The API server refuses a
    session too short for the cap and the rate (the CRD's rule); one stored before that rule
    existed gets the shortest session that keeps it (common.sale_config)."""
    admission = spec.admission
    return SaleConfig(
        event_id=event_id,
        tps=tps,
        max_active=admission.max_active,
        session_ttl_seconds=max(
            admission.session_ttl_seconds, shortest_session_seconds(admission.max_active, tps)
        ),
        hold_ttl_seconds=spec.holds.ttl_seconds,
        max_seats_per_buyer=spec.holds.max_seats_per_buyer or DEFAULT_MAX_SEATS_PER_BUYER,
        opens_at=spec.sale.opens_at,
        closes_at=spec.sale.closes_at,
        pre_queue_minutes=spec.sale.pre_queue_minutes,
        phase=phase,
        paused=spec.controls.paused,
        maintenance=spec.controls.maintenance,
        message=spec.controls.message if message is None else message,
    )


async def apply_config(client: RedisClient, prefix: str, config: SaleConfig) -> bool:
    """Write the configuration unless Redis already holds exactly it; True when it wrote."""
    try:
        if await read_sale_config(client, prefix, config.event_id) == config:
            return False
        await write_sale_config(client, prefix, config)
    except RedisError as exc:
        raise RedisUnavailable(f"writing the sale's configuration failed: {exc}") from exc
    return True


async def remove_config(client: RedisClient, prefix: str, event_id: str) -> None:
    try:
        await delete_sale_config(client, prefix, event_id)
    except RedisError as exc:
        raise RedisUnavailable(f"removing the sale's configuration failed: {exc}") from exc
