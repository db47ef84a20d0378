"""The peer comparison of `make bench`: this service against the
straightforward one (../shared/peers/axum: axum + redis-rs, one EVALSHA per
request, no batching, no record, no idempotency) on the loads of a
railway's peak, each system alone in turn against one private redis-server
without persistence, on the same trains.

Loads: one hot train at 64 connections, and 1,000 trains uniformly at 64,
16, 4 and 1 connections. Per load: both systems warmed up, then rounds of
one measured wrk run each, alternating which goes first; every figure is
the median of the rounds, and a ratio the median of the rounds' ratios (two
runs next to each other in time, so the host's drift falls on both). Also:
Redis's time per reserve.lua call when a call carries one reservation
(INFO commandstats over the service's 1-connection runs, where every call
carries one) and the peer's per call; and our 1,000 trains against our own
hot train, in alternating rounds of their own.

Prints one table with the rates, p50 and p99, the ratios, where the two
cores went (CPU a request of the service, Redis and wrk, and the share
left idle), and the issue's goals met or not; with them the CPU budget that
1.2x the peer over 1,000 trains leaves a request (what the cores can give
at that rate, as busy as the peer kept them), the machine's load average
before the run and
the fixed-answer ceiling of this run (nginx answering a fixed 200 at 64
connections, bench.py's `ceiling`), so a goal can be read against what
any HTTP service does on these cores at that moment: these shared cores
run 20-40% faster or slower from one run to the next. `make bench` runs it
after bench.py; alone: `python3 bench/peer.py` (BENCH_PEER_ROUNDS rounds,
default 3, of BENCH_PEER_SECONDS, default 3).
"""

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (bench.py's processes, wrk and Redis helpers)

PEER_DIR = Path(os.environ.get("PEER_DIR", bench.ROOT.parent / "shared" / "peers" / "axum"))
PEER_BINARY = bench.ROOT / "target" / "peer-axum" / "release" / "peer-axum"
# Each load: both systems warmed up, then ROUNDS rounds of one run each,
# alternating which goes first; figures are the medians of the rounds.
ROUNDS = int(os.environ.get("BENCH_PEER_ROUNDS", "3"))
ROUND_SECONDS = int(os.environ.get("BENCH_PEER_SECONDS", "3"))


def build_peer():
    """Builds the peer next to ours (its own target dir); None when absent."""
    if not (PEER_DIR / "Cargo.toml").exists():
        return None
    subprocess.run(["cargo", "build", "--release", "--locked", "--manifest-path", str(PEER_DIR / "Cargo.toml")],
                   check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(bench.ROOT / "target" / "peer-axum")))
    return PEER_BINARY


def start_peer(procs, tmp, redis_port):
    port = bench.free_port()
    env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{redis_port}", BIND_ADDR=f"127.0.0.1:{port}")
    log = open(tmp / f"peer-{port}.log", "w")
    p = procs.start([str(PEER_BINARY)], env=env, stdout=log, stderr=log, cwd=tmp)
    bench.wait_until(lambda: port_open(port), "peer")
    return p, port


