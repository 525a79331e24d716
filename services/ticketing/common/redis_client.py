"""The one way a process opens Redis: one server, or a Redis Cluster, as its settings say.

`TICKETING_REDIS_URL` names the server, or with `TICKETING_REDIS_CLUSTER=true` any one node of
the cluster (the client learns the others, and where each hash slot lives, from it). Every key
of one sale, of one retry topic or of one consumer group's dedup carries a hash tag
(`ticketing.common.redis_keys`), so each Lua script and each MULTI touches one slot and runs on
one primary; the cluster refuses anything else (CROSSSLOT).
"""

from typing import TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from ticketing.common.settings import CommonSettings

RedisClient: TypeAlias = aioredis.Redis | RedisCluster

# What a Redis call raises when Redis cannot serve it. A cluster client also raises
# `RedisClusterException`, which redis-py does not derive from `RedisError`: when no node it
# knows answers while it (re)learns the cluster (a client whose first command meets its seed node
# killed), or when a failover exhausts its redirections. Caught as `RedisError` alone, it ended
# the retry consumer's process during a primary's failover (seen in a stress run).
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, RedisClusterException)

# Connections one process keeps to Redis (to each primary of a cluster).
REDIS_POOL_SIZE = 200
# How long a request waits for a free connection to a single server. A cluster client's pools do
# not wait: past the pool size a command fails at once (redis-py's MaxConnectionsError), a 503.
REDIS_POOL_WAIT_SECONDS = 5.0
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0
REDIS_HEALTH_CHECK_SECONDS = 30


def connect_redis(settings: CommonSettings) -> RedisClient:
    """A client that connects on first use, so an absent server fails readiness, not startup.

    A single server's pool blocks for a free connection (up to a few seconds) instead of failing at
    once: a burst of more requests than connections waits its turn rather than getting errors.
    """
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            max_connections=REDIS_POOL_SIZE,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
            health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_POOL_SIZE,
        timeout=REDIS_POOL_WAIT_SECONDS,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it
