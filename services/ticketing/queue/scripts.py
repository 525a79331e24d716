"""The waiting room's Lua scripts: every change to a sale's line happens atomically inside Redis.

Times come from Redis `TIME`, never from the caller, so replicas with skewed clocks agree on
when a session expires, when a user went away and how many tokens the admission bucket holds.
"""

from ticketing.common.ratelimit import COUNT_REQUEST_LUA

_NOW = """
local function now_seconds()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

# Sealing the pre-queue reserves one ticket number per pre-queue user, right after the tickets
# handed out so far; from then on the pre-queue is frozen and newcomers queue behind it.
_SEAL = """
local function seal(seq, prequeue, fairness)
  if redis.call('HEXISTS', fairness, 'sealed_base') == 1 then return end
  local base = tonumber(redis.call('GET', seq) or '0')
  local count = redis.call('SCARD', prequeue)
  redis.call('INCRBY', seq, count)
  redis.call('HSET', fairness, 'sealed_base', base, 'sealed_count', count)
  if count == 0 then redis.call('HSET', fairness, 'assigned', 1) end
end
"""

# One user's join: `line` holds the sale's keys and times (see JOIN's KEYS and ARGV), `now` the
# Redis time. Returns {state, ticket}; state is admitted | waiting | prequeue | not_open |
# closed | none.
_JOIN_ONE = """
local function join_one(line, user, now, create)
  if redis.call('ZSCORE', line.active, user) then return {'admitted', '0'} end
  local ticket = redis.call('HGET', line.parked, user)
  if ticket then
    -- Back within the grace period after their turn came: they are next.
    redis.call('HDEL', line.parked, user)
    redis.call('ZADD', line.waiting, ticket, user)
    redis.call('ZADD', line.heartbeat, now, user)
    return {'waiting', ticket}
  end
  ticket = redis.call('ZSCORE', line.waiting, user)
  if ticket then
    redis.call('ZADD', line.heartbeat, now, user)
    return {'waiting', ticket}
  end
  local sealed = redis.call('HEXISTS', line.fairness, 'sealed_base') == 1
  local assigned = redis.call('HEXISTS', line.fairness, 'assigned') == 1
  if not assigned and redis.call('SISMEMBER', line.prequeue, user) == 1 then
    redis.call('ZADD', line.heartbeat, now, user)
    return {'prequeue', '0'}
  end
  if not create then return {'none', '0'} end
  if now < line.prequeue_opens then return {'not_open', '0'} end
  if now >= line.closes then return {'closed', '0'} end
  if now < line.opens and not sealed then
    redis.call('SADD', line.prequeue, user)
    redis.call('ZADD', line.heartbeat, now, user)
    return {'prequeue', '0'}
  end
  seal(line.seq, line.prequeue, line.fairness)
  ticket = redis.call('INCR', line.seq)
  redis.call('ZADD', line.waiting, ticket, user)
  redis.call('ZADD', line.heartbeat, now, user)
  return {'waiting', tostring(ticket)}
end

local function sale_line(prequeue_opens, opens, closes)
  return {
    waiting = KEYS[1], active = KEYS[2], seq = KEYS[3], prequeue = KEYS[4], fairness = KEYS[5],
    heartbeat = KEYS[6], parked = KEYS[7], prequeue_opens = tonumber(prequeue_opens),
    opens = tonumber(opens), closes = tonumber(closes)
  }
end
"""

# KEYS: waiting, active, seq, prequeue, fairness, heartbeat, parked
# ARGV: user, pre-queue opens (epoch s), sale opens, sale closes, create ('1' joins, '0' only looks)
# Returns {state, ticket} (see _JOIN_ONE).
JOIN = (
    _NOW
    + _SEAL
    + _JOIN_ONE
    + """
local line = sale_line(ARGV[2], ARGV[3], ARGV[4])
return join_one(line, ARGV[1], now_seconds(), ARGV[5] == '1')
"""
)

# Many joins of one sale in one round trip, each counted against a per-user rate limit first.
# KEYS: JOIN's seven, then each user's rate counter (in the order of the users).
# ARGV: pre-queue opens, sale opens, sale closes, rate limit, rate window (ms), then the users.
# Users are joined in the order given, so earlier callers get earlier tickets. Returns
# {state, ticket} per user, flattened; state 'limited' means refused by the rate limit, with the
# window's milliseconds left in place of the ticket.
JOIN_MANY = (
    _NOW
    + _SEAL
    + _JOIN_ONE
    + COUNT_REQUEST_LUA
    + """
