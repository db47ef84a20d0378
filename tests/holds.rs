//! Holds and cancellations: every status of every hold and reservation
//! endpoint, expiry (410, seats back without anything touching the train),
//! re-sent script calls that must not book twice or resurrect a cancel,
//! and the per-user limit under a swarm of one user's requests.

mod common;

use std::time::Duration;

use common::Harness;
use reqwest::Method;
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;
use train_reservation::store::scripts::{CONFIRM, HOLD, RESERVE};

fn id_of(body: &Json, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
        .to_owned()
}

/// Polls GET on a hold until it answers 410 (bounded): the hold's own answer
/// is the signal that it expired, not the clock.
async fn wait_expired(h: &Harness, train: &str, hold: &str) {
    for _ in 0..200 {
        let (status, _) = h.get(&format!("/trains/{train}/holds/{hold}")).await;
        if status == 410 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("hold {hold} never expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_confirm_release_and_every_status() {
    let h = Harness::start().await;
    h.create_train("h1", 5).await;
    let holds = "/trains/h1/holds";

    let (status, _, held) = h
        .call(
            Method::POST,
            holds,
            Some(json!({"user_id": "ann", "seats": 2, "ttl_ms": 60000})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{held}");
    let hold = id_of(&held, "hold_id");
    assert_eq!(
        (held["seats"].clone(), held["remaining"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(held["train_id"], "h1");
    let (status, body) = h.get(&format!("{holds}/{hold}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"hold_id": hold, "train_id": "h1", "user_id": "ann", "seats": 2,
               "expires_at_ms": held["expires_at_ms"]})
    );
    let (_, train) = h.get("/trains/h1").await;
    assert_eq!(
        (train["remaining"].clone(), train["held"].clone()),
        (json!(3), json!(2))
    );

    // More than is left: 400, with what is left.
    let (status, _, body) = h
        .call(Method::POST, holds, Some(json!({"seats": 4})), None)
        .await;
    assert_eq!(
        (status, body["error"].clone(), body["remaining"].clone()),
        (400, json!("sold_out"), json!(3))
    );

    // Confirm: a reservation under the hold's id; again: the same, replayed.
    let confirm = format!("{holds}/{hold}/confirm");
    let (status, headers, body) = h.call(Method::POST, &confirm, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"reservation_id": hold, "train_id": "h1", "seats": 2, "remaining": 3})
    );
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) = h.call(Method::POST, &confirm, None, None).await;
    assert_eq!((status, &again), (200, &body));
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _) = h.get(&format!("{holds}/{hold}")).await;
    assert_eq!(status, 404, "a confirmed hold is no longer a hold");
    let (status, _, body) = h
        .call(Method::DELETE, &format!("{holds}/{hold}"), None, None)
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("already_confirmed"))
    );
    let (status, body) = h.get(&format!("/trains/h1/reservations/{hold}")).await;
    assert_eq!(
        (status, body["user_id"].clone(), body["seats"].clone()),
        (200, json!("ann"), json!(2))
    );

    // Release: seats back; a second release and a confirm find nothing.
    let (_, _, other) = h
        .call(Method::POST, holds, Some(json!({"seats": 1})), None)
        .await;
    let other = id_of(&other, "hold_id");
    let (status, _, body) = h
        .call(Method::DELETE, &format!("{holds}/{other}"), None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"hold_id": other, "train_id": "h1", "seats": 1, "remaining": 3})
    );
    for (method, path) in [
        (Method::DELETE, format!("{holds}/{other}")),
        (Method::GET, format!("{holds}/{other}")),
        (Method::POST, format!("{holds}/{other}/confirm")),
    ] {
        let (status, _, body) = h.call(method.clone(), &path, None, None).await;
        assert_eq!(
            (status, body["error"].clone()),
            (404, json!("unknown_hold")),
            "{method} {path}"
        );
    }

    // A foreign lock: every changing call answers 429 and changes nothing.
    let (_, _, live) = h
        .call(Method::POST, holds, Some(json!({"seats": 1})), None)
        .await;
    let live = id_of(&live, "hold_id");
    h.cmd(
        "SET",
        ["train:{h1}:lock", "operator", "PX", "5000"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    let before = h.all_keys().await;
    for (method, path) in [
        (Method::POST, holds.to_owned()),
        (Method::POST, format!("{holds}/{live}/confirm")),
        (Method::DELETE, format!("{holds}/{live}")),
        (Method::DELETE, format!("/trains/h1/reservations/{hold}")),
    ] {
        let (status, headers, body) = h.call(method.clone(), &path, None, None).await;
        assert_eq!(
            (status, body["error"].clone()),
            (429, json!("locked")),
            "{method} {path}"
        );
        assert!(headers.contains_key("retry-after"), "{method} {path}");
    }
    assert_eq!(before, h.all_keys().await, "a 429 changes nothing");
    h.cmd("DEL", vec!["train:{h1}:lock".into()]).await;

    let train = h.train("h1").await;
    assert_eq!(
        (train.stock, train.sold, train.held),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(train.lock, None);
    train.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_hold_answers_410_and_its_seats_are_back() {
    let h = Harness::start().await;
    h.create_train("h2", 3).await;
    let (status, _, body) = h
        .call(
            Method::POST,
            "/trains/h2/holds",
            Some(json!({"user_id": "bo", "seats": 2, "ttl_ms": 1000})),
            None,
        )
        .await;
    assert_eq!(status, 201);
    let hold = id_of(&body, "hold_id");
    wait_expired(&h, "h2", &hold).await;

    // Nothing has touched the train since: the record is still there, yet
    // GET /trains/{id} counts the seats as remaining, not held.
    assert_eq!(h.train("h2").await.holds.len(), 1, "not reclaimed yet");
    let (_, train) = h.get("/trains/h2").await;
    assert_eq!(
        (
            train["remaining"].clone(),
            train["held"].clone(),
            train["capacity"].clone()
        ),
        (json!(3), json!(0), json!(3))
    );

    for (method, path) in [
        (Method::POST, format!("/trains/h2/holds/{hold}/confirm")),
        (Method::DELETE, format!("/trains/h2/holds/{hold}")),
        (Method::GET, format!("/trains/h2/holds/{hold}")),
    ] {
        let (status, _, body) = h.call(method.clone(), &path, None, None).await;
        assert_eq!(
            (status, body["error"].clone()),
            (410, json!("hold_expired")),
            "{method} {path}"
        );
    }
    // The confirm reclaimed it: seats in stock, the id remembered as expired.
    let train = h.train("h2").await;
    assert_eq!(
        (train.stock, train.held, train.holds.len()),
        (Some(3), Some(0), 0)
    );
    assert!(
        train.users.is_empty(),
        "the user's allowance is back: {:?}",
        train.users
    );
    train.assert_invariants();
    let remembered = h
        .cmd(
            "ZSCORE",
            vec!["train:{h2}:ended".into(), format!("expired:{hold}")],
        )
        .await;
    assert!(!remembered.is_null(), "expired ids are remembered for 410");
    let (status, _) = h.get(&format!("/trains/h2/holds/{hold}")).await;
    assert_eq!(status, 410, "still 410 after the reclaim");
    // All three seats sell again.
    let (status, _, body) = h.post_reserve(json!({"train_id": "h2", "seats": 3})).await;
    assert_eq!((status, body["remaining"].clone()), (200, json!(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_is_read_and_cancelled_once() {
    let h = Harness::start().await;
    h.create_train("r1", 4).await;
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "r1", "seats": 3, "user_id": "cy"}))
        .await;
    assert_eq!(status, 200);
    let id = id_of(&body, "reservation_id");
    let path = format!("/trains/r1/reservations/{id}");
    let (status, body) = h.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["user_id"].clone(), body["seats"].clone()),
        (json!("cy"), json!(3))
    );
    assert!(body["created_at_ms"]
        .as_i64()
        .is_some_and(|ms| ms > 1_700_000_000_000));

    let (status, _, body) = h.call(Method::DELETE, &path, None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"reservation_id": id, "train_id": "r1", "seats": 3, "remaining": 4})
    );
    let (status, _, body) = h.call(Method::DELETE, &path, None, None).await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("unknown_reservation"))
    );
    let (status, _) = h.get(&path).await;
    assert_eq!(status, 404);
    let train = h.train("r1").await;
    assert_eq!((train.stock, train.sold), (Some(4), Some(0)));
    train.assert_invariants();
}

