"""Every environment variable each component reads, from its settings class: one name has one
meaning (it is declared once, in the common settings or in one component's), so setting it for
the whole chart (`extraEnv`) cannot merge two things. Renamed variables still work for one
release, with a warning."""

import inspect

import pytest
from pydantic_settings import BaseSettings
from ticketing.common.settings import CommonSettings, topic_variable
from ticketing.common.topics import TopicFamily
from ticketing.gateway.settings import GatewaySettings
from ticketing.payment.settings import PaymentSettings
from ticketing.queue.settings import QueueSettings
from ticketing.reservation.settings import ReservationSettings
from ticketing.retry.settings import RetrySettings
from ticketing.seat.settings import SeatSettings
from ticketing.user.settings import UserSettings
from ticketing_operator.settings import OperatorSettings

from tests.charts.chart import component_commands

# `python -m ticketing <command>` -> the settings class it reads.
SETTINGS_OF = {
    "user": UserSettings,
    "event": CommonSettings,
    "seat": SeatSettings,
    "queue": QueueSettings,
    "queue-admission": QueueSettings,
    "reservation": ReservationSettings,
    "payment": PaymentSettings,
    "gateway": GatewaySettings,
    "retry-consumer": RetrySettings,
    "retry-worker": RetrySettings,
    "operator": OperatorSettings,
    "migrate": CommonSettings,
}


def variables(settings: type[BaseSettings]) -> dict[str, type]:
    """Each variable the class reads -> the class that declares (gives meaning to) it."""
    prefix = settings.model_config.get("env_prefix", "")
    return {
        f"{prefix}{name}".upper(): next(
            owner for owner in settings.__mro__ if name in inspect.get_annotations(owner)
        )
        for name in settings.model_fields
    }


def test_every_component_is_listed() -> None:
    assert set(component_commands().values()) <= set(SETTINGS_OF)


def test_no_variable_carries_two_meanings() -> None:
    meanings: dict[str, set[str]] = {}
    for settings in set(SETTINGS_OF.values()):
        for variable, owner in variables(settings).items():
            meanings.setdefault(variable, set()).add(owner.__qualname__)

    assert {v: m for v, m in meanings.items() if len(m) > 1} == {}
    # The two that did: the consumer group, and the payment simulator in the gateway's namespace.
    assert meanings["TICKETING_RESERVATION_CONSUMER_GROUP"] == {"ReservationSettings"}
    assert meanings["TICKETING_PAYMENT_CONSUMER_GROUP"] == {"PaymentSettings"}
    assert meanings["TICKETING_PAYMENT_GATEWAY_FAILURE_RATE"] == {"PaymentSettings"}
    gateway = {v: m for v, m in meanings.items() if v.startswith("TICKETING_GATEWAY_")}
    assert gateway and all(m == {"GatewaySettings"} for m in gateway.values())
    # Whether Redis is one server or a cluster: one switch for every component that opens it.
    assert meanings["TICKETING_REDIS_CLUSTER"] == {"CommonSettings"}
    assert all("TICKETING_REDIS_CLUSTER" in variables(s) for s in SETTINGS_OF.values())
    # How topics are created: one meaning for every component that creates them.
    for family in TopicFamily:
        for field in ("partitions", "replication_factor", "min_insync_replicas"):
            assert meanings[topic_variable(family, field)] == {"CommonSettings"}


def test_renamed_variables_name_no_current_one() -> None:
    current = {v for settings in SETTINGS_OF.values() for v in variables(settings)}
    for settings in set(SETTINGS_OF.values()):
        for old, field in settings.RENAMED.items():
            assert old not in current, old
            assert field in settings.model_fields, field


def test_an_old_name_still_works_for_one_release_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETING_CONSUMER_GROUP", "shared")
    monkeypatch.setenv("TICKETING_GATEWAY_FAILURE_RATE", "0.25")

    with pytest.warns(FutureWarning) as warned:
        payment = PaymentSettings()
        reservation = ReservationSettings()
    assert {str(w.message).rsplit(": set ", 1)[1] for w in warned} == {
        "TICKETING_PAYMENT_CONSUMER_GROUP",
        "TICKETING_PAYMENT_GATEWAY_FAILURE_RATE",
        "TICKETING_RESERVATION_CONSUMER_GROUP",
    }
    assert (payment.payment_consumer_group, payment.payment_gateway_failure_rate) == (
        "shared",
        0.25,
    )
    assert reservation.reservation_consumer_group == "shared"

    monkeypatch.setenv("TICKETING_PAYMENT_CONSUMER_GROUP", "payments")
    with pytest.warns(FutureWarning):
        assert PaymentSettings().payment_consumer_group == "payments"  # the new name wins
