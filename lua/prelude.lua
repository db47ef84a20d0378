-- prelude.lua: what every script that changes trains shares. The service
-- sends it in front of each script's own text (src/store/scripts.rs), so each
-- script stays one self-contained EVALSHA while the lock, the clock, the hold
-- expiry and the per-user count are written once.
--
-- One call may carry requests for several trains (group commit batches by
-- what one call may touch: any keys on one Redis, one hash slot on a
-- cluster). Each train keeps its own lock, counters and decisions.
--
-- KEYS: 11 per train, in this order: 1 stock  2 capacity  3 sold  4 held
--   5 lock  6 reservations  7 holds  8 hold_expiry  9 users  10 ended
--   11 legs (see "Journeys" below);
--   then this call's own key (`call:TOKEN` of its first train, see
--   first_run); then, if it follows another call (see follows), that
--   call's key; then the idempotency records the members name.
-- ARGV: 1 token (a fresh UUID per call: the lock's, and the call's key's)
--   2 lock PX in ms  3 memory in ms (idempotency records and ended ids are
--   kept this long)  4 seats one user may have on a train (0 = no limit)
--   5 how long a call's key is kept, in ms  6 the KEYS index of the followed
--   call's key (0 = none); then, per train: the KEYS index of its stock key
--   (1, 12, 23, ...), its number of members, and its members' fields.
--
-- `ended` is a sorted set of ids that ended, scored by when they may be
-- forgotten: `expired:ID` (a hold's seats went back by expiry: 410 for 24 h
-- after it expired), `released:ID` and `cancelled:ID` (a re-sent call must
-- never bring them back: kept for the call window, CALL_MEMORY, and no
-- longer, so a hold-and-release loop cannot grow Redis).

local function int(v) return v and string.match(v, '^%-?%d+$') and tonumber(v) end

-- Keys per train in KEYS.
local PER_TRAIN = 11

-- The PX arguments go to Redis as the texts they came as: Redis 7.0 formats
-- a Lua number with printf's %.17g each time one is passed.
local TOKEN, LOCK_PX, CALL_PX = ARGV[1], ARGV[2], ARGV[5]
local LOCK_TTL, MEMORY, LIMIT, CALL_MEMORY = int(LOCK_PX), int(ARGV[3]), int(ARGV[4]), int(CALL_PX)
local AFTER = int(ARGV[6])
if #TOKEN == 0 or not LOCK_TTL or LOCK_TTL < 1 or not MEMORY or MEMORY < 1
    or not LIMIT or LIMIT < 0 or not CALL_MEMORY or CALL_MEMORY < 1 or not AFTER or AFTER < 0 then
  return redis.error_reply('ERR train script: bad common arguments')
end
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
               ended = KEYS[base + 9], legs = KEYS[base + 10],
               members = {}, stored_seats = {}, changed = {},
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

-- Reads a train's stations and leg counters (only trains with stations:
-- the fields it adds are not named in `trains`, whose table would then
-- outgrow its 32 slots for every train, with or without stations).
local function load_legs(t, raw)
  local ok, legs = pcall(cjson.decode, raw)
  local route = ok and type(legs) == 'table' and legs.stations
  if type(route) ~= 'table' or #route < 2 then error('the legs of a train are unreadable') end
  local n = #route - 1
  t.route, t.stop, t.nlegs = route, {}, n
  for i, name in ipairs(route) do t.stop[name] = i - 1 end
  t.free, t.on, t.dirty = {}, {sold = {}, held = {}}, false
  for k = 0, n - 1 do
    t.free[k], t.on.sold[k], t.on.held[k] = legs.free[k + 1], legs.sold[k + 1], legs.held[k + 1]
    if type(t.free[k]) ~= 'number' or type(t.on.sold[k]) ~= 'number' or type(t.on.held[k]) ~= 'number' then
      error('a leg counter is not a number')
    end
  end
end

