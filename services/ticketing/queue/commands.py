"""What a waiting-room socket accepts from its client: every inbound frame is read as a known
command or refused with a reason, and the refusals that end the socket carry a close code.

The one command is `{"type": "leave"}`. Text that is not such a command is answered with an
`{"type": "error", "reason": ...}` message and the socket stays open, up to `MAX_REFUSALS`
times; a binary frame (1003), a frame over `MAX_COMMAND_CHARS` (1009) and the refusal past the
last allowed (1008) close it.
"""

from dataclasses import dataclass
from enum import StrEnum

import orjson
from starlette.types import Message


class Command(StrEnum):
    LEAVE = "leave"


# A command is a few dozen bytes; anything much larger is not one.
MAX_COMMAND_CHARS = 1024
# Refusals answered with an error message before the socket is closed for policy.
MAX_REFUSALS = 5

UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True)
class Refusal:
    """A frame that is no command: `close_code` None answers it with an error message."""

    reason: str
    close_code: int | None = None


def read_command(frame: Message) -> Command | Refusal:
    """The command an inbound `websocket.receive` frame carries, or why it carries none."""
    text = frame.get("text")
    if text is None:
        return Refusal("binary frames are not accepted; send JSON text", UNSUPPORTED_DATA)
    if len(text) > MAX_COMMAND_CHARS:
        return Refusal(f"a message is at most {MAX_COMMAND_CHARS} characters", MESSAGE_TOO_BIG)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Refusal('not JSON; send {"type": "leave"} to leave the line')
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        return Refusal('a command is a JSON object with a "type", e.g. {"type": "leave"}')
    try:
        return Command(kind)
    except ValueError:
        return Refusal(f"unknown command {kind[:40]!r}; the one command is 'leave'")
