"""`python -m ticketing.retry.dlq`: list, inspect, replay and purge a topic's dead letters.

    python -m ticketing.retry.dlq list reservation.paid [--key K] [--error-class C] [--since T] [--until T]
    python -m ticketing.retry.dlq inspect reservation.paid 0:42
    python -m ticketing.retry.dlq replay reservation.paid --error-class TemporaryError
    python -m ticketing.retry.dlq purge reservation.paid --all

Replay and purge need a selection (`--all` or a filter) so that nobody acts on every dead letter
by accident. Output is one JSON object per line. Connection settings come from TICKETING_*.
"""

import argparse
import asyncio
import base64
import sys
from collections.abc import Sequence
from datetime import datetime

import orjson

from ticketing.common.producer import RenewingProducer
from ticketing.common.redis_client import connect_redis
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import Topics
from ticketing.retry.deadletters import DeadLetter, DeadLetters, Selection
from ticketing.retry.policy import POLICIES


def _time_ms(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, e.g. {text}+00:00")
    return int(moment.timestamp() * 1000)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ticketing.retry.dlq", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("list", "one line per dead letter"),
        ("replay", "send dead letters back to their topic; one more failure parks them"),
        ("purge", "mark dead letters as handled; retention removes them"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("topic", choices=sorted(POLICIES), help="the logical topic")
        command.add_argument("--all", action="store_true", help="every dead letter of the topic")
        command.add_argument("--key", help="only this message key")
        command.add_argument(
            "--error-class", help="only this last error class, e.g. TemporaryError"
        )
        command.add_argument("--since", type=_time_ms, help="dead-lettered at or after (ISO 8601)")
        command.add_argument("--until", type=_time_ms, help="dead-lettered before (ISO 8601)")
        command.add_argument(
            "--include-resolved", action="store_true", help="also replayed/purged ones"
        )
    inspect = commands.add_parser("inspect", help="one dead letter in full, with its history")
    inspect.add_argument("topic", choices=sorted(POLICIES), help="the logical topic")
    inspect.add_argument("position", help="partition:offset, as `list` prints it")
    return parser


def _selection(args: argparse.Namespace) -> Selection:
    if args.command == "inspect":
        return Selection(position=args.position, include_resolved=True)
    return Selection(
        key=args.key,
        error_class=args.error_class,
        since_ms=args.since,
        until_ms=args.until,
        include_resolved=args.include_resolved,
    )


def _summary(letter: DeadLetter) -> dict[str, object]:
    state = letter.state
    return {
        "position": letter.position,
        "dead_lettered_at": datetime.fromtimestamp(letter.timestamp_ms / 1000)
        .astimezone()
        .isoformat(),
        "key": _printable(letter.key),
        "attempts": state.attempt if state else None,
        "error_class": letter.error_class,
        "error_message": state.last.error_message if state and state.history else None,
        "resolved": letter.resolved,
    }


def _detail(letter: DeadLetter) -> dict[str, object]:
    history = [vars(f) for f in letter.state.history] if letter.state else []
    return {
        **_summary(letter),
        "original": (
            f"{letter.state.original_topic}:{letter.state.original_partition}:{letter.state.original_offset}"
            if letter.state
            else None
        ),
        "history": history,
        "headers": {k: _printable(v) for k, v in letter.own_headers},
        "value": _printable(letter.value),
    }


def _printable(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


def _print(line: dict[str, object]) -> None:
    sys.stdout.write(orjson.dumps(line).decode() + "\n")


async def run(args: argparse.Namespace, settings: CommonSettings) -> int:
    client = connect_redis(settings)
    letters = DeadLetters(
        settings.kafka_bootstrap,
        client,
        settings.redis_key_prefix,
        Topics(settings.kafka_topic_prefix),
        args.topic,
    )
    try:
        selected = await letters.select(_selection(args))
        if args.command == "list":
            for letter in selected:
                _print(_summary(letter))
        elif args.command == "inspect":
            if not selected:
                sys.stderr.write(
                    f"no dead letter at {args.position} in {letters.dead_letter_topic}\n"
                )
                return 1
            _print(_detail(selected[0]))
        elif args.command == "purge":
            _print({"purged": await letters.purge(selected)})
        else:
            producer = RenewingProducer(settings.kafka_bootstrap, "dlq-replay")
            await producer.start()
            try:
                _print({"replayed": await letters.replay(selected, producer)})
            finally:
                await producer.stop()
        return 0
    finally:
        await client.aclose()


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("replay", "purge") and not (
        args.all or args.key or args.error_class or args.since or args.until
    ):
        parser.error(
            f"{args.command} needs --all or a filter (--key, --error-class, --since, --until)"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv), CommonSettings()))


if __name__ == "__main__":
    sys.exit(main())
