-- wrk script for `make bench`: POST /reserve on one of 1,000 trains
-- ("s-0" .. "s-999", each with a very large stock), chosen uniformly at
-- random per request: the many-trains case of group commit.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(42)
request = function()
  return wrk.format(nil, nil, nil, '{"train_id":"s-' .. math.random(0, 999) .. '"}')
end