/// What a script call answered first: the status.
fn first_status(reply: &fred::types::Value) -> i64 {
    match reply {
        fred::types::Value::Array(items) => items[0].as_i64().expect("status"),
        other => panic!("unexpected reply {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_sent_calls_book_once_and_never_resurrect_a_cancel() {
    // fred re-sends a command that was in flight when its connection dropped:
    // the same script, the same ids, again.
    let h = Harness::start().await;
    h.create_train("rs", 10).await;
    let hold = |id: &str| {
        let member = [id, "2", r#""dee""#, "60000", "0", ""]
            .map(String::from)
            .to_vec();
        common::eval_train_script(&h.cli, HOLD, "rs", &[], 0, 6, member)
    };
    let confirm = |id: &str| {
        common::eval_train_script(
            &h.cli,
            CONFIRM,
            "rs",
            &[],
            0,
            2,
            vec![id.into(), String::new()],
        )
    };
    let reserve = |id: &str| {
        let member = [id, "1", "", "0", ""].map(String::from).to_vec();
        common::eval_train_script(&h.cli, RESERVE, "rs", &[], 0, 5, member)
    };
    let hold_id = "11111111-1111-4111-8111-111111111111";

    assert_eq!(first_status(&hold(hold_id).await.expect("hold")), 201);
    assert_eq!(first_status(&hold(hold_id).await.expect("hold again")), 201);
    let train = h.train("rs").await;
    assert_eq!(
        (train.stock, train.held, train.holds.len()),
        (Some(8), Some(2), 1),
        "held once"
    );

    assert_eq!(first_status(&confirm(hold_id).await.expect("confirm")), 200);
    assert_eq!(
        first_status(&confirm(hold_id).await.expect("confirm again")),
        200
    );
    let train = h.train("rs").await;
    assert_eq!(
        (train.stock, train.sold, train.held),
        (Some(8), Some(2), Some(0)),
        "sold once"
    );

    // Cancel the confirmed hold, then re-send the calls that made it.
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/rs/reservations/{hold_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        first_status(&confirm(hold_id).await.expect("confirm after cancel")),
        404
    );
    assert_eq!(
        first_status(&hold(hold_id).await.expect("hold after cancel")),
        201
    );
    let train = h.train("rs").await;
    assert_eq!(
        (train.stock, train.sold, train.held),
        (Some(10), Some(0), Some(0)),
        "nothing came back"
    );

    // The same for a plain reservation.
    let reservation_id = "22222222-2222-4222-8222-222222222222";
    assert_eq!(
        first_status(&reserve(reservation_id).await.expect("reserve")),
        200
    );
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/rs/reservations/{reservation_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        first_status(&reserve(reservation_id).await.expect("re-sent reserve")),
        200
    );
    let train = h.train("rs").await;
    assert_eq!(
        (train.stock, train.sold),
        (Some(10), Some(0)),
        "the cancel stands"
    );
    assert!(train.reservations.is_empty());
    assert!(train.users.is_empty(), "{:?}", train.users);
    train.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_swarm_gets_exactly_the_limit() {
    let h = Harness::start_with(|c| c.max_seats_per_user = 4).await;
    h.create_train("lim", 100).await;
    let mut tasks = JoinSet::new();
    for i in 0..80 {
        let (http, base) = (h.http.clone(), h.url(""));
        tasks.spawn(async move {
            let (path, body) = if i % 2 == 0 {
                ("/reserve", json!({"train_id": "lim", "user_id": "greedy"}))
            } else {
                ("/trains/lim/holds", json!({"user_id": "greedy"}))
            };
            let response = http
                .post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
                .expect("POST");
            common::parts(response).await
        });
    }
    let mut won = 0;
    let mut hold_ids = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, _, body) = result.expect("task");
        match status {
            200 => won += 1,
            201 => {
                won += 1;
                hold_ids.push(id_of(&body, "hold_id"));
            }
            409 => {
                assert_eq!(body["error"], "limit_reached");
                assert_eq!(body["limit"], 4);
                assert_eq!(body["used"], 4, "only refused once the limit is used up");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won, 4, "exactly the limit, never one more");
    let train = h.train("lim").await;
    assert_eq!(train.users.get("greedy"), Some(&4));
    train.assert_invariants();

    // Another user is not affected; a request without a user is refused.
    let (status, _, _) = h
        .post_reserve(json!({"train_id": "lim", "user_id": "other"}))
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = h.post_reserve(json!({"train_id": "lim"})).await;
    assert_eq!(
        (status, body["error"].clone()),
        (422, json!("invalid_request"))
    );

    // A release gives the seat back to the user's allowance.
    if let Some(hold) = hold_ids.first() {
        let (status, _, _) = h
            .call(
                Method::DELETE,
                &format!("/trains/lim/holds/{hold}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (status, _, _) = h
            .post_reserve(json!({"train_id": "lim", "user_id": "greedy"}))
            .await;
        assert_eq!(status, 200, "the released seat is the user's again");
        let (status, _, _) = h
            .post_reserve(json!({"train_id": "lim", "user_id": "greedy"}))
            .await;
        assert_eq!(status, 409);
    }
    h.train("lim").await.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_with_an_idempotency_key_is_made_once() {
    let h = Harness::start().await;
    h.create_train("ik", 5).await;
    let send = |body: Json| {
        h.http
            .post(h.url("/trains/ik/holds"))
            .header("idempotency-key", "cart-9")
            .json(&body)
            .send()
    };
    let body = json!({"user_id": "eve", "seats": 2, "ttl_ms": 60000});
    let (status, headers, first) = common::parts(send(body.clone()).await.expect("POST")).await;
    assert_eq!(status, 201);
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) = common::parts(send(body).await.expect("POST")).await;
    assert_eq!((status, &again), (201, &first), "the stored answer, again");
    assert_eq!(headers["idempotent-replayed"], "true");
    let (status, _, other) = common::parts(send(json!({"seats": 3})).await.expect("POST")).await;
    assert_eq!(
        (status, other["error"].clone()),
        (422, json!("idempotency_mismatch"))
    );
    let train = h.train("ik").await;
    assert_eq!(
        (train.stock, train.held, train.holds.len()),
        (Some(3), Some(2), 1)
    );
    train.assert_invariants();
}
