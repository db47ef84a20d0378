-- The peer's work in Redis (../shared/peers/axum/reserve.lua: the lock taken
-- with SET NX PX, stock read and decremented, the lock compared and deleted;
-- no record, no call key, no `sold`, no markers) for a whole group-commit
-- batch, in reserve_plain.lua's call layout. Not a script to run a service
-- on: a probe that asks what this service would do with the peer's work in
-- Redis (docs/performance.md, the eleventh round). To build the probe, copy
-- it over lua/reserve_plain.lua and set PLAIN_TRAIN_KEYS in
-- src/store/scripts.rs to ["stock", "lock"]; then compare the build with
-- `SPREAD=1 python3 bench/ab.py $PWD/target/release/train-reservation PROBE`
-- (absolute paths: the services start in a scratch directory), and
-- with the peer in `python3 bench/peer.py`.
-- KEYS: 2 per train: 1 stock, 2 lock; then the call's key (unused).
-- ARGV: 1 token, 2 lock PX, 3-6 unused; then per train its first key's
-- index (1, 3, 5, ...), its number of requests and their fields, 5 each:
-- reservation id, seats, and three unused.
-- Reply: five fields per request, as reserve_plain.lua's: 200 (booked), 400
-- (too few seats left) or 429 (a foreign lock), the id, seats left (or the
-- lock's ms to go), 0, ''.
local TOKEN, PX, NARGS = ARGV[1], ARGV[2], #ARGV
local out, pos = {}, 7
while pos <= NARGS do
  local b, n = tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])
  local first, last = pos + 2, pos + 2 + (n - 1) * 5
  local stock, lock = KEYS[b], KEYS[b + 1]
  if not redis.call('SET', lock, TOKEN, 'NX', 'PX', PX) then
    local ttl = redis.call('PTTL', lock)
    for p = first, last, 5 do
      out[#out + 1], out[#out + 2], out[#out + 3], out[#out + 4], out[#out + 5] = 429, ARGV[p], ttl, 0, ''
    end
  else
    local left, taken = tonumber(redis.call('GET', stock) or '0'), 0
    for p = first, last, 5 do
      local k, code = tonumber(ARGV[p + 1]), 400
      if left >= k then left, taken, code = left - k, taken + k, 200 end
      out[#out + 1], out[#out + 2], out[#out + 3], out[#out + 4], out[#out + 5] = code, ARGV[p], left, 0, ''
    end
    if taken > 0 then redis.call('DECRBY', stock, taken) end
    if redis.call('GET', lock) == TOKEN then redis.call('DEL', lock) end
  end
  pos = last + 5
end
return out
