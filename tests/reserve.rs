//! POST /reserve under contention: the seed's last-seat race, many seats, a
//! lock held by someone else, idempotency, and a script run twice.

mod common;

use std::collections::HashSet;

use common::Harness;
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;
use train_reservation::store::scripts::RESERVE;

/// Fires `count` concurrent POST /reserve with `body`; returns (status, body) of each.
async fn swarm(h: &Harness, count: usize, body: Json) -> Vec<(u16, Json)> {
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let (http, url, body) = (h.http.clone(), h.url("/reserve"), body.clone());
        tasks.spawn(async move {
            let response = http
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("POST /reserve");
            let (status, _, json) = common::parts(response).await;
            (status, json)
        });
    }
    let mut results = Vec::with_capacity(count);
    while let Some(result) = tasks.join_next().await {
        results.push(result.expect("request task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_race_sells_the_last_seat_exactly_once() {
    let h = Harness::start().await;
    h.create_train("last-seat", 1).await;

    let results = swarm(&h, 500, json!({"train_id": "last-seat", "user_id": "u"})).await;
    let counts = common::statuses(&results);
    assert_eq!(counts.get(&200), Some(&1), "exactly one winner: {counts:?}");
    assert!(
        counts.keys().all(|s| matches!(s, 200 | 400 | 429)),
        "only 200/400/429: {counts:?}"
    );
    for (status, body) in &results {
        if *status == 400 {
            assert_eq!(body["error"], "sold_out");
            assert_eq!(body["remaining"], 0);
        }
    }

    let train = h.train("last-seat").await;
    assert_eq!(train.stock, Some(0));
    assert_eq!(train.sold, Some(1));
    assert_eq!(train.reservations.len(), 1);
    assert_eq!(train.lock, None, "no lock left behind");
    train.assert_invariants();
    let winner = results.iter().find(|(s, _)| *s == 200).expect("a winner");
    let id = winner.1["reservation_id"].as_str().expect("reservation id");
    assert_eq!(train.reservations[id]["user_id"], "u");
    assert_eq!(winner.1["remaining"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_seats_go_to_exactly_n_buyers() {
    let h = Harness::start().await;
    h.create_train("fifty", 50).await;

    let results = swarm(&h, 300, json!({"train_id": "fifty"})).await;
    let counts = common::statuses(&results);
    assert_eq!(counts.get(&200), Some(&50), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 300);
    let ids: HashSet<&str> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["reservation_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 50, "distinct reservation ids");
    let mut remaining: Vec<i64> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["remaining"].as_i64().expect("remaining"))
        .collect();
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..50).collect::<Vec<_>>(),
        "each sale saw its own stock"
    );

    let train = h.train("fifty").await;
    assert_eq!((train.stock, train.sold), (Some(0), Some(50)));
    assert_eq!(train.lock, None);
    let stored: HashSet<&str> = train.reservations.keys().map(String::as_str).collect();
    assert_eq!(
        stored, ids,
        "every 200 is a stored reservation, and nothing else is"
    );
    train.assert_invariants();
    // Made a hash table by the first booking, not a packed list that every
    // later one searches end to end (prelude.lua, add_reservations).
    let encoding = h
        .cmd(
            "OBJECT",
            vec!["ENCODING".into(), "train:{fifty}:reservations".into()],
        )
        .await;
    assert_eq!(encoding.as_string().as_deref(), Some("hashtable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_seat_requests_never_oversell() {
    let h = Harness::start().await;
    h.create_train("ten", 10).await;

    let results = swarm(&h, 60, json!({"train_id": "ten", "seats": 3})).await;
    let counts = common::statuses(&results);
    assert_eq!(
        counts.get(&200),
        Some(&3),
        "3 x 3 seats fit in 10: {counts:?}"
    );
    let sold_out = results.iter().find(|(s, _)| *s == 400).expect("sold out");
    assert_eq!(sold_out.1["remaining"], 1, "a 400 says how many are left");

    let train = h.train("ten").await;
    assert_eq!((train.stock, train.sold), (Some(1), Some(9)));
    train.assert_invariants();
    // The last seat still sells to someone asking for one.
    let (status, _, body) = h.post_reserve(json!({"train_id": "ten"})).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_lock_answers_429_and_is_left_alone() {
    let h = Harness::start().await;
    h.create_train("frozen", 5).await;
    let lock = "train:{frozen}:lock".to_string();
    h.cmd(
        "SET",
        vec![
            lock.clone(),
            "operator".into(),
            "NX".into(),
            "PX".into(),
            "1500".into(),
        ],
    )
    .await;
    let before = h.all_keys().await;

    let (status, headers, body) = h.post_reserve(json!({"train_id": "frozen"})).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "locked");
    let retry_ms = body["retry_after_ms"].as_i64().expect("retry_after_ms");
    assert!((1..=1500).contains(&retry_ms), "{retry_ms}");
    let retry_after: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=2).contains(&retry_after),
        "whole seconds, at least 1: {retry_after}"
    );

    let after = h.all_keys().await;
    assert_eq!(before, after, "a 429 writes nothing");
    assert_eq!(h.train("frozen").await.lock.as_deref(), Some("operator"));

    let (_, view) = h.get("/trains/frozen").await;
    assert_eq!(view["locked"], true);
    assert!(view["lock_ttl_ms"].as_i64().is_some_and(|ms| ms > 0));

    // Once the lock expires (watched in Redis, not slept on), sales resume.
    let mut expired = false;
    for _ in 0..300 {
        if h.cmd("PTTL", vec![lock.clone()]).await.as_i64() == Some(-2) {
            expired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(expired, "the operator's lock expires");
    let (status, _, body) = h.post_reserve(json!({"train_id": "frozen"})).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(4)));
    assert_eq!(h.train("frozen").await.lock, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_without_expiry_freezes_sales() {
    let h = Harness::start().await;
    h.create_train("held", 2).await;
    h.cmd(
        "SET",
        vec!["train:{held}:lock".into(), "maintenance".into()],
    )
    .await;

    let (status, headers, body) = h.post_reserve(json!({"train_id": "held"})).await;
    assert_eq!(status, 429);
    assert!(body["retry_after_ms"].as_i64().is_some_and(|ms| ms >= 1));
    assert!(headers.contains_key("retry-after"));
    let (_, view) = h.get("/trains/held").await;
    assert_eq!(
        (view["locked"].clone(), view["lock_ttl_ms"].clone()),
        (json!(true), Json::Null)
    );

    h.cmd("DEL", vec!["train:{held}:lock".into()]).await;
    let (status, _, _) = h.post_reserve(json!({"train_id": "held"})).await;
    assert_eq!(status, 200, "the operator unfreezes with DEL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_train_is_404_and_creates_nothing() {
    let h = Harness::start().await;
    let before = h.all_keys().await;
    let (status, _, body) = h.post_reserve(json!({"train_id": "ghost"})).await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("unknown_train"))
    );
    assert_eq!(
        before,
        h.all_keys().await,
        "no lock or key created for a missing train"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_train_is_used_when_none_is_named() {
    let h = Harness::start_with(|c| {
        c.default_train = "express".into();
        c.default_stock = 2;
    })
    .await;
    let response = h
        .http
        .post(h.url("/reserve"))
        .send()
        .await
        .expect("POST without body");
    let (status, _, body) = common::parts(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["train_id"].clone(),
            body["seats"].clone(),
            body["remaining"].clone()
        ),
        (json!("express"), json!(1), json!(1))
    );
    let train = h.train("express").await;
    assert_eq!(
        (train.capacity, train.stock, train.sold),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        train
            .reservations
            .values()
            .next()
            .map(|r| r["user_id"].clone()),
        Some(Json::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_books_once_and_replays() {
    let h = Harness::start().await;
    h.create_train("idem", 5).await;
    let body = json!({"train_id": "idem", "user_id": "alice", "seats": 2});

    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let (http, url, body) = (h.http.clone(), h.url("/reserve"), body.clone());
        tasks.spawn(async move {
            let r = http
                .post(url)
                .header("Idempotency-Key", "order-17")
                .json(&body)
                .send()
                .await;
            common::parts(r.expect("POST")).await
        });
    }
    let mut ids = HashSet::new();
    let mut replays = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, headers, json) = result.expect("task");
        assert_eq!(status, 200, "{json}");
        ids.insert(json["reservation_id"].as_str().expect("id").to_owned());
        if headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
        {
            replays += 1;
        }
    }
    assert_eq!(ids.len(), 1, "all 20 got the same reservation: {ids:?}");
    assert_eq!(replays, 19, "all but the first are replays");
    let train = h.train("idem").await;
    assert_eq!(
        (train.stock, train.sold, train.reservations.len()),
        (Some(3), Some(2), 1)
    );
    train.assert_invariants();
    let ttl = h
        .cmd("PTTL", vec!["train:{idem}:idem:order-17".into()])
        .await
        .as_i64();
    assert!(
        ttl.is_some_and(|ms| ms > 86_000_000 && ms <= 86_400_000),
        "24 h: {ttl:?}"
    );

    // The same key with another body is refused, and books nothing.
    let response = h
        .http
        .post(h.url("/reserve"))
        .header("Idempotency-Key", "order-17")
        .json(&json!({"train_id": "idem", "user_id": "alice", "seats": 1}))
        .send()
        .await
        .expect("POST");
    let (status, _, json) = common::parts(response).await;
    assert_eq!(
        (status, json["error"].clone()),
        (422, json!("idempotency_mismatch"))
    );
    assert_eq!(h.train("idem").await.sold, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_not_stored_but_decided_afresh() {
    // The contract: only a decision that booked seats is stored; a refusal
    // stores nothing (one client could otherwise fill Redis with them).
    let h = Harness::start().await;
    h.create_train("gone", 0).await;
    let send = || {
        h.http
            .post(h.url("/reserve"))
            .header("Idempotency-Key", "k")
            .json(&json!({"train_id": "gone"}))
            .send()
    };
    let (status, headers, body) = common::parts(send().await.expect("POST")).await;
    assert_eq!((status, body["error"].clone()), (400, json!("sold_out")));
    assert!(!headers.contains_key("idempotent-replayed"));
    let record = h.cmd("EXISTS", vec!["train:{gone}:idem:k".into()]).await;
    assert_eq!(record.as_i64(), Some(0), "the refusal stored no record");
    // An operator adds seats; the same key now books, and that is stored.
    h.create_train("gone", 3).await;
    let (status, headers, body) = common::parts(send().await.expect("POST")).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(2)));
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, body) = common::parts(send().await.expect("POST")).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(2)));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(
        h.train("gone").await.sold,
        Some(1),
        "the replay booked nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_script_call_twice_books_once() {
    // fred re-sends a command that was in flight when a connection dropped;
    // reserve.lua must recognise its own reservation id. The call's key
    // tells the re-sent call from a first run (which looks up no ids).
    let h = Harness::start().await;
    h.create_train("twice", 3).await;
    let call = |id: &str| {
        // id, seats, user, no Idempotency-Key record, no fingerprint.
        let member = [id, "2", r#""bob""#, "0", ""].map(String::from).to_vec();
        common::eval_train_script(&h.cli, RESERVE, "twice", &[], 0, 5, member)
    };
    let first = call("res-1").await.expect("script");
    let call_key = "train:{twice}:call:test-token".to_owned();
    match h.cmd("PTTL", vec![call_key]).await {
        fred::types::Value::Integer(ms) => {
            assert!((1..=60_000).contains(&ms), "call key PTTL {ms}")
        }
        other => panic!("unexpected PTTL reply {other:?}"),
    }
    let second = call("res-1").await.expect("script");
    let status = |v: &fred::types::Value| match v {
        fred::types::Value::Array(items) => (items[0].as_i64(), items[2].as_i64()),
        other => panic!("unexpected reply {other:?}"),
    };
    assert_eq!(status(&first), (Some(200), Some(1)));
    assert_eq!(
        status(&second),
        (Some(200), Some(1)),
        "the retry finds the booking"
    );
    let train = h.train("twice").await;
    assert_eq!(
        (train.stock, train.sold, train.reservations.len()),
        (Some(1), Some(2), 1)
    );
    train.assert_invariants();
}
