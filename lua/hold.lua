-- hold.lua: hold seats for one or more requests, on one or more trains,
-- while their buyers pay; atomically, on each train in arrival order (group
-- commit, as reserve.lua). A hold's seats leave `stock` at once and count in
-- `held` until it is confirmed, released, or expires (reclaimed by any later
-- call, prelude.lua).
--
-- Members, 11 fields each: hold id (a fresh UUID), seats (1..10), user (''
-- or a JSON string), ttl in ms (1000..900000), idempotency record (its index
-- in KEYS, 0 = none), request fingerprint, from and to (station names; '' =
-- the first, the last), class, seat ids and together (as reserve.lua)
-- Reply, 6 per member: status, hold id, n, replayed, expires_at_ms, extra
-- (fields the answer adds, a JSON object, '' if none; as reserve.lua)
--   201 held, n = seats left for the journey   400 sold out, n = the same
--   409 over the per-user limit, n = seats the user already has; or
--   seat_taken, not_together (as reserve.lua)
--   429 locked, n = ms until it frees  404 no such train
--   410 this very hold was made and has expired since (a re-sent call)
--   422 n = 0: idempotency key reused for another request; n = 1, 2, 3:
--   not a journey of this train (see `journey` in prelude.lua); n = 4: not
--   seats this train has (extra: {"detail"})
--
-- A re-sent call (a client library's retry) never holds twice: the call's
-- key tells it from a first run, and it finds each id it held in `holds`
-- (live), `reservations` (confirmed) or `ended`.

local ts = trains(11)
if not ts then return redis.error_reply('ERR hold.lua: bad arguments') end
for _, t in ipairs(ts) do
  for i, r in ipairs(t.members) do
    r.seats, r.ttl, r.idem = seats(r[2]), int(r[4]), record_index(r[5])
    if #r[1] == 0 or not r.seats or not valid_user(r[3])
        or not r.ttl or r.ttl < 1000 or r.ttl > 900000
        or not r.idem or not valid_record(r.idem, #ts) then
      return redis.error_reply('ERR hold.lua: bad arguments for request ' .. i)
    end
  end
end

if not follows() then return redis.error_reply(FENCED) end
counters(ts)
local records = {}
for k = first_record(#ts), #KEYS do records[k] = stored(k) end
local first = first_run(ts)
for _, t in ipairs(ts) do
  t.live, t.confirmed, t.gone = {}, {}, {}
  if t.exists and not first then
    local ids, ended = {}, {}
    for i, r in ipairs(t.members) do
      ids[i] = r[1]
      ended[3 * i - 2], ended[3 * i - 1], ended[3 * i] =
        'expired:' .. r[1], 'released:' .. r[1], 'cancelled:' .. r[1]
    end
    t.live = redis.call('HMGET', t.holds, unpack(ids))
    t.confirmed = redis.call('HMGET', t.reservations, unpack(ids))
    t.gone = redis.call('ZMSCORE', t.ended, unpack(ended))
  end
end

local out, n_out, booked = {}, 0, false
local function answer(status, id, n, replayed, expires, trip)
  out[n_out + 1], out[n_out + 2], out[n_out + 3], out[n_out + 4], out[n_out + 5], out[n_out + 6] =
    status, id, n, replayed, expires, trip or ''
  n_out = n_out + 6
end

for _, t in ipairs(ts) do
  local fields, expiry, decided = {}, {}, {}
  for i, r in ipairs(t.members) do
    local rec = r.idem > 0 and records[r.idem]
    local a, b, w, why = nil, nil, nil, nil
    if t.exists then a, b = journey(t, r[7], r[8]) end
    if a then w, why = wish(t, r[9], r[10], r[11]) end
    if not t.exists then
      answer(404, r[1], 0, 0, 0)
    elseif not a then
      answer(422, r[1], b, 0, 0)
    elseif not w then
      answer(422, r[1], 4, 0, 0, cjson.encode({detail = why}))
    elseif rec then
      if rec.fp ~= r[6] then answer(422, r[1], 0, 0, 0)
      else answer(rec.status, rec.id, rec.n, rec.id == r[1] and 0 or 1, rec.exp, rec.x) end
    elseif t.live[i] then
      local _, _, expires = parse(t.live[i])
      answer(expires <= now() and 410 or 201, r[1], left_for(t, w, a, b), 0, expires,
        journey_fields(t, a, b, nil, placed(t.live[i])))
    elseif t.gone[3 * i - 2] then
      answer(410, r[1], 0, 0, tonumber(t.gone[3 * i - 2]) - MEMORY)
    elseif t.confirmed[i] or t.gone[3 * i - 1] or t.gone[3 * i] then
      local got = t.confirmed[i] and placed(t.confirmed[i])
      answer(201, r[1], left_for(t, w, a, b), 0, 0, journey_fields(t, a, b, nil, got))
    else
      if t.locked == nil then
        t.lock_left = lock(t)
        t.locked = t.lock_left ~= nil
        if not t.locked then reclaim(t) end
      end
      if t.locked then
        answer(429, r[1], t.lock_left, 0, 0)
      elseif LIMIT > 0 and r[3] ~= '' and seats_of(t, r[3]) + r.seats > LIMIT then
        answer(409, r[1], seats_of(t, r[3]), 0, 0)
      else
        local got, refusal, taken = take(t, w, a, b, r.seats, 'held')
        if got then
          local expires = now() + r.ttl
          charge(t, r[3], r.seats)
          fields[#fields + 1] = r[1]
          fields[#fields + 1] = record(t, r[3], r[2], a, b, 'expires_at_ms', expires, got)
          expiry[#expiry + 1] = expires
          expiry[#expiry + 1] = r[1]
          local left, trip = left_for(t, w, a, b), journey_fields(t, a, b, nil, got)
          answer(201, r[1], left, 0, expires, trip)
          -- Only a hold is stored: a refusal leaves nothing (decided afresh).
          if r.idem > 0 then
            records[r.idem] = {status = 201, id = r[1], n = left, fp = r[6], exp = expires, x = trip}
            decided[#decided + 1] = r.idem
          end
        else
          local status, n, extra = refused(t, w, a, b, r.seats, refusal, taken)
          answer(status, r[1], n, 0, 0, extra)
        end
      end
    end
  end
  if #fields > 0 then
    redis.call('HSET', t.holds, unpack(fields))
    redis.call('ZADD', t.expiry, unpack(expiry))
    booked = true
  end
  save_records(records, decided)
end
finish(ts, first and not booked)
return out
