"""Locust load test for train-reservation: a swarm racing for the last seats.

Each simulated user POSTs /reserve again and again with almost no pause. The
expected answers count as successes: 200 (a seat), 400 (sold out) and 429
(the train's lock is held). Anything else (404, 422, 5xx, a connection
error) is a failure. When the test stops, the train(s) are read back with
GET /trains/{id}; the run fails (exit code 1) if a train shows remaining < 0,
capacity != remaining + sold + held, a lock left behind, or (if asked) a
sold count other than the one expected.

User classes (pick them at the end of the command line, or with Locust's own
LOCUST_USER_CLASSES variable):

    ReserveUser     one train, LOCUST_TRAIN (the default when no class is named)
    MultiTrainUser  LOCUST_TRAINS trains named "<LOCUST_TRAIN>-0" .. "-<N-1>";
                    opt-in: it runs only when named
    CheckoutUser    the checkout flow on LOCUST_TRAIN: hold a seat, think
                    briefly, then confirm, release, or walk away and let the
                    hold expire (LOCUST_HOLD_TTL_MS); opt-in
    JourneyUser     random journeys on LOCUST_JOURNEY_TRAIN, a train with the
                    stations LOCUST_STATIONS: books (and now and then
                    cancels), or holds and then confirms, releases or lets
                    the hold expire; opt-in. Its end check is per leg.

Environment:

    LOCUST_TRAIN        train id (default "default", the service's default train)
    LOCUST_TRAINS       number of trains for MultiTrainUser (default 4)
    LOCUST_STOCK        if set together with ADMIN_TOKEN: at test start, every
                        train used is (re)created with this capacity and its
                        sales cleared (PUT /trains/{id} {"capacity", "reset": true})
    ADMIN_TOKEN         bearer token for that PUT
    LOCUST_EXPECT_SOLD  if set: at test stop, each train used must show exactly
                        this many seats sold
    LOCUST_HOLD_TTL_MS  ttl_ms of CheckoutUser's holds (default 2000: abandoned
                        holds expire within the run)
    LOCUST_JOURNEY_TRAIN  JourneyUser's train (default "<LOCUST_TRAIN>-journeys")
    LOCUST_STATIONS     its stations, comma-separated (default six: Paris,
                        Dijon, Lyon, Valence, Avignon, Marseille); with
                        LOCUST_STOCK and ADMIN_TOKEN the train is (re)created
                        with them at test start

Run (the host always comes from --host):

    # one train, 200 users, 30 s, summary only; exit code 1 on any failure
    LOCUST_TRAIN=default locust -f locustfile.py --headless -u 200 -r 100 \\
        -t 30s --host http://127.0.0.1:8000 --only-summary

    # fresh trains of 100 seats each, all 100 must be sold, several trains
    ADMIN_TOKEN=secret LOCUST_STOCK=100 LOCUST_EXPECT_SOLD=100 \\
        locust -f locustfile.py --headless -u 200 -r 100 -t 30s \\
        --host http://127.0.0.1:8000 --only-summary MultiTrainUser

    # both classes at once (weights 3:1), or the web UI on :8089
    locust -f locustfile.py --host http://127.0.0.1:8000 ReserveUser MultiTrainUser

The checks at test start and stop run only on the local runner or the master,
never on workers, so they also hold in distributed runs (--master/--worker).
"""

import itertools
import json
import logging
import os
import random
import time

import requests
from locust import HttpUser, between, events, task
from locust.runners import WorkerRunner

TRAIN_ID = os.environ.get("LOCUST_TRAIN", "default")
TRAINS = int(os.environ.get("LOCUST_TRAINS", "4"))
STOCK = os.environ.get("LOCUST_STOCK")
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN")
EXPECT_SOLD = os.environ.get("LOCUST_EXPECT_SOLD")
HOLD_TTL_MS = int(os.environ.get("LOCUST_HOLD_TTL_MS", "2000"))
JOURNEY_TRAIN = os.environ.get("LOCUST_JOURNEY_TRAIN", f"{TRAIN_ID}-journeys")
STATIONS = os.environ.get("LOCUST_STATIONS", "Paris,Dijon,Lyon,Valence,Avignon,Marseille").split(",")

if TRAINS < 1:
    raise ValueError(f"LOCUST_TRAINS must be at least 1, got {TRAINS}")
STOCK = int(STOCK) if STOCK not in (None, "") else None
EXPECT_SOLD = int(EXPECT_SOLD) if EXPECT_SOLD not in (None, "") else None

# Statuses that are normal answers in a race for the last seat.
EXPECTED_STATUSES = (200, 400, 429)
# Timeout of the set-up and check requests made at test start and stop.
ADMIN_TIMEOUT_S = 10

log = logging.getLogger("train-reservation")
_user_numbers = itertools.count(1)


def _reserve(user, train_id, name):
    body = {"train_id": train_id, "user_id": user.user_id, "seats": 1}
    with user.client.post("/reserve", json=body, name=name, catch_response=True) as resp:
        _expect(resp, EXPECTED_STATUSES)


