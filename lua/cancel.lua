-- cancel.lua: cancel a reservation (seats back to stock, out of `sold`),
-- for DELETE /trains/{id}/reservations/{reservation_id}. Its id is
-- remembered in `ended` so that a re-sent reserve.lua or confirm.lua call
-- can never bring it back.
--
-- One train, one member of 2 fields: reservation id, caller ('' = anyone
-- who knows the id, or an admin; else the JSON string of the user who must
-- own the reservation)
-- Reply {status, n, seats}: 200 cancelled, n = seats left; 403 another
-- user's; 404 no such reservation (also a second cancel; n = -1: no such
-- train); 429 locked, n = ms until it frees

local ts, t, m = one(2)
if not m or #m[1] == 0 or not valid_user(m[2]) then
  return redis.error_reply('ERR cancel.lua: bad arguments')
end
local id, caller = m[1], m[2]

counters(ts)
if not t.exists then return {404, -1, 0} end
local left = lock(t)
if left then return {429, left, 0} end
reclaim(t)

local status, seats = 404, 0
local rec = redis.call('HGET', t.reservations, id)
if rec then
  local user, _, a, b
  user, seats, _, a, b = parse(rec)
  if caller ~= '' and user ~= caller then
    status, seats = 403, 0
  else
    status = 200
    redis.call('HDEL', t.reservations, id)
    local got = placed(rec)
    if got then S.give_back(t, got, a, b) end
    move(t, a, b, seats, 'sold', 'free')
    charge(t, user, -seats)
    remember(t, {forget_ended(), 'cancelled:' .. id})
  end
end
finish(ts)
return {status, status == 200 and t.stock_n or 0, seats}
