-- confirm.lua: turn live holds into reservations (the buyer paid), for one
-- or more requests on one or more trains, on each train in arrival order
-- (group commit, as reserve.lua). The seats move from `held` to `sold`; the
-- reservation keeps the hold's id and user.
--
-- Members, 2 fields each: hold id, caller ('' = anyone who knows the id,
-- else the JSON string of the user who must own the hold)
-- Reply, 5 per member: status, n, replayed, seats, extra (fields the
-- answer adds, a JSON object, '' if none: journey, seat_ids and class)
--   200 confirmed, n = seats left for the journey (replayed = 1: it was
--   confirmed before)
--   403 another user's hold          404 no such hold (never, released, cancelled)
--   410 the hold expired, its seats are back in stock   429 locked, n = ms
--   404 with n = -1: no such train

local ts = trains(2)
if not ts then return redis.error_reply('ERR confirm.lua: bad arguments') end
for _, t in ipairs(ts) do
  for i, r in ipairs(t.members) do
    if #r[1] == 0 or not valid_user(r[2]) then
      return redis.error_reply('ERR confirm.lua: bad arguments for request ' .. i)
    end
  end
end

if not follows() then return redis.error_reply(FENCED) end
counters(ts)
local out, confirmed = {}, false
local function answer(status, n, replayed, seats, trip)
  out[#out + 1] = status; out[#out + 1] = n; out[#out + 1] = replayed; out[#out + 1] = seats
  out[#out + 1] = trip or ''
end

for _, t in ipairs(ts) do
  if t.exists then t.lock_left = lock(t) end
  if not t.exists then
    for _ in ipairs(t.members) do answer(404, -1, 0, 0) end
  elseif t.lock_left then
    for _ in ipairs(t.members) do answer(429, t.lock_left, 0, 0) end
  else
    reclaim(t)
    local ids, expired = {}, {}
    for i, r in ipairs(t.members) do ids[i], expired[i] = r[1], 'expired:' .. r[1] end
    local live = redis.call('HMGET', t.holds, unpack(ids))
    local confirmed = redis.call('HMGET', t.reservations, unpack(ids))
    local gone = redis.call('ZMSCORE', t.ended, unpack(expired))
    local moved, fields, moved_ids = {}, {}, {}
    for i, r in ipairs(t.members) do
      local rec = live[i] or confirmed[i]
      local user, seats, expires, a, b
      if rec then user, seats, expires, a, b = parse(rec) end
      if rec and r[2] ~= '' and user ~= r[2] then
        answer(403, 0, 0, 0)
      elseif moved[r[1]] or confirmed[i] then
        answer(200, room(t, a, b), 1, seats, journey_fields(t, a, b, nil, placed(rec)))
      elseif live[i] and expires > now() then
        moved[r[1]] = true
        -- The seats stay taken, on the same legs: only the counters move.
        local got = placed(rec)
        move(t, a, b, seats, 'held', 'sold')
        moved_ids[#moved_ids + 1] = r[1]
        fields[#fields + 1] = r[1]
        fields[#fields + 1] = record(t, user, seats, a, b, 'created_at_ms', stamp(), got)
        answer(200, room(t, a, b), 0, seats, journey_fields(t, a, b, nil, got))
      elseif live[i] or gone[i] then
        answer(410, 0, 0, 0)
      else
        answer(404, 0, 0, 0)
      end
    end
    if #moved_ids > 0 then
      confirmed = true
      redis.call('HDEL', t.holds, unpack(moved_ids))
      redis.call('ZREM', t.expiry, unpack(moved_ids))
      add_reservations(t, fields)
    end
  end
end

if confirmed then keep_call_key(ts) end
finish(ts)
return out
