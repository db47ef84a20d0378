-- reserve.lua: book seats for one or more requests, on one or more trains,
-- atomically; on each train in arrival order. The service sends a lone
-- request alone and groups those that queue up while a call is in flight
-- (group commit): one call, one fsync for all of them, a lock per train.
-- Runs after prelude.lua (KEYS, ARGV layout).
--
-- Members, 10 fields each: reservation id (a fresh UUID: a first run of a
-- call does not look it up, see first_run), seats (1..10), user
-- ('' or a JSON string), idempotency record (its index in KEYS, 0 = none),
-- request fingerprint, from and to (station names; '' = the first, the
-- last), class, seat ids (comma-separated) and together ('1'), each ''
-- when not asked (see `wish` in prelude.lua)
-- Reply, 5 per member in the order sent: status, reservation id, n,
-- replayed, extra (fields the answer adds, a JSON object, '' if none: see
-- journey_fields; on a numbered train, seat_ids and class)
--   200 booked, n = seats left for the journey   400 sold out, n = the same
--   409 over the per-user limit, n = seats the user already has; or, with
--   "error" in extra, seat_taken (its seat_ids: those not free) or
--   not_together
--   429 the train's lock is held by someone else, n = ms until it frees
--   404 no such train
--   422 n = 0: idempotency key reused for another request; n = 1, 2, 3:
--   not a journey of this train (see `journey` in prelude.lua); n = 4: not
--   seats this train has (extra: {"detail"})
--   replayed = 1 when the answer is the stored decision of an earlier request.
--
-- Running the same call twice (a client library's retry) books nothing
-- twice: the call's key tells a re-sent call from a first run, and a
-- re-sent call finds each id it booked in `reservations`, or in `ended`
-- (`cancelled:ID`) once cancelled.

local ts = trains(10)
if not ts then return redis.error_reply('ERR reserve.lua: bad arguments') end
for _, t in ipairs(ts) do
  for i, r in ipairs(t.members) do
    r.seats, r.idem = seats(r[2]), record_index(r[4])
    if #r[1] == 0 or not r.seats or not valid_user(r[3]) or not r.idem
        or not valid_record(r.idem, #ts) then
      return redis.error_reply('ERR reserve.lua: bad arguments for request ' .. i)
    end
  end
end

if not follows() then return redis.error_reply(FENCED) end

-- The reads that could fail (an operator stored a counter that is not an
-- integer, or an idempotency record of the wrong type) happen first. Then
-- the call's key: only a re-sent call looks up its ids.
counters(ts)
local records = {}
for k = first_record(#ts), #KEYS do records[k] = stored(k) end
local first = first_run(ts)
local NONE = {}
for _, t in ipairs(ts) do
  t.found, t.gone = NONE, NONE
  if t.exists and not first then
    local ids, cancelled = {}, {}
    for i, r in ipairs(t.members) do ids[i], cancelled[i] = r[1], 'cancelled:' .. r[1] end
    t.found = redis.call('HMGET', t.reservations, unpack(ids))
    t.gone = redis.call('ZMSCORE', t.ended, unpack(cancelled))
  end
end

local out, n_out, booked = {}, 0, false
local function answer(status, id, n, replayed, trip)
  out[n_out + 1], out[n_out + 2], out[n_out + 3], out[n_out + 4], out[n_out + 5] =
    status, id, n, replayed, trip or ''
  n_out = n_out + 5
end

for _, t in ipairs(ts) do
  local fields, decided = {}, {}
  for i, r in ipairs(t.members) do
    local rec = r.idem > 0 and records[r.idem]
    local a, b, w, why = nil, nil, nil, nil
    if t.exists then a, b = journey(t, r[6], r[7]) end
    if a then w, why = wish(t, r[8], r[9], r[10]) end
    if not t.exists then
      answer(404, r[1], 0, 0)
    elseif not a then
      answer(422, r[1], b, 0)
    elseif not w then
      answer(422, r[1], 4, 0, cjson.encode({detail = why}))
    elseif rec then
      if rec.fp ~= r[5] then answer(422, r[1], 0, 0)
      -- The same id is this very request, re-sent after a reconnect: not a replay.
      else answer(rec.status, rec.id, rec.n, rec.id == r[1] and 0 or 1, rec.x) end
    elseif t.found[i] or t.gone[i] then
      local got = t.found[i] and placed(t.found[i])
      answer(200, r[1], left_for(t, w, a, b), 0, journey_fields(t, a, b, nil, got))
    else
      if t.locked == nil then
        t.lock_left = lock(t)
        t.locked = t.lock_left ~= nil
        if not t.locked then reclaim(t) end
      end
      if t.locked then
        answer(429, r[1], t.lock_left, 0)
      elseif LIMIT > 0 and r[3] ~= '' and seats_of(t, r[3]) + r.seats > LIMIT then
        answer(409, r[1], seats_of(t, r[3]), 0)
      else
        local got, refusal, taken = take(t, w, a, b, r.seats, 'sold')
        if got then
          charge(t, r[3], r.seats)
          fields[#fields + 1] = r[1]
          fields[#fields + 1] = record(t, r[3], r[2], a, b, 'created_at_ms', stamp(), got)
          local left, trip = left_for(t, w, a, b), journey_fields(t, a, b, nil, got)
          answer(200, r[1], left, 0, trip)
          -- Only a booking is stored: a refusal leaves nothing (decided afresh).
          if r.idem > 0 then
            records[r.idem] = {status = 200, id = r[1], n = left, fp = r[5], x = trip}
            decided[#decided + 1] = r.idem
          end
        else
          -- A sold-out journey does not stop a shorter one behind it.
          local status, n, extra = refused(t, w, a, b, r.seats, refusal, taken)
          answer(status, r[1], n, 0, extra)
        end
      end
    end
  end
  if #fields > 0 then
    add_reservations(t, fields)
    booked = true
  end
  save_records(records, decided)
end
finish(ts, first and not booked)
return out
