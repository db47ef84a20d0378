//! Group commit: concurrent requests share one script call, and every
//! per-request guarantee holds inside a batch (arrival order, the lock,
//! idempotency, nothing written when a batch is refused).

mod common;

use common::Harness;
use fred::types::Value;
use serde_json::json;
use train_reservation::store::scripts::{RESERVE, TRAIN_KEYS};

/// One reservation as `reserve.lua` takes it: id, seats, user ('' or a JSON string),
/// idempotency record index (0 = none), fingerprint.
type Member<'a> = (&'a str, u8, &'a str, usize, &'a str);

/// The KEYS index of a one-train call's first idempotency record (after the
/// train's keys and the call's own key).
const FIRST_RECORD: usize = TRAIN_KEYS.len() + 2;

/// Calls reserve.lua directly with a batch for one train (its idempotency
/// records named by `idem_keys`); returns (status, n, replayed) each.
async fn call(
    h: &Harness,
    train: &str,
    idem_keys: &[&str],
    members: &[Member<'_>],
) -> Result<Vec<(i64, i64, i64)>, String> {
    call_trains(h, &[(train, members.to_vec())], idem_keys).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_script_call() {
    let h = Harness::start().await;
    h.create_train("shared", 100).await;
    h.cmd("CONFIG", vec!["RESETSTAT".into()]).await;
    // Hold writes in Redis for a second: the first request's call waits there,
    // and the others queue up behind it in the service.
    h.cmd(
        "CLIENT",
        vec!["PAUSE".into(), "1000".into(), "WRITE".into()],
    )
    .await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (http, url) = (h.http.clone(), h.url("/reserve"));
        requests.spawn(async move {
            let r = http
                .post(url)
                .json(&json!({"train_id": "shared"}))
                .send()
                .await
                .expect("POST");
            common::parts(r).await
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(result) = requests.join_next().await {
        let (status, _, body) = result.expect("task");
        assert_eq!(status, 200, "{body}");
        ids.insert(body["reservation_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), 30, "each request its own reservation");

    let calls = script_calls(&h).await;
    eprintln!("30 concurrent reservations took {calls} script calls");
    assert!(
        (2..30).contains(&calls),
        "requests shared calls: {calls} calls for 30"
    );
    let train = h.train("shared").await;
    assert_eq!((train.stock, train.sold), (Some(70), Some(30)));
    train.assert_invariants();
}

/// Script calls Redis has run since the last CONFIG RESETSTAT.
async fn script_calls(h: &Harness) -> u64 {
    let stats = h
        .cmd("INFO", vec!["commandstats".into()])
        .await
        .as_string()
        .unwrap_or_default();
    stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Fires the requests at once while Redis holds writes for a second, so all
/// but the first queue behind it; returns the answers and the script calls.
async fn while_paused(
    h: &Harness,
    requests: Vec<(String, Option<serde_json::Value>)>,
) -> (Vec<(u16, serde_json::Value)>, u64) {
    h.cmd("CONFIG", vec!["RESETSTAT".into()]).await;
    h.cmd(
        "CLIENT",
        vec!["PAUSE".into(), "1000".into(), "WRITE".into()],
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for (path, body) in requests {
        let (http, url) = (h.http.clone(), h.url(&path));
        tasks.spawn(async move {
            let mut request = http.post(url);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let (status, _, body) = common::parts(request.send().await.expect("POST")).await;
            (status, body)
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("task"));
    }
    (answers, script_calls(h).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_confirms_share_script_calls_too() {
    let h = Harness::start().await;
    h.create_train("hq", 100).await;
    let holds = (0..30)
        .map(|_| {
            (
                "/trains/hq/holds".to_owned(),
                Some(json!({"ttl_ms": 60000})),
            )
        })
        .collect();
    let (answers, calls) = while_paused(&h, holds).await;
    eprintln!("30 concurrent holds took {calls} script calls");
    assert!(
        (2..30).contains(&calls),
        "holds shared calls: {calls} calls for 30"
    );
    let ids: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["hold_id"].as_str().expect("id").to_owned()
        })
        .collect();

    let confirms = ids
        .iter()
        .map(|id| (format!("/trains/hq/holds/{id}/confirm"), None))
        .collect();
    let (answers, calls) = while_paused(&h, confirms).await;
    eprintln!("30 concurrent confirms took {calls} script calls");
    assert!(
        (2..30).contains(&calls),
        "confirms shared calls: {calls} calls for 30"
    );
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let train = h.train("hq").await;
    assert_eq!(
        (train.stock, train.sold, train.held),
        (Some(70), Some(30), Some(0))
    );
    train.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_decides_in_arrival_order() {
    let h = Harness::start().await;
    h.create_train("order", 3).await;
    let batch = [
        ("a", 2, "", 0, ""),
        ("b", 2, "", 0, ""),
        ("c", 1, "", 0, ""),
    ];
    let replies = call(&h, "order", &[], &batch).await.expect("script");
    assert_eq!(replies, vec![(200, 1, 0), (400, 1, 0), (200, 0, 0)]);
    let train = h.train("order").await;
    assert_eq!(
        train.reservations.keys().collect::<Vec<_>>(),
        vec!["a", "c"]
    );
    train.assert_invariants();
    assert_eq!(train.lock, None);

    // The same batch again (a client library's retry): nothing booked twice.
    let again = call(&h, "order", &[], &batch).await.expect("script");
    assert_eq!(again, vec![(200, 0, 0), (400, 0, 0), (200, 0, 0)]);
    assert_eq!(h.train("order").await.sold, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_lock_refuses_the_whole_batch() {
    let h = Harness::start().await;
    h.create_train("locked", 5).await;
    h.cmd(
        "SET",
        vec![
            "train:{locked}:lock".into(),
            "op".into(),
            "PX".into(),
            "5000".into(),
        ],
    )
    .await;
    let before = h.all_keys().await;
    let replies = call(
        &h,
        "locked",
        &["k"],
        &[("a", 1, "", 0, ""), ("b", 1, "", FIRST_RECORD, "fp")],
    )
    .await
    .expect("script");
    assert!(
        replies
            .iter()
            .all(|(s, ms, _)| *s == 429 && (1..=5000).contains(ms)),
        "{replies:?}"
    );
    assert_eq!(
        before,
        h.all_keys().await,
        "a 429 stores nothing, not even an idempotency record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_twice_in_a_batch_books_once() {
    let h = Harness::start().await;
    h.create_train("dup", 5).await;
    let replies = call(
        &h,
        "dup",
        &["k"],
        &[
            ("a", 2, r#""u""#, FIRST_RECORD, "fp"),
            ("b", 2, r#""u""#, FIRST_RECORD, "fp"),
            ("c", 1, r#""u""#, FIRST_RECORD, "other"),
        ],
    )
    .await
    .expect("script");
    assert_eq!(replies, vec![(200, 3, 0), (200, 3, 1), (422, 0, 0)]);
    let train = h.train("dup").await;
    assert_eq!((train.sold, train.reservations.len()), (Some(2), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_member_fails_the_batch_before_any_write() {
    let h = Harness::start().await;
    h.create_train("bad", 5).await;
    let before = h.all_keys().await;
    for members in [
        vec![("a", 1, "", 0, ""), ("b", 11, "", 0, "")], // seats out of range
        vec![("a", 1, "", 0, ""), ("", 1, "", 0, "")],   // empty id
        vec![("a", 1, "", 0, ""), ("b", 1, "", 15, "")], // record index out of KEYS
        vec![("a", 1, "", 0, ""), ("b", 1, "bob", 0, "")], // user id not JSON
    ] {
        let result = call(&h, "bad", &[], &members).await;
        assert!(result.is_err(), "{members:?} must be refused: {result:?}");
        assert_eq!(before, h.all_keys().await, "{members:?} wrote something");
    }
    // A key of the wrong type is found before the first write, too.
    h.cmd(
        "HSET",
        vec!["train:{bad}:idem:k".into(), "f".into(), "v".into()],
    )
    .await;
    let before = h.all_keys().await;
    let result = call(
        &h,
        "bad",
        &["k"],
        &[("a", 1, "", 0, ""), ("b", 1, "", FIRST_RECORD, "fp")],
    )
    .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        before,
        h.all_keys().await,
        "no lock, no booking left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_typed_reservations_key_leaves_no_record_of_a_booking() {
    // A first run does not read `reservations` (it looks up no ids), so an
    // operator's string there is found at the booking's HSET: the call
    // fails, and no idempotency record claims the seats it did not book.
    let h = Harness::start().await;
    h.create_train("typo", 5).await;
    h.cmd(
        "SET",
        vec!["train:{typo}:reservations".into(), "oops".into()],
    )
    .await;
    let result = call(&h, "typo", &["k"], &[("a", 1, "", FIRST_RECORD, "fp")]).await;
    assert!(result.is_err(), "{result:?}");
    let counters = h
        .cmd(
            "MGET",
            vec!["train:{typo}:stock".into(), "train:{typo}:sold".into()],
        )
        .await;
    let Value::Array(counters) = counters else {
        panic!("unexpected MGET reply {counters:?}");
    };
    assert_eq!(
        (counters[0].as_i64(), counters[1].as_i64()),
        (Some(5), None),
        "stock and sold untouched"
    );
    let record = h.cmd("EXISTS", vec!["train:{typo}:idem:k".into()]).await;
    assert_eq!(record.as_i64(), Some(0), "no idempotency record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_mid_call_does_not_stall_its_train() {
    let h = Harness::start().await;
    h.create_train("quitter", 10).await;
    h.cmd("CLIENT", vec!["PAUSE".into(), "800".into(), "WRITE".into()])
        .await;
    // This client hangs up while its reservation call waits in Redis.
    let impatient = h
        .http
        .post(h.url("/reserve"))
        .timeout(std::time::Duration::from_millis(100))
        .json(&json!({"train_id": "quitter"}))
        .send()
        .await;
    assert!(
        impatient.is_err_and(|e| e.is_timeout()),
        "the client gave up"
    );
    // The train's queue must still move: the next buyers get their seats.
    for _ in 0..3 {
        let (status, _, body) = h.post_reserve(json!({"train_id": "quitter"})).await;
        assert_eq!(status, 200, "{body}");
    }
    let train = h.train("quitter").await;
    assert!(matches!(train.sold, Some(3 | 4)), "{train:?}");
    train.assert_invariants();
}

/// Calls reserve.lua directly with members of several trains in one call:
/// ten keys per train (then the idempotency records), then per train its
/// first key's index, its member count and its members. Returns (status, n,
/// replayed) per member, in order.
async fn call_trains(
    h: &Harness,
    trains: &[(&str, Vec<Member<'_>>)],
    idem_keys: &[&str],
) -> Result<Vec<(i64, i64, i64)>, String> {
    let mut args = vec![
        RESERVE.to_owned(),
        (TRAIN_KEYS.len() * trains.len() + 1 + idem_keys.len()).to_string(),
    ];
    for (train, _) in trains {
        args.extend(
            train_reservation::store::scripts::TRAIN_KEYS
                .iter()
                .map(|k| format!("train:{{{train}}}:{k}")),
        );
    }
    // The call's own key, then idempotency records, on the first train.
    args.push(format!("train:{{{}}}:call:multi-token", trains[0].0));
    args.extend(
        idem_keys
            .iter()
            .map(|k| format!("train:{{{}}}:idem:{k}", trains[0].0)),
    );
    args.extend(["multi-token", "3000", "86400000", "0", "60000", "0"].map(String::from));
    for (n, (_, members)) in trains.iter().enumerate() {
        args.extend([
            (TRAIN_KEYS.len() * n + 1).to_string(),
            members.len().to_string(),
        ]);
        for (id, seats, user, idem, fp) in members {
            args.extend([
                id.to_string(),
                seats.to_string(),
                user.to_string(),
                idem.to_string(),
                fp.to_string(),
                // from, to: the whole route; class, seat ids, together: none.
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    let reply = h.cmd_result("EVAL", args).await?;
    let Value::Array(items) = reply else {
        return Err(format!("unexpected reply {reply:?}"));
    };
    Ok(items
        .chunks(5)
        .map(|c| {
            (
                c[0].as_i64().unwrap_or(-1),
                c[2].as_i64().unwrap_or(-1),
                c[3].as_i64().unwrap_or(-1),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_serves_many_trains_each_on_its_own() {
    let h = Harness::start().await;
    h.create_train("m1", 3).await;
    h.create_train("m2", 1).await;
    h.create_train("m3", 5).await;
    // An operator froze m3: only m3's requests are refused.
    h.cmd(
        "SET",
        vec![
            "train:{m3}:lock".into(),
            "operator".into(),
            "PX".into(),
            "5000".into(),
        ],
    )
    .await;
    let replies = call_trains(
        &h,
        &[
            (
                "m1",
                vec![
                    ("a", 2, "", 0, ""),
                    ("b", 2, "", 0, ""),
                    ("c", 1, "", 0, ""),
                ],
            ),
            ("m2", vec![("d", 1, "", 0, ""), ("e", 1, "", 0, "")]),
            ("m3", vec![("f", 1, "", 0, "")]),
            ("nope", vec![("g", 1, "", 0, "")]),
        ],
        &[],
    )
    .await
    .expect("script");
    assert_eq!(
        replies[..4],
        [(200, 1, 0), (400, 1, 0), (200, 0, 0), (200, 0, 0)],
        "arrival order within m1, then m2"
    );
    assert_eq!(replies[4], (400, 0, 0));
    assert_eq!(replies[5].0, 429, "m3's lock refuses m3 only");
    assert_eq!(
        replies[6].0, 404,
        "an unknown train answers 404 for its own"
    );
    for (train, sold) in [("m1", 3), ("m2", 1)] {
        let t = h.train(train).await;
        assert_eq!((t.sold, t.lock.clone()), (Some(sold), None), "{train}");
        t.assert_invariants();
    }
    let m3 = h.train("m3").await;
    assert_eq!((m3.stock, m3.lock.as_deref()), (Some(5), Some("operator")));

    // A bad member on the last train fails the whole call before any write.
    let before = h.all_keys().await;
    let bad = call_trains(
        &h,
        &[
            ("m1", vec![("x", 1, "", 0, "")]),
            ("m2", vec![("y", 11, "", 0, "")]),
        ],
        &[],
    )
    .await;
    assert!(bad.is_err(), "{bad:?}");
    assert_eq!(before, h.all_keys().await, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_many_trains_share_script_calls() {
    let h = Harness::start().await;
    for n in 0..30 {
        h.create_train(&format!("spread-{n}"), 2).await;
    }
    let requests = (0..60)
        .map(|i| {
            (
                "/reserve".to_owned(),
                Some(json!({"train_id": format!("spread-{}", i % 30)})),
            )
        })
        .collect();
    let (answers, calls) = while_paused(&h, requests).await;
    eprintln!("60 reservations over 30 trains took {calls} script calls");
    assert!(
        (2..30).contains(&calls),
        "trains shared calls: {calls} calls for 60"
    );
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    for n in 0..30 {
        let train = h.train(&format!("spread-{n}")).await;
        assert_eq!((train.stock, train.sold), (Some(0), Some(2)));
        train.assert_invariants();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_key_stays_only_when_the_call_booked() {
    // The call's key tells a re-sent call from a first run; a call that
    // booked nothing (sold out here) must not leave one behind, and a call
    // that booked keeps it, so that its re-sending finds the booking (and a
    // call that follows it, that it ran).
    let h = Harness::start().await;
    h.create_train("ck", 1).await;
    let call_key = || vec!["train:{ck}:call:multi-token".to_owned()];
    let sold_out = call(&h, "ck", &[], &[("big", 2, "", 0, "")])
        .await
        .expect("script");
    assert_eq!(sold_out, vec![(400, 1, 0)]);
    assert_eq!(h.cmd("EXISTS", call_key()).await.as_i64(), Some(0));
    let booked = call(&h, "ck", &[], &[("one", 1, "", 0, "")])
        .await
        .expect("script");
    assert_eq!(booked, vec![(200, 0, 0)]);
    assert_eq!(h.cmd("EXISTS", call_key()).await.as_i64(), Some(1));
    // The same call again: found, not booked twice.
    let again = call(&h, "ck", &[], &[("one", 1, "", 0, "")])
        .await
        .expect("script");
    assert_eq!(again, vec![(200, 0, 0)]);
    let train = h.train("ck").await;
    assert_eq!((train.sold, train.reservations.len()), (Some(1), 1));
    train.assert_invariants();
}

/// reserve.lua for one member on train `fenced`, as a call that follows the
/// call `after` (its key is passed, and its index in ARGV[7]).
async fn call_after(h: &Harness, after: &str, id: &str) -> Result<Value, String> {
    let mut args = vec![RESERVE.to_owned(), (TRAIN_KEYS.len() + 2).to_string()];
    args.extend(
        train_reservation::store::scripts::TRAIN_KEYS
            .iter()
            .map(|k| format!("train:{{fenced}}:{k}")),
    );
    args.push(format!("train:{{fenced}}:call:tok-{id}"));
    args.push(format!("train:{{fenced}}:call:{after}"));
    let after = (TRAIN_KEYS.len() + 2).to_string();
    args.extend(["tok", "3000", "86400000", "0", "60000", &after].map(String::from));
    args.extend(["1", "1", id, "1", "", "0", "", "", "", "", "", ""].map(String::from));
    h.cmd_result("EVAL", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_follows_one_that_did_not_run_writes_nothing() {
    // The service may send a call while the one before it is in flight;
    // if that one did not run (NOSCRIPT), the follower must not decide
    // before it: it answers FENCED and leaves every key as it was.
    let h = Harness::start().await;
    h.create_train("fenced", 5).await;
    let before = h.all_keys().await;
    let fenced = call_after(&h, "never-ran", "r1").await;
    assert!(
        fenced.as_ref().is_err_and(|e| e.contains("FENCED")),
        "{fenced:?}"
    );
    assert_eq!(before, h.all_keys().await, "nothing written");
    assert_eq!(h.train("fenced").await.sold, None);

    // Once the call it follows has run and booked (its key is there), it books.
    h.cmd(
        "SET",
        vec![
            "train:{fenced}:call:ran".into(),
            "1".into(),
            "PX".into(),
            "60000".into(),
        ],
    )
    .await;
    let booked = call_after(&h, "ran", "r2").await.expect("script");
    let Value::Array(items) = booked else {
        panic!("unexpected reply {booked:?}")
    };
    assert_eq!(items[0].as_i64(), Some(200));
    let train = h.train("fenced").await;
    assert_eq!((train.stock, train.sold), (Some(4), Some(1)));
    train.assert_invariants();
}

/// Polls `check` every 10 ms until it holds (10 s at most).
async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A number from an INFO section (`name:value`).
async fn info(h: &Harness, section: &str, name: &str) -> i64 {
    let text = h
        .cmd("INFO", vec![section.into()])
        .await
        .as_string()
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Reservation script calls the service has sent (its `script_calls_total`
/// of reserve.lua and reserve_plain.lua, which a plain batch goes to first).
async fn reserve_calls_sent(h: &Harness) -> u64 {
    h.script_calls("reserve").await.unwrap_or(0)
        + h.script_calls("reserve_plain").await.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sent_behind_one_that_did_not_run_waits_for_it_and_goes_again() {
    // Calls sent while a call is in flight go behind it on the same
    // connection (at light load at once, else when half a batch waits).
    // Here the first call fails
    // before any write (an operator broke a counter), so the second, which
    // follows it, must not decide as if it had run: it is fenced, waits for
    // the first's answer and goes again, and its members are all served.
    let h = Harness::start().await;
    h.create_train("broken", 5).await;
    h.create_train("fine", 100).await;
    h.cmd("SET", vec!["train:{broken}:stock".into(), "x".into()])
        .await;
    h.cmd("CONFIG", vec!["RESETSTAT".into()]).await;
    h.cmd(
        "CLIENT",
        vec!["PAUSE".into(), "20000".into(), "WRITE".into()],
    )
    .await;
    let post = |train: &'static str| {
        let (http, url) = (h.http.clone(), h.url("/reserve"));
        async move {
            let r = http
                .post(url)
                .json(&json!({"train_id": train}))
                .send()
                .await
                .expect("POST");
            common::parts(r).await
        }
    };
    let first = tokio::spawn(post("broken"));
    wait_until("the first call waits in Redis", || async {
        info(&h, "clients", "blocked_clients").await >= 1
    })
    .await;
    let mut rest = tokio::task::JoinSet::new();
    for _ in 0..40 {
        rest.spawn(post("fine"));
    }
    wait_until("a second call is on its way", || async {
        reserve_calls_sent(&h).await >= 2
    })
    .await;
    h.cmd("CLIENT", vec!["UNPAUSE".into()]).await;

    let (status, _, body) = first.await.expect("task");
    assert_eq!(status, 500, "{body}");
    while let Some(result) = rest.join_next().await {
        let (status, _, body) = result.expect("task");
        assert_eq!(status, 200, "{body}");
    }
    let errorstats = h
        .cmd("INFO", vec!["errorstats".into()])
        .await
        .as_string()
        .unwrap_or_default();
    // Every call sent behind the broken one is fenced once (each follows
    // the one before it); at most DEPTH - 1 = 3 are in flight behind it.
    let fenced: u64 = errorstats
        .split("errorstat_FENCED:count=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        (1..=3).contains(&fenced),
        "the calls behind it were fenced: {errorstats}"
    );
    let fine = h.train("fine").await;
    assert_eq!((fine.stock, fine.sold), (Some(60), Some(40)));
    fine.assert_invariants();
    let broken = vec![
        "train:{broken}:sold".to_owned(),
        "train:{broken}:reservations".to_owned(),
    ];
    assert_eq!(h.cmd("EXISTS", broken).await.as_i64(), Some(0));
}
