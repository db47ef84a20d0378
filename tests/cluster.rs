//! The service on a real Redis Cluster (three primaries started by the test):
//! the last-seat and many-seat races on fifty trains whose keys land on every
//! primary, `SCRIPT FLUSH` of one primary under load, holds and confirms, and
//! a `/readyz` that looks at every primary, not only the one its own script
//! call reaches.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use common::{cluster::Cluster, Harness, Load};
use reqwest::Method;
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;

fn stock_key(train: &str) -> String {
    format!("train:{{{train}}}:stock")
}

/// `count` trains named `prefix-N`, checked to land on all three primaries.
fn trains_on_every_primary(cluster: &Cluster, prefix: &str, count: usize) -> Vec<String> {
    let trains: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let keys: Vec<String> = trains.iter().map(|t| stock_key(t)).collect();
    let owners: BTreeSet<u16> = cluster.primaries_of(&keys).into_iter().collect();
    let primaries: BTreeSet<u16> = cluster.primaries().into_iter().collect();
    assert_eq!(primaries.len(), 3, "three primaries");
    assert_eq!(owners, primaries, "the trains' keys land on every primary");
    trains
}

/// POSTs every `(path, body)` at once; answers with the index of each request.
async fn swarm(h: &Harness, requests: Vec<(String, Json)>) -> Vec<(usize, u16, Json)> {
    let mut tasks = JoinSet::new();
    for (i, (path, body)) in requests.into_iter().enumerate() {
        let (http, url) = (h.http.clone(), h.url(&path));
        tasks.spawn(async move {
            let response = http.post(url).json(&body).send().await.expect("POST");
            let (status, _, json) = common::parts(response).await;
            (i, status, json)
        });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        results.push(result.expect("request task"));
    }
    results.sort_by_key(|(i, _, _)| *i);
    results
}

/// `buyers` requests for each train, interleaved, each asking `seats`.
fn reserve_each(trains: &[String], buyers: usize, seats: u64) -> Vec<(String, Json)> {
    (0..buyers)
        .flat_map(|_| trains.iter())
        .map(|t| {
            (
                "/reserve".to_owned(),
                json!({"train_id": t, "seats": seats}),
            )
        })
        .collect()
}

/// One train's answers: the reservation ids answered 200, and the others.
type Outcome = (BTreeSet<String>, Vec<(u16, Json)>);

