"""The DLQ tool refuses commands that would act on every dead letter by accident or are ambiguous."""

import pytest
from ticketing.retry import dlq


@pytest.mark.parametrize("command", ["replay", "purge"])
def test_acting_on_dead_letters_without_a_selection_is_refused(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dlq.parse([command, "reservation.paid"])
    assert exit_info.value.code == 2
    assert "needs --all or a filter" in capsys.readouterr().err


def test_a_time_without_a_zone_is_refused_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        dlq.parse(["list", "reservation.paid", "--since", "2026-12-01T12:00:00"])
    assert "needs a time zone" in capsys.readouterr().err


def test_an_unknown_topic_is_refused_with_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        dlq.parse(["list", "reservation.nope"])
    assert "reservation.paid" in capsys.readouterr().err


def test_a_filter_selects_without_all() -> None:
    args = dlq.parse(["purge", "reservation.paid", "--key", "r1"])
    assert (args.command, args.topic, args.key) == ("purge", "reservation.paid", "r1")
