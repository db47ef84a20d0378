//! Hostile clients (the contract's "Hostile clients"): no client, however it
//! behaves, may hold the service for others or make Redis grow without bound.
//!
//! The two connection floods run the binary in a process of its own, so
//! that its memory is measured alone and its ten thousand sockets do not
//! share this process's descriptors; they take turns (`FLOODS`). The
//! connections come from several loopback addresses so that no one source
//! address runs out of ports.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{start_redis, Harness};
use reqwest::Method;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::Semaphore,
};

const BINARY: &str = env!("CARGO_BIN_EXE_train-reservation");

/// The service's connection limit (server.rs's MAX_CONNECTIONS).
const SLOTS: usize = 10_000;

/// One flood at a time: each takes ten thousand descriptors.
static FLOODS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The binary on a free port against a Redis of the test's, with `env`.
struct Service {
    child: Child,
    addr: SocketAddr,
}

impl Service {
    async fn start(redis_url: &str, env: &[(&str, &str)]) -> Service {
        let port = train_reservation::embedded::free_port().expect("port");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(BINARY);
        command
            .env("BIND_ADDR", addr.to_string())
            .env("REDIS_URL", redis_url)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("the service starts");
        let service = Service { child, addr };
        common::wait_until_ready(&reqwest::Client::new(), &service.url("/readyz")).await;
        service
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A line of /proc/PID/status, in KiB (VmRSS, VmHWM).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the service's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection to `to` from the `n`th of ten loopback source addresses.
async fn connect_from(n: usize, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    let source = Ipv4Addr::new(127, 0, 1, 1 + (n % 10) as u8);
    // The port is picked at connect (per destination), not at bind: a bind
    // to port 0 searches every port in use, which made opening ten thousand
    // connections take half a minute.
    let yes: libc::c_int = 1;
    // SAFETY: setsockopt(2) on a socket this function owns, with a valid int.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(yes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// Sockets the service holds with clients, and the bytes they have received
/// that it has not read yet (the `rx_queue` of /proc/net/tcp).
fn server_side_backlog(port: u16) -> (usize, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!(":{port:04X}");
    let mut sockets = 0;
    let mut unread = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local address, remote address, state (01: established), tx:rx queues.
        if fields.len() > 4 && fields[1].ends_with(&local) && fields[3] == "01" {
            sockets += 1;
            let rx = fields[4].split(':').nth(1).unwrap_or("0");
            unread += u64::from_str_radix(rx, 16).unwrap_or(0);
        }
    }
    (sockets, unread)
}

/// Reads what the server sends until it closes or `limit` passes: the
/// bytes, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_cannot_lock_new_clients_out() {
    let _turn = FLOODS.lock().await;
    let (_dir, redis) = start_redis();
    let deadline = Duration::from_secs(8);
    let service = Service::start(&redis.url(), &[("REQUEST_READ_TIMEOUT_MS", "8000")]).await;

    // Every slot and then some: headers, then 1 byte of a 100-byte body,
    // opened by eight tasks at once (well within the deadline).
    const STALL: &[u8] = b"POST /reserve HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 100\r\n\r\n{";
    let started = Instant::now();
    let openers = (0..8).map(|task| {
        let addr = service.addr;
        tokio::spawn(async move {
            let mut streams = Vec::new();
            for n in (task..SLOTS + 100).step_by(8) {
                let mut stream = connect_from(n, addr).await.expect("connect");
                stream.write_all(STALL).await.expect("write");
                streams.push(stream);
            }
            streams
        })
    });
    let mut stalled = Vec::with_capacity(SLOTS + 100);
    for opener in openers.collect::<Vec<_>>() {
        stalled.extend(opener.await.expect("opener"));
    }
    let opened = started.elapsed();
    let (sockets, _) = server_side_backlog(service.addr.port());
    println!(
        "{} stalled connections opened in {opened:?}; the service's side holds {sockets}",
        stalled.len()
    );
    assert!(
        opened < deadline && sockets >= SLOTS,
        "the slots were all taken before any deadline passed"
    );

    // A new client, behind them all: answered within the deadline and a second.
    let asked = Instant::now();
    let mut client = connect_from(10_001, service.addr).await.expect("connect");
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut client, deadline + Duration::from_secs(1)).await;
    let waited = asked.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    println!("the new client waited {waited:?}");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a new client is answered within the deadline plus a second (waited {waited:?}): {answer:?}"
    );

    // The first stalled connection: 408 and closed, by its deadline.
    let (answer, closed) = read_until_closed(&mut stalled[0], Duration::from_secs(1)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed, "a stalled connection is closed by the deadline");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    if let Some(body) = answer.split("\r\n\r\n").nth(1) {
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
        assert_eq!(body["error"], "request_timeout");
    }
    // And the last one opened, within its own deadline and a second.
    let last = stalled.last_mut().expect("connections");
    let (_, closed) = read_until_closed(last, deadline + Duration::from_secs(1)).await;
    assert!(closed, "every stalled connection is closed by its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_cannot_fill_the_memory() {
    let _turn = FLOODS.lock().await;
    let (_dir, redis) = start_redis();
    let service = Service::start(&redis.url(), &[("REQUEST_READ_TIMEOUT_MS", "60000")]).await;
    let before = service.memory_kib("VmRSS");

    // Over 16 KiB: 431 with the JSON error body, and the connection closed.
    let mut stream = connect_from(0, service.addr).await.expect("connect");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    stream.write_all(big.as_bytes()).await.expect("write");
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert!(closed, "the connection is closed after a 431");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("")).expect("JSON body");
    assert_eq!(body["error"], "headers_too_large");
    // 15 KiB of headers are fine.
    let fine = reqwest::Client::new()
        .get(service.url("/healthz"))
        .header("x-big", "a".repeat(15 * 1024))
        .send()
        .await
        .expect("GET");
    assert_eq!(fine.status(), 200);

    // Every slot with 15 KiB of a header that never ends.
    let unfinished = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}",
        "a".repeat(15 * 1024)
    );
    let mut held = Vec::with_capacity(SLOTS);
    for n in 0..SLOTS {
        let mut stream = connect_from(n, service.addr).await.expect("connect");
        stream
            .write_all(unfinished.as_bytes())
            .await
            .expect("write");
        held.push(stream);
    }
    // Ready when the service holds them all and has read every byte sent.
    let port = service.addr.port();
    let limit = Instant::now() + Duration::from_secs(60);
    let (mut sockets, mut unread) = server_side_backlog(port);
    while (sockets < SLOTS || unread > 0) && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        (sockets, unread) = server_side_backlog(port);
    }
    assert!(
        sockets >= SLOTS && unread == 0,
        "the service read every connection's headers: {sockets} sockets, {unread} bytes unread"
    );
    let (rss, peak) = (service.memory_kib("VmRSS"), service.memory_kib("VmHWM"));
    println!(
        "{SLOTS} connections with 15 KiB of unfinished headers: RSS {} MiB (from {} MiB), peak {} MiB",
        rss / 1024,
        before / 1024,
        peak / 1024
    );
    assert!(
        peak < 512 * 1024,
        "the service stays under 512 MiB: {peak} KiB"
    );
    drop(held);
}

