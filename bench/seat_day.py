"""A simulated day on a numbered train, for `make bench` (bench.py calls
`simulate` against a fresh service and prints `report`).

One train of 10 stations (S0 .. S9, 9 legs) and 400 numbered seats (10
coaches of 10 rows "AB_CD", one class), and a fixed, seeded sequence of
requests: mostly short journeys (65% one to three legs, 20% four to six,
15% seven to nine), starting anywhere they fit; groups of 1 to 4 seats
(50/30/10/10%). One client sends them one at a time to two fresh trains
that see the same sequence, request by request:

  best fit   a plain POST /reserve {"train_id", "from", "to", "seats"}: the
             service picks the seats (its policy, best fit);
  first fit  the client reads GET /trains/{id}/seats?from=&to= and asks for
             the lowest-numbered free seats (the first n free in seat order)
             with "seat_ids"; when fewer than n are free it asks for nothing
             and reads GET /trains/{id}?from=&to= to tell whether the legs'
             counters had room.

It stops when both trains have refused REFUSAL_STREAK requests in a row (or
after MAX_REQUESTS). The figure that matters is seat-legs sold (seats x legs,
summed over bookings; the train has 400 x 9 = 3,600): the service's policy
must sell at least as many as first fit. A refusal "although every leg had
room" is a request that the legs' counters alone would have granted (a
sold_out with an empty `full_legs`, or, for first fit, fewer than n seats free
end to end while every leg of the journey had n free): seats lost to
fragmentation. Until a policy makes such a refusal, it grants exactly what
the legs' counters grant, so both trains book the same requests (on
different seats) and only such refusals set them apart; and as one-leg,
one-seat requests keep coming, both end close to full whatever the policy.
So the table also gives the seat-legs sold at the point where the requests
so far had asked for as many seat-legs as the train has (demand 1x: a day
that sells out without much to spare).

The client keeps its own model of every (seat, leg) it booked, and checks
each answer against it: the seats a 200 names were free, `remaining` and
`full_legs` are right, the seat map shows exactly the free seats. Any
difference raises SimError (bench.py then fails): with one client and no
holds the service's answers are fully predictable.
"""

import http.client
import json
import random
import time

STATIONS = [f"S{i}" for i in range(10)]
LEGS = len(STATIONS) - 1
COACHES = [{"coach": str(c), "class": "second", "rows": 10, "layout": "AB_CD"} for c in range(1, 11)]
SEED = 20261204
REFUSAL_STREAK = 300
MAX_REQUESTS = 5000
TRAINS = {"best": "day-best", "first": "day-first"}
LABELS = {"best": "best fit (the service)", "first": "first fit (client, seat_ids)"}


class SimError(Exception):
    pass


def seat_order(coaches=COACHES):
    """Every seat id in seat order: coach, row, letter."""
    return [f"{c['coach']}-{row}{letter}" for c in coaches for row in range(1, c["rows"] + 1)
            for letter in c["layout"] if letter != "_"]


def requests(seed=SEED, count=MAX_REQUESTS):
    """(a, b, seats): stations a < b, seats 1..4."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = rng.random()
        legs = rng.randint(1, 3) if kind < 0.65 else rng.randint(4, 6) if kind < 0.85 else rng.randint(7, 9)
        a = rng.randint(0, LEGS - legs)
        out.append((a, a + legs, rng.choices((1, 2, 3, 4), weights=(50, 30, 10, 10))[0]))
    return out


class Client:
    """One keep-alive connection; answers as (status, decoded body)."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.token = token

    def call(self, method, path, body=None, admin=False):
        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = f"Bearer {self.token}"
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        answer = self.conn.getresponse()
        return answer.status, json.loads(answer.read())


class Model:
    """What the client booked on one train: per seat, the legs it sold."""

    def __init__(self, order):
        self.order = order
        self.sold = {s: [False] * LEGS for s in order}

    def free(self, a, b):
        return [s for s in self.order if not any(self.sold[s][a:b])]

    def free_on(self, k):
        return sum(not self.sold[s][k] for s in self.order)

    def book(self, ids, a, b):
        for s in ids:
            if s not in self.sold or any(self.sold[s][a:b]):
                raise SimError(f"seat {s} granted for S{a}-S{b} but not free on every leg (or unknown)")
            for k in range(a, b):
                self.sold[s][k] = True


def expect(cond, what):
    if not cond:
        raise SimError(what)


