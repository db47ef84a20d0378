//! reserve_plain.lua, the short script a batch of plain requests goes to
//! first: it must answer and write exactly what reserve.lua would, and hand
//! every other case back to reserve.lua without writing anything.
//!
//! Each case sends both scripts the same call, directly, over two sets of
//! trains set up alike (`full-*` and `plain-*`), and compares the replies
//! and every key of the trains.

mod common;

use common::Harness;
use fred::types::Value;
use serde_json::Value as Json;
use train_reservation::store::scripts::{PLAIN_TRAIN_KEYS, RESERVE, RESERVE_PLAIN, TRAIN_KEYS};

/// One request's ten fields: id, seats, user, idempotency record (`@N`,
/// the Nth of the call, which `call` makes a KEYS index; 0 for none),
/// fingerprint, from, to, class, seat ids, together.
fn member(id: &str, seats: &str, user: &str, record: &str, from: &str) -> Vec<String> {
    [id, seats, user, record, "fp", from, "", "", "", ""]
        .map(String::from)
        .to_vec()
}
fn plain(id: &str, seats: &str) -> Vec<String> {
    member(id, seats, "", "0", "")
}

/// How one train of a case starts: none (`None`), or `seats` seats and then
/// each (command, key of the train, arguments) run on it.
type Setup<'a> = Option<(u64, &'a [(&'static str, &'a str, &'a [&'a str])])>;

/// One train of a call: its name's suffix, how it starts, its requests.
type Train<'a> = (&'a str, Setup<'a>, Vec<Vec<String>>);

