//! Journeys: a train with stations sells seats per leg, so a seat sold
//! A->B is still for sale B->D; every guarantee of a train without stations
//! holds per leg (the contract's "Journeys: stations and legs").

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::{Harness, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value as Json};
use train_reservation::store::scripts::{RESERVE, TRAIN_KEYS};

/// Creates a train with stations through the API (as an operator would).
async fn put_train(h: &Harness, id: &str, capacity: u64, stations: &[&str]) -> (u16, Json) {
    let (status, _, body) = h
        .call(
            Method::PUT,
            &format!("/trains/{id}"),
            Some(json!({"capacity": capacity, "stations": stations})),
            Some(ADMIN_TOKEN),
        )
        .await;
    (status, body)
}

async fn reserve(h: &Harness, train: &str, from: &str, to: &str, seats: u64) -> (u16, Json) {
    let (status, _, body) = h
        .post_reserve(json!({"train_id": train, "from": from, "to": to, "seats": seats}))
        .await;
    (status, body)
}

/// The legs of `GET /trains/{id}` as (from, to, remaining, sold, held).
async fn legs(h: &Harness, train: &str) -> Vec<(String, String, i64, i64, i64)> {
    let (status, view) = h.get(&format!("/trains/{train}")).await;
    assert_eq!(status, 200, "{view}");
    view["legs"]
        .as_array()
        .expect("legs")
        .iter()
        .map(|leg| {
            (
                leg["from"].as_str().expect("from").to_owned(),
                leg["to"].as_str().expect("to").to_owned(),
                leg["remaining"].as_i64().expect("remaining"),
                leg["sold"].as_i64().expect("sold"),
                leg["held"].as_i64().expect("held"),
            )
        })
        .collect()
}

fn leg(
    from: &str,
    to: &str,
    remaining: i64,
    sold: i64,
    held: i64,
) -> (String, String, i64, i64, i64) {
    (from.to_owned(), to.to_owned(), remaining, sold, held)
}

