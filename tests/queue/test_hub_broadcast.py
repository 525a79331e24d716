"""The hub's tick against the real Redis: every socket gets its own message, built from the
fields the sale's sockets share (serialised once a tick) and its own place."""

import asyncio
import json

import redis.asyncio as aioredis
from ticketing.common.sale_config import SaleConfig
from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Tokens
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.hub import SOCKETS_PER_SLICE, TRANSITIONS_AT_ONCE, Hub, Listener
from ticketing.queue.settings import QueueSettings
from ticketing.queue.store import SaleQueue

from .factories import admit_until, join_many, make_queue_settings, publish_sale


class Inbox:
    """What one socket received, parsed; `log` records the order of deliveries across sockets."""

    def __init__(self, user_id: str, log: list[str]) -> None:
        self.user_id = user_id
        self.log = log
        self.messages: list[dict[str, object]] = []

    async def send(self, text: str) -> None:
        self.messages.append(json.loads(text))
        self.log.append(self.user_id)

    def last(self, kind: str) -> dict[str, object]:
        return [m for m in self.messages if m["type"] == kind][-1]


async def listen(
    hub: Hub, queue: SaleQueue, sale: SaleConfig, users: list[str], log: list[str]
) -> list[Inbox]:
    """One open socket for each user, as the watch route opens it."""
    inboxes = [Inbox(user, log) for user in users]
    for inbox in inboxes:
        place = await queue.join(inbox.user_id, sale)
        await hub.connect(queue.event_id, Listener(inbox.user_id, place, inbox.send))
    return inboxes


async def test_each_socket_gets_its_own_position_ticket_and_eta_with_the_shared_fields(
    redis_client: aioredis.Redis, queue: SaleQueue, queue_settings: QueueSettings
) -> None:
    sale = await publish_sale(redis_client, queue, paused=True, message="Doors at 7")
    users = await join_many(queue, sale, 40)
    hub = Hub(redis_client, queue_settings)
    inboxes = await listen(hub, queue, sale, users, [])

    await hub.tick()

    for number, inbox in enumerate(inboxes, start=1):
        place = await queue.join(inbox.user_id, sale, create=False)
        message = inbox.last("position")
        assert message == {
            "type": "position",
            "ticket": place.ticket,
            "position": number,
            "ahead": number - 1,
            "eta_seconds": None,
            "message": "Doors at 7",
            "sold_out": False,
            "paused": True,
            "waiting": 40,
            "active": 0,
            "rate": 0.0,
        }


async def test_http_status_and_socket_message_say_the_same(
    redis_client: aioredis.Redis, queue: SaleQueue, queue_settings: QueueSettings
) -> None:
    sale = await publish_sale(redis_client, queue, paused=True)
    users = await join_many(queue, sale, 3)
    hub = Hub(redis_client, queue_settings)
    inboxes = await listen(hub, queue, sale, users, [])
    await hub.tick()

    view = hub.view(queue.event_id)
    place = await queue.join(users[2], sale, create=False)
    _, status = await hub.status(view, users[2], place)
    assert status == inboxes[2].last("position")


async def test_everyone_whose_turn_comes_in_one_tick_gets_their_own_token(
    redis_client: aioredis.Redis, queue: SaleQueue, settings: CommonSettings
) -> None:
    queue_settings = make_queue_settings(settings)
    served = TRANSITIONS_AT_ONCE * 2 + 5  # more than one concurrent batch
    sale = await publish_sale(redis_client, queue, tps=1000, max_active=served)
    users = await join_many(queue, sale, served + 10)
    hub = Hub(redis_client, queue_settings)
    inboxes = await listen(hub, queue, sale, users, [])
    await queue.touch(users)
    worker = AdmissionWorker(redis_client, queue_settings)
    await admit_until(worker, lambda: redis_client.zcard(queue.keys.active), served)

    await hub.tick()

    admitted, waiting = inboxes[:served], inboxes[served:]
    tokens = Tokens.from_settings(queue_settings)
    for inbox in admitted:
        token = str(inbox.last("admitted")["token"])
        claims = await tokens.admission_for(token, inbox.user_id, queue.event_id)
        assert claims.user_id == inbox.user_id
    for number, inbox in enumerate(waiting, start=1):
        assert not any(m["type"] == "admitted" for m in inbox.messages)
        assert inbox.last("position")["position"] == number


async def test_a_long_tick_lets_other_work_run_before_it_ends(
    redis_client: aioredis.Redis, queue: SaleQueue, queue_settings: QueueSettings
) -> None:
    sale = await publish_sale(redis_client, queue, paused=True)
    users = await join_many(queue, sale, SOCKETS_PER_SLICE * 2 + 1)
    hub = Hub(redis_client, queue_settings)
    log: list[str] = []
    inboxes = await listen(hub, queue, sale, users, log)
    log.clear()
    others: list[asyncio.Task[None]] = []

    async def newcomer() -> None:
        log.append("newcomer")

    async def first_send(text: str) -> None:
        # Work that arrives once the tick has started writing, like a new handshake.
        others.append(asyncio.create_task(newcomer()))
        await inboxes[0].send(text)

    next(x for x in hub.view(queue.event_id).listeners if x.user_id == users[0]).send = first_send
    await hub.tick()
    await asyncio.gather(*others)
    assert log.index("newcomer") < len(log) - 1
    assert sorted(user for user in log if user != "newcomer") == sorted(users)


async def test_second_socket_of_a_user_keeps_them_present_until_the_last_closes(
    redis_client: aioredis.Redis, queue: SaleQueue, queue_settings: QueueSettings
) -> None:
    sale = await publish_sale(redis_client, queue, paused=True)
    (user,) = await join_many(queue, sale, 1)
    hub = Hub(redis_client, queue_settings)
    place = await queue.join(user, sale)
    tabs = [Listener(user, place, Inbox(user, []).send) for _ in range(2)]
    for tab in tabs:
        await hub.connect(queue.event_id, tab)
    await queue.touch([user])
    present = await redis_client.zscore(queue.keys.heartbeat, user)

    await hub.disconnect(queue.event_id, tabs[0])
    assert await redis_client.zscore(queue.keys.heartbeat, user) == present
    await hub.disconnect(queue.event_id, tabs[1])
    away = await redis_client.zscore(queue.keys.heartbeat, user)
    assert away is not None and present is not None and away < present


async def test_sockets_closing_together_mark_every_one_of_their_users_away(
    redis_client: aioredis.Redis, queue: SaleQueue, queue_settings: QueueSettings
) -> None:
    sale = await publish_sale(redis_client, queue, paused=True)
    users = await join_many(queue, sale, 30)
    hub = Hub(redis_client, queue_settings)
    listeners = [
        Listener(user, await queue.join(user, sale), Inbox(user, []).send) for user in users
    ]
    for listener in listeners:
        await hub.connect(queue.event_id, listener)
    await queue.touch(users)
    present = dict(await redis_client.zrange(queue.keys.heartbeat, 0, -1, withscores=True))

    await asyncio.gather(*(hub.disconnect(queue.event_id, listener) for listener in listeners))

    away = dict(await redis_client.zrange(queue.keys.heartbeat, 0, -1, withscores=True))
    assert set(away) == set(present)
    assert all(away[user] < present[user] for user in present)
