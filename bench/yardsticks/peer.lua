-- The peer's script (../shared/peers/axum/reserve.lua) with the lock and the
-- stock at the KEYS positions of a call to lua/reserve.lua, so that
-- bench/lua_cost.py can send it the very same call: what the peer's design
-- costs inside Redis given our arguments.
-- KEYS[5] lock, KEYS[1] stock; ARGV[1] token, ARGV[2] lock PX in ms.
if not redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {429, redis.call('PTTL', KEYS[5])}
end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local code = 400
if left > 0 then left = redis.call('DECR', KEYS[1]); code = 200 end
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
return {code, left}