/// Keys whose name starts with `prefix`, as `KEYS prefix*` lists them.
async fn keys(h: &Harness, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = h
        .cmd("KEYS", vec![pattern.to_owned()])
        .await
        .into_array()
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_store_nothing() {
    let h = Arc::new(Harness::start().await);
    h.create_train("full", 0).await;
    h.create_train("open", 1).await;
    let (_, _, _) = h.post_reserve(json!({"train_id": "open"})).await;
    let train_keys = keys(&h, "train:{full}:*").await;
    let dbsize = h.cmd("DBSIZE", vec![]).await.as_i64();

    // 20,000 refusals with distinct Idempotency-Keys: reservations and holds
    // on a sold-out train, and a few of each on another one.
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for n in 0..20_000 {
        let (h, gate) = (h.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore");
            let (train, path) = match n % 10 {
                0 => ("", "/trains/full/holds".to_owned()),
                1 => ("open", "/reserve".to_owned()),
                _ => ("full", "/reserve".to_owned()),
            };
            let body = match train {
                "" => json!({}),
                train => json!({"train_id": train}),
            };
            let response = h
                .http
                .post(h.url(&path))
                .header("Idempotency-Key", format!("flood-{n}"))
                .json(&body)
                .send()
                .await
                .expect("POST");
            let (status, _, body) = common::parts(response).await;
            (status, body["error"].clone())
        }));
    }
    for task in tasks {
        let (status, error) = task.await.expect("task");
        assert_eq!((status, error), (400, json!("sold_out")));
    }
    assert_eq!(
        keys(&h, "train:{full}:*").await,
        train_keys,
        "no key of the train changed"
    );
    assert_eq!(
        h.cmd("DBSIZE", vec![]).await.as_i64(),
        dbsize,
        "nothing was stored anywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_is_forgotten_after_the_call_window() {
    let window = Duration::from_secs(3);
    let h = Harness::start_with(|c| c.call_window_ms = window.as_millis() as u64).await;
    h.create_train("churn", 10).await;
    for n in 0..2_000 {
        let (status, _, hold) = h
            .call(
                Method::POST,
                "/trains/churn/holds",
                Some(json!({"seats": 2})),
                None,
            )
            .await;
        assert_eq!(status, 201, "hold {n}");
        let id = hold["hold_id"].as_str().expect("hold_id");
        let (status, _, _) = h
            .call(
                Method::DELETE,
                &format!("/trains/churn/holds/{id}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "release {n}");
        if n % 10 == 0 {
            let (status, _, booked) = h.post_reserve(json!({"train_id": "churn"})).await;
            assert_eq!(status, 200);
            let id = booked["reservation_id"].as_str().expect("reservation_id");
            let path = format!("/trains/churn/reservations/{id}");
            assert_eq!(h.call(Method::DELETE, &path, None, None).await.0, 200);
        }
    }
    let ended = h
        .cmd("ZCARD", vec!["train:{churn}:ended".into()])
        .await
        .as_i64();
    println!("ids remembered right after the loop: {ended:?}");
    assert!(
        ended > Some(0),
        "released and cancelled ids are kept for a while"
    );

    // Once the call window has passed, nothing of the churn is left.
    let only_counters = vec![
        "train:{churn}:capacity".to_owned(),
        "train:{churn}:held".to_owned(),
        "train:{churn}:sold".to_owned(),
        "train:{churn}:stock".to_owned(),
    ];
    let limit = Instant::now() + window * 4;
    let mut left = keys(&h, "train:{churn}:*").await;
    while left != only_counters && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = keys(&h, "train:{churn}:*").await;
    }
    assert_eq!(left, only_counters, "only the counters are left");
    let train = h.train("churn").await;
    assert_eq!(
        (train.stock, train.sold, train.held),
        (Some(10), Some(0), Some(0))
    );
}

/// An HTTP client whose connections come from `source`.
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(source))
        .build()
        .expect("client")
}

