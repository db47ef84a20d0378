"""`GET /metrics` as Prometheus reads it: parsed with prometheus_client's own
parser, every family of the contract present from start-up with its type and
labels, and each counter moving by exactly what this test did, no more.
"""

import os
import signal
import uuid

from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_TOKEN

P = "train_reservation_"
FAMILIES = {  # family name as the parser reports it -> type
    P + "http_requests": "counter",
    P + "http_request_duration_seconds": "histogram",
    P + "seats_sold": "counter",
    P + "script_calls": "counter",
    P + "batch_size": "histogram",
    P + "redis_errors": "counter",
    P + "ready": "gauge",
}
SCRIPTS = ["reserve", "reserve_plain", "hold", "confirm", "release", "cancel", "put_train", "train", "get_hold"]
ROUTES = {
    "/reserve", "/trains/{id}", "/trains/{id}/holds", "/trains/{id}/holds/{hold_id}",
    "/trains/{id}/holds/{hold_id}/confirm", "/trains/{id}/reservations/{reservation_id}", "/trains/{id}/seats",
    "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/", "/docs/{file}", "unmatched",
    "/trains/{id}/map", "/trains/{id}/map.json", "/map/{file}",
}


def scrape(service):
    """{(sample name, sorted labels): value}, and the families' types."""
    answer = service.request("GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = {}, {}
    for family in text_string_to_metric_families(answer.body.decode()):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def key(name, **labels):
    return (P + name, tuple(sorted(labels.items())))


def test_every_family_from_start_up_and_exact_counts(start_service):
    # A short request timeout makes the one Redis outage below quick.
    service = start_service(DEFAULT_STOCK=2, REQUEST_TIMEOUT_MS=300)
    before, types = scrape(service)

    # Every family, with its type, before anything happened.
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES
    for script in SCRIPTS:
        assert key("script_calls_total", script=script) in before
    for kind in ("unavailable", "failed"):
        assert before[key("redis_errors_total", kind=kind)] == 0
    assert before[key("seats_sold_total")] == 0
    assert before[key("batch_size_count")] == 0
    assert before[key("ready")] == 1
    for route in ROUTES:
        assert key("http_request_duration_seconds_count", route=route) in before
    assert before[key("http_requests_total", method="POST", route="/reserve", status="200")] == 0

    expected = {}  # what each series must move by

    def moved(series, by=1):
        expected[series] = expected.get(series, 0) + by

    def call(method, path, route, status, body=None, headers=None, label=None):
        answer = service.request(method, path, body=body, headers=headers)
        assert answer.status == status, (method, path, answer.status, answer.body)
        moved(key("http_requests_total", method=label or method, route=route, status=str(status)))
        moved(key("http_request_duration_seconds_count", route=route))
        return answer

    def script(name, times=1):
        moved(key("script_calls_total", script=name), times)

    def reserve_call(handed_back=False):
        """One reservation decided alone (requests sent one by one): by
        reserve_plain.lua, or by reserve.lua after reserve_plain.lua handed the
        call back (a replayed Idempotency-Key); one batch either way."""
        script("reserve_plain")
        if handed_back:
            script("reserve")
        moved(key("batch_size_count"))
        moved(key("batch_size_sum"), 1)
        for le in ("1", "2", "4", "8", "16", "32", "64", "+Inf"):
            moved(key("batch_size_bucket", le=le))

    # Reservations on the default train (2 seats): a sale, a sold-out, a sale
    # with an Idempotency-Key and its replay (a 200 that sells nothing).
    call("POST", "/reserve", "/reserve", 200, body={})
    reserve_call()
    moved(key("seats_sold_total"), 1)
    call("POST", "/reserve", "/reserve", 400, body={"seats": 2})
    reserve_call()
    for replay in (False, True):
        answer = call("POST", "/reserve", "/reserve", 200, body={}, headers={"Idempotency-Key": "k-1"})
        reserve_call(handed_back=replay)
    assert answer.headers["Idempotent-Replayed"] == "true"
    moved(key("seats_sold_total"), 1)

    # A train of our own, a hold confirmed (and confirmed again), another released,
    # the reservation read and cancelled.
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    call("PUT", "/trains/t-2", "/trains/{id}", 201, body={"capacity": 5}, headers=admin)
    script("put_train")
    call("GET", "/trains/t-2", "/trains/{id}", 200)
    script("train")
    hold = call("POST", "/trains/t-2/holds", "/trains/{id}/holds", 201, body={"seats": 2}).json()["hold_id"]
    script("hold")
    call("GET", f"/trains/t-2/holds/{hold}", "/trains/{id}/holds/{hold_id}", 200)
    script("get_hold")
    call("POST", f"/trains/t-2/holds/{hold}/confirm", "/trains/{id}/holds/{hold_id}/confirm", 200)
    call("POST", f"/trains/t-2/holds/{hold}/confirm", "/trains/{id}/holds/{hold_id}/confirm", 200)
    script("confirm", 2)
    moved(key("seats_sold_total"), 2)
    other = call("POST", "/trains/t-2/holds", "/trains/{id}/holds", 201, body={}).json()["hold_id"]
    script("hold")
    call("DELETE", f"/trains/t-2/holds/{other}", "/trains/{id}/holds/{hold_id}", 200)
    script("release")
    reservation = "/trains/{id}/reservations/{reservation_id}"
    call("GET", f"/trains/t-2/reservations/{hold}", reservation, 200)  # a plain HGET, no script
    call("DELETE", f"/trains/t-2/reservations/{hold}", reservation, 200)
    script("cancel")

    # Routes are patterns, never raw paths; unknown paths and methods are bounded.
    call("GET", "/trains/no-such-train", "/trains/{id}", 404)
    script("train")
    call("GET", f"/no/such/{uuid.uuid4()}", "unmatched", 404)
    call("PATCH", "/reserve", "/reserve", 405)
    call("BREW", "/reserve", "/reserve", 405, label="other")
    call("GET", "/docs", "/docs", 301)

    # A key an operator broke by hand: 500, one failed Redis call.
    service.redis_cli("SET", "train:{broken}:stock", "not-a-number")
    call("GET", "/trains/broken", "/trains/{id}", 500)
    script("train")
    moved(key("redis_errors_total", kind="failed"))

    # Redis frozen: the request times out, 503, one unavailable Redis call.
    os.kill(service.redis_process.pid, signal.SIGSTOP)
    try:
        call("GET", "/trains/t-2", "/trains/{id}", 503)
        script("train")
        moved(key("redis_errors_total", kind="unavailable"))
    finally:
        os.kill(service.redis_process.pid, signal.SIGCONT)

    # The first scrape was answered (and so counted) after it was rendered.
    moved(key("http_requests_total", method="GET", route="/metrics", status="200"))
    moved(key("http_request_duration_seconds_count", route="/metrics"))

    after, _ = scrape(service)
    histogram_parts = ("_bucket", "_sum")
    for series in sorted(set(before) | set(after)):
        name, labels = series
        if name.startswith(P + "http_request_duration_seconds") and name.endswith(histogram_parts):
            continue  # timings: their counts are checked, their values are the clock's
        if name == P + "ready":
            continue
        delta = after.get(series, 0) - before.get(series, 0)
        assert delta == expected.get(series, 0), f"{name}{dict(labels)} moved by {delta}"
    for series, by in expected.items():
        assert after.get(series, 0) - before.get(series, 0) == by, series

    # No label value came from a client: every route label is a pattern.
    routes = {dict(labels).get("route") for (_, labels) in after} - {None}
    assert routes <= ROUTES, routes - ROUTES
    methods = {dict(labels).get("method") for (_, labels) in after} - {None}
    assert "BREW" not in methods and "other" in methods
    assert not any("no-such" in str(labels) or "t-2" in str(labels) for (_, labels) in after)


def test_metrics_off_records_nothing(start_service):
    """METRICS=off (make bench's comparison run): the families are there, at 0."""
    service = start_service(METRICS="off")
    for _ in range(3):
        assert service.request("POST", "/reserve", body={}).status in (200, 400)
    samples, types = scrape(service)
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES
    assert samples[key("http_requests_total", method="POST", route="/reserve", status="200")] == 0
    assert samples[key("seats_sold_total")] == 0
    assert samples[key("script_calls_total", script="reserve")] == 0
    assert "METRICS=off" in service.log_text()