/// Each train's answers (request `i` was for `trains[i % trains.len()]`).
fn by_train(
    trains: &[String],
    buyers: usize,
    results: &[(usize, u16, Json)],
) -> BTreeMap<String, Outcome> {
    let mut per: BTreeMap<String, Outcome> = BTreeMap::new();
    assert_eq!(results.len(), trains.len() * buyers);
    for (i, status, body) in results {
        let entry = per.entry(trains[i % trains.len()].clone()).or_default();
        if *status == 200 {
            let id = body["reservation_id"].as_str().expect("reservation_id");
            entry.0.insert(id.to_owned());
        } else {
            entry.1.push((*status, body.clone()));
        }
    }
    per
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_seat_sells_once_on_each_of_fifty_trains() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let trains = trains_on_every_primary(&cluster, "one", 50);
    for t in &trains {
        h.create_train(t, 1).await;
    }

    let buyers = 6;
    let results = swarm(&h, reserve_each(&trains, buyers, 1)).await;
    for (train, (won, lost)) in by_train(&trains, buyers, &results) {
        assert_eq!(won.len(), 1, "{train}: exactly one winner, not {won:?}");
        for (status, body) in &lost {
            assert_eq!(
                (*status, body["error"].clone(), body["remaining"].clone()),
                (400, json!("sold_out"), json!(0)),
                "{train}"
            );
        }
        let stored = h.train(&train).await;
        assert_eq!((stored.stock, stored.sold), (Some(0), Some(1)), "{train}");
        assert_eq!(stored.lock, None, "{train}: no lock left behind");
        let ids: BTreeSet<String> = stored.reservations.keys().cloned().collect();
        assert_eq!(ids, won, "{train}: the winner's reservation is stored");
        stored.assert_invariants();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_seats_never_oversell_on_fifty_trains() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let trains = trains_on_every_primary(&cluster, "many", 50);
    for t in &trains {
        h.create_train(t, 7).await;
    }

    // 8 buyers of 2 seats each on 7 seats: 3 win, 1 seat stays.
    let buyers = 8;
    let results = swarm(&h, reserve_each(&trains, buyers, 2)).await;
    for (train, (won, lost)) in by_train(&trains, buyers, &results) {
        assert_eq!(won.len(), 3, "{train}: 3 x 2 seats fit in 7: {won:?}");
        for (status, body) in &lost {
            assert_eq!((*status, body["error"].clone()), (400, json!("sold_out")));
            assert!(body["remaining"].as_i64().is_some_and(|r| r < 2), "{body}");
        }
        let stored = h.train(&train).await;
        assert_eq!((stored.stock, stored.sold), (Some(1), Some(6)), "{train}");
        assert_eq!(stored.lock, None, "{train}");
        let ids: BTreeSet<String> = stored.reservations.keys().cloned().collect();
        assert_eq!(ids, won, "{train}: every 200 is stored, nothing else");
        stored.assert_invariants();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_on_one_primary_under_load_fails_no_request() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let trains = trains_on_every_primary(&cluster, "fl", 12);
    for t in &trains {
        h.create_train(t, 1_000_000).await;
    }
    let flushed = cluster.primary_of(&stock_key(&trains[0]));
    let targets = trains
        .iter()
        .map(|t| (h.url("/reserve"), json!({"train_id": t})))
        .collect();
    let load = Load::start_over(&h.http, targets, 12, 2_000);
    for round in 1..=5 {
        load.wait_for("answers", Load::completed, round * 150).await;
        assert_eq!(cluster.cli(flushed, &["SCRIPT", "FLUSH"]), "OK");
    }
    load.wait_for("answers", Load::completed, 6 * 150).await;
    let results = load.finish().await;
    let counts = common::statuses(&results);
    eprintln!("SCRIPT FLUSH x5 on one primary under load: {counts:?}");
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        vec![&200],
        "every answer a 200: {counts:?}"
    );
    let stats = cluster.cli(flushed, &["INFO", "errorstats"]);
    assert!(
        stats.contains("errorstat_NOSCRIPT"),
        "the flushed primary did answer NOSCRIPT: {stats}"
    );

    let mut sold_per_train: BTreeMap<String, i64> = BTreeMap::new();
    for (_, body) in &results {
        let train = body["train_id"].as_str().expect("train_id").to_owned();
        *sold_per_train.entry(train).or_default() += 1;
    }
    for t in &trains {
        let stored = h.train(t).await;
        stored.assert_invariants();
        assert_eq!(stored.sold.unwrap_or(0), sold_per_train[t], "{t}");
        assert_eq!(stored.lock, None, "{t}");
    }
}

/// Holds on one train: 16 one-seat holds race for 10 seats, 5 are confirmed
/// (one twice), 3 released, 2 stay held. Returns the train and its ten hold
/// ids: confirmed `[..5]`, released `[5..8]`, still held `[8..]`.
async fn hold_and_confirm(
    http: reqwest::Client,
    base: String,
    train: String,
) -> (String, Vec<String>) {
    let holds = format!("{base}/trains/{train}/holds");
    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let (http, url) = (http.clone(), holds.clone());
        let body = json!({"user_id": format!("u{i}"), "ttl_ms": 600_000});
        tasks.spawn(async move {
            let response = http.post(url).json(&body).send().await.expect("POST");
            common::parts(response).await
        });
    }
    let mut held = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, _, body) = result.expect("task");
        match status {
            201 => held.push(body["hold_id"].as_str().expect("hold_id").to_owned()),
            400 => assert_eq!(body["error"], "sold_out", "{train}"),
            other => panic!("{train}: hold answered {other}: {body}"),
        }
    }
    assert_eq!(held.len(), 10, "{train}: 10 holds for 10 seats");

    let mut confirms = JoinSet::new();
    for hold in held.iter().take(5) {
        let (http, url) = (http.clone(), format!("{holds}/{hold}/confirm"));
        confirms
            .spawn(async move { common::parts(http.post(url).send().await.expect("POST")).await });
    }
    while let Some(result) = confirms.join_next().await {
        let (status, _, body) = result.expect("task");
        assert_eq!(status, 200, "{train}: confirm: {body}");
    }
    let again = http
        .post(format!("{holds}/{}/confirm", held[0]))
        .send()
        .await
        .expect("POST");
    let (status, headers, _) = common::parts(again).await;
    assert_eq!(status, 200, "{train}: confirming again");
    assert_eq!(headers["idempotent-replayed"], "true");
    for hold in &held[5..8] {
        let response = http
            .request(Method::DELETE, format!("{holds}/{hold}"))
            .send()
            .await
            .expect("DELETE");
        let (status, _, body) = common::parts(response).await;
        assert_eq!(status, 200, "{train}: release: {body}");
    }
    (train, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_confirms_on_trains_of_every_primary() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let trains = trains_on_every_primary(&cluster, "hc", 9);
    for t in &trains {
        h.create_train(t, 10).await;
    }
    let mut tasks = JoinSet::new();
    for t in &trains {
        tasks.spawn(hold_and_confirm(h.http.clone(), h.url(""), t.clone()));
    }
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (train, ids) = result.expect("train task");
        held.insert(train, ids);
    }
    for t in &trains {
        let stored = h.train(t).await;
        assert_eq!(
            (stored.stock, stored.sold, stored.held),
            (Some(3), Some(5), Some(2)),
            "{t}"
        );
        assert_eq!(stored.lock, None, "{t}");
        stored.assert_invariants();
        let ids: HashSet<&String> = stored
            .reservations
            .keys()
            .chain(stored.holds.keys())
            .collect();
        let mine = &held[t];
        let expected: HashSet<&String> = mine[..5].iter().chain(&mine[8..]).collect();
        assert_eq!(ids, expected, "{t}: confirmed and kept holds are stored");
        let (status, view) = h.get(&format!("/trains/{t}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            (
                view["remaining"].clone(),
                view["held"].clone(),
                view["sold"].clone()
            ),
            (json!(3), json!(2), json!(5))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_checks_and_reloads_every_primary() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |c| c.request_timeout_ms = 300).await;
    let sha = fred::util::sha1_hash(train_reservation::store::scripts::RESERVE);
    // A primary other than the one holding the default train (which the
    // readiness script call reaches anyway).
    let own = cluster.primary_of(&stock_key("default"));
    let other = cluster
        .primaries()
        .into_iter()
        .find(|p| *p != own)
        .expect("another primary");
    assert_eq!(cluster.cli(other, &["SCRIPT", "EXISTS", &sha]), "1");

    assert_eq!(cluster.cli(other, &["SCRIPT", "FLUSH"]), "OK");
    assert_eq!(cluster.cli(other, &["SCRIPT", "EXISTS", &sha]), "0");
    assert_eq!(h.get("/readyz").await.0, 200);
    assert_eq!(
        cluster.cli(other, &["SCRIPT", "EXISTS", &sha]),
        "1",
        "/readyz loaded the scripts again on the flushed primary"
    );

    // A primary that does not answer: not ready, until it answers again.
    let pid = cluster.pid(other).expect("pid") as libc::pid_t;
    // SAFETY: kill(2) on a redis-server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let (status, body) = h.get("/readyz").await;
    // SAFETY: as above; resumed before any assertion can fail.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
    cluster.wait_healthy();
    h.wait_ready().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_sell_per_leg_on_trains_of_every_primary() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let trains = trains_on_every_primary(&cluster, "leg", 12);
    for train in &trains {
        let (status, _, body) = h
            .call(
                Method::PUT,
                &format!("/trains/{train}"),
                Some(json!({"capacity": 2, "stations": ["A", "B", "C"]})),
                Some(common::ADMIN_TOKEN),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // On each train: four A->B and four B->C for two seats a leg, at once.
    let mut requests = Vec::new();
    for train in &trains {
        for (from, to) in [("A", "B"), ("B", "C")].repeat(4) {
            requests.push((
                "/reserve".to_owned(),
                json!({"train_id": train, "from": from, "to": to}),
            ));
        }
    }
    let answers = swarm(&h, requests).await;
    let mut sold: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, status, body) in &answers {
        assert!(matches!(status, 200 | 400), "{status} {body}");
        if *status == 200 {
            let leg = (
                body["train_id"].as_str().unwrap_or("").to_owned(),
                body["from"].to_string(),
            );
            *sold.entry(leg).or_default() += 1;
        }
    }
    assert_eq!(
        sold.len(),
        2 * trains.len(),
        "both legs of every train sold"
    );
    assert!(
        sold.values().all(|n| *n == 2),
        "exactly the two seats of each leg: {sold:?}"
    );
    for train in &trains {
        let (_, view) = h.get(&format!("/trains/{train}")).await;
        assert_eq!(
            (view["remaining"].clone(), view["sold"].clone()),
            (json!(0), json!(4)),
            "{view}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_seats_sell_once_per_leg_on_trains_of_every_primary() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let trains = trains_on_every_primary(&cluster, "seat", 12);
    let coaches = json!([{"coach": "1", "class": "second", "rows": 2, "layout": "AB_CD"}]);
    for train in &trains {
        common::seats::put_numbered(&h, train, Some(&["A", "B", "C"]), coaches.clone()).await;
    }
    // On each train at once: six buyers for seat 1-1A from B to C, and on
    // A-B (which they leave alone) two groups of three together and a hold.
    let mut requests = Vec::new();
    for train in &trains {
        for _ in 0..6 {
            requests.push((
                "/reserve".to_owned(),
                json!({"train_id": train, "seat_ids": ["1-1A"], "from": "B", "to": "C"}),
            ));
        }
        for _ in 0..2 {
            requests.push((
                "/reserve".to_owned(),
                json!({"train_id": train, "seats": 3, "together": true, "from": "A", "to": "B"}),
            ));
        }
        requests.push((
            format!("/trains/{train}/holds"),
            json!({"seats": 1, "from": "A", "to": "B"}),
        ));
    }
    let answers = swarm(&h, requests).await;
    let mut first_seat: BTreeMap<String, usize> = BTreeMap::new();
    for (_, status, body) in &answers {
        assert!(matches!(status, 200 | 201 | 400 | 409), "{status} {body}");
        if *status == 200 && body["seat_ids"] == json!(["1-1A"]) {
            *first_seat.entry(body["train_id"].to_string()).or_default() += 1;
        }
    }
    assert_eq!(
        first_seat.len(),
        trains.len(),
        "1-1A sold on every train: {answers:?}"
    );
    assert!(
        first_seat.values().all(|n| *n == 1),
        "and once: {first_seat:?}"
    );
    for train in &trains {
        common::seats::assert_seats_exact(&h, train).await;
    }
}
