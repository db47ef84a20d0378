#!/usr/bin/env python3
"""A/B of two builds: which is faster, measured so that noise cancels.

    python3 bench/ab.py OLD_BINARY NEW_BINARY

Both services run at once on one private Redis (no persistence, AOF=1 for
`appendfsync always`); wrk drives them in turn, in alternating order, in
ROUNDS rounds of SECS-second runs (default 6 x 3 s), with CONNS connections
(64) on the hot train, or spread over 1,000 trains with SPREAD=1. Prints each
build's medians (reservations/s, service and Redis CPU per reservation from
/proc and INFO, p99, p50, reservations per script call, peak RSS) and the medians of the rounds' new/old
ratios: two runs next to each other in time, so the drift of whatever else
shares the cores falls on both. Loopback only; stops what it started by PID.
"""
import os, sys, statistics, tempfile, re
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B
A, Bb = sys.argv[1], sys.argv[2]
ROUNDS = int(os.environ.get("ROUNDS", "6")); SECS = int(os.environ.get("SECS", "3"))
SCRIPT = B.WRK_SPREAD_SCRIPT if os.environ.get("SPREAD") else B.WRK_SCRIPT
CONNS = int(os.environ.get("CONNS", "64"))
procs = B.Processes()
try:
    with tempfile.TemporaryDirectory(prefix="ab-") as tmp:
        tmp = Path(tmp)
        redis, rport = B.start_redis(procs, tmp, os.environ.get("AOF") == "1")
        B.redis_cli(rport, "MSET", "train:{bench}:stock", B.STOCK, "train:{bench}:capacity", B.STOCK)
        kv = [x for i in range(1000) for x in (f"train:{{s-{i}}}:stock", B.STOCK, f"train:{{s-{i}}}:capacity", B.STOCK)]
        B.redis_cli(rport, "MSET", *kv)
        svcs = {"A": B.start_service(procs, tmp, rport, binary=Path(A)), "B": B.start_service(procs, tmp, rport, binary=Path(Bb))}
        for _, port in svcs.values(): B.wrk(port, CONNS, 2, SCRIPT)
        res = {"A": [], "B": []}
        for r in range(ROUNDS):
            for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                svc, port = svcs[name]
                c0 = B.cpu_seconds(svc.pid); rc0 = B.redis_cpu(rport); calls0 = B.script_calls(rport)
                w = B.wrk(port, CONNS, SECS, SCRIPT)
                c1 = B.cpu_seconds(svc.pid); rc1 = B.redis_cpu(rport); calls1 = B.script_calls(rport)
                res[name].append((w["rate"], 1e6 * (c1 - c0) / w["ok"], 1e6 * (rc1 - rc0) / w["ok"], w["p99"], w["p50"],
                                  w["ok"] / max(calls1 - calls0, 1)))
        for name in "AB":
            rss = int(re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{svcs[name][0].pid}/status").read_text()).group(1))
            m = [statistics.median(x[i] for x in res[name]) for i in range(6)]
            print(f"{name}: rate {m[0]:.0f} svc {m[1]:.1f} us redis {m[2]:.1f} us p99 {m[3]:.2f} p50 {m[4]:.2f} "
                  f"per call {m[5]:.1f} rss {rss/1024:.1f} MiB  runs {' '.join(f'{x[0]:.0f}' for x in res[name])}")
        rr = statistics.median(b[0] / a[0] for a, b in zip(res["A"], res["B"]))
        cr = statistics.median(b[1] / a[1] for a, b in zip(res["A"], res["B"]))
        rc = statistics.median(b[2] / a[2] for a, b in zip(res["A"], res["B"]))
        print(f"B/A rate {rr:.3f}  svc cpu {cr:.3f}  redis cpu {rc:.3f}")
finally:
    procs.stop_all()