class ReserveUser(HttpUser):
    """One buyer among many, all asking for one seat of the same train."""

    weight = 3
    wait_time = between(0, 0.05)

    def on_start(self):
        self.user_id = f"locust-{os.getpid()}-{next(_user_numbers)}"

    @task
    def reserve(self):
        _reserve(self, TRAIN_ID, "/reserve")

    @staticmethod
    def trains():
        return [TRAIN_ID]


class MultiTrainUser(HttpUser):
    """A buyer asking for one seat of a random train among LOCUST_TRAINS.

    Opt-in: runs only when named on the command line (or in
    LOCUST_USER_CLASSES); see _default_to_reserve_user below.
    """

    weight = 1
    wait_time = between(0, 0.05)

    def on_start(self):
        self.user_id = f"locust-multi-{os.getpid()}-{next(_user_numbers)}"

    @task
    def reserve(self):
        _reserve(self, random.choice(self.trains()), "/reserve [multi-train]")

    @staticmethod
    def trains():
        return [f"{TRAIN_ID}-{i}" for i in range(TRAINS)]


class CheckoutUser(HttpUser):
    """A buyer who holds a seat while paying: hold, think briefly, then
    confirm (60%), release (20%), or walk away and let the hold expire (20%).

    Opt-in, like MultiTrainUser. Expected answers: a hold 201, 400 (sold out),
    409 (per-user limit), 429 (locked); a confirm or release 200, 410 (the
    hold expired while the buyer thought), 429.
    """

    weight = 1
    wait_time = between(0, 0.05)

    def on_start(self):
        self.user_id = f"locust-checkout-{os.getpid()}-{next(_user_numbers)}"

    @task
    def checkout(self):
        body = {"user_id": self.user_id, "seats": 1, "ttl_ms": HOLD_TTL_MS}
        _hold_then_decide(self, TRAIN_ID, body, "/trains/{id}/holds", (201, 400, 409, 429),
                          think=0.75, confirm=0.6, release=0.2)

    @staticmethod
    def trains():
        return [TRAIN_ID]


class JourneyUser(HttpUser):
    """A buyer of a random journey on a train with stations: mostly short
    hops, some long trips, 1 to 3 seats. Books (and cancels one in five), or
    holds and then confirms, releases or walks away. Opt-in.

    Expected answers: a booking 200 or 400 (sold out on some leg), a hold 201
    or 400, 429 (locked) for any; a confirm or release 200, 410, 429.
    """

    weight = 1
    wait_time = between(0, 0.05)

    def on_start(self):
        self.user_id = f"locust-journey-{os.getpid()}-{next(_user_numbers)}"

    def _journey(self):
        a = random.randrange(len(STATIONS) - 1)
        long_trip = random.random() < 0.25
        b = len(STATIONS) - 1 if long_trip else random.randint(a + 1, min(a + 2, len(STATIONS) - 1))
        return {"user_id": self.user_id, "from": STATIONS[a], "to": STATIONS[b], "seats": random.randint(1, 3)}

    @task(2)
    def book(self):
        body = dict(self._journey(), train_id=JOURNEY_TRAIN)
        with self.client.post("/reserve", json=body, name="/reserve [journey]", catch_response=True) as resp:
            _expect(resp, (200, 400, 429))
            booked = resp.json().get("reservation_id") if resp.status_code == 200 else None
        if booked and random.random() < 0.2:
            with self.client.delete(f"/trains/{JOURNEY_TRAIN}/reservations/{booked}",
                                    name="/trains/{id}/reservations/{reservation_id}",
                                    catch_response=True) as resp:
                _expect(resp, (200, 429))

    @task(1)
    def hold(self):
        body = dict(self._journey(), ttl_ms=HOLD_TTL_MS)
        _hold_then_decide(self, JOURNEY_TRAIN, body, "/trains/{id}/holds [journey]", (201, 400, 429),
                          think=0.5, confirm=0.5, release=0.3)

    @staticmethod
    def trains():
        return [JOURNEY_TRAIN]

    @staticmethod
    def stations():
        return {JOURNEY_TRAIN: STATIONS}


def _hold_then_decide(user, train, body, name, statuses, think, confirm, release):
    """Holds seats, thinks for up to `think` of the hold's time, then
    confirms (probability `confirm`), releases (`release`) or walks away
    and lets the hold expire (the rest)."""
    path = f"/trains/{train}/holds"
    with user.client.post(path, json=body, name=name, catch_response=True) as resp:
        _expect(resp, statuses)
        hold_id = resp.json().get("hold_id") if resp.status_code == 201 else None
    if not hold_id:
        return
    time.sleep(random.uniform(0, HOLD_TTL_MS / 1000 * think))
    roll = random.random()
    if roll < confirm:
        with user.client.post(f"{path}/{hold_id}/confirm", name="/trains/{id}/holds/{hold_id}/confirm",
                              catch_response=True) as resp:
            _expect(resp, (200, 410, 429))
    elif roll < confirm + release:
        with user.client.delete(f"{path}/{hold_id}", name="/trains/{id}/holds/{hold_id}",
                                catch_response=True) as resp:
            _expect(resp, (200, 410, 429))


