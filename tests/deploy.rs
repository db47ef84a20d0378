//! The container path, checked without a Docker engine: a deployment started
//! with an empty ADMIN_TOKEN (what `.env` files and Compose easily pass) has
//! its admin endpoints off.

mod common;

use std::process::{Child, Command, Stdio};

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
