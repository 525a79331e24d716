"""The one question the seat service asks the event service: which venue is this event in?"""

from urllib.parse import quote

import httpx

from ticketing.common.errors import PermanentError, TemporaryError


class EventNotFound(PermanentError):
    pass


class EventServiceUnavailable(TemporaryError):
    pass


async def venue_of_event(client: httpx.AsyncClient, event_id: str) -> str:
    try:
        # Quoted: an id with control characters or slashes must stay one path segment.
        response = await client.get(f"/events/{quote(event_id, safe='')}")
    except httpx.HTTPError as exc:
        raise EventServiceUnavailable("event service unavailable") from exc
    if response.status_code == httpx.codes.NOT_FOUND:
        raise EventNotFound("event not found")
    if response.status_code != httpx.codes.OK:
        raise EventServiceUnavailable(f"event service answered {response.status_code}")
    venue_id: str = response.json()["venue_id"]
    return venue_id
