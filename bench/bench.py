#!/usr/bin/env python3
"""`make bench`: how fast the service sells seats, next to how fast Redis alone
runs the same script.

Two passes, each with a private redis-server (first without persistence, then
with AOF `appendfsync always`, as the embedded default runs) and the release
binary in front of it:

  1. wrk, 64 connections, POST /reserve on a train with a very large stock,
     after a warm-up: successful reservations/s, p50, p99, errors;
  2. wrk, 1 connection: latency when traffic is light;
  3. wrk, 64 connections, POST /trains/{id}/holds: holds/s (group-committed
     like reservations);
  3b. wrk, 64 connections, POST /reserve spread uniformly over 1,000 trains
     (bench/spread.lua): group commit across trains, and its ratio to the
     one hot train;
  3c. the same over 1,000 trains with ten stations each, random journeys
     (bench/journeys.lua: mostly one to three legs, a quarter to the end):
     what selling per leg costs;
  3d. the ceiling (no persistence pass only): nginx answering a fixed 200
     with a small JSON body, 64 connections, on the same cores: what HTTP
     alone costs here, and the hot train's ratio to it; and the service's
     own floor: GET /healthz (hyper on the same runtime, no Redis), so the
     gap between the two rows is the reservation's own work;
  3e. the journeys of 3c, one seat each, on numbered trains (bench/journeys.lua with TRAIN_PREFIX=n-:
     10 stations, 2,000 seats each, 25 coaches x 20 rows "AB_CD", made with
     PUT /trains/{id}), the service picking the seat: what numbered seats
     cost, and its ratio to the one hot train (target: at least 0.6). The
     load is spread over enough trains (at least 20; more on a fast machine:
     at most SEAT_TRAIN_BUDGET reservations a train at row 3c's rate, or
     BENCH_SEAT_TRAINS) that none comes near selling out while measured;
     afterwards every train is checked seat by seat (check_seats) and must
     still have a seat free over the whole route;
  4. redis-benchmark running the project's own reserve script (prelude.lua +
     reserve.lua) with realistic arguments (a fresh reservation id per call
     via -r), 50 clients, unpipelined: the ceiling of one script call per
     reservation.

`make bench` then runs the peer comparison (bench/peer.py): this service
against the straightforward peer in ../shared/peers/axum, built there, on
one hot train and on 1,000 trains at 64, 16, 4 and 1 connections, with the
goals of the "many trains at once" issue said met or not.

With BENCH_BASELINE=/path/to/an/older/train-reservation, the no-persistence
pass also runs the 64-connection /reserve load against that binary, on the
same Redis, so two versions compare within one run.

Then what metrics recording costs on the hot path: the 64-connection pass
(no persistence) against two services on one Redis, one recording metrics
(the default) and one with METRICS=off, in rounds of one short run each, in
alternating order (BENCH_OVERHEAD_ROUNDS rounds of BENCH_OVERHEAD_SECONDS
runs, default 8 x 4 s). It prints the medians and the ratio: the median of
each round's on/off ratio, two runs next to each other in time, so the drift
of whatever else shares the cores cancels (target: at least 0.97). It also
prints the service's own CPU time per reservation (from /proc), which other
work moves less than throughput. BENCH_OVERHEAD_ONLY=1 runs only this part.
The same way, the AOF ratio: a service on a Redis with AOF `appendfsync
always` against one on a Redis without persistence, alternating (target:
at least 0.8), since the two passes' own hot-train rows run minutes apart.

Where the time goes: for the hot train, the 1,000 trains and /healthz, the
service's CPU per answer (/proc) and Redis's per reservation (INFO cpu), and
reservations per script call (INFO commandstats): the figures every
performance change is judged by (docs/performance.md).

Prints the tables, with the service's peak RSS and the ratio of its rate to the
redis-benchmark rate. Loopback only, bounded in time, stops what it started by
PID. Exits non-zero if any request errored or a train was oversold.

A simulated day on numbered seats (bench/seat_day.py, its own Redis and
service, a few seconds; rates play no part in it): one 400-seat train of
ten stations, a fixed seeded sequence of journeys and groups, sent one at
a time until nothing more fits, to two fresh trains: one where the service
picks the seats (best fit), one where the client takes the lowest-numbered
free seats from the seat map (first fit, `seat_ids`). Prints seat-legs
sold, requests booked and requests refused although every leg had room,
side by side, and checks that the service's policy sells at least as many
seat-legs (PASS/FAIL). Every answer is checked against the client's own
record of what it booked.

BENCH_SEATS_ONLY=1 runs only the numbered-seat parts: the no-persistence
pass's hot train (for the ratio) and numbered-train rows (trains sized by
the hot train's rate), and the simulated day (with BENCH_SECONDS=2, about
half a minute). BENCH_DAY_SEED replays the day with another sequence.

Then the same paired runs for the rate limit: RATE_LIMIT_PER_CLIENT at a
limit wrk never reaches (every request checked, none refused) against the
default (off); and with 10,000 clients each under it (bench/clients.lua,
X-Forwarded-For behind TRUST_FORWARDED_FOR).
"""

import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import seat_day

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "train-reservation"
WRK_SCRIPT = ROOT / "bench" / "reserve.lua"
WRK_HOLD_SCRIPT = ROOT / "bench" / "hold.lua"
WRK_SPREAD_SCRIPT = ROOT / "bench" / "spread.lua"
SPREAD_TRAINS = 1000
RESERVE_LUA = (ROOT / "lua" / "prelude.lua").read_text() + (ROOT / "lua" / "reserve.lua").read_text()
# The keys of a train in a script call, in src/store/scripts.rs's TRAIN_KEYS order.
TRAIN_KEYS = ("stock", "capacity", "sold", "held", "lock", "reservations", "holds", "hold_expiry", "users", "ended",
              "legs", "seats", "coaches")
