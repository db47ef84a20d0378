-- reserve.lua: book seats on one train, atomically. The whole decision is here,
-- so no two reservations ever interleave and none can oversell.
--
-- KEYS[1] stock   KEYS[2] sold   KEYS[3] lock   KEYS[4] reservations
-- KEYS[5] idempotency record (optional)
-- ARGV[1] reservation id, a fresh UUID from the service; also the lock token
-- ARGV[2] lock PX in ms   ARGV[3] seats (1..10)   ARGV[4] user id ('' = none)
-- ARGV[5] request fingerprint, ARGV[6] record PX in ms (both only with KEYS[5])
--
-- Reply {status, reservation id, n, replayed}: the HTTP status decided here.
--   200 booked, n = seats left     400 sold out, n = seats left
--   429 lock held by someone else, n = ms until it frees (nothing written)
--   404 no such train              422 idempotency key reused for another request
--   replayed = 1 when the answer is a stored decision of an earlier request.
--
-- Every read and check comes before the first write: Redis does not roll back.
-- Running the same call twice (a client library's retry) books once: the
-- reservation id is recorded, and found again.

local id, ttl, seats, user = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if #id == 0 or not ttl or ttl < 1 or not seats or seats < 1 or seats > 10 or seats % 1 ~= 0 then
  return redis.error_reply('ERR reserve.lua: bad arguments')
end

local idem = KEYS[5]
if idem then
  local stored = redis.call('GET', idem)
  if stored then
    local rec = cjson.decode(stored)
    if rec.fp ~= ARGV[5] then return {422, id, 0, 0} end
    -- The same id is this very request, re-sent after a reconnect: not a replay.
    return {rec.status, rec.id, rec.n, rec.id == id and 0 or 1}
  end
end

local function int(v) return v and string.match(v, '^%-?%d+$') and tonumber(v) end
local raw = redis.call('GET', KEYS[1])
if not raw then return {404, id, 0, 0} end
local stock, sold = int(raw), int(redis.call('GET', KEYS[2]) or '0')
if not stock or not sold then
  return redis.error_reply('ERR reserve.lua: stock or sold is not an integer')
end
if redis.call('HEXISTS', KEYS[4], id) == 1 then return {200, id, stock, 0} end

if not redis.call('SET', KEYS[3], id, 'NX', 'PX', ttl) then
  local left = redis.call('PTTL', KEYS[3])
  return {429, id, left > 0 and left or ttl, 0}
end

local status, n = 400, stock
if stock >= seats then
  status, n = 200, stock - seats
  redis.call('DECRBY', KEYS[1], seats)
  redis.call('INCRBY', KEYS[2], seats)
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[4], id, cjson.encode({
    user_id = user ~= '' and user or cjson.null,
    seats = seats,
    created_at_ms = t[1] * 1000 + math.floor(t[2] / 1000),
  }))
end
if idem then
  redis.call('SET', idem, cjson.encode({status = status, id = id, n = n, fp = ARGV[5]}), 'PX', ARGV[6])
end
if redis.call('GET', KEYS[3]) == id then redis.call('DEL', KEYS[3]) end
return {status, id, n, 0}
