-- reserve_one.lua: one reservation on one plain train (no stations, no
-- numbered seats, no seats held), the common case of a lone request, in
-- about 0.6x reserve.lua's time inside Redis. A lone call pays
-- reserve.lua's whole prelude (45 functions made, the call parsed into
-- tables) for one booking; this script is the booking alone. Anything else
-- it hands back, before its first write, to reserve.lua, which the service
-- then sends the very same call: so every decision but this one, and every
-- guarantee (re-sent calls, replayed Idempotency-Keys, expired holds,
-- journeys, seats), stays written once, in reserve.lua and the prelude.
--
-- KEYS and ARGV: exactly those of a reserve.lua call with one train and one
-- request (see prelude.lua): KEYS 1 stock, 3 sold, 4 held, 5 lock,
-- 6 reservations, 9 users, 11 legs of the train's 13; 14 the call's key;
-- 15 the followed call's key when ARGV[6] is 15; then the request's
-- idempotency record, if any. ARGV 1 token, 2 lock PX, 3 memory PX, 4 per-user
-- limit, 5 call key PX, 6 the followed call's key index (0 = none), 7 '1',
-- 8 '1', 9-18 the request's ten fields (reserve.lua).
-- Reply: reserve.lua's five fields for the request (200, 400, 404, 409, 429);
-- status 0 when reserve.lua must decide (nothing was written): the train has
-- stations or numbered seats, seats held, a counter that is not an integer,
-- the request names a journey or seats, its Idempotency-Key has an answer
-- stored, or the call was sent before (its key exists).

local token, id, seats, user, idem, fp = ARGV[1], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
-- An integer argument or counter (as prelude.lua's int); nil when v is not one.
local function int(v)
  local x = tonumber(v)
  if x and x % 1 == 0 then return x end
  return nil
end
local lock_ms, memory, limit, call_ms, after = int(ARGV[2]), int(ARGV[3]), int(ARGV[4]), int(ARGV[5]), int(ARGV[6])
local n = ({['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5,
            ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9, ['10'] = 10})[seats]
local record_key = idem ~= '0' and 15 + (after == 15 and 1 or 0) or nil
if #ARGV ~= 18 or ARGV[7] ~= '1' or ARGV[8] ~= '1' or #token == 0 or #id == 0 or not n
    or not (lock_ms and lock_ms >= 1 and memory and memory >= 1 and limit and limit >= 0
            and call_ms and call_ms >= 1 and (after == 0 or after == 15))
    or (user ~= '' and not string.match(user, '^".*"$'))
    or (record_key and tonumber(idem) ~= record_key)
    or #KEYS ~= 14 + (after == 15 and 1 or 0) + (record_key and 1 or 0) then
  return redis.error_reply('ERR reserve_one.lua: bad arguments')
end
local HAND_BACK = {0, id, 0, 0, ''}
if ARGV[14] ~= '' or ARGV[15] ~= '' or ARGV[16] ~= '' or ARGV[17] ~= '' or ARGV[18] ~= '' then
  return HAND_BACK
end
if after == 15 and redis.call('EXISTS', KEYS[15]) == 0 then
  return redis.error_reply('FENCED the call this one follows has not run')
end

-- Reads (nothing written yet).
local v = redis.call('MGET', KEYS[1], KEYS[3], KEYS[4], KEYS[11])
if not v[1] then return {404, id, 0, 0, ''} end
local stock, sold = int(v[1]), int(v[2] or '0')
if v[4] or (v[3] and v[3] ~= '0') or not stock or not sold then
  return HAND_BACK
end
if record_key and redis.call('EXISTS', KEYS[record_key]) == 1 then return HAND_BACK end
local name = user ~= '' and cjson.decode(user)
local had = limit > 0 and name and tonumber(redis.call('HGET', KEYS[9], name) or '0')

-- The call's key: its first write; a call sent before is reserve.lua's.
if not redis.call('SET', KEYS[14], '1', 'NX', 'PX', string.format('%d', call_ms)) then return HAND_BACK end
local function nothing(reply)
  redis.call('DEL', KEYS[14])
  return reply
end
if not redis.call('SET', KEYS[5], token, 'NX', 'PX', string.format('%d', lock_ms)) then
  local left = redis.call('PTTL', KEYS[5])
  return nothing({429, id, left > 0 and left or lock_ms, 0, ''})
end
local function unlock()
  local held_by = redis.call('GETDEL', KEYS[5])
  if held_by and held_by ~= token then redis.call('SET', KEYS[5], held_by, 'PX', string.format('%d', lock_ms)) end
end
if had and had + n > limit then
  unlock()
  return nothing({409, id, had, 0, ''})
end
if stock < n then
  unlock()
  return nothing({400, id, stock, 0, ''})
end

-- The booking, written as reserve.lua writes it (prelude.lua: record,
-- add_reservations, save_records, finish).
local now = redis.call('TIME')
local at = string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000))
local rec = '{"user_id":' .. (user == '' and 'null' or user) .. ',"seats":' .. seats .. ',"created_at_ms":' .. at .. '}'
if sold == 0 then
  local WIDE = 'a field longer than 64 bytes makes a hash a hash table (prelude.lua)'
  redis.call('HSET', KEYS[6], id, rec, WIDE, '')
  redis.call('HDEL', KEYS[6], WIDE)
else
  redis.call('HSET', KEYS[6], id, rec)
end
local left = stock - n
if record_key then
  redis.call('SET', KEYS[record_key], cjson.encode({status = 200, id = id, n = left, fp = fp, x = ''}),
    'PX', string.format('%d', memory))
end
redis.call('MSET', KEYS[1], string.format('%d', left), KEYS[3], string.format('%d', sold + n))
if name then redis.call('HINCRBY', KEYS[9], name, n) end
unlock()
return {200, id, left, 0, ''}