WRK_JOURNEY_SCRIPT = ROOT / "bench" / "journeys.lua"
JOURNEY_STATIONS = [f"S{i}" for i in range(10)]
WRK_SEATS_SCRIPT = ROOT / "bench" / "journeys.lua"  # with TRAIN_PREFIX=n-
# 25 coaches x 20 rows x 4 seats: 2,000 seats, a train's most.
SEAT_COACHES = [{"coach": str(c), "class": "second", "rows": 20, "layout": "AB_CD"} for c in range(1, 26)]
SEAT_TRAINS_MIN = 20
# Reservations a numbered train takes, at most, over the warm-up and the
# measured run. journeys.lua's mix puts about 0.42 seats a reservation on
# the busiest leg (the last): 2,000 reservations leave ~1,150 of its 2,000
# seats free, and the first refusal comes near 4,600 (measured, one client).
SEAT_TRAIN_BUDGET = 2000
ADMIN_TOKEN = "bench-admin"
SEATS_ONLY = os.environ.get("BENCH_SEATS_ONLY") == "1"
DAY_SEED = int(os.environ.get("BENCH_DAY_SEED", seat_day.SEED))
BASELINE = os.environ.get("BENCH_BASELINE")
STOCK = 1_000_000_000
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = 2
CONNECTIONS = 64
OVERHEAD_ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "8"))
OVERHEAD_SECONDS = int(os.environ.get("BENCH_OVERHEAD_SECONDS", "4"))
OVERHEAD_ONLY = os.environ.get("BENCH_OVERHEAD_ONLY") == "1"
OVERHEAD_TARGET = 0.97
SEATS_TARGET = 0.6
AOF_TARGET = 0.8
RATE_LIMIT = 1_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *map(str, args)],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


def wait_until(check, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise SystemExit(f"bench: {what} not ready after {timeout}s")


def http_ok(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


class Processes:
    """Everything this run started, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.started = []

    def start(self, args, **kwargs):
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, **kwargs)
        self.started.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.started):
            self.stop(p)


def start_redis(procs, tmp, aof):
    port = free_port()
    data = tmp / f"redis-{port}"
    data.mkdir()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--save", "", "--logfile", str(data / "redis.log")]
    args += ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    p = procs.start(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: redis_cli(port, "PING") == "PONG", "redis-server")
    return p, port


def start_service(procs, tmp, redis_port, binary=BINARY, url=None, **extra_env):
    port = free_port()
    env = dict(os.environ, REDIS_URL=url or f"redis://127.0.0.1:{redis_port}",
               BIND_ADDR=f"127.0.0.1:{port}", RUST_LOG="warn", **extra_env)
    log = open(tmp / f"service-{port}.log", "w")
    p = procs.start([str(binary)], env=env, stdout=log, stderr=log, cwd=tmp)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), "service")
    return p, port


def to_ms(value):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port, connections, seconds, script=WRK_SCRIPT, path="/reserve", trains=SPREAD_TRAINS, prefix="j-"):
    """wrk's figures; `script=None` sends plain GETs."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         *(["-s", str(script)] if script else []), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
        env=dict(os.environ, TRAINS=str(trains), TRAIN_PREFIX=prefix)).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    latency = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)$", out, re.M))
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) * (requests - errors) / max(requests, 1),
        "p50": to_ms(latency["50"]), "p99": to_ms(latency["99"]), "errors": errors,
        "ok": requests - errors,
    }


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reserve_benchmark(port):
    """redis-benchmark on reserve.lua alone: one reservation per call, as
    the service would send with nobody else queued."""
    sha = redis_cli(port, "SCRIPT", "LOAD", RESERVE_LUA)
    train = "{rb}"
    redis_cli(port, "MSET", f"train:{train}:stock", STOCK, f"train:{train}:capacity", STOCK)
    # KEYS: the train's thirteen, then the call's own key (a fresh one per call).
    keys = [f"train:{train}:{k}" for k in TRAIN_KEYS] + [f"train:{train}:call:tok-__rand_int__"]
    # ARGV: token, lock PX, memory PX, per-user limit (0 = off), call key PX,
    # no followed call, then the one train (its first key, 1 member) and one reservation: id,
    # seats, user (JSON), idempotency record (0 = none), fingerprint, from and to (none),
    # class, seat ids and together (none: an unnumbered train).
    # Ids must be unique, as the service's UUIDs are (a first run of a call
    # does not look its ids up): two random fields, drawn apart, per id.
    args = ["tok-__rand_int__", "3000", "86400000", "0", "60000", "0", "1", "1", "rb-__rand_int__-__rand_int__", "1",
            '"u-1"', "0", "", "", "", "", "", ""]
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(40_000 * SECONDS // 2), "-r", "2000000000",
         "--csv", "evalsha", sha, str(len(keys)), *keys, *args],
        capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split('","') for line in out.strip().splitlines()[1:]]
    check_train(port, "{rb}")
    return float(rows[0][1].strip('"'))


def check_train(port, train):
    stock, sold, held, capacity = (int(v or 0) for v in redis_cli(
        port, "MGET", f"train:{train}:stock", f"train:{train}:sold", f"train:{train}:held",
        f"train:{train}:capacity").split("\n"))
    booked = int(redis_cli(port, "HLEN", f"train:{train}:reservations"))
    holds = int(redis_cli(port, "HLEN", f"train:{train}:holds"))
    # Every bench reservation and hold is one seat: one hash entry per seat.
    if stock < 0 or stock + sold + held != capacity or booked != sold or holds != held:
        raise SystemExit(f"bench: train {train} is inconsistent: stock={stock} sold={sold} held={held} "
                         f"capacity={capacity} reservations={booked} holds={holds}")
    return sold


