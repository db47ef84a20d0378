-- put_train.lua: create a train, or reset one (clearing its sales, holds and
-- per-user counts), for PUT /trains/{id} and the default train at start-up.
--
-- One train, one member of 3 fields: capacity, '1' to reset an existing
-- train ('0' to leave it alone), its stations (a JSON array of 2 or more
-- names, checked by the service; '' for none: one leg, `stock` alone)
-- Reply {status, n}: 201 created, 200 reset, 409 exists (and no reset asked:
-- nothing written), 429 lock held by someone else (n = ms until it frees).

local ts, t, m = one(3)
if not m or not string.match(m[1], '^%d+$') then
  return redis.error_reply('ERR put_train.lua: bad arguments')
end
local capacity, reset = m[1], m[2] == '1'
local stations = nil
if m[3] ~= '' then
  local ok, decoded = pcall(cjson.decode, m[3])
  if not ok or type(decoded) ~= 'table' or #decoded < 2 then
    return redis.error_reply('ERR put_train.lua: bad stations')
  end
  stations = decoded
end

local exists = redis.call('EXISTS', t.stock) == 1
if exists and not reset then return {409, 0} end

local left = lock(t)
if left then return {429, left} end
-- Everything but the lock and the idempotency records: a reset train has no
-- history, and a stored answer for it would only replay.
redis.call('DEL', t.sold, t.held_key, t.reservations, t.holds, t.expiry, t.users, t.ended, t.legs)
redis.call('MSET', t.stock, capacity, t.capacity, capacity)
if stations then
  local free, zero = {}, {}
  for k = 1, #stations - 1 do free[k], zero[k] = capacity, '0' end
  redis.call('SET', t.legs, '{"stations":' .. m[3] .. ',"free":[' .. table.concat(free, ',') ..
    '],"sold":[' .. table.concat(zero, ',') .. '],"held":[' .. table.concat(zero, ',') .. ']}')
end
unlock(ts)
return {exists and 200 or 201, 0}
