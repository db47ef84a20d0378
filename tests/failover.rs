//! `REPLICA_ACKS`: a write is answered only once N replicas have it (`WAIT`
//! on the connection that ran the script), so an acknowledged reservation
//! survives the loss of its primary. First on one primary with one replica
//! (a 503 while the replica is away, 200s again when it is back), then on a
//! cluster whose primary is SIGKILLed under load while its replica takes over.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use common::{
    cluster::{cli, wait_until, Cluster},
    Harness, Load,
};
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;
use train_reservation::{embedded::free_port, EmbeddedRedis};

/// A replica of the Redis on `primary`, in `dir` on `port`, once its link is up.
fn start_replica(dir: &std::path::Path, port: u16, primary: u16) -> EmbeddedRedis {
    let args = ["--replicaof", "127.0.0.1", &primary.to_string()].map(String::from);
    let replica = EmbeddedRedis::start_with(dir, port, &args).expect("replica starts");
    wait_until("the replica's link", || {
        cli(port, &["INFO", "replication"]).is_ok_and(|info| {
            info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")
        })
    });
    replica
}

/// `calls=N` of `cmdstat_NAME` in `INFO commandstats`, 0 when never called.
fn command_calls(port: u16, name: &str) -> u64 {
    let stats = cli(port, &["INFO", "commandstats"]).expect("INFO");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_acks_wait_for_the_replica_or_answer_503() {
    let (dir, primary) = common::start_redis();
    // A replica's full sync starts at once, not after the default 5 s.
    let delay = cli(
        primary.port(),
        &["CONFIG", "SET", "repl-diskless-sync-delay", "0"],
    );
    assert_eq!(delay.as_deref(), Ok("OK"));
    let replica_dir = dir.path().join("replica");
    let replica_port = free_port().expect("port");
    let replica = start_replica(&replica_dir, replica_port, primary.port());
    let h = Harness::start_on(&primary.url(), |c| c.replica_acks = 1).await;
    h.create_train("acked", 1_000).await;

    // A swarm: every answer a 200, fewer WAITs than reservations (one per
    // group-commit batch), and the replica has every acknowledged seat.
    let waits_before = command_calls(primary.port(), "wait");
    let mut tasks = JoinSet::new();
    for _ in 0..200 {
        let (http, url) = (h.http.clone(), h.url("/reserve"));
        tasks.spawn(async move {
            let body = json!({"train_id": "acked"});
            common::parts(http.post(url).json(&body).send().await.expect("POST")).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        let (status, _, body) = result.expect("task");
        assert_eq!(status, 200, "{body}");
    }
    let waits = command_calls(primary.port(), "wait") - waits_before;
    eprintln!("200 acknowledged reservations, {waits} WAITs");
    assert!((1..200).contains(&waits), "one WAIT per batch: {waits}");
    let on_replica = cli(replica_port, &["HLEN", "train:{acked}:reservations"]);
    assert_eq!(on_replica.as_deref(), Ok("200"), "the replica has them all");

    // No replica: the write cannot be acknowledged, so 503 (outcome unknown).
    drop(replica);
    let started = Instant::now();
    let (status, headers, body) = h.post_reserve(json!({"train_id": "acked"})).await;
    assert_eq!((status, body["error"].clone()), (503, json!("unavailable")));
    assert!(headers.contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // The replica is back: 200s again, without restarting the service.
    let _replica = start_replica(&replica_dir, replica_port, primary.port());
    let (status, _, body) = h.post_reserve(json!({"train_id": "acked"})).await;
    assert_eq!(status, 200, "{body}");
    let train = h.train("acked").await;
    train.assert_invariants();
    assert_eq!(train.lock, None);
}

/// Per train, the reservation ids answered 200.
fn acknowledged(results: &[(u16, Json)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut per: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (status, body) in results {
        if *status == 200 {
            let train = body["train_id"].as_str().expect("train_id").to_owned();
            let id = body["reservation_id"].as_str().expect("id").to_owned();
            per.entry(train).or_default().insert(id);
        }
    }
    per
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_seats_survive_a_primary_failover() {
    let mut cluster = Cluster::start(true);
    let mut h = Harness::start_on(&cluster.url(), |c| {
        c.replica_acks = 1;
        c.request_timeout_ms = 1000;
    })
    .await;
    let trains: Vec<String> = (0..12).map(|i| format!("fo-{i}")).collect();
    for t in &trains {
        h.create_train(t, 1_000_000).await;
    }
    let victim_key = format!("train:{{{}}}:stock", trains[0]);
    let targets = trains
        .iter()
        .map(|t| (h.url("/reserve"), json!({"train_id": t})))
        .collect();
    let load = Load::start_over(&h.http, targets, 12, 1_000_000);
    load.wait_for("200s", Load::succeeded, 300).await;

    // The victim's replica falls behind, as with a slow link or disk: stopped,
    // and its replication link cut so nothing more reaches it. Once its
    // primary has taken a write the replica cannot have (answered 503 with
    // REPLICA_ACKS=1; it would be a 200 without), the primary dies.
    let dead = cluster.primary_of(&victim_key);
    let replica = cluster.replica_of(dead);
    let replica_pid = cluster.pid(replica).expect("replica running") as libc::pid_t;
    // SAFETY: kill(2) on a redis-server this test started.
    assert_eq!(unsafe { libc::kill(replica_pid, libc::SIGSTOP) }, 0);
    let cut = cli(dead, &["CLIENT", "KILL", "TYPE", "replica"]);
    let reservations = format!("train:{{{}}}:reservations", trains[0]);
    let booked = || {
        cli(dead, &["HLEN", &reservations])
            .ok()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = booked();
    wait_until("a write the replica cannot have", || booked() > before);
    let killed_at = Instant::now();
    cluster.kill(dead);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(replica_pid, libc::SIGCONT) }, 0);
    assert_eq!(cut.as_deref(), Ok("1"), "the replica's link was cut");
    let promoted = cluster.wait_failover(&victim_key, dead);
    let failed_over = killed_at.elapsed();
    // As a supervisor would: the old primary comes back, as the new one's
    // replica, so `WAIT 1` can succeed there again.
    cluster.restart(dead);
    cluster.wait_healthy();
    let rejoined = killed_at.elapsed();

    // The service finds the new primary by itself: poll the victim's train.
    let mut probe = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = h.post_reserve(json!({"train_id": trains[0]})).await;
        probe.push((status, body));
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 200 on {} since the kill",
            trains[0]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = killed_at.elapsed();
    let ok_at_recovery = load.succeeded();
    load.wait_for("200s after recovery", Load::succeeded, ok_at_recovery + 300)
        .await;
    let mut results = load.finish().await;
    results.extend(probe);
    let counts = common::statuses(&results);
    eprintln!(
        "failover: {counts:?}; killed primary {dead}, promoted {promoted} (was {replica}); took over \
         after {failed_over:?}, old primary rejoined after {rejoined:?}, first 200 on the \
         victim's train after {recovered:?}"
    );
    assert!(
        counts.keys().all(|s| matches!(s, 200 | 503)),
        "only 200 or 503: {counts:?}"
    );
    assert!(
        counts.get(&503).is_some_and(|n| *n >= 1),
        "the failover was seen: {counts:?}"
    );

    // Every acknowledged reservation is in Redis, on the train it was made on.
    h.cli = common::redis_client(&cluster.url()).await;
    let acknowledged = acknowledged(&results);
    let (mut acked, mut found) = (0, 0);
    for t in &trains {
        let train = h.train(t).await;
        train.assert_invariants();
        assert_eq!(train.lock, None, "{t}");
        let mine = acknowledged.get(t).cloned().unwrap_or_default();
        let stored: BTreeSet<String> = train.reservations.keys().cloned().collect();
        acked += mine.len();
        found += mine.intersection(&stored).count();
        let lost: Vec<_> = mine.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "{t}: {} acknowledged seats lost",
            lost.len()
        );
    }
    eprintln!("failover: {acked} acknowledged, {found} found afterwards");
    assert_eq!(h.get("/readyz").await.0, 200, "ready again, no restart");
}