/// The per-leg invariant, from what redis-cli shows: for every leg, the
/// free, sold and held counters add up to the capacity, none negative, and
/// sold and held are exactly the seats of the live reservations and holds
/// whose journey covers it; `stock` is the fewest free, `sold` and `held`
/// the totals.
async fn assert_legs_exact(h: &Harness, train: &str) {
    let key = |name: &str| format!("train:{{{train}}}:{name}");
    let raw = h
        .cmd("GET", vec![key("legs")])
        .await
        .as_string()
        .expect("legs");
    let legs_json: Json = serde_json::from_str(&raw).expect("legs JSON");
    let stations: Vec<String> =
        serde_json::from_value(legs_json["stations"].clone()).expect("stations");
    let counter = |name: &str, k: usize| legs_json[name][k].as_i64().expect("an integer");
    let train_keys = h.train(train).await;
    let capacity = train_keys.capacity.expect("capacity");
    let index = |name: &Json| {
        let name = name.as_str().expect("a station name");
        stations
            .iter()
            .position(|s| s == name)
            .expect("a station of the train")
    };
    let legs = stations.len() - 1;
    let (mut sold, mut held) = (vec![0; legs], vec![0; legs]);
    for (records, on) in [
        (&train_keys.reservations, &mut sold),
        (&train_keys.holds, &mut held),
    ] {
        for record in records.values() {
            let (a, b) = (index(&record["from"]), index(&record["to"]));
            assert!(a < b, "{record}");
            for seats in &mut on[a..b] {
                *seats += record["seats"].as_i64().expect("seats");
            }
        }
    }
    let mut fewest = capacity;
    for k in 0..legs {
        let free = counter("free", k);
        assert_eq!(counter("sold", k), sold[k], "leg {k}: sold");
        assert_eq!(counter("held", k), held[k], "leg {k}: held");
        assert_eq!(
            free + sold[k] + held[k],
            capacity,
            "leg {k}: capacity = free + sold + held"
        );
        assert!(free >= 0, "leg {k}: free {free}");
        fewest = fewest.min(free);
    }
    assert_eq!(
        train_keys.stock,
        Some(fewest),
        "stock is the whole route's free seats"
    );
    let total = |records: &BTreeMap<String, Json>| -> i64 {
        records
            .values()
            .map(|r| r["seats"].as_i64().expect("seats"))
            .sum()
    };
    assert_eq!(
        train_keys.sold.unwrap_or(0),
        total(&train_keys.reservations)
    );
    assert_eq!(train_keys.held.unwrap_or(0), total(&train_keys.holds));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_sold_a_to_b_is_still_for_sale_b_to_d() {
    let h = Harness::start().await;
    let (status, body) = put_train(&h, "abcd", 1, &["A", "B", "C", "D"]).await;
    assert_eq!(
        (status, body["stations"].clone()),
        (201, json!(["A", "B", "C", "D"]))
    );

    let (status, first) = reserve(&h, "abcd", "A", "B", 1).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["from"].clone(), first["to"].clone()),
        (json!("A"), json!("B"))
    );
    assert_eq!(first["remaining"], 0, "none left from A to B");
    let (status, second) = reserve(&h, "abcd", "B", "D", 1).await;
    assert_eq!(
        (status, second["remaining"].clone()),
        (200, json!(0)),
        "{second}"
    );

    // A->C and C->D need a leg that is full: 400 names the full legs.
    let (status, refused) = reserve(&h, "abcd", "A", "C", 1).await;
    assert_eq!((status, refused["error"].clone()), (400, json!("sold_out")));
    assert_eq!(refused["remaining"], 0);
    assert_eq!(
        refused["full_legs"],
        json!([{"from": "A", "to": "B", "remaining": 0}, {"from": "B", "to": "C", "remaining": 0}])
    );
    let (status, refused) = reserve(&h, "abcd", "C", "D", 1).await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["full_legs"],
        json!([{"from": "C", "to": "D", "remaining": 0}])
    );
    assert_eq!(
        legs(&h, "abcd").await,
        vec![
            leg("A", "B", 0, 1, 0),
            leg("B", "C", 0, 1, 0),
            leg("C", "D", 0, 1, 0)
        ]
    );

    // The record names the journey; cancelling gives back exactly its legs.
    let id = first["reservation_id"].as_str().expect("id");
    let (status, _, view) = h
        .call(
            Method::GET,
            &format!("/trains/abcd/reservations/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, view["from"].clone(), view["to"].clone()),
        (200, json!("A"), json!("B"))
    );
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/abcd/reservations/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        legs(&h, "abcd").await,
        vec![
            leg("A", "B", 1, 0, 0),
            leg("B", "C", 0, 1, 0),
            leg("C", "D", 0, 1, 0)
        ]
    );
    let (status, again) = reserve(&h, "abcd", "A", "B", 1).await;
    assert_eq!(status, 200, "{again}");
    // No from or to: the whole route, which is full.
    let (status, _, whole) = h.post_reserve(json!({"train_id": "abcd"})).await;
    assert_eq!(
        (status, whole["full_legs"].as_array().map(Vec::len)),
        (400, Some(3)),
        "{whole}"
    );
    assert_legs_exact(&h, "abcd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_confirm_release_and_expiry_move_exactly_their_legs() {
    let h = Harness::start().await;
    put_train(&h, "h4", 3, &["A", "B", "C", "D"]).await;
    let hold = |from: &'static str, to: &'static str, ttl_ms: u64| {
        h.call(
            Method::POST,
            "/trains/h4/holds",
            Some(json!({"from": from, "to": to, "seats": 1, "ttl_ms": ttl_ms})),
            None,
        )
    };
    let (status, _, short) = hold("A", "C", 1000).await;
    assert_eq!(
        (status, short["from"].clone(), short["to"].clone()),
        (201, json!("A"), json!("C"))
    );
    assert_eq!(short["remaining"], 2);
    let (status, _, kept) = hold("B", "D", 60_000).await;
    assert_eq!(status, 201);
    let (status, _, gone) = hold("C", "D", 60_000).await;
    assert_eq!(status, 201);
    assert_eq!(
        legs(&h, "h4").await,
        vec![
            leg("A", "B", 2, 0, 1),
            leg("B", "C", 1, 0, 2),
            leg("C", "D", 1, 0, 2)
        ]
    );
    let id = |body: &Json| body["hold_id"].as_str().expect("hold_id").to_owned();
    let (status, _, view) = h
        .call(
            Method::GET,
            &format!("/trains/h4/holds/{}", id(&kept)),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, view["from"].clone(), view["to"].clone()),
        (200, json!("B"), json!("D"))
    );

    // Confirm moves its legs from held to sold; release gives them back.
    let (status, _, confirmed) = h
        .call(
            Method::POST,
            &format!("/trains/h4/holds/{}/confirm", id(&kept)),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, confirmed["from"].clone(), confirmed["to"].clone()),
        (200, json!("B"), json!("D"))
    );
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/h4/holds/{}", id(&gone)),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);

    // The short hold expires: from that millisecond its legs are free again,
    // whether or not anything touched the train since.
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = legs(&h, "h4").await;
        if seen[0].2 == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        vec![
            leg("A", "B", 3, 0, 0),
            leg("B", "C", 2, 1, 0),
            leg("C", "D", 2, 1, 0)
        ]
    );
    // Any call reclaims it for good, and the invariant holds.
    let (status, _) = reserve(&h, "h4", "A", "B", 3).await;
    assert_eq!(status, 200);
    assert_legs_exact(&h, "h4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_journey_at_a_time_in_get_train() {
    let h = Harness::start().await;
    put_train(&h, "zh", 5, &["Genève", "Zürich HB", "Chur"]).await;
    reserve(&h, "zh", "Zürich HB", "Chur", 2).await;
    let (status, view) = h.get("/trains/zh?from=Gen%C3%A8ve&to=Z%C3%BCrich+HB").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["remaining"], 5);
    assert_eq!(
        view["legs"],
        json!([{"from": "Genève", "to": "Zürich HB", "remaining": 5, "sold": 0, "held": 0}])
    );
    let (_, whole) = h.get("/trains/zh").await;
    assert_eq!(
        (whole["remaining"].clone(), whole["sold"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(whole["stations"], json!(["Genève", "Zürich HB", "Chur"]));
    for bad in [
        "?from=Bern",
        "?from=Chur&to=Chur",
        "?from=Chur&to=Gen%C3%A8ve",
    ] {
        let (status, body) = h.get(&format!("/trains/zh{bad}")).await;
        assert_eq!(
            (status, body["error"].clone()),
            (422, json!("invalid_journey")),
            "{bad}"
        );
    }
    let (status, body) = h.get("/trains/zh?color=red").await;
    assert_eq!(
        (status, body["error"].clone()),
        (422, json!("invalid_request"))
    );
    // A train without stations keeps today's answer, and refuses journeys.
    h.create_train("plain", 4).await;
    let (status, plain) = h.get("/trains/plain").await;
    assert_eq!(status, 200);
    assert!(
        plain.get("legs").is_none() && plain.get("stations").is_none(),
        "{plain}"
    );
    let (status, body) = h.get("/trains/plain?from=A").await;
    assert_eq!(
        (status, body["error"].clone()),
        (422, json!("invalid_journey"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_journeys_and_station_lists_change_no_key() {
    let h = Harness::start().await;
    put_train(&h, "bad", 5, &["A", "B", "C"]).await;
    h.create_train("plain", 5).await;
    let before = h.all_keys().await;
    for (body, code) in [
        (json!({"train_id": "bad", "from": "X"}), "invalid_journey"),
        (
            json!({"train_id": "bad", "from": "B", "to": "B"}),
            "invalid_journey",
        ),
        (
            json!({"train_id": "bad", "from": "C", "to": "A"}),
            "invalid_journey",
        ),
        (json!({"train_id": "bad", "to": "A"}), "invalid_journey"),
        (json!({"train_id": "plain", "from": "A"}), "invalid_journey"),
        (json!({"train_id": "bad", "from": ""}), "invalid_request"),
        (
            json!({"train_id": "bad", "from": "A\u{1}"}),
            "invalid_request",
        ),
        (
            json!({"train_id": "bad", "to": "x".repeat(65)}),
            "invalid_request",
        ),
        (json!({"train_id": "bad", "to": ["C"]}), "invalid_request"),
    ] {
        let (status, _, answer) = h.post_reserve(body.clone()).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (422, json!(code)),
            "{body}"
        );
        let path = format!(
            "/trains/{}/holds",
            body["train_id"].as_str().expect("train")
        );
        let mut hold = body.clone();
        hold.as_object_mut().expect("object").remove("train_id");
        let (status, _, answer) = h.call(Method::POST, &path, Some(hold), None).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (422, json!(code)),
            "hold {body}"
        );
    }
    let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
    for stations in [
        json!(["A"]),
        json!([]),
        json!(["A", "B", "A"]),
        json!(["A", ""]),
        json!(["A", "x".repeat(65)]),
        json!(["A", "B\u{7}"]),
        json!("A,B"),
        json!(["A", 2]),
        json!(many),
    ] {
        for train in ["bad", "new"] {
            let (status, _, answer) = h
                .call(
                    Method::PUT,
                    &format!("/trains/{train}"),
                    Some(json!({"capacity": 3, "reset": true, "stations": stations})),
                    Some(ADMIN_TOKEN),
                )
                .await;
            assert_eq!(
                (status, answer["error"].clone()),
                (422, json!("invalid_request")),
                "{stations}"
            );
        }
    }
    assert_eq!(h.all_keys().await, before, "no key changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_replaces_or_removes_the_stations() {
    let h = Harness::start().await;
    put_train(&h, "r", 2, &["A", "B", "C"]).await;
    reserve(&h, "r", "A", "B", 2).await;
    let put = |body: Json| h.call(Method::PUT, "/trains/r", Some(body), Some(ADMIN_TOKEN));
    let (status, _, body) =
        put(json!({"capacity": 4, "stations": ["X", "Y"], "reset": true})).await;
    assert_eq!((status, body["stations"].clone()), (200, json!(["X", "Y"])));
    assert_eq!(legs(&h, "r").await, vec![leg("X", "Y", 4, 0, 0)]);
    let (status, _, body) = put(json!({"capacity": 4, "reset": true})).await;
    assert_eq!(status, 200);
    assert!(body.get("stations").is_none());
    let (_, view) = h.get("/trains/r").await;
    assert!(view.get("legs").is_none(), "{view}");
    let keys = h.all_keys().await;
    assert!(!keys.contains_key("train:{r}:legs"));
    let (status, _) = reserve(&h, "r", "X", "Y", 1).await;
    assert_eq!(status, 422, "no stations any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_and_the_per_user_limit_hold_on_journeys() {
    let h = Harness::start_with(|c| c.max_seats_per_user = 3).await;
    put_train(&h, "iu", 10, &["A", "B", "C", "D"]).await;
    let send = |body: Json| {
        h.http
            .post(h.url("/reserve"))
            .header("Idempotency-Key", "trip-1")
            .json(&body)
            .send()
    };
    let trip = json!({"train_id": "iu", "from": "B", "to": "D", "seats": 2, "user_id": "ann"});
    let (status, _, first) = common::parts(send(trip.clone()).await.expect("POST")).await;
    assert_eq!(status, 200, "{first}");
    let (status, headers, again) = common::parts(send(trip.clone()).await.expect("POST")).await;
    assert_eq!(
        (status, headers["idempotent-replayed"].clone()),
        (200, "true".parse().expect("header"))
    );
    assert_eq!(
        (
            again["reservation_id"].clone(),
            again["from"].clone(),
            again["to"].clone()
        ),
        (first["reservation_id"].clone(), json!("B"), json!("D"))
    );
    // The same key with another journey is another request.
    let mut other = trip.clone();
    other["from"] = json!("A");
    let (status, _, body) = common::parts(send(other).await.expect("POST")).await;
    assert_eq!(
        (status, body["error"].clone()),
        (422, json!("idempotency_mismatch"))
    );
    // The limit counts seats, whatever the journey: 2 + 2 > 3.
    let (status, _, body) = h
        .post_reserve(
            json!({"train_id": "iu", "from": "A", "to": "B", "seats": 2, "user_id": "ann"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].clone(), body["used"].clone()),
        (409, json!("limit_reached"), json!(2))
    );
    let (status, _, _) = h
        .post_reserve(
            json!({"train_id": "iu", "from": "A", "to": "B", "seats": 1, "user_id": "ann"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.train("iu").await.users.get("ann"), Some(&3));
    assert_legs_exact(&h, "iu").await;
}

/// reserve.lua called directly for one train with (id, seats, from, to)
/// members in one call: the group commit's view.
async fn one_call(h: &Harness, train: &str, members: &[(&str, u8, &str, &str)]) -> Vec<(i64, i64)> {
    let mut args = vec![RESERVE.to_owned(), (TRAIN_KEYS.len() + 1).to_string()];
    args.extend(TRAIN_KEYS.iter().map(|k| format!("train:{{{train}}}:{k}")));
    args.push(format!("train:{{{train}}}:call:one-call"));
    args.extend(["one-call", "3000", "86400000", "0", "60000", "0", "1"].map(String::from));
    args.push(members.len().to_string());
    for (id, seats, from, to) in members {
        args.extend([
            id.to_string(),
            seats.to_string(),
            String::new(),
            "0".into(),
            String::new(),
        ]);
        args.extend([from.to_string(), to.to_string()]);
        // class, seat ids, together: none asked.
        args.extend([String::new(), String::new(), String::new()]);
    }
    let reply = h.cmd_result("EVAL", args).await.expect("reserve.lua");
    reply
        .into_array()
        .chunks(5)
        .map(|c| (c[0].as_i64().unwrap_or(-1), c[2].as_i64().unwrap_or(-1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_decides_journeys_in_arrival_order() {
    let h = Harness::start().await;
    put_train(&h, "gc", 2, &["A", "B", "C", "D"]).await;
    reserve(&h, "gc", "C", "D", 2).await;
    // A sold-out long journey does not block a short one behind it.
    let replies = one_call(
        &h,
        "gc",
        &[
            ("long", 1, "A", "D"),
            ("short", 2, "A", "C"),
            ("third", 1, "B", "C"),
            ("tail", 1, "", ""),
        ],
    )
    .await;
    assert_eq!(replies, vec![(400, 0), (200, 0), (400, 0), (400, 0)]);
    assert_legs_exact(&h, "gc").await;
    // Called again (a client library's retry): nothing booked twice.
    let replies = one_call(&h, "gc", &[("long", 1, "A", "D"), ("short", 2, "A", "C")]).await;
    assert_eq!(replies[1].0, 200);
    assert_eq!(h.train("gc").await.reservations.len(), 2);
    assert_legs_exact(&h, "gc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_of_random_journeys_keeps_every_leg_exact() {
    let h = Arc::new(Harness::start().await);
    let stations = ["S0", "S1", "S2", "S3", "S4", "S5"];
    put_train(&h, "swarm", 12, &stations).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..600u64 {
        let h = h.clone();
        tasks.spawn(async move {
            // A cheap deterministic spread: many short journeys, some long.
            let a = (n * 7 % 5) as usize;
            let len = if n % 4 == 0 {
                5 - a
            } else {
                1 + (n as usize * 3 % (5 - a))
            };
            let (from, to) = (stations[a], stations[(a + len).min(5)]);
            let seats = 1 + n % 3;
            let body = json!({"from": from, "to": to, "seats": seats});
            let (status, answer) = match n % 3 {
                0 => {
                    let (s, _, b) = h
                        .call(Method::POST, "/trains/swarm/holds", Some(body), None)
                        .await;
                    (s, b)
                }
                _ => {
                    let mut body = body;
                    body["train_id"] = json!("swarm");
                    let (s, _, b) = h.post_reserve(body).await;
                    (s, b)
                }
            };
            assert!(matches!(status, 200 | 201 | 400), "{status} {answer}");
            if status == 200 && n % 5 == 0 {
                let id = answer["reservation_id"].as_str().expect("id");
                let path = format!("/trains/swarm/reservations/{id}");
                assert_eq!(h.call(Method::DELETE, &path, None, None).await.0, 200);
            }
            if status == 201 && n % 2 == 0 {
                let id = answer["hold_id"].as_str().expect("id");
                let path = format!("/trains/swarm/holds/{id}");
                assert_eq!(h.call(Method::DELETE, &path, None, None).await.0, 200);
            }
            status
        });
    }
    let mut granted = 0;
    while let Some(status) = tasks.join_next().await {
        granted += u32::from(status.expect("task") != 400);
    }
    assert!(
        granted > 12,
        "short journeys reuse seats: {granted} granted"
    );
    assert_legs_exact(&h, "swarm").await;
    // Fully booked on every leg now? Whatever is left still sells, exactly.
    for (k, free) in legs(&h, "swarm").await.iter().map(|l| l.2).enumerate() {
        // At most 10 seats a request.
        let mut left = free as u64;
        while left > 0 {
            let seats = left.min(10);
            let (status, body) = reserve(&h, "swarm", stations[k], stations[k + 1], seats).await;
            assert_eq!(status, 200, "{body}");
            left -= seats;
        }
    }
    assert!(
        legs(&h, "swarm").await.iter().all(|l| l.2 == 0),
        "every leg sold out"
    );
    assert_legs_exact(&h, "swarm").await;
}
