-- get_hold.lua: one hold as its holder sees it, for GET
-- /trains/{id}/holds/{hold_id}. Read-only; needs the clock, hence a script.
--
-- KEYS[1] holds   KEYS[2] ended   ARGV[1] hold id
-- Reply {status, record}: 200 and the hold's JSON record while it is live;
-- 410 once it has expired (reclaimed or not); 404 otherwise (never existed,
-- released, or confirmed).

local rec = redis.call('HGET', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if rec then
  local expires = tonumber(string.match(rec, '"expires_at_ms":(%d+)')) or 0
  return {expires > now and 200 or 410, rec}
end
if redis.call('ZSCORE', KEYS[2], 'expired:' .. ARGV[1]) then return {410, ''} end
return {404, ''}