/// One call of `script` over `trains` (named `{set}-{suffix}`), as the
/// service makes it (prelude.lua's layout; reserve_plain.lua's, seven keys
/// and five fields, for it), with the per-user limit `limit` and the
/// idempotency records `idem:{key}` of the first train.
async fn call(
    h: &Harness,
    script: &str,
    set: &str,
    trains: &[Train<'_>],
    idem: &[&str],
    limit: u64,
) -> Result<Value, String> {
    let name = |suffix: &str| format!("{set}-{suffix}");
    let (train_keys, width): (&[&str], usize) = if script == RESERVE_PLAIN {
        (&PLAIN_TRAIN_KEYS, 5)
    } else {
        (&TRAIN_KEYS, 10)
    };
    let mut keys: Vec<String> = Vec::new();
    let mut args = vec![
        "test-token".to_owned(),
        "3000".into(),
        "86400000".into(),
        limit.to_string(),
        "60000".into(),
        "0".into(),
    ];
    let first_record = train_keys.len() * trains.len() + 2;
    for (n, (suffix, _, members)) in trains.iter().enumerate() {
        keys.extend(
            train_keys
                .iter()
                .map(|k| format!("train:{{{}}}:{k}", name(suffix))),
        );
        args.extend([
            (train_keys.len() * n + 1).to_string(),
            members.len().to_string(),
        ]);
        for member in members {
            let mut fields = member[..width].to_vec();
            if let Some(nth) = fields[3].strip_prefix('@') {
                fields[3] = (first_record + nth.parse::<usize>().expect("@N")).to_string();
            }
            args.extend(fields);
        }
    }
    let first = name(trains[0].0);
    keys.push(format!("train:{{{first}}}:call:test-token"));
    keys.extend(idem.iter().map(|k| format!("train:{{{first}}}:idem:{k}")));
    let mut all = vec![script.to_owned(), keys.len().to_string()];
    all.extend(keys);
    all.extend(args);
    h.cmd_result("EVAL", all).await
}

/// (status, id, n, replayed, extra) of each request in a reply.
fn replies(v: &Value) -> Vec<(i64, String, i64, i64, String)> {
    let Value::Array(items) = v else {
        panic!("unexpected reply {v:?}")
    };
    items
        .chunks(5)
        .map(|r| {
            (
                r[0].as_i64().expect("status"),
                r[1].as_string().unwrap_or_default(),
                r[2].as_i64().expect("n"),
                r[3].as_i64().expect("replayed"),
                r[4].as_string().unwrap_or_default(),
            )
        })
        .collect()
}

/// What a train's keys say after a call, comparable across two trains: the
/// counters, the lock, the records without their clock, the users, whether
/// the call's key is kept, and the idempotency records decoded.
async fn state(h: &Harness, train: &str, idem: &[&str]) -> String {
    let keys = h.train(train).await;
    let mut records = keys.reservations.clone();
    for record in records.values_mut() {
        if let Json::Object(fields) = record {
            fields.remove("created_at_ms");
        }
    }
    let call_key = h
        .cmd("EXISTS", vec![format!("train:{{{train}}}:call:test-token")])
        .await;
    let mut stored = Vec::new();
    for k in idem {
        let raw = h
            .cmd("GET", vec![format!("train:{{{train}}}:idem:{k}")])
            .await;
        stored.push(
            raw.as_string()
                .map(|raw| serde_json::from_str::<Json>(&raw).expect("record JSON")),
        );
    }
    format!(
        "stock {:?} sold {:?} held {:?} lock {:?} records {records:?} users {:?} call key {:?} idem {stored:?}",
        keys.stock,
        keys.sold,
        keys.held,
        keys.lock,
        keys.users,
        call_key.as_i64()
    )
}

/// Runs one call through both scripts, each over its own set of trains set
/// up as `trains` says; asserts both answered and wrote alike; returns the
/// answers.
async fn both(
    h: &Harness,
    case: &str,
    limit: u64,
    trains: &[Train<'_>],
    idem: &[&str],
) -> Vec<(i64, String, i64, i64, String)> {
    let mut seen = Vec::new();
    for (script, set) in [
        (RESERVE, format!("full-{case}")),
        (RESERVE_PLAIN, format!("plain-{case}")),
    ] {
        for (suffix, setup, _) in trains {
            let train = format!("{set}-{suffix}");
            if let Some((seats, commands)) = setup {
                h.create_train(&train, *seats).await;
                for (command, key, args) in *commands {
                    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                    args.insert(0, format!("train:{{{train}}}:{key}"));
                    h.cmd(command, args).await;
                }
            }
        }
        let answer = call(h, script, &set, trains, idem, limit)
            .await
            .expect("script");
        let mut answers = replies(&answer);
        for answer in answers.iter_mut().filter(|a| a.0 == 429) {
            // The ms until the lock frees: read at two moments, so alike
            // only within the lock's PX.
            assert!((1..=5000).contains(&answer.2), "{case}: {answer:?}");
            answer.2 = 0;
        }
        let mut states = Vec::new();
        for (suffix, _, _) in trains {
            states.push(state(h, &format!("{set}-{suffix}"), idem).await);
        }
        seen.push((answers, states));
    }
    assert_eq!(
        seen[0], seen[1],
        "{case}: reserve.lua, then reserve_plain.lua"
    );
    seen.swap_remove(0).0
}

/// A train of `seats` seats and nothing else.
fn fresh(seats: u64) -> Setup<'static> {
    Some((seats, &[]))
}

/// A call of one request on one train.
fn lone<'a>(setup: Setup<'a>, member: Vec<String>) -> Vec<Train<'a>> {
    vec![("t", setup, vec![member])]
}

