-- wrk script for `make bench`: POST /reserve on the hot train from 10,000
-- clients, told apart by X-Forwarded-For (the service runs with
-- TRUST_FORWARDED_FOR=true): what the rate limit costs when every client
-- stays under it, the common case.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"train_id":"bench"}'
math.randomseed(7)
request = function()
  local n = math.random(0, 9999)
  return wrk.format(nil, nil, {["X-Forwarded-For"] = "10." .. math.floor(n / 256) % 256 .. "." .. n % 256 .. ".1"}, nil)
end
