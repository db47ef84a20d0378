-- hold.lua: hold seats on one train for one or more requests while their
-- buyers pay, atomically, in arrival order (group commit, as reserve.lua).
-- A hold's seats leave `stock` at once and count in `held` until it is
-- confirmed, released, or expires (reclaimed by any later call, prelude.lua).
--
-- ARGV[5..], 6 per request: hold id (a fresh UUID), seats (1..10), user (''
-- or a JSON string), ttl in ms (1000..900000), idempotency record (its index
-- in KEYS, 0 = none), request fingerprint
-- Reply, 5 per request: status, hold id, n, replayed, expires_at_ms
--   201 held, n = seats left         400 sold out, n = seats left
--   409 over the per-user limit, n = seats the user already has
--   429 locked, n = ms until it frees  404 no such train
--   410 this very hold was made and has expired since (a re-sent call)
--   422 idempotency key reused for another request
--
-- A re-sent call (same hold id) never holds twice: a live hold is found in
-- `holds`, a confirmed one in `reservations`, an ended one in `ended`.

local reqs = members(6)
if not reqs then return redis.error_reply('ERR hold.lua: bad arguments') end
for i, r in ipairs(reqs) do
  r.seats, r.ttl, r.idem = tonumber(r[2]), tonumber(r[4]), tonumber(r[5])
  if #r[1] == 0 or not r.seats or r.seats < 1 or r.seats > 10 or r.seats % 1 ~= 0
      or not valid_user(r[3]) or not r.ttl or r.ttl < 1000 or r.ttl > 900000 or r.ttl % 1 ~= 0
      or not r.idem or (r.idem ~= 0 and (r.idem < 11 or r.idem > #KEYS)) then
    return redis.error_reply('ERR hold.lua: bad arguments for request ' .. i)
  end
end

local out = {}
local function answer(status, id, n, replayed, expires)
  out[#out + 1] = status; out[#out + 1] = id; out[#out + 1] = n
  out[#out + 1] = replayed; out[#out + 1] = expires
end

local stock, sold, held = counters()
if not stock then
  for _, r in ipairs(reqs) do answer(404, r[1], 0, 0, 0) end
  return out
end
local records = {}
for k = 11, #KEYS do records[k] = stored(k) end
local ids, ended = {}, {}
for i, r in ipairs(reqs) do
  ids[i] = r[1]
  ended[3 * i - 2], ended[3 * i - 1], ended[3 * i] =
    'expired:' .. r[1], 'released:' .. r[1], 'cancelled:' .. r[1]
end
local live = redis.call('HMGET', KEYS[7], unpack(ids))
local confirmed = redis.call('HMGET', KEYS[6], unpack(ids))
local gone = redis.call('ZMSCORE', KEYS[10], unpack(ended))

local locked, lock_left = nil, 0
local taken, fields, expiry = 0, {}, {}
for i, r in ipairs(reqs) do
  local rec = r.idem > 0 and records[r.idem]
  if rec then
    if rec.fp ~= r[6] then answer(422, r[1], 0, 0, 0)
    else answer(rec.status, rec.id, rec.n, rec.id == r[1] and 0 or 1, rec.exp) end
  elseif live[i] then
    local _, _, expires = parse(live[i])
    answer(expires <= now() and 410 or 201, r[1], stock, 0, expires)
  elseif gone[3 * i - 2] then
    answer(410, r[1], 0, 0, tonumber(gone[3 * i - 2]))
  elseif confirmed[i] or gone[3 * i - 1] or gone[3 * i] then
    answer(201, r[1], stock, 0, 0)
  else
    if locked == nil then
      lock_left = lock()
      locked = lock_left ~= nil
      if not locked then
        local back = reclaim(held)
        stock, held = stock + back, held - back
      end
    end
    if locked then
      answer(429, r[1], lock_left, 0, 0)
    elseif LIMIT > 0 and r[3] ~= '' and seats_of(r[3]) + r.seats > LIMIT then
      answer(409, r[1], seats_of(r[3]), 0, 0)
    else
      local status, expires = 400, 0
      if stock >= r.seats then
        status, stock, taken = 201, stock - r.seats, taken + r.seats
        expires = now() + r.ttl
        charge(r[3], r.seats)
        fields[#fields + 1] = r[1]
        fields[#fields + 1] = record(r[3], r.seats, 'expires_at_ms', expires)
        expiry[#expiry + 1] = expires
        expiry[#expiry + 1] = r[1]
      end
      answer(status, r[1], stock, 0, expires)
      if r.idem > 0 then
        records[r.idem] = {status = status, id = r[1], n = stock, fp = r[6], exp = expires}
        redis.call('SET', KEYS[r.idem], cjson.encode(records[r.idem]), 'PX', MEMORY)
      end
    end
  end
end

if taken > 0 then
  redis.call('DECRBY', KEYS[1], taken)
  redis.call('INCRBY', KEYS[4], taken)
  redis.call('HSET', KEYS[7], unpack(fields))
  redis.call('ZADD', KEYS[8], unpack(expiry))
end
flush_users()
if locked == false then unlock() end
return out
