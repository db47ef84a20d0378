#!/usr/bin/env bash
# Locust smoke test: starts the service (with its own private redis-server) on
# a free loopback port with a train of ONE seat, lets 200 Locust users race
# for it for 10 s, and checks that exactly one seat was sold, none oversold
# and no lock was left behind. Then 6 s each of the checkout flow
# (CheckoutUser), random journeys (JourneyUser) and numbered seats
# (SeatUser, whose end check reads the records in the private Redis).
#
# Usage: scripts/locust-smoke.sh BINARY VENV_DIR
#   BINARY    the train-reservation binary (e.g. target/release/train-reservation)
#   VENV_DIR  a virtualenv with locust installed (e.g. .venv)
# Optional environment, for longer load runs (defaults: the smoke test):
#   LOCUST_USERS (200), LOCUST_SPAWN_RATE (100), LOCUST_RUN_TIME (10s),
#   LOCUST_SEATS (1): seats of the train; all of them must be sold.
# Needs: redis-server and redis-cli on PATH (the service starts the one, the
# SeatUser end check reads with the other), curl, python3.
# Last line: "locust smoke: 1 passed, 0 failed" (exit 0) or
#            "locust smoke: 0 passed, 1 failed" (exit 1).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BINARY VENV_DIR" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
locustfile="$repo_root/locustfile.py"

