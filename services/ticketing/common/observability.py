"""Structured JSON logs that carry the current request or message id, and the HTTP metrics.

Every log line is one JSON object. The id of the request (or Kafka message) being handled lives
in a context variable, so every line logged while handling it carries that id without passing it.
"""

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from prometheus_client import Counter, Histogram

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
message_id_var: ContextVar[str | None] = ContextVar("message_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the line
# (except uvicorn's terminal-coloured copy of its message).
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}

_PLAIN = (str, int, float, bool, type(None))

HTTP_REQUESTS = Counter(
    "ticketing_http_requests_total",
    "HTTP requests handled, by service, route template, method and status code.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "ticketing_http_request_duration_seconds",
    "Time from receiving a request to sending the end of its response.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids in context, `extra` fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            line["request_id"] = request_id
        if (message_id := message_id_var.get()) is not None:
            line["message_id"] = message_id
        for key, value in vars(record).items():
            # Plain values only: libraries such as kopf attach whole objects (its settings) to
            # every record, which would bury the line and could carry secrets.
            if key not in _RECORD_FIELDS and isinstance(value, _PLAIN):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(service: str, level: str) -> None:
    """Send every logger's records to stdout as JSON lines; called once by the process entry point."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@contextlib.contextmanager
def message_context(message_id: str) -> Iterator[None]:
    """Tag every log line written while handling one Kafka message with its id."""
    token = message_id_var.set(message_id)
    try:
        yield
    finally:
        message_id_var.reset(token)


def observe_request(service: str, method: str, route: str, status: int, started: float) -> None:
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_LATENCY.labels(service, method, route).observe(time.perf_counter() - started)
