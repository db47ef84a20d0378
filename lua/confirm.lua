-- confirm.lua: turn live holds into reservations (the buyer paid), for one
-- or more requests in arrival order (group commit, as reserve.lua). The seats
-- move from `held` to `sold`; the reservation keeps the hold's id and user.
--
-- ARGV[5..], 2 per request: hold id, caller ('' = anyone who knows the id,
-- else the JSON string of the user who must own the hold)
-- Reply, 4 per request: status, n, replayed, seats
--   200 confirmed, n = seats left (replayed = 1: it was confirmed before)
--   403 another user's hold          404 no such hold (never, released, cancelled)
--   410 the hold expired, its seats are back in stock   429 locked, n = ms
--   (all 404 with n = -1 when the train does not exist)

local reqs = members(2)
if not reqs then return redis.error_reply('ERR confirm.lua: bad arguments') end
for i, r in ipairs(reqs) do
  if #r[1] == 0 or not valid_user(r[2]) then
    return redis.error_reply('ERR confirm.lua: bad arguments for request ' .. i)
  end
end

local out = {}
local function answer(status, n, replayed, seats)
  out[#out + 1] = status; out[#out + 1] = n; out[#out + 1] = replayed; out[#out + 1] = seats
end

local stock, sold, held = counters()
if not stock then
  for _ in ipairs(reqs) do answer(404, -1, 0, 0) end
  return out
end
local left = lock()
if left then
  for _ in ipairs(reqs) do answer(429, left, 0, 0) end
  return out
end
local back = reclaim(held)
stock, held = stock + back, held - back

local ids, expired = {}, {}
for i, r in ipairs(reqs) do ids[i], expired[i] = r[1], 'expired:' .. r[1] end
local live = redis.call('HMGET', KEYS[7], unpack(ids))
local confirmed = redis.call('HMGET', KEYS[6], unpack(ids))
local gone = redis.call('ZMSCORE', KEYS[10], unpack(expired))

local moved, seats_moved, fields = {}, 0, {}
for i, r in ipairs(reqs) do
  local rec = live[i] or confirmed[i]
  local user, seats, expires
  if rec then user, seats, expires = parse(rec) end
  if rec and r[2] ~= '' and user ~= r[2] then
    answer(403, 0, 0, 0)
  elseif moved[r[1]] or confirmed[i] then
    answer(200, stock, 1, seats)
  elseif live[i] and expires > now() then
    moved[r[1]] = true
    seats_moved = seats_moved + seats
    fields[#fields + 1] = r[1]
    fields[#fields + 1] = record(user, seats, 'created_at_ms', now())
    answer(200, stock, 0, seats)
  elseif live[i] or gone[i] then
    answer(410, 0, 0, 0)
  else
    answer(404, 0, 0, 0)
  end
end

if seats_moved > 0 then
  local confirmed_ids = {}
  for i = 1, #fields, 2 do confirmed_ids[#confirmed_ids + 1] = fields[i] end
  redis.call('HDEL', KEYS[7], unpack(confirmed_ids))
  redis.call('ZREM', KEYS[8], unpack(confirmed_ids))
  redis.call('DECRBY', KEYS[4], seats_moved)
  redis.call('INCRBY', KEYS[3], seats_moved)
  redis.call('HSET', KEYS[6], unpack(fields))
end
flush_users()
unlock()
return out
