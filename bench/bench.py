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
  4. redis-benchmark running the project's own reserve script (prelude.lua +
     reserve.lua) with realistic arguments (a fresh reservation id per call
     via -r), 50 clients, unpipelined: the ceiling of one script call per
     reservation.

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

Where the time goes: for the hot train, the 1,000 trains and /healthz, the
service's CPU per answer (/proc) and Redis's per reservation (INFO cpu), and
reservations per script call (INFO commandstats): the figures every
performance change is judged by (docs/performance.md).

Prints the tables, with the service's peak RSS and the ratio of its rate to the
redis-benchmark rate. Loopback only, bounded in time, stops what it started by
PID. Exits non-zero if any request errored or a train was oversold.

Then the same paired runs for the rate limit: RATE_LIMIT_PER_CLIENT at a
limit wrk never reaches (every request checked, none refused) against the
default (off); and with 10,000 clients each under it (bench/clients.lua,
X-Forwarded-For behind TRUST_FORWARDED_FOR).
"""

import os
import re
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
BASELINE = os.environ.get("BENCH_BASELINE")
STOCK = 1_000_000_000
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = 2
CONNECTIONS = 64
OVERHEAD_ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "8"))
OVERHEAD_SECONDS = int(os.environ.get("BENCH_OVERHEAD_SECONDS", "4"))
OVERHEAD_ONLY = os.environ.get("BENCH_OVERHEAD_ONLY") == "1"
OVERHEAD_TARGET = 0.97
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


def wrk(port, connections, seconds, script=WRK_SCRIPT, path="/reserve", trains=SPREAD_TRAINS):
    """wrk's figures; `script=None` sends plain GETs."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         *(["-s", str(script)] if script else []), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
        env=dict(os.environ, TRAINS=str(trains))).stdout
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
    import json
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
    """wrk(*args), with the service's CPU per answer, Redis's CPU per answer
    and answers per script call over the run."""
    cpu0, rcpu0, calls0 = cpu_seconds(service.pid), redis_cpu(redis_port), script_calls(redis_port)
    result = wrk(*args, **kwargs)
    ok = max(result["ok"], 1)
    calls = script_calls(redis_port) - calls0
    result.update(svc_us=1e6 * (cpu_seconds(service.pid) - cpu0) / ok,
                  redis_us=1e6 * (redis_cpu(redis_port) - rcpu0) / ok,
                  per_call=result["ok"] / calls if calls else None)
    return result


def run_pass(procs, tmp, aof):
    redis, redis_port = start_redis(procs, tmp, aof)
    service, port = start_service(procs, tmp, redis_port)
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
    return {"many": many, "one": one, "holds": holds, "spread": spread, "journeys": journeys, "baseline": baseline,
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


def paired(procs, tmp, on, off, script=WRK_SCRIPT):
    """The hot-train pass against two services on one Redis (no
    persistence), one started with the environment `on` and one with `off`,
    measured alternately so that drift on the shared cores falls on both:
    what a feature costs (metrics recording, the rate limit)."""
    redis, redis_port = start_redis(procs, tmp, aof=False)
    redis_cli(redis_port, "MSET", "train:{bench}:stock", STOCK, "train:{bench}:capacity", STOCK)
    services = {"on": start_service(procs, tmp, redis_port, **on), "off": start_service(procs, tmp, redis_port, **off)}
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
    check_train(redis_port, "{bench}")
    for service, _ in services.values():
        procs.stop(service)
    procs.stop(redis)
    medians = {name: statistics.median(rates) for name, rates in runs.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_us.items()}
    # Each round's two runs are next to each other in time: the median of
    # their ratios cancels the slow drift of whatever else shares the cores.
    ratio = statistics.median(on / off for on, off in zip(runs["on"], runs["off"]))
    cpu_ratio = statistics.median(off / on for on, off in zip(cpu_us["on"], cpu_us["off"]))
    return {"runs": runs, "medians": medians, "ratio": ratio, "errors": errors,
            "cpu_us": cpu, "cpu_ratio": cpu_ratio}


def main():
    if not BINARY.exists():
        raise SystemExit(f"bench: build first: cargo build --release ({BINARY} missing)")
    procs = Processes()
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            for name, aof in (("no persistence", False), ("AOF always", True)):
                if not OVERHEAD_ONLY:
                    results[name] = run_pass(procs, Path(tmp), aof)
            scale = {} if OVERHEAD_ONLY else scale_out(procs, Path(tmp))
            overhead = paired(procs, Path(tmp), {}, {"METRICS": "off"})
            # A limit no client here reaches: every request is checked and allowed.
            limited = paired(procs, Path(tmp), {"RATE_LIMIT_PER_CLIENT": str(RATE_LIMIT)}, {})
            # 10,000 clients, each well under a limit of 1,000 a second.
            proxied = {"TRUST_FORWARDED_FOR": "true"}
            many = paired(procs, Path(tmp), dict(proxied, RATE_LIMIT_PER_CLIENT="1000"), proxied,
                          ROOT / "bench" / "clients.lua")
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
                    (f"{SPREAD_TRAINS} trains of 10 stations, random journeys", r["journeys"])]
            if r["floor"]:
                rows.append(("GET /healthz (no Redis)", r["floor"]))
            for label, w in rows:
                per_call = f"{w['per_call']:.1f}" if w["per_call"] else "-"
                print(f"| {name} | {label} | {w['rate']:.0f} | {w['svc_us']:.1f} | {w['redis_us']:.1f} | {per_call} |")
    if len(results) == 2:
        print(f"\nAOF always / no persistence, {CONNECTIONS} conns hot train: "
              f"{results['AOF always']['many']['rate'] / results['no persistence']['many']['rate']:.2f}x")
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
    failed |= many["errors"] > 0
    if failed:
        print("bench: some requests errored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
