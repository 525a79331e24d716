"""End to end on the real Kafka and Redis: failed messages climb the ladder, come back after
their delay, and end in the dead-letter topic, from where a person replays them."""

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from ticketing.common.envelope import Envelope
from ticketing.common.errors import TemporaryError
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED
from ticketing.retry import dlq
from ticketing.retry.deadletters import DeadLetters, Selection, read_topic
from ticketing.retry.headers import DUE_AT, ERROR_CLASS, ERROR_FINGERPRINT, ERROR_MESSAGE, decode
from ticketing.retry.policy import Backoff, RetryPolicy
from ticketing.retry.worker import backlog

from tests.retry.ladder import Ladder, eventually, running_ladder

# 200 ms, then 400 ms: short enough for a test, long enough to measure.
POLICIES = {
    RESERVATION_PAID: RetryPolicy(attempts=3, base_delay_s=0.2, backoff=Backoff.EXPONENTIAL),
    RESERVATION_PAYMENT_FAILED: RetryPolicy(attempts=3, base_delay_s=0.2),
}


def paid(reservation: str) -> Envelope:
    return Envelope.new("paid", reservation, {"reservation_id": reservation})


def dead_letters(ladder: Ladder) -> DeadLetters:
    settings = ladder.settings
    return DeadLetters(
        settings.kafka_bootstrap,
        ladder.redis,
        settings.redis_key_prefix,
        ladder.topics,
        RESERVATION_PAID,
    )


async def test_a_handler_failing_twice_applies_the_message_once_after_the_policy_delays(
    settings: CommonSettings,
) -> None:
    calls: list[float] = []
    applied: list[str] = []

    async def handler(envelope: Envelope) -> None:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise TemporaryError("database busy")
        applied.append(envelope.message_id)

    async with running_ladder(settings, handler, POLICIES) as ladder:
        message = paid("r1")
        await ladder.send(RESERVATION_PAID, message)

        async def done() -> bool:
            return bool(applied) and await backlog(ladder.queue) == 0

        await eventually(done)
    assert applied == [message.message_id]
    # Never before the policy's delay, and the second delay doubled (exponential). No upper bound:
    # how late a retry arrives on a loaded machine is the scheduler's, not the policy's.
    gaps = [calls[1] - calls[0], calls[2] - calls[1]]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps


async def test_an_always_failing_message_is_dead_lettered_with_its_history_and_replays_once(
    settings: CommonSettings,
) -> None:
    broken = True
    applied: list[str] = []

    async def handler(envelope: Envelope) -> None:
        if broken:
            raise TemporaryError("payment service down")
        applied.append(envelope.message_id)

    async with running_ladder(settings, handler, POLICIES) as ladder:
        message = paid("r1")
        await ladder.send(RESERVATION_PAID, message)
        letters = dead_letters(ladder)

        async def dead_lettered() -> bool:
            return bool(await letters.select(Selection()))

        await eventually(dead_lettered)
        [letter] = await letters.select(Selection())
        assert letter.state is not None
        assert [(f.attempt, f.error_class, f.error_message) for f in letter.state.history] == [
            (n, "TemporaryError", "payment service down") for n in (1, 2, 3)
        ]
        assert letter.value == message.to_bytes()
        assert await backlog(ladder.queue) == 0

        broken = False
        assert await dlq.run(dlq.parse(["replay", RESERVATION_PAID, "--key", "r1"]), settings) == 0
        await eventually(lambda: _true_when(applied))
        # The replayed dead letter is resolved: a second replay sends nothing.
        assert await dlq.run(dlq.parse(["replay", RESERVATION_PAID, "--all"]), settings) == 0
        assert await letters.select(Selection()) == []
    assert applied == [message.message_id]


async def test_a_replayed_message_that_fails_again_waits_in_parking_not_on_the_ladder(
    settings: CommonSettings,
) -> None:
    async def handler(envelope: Envelope) -> None:
        raise TemporaryError("still broken")

    async with running_ladder(settings, handler, POLICIES) as ladder:
        await ladder.send(RESERVATION_PAID, paid("r1"))
        letters = dead_letters(ladder)

        async def dead_lettered() -> bool:
            return bool(await letters.select(Selection()))

        await eventually(dead_lettered)
        await letters.replay(await letters.select(Selection()), ladder.producer)
        parking = ladder.topics.parking(RESERVATION_PAID)

        async def parked() -> bool:
            return bool(await read_topic(settings.kafka_bootstrap, parking))

        await eventually(parked)
        [record] = await read_topic(settings.kafka_bootstrap, parking)
        _, state = decode(record.headers)
        assert state is not None and state.replay
        assert state.attempt == 4
        assert len(await read_topic(settings.kafka_bootstrap, letters.dead_letter_topic)) == 1
        assert await backlog(ladder.queue) == 0


async def test_a_malformed_message_is_dead_lettered_at_once_and_the_consumer_goes_on(
    settings: CommonSettings,
) -> None:
    applied: list[str] = []

    async def handler(envelope: Envelope) -> None:
        applied.append(envelope.key)

    async with running_ladder(settings, handler, POLICIES) as ladder:
        topic = ladder.topics.name(RESERVATION_PAID)
        await ladder.producer.send_and_wait(topic, b"{not json", key=b"r1")
        await ladder.send(RESERVATION_PAID, paid("r1"))
        await eventually(lambda: _true_when(applied))
        [letter] = await dead_letters(ladder).select(Selection(error_class="MalformedMessage"))
        # It never entered the delay queue.
        assert await ladder.queue.topics() == []
    assert applied == ["r1"]
    assert letter.value == b"{not json"
    assert letter.state is not None and letter.state.attempt == 1


async def _true_when(items: list[str]) -> bool:
    return bool(items)


async def test_a_database_failure_travels_as_class_message_and_fingerprint_without_its_sql(
    settings: CommonSettings, database_url: str
) -> None:
    engine = create_async_engine(database_url)
    card = "4242-4242-4242-4242"

    async def handler(envelope: Envelope) -> None:
        async with engine.connect() as conn:
            await conn.execute(
                text("SELECT * FROM payments_gone WHERE card = :card"), {"card": card}
            )

    try:
        async with running_ladder(settings, handler, POLICIES) as ladder:
            await ladder.send(RESERVATION_PAID, paid("r1"))
            letters = dead_letters(ladder)

            async def dead_lettered() -> bool:
                return bool(await letters.select(Selection()))

            await eventually(dead_lettered)
            [letter] = await read_topic(settings.kafka_bootstrap, letters.dead_letter_topic)
            [retried] = await read_topic(
                settings.kafka_bootstrap, ladder.topics.retry(RESERVATION_PAID, 1)
            )
    finally:
        await engine.dispose()
    headers = dict(letter.headers)
    assert headers[ERROR_CLASS] == b"ProgrammingError"
    message = headers[ERROR_MESSAGE].decode()
    assert "payments_gone" in message and "doesn't exist" in message
    carried = b"".join(value for _, value in letter.headers)
    assert card.encode() not in carried and b"SELECT" not in carried
    _, state = decode(letter.headers)
    assert state is not None
    # Three failures of one kind share one fingerprint, the header's.
    assert {f.fingerprint for f in state.history} == {headers[ERROR_FINGERPRINT].decode()}
    # A dead letter is due at no time; the retry before it was due after its failure.
    assert DUE_AT not in headers
    _, retry_state = decode(retried.headers)
    assert retry_state is not None
    assert retry_state.due_at_ms >= retry_state.last.failed_at_ms + 200
