//! The live seat map (`GET /trains/{id}/map`, `map.json`, `/map/{file}`):
//! what it costs Redis however many pages poll, how fresh it is, what its
//! snapshot says, and its refusals (the contract's "Seat map page"). The
//! page itself, in a browser, is checked by tests/ops/test_map_browser.py.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{
    seats::{coaches, put_numbered},
    Harness,
};
use reqwest::Method;
use serde_json::{json, Value as Json};

/// train.lua calls the service has sent (its `script_calls_total`).
async fn train_calls(h: &Harness) -> u64 {
    h.script_calls("train")
        .await
        .expect("the train script's counter")
}

/// A seat's sold and held legs in `map.json` (coach by name, seat by its
/// place in row then letter order).
fn legs_of(map: &Json, coach: &str, at: usize) -> (String, String) {
    let coach = map["coaches"]
        .as_array()
        .expect("coaches")
        .iter()
        .find(|c| c["coach"] == coach)
        .expect("the coach");
    let text = |v: &Json| v.as_str().expect("hex").to_owned();
    (text(&coach["sold"][at]), text(&coach["held"][at]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_polling_pages_cost_a_few_train_calls_a_second() {
    let h = Arc::new(Harness::start().await);
    put_numbered(&h, "m1", Some(&["A", "B", "C", "D"]), coaches()).await;

    // A hundred pages polling as fast as they can for 1.5 s (a page polls
    // every 500 ms: this is thirty times harsher).
    let before = train_calls(&h).await;
    let started = Instant::now();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut pages = Vec::new();
    for _ in 0..100 {
        let (h, answered) = (h.clone(), answered.clone());
        pages.push(tokio::spawn(async move {
            while started.elapsed() < Duration::from_millis(1500) {
                let (status, map) = h.get("/trains/m1/map.json").await;
                assert_eq!(status, 200, "{map}");
                assert_eq!(map["train_id"], "m1");
                answered.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    for page in pages {
        page.await.expect("page");
    }
    let elapsed = started.elapsed();
    let calls = train_calls(&h).await - before;
    let answered = answered.load(Ordering::Relaxed);
    // At most one call per 250 ms window (plus the window in flight at the end).
    let most = elapsed.as_millis() as u64 / 250 + 2;
    assert!(answered >= 1000, "only {answered} polls answered");
    assert!(
        calls <= most,
        "{answered} polls in {elapsed:?} cost {calls} train.lua calls; at most {most} expected"
    );
    assert!(calls >= 1);
    println!("{answered} polls from 100 pages in {elapsed:?}: {calls} train.lua calls");

    // The exact routes are not cached: each GET is its own call.
    let before = train_calls(&h).await;
    for _ in 0..5 {
        assert_eq!(h.get("/trains/m1").await.0, 200);
        assert_eq!(h.get("/trains/m1/seats").await.0, 200);
    }
    assert_eq!(train_calls(&h).await - before, 10);
}

#[tokio::test]
async fn the_snapshot_names_each_seats_legs_and_follows_within_a_second() {
    let h = Harness::start().await;
    put_numbered(&h, "m2", Some(&["A", "B", "C", "D"]), coaches()).await;
    let (status, map) = h.get("/trains/m2/map.json").await;
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["stations"], json!(["A", "B", "C", "D"]));
    assert_eq!(map["legs"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        map["legs"][1],
        json!({"from": "B", "to": "C", "remaining": 81, "sold": 0, "held": 0})
    );
    assert!(map["at_ms"]
        .as_i64()
        .is_some_and(|ms| ms > 1_700_000_000_000));
    let layout: Vec<_> = map["coaches"]
        .as_array()
        .expect("coaches")
        .iter()
        .map(|c| {
            (
                c["coach"].clone(),
                c["class"].clone(),
                c["rows"].clone(),
                c["sold"].as_array().map(Vec::len),
            )
        })
        .collect();
    assert_eq!(
        layout,
        [
            (json!("1"), json!("first"), json!(3), Some(9)),
            (json!("7"), json!("second"), json!(12), Some(48)),
            (json!("8"), json!("second"), json!(6), Some(24)),
        ]
    );

    // 7-1A sold on leg B-C (bit 1), 7-1B held on A-B-C (bits 0 and 1).
    let started = Instant::now();
    let (status, _, body) = h
        .call(
            Method::POST,
            "/reserve",
            Some(json!({"train_id": "m2", "seat_ids": ["7-1A"], "from": "B", "to": "C"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = h
        .call(
            Method::POST,
            "/trains/m2/holds",
            Some(json!({"seat_ids": ["7-1B"], "from": "A", "to": "C"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The exact route has both at once...
    let (_, seats) = h.get("/trains/m2/seats?from=B&to=C").await;
    assert_eq!(seats["coaches"][1]["seats"][0]["state"], "sold");
    assert_eq!(seats["coaches"][1]["seats"][1]["state"], "held");
    // ...the map within its 250 ms.
    loop {
        let (_, map) = h.get("/trains/m2/map.json").await;
        if legs_of(&map, "7", 0) == ("2".into(), "0".into())
            && legs_of(&map, "7", 1) == ("0".into(), "3".into())
        {
            assert_eq!(legs_of(&map, "7", 2), ("0".into(), "0".into()));
            assert_eq!(map["legs"][1]["sold"], 1);
            assert_eq!(map["legs"][1]["held"], 1);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{map}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A train without coaches: its legs, and no coaches.
    let (status, _, body) = h
        .call(
            Method::PUT,
            "/trains/plain",
            Some(json!({"capacity": 10, "stations": ["X", "Y"]})),
            Some(common::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, map) = h.get("/trains/plain/map.json").await;
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["coaches"], Json::Null);
    assert_eq!(
        map["legs"],
        json!([{"from": "X", "to": "Y", "remaining": 10, "sold": 0, "held": 0}])
    );
    let (status, map) = h.get("/trains/default/map.json").await;
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["stations"], Json::Null);
    assert_eq!(map["legs"][0]["from"], Json::Null);
}

#[tokio::test]
async fn the_page_and_its_files_come_from_the_service() {
    let h = Harness::start().await;
    put_numbered(&h, "m3", Some(&["A", "B", "C"]), coaches()).await;
    let page = h
        .http
        .get(h.url("/trains/m3/map?from=A&to=C&class=first"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"data-identities="off""#), "{html}");
    assert!(
        html.contains(r#"<button id="hold" type="button" class="primary" disabled>Hold</button>"#)
    );
    for (file, content_type) in [
        ("index.js", "text/javascript; charset=utf-8"),
        ("index.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        assert!(html.contains(&format!("../../map/{file}")), "{file}");
        let response = h
            .http
            .get(h.url(&format!("/map/{file}")))
            .send()
            .await
            .expect("file");
        assert_eq!(response.status().as_u16(), 200, "{file}");
        assert_eq!(response.headers()["content-type"], content_type, "{file}");
    }
    // A class the train lacks is the page's filter to explain, not an error.
    let response = h
        .http
        .get(h.url("/trains/m3/map?class=sleeper"))
        .send()
        .await
        .expect("page");
    assert_eq!(response.status().as_u16(), 200);

    // With identities on, the page shows the bearer token field.
    let with_identities = Harness::start_with(|c| c.auth_jwt_secret = Some("s".into())).await;
    let html = with_identities
        .http
        .get(with_identities.url("/trains/default/map"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains(r#"data-identities="on""#), "{html}");
}

#[tokio::test]
async fn bad_requests_get_404_and_422() {
    let h = Harness::start().await;
    put_numbered(&h, "m4", Some(&["A", "B", "C"]), coaches()).await;
    for (path, status, error) in [
        ("/trains/nope/map", 404, "unknown_train"),
        ("/trains/nope/map.json", 404, "unknown_train"),
        ("/trains/bad!id/map", 422, "invalid_request"),
        ("/trains/bad!id/map.json", 422, "invalid_request"),
        ("/trains/m4/map?seats=2", 422, "invalid_request"),
        ("/trains/m4/map?from=A&from=B", 422, "invalid_request"),
        ("/trains/m4/map?class=First%20class", 422, "invalid_request"),
        ("/trains/m4/map?from=Z", 422, "invalid_journey"),
        ("/trains/m4/map?from=C&to=A", 422, "invalid_journey"),
        ("/trains/default/map?from=A", 422, "invalid_journey"),
        ("/trains/m4/map.json?from=A", 422, "invalid_request"),
        ("/map/nope.js", 404, "not_found"),
        ("/map/", 404, "not_found"),
    ] {
        let (got, body) = h.get(path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path}: {body}"
        );
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
    let long = format!("/trains/{}/map", "x".repeat(65));
    assert_eq!(h.get(&long).await.0, 422);
    let (status, headers, body) = h.call(Method::POST, "/trains/m4/map", None, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(headers["allow"], "GET, HEAD");
}
