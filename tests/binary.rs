//! The binary as an operator runs it: with no REDIS_URL it starts its own
//! redis-server, stops it cleanly on SIGTERM, takes it down when it crashes,
//! and explains itself when redis-server is missing.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use tempfile::TempDir;

const BINARY: &str = env!("CARGO_BIN_EXE_train-reservation");

struct Service {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Service {
    /// Starts the binary in a fresh working directory (so ./data/redis is its own).
    fn start() -> Service {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = train_reservation::embedded::free_port().expect("port");
        let log = std::fs::File::create(dir.path().join("service.log")).expect("log");
        let child = Command::new(BINARY)
            .current_dir(dir.path())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("REDIS_URL")
            .env("DEFAULT_STOCK", "2")
            // Well above the 1.5 s that the drain test holds Redis writes for
            // (and under the 8 s drain): on a machine busy with the other
            // tests, 2 s left too little room, and a slow answer became a 503.
            .env("REQUEST_TIMEOUT_MS", "5000")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("service starts");
        Service { child, port, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The redis-server the service started: its only child process.
    fn redis_pid(&self) -> u32 {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.child.id()))
                .expect("children of the service");
        children
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .expect("the service has a redis-server child")
    }

    /// The port of that redis-server, from its process title
    /// ("redis-server 127.0.0.1:PORT").
    fn redis_port(&self) -> u16 {
        let cmdline =
            std::fs::read(format!("/proc/{}/cmdline", self.redis_pid())).expect("cmdline");
        let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        title
            .split_whitespace()
            .find_map(|word| word.strip_prefix("127.0.0.1:"))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {title:?}"))
    }

    /// How many sockets the service holds open (listener, Redis, clients).
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// Waits (bounded) for the service to exit; `None` if it did not.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: a plain kill(2) on a process this test started.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Gone, or a zombie nobody reaped yet (its parent, the service, is gone).
fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_ended(pid: u32) -> bool {
    for _ in 0..500 {
        if process_ended(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_stops_the_embedded_redis_cleanly() {
    let mut service = Service::start();
    let http = common::http_client();
    common::wait_until_ready(&http, &service.url("/readyz")).await;
    let redis = service.redis_pid();

    let response = http
        .post(service.url("/reserve"))
        .send()
        .await
        .expect("POST");
    let (status, _, body) = common::parts(response).await;
    assert_eq!(
        (status, body["remaining"].clone()),
        (200, json!(1)),
        "{}",
        service.log()
    );

    signal(service.child.id(), libc::SIGTERM);
    let status = service.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit 0 within 10 s: {status:?}\n{}",
        service.log()
    );
    assert!(wait_ended(redis), "redis-server stopped with the service");
    let redis_log = std::fs::read_to_string(service.dir.path().join("data/redis/redis.log"))
        .expect("redis log");
    assert!(
        redis_log.contains("ready to exit"),
        "a clean Redis shutdown:\n{redis_log}"
    );
    assert!(Path::new(&service.dir.path().join("data/redis/appendonlydir")).is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_leaves_no_orphan_redis() {
    let mut service = Service::start();
    common::wait_until_ready(&common::http_client(), &service.url("/readyz")).await;
    let redis = service.redis_pid();

    signal(service.child.id(), libc::SIGKILL);
    assert!(service.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        wait_ended(redis),
        "the kernel's parent-death signal stopped redis-server"
    );
}

#[test]
fn without_redis_server_on_path_it_exits_with_a_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BINARY)
        .current_dir(dir.path())
        .env("PATH", dir.path())
        .env_remove("REDIS_URL")
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("apt-get install -y redis-server"),
        "{stderr}"
    );
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut service = Service::start();
    let http = common::http_client();
    common::wait_until_ready(&http, &service.url("/readyz")).await;
    let redis = common::redis_client(&format!("redis://127.0.0.1:{}", service.redis_port())).await;
    common::redis_cmd(
        &redis,
        "MSET",
        ["train:{slow}:stock", "100", "train:{slow}:capacity", "100"]
            .map(String::from)
            .into(),
    )
    .await;

    // Hold every write in Redis so requests pile up inside the service (for
    // less than the 5 s request timeout: they must end in 200, not 503).
    common::redis_cmd(
        &redis,
        "CLIENT",
        ["PAUSE", "1500", "WRITE"].map(String::from).into(),
    )
    .await;
    // Each request on a connection of its own (a fresh client has no idle
    // ones). A request sent on an idle keep-alive connection races the
    // server's close of that connection at shutdown (HTTP/1.1's keep-alive
    // race); a fresh connection is busy from its accept, so hyper serves its
    // request before closing it.
    let before = service.sockets();
    let fresh = common::http_client();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (http, url) = (fresh.clone(), service.url("/reserve"));
        requests.spawn(async move {
            http.post(url)
                .json(&json!({"train_id": "slow"}))
                .send()
                .await
        });
    }
    // In flight: the service has accepted all 20 connections, and a
    // reservation call is blocked in Redis (the other requests wait behind it
    // in the train's group-commit queue).
    let (mut accepted, mut blocked) = (0, 0);
    for _ in 0..400 {
        accepted = service.sockets().saturating_sub(before);
        let info = common::redis_cmd(&redis, "INFO", vec!["clients".into()]).await;
        let text = info.as_string().unwrap_or_default();
        blocked = text
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        if accepted >= 20 && blocked >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        accepted >= 20,
        "the service accepted {accepted} of 20 connections"
    );
    assert!(blocked >= 1, "a request reached Redis before the signal");
    signal(service.child.id(), libc::SIGTERM);

    let mut ok = 0;
    while let Some(result) = requests.join_next().await {
        let response = result
            .expect("task")
            .unwrap_or_else(|e| panic!("an accepted request broke during shutdown: {e}"));
        assert_eq!(response.status(), 200, "an accepted request completes");
        ok += 1;
    }
    eprintln!("SIGTERM with 20 requests in flight: {ok} completed with 200");
    assert_eq!(ok, 20);
    let status = service.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit 0: {status:?}\n{}",
        service.log()
    );
}
