-- train.lua: one consistent snapshot of a train, for GET /trains/{id},
-- GET /trains/{id}/seats and /readyz. Read-only: it works while an operator
-- holds the lock, and costs no write or fsync. Holds that have expired but
-- are not reclaimed yet are counted back into stock here (computed, not
-- written), so an expired hold never shows in `held`, whether or not
-- anything touched the train since; on a train with stations, into the free
-- seats of exactly their legs. On a numbered train the service works out
-- each seat's state from the free runs and the holds sent along.
--
-- KEYS[1] stock  KEYS[2] capacity  KEYS[3] sold  KEYS[4] held  KEYS[5] lock
-- KEYS[6] holds  KEYS[7] hold_expiry  KEYS[8] legs  KEYS[9] seats
-- KEYS[10] coaches
-- Reply {stock, capacity, sold, held, lock pttl, stations, legs, coaches,
-- runs, holds, now}: the first four are the raw values (nil when missing; a
-- train exists when its stock does) with expired holds' seats moved from
-- held to stock; PTTL -2 no lock, -1 no expiry; stations a JSON array (nil
-- when none); legs per leg free, sold, held; on a numbered train (else nil
-- and empty): its coaches as created, its free runs (`seats`: member,
-- score, ...) and its holds' records, expired or not, then the time in ms.

local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[8])
local raw = v[5]
v[5] = redis.call('PTTL', KEYS[5])
v[6], v[7], v[8], v[9], v[10], v[11] = false, {}, false, {}, {}, 0
if not v[1] then return v end
local legs = v[7]
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if not ok or type(decoded) ~= 'table' or type(decoded.stations) ~= 'table' then
    return redis.error_reply('ERR train.lua: unreadable legs')
  end
  if #decoded.stations >= 2 then v[6] = cjson.encode(decoded.stations) end
  for k = 1, #decoded.stations - 1 do
    legs[3 * k - 2], legs[3 * k - 1], legs[3 * k] =
      tonumber(decoded.free[k]) or 0, tonumber(decoded.sold[k]) or 0, tonumber(decoded.held[k]) or 0
  end
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
v[11] = now
local ids = redis.call('ZRANGE', KEYS[7], '-inf', now, 'BYSCORE')
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
v[8] = redis.call('GET', KEYS[10])
if v[8] then
  v[9] = redis.call('ZRANGE', KEYS[9], 0, -1, 'WITHSCORES')
  v[10] = redis.call('HVALS', KEYS[6])
end
return v
