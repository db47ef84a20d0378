//! Faults: Redis killed, restarted, flushed of its scripts, its connections cut,
//! and the service started before Redis. Each test injects the fault into a
//! real redis-server of its own and checks that no acknowledged seat is lost,
//! none is booked twice, and no request hangs or gets anything but a 503.

mod common;

use std::{collections::HashSet, time::Duration};

use common::{Harness, Load};
use serde_json::{json, Value as Json};
use train_reservation::{Config, EmbeddedRedis, Server};

/// The reservation ids of every 200.
fn booked(results: &[(u16, Json)]) -> HashSet<String> {
    results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["reservation_id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reservations_survive_a_redis_crash() {
    let mut h = Harness::start_with(|c| c.request_timeout_ms = 500).await;
    h.create_train("durable", 1_000_000).await;
    let (dir, port) = {
        let redis = h.redis.as_ref().expect("redis");
        (redis.dir().to_owned(), redis.port())
    };

    let load = Load::start(&h, 8, 5_000, json!({"train_id": "durable"}));
    load.wait_for("200s", Load::succeeded, 200).await;
    h.redis
        .take()
        .expect("redis")
        .kill()
        .expect("SIGKILL redis-server");
    let ok_at_crash = load.succeeded();
    let done_at_crash = load.completed();
    load.wait_for(
        "answers during the outage",
        Load::completed,
        done_at_crash + 24,
    )
    .await;

    h.redis = Some(EmbeddedRedis::start_on(&dir, port).expect("restart on the same port and dir"));
    let ok_at_restart = load.succeeded();
    load.wait_for(
        "200s after the restart",
        Load::succeeded,
        ok_at_restart + 200,
    )
    .await;
    let results = load.finish().await;
    let counts = common::statuses(&results);
    eprintln!("crash test: {counts:?}, 200s before the crash: {ok_at_crash}");

    assert!(
        counts.keys().all(|s| matches!(s, 200 | 503)),
        "only 200 or 503: {counts:?}"
    );
    assert!(
        counts.get(&503).is_some_and(|n| *n >= 8),
        "the outage was seen: {counts:?}"
    );
    h.cli = common::redis_client(&h.redis_url).await;
    let train = h.train("durable").await;
    let acknowledged = booked(&results);
    let stored: HashSet<String> = train.reservations.keys().cloned().collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged reservations lost: {lost:?}",
        lost.len()
    );
    train.assert_invariants();
    assert_eq!(train.lock, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_fast_503s_and_heals_without_a_restart() {
    let mut h = Harness::start_with(|c| c.request_timeout_ms = 500).await;
    h.create_train("t", 10).await;
    let (status, _, _) = h.post_reserve(json!({"train_id": "t"})).await;
    assert_eq!(status, 200);
    let redis = h.redis.take().expect("redis");
    let (dir, port) = (redis.dir().to_owned(), redis.port());
    redis.kill().expect("SIGKILL");

    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, headers, body) = h.post_reserve(json!({"train_id": "t"})).await;
        assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
        assert!(headers.contains_key("retry-after"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(h.get("/readyz").await.0, 503);
    assert_eq!(h.get("/healthz").await.0, 200);

    h.redis = Some(EmbeddedRedis::start_on(&dir, port).expect("restart"));
    h.wait_ready().await;
    let (status, _, body) = h.post_reserve(json!({"train_id": "t"})).await;
    assert_eq!(
        (status, body["remaining"].clone()),
        (200, json!(8)),
        "the first seat survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_waits_for_redis_and_then_becomes_ready() {
    let dir = tempfile::tempdir().expect("dir");
    let port = train_reservation::embedded::free_port().expect("port");
    let url = format!("redis://127.0.0.1:{port}");
    let mut config = Config::for_tests(&url);
    config.default_stock = 4;
    config.request_timeout_ms = 300;
    let server = Server::start(config, &url)
        .await
        .expect("listens without Redis");
    let http = common::http_client();
    let get = |path: &str| http.get(format!("{}{path}", server.url())).send();
    assert_eq!(get("/healthz").await.expect("GET").status(), 200);
    assert_eq!(get("/readyz").await.expect("GET").status(), 503);
    let started = std::time::Instant::now();
    let response = http
        .post(format!("{}/reserve", server.url()))
        .send()
        .await
        .expect("POST");
    assert!(
        response.headers().contains_key("retry-after"),
        "503 carries Retry-After"
    );
    let (status, _, body) = common::parts(response).await;
    assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at once, not hung"
    );

    let _redis = EmbeddedRedis::start_on(&dir.path().join("redis"), port).expect("redis");
    common::wait_until_ready(&http, &format!("{}/readyz", server.url())).await;
    let response = http
        .get(format!("{}/trains/default", server.url()))
        .send()
        .await
        .expect("GET");
    let (status, _, body) = common::parts(response).await;
    assert_eq!(
        (status, body["capacity"].clone()),
        (200, json!(4)),
        "default train created once ready"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_during_load_is_invisible() {
    let h = Harness::start().await;
    h.create_train("flushed", 1_000_000).await;
    let load = Load::start(&h, 8, 2_000, json!({"train_id": "flushed"}));
    for round in 1..=5 {
        load.wait_for("answers", Load::completed, round * 150).await;
        h.cmd("SCRIPT", vec!["FLUSH".into()]).await;
    }
    load.wait_for("answers", Load::completed, 6 * 150).await;
    let results = load.finish().await;
    let counts = common::statuses(&results);
    eprintln!("SCRIPT FLUSH x5 under load: {counts:?}");
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        vec![&200],
        "every answer a 200: {counts:?}"
    );
    let train = h.train("flushed").await;
    train.assert_invariants();
    assert_eq!(train.sold, Some(results.len() as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_never_book_twice() {
    let h = Harness::start_with(|c| c.request_timeout_ms = 1000).await;
    h.create_train("cut", 1_000_000).await;
    let load = Load::start(&h, 16, 2_000, json!({"train_id": "cut", "seats": 2}));
    for round in 1..=5 {
        load.wait_for("answers", Load::completed, round * 200).await;
        // Every normal client but this one: the service's pool connections.
        let killed = h
            .cmd(
                "CLIENT",
                vec!["KILL".into(), "TYPE".into(), "normal".into()],
            )
            .await;
        assert!(
            killed.as_i64().is_some_and(|n| n >= 1),
            "the service's connections were cut"
        );
    }
    load.wait_for("answers", Load::completed, 6 * 200).await;
    let results = load.finish().await;
    let counts = common::statuses(&results);
    eprintln!("CLIENT KILL x5 under load: {counts:?}");
    assert!(counts.keys().all(|s| matches!(s, 200 | 503)), "{counts:?}");

    let train = h.train("cut").await;
    train.assert_invariants(); // sold == the seats in `reservations`: nothing twice
    let acknowledged = booked(&results);
    let stored: HashSet<String> = train.reservations.keys().cloned().collect();
    assert!(acknowledged.is_subset(&stored), "every 200 is stored");
    assert!(
        train.sold.unwrap_or(0) <= 2 * results.len() as i64,
        "no more seats sold than requests sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_hold_a_connection_forever() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start().await;
    let mut stream = tokio::net::TcpStream::connect(h.server().addr())
        .await
        .expect("connect");
    // Half a request line, then silence.
    stream
        .write_all(b"POST /reserve HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server closed the idle connection (header-read timeout)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_gives_503s_and_sales_resume_when_it_thaws() {
    let h = Harness::start_with(|c| c.request_timeout_ms = 400).await;
    h.create_train("frozen-redis", 10).await;
    let pid = h.redis.as_ref().expect("redis").pid() as libc::pid_t;
    // SIGSTOP: connections stay open, nothing answers (a hung or partitioned Redis).
    // SAFETY: kill(2) on the redis-server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, _, body) = h.post_reserve(json!({"train_id": "frozen-redis"})).await;
        assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    h.wait_ready().await;
    let (status, _, _) = h.post_reserve(json!({"train_id": "frozen-redis"})).await;
    assert_eq!(status, 200);
    let train = h.train("frozen-redis").await;
    train.assert_invariants();
    assert_eq!(train.lock, None);
}
