-- The least one plain booking asks of Redis under the contract, with none of
-- the rest: the counters read, the call's key (retry safety), the lock taken,
-- the clock, the record, the counters written, the lock compared and
-- deleted. No argument checks, no prelude, one train of one request, no
-- idempotency record, no holds, no per-user limit. Not a script to run a
-- service on: a yardstick for bench/lua_cost.py, to tell what the contract's
-- commands cost from what lua/reserve.lua adds around them.
-- KEYS and ARGV as a call to lua/reserve.lua with one train and one request:
-- KEYS[1] stock, [3] sold, [4] held, [5] lock, [6] reservations, [11] legs,
-- [14] the call's key; ARGV[1] token, [2] lock PX, [5] call key PX, [9] the
-- reservation id, [10] seats.
local v = redis.call('MGET', KEYS[1], KEYS[3], KEYS[4], KEYS[11])
redis.call('SET', KEYS[14], '1', 'NX', 'PX', ARGV[5])
if not redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[2]) then return {429} end
local stock, sold = tonumber(v[1]) - ARGV[10], tonumber(v[2] or '0') + ARGV[10]
local t = redis.call('TIME')
redis.call('HSET', KEYS[6], ARGV[9], '{"user_id":null,"seats":' .. ARGV[10] .. ',"created_at_ms":' .. t[1] .. '}')
redis.call('MSET', KEYS[1], stock, KEYS[3], sold)
if redis.call('GETDEL', KEYS[5]) ~= ARGV[1] then return {500} end
return {200, ARGV[9], stock, 0, ''}
