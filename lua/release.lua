-- release.lua: give a live hold's seats back to stock (the buyer gave up),
-- for DELETE /trains/{id}/holds/{hold_id}. Only the hold's user may.
--
-- One train, one member of 2 fields: hold id, caller ('' = anyone who knows
-- the id, else the JSON string of the user who must own the hold)
-- Reply {status, n, seats}: 200 released, n = seats left; 403 another user's;
-- 404 no such hold (also a second release; n = -1: no such train);
-- 409 already confirmed; 410 expired; 429 locked, n = ms until it frees

local ts, t, m = one(2)
if not m or #m[1] == 0 or not valid_user(m[2]) then
  return redis.error_reply('ERR release.lua: bad arguments')
end
local id, caller = m[1], m[2]

counters(ts)
if not t.exists then return {404, -1, 0} end
local left = lock(t)
if left then return {429, left, 0} end
reclaim(t)

local function answer(status, seats)
  finish(ts)
  return {status, status == 200 and t.stock_n or 0, seats}
end
local rec = redis.call('HGET', t.holds, id)
if not rec then
  if redis.call('HEXISTS', t.reservations, id) == 1 then return answer(409, 0) end
  if redis.call('ZSCORE', t.ended, 'expired:' .. id) then return answer(410, 0) end
  return answer(404, 0)
end
local user, seats, expires, a, b = parse(rec)
if caller ~= '' and user ~= caller then return answer(403, 0) end
if expires <= now() then return answer(410, 0) end

redis.call('HDEL', t.holds, id)
redis.call('ZREM', t.expiry, id)
local got = placed(rec)
if got then S.give_back(t, got, a, b) end
move(t, a, b, seats, 'held', 'free')
charge(t, user, -seats)
remember(t, {forget_ended(), 'released:' .. id})
return answer(200, seats)
