"""The sale's runtime configuration survives a round trip through Redis and refuses nonsense."""

from datetime import UTC, datetime, timedelta

import pydantic
import pytest
import redis.asyncio as aioredis
from ticketing.common.sale_config import (
    Phase,
    SaleConfig,
    delete_sale_config,
    read_sale_config,
    write_sale_config,
)


def make_config(**overrides: object) -> SaleConfig:
    opens = datetime(2026, 12, 1, 12, tzinfo=UTC)
    fields: dict[str, object] = {
        "event_id": "spring-concert",
        "tps": 200,
        "max_active": 2000,
        "opens_at": opens,
        "closes_at": opens + timedelta(hours=2),
    }
    return SaleConfig.model_validate({**fields, **overrides})


async def test_config_written_is_config_read(redis_client: aioredis.Redis, test_id: str) -> None:
    config = make_config(paused=True, phase=Phase.ON_SALE, message="extra show added")
    await write_sale_config(redis_client, f"t{test_id}", config)
    assert await read_sale_config(redis_client, f"t{test_id}", "spring-concert") == config
    await delete_sale_config(redis_client, f"t{test_id}", "spring-concert")
    assert await read_sale_config(redis_client, f"t{test_id}", "spring-concert") is None


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"tps": 0}, id="zero-tps"),
        pytest.param({"max_active": -1}, id="negative-cap"),
        pytest.param(
            {"closes_at": datetime(2026, 12, 1, 11, tzinfo=UTC)}, id="closes-before-opening"
        ),
    ],
)
def test_nonsense_configuration_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        make_config(**overrides)
