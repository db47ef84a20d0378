"""The service as an operator runs it, for the checks in this directory.

`start_service(...)` starts a redis-server of its own on a free loopback port
(data in a temporary directory), then the real `train-reservation` binary in
front of it, waits for `/readyz`, and stops both by PID when the test is done
(SIGTERM, then SIGKILL after 10 s). The binary is `$TRAIN_RESERVATION_BIN`,
or the debug build `cargo test` leaves in target/.

`browser` is headless Chromium (Debian's `chromium`, no download) driven
over the DevTools protocol (websocket-client), started with the flags that
keep it off the network and stopped by its PID; the browser checks (`/docs`,
the seat map) share it. Screenshots go to target/ops/.
"""

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("TRAIN_RESERVATION_BIN", ROOT / "target" / "debug" / "train-reservation")).resolve()
ADMIN_TOKEN = "ops-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what, timeout=30.0):
    """Polls `check` (bounded) until it returns something truthy. A check
    that raises what a thing not there yet raises (a refused connection,
    unparsable text, a list or map still short of the item it indexes, as a
    page in mid-render) is tried again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, LookupError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"{what} not ready after {timeout}s")


def stop(process, timeout=10.0):
    """SIGTERM to the process's own PID, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to check, not one to follow."""

    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Service:
    def __init__(self, workdir, redis_process, redis_port, process, port, log):
        self.workdir = workdir
        self.redis_process = redis_process
        self.redis_port = redis_port
        self.process = process
        self.port = port
        self.log = log
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One request; any status is an answer (no exception for 4xx/5xx)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with OPENER.open(request, timeout=timeout) as r:
                return Answer(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers, e.read())

    def redis_cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), *map(str, args)],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()

    def log_text(self):
        return Path(self.log).read_text(errors="replace")


@pytest.fixture
def start_service():
    """A factory: `start_service(**env)` -> a ready Service (stopped at teardown)."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run cargo build (make test does) or set TRAIN_RESERVATION_BIN")
    started = []
    tmp = tempfile.TemporaryDirectory(prefix="ops-")

    def start(**env):
        workdir = Path(tmp.name) / f"service-{len(started)}"
        (workdir / "redis").mkdir(parents=True)
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(workdir / "redis"),
             "--save", "", "--appendonly", "no", "--logfile", str(workdir / "redis" / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(redis)
        wait_until(lambda: socket.create_connection(("127.0.0.1", redis_port), timeout=0.2).close() or True,
                   "redis-server")
        port = free_port()
        log = workdir / "service.log"
        environment = dict(os.environ, BIND_ADDR=f"127.0.0.1:{port}", REDIS_URL=f"redis://127.0.0.1:{redis_port}",
                           ADMIN_TOKEN=ADMIN_TOKEN)
        for name in ("LOG_FORMAT", "METRICS", "AUTH_JWT_SECRET", "MAX_SEATS_PER_USER", "DEFAULT_TRAIN"):
            environment.pop(name, None)
        environment.update({k: str(v) for k, v in env.items()})
        with open(log, "w") as out:
            process = subprocess.Popen([str(BINARY)], cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        service = Service(workdir, redis, redis_port, process, port, log)
        wait_until(lambda: service.request("GET", "/readyz", timeout=2).status == 200, "the service's /readyz")
        return service

    yield start
    for process in reversed(started):
        stop(process)
    tmp.cleanup()


# --- headless Chromium ----------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("OPS_REPORT_DIR", ROOT / "target" / "ops"))
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1600",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]


class DevTools:
    """A minimal DevTools protocol client for one page. The events that
    arrive while waiting for an answer are kept in `events` (with
    `Network.enable`, every request the page makes)."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events = []

    def send(self, method, **params):
        id_ = next(self.ids)
        self.ws.send(json.dumps({"id": id_, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == id_:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def js(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_js(self, expression, what, timeout=30.0):
        return wait_until(lambda: self.js(expression), what, timeout)

    def screenshot(self, name, full_page=False):
        """A PNG of the viewport (or, with `full_page`, of the whole page as
        tall as its content), once what was just changed has been painted."""
        self.js("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))")
        params = {"format": "png"}
        if full_page:
            width, height = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        shot = self.send("Page.captureScreenshot", **params)
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
        # Chromium writes the port it picked here once it listens: its first
        # line, "PORT\n/devtools/browser/ID". The file can be seen empty or
        # half written, so only a whole first line counts.
        active = Path(profile) / "DevToolsActivePort"

        def devtools_port():
            first, newline, _ = (active.read_text() if active.exists() else "").partition("\n")
            return first if newline and first.isdigit() else None
        port = wait_until(devtools_port, "chromium's DevTools port")
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
