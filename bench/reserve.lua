-- wrk script for `make bench`: every request is POST /reserve on the bench
-- train (a very large stock, so every answer should be a 200). wrk counts
-- non-2xx answers itself; `bench.py` treats any of them as an error.
wrk.method = "POST"
wrk.body = '{"train_id":"bench"}'
wrk.headers["Content-Type"] = "application/json"