def _expect(resp, statuses):
    if resp.status_code in statuses:
        resp.success()
    else:
        detail = (resp.text or "")[:300] if resp.status_code else repr(resp.error)
        resp.failure(f"status {resp.status_code}: {detail}")


@events.init.add_listener
def _default_to_reserve_user(environment, runner, **_kwargs):
    """With no class named, run ReserveUser only (Locust would run every class).

    Workers keep every class: the master tells them which ones to spawn.
    """
    if isinstance(runner, WorkerRunner):
        return
    options = environment.parsed_options
    if options is not None and not getattr(options, "user_classes", None):
        environment.user_classes = [ReserveUser]


def _trains_used(environment):
    trains = []
    for user_class in environment.user_classes:
        for train in getattr(user_class, "trains", lambda: [])():
            if train not in trains:
                trains.append(train)
    return trains


def _stations_used(environment):
    stations = {}
    for user_class in environment.user_classes:
        stations.update(getattr(user_class, "stations", dict)())
    return stations


def _url(environment, train_id):
    return f"{environment.host.rstrip('/')}/trains/{train_id}"


def _fail(environment, message):
    log.error(message)
    environment.process_exit_code = 1


@events.test_start.add_listener
def _reset_trains(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner) or STOCK is None:
        return
    if not ADMIN_TOKEN:
        log.warning("LOCUST_STOCK is set but ADMIN_TOKEN is not: trains left as they are")
        return
    if not environment.host:
        _fail(environment, "no --host given: cannot reset the trains")
        return
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    stations = _stations_used(environment)
    for train in _trains_used(environment):
        body = {"capacity": STOCK, "reset": True}
        if train in stations:
            body["stations"] = stations[train]
        try:
            resp = requests.put(
                _url(environment, train),
                json=body,
                headers=headers,
                timeout=ADMIN_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            _fail(environment, f"train {train}: PUT failed: {exc}")
            continue
        if resp.status_code in (200, 201):
            log.info("train %s: capacity %d, sales cleared (status %d)", train, STOCK, resp.status_code)
        else:
            _fail(environment, f"train {train}: PUT answered {resp.status_code}: {resp.text[:300]}")


@events.test_stop.add_listener
def _check_trains(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    if not environment.host:
        _fail(environment, "no --host given: cannot check the trains")
        return
    for train in _trains_used(environment):
        try:
            resp = requests.get(_url(environment, train), timeout=ADMIN_TIMEOUT_S)
        except requests.RequestException as exc:
            _fail(environment, f"train {train}: GET failed: {exc}")
            continue
        if resp.status_code != 200:
            _fail(environment, f"train {train}: GET answered {resp.status_code}: {resp.text[:300]}")
            continue
        try:
            state = resp.json()
            capacity, remaining, sold, held = (int(state[k]) for k in ("capacity", "remaining", "sold", "held"))
            locked = state["locked"]
        except (ValueError, KeyError, TypeError) as exc:
            _fail(environment, f"train {train}: unexpected body {resp.text[:300]!r}: {exc}")
            continue
        problems = []
        legs = state.get("legs")
        if remaining < 0 or held < 0:
            problems.append(f"remaining {remaining} or held {held} < 0")
        if legs is None and capacity != remaining + sold + held:
            problems.append(f"capacity {capacity} != remaining {remaining} + sold {sold} + held {held}")
        for leg in legs or []:
            # Per leg: capacity = remaining + sold + held, none negative.
            r, s, h = leg["remaining"], leg["sold"], leg["held"]
            if min(r, s, h) < 0 or capacity != r + s + h:
                problems.append(f"leg {leg['from']}->{leg['to']}: capacity {capacity} != "
                                f"remaining {r} + sold {s} + held {h}")
        if legs and remaining != min(leg["remaining"] for leg in legs):
            problems.append(f"remaining {remaining} is not the fewest free on a leg")
        if legs and max(leg["sold"] + leg["held"] for leg in legs) > capacity:
            problems.append("a leg holds more seats than the train has")
        if locked:
            problems.append(f"lock left behind (ttl {state.get('lock_ttl_ms')} ms)")
        if EXPECT_SOLD is not None and sold != EXPECT_SOLD:
            problems.append(f"sold {sold}, expected {EXPECT_SOLD}")
        summary = (f"train {train}: capacity={capacity} remaining={remaining} sold={sold} "
                   f"held={held} locked={json.dumps(locked)}")
        if problems:
            _fail(environment, f"{summary}: FAIL: {'; '.join(problems)}")
        else:
            print(f"{summary}: ok", flush=True)
