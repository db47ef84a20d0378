-- train.lua: one consistent snapshot of a train, for GET /trains/{id} and /readyz.
-- Read-only.
--
-- KEYS[1] stock   KEYS[2] capacity   KEYS[3] sold   KEYS[4] lock
-- Reply {stock, capacity, sold, lock pttl}: the first three are the raw values
-- (nil when missing; a train exists when its stock does), the last is PTTL
-- (-2 no lock, -1 a lock without expiry).

local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
v[4] = redis.call('PTTL', KEYS[4])
return v
