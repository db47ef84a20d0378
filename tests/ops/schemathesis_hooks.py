"""schemathesis hooks for `test_schemathesis.py` (loaded through
SCHEMATHESIS_HOOKS). All are about state the generator cannot see; none
touches what the service answers or what the document says.

- The run's own train, `default` (the path parameters' example, and the train
  a body without train_id books), is numbered and has stations: only then do
  the seat map, seat ids, classes and journeys answer more than 404 and 422.
  A generated `PUT /trains/default` (`reset: true` with the example's 300
  seats) would make it a plain train for the rest of the run; so that PUT
  goes to `default-put` instead, the same request otherwise, in every phase
  (a `before_call` hook: the examples and coverage phases skip `map_case`).

- Idempotency-Key: hypothesis likes short strings, so it sends the same key
  ("0") with many different bodies, and the service rightly answers 422
  `idempotency_mismatch` (the contract's rule). A valid key gets a suffix
  that makes it unique to its test case, so each case tests what its data
  says; invalid keys (the negative cases) are left alone. The phases that
  build requests without these hooks (examples, coverage) can still reuse
  a key: that one 422, with a key sent, is dropped.
- 400 `sold_out` to schema-valid data: a train that the fuzzer itself created
  with few seats (`PUT /trains/{id}` with a small capacity) and then sold
  out. That answer is the API's business, not a validation error; only it
  is dropped from "schema-valid request rejected". The run prints how many.
- 422 `invalid_journey` to schema-valid data: `from` and `to` are any
  station names by the schema, but which names a train calls at is its own
  state (the default train here has the examples' stations; a train the
  fuzzer created has none). Dropped from the same check, and counted.
- 422 `invalid_request` from the scripts for seats and classes a train does
  not have (`seat_ids`, `class`, `?class=`): by the schema any well-formed
  seat id and class name, but which ones a train has is its own state (the
  default train has the examples' coaches 1, 2, 7, 8, 9, rows 1 to 40,
  seats A to J, classes first and second; a train without coaches has none).
  Only the answers whose detail says so (STATE_422) are dropped.
- 422 `invalid_request` to `PUT /trains/{id}` for the two rules of
  `coaches` that JSON Schema cannot state (the document says them in
  words): coach names distinct, and at most 2,000 seats in all. Every other
  rule of the bodies, across fields too, is in the schemas themselves.
"""

import itertools
import json
import os
import re

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")
# The details of a 422 that is about a train's seats, not the request's form
# (the scripts' words through reservations::invalid_seats, and seats::get).
STATE_422 = re.compile(
    r"train [A-Za-z0-9_.-]{1,64}(: this train has no (numbered seats: |class \"|seat [A-Za-z0-9]{1,8}-\d+[A-Z]$)"
    r"|: seat [A-Za-z0-9]{1,8}-\d+[A-Z] is not of class \"| has no class \")"
)
# The details of the rules of `coaches` that JSON Schema cannot say.
UNSAYABLE_422 = re.compile(
    r"coaches\[\d+\]\.coach: coach \"[A-Za-z0-9]{1,8}\" is listed twice"
    r"|the coaches have \d+ seats; a train has at most 2000"
)
CASES = itertools.count()


@schemathesis.hook
def map_case(context, case):
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.fullmatch(value):
            suffix = f"~{next(CASES)}"
            case.headers[name] = value[: 255 - len(suffix)] + suffix
    return case


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters
    if case.operation.label == "PUT /trains/{id}" and params and params.get("id") == "default":
        params["id"] = "default-put"


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202":
        return True
    try:
        body = json.loads(response.content)
        error, detail = body.get("error"), body.get("detail") or ""
    except (ValueError, AttributeError):
        return True
    sent_key = any(name.lower() == "idempotency-key" for name in (case.headers or {}))
    if (response.status_code, error) == (422, "idempotency_mismatch") and sent_key or (
        (response.status_code, error) in ((400, "sold_out"), (422, "invalid_journey"))
    ):
        _record(f"{case.operation.label}: {response.status_code} {error}")
        return False
    if (response.status_code, error) == (422, "invalid_request"):
        if STATE_422.match(detail):
            _record(f"{case.operation.label}: 422 invalid_request (seats or class the train lacks)")
            return False
        if case.operation.label == "PUT /trains/{id}" and UNSAYABLE_422.fullmatch(detail):
            rule = "coach names distinct" if "listed twice" in detail else "2,000 seats at most"
            _record(f"{case.operation.label}: 422 invalid_request ({rule}: not sayable in JSON Schema)")
            return False
    return True


def _record(line):
    """Appends what was dropped to $SCHEMATHESIS_DROPPED, for the test's summary."""
    path = os.environ.get("SCHEMATHESIS_DROPPED")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
