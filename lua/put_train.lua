-- put_train.lua: create a train, or reset one (clearing its sales, holds and
-- per-user counts), for PUT /trains/{id} and the default train at start-up.
--
-- ARGV[5] capacity   ARGV[6] '1' to reset an existing train, '0' to leave it alone
-- Reply {status, n}: 201 created, 200 reset, 409 exists (and no reset asked:
-- nothing written), 429 lock held by someone else (n = ms until it frees).

local args = members(2)
if not args or #args ~= 1 or not string.match(args[1][1], '^%d+$') then
  return redis.error_reply('ERR put_train.lua: bad arguments')
end
local capacity, reset = args[1][1], args[1][2] == '1'

local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists and not reset then return {409, 0} end

local left = lock()
if left then return {429, left} end
-- Everything but the lock and the idempotency records: a reset train has no
-- history, and a stored answer for it would only replay.
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
redis.call('SET', KEYS[1], capacity)
redis.call('SET', KEYS[2], capacity)
unlock()
return {exists and 200 or 201, 0}
