-- cancel.lua: cancel a reservation (seats back to stock, out of `sold`),
-- for DELETE /trains/{id}/reservations/{reservation_id}. Its id is
-- remembered in `ended` so that a re-sent reserve.lua or confirm.lua call
-- can never bring it back.
--
-- ARGV[5] reservation id   ARGV[6] caller ('' = anyone who knows the id, or
-- an admin; else the JSON string of the user who must own the reservation)
-- Reply {status, n, seats}: 200 cancelled, n = seats left; 403 another
-- user's; 404 no such reservation (also a second cancel; n = -1: no such
-- train); 429 locked, n = ms until it frees

local reqs = members(2)
if not reqs or #reqs ~= 1 or #reqs[1][1] == 0 or not valid_user(reqs[1][2]) then
  return redis.error_reply('ERR cancel.lua: bad arguments')
end
local id, caller = reqs[1][1], reqs[1][2]

local stock, _, held = counters()
if not stock then return {404, -1, 0} end
local left = lock()
if left then return {429, left, 0} end
stock = stock + reclaim(held)

local status, seats = 404, 0
local rec = redis.call('HGET', KEYS[6], id)
if rec then
  local user
  user, seats = parse(rec)
  if caller ~= '' and user ~= caller then
    status, seats = 403, 0
  else
    status = 200
    redis.call('HDEL', KEYS[6], id)
    redis.call('DECRBY', KEYS[3], seats)
    stock = redis.call('INCRBY', KEYS[1], seats)
    charge(user, -seats)
    remember({now(), 'cancelled:' .. id})
  end
end
flush_users()
unlock()
return {status, status == 200 and stock or 0, seats}
