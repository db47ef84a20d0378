"""The live seat map (`GET /trains/{id}/map`) in a real browser: headless
Chromium (the `browser` fixture of conftest.py) opens the page of a train
with two coaches and four stations, and a buyer uses it as a person would:
with the mouse and the keyboard.

- it draws both coaches seat by seat, every seat a focusable button whose
  text (aria-label and tooltip) names its id and state;
- a reservation made through the API shows as sold on the open page within
  2 s, without a reload;
- two seats picked and held: 201, and they turn held; confirmed: sold; a
  seat taken by someone else between picking and holding: the 409 in words;
  a hold released: free again; a hold left to expire: said, and free again;
- no request leaves the service's origin (every request the page made, as
  Chromium's network log has them);
- a train without coaches is drawn as its legs' bars;
- with identities on, the page asks for a bearer token, and holds with it.

Screenshots under target/ops/: `seat-map.png` (a sale in progress: seats
sold, held by others, picked; `make screenshots` copies it to docs/ for the
README), `seat-map-held.png` (the page's own hold and its countdown) and
`seat-map-legs.png` (a train without coaches).
"""

import base64
import hashlib
import hmac
import json
import re
import time

from conftest import ADMIN_TOKEN, wait_until

TRAIN = "ice-5"
STATIONS = ["Berlin", "Leipzig", "Nürnberg", "München"]
COACHES = [
    {"coach": "1", "class": "first", "rows": 3, "layout": "A_BC"},
    {"coach": "2", "class": "second", "rows": 8, "layout": "AB_CD"},
]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def put_train(service, train, body):
    answer = service.request("PUT", f"/trains/{train}", body, headers=ADMIN)
    assert answer.status == 201, answer.body


def seat(browser, seat_id):
    """What the page shows of one seat."""
    return browser.js(f"""(() => {{
        const b = document.querySelector('button.seat[data-seat="{seat_id}"]');
        return b && {{label: b.getAttribute('aria-label'), title: b.title, state: b.dataset.state,
                      selected: b.dataset.selected, tag: b.tagName}};
    }})()""")


def wait_label(browser, seat_id, pattern, timeout=5.0):
    """Waits until the seat's aria-label matches `pattern`; returns the time it took."""
    started = time.monotonic()
    wait_until(lambda: re.fullmatch(pattern, (seat(browser, seat_id) or {}).get("label") or ""),
               f"{seat_id} labelled {pattern!r} (it is {seat(browser, seat_id)})", timeout)
    return time.monotonic() - started