def check_spread(port, trains=SPREAD_TRAINS):
    """Every spread train consistent, in one script call (not 1,000 redis-cli runs)."""
    check = """
    local bad = 0
    for i = 1, #KEYS, 3 do
      local stock = tonumber(redis.call('GET', KEYS[i]) or '0')
      local sold = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
      local capacity = tonumber(redis.call('GET', KEYS[i + 2]) or '0')
      local booked = redis.call('HLEN', string.sub(KEYS[i], 1, -6) .. 'reservations')
      if stock < 0 or stock + sold ~= capacity or booked ~= sold then bad = bad + 1 end
    end
    return bad
    """
    keys = [f"train:{{s-{i}}}:{k}" for i in range(trains) for k in ("stock", "sold", "capacity")]
    bad = int(redis_cli(port, "EVAL", check, len(keys), *keys))
    if bad:
        raise SystemExit(f"bench: {bad} of the spread trains are inconsistent")


def create_journey_trains(port, trains=SPREAD_TRAINS):
    """Trains "j-0".. with ten stations each and a very large capacity, as
    PUT /trains/{id} makes them, in one script call."""
    legs = json.dumps({"stations": JOURNEY_STATIONS, "free": [STOCK] * 9, "sold": [0] * 9, "held": [0] * 9})
    make = """
    for i = 1, #KEYS, 3 do
      redis.call('MSET', KEYS[i], ARGV[2], KEYS[i + 1], ARGV[2], KEYS[i + 2], ARGV[1])
    end
    """
    keys = [f"train:{{j-{i}}}:{k}" for i in range(trains) for k in ("stock", "capacity", "legs")]
    redis_cli(port, "EVAL", make, len(keys), *keys, legs, STOCK)


def check_journeys(port, trains=SPREAD_TRAINS):
    """Every journey train's legs exact: free + sold + held = capacity on
    every leg, and the legs' sold add up to the seat-legs of the records."""
    check = """
    local bad = 0
    for i = 1, #KEYS, 3 do
      local capacity = tonumber(redis.call('GET', KEYS[i]))
      local legs = cjson.decode(redis.call('GET', KEYS[i + 1]))
      local sold_legs = 0
      for k = 1, 9 do
        if legs.free[k] + legs.sold[k] + legs.held[k] ~= capacity then bad = bad + 1 end
        sold_legs = sold_legs + legs.sold[k]
      end
      local recs = redis.call('HVALS', KEYS[i + 2])
      local seat_legs = 0
      for _, rec in ipairs(recs) do
        local a, b = string.match(rec, '"stops":%[(%d+),(%d+)%]')
        seat_legs = seat_legs + tonumber(string.match(rec, '"seats":(%d+)')) * (b - a)
      end
      if seat_legs ~= sold_legs then bad = bad + 1 end
    end
    return bad
    """
    keys = [f"train:{{j-{i}}}:{k}" for i in range(trains) for k in ("capacity", "legs", "reservations")]
    bad = int(redis_cli(port, "EVAL", check, len(keys), *keys))
    if bad:
        raise SystemExit(f"bench: {bad} of the journey trains are inconsistent")


