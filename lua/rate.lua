-- rate.lua: RATE_LIMIT_PER_CLIENT, for one or more requests of one or more
-- clients (group commit, as reserve.lua: requests that queue up while a call
-- is in flight go together). Decided before any script that could change a
-- train, by the generic cell rate algorithm (GCRA): one number per client,
-- the "theoretical arrival time" (TAT) of its next request, and no timer.
--
-- A request is allowed when max(TAT, now) + interval - now <= burst *
-- interval; then TAT moves on by one interval. So a client makes RATE
-- requests a second, in bursts of up to BURST after a pause. A client's key
-- expires when its TAT is past (its bucket full again): an idle client costs
-- nothing, and the key never needs trimming.
--
-- The service leases a client's allowance in chunks (src/rate_limit.rs):
-- a member asks for up to `want` requests and gets as many as the bucket
-- allows now, each counted as made.
--
-- KEYS: one per client in the call (`PREFIX:rate:{CLIENT}`).
-- ARGV: 1 interval between requests, in microseconds (1e6 / RATE)
--   2 burst (requests allowed at once, 2 x RATE)
--   then two per member, in arrival order: the KEYS index of its client,
--   and how many requests it asks for (1 or more).
-- Reply, two per member: requests granted (0 = none), and when none, ms
-- until one would be (at least 1; else 0).

local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
if not interval or interval <= 0 or not burst or burst < 1 or #ARGV < 4 or #ARGV % 2 ~= 0 then
  return redis.error_reply('ERR rate.lua: bad arguments')
end
for i = 3, #ARGV, 2 do
  local k, want = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if not k or k < 1 or k > #KEYS or k % 1 ~= 0 or not want or want < 1 or want % 1 ~= 0 then
    return redis.error_reply('ERR rate.lua: bad member ' .. i)
  end
end

local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local tolerance = burst * interval

-- Each client's TAT, read once; the changed ones written once.
local tats, changed = redis.call('MGET', unpack(KEYS)), {}
for k = 1, #KEYS do tats[k] = math.max(tonumber(tats[k]) or now, now) end

local out = {}
for i = 3, #ARGV, 2 do
  local k, want = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  -- Requests that fit before the TAT runs past the tolerance.
  local room = math.floor((now + tolerance - tats[k]) / interval)
  local granted = math.max(0, math.min(want, room))
  if granted > 0 then
    tats[k], changed[k] = tats[k] + granted * interval, true
    out[#out + 1] = granted; out[#out + 1] = 0
  else
    out[#out + 1] = 0
    out[#out + 1] = math.max(1, math.ceil((tats[k] + interval - now - tolerance) / 1000))
  end
end

for k in pairs(changed) do
  -- Kept until the TAT is past: then a missing key means the same (now).
  redis.call('SET', KEYS[k], string.format('%d', tats[k]), 'PX', math.ceil((tats[k] - now) / 1000))
end
return out
