-- wrk script for `make bench`: POST /reserve of a random journey on one of N
-- numbered trains ("n-0" .. "n-<N-1>", stations S0 .. S9, 25 coaches of 20
-- rows "AB_CD": 2,000 seats each; N from the TRAINS environment variable,
-- 20 by default), one seat a request, the service picking it (best fit).
-- The journeys are those of journeys.lua (same seed, same mix: most one to
-- three legs, one in four from a random station to the end). `bench.py`
-- spreads the load over enough trains that none sells out while measured,
-- so every answer should be a 200; it treats any other as an error.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local trains = tonumber(os.getenv("TRAINS") or "20")
math.randomseed(42)
request = function()
  local a = math.random(0, 8)
  local b
  if math.random() < 0.25 then b = 9 else b = math.min(9, a + math.random(1, 3)) end
  return wrk.format(nil, nil, nil,
    '{"train_id":"n-' .. math.random(0, trains - 1) .. '","from":"S' .. a .. '","to":"S' .. b .. '"}')
end
