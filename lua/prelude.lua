-- prelude.lua: what every script that changes trains shares. The service
-- sends it in front of each script's own text (src/store/scripts.rs), so each
-- script stays one self-contained EVALSHA while the lock, the clock, the hold
-- expiry and the per-user count are written once.
--
-- One call may carry requests for several trains (group commit batches by
-- what one call may touch: any keys on one Redis, one hash slot on a
-- cluster). Each train keeps its own lock, counters and decisions.
--
-- KEYS: 13 per train, in this order: 1 stock  2 capacity  3 sold  4 held
--   5 lock  6 reservations  7 holds  8 hold_expiry  9 users  10 ended
--   11 legs (see "Journeys" below)  12 seats  13 coaches (see "Numbered
--   seats");
--   then this call's own key (`call:TOKEN` of its first train, see
--   first_run); then, if it follows another call (see follows), that
--   call's key; then the idempotency records the members name.
-- ARGV: 1 token (a fresh UUID per call: the lock's, and the call's key's)
--   2 lock PX in ms  3 memory in ms (idempotency records and ended ids are
--   kept this long)  4 seats one user may have on a train (0 = no limit)
--   5 how long a call's key is kept, in ms  6 the KEYS index of the followed
--   call's key (0 = none); then, per train: the KEYS index of its stock key
--   (1, 14, 27, ...), its number of members, and its members' fields.
--
-- `ended` is a sorted set of ids that ended, scored by when they may be
-- forgotten: `expired:ID` (a hold's seats went back by expiry: 410 for 24 h
-- after it expired), `released:ID` and `cancelled:ID` (a re-sent call must
-- never bring them back: kept for the call window, CALL_MEMORY, and no
-- longer, so a hold-and-release loop cannot grow Redis).

-- An integer argument or counter; nil when v is not one. tonumber (a C
-- call) is a quarter of a pattern match's cost, and a script reads several
-- per call and train; it also takes forms like ' 7' or '7e2', which are
-- integers all the same (PX texts go to Redis as formatted here, below).
local function int(v)
  local n = tonumber(v)
  if n and n % 1 == 0 then return n end
  return nil
end

-- Keys per train in KEYS.
local PER_TRAIN = 13

-- The PX arguments go to Redis as texts formatted once here: Redis 7.0
-- formats a Lua number with printf's %.17g each time one is passed.
local TOKEN = ARGV[1]
local LOCK_TTL, MEMORY, LIMIT, CALL_MEMORY = int(ARGV[2]), int(ARGV[3]), int(ARGV[4]), int(ARGV[5])
local AFTER = int(ARGV[6])
if #TOKEN == 0 or not LOCK_TTL or LOCK_TTL < 1 or not MEMORY or MEMORY < 1
    or not LIMIT or LIMIT < 0 or not CALL_MEMORY or CALL_MEMORY < 1 or not AFTER or AFTER < 0 then
  return redis.error_reply('ERR train script: bad common arguments')
end
local LOCK_PX, CALL_PX = string.format('%d', LOCK_TTL), string.format('%d', CALL_MEMORY)
-- Reclaimed per train and call: more than one call can create (64), so a
-- train in use never builds up a backlog of expired holds.
local RECLAIM = 128

-- Seats asked by one request: 1..10, written plainly (it goes into records
-- as it is, and records are JSON). A table lookup: a pattern match per
-- request costs more.
local SEATS = {['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5,
               ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9, ['10'] = 10}
local function seats(v) return SEATS[v] end

-- An idempotency record index as sent: almost always '0' (none).
local function record_index(v) if v == '0' then return 0 end return int(v) end

-- The trains of this call, each {keys..., members = {{field, ...}, ...}}
-- with `width` fields per member; nil when ARGV does not parse.
local function trains(width)
  local out, pos = {}, 7
  while pos <= #ARGV do
    local base, n = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
    if base ~= PER_TRAIN * #out + 1 or not n or n < 1 or base + PER_TRAIN > #KEYS
        or pos + 1 + n * width > #ARGV then
      return nil
    end
    -- Every field a script may set is named here, most as nil: a
    -- constructor sizes its table once, while each field added later can
    -- make Lua grow and rehash it (measurably, per train and per member).
    local t = {stock = KEYS[base], capacity = KEYS[base + 1], sold = KEYS[base + 2],
               held_key = KEYS[base + 3], lock = KEYS[base + 4], reservations = KEYS[base + 5],
               holds = KEYS[base + 6], expiry = KEYS[base + 7], users = KEYS[base + 8],
               ended = KEYS[base + 9], legs = KEYS[base + 10], seats = KEYS[base + 11],
               coaches = KEYS[base + 12],
               members = {}, stored_seats = nil, changed = nil,
               exists = nil, stock_n = nil, sold_n = nil, held_n = nil, stock_0 = nil,
               sold_0 = nil, held_0 = nil, mine = nil, locked = nil, lock_left = nil,
               found = nil, gone = nil, live = nil, confirmed = nil}
    local members, first = t.members, pos + 2
    for i = 1, n do
      members[i] = {seats = nil, ttl = nil, idem = nil, unpack(ARGV, first, first + width - 1)}
      first = first + width
    end
    out[#out + 1] = t
    pos = pos + 2 + n * width
  end
  if #out == 0 or (AFTER ~= 0 and (AFTER ~= PER_TRAIN * #out + 2 or AFTER > #KEYS)) then return nil end
  return out
end

-- The one train and one member of a single-request script (release,
-- cancel, put_train); nil when ARGV holds anything else.
local function one(width)
  local ts = trains(width)
  if not ts or #ts ~= 1 or #ts[1].members ~= 1 then return nil end
  return ts, ts[1], ts[1].members[1]
end

-- A user argument: '' (anonymous) or a JSON string literal ("...").
local function valid_user(u) return u == '' or string.match(u, '^".*"$') ~= nil end

-- The KEYS index of the first idempotency record: past the trains' keys,
-- the call's key and the followed call's key.
local function first_record(ntrains) return PER_TRAIN * ntrains + (AFTER > 0 and 3 or 2) end

-- An idempotency record index: 0 (none) or a KEYS index from first_record on.
local function valid_record(k, ntrains) return k == 0 or (k >= first_record(ntrains) and k <= #KEYS) end

-- Whether the call this one follows ran and booked (true when it follows
-- none). The service may send a call while the one before it on the same
-- queue is still in flight, on the same connection, so Redis runs them in
-- the order sent; but the first may not have run at all (NOSCRIPT after a
-- flush or a failover, while another client loaded the script again in
-- between). A call that booked keeps its key (first_run; confirm.lua sets
-- it when it confirmed), so a follower that finds none writes nothing and
-- answers FENCED, and the service sends it again once the first has
-- answered. A first that booked nothing leaves no key either (a 404 or a
-- 429 must change no key): its follower goes again too, one round trip
-- later. Arrival order within a train holds either way.
local function follows()
  return AFTER == 0 or redis.call('EXISTS', KEYS[AFTER]) == 1
end
local FENCED = 'FENCED the call this one follows has not run'

-- Whether this is the first run of this very call, and not a client
-- library re-sending it after a reconnect. Only a re-sent call must look up
-- each member's id to find what its first run booked: on a first run every
-- id is a fresh UUID that nothing can know yet. The call's key is set here
-- (so it is the script's first write: call it after the reads that could
-- fail) and kept CALL_MEMORY ms, which outlasts the longest a client may
-- re-send a call (the service: REQUEST_TIMEOUT_MS); `finish` removes it
-- again when the call booked nothing, so such a call leaves nothing behind.
local function first_run(ts)
  return redis.call('SET', KEYS[PER_TRAIN * #ts + 1], '1', 'NX', 'PX', CALL_PX) ~= false
end

-- For scripts that do not call first_run: keeps the call's key once the
-- call changed something, so that a call following it finds it (follows).
local function keep_call_key(ts)
  redis.call('SET', KEYS[PER_TRAIN * #ts + 1], '1', 'PX', CALL_PX)
end

-- Journeys. A train with stations keeps its seats per leg: leg k runs from
-- station k to station k + 1 (0-based), and `legs` is one JSON string,
-- {"stations":[...],"free":[...],"sold":[...],"held":[...]}, a number per
-- leg in each list (one key, read in the MGET every call makes anyway: a
-- train without stations pays one missing key there and nothing else). A
-- journey from station a to station b occupies legs a .. b - 1; it fits
-- when every one of them has the seats. `stock` is then the seats free over
-- the whole route (the fewest free on any leg), and `sold` and `held` the
-- seats of live reservations and holds whatever their journey, all kept in
-- step here. A train without stations is one leg whose counter is `stock`.
-- A train with numbered seats (see below) always has `legs`: with no
-- stations, its lists are empty and `stock` stays its one leg's counter.

-- The seat layer (see "Numbered seats" below), made on demand.
local S, seating

-- Reads a train's stations, leg counters and, on a numbered train, its
-- classes and free runs (only such trains: the fields it adds are not named
-- in `trains`, whose table would then outgrow its 32 slots for every train).
local function load_legs(t, raw)
  local ok, legs = pcall(cjson.decode, raw)
  local route = ok and type(legs) == 'table' and legs.stations
  if type(route) ~= 'table' or #route == 1 or (#route == 0 and not legs.classes) then
    error('the legs of a train are unreadable')
  end
  t.nlegs = math.max(#route - 1, 1)
  -- The stations' and classes' JSON as stored, written back as they are.
  t.raw = raw
  if legs.classes then
    seating()
    t.classes, t.class_seats, t.class_ix, t.runs = legs.classes, legs.class_seats, {}, {}
    for i, name in ipairs(legs.classes) do t.class_ix[name] = i - 1 end
    local runs = legs.runs
    for i = 1, #runs, 2 do t.runs[runs[i]] = runs[i + 1] end
    t.dirty = false
  end
  if #route == 0 then return end
  local n = #route - 1
  t.route, t.stop = route, {}
  for i, name in ipairs(route) do t.stop[name] = i - 1 end
  t.free, t.on, t.dirty = {}, {sold = {}, held = {}}, false
  for k = 0, n - 1 do
    t.free[k], t.on.sold[k], t.on.held[k] = legs.free[k + 1], legs.sold[k + 1], legs.held[k + 1]
    if type(t.free[k]) ~= 'number' or type(t.on.sold[k]) ~= 'number' or type(t.on.held[k]) ~= 'number' then
      error('a leg counter is not a number')
    end
  end
end

-- A list the train's `legs` string holds that no decision changes
-- (stations, classes, class_seats), as JSON: cut from the string as read,
-- or encoded (put_train, or a string laid out otherwise). The stations end
-- where ',"free":[' starts: inside a JSON string a quote is escaped, so that
-- text cannot be part of a name; classes and sizes have no brackets.
local function json_part(t, name, list)
  local raw, part = t.raw, nil
  if raw and name == 'stations' then
    local stop = string.find(raw, ',"free":[', 13, true)
    if stop and string.sub(raw, 1, 12) == '{"stations":' then part = string.sub(raw, 13, stop - 1) end
  elseif raw then
    part = string.match(raw, '"' .. name .. '":(%[[^%[%]]*%])')
  end
  return part or cjson.encode(list)
end

-- The `legs` string of a train (as load_legs reads it).
local function legs_json(t)
  local free, sold, held = {}, {}, {}
  -- Whole numbers below 2^53 concatenate as integers ("%.14g").
  for k = 0, (t.route and t.nlegs or 0) - 1 do
    free[k + 1], sold[k + 1], held[k + 1] = t.free[k], t.on.sold[k], t.on.held[k]
  end
  local out = '{"stations":' .. (t.route and json_part(t, 'stations', t.route) or '[]') ..
    ',"free":[' .. table.concat(free, ',') .. '],"sold":[' .. table.concat(sold, ',') ..
    '],"held":[' .. table.concat(held, ',') .. ']'
  if t.classes then
    local runs = {}
    for code, n in pairs(t.runs) do
      if n > 0 then runs[#runs + 1] = code; runs[#runs + 1] = n end
    end
    out = out .. ',"classes":' .. json_part(t, 'classes', t.classes) .. ',"class_seats":' ..
      json_part(t, 'class_seats', t.class_seats) .. ',"runs":[' .. table.concat(runs, ',') .. ']'
  end
  return out .. '}'
end

-- The stations a, b of a journey from `from` to `to` (names; '' = the
-- first and the last station). On a train without stations: 0, 1 when
-- neither is named. nil and why when there is none: 1 an unknown station,
-- 2 `from` not before `to`, 3 stations named on a train without any.
local function journey(t, from, to)
  if not t.route then
    if from ~= '' or to ~= '' then return nil, 3 end
    return 0, 1
  end
  local a, b = t.stop[from], t.stop[to]
  if from == '' then a = 0 end
  if to == '' then b = t.nlegs end
  if not a or not b then return nil, 1 end
  if a >= b then return nil, 2 end
  return a, b
end

-- Numbered seats. A train made with coaches names each seat ("7-12A"), each
-- of a class, and a booking keeps one seat on every leg of its journey.
-- Seats are numbered 0, 1, ... in coach, row and letter order. What is free
-- is kept as free runs: a run is one seat's stretch of consecutive free
-- legs, from stop S up to stop E, and `seats` (a sorted set) holds one
-- member per run, "SEAT:S" (7-12A:0), scored
-- ((class * 64 + S) * 64 + E) * 4096 + seat, so the runs of one class, S
-- and E sort together, by seat within. A seat is free for the journey a..b
-- when one of its runs has S <= a and E >= b. `legs` keeps how many runs
-- each (class, S, E) has ("runs": code, count, ...; code = (class * 64 + S)
-- * 64 + E), so a decision knows where to look, and how many seats a
-- journey has free, without asking Redis; its "classes" and "class_seats"
-- name the classes (their index is their place there) and their sizes.
-- `coaches` is the layout as created (JSON), read only when a request names
-- seats or asks for them together.
--
-- Which seats the service picks (best fit): the free run that fits the
-- journey most tightly, so the fewest legs are left over around it; among
-- equals, a run that starts or ends where the journey does (what is left
-- stays in one piece, for one longer journey later); then the lowest seat.
-- A journey on a fresh train thus takes seats already sold next to it
-- before it breaks into an empty one, which stays whole for the long
-- journeys that only an empty seat can take.
-- A seat as the functions below pass it: its id, class, seat number and,
-- when free, the run (s, e) that will carry the journey.
local function seat(id, c, i, s, e) return {id = id, c = c, i = i, s = s, e = e} end

-- The seat layer: made by `seating` when a call meets its first numbered
-- train (load_legs, put_train), so a call of trains without numbered
-- seats does not pay for making these functions (Lua makes a script's
-- functions each time it runs).
seating = function()
  if S then return S end
  local SLOT, STOPS = 4096, 64
  local function run_code(c, s, e) return (c * STOPS + s) * STOPS + e end
  local function run_score(c, s, e, i) return string.format('%d', run_code(c, s, e) * SLOT + i) end
  -- class, S, E and seat of a run's score.
  local function run_of(score)
    score = tonumber(score)
    local i = score % SLOT
    local code = (score - i) / SLOT
    local e = code % STOPS
    local s = ((code - e) / STOPS) % STOPS
    return (code - e - s * STOPS) / (STOPS * STOPS), s, e, i
  end

  -- Seats of class c (nil: any) free on every leg of the journey a..b.
  local function free_for(t, c, a, b)
    local n, runs = 0, t.runs
    for k = c or 0, c or #t.classes - 1 do
      for s = 0, a do
        local base = (k * STOPS + s) * STOPS
        for e = b, t.nlegs do n = n + (runs[base + e] or 0) end
      end
    end
    return n
  end

  -- The free runs (S, E) that can carry the journey a..b, best fit first
  -- (the policy above): by the legs left over (w), then by the smaller side
  -- of them (d: 0 when the run starts or ends with the journey), then the
  -- later start. Made in that order, no sort; the same for every train with
  -- L legs, so made once per call.
  local fits = {}
  local function candidates(L, a, b)
    local key = (L * STOPS + a) * STOPS + b
    local list = fits[key]
    if list then return list end
    list = {}
    for w = 0, a + L - b do
      for d = 0, math.floor(w / 2) do
        -- Left over before (a - s) and after (e - b): d and w - d, the
        -- later start first.
        local s, e = a - d, b + (w - d)
        if s >= 0 and e <= L then list[#list + 1] = {s, e} end
        if d ~= w - d then
          s, e = a - (w - d), b + d
          if s >= 0 and e <= L then list[#list + 1] = {s, e} end
        end
      end
    end
    fits[key] = list
    return list
  end

  -- n seats of class c free for a..b, by the policy; nil when fewer are.
  local function pick(t, c, a, b, n)
    local got = {}
    for _, f in ipairs(candidates(t.nlegs, a, b)) do
      local code = run_code(c, f[1], f[2])
      if (t.runs[code] or 0) > 0 then
        local lo = code * SLOT
        local found = redis.call('ZRANGE', t.seats, string.format('%d', lo),
          string.format('%d', lo + SLOT - 1), 'BYSCORE', 'LIMIT', 0, n - #got, 'WITHSCORES')
        for j = 1, #found, 2 do
          local _, s, e, i = run_of(found[j + 1])
          got[#got + 1] = seat(string.match(found[j], '^(.*):%d+$'), c, i, s, e)
        end
        if #got == n then return got end
      end
    end
    return nil
  end

  -- Takes the seats (each free for a..b) off their runs: what is left of a
  -- run before a and after b stays free.
  local function occupy(t, got, a, b)
    local runs, gone, add = t.runs, {}, {}
    for _, p in ipairs(got) do
      local code = run_code(p.c, p.s, p.e)
      runs[code] = runs[code] - 1
      if p.s < a then
        code = run_code(p.c, p.s, a)
        runs[code] = (runs[code] or 0) + 1
        add[#add + 1] = run_score(p.c, p.s, a, p.i); add[#add + 1] = p.id .. ':' .. p.s
      else
        gone[#gone + 1] = p.id .. ':' .. p.s
      end
      if b < p.e then
        code = run_code(p.c, b, p.e)
        runs[code] = (runs[code] or 0) + 1
        add[#add + 1] = run_score(p.c, b, p.e, p.i); add[#add + 1] = p.id .. ':' .. b
      end
    end
    if #gone > 0 then redis.call('ZREM', t.seats, unpack(gone)) end
    if #add > 0 then redis.call('ZADD', t.seats, unpack(add)) end
    t.dirty = true
  end

  -- Gives the seats back on a..b (a release, a cancellation, an expiry):
  -- each joins the free runs that end at a or start at b into one.
  local function give_back(t, got, a, b)
    local ask, per = {}, a + 1
    for _, p in ipairs(got) do
      for s = 0, a - 1 do ask[#ask + 1] = p.id .. ':' .. s end
      ask[#ask + 1] = p.id .. ':' .. b
    end
    local scores = redis.call('ZMSCORE', t.seats, unpack(ask))
    local runs, gone, add = t.runs, {}, {}
    for j, p in ipairs(got) do
      local s_new, e_new = a, b
      for s = 0, a - 1 do
        local score = scores[(j - 1) * per + s + 1]
        if score then
          local _, s0, e0 = run_of(score)
          if e0 == a then
            s_new = s0
            runs[run_code(p.c, s0, e0)] = runs[run_code(p.c, s0, e0)] - 1
          end
        end
      end
      local after = scores[j * per]
      if after then
        local _, _, e0 = run_of(after)
        e_new = e0
        runs[run_code(p.c, b, e0)] = runs[run_code(p.c, b, e0)] - 1
        gone[#gone + 1] = p.id .. ':' .. b
      end
      local code = run_code(p.c, s_new, e_new)
      runs[code] = (runs[code] or 0) + 1
      add[#add + 1] = run_score(p.c, s_new, e_new, p.i); add[#add + 1] = p.id .. ':' .. s_new
    end
    if #gone > 0 then redis.call('ZREM', t.seats, unpack(gone)) end
    redis.call('ZADD', t.seats, unpack(add))
    t.dirty = true
  end

  -- The layout of a numbered train (`coaches`), read once per call: per coach
  -- its first seat number, rows, seats a row, letters and class; nil when it
  -- is unreadable.
  local function layout(t)
    if t.layout then return t.layout end
    local ok, coaches = pcall(cjson.decode, redis.call('GET', t.coaches) or '')
    if not ok or type(coaches) ~= 'table' then error('the coaches of a train are unreadable') end
    local out, first = {by_name = {}}, 0
    for _, c in ipairs(coaches) do
      local letters, width = {}, 0
      for ch in string.gmatch(c.layout, '%u') do width = width + 1; letters[ch] = width - 1 end
      local coach = {name = c.coach, first = first, rows = c.rows, width = width,
                     letters = letters, c = t.class_ix[c.class]}
      out[#out + 1] = coach
      out.by_name[c.coach] = coach
      first = first + c.rows * width
    end
    t.layout = out
    return out
  end

  -- The class and number of a seat id ("7-12A"); nil when the train has none.
  local function seat_number(t, id)
    local name, row, letter = string.match(id, '^(%w+)%-(%d+)(%u)$')
    local coach = name and layout(t).by_name[name]
    row = tonumber(row)
    if not coach or row < 1 or row > coach.rows or not coach.letters[letter] then return nil end
    return coach.c, coach.first + (row - 1) * coach.width + coach.letters[letter]
  end

  -- The seats named, when each is free for a..b; else nil and the ids of
  -- those that are not.
  local function named(t, ids, a, b)
    local ask, got, taken = {}, {}, {}
    for _, id in ipairs(ids) do
      for s = 0, a do ask[#ask + 1] = id .. ':' .. s end
    end
    local scores = redis.call('ZMSCORE', t.seats, unpack(ask))
    for j, id in ipairs(ids) do
      local c, i = seat_number(t, id)
      local free = nil
      for s = a, 0, -1 do
        local score = scores[(j - 1) * (a + 1) + s + 1]
        if score then
          local _, s0, e0 = run_of(score)
          if e0 >= b then free = seat(id, c, i, s0, e0) end
          break
        end
      end
      if free then got[#got + 1] = free else taken[#taken + 1] = id end
    end
    if #taken > 0 then return nil, taken end
    return got
  end

  -- n seats of class c (nil: any) free for a..b, together: in one coach, in
  -- the fewest consecutive rows that hold n (ceil(n / seats a row)), next to
  -- each other within each row (the aisle does not part them). The first
  -- such group in coach and row order; nil when there is none.
  local function together(t, c, a, b, n)
    local free = {}
    for k = c or 0, c or #t.classes - 1 do
      for s = 0, a do
        for e = b, t.nlegs do
          local code = run_code(k, s, e)
          if (t.runs[code] or 0) > 0 then
            local lo = code * SLOT
            local found = redis.call('ZRANGE', t.seats, string.format('%d', lo),
              string.format('%d', lo + SLOT - 1), 'BYSCORE', 'WITHSCORES')
            for j = 1, #found, 2 do
              local _, s0, e0, i = run_of(found[j + 1])
              free[i] = seat(string.match(found[j], '^(.*):%d+$'), k, i, s0, e0)
            end
          end
        end
      end
    end
    for _, coach in ipairs(layout(t)) do
      local w = coach.width
      local k = math.ceil(n / w)
      if (c == nil or coach.c == c) and k <= coach.rows then
        for r0 = 0, coach.rows - k do
          -- The longest run of free seats in each of the k rows.
          local blocks, total = {}, 0
          for r = r0, r0 + k - 1 do
            local base, best_at, best, run = coach.first + r * w, 0, 0, 0
            for x = 0, w - 1 do
              if free[base + x] then run = run + 1 else run = 0 end
              if run > best then best, best_at = run, x - run + 1 end
            end
            if best == 0 then break end
            blocks[#blocks + 1] = {base + best_at, best}
            total = total + best
          end
          if #blocks == k and total >= n then
            local got, need = {}, n
            for j, block in ipairs(blocks) do
              local take = math.min(block[2], need - (k - j))
              for q = 0, take - 1 do got[#got + 1] = free[block[1] + q] end
              need = need - take
            end
            return got
          end
        end
      end
    end
    return nil
  end

  -- The class with the most seats free for the journey a..b (the first
  -- listed among equals), and how many.
  local function most_free(t, a, b)
    local c, most = 0, -1
    for k = 0, #t.classes - 1 do
      local free = free_for(t, k, a, b)
      if free > most then c, most = k, free end
    end
    return c, most
  end

  -- The seats a request gets on a numbered train (w from wish): nil and the
  -- refusal when there are none: 'sold_out', 'not_together', or 'seat_taken'
  -- with the ids. Without a class, the class with the most seats free for
  -- the journey (a group together: that class first, then any).
  local function place(t, w, a, b, n)
    if w.ids then
      local got, taken = named(t, w.ids, a, b)
      return got, 'seat_taken', taken
    end
    local c = w.c or most_free(t, a, b)
    if free_for(t, c, a, b) < n then return nil, 'sold_out' end
    if w.together and n > 1 then
      -- Without a class, a group the fullest class cannot seat together
      -- may still sit together in another.
      local got = together(t, c, a, b, n) or (not w.c and together(t, nil, a, b, n)) or nil
      return got, 'not_together'
    end
    return pick(t, c, a, b, n), 'sold_out'
  end

  S = {run_code = run_code, run_score = run_score, free_for = free_for, pick = pick,
       occupy = occupy, give_back = give_back, seat_number = seat_number,
       most_free = most_free, place = place}
  return S
end

-- Seats free on every leg of a journey (stations a to b): on a numbered
-- train, seats free from a to b (a journey may find room on every leg and
-- no single seat free end to end).
local function room(t, a, b)
  if t.classes then return S.free_for(t, nil, a, b) end
  if not t.route then return t.stock_n end
  local m = t.free[a]
  for k = a + 1, b - 1 do if t.free[k] < m then m = t.free[k] end end
  return m
end

-- Moves n seats of a journey's legs between free, sold and held (`from`
-- and `to` each one of those names), and the totals with them. On a
-- numbered train, call it after the seats' runs changed (occupy, give_back).
local TOTAL = {sold = 'sold_n', held = 'held_n'}
local function move(t, a, b, n, from, to)
  if TOTAL[from] then t[TOTAL[from]] = t[TOTAL[from]] - n end
  if TOTAL[to] then t[TOTAL[to]] = t[TOTAL[to]] + n end
  if not t.route then
    if from == 'free' then t.stock_n = t.stock_n - n elseif to == 'free' then t.stock_n = t.stock_n + n end
    return
  end
  local src = from == 'free' and t.free or t.on[from]
  local dst = to == 'free' and t.free or t.on[to]
  for k = a, b - 1 do
    src[k], dst[k] = src[k] - n, dst[k] + n
  end
  t.dirty = true
  if from == 'free' or to == 'free' then t.stock_n = room(t, 0, t.nlegs) end
end

-- What a request asks of a numbered train (its member's class, seat ids
-- and together fields, '' when not given): {c = class index or nil, ids =
-- seat ids or nil, together = bool}; nil and why (a sentence) when the
-- train cannot have it.
local ANY = {}
local function wish(t, class, ids, along)
  if class == '' and ids == '' and along == '' then return ANY end
  if not t.classes then
    return nil, 'this train has no numbered seats: send no class, seat_ids or together'
  end
  local w = {together = along == '1'}
  if class ~= '' then
    w.c = t.class_ix[class]
    if not w.c then return nil, 'this train has no class ' .. cjson.encode(class) end
  end
  if ids ~= '' then
    w.ids = {}
    for id in string.gmatch(ids, '[^,]+') do
      local c = S.seat_number(t, id)
      if not c then return nil, 'this train has no seat ' .. id end
      if (w.c or c) ~= c then
        return nil, 'seat ' .. id .. ' is not of class ' .. cjson.encode(t.classes[w.c + 1])
      end
      w.c = c
      w.ids[#w.ids + 1] = id
    end
  end
  return w
end

-- Seats free for a journey in the class a request asks (all when none).
local function left_for(t, w, a, b)
  if t.classes and w.c then return S.free_for(t, w.c, a, b) end
  return room(t, a, b)
end

-- Decides one request on a train whose lock is ours: n seats of the
-- journey a..b leave `free` for `to` ('sold' or 'held'). Returns the seats
-- taken (on a train without numbered seats NO_SEATS, one empty list that
-- callers only read), or nil and the refusal ('sold_out', 'not_together',
-- 'seat_taken' and the ids taken).
local NO_SEATS = {}
local function take(t, w, a, b, n, to)
  local got, refusal, taken = NO_SEATS, 'sold_out', nil
  if t.classes then
    got, refusal, taken = S.place(t, w, a, b, n)
    if got then S.occupy(t, got, a, b) end
  elseif room(t, a, b) < n then
    got = nil
  end
  if got then move(t, a, b, n, 'free', to) end
  return got, refusal, taken
end

-- Name i (0-based) of a train's list (`route` or `classes`) as JSON, for
-- records and answers: encoded once per train and call, kept in t[cache].
local function encoded(t, cache, list, i)
  local names = t[cache]
  if not names then names = {}; t[cache] = names end
  local name = names[i]
  if not name then name = cjson.encode(t[list][i + 1]); names[i] = name end
  return name
end
local function station(t, i) return encoded(t, 'names', 'route', i) end
local function class_name(t, c) return encoded(t, 'class_names', 'classes', c) end

-- What an answer about a booking adds (a JSON object's fields, '' when
-- none): on a train with stations, from and to, and with `short` (seats
-- asked), the legs that lack them; on a numbered train, its seats (`got`)
-- and their class; then `more` (fields as they are, or nil).
local function journey_fields(t, a, b, short, got, more)
  if not (t.route or (got and #got > 0) or more) then return '' end
  local parts = {}
  if t.route then
    parts[1] = '"from":' .. station(t, a) .. ',"to":' .. station(t, b)
    if short then
      local full = {}
      for k = a, b - 1 do
        if t.free[k] < short then
          full[#full + 1] = '{"from":' .. station(t, k) .. ',"to":' .. station(t, k + 1) ..
            ',"remaining":' .. string.format('%d', t.free[k]) .. '}'
        end
      end
      parts[#parts + 1] = '"full_legs":[' .. table.concat(full, ',') .. ']'
    end
  end
  if got and #got > 0 then
    local ids = {}
    for j, p in ipairs(got) do ids[j] = '"' .. p.id .. '"' end
    parts[#parts + 1] = '"class":' .. class_name(t, got[1].c) ..
      ',"seat_ids":[' .. table.concat(ids, ',') .. ']'
  end
  if more then parts[#parts + 1] = more end
  if #parts == 0 then return '' end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- The status, n and extra of a refused request (take's refusal): 400
-- sold_out with the seats left for the journey, or 409 with the refusal
-- named (and, for seat_taken, the seats that are not free).
local function refused(t, w, a, b, n, refusal, taken)
  if refusal == 'sold_out' then
    -- A booking is of one class: without one asked, the most one class has.
    local left = left_for(t, w, a, b)
    if t.classes and not w.c then left = select(2, S.most_free(t, a, b)) end
    return 400, left, journey_fields(t, a, b, n)
  end
  return 409, 0, journey_fields(t, a, b, nil, nil,
    '"error":"' .. refusal .. '","taken":' .. (taken and cjson.encode(taken) or '[]'))
end

-- Reads every train's stock, sold, held and legs in one MGET (before
-- any write), into t.stock_n, t.sold_n, t.held_n (and, for trains with
-- stations, their legs); t.exists false when its stock is missing. Raises
-- when an operator stored something that is not an integer.
local function counters(ts)
  local keys = {}
  for i, t in ipairs(ts) do
    keys[4 * i - 3], keys[4 * i - 2], keys[4 * i - 1], keys[4 * i] = t.stock, t.sold, t.held_key, t.legs
  end
  local v = redis.call('MGET', unpack(keys))
  for i, t in ipairs(ts) do
    t.exists = v[4 * i - 3] ~= false
    if t.exists then
      t.stock_n, t.sold_n, t.held_n = int(v[4 * i - 3]), int(v[4 * i - 2] or '0'), int(v[4 * i - 1] or '0')
      if not (t.stock_n and t.sold_n and t.held_n) then
        error('stock, sold or held of a train is not an integer')
      end
      t.stock_0, t.sold_0, t.held_0 = t.stock_n, t.sold_n, t.held_n
      if v[4 * i] then load_legs(t, v[4 * i]) end
    end
  end
end

-- Writes back the counters that changed, all trains in one MSET (as text
-- formatted here: an integer format is cheaper than Redis's %.17g),
-- with the `legs` of the trains whose legs changed.
local function write_counters(ts)
  local kv, n = {}, 0
  local function put(key, v) kv[n + 1], kv[n + 2] = key, string.format('%d', v); n = n + 2 end
  for _, t in ipairs(ts) do
    if t.exists then
      if t.stock_n ~= t.stock_0 then put(t.stock, t.stock_n) end
      if t.sold_n ~= t.sold_0 then put(t.sold, t.sold_n) end
      if t.held_n ~= t.held_0 then put(t.held_key, t.held_n) end
      if t.dirty then
        kv[n + 1], kv[n + 2] = t.legs, legs_json(t); n = n + 2
        t.dirty = false
      end
    end
  end
  if #kv > 0 then redis.call('MSET', unpack(kv)) end
end

local clock, clock_text
local function now()
  if not clock then
    local t = redis.call('TIME')
    clock = t[1] * 1000 + math.floor(t[2] / 1000)
  end
  return clock
end
-- now() as text, formatted once per call (a number is formatted with
-- printf each time it is concatenated).
local function stamp()
  clock_text = clock_text or string.format('%d', now())
  return clock_text
end

-- Takes a train's lock: nil when ours (t.mine), else ms until the other
-- holder's frees.
local function lock(t)
  if redis.call('SET', t.lock, TOKEN, 'NX', 'PX', LOCK_PX) then
    t.mine = true
    return nil
  end
  local left = redis.call('PTTL', t.lock)
  return left > 0 and left or LOCK_TTL
end

-- Compare-and-delete, as the design card says: only our own token is
-- deleted. For every train whose lock we took (t.mine), one MGET compares them
-- all and one DEL removes those that still hold our token. One lock: one
-- GETDEL, and a token not ours is put back (it cannot be: a script runs
-- alone, and this one set the lock; the check stays, as the contract says).
local function unlock(ts)
  local keys = {}
  for _, t in ipairs(ts) do
    if t.mine then keys[#keys + 1] = t.lock end
  end
  if #keys == 1 then
    local token = redis.call('GETDEL', keys[1])
    if token and token ~= TOKEN then redis.call('SET', keys[1], token, 'PX', LOCK_PX) end
    return
  end
  if #keys == 0 then return end
  local tokens, ours = redis.call('MGET', unpack(keys)), {}
  for i, key in ipairs(keys) do
    if tokens[i] == TOKEN then ours[#ours + 1] = key end
  end
  if #ours > 0 then redis.call('DEL', unpack(ours)) end
end

-- Seats per user on a train (`users`, keyed by the plain user id; users
-- arrive here as JSON literals). Changes add up in memory and are written
-- once per user by flush_users; the stored count is read only when the
-- per-user limit needs it.
-- (Both tables are made on first use: most trains in a call see no user.)
local function seats_of(t, user)
  local stored = t.stored_seats
  if not stored then stored = {}; t.stored_seats = stored end
  if stored[user] == nil then
    stored[user] = tonumber(redis.call('HGET', t.users, cjson.decode(user)) or '0')
  end
  return stored[user] + (t.changed and t.changed[user] or 0)
end
local function charge(t, user, seats)
  if user == '' then return end
  local changed = t.changed
  if not changed then changed = {}; t.changed = changed end
  changed[user] = (changed[user] or 0) + seats
end
local function flush_users(t)
  if not t.changed then return end
  for user, delta in pairs(t.changed) do
    local name = cjson.decode(user)
    if delta > 0 then
      redis.call('HINCRBY', t.users, name, delta)
    elseif delta < 0 and redis.call('HINCRBY', t.users, name, delta) <= 0 then
      redis.call('HDEL', t.users, name)
    end
  end
  t.changed = nil
end

-- A hold or reservation record: user ('' when anonymous, else its JSON
-- literal), seats, and expires_at_ms (holds) or created_at_ms (numbers, or
-- their plain text); on a train with stations also the journey's stations
-- a and b (the record names them as from, to and, for the scripts,
-- "stops":[a,b] right before the time); 0, 1 on a train without. On a
-- numbered train the record names its class and seat_ids, and keeps for
-- the scripts "places":[class, seat, ...] (see placed).
local function parse(rec)
  local user, seats, at = string.match(rec, '^{"user_id":(.-),"seats":(%d+),.-"[a-z_]+":(%d+)}$')
  if not user then error('unreadable record ' .. rec) end
  local a, b = string.match(rec, '"stops":%[(%d+),(%d+)%],"[a-z_]+":%d+}$')
  user = user == 'null' and '' or user
  if a then return user, tonumber(seats), tonumber(at), tonumber(a), tonumber(b) end
  return user, tonumber(seats), tonumber(at), 0, 1
end
-- The seats of a record on a numbered train (as `seat` makes them, without
-- a run); nil on a train without numbered seats.
local function placed(rec)
  local places = string.match(rec, '"places":%[([%d,]+)%]')
  if not places then return nil end
  local nums = {}
  for d in string.gmatch(places, '%d+') do nums[#nums + 1] = tonumber(d) end
  local got = {}
  for id in string.gmatch(string.match(rec, '"seat_ids":%[(.-)%]'), '"([^"]+)"') do
    got[#got + 1] = seat(id, nums[1], nums[#got + 2])
  end
  return got
end
local function record(t, user, seats, a, b, field, at, got)
  local named, trip, places = '', '', ''
  if got and #got > 0 then
    local ids, nums = {}, {string.format('%d', got[1].c)}
    for j, p in ipairs(got) do ids[j], nums[j + 1] = '"' .. p.id .. '"', string.format('%d', p.i) end
    named = ',"class":' .. class_name(t, got[1].c) .. ',"seat_ids":[' ..
      table.concat(ids, ',') .. ']'
    places = ',"places":[' .. table.concat(nums, ',') .. ']'
  end
  if t.route then
    trip = ',"from":' .. station(t, a) .. ',"to":' .. station(t, b) .. places ..
      ',"stops":[' .. a .. ',' .. b .. ']'
  else
    trip = places
  end
  return '{"user_id":' .. (user == '' and 'null' or user) .. ',"seats":' .. seats .. named .. trip ..
    ',"' .. field .. '":' .. at .. '}'
end

-- Remembers that ids ended (`ended`: {forget at, member, ...}) and forgets
-- those whose time has come: trimmed whenever it grows, and the whole set
-- expires with its last member, so what a busy train or a quiet one keeps
-- is bounded by what ended within the times above.
local function remember(t, ended)
  redis.call('ZREMRANGEBYSCORE', t.ended, '-inf', now())
  redis.call('ZADD', t.ended, unpack(ended))
  local last = redis.call('ZRANGE', t.ended, '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1, 'WITHSCORES')
  redis.call('PEXPIREAT', t.ended, last[2])
end
-- When a released or cancelled id may be forgotten: after the call window.
local function forget_ended() return now() + CALL_MEMORY end

-- Gives back the seats of up to RECLAIM of a train's holds that have
-- expired, oldest first, into t.stock_n and t.held_n, and remembers their ids
-- as expired. Call only while holding the train's lock. None held: nothing
-- to do, and no call spent looking.
local function reclaim(t)
  if t.held_n <= 0 then return end
  local ids = redis.call('ZRANGE', t.expiry, '-inf', now(), 'BYSCORE', 'LIMIT', 0, RECLAIM)
  if #ids == 0 then return end
  local recs = redis.call('HMGET', t.holds, unpack(ids))
  local ended = {}
  for i, id in ipairs(ids) do
    if recs[i] then
      local user, n, expires, a, b = parse(recs[i])
      local got = placed(recs[i])
      if got then S.give_back(t, got, a, b) end
      move(t, a, b, n, 'held', 'free')
      charge(t, user, -n)
      ended[#ended + 1] = expires + MEMORY; ended[#ended + 1] = 'expired:' .. id
    end
  end
  redis.call('HDEL', t.holds, unpack(ids))
  redis.call('ZREM', t.expiry, unpack(ids))
  if #ended > 0 then remember(t, ended) end
end

-- Writes a train's new reservation records ({id, record, ...}). Redis
-- keeps a hash of up to 128 short fields as one packed list (listpack),
-- which each HSET searches end to end and grows by reallocating: on 1,000
-- trains that cost 2-2.5 µs more a record, up to a train's 128th
-- (docs/performance.md). A hash given a field longer than 64 bytes is a
-- hash table from then on, also once that field is gone; so when a train
-- has no reservation yet (`sold` was 0, so there is no hash), its first
-- write adds such a field and removes it at once. An operator's settings
-- (hash-max-listpack-*) or a restart (which packs small hashes again) only
-- bring the cost back, never change a record.
local WIDE = 'a field longer than 64 bytes makes a hash a hash table (prelude.lua)'
local function add_reservations(t, fields)
  if t.sold_0 ~= 0 then
    redis.call('HSET', t.reservations, unpack(fields))
    return
  end
  fields[#fields + 1], fields[#fields + 2] = WIDE, ''
  redis.call('HSET', t.reservations, unpack(fields))
  redis.call('HDEL', t.reservations, WIDE)
end

-- Stores the idempotency records (`records[k]` for KEYS[k]) of the
-- decisions in `decided`. Called after the train's bookings are written: a
-- write that fails (an operator gave a key the wrong type) then leaves no
-- record of a decision that was not carried out.
local function save_records(records, decided)
  for _, k in ipairs(decided) do
    redis.call('SET', KEYS[k], cjson.encode(records[k]), 'PX', MEMORY)
  end
end

-- The end of every script that changes trains: the counters written back
-- (one MSET), the per-user counts, the locks released; and, when
-- `booked_nothing` (a first run that decided nothing), the call's key removed.
local function finish(ts, booked_nothing)
  if booked_nothing then redis.call('DEL', KEYS[PER_TRAIN * #ts + 1]) end
  write_counters(ts)
  for _, t in ipairs(ts) do flush_users(t) end
  unlock(ts)
end

-- The stored answer of an Idempotency-Key (KEYS[k]), decoded; nil when none.
local function stored(k)
  local raw = redis.call('GET', KEYS[k])
  return raw and cjson.decode(raw)
end

-- === the script's own part follows ===