/// `count` `POST /reserve` at `per_second`, each sent on time however slow
/// the answers: (allowed, refused) and how long the sending took. Every
/// refusal must be the contract's 429.
async fn paced(
    http: reqwest::Client,
    url: String,
    forwarded: Option<&'static str>,
    per_second: u32,
    count: u32,
) -> (u32, u32, Duration) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut tasks = Vec::new();
    for _ in 0..count {
        tick.tick().await;
        let mut request = http.post(&url).json(&json!({"train_id": "rated"}));
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", format!("198.51.100.7, {address}"));
        }
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.expect("POST");
            let retry_after = response.headers().get("retry-after").cloned();
            let (status, _, body) = common::parts(response).await;
            if status == 429 {
                assert_eq!(body["error"], "rate_limited");
                assert!(body["retry_after_ms"].as_i64() >= Some(1));
                let seconds = retry_after.and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                assert!(seconds >= Some(1), "Retry-After: {seconds:?}");
            } else {
                assert_eq!(status, 200, "{body}");
            }
            status == 200
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += u32::from(task.await.expect("task"));
    }
    // Until the last answer: Redis counted every request within it.
    (allowed, count - allowed, started.elapsed())
}

/// What a client may get in `elapsed` at `limit` a second: the burst, then
/// the rate (and one for the request in flight when time is read).
fn most_allowed(limit: u32, elapsed: Duration) -> u32 {
    2 * limit + (f64::from(limit) * elapsed.as_secs_f64()).ceil() as u32 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_its_rate_and_others_are_not_slowed() {
    const LIMIT: u32 = 20;
    let h = Harness::start_with(|c| c.rate_limit_per_client = LIMIT.into()).await;
    h.create_train("rated", 100_000).await;
    let url = h.url("/reserve");
    // Twice its rate for 4 s; the other client at half its rate meanwhile.
    let greedy = paced(
        client_from([127, 0, 2, 1]),
        url.clone(),
        None,
        2 * LIMIT,
        8 * LIMIT,
    );
    let modest = paced(client_from([127, 0, 2, 2]), url, None, LIMIT / 2, 2 * LIMIT);
    let ((allowed, refused, elapsed), (modest_allowed, modest_refused, _)) =
        tokio::join!(greedy, modest);
    println!("greedy client: {allowed} allowed, {refused} refused in {elapsed:?}");
    assert!(refused > 0, "a client at twice its limit is refused some");
    assert!(
        allowed <= most_allowed(LIMIT, elapsed),
        "{allowed} allowed in {elapsed:?}"
    );
    let least = (f64::from(LIMIT) * elapsed.as_secs_f64() * 0.9) as u32;
    assert!(
        allowed >= least,
        "{allowed} allowed in {elapsed:?}: about its limit"
    );
    assert_eq!(
        (modest_allowed, modest_refused),
        (2 * LIMIT, 0),
        "another client is not slowed"
    );
    // Its buckets are keys of their own, under the client's hash tag.
    let buckets = keys(&h, "train:rate:*").await;
    assert!(
        buckets.contains(&"train:rate:{ip:127.0.2.1}".to_owned()),
        "{buckets:?}"
    );
}

/// Two instances on one Redis, both with a rate limit of `limit` a second.
async fn two_instances(limit: u32) -> (Harness, train_reservation::Server) {
    let h = Harness::start_with(|c| c.rate_limit_per_client = limit.into()).await;
    let mut config = train_reservation::Config::for_tests(&h.redis_url);
    config.rate_limit_per_client = limit.into();
    let other = train_reservation::Server::start(config, &h.redis_url)
        .await
        .expect("a second instance");
    common::wait_until_ready(&h.http, &format!("{}/readyz", other.url())).await;
    (h, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_count() {
    const LIMIT: u32 = 10;
    let (h, other) = two_instances(LIMIT).await;
    h.create_train("rated", 100_000).await;

    // One client, alternating instances, as fast as it can.
    let http = client_from([127, 0, 2, 3]);
    let started = Instant::now();
    let mut allowed = 0;
    for n in 0..6 * LIMIT {
        let base = if n % 2 == 0 {
            h.server().url()
        } else {
            other.url()
        };
        let response = http
            .post(format!("{base}/reserve"))
            .json(&json!({"train_id": "rated"}))
            .send()
            .await
            .expect("POST");
        allowed += u32::from(response.status() == 200);
    }
    let elapsed = started.elapsed();
    other.shutdown().await;
    println!(
        "{allowed} allowed of {} in {elapsed:?} across two instances",
        6 * LIMIT
    );
    assert!(
        allowed <= most_allowed(LIMIT, elapsed),
        "two instances share one count: {allowed} allowed in {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_address_is_a_client() {
    const LIMIT: u32 = 5;
    let trusting = Harness::start_with(|c| {
        c.rate_limit_per_client = LIMIT.into();
        c.trust_forwarded_for = true;
    })
    .await;
    trusting.create_train("rated", 100_000).await;
    let proxy = client_from([127, 0, 2, 4]);
    let url = trusting.url("/reserve");
    // Three clients behind one proxy, each at its burst: none refused.
    let runs = ["203.0.113.1", "203.0.113.2", "2001:db8::3"]
        .map(|client| paced(proxy.clone(), url.clone(), Some(client), 50, 2 * LIMIT));
    let [a, b, c] = runs;
    let (a, b, c) = tokio::join!(a, b, c);
    for (allowed, refused, _) in [a, b, c] {
        assert_eq!(
            (allowed, refused),
            (2 * LIMIT, 0),
            "each address is its own client"
        );
    }
    let buckets = keys(&trusting, "train:rate:*").await;
    assert!(
        buckets.contains(&"train:rate:{ip:2001:db8::3}".to_owned()),
        "{buckets:?}"
    );

    // Not trusted: the header is anybody's to write, so the peer is the client.
    let wary = Harness::start_with(|c| c.rate_limit_per_client = LIMIT.into()).await;
    wary.create_train("rated", 100_000).await;
    let url = wary.url("/reserve");
    let runs = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .map(|client| paced(proxy.clone(), url.clone(), Some(client), 50, 2 * LIMIT));
    let [a, b, c] = runs;
    let (a, b, c) = tokio::join!(a, b, c);
    let allowed = a.0 + b.0 + c.0;
    assert!(
        allowed <= most_allowed(LIMIT, a.2.max(b.2).max(c.2)),
        "one client however many forwarded addresses: {allowed} allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_allowances_never_let_a_client_past_its_limit() {
    // 500 a second: each instance leases ten requests at a time.
    const LIMIT: u32 = 500;
    let (h, other) = two_instances(LIMIT).await;
    h.create_train("rated", 1_000_000).await;

    // One client, 16 requests at a time, spread over both instances.
    let http = client_from([127, 0, 2, 5]);
    let urls = [h.url("/reserve"), format!("{}/reserve", other.url())];
    let gate = Arc::new(Semaphore::new(16));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..6 * LIMIT {
        let (http, url, gate) = (http.clone(), urls[n as usize % 2].clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore");
            let response = http
                .post(url)
                .json(&json!({"train_id": "rated"}))
                .send()
                .await
                .expect("POST");
            response.status().as_u16()
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.expect("task")).or_insert(0u32) += 1;
    }
    let elapsed = started.elapsed();
    other.shutdown().await;
    let allowed = statuses.get(&200).copied().unwrap_or(0);
    println!("leases: {statuses:?} in {elapsed:?}");
    assert_eq!(
        allowed + statuses.get(&429).copied().unwrap_or(0),
        6 * LIMIT,
        "{statuses:?}"
    );
    assert!(
        allowed <= most_allowed(LIMIT, elapsed),
        "never past the limit: {allowed} allowed in {elapsed:?}"
    );
    // What leases left unused is at most a lease per instance.
    assert!(
        allowed + 2 * (LIMIT / 50) >= 2 * LIMIT,
        "{allowed} allowed: about the burst at least"
    );
    assert_eq!(h.train("rated").await.sold, Some(i64::from(allowed)));
}
