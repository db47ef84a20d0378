-- release.lua: give a live hold's seats back to stock (the buyer gave up),
-- for DELETE /trains/{id}/holds/{hold_id}. Only the hold's user may.
--
-- ARGV[5] hold id   ARGV[6] caller ('' = anyone who knows the id, else the
-- JSON string of the user who must own the hold)
-- Reply {status, n, seats}: 200 released, n = seats left; 403 another user's;
-- 404 no such hold (also a second release; n = -1: no such train);
-- 409 already confirmed; 410 expired; 429 locked, n = ms until it frees

local reqs = members(2)
if not reqs or #reqs ~= 1 or #reqs[1][1] == 0 or not valid_user(reqs[1][2]) then
  return redis.error_reply('ERR release.lua: bad arguments')
end
local id, caller = reqs[1][1], reqs[1][2]

local stock, _, held = counters()
if not stock then return {404, -1, 0} end
local left = lock()
if left then return {429, left, 0} end
stock = stock + reclaim(held)

local function finish(status, n, seats)
  flush_users()
  unlock()
  return {status, n, seats}
end
local rec = redis.call('HGET', KEYS[7], id)
if not rec then
  if redis.call('HEXISTS', KEYS[6], id) == 1 then return finish(409, 0, 0) end
  if redis.call('ZSCORE', KEYS[10], 'expired:' .. id) then return finish(410, 0, 0) end
  return finish(404, 0, 0)
end
local user, seats, expires = parse(rec)
if caller ~= '' and user ~= caller then return finish(403, 0, 0) end
if expires <= now() then return finish(410, 0, 0) end

redis.call('HDEL', KEYS[7], id)
redis.call('ZREM', KEYS[8], id)
redis.call('DECRBY', KEYS[4], seats)
stock = redis.call('INCRBY', KEYS[1], seats)
charge(user, -seats)
remember({now(), 'released:' .. id})
return finish(200, stock, seats)