def click(browser, selector):
    """A real mouse click in the middle of the element (scrolled into view)."""
    x, y = browser.js(f"""(() => {{
        const e = document.querySelector({json.dumps(selector)});
        e.scrollIntoView({{block: 'center', inline: 'center'}});
        const r = e.getBoundingClientRect();
        return [r.x + r.width / 2, r.y + r.height / 2];
    }})()""")
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def press(browser, selector, key):
    """Focuses the element, then presses a key on the keyboard."""
    browser.js(f"document.querySelector({json.dumps(selector)}).focus()")
    keys = {
        "Enter": {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
        " ": {"key": " ", "code": "Space", "windowsVirtualKeyCode": 32, "text": " "},
        "ArrowRight": {"key": "ArrowRight", "code": "ArrowRight", "windowsVirtualKeyCode": 39},
    }[key]
    browser.send("Input.dispatchKeyEvent", type="keyDown", **keys)
    up = {k: v for k, v in keys.items() if k != "text"}
    browser.send("Input.dispatchKeyEvent", type="keyUp", **up)


def message(browser):
    return browser.js("document.getElementById('message').textContent")


def responses(browser, method, path_end):
    """The statuses of the page's requests `method ...path_end`, in order."""
    browser.js("1")  # reads the events that came before now
    sent = {e["params"]["requestId"]: e["params"]["request"] for e in browser.events
            if e["method"] == "Network.requestWillBeSent"}
    return [e["params"]["response"]["status"] for e in browser.events
            if e["method"] == "Network.responseReceived"
            and (request := sent.get(e["params"]["requestId"]))
            and request["method"] == method and request["url"].endswith(path_end)]


def seat_states(service, train, **journey):
    query = "&".join(f"{k}={v}" for k, v in journey.items())
    answer = service.request("GET", f"/trains/{train}/seats?{query}")
    assert answer.status == 200, answer.body
    return {s["seat_id"]: s["state"] for c in answer.json()["coaches"] for s in c["seats"]}


def open_map(browser, service, path, seats):
    browser.events.clear()
    browser.send("Page.enable")
    browser.send("Runtime.enable")
    browser.send("Network.enable")
    browser.send("Page.navigate", url=f"{service.base}{path}")
    browser.wait_js(f"document.querySelectorAll('button.seat').length === {seats} && "
                    "document.getElementById('live')?.dataset.live === 'live'", "the seat map")


def test_seat_map_draws_follows_and_sells(start_service, browser, capsys):
    service = start_service()
    put_train(service, TRAIN, {"stations": STATIONS, "coaches": COACHES})
    open_map(browser, service, f"/trains/{TRAIN}/map?from=Berlin&to=M%C3%BCnchen", 9 + 32)

    # Two coaches as floor plans: rows, one aisle each, seat letters.
    coaches = browser.js("""[...document.querySelectorAll('.coach')].map(c => ({
        title: c.querySelector('h2').firstChild.textContent + ', ' + c.querySelector('h2 .class').textContent,
        aisles: c.querySelectorAll('.aisle').length,
        letters: [...c.querySelectorAll('.letter')].map(l => l.textContent).join(''),
        rows: c.querySelectorAll('.rowno').length}))""")
    assert [c["title"] for c in coaches] == ["Coach 1, first class", "Coach 2, second class"], coaches
    assert [(c["aisles"], c["letters"], c["rows"]) for c in coaches] == [(1, "ABC", 3), (1, "ABCD", 8)], coaches
    # Every seat: a focusable button, its id and state as text and tooltip.
    labels = browser.js("""[...document.querySelectorAll('button.seat')].map(b =>
        [b.tagName, b.getAttribute('aria-label'), b.title, b.disabled, b.tabIndex])""")
    for tag, label, title, disabled, tab_index in labels:
        assert tag == "BUTTON" and not disabled and tab_index in (0, -1), (tag, label, disabled, tab_index)
        assert re.fullmatch(r"[12]-\d[A-D], free", label), label
        assert title.startswith(label), (label, title)
    assert seat(browser, "2-8D")["label"] == "2-8D, free"
    counts = browser.js("""[...document.querySelectorAll('#counts tbody tr')].map(r =>
        [...r.children].map(c => c.textContent))""")
    assert counts == [["first", "9", "0", "0", "9"], ["second", "32", "0", "0", "32"]], counts

    # A reservation made elsewhere (the API) shows as sold within 2 s.
    answer = service.request("POST", "/reserve", {"train_id": TRAIN, "seat_ids": ["2-1A"],
                                                  "from": "Berlin", "to": "München"})
    assert answer.status == 200, answer.body
    live_after = wait_label(browser, "2-1A", r"2-1A, sold", timeout=2.0)
    # Other buyers, as a sale goes: sold on part of the journey, held, sold.
    for body in ({"seat_ids": ["2-2A", "2-2B"], "from": "Leipzig", "to": "Nürnberg"},
                 {"seat_ids": ["2-6C", "2-6D"]}, {"seat_ids": ["1-2A"]}, {"seat_ids": ["2-7A"]}):
        answer = service.request("POST", "/reserve", {"train_id": TRAIN, **body})
        assert answer.status == 200, answer.body
    for body in ({"seat_ids": ["1-1B", "1-1C"]}, {"seat_ids": ["2-3C", "2-3D"], "from": "Nürnberg"}):
        answer = service.request("POST", f"/trains/{TRAIN}/holds", body)
        assert answer.status == 201, answer.body
    wait_label(browser, "1-1C", r"1-1C, held", timeout=2.0)
    wait_label(browser, "2-3D", r"2-3D, held", timeout=2.0)
    wait_label(browser, "2-2B", r"2-2B, sold", timeout=2.0)
    # Sold on Leipzig-Nürnberg only: free from Nürnberg on (the page works
    # the journey out itself; no reload).
    browser.js("""(() => { const to = document.getElementById('from'); to.value = '2';
        to.dispatchEvent(new Event('change')); })()""")
    wait_label(browser, "2-2B", r"2-2B, free", timeout=2.0)
    assert browser.js("location.search") == "?from=N%C3%BCrnberg&to=M%C3%BCnchen"
    browser.js("""(() => { const f = document.getElementById('from'); f.value = '0';
        f.dispatchEvent(new Event('change')); })()""")
    wait_label(browser, "2-2B", r"2-2B, sold", timeout=2.0)

    # Picking two seats: one with the mouse, one with the keyboard.
    click(browser, 'button.seat[data-seat="2-4C"]')
    wait_label(browser, "2-4C", r"2-4C, selected", timeout=2.0)
    press(browser, 'button.seat[data-seat="2-4D"]', "Enter")
    wait_label(browser, "2-4D", r"2-4D, selected", timeout=2.0)
    press(browser, 'button.seat[data-seat="2-5A"]', " ")
    wait_label(browser, "2-5A", r"2-5A, selected", timeout=2.0)
    press(browser, 'button.seat[data-seat="2-5A"]', " ")  # and unpicked again
    wait_label(browser, "2-5A", r"2-5A, free", timeout=2.0)
    assert browser.js("document.querySelector('#hold').textContent") == "Hold"
    assert "2-4C, 2-4D" in browser.js("document.getElementById('selection').textContent")
    # The README's picture: a sale in progress (sold, held, picked), with
    # the mouse and the focus out of the way.
    browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=1270, y=710)
    browser.js("document.activeElement.blur(); window.scrollTo(0, 0)")
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=720, deviceScaleFactor=1, mobile=False)
    sale = browser.screenshot("seat-map.png", full_page=True)
    # A sold seat cannot be picked, and the page says why.
    click(browser, 'button.seat[data-seat="2-1A"]')
    assert "2-1A is sold" in message(browser), message(browser)
    # Arrow keys move between seats.
    press(browser, 'button.seat[data-seat="2-4D"]', "ArrowRight")
    assert browser.js("document.activeElement.dataset.seat") == "2-5D"

    # Hold: 201, and the two seats turn held (this page's hold), with a countdown.
    click(browser, "#hold")
    wait_label(browser, "2-4C", r"2-4C, held \(your hold\)", timeout=3.0)
    wait_label(browser, "2-4D", r"2-4D, held \(your hold\)", timeout=3.0)
    assert responses(browser, "POST", f"/trains/{TRAIN}/holds") == [201]
    assert re.fullmatch(r"[12]:\d\d left to confirm", browser.js("document.getElementById('countdown').textContent"))
    assert seat_states(service, TRAIN)["2-4C"] == "held"
    assert "Held 2-4C, 2-4D" in message(browser), message(browser)
    held = browser.screenshot("seat-map-held.png", full_page=True)

    # Confirm: sold.
    click(browser, "#confirm")
    wait_label(browser, "2-4C", r"2-4C, sold \(yours\)", timeout=3.0)
    wait_label(browser, "2-4D", r"2-4D, sold \(yours\)", timeout=3.0)
    assert responses(browser, "POST", "/confirm") == [200]
    assert seat_states(service, TRAIN)["2-4D"] == "sold"
    assert "Confirmed" in message(browser), message(browser)

    # Someone else takes a picked seat before the Hold: the 409, in words.
    click(browser, 'button.seat[data-seat="2-5B"]')
    click(browser, 'button.seat[data-seat="2-5C"]')
    wait_label(browser, "2-5C", r"2-5C, selected", timeout=2.0)
    answer = service.request("POST", "/reserve", {"train_id": TRAIN, "seat_ids": ["2-5C"]})
    assert answer.status == 200, answer.body
    click(browser, "#hold")
    wait_until(lambda: "taken by someone else" in message(browser), "the 409 on the page", 5)
    said = message(browser)
    assert "2-5C" in said and "2-5B" not in said and "Nothing was held" in said, said
    assert browser.js("document.getElementById('message').getAttribute('role')") == "alert"
    assert responses(browser, "POST", f"/trains/{TRAIN}/holds")[-1] == 409
    wait_label(browser, "2-5C", r"2-5C, sold", timeout=2.0)
    assert seat(browser, "2-5B")["label"] == "2-5B, selected"

    # Hold the one left, then release it: free again.
    click(browser, "#hold")
    wait_label(browser, "2-5B", r"2-5B, held \(your hold\)", timeout=3.0)
    click(browser, "#release")
    wait_label(browser, "2-5B", r"2-5B, free", timeout=3.0)
    assert responses(browser, "DELETE", "") == [200]
    assert seat_states(service, TRAIN)["2-5B"] == "free"

    # A hold nobody confirms expires: the page says so, and the seat is free
    # again (a short hold: the page offers minutes, the API takes 1 s up).
    browser.js("document.getElementById('ttl').add(new Option('2 seconds', '2000', true, true))")
    click(browser, 'button.seat[data-seat="2-8A"]')
    click(browser, "#hold")
    wait_label(browser, "2-8A", r"2-8A, held \(your hold\)", timeout=3.0)
    wait_until(lambda: "expired" in message(browser), "the expiry on the page", 5)
    assert "2-8A" in message(browser), message(browser)
    wait_label(browser, "2-8A", r"2-8A, free", timeout=2.0)
    assert browser.js("document.getElementById('hold-panel').hidden")

    # The page talked to its own service only, and followed it by polling.
    browser.js("1")
    requests = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
    foreign = [url for url in requests if not url.startswith(service.base + "/")]
    assert not foreign, foreign
    resources = browser.js("performance.getEntriesByType('resource').map(e => e.name)")
    assert not [r for r in resources if not r.startswith(service.base + "/")], resources
    polls = sum(url.endswith("/map.json") for url in requests)
    assert polls >= 3, requests
    loaded = {url.rsplit("/", 1)[-1] for url in requests}
    assert {"index.js", "index.css", "icon.svg", "map.json"} <= loaded, loaded
    with capsys.disabled():
        print(f"\nseat map in Chromium: a sale through the API shown sold after {live_after:.2f} s; "
              f"{len(requests)} requests, all to {service.base} ({polls} polls of map.json); "
              f"screenshots {sale}, {held}")


