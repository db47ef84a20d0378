-- wrk script for `make bench`: POST /reserve of a random journey on one of N
-- trains with ten stations ("j-0" .. "j-<N-1>", stations S0 .. S9, a very
-- large capacity; N from the TRAINS environment variable, 1,000 by
-- default): the many-trains case with legs. Most journeys are short (one
-- to three legs), one in four runs from a random station to the end.
-- TRAIN_PREFIX names other trains: "n-" for the numbered trains of
-- 2,000 seats, one seat a request, the service picking it (bench.py
-- spreads that load so that none sells out while measured).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local trains = tonumber(os.getenv("TRAINS") or "1000")
local prefix = os.getenv("TRAIN_PREFIX") or "j-"
math.randomseed(42)
request = function()
  local a = math.random(0, 8)
  local b
  if math.random() < 0.25 then b = 9 else b = math.min(9, a + math.random(1, 3)) end
  return wrk.format(nil, nil, nil,
    '{"train_id":"' .. prefix .. math.random(0, trains - 1) .. '","from":"S' .. a .. '","to":"S' .. b .. '"}')
end
