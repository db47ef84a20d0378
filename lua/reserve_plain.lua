-- reserve_plain.lua: plain reservations (no stations, no numbered seats,
-- no seats held) on one or more trains, the common case, in 0.6-0.8x
-- reserve.lua's time inside Redis. reserve.lua pays its whole prelude (45
-- functions made, each train and request parsed into tables, the decisions
-- of journeys and seats) whether a call needs it or not; this script is the
-- plain booking alone, and takes only the keys and fields that needs
-- (turning a call's arguments into Lua is a third of its time). Anything
-- else it hands back, before its first write, to reserve.lua, which the
-- service then sends the same requests with the same token: so every other
-- decision and guarantee (re-sent calls, replayed Idempotency-Keys, expired
-- holds, journeys, seats) stays written once, in reserve.lua and the
-- prelude, and tests/reserve_plain.rs holds the two to the same answers and
-- keys.
--
-- KEYS: 7 per train: 1 stock, 2 sold, 3 held, 4 lock, 5 reservations,
-- 6 users, 7 legs; then the call's key (`call:TOKEN` of its first train),
-- the followed call's key when ARGV[6] names it, the idempotency records.
-- ARGV: 1 token, 2 lock PX, 3 memory PX, 4 per-user limit, 5 call key PX,
-- 6 the followed call's key index (0 = none), as prelude.lua's; then per
-- train its first key's index (1, 8, 15, ...), its number of requests and
-- their fields, 5 each: reservation id, seats, user, idempotency record
-- (its KEYS index, 0 = none), fingerprint (reserve.lua's first five; the
-- service sends here no request that names stations or seats).
-- Reply: reserve.lua's five fields per request (200, 400, 404, 409, 429),
-- in the order sent; or, when reserve.lua must decide (nothing was
-- written), status 0 for every request, with n = 1 for the requests of the
-- train that made it so: one with stations or numbered seats, seats held,
-- or a counter that is not an integer (n = 0 otherwise: an Idempotency-Key
-- has an answer stored or comes twice, or the call was sent before: its
-- key exists).

local PER_TRAIN, WIDTH = 7, 5
-- An integer argument or counter (as prelude.lua's int); nil when v is not one.
local function int(v)
  local x = tonumber(v)
  if x and x % 1 == 0 then return x end
  return nil
end
local function bad() return redis.error_reply('ERR reserve_plain.lua: bad arguments') end
local NARGS, NKEYS, TOKEN = #ARGV, #KEYS, ARGV[1]
local LOCK_TTL, MEMORY, LIMIT, CALL_MEMORY, AFTER = int(ARGV[2]), int(ARGV[3]), int(ARGV[4]), int(ARGV[5]), int(ARGV[6])
if #TOKEN == 0 or not (LOCK_TTL and LOCK_TTL >= 1 and MEMORY and MEMORY >= 1 and LIMIT and LIMIT >= 0
    and CALL_MEMORY and CALL_MEMORY >= 1 and AFTER and AFTER >= 0) then
  return bad()
end
local SEATS = {['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5,
               ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9, ['10'] = 10}

-- The trains, by position in the call (a table per train costs more):
-- train i's keys start at KEYS[7 * (i - 1) + 1]; its members' fields at
-- ARGV[span[2i - 1]], the last at ARGV[span[2i]]; `keys`, what the MGET
-- below reads.
local span, keys = {}, {}
local trains, pos = 0, 7
while pos <= NARGS do
  local b, n = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
  if b ~= PER_TRAIN * trains + 1 or not n or n < 1 or b + PER_TRAIN > NKEYS
      or pos + 1 + n * WIDTH > NARGS then
    return bad()
  end
  trains = trains + 1
  span[2 * trains - 1], span[2 * trains] = pos + 2, pos + 2 + (n - 1) * WIDTH
  keys[4 * trains - 3], keys[4 * trains - 2], keys[4 * trains - 1], keys[4 * trains] =
    KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 6]
  pos = pos + 2 + n * WIDTH
end
local CALL_KEY = PER_TRAIN * trains + 1
if trains == 0 or (AFTER ~= 0 and (AFTER ~= CALL_KEY + 1 or AFTER > NKEYS)) then return bad() end
local first_record = CALL_KEY + (AFTER > 0 and 2 or 1)

-- Every request checked as reserve.lua checks it; the idempotency records
-- named (each once, or the call is reserve.lua's).
local twice, records, named = false, nil, nil
for i = 1, trains do
  for p = span[2 * i - 1], span[2 * i], WIDTH do
    local user, idem = ARGV[p + 2], ARGV[p + 3]
    local k = idem == '0' and 0 or int(idem)
    if #ARGV[p] == 0 or not SEATS[ARGV[p + 1]] or not (user == '' or string.match(user, '^".*"$'))
        or not k or (k ~= 0 and (k < first_record or k > NKEYS)) then
      return bad()
    end
    if k > 0 then
      named, records = named or {}, records or {}
      if named[k] then twice = true end
      named[k] = true
      records[#records + 1] = KEYS[k]
    end
  end
end

-- Status 0 for every request; n = 1 for those of the train at `culprit`.
local function hand_back(culprit)
  local out = {}
  for i = 1, trains do
    for p = span[2 * i - 1], span[2 * i], WIDTH do
      out[#out + 1], out[#out + 2], out[#out + 3], out[#out + 4], out[#out + 5] =
        0, ARGV[p], i == culprit and 1 or 0, 0, ''
    end
  end
  return out
end
if twice then return hand_back(0) end
if AFTER ~= 0 and redis.call('EXISTS', KEYS[AFTER]) == 0 then
  return redis.error_reply('FENCED the call this one follows has not run')
end

-- Reads (nothing written yet): every train's stock, sold, held and legs in
-- one MGET; train i's stock and sold then as numbers at v[4i - 3] (false:
-- no such train) and v[4i - 2]. And the idempotency records.
local v = redis.call('MGET', unpack(keys))
for i = 1, trains do
  local q = 4 * i
  if v[q - 3] then
    local left, taken, held = int(v[q - 3]), int(v[q - 2] or '0'), v[q - 1]
    if v[q] or (held and held ~= '0') or not left or not taken then return hand_back(i) end
    v[q - 3], v[q - 2] = left, taken
  end
end
if records and redis.call('EXISTS', unpack(records)) > 0 then return hand_back(0) end

-- The call's key: its first write; a call sent before is reserve.lua's.
if not redis.call('SET', KEYS[CALL_KEY], '1', 'NX', 'PX', string.format('%d', CALL_MEMORY)) then
  return hand_back(0)
end

local LOCK_PX = string.format('%d', LOCK_TTL)
local now = redis.call('TIME')
local at = string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000))
local out, n_out, counters, locks, users = {}, 0, {}, {}, nil
local WIDE = 'a field longer than 64 bytes makes a hash a hash table (prelude.lua)'
for i = 1, trains do
  local b, left, taken = PER_TRAIN * (i - 1) + 1, v[4 * i - 3], v[4 * i - 2]
  local lock_left
  if left then
    if redis.call('SET', KEYS[b + 3], TOKEN, 'NX', 'PX', LOCK_PX) then
      locks[#locks + 1] = KEYS[b + 3]
    else
      lock_left = redis.call('PTTL', KEYS[b + 3])
      if lock_left <= 0 then lock_left = LOCK_TTL end
    end
  end
  -- Seats per user on this train (`had`: stored, read when the limit
  -- needs it, plus this call's bookings) and this call's bookings alone.
  local had, mine, fields, decided = nil, nil, nil, nil
  for p = span[2 * i - 1], span[2 * i], WIDTH do
    local id, text, user = ARGV[p], ARGV[p + 1], ARGV[p + 2]
    local n, status, reply = SEATS[text], 200, nil
    if not left then
      status, reply = 404, 0
    elseif lock_left then
      status, reply = 429, lock_left
    else
      if user ~= '' and not (had and had[user]) then
        had, mine = had or {}, mine or {}
        had[user] = LIMIT > 0 and tonumber(redis.call('HGET', KEYS[b + 5], cjson.decode(user)) or '0') or 0
      end
      if LIMIT > 0 and user ~= '' and had[user] + n > LIMIT then
        status, reply = 409, had[user]
      elseif left < n then
        status, reply = 400, left
      else
        left, taken = left - n, taken + n
        reply = left
        if user ~= '' then
          had[user], mine[user] = had[user] + n, (mine[user] or 0) + n
        end
        fields = fields or {}
        fields[#fields + 1] = id
        fields[#fields + 1] = '{"user_id":' .. (user == '' and 'null' or user) .. ',"seats":' .. text ..
          ',"created_at_ms":' .. at .. '}'
        local k = tonumber(ARGV[p + 3])
        if k > 0 then
          decided = decided or {}
          decided[#decided + 1], decided[#decided + 2] =
            k, cjson.encode({status = 200, id = id, n = left, fp = ARGV[p + 4], x = ''})
        end
      end
    end
    out[n_out + 1], out[n_out + 2], out[n_out + 3], out[n_out + 4], out[n_out + 5] = status, id, reply, 0, ''
    n_out = n_out + 5
  end
  -- The train's bookings, as prelude.lua's add_reservations and
  -- save_records write them.
  if fields then
    if v[4 * i - 2] == 0 then
      fields[#fields + 1], fields[#fields + 2] = WIDE, ''
      redis.call('HSET', KEYS[b + 4], unpack(fields))
      redis.call('HDEL', KEYS[b + 4], WIDE)
    else
      redis.call('HSET', KEYS[b + 4], unpack(fields))
    end
    for d = 1, decided and #decided or 0, 2 do
      redis.call('SET', KEYS[decided[d]], decided[d + 1], 'PX', string.format('%d', MEMORY))
    end
    local c = #counters
    counters[c + 1], counters[c + 2], counters[c + 3], counters[c + 4] =
      KEYS[b], string.format('%d', left), KEYS[b + 1], string.format('%d', taken)
    if mine then
      users = users or {}
      users[#users + 1], users[#users + 2] = b + 5, mine
    end
  end
end

-- As prelude.lua's finish: the call's key dropped when nothing was booked,
-- the counters, the per-user counts, the locks compared and deleted.
if #counters == 0 then redis.call('DEL', KEYS[CALL_KEY]) end
if #counters > 0 then redis.call('MSET', unpack(counters)) end
for u = 1, users and #users or 0, 2 do
  for user, n in pairs(users[u + 1]) do redis.call('HINCRBY', KEYS[users[u]], cjson.decode(user), n) end
end
if #locks == 1 then
  local held_by = redis.call('GETDEL', locks[1])
  if held_by and held_by ~= TOKEN then redis.call('SET', locks[1], held_by, 'PX', LOCK_PX) end
elseif #locks > 1 then
  local tokens, ours = redis.call('MGET', unpack(locks)), {}
  for i, key in ipairs(locks) do
    if tokens[i] == TOKEN then ours[#ours + 1] = key end
  end
  if #ours > 0 then redis.call('DEL', unpack(ours)) end
end
return out
