-- put_train.lua: create a train, or reset one (clearing its sales), for
-- PUT /trains/{id} and the default train at start-up.
--
-- KEYS[1] stock   KEYS[2] capacity   KEYS[3] lock   KEYS[4] sold   KEYS[5] reservations
-- ARGV[1] lock token (fresh UUID)   ARGV[2] lock PX in ms   ARGV[3] capacity
-- ARGV[4] '1' to reset an existing train, '0' to leave it alone
--
-- Reply {status, n}: 201 created, 200 reset, 409 exists (and no reset asked:
-- nothing written), 429 lock held by someone else (n = ms until it frees).

local ttl, capacity = tonumber(ARGV[2]), ARGV[3]
if #ARGV[1] == 0 or not ttl or ttl < 1 or not string.match(capacity, '^%d+$') then
  return redis.error_reply('ERR put_train.lua: bad arguments')
end

local exists = redis.call('EXISTS', KEYS[1]) == 1
if exists and ARGV[4] ~= '1' then return {409, 0} end

if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ttl) then
  local left = redis.call('PTTL', KEYS[3])
  return {429, left > 0 and left or ttl}
end
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('SET', KEYS[1], capacity)
redis.call('SET', KEYS[2], capacity)
-- Our own lock still holds ARGV[1]: a script runs alone and no key expires
-- while it runs, so compare-and-delete is a plain DEL here (as in reserve.lua).
redis.call('DEL', KEYS[3])
return {exists and 200 or 201, 0}
