"""The ladder's Prometheus metrics: backlog per topic, retries and dead letters as counters."""

from prometheus_client import Counter, Gauge

BACKLOG = Gauge(
    "ticketing_retry_backlog",
    "Messages in the delay queue per original topic: waiting (not due), due, claimed by a worker.",
    ["topic", "state"],
)
RETRIES = Counter(
    "ticketing_retries_total",
    "Failed messages sent to a retry step, per original topic.",
    ["topic"],
)
RESENT = Counter(
    "ticketing_retry_resent_total",
    "Messages a retry worker sent back to their original topic and the broker acknowledged.",
    ["topic"],
)
DEAD_LETTERED = Counter(
    "ticketing_dead_lettered_total",
    "Messages sent to a dead-letter topic, per original topic.",
    ["topic"],
)
PARKED_FOR_PEOPLE = Counter(
    "ticketing_retry_parking_total",
    "Replayed dead letters that failed again and wait in the parking topic for a person.",
    ["topic"],
)
