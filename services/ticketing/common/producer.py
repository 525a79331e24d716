"""The platform's Kafka producer: acks=all and idempotence, and a new producer id after any send
fails.

An idempotent producer numbers the batches it sends to each partition, and the broker takes only
the next number. A batch that fails once numbered (the broker refused it: too large, a broker
stopping, a leader moving) leaves a gap the broker will not skip: it answers every later batch to
that partition with OutOfOrderSequenceNumber. Kafka's Java client then bumps its epoch and numbers
from 0 again; aiokafka 0.14 does not, and the partition takes nothing from that producer for as
long as the process lives (aio-libs/aiokafka issue 1017). So once a send has failed, this producer
starts a fresh aiokafka producer (a new id, numbers from 0) before its next send. Only the sends
already queued behind the failed one fail with it; their senders send them again, as after any
failed send, and consumers skip a message id they have seen.
"""

import asyncio
import functools
import logging
from typing import TypedDict, Unpack

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter

log = logging.getLogger(__name__)

RENEWALS = Counter(
    "ticketing_kafka_producer_renewals",
    "Times a producer was replaced by one with a new producer id because a send had failed.",
    ["client_id"],
)


class SendOptions(TypedDict, total=False):
    """AIOKafkaProducer.send's options the platform uses."""

    key: bytes | None
    headers: list[tuple[str, bytes]] | None
    partition: int | None


class RenewingProducer:
    """AIOKafkaProducer's send, send_and_wait, start, stop and client, from an aiokafka producer
    that is replaced once one of its sends has failed."""

    def __init__(self, bootstrap: str, client_id: str, request_timeout_ms: int = 40_000) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._current = self._new()
        # The producer a send failed on, replaced before the next send.
        self._failed: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()
        # Replaced producers flushing what they still hold (it fails) and closing, off the send path.
        self._retiring: set[asyncio.Task[None]] = set()

    def _new(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=self._request_timeout_ms,
        )

    @property
    def client(self) -> AIOKafkaClient:
        return self._current.client

    async def start(self) -> None:
        await self._current.start()

    async def stop(self) -> None:
        await self._current.stop()
        await asyncio.gather(*self._retiring)

    async def send(
        self, topic: str, value: bytes | None = None, **options: Unpack[SendOptions]
    ) -> "asyncio.Future[RecordMetadata]":
        """Queue one message (to the key's partition unless `partition` is given); the future
        resolves when the broker acknowledged it."""
        producer = await self._usable()
        delivery: asyncio.Future[RecordMetadata] = await producer.send(topic, value, **options)
        delivery.add_done_callback(functools.partial(self._note_failure, producer))
        return delivery

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, **options: Unpack[SendOptions]
    ) -> RecordMetadata:
        return await (await self.send(topic, value, **options))

    def _note_failure(self, producer: AIOKafkaProducer, delivery: "asyncio.Future[object]") -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            self._failed = producer

    async def _usable(self) -> AIOKafkaProducer:
        """The current producer, a new one first if a send failed on the current one."""
        if self._failed is self._current:
            async with self._renewing:
                if self._failed is self._current:
                    await self._renew()
        return self._current

    async def _renew(self) -> None:
        failed = self._current
        fresh = self._new()
        try:
            await fresh.start()
        except BaseException:
            await fresh.stop()
            raise
        self._current = fresh
        RENEWALS.labels(client_id=self._client_id).inc()
        log.warning(
            "a send failed, leaving a gap in this producer's batch numbers; sending with a new "
            "producer id from now on",
            extra={"client_id": self._client_id},
        )
        # Stopped off the send path: a stop flushes, and a broker gone again would hold it.
        retiring = asyncio.create_task(_retire(failed))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)


async def _retire(producer: AIOKafkaProducer) -> None:
    """Stop a replaced producer; its batches still queued fail, each to its own sender."""
    try:
        await producer.stop()
    except Exception:
        log.exception("a replaced producer did not stop cleanly")