def test_a_train_without_coaches_shows_its_legs(start_service, browser):
    service = start_service()
    put_train(service, "r-9", {"capacity": 100, "stations": ["Paris", "Dijon", "Lyon", "Marseille"]})
    for body in ({"seats": 10}, *[{"seats": 10, "from": "Dijon", "to": "Lyon"}] * 3):
        answer = service.request("POST", "/reserve", {"train_id": "r-9", **body})
        assert answer.status == 200, answer.body
    answer = service.request("POST", "/trains/r-9/holds", {"seats": 5, "from": "Lyon"})
    assert answer.status == 201, answer.body
    open_map(browser, service, "/trains/r-9/map", 0)
    bars = lambda: browser.js("""[...document.querySelectorAll('#leg-bars li .bar')].map(b =>
        b.getAttribute('aria-label'))""")
    wait_until(lambda: len(bars()) == 3, "three legs")
    assert bars() == [
        "Paris → Dijon: 10 sold · 0 held · 90 free of 100",
        "Dijon → Lyon: 40 sold · 0 held · 60 free of 100",
        "Lyon → Marseille: 10 sold · 5 held · 85 free of 100",
    ], bars()
    assert browser.js("document.getElementById('coaches').hidden && document.getElementById('picking').hidden")
    assert browser.js("document.getElementById('journey-free').textContent").startswith(
        "60 of 100 seats free for Paris → Marseille")
    # Live here too.
    for _ in range(2):
        answer = service.request("POST", "/reserve", {"train_id": "r-9", "seats": 10, "from": "Lyon"})
        assert answer.status == 200, answer.body
    wait_until(lambda: bars()[2].startswith("Lyon → Marseille: 30 sold"), "the leg's new figures", 2)
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=700, deviceScaleFactor=1, mobile=False)
    browser.screenshot("seat-map-legs.png", full_page=True)


