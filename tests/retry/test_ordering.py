"""Retrying breaks per-key order; a handler that refuses out-of-order transitions stays correct."""

from dataclasses import dataclass, field

from ticketing.common.envelope import Envelope
from ticketing.common.errors import TemporaryError
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import RESERVATION_PAID, RESERVATION_PAYMENT_FAILED
from ticketing.retry.worker import backlog

from tests.retry.ladder import eventually, running_ladder
from tests.retry.test_ladder import POLICIES


@dataclass
class Reservations:
    """The reservation state machine in small: PENDING -> CONFIRMED | CANCELLED, nothing else."""

    states: dict[str, str]
    refunds: list[str] = field(default_factory=list)
    confirmations: list[str] = field(default_factory=list)
    # The first payment of these reservations meets a busy database and goes to the ladder.
    flaky: set[str] = field(default_factory=set)

    async def handle(self, envelope: Envelope) -> None:
        reservation, state = envelope.key, self.states[envelope.key]
        if envelope.type == "paid":
            if reservation in self.flaky:
                self.flaky.discard(reservation)
                raise TemporaryError("database busy")
            if state == "PENDING":
                self.states[reservation] = "CONFIRMED"
                self.confirmations.append(reservation)
            elif state == "CANCELLED":
                # Money arrived for seats already released: give it back, sell nothing.
                self.refunds.append(reservation)
        elif envelope.type == "payment_failed" and state == "PENDING":
            self.states[reservation] = "CANCELLED"


async def test_a_payment_retried_after_its_cancellation_becomes_a_refund_not_a_sale(
    settings: CommonSettings,
) -> None:
    book = Reservations(states={"r1": "PENDING", "r2": "PENDING"}, flaky={"r1"})
    async with running_ladder(settings, book.handle, POLICIES) as ladder:
        await ladder.send(RESERVATION_PAID, Envelope.new("paid", "r1", {}))
        await ladder.send(RESERVATION_PAYMENT_FAILED, Envelope.new("payment_failed", "r1", {}))
        # r2: the payment result is delivered twice (a re-sent fact), then a stale failure.
        await ladder.send(RESERVATION_PAID, Envelope.new("paid", "r2", {}))
        await ladder.send(RESERVATION_PAID, Envelope.new("paid", "r2", {}))
        await ladder.send(RESERVATION_PAYMENT_FAILED, Envelope.new("payment_failed", "r2", {}))

        async def settled() -> bool:
            return bool(book.refunds) and await backlog(ladder.queue) == 0

        await eventually(settled)
    assert book.states == {"r1": "CANCELLED", "r2": "CONFIRMED"}
    assert book.refunds == ["r1"]
    assert book.confirmations == ["r2"]
