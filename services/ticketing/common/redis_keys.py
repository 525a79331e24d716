"""The Redis key layout, in one place.

Every per-sale key carries the sale's id as a hash tag (`tk:{<event>}:...`) so that one sale
lives on one Redis Cluster slot and the Lua scripts that touch several of its keys stay atomic.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SaleKeys:
    """Keys of one sale (one event)."""

    prefix: str
    event_id: str

    def _key(self, suffix: str) -> str:
        return f"{self.prefix}:{{{self.event_id}}}:{suffix}"

    @property
    def config(self) -> str:
        """Hash: the sale's runtime configuration, written only by the operator."""
        return self._key("config")

    @property
    def waiting(self) -> str:
        """Sorted set: waiting users scored by their place in line."""
        return self._key("waiting")

    @property
    def active(self) -> str:
        """Sorted set: admitted users scored by their session's expiry time."""
        return self._key("active")

    @property
    def seats(self) -> str:
        """Hash: seat id -> state, one field per seat of the sale's venue (written by ticketing.seat).

        Seat ids are `r<row>-s<number>` (see `seat_id`). The value is `free`,
        `held:<reservation_id>` or `sold:<reservation_id>`; only the reservation service's Lua
        scripts move a seat free -> held -> sold (or back to free), and loading the inventory
        again (HSETNX) never touches a seat that already has a state.
        """
        return self._key("seats")

    def hold(self, reservation_id: str) -> str:
        """String with a TTL: the seats a reservation holds, gone when the hold expires."""
        return self._key(f"hold:{reservation_id}")

    @property
    def hold_deadlines(self) -> str:
        """Sorted set: reservation id -> when its hold key expires (ms, Redis time), for every hold
        not yet sold or released; the orphan reaper visits the ones past due."""
        return self._key("hold-deadlines")

    @property
    def hold_owners(self) -> str:
        """Hash: reservation id -> JSON {"user", "seats"} of each hold in `hold_deadlines`."""
        return self._key("hold-owners")

    @property
    def buyer_seats(self) -> str:
        """Hash: user id -> seats the buyer holds or bought in this sale, kept by the hold, sell
        and release scripts together with the seats, against the sale's purchase limit."""
        return self._key("buyer-seats")

    # The waiting room's keys (ticketing.queue).

    @property
    def ticket_seq(self) -> str:
        """String counter: the last ticket number handed out; places in line are ticket numbers."""
        return self._key("queue:seq")

    @property
    def prequeue(self) -> str:
        """Set: users who arrived before opening; they get a random order when the sale opens."""
        return self._key("queue:prequeue")

    @property
    def fairness(self) -> str:
        """Hash: the pre-queue seed, its commitment, and where the shuffled pre-queue starts."""
        return self._key("queue:fairness")

    @property
    def heartbeat(self) -> str:
        """Sorted set: waiting users scored by when a socket or poll of theirs was last seen."""
        return self._key("queue:heartbeat")

    @property
    def parked(self) -> str:
        """Hash: user -> ticket of a user whose turn came while they were away (grace period)."""
        return self._key("queue:parked")

    @property
    def removed(self) -> str:
        """Sorted set: tickets given up before their turn, so positions behind them stay exact."""
        return self._key("queue:removed")

    @property
    def admission_bucket(self) -> str:
        """Hash: the admission token bucket every admission worker replica shares."""
        return self._key("queue:bucket")

    @property
    def serving(self) -> str:
        """Hash: the "now serving" cursor (highest admitted ticket) and the admitted count."""
        return self._key("queue:serving")

    @property
    def sold_out(self) -> str:
        """String flag: the sale sold out once; admission became waiting-list offers."""
        return self._key("queue:sold_out")

    def admission(self, user_id: str) -> str:
        """String with a TTL: the admission token issued to a user, kept until it expires."""
        return self._key(f"queue:admission:{user_id}")

    def rate(self, action: str, user_id: str) -> str:
        """String counter with a TTL: a user's `action` requests (joins, holds) in this window."""
        return self._key(f"rate:{action}:{user_id}")


def sale_config_pattern(prefix: str) -> str:
    """SCAN pattern matching every sale's configuration hash, to discover the sales."""
    return f"{prefix}:{{*}}:config"


@dataclass(frozen=True)
class RetryKeys:
    """Keys of the retry machinery, shared by every topic."""

    prefix: str

    def delayed(self, topic: str) -> str:
        """Sorted set: messages parked until their due time (score)."""
        return f"{self.prefix}:retry:{{{topic}}}:delayed"

    def claimed(self, topic: str) -> str:
        """Sorted set: messages a worker claimed, scored by the lease's expiry."""
        return f"{self.prefix}:retry:{{{topic}}}:claimed"

    def payloads(self, topic: str) -> str:
        """Hash: message id -> serialized message with its retry headers."""
        return f"{self.prefix}:retry:{{{topic}}}:payloads"

    @property
    def topics(self) -> str:
        """Set: the topics that have had a retry backlog; read ZCARD of delayed + claimed of each."""
        return f"{self.prefix}:retry:topics"

    def dead_letters_resolved(self, topic: str) -> str:
        """Set: `partition:offset` of the dead letters of `topic` already replayed or purged."""
        return f"{self.prefix}:retry:{{{topic}}}:dlq-resolved"


def held_sales_key(prefix: str) -> str:
    """Set: ids of the sales the reservation service has held seats in (the reaper's round)."""
    return f"{prefix}:reservation:held-sales"


def processed_key(prefix: str, group: str, bucket: int) -> str:
    """Set with an expiry: message ids a consumer group applied during one time bucket
    (`ticketing.common.dedup`). The group is the hash tag: a check reads two buckets at once."""
    return f"{prefix}:processed:{{{group}}}:{bucket}"


def seat_id(row: int, number: int) -> str:
    """A seat's id, stable for the life of a venue: rows count from 1 across all sections, front
    to back, and seats from 1 within their row, e.g. `r12-s7`."""
    return f"r{row}-s{number}"
