"""The declared policies give the delays and the routes the issue asks for, before any server runs."""

import pytest
from ticketing.common.errors import MalformedMessage, TemporaryError
from ticketing.common.topics import RESERVATION_PAID, TopicFamily, Topics
from ticketing.payment.consumers import CONSUMED_TOPICS as PAYMENT_CONSUMES
from ticketing.reservation.consumers import CONSUMED_TOPICS as RESERVATION_CONSUMES
from ticketing.retry.failure import Destination, NoRetryPolicy, route
from ticketing.retry.headers import decode
from ticketing.retry.policy import POLICIES, Backoff, RetryPolicy, ladder_topics
from ticketing.retry.settings import RetrySettings

from tests.retry.factories import Record

TOPICS = Topics("p.")
SHORT = {RESERVATION_PAID: RetryPolicy(attempts=3, base_delay_s=0.2)}


def test_every_consumed_topic_has_a_policy() -> None:
    assert set(POLICIES) == {*PAYMENT_CONSUMES, *RESERVATION_CONSUMES}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (RetryPolicy(attempts=5, base_delay_s=0.2, backoff=Backoff.FIXED), [0.2, 0.2, 0.2, 0.2]),
        (RetryPolicy(attempts=5, base_delay_s=0.2), [0.2, 0.4, 0.8, 1.6]),
        (RetryPolicy(attempts=5, base_delay_s=1, max_delay_s=3), [1, 2, 3, 3]),
    ],
    ids=["fixed", "exponential", "exponential-capped"],
)
def test_delays_follow_the_policy(policy: RetryPolicy, expected: list[float]) -> None:
    assert [policy.delay_s(n) for n in range(1, policy.attempts)] == pytest.approx(expected)


def test_jitter_only_shortens_the_delay_by_at_most_its_fraction() -> None:
    policy = RetryPolicy(attempts=3, base_delay_s=10, jitter=0.2)
    assert policy.delay_s(1, rand=lambda: 0.0) == 10
    assert policy.delay_s(1, rand=lambda: 0.999) == pytest.approx(8, abs=0.01)


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0, base_delay_s=1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(attempts=2, base_delay_s=1, jitter=2)


def test_ladder_has_a_retry_step_per_retry_and_a_dead_letter_and_parking_topic() -> None:
    assert ladder_topics(TOPICS, SHORT) == {
        "p.retry.reservation.paid.1": TopicFamily.RETRY,
        "p.retry.reservation.paid.2": TopicFamily.RETRY,
        "p.reservation.paid.dlq": TopicFamily.DEAD_LETTER,
        "p.reservation.paid.parking": TopicFamily.DEAD_LETTER,
    }


def test_a_first_failure_goes_to_the_first_retry_step_with_its_origin_and_due_time() -> None:
    step = route(
        Record("p.reservation.paid"), TemporaryError("db busy"), "g", TOPICS, SHORT, now_ms=1000
    )
    _, state = decode(step.headers)
    assert (step.destination, step.topic) == (Destination.RETRY, "p.retry.reservation.paid.1")
    assert state is not None
    assert (state.original_topic, state.original_partition, state.original_offset) == (
        "p.reservation.paid",
        1,
        7,
    )
    assert (state.attempt, state.due_at_ms) == (1, 1200)
    assert (state.last.error_class, state.last.error_message, state.last.group) == (
        "TemporaryError",
        "db busy",
        "g",
    )
    assert dict(step.headers)["x-retry-first-failed-at-ms"] == b"1000"


def test_the_last_failure_dead_letters_with_every_attempt_in_the_history() -> None:
    first = route(
        Record("p.reservation.paid", headers=[("trace", b"t1")]),
        TemporaryError("a"),
        "g",
        TOPICS,
        SHORT,
        1000,
    )
    retried = Record("p.reservation.paid", partition=2, offset=99, headers=first.headers)
    second = route(retried, TemporaryError("b"), "g", TOPICS, SHORT, 1300)
    third = route(
        Record("p.reservation.paid", headers=second.headers),
        TemporaryError("c"),
        "g",
        TOPICS,
        SHORT,
        1800,
    )
    own, state = decode(third.headers)
    assert second.topic == "p.retry.reservation.paid.2"
    assert (third.destination, third.topic) == (Destination.DEAD_LETTER, "p.reservation.paid.dlq")
    assert state is not None
    assert [(f.attempt, f.error_message, f.failed_at_ms) for f in state.history] == [
        (1, "a", 1000),
        (2, "b", 1300),
        (3, "c", 1800),
    ]
    # The original position survives the re-sends; the message's own headers travel unchanged.
    assert (state.original_partition, state.original_offset) == (1, 7)
    assert own == [("trace", b"t1")]


def test_a_malformed_message_skips_the_ladder() -> None:
    step = route(Record("p.reservation.paid"), MalformedMessage("not json"), "g", TOPICS, SHORT, 0)
    assert (step.destination, step.topic) == (Destination.DEAD_LETTER, "p.reservation.paid.dlq")


def test_a_topic_without_a_policy_is_refused_by_name() -> None:
    with pytest.raises(NoRetryPolicy, match=r"reservation\.other"):
        route(Record("p.reservation.other"), TemporaryError("x"), "g", TOPICS, SHORT, 0)


def test_the_default_dedup_window_outlasts_the_longest_retry_ladder() -> None:
    # A duplicate may come back as late as a whole ladder after the first delivery, plus a lease
    # its retry worker held; the ids a group applied must still be remembered by then.
    settings = RetrySettings()
    longest = max(
        sum(policy.delay_s(retry, rand=lambda: 0.0) for retry in range(1, policy.attempts))
        for policy in POLICIES.values()
    )
    assert longest + settings.retry_lease_ms / 1000 < settings.dedup_window_seconds
