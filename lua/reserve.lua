-- reserve.lua: book seats on one train for one or more requests, atomically,
-- in arrival order. The service sends a lone request alone and groups those
-- that queue up while a call is in flight (group commit): one call, one lock,
-- one fsync for all of them. Runs after prelude.lua (KEYS, common ARGV).
--
-- ARGV[5..], 5 per request: reservation id (a fresh UUID), seats (1..10),
-- user ('' or a JSON string), idempotency record (its index in KEYS, 0 =
-- none), request fingerprint
-- Reply, 4 per request in the same order: status, reservation id, n, replayed
--   200 booked, n = seats left     400 sold out, n = seats left
--   409 over the per-user limit, n = seats the user already has
--   429 lock held by someone else, n = ms until it frees (nothing decided)
--   404 no such train              422 idempotency key reused for another request
--   replayed = 1 when the answer is the stored decision of an earlier request.
--
-- Running the same call twice (a client library's retry) books nothing
-- twice: each reservation id is recorded, and found again, also after a
-- cancel (`ended` remembers `cancelled:ID`).

local reqs = members(5)
if not reqs then return redis.error_reply('ERR reserve.lua: bad arguments') end
for i, r in ipairs(reqs) do
  r.seats, r.idem = tonumber(r[2]), tonumber(r[4])
  if #r[1] == 0 or not r.seats or r.seats < 1 or r.seats > 10 or r.seats % 1 ~= 0
      or not valid_user(r[3]) or not r.idem or (r.idem ~= 0 and (r.idem < 11 or r.idem > #KEYS)) then
    return redis.error_reply('ERR reserve.lua: bad arguments for request ' .. i)
  end
end

local out = {}
local function answer(status, id, n, replayed)
  out[#out + 1] = status; out[#out + 1] = id; out[#out + 1] = n; out[#out + 1] = replayed
end

local stock, sold, held = counters()
if not stock then
  for _, r in ipairs(reqs) do answer(404, r[1], 0, 0) end
  return out
end
-- Reads that could fail (a key of the wrong type) all happen here, first.
local records = {}
for k = 11, #KEYS do records[k] = stored(k) end
local ids, cancelled = {}, {}
for i, r in ipairs(reqs) do ids[i], cancelled[i] = r[1], 'cancelled:' .. r[1] end
local found = redis.call('HMGET', KEYS[6], unpack(ids))
local gone = redis.call('ZMSCORE', KEYS[10], unpack(cancelled))

local locked, lock_left = nil, 0
local booked, fields = 0, {}
for i, r in ipairs(reqs) do
  local rec = r.idem > 0 and records[r.idem]
  if rec then
    if rec.fp ~= r[5] then answer(422, r[1], 0, 0)
    -- The same id is this very request, re-sent after a reconnect: not a replay.
    else answer(rec.status, rec.id, rec.n, rec.id == r[1] and 0 or 1) end
  elseif found[i] or gone[i] then
    answer(200, r[1], stock, 0)
  else
    if locked == nil then
      lock_left = lock()
      locked = lock_left ~= nil
      if not locked then
        local back = reclaim(held)
        stock, held = stock + back, held - back
      end
    end
    if locked then
      answer(429, r[1], lock_left, 0)
    elseif LIMIT > 0 and r[3] ~= '' and seats_of(r[3]) + r.seats > LIMIT then
      answer(409, r[1], seats_of(r[3]), 0)
    else
      local status = 400
      if stock >= r.seats then
        status, stock, booked = 200, stock - r.seats, booked + r.seats
        charge(r[3], r.seats)
        fields[#fields + 1] = r[1]
        fields[#fields + 1] = record(r[3], r.seats, 'created_at_ms', now())
      end
      answer(status, r[1], stock, 0)
      if r.idem > 0 then
        records[r.idem] = {status = status, id = r[1], n = stock, fp = r[5]}
        redis.call('SET', KEYS[r.idem], cjson.encode(records[r.idem]), 'PX', MEMORY)
      end
    end
  end
end

if booked > 0 then
  redis.call('DECRBY', KEYS[1], booked)
  redis.call('INCRBY', KEYS[3], booked)
  redis.call('HSET', KEYS[6], unpack(fields))
end
flush_users()
if locked == false then unlock() end
return out