def port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def evalsha_us(redis_port):
    """usec_per_call of EVALSHA since the last CONFIG RESETSTAT."""
    for line in bench.redis_cli(redis_port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return float(line.split("usec_per_call=")[1].split(",")[0])
    return None


def medians(runs):
    """One system's figures for one load: the median of its rounds for each."""
    return {key: statistics.median(w[key] for w in runs)
            for key in ("rate", "p50", "p99", "svc_us", "redis_us", "wrk_us", "idle")} | {"errors": sum(w["errors"] for w in runs)}


LOADS = [("one hot train", 64, bench.WRK_SCRIPT), ("1,000 trains", 64, bench.WRK_SPREAD_SCRIPT),
         ("1,000 trains", 16, bench.WRK_SPREAD_SCRIPT), ("1,000 trains", 4, bench.WRK_SPREAD_SCRIPT),
         ("1,000 trains", 1, bench.WRK_SPREAD_SCRIPT)]


def compare(procs, tmp):
    """Runs every load on both systems; returns {(load, conns): {"ours": w, "peer": w}}, per-call µs
    and the fixed-answer ceiling (measured first, while the two are idle)."""
    redis, rport = bench.start_redis(procs, tmp, False)
    trains = ["bench"] + [f"s-{i}" for i in range(bench.SPREAD_TRAINS)]
    for chunk in range(0, len(trains), 200):
        kv = []
        for t in trains[chunk:chunk + 200]:
            kv += [f"train:{{{t}}}:stock", bench.STOCK, f"train:{{{t}}}:capacity", bench.STOCK,
                   f"{{{t}}}stock", bench.STOCK]
        bench.redis_cli(rport, "MSET", *kv)
    ours, oport = bench.start_service(procs, tmp, rport)
    peer, pport = start_peer(procs, tmp, rport)
    top = bench.ceiling(procs, tmp)
    out, per_call = {}, {}
    systems = {"ours": (ours, oport), "peer": (peer, pport)}
    for n, (load, conns, script) in enumerate(LOADS):
        runs, calls = {"ours": [], "peer": []}, {"ours": [], "peer": []}
        for name, (proc, port) in systems.items():
            bench.wrk(port, conns, bench.WARMUP, script)
        for r in range(ROUNDS):
            for name in (["ours", "peer"] if (n + r) % 2 == 0 else ["peer", "ours"]):
                proc, port = systems[name]
                bench.redis_cli(rport, "CONFIG", "RESETSTAT")
                runs[name].append(bench.measured(proc, rport, port, conns, ROUND_SECONDS, script))
                calls[name].append(evalsha_us(rport))
        out[(load, conns)] = {name: medians(ws) for name, ws in runs.items()}
        # Each round's two runs are next to each other in time: their ratio
        # is what the host's drift affects least.
        out[(load, conns)]["ratio"] = statistics.median(
            o["rate"] / p["rate"] for o, p in zip(runs["ours"], runs["peer"]))
        if conns == 1:
            per_call = {name: statistics.median(us) for name, us in calls.items()}
    # Our 1,000 trains against our own hot train, in alternating rounds as
    # well: the two loads above run minutes apart, and the host's drift in
    # between once made 0.80x of what make bench had just measured at 0.51x.
    own = []
    for r in range(ROUNDS):
        loads = [bench.WRK_SCRIPT, bench.WRK_SPREAD_SCRIPT]
        w = {script: bench.wrk(oport, 64, ROUND_SECONDS, script) for script in (loads if r % 2 == 0 else loads[::-1])}
        own.append(w[bench.WRK_SPREAD_SCRIPT]["rate"] / max(w[bench.WRK_SCRIPT]["rate"], 1))
        out[("1,000 trains", 64)]["ours"]["errors"] += sum(x["errors"] for x in w.values())
    out["spread/hot"] = statistics.median(own)
    procs.stop(peer)
    procs.stop(ours)
    procs.stop(redis)
    return out, per_call, top


def report(out, per_call, top, loadavg):
    """Prints the table and the goals; returns whether any request errored."""
    print("\nPeer comparison, no persistence: this service against ../shared/peers/axum (one EVALSHA per request), "
          f"each alone in turn on one redis-server; per load a {bench.WARMUP}s warm-up each, then {ROUNDS} rounds "
          f"of wrk -t1 {ROUND_SECONDS}s on each, alternating which goes first: medians of the rounds, the ratio "
          "the median of the rounds' ratios\n")
    print("| load | conns | this service /s | p50 ms | p99 ms | peer /s | p50 ms | p99 ms | ratio | "
          "CPU us a request: service, Redis, wrk (ours; peer) | cores idle (ours, peer) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    failed = False
    for (load, conns), row in ((k, v) for k, v in out.items() if k != "spread/hot"):
        o, p = row["ours"], row["peer"]
        print(f"| {load} | {conns} | {o['rate']:.0f} | {o['p50']:.2f} | {o['p99']:.2f} | {p['rate']:.0f} "
              f"| {p['p50']:.2f} | {p['p99']:.2f} | {row['ratio']:.2f}x "
              f"| {o['svc_us']:.1f}, {o['redis_us']:.1f}, {o['wrk_us']:.1f}; "
              f"{p['svc_us']:.1f}, {p['redis_us']:.1f}, {p['wrk_us']:.1f} "
              f"| {100 * o['idle']:.0f}%, {100 * p['idle']:.0f}% |")
        if o["errors"] or p["errors"]:
            print(f"|  | errors (non-2xx answers, socket errors): this service {o['errors']}, peer {p['errors']} "
                  "| | | | | | | | | |")
        failed |= o["errors"] > 0 or p["errors"] > 0
    hot, spread = out[("one hot train", 64)], out[("1,000 trains", 64)]
    goals = [
        ("1,000 trains, 64 conns >= 1.2x the peer", spread["ratio"] >= 1.2),
        (f"1,000 trains, 64 conns >= 0.8x our hot train ({out['spread/hot']:.2f}x, the median of {ROUNDS} "
         "alternating rounds of the two)", out["spread/hot"] >= 0.8),
        ("one hot train >= 1.2x the peer", hot["ratio"] >= 1.2),
        ("p99 at 64 conns <= 3 ms, both loads", max(hot["ours"]["p99"], spread["ours"]["p99"]) <= 3.0),
    ]
    for conns in (16, 4):
        row = out[("1,000 trains", conns)]
        goals.append((f"1,000 trains, {conns} conns: at least the peer's rate",
                      row["ratio"] >= 1.0))
        goals.append((f"1,000 trains, {conns} conns: p50 no higher than the peer's",
                      row["ours"]["p50"] <= row["peer"]["p50"]))
    print(f"\nLoad average before the run: {loadavg}. Ceiling, nginx answering a fixed 200 "
          f"at 64 conns: {top['rate']:.0f}/s, p99 {top['p99']:.2f} ms. 1.2x the peer at 64 conns would be "
          f"{1.2 * hot['peer']['rate']:.0f}/s on the hot train ({1.2 * hot['peer']['rate'] / top['rate']:.2f}x the "
          f"ceiling) and {1.2 * spread['peer']['rate']:.0f}/s over 1,000 trains "
          f"({1.2 * spread['peer']['rate'] / top['rate']:.2f}x the ceiling).")
    print(budget(spread))
    if per_call.get("ours") is not None:
        goals.append((f"one call carrying one reservation <= 25 us in Redis ({per_call['ours']:.1f} us; "
                      f"the peer's call {per_call.get('peer') or 0:.1f} us)", per_call["ours"] <= 25.0))
    print()
    for what, ok in goals:
        print(f"- {'met' if ok else 'NOT MET'}: {what}")
    return failed


def budget(row):
    """What 1.2x the peer's rate leaves each request of the two cores, with
    them as busy as the peer kept them, against what each system spent."""
    o, p = row["ours"], row["peer"]
    rate = 1.2 * p["rate"]
    per_request = (os.cpu_count() or 1) * 1e6 * (1 - p["idle"]) / rate
    return (f"Budget: 1.2x the peer over 1,000 trains at 64 conns is {rate:.0f}/s; with the cores "
            f"{100 * p['idle']:.0f}% idle, as the peer left them, that is {per_request:.1f} us of CPU a request, "
            f"{per_request - o['wrk_us']:.1f} after wrk's {o['wrk_us']:.1f}, for the service and Redis together. "
            f"This service spent {o['svc_us'] + o['redis_us']:.1f} ({o['svc_us']:.1f} + {o['redis_us']:.1f}), "
            f"the peer {p['svc_us'] + p['redis_us']:.1f} ({p['svc_us']:.1f} + {p['redis_us']:.1f}).")


def main():
    if build_peer() is None:
        print(f"peer: no peer at {PEER_DIR} (set PEER_DIR)", file=sys.stderr)
        return 1
    loadavg = Path("/proc/loadavg").read_text().split()[0]
    procs = bench.Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
            out, per_call, top = compare(procs, Path(tmp))
    finally:
        procs.stop_all()
    return 1 if report(out, per_call, top, loadavg) else 0


if __name__ == "__main__":
    sys.exit(main())
