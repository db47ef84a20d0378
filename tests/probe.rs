//! `train-reservation healthcheck`, the container probe, run as Docker runs it:
//! the real binary, judged by its exit status and how long it took. Healthy
//! (0) only against a ready service; unhealthy (1) against one still starting
//! (Redis not up yet, /readyz 503), a closed port, and a listener that never
//! answers, each well within the HEALTHCHECK's 2 s timeout.

mod common;

use std::{
    io::Read,
    net::TcpListener,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use train_reservation::{Config, Server};

const BINARY: &str = env!("CARGO_BIN_EXE_train-reservation");
/// The probe's own deadline is 1 s; the rest is a slow, shared machine's margin.
const WALL_LIMIT: Duration = Duration::from_secs(2);

struct Probe {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {:?}\nstdout: {}\nstderr: {}",
            self.status, self.took, self.stdout, self.stderr
        )
    }
}

/// Runs `train-reservation healthcheck ARGS` with none of the service's
/// variables set except `env` (as in a container: only what it was given).
async fn probe(args: &[&str], env: &[(&str, &str)]) -> Probe {
    let mut command = tokio::process::Command::new(BINARY);
    command
        .arg("healthcheck")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let start = Instant::now();
    // A probe that hangs is a failed test, not a hung one (kill_on_drop).
    let output = tokio::time::timeout(Duration::from_secs(10), command.output())
        .await
        .unwrap_or_else(|_| panic!("healthcheck {args:?} still running after 10 s"))
        .expect("the binary runs");
    let probe = Probe {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: start.elapsed(),
    };
    eprintln!("healthcheck {args:?} {env:?}: {probe}");
    probe
}

/// Unhealthy: exit status 1 exactly (2 would be a usage error from clap,
/// which Docker also reads as unhealthy but would hide a broken command).
fn assert_unhealthy(probe: &Probe, reason: &str) {
    assert_eq!(probe.status.code(), Some(1), "{probe}");
    assert!(
        probe.stderr.contains(reason),
        "stderr names {reason:?}: {probe}"
    );
    assert!(probe.took < WALL_LIMIT, "within {WALL_LIMIT:?}: {probe}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_service_is_healthy() {
    let h = common::Harness::start().await;
    let url = h.url("/readyz");
    let probe = probe(&["--url", &url], &[]).await;
    assert_eq!(probe.status.code(), Some(0), "{probe}");
    assert!(probe.took < WALL_LIMIT, "{probe}");
    assert!(probe.stdout.contains("answered 200"), "{probe}");
}

/// As in the container: no --url, BIND_ADDR=0.0.0.0:PORT, probed on 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_url_is_readyz_on_bind_addr_via_loopback() {
    let h = common::Harness::start().await;
    let bind = format!("0.0.0.0:{}", h.server().addr().port());
    let probe = probe(&[], &[("BIND_ADDR", &bind)]).await;
    assert_eq!(probe.status.code(), Some(0), "{probe}");
    let expected = format!("http://127.0.0.1:{}/readyz", h.server().addr().port());
    assert!(probe.stdout.contains(&expected), "{probe}");
}

/// Listening but not ready: Redis is not there (yet), /readyz answers 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_service_is_unhealthy() {
    let nothing = train_reservation::embedded::free_port().expect("free port");
    let redis_url = format!("redis://127.0.0.1:{nothing}");
    let server = Server::start(Config::for_tests(&redis_url), &redis_url)
        .await
        .expect("server starts without Redis");
    let url = format!("{}/readyz", server.url());
    // The premise: this service answers, and answers "not ready".
    let response = common::http_client()
        .get(&url)
        .send()
        .await
        .expect("/readyz answers while starting");
    assert_eq!(response.status(), 503);

    let probe = probe(&["--url", &url], &[]).await;
    assert_unhealthy(&probe, "503");
    drop(server); // its tasks end with the test's runtime, as in faults.rs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_unhealthy() {
    let port = train_reservation::embedded::free_port().expect("free port");
    let url = format!("http://127.0.0.1:{port}/readyz");
    let probe = probe(&["--url", &url], &[]).await;
    assert_unhealthy(&probe, "cannot connect");
}

/// A service that accepts the connection, reads the request and never answers
/// (wedged): the probe gives up at its deadline instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_service_is_unhealthy_within_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    // Accepts one connection, keeps what the probe sent, answers nothing, and
    // holds the connection open until the probe closes it (read returns 0).
    let hung = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&received).into_owned()
    });
    let url = format!("http://127.0.0.1:{port}/readyz");
    let probe = probe(&["--url", &url], &[]).await;
    assert_unhealthy(&probe, "no answer within 1000 ms");
    assert!(
        probe.took >= Duration::from_millis(900),
        "gave up early: {probe}"
    );

    let request = tokio::task::spawn_blocking(move || hung.join().expect("listener thread"))
        .await
        .expect("join");
    assert!(
        request.starts_with("GET /readyz HTTP/1.1\r\n"),
        "the probe sent {request:?}"
    );
    assert!(
        request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n"))
            && request.ends_with("\r\n\r\n"),
        "the probe sent {request:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_http_urls_are_probed() {
    let probe = probe(&["--url", "https://127.0.0.1:8000/readyz"], &[]).await;
    assert_unhealthy(&probe, "only http:// URLs");
}
