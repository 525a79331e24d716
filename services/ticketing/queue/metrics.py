"""The waiting room's Prometheus metrics; admitted per second is `rate(ticketing_queue_admitted_total)`."""

from prometheus_client import Counter, Gauge

QUEUE_WAITING = Gauge("ticketing_queue_waiting", "People waiting in line, by sale.", ["sale"])
QUEUE_ACTIVE = Gauge(
    "ticketing_queue_active_sessions", "Admitted sessions not yet expired, by sale.", ["sale"]
)
QUEUE_ADMITTED = Counter(
    "ticketing_queue_admitted_total", "People admitted by this process's worker, by sale.", ["sale"]
)
QUEUE_ADMISSION_RATE = Gauge(
    "ticketing_queue_admission_rate",
    "Admissions per second over the last seconds, all replicas together, by sale.",
    ["sale"],
)
QUEUE_REMOVED = Counter(
    "ticketing_queue_abandoned_total", "People removed after the grace period, by sale.", ["sale"]
)
QUEUE_SOCKETS = Gauge("ticketing_queue_sockets", "Open waiting-room WebSockets in this process.")
TOKEN_REJECTIONS = Counter(
    "ticketing_queue_token_rejections_total",
    "Login tokens the waiting room refused, by reason.",
    ["reason"],
)
