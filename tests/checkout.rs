//! The whole flow under load: reservations, holds, confirms, releases and
//! cancels mixed on one small train by many connections at once, with holds
//! expiring mid-run and a per-user limit on. Afterwards the contract's
//! invariant holds exactly, every reservation a client still believes in is
//! stored (and nothing else), and no lock is left behind.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Harness;
use reqwest::Method;
use serde_json::json;
use tokio::task::JoinSet;

const WORKERS: u64 = 24;
const OPS_EACH: usize = 30;
const USERS: u64 = 8;
const LIMIT: u64 = 6;
const CAPACITY: u64 = 30;
/// A buyer's pause between steps: it stretches the run (2.4 s or more) past
/// the shortest hold's life (1 s), so holds expire while others buy.
const THINK: Duration = Duration::from_millis(80);

/// A tiny deterministic generator: each worker's run is reproducible.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// What one worker saw: (operation, status) counts, and the ids it holds.
#[derive(Default)]
struct Seen {
    counts: BTreeMap<(&'static str, u16), usize>,
    reservations: Vec<String>,
    holds: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_swarm_keeps_the_invariant_while_holds_expire() {
    let h = Harness::start_with(|c| c.max_seats_per_user = LIMIT).await;
    h.create_train("mix", CAPACITY).await;
    let base = h.url("/trains/mix");
    // Buyers who walk away: their holds expire at 1 s, while the swarm (2.4 s
    // or more) still runs, so the swarm's own calls must reclaim them.
    for _ in 0..3 {
        let body = json!({"user_id": "walked-away", "ttl_ms": 1000});
        let (status, _, _) = h
            .call(Method::POST, "/trains/mix/holds", Some(body), None)
            .await;
        assert_eq!(status, 201);
    }

    let mut tasks = JoinSet::new();
    for worker in 0..WORKERS {
        let (http, base, reserve_url) = (h.http.clone(), base.clone(), h.url("/reserve"));
        tasks.spawn(async move {
            let mut rng = Lcg(worker + 1);
            let user = format!("u{}", worker % USERS);
            let mut seen = Seen::default();
            for _ in 0..OPS_EACH {
                let seats = 1 + rng.below(2);
                let roll = rng.below(100);
                let (kind, method, url, body) = if roll < 30 {
                    let body = json!({"train_id": "mix", "user_id": user, "seats": seats});
                    ("reserve", Method::POST, reserve_url.clone(), Some(body))
                } else if roll < 60 || seen.holds.is_empty() && roll < 85 {
                    let ttl = 1000 + rng.below(600);
                    let body = json!({"user_id": user, "seats": seats, "ttl_ms": ttl});
                    ("hold", Method::POST, format!("{base}/holds"), Some(body))
                } else if roll < 75 && !seen.holds.is_empty() {
                    let hold = seen
                        .holds
                        .swap_remove(rng.below(seen.holds.len() as u64) as usize);
                    seen.reservations.push(hold.clone());
                    (
                        "confirm",
                        Method::POST,
                        format!("{base}/holds/{hold}/confirm"),
                        None,
                    )
                } else if roll < 85 && !seen.holds.is_empty() {
                    let hold = seen
                        .holds
                        .swap_remove(rng.below(seen.holds.len() as u64) as usize);
                    (
                        "release",
                        Method::DELETE,
                        format!("{base}/holds/{hold}"),
                        None,
                    )
                } else if !seen.reservations.is_empty() {
                    let at = rng.below(seen.reservations.len() as u64) as usize;
                    let id = seen.reservations.swap_remove(at);
                    (
                        "cancel",
                        Method::DELETE,
                        format!("{base}/reservations/{id}"),
                        None,
                    )
                } else {
                    continue;
                };
                let mut request = http.request(method, &url);
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await.expect("request");
                let (status, _, reply) = common::parts(response).await;
                *seen.counts.entry((kind, status)).or_default() += 1;
                match (kind, status) {
                    ("reserve", 200) => seen
                        .reservations
                        .push(reply["reservation_id"].as_str().expect("id").into()),
                    ("hold", 201) => seen
                        .holds
                        .push(reply["hold_id"].as_str().expect("id").into()),
                    // The confirm's id was moved to reservations optimistically.
                    ("confirm", 200) => {}
                    ("confirm", 410) => {
                        seen.reservations.pop();
                    }
                    ("reserve" | "hold", 400 | 409) | ("release", 200 | 410) | ("cancel", 200) => {}
                    other => panic!("unexpected {other:?}: {reply}"),
                }
                tokio::time::sleep(THINK).await;
            }
            seen
        });
    }
    let mut counts: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let mut believed = BTreeSet::new();
    let mut live_holds = BTreeSet::new();
    while let Some(seen) = tasks.join_next().await {
        let seen = seen.expect("worker");
        for (key, n) in seen.counts {
            *counts.entry(key).or_default() += n;
        }
        believed.extend(seen.reservations);
        live_holds.extend(seen.holds);
    }
    println!("operations by kind and status: {counts:?}");
    let total: usize = counts.values().sum();
    println!("total operations: {total}");

    let train = h.train("mix").await;
    train.assert_invariants();
    assert_eq!(train.lock, None, "no lock left behind");
    let stored: BTreeSet<String> = train.reservations.keys().cloned().collect();
    assert_eq!(
        stored, believed,
        "stored reservations = those answered and not cancelled"
    );
    let stored_holds: BTreeSet<String> = train.holds.keys().cloned().collect();
    assert!(
        stored_holds.is_subset(&live_holds),
        "no hold appeared from nowhere"
    );
    for (user, seats) in &train.users {
        assert!(
            *seats as u64 <= LIMIT,
            "{user} has {seats} seats, over the limit"
        );
    }
    println!(
        "final: capacity {:?} = stock {:?} + sold {:?} + held {:?}; {} reservations, {} live holds",
        train.capacity,
        train.stock,
        train.sold,
        train.held,
        stored.len(),
        stored_holds.len()
    );
    assert!(
        counts.contains_key(&("confirm", 200)),
        "the run confirmed holds: {counts:?}"
    );
    let ended = h
        .cmd(
            "ZRANGE",
            vec!["train:{mix}:ended".into(), "0".into(), "-1".into()],
        )
        .await;
    let expired = ended
        .into_array()
        .iter()
        .filter(|v| v.as_string().is_some_and(|s| s.starts_with("expired:")))
        .count();
    println!("holds reclaimed by expiry during the run: {expired}");
    assert!(expired > 0, "holds expired mid-run");

    // Once every hold has expired, any call reclaims them: then all seats
    // are stock or sold, none held.
    for _ in 0..200 {
        let (_, view) = h.get("/trains/mix").await;
        if view["held"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, _, _) = h
        .call(
            Method::POST,
            "/trains/mix/holds",
            Some(json!({"user_id": "late", "seats": 5})),
            None,
        )
        .await;
    assert!(matches!(status, 201 | 400), "{status}");
    let train = h.train("mix").await;
    train.assert_invariants();
    let late = train.holds.len();
    assert!(
        late <= 1,
        "only the late hold may be live: {:?}",
        train.holds
    );
}
