"""What an admitted buyer does, from one random roll: the same cut as loadtest/k6/lib/options.js.

Only walking away is the buyer's choice: payment runs by itself over Kafka once seats are
held, so declined payments come from the payment service's simulated gateway
(TICKETING_PAYMENT_GATEWAY_FAILURE_RATE, set by the runner from the scenario).
"""

from enum import StrEnum

from loadtest.scenarios import Behaviour


class Plan(StrEnum):
    ABANDON = "abandon"
    BUY = "buy"


def pick_plan(behaviour: Behaviour, roll: float) -> Plan:
    return Plan.ABANDON if roll < behaviour.abandon_rate else Plan.BUY
