-- put_train.lua: create a train, or reset one (clearing its sales, holds and
-- per-user counts), for PUT /trains/{id} and the default train at start-up.
--
-- One train, one member of 4 fields: capacity, '1' to reset an existing
-- train ('0' to leave it alone), its stations (a JSON array of 2 or more
-- names, checked by the service; '' for none: one leg, `stock` alone), its
-- coaches (a JSON array of {coach, class, rows, layout}, checked by the
-- service, whose seats add up to capacity; '' for none: seats unnumbered)
-- Reply {status, n}: 201 created, 200 reset, 409 exists (and no reset asked:
-- nothing written), 429 lock held by someone else (n = ms until it frees).

local ts, t, m = one(4)
if not m or not string.match(m[1], '^%d+$') then
  return redis.error_reply('ERR put_train.lua: bad arguments')
end
local capacity, reset = m[1], m[2] == '1'
-- A JSON array of at least `least` entries; nil for '' (none), false when
-- the text is not one.
local function list(text, least)
  if text == '' then return nil end
  local ok, decoded = pcall(cjson.decode, text)
  return ok and type(decoded) == 'table' and #decoded >= least and decoded
end
local stations, coaches = list(m[3], 2), list(m[4], 1)
if stations == false then return redis.error_reply('ERR put_train.lua: bad stations') end
if coaches == false then return redis.error_reply('ERR put_train.lua: bad coaches') end

local exists = redis.call('EXISTS', t.stock) == 1
if exists and not reset then return {409, 0} end

local left = lock(t)
if left then return {429, left} end
-- Everything but the lock and the idempotency records: a reset train has no
-- history, and a stored answer for it would only replay.
redis.call('DEL', t.sold, t.held_key, t.reservations, t.holds, t.expiry, t.users, t.ended, t.legs,
  t.seats, t.coaches)
redis.call('MSET', t.stock, capacity, t.capacity, capacity)
if stations or coaches then
  -- The legs as load_legs reads them, and on a numbered train every seat
  -- one free run over the whole route (see "Numbered seats" in prelude.lua).
  t.nlegs = stations and #stations - 1 or 1
  if stations then
    t.route, t.free, t.on = stations, {}, {sold = {}, held = {}}
    for k = 0, t.nlegs - 1 do t.free[k], t.on.sold[k], t.on.held[k] = tonumber(capacity), 0, 0 end
  end
  if coaches then
    local run_code, run_score = seating().run_code, S.run_score
    t.classes, t.class_seats, t.class_ix, t.runs = {}, {}, {}, {}
    local runs, i = {}, 0
    for _, coach in ipairs(coaches) do
      local c = t.class_ix[coach.class]
      if not c then
        c = #t.classes
        t.classes[c + 1], t.class_seats[c + 1], t.class_ix[coach.class] = coach.class, 0, c
      end
      local code = run_code(c, 0, t.nlegs)
      for row = 1, coach.rows do
        for letter in string.gmatch(coach.layout, '%u') do
          runs[#runs + 1] = run_score(c, 0, t.nlegs, i)
          runs[#runs + 1] = coach.coach .. '-' .. row .. letter .. ':0'
          t.runs[code] = (t.runs[code] or 0) + 1
          t.class_seats[c + 1] = t.class_seats[c + 1] + 1
          i = i + 1
        end
      end
    end
    redis.call('ZADD', t.seats, unpack(runs))
    redis.call('SET', t.coaches, m[4])
  end
  redis.call('SET', t.legs, legs_json(t))
end
unlock(ts)
return {exists and 200 or 201, 0}
