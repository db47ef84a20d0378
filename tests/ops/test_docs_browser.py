"""`/docs` in a real browser: headless Chromium (Debian's `chromium`) opens
Swagger UI on the running service, with nothing reachable but the service
itself; the operations render, `POST /reserve` is listed, and "Try it out"
then "Execute" on it gets a live answer from the service. Two screenshots
are saved under target/ops/: `swagger-ui.png` (the page as it opens) and
`swagger-ui-try-it-out.png` (the live answer); `make screenshots` copies
them to docs/ for the README.

Chromium is driven over the DevTools protocol (websocket-client), started
with the flags that keep it off the network and stopped by its PID.
"""

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest
import websocket

from conftest import ROOT, stop, wait_until

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("OPS_REPORT_DIR", ROOT / "target" / "ops"))
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1600",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]


class DevTools:
    """A minimal DevTools protocol client for one page."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)

    def send(self, method, **params):
        id_ = next(self.ids)
        self.ws.send(json.dumps({"id": id_, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == id_:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_js(self, expression, what, timeout=30.0):
        return wait_until(lambda: self.js(expression), what, timeout)

    def screenshot(self, name):
        """A PNG of the viewport, once what was just changed has been painted."""
        self.js("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))")
        shot = self.send("Page.captureScreenshot", format="png")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: `make test` installs it as root "
                    "(apt-get install -y chromium); otherwise install it yourself")
    profile = tempfile.mkdtemp(prefix="ops-chromium-")
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=open(Path(profile) / "chromium.log", "w"))
    try:
        # Chromium writes the port it picked here once it listens.
        active = Path(profile) / "DevToolsActivePort"
        port = wait_until(lambda: active.exists() and active.read_text().split()[0], "chromium's DevTools port")
        def page_url():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None
        tools = DevTools(wait_until(page_url, "a page target"))
        yield tools
        tools.ws.close()
    finally:
        stop(process)
        shutil.rmtree(profile, ignore_errors=True)


def test_swagger_ui_lists_the_operations_and_tries_one(start_service, browser, capsys):
    service = start_service(DEFAULT_STOCK=1000)
    browser.send("Page.enable")
    browser.send("Runtime.enable")
    browser.send("Page.navigate", url=f"{service.base}/docs")

    # The operations are listed when the page opens (docExpansion: list).
    browser.wait_js("document.querySelectorAll('.opblock').length > 10", "Swagger UI's operations")
    operations = browser.js("""[...document.querySelectorAll('.opblock-summary')].map(s =>
        s.querySelector('.opblock-summary-method').textContent + ' ' +
        s.querySelector('.opblock-summary-path').getAttribute('data-path'))""")
    assert "POST /reserve" in operations, operations
    for expected in ("GET /trains/{id}", "POST /trains/{id}/holds", "GET /metrics"):
        assert expected in operations, operations
    assert browser.js("location.pathname") == "/docs/"
    listed = browser.screenshot("swagger-ui.png")

    # Try it out: open POST /reserve, "Try it out", "Execute".
    block = "document.querySelector('#operations-reservations-reserve')"
    browser.js(f"{block}.querySelector('.opblock-summary-control').click()")
    browser.wait_js(f"!!{block}.querySelector('.try-out__btn')", "the Try it out button")
    browser.js(f"{block}.querySelector('.try-out__btn').click()")
    browser.wait_js(f"!!{block}.querySelector('.execute')", "the Execute button")
    browser.js(f"{block}.querySelector('.execute').click()")
    status = browser.wait_js(
        f"{block}.querySelector('.live-responses-table tbody .response-col_status')?.textContent.trim()",
        "a live response")
    assert status in ("200", "400", "429"), status
    body = browser.js(f"{block}.querySelector('.live-responses-table tbody .microlight')?.textContent")
    assert body and json.loads(body).get("train_id", "default") == "default", body

    # The page used nothing but the service: every resource it loaded is ours.
    resources = browser.js("performance.getEntriesByType('resource').map(e => e.name)")
    foreign = [r for r in resources if not r.startswith(service.base)]
    assert not foreign, foreign

    # What a user sees, with the answer on screen.
    browser.js(f"{block}.querySelector('.responses-wrapper').scrollIntoView({{block: 'start'}})")
    tried = browser.screenshot("swagger-ui-try-it-out.png")
    with capsys.disabled():
        print(f"\n/docs in Chromium: {len(operations)} operations listed; Try it out on POST /reserve "
              f"answered {status}; screenshots {listed}, {tried}")
