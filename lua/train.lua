-- train.lua: one consistent snapshot of a train, for GET /trains/{id} and
-- /readyz. Read-only: it works while an operator holds the lock, and costs
-- no write or fsync. Holds that have expired but are not reclaimed yet are
-- counted back into stock here (computed, not written), so an expired hold
-- never shows in `held`, whether or not anything touched the train since.
--
-- KEYS[1] stock  KEYS[2] capacity  KEYS[3] sold  KEYS[4] held  KEYS[5] lock
-- KEYS[6] holds  KEYS[7] hold_expiry
-- Reply {stock, capacity, sold, held, lock pttl}: the first four are the raw
-- values (nil when missing; a train exists when its stock does) with expired
-- holds' seats moved from held to stock; PTTL -2 no lock, -1 no expiry.

local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
v[5] = redis.call('PTTL', KEYS[5])
if not v[1] then return v end
local t = redis.call('TIME')
local ids = redis.call('ZRANGE', KEYS[7], '-inf', t[1] * 1000 + math.floor(t[2] / 1000), 'BYSCORE')
if #ids == 0 then return v end
local expired = 0
for _, rec in ipairs(redis.call('HMGET', KEYS[6], unpack(ids))) do
  if rec then expired = expired + (tonumber(string.match(rec, '"seats":(%d+)')) or 0) end
end
local stock, held = tonumber(v[1]), tonumber(v[4] or '0')
if stock and held then
  v[1], v[4] = tostring(stock + expired), tostring(held - expired)
end
return v
