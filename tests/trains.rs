//! GET /trains/{id} figures, the admin create/reset flow, and the default
//! train across a restart.

mod common;

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
    let (status, body) = h.get("/trains/ice-7").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"train_id": "ice-7", "capacity": 4, "remaining": 1, "sold": 3,
               "held": 0, "locked": false, "lock_ttl_ms": 0})
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

    let (status, body) = h.get("/trains/nowhere").await;
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
    let (_, body) = h.get("/trains/default").await;
    assert_eq!(
        (body["remaining"].clone(), body["sold"].clone()),
        (json!(2), json!(1))
    );
}