fn ok(id: &str, n: i64) -> (i64, String, i64, i64, String) {
    (200, id.into(), n, 0, String::new())
}
fn no(status: i64, id: &str, n: i64) -> (i64, String, i64, i64, String) {
    (status, id.into(), n, 0, String::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_plain_request_is_decided_as_reserve_lua_decides_it() {
    let h = Harness::start().await;

    // A booking, anonymous, on a fresh train (its records a hash table).
    let booked = both(&h, "book", 0, &lone(fresh(3), plain("r1", "2")), &[]).await;
    assert_eq!(booked, [ok("r1", 1)]);
    // With a user and the per-user limit (4), who has 3 seats: up to the
    // limit, and over it.
    let has_three: Setup = Some((10, &[("HSET", "users", &["ann", "3"][..])][..]));
    let ann = |id, seats| member(id, seats, r#""ann""#, "0", "");
    let within = both(&h, "within", 4, &lone(has_three, ann("r2", "1")), &[]).await;
    assert_eq!(within, [ok("r2", 9)]);
    let refused = both(&h, "over", 4, &lone(has_three, ann("r3", "2")), &[]).await;
    assert_eq!(refused, [no(409, "r3", 3)]);
    // Sold out: the seats left, and nothing stored.
    let sold_out = both(&h, "out", 0, &lone(fresh(1), plain("r4", "2")), &[]).await;
    assert_eq!(sold_out, [no(400, "r4", 1)]);
    // A lock someone else holds.
    let locked: Setup = Some((5, &[("SET", "lock", &["theirs", "PX", "5000"][..])][..]));
    let busy = both(&h, "locked", 0, &lone(locked, plain("r5", "1")), &[]).await;
    assert_eq!(busy, [no(429, "r5", 0)]);
    // No such train.
    let none = both(&h, "none", 0, &lone(None, plain("r6", "1")), &[]).await;
    assert_eq!(none, [no(404, "r6", 0)]);
    // A first request with an Idempotency-Key: its decision stored.
    let keyed = member("r7", "1", r#""bo""#, "@0", "");
    let keyed = both(&h, "keyed", 0, &lone(fresh(2), keyed), &["k"]).await;
    assert_eq!(keyed, [ok("r7", 1)]);
    // On a train that already has records (no wide field added this time).
    let earlier = r#"{"user_id":null,"seats":1,"created_at_ms":1}"#;
    let sold_one = [
        ("SET", "stock", &["4"][..]),
        ("SET", "sold", &["1"][..]),
        ("HSET", "reservations", &["r0", earlier][..]),
    ];
    let second = both(
        &h,
        "second",
        0,
        &lone(Some((5, &sold_one[..])), plain("r8", "1")),
        &[],
    )
    .await;
    assert_eq!(second, [ok("r8", 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_several_trains_is_decided_as_reserve_lua_decides_it() {
    let h = Harness::start().await;
    let ann = |id, seats| member(id, seats, r#""ann""#, "0", "");
    let locked = [("SET", "lock", &["theirs", "PX", "5000"][..])];
    let has_one = [("HSET", "users", &["ann", "1"][..])];
    let trains = [
        // In arrival order: two bookings, then one the seats left cannot
        // take, then one they can.
        (
            "a",
            fresh(5),
            vec![
                plain("a1", "2"),
                plain("a2", "2"),
                plain("a3", "2"),
                plain("a4", "1"),
            ],
        ),
        // No such train.
        ("b", None, vec![plain("b1", "1")]),
        // Someone else's lock: the train's requests wait, the others not.
        (
            "c",
            Some((5, &locked[..])),
            vec![plain("c1", "1"), plain("c2", "1")],
        ),
        // The per-user limit (4) counts this call's own bookings: 1 + 2,
        // then 2 more is over it; another user is not.
        (
            "d",
            Some((10, &has_one[..])),
            vec![
                ann("d1", "2"),
                ann("d2", "2"),
                member("d3", "3", r#""bo""#, "0", ""),
            ],
        ),
        // Idempotency-Keys on two requests of a train.
        (
            "e",
            fresh(3),
            vec![
                member("e1", "1", "", "@0", ""),
                member("e2", "1", "", "@1", ""),
            ],
        ),
    ];
    let answers = both(&h, "many", 4, &trains, &["k", "l"]).await;
    assert_eq!(
        answers,
        [
            ok("a1", 3),
            ok("a2", 1),
            no(400, "a3", 1),
            ok("a4", 0),
            no(404, "b1", 0),
            no(429, "c1", 0),
            no(429, "c2", 0),
            ok("d1", 8),
            no(409, "d2", 3),
            ok("d3", 5),
            ok("e1", 2),
            ok("e2", 1),
        ]
    );

    // A call that books nothing leaves nothing behind, its key included.
    let nothing = [
        ("a", fresh(1), vec![plain("x1", "2")]),
        ("b", None, vec![plain("x2", "1")]),
    ];
    let answers = both(&h, "nothing", 0, &nothing, &[]).await;
    assert_eq!(answers, [no(400, "x1", 1), no(404, "x2", 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_is_handed_back_untouched() {
    let h = Harness::start().await;
    // What makes each case reserve.lua's: a key set on the second of two
    // trains (name, value), or the request's idempotency record; and
    // whether the hand-back names that train (n = 1 for its requests).
    let cases = [
        ("stations", "legs", r#"{"stations":["A","B"]}"#, "0", 1),
        ("held", "held", "2", "0", 1),
        ("broken", "stock", "x", "0", 1),
        ("resent", "call:test-token", "1", "0", 0),
        ("replay", "idem:k", r#"{"status":200}"#, "@0", 0),
    ];
    for (case, key, value, record, named) in cases {
        let set = format!("back-{case}");
        let (first, second) = (format!("{set}-one"), format!("{set}-two"));
        h.create_train(&first, 9).await;
        h.create_train(&second, 9).await;
        // The call's key and the idempotency records are the first train's.
        let on = if key.starts_with("call") || key.starts_with("idem") {
            &first
        } else {
            &second
        };
        h.cmd("SET", vec![format!("train:{{{on}}}:{key}"), value.into()])
            .await;
        let before = h.all_keys().await;
        let idem: &[&str] = if record == "0" { &[] } else { &["k"] };
        let trains = [
            ("one", None, vec![plain("first", "1")]),
            ("two", None, vec![member("second", "1", "", record, "")]),
        ];
        let answer = call(&h, RESERVE_PLAIN, &set, &trains, idem, 0)
            .await
            .expect("script");
        assert_eq!(
            replies(&answer),
            [
                (0, "first".into(), 0, 0, String::new()),
                (0, "second".into(), named, 0, String::new())
            ],
            "{case}"
        );
        assert_eq!(before, h.all_keys().await, "{case}: nothing written");
    }
    // The same Idempotency-Key on two requests of one call: reserve.lua's
    // (the second replays the first's answer).
    h.create_train("back-twice-one", 9).await;
    let before = h.all_keys().await;
    let trains = [(
        "one",
        None,
        vec![
            member("a", "1", "", "@0", ""),
            member("b", "1", "", "@0", ""),
        ],
    )];
    let answer = call(&h, RESERVE_PLAIN, "back-twice", &trains, &["k"], 0)
        .await
        .expect("script");
    assert!(replies(&answer).iter().all(|r| r.0 == 0), "{answer:?}");
    assert_eq!(before, h.all_keys().await, "twice: nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_train_that_handed_back_goes_straight_to_reserve_lua_for_a_while() {
    // A train with seats held is reserve.lua's (it reclaims expired holds):
    // its first request costs a hand-back, the next ones do not.
    let h = Harness::start().await;
    h.create_train("held", 10).await;
    let (status, _, hold) = h
        .call(
            reqwest::Method::POST,
            "/trains/held/holds",
            Some(serde_json::json!({"seats": 2})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    for remaining in [7, 6, 5] {
        let (status, _, body) = h
            .post_reserve(serde_json::json!({"train_id": "held"}))
            .await;
        assert_eq!((status, body["remaining"].clone()), (200, remaining.into()));
    }
    let calls = |script| h.script_calls(script);
    assert_eq!(
        (calls("reserve_plain").await, calls("reserve").await),
        (Some(1), Some(3)),
        "one hand-back, then reserve.lua alone"
    );
    h.train("held").await.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_names_stations_or_seats_never_takes_the_short_script() {
    // reserve_plain.lua does not see stations or seats (it takes five
    // fields a request), so the service must not send it such a request:
    // on a train without stations or numbered seats, reserve.lua refuses
    // them, where the short script would book the seats.
    let h = Harness::start().await;
    h.create_train("plain", 10).await;
    for body in [
        serde_json::json!({"train_id": "plain", "from": "A", "to": "B"}),
        serde_json::json!({"train_id": "plain", "seat_ids": ["1A"]}),
        serde_json::json!({"train_id": "plain", "class": "first"}),
    ] {
        let (status, _, answer) = h.post_reserve(body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
    }
    assert_eq!(h.train("plain").await.stock, Some(10));
    assert_eq!(h.script_calls("reserve_plain").await.unwrap_or(0), 0);
}
