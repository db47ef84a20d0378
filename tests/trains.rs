//! GET /trains/{id} figures, the admin create/reset flow, and what the service
//! answers while Redis is missing (health, readiness, 503).

mod common;

use std::time::{Duration, Instant};

use common::{Harness, ADMIN_TOKEN};
use serde_json::json;
use train_reservation::{Config, Server};

async fn put(h: &Harness, id: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = h
        .http
        .put(h.url(&format!("/trains/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let (status, _, body) = common::parts(response).await;
    (status, body)
}

async fn get(h: &Harness, id: &str) -> (u16, serde_json::Value) {
    let response = h
        .http
        .get(h.url(&format!("/trains/{id}")))
        .send()
        .await
        .expect("GET");
    let (status, _, body) = common::parts(response).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_reads_and_resets_a_train() {
    let h = Harness::start().await;

    let (status, body) = put(&h, "ice-7", json!({"capacity": 4})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"train_id": "ice-7", "capacity": 4, "remaining": 4, "sold": 0})
    );
    let (status, body) = put(&h, "ice-7", json!({"capacity": 9})).await;
    assert_eq!((status, body["error"].clone()), (409, json!("exists")));

    for seats in [1, 2] {
        let (status, _, _) = h
            .post_reserve(json!({"train_id": "ice-7", "seats": seats}))
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = get(&h, "ice-7").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"train_id": "ice-7", "capacity": 4, "remaining": 1, "sold": 3,
               "locked": false, "lock_ttl_ms": 0})
    );
    h.train("ice-7").await.assert_invariants();

    let (status, body) = put(&h, "ice-7", json!({"capacity": 6, "reset": true})).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(6)));
    let train = h.train("ice-7").await;
    assert_eq!(
        (train.capacity, train.stock, train.sold),
        (Some(6), Some(6), None)
    );
    assert!(train.reservations.is_empty(), "a reset clears the sales");
    assert_eq!(train.lock, None);
    train.assert_invariants();

    let (status, body) = get(&h, "nowhere").await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("unknown_train"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_respects_a_foreign_lock() {
    let h = Harness::start().await;
    h.create_train("busy", 2).await;
    h.cmd(
        "SET",
        vec![
            "train:{busy}:lock".into(),
            "op".into(),
            "PX".into(),
            "60000".into(),
        ],
    )
    .await;
    let (status, body) = put(&h, "busy", json!({"capacity": 9, "reset": true})).await;
    assert_eq!((status, body["error"].clone()), (429, json!("locked")));
    assert_eq!(h.train("busy").await.capacity, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_never_resets_the_default_train() {
    let mut h = Harness::start_with(|c| c.default_stock = 3).await;
    let (status, _, _) = h.post_reserve(json!({})).await;
    assert_eq!(status, 200);
    h.server.take().expect("server").shutdown().await;

    let mut config = Config::for_tests(&h.redis_url);
    config.default_stock = 3;
    h.server = Some(Server::start(config, &h.redis_url).await.expect("restart"));
    h.wait_ready().await;
    let (_, body) = get(&h, "default").await;
    assert_eq!(
        (body["remaining"].clone(), body["sold"].clone()),
        (json!(2), json!(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_health_is_200_and_the_api_503() {
    // Nothing listens on this port: start-up keeps retrying in the background.
    let port = train_reservation::embedded::free_port().expect("port");
    let mut config = Config::for_tests(&format!("redis://127.0.0.1:{port}"));
    config.request_timeout_ms = 300;
    let server = Server::start(config, &format!("redis://127.0.0.1:{port}"))
        .await
        .expect("starts");
    let http = common::http_client();

    let health = http
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status(), 200);
    let (status, _, body) = common::parts(
        http.get(format!("{}/readyz", server.url()))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
    let started = Instant::now();
    let response = http
        .post(format!("{}/reserve", server.url()))
        .send()
        .await
        .expect("POST");
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, _, body) = common::parts(response).await;
    assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once, not hung"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_requests_get_503_not_a_hang() {
    let mut h = Harness::start_with(|c| c.request_timeout_ms = 500).await;
    h.create_train("t", 5).await;
    h.redis
        .take()
        .expect("redis")
        .kill()
        .expect("SIGKILL redis-server");

    let started = Instant::now();
    let response = h
        .http
        .post(h.url("/reserve"))
        .json(&json!({"train_id": "t"}))
        .send()
        .await
        .expect("POST");
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, _, body) = common::parts(response).await;
    assert_eq!(
        (status, body["error"].clone()),
        (503, json!("unavailable")),
        "{body}"
    );
    assert_eq!(retry_after.as_ref().map(|v| v.as_bytes()), Some(&b"1"[..]));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let ready = h.http.get(h.url("/readyz")).send().await.expect("GET");
    assert_eq!(ready.status(), 503);
    let health = h.http.get(h.url("/healthz")).send().await.expect("GET");
    assert_eq!(health.status(), 200);
}
