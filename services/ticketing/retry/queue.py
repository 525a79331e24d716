"""The Redis delay queue: failed messages parked until due, claimed under a lease, removed on ack.

Per original topic: a `delayed` sorted set scored by due time, a `claimed` sorted set scored by
lease expiry, and a `payloads` hash. All three share the topic's hash tag, so each Lua script
touches one Redis Cluster slot. A worker that dies after claiming loses nothing: the next claim
returns expired leases to `delayed` first.

Parking can also wait until the topic's primary has passed the park on to its replicas (Redis
WAIT), so that a primary lost right after acknowledging cannot take the message with it: the
retry consumer commits a record's Kafka offset only once its park is on enough copies.
"""

import base64
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from ticketing.common.redis_client import RedisClient
from ticketing.common.redis_keys import RetryKeys
from ticketing.retry.headers import Headers

# Parks each message once: a member already parked or claimed keeps its place. Its payload is
# written again all the same (the same bytes), so that a WAIT after a second try also covers a
# park whose first try was never confirmed on a replica.
PARK = """
local added = 0
for i = 1, #ARGV, 3 do
  local member = ARGV[i]
  if not redis.call('ZSCORE', KEYS[2], member)
     and redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], member) == 1 then
    added = added + 1
  end
  redis.call('HSET', KEYS[3], member, ARGV[i + 2])
end
return added
"""

# Returns expired leases to `delayed`, then moves due members to `claimed` under a new lease.
CLAIM = """
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], now, member)
end
local claimed = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[1], member)
  local payload = redis.call('HGET', KEYS[3], member)
  if payload then
    redis.call('ZADD', KEYS[2], now + lease, member)
    table.insert(claimed, member)
    table.insert(claimed, payload)
  end
end
return claimed
"""


@dataclass(frozen=True)
class Parked:
    """A message waiting to go back to `topic` (its original topic) at `due_at_ms`."""

    member: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    due_at_ms: int

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "member": self.member,
                "topic": self.topic,
                "key": _b64(self.key),
                "value": _b64(self.value),
                "headers": [[k, _b64(v)] for k, v in self.headers],
                "due_at_ms": self.due_at_ms,
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> "Parked":
        data = orjson.loads(raw)
        return cls(
            member=data["member"],
            topic=data["topic"],
            key=_unb64(data["key"]),
            value=_unb64(data["value"]),
            headers=[(k, _unb64(v) or b"") for k, v in data["headers"]],
            due_at_ms=data["due_at_ms"],
        )


@dataclass(frozen=True)
class TopicBacklog:
    waiting: int
    due: int
    claimed: int

    @property
    def total(self) -> int:
        return self.waiting + self.due + self.claimed


# A member, its due time and its payload, three by three.
ParkArg = str | int | bytes


class NotReplicated(RedisError):
    """A park the primary took but too few replicas confirmed in time: read the batch again."""


class DelayQueue:
    """`replicas`: how many replicas must confirm each park (0: the primary's answer is enough),
    waiting at most `replica_wait_ms` for them."""

    def __init__(
        self,
        client: RedisClient,
        redis_key_prefix: str,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        self._redis = client
        self._keys = RetryKeys(redis_key_prefix)
        self._replicas = replicas
        self._replica_wait_ms = replica_wait_ms
        self._park = client.register_script(PARK)
        self._claim = client.register_script(CLAIM)

    def _slot_keys(self, topic: str) -> list[str]:
        return [self._keys.delayed(topic), self._keys.claimed(topic), self._keys.payloads(topic)]

    async def park(self, messages: Sequence[Parked]) -> int:
        """Park the messages; returns how many were new (the rest were parked before)."""
        by_topic: dict[str, list[Parked]] = defaultdict(list)
        for message in messages:
            by_topic[message.topic].append(message)
        if not by_topic:
            return 0
        # Registered first, so a backlog is never invisible to the operator or the workers.
        await self._redis.sadd(self._keys.topics, *by_topic)
        added = 0
        for topic, parked in by_topic.items():
            args: list[ParkArg] = [
                part for m in parked for part in (m.member, m.due_at_ms, m.dumps())
            ]
            keys = self._slot_keys(topic)
            if self._replicas:
                added += await self._park_on_replicas(keys, args)
            else:
                added += int(await self._park(keys=keys, args=args))
        return added

    async def _park_on_replicas(self, keys: list[str], args: list[ParkArg]) -> int:
        """The script and a WAIT in one pipeline, so both go down one connection to the slot's
        primary: WAIT counts the replicas that have that connection's writes. On a cluster any
        redirection (a failover, a moved slot) fails the park instead of being followed, since a
        WAIT that followed it on another connection would confirm nothing."""
        wait = ("WAIT", self._replicas, self._replica_wait_ms)
        if isinstance(self._redis, RedisCluster):
            # A keyed read first: the client follows a MOVED and learns the slot's owner.
            await self._redis.exists(keys[0])
            primary = self._redis.get_node_from_key(keys[0])
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.eval(PARK, len(keys), *keys, *args)
                    pipe.execute_command(*wait, target_nodes=primary)
                    added, confirmed = await pipe.execute(allow_redirections=False)
            except RedisClusterException as exc:
                raise NotReplicated(f"parking on {keys[0]} failed: {exc}") from exc
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.eval(PARK, len(keys), *keys, *args)
                pipe.execute_command(*wait)
                added, confirmed = await pipe.execute()
        if int(confirmed) < self._replicas:
            raise NotReplicated(
                f"{confirmed} of {self._replicas} replicas confirmed the park on {keys[0]} "
                f"within {self._replica_wait_ms} ms"
            )
        return int(added)

    async def claim(self, topic: str, now_ms: int, lease_ms: int, limit: int) -> list[Parked]:
        """Due messages of `topic`, now leased to the caller until `now_ms + lease_ms`."""
        flat = await self._claim(keys=self._slot_keys(topic), args=[now_ms, lease_ms, limit])
        return [Parked.loads(payload) for payload in flat[1::2]]

    async def ack(self, topic: str, members: Sequence[str]) -> None:
        """Forget messages the broker acknowledged."""
        if not members:
            return
        delayed, claimed, payloads = self._slot_keys(topic)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(claimed, *members)
            # A lease that expired while sending may have put the member back in `delayed`.
            pipe.zrem(delayed, *members)
            pipe.hdel(payloads, *members)
            await pipe.execute()

    async def topics(self) -> list[str]:
        return sorted(_text(t) for t in await self._redis.smembers(self._keys.topics))

    async def backlog(self, now_ms: int) -> dict[str, TopicBacklog]:
        topics = await self.topics()
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.zcard(self._keys.delayed(topic))
                pipe.zcount(self._keys.delayed(topic), "-inf", now_ms)
                pipe.zcard(self._keys.claimed(topic))
            counts = await pipe.execute()
        result = {}
        for i, topic in enumerate(topics):
            delayed, due, claimed = counts[3 * i : 3 * i + 3]
            result[topic] = TopicBacklog(waiting=delayed - due, due=due, claimed=claimed)
        return result


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
