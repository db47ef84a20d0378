-- put_train.lua: create a train, or reset one (clearing its sales, holds and
-- per-user counts), for PUT /trains/{id} and the default train at start-up.
--
-- One train, one member of 2 fields: capacity, '1' to reset an existing
-- train ('0' to leave it alone)
-- Reply {status, n}: 201 created, 200 reset, 409 exists (and no reset asked:
-- nothing written), 429 lock held by someone else (n = ms until it frees).

local ts, t, m = one(2)
if not m or not string.match(m[1], '^%d+$') then
  return redis.error_reply('ERR put_train.lua: bad arguments')
end
local capacity, reset = m[1], m[2] == '1'

local exists = redis.call('EXISTS', t.stock) == 1
if exists and not reset then return {409, 0} end

local left = lock(t)
if left then return {429, left} end
-- Everything but the lock and the idempotency records: a reset train has no
-- history, and a stored answer for it would only replay.
redis.call('DEL', t.sold, t.held_key, t.reservations, t.holds, t.expiry, t.users, t.ended)
redis.call('MSET', t.stock, capacity, t.capacity, capacity)
unlock(ts)
return {exists and 200 or 201, 0}