def simulate(port, token, seed=SEED, streak_limit=REFUSAL_STREAK, max_requests=MAX_REQUESTS):
    client = Client(port, token)
    order = seat_order()
    for train in TRAINS.values():
        status, body = client.call("PUT", f"/trains/{train}",
                                   {"stations": STATIONS, "coaches": COACHES, "reset": True}, admin=True)
        expect(status in (200, 201), f"PUT /trains/{train}: {status} {body}")
    # The map names every seat once, in seat order.
    status, body = client.call("GET", f"/trains/{TRAINS['first']}/seats")
    expect(status == 200, f"GET seat map: {status} {body}")
    listed = [s["seat_id"] for c in body["coaches"] for s in c["seats"]]
    expect(listed == order, f"the seat map's seats are not the {len(order)} seats in seat order: "
                            f"{listed[:6]}... ({len(listed)})")
    models = {name: Model(order) for name in TRAINS}
    stats = {name: {"sent": 0, "booked": 0, "seats": 0, "seat_legs": 0, "full": 0, "room": 0, "streak": 0}
             for name in TRAINS}
    capacity, asked, at_capacity = len(order) * LEGS, 0, None
    started = time.monotonic()
    for a, b, n in requests(seed, max_requests):
        if all(s["streak"] >= streak_limit for s in stats.values()):
            break
        frm, to = STATIONS[a], STATIONS[b]
        journey = f"{n} seat(s) {frm}-{to}"
        for name, train in TRAINS.items():
            model, st = models[name], stats[name]
            st["sent"] += 1
            free = model.free(a, b)
            full = [k for k in range(a, b) if model.free_on(k) < n]
            if name == "best":
                status, body = client.call("POST", "/reserve", {"train_id": train, "from": frm, "to": to, "seats": n})
                granted = status == 200
                if status == 400 and body.get("error") == "sold_out":
                    expect(len(free) < n and body["remaining"] == len(free),
                           f"{train}, {journey}: sold_out with remaining {body['remaining']}, "
                           f"but {len(free)} seats are free end to end")
                    named = [STATIONS.index(leg["from"]) for leg in body["full_legs"]]
                    expect(named == full, f"{train}, {journey}: full_legs {body['full_legs']}, expected legs {full}")
                else:
                    expect(granted, f"{train}, {journey}: {status} {body}")
            else:
                status, body = client.call("GET", f"/trains/{train}/seats?from={frm}&to={to}")
                expect(status == 200, f"GET /trains/{train}/seats: {status} {body}")
                shown = [s["seat_id"] for c in body["coaches"] for s in c["seats"] if s["state"] == "free"]
                expect(shown == free, f"{train}, {journey}: the map shows {len(shown)} seats free, "
                                      f"the client's bookings leave {len(free)}")
                granted = len(shown) >= n
                if granted:
                    status, body = client.call("POST", "/reserve", {"train_id": train, "from": frm, "to": to,
                                                                    "seat_ids": shown[:n]})
                    expect(status == 200 and body["seat_ids"] == shown[:n],
                           f"{train}, {journey}, seat_ids {shown[:n]}: {status} {body}")
                else:
                    # What the service's counters would say: room on every leg?
                    status, body = client.call("GET", f"/trains/{train}?from={frm}&to={to}")
                    expect(status == 200, f"GET /trains/{train}: {status} {body}")
                    lacking = [k for k, leg in zip(range(a, b), body["legs"]) if leg["remaining"] < n]
                    expect(lacking == full, f"{train}, {journey}: legs short {lacking}, expected {full}")
            if granted:
                ids = body["seat_ids"]
                expect(len(ids) == n, f"{train}, {journey}: granted {ids}")
                model.book(ids, a, b)
                expect(body["remaining"] == len(model.free(a, b)),
                       f"{train}, {journey}: remaining {body['remaining']}, expected {len(model.free(a, b))}")
                st["booked"] += 1
                st["seats"] += n
                st["seat_legs"] += n * (b - a)
                st["streak"] = 0
            else:
                st["full" if full else "room"] += 1
                st["streak"] += 1
        asked += n * (b - a)
        if at_capacity is None and asked >= capacity:
            at_capacity = {name: dict(st) for name, st in stats.items()}
    # The service's own leg counters add up to what the client booked.
    for name, train in TRAINS.items():
        status, body = client.call("GET", f"/trains/{train}")
        sold = sum(leg["sold"] for leg in body["legs"])
        expect(status == 200 and sold == stats[name]["seat_legs"],
               f"{train}: the legs' sold add up to {sold}, the client booked {stats[name]['seat_legs']} seat-legs")
    return {"stats": stats, "at_capacity": at_capacity, "seconds": time.monotonic() - started, "seats": len(order),
            "capacity": capacity, "seed": seed, "streak": streak_limit, "max": max_requests}


def report(result):
    """The side-by-side table and the check, as lines of markdown; and
    whether the check passed."""
    s, cap = result["stats"], result["capacity"]
    best, first = s["best"]["seat_legs"], s["first"]["seat_legs"]
    lines = [
        f"Simulated day: one train, {len(STATIONS)} stations, {result['seats']} numbered seats "
        f"({len(COACHES)} coaches x {COACHES[0]['rows']} rows \"{COACHES[0]['layout']}\", one class); "
        f"seed {result['seed']}; journeys 65% 1-3 legs, 20% 4-6, 15% 7-9; groups of 1-4 seats "
        f"(50/30/10/10%); one client, one request at a time, the same sequence to both trains, until both "
        f"refused {result['streak']} in a row (at most {result['max']}); {result['seconds']:.1f} s\n",
        f"| | {LABELS['best']} | {LABELS['first']} |",
        "| --- | ---: | ---: |",
    ]
    for key, label in (("sent", "requests sent"), ("booked", "requests booked"), ("seats", "seats booked"),
                       ("full", "refused: a leg of the journey full"),
                       ("room", "refused although every leg had room")):
        lines.append(f"| {label} | {s['best'][key]} | {s['first'][key]} |")
    lines.append(f"| seat-legs sold (of {cap}) | {best} ({100 * best / cap:.1f}%) "
                 f"| {first} ({100 * first / cap:.1f}%) |")
    early = result["at_capacity"]
    if early:
        lines.append(f"| at demand 1x ({early['best']['sent']} requests, asking {cap} seat-legs): seat-legs sold, "
                     f"refused although every leg had room | {early['best']['seat_legs']}, {early['best']['room']} "
                     f"| {early['first']['seat_legs']}, {early['first']['room']} |")
    ok = best >= first
    lines.append(f"\nbest fit sells at least as many seat-legs as first fit: {'PASS' if ok else 'FAIL'} "
                 f"({best} vs {first}, {best / max(first, 1):.3f}x)")
    return lines, ok
