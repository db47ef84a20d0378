//! Numbered seats: a train made with coaches names every seat, sells classes
//! apart, seats groups together, and keeps one seat on every leg of a
//! journey (the contract's "Coaches, classes and numbered seats").

mod common;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use common::{
    seats::{assert_seats_exact, coaches, put_numbered},
    Harness, ADMIN_TOKEN,
};
use reqwest::Method;
use serde_json::{json, Value as Json};
use train_reservation::store::scripts::RESERVE;

const ROUTE: [&str; 5] = ["A", "B", "C", "D", "E"];

async fn hold(h: &Harness, train: &str, body: Json) -> (u16, Json) {
    let (status, _, body) = h
        .call(
            Method::POST,
            &format!("/trains/{train}/holds"),
            Some(body),
            None,
        )
        .await;
    (status, body)
}

fn ids(body: &Json) -> Vec<String> {
    serde_json::from_value(body["seat_ids"].clone()).unwrap_or_default()
}

/// The state of each seat for a journey, from `GET /trains/{id}/seats`.
async fn states(h: &Harness, train: &str, query: &str) -> Vec<(String, String)> {
    let (status, map) = h.get(&format!("/trains/{train}/seats{query}")).await;
    assert_eq!(status, 200, "{map}");
    map["coaches"]
        .as_array()
        .expect("coaches")
        .iter()
        .flat_map(|c| c["seats"].as_array().expect("seats").clone())
        .map(|s| {
            (
                s["seat_id"].as_str().expect("id").to_owned(),
                s["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

async fn state_of(h: &Harness, train: &str, query: &str, seat: &str) -> String {
    states(h, train, query)
        .await
        .into_iter()
        .find(|(id, _)| id == seat)
        .map(|(_, s)| s)
        .expect("seat on the map")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_asked_by_fifty_buyers_sells_once_per_leg() {
    let h = Arc::new(Harness::start().await);
    put_numbered(&h, "ov", Some(&ROUTE), coaches()).await;
    // Fifty journeys that all cross leg B-C: exactly one gets 7-12A.
    let mut tasks = Vec::new();
    for n in 0..50usize {
        let h = h.clone();
        let (from, to) = (ROUTE[n % 2], ROUTE[2 + n % 3]);
        tasks.push(tokio::spawn(async move {
            let body = json!({"train_id": "ov", "seat_ids": ["7-12A"], "from": from, "to": to});
            let (status, _, body) = h.post_reserve(body).await;
            (status, body)
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            200 => won.push(body),
            409 => assert_eq!(
                (body["error"].clone(), body["seat_ids"].clone()),
                (json!("seat_taken"), json!(["7-12A"])),
                "{body}"
            ),
            _ => panic!("{status} {body}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(
        (ids(&won[0]), won[0]["class"].clone()),
        (vec!["7-12A".to_owned()], json!("second"))
    );
    let bookings = assert_seats_exact(&h, "ov").await;
    assert_eq!(bookings.len(), 1);

    // Disjoint journeys: every one gets the same seat. 49 legs is the
    // most a train has (50 stations), so 49 buyers, one leg each.
    let stations: Vec<String> = (0..50).map(|i| format!("S{i}")).collect();
    let names: Vec<&str> = stations.iter().map(String::as_str).collect();
    put_numbered(&h, "dj", Some(&names), coaches()).await;
    let mut tasks = Vec::new();
    for k in 0..49usize {
        let h = h.clone();
        let body = json!({"train_id": "dj", "seat_ids": ["7-12A"], "from": format!("S{k}"), "to": format!("S{}", k + 1)});
        tasks.push(tokio::spawn(async move { h.post_reserve(body).await.0 }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), 200);
    }
    let bookings = assert_seats_exact(&h, "dj").await;
    assert_eq!(bookings.len(), 49);
    assert_eq!(state_of(&h, "dj", "", "7-12A").await, "sold");
    assert_eq!(state_of(&h, "dj", "", "7-12B").await, "free");
}

/// (coach, row, letter index in the row) of a seat id.
fn place(id: &str, layout: &str) -> (String, u32, usize) {
    let (coach, rest) = id.split_once('-').expect("seat id");
    let (row, letter) = rest.split_at(rest.len() - 1);
    let letters: Vec<char> = layout.chars().filter(|c| *c != '_').collect();
    let at = letters
        .iter()
        .position(|c| c.to_string() == letter)
        .expect("letter");
    (coach.to_owned(), row.parse().expect("row"), at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_sit_together_or_are_refused() {
    let h = Harness::start().await;
    let layout = "AB_CD";
    let coaches = json!([
        {"coach": "1", "class": "first", "rows": 2, "layout": "A_BC"},
        {"coach": "2", "class": "second", "rows": 4, "layout": layout}
    ]);
    put_numbered(&h, "g", Some(&ROUTE), coaches).await;
    // Seats 2-2B and 2-4B taken A-C: those rows are no longer whole there.
    let (status, _, _) = h
        .post_reserve(
            json!({"train_id": "g", "seat_ids": ["2-2B", "2-4B"], "from": "A", "to": "C"}),
        )
        .await;
    assert_eq!(status, 200);
    for (n, fewest) in [(3u64, 1usize), (6, 2)] {
        let (status, _, body) = h
            .post_reserve(json!({"train_id": "g", "seats": n, "together": true, "class": "second", "from": "A", "to": "D"}))
            .await;
        assert_eq!(status, 200, "{body}");
        let got = ids(&body);
        assert_eq!(got.len() as u64, n);
        let places: Vec<_> = got.iter().map(|id| place(id, layout)).collect();
        let coaches: BTreeSet<_> = places.iter().map(|p| p.0.clone()).collect();
        assert_eq!(coaches.len(), 1, "one coach: {got:?}");
        let rows: BTreeSet<u32> = places.iter().map(|p| p.1).collect();
        assert_eq!(rows_needed(n, 4), fewest);
        assert_eq!(rows.len(), fewest, "fewest rows: {got:?}");
        let (first, last) = (rows.first().copied(), rows.last().copied());
        assert_eq!(
            last.zip(first).map(|(l, f)| (l - f) as usize + 1),
            Some(rows.len()),
            "consecutive rows: {got:?}"
        );
        for row in &rows {
            let mut at: Vec<usize> = places.iter().filter(|p| p.1 == *row).map(|p| p.2).collect();
            at.sort_unstable();
            assert!(
                at.windows(2).all(|w| w[1] == w[0] + 1),
                "next to each other: {got:?}"
            );
        }
    }
    // Three went to row 1, six to rows 2 and 3: five seats of coach 2 are
    // still free A-D, but no four of them together; nothing is held or
    // changed.
    let before = h.all_keys().await;
    let (status, body) = hold(
        &h,
        "g",
        json!({"seats": 4, "together": true, "class": "second", "from": "A", "to": "D"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("not_together")),
        "{body}"
    );
    assert_eq!(h.all_keys().await, before, "a refusal changes no key");
    // The same seats apart are still there: not sold out.
    let (status, body) = hold(
        &h,
        "g",
        json!({"seats": 4, "class": "second", "from": "A", "to": "D"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_seats_exact(&h, "g").await;
}

fn rows_needed(n: u64, width: u64) -> usize {
    n.div_ceil(width) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_and_resent_calls_answer_the_same_seats() {
    let h = Harness::start().await;
    put_numbered(&h, "rp", Some(&ROUTE), coaches()).await;
    let body = json!({"train_id": "rp", "seats": 2, "class": "first", "from": "B", "to": "D"});
    let send = || async {
        let response = h
            .http
            .post(h.url("/reserve"))
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
            .await
            .expect("POST");
        let replayed = response.headers().contains_key("idempotent-replayed");
        (
            response.status().as_u16(),
            replayed,
            response.json::<Json>().await.expect("JSON"),
        )
    };
    let (status, replayed, first) = send().await;
    assert_eq!((status, replayed), (200, false), "{first}");
    let (status, replayed, again) = send().await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(
        (ids(&again), again["class"].clone()),
        (ids(&first), json!("first"))
    );
    let rid = first["reservation_id"].as_str().expect("id").to_owned();
    let (status, view) = h.get(&format!("/trains/rp/reservations/{rid}")).await;
    assert_eq!((status, ids(&view)), (200, ids(&first)), "{view}");

    // The same EVALSHA sent twice (a client library's retry after a
    // reconnect): the second run books nothing and names the same seats.
    let members = vec![
        "fixed-id".to_owned(),
        "3".into(),
        String::new(),
        "0".into(),
        String::new(),
    ];
    let mut answers = Vec::new();
    for _ in 0..2 {
        let reply = common::eval_train_script(&h.cli, RESERVE, "rp", &[], 0, 5, members.clone())
            .await
            .expect("reserve.lua")
            .into_array();
        assert_eq!(reply[0].as_i64(), Some(200));
        let extra: Json =
            serde_json::from_str(&reply[4].as_string().expect("extra")).expect("JSON");
        answers.push(ids(&extra));
    }
    assert_eq!(answers[0].len(), 3);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(assert_seats_exact(&h, "rp").await.len(), 2, "booked once");

    // An expired hold's seat is free again on exactly its legs.
    let (status, held) = hold(
        &h,
        "rp",
        json!({"seat_ids": ["8-6D"], "from": "B", "to": "D", "ttl_ms": 1000}),
    )
    .await;
    assert_eq!(status, 201, "{held}");
    let (status, _, _) = h
        .post_reserve(json!({"train_id": "rp", "seat_ids": ["8-6D"], "from": "A", "to": "B"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&h, "rp", "?from=B&to=D", "8-6D").await, "held");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state_of(&h, "rp", "?from=B&to=D", "8-6D").await != "free" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hold never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state_of(&h, "rp", "?from=A&to=B", "8-6D").await, "sold");
    // Reclaimed by the next call; its legs are free again, A-B stays sold.
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "rp", "seat_ids": ["8-6D"], "from": "B", "to": "E"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "rp", "seat_ids": ["8-6D"], "from": "A", "to": "C"}))
        .await;
    assert_eq!((status, body["error"].clone()), (409, json!("seat_taken")));
    assert_seats_exact(&h, "rp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_release_and_cancel_free_exactly_their_seats() {
    let h = Harness::start().await;
    put_numbered(&h, "cr", Some(&ROUTE), coaches()).await;
    let (status, a) = hold(
        &h,
        "cr",
        json!({"seat_ids": ["1-1A", "1-1B"], "from": "A", "to": "C"}),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    let (status, b) = hold(
        &h,
        "cr",
        json!({"seat_ids": ["1-1A"], "from": "C", "to": "E"}),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let hold_a = a["hold_id"].as_str().expect("id");
    let (status, _, confirmed) = h
        .call(
            Method::POST,
            &format!("/trains/cr/holds/{hold_a}/confirm"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, ids(&confirmed)),
        (200, vec!["1-1A".to_owned(), "1-1B".to_owned()])
    );
    assert_eq!(confirmed["class"], json!("first"));
    assert_seats_exact(&h, "cr").await;
    let hold_b = b["hold_id"].as_str().expect("id");
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/cr/holds/{hold_b}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&h, "cr", "?from=C&to=E", "1-1A").await, "free");
    assert_eq!(state_of(&h, "cr", "?from=A&to=C", "1-1A").await, "sold");
    assert_seats_exact(&h, "cr").await;
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/cr/reservations/{hold_a}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200);
    assert!(states(&h, "cr", "").await.iter().all(|(_, s)| s == "free"));
    let (status, train) = h.get("/trains/cr").await;
    assert_eq!(status, 200);
    assert_eq!(train["remaining"], json!(81), "{train}");
    assert_eq!(
        train["classes"],
        json!([
            {"class": "first", "capacity": 9, "remaining": 9},
            {"class": "second", "capacity": 72, "remaining": 72}
        ])
    );
    assert_seats_exact(&h, "cr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_counts_seats_free_end_to_end() {
    let h = Harness::start().await;
    let one = json!([{"coach": "1", "class": "second", "rows": 1, "layout": "AB"}]);
    put_numbered(&h, "fr", Some(&["A", "B", "C"]), one).await;
    // 1-1A sold A-B, 1-1B sold B-C: every leg has a free seat, but no seat
    // is free A-C.
    for (seat, from, to) in [("1-1A", "A", "B"), ("1-1B", "B", "C")] {
        let (status, _, _) = h
            .post_reserve(json!({"train_id": "fr", "seat_ids": [seat], "from": from, "to": to}))
            .await;
        assert_eq!(status, 200);
    }
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "fr", "from": "A", "to": "C"}))
        .await;
    assert_eq!(
        (status, body["error"].clone(), body["remaining"].clone()),
        (400, json!("sold_out"), json!(0)),
        "{body}"
    );
    assert_eq!(body["full_legs"], json!([]), "every leg had room: {body}");
    let (_, train) = h.get("/trains/fr").await;
    assert_eq!(train["remaining"], json!(0), "{train}");
    assert_eq!(train["legs"][0]["remaining"], json!(1), "{train}");
    let (_, train) = h.get("/trains/fr?from=A&to=B").await;
    assert_eq!(
        (
            train["remaining"].clone(),
            train["classes"][0]["remaining"].clone()
        ),
        (json!(1), json!(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_keeps_long_journeys_possible() {
    // Best fit: a short journey takes the seat already sold next to it, and
    // the empty seat stays whole for a long journey.
    let h = Harness::start().await;
    let one = json!([{"coach": "1", "class": "second", "rows": 1, "layout": "AB"}]);
    put_numbered(&h, "bf", Some(&["A", "B", "C", "D"]), one).await;
    let (status, _, first) = h
        .post_reserve(json!({"train_id": "bf", "from": "A", "to": "B"}))
        .await;
    assert_eq!(status, 200);
    let (status, _, second) = h
        .post_reserve(json!({"train_id": "bf", "from": "C", "to": "D"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&first), ids(&second), "C-D joins the seat sold A-B");
    let (status, _, long) = h
        .post_reserve(json!({"train_id": "bf", "from": "A", "to": "D"}))
        .await;
    assert_eq!(status, 200, "{long}");
    assert_seats_exact(&h, "bf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_seat_input_is_refused_and_changes_nothing() {
    let h = Harness::start().await;
    put_numbered(&h, "bad", Some(&ROUTE), coaches()).await;
    h.create_train("plain", 5).await;
    let before = h.all_keys().await;
    let coach = |c: Json| json!({"coaches": [c]});
    let puts = [
        json!({"capacity": 5, "coaches": coaches()}),
        coach(json!({"coach": "7!", "class": "second", "rows": 1, "layout": "AB"})),
        coach(json!({"coach": "7", "class": "Second", "rows": 1, "layout": "AB"})),
        json!({"coaches": [{"coach": "7", "class": "a", "rows": 1, "layout": "AB"}, {"coach": "7", "class": "a", "rows": 1, "layout": "AB"}]}),
        coach(json!({"coach": "7", "class": "a", "rows": 0, "layout": "AB"})),
        coach(json!({"coach": "7", "class": "a", "rows": 41, "layout": "AB"})),
        coach(json!({"coach": "7", "class": "a", "rows": 1, "layout": "ABA"})),
        coach(json!({"coach": "7", "class": "a", "rows": 1, "layout": "_AB"})),
        coach(json!({"coach": "7", "class": "a", "rows": 1, "layout": "AB_"})),
        coach(json!({"coach": "7", "class": "a", "rows": 1, "layout": "A__B"})),
        coach(json!({"coach": "7", "class": "a", "rows": 1, "layout": "ABCDEFGHIJK"})),
        json!({"coaches": (0..6).map(|i| json!({"coach": i.to_string(), "class": "a", "rows": 40, "layout": "ABCDEFGHIJ"})).collect::<Vec<_>>()}),
        json!({"coaches": []}),
    ];
    for body in puts {
        let (status, _, answer) = h
            .call(
                Method::PUT,
                "/trains/new",
                Some(body.clone()),
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_eq!(
            (status, answer["error"].clone()),
            (422, json!("invalid_request")),
            "{body}: {answer}"
        );
    }
    let reserves = [
        json!({"train_id": "bad", "seat_ids": ["9-1A"]}),
        json!({"train_id": "bad", "seat_ids": ["7-13A"]}),
        json!({"train_id": "bad", "seat_ids": ["7-1E"]}),
        json!({"train_id": "bad", "seat_ids": ["7-1A", "7-1A"]}),
        json!({"train_id": "bad", "seat_ids": (1..=11).map(|r| format!("7-{r}A")).collect::<Vec<_>>()}),
        json!({"train_id": "bad", "seat_ids": ["7-1A", "7-1B"], "seats": 3}),
        json!({"train_id": "bad", "seat_ids": []}),
        json!({"train_id": "bad", "seat_ids": ["7-1A"], "class": "first"}),
        json!({"train_id": "bad", "class": "sleeper"}),
        json!({"train_id": "bad", "class": "Sleeper"}),
        json!({"train_id": "bad", "seat_ids": ["7-1A"], "together": true}),
        json!({"train_id": "plain", "seat_ids": ["7-1A"]}),
        json!({"train_id": "plain", "class": "second"}),
        json!({"train_id": "plain", "together": true}),
    ];
    for body in reserves {
        let (status, _, answer) = h.post_reserve(body.clone()).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (422, json!("invalid_request")),
            "{body}: {answer}"
        );
        let mut held = body.clone();
        held.as_object_mut().map(|o| o.remove("train_id"));
        let train = body["train_id"].as_str().expect("train");
        let (status, answer) = hold(&h, train, held.clone()).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (422, json!("invalid_request")),
            "{held}: {answer}"
        );
    }
    for query in ["?class=sleeper", "?class=X", "?from=Q", "?seat=1"] {
        let (status, answer) = h.get(&format!("/trains/bad/seats{query}")).await;
        assert!(status == 422, "{query}: {status} {answer}");
    }
    let (status, answer) = h.get("/trains/plain/seats").await;
    assert_eq!(
        (status, answer["error"].clone()),
        (404, json!("no_seat_map"))
    );
    assert_eq!(h.all_keys().await, before, "bad input changed a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numbered_train_without_stations_sells_whole_seats() {
    let h = Harness::start().await;
    put_numbered(&h, "ns", None, coaches()).await;
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "ns", "seats": 4, "together": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["remaining"], json!(77), "{body}");
    assert!(body.get("from").is_none());
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "ns", "seat_ids": ids(&body)[..1].to_vec()}))
        .await;
    assert_eq!((status, body["error"].clone()), (409, json!("seat_taken")));
    let (status, _, body) = h.post_reserve(json!({"train_id": "ns", "from": "A"})).await;
    assert_eq!(
        (status, body["error"].clone()),
        (422, json!("invalid_journey"))
    );
    let (_, train) = h.get("/trains/ns").await;
    assert_eq!(
        (train["remaining"].clone(), train["sold"].clone()),
        (json!(77), json!(4)),
        "{train}"
    );
    assert_seats_exact(&h, "ns").await;
}

/// A swarm mixing everything on a train with stations; the invariants are
/// checked on atomic snapshots while it runs and at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_swarm_keeps_every_seat_leg_exact() {
    let h = Arc::new(Harness::start().await);
    let route = ["A", "B", "C", "D", "E", "F"];
    put_numbered(&h, "sw", Some(&route), coaches()).await;
    let seat_ids: Vec<String> = (1..=12)
        .flat_map(|r| ["A", "B", "C", "D"].map(|l| format!("7-{r}{l}")))
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (h, stop) = (h.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_seats_exact(&h, "sw").await;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };
    let mut tasks = Vec::new();
    for worker in 0..16u64 {
        let (h, seat_ids) = (h.clone(), seat_ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut counts = [0u32; 6];
            let mut rng = worker * 7919 + 17;
            let mut next = |n: u64| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 33) % n
            };
            for _ in 0..40 {
                let a = next(5) as usize;
                let b = a + 1 + next((5 - a) as u64) as usize;
                let (from, to) = (route[a], route[b]);
                let mut body = json!({"train_id": "sw", "from": from, "to": to});
                match next(4) {
                    0 => body["seat_ids"] = json!([seat_ids[next(48) as usize]]),
                    1 => {
                        body["seats"] = json!(2 + next(3));
                        body["together"] = json!(true);
                    }
                    2 => body["class"] = json!(["first", "second"][next(2) as usize]),
                    _ => body["seats"] = json!(1 + next(2)),
                }
                let as_hold = next(2) == 0;
                let (status, answer) = if as_hold {
                    let mut held = body.clone();
                    held.as_object_mut().map(|o| o.remove("train_id"));
                    held["ttl_ms"] = json!(if next(3) == 0 { 1000 } else { 60_000 });
                    hold(&h, "sw", held).await
                } else {
                    let (s, _, a) = h.post_reserve(body).await;
                    (s, a)
                };
                match (status, answer["error"].as_str()) {
                    (200 | 201, _) => counts[0] += 1,
                    (400, Some("sold_out")) => counts[1] += 1,
                    (409, Some("seat_taken")) => counts[2] += 1,
                    (409, Some("not_together")) => counts[3] += 1,
                    other => panic!("{other:?} {answer}"),
                }
                if status == 201 {
                    let id = answer["hold_id"].as_str().expect("id");
                    let path = format!("/trains/sw/holds/{id}");
                    match next(3) {
                        0 => {
                            let (s, _, _) = h
                                .call(Method::POST, &format!("{path}/confirm"), None, None)
                                .await;
                            assert!(s == 200 || s == 410, "confirm {s}");
                            counts[4] += 1;
                        }
                        1 => {
                            let (s, _, _) = h.call(Method::DELETE, &path, None, None).await;
                            assert!(s == 200 || s == 410, "release {s}");
                            counts[5] += 1;
                        }
                        _ => {} // left to expire, or to hold on
                    }
                } else if status == 200 && next(4) == 0 {
                    let id = answer["reservation_id"].as_str().expect("id");
                    let (s, _, _) = h
                        .call(
                            Method::DELETE,
                            &format!("/trains/sw/reservations/{id}"),
                            None,
                            None,
                        )
                        .await;
                    assert_eq!(s, 200);
                    counts[5] += 1;
                }
            }
            counts
        }));
    }
    let mut totals = [0u32; 6];
    for task in tasks {
        for (t, c) in totals.iter_mut().zip(task.await.expect("worker")) {
            *t += c;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.expect("sampler");
    let bookings = assert_seats_exact(&h, "sw").await;
    println!(
        "swarm: {} granted, {} sold out, {} seat taken, {} not together, {} confirms, {} releases and cancels; {} snapshots checked, {} bookings at the end",
        totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], samples, bookings.len()
    );
    assert!(
        totals[0] > 50 && totals[2] > 0 && samples > 3,
        "{totals:?} {samples}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_class_a_booking_still_keeps_to_one() {
    let h = Harness::start().await;
    let coaches = json!([
        {"coach": "2", "class": "second", "rows": 4, "layout": "A"},
        {"coach": "1", "class": "first", "rows": 1, "layout": "ABC"}
    ]);
    put_numbered(&h, "oc", None, coaches).await;
    let (status, _, _) = h
        .post_reserve(json!({"train_id": "oc", "seat_ids": ["2-2A"]}))
        .await;
    assert_eq!(status, 200);
    // Three free in each class: four in one booking is sold out, and
    // `remaining` says what one booking could have.
    let (status, _, body) = h.post_reserve(json!({"train_id": "oc", "seats": 4})).await;
    assert_eq!(
        (status, body["remaining"].clone()),
        (400, json!(3)),
        "{body}"
    );
    // Three together: second (listed first, as free as first) has no three
    // rows in a row free, first class has them side by side.
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "oc", "seats": 3, "together": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (ids(&body), body["class"].clone()),
        (
            vec!["1-1A".to_owned(), "1-1B".to_owned(), "1-1C".to_owned()],
            json!("first")
        )
    );
    let (status, _, body) = h
        .post_reserve(json!({"train_id": "oc", "seat_ids": ["2-1A", "1-1A"]}))
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (422, json!("invalid_request")),
        "{body}"
    );
    assert_seats_exact(&h, "oc").await;
}
