"""The seat service's settings: the common ones plus where the event service answers."""

from functools import lru_cache

from pydantic import Field

from ticketing.common.settings import CommonSettings


class SeatSettings(CommonSettings):
    # TICKETING_EVENT_SERVICE_URL: asked which venue an event is in when its inventory is loaded.
    event_service_url: str = "http://127.0.0.1:8002"
    seat_map_max_age_seconds: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="how old a served seat map may be: one Redis read per sale and interval",
    )


@lru_cache
def get_settings() -> SeatSettings:
    return SeatSettings()
