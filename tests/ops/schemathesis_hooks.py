"""schemathesis hooks for `test_schemathesis.py` (loaded through
SCHEMATHESIS_HOOKS). Both are about state the generator cannot see; neither
touches what the service answers or what the document says.

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
"""

import itertools
import json
import os
import re

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")
CASES = itertools.count()


@schemathesis.hook
def map_case(context, case):
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.fullmatch(value):
            suffix = f"~{next(CASES)}"
            case.headers[name] = value[: 255 - len(suffix)] + suffix
    return case


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202":
        return True
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        return True
    sent_key = any(name.lower() == "idempotency-key" for name in (case.headers or {}))
    if (response.status_code, error) == (422, "idempotency_mismatch") and sent_key or (
        (response.status_code, error) in ((400, "sold_out"), (422, "invalid_journey"))
    ):
        _record(f"{case.operation.label}: {response.status_code} {error}")
        return False
    return True


def _record(line):
    """Appends what was dropped to $SCHEMATHESIS_DROPPED, for the test's summary."""
    path = os.environ.get("SCHEMATHESIS_DROPPED")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
