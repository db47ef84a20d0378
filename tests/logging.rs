//! Logs as an operator reads them from the binary: one line per start-up
//! step, JSON with LOG_FORMAT=json, nothing per request at info level, and a
//! password in REDIS_URL never written anywhere.

mod common;

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value as Json;

const BINARY: &str = env!("CARGO_BIN_EXE_train-reservation");
const PASSWORD: &str = "s3cret-Pa55";

/// A redis-server that wants a password, stopped by PID when dropped.
struct PasswordRedis {
    child: Child,
    port: u16,
}

impl PasswordRedis {
    fn start(dir: &Path) -> PasswordRedis {
        let port = train_reservation::embedded::free_port().expect("port");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--requirepass",
                PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "redis-server never accepted");
            std::thread::sleep(Duration::from_millis(5));
        }
        PasswordRedis { child, port }
    }
}

impl Drop for PasswordRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, its standard output and error in one file.
struct Service {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Service {
    fn start(dir: &Path, env: &[(&str, String)]) -> Service {
        let port = train_reservation::embedded::free_port().expect("port");
        let log = dir.join("service.log");
        let file = std::fs::File::create(&log).expect("log");
        let mut command = Command::new(BINARY);
        command
            .current_dir(dir)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("service starts");
        Service { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits (bounded) until a log line contains `needle`.
    fn wait_for_line(&self, needle: &str) {
        for _ in 0..1000 {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no log line with {needle:?}:\n{}", self.lines().join("\n"));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn json_start_up_lines_with_the_password_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PasswordRedis::start(dir.path());
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let service = Service::start(
        dir.path(),
        &[("REDIS_URL", url), ("LOG_FORMAT", "json".into())],
    );
    let http = common::http_client();
    common::wait_until_ready(&http, &service.url("/readyz")).await;
    service.wait_for_line("ready");

    let lines = service.lines();
    let events: Vec<Json> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |message: &str| {
        events
            .iter()
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
    };
    for event in &events {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(event.get(field).is_some(), "{field} missing: {event}");
        }
    }
    let connecting = find("connecting to Redis");
    assert_eq!(
        connecting["redis"],
        format!("redis://:***@127.0.0.1:{}", redis.port)
    );
    let scripts = find("loaded the Lua scripts")["sha1"]
        .as_str()
        .expect("sha1 field")
        .to_owned();
    for name in train_reservation::store::scripts::NAMES {
        assert!(scripts.contains(&format!("{name}=")), "{scripts}");
    }
    assert_eq!(find("created the default train")["train"], "default");
    find("ready");
    assert!(!lines.join("\n").contains(PASSWORD));
}

#[tokio::test]
async fn text_by_default_and_nothing_per_request_at_info() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PasswordRedis::start(dir.path());
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let service = Service::start(dir.path(), &[("REDIS_URL", url)]);
    let http = common::http_client();
    common::wait_until_ready(&http, &service.url("/readyz")).await;
    service.wait_for_line("ready");
    let before = service.lines();
    assert!(before.iter().all(|l| !l.starts_with('{')), "{before:#?}");
    assert!(before
        .iter()
        .any(|l| l.contains(" INFO ") && l.contains("connecting to Redis")));

    for path in ["/trains/default", "/nope", "/metrics", "/openapi.json"] {
        http.get(service.url(path)).send().await.expect("GET");
    }
    for _ in 0..3 {
        http.post(service.url("/reserve"))
            .send()
            .await
            .expect("POST");
    }
    // The answers above are all in; any line they logged would be too.
    assert_eq!(service.lines(), before);
}

#[tokio::test]
async fn a_wrong_password_is_logged_without_the_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PasswordRedis::start(dir.path());
    let wrong = "not-the-Pa55word";
    let url = format!("redis://:{wrong}@127.0.0.1:{}", redis.port);
    let service = Service::start(
        dir.path(),
        &[("REDIS_URL", url), ("LOG_FORMAT", "json".into())],
    );
    service.wait_for_line("\"level\":\"WARN\"");
    let http = common::http_client();
    let response = http
        .post(service.url("/reserve"))
        .send()
        .await
        .expect("POST");
    let (status, _, body) = common::parts(response).await;
    assert_eq!(status, 503);
    let log = service.lines().join("\n");
    assert!(
        !log.contains(wrong) && !body.to_string().contains(wrong),
        "{log}"
    );
}

#[test]
fn a_bad_redis_url_is_refused_without_its_password() {
    let output = Command::new(BINARY)
        .env("REDIS_URL", format!("nope://app:{PASSWORD}@h:1"))
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope://app:***@h:1"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}
