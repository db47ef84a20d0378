//! reserve_one.lua, the short script a lone plain request goes to first:
//! it must answer and write exactly what reserve.lua would, and hand every
//! other case back to reserve.lua without writing anything.
//!
//! Each case runs both scripts, called directly with the same call, on two
//! trains set up alike, and compares the replies and the trains' keys.

mod common;

use common::{eval_train_script, Harness};
use fred::types::Value;
use serde_json::Value as Json;
use train_reservation::store::scripts::{RESERVE, RESERVE_ONE};

/// One request's ten fields: id, seats, user, idempotency record (its KEYS
/// index, 15 with one train and no followed call; 0 for none), fingerprint,
/// from, to, class, seat ids, together.
fn member(id: &str, seats: &str, user: &str, record: &str, from: &str) -> Vec<String> {
    [id, seats, user, record, "fp", from, "", "", "", ""]
        .map(String::from)
        .to_vec()
}

/// (status, id, n, replayed, extra) of a one-request reply.
fn reply(v: &Value) -> (i64, String, i64, i64, String) {
    let Value::Array(items) = v else {
        panic!("unexpected reply {v:?}")
    };
    (
        items[0].as_i64().expect("status"),
        items[1].as_string().unwrap_or_default(),
        items[2].as_i64().expect("n"),
        items[3].as_i64().expect("replayed"),
        items[4].as_string().unwrap_or_default(),
    )
}

/// What a train's keys say after a call, comparable across two trains: the
/// counters, the lock, the records without their clock, the users, whether
/// the call's key is kept, and the idempotency record decoded.
async fn state(h: &Harness, train: &str) -> String {
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
    let idem = h
        .cmd("GET", vec![format!("train:{{{train}}}:idem:k")])
        .await
        .as_string()
        .map(|raw| serde_json::from_str::<Json>(&raw).expect("record JSON"));
    format!(
        "stock {:?} sold {:?} held {:?} lock {:?} records {records:?} users {:?} call key {:?} idem {idem:?}",
        keys.stock,
        keys.sold,
        keys.held,
        keys.lock,
        keys.users,
        call_key.as_i64()
    )
}

/// How a case's train starts: none, or `seats` seats and then each
/// (command, key of the train, arguments) run on it.
type Setup<'a> = Option<(u64, &'a [(&'static str, &'a str, &'a [&'a str])])>;

