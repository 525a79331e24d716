"""What an admitted buyer does, from one random roll: the same cut points as loadtest/k6/lib/options.js."""

from enum import StrEnum

from loadtest.scenarios import Behaviour


class Plan(StrEnum):
    ABANDON = "abandon"
    PAY_TOO_LATE = "pay_too_late"
    PAYMENT_FAILS = "payment_fails"
    BUY = "buy"


def pick_plan(behaviour: Behaviour, roll: float) -> Plan:
    edge = 0.0
    for plan, share in (
        (Plan.ABANDON, behaviour.abandon_rate),
        (Plan.PAY_TOO_LATE, behaviour.pay_too_late_rate),
        (Plan.PAYMENT_FAILS, behaviour.payment_failure_rate),
    ):
        edge += share
        if roll < edge:
            return plan
    return Plan.BUY