def jwt(secret, sub):
    """An HS256 JWT, as a buyer's identity provider would sign it."""
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=")
    signing = part({"alg": "HS256", "typ": "JWT"}) + b"." + part({"sub": sub, "exp": int(time.time()) + 3600})
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), signing, hashlib.sha256).digest()).rstrip(b"=")
    return (signing + b"." + signature).decode()


def test_with_identities_the_page_asks_for_a_token(start_service, browser):
    service = start_service(AUTH_JWT_SECRET="map-secret")
    put_train(service, TRAIN, {"stations": STATIONS, "coaches": COACHES})
    open_map(browser, service, f"/trains/{TRAIN}/map", 9 + 32)
    assert browser.js("!document.getElementById('token-row').hidden")
    click(browser, 'button.seat[data-seat="1-3A"]')
    click(browser, "#hold")
    wait_until(lambda: "bearer token" in message(browser), "the 401 on the page", 5)
    assert responses(browser, "POST", f"/trains/{TRAIN}/holds") == [401]
    browser.js(f"document.getElementById('token').value = {json.dumps(jwt('map-secret', 'u-7'))}")
    click(browser, "#hold")
    wait_label(browser, "1-3A", r"1-3A, held \(your hold\)", timeout=3.0)
    assert responses(browser, "POST", f"/trains/{TRAIN}/holds") == [401, 201]
