//! The container path, checked without a Docker engine: the Dockerfile's Rust
//! image can build the package (it is at least Cargo.toml's `rust-version`),
//! its HEALTHCHECK runs a command the binary has, and a deployment started
//! with an empty ADMIN_TOKEN (what `.env` files and Compose easily pass) has
//! its admin endpoints off. docker-compose.yml itself is parsed by
//! docker-compose in `make test` (scripts/check-compose.sh).

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use clap::Parser;
use train_reservation::config::{Cli, Command as Subcommand};

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// "1.85" or "1.85.1" -> [1, 85, 0], compared as numbers ("1.100" > "1.85").
fn version(text: &str) -> Option<[u64; 3]> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some([major, minor, patch])
}

/// `rust-version = "X.Y"` of the [package] section.
fn rust_version(cargo_toml: &str) -> Option<[u64; 3]> {
    let mut in_package = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = line.strip_prefix("rust-version") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            if in_package {
                return version(value.trim_matches('"'));
            }
        }
    }
    None
}

/// The version of every `FROM rust:X.Y[...]` line, e.g. `rust:1.85-slim-bookworm`.
fn rust_images(dockerfile: &str) -> Vec<(String, Option<[u64; 3]>)> {
    dockerfile
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if !words.next()?.eq_ignore_ascii_case("FROM") {
                return None;
            }
            let image = words.find(|w| !w.starts_with("--"))?;
            let tag = image
                .strip_prefix("rust:")
                .or_else(|| image.strip_prefix("docker.io/library/rust:"))?;
            let number = tag.split(['-', '@']).next().unwrap_or_default();
            Some((image.to_owned(), version(number)))
        })
        .collect()
}

#[test]
fn versions_compare_as_numbers() {
    assert_eq!(version("1.85"), Some([1, 85, 0]));
    assert_eq!(version("1.85.1"), Some([1, 85, 1]));
    assert!(version("1.100") > version("1.85"));
    assert!(version("1.9") < version("1.85"));
    assert_eq!(version("latest"), None);
    assert_eq!(version("1"), None);
    assert_eq!(
        rust_version("[package]\nname = \"x\"\nrust-version = \"1.88\"\n[dependencies]\n"),
        Some([1, 88, 0])
    );
    assert_eq!(
        rust_images(
            "FROM --platform=$BUILDPLATFORM rust:1.90.2-slim AS b\nFROM debian\nFROM rust:latest\n"
        ),
        vec![
            ("rust:1.90.2-slim".to_owned(), Some([1, 90, 2])),
            ("rust:latest".to_owned(), None),
        ]
    );
}

#[test]
fn dockerfile_rust_image_is_at_least_the_rust_version() {
    let cargo_toml = read("Cargo.toml");
    let required = rust_version(&cargo_toml).expect("Cargo.toml has rust-version = \"X.Y\"");
    let images = rust_images(&read("Dockerfile"));
    assert!(!images.is_empty(), "the Dockerfile builds FROM rust:X.Y");
    for (image, found) in images {
        let found = found.unwrap_or_else(|| {
            panic!("Dockerfile: FROM {image}: pin a version (rust:X.Y), not a moving tag")
        });
        assert!(
            found >= required,
            "Dockerfile: FROM {image} is older than Cargo.toml's rust-version {required:?}: \
             raise the image with the rust-version"
        );
    }
}

/// The JSON array after `HEALTHCHECK ... CMD`, continuation lines joined.
fn healthcheck_command(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.trim_start().starts_with("HEALTHCHECK"))
        .expect("the Dockerfile has a HEALTHCHECK");
    let (_, json) = line.split_once(" CMD ").expect("HEALTHCHECK ... CMD [...]");
    serde_json::from_str(json.trim()).expect("CMD in exec form: a JSON array")
}

#[test]
fn dockerfile_healthcheck_runs_the_probe() {
    let dockerfile = read("Dockerfile");
    let command = healthcheck_command(&dockerfile);
    assert_eq!(
        command.first().map(String::as_str),
        Some("/usr/local/bin/train-reservation"),
        "{command:?}"
    );
    assert!(
        dockerfile.contains(
            "COPY --from=build /usr/local/bin/train-reservation /usr/local/bin/train-reservation"
        ),
        "the probe runs the binary the image ships"
    );
    let cli = Cli::try_parse_from(&command).unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert_eq!(cli.command, Some(Subcommand::Healthcheck { url: None }));
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ADMIN_TOKEN=` (set, empty) is no token: PUT /trains/{id} answers 403 as
/// with no ADMIN_TOKEN at all, whatever bearer a client presents, including
/// the empty one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_admin_token_leaves_admin_off() {
    let (_dir, redis) = common::start_redis();
    let port = train_reservation::embedded::free_port().expect("port");
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_train-reservation"))
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("REDIS_URL", redis.url())
            .env("ADMIN_TOKEN", "")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("service starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = common::http_client();
    common::wait_until_ready(&http, &format!("{base}/readyz")).await;
    for authorization in [None, Some("Bearer "), Some("Bearer x")] {
        let mut request = http
            .put(format!("{base}/trains/t1"))
            .json(&serde_json::json!({"capacity": 5}));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let (status, _, body) = common::parts(request.send().await.expect("PUT")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "Authorization {authorization:?}: {body}"
        );
    }
}