# Absolute paths: the service runs from a temp dir.
binary="$1"
if [[ "$binary" != */* ]]; then
    binary="$(command -v "$binary")" || { echo "locust smoke: no such command: $1" >&2; exit 2; }
fi
[[ -f "$binary" && -x "$binary" ]] || { echo "locust smoke: not an executable file: $binary" >&2; exit 2; }
[[ -x "$2/bin/locust" ]] || { echo "locust smoke: no $2/bin/locust (python3 -m venv $2 && $2/bin/pip install locust)" >&2; exit 2; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
venv="$(cd "$2" && pwd)"

train="smoke-$$"
admin_token="smoke-admin-$$"
users="${LOCUST_USERS:-200}"
spawn_rate="${LOCUST_SPAWN_RATE:-100}"
run_time="${LOCUST_RUN_TIME:-10s}"
seats="${LOCUST_SEATS:-1}"
[[ "$seats" =~ ^[1-9][0-9]*$ ]] || { echo "locust smoke: LOCUST_SEATS must be a positive integer, got '$seats'" >&2; exit 2; }
# Hard bound on the Locust process: its run time plus two minutes.
run_secs="$(python3 -c '
import re, sys
t = sys.argv[1]
parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", t.strip())
if not t.strip() or not parts:
    sys.exit(f"locust smoke: bad LOCUST_RUN_TIME {t!r} (use e.g. 30s, 2m, 1h30m)")
h, m, s = (int(x or 0) for x in parts.groups())
print(h * 3600 + m * 60 + s)
' "$run_time")"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/locust-smoke.XXXXXX")"
log="$tmp/service.log"
pid=""

log_tail() {
    echo "--- service log (last 40 lines): $log" >&2
    tail -n 40 "$log" >&2 || true
    echo "---" >&2
}

# Stop the service (SIGTERM to its PID only, up to 10 s, then SIGKILL) and
# remove the temp dir. Safe to call twice (explicitly, then from the trap).
cleanup() {
    if [[ -n "$pid" ]]; then
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "locust smoke: service $pid still running 10 s after SIGTERM: SIGKILL" >&2
                # Its own children (the private redis-server) would be orphaned: stop them too.
                children="$(pgrep -P "$pid" || true)"
                kill -KILL "$pid" 2>/dev/null || true
                for child in $children; do
                    kill -TERM "$child" 2>/dev/null || true
                done
                for _ in $(seq 1 50); do
                    alive=""
                    for child in $children; do
                        if kill -0 "$child" 2>/dev/null; then alive=1; fi
                    done
                    if [[ -z "$alive" ]]; then break; fi
                    sleep 0.1
                done
            fi
            status=0
            wait "$pid" 2>/dev/null || status=$?
            if [[ "$status" -ne 0 ]]; then
                echo "locust smoke: warning: service exited with status $status on SIGTERM (expected 0)" >&2
            fi
        else
            status=0
            wait "$pid" 2>/dev/null || status=$?
            echo "locust smoke: service had already exited with status $status" >&2
        fi
        pid=""
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

finish() {
    local ok="$1"
    cleanup
    if [[ "$ok" == 1 ]]; then
        echo "locust smoke: 1 passed, 0 failed"
        exit 0
    fi
    echo "locust smoke: 0 passed, 1 failed"
    exit 1
}

fail() {
    echo "locust smoke: FAIL: $*" >&2
    log_tail
    finish 0
}

# `exec` keeps the PID: $pid is the service itself, not a subshell.
(
    cd "$tmp"
    BIND_ADDR="127.0.0.1:$port" DEFAULT_STOCK="$seats" DEFAULT_TRAIN="$train" \
        ADMIN_TOKEN="$admin_token" exec "$binary"
) >"$log" 2>&1 </dev/null &
pid=$!
echo "locust smoke: service pid $pid on $base, train $train ($seats seats), workdir $tmp"

deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
        fail "the service exited before it was ready"
    fi
    if ((SECONDS >= deadline)); then
        fail "GET $base/readyz did not answer 200 within 30 s"
    fi
    sleep 0.2
done
echo "locust smoke: service ready"

locust_status=0
(
    cd "$tmp"
    echo "locust smoke: $users users (spawn rate $spawn_rate/s) for $run_time"
    LOCUST_TRAIN="$train" LOCUST_EXPECT_SOLD="$seats" \
        timeout -k 10 $((run_secs + 120)) "$venv/bin/locust" -f "$locustfile" --headless \
        -u "$users" -r "$spawn_rate" -t "$run_time" --stop-timeout 5 \
        --host "$base" --only-summary
) || locust_status=$?
if [[ "$locust_status" -ne 0 ]]; then
    fail "locust exited with status $locust_status"
fi

# The checkout flow (hold, think, confirm/release/abandon) on a train of its
# own; Locust's end-of-run check asserts capacity = remaining + sold + held.
checkout_status=0
(
    cd "$tmp"
    echo "locust smoke: checkout flow, 50 users for 6s"
    LOCUST_TRAIN="$train-checkout" LOCUST_STOCK=60 ADMIN_TOKEN="$admin_token" \
        timeout -k 10 120 "$venv/bin/locust" -f "$locustfile" --headless \
        -u 50 -r 50 -t 6s --stop-timeout 5 --host "$base" --only-summary CheckoutUser
) || checkout_status=$?
if [[ "$checkout_status" -ne 0 ]]; then
    fail "locust (CheckoutUser) exited with status $checkout_status"
fi

journey_status=0
(
    cd "$tmp"
    echo "locust smoke: random journeys on a train with six stations, 50 users for 6s"
    LOCUST_TRAIN="$train" LOCUST_STOCK=30 ADMIN_TOKEN="$admin_token" \
        timeout -k 10 120 "$venv/bin/locust" -f "$locustfile" --headless \
        -u 50 -r 50 -t 6s --stop-timeout 5 --host "$base" --only-summary JourneyUser
) || journey_status=$?
if [[ "$journey_status" -ne 0 ]]; then
    fail "locust (JourneyUser) exited with status $journey_status"
fi

# Numbered seats: named seats, groups together, classes, holds and
# cancellations on a train of 148 seats with the same six stations. The end
# check reads the records in the service's private Redis (its port is in the
# service's log) and rebuilds every (seat, leg) from them.
redis_port="$(grep -o 'redis-cli -p [0-9]*' "$log" | head -n 1 | awk '{print $3}')"
[[ -n "$redis_port" ]] || fail "no private redis-server port in the service's log"
seats_status=0
(
    cd "$tmp"
    echo "locust smoke: numbered seats on a train with coaches and six stations, 50 users for 6s"
    LOCUST_TRAIN="$train" ADMIN_TOKEN="$admin_token" LOCUST_REDIS_URL="redis://127.0.0.1:$redis_port" \
        timeout -k 10 120 "$venv/bin/locust" -f "$locustfile" --headless \
        -u 50 -r 50 -t 6s --stop-timeout 5 --host "$base" --only-summary SeatUser
) || seats_status=$?
if [[ "$seats_status" -ne 0 ]]; then
    fail "locust (SeatUser) exited with status $seats_status"
fi

# Independent check of the final state, without Locust.

state="$(curl -fsS --max-time 5 "$base/trains/$train")" || fail "GET $base/trains/$train failed"
echo "locust smoke: final state $state"
if ! STATE="$state" SEATS="$seats" python3 - <<'EOF'
import json, os, sys
state = json.loads(os.environ["STATE"])
seats = int(os.environ["SEATS"])
expected = {"sold": seats, "remaining": 0, "capacity": seats, "locked": False}
wrong = {k: state.get(k) for k, v in expected.items() if state.get(k) != v or type(state.get(k)) is not type(v)}
if wrong:
    print(f"locust smoke: expected {expected}, got {wrong}", file=sys.stderr)
    sys.exit(1)
EOF
then
    fail "final state of train $train is wrong"
fi

finish 1
