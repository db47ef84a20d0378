-- wrk script for `make bench`: every request is POST /trains/hbench/holds
-- with one seat and the longest ttl (a very large stock, so every answer
-- should be a 201). `bench.py` treats any non-2xx answer as an error.
wrk.method = "POST"
wrk.body = '{"seats":1,"ttl_ms":900000}'
wrk.headers["Content-Type"] = "application/json"
