"""The reservation's state machine: what each trigger does in each status, refusing the rest.

PENDING is the only status that moves on its own; every later trigger is either a no-op (a
duplicate or an out-of-order message) or, for a payment that can no longer buy anything, a refund.
"""

from dataclasses import dataclass
from enum import StrEnum

from ticketing.common.errors import PermanentError
from ticketing.reservation.models import ReservationStatus as S


class Trigger(StrEnum):
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    # The payment succeeded but the tickets table says a seat is already sold.
    SEATS_GONE = "seats_gone"
    EXPIRE = "expire"
    CANCEL = "cancel"


class Effect(StrEnum):
    ISSUE_TICKETS = "issue_tickets"
    SELL = "sell"
    RELEASE = "release"
    REFUND = "refund"
    # The buyer is done: their waiting-room session gives its slot back before it expires (with
    # SELL, in its script).
    END_SESSION = "end_session"


@dataclass(frozen=True)
class Step:
    status: S
    effects: frozenset[Effect] = frozenset()


class TransitionRefused(PermanentError):
    """The reservation's status does not allow what was asked (e.g. cancelling a sold one)."""


_TERMINAL = (S.FAILED, S.EXPIRED, S.CANCELLED)


def next_step(status: S, trigger: Trigger, hold_expired: bool) -> Step:
    if status is S.PENDING:
        return _from_pending(trigger, hold_expired)
    if trigger is Trigger.CANCEL and status is not S.CANCELLED:
        raise TransitionRefused(f"reservation is {status.value} and can no longer be cancelled")
    if trigger in (Trigger.PAID, Trigger.SEATS_GONE):
        if status is S.CONFIRMED:
            # Confirmed already: selling again only repairs Redis if the last attempt died there.
            return Step(status, frozenset({Effect.SELL, Effect.END_SESSION}))
        return Step(status, frozenset({Effect.RELEASE, Effect.REFUND}))
    if trigger is Trigger.PAYMENT_FAILED and status in _TERMINAL:
        return Step(status, frozenset({Effect.RELEASE}))
    return Step(status)


def _from_pending(trigger: Trigger, hold_expired: bool) -> Step:
    release = frozenset({Effect.RELEASE})
    match trigger:
        case Trigger.PAID if not hold_expired:
            return Step(
                S.CONFIRMED, frozenset({Effect.ISSUE_TICKETS, Effect.SELL, Effect.END_SESSION})
            )
        case Trigger.PAID:
            return Step(S.EXPIRED, release | {Effect.REFUND})
        case Trigger.SEATS_GONE:
            return Step(S.FAILED, release | {Effect.REFUND})
        case Trigger.PAYMENT_FAILED:
            return Step(S.FAILED, release)
        case Trigger.EXPIRE if hold_expired:
            return Step(S.EXPIRED, release)
        case Trigger.EXPIRE:
            return Step(S.PENDING)
        case Trigger.CANCEL:
            return Step(S.CANCELLED, release)
