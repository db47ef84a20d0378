"""`/docs` in a real browser: headless Chromium (Debian's `chromium`) opens
Swagger UI on the running service, with nothing reachable but the service
itself; the operations render, `POST /reserve` is listed, and "Try it out"
then "Execute" on it gets a live answer from the service. Two screenshots
are saved under target/ops/: `swagger-ui.png` (the page as it opens) and
`swagger-ui-try-it-out.png` (the live answer); `make screenshots` copies
them to docs/ for the README.

Chromium is driven over the DevTools protocol (the `browser` fixture of
conftest.py), started with the flags that keep it off the network and
stopped by its PID.
"""

import json


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
