"""Contract testing with schemathesis: the running service against its own
`/openapi.json`, every check on (no 5xx, documented statuses, response
schemas and headers, content types, schema-valid data accepted and invalid
data rejected, undocumented methods answered 405 with `Allow`, auth not
ignored, stateful sequences), bounded by `--max-examples` and reproducible
by a fixed `--seed`.

What it finds is fixed in the code, never by loosening the document; the
one filtered answer is explained in `schemathesis_hooks.py`.
"""

import os
import re
from collections import Counter
import subprocess
import sys
from pathlib import Path

from conftest import ADMIN_TOKEN

HERE = Path(__file__).resolve().parent
ST = Path(sys.executable).parent / "st"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261127"))


def test_schemathesis_finds_nothing(start_service, tmp_path, capsys):
    service = start_service()
    # The default train (the one a body without train_id books, and the
    # path parameters' example) calls at the stations the document's
    # examples name, and its seats are numbered, so the seat map answers 200
    # and the examples' seat (7-12A) and classes (first, second)
    # exist. As many seats as a train may have (2,000 per leg, four legs):
    # schema-valid bookings are accepted for the whole run; a sale that does
    # find it full is a 400 sold_out (see schemathesis_hooks.py).
    answer = service.request("PUT", "/trains/default", {
        "reset": True, "stations": ["Paris", "Dijon", "Lyon", "Avignon", "Marseille"],
        "coaches": [{"coach": coach, "class": cls, "rows": 40, "layout": "ABCDE_FGHIJ"}
                    for coach, cls in (("1", "first"), ("2", "first"), ("7", "second"), ("8", "second"),
                                       ("9", "second"))],
    }, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status == 200, answer.body
    assert answer.json()["capacity"] == 2000, answer.body
    command = [
        str(ST), "run", f"{service.base}/openapi.json",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--max-redirects", "0",
        "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    dropped_log = tmp_path / "dropped.txt"
    env = dict(os.environ, SCHEMATHESIS_HOOKS="schemathesis_hooks", NO_COLOR="1",
               SCHEMATHESIS_DROPPED=str(dropped_log),
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", output)
    summary = re.findall(r"^=+ (.*) =+$", output, re.M)
    dropped = Counter(dropped_log.read_text().splitlines() if dropped_log.exists() else [])
    with capsys.disabled():
        print(f"\nschemathesis (seed {SEED}, --max-examples {MAX_EXAMPLES}): "
              f"{generated.group(1) if generated else '?'} test cases generated; "
              f"{summary[-1] if summary else 'no summary'}")
        for what, times in sorted(dropped.items()):
            print(f"  dropped by the hooks (see schemathesis_hooks.py): {what} x{times}")
        (Path(os.environ.get("OPS_REPORT_DIR", tmp_path)) / "schemathesis.txt").write_text(output)
    assert run.returncode == 0, output[-20000:]
    assert generated and int(generated.group(1)) >= 200, output[-5000:]