def seat_train_count(bound_rate):
    """Numbered trains enough that none takes more than SEAT_TRAIN_BUDGET
    reservations over the warm-up and the measured run, even at
    `bound_rate`: the rate of the same journeys on trains without numbered
    seats (or the hot train's), which numbered seats only add work to.
    BENCH_SEAT_TRAINS sets the number instead (check_seats still fails the
    run if one sold out)."""
    if os.environ.get("BENCH_SEAT_TRAINS"):
        return int(os.environ["BENCH_SEAT_TRAINS"])
    return max(SEAT_TRAINS_MIN, -(-int(bound_rate * (WARMUP + SECONDS)) // SEAT_TRAIN_BUDGET))


def create_seat_trains(port, trains):
    """Numbered trains "n-0".. (10 stations, SEAT_COACHES), as an operator
    makes them: PUT /trains/{id} (the service runs with ADMIN_TOKEN)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"stations": JOURNEY_STATIONS, "coaches": SEAT_COACHES, "reset": True})
    for i in range(trains):
        conn.request("PUT", f"/trains/n-{i}", body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"})
        answer = conn.getresponse()
        text = answer.read()
        if answer.status not in (200, 201):
            raise SystemExit(f"bench: PUT /trains/n-{i}: {answer.status} {text[:300]!r}")
    conn.close()


# Rebuilds a numbered train's occupancy from its records and its free runs
# (the layout prelude.lua documents under "Numbered seats") and compares:
# every (seat, leg) pair is either in one reservation or in one free run,
# never both, never twice; per leg the records' seats are `sold`, the free
# runs' seats are `free`, and they add up to `capacity`; the records'
# seat-legs add up to the legs' `sold`; the run counts in `legs` match the
# sorted set; `stock` is the seats free over the whole route. The bench
# makes no holds, so any `held` is a fault. KEYS: per train capacity, stock,
# legs, reservations, seats. Returns {faulty trains, trains with no seat
# free over the whole route, the first fault found}.
CHECK_SEATS = """
local bad, sold_out, first = 0, 0, ''
for i = 1, #KEYS, 5 do
  local faults = {}
  local function fault(what) faults[#faults + 1] = what end
  local capacity = tonumber(redis.call('GET', KEYS[i]))
  local stock = tonumber(redis.call('GET', KEYS[i + 1]))
  local legs = cjson.decode(redis.call('GET', KEYS[i + 2]))
  local n = #legs.stations - 1
  local pair, sold, free, seat_legs, sold_legs = {}, {}, {}, 0, 0
  for k = 0, n - 1 do
    sold[k], free[k] = 0, 0
    sold_legs = sold_legs + legs.sold[k + 1]
    if legs.held[k + 1] ~= 0 then fault('held on leg ' .. k) end
    if legs.free[k + 1] + legs.sold[k + 1] + legs.held[k + 1] ~= capacity then fault('leg ' .. k .. ' adds up wrong') end
  end
  for _, raw in ipairs(redis.call('HVALS', KEYS[i + 3])) do
    local rec = cjson.decode(raw)
    local a, b = rec.stops[1], rec.stops[2]
    if #rec.seat_ids ~= rec.seats then fault('record with ' .. rec.seats .. ' seats names ' .. #rec.seat_ids) end
    seat_legs = seat_legs + rec.seats * (b - a)
    for _, id in ipairs(rec.seat_ids) do
      for k = a, b - 1 do
        if pair[id .. '/' .. k] then fault('seat ' .. id .. ' sold twice on leg ' .. k) end
        pair[id .. '/' .. k] = true
        sold[k] = sold[k] + 1
      end
    end
  end
  local runs, whole = {}, 0
  local members = redis.call('ZRANGE', KEYS[i + 4], 0, -1, 'WITHSCORES')
  for j = 1, #members, 2 do
    local id, s = string.match(members[j], '^(.*):(%d+)$')
    local score = tonumber(members[j + 1])
    local code = (score - score % 4096) / 4096
    local e = code % 64
    local s0 = ((code - e) / 64) % 64
    if s0 ~= tonumber(s) or e <= s0 or e > n then fault('run ' .. members[j] .. ' scored ' .. members[j + 1]) end
    runs[code] = (runs[code] or 0) + 1
    if s0 == 0 and e == n then whole = whole + 1 end
    for k = s0, e - 1 do
      if pair[id .. '/' .. k] then fault('seat ' .. id .. ' free and taken on leg ' .. k) end
      pair[id .. '/' .. k] = true
      free[k] = free[k] + 1
    end
  end
  for k = 0, n - 1 do
    if sold[k] ~= legs.sold[k + 1] or free[k] ~= legs.free[k + 1] or sold[k] + free[k] ~= capacity then
      fault('leg ' .. k .. ': records ' .. sold[k] .. ' sold, runs ' .. free[k] .. ' free, counters ' ..
        legs.sold[k + 1] .. ' and ' .. legs.free[k + 1])
    end
  end
  for j = 1, #legs.runs, 2 do
    if (runs[legs.runs[j]] or 0) ~= legs.runs[j + 1] then fault('run count of code ' .. legs.runs[j]) end
    runs[legs.runs[j]] = nil
  end
  if next(runs) then fault('runs not counted in legs') end
  if seat_legs ~= sold_legs then fault('records ' .. seat_legs .. ' seat-legs, legs ' .. sold_legs) end
  if stock ~= whole then fault('stock ' .. stock .. ', ' .. whole .. ' seats free over the route') end
  if whole == 0 then sold_out = sold_out + 1 end
  if #faults > 0 then
    bad = bad + 1
    if first == '' then first = KEYS[i] .. ': ' .. faults[1] end
  end
end
return {bad, sold_out, first}
"""


def check_seats(port, trains, sold_out_ok=False):
    """Every numbered train consistent seat by seat (CHECK_SEATS), a few
    dozen trains a script call; and, unless `sold_out_ok`, none without a
    seat free over the whole route."""
    bad, sold_out, first = 0, 0, ""
    for i in range(0, len(trains), 25):
        keys = [f"train:{{{t}}}:{k}" for t in trains[i:i + 25]
                for k in ("capacity", "stock", "legs", "reservations", "seats")]
        out = redis_cli(port, "EVAL", CHECK_SEATS, len(keys), *keys).split("\n")
        bad, sold_out, first = bad + int(out[0]), sold_out + int(out[1]), first or (out[2] if len(out) > 2 else "")
    if bad:
        raise SystemExit(f"bench: {bad} of the numbered trains are inconsistent; first: {first}")
    if sold_out and not sold_out_ok:
        raise SystemExit(f"bench: {sold_out} of the {len(trains)} numbered trains sold out over the whole route "
                         "while measured: spread the load over more "
                         "trains (a lower SEAT_TRAIN_BUDGET, or BENCH_SEAT_TRAINS)")


def measure_seats(service, redis_port, port, bound_rate):
    """Row 3e: numbered trains, random journeys, the service picking seats."""
    trains = seat_train_count(bound_rate)
    create_seat_trains(port, trains)
    wrk(port, CONNECTIONS, WARMUP, WRK_SEATS_SCRIPT, trains=trains, prefix="n-")
    result = measured(service, redis_port, port, CONNECTIONS, SECONDS, WRK_SEATS_SCRIPT, trains=trains,
                      prefix="n-")
    check_seats(redis_port, [f"n-{i}" for i in range(trains)])
    result["trains"] = trains
    return result


def run_seat_day(procs, tmp):
    """The simulated day (bench/seat_day.py) on its own Redis and service;
    then both trains checked seat by seat."""
    redis, redis_port = start_redis(procs, tmp, False)
    service, port = start_service(procs, tmp, redis_port, ADMIN_TOKEN=ADMIN_TOKEN)
    try:
        result = seat_day.simulate(port, ADMIN_TOKEN, seed=DAY_SEED)
    except seat_day.SimError as e:
        raise SystemExit(f"bench: simulated day: {e}")
    check_seats(redis_port, list(seat_day.TRAINS.values()), sold_out_ok=True)
    procs.stop(service)
    procs.stop(redis)
    return result


def seats_pass(procs, tmp):
    """BENCH_SEATS_ONLY: the hot train (for the ratio) and row 3e, no persistence."""
    redis, redis_port = start_redis(procs, tmp, False)
    service, port = start_service(procs, tmp, redis_port, ADMIN_TOKEN=ADMIN_TOKEN)
    redis_cli(redis_port, "MSET", "train:{bench}:stock", STOCK, "train:{bench}:capacity", STOCK)
    wrk(port, CONNECTIONS, WARMUP)
    many = measured(service, redis_port, port, CONNECTIONS, SECONDS)
    seats = measure_seats(service, redis_port, port, many["rate"])
    check_train(redis_port, "{bench}")
    procs.stop(service)
    procs.stop(redis)
    return {"many": many, "seats": seats}


def seat_rows(name, r):
    """Row 3e and its ratio to the hot train, in the main table."""
    st, rb = r["seats"], r.get("redis_benchmark")
    vs = f"{st['rate'] / rb:.2f}x" if rb else ""
    ratio = st["rate"] / r["many"]["rate"]
    verdict = "ok" if ratio >= SEATS_TARGET else "BELOW TARGET"
    print(f"| {name} | {CONNECTIONS} conns, {st['trains']} numbered trains (2,000 seats, 10 stations), random "
          f"journeys, seats picked by the service | {st['rate']:.0f} | {st['p50']:.2f} | {st['p99']:.2f} "
          f"| {st['errors']} | | {vs} |")
    print(f"| {name} | numbered trains / one hot train (target >= {SEATS_TARGET}: {verdict}) "
          f"| {ratio:.2f}x | | | | | |")
    return st["errors"] > 0


def ceiling(procs, tmp):
    """nginx (worker_processes auto) answering every request with a fixed 200
    JSON body: the most any HTTP service can do on these cores with this wrk."""
    port = free_port()
    conf = tmp / f"nginx-{port}"
    conf.mkdir()
    (conf / "nginx.conf").write_text(
        f"worker_processes auto; daemon off; pid {conf}/nginx.pid; error_log {conf}/error.log;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ access_log off; server {{ listen 127.0.0.1:{port}; location / {{\n"
        "  default_type application/json; return 200 '{\"reservation_id\":\"fixed\"}'; } } }\n")
    nginx = procs.start([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf / "nginx.conf"), "-p", str(conf)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), "nginx")
    wrk(port, CONNECTIONS, WARMUP)
    result = wrk(port, CONNECTIONS, SECONDS)
    procs.stop(nginx)
    return result


def measured(service, redis_port, *args, **kwargs):
    """wrk(*args), with the service's, Redis's and wrk's CPU per answer,
    the share of the cores left idle, and answers per script call over the
    run: where the two cores went."""
    cpu0, rcpu0, calls0 = cpu_seconds(service.pid), redis_cpu(redis_port), script_calls(redis_port)
    idle0, wrk0 = idle_ticks(), children_cpu()
    result = wrk(*args, **kwargs)
    idle1, wrk1 = idle_ticks(), children_cpu()
    ok = max(result["ok"], 1)
    calls = script_calls(redis_port) - calls0
    result.update(svc_us=1e6 * (cpu_seconds(service.pid) - cpu0) / ok,
                  redis_us=1e6 * (redis_cpu(redis_port) - rcpu0) / ok,
                  wrk_us=1e6 * (wrk1 - wrk0) / ok,
                  idle=(idle1[0] - idle0[0]) / max(idle1[1] - idle0[1], 1),
                  per_call=result["ok"] / calls if calls else None)
    return result


def idle_ticks():
    """The cores' idle (and I/O wait) ticks and all their ticks so far."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


def children_cpu():
    """User plus system CPU of the child processes waited for so far (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pass(procs, tmp, aof):
    redis, redis_port = start_redis(procs, tmp, aof)
    service, port = start_service(procs, tmp, redis_port, ADMIN_TOKEN=ADMIN_TOKEN)
    redis_cli(redis_port, "MSET", "train:{bench}:stock", STOCK, "train:{bench}:capacity", STOCK)
    wrk(port, CONNECTIONS, WARMUP)
    many = measured(service, redis_port, port, CONNECTIONS, SECONDS)
    one = wrk(port, 1, max(SECONDS // 2, 2))
    redis_cli(redis_port, "MSET", "train:{hbench}:stock", STOCK, "train:{hbench}:capacity", STOCK)
    holds = wrk(port, CONNECTIONS, max(SECONDS // 2, 2), WRK_HOLD_SCRIPT, "/trains/hbench/holds")
    kv = [x for i in range(SPREAD_TRAINS) for x in (f"train:{{s-{i}}}:stock", STOCK, f"train:{{s-{i}}}:capacity", STOCK)]
    redis_cli(redis_port, "MSET", *kv)
    wrk(port, CONNECTIONS, WARMUP, WRK_SPREAD_SCRIPT)
    spread = measured(service, redis_port, port, CONNECTIONS, SECONDS, WRK_SPREAD_SCRIPT)
    check_spread(redis_port)
    create_journey_trains(redis_port)
    wrk(port, CONNECTIONS, WARMUP, WRK_JOURNEY_SCRIPT)
    journeys = measured(service, redis_port, port, CONNECTIONS, SECONDS, WRK_JOURNEY_SCRIPT)
    check_journeys(redis_port)
    seats = measure_seats(service, redis_port, port, journeys["rate"])
    floor = None if aof else measured(service, redis_port, port, CONNECTIONS, SECONDS, None, "/healthz")
    rss_kib = int(re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{service.pid}/status").read_text()).group(1))
    check_train(redis_port, "{bench}")
    check_train(redis_port, "{hbench}")
    procs.stop(service)
    baseline = None
    if BASELINE and not aof:
        redis_cli(redis_port, "DEL", "train:{bench}:reservations", "train:{bench}:sold")
        redis_cli(redis_port, "MSET", "train:{bench}:stock", STOCK, "train:{bench}:capacity", STOCK)
        old, old_port = start_service(procs, tmp, redis_port, BASELINE)
        wrk(old_port, CONNECTIONS, WARMUP)
        baseline = wrk(old_port, CONNECTIONS, SECONDS)
        procs.stop(old)
    rb = reserve_benchmark(redis_port)
    procs.stop(redis)
    fixed = None if aof else ceiling(procs, tmp)
    return {"many": many, "one": one, "holds": holds, "spread": spread, "journeys": journeys, "seats": seats,
            "baseline": baseline,
            "rss_mib": rss_kib / 1024, "redis_benchmark": rb, "ceiling": fixed, "floor": floor}


CLUSTER_TRAINS = 300


def redis_cpu(port):
    info = redis_cli(port, "INFO", "cpu")
    return sum(float(v) for k, v in re.findall(r"(used_cpu_(?:sys|user)):([\d.]+)", info))


def script_calls(port):
    stats = redis_cli(port, "INFO", "commandstats")
    return sum(int(n) for n in re.findall(r"cmdstat_eval(?:sha)?:calls=(\d+)", stats))


def free_cluster_port():
    """A free port whose cluster bus port (+10000) is free and valid too."""
    import random
    for _ in range(100):
        port = random.randint(20000, 40000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise SystemExit("bench: no free port pair for a cluster node")


def start_cluster(procs, tmp):
    """Three primaries, no replicas, no persistence: the scale-out case."""
    ports = []
    for _ in range(3):
        port = free_cluster_port()
        data = tmp / f"cluster-{port}"
        data.mkdir()
        procs.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                     "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
                     "--cluster-config-file", str(data / "nodes.conf"), "--logfile", str(data / "redis.log")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda p=port: redis_cli(p, "PING") == "PONG", "cluster node")
        ports.append(port)
    subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                   capture_output=True, text=True, timeout=60, check=True)
    for p in ports:
        wait_until(lambda p=p: "cluster_state:ok" in redis_cli(p, "CLUSTER", "INFO"), "cluster_state:ok")
    return ports


def scale_out(procs, tmp):
    """The same uniform load over 300 trains on one Redis and on three
    primaries: rate, script calls per primary, Redis CPU per reservation."""
    rows = {}
    single, single_port = start_redis(procs, tmp, False)
    rows["1 Redis"] = measure_spread(procs, tmp, [single_port], f"redis://127.0.0.1:{single_port}")
    procs.stop(single)
    ports = start_cluster(procs, tmp)
    url = f"redis-cluster://127.0.0.1:{ports[0]}?" + "&".join(f"node=127.0.0.1:{p}" for p in ports[1:])
    rows["3 primaries"] = measure_spread(procs, tmp, ports, url)
    # One hot train is one slot, so one primary: what a cluster gives it.
    rows["3 primaries, one hot train"] = measure_spread(procs, tmp, ports, url, trains=1)
    return rows


def measure_spread(procs, tmp, ports, url, trains=CLUSTER_TRAINS):
    for i in range(trains):
        key = f"train:{{s-{i}}}"
        subprocess.run(["redis-cli", "-c", "-p", str(ports[0]), "MSET", f"{key}:stock", str(STOCK),
                        f"{key}:capacity", str(STOCK)], capture_output=True, timeout=10, check=True)
    service, port = start_service(procs, tmp, None, url=url)
    wrk(port, CONNECTIONS, WARMUP, WRK_SPREAD_SCRIPT, trains=trains)
    for p in ports:
        redis_cli(p, "CONFIG", "RESETSTAT")
    cpu0 = [redis_cpu(p) for p in ports]
    result = wrk(port, CONNECTIONS, SECONDS, WRK_SPREAD_SCRIPT, trains=trains)
    cpu = [redis_cpu(p) - c for p, c in zip(ports, cpu0)]
    calls = [script_calls(p) for p in ports]
    procs.stop(service)
    booked = result["rate"] * SECONDS
    mean = sum(calls) / len(calls)
    # Each node's share of the reservations is its share of the script calls.
    result.update(calls=calls, spread=max(abs(c - mean) / mean for c in calls) if mean else 0,
                  cpu_us=[1e6 * c / (booked * n / sum(calls)) if n else None for c, n in zip(cpu, calls)])
    return result


def paired(procs, tmp, on, off, script=WRK_SCRIPT, aof_on=False):
    """The hot-train pass against two services on one Redis (no
    persistence), one started with the environment `on` and one with `off`,
    measured alternately so that drift on the shared cores falls on both:
    what a feature costs (metrics recording, the rate limit). With `aof_on`,
    the `on` service has a Redis of its own with AOF `appendfsync always`:
    what durability costs."""
    redis, redis_port = start_redis(procs, tmp, aof=False)
    on_redis, on_port = start_redis(procs, tmp, aof=True) if aof_on else (None, redis_port)
    for port in {redis_port, on_port}:
        redis_cli(port, "MSET", "train:{bench}:stock", STOCK, "train:{bench}:capacity", STOCK)
    services = {"on": start_service(procs, tmp, on_port, **on), "off": start_service(procs, tmp, redis_port, **off)}
    for _, port in services.values():
        wrk(port, CONNECTIONS, WARMUP, script)
    runs = {"on": [], "off": []}
    cpu_us = {"on": [], "off": []}
    errors = 0
    for round_ in range(OVERHEAD_ROUNDS):
        for name in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            service, port = services[name]
            cpu = cpu_seconds(service.pid)
            result = wrk(port, CONNECTIONS, OVERHEAD_SECONDS, script)
            cpu_us[name].append((cpu_seconds(service.pid) - cpu) * 1e6 / max(result["ok"], 1))
            runs[name].append(result["rate"])
            errors += result["errors"]
    for port in {redis_port, on_port}:
        check_train(port, "{bench}")
    for service, _ in services.values():
        procs.stop(service)
    procs.stop(redis)
    if on_redis:
        procs.stop(on_redis)
    medians = {name: statistics.median(rates) for name, rates in runs.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_us.items()}
    # Each round's two runs are next to each other in time: the median of
    # their ratios cancels the slow drift of whatever else shares the cores.
    ratio = statistics.median(on / off for on, off in zip(runs["on"], runs["off"]))
    cpu_ratio = statistics.median(off / on for on, off in zip(cpu_us["on"], cpu_us["off"]))
    return {"runs": runs, "medians": medians, "ratio": ratio, "errors": errors,
            "cpu_us": cpu, "cpu_ratio": cpu_ratio}


def time_rows(name, rows):
    """Rows of the "Where the time goes" table."""
    for label, w in rows:
        per_call = f"{w['per_call']:.1f}" if w["per_call"] else "-"
        print(f"| {name} | {label} | {w['rate']:.0f} | {w['svc_us']:.1f} | {w['redis_us']:.1f} | {per_call} |")


def seat_time_label(r):
    return f"{r['seats']['trains']} numbered trains of 10 stations, random journeys"


def print_day(day):
    """The simulated day's table and its check. A FAIL is a finding about
    the seat policy, not a broken run: printed, as the rate targets are,
    without failing the bench (a wrong answer already raised)."""
    lines, _ = seat_day.report(day)
    print("\n" + "\n".join(lines))


def seats_only(procs):
    """BENCH_SEATS_ONLY=1: the numbered-seat parts alone, for checking them."""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            started = time.monotonic()
            r = seats_pass(procs, Path(tmp))
            day = run_seat_day(procs, Path(tmp))
            elapsed = time.monotonic() - started
    finally:
        procs.stop_all()
    name = "no persistence"
    print(f"\nmake bench, numbered seats only (BENCH_SEATS_ONLY=1): {time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores, wrk -t1 {SECONDS}s after a {WARMUP}s warm-up; {elapsed:.0f} s in all\n")
    print("| Redis | load | reservations/s | p50 ms | p99 ms | errors | peak RSS MiB | vs redis-benchmark |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    w = r["many"]
    print(f"| {name} | {CONNECTIONS} conns | {w['rate']:.0f} | {w['p50']:.2f} | {w['p99']:.2f} | {w['errors']} | | |")
    failed = w["errors"] > 0
    failed |= seat_rows(name, r)
    print(f"\nWhere the time goes, {CONNECTIONS} conns (CPU per answer: the service from /proc, Redis from INFO)\n")
    print("| Redis | load | answers/s | service CPU us | Redis CPU us | reservations per script call |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    time_rows(name, [("hot train", r["many"]), (seat_time_label(r), r["seats"])])
    print_day(day)
    if failed:
        print("bench: some requests errored", file=sys.stderr)
        return 1
    return 0


def main():
    if not BINARY.exists():
        raise SystemExit(f"bench: build first: cargo build --release ({BINARY} missing)")
    procs = Processes()
    if SEATS_ONLY:
        return seats_only(procs)
    results = {}
    day = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            for name, aof in (("no persistence", False), ("AOF always", True)):
                if not OVERHEAD_ONLY:
                    results[name] = run_pass(procs, Path(tmp), aof)
            if not OVERHEAD_ONLY:
                day = run_seat_day(procs, Path(tmp))
            scale = {} if OVERHEAD_ONLY else scale_out(procs, Path(tmp))
            overhead = paired(procs, Path(tmp), {}, {"METRICS": "off"})
            # A limit no client here reaches: every request is checked and allowed.
            limited = paired(procs, Path(tmp), {"RATE_LIMIT_PER_CLIENT": str(RATE_LIMIT)}, {})
            # 10,000 clients, each well under a limit of 1,000 a second.
            proxied = {"TRUST_FORWARDED_FOR": "true"}
            many = paired(procs, Path(tmp), dict(proxied, RATE_LIMIT_PER_CLIENT="1000"), proxied,
                          ROOT / "bench" / "clients.lua")
            # The two passes above run minutes apart; this ratio does not drift with the host.
            durable = None if OVERHEAD_ONLY else paired(procs, Path(tmp), {}, {}, aof_on=True)
    finally:
        procs.stop_all()

    print(f"\nmake bench: {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
          f"wrk -t1 {SECONDS}s after a {WARMUP}s warm-up; redis-benchmark -c 50 unpipelined\n")
    if results:
        print("| Redis | load | reservations/s | p50 ms | p99 ms | errors | peak RSS MiB | vs redis-benchmark |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    failed = False
    for name, r in results.items():
        for label, w in ((f"{CONNECTIONS} conns", r["many"]), ("1 conn", r["one"])):
            print(f"| {name} | {label} | {w['rate']:.0f} | {w['p50']:.2f} | {w['p99']:.2f} | {w['errors']} "
                  f"| {r['rss_mib']:.1f} | {w['rate'] / r['redis_benchmark']:.2f}x |")
            failed |= w["errors"] > 0
        sp = r["spread"]
        print(f"| {name} | {CONNECTIONS} conns, {SPREAD_TRAINS} trains uniform | {sp['rate']:.0f} | {sp['p50']:.2f} "
              f"| {sp['p99']:.2f} | {sp['errors']} | | {sp['rate'] / r['redis_benchmark']:.2f}x |")
        print(f"| {name} | {SPREAD_TRAINS} trains / one hot train | {sp['rate'] / r['many']['rate']:.2f}x | | | | | |")
        failed |= sp["errors"] > 0
        jr = r["journeys"]
        print(f"| {name} | {CONNECTIONS} conns, {SPREAD_TRAINS} trains of 10 stations, random journeys | {jr['rate']:.0f} "
              f"| {jr['p50']:.2f} | {jr['p99']:.2f} | {jr['errors']} | | {jr['rate'] / r['redis_benchmark']:.2f}x |")
        failed |= jr["errors"] > 0
        failed |= seat_rows(name, r)
        h = r["holds"]
        print(f"| {name} | {CONNECTIONS} conns, POST /trains/{{id}}/holds | {h['rate']:.0f} | {h['p50']:.2f} "
              f"| {h['p99']:.2f} | {h['errors']} | | {h['rate'] / r['redis_benchmark']:.2f}x |")
        failed |= h["errors"] > 0
        if r["baseline"]:
            b = r["baseline"]
            print(f"| {name} | {CONNECTIONS} conns, BENCH_BASELINE | {b['rate']:.0f} | {b['p50']:.2f} "
                  f"| {b['p99']:.2f} | {b['errors']} | | {b['rate'] / r['redis_benchmark']:.2f}x |")
            print(f"| {name} | this build / baseline | {r['many']['rate'] / b['rate']:.2f}x | | | | | |")
        print(f"| {name} | redis-benchmark reserve script | {r['redis_benchmark']:.0f} | | | | | 1.00x |")
        for key, what in (("ceiling", "nginx fixed 200"), ("floor", "this service's GET /healthz")):
            if r[key]:
                c = r[key]
                print(f"| {key} | {CONNECTIONS} conns, {what} (no Redis) | {c['rate']:.0f} | {c['p50']:.2f} "
                      f"| {c['p99']:.2f} | {c['errors']} | | |")
                print(f"| {name} | hot train / {key} | {r['many']['rate'] / c['rate']:.2f}x | | | | | |")
                failed |= c["errors"] > 0
    if results:
        print(f"\nWhere the time goes, {CONNECTIONS} conns (CPU per answer: the service from /proc, Redis from INFO)\n")
        print("| Redis | load | answers/s | service CPU us | Redis CPU us | reservations per script call |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for name, r in results.items():
            rows = [("hot train", r["many"]), (f"{SPREAD_TRAINS} trains uniform", r["spread"]),
                    (f"{SPREAD_TRAINS} trains of 10 stations, random journeys", r["journeys"]),
                    (seat_time_label(r), r["seats"])]
            if r["floor"]:
                rows.append(("GET /healthz (no Redis)", r["floor"]))
            time_rows(name, rows)
    if len(results) == 2:
        print(f"\nAOF always / no persistence, {CONNECTIONS} conns hot train: "
              f"{results['AOF always']['many']['rate'] / results['no persistence']['many']['rate']:.2f}x "
              "across the two passes above")
    if durable:
        verdict = "ok" if durable["ratio"] >= AOF_TARGET else "BELOW TARGET"
        print(f"AOF always / no persistence, alternating: {OVERHEAD_ROUNDS} {OVERHEAD_SECONDS} s runs on each, "
              f"two Redis and two services: {durable['ratio']:.2f}x (median of the rounds' ratios; target >= "
              f"{AOF_TARGET}: {verdict}); medians {durable['medians']['on']:.0f} and {durable['medians']['off']:.0f}/s")
        failed_aof = durable["errors"] > 0
    else:
        failed_aof = False
    if day:
        print_day(day)
    if scale:
        print(f"\nScale-out, no persistence: {CONNECTIONS} conns, POST /reserve uniform over {CLUSTER_TRAINS} trains "
              "(and on one hot train, which lives on one primary). "
              "On two shared cores the HTTP side limits the rate; what scales is the spread of script calls "
              "and Redis CPU per reservation on each primary.\n")
        print("| Redis | reservations/s | p99 ms | errors | script calls per node | spread from the mean | Redis CPU us per reservation, per node |")
        print("| --- | ---: | ---: | ---: | --- | ---: | --- |")
    for name, r in scale.items():
        print(f"| {name} | {r['rate']:.0f} | {r['p99']:.2f} | {r['errors']} | {', '.join(map(str, r['calls']))} "
              f"| {100 * r['spread']:.0f}% | {', '.join('-' if c is None else f'{c:.1f}' for c in r['cpu_us'])} |")
        failed |= r["errors"] > 0
    print(f"\nMetrics overhead: no persistence, {CONNECTIONS} conns, hot train; {OVERHEAD_ROUNDS} alternating "
          f"{OVERHEAD_SECONDS} s runs each, medians\n")
    print("| metrics recording | reservations/s | service CPU µs per reservation | runs (reservations/s) |")
    print("| --- | ---: | ---: | --- |")
    for name, label in (("on", "on (default)"), ("off", "off (METRICS=off)")):
        runs = " ".join(f"{r:.0f}" for r in overhead["runs"][name])
        print(f"| {label} | {overhead['medians'][name]:.0f} | {overhead['cpu_us'][name]:.1f} | {runs} |")
    verdict = "ok" if overhead["ratio"] >= OVERHEAD_TARGET else "BELOW TARGET"
    print(f"\nratio on/off, reservations/s (median of the rounds' ratios): {overhead['ratio']:.3f} "
          f"(target >= {OVERHEAD_TARGET}: {verdict}); by service CPU per reservation (off/on): "
          f"{overhead['cpu_ratio']:.3f}")
    failed |= overhead["errors"] > 0
    print(f"\nRate limit cost: no persistence, {CONNECTIONS} conns, hot train, one client (wrk); "
          f"RATE_LIMIT_PER_CLIENT={RATE_LIMIT} (never reached: every request checked, none refused) "
          f"against off; {OVERHEAD_ROUNDS} alternating {OVERHEAD_SECONDS} s runs each, medians\n")
    print("| rate limit | reservations/s | service CPU µs per reservation | runs (reservations/s) |")
    print("| --- | ---: | ---: | --- |")
    for name, label in (("on", f"on ({RATE_LIMIT}/s)"), ("off", "off (default)")):
        runs = " ".join(f"{r:.0f}" for r in limited["runs"][name])
        print(f"| {label} | {limited['medians'][name]:.0f} | {limited['cpu_us'][name]:.1f} | {runs} |")
    print(f"\nratio on/off, reservations/s (median of the rounds' ratios): {limited['ratio']:.3f}; "
          f"by service CPU per reservation (off/on): {limited['cpu_ratio']:.3f}")
    failed |= limited["errors"] > 0
    print(f"\nThe same with 10,000 clients (X-Forwarded-For, TRUST_FORWARDED_FOR=true), each under "
          f"RATE_LIMIT_PER_CLIENT=1000: on/off {many['ratio']:.3f} by reservations/s, "
          f"{many['cpu_ratio']:.3f} by service CPU (off/on); medians {many['medians']['on']:.0f} "
          f"and {many['medians']['off']:.0f}/s, {many['cpu_us']['on']:.1f} and {many['cpu_us']['off']:.1f} us")
    failed |= many["errors"] > 0 or failed_aof
    if failed:
        print("bench: some requests errored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
