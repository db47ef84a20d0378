-- prelude.lua: what every script that changes a train shares. The service
-- sends it in front of each script's own text (src/store/scripts.rs), so each
-- script stays one self-contained EVALSHA while the lock, the clock, the hold
-- expiry and the per-user count are written once.
--
-- KEYS (the same for every train script; all in the train's hash-tag slot):
--   1 stock  2 capacity  3 sold  4 held  5 lock  6 reservations  7 holds
--   8 hold_expiry  9 users  10 ended  11.. idempotency records named by members
-- ARGV (the same first four): 1 lock token (a fresh UUID)  2 lock PX in ms
--   3 memory in ms (idempotency records and ended ids are kept this long)
--   4 seats one user may have on the train (0 = no limit)   5.. the members
--
-- `ended` is a sorted set of ids that ended, scored by when: `expired:ID` (a
-- hold's seats went back by expiry: 410 for 24 h), `released:ID` and
-- `cancelled:ID` (a re-sent call must never bring them back). Trimmed here.

local TOKEN, LOCK_TTL = ARGV[1], tonumber(ARGV[2])
local MEMORY, LIMIT = tonumber(ARGV[3]), tonumber(ARGV[4])
if #KEYS < 10 or #TOKEN == 0 or not LOCK_TTL or LOCK_TTL < 1 or not MEMORY
    or MEMORY < 1 or not LIMIT or LIMIT < 0 then
  return redis.error_reply('ERR train script: bad common arguments')
end
-- Reclaimed per call: more than one call can create (64), so a train in use
-- never builds up a backlog of expired holds.
local RECLAIM = 128

local function int(v) return v and string.match(v, '^%-?%d+$') and tonumber(v) end

-- Splits ARGV[5..] into members of `width` fields each; nil when it does not divide.
local function members(width)
  local n = (#ARGV - 4) / width
  if n < 1 or n % 1 ~= 0 then return nil end
  local out = {}
  for i = 1, n do
    local m = {}
    for f = 1, width do m[f] = ARGV[4 + (i - 1) * width + f] end
    out[i] = m
  end
  return out
end

-- A user argument: '' (anonymous) or a JSON string literal ("...").
local function valid_user(u) return u == '' or string.match(u, '^".*"$') ~= nil end

-- stock, sold, held as numbers; nil when the train does not exist. Raises
-- (before any write) when an operator stored something that is not an integer.
local function counters()
  local v = redis.call('MGET', KEYS[1], KEYS[3], KEYS[4])
  if not v[1] then return nil end
  local stock, sold, held = int(v[1]), int(v[2] or '0'), int(v[3] or '0')
  if not (stock and sold and held) then
    error('stock, sold or held of this train is not an integer')
  end
  return stock, sold, held
end

local clock
local function now()
  if not clock then
    local t = redis.call('TIME')
    clock = t[1] * 1000 + math.floor(t[2] / 1000)
  end
  return clock
end

-- Takes the train's lock: nil when ours, else ms until the other holder's frees.
local function lock()
  if redis.call('SET', KEYS[5], TOKEN, 'NX', 'PX', LOCK_TTL) then return nil end
  local left = redis.call('PTTL', KEYS[5])
  return left > 0 and left or LOCK_TTL
end

-- Compare-and-delete, as the design card says: only our own token is deleted.
local function unlock()
  if redis.call('GET', KEYS[5]) == TOKEN then redis.call('DEL', KEYS[5]) end
end

-- Seats per user on this train (`users`, keyed by the plain user id; users
-- arrive here as JSON literals). Changes add up in memory and are written
-- once per user by flush_users; the stored count is read only when the
-- per-user limit needs it.
local stored_seats, changed = {}, {}
local function seats_of(user)
  if stored_seats[user] == nil then
    stored_seats[user] = tonumber(redis.call('HGET', KEYS[9], cjson.decode(user)) or '0')
  end
  return stored_seats[user] + (changed[user] or 0)
end
local function charge(user, seats)
  if user ~= '' then changed[user] = (changed[user] or 0) + seats end
end
local function flush_users()
  for user, delta in pairs(changed) do
    local name = cjson.decode(user)
    if delta > 0 then
      redis.call('HINCRBY', KEYS[9], name, delta)
    elseif delta < 0 and redis.call('HINCRBY', KEYS[9], name, delta) <= 0 then
      redis.call('HDEL', KEYS[9], name)
    end
  end
  changed = {}
end

-- A hold or reservation record: user ('' when anonymous, else its JSON
-- literal), seats, and expires_at_ms (holds) or created_at_ms.
local function parse(rec)
  local user, seats, at = string.match(rec, '^{"user_id":(.-),"seats":(%d+),"[a-z_]+":(%d+)}$')
  if not user then error('unreadable record ' .. rec) end
  return (user == 'null' and '' or user), tonumber(seats), tonumber(at)
end
local function record(user, seats, field, at)
  return '{"user_id":' .. (user == '' and 'null' or user) .. ',"seats":' .. seats ..
    ',"' .. field .. '":' .. at .. '}'
end

-- Remembers that ids ended (`ended`: {score, member, ...}) and forgets those
-- that ended over MEMORY ago: trimmed when it grows, so it never only grows.
local function remember(ended)
  redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', now() - MEMORY)
  redis.call('ZADD', KEYS[10], unpack(ended))
end

-- Gives back the seats of up to RECLAIM holds that have expired, oldest first,
-- and remembers their ids as expired. Returns the seats given back. Call only
-- while holding the lock, with the train's `held` (none held: nothing to do,
-- and no call spent looking).
local function reclaim(held)
  if held <= 0 then return 0 end
  local ids = redis.call('ZRANGE', KEYS[8], '-inf', now(), 'BYSCORE', 'LIMIT', 0, RECLAIM)
  if #ids == 0 then return 0 end
  local recs = redis.call('HMGET', KEYS[7], unpack(ids))
  local seats, ended = 0, {}
  for i, id in ipairs(ids) do
    if recs[i] then
      local user, n, expires = parse(recs[i])
      seats = seats + n
      charge(user, -n)
      ended[#ended + 1] = expires; ended[#ended + 1] = 'expired:' .. id
    end
  end
  redis.call('HDEL', KEYS[7], unpack(ids))
  redis.call('ZREM', KEYS[8], unpack(ids))
  if seats > 0 then
    redis.call('INCRBY', KEYS[1], seats)
    redis.call('DECRBY', KEYS[4], seats)
  end
  if #ended > 0 then remember(ended) end
  return seats
end

-- The stored answer of an Idempotency-Key (KEYS[k]), decoded; nil when none.
local function stored(k)
  local raw = redis.call('GET', KEYS[k])
  return raw and cjson.decode(raw)
end

-- === the script's own part follows ===
