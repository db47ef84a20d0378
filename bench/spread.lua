-- wrk script for `make bench`: POST /reserve on one of N trains ("s-0" ..
-- "s-<N-1>", each with a very large stock; N from the TRAINS environment
-- variable, 1,000 by default), chosen uniformly at random per request: the
-- many-trains case of group commit.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local trains = tonumber(os.getenv("TRAINS") or "1000")
math.randomseed(42)
request = function()
  return wrk.format(nil, nil, nil, '{"train_id":"s-' .. math.random(0, trains - 1) .. '"}')
end
