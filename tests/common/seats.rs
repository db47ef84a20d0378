//! Checking a numbered train from what redis-cli shows: one atomic snapshot
//! of its keys (a read-only script, so no call can land between two reads),
//! and the contract's invariants for numbered seats worked out from it.

use std::collections::BTreeMap;

use fred::{interfaces::ClientLike, types::Value};
use serde_json::{json, Value as Json};

use super::{Harness, ADMIN_TOKEN};

/// The coaches of the tests' trains: two classes, 4-seat rows, coach 7 with
/// a row 12.
pub fn coaches() -> Json {
    json!([
        {"coach": "1", "class": "first", "rows": 3, "layout": "A_BC"},
        {"coach": "7", "class": "second", "rows": 12, "layout": "AB_CD"},
        {"coach": "8", "class": "second", "rows": 6, "layout": "AB_CD"}
    ])
}

/// Creates a numbered train through the API.
pub async fn put_numbered(h: &Harness, id: &str, stations: Option<&[&str]>, coaches: Json) {
    let mut body = json!({"coaches": coaches});
    if let Some(stations) = stations {
        body["stations"] = json!(stations);
    }
    let (status, _, answer) = h
        .call(
            reqwest::Method::PUT,
            &format!("/trains/{id}"),
            Some(body),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

const SNAPSHOT: &str = "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), \
    redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[4]), \
    redis.call('HGETALL', KEYS[5]), redis.call('GET', KEYS[6]), redis.call('GET', KEYS[7]), \
    redis.call('GET', KEYS[8])}";

/// One booking as its record names it.
#[derive(Debug, Clone)]
pub struct Booking {
    pub id: String,
    pub hold: bool,
    pub seat_ids: Vec<String>,
    pub class: String,
    /// Legs a..b.
    pub legs: (usize, usize),
}

/// Checks every invariant of a numbered train and returns its live
/// bookings (reservations, then holds, expired but not yet reclaimed ones
/// included: their seats stay taken until a call reclaims them):
/// - no (seat, leg) pair in two bookings;
/// - the records rebuild the free runs in `seats` exactly (a seat is free
///   on a leg if and only if no booking has it there);
/// - per leg, the occupied seats equal `sold` + `held` of the leg counters;
/// - the run counts in `legs` match the runs; `stock` is the seats free
///   over the whole route; `capacity` the seats; `sold` and `held` the
///   seats of the reservations and the holds.
pub async fn assert_seats_exact(h: &Harness, train: &str) -> Vec<Booking> {
    let key = |name: &str| format!("train:{{{train}}}:{name}");
    let mut args = vec![SNAPSHOT.to_owned(), "8".to_owned()];
    for name in [
        "legs",
        "coaches",
        "seats",
        "reservations",
        "holds",
        "stock",
        "sold",
        "held",
    ] {
        args.push(key(name));
    }
    // Sent to the slot of the train's keys (on a cluster, their primary).
    let eval =
        fred::types::CustomCommand::new_static("EVAL", fred::types::ClusterHash::Offset(2), false);
    let snapshot: Result<Value, _> = h.cli.custom(eval, args).await;
    let Ok(Value::Array(v)) = snapshot else {
        panic!("snapshot: {snapshot:?}")
    };
    let text = |at: usize| v[at].as_string().unwrap_or_default();
    let legs: Json = serde_json::from_str(&text(0)).expect("legs JSON");
    let coaches: Vec<Json> = serde_json::from_str(&text(1)).expect("coaches JSON");
    let pairs = |at: usize| -> Vec<(String, String)> {
        match &v[at] {
            Value::Array(items) => items
                .chunks(2)
                .map(|p| (p[0].as_string().expect("a"), p[1].as_string().expect("b")))
                .collect(),
            Value::Null => Vec::new(),
            other => panic!("unexpected {other:?}"),
        }
    };
    let int = |at: usize| text(at).parse::<i64>().unwrap_or(0);

    // Seat order: coach, row, letter.
    let mut seats: Vec<(String, String)> = Vec::new();
    for coach in &coaches {
        for row in 1..=coach["rows"].as_u64().expect("rows") {
            for letter in coach["layout"].as_str().expect("layout").chars() {
                if letter != '_' {
                    let id = format!("{}-{row}{letter}", coach["coach"].as_str().expect("coach"));
                    seats.push((id, coach["class"].as_str().expect("class").to_owned()));
                }
            }
        }
    }
    let number: BTreeMap<&str, usize> = seats
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let stations = legs["stations"].as_array().expect("stations").len();
    let nlegs = stations.saturating_sub(1).max(1);
    let classes: Vec<String> = serde_json::from_value(legs["classes"].clone()).expect("classes");

    // The free runs: per seat, which legs are free.
    let mut free = vec![vec![false; nlegs]; seats.len()];
    let mut run_counts: BTreeMap<u64, i64> = BTreeMap::new();
    for (member, score) in pairs(2) {
        let score: u64 = score.parse::<f64>().expect("score") as u64;
        let (i, code) = ((score % 4096) as usize, score / 4096);
        let (c, s, e) = (code / 4096, (code / 64) % 64, code % 64);
        assert_eq!(
            member,
            format!("{}:{s}", seats[i].0),
            "member of run {score}"
        );
        assert_eq!(classes[c as usize], seats[i].1, "class of {member}");
        assert!(s < e && e as usize <= nlegs, "run {member} {s}..{e}");
        for k in s..e {
            assert!(
                !free[i][k as usize],
                "two runs of {} cover leg {k}",
                seats[i].0
            );
            free[i][k as usize] = true;
        }
        *run_counts.entry(code).or_default() += 1;
    }
    // Runs are maximal: two runs of a seat never touch.
    for (i, legs_free) in free.iter().enumerate() {
        let runs = legs_free.windows(2).filter(|w| w[0] != w[1]).count()
            + usize::from(legs_free[0])
            + usize::from(legs_free[nlegs - 1]);
        let members = pairs(2)
            .iter()
            .filter(|(m, _)| m.rsplit_once(':').map(|(id, _)| id) == Some(&seats[i].0))
            .count();
        assert_eq!(members * 2, runs, "runs of {} are not maximal", seats[i].0);
    }
    let counted: BTreeMap<u64, i64> = legs["runs"]
        .as_array()
        .expect("runs")
        .chunks(2)
        .map(|p| (p[0].as_u64().expect("code"), p[1].as_i64().expect("count")))
        .collect();
    assert_eq!(counted, run_counts, "run counts in legs");

    // The records, and the occupancy they rebuild.
    let mut bookings = Vec::new();
    let mut taken: Vec<Vec<Option<String>>> = vec![vec![None; nlegs]; seats.len()];
    let (mut sold_k, mut held_k) = (vec![0i64; nlegs], vec![0i64; nlegs]);
    let (mut sold, mut held) = (0i64, 0i64);
    for (at, hold) in [(3, false), (4, true)] {
        for (id, raw) in pairs(at) {
            let rec: Json = serde_json::from_str(&raw).expect("record");
            let ids: Vec<String> = serde_json::from_value(rec["seat_ids"].clone())
                .unwrap_or_else(|_| panic!("record without seat_ids: {raw}"));
            assert_eq!(rec["seats"].as_u64(), Some(ids.len() as u64), "{raw}");
            let (a, b) = match rec["stops"].as_array() {
                Some(s) => (
                    s[0].as_u64().expect("a") as usize,
                    s[1].as_u64().expect("b") as usize,
                ),
                None => (0, 1),
            };
            let class = rec["class"].as_str().expect("class").to_owned();
            let places: Vec<usize> = rec["places"]
                .as_array()
                .expect("places")
                .iter()
                .map(|p| p.as_u64().expect("place") as usize)
                .collect();
            assert_eq!(classes[places[0]], class, "{raw}");
            for (j, seat) in ids.iter().enumerate() {
                let i = number[seat.as_str()];
                assert_eq!(places[j + 1], i, "{raw}");
                assert_eq!(seats[i].1, class, "{raw}");
                for k in a..b {
                    if let Some(other) = &taken[i][k] {
                        panic!("seat {seat} leg {k}: both {other} and {id}");
                    }
                    taken[i][k] = Some(id.clone());
                    if hold {
                        held_k[k] += 1;
                    } else {
                        sold_k[k] += 1;
                    }
                }
            }
            if hold {
                held += ids.len() as i64;
            } else {
                sold += ids.len() as i64;
            }
            bookings.push(Booking {
                id,
                hold,
                seat_ids: ids,
                class,
                legs: (a, b),
            });
        }
    }
    for i in 0..seats.len() {
        for k in 0..nlegs {
            assert_eq!(
                free[i][k],
                taken[i][k].is_none(),
                "seat {} leg {k}: free in the runs = {}, booked by {:?}",
                seats[i].0,
                free[i][k],
                taken[i][k]
            );
        }
    }
    if stations >= 2 {
        for k in 0..nlegs {
            let counter = |name: &str| legs[name][k].as_i64().expect("leg counter");
            assert_eq!(
                (counter("sold"), counter("held")),
                (sold_k[k], held_k[k]),
                "leg {k}"
            );
            assert_eq!(
                counter("free"),
                seats.len() as i64 - sold_k[k] - held_k[k],
                "leg {k}"
            );
        }
    }
    let whole = free.iter().filter(|f| f.iter().all(|x| *x)).count() as i64;
    assert_eq!(int(5), whole, "stock: seats free over the whole route");
    assert_eq!((int(6), int(7)), (sold, held), "sold, held");
    bookings
}