local line = sale_line(ARGV[1], ARGV[2], ARGV[3])
local limit, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_seconds()
local results = {}
for i = 6, #ARGV do
  local left = count_request(KEYS[i + 2], limit, window_ms)
  local joined = left > 0 and {'limited', tostring(left)} or join_one(line, ARGV[i], now, true)
  results[#results + 1] = joined[1]
  results[#results + 1] = joined[2]
end
return results
"""
)

# KEYS: seq, prequeue, fairness. ARGV: sale opens (epoch s). Returns 1 once sealed.
SEAL = (
    _NOW
    + _SEAL
    + """
if now_seconds() < tonumber(ARGV[1]) then return 0 end
seal(KEYS[1], KEYS[2], KEYS[3])
return 1
"""
)

# KEYS: waiting, fairness. ARGV: the sealed pre-queue's users in their random order.
# Gives them the reserved tickets in that order and records the order for the audit.
ASSIGN = """
if redis.call('HEXISTS', KEYS[2], 'assigned') == 1 then return 0 end
local base = tonumber(redis.call('HGET', KEYS[2], 'sealed_base'))
if not base then return redis.error_reply('the pre-queue is not sealed') end
if #ARGV ~= tonumber(redis.call('HGET', KEYS[2], 'sealed_count')) then
  return redis.error_reply('the order does not cover the sealed pre-queue')
end
for i, user in ipairs(ARGV) do redis.call('ZADD', KEYS[1], 'NX', base + i, user) end
redis.call('HSET', KEYS[2], 'assigned', 1, 'order', table.concat(ARGV, '\\n'))
return #ARGV
"""

# KEYS: waiting, active, bucket, serving, heartbeat, parked, removed
# ARGV: tps, cap on active sessions, bucket size, session ttl (s), most per call,
#       seconds without a heartbeat after which a user counts as away, open ('1' or '0')
# One shared token bucket refilled from Redis TIME: any number of replicas calling this
# together admit at `tps`, not a multiple of it. Returns the admitted users.
ADMIT = (
    _NOW
    + """
local waiting, active, bucket, serving, heartbeat, parked, removed =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local now = now_seconds()
redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
local state = redis.call('HMGET', bucket, 'tokens', 'ts')
local tokens = tonumber(state[1]) or 0
local last = tonumber(state[2]) or now
tokens = math.min(tonumber(ARGV[3]), tokens + math.max(0, now - last) * tonumber(ARGV[1]))
-- A closed or paused sale saves no tokens, so resuming does not release a burst.
if ARGV[7] ~= '1' then tokens = 0 end
local room = tonumber(ARGV[2]) - redis.call('ZCARD', active)
local want = math.min(math.floor(tokens), room, tonumber(ARGV[5]))
local admitted = {}
local highest = nil
local away_before = now - tonumber(ARGV[6])
local expires = now + tonumber(ARGV[4])
while #admitted < want do
  local head = redis.call('ZPOPMIN', waiting, want - #admitted)
  if #head == 0 then break end
  for i = 1, #head, 2 do
    local user, ticket = head[i], head[i + 1]
    highest = ticket
    local seen = tonumber(redis.call('ZSCORE', heartbeat, user) or '0')
    if seen < away_before then
      -- Away when their turn came: keep the place for the grace period, spend no admission.
      redis.call('HSET', parked, user, ticket)
    else
      redis.call('ZADD', active, expires, user)
      redis.call('ZREM', heartbeat, user)
      admitted[#admitted + 1] = user
    end
  end
end
redis.call('HSET', bucket, 'tokens', tokens - #admitted, 'ts', now)
if highest then
  if tonumber(highest) > tonumber(redis.call('HGET', serving, 'cursor') or '0') then
    redis.call('HSET', serving, 'cursor', highest)
  end
  redis.call('ZREMRANGEBYSCORE', removed, '-inf', highest)
end
if #admitted > 0 then redis.call('HINCRBY', serving, 'admitted', #admitted) end
return admitted
"""
)

# KEYS: heartbeat, waiting, parked, prequeue, fairness, removed. ARGV: grace (s), most per call.
# Removes users not seen for the grace period; their tickets are recorded as removed so that
# everyone behind them moves up. Waits while a sealed pre-queue is being assigned.
SWEEP = (
    _NOW
    + """
local heartbeat, waiting, parked, prequeue, fairness, removed =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local f = redis.call('HMGET', fairness, 'sealed_base', 'assigned')
local sealed = f[1] ~= false
if sealed and not f[2] then return 0 end
local gone = redis.call('ZRANGEBYSCORE', heartbeat, '-inf', now_seconds() - tonumber(ARGV[1]),
  'LIMIT', 0, tonumber(ARGV[2]))
for _, user in ipairs(gone) do
  redis.call('ZREM', heartbeat, user)
  local ticket = redis.call('ZSCORE', waiting, user)
  if ticket then
    redis.call('ZREM', waiting, user)
    redis.call('ZADD', removed, ticket, ticket)
  end
  redis.call('HDEL', parked, user)
  if not sealed then redis.call('SREM', prequeue, user) end
end
return #gone
"""
)

# KEYS: heartbeat, waiting, parked, prequeue, fairness. ARGV: users connected right now.
# Refreshes their heartbeats and puts a parked user whose socket is open back at the front.
TOUCH = (
    _NOW
    + """
local heartbeat, waiting, parked, prequeue, fairness = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = now_seconds()
local assigned = redis.call('HEXISTS', fairness, 'assigned') == 1
for _, user in ipairs(ARGV) do
  local ticket = redis.call('HGET', parked, user)
  if ticket then
    redis.call('HDEL', parked, user)
    redis.call('ZADD', waiting, ticket, user)
  end
  if ticket or redis.call('ZSCORE', waiting, user)
     or (not assigned and redis.call('SISMEMBER', prequeue, user) == 1) then
    redis.call('ZADD', heartbeat, now, user)
  end
end
return 0
"""
)

# KEYS: heartbeat. ARGV: seconds, then users. Marks the users' last heartbeat that long ago (a
# closed socket counts as away at once; zero grace for someone who pressed "leave").
AWAY = (
    _NOW
    + """
local at = now_seconds() - tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', at, ARGV[i]) end
return 0
"""
)

# KEYS: seats. Returns {free, held, total}; seat values are free | held:<rid> | sold:<rid>.
SEAT_COUNTS = """
local free, held, total = 0, 0, 0
for _, state in ipairs(redis.call('HVALS', KEYS[1])) do
  total = total + 1
  if state == 'free' then free = free + 1
  elseif string.sub(state, 1, 5) == 'held:' then held = held + 1 end
end
return {free, held, total}
"""
