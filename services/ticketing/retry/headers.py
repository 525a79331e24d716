"""The retry headers a failed message carries through the ladder, and their wire format.

A message keeps its own headers; the ladder adds `x-retry-*` ones that say where it came from,
how often it failed, when it is due, and every failure so far (a JSON history).
"""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import orjson
import sqlalchemy.exc

PREFIX = "x-retry-"
ORIGINAL_TOPIC = PREFIX + "original-topic"
ORIGINAL_PARTITION = PREFIX + "original-partition"
ORIGINAL_OFFSET = PREFIX + "original-offset"
ATTEMPT = PREFIX + "attempt"
DUE_AT = PREFIX + "due-at-ms"
FIRST_FAILED_AT = PREFIX + "first-failed-at-ms"
GROUP = PREFIX + "group"
ERROR_CLASS = PREFIX + "error-class"
ERROR_MESSAGE = PREFIX + "error-message"
ERROR_FINGERPRINT = PREFIX + "error-fingerprint"
HISTORY = PREFIX + "history"
REPLAY = PREFIX + "replay"

# Kafka headers must stay small; a stack of nested exception texts need not travel whole.
MAX_MESSAGE_CHARS = 1000

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Failure:
    """One failed delivery."""

    attempt: int
    error_class: str
    error_message: str
    failed_at_ms: int
    group: str
    # The same for every failure of the same kind (see `fingerprint`); empty in histories written
    # before it existed.
    fingerprint: str = ""

    @classmethod
    def of(cls, error: BaseException, attempt: int, failed_at_ms: int, group: str) -> "Failure":
        error_class = type(error).__qualname__
        message, kind = _described(error)
        return cls(
            attempt=attempt,
            error_class=error_class,
            error_message=message[:MAX_MESSAGE_CHARS],
            failed_at_ms=failed_at_ms,
            group=group,
            fingerprint=fingerprint(error_class, kind),
        )


# Quoted values and numbers in an error's text: what differs between failures of one kind.
_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


def _described(error: BaseException) -> tuple[str, str]:
    """The error's message fit to travel in headers, and the text that says what kind of failure
    it is. A database error's text carries its SQL statement and that statement's parameters
    (a buyer's ids, a payment's details): only the driver's own message travels, and the kind is
    the statement without its parameters."""
    if isinstance(error, sqlalchemy.exc.StatementError):
        cause = error.orig
        message = (
            f"{type(cause).__qualname__}: {cause}" if cause is not None else "statement failed"
        )
        return message, f"{type(cause).__qualname__}\n{error.statement}"
    message = str(error)
    return message, _VALUES.sub("?", message)


def fingerprint(error_class: str, kind: str) -> str:
    """A short hash that failures of one kind share, to group dead letters by cause."""
    return hashlib.sha256(f"{error_class}\n{kind}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RetryState:
    """Where a failed message came from and what happened to it so far."""

    original_topic: str
    original_partition: int
    original_offset: int
    history: tuple[Failure, ...]
    due_at_ms: int = 0
    replay: bool = False

    @property
    def attempt(self) -> int:
        """Deliveries that failed so far; retry n of a message travels on `retry.<topic>.<n>`."""
        return len(self.history)

    @property
    def last(self) -> Failure:
        return self.history[-1]

    @property
    def member(self) -> str:
        """The message's id in the delay queue: one per original record and retry step."""
        return (
            f"{self.original_topic}:{self.original_partition}:{self.original_offset}:{self.attempt}"
        )

    def failed(self, failure: Failure, due_at_ms: int = 0) -> "RetryState":
        return replace(self, history=(*self.history, failure), due_at_ms=due_at_ms)


def encode(own: Headers, state: RetryState) -> Headers:
    """The message's own headers followed by the ladder's."""
    ladder: Headers = [
        (ORIGINAL_TOPIC, state.original_topic.encode()),
        (ORIGINAL_PARTITION, str(state.original_partition).encode()),
        (ORIGINAL_OFFSET, str(state.original_offset).encode()),
        (ATTEMPT, str(state.attempt).encode()),
        (HISTORY, orjson.dumps([vars(f) for f in state.history])),
    ]
    # Only a message on its way to a retry is due at a time; a dead letter or a replay is not.
    if state.due_at_ms:
        ladder.append((DUE_AT, str(state.due_at_ms).encode()))
    if state.history:
        last = state.last
        ladder += [
            (FIRST_FAILED_AT, str(state.history[0].failed_at_ms).encode()),
            (GROUP, last.group.encode()),
            (ERROR_CLASS, last.error_class.encode()),
            (ERROR_MESSAGE, last.error_message.encode()),
            (ERROR_FINGERPRINT, last.fingerprint.encode()),
        ]
    if state.replay:
        ladder.append((REPLAY, b"1"))
    return [*own, *ladder]


def decode(headers: Sequence[tuple[str, bytes]]) -> tuple[Headers, RetryState | None]:
    """Split a record's headers into its own and the ladder's state (None on a first delivery).

    Ladder headers that do not parse are dropped: the message then starts the ladder afresh,
    which is bounded, rather than failing for a reason no retry can fix.
    """
    own = [(k, v) for k, v in headers if not k.startswith(PREFIX)]
    ladder = {k: v for k, v in headers if k.startswith(PREFIX)}
    if ORIGINAL_TOPIC not in ladder:
        return own, None
    try:
        state = RetryState(
            original_topic=ladder[ORIGINAL_TOPIC].decode(),
            original_partition=int(ladder[ORIGINAL_PARTITION]),
            original_offset=int(ladder[ORIGINAL_OFFSET]),
            history=tuple(Failure(**f) for f in orjson.loads(ladder[HISTORY])),
            due_at_ms=int(ladder.get(DUE_AT, b"0")),
            replay=ladder.get(REPLAY) == b"1",
        )
    except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
        return own, None
    return own, state


def as_replay(own: Headers, state: RetryState) -> Headers:
    """Headers for a dead letter sent back by a person: one more failure parks it."""
    return encode(own, replace(state, replay=True, due_at_ms=0))
