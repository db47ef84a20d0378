#!/usr/bin/env python3
"""Redis's time per reserve.lua call (INFO commandstats), the calls sent
directly, one at a time, by one client: what a script costs inside Redis,
without the service. For comparing variants of the scripts (give the files
to concatenate, e.g. lua/prelude.lua lua/reserve.lua, or an instrumented
copy); it FLUSHALLs the Redis it is given, so give it a scratch one.

usage: python3 bench/lua_cost.py PORT SCRIPT_FILE... [vs SCRIPT_FILE...] -- MODE TRAINS_PER_CALL PER_TRAIN CALLS
MODE: plain (no stations), journey (10 stations), numbered (10 stations,
2,000 seats); trains made with lua/put_train.lua; journeys as bench/journeys.lua.
TRAINS (environment, default 20): how many trains the calls pick from; 1,000
makes each call meet keys Redis has not touched for a while, as the spread load.

With `vs`, two variants A and B, each on trains of its own (so that what
one leaves in Redis, such as the encoding of a hash, does not help the
other): the CALLS go in BLOCKS (environment, default 12) blocks per
variant, in the order A B, B A, A B, ..., each block read on its own.
Prints both medians and the median of the blocks' B/A ratios: on these
shared cores a lone figure drifts by half from one minute to the next,
while two blocks next to each other drift together (a variant against
itself reads 0.96-1.04).

With one variant, it also prints what the commands the script called took
(their own time in INFO commandstats, per call): the rest of a call is the
script's Lua and each redis.call's conversions. bench/yardsticks/ holds two
scripts that take the same calls: the peer's design (peer.lua) and the least
the contract asks of a booking (floor.lua).
"""
import os, socket, sys, random, statistics, uuid, json
port = int(sys.argv[1]); i = sys.argv.index('--')
files = sys.argv[2:i]; mode, tpc, per, calls = sys.argv[i+1], int(sys.argv[i+2]), int(sys.argv[i+3]), int(sys.argv[i+4])
KEYS = ["stock","capacity","sold","held","lock","reservations","holds","hold_expiry","users","ended","legs","seats","coaches"]
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile('rb')
def enc(*a):
    out = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)
def read():
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t == b'+': return rest.decode()
    if t == b'-': raise RuntimeError(rest.decode())
    if t == b':': return int(rest)
    if t == b'$':
        n = int(rest)
        if n < 0: return None
        d = f.read(n + 2)[:-2]; return d.decode()
    if t == b'*':
        n = int(rest); return [read() for _ in range(n)] if n >= 0 else None
def cmd(*a): s.sendall(enc(*a)); return read()
variants = [files] if "vs" not in files else [files[:files.index("vs")], files[files.index("vs") + 1:]]
shas = [cmd("SCRIPT", "LOAD", "".join(open(p).read() for p in v)) for v in variants]
put = cmd("SCRIPT", "LOAD", open('lua/prelude.lua').read() + open('lua/put_train.lua').read())
stations = json.dumps([f"S{k}" for k in range(10)])
coaches = json.dumps([{"coach": str(c), "class": "second", "rows": 20, "layout": "AB_CD"} for c in range(1, 26)])
count = max(tpc, int(os.environ.get("TRAINS", "20")))
trains = [[f"{mode}-{'ab'[v]}{n}" for n in range(count)] for v in range(len(variants))]
cmd("FLUSHALL")
for t in (t for ts in trains for t in ts):
    keys = [f"train:{{{t}}}:{k}" for k in KEYS] + [f"train:{{{t}}}:call:put"]
    cap, st, co = ("1000000000", "", "") if mode == "plain" else (("1000000000", stations, "") if mode == "journey" else ("2000", stations, coaches))
    cmd("EVALSHA", put, len(keys), *keys, "tok", "3000", "86400000", "0", "60000", "0", "1", "1", cap, "0", st, co)
rng = random.Random(1)
def journey():
    if mode == "plain": return "", ""
    a = rng.randint(0, 8); b = 9 if rng.random() < 0.25 else min(9, a + rng.randint(1, 3))
    return f"S{a}", f"S{b}"
last_stats = ""
def run(v, n, show_first=False):
    """n calls of variant v; Redis's µs a call over them."""
    global last_stats
    cmd("CONFIG", "RESETSTAT")
    for c in range(n):
        ts = rng.sample(trains[v], tpc)
        keys = []
        for t in ts: keys += [f"train:{{{t}}}:{k}" for k in KEYS]
        tok = str(uuid.uuid4()); keys.append(f"train:{{{ts[0]}}}:call:{tok}")
        args = [tok, "3000", "86400000", "0", "60000", "0"]
        for k, t in enumerate(ts):
            args += [str(13 * k + 1), str(per)]
            for _ in range(per):
                a, b = journey()
                args += [str(uuid.uuid4()), "1", "", "0", "", a, b, "", "", ""]
        r = cmd("EVALSHA", shas[v], len(keys), *keys, *args)
        if c == 0 and show_first: print("first reply", repr(r)[:100])
    st = last_stats = cmd("INFO", "commandstats")
    return float(st.split("cmdstat_evalsha:")[1].split("usec_per_call=")[1].split(",")[0])
def show(name, us): print(f"{name}{mode} trains/call={tpc} per_train={per}: {us:.1f} us/call, {us/(tpc*per):.1f} us/reservation")
def inside(stats, ncalls):
    """What the commands a script calls took, µs a script call, each and in
    all (their own time in INFO commandstats; what a script spends around
    them, turning its arguments and their replies into Lua, is not in it)."""
    per = {}
    for line in stats.splitlines():
        if line.startswith("cmdstat_") and not line.startswith(("cmdstat_evalsha:", "cmdstat_config")):
            name, rest = line[len("cmdstat_"):].split(":", 1)
            per[name] = float(rest.split("usec=")[1].split(",")[0]) / ncalls
    listed = ", ".join(f"{k} {v:.1f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
    return f"commands inside: {sum(per.values()):.1f} us/call ({listed})"
if len(variants) == 1:
    show("", run(0, calls, show_first=True))
    print(inside(last_stats, calls))
else:
    blocks = int(os.environ.get("BLOCKS", "12")); block = max(calls // blocks, 1)
    us = [[], []]
    for k in range(blocks):
        for v in ((0, 1) if k % 2 == 0 else (1, 0)): us[v].append(run(v, block, show_first=k == 0))
    show("A: ", statistics.median(us[0])); show("B: ", statistics.median(us[1]))
    print(f"B/A {statistics.median(b / a for a, b in zip(*us)):.3f} (median of {blocks} pairs of {block}-call blocks)")