/// Runs `fields` through both scripts, on `full-NAME` and `one-NAME`, each
/// first set up as `setup` says; asserts both answered and wrote alike;
/// returns the answer.
async fn both(
    h: &Harness,
    name: &str,
    limit: u64,
    fields: Vec<String>,
    setup: Setup<'_>,
) -> (i64, String, i64, i64, String) {
    let idem: &[&str] = if fields[3] == "0" { &[] } else { &["k"] };
    let mut answers = Vec::new();
    for (script, train) in [
        (RESERVE, format!("full-{name}")),
        (RESERVE_ONE, format!("one-{name}")),
    ] {
        if let Some((seats, commands)) = setup {
            h.create_train(&train, seats).await;
            for (command, key, args) in commands {
                let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                args.insert(0, format!("train:{{{train}}}:{key}"));
                h.cmd(command, args).await;
            }
        }
        let answer = eval_train_script(&h.cli, script, &train, idem, limit, 10, fields.clone())
            .await
            .expect("script");
        let mut answer = reply(&answer);
        if answer.0 == 429 {
            // The ms until the lock frees: read at two moments, so alike
            // only within the lock's PX.
            assert!((1..=5000).contains(&answer.2), "{name}: {answer:?}");
            answer.2 = 0;
        }
        answers.push((answer, state(h, &train).await));
    }
    assert_eq!(
        answers[0], answers[1],
        "{name}: reserve.lua, then reserve_one.lua"
    );
    answers[0].0.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_plain_request_is_decided_as_reserve_lua_decides_it() {
    let h = Harness::start().await;
    let plain = |id, seats| member(id, seats, "", "0", "");

    // A booking, anonymous, on a fresh train (its records a hash table).
    let booked = both(&h, "book", 0, plain("r1", "2"), Some((3, &[]))).await;
    assert_eq!(booked, (200, "r1".into(), 1, 0, String::new()));
    // With a user and the per-user limit (4), who has 3 seats: up to the
    // limit, and over it.
    let has_three = Some((10, &[("HSET", "users", &["ann", "3"][..])][..]));
    let ann = |id, seats| member(id, seats, r#""ann""#, "0", "");
    let within = both(&h, "within", 4, ann("r2", "1"), has_three).await;
    assert_eq!(within, (200, "r2".into(), 9, 0, String::new()));
    let refused = both(&h, "over", 4, ann("r3", "2"), has_three).await;
    assert_eq!(refused, (409, "r3".into(), 3, 0, String::new()));
    // Sold out: the seats left, and nothing stored.
    let sold_out = both(&h, "out", 0, plain("r4", "2"), Some((1, &[]))).await;
    assert_eq!(sold_out, (400, "r4".into(), 1, 0, String::new()));
    // A lock someone else holds.
    let locked = Some((5, &[("SET", "lock", &["theirs", "PX", "5000"][..])][..]));
    let busy = both(&h, "locked", 0, plain("r5", "1"), locked).await;
    assert_eq!(busy, (429, "r5".into(), 0, 0, String::new()));
    // No such train.
    let none = both(&h, "none", 0, plain("r6", "1"), None).await;
    assert_eq!(none, (404, "r6".into(), 0, 0, String::new()));
    // A first request with an Idempotency-Key: its decision stored.
    let keyed = member("r7", "1", r#""bo""#, "15", "");
    let keyed = both(&h, "keyed", 0, keyed, Some((2, &[]))).await;
    assert_eq!(keyed, (200, "r7".into(), 1, 0, String::new()));
    // On a train that already has records (no wide field added this time).
    let record = r#"{"user_id":null,"seats":1,"created_at_ms":1}"#;
    let sold_one = [
        ("SET", "stock", &["4"][..]),
        ("SET", "sold", &["1"][..]),
        ("HSET", "reservations", &["r0", record][..]),
    ];
    let second = both(&h, "second", 0, plain("r8", "1"), Some((5, &sold_one))).await;
    assert_eq!(second, (200, "r8".into(), 3, 0, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_is_handed_back_untouched() {
    let h = Harness::start().await;
    // What makes each case reserve.lua's: a key set on the train (name,
    // value), or the request's idempotency record and `from`.
    let cases = [
        ("stations", "legs", r#"{"stations":["A","B"]}"#, "0", ""),
        ("held", "held", "2", "0", ""),
        ("broken", "stock", "x", "0", ""),
        ("resent", "call:test-token", "1", "0", ""),
        ("replay", "idem:k", r#"{"status":200}"#, "15", ""),
        ("journey", "capacity", "9", "0", "A"),
    ];
    for (name, key, value, record, from) in cases {
        let train = format!("back-{name}");
        h.create_train(&train, 9).await;
        h.cmd(
            "SET",
            vec![format!("train:{{{train}}}:{key}"), value.into()],
        )
        .await;
        let before = h.all_keys().await;
        let id = format!("id-{name}");
        let idem: &[&str] = if record == "0" { &[] } else { &["k"] };
        let fields = member(&id, "1", "", record, from);
        let answer = eval_train_script(&h.cli, RESERVE_ONE, &train, idem, 0, 10, fields)
            .await
            .expect("script");
        assert_eq!(reply(&answer), (0, id, 0, 0, String::new()), "{name}");
        assert_eq!(before, h.all_keys().await, "{name}: nothing written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_train_that_handed_back_goes_straight_to_reserve_lua_for_a_while() {
    // A train with seats held is reserve.lua's (it reclaims expired holds):
    // its first lone request costs a hand-back, the next ones do not.
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
        (calls("reserve_one").await, calls("reserve").await),
        (Some(1), Some(3)),
        "one hand-back, then reserve.lua alone"
    );
    h.train("held").await.assert_invariants();
}
