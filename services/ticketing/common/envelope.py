"""The envelope every Kafka message travels in: an id for idempotent consumers, a type, the
partition key, the payload, and when it happened; serialized as JSON with orjson."""

import uuid
from datetime import UTC, datetime
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ticketing.common.errors import MalformedMessage


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1)
    key: str
    payload: dict[str, Any]
    occurred_at: datetime

    @classmethod
    def new(
        cls, type: str, key: str, payload: dict[str, Any], message_id: str | None = None
    ) -> Self:
        """A new message; pass a `message_id` derived from the business fact when a re-send of
        the same fact must be recognised as a duplicate."""
        return cls(
            message_id=message_id or uuid.uuid4().hex,
            type=type,
            key=key,
            payload=payload,
            occurred_at=datetime.now(UTC),
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Self:
        if not raw:
            raise MalformedMessage("message has no value")
        try:
            return cls.model_validate(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise MalformedMessage(f"message is not an envelope: {exc}") from exc
