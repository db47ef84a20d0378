-- train.lua: one consistent snapshot of a train, for GET /trains/{id} and
-- /readyz. Read-only: it works while an operator holds the lock, and costs
-- no write or fsync. Holds that have expired but are not reclaimed yet are
-- counted back into stock here (computed, not written), so an expired hold
-- never shows in `held`, whether or not anything touched the train since;
-- on a train with stations, into the free seats of exactly their legs.
--
-- KEYS[1] stock  KEYS[2] capacity  KEYS[3] sold  KEYS[4] held  KEYS[5] lock
-- KEYS[6] holds  KEYS[7] hold_expiry  KEYS[8] legs
-- Reply {stock, capacity, sold, held, lock pttl, stations, legs...}: the
-- first four are the raw values (nil when missing; a train exists when its
-- stock does) with expired holds' seats moved from held to stock; PTTL -2
-- no lock, -1 no expiry; stations a JSON array (nil when none), then per
-- leg free, sold, held.

local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[8])
local raw = v[5]
v[5] = redis.call('PTTL', KEYS[5])
v[6] = false
if not v[1] then return v end
local legs = {}
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if not ok or type(decoded) ~= 'table' or type(decoded.stations) ~= 'table' then
    return redis.error_reply('ERR train.lua: unreadable legs')
  end
  v[6] = cjson.encode(decoded.stations)
  for k = 1, #decoded.stations - 1 do
    legs[3 * k - 2], legs[3 * k - 1], legs[3 * k] =
      tonumber(decoded.free[k]) or 0, tonumber(decoded.sold[k]) or 0, tonumber(decoded.held[k]) or 0
  end
end
local t = redis.call('TIME')
local ids = redis.call('ZRANGE', KEYS[7], '-inf', t[1] * 1000 + math.floor(t[2] / 1000), 'BYSCORE')
local expired = 0
if #ids > 0 then
  for _, rec in ipairs(redis.call('HMGET', KEYS[6], unpack(ids))) do
    if rec then
      local seats = tonumber(string.match(rec, '"seats":(%d+)')) or 0
      expired = expired + seats
      local a, b = string.match(rec, '"stops":%[(%d+),(%d+)%],"[a-z_]+":%d+}$')
      if a and #legs > 0 then
        for k = tonumber(a), tonumber(b) - 1 do
          legs[3 * k + 1], legs[3 * k + 3] = legs[3 * k + 1] + seats, legs[3 * k + 3] - seats
        end
      end
    end
  end
end
local stock, held = tonumber(v[1]), tonumber(v[4] or '0')
if stock and held and expired > 0 then
  if #legs > 0 then
    -- The whole route's free seats: the fewest free on any leg.
    stock = legs[1]
    for k = 4, #legs, 3 do if legs[k] < stock then stock = legs[k] end end
    v[1] = tostring(stock)
  else
    v[1] = tostring(stock + expired)
  end
  v[4] = tostring(held - expired)
end
for i = 1, #legs do v[6 + i] = legs[i] end
return v
