"""The payment provider behind a Protocol, and a simulated one with latency and declines.

A real provider implements `PaymentGateway`; like every serious provider API, it must treat the
idempotency key as "the same charge", so a charge repeated after a crash is not taken twice.
"""

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Charge:
    idempotency_key: str
    user_id: str
    amount_cents: int


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str
    decline_reason: str = ""


class PaymentGateway(Protocol):
    """A provider raises a `TemporaryError` when it cannot answer; the charge is then retried
    with the same idempotency key."""

    async def charge(self, charge: Charge) -> ChargeResult: ...

    async def refund(self, idempotency_key: str) -> None: ...


class SimulatedGateway:
    """Answers after `latency_seconds` and declines a `failure_rate` share of charges."""

    def __init__(
        self, latency_seconds: float, failure_rate: float, rng: random.Random | None = None
    ) -> None:
        self._latency = latency_seconds
        self._failure_rate = failure_rate
        self._rng = rng or random.Random()
        self._results: dict[str, ChargeResult] = {}
        self.calls: Counter[str] = Counter()
        self.refunds: Counter[str] = Counter()

    async def charge(self, charge: Charge) -> ChargeResult:
        self.calls[charge.idempotency_key] += 1
        await asyncio.sleep(self._latency)
        if charge.idempotency_key not in self._results:
            approved = self._rng.random() >= self._failure_rate
            self._results[charge.idempotency_key] = ChargeResult(
                approved=approved,
                reference=uuid.uuid4().hex,
                decline_reason="" if approved else "card declined (simulated)",
            )
        return self._results[charge.idempotency_key]

    async def refund(self, idempotency_key: str) -> None:
        await asyncio.sleep(self._latency)
        self.refunds[idempotency_key] += 1
