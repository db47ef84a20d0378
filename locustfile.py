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
    SeatUser        numbered seats on LOCUST_SEAT_TRAIN (coaches of two
                    classes, the stations LOCUST_STATIONS): asks for given
                    seats (some read off the seat map first, some blind),
                    groups together, a class; books or holds (then confirms,
                    releases or lets the hold expire; a few long holds stay
                    live to the end), and cancels some of its reservations;
                    opt-in. Its end check rebuilds every seat of every leg
                    from the Redis records (see "End check of a numbered
                    train" below).

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
    LOCUST_SEAT_TRAIN   SeatUser's train (default "<LOCUST_TRAIN>-seats"); with
                        ADMIN_TOKEN (LOCUST_STOCK is not needed: the coaches
                        give the capacity) it is (re)created at test start
                        with LOCUST_COACHES and LOCUST_STATIONS
    LOCUST_COACHES      its coaches, as the JSON list PUT /trains/{id} takes
                        (default: 148 seats, coaches 1-2 "first" A_BC, 3-5
                        "second" AB_CD)
    LOCUST_LONG_HOLDS   SeatUser holds per Locust process that last
                        LOCUST_LONG_HOLD_TTL_MS (default 5 and 60000): live
                        holds the end check finds
    LOCUST_REDIS_URL    the service's Redis (redis://host:port), read with
                        redis-cli by SeatUser's end check; unset: the records
                        are not checked, only the API's figures against each
                        other (the run says so)
    LOCUST_KEY_PREFIX   the service's KEY_PREFIX (default "train")

End check of a numbered train (SeatUser): once the short holds have expired,
one atomic read of the train's records, free runs and counters in Redis
(a read-only EVAL), then the API's GET /trains/{id} and the seat map of every
leg and of the whole route, then the Redis read again; redone if anything
changed or a hold expired in between. It fails the run when a (seat, leg)
pair is in two bookings, when the records do not rebuild the occupancy
(the seat map of each leg: sold = reservations, held = live holds; the free
runs in train:{ID}:seats = the legs no record occupies, expired holds not
yet reclaimed included; the runs' counts in train:{ID}:legs), when per leg
the occupied seats differ from sold_k + held_k of GET /trains/{id}, or when
the classes' figures differ from the seat map.

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
import math
import os
import random
import subprocess
import time
from collections import Counter

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
SEAT_TRAIN = os.environ.get("LOCUST_SEAT_TRAIN", f"{TRAIN_ID}-seats")
# 148 seats: two first-class coaches of 6 rows of 3 (aisle after A), three
# second-class coaches of 10, 10 and 8 rows of 4 (aisle in the middle).
DEFAULT_COACHES = (
    [{"coach": str(n), "class": "first", "rows": 6, "layout": "A_BC"} for n in (1, 2)]
    + [{"coach": str(n), "class": "second", "rows": rows, "layout": "AB_CD"} for n, rows in ((3, 10), (4, 10), (5, 8))]
)
COACHES = json.loads(os.environ["LOCUST_COACHES"]) if os.environ.get("LOCUST_COACHES") else DEFAULT_COACHES
LONG_HOLDS = int(os.environ.get("LOCUST_LONG_HOLDS", "5"))
LONG_HOLD_TTL_MS = int(os.environ.get("LOCUST_LONG_HOLD_TTL_MS", "60000"))
REDIS_URL = os.environ.get("LOCUST_REDIS_URL") or None
KEY_PREFIX = os.environ.get("LOCUST_KEY_PREFIX", "train")

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
        return dict(_trip(), user_id=self.user_id, seats=random.randint(1, 3))

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


def _trip():
    """A random journey on STATIONS: mostly one or two legs, a quarter of
    them to the end of the line."""
    a = random.randrange(len(STATIONS) - 1)
    long_trip = random.random() < 0.25
    b = len(STATIONS) - 1 if long_trip else random.randint(a + 1, min(a + 2, len(STATIONS) - 1))
    return {"from": STATIONS[a], "to": STATIONS[b]}


class Layout:
    """A numbered train's seats as the service numbers them (coach, then row,
    then letter order), from its coaches ([{"coach", "class", "rows",
    "layout"}], as PUT /trains/{id} takes them and the seat map shows them).

    seats: seat id -> (number, class, coach, row, place in the row)."""

    def __init__(self, coaches):
        self.coaches = [{k: c[k] for k in ("coach", "class", "rows", "layout")} for c in coaches]
        self.seats, self.ids, self.by_class, self.by_coach, self.width = {}, [], {}, {}, {}
        for coach in self.coaches:
            letters = [x for x in coach["layout"] if x != "_"]
            self.width[coach["coach"]] = len(letters)
            for row in range(1, coach["rows"] + 1):
                for place, letter in enumerate(letters):
                    seat = f"{coach['coach']}-{row}{letter}"
                    self.seats[seat] = (len(self.ids), coach["class"], coach["coach"], row, place)
                    self.ids.append(seat)
                    self.by_class.setdefault(coach["class"], []).append(seat)
                    self.by_coach.setdefault(coach["coach"], []).append(seat)
        self.classes = list(self.by_class)

    def apart(self, ids):
        """What keeps `ids` from being seated together (None: they are): one
        coach, ceil(n / seats a row) consecutive rows, next to each other
        within each row (the aisle does not part them)."""
        where = [self.seats[i] for i in ids]
        coaches = {w[2] for w in where}
        if len(coaches) != 1:
            return f"{ids} span coaches {sorted(coaches)}"
        rows = sorted({w[3] for w in where})
        need = math.ceil(len(ids) / self.width[where[0][2]])
        if len(rows) != need or rows[-1] - rows[0] != need - 1:
            return f"{ids} take rows {rows}, {need} consecutive expected"
        for row in rows:
            places = sorted(w[4] for w in where if w[3] == row)
            if places[-1] - places[0] != len(places) - 1:
                return f"{ids}: not next to each other in row {row}"
        return None


# SeatUser's long holds so far, in this Locust process (LOCUST_LONG_HOLDS).
_long_holds = [0]


class SeatUser(HttpUser):
    """A buyer on a numbered train with stations (LOCUST_SEAT_TRAIN): names
    1 to 3 seats of one class (half of them read off the journey's seat map
    first, the others picked blind), asks for 2 to 4 seats together, or for
    seats of a class; then books (and cancels one booking in five at once,
    more later), or holds and confirms, releases or walks away. A few holds
    (LOCUST_LONG_HOLDS) last LOCUST_LONG_HOLD_TTL_MS, so the end check finds
    live holds. Opt-in.

    Expected answers, each checked against what was asked (the seats named,
    their class, together, the journey): a booking 200, a hold 201; the
    refusals 409 seat_taken (only when seats were named, and naming some of
    them), 409 not_together (only for a group), 400 sold_out; 429 for any.
    A seat map 200 with the coaches and journey asked. Anything else is a
    failure. What every request met is printed at the end of the run.
    """

    weight = 1
    wait_time = between(0, 0.05)

    def on_start(self):
        self.user_id = f"locust-seats-{os.getpid()}-{next(_user_numbers)}"
        self.reservations = []
        self.layout = None

    def context(self):
        return {"seat_user": True}

    def _layout(self):
        """The train's seats, read once from its seat map (the train as it
        is, whether or not this run created it)."""
        if self.layout is None:
            with self.client.get(f"/trains/{SEAT_TRAIN}/seats", name="/trains/{id}/seats [layout]",
                                 catch_response=True) as resp:
                _expect(resp, (200,))
                if resp.status_code == 200:
                    self.layout = Layout(resp.json()["coaches"])
        return self.layout

    @task(3)
    def chosen_seats(self):
        layout = self._layout()
        if not layout:
            return
        trip, cls = _trip(), random.choice(layout.classes)
        pool = layout.by_class[cls]
        if random.random() < 0.5:
            query = dict(trip, **({"class": cls} if random.random() < 0.5 else {}))
            with self.client.get(f"/trains/{SEAT_TRAIN}/seats", params=query, name="/trains/{id}/seats",
                                 catch_response=True) as resp:
                _expect(resp, (200,), lambda r: _seat_map_problem(r.json(), trip, query.get("class"), layout))
                if resp.status_code == 200:
                    free = [s["seat_id"] for c in resp.json()["coaches"] if c["class"] == cls
                            for s in c["seats"] if s["state"] == "free"]
                    pool = free or pool
        body = dict(trip, seat_ids=random.sample(pool, min(random.randint(1, 3), len(pool))))
        if random.random() < 0.3:
            body["class"] = cls
        if random.random() < 0.3:
            body["seats"] = len(body["seat_ids"])
        self._book_or_hold(body, "seat_ids")

    @task(2)
    def group(self):
        layout = self._layout()
        if not layout:
            return
        body = dict(_trip(), seats=random.randint(2, 4), together=True)
        if random.random() < 0.5:
            body["class"] = random.choice(layout.classes)
        self._book_or_hold(body, "together")

    @task(2)
    def in_class(self):
        layout = self._layout()
        if not layout:
            return
        body = dict(_trip(), seats=random.randint(1, 3))
        body["class"] = random.choice(layout.classes)
        self._book_or_hold(body, "class")

    @task(2)
    def cancel_one(self):
        if self.reservations:
            self._cancel(self.reservations.pop(random.randrange(len(self.reservations))))

    def _book_or_hold(self, body, kind):
        body = dict(body, user_id=self.user_id)
        layout = self.layout
        if random.random() < 0.6:
            with self.client.post("/reserve", json=dict(body, train_id=SEAT_TRAIN), name=f"/reserve [seats: {kind}]",
                                  catch_response=True) as resp:
                _expect(resp, (200, 400, 409, 429), lambda r: _seat_answer_problem(r, body, layout))
                booked = resp.json().get("reservation_id") if resp.status_code == 200 else None
            if booked and random.random() < 0.2:
                self._cancel(booked)
            elif booked:
                self.reservations.append(booked)
            return
        long_hold = _long_holds[0] < LONG_HOLDS and random.random() < 0.05

        def check(resp):
            if long_hold and resp.status_code == 201:
                _long_holds[0] += 1
            return _seat_answer_problem(resp, body, layout)

        ttl_ms = LONG_HOLD_TTL_MS if long_hold else HOLD_TTL_MS
        booked = _hold_then_decide(self, SEAT_TRAIN, dict(body, ttl_ms=ttl_ms), f"/trains/{{id}}/holds [seats: {kind}]",
                                   (201, 400, 409, 429), think=0 if long_hold else 0.5,
                                   confirm=0 if long_hold else 0.5, release=0 if long_hold else 0.3, check=check)
        if booked:
            self.reservations.append(booked)

    def _cancel(self, reservation_id):
        with self.client.delete(f"/trains/{SEAT_TRAIN}/reservations/{reservation_id}",
                                name="/trains/{id}/reservations/{reservation_id} [seats]", catch_response=True) as resp:
            _expect(resp, (200, 429))
        if resp.status_code == 429:
            self.reservations.append(reservation_id)

    @staticmethod
    def trains():
        return [SEAT_TRAIN]

    @staticmethod
    def stations():
        return {SEAT_TRAIN: STATIONS}

    @staticmethod
    def coaches():
        return {SEAT_TRAIN: COACHES}


def _seat_answer_problem(resp, asked, layout):
    """What is wrong with a booking's or a hold's answer on a numbered train,
    given what was `asked` (None: nothing)."""
    status = resp.status_code
    if status == 429:
        return None
    answer = resp.json()
    error, n = answer.get("error"), len(asked.get("seat_ids", ())) or asked.get("seats", 1)
    if status in (200, 201):
        ids = answer.get("seat_ids")
        if not isinstance(ids, list) or len(set(ids)) != n or len(ids) != n or answer.get("seats") != n:
            return f"{n} seats asked, the answer names {ids!r} (seats {answer.get('seats')!r})"
        if any(i not in layout.seats for i in ids):
            return f"the answer names seats the train does not have: {ids}"
        classes = {layout.seats[i][1] for i in ids}
        if classes != {answer.get("class")}:
            return f"the answer says class {answer.get('class')!r} for seats of {sorted(classes)}"
        if asked.get("class", answer["class"]) != answer["class"]:
            return f"class {asked['class']} asked, {answer['class']} answered"
        if sorted(asked.get("seat_ids", ids)) != sorted(ids):
            return f"seats {asked['seat_ids']} asked, {ids} answered"
        if (answer.get("from"), answer.get("to")) != (asked["from"], asked["to"]):
            return f"journey {asked['from']}->{asked['to']} asked, {answer.get('from')}->{answer.get('to')} answered"
        if asked.get("together"):
            return layout.apart(ids)
        return None
    if status == 409 and error == "seat_taken" and "seat_ids" in asked:
        taken = answer.get("seat_ids")
        if not taken or not isinstance(taken, list) or not set(taken) <= set(asked["seat_ids"]):
            return f"seat_taken names {taken!r}, asked {asked['seat_ids']}"
        return None
    if status == 409 and error == "not_together" and asked.get("together"):
        return None
    if status == 400 and error == "sold_out" and "seat_ids" not in asked:
        remaining = answer.get("remaining")
        if not isinstance(remaining, int) or remaining < 0:
            return f"sold_out with remaining {remaining!r}"
        # Seats free end to end in the class asked: fewer than asked. With no
        # class asked, `remaining` counts every class while one booking takes
        # one class: a request may find seats enough, split over classes.
        if "class" in asked and remaining >= n:
            return f"sold_out in class {asked['class']} with remaining {remaining} >= {n} asked"
        if remaining >= n:
            _seat_outcomes[("(of which)", "400 sold_out with remaining >= seats asked, no class asked")] += 1
        return None
    return f"{status} {error} is not an answer to {json.dumps(asked)}"


def _seat_map_problem(seat_map, trip, cls, layout):
    """What is wrong with a seat map (GET /trains/{id}/seats) of the journey
    `trip` ({} for the whole route) and class `cls` (None: all)."""
    want = (trip.get("from", STATIONS[0]), trip.get("to", STATIONS[-1]))
    if (seat_map.get("from"), seat_map.get("to")) != want:
        return f"seat map of {seat_map.get('from')}->{seat_map.get('to')}, {want[0]}->{want[1]} asked"
    coaches = [c for c in layout.coaches if cls in (None, c["class"])]
    if [{k: c[k] for k in ("coach", "class", "rows", "layout")} for c in seat_map["coaches"]] != coaches:
        return f"the seat map's coaches are not the train's (class {cls})"
    for coach in seat_map["coaches"]:
        if [s["seat_id"] for s in coach["seats"]] != layout.by_coach[coach["coach"]]:
            return f"coach {coach['coach']}: not its seats in row and letter order"
        states = {s["state"] for s in coach["seats"]} - {"free", "held", "sold"}
        if states:
            return f"coach {coach['coach']}: states {sorted(states)}"
    return None


# What SeatUser's requests met: (request, status and error code) -> count.
_seat_outcomes = Counter()


@events.request.add_listener
def _count_seat_outcomes(name, response, context, **_kwargs):
    if not context.get("seat_user") or response is None:
        return
    status = getattr(response, "status_code", 0) or 0
    error = ""
    if status >= 400:
        try:
            error = " " + str(response.json().get("error"))
        except (ValueError, AttributeError):
            pass
    _seat_outcomes[(name, f"{status}{error}")] += 1


@events.test_stop.add_listener
def _print_seat_outcomes(environment, **_kwargs):
    """Per SeatUser request, its answers by status and error code (each
    Locust process prints its own)."""
    if not _seat_outcomes:
        return
    lines = ["SeatUser answers (request: status error x count):"]
    for name in sorted({name for name, _ in _seat_outcomes}):
        answers = sorted((what, n) for (nm, what), n in _seat_outcomes.items() if nm == name)
        lines.append(f"  {name}: " + ", ".join(f"{what} x{n}" for what, n in answers))
    refusals = Counter()
    for (name, what), n in _seat_outcomes.items():
        if name != "(of which)" and what.startswith(("400", "409", "410", "429")):
            refusals[what] += n
    lines.append("  refusals in all: " + (", ".join(f"{what} x{n}" for what, n in sorted(refusals.items())) or "none"))
    lines.append(f"  long holds made: {_long_holds[0]}")
    print("\n".join(lines), flush=True)


def _hold_then_decide(user, train, body, name, statuses, think, confirm, release, check=None):
    """Holds seats, thinks for up to `think` of the hold's time, then
    confirms (probability `confirm`), releases (`release`) or walks away
    and lets the hold expire (the rest). `check` looks at the hold's answer
    (see _expect); a confirm must answer the hold's seats. Returns the
    reservation id when the hold was confirmed, else None."""
    path = f"/trains/{train}/holds"
    with user.client.post(path, json=body, name=name, catch_response=True) as resp:
        _expect(resp, statuses, check)
        held = resp.json() if resp.status_code == 201 else {}
    hold_id = held.get("hold_id")
    if not hold_id:
        return None
    time.sleep(random.uniform(0, body.get("ttl_ms", HOLD_TTL_MS) / 1000 * think))
    roll = random.random()
    if roll < confirm:
        with user.client.post(f"{path}/{hold_id}/confirm", name="/trains/{id}/holds/{hold_id}/confirm",
                              catch_response=True) as resp:
            _expect(resp, (200, 410, 429), lambda r: _same_seats(r, held))
            if resp.status_code == 200:
                return resp.json().get("reservation_id")
    elif roll < confirm + release:
        with user.client.delete(f"{path}/{hold_id}", name="/trains/{id}/holds/{hold_id}",
                                catch_response=True) as resp:
            _expect(resp, (200, 410, 429))
    return None


def _same_seats(resp, held):
    """A confirm's 200 names the seats its hold named (numbered trains)."""
    if resp.status_code == 200 and "seat_ids" in held:
        got = resp.json()
        if (got.get("seat_ids"), got.get("class")) != (held["seat_ids"], held.get("class")):
            return f"confirm answered {got.get('seat_ids')} ({got.get('class')}), the hold {held['seat_ids']}"
    return None


def _expect(resp, statuses, check=None):
    """Success when the status is one of `statuses` and `check(resp)`, if
    given, finds nothing wrong (it returns None, or what is wrong)."""
    if resp.status_code in statuses:
        try:
            problem = check(resp) if check else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"unexpected answer {resp.text[:300]!r}: {exc!r}"
        if problem:
            resp.failure(f"status {resp.status_code}: {problem}")
        else:
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


def _coaches_used(environment):
    coaches = {}
    for user_class in environment.user_classes:
        coaches.update(getattr(user_class, "coaches", dict)())
    return coaches


@events.test_start.add_listener
def _reset_trains(environment, **_kwargs):
    """(Re)creates the trains, sales cleared: with LOCUST_STOCK every train
    used, with that capacity; numbered trains (SeatUser's) with their
    coaches whenever ADMIN_TOKEN is set. Their stations too."""
    if isinstance(environment.runner, WorkerRunner):
        return
    coaches = _coaches_used(environment)
    trains = [t for t in _trains_used(environment) if STOCK is not None or t in coaches]
    if not trains:
        return
    if not ADMIN_TOKEN:
        log.warning("LOCUST_STOCK is set or a train has coaches, but ADMIN_TOKEN is not: "
                    "trains left as they are")
        return
    if not environment.host:
        _fail(environment, "no --host given: cannot reset the trains")
        return
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    stations = _stations_used(environment)
    for train in trains:
        body = {"coaches": coaches[train]} if train in coaches else {"capacity": STOCK}
        body["reset"] = True
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
            log.info("train %s: capacity %d, sales cleared (status %d)", train, resp.json()["capacity"],
                     resp.status_code)
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
        # On a numbered train, remaining is the seats free end to end: a
        # journey may find room on every leg and no one seat free all along.
        numbered = "classes" in state
        if legs and not numbered and remaining != min(leg["remaining"] for leg in legs):
            problems.append(f"remaining {remaining} is not the fewest free on a leg")
        if legs and numbered and remaining > min(leg["remaining"] for leg in legs):
            problems.append(f"remaining {remaining} is more than the fewest free on a leg")
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
    for train in _coaches_used(environment):
        summary, problems = _check_numbered_train(environment, train)
        if problems:
            _fail(environment, f"train {train} seats: {summary}: FAIL: {'; '.join(problems[:20])}"
                               + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
        else:
            print(f"train {train} seats: {summary}: ok", flush=True)


# One read-only, atomic look at a numbered train in Redis: KEYS reservations,
# holds, hold_expiry, seats, legs, coaches, stock, capacity, sold, held.
_SNAPSHOT_LUA = """
local t = redis.call('TIME')
local v = redis.call('MGET', KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10])
return cjson.encode({time = t, reservations = redis.call('HGETALL', KEYS[1]),
  holds = redis.call('HGETALL', KEYS[2]), expiry = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'),
  runs = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES'), legs = v[1], coaches = v[2],
  stock = v[3], capacity = v[4], sold = v[5], held = v[6]})
"""
_SNAPSHOT_KEYS = ("reservations", "holds", "hold_expiry", "seats", "legs", "coaches", "stock", "capacity",
                  "sold", "held")


def _snapshot(train):
    """The train's records, free runs and counters in Redis at one instant
    (redis-cli EVAL of a read-only script), with that instant in ms."""
    keys = [f"{KEY_PREFIX}:{{{train}}}:{k}" for k in _SNAPSHOT_KEYS]
    out = subprocess.run(["redis-cli", "-u", REDIS_URL, "--no-auth-warning", "--raw", "EVAL", _SNAPSHOT_LUA,
                          str(len(keys)), *keys], capture_output=True, text=True, timeout=ADMIN_TIMEOUT_S, check=True)
    raw = json.loads(out.stdout)
    pairs = lambda v: dict(zip(v[::2], v[1::2])) if isinstance(v, list) else {}  # noqa: E731 (cjson: {} when empty)
    return {
        "now": int(raw["time"][0]) * 1000 + int(raw["time"][1]) // 1000,
        "reservations": pairs(raw["reservations"]),
        "holds": pairs(raw["holds"]),
        "expiry": {k: int(float(v)) for k, v in pairs(raw["expiry"]).items()},
        "runs": {k: int(float(v)) for k, v in pairs(raw["runs"]).items()},
        **{k: raw[k] or None for k in ("legs", "coaches", "stock", "capacity", "sold", "held")},
    }


def _read_api(environment, train, nlegs):
    """GET /trains/{id}, the whole route's seat map and each leg's."""
    get = lambda path, **params: requests.get(f"{_url(environment, train)}{path}", params=params,  # noqa: E731
                                              timeout=ADMIN_TIMEOUT_S)
    answers = {"train": get(""), "map": get("/seats")}
    stations = answers["train"].json().get("stations") or []
    for k in range(nlegs if len(stations) == nlegs + 1 else 0):
        answers[k] = get("/seats", **{"from": stations[k], "to": stations[k + 1]})
    for what, resp in answers.items():
        if resp.status_code != 200:
            raise ValueError(f"GET {resp.url} answered {resp.status_code}: {resp.text[:300]}")
    return {what: resp.json() for what, resp in answers.items()}


def _check_numbered_train(environment, train):
    """The end check of a numbered train (see the module's docstring):
    returns a summary and the problems found."""
    try:
        first = _snapshot(train) if REDIS_URL else None
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError) as exc:
        return "no Redis snapshot", [f"reading {REDIS_URL} with redis-cli failed: {exc}"]
    # Let the short holds expire first (every one was made before the users
    # stopped), so what is live stays live while the check reads.
    if first:
        soon = [int(json.loads(r)["expires_at_ms"]) - first["now"] for r in first["holds"].values()]
        wait = max((ms for ms in soon if 0 < ms <= HOLD_TTL_MS + 1000), default=0)
    else:
        wait = HOLD_TTL_MS
    time.sleep(wait / 1000 + 0.05)
    for _ in range(10):
        try:
            before = _snapshot(train) if REDIS_URL else None
            probe = requests.get(_url(environment, train), timeout=ADMIN_TIMEOUT_S).json()
            nlegs = max(len(probe.get("stations") or []) - 1, 1)
            api = _read_api(environment, train, nlegs)
            after = _snapshot(train) if REDIS_URL else None
        except (OSError, subprocess.SubprocessError, requests.RequestException, ValueError, KeyError,
                TypeError) as exc:
            return "unreadable", [str(exc)]
        if after is None:
            stable = api["train"] == probe
        else:
            same = all(before[k] == after[k] for k in ("reservations", "holds", "runs", "legs"))
            expired = any(before["now"] - 1 <= int(json.loads(r)["expires_at_ms"]) <= after["now"] + 1
                          for r in after["holds"].values())
            stable = same and not expired
        if stable:
            return _numbered_problems(api, after, nlegs)
        time.sleep(0.2)
    return "unsettled", ["the train kept changing (or holds kept expiring) while the check read it"]


def _numbered_problems(api, snap, nlegs):
    """Compares the seat maps, GET /trains/{id} and (when `snap`) the Redis
    records and free runs. Returns a summary and the problems."""
    problems = []
    state, layout = api["train"], Layout(api["map"]["coaches"])
    stations = state.get("stations")
    legs = state.get("legs") or [{"sold": state["sold"], "held": state["held"], "remaining": state["remaining"]}]
    problem = _seat_map_problem(api["map"], {}, None, layout)
    if problem:
        problems.append(f"whole route's seat map: {problem}")
    # Each seat's state on each leg, from the legs' seat maps.
    per_leg = []
    for k in range(nlegs):
        seat_map = api[k] if stations else api["map"]
        problem = _seat_map_problem(seat_map, {"from": stations[k], "to": stations[k + 1]} if stations else {},
                                    None, layout)
        if problem:
            problems.append(f"leg {k}'s seat map: {problem}")
        per_leg.append({s["seat_id"]: s["state"] for c in seat_map["coaches"] for s in c["seats"]})
    for k, leg in enumerate(legs):
        counted = Counter(per_leg[k].values())
        shown = {"sold": counted["sold"], "held": counted["held"], "remaining": counted["free"]}
        if shown != {x: leg[x] for x in shown}:
            problems.append(f"leg {k}: the seat map shows {shown}, GET /trains/{{id}} {leg}")
    # The whole route: sold when sold on a leg, else held when held on one.
    whole = {s["seat_id"]: s["state"] for c in api["map"]["coaches"] for s in c["seats"]}
    for seat in layout.ids:
        states = {per_leg[k][seat] for k in range(nlegs)}
        expect = "sold" if "sold" in states else "held" if "held" in states else "free"
        if whole[seat] != expect:
            problems.append(f"seat {seat}: {whole[seat]} for the whole route, legs say {expect}")
    free_by_class = Counter(layout.seats[s][1] for s in layout.ids if whole[s] == "free")
    classes = [{"class": c, "capacity": len(layout.by_class[c]), "remaining": free_by_class[c]}
               for c in layout.classes]
    if state.get("classes") != classes:
        problems.append(f"classes {state.get('classes')}, the seat map says {classes}")
    if state["remaining"] != sum(free_by_class.values()) or state["capacity"] != len(layout.ids):
        problems.append(f"remaining {state['remaining']} / capacity {state['capacity']}: the seat map has "
                        f"{sum(free_by_class.values())} free of {len(layout.ids)}")
    occupied = [sum(1 for st in leg_states.values() if st != "free") for leg_states in per_leg]
    summary = (f"{len(layout.ids)} seats in {len(layout.coaches)} coaches, {nlegs} legs; occupied per leg "
               f"(sold + held) {occupied}")
    if snap is None:
        return summary + "; records NOT checked (no LOCUST_REDIS_URL)", problems
    records_summary, record_problems = _record_problems(snap, layout, stations, nlegs, per_leg, state, legs)
    return f"{summary}; {records_summary}", problems + record_problems


def _record_problems(snap, layout, stations, nlegs, per_leg, state, legs):
    """The Redis records against each other, against the free runs and
    counters in Redis, and against what the API showed (per_leg: each leg's
    seat states; state and legs: GET /trains/{id})."""
    problems = []
    now = snap["now"]
    try:
        raw_legs = json.loads(snap["legs"])
        coaches = json.loads(snap["coaches"])
    except (TypeError, ValueError) as exc:
        return "", [f"legs or coaches key unreadable: {exc}"]
    if coaches != layout.coaches:
        problems.append("the coaches key is not the seat map's coaches")
    class_ix = {c: i for i, c in enumerate(raw_legs.get("classes") or [])}
    if set(class_ix) != set(layout.classes):
        problems.append(f"legs names classes {raw_legs.get('classes')}, the train has {layout.classes}")
    all_legs = (1 << nlegs) - 1
    mask = lambda a, b: ((1 << b) - 1) & ~((1 << a) - 1)  # noqa: E731 (legs a..b-1 as bits)
    # Every booking in the records: (kind, id, seats, stops, live).
    bookings, owners = [], {}
    for kind, field in (("reservation", "created_at_ms"), ("hold", "expires_at_ms")):
        for rid, raw in snap[kind + "s"].items():
            what = f"{kind} {rid}"
            try:
                rec = json.loads(raw)
                ids, cls = rec["seat_ids"], rec["class"]
                a, b = rec["stops"] if stations else (0, 1)
                ok = (len(ids) == rec["seats"] == len(set(ids)) and all(i in layout.seats for i in ids)
                      and isinstance(rec[field], int) and 0 <= a < b <= nlegs)
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{what}: unreadable record {raw[:200]!r}: {exc!r}")
                continue
            if not ok:
                problems.append(f"{what}: inconsistent record {raw[:200]}")
                continue
            if {layout.seats[i][1] for i in ids} != {cls}:
                problems.append(f"{what}: class {cls} for seats {ids}")
            if rec.get("places") != [class_ix.get(cls)] + [layout.seats[i][0] for i in ids]:
                problems.append(f"{what}: places {rec.get('places')} are not class {cls}, seats {ids}")
            if stations and (rec.get("from"), rec.get("to")) != (stations[a], stations[b]):
                problems.append(f"{what}: from/to {rec.get('from')}->{rec.get('to')} but stops {[a, b]}")
            if kind == "hold" and snap["expiry"].get(rid) != rec[field]:
                problems.append(f"{what}: expires at {rec[field]}, hold_expiry says {snap['expiry'].get(rid)}")
            live = kind == "reservation" or rec[field] > now
            bookings.append((kind, rid, ids, a, b, live))
            for seat in ids:
                for k in range(a, b):
                    owners.setdefault((seat, k), []).append(what)
    if set(snap["expiry"]) != set(snap["holds"]):
        problems.append(f"hold_expiry and holds differ: {sorted(set(snap['expiry']) ^ set(snap['holds']))[:5]}")
    doubles = {pair: who for pair, who in owners.items() if len(who) > 1}
    for (seat, k), who in sorted(doubles.items())[:10]:
        problems.append(f"seat {seat} on leg {k} is in {len(who)} bookings: {', '.join(who)}")
    # The records rebuild each leg: sold = reservations, held = live holds.
    for k in range(nlegs):
        rebuilt = {}
        for kind, _, ids, a, b, live in bookings:
            if a <= k < b and live:
                for seat in ids:
                    rebuilt[seat] = "sold" if kind == "reservation" else "held"
        shown = {seat: st for seat, st in per_leg[k].items() if st != "free"}
        if rebuilt != shown:
            diff = sorted(set(rebuilt.items()) ^ set(shown.items()))
            problems.append(f"leg {k}: the records rebuild {len(rebuilt)} occupied seats, the seat map shows "
                            f"{len(shown)}; differing (seat, state): {diff[:8]}")
        n_sold = sum(len(ids) for kind, _, ids, a, b, live in bookings if kind == "reservation" and a <= k < b)
        n_held = sum(len(ids) for kind, _, ids, a, b, live in bookings if kind == "hold" and live and a <= k < b)
        if (n_sold, n_held) != (legs[k]["sold"], legs[k]["held"]):
            problems.append(f"leg {k}: records give sold {n_sold} held {n_held}, GET /trains/{{id}} "
                            f"sold {legs[k]['sold']} held {legs[k]['held']}")
    sold = sum(len(b[2]) for b in bookings if b[0] == "reservation")
    held_live = sum(len(b[2]) for b in bookings if b[0] == "hold" and b[5])
    held_all = sum(len(b[2]) for b in bookings if b[0] == "hold")
    if (state["sold"], state["held"]) != (sold, held_live):
        problems.append(f"GET /trains/{{id}}: sold {state['sold']} held {state['held']}; records: sold {sold} "
                        f"held {held_live} (live holds)")
    # The free runs are exactly the legs no record occupies (expired holds not
    # yet reclaimed still occupy theirs), each run whole and in its place.
    free = {seat: 0 for seat in layout.ids}
    codes = Counter()
    for member, score in snap["runs"].items():
        seat, _, start = member.rpartition(":")
        number, code = score % 4096, score // 4096
        c, s, e = code // 4096, (code // 64) % 64, code % 64
        if seat not in layout.seats or (number, c) != (layout.seats[seat][0], class_ix.get(layout.seats[seat][1]))                 or start != str(s) or not 0 <= s < e <= nlegs:
            problems.append(f"free run {member} scored {score}: not seat {seat}'s number/class, or a bad stretch")
            continue
        if free[seat] & mask(s, e):
            problems.append(f"seat {seat}: free runs overlap on legs {s}..{e - 1}")
        free[seat] |= mask(s, e)
        codes[code] += 1
    for member, score in snap["runs"].items():
        seat, s, e = member.rpartition(":")[0], (score // 4096 // 64) % 64, score // 4096 % 64
        if f"{seat}:{e}" in snap["runs"]:
            problems.append(f"seat {seat}: free runs from {s} to {e} and from {e} on are not joined")
    taken = {seat: 0 for seat in layout.ids}
    for _, _, ids, a, b, _ in bookings:
        for seat in ids:
            taken[seat] |= mask(a, b)
    wrong = [seat for seat in layout.ids if free[seat] != all_legs & ~taken[seat]]
    if wrong:
        problems.append(f"{len(wrong)} seats' free runs are not the legs their records leave free: "
                        + ", ".join(f"{s} free {free[s]:b} taken {taken[s]:b}" for s in wrong[:6]))
    stored = raw_legs.get("runs") or []
    stored = Counter(dict(zip(stored[::2], stored[1::2])))
    if stored != codes:
        problems.append(f"legs' run counts {dict(stored)} are not the runs in seats {dict(codes)}")
    if raw_legs.get("class_seats") != [len(layout.by_class[c]) for c in raw_legs.get("classes") or []]:
        problems.append(f"class_seats {raw_legs.get('class_seats')} are not the classes' seats")
    # The stored counters, expired holds not yet reclaimed counted as held.
    if stations:
        for k in range(nlegs):
            n_sold = sum(len(b[2]) for b in bookings if b[0] == "reservation" and b[3] <= k < b[4])
            n_held = sum(len(b[2]) for b in bookings if b[0] == "hold" and b[3] <= k < b[4])
            got = (raw_legs["free"][k], raw_legs["sold"][k], raw_legs["held"][k])
            if got != (len(layout.ids) - n_sold - n_held, n_sold, n_held):
                problems.append(f"leg {k}: legs key free/sold/held {got}, records {n_sold} sold {n_held} held")
    whole_free = sum(1 for seat in layout.ids if free[seat] == all_legs)
    counters = tuple(int(snap[k] or 0) for k in ("stock", "capacity", "sold", "held"))
    if counters != (whole_free, len(layout.ids), sold, held_all):
        problems.append(f"stock/capacity/sold/held {counters}, records and runs give "
                        f"{(whole_free, len(layout.ids), sold, held_all)}")
    n_res = sum(1 for b in bookings if b[0] == "reservation")
    n_live = sum(1 for b in bookings if b[0] == "hold" and b[5])
    n_gone = sum(1 for b in bookings if b[0] == "hold" and not b[5])
    summary = (f"records: {n_res} reservations ({sold} seats), {n_live} live holds ({held_live} seats), "
               f"{n_gone} expired holds not yet reclaimed; {len(owners)} (seat, leg) pairs booked, "
               f"{len(doubles)} in two bookings; {len(snap['runs'])} free runs")
    return summary, problems