-- The `legs` string of a train (as load_legs reads it).
local function legs_json(t)
  local free, sold, held = {}, {}, {}
  for k = 0, t.nlegs - 1 do
    free[k + 1] = string.format('%d', t.free[k])
    sold[k + 1] = string.format('%d', t.on.sold[k])
    held[k + 1] = string.format('%d', t.on.held[k])
  end
  return '{"stations":' .. cjson.encode(t.route) .. ',"free":[' .. table.concat(free, ',') ..
    '],"sold":[' .. table.concat(sold, ',') .. '],"held":[' .. table.concat(held, ',') .. ']}'
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

-- Seats free on every leg of a journey (stations a to b).
local function room(t, a, b)
  if not t.route then return t.stock_n end
  local m = t.free[a]
  for k = a + 1, b - 1 do if t.free[k] < m then m = t.free[k] end end
  return m
end

-- Moves n seats of a journey's legs between free, sold and held (`from`
-- and `to` each one of those names), and the totals with them.
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

-- A station's name as JSON (for records and answers).
local function station(t, i) return cjson.encode(t.route[i + 1]) end

-- What an answer about a journey adds (a JSON object's fields, '' on a
-- train without stations): from and to; with `short` (seats asked), the
-- legs that lack them.
local function journey_fields(t, a, b, short)
  if not t.route then return '' end
  local out = '{"from":' .. station(t, a) .. ',"to":' .. station(t, b)
  if short then
    local full = {}
    for k = a, b - 1 do
      if t.free[k] < short then
        full[#full + 1] = '{"from":' .. station(t, k) .. ',"to":' .. station(t, k + 1) ..
          ',"remaining":' .. string.format('%d', t.free[k]) .. '}'
      end
    end
    out = out .. ',"full_legs":[' .. table.concat(full, ',') .. ']'
  end
  return out .. '}'
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
-- all and one DEL removes those that still hold our token.
local function unlock(ts)
  local keys = {}
  for _, t in ipairs(ts) do
    if t.mine then keys[#keys + 1] = t.lock end
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
local function seats_of(t, user)
  if t.stored_seats[user] == nil then
    t.stored_seats[user] = tonumber(redis.call('HGET', t.users, cjson.decode(user)) or '0')
  end
  return t.stored_seats[user] + (t.changed[user] or 0)
end
local function charge(t, user, seats)
  if user ~= '' then t.changed[user] = (t.changed[user] or 0) + seats end
end
local function flush_users(t)
  for user, delta in pairs(t.changed) do
    local name = cjson.decode(user)
    if delta > 0 then
      redis.call('HINCRBY', t.users, name, delta)
    elseif delta < 0 and redis.call('HINCRBY', t.users, name, delta) <= 0 then
      redis.call('HDEL', t.users, name)
    end
  end
  t.changed = {}
end

-- A hold or reservation record: user ('' when anonymous, else its JSON
-- literal), seats, and expires_at_ms (holds) or created_at_ms (numbers, or
-- their plain text); on a train with stations also the journey's stations
-- a and b (the record names them as from, to and, for the scripts,
-- "stops":[a,b] right before the time); 0, 1 on a train without.
local function parse(rec)
  local user, seats, at = string.match(rec, '^{"user_id":(.-),"seats":(%d+),.-"[a-z_]+":(%d+)}$')
  if not user then error('unreadable record ' .. rec) end
  local a, b = string.match(rec, '"stops":%[(%d+),(%d+)%],"[a-z_]+":%d+}$')
  user = user == 'null' and '' or user
  if a then return user, tonumber(seats), tonumber(at), tonumber(a), tonumber(b) end
  return user, tonumber(seats), tonumber(at), 0, 1
end
local function record(t, user, seats, a, b, field, at)
  local trip = ''
  if t.route then
    trip = ',"from":' .. station(t, a) .. ',"to":' .. station(t, b) ..
      ',"stops":[' .. a .. ',' .. b .. ']'
  end
  return '{"user_id":' .. (user == '' and 'null' or user) .. ',"seats":' .. seats .. trip ..
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
      move(t, a, b, n, 'held', 'free')
      charge(t, user, -n)
      ended[#ended + 1] = expires + MEMORY; ended[#ended + 1] = 'expired:' .. id
    end
  end
  redis.call('HDEL', t.holds, unpack(ids))
  redis.call('ZREM', t.expiry, unpack(ids))
  if #ended > 0 then remember(t, ended) end
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
