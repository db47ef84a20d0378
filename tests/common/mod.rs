//! The test harness: a real redis-server per test (the service's own
//! `EmbeddedRedis`, on a free loopback port with a temporary data directory),
//! the service started in-process on port 0, an HTTP client, and a Redis
//! client for looking at keys the way an operator with redis-cli would.
//!
//! Everything a `Harness` started stops when it is dropped: the server first,
//! then redis-server by its own PID.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod cluster;
pub mod seats;

use std::{collections::BTreeMap, time::Duration};

use fred::{
    prelude::{Builder, ClientLike, Config as RedisConfig},
    types::{ClusterHash, CustomCommand, Value},
};
use serde_json::Value as Json;
use tempfile::TempDir;
use train_reservation::{Config, EmbeddedRedis, Server};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct Harness {
    pub server: Option<Server>,
    pub redis: Option<EmbeddedRedis>,
    pub redis_url: String,
    pub http: reqwest::Client,
    pub cli: fred::prelude::Client,
    pub dir: TempDir,
}

/// A test's own Redis, started from the test's own thread (see `embedded`).
pub fn start_redis() -> (TempDir, EmbeddedRedis) {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = EmbeddedRedis::start(&dir.path().join("redis")).expect(
        "redis-server must be installed for the tests (make test installs it: apt-get install -y redis-server)",
    );
    (dir, redis)
}

impl Harness {
    /// Redis, then the service with the contract's defaults and an admin token.
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Harness {
        let (dir, redis) = start_redis();
        let redis_url = redis.url();
        let mut config = Config::for_tests(&redis_url);
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        adjust(&mut config);
        let server = Server::start(config, &redis_url)
            .await
            .expect("server starts");
        let cli = redis_client(&redis_url).await;
        let harness = Harness {
            server: Some(server),
            redis: Some(redis),
            redis_url,
            http: http_client(),
            cli,
            dir,
        };
        harness.wait_ready().await;
        harness
    }

    /// The service against a Redis this harness did not start (a `Cluster`,
    /// which the test keeps and drops after the harness). `cli` is a client of
    /// that URL, so on a cluster it follows the keys to their primaries.
    pub async fn start_on(redis_url: &str, adjust: impl FnOnce(&mut Config)) -> Harness {
        let mut config = Config::for_tests(redis_url);
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        adjust(&mut config);
        let server = Server::start(config, redis_url)
            .await
            .expect("server starts");
        let harness = Harness {
            server: Some(server),
            redis: None,
            redis_url: redis_url.to_owned(),
            http: http_client(),
            cli: redis_client(redis_url).await,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        harness.wait_ready().await;
        harness
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server().url(), path)
    }

    /// Calls of one script the service has sent, from its `/metrics`
    /// (`script_calls_total{script=...}`); None before the first.
    pub async fn script_calls(&self, script: &str) -> Option<u64> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics");
        let prefix = format!("train_reservation_script_calls_total{{script=\"{script}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
    }

    /// Polls /readyz until 200 (bounded): the readiness check the service offers.
    pub async fn wait_ready(&self) {
        wait_until_ready(&self.http, &self.url("/readyz")).await;
    }

    /// Creates a train the way an operator would: `MSET stock N capacity N`.
    pub async fn create_train(&self, id: &str, seats: u64) {
        self.cmd(
            "MSET",
            vec![
                format!("train:{{{id}}}:stock"),
                seats.to_string(),
                format!("train:{{{id}}}:capacity"),
                seats.to_string(),
            ],
        )
        .await;
    }

    /// Runs any Redis command; its error as text.
    pub async fn cmd_result(&self, name: &'static str, args: Vec<String>) -> Result<Value, String> {
        self.cli
            .custom(
                CustomCommand::new_static(name, ClusterHash::FirstKey, false),
                args,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs any Redis command, as redis-cli would.
    pub async fn cmd(&self, name: &'static str, args: Vec<String>) -> Value {
        redis_cmd(&self.cli, name, args).await
    }

    pub async fn post_reserve(&self, body: Json) -> (u16, reqwest::header::HeaderMap, Json) {
        let response = self
            .http
            .post(self.url("/reserve"))
            .json(&body)
            .send()
            .await
            .expect("POST /reserve");
        parts(response).await
    }

    /// Any request: method, path, optional JSON body, optional bearer token.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
        bearer: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Json) {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        parts(response).await
    }

    /// GET a path: status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Json) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let (status, _, body) = parts(response).await;
        (status, body)
    }

    /// What redis-cli would show of one train.
    pub async fn train(&self, id: &str) -> TrainKeys {
        let key = |name: &str| format!("train:{{{id}}}:{name}");
        let int = |v: Value| match v {
            Value::Null => None,
            other => Some(
                other
                    .as_string()
                    .and_then(|s| s.parse::<i64>().ok())
                    .expect("integer value"),
            ),
        };
        // RESP2: HGETALL and ZRANGE WITHSCORES are flat arrays of pairs.
        let pairs = |v: Value| match v {
            Value::Array(items) => items
                .chunks(2)
                .map(|pair| {
                    let field = pair[0].as_string().expect("field");
                    (field, pair[1].as_string().expect("value"))
                })
                .collect::<BTreeMap<String, String>>(),
            other => panic!("unexpected reply {other:?}"),
        };
        let records = |v: Value| {
            pairs(v)
                .into_iter()
                .map(|(id, raw)| (id, serde_json::from_str(&raw).expect("record JSON")))
                .collect()
        };
        let expiry = self
            .cmd(
                "ZRANGE",
                vec![
                    key("hold_expiry"),
                    "0".into(),
                    "-1".into(),
                    "WITHSCORES".into(),
                ],
            )
            .await;
        TrainKeys {
            stock: int(self.cmd("GET", vec![key("stock")]).await),
            capacity: int(self.cmd("GET", vec![key("capacity")]).await),
            sold: int(self.cmd("GET", vec![key("sold")]).await),
            held: int(self.cmd("GET", vec![key("held")]).await),
            lock: self.cmd("GET", vec![key("lock")]).await.as_string(),
            reservations: records(self.cmd("HGETALL", vec![key("reservations")]).await),
            holds: records(self.cmd("HGETALL", vec![key("holds")]).await),
            hold_expiry: pairs(expiry)
                .into_iter()
                .map(|(id, score)| (id, score.parse().expect("score")))
                .collect(),
            users: pairs(self.cmd("HGETALL", vec![key("users")]).await)
                .into_iter()
                .map(|(user, n)| (user, n.parse().expect("seats")))
                .collect(),
        }
    }

    /// Every key and its value (DUMP), to show that a request changed nothing.
    pub async fn all_keys(&self) -> BTreeMap<String, Vec<u8>> {
        let keys = match self.cmd("KEYS", vec!["*".into()]).await {
            Value::Array(keys) => keys,
            other => panic!("unexpected KEYS reply {other:?}"),
        };
        let mut all = BTreeMap::new();
        for key in keys {
            let key = key.as_string().expect("key");
            let dump = match self.cmd("DUMP", vec![key.clone()]).await {
                Value::Bytes(b) => b.to_vec(),
                Value::String(s) => s.as_bytes().to_vec(),
                other => panic!("unexpected DUMP reply {other:?}"),
            };
            all.insert(key, dump);
        }
        all
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The server's tasks die with the test's runtime; Redis stops by PID here.
        drop(self.server.take());
        drop(self.redis.take());
    }
}

/// Calls a train script directly with EVAL (as a client library's retry
/// would re-send it): the train's twelve keys plus `idem_keys`, the common
/// arguments (lock token, lock PX 3000, memory 24 h, `limit` seats per user,
/// call key 60 s, following no call),
/// then the one train's key index (1), member count and `members` (`width`
/// fields each, flat). Members of reserve.lua and hold.lua given without
/// their journey and seat fields get them added (all '': the whole route,
/// seats unnumbered).
pub async fn eval_train_script(
    cli: &fred::prelude::Client,
    script: &str,
    train: &str,
    idem_keys: &[&str],
    limit: u64,
    width: usize,
    members: Vec<String>,
) -> Result<Value, String> {
    let mut keys: Vec<String> = train_reservation::store::scripts::TRAIN_KEYS
        .iter()
        .map(|k| format!("train:{{{train}}}:{k}"))
        .collect();
    // The call's own key (a re-sent call is told from a first run by it).
    keys.push(format!("train:{{{train}}}:call:test-token"));
    keys.extend(
        idem_keys
            .iter()
            .map(|k| format!("train:{{{train}}}:idem:{k}")),
    );
    let mut args = vec![script.to_owned(), keys.len().to_string()];
    args.extend(keys);
    args.extend([
        "test-token".into(),
        "3000".into(),
        "86400000".into(),
        limit.to_string(),
        "60000".into(),
        "0".into(),
    ]);
    args.extend(["1".into(), (members.len() / width).to_string()]);
    // Their members without the last five fields (5 and 6 wide), as most
    // tests give them.
    let short = [
        (train_reservation::store::scripts::RESERVE, 5),
        (train_reservation::store::scripts::HOLD, 6),
    ];
    if short.contains(&(script, width)) {
        for member in members.chunks(width) {
            args.extend(member.iter().cloned());
            // from, to, class, seat ids, together: none asked.
            args.extend(std::iter::repeat_n(String::new(), 5));
        }
    } else {
        args.extend(members);
    }
    cli.custom::<Value, String>(
        CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false),
        args,
    )
    .await
    .map_err(|e| e.to_string())
}

/// One train as stored in Redis.
#[derive(Debug)]
pub struct TrainKeys {
    pub stock: Option<i64>,
    pub capacity: Option<i64>,
    pub sold: Option<i64>,
    pub held: Option<i64>,
    pub lock: Option<String>,
    pub reservations: BTreeMap<String, Json>,
    pub holds: BTreeMap<String, Json>,
    /// hold id -> expires_at_ms
    pub hold_expiry: BTreeMap<String, i64>,
    pub users: BTreeMap<String, i64>,
}

impl TrainKeys {
    /// The contract's invariant: capacity = stock + sold + held, stock >= 0,
    /// held >= 0; the reservations' seats add up to sold, the holds' to held;
    /// `holds` and `hold_expiry` name the same holds (with the same expiry);
    /// and `users` adds up to the named users' reserved plus held seats.
    pub fn assert_invariants(&self) {
        let stock = self.stock.expect("stock exists");
        let sold = self.sold.unwrap_or(0);
        let held = self.held.unwrap_or(0);
        assert!(
            stock >= 0 && held >= 0,
            "stock or held went negative: {self:?}"
        );
        assert_eq!(
            self.capacity,
            Some(stock + sold + held),
            "capacity != stock + sold + held: {self:?}"
        );
        let seats = |records: &BTreeMap<String, Json>| -> i64 {
            records
                .values()
                .map(|r| r["seats"].as_i64().expect("seats"))
                .sum()
        };
        assert_eq!(
            seats(&self.reservations),
            sold,
            "reservations' seats != sold: {self:?}"
        );
        assert_eq!(seats(&self.holds), held, "holds' seats != held: {self:?}");
        let expiry: BTreeMap<String, i64> = self
            .holds
            .iter()
            .map(|(id, h)| {
                (
                    id.clone(),
                    h["expires_at_ms"].as_i64().expect("expires_at_ms"),
                )
            })
            .collect();
        assert_eq!(expiry, self.hold_expiry, "holds != hold_expiry: {self:?}");
        let mut per_user: BTreeMap<String, i64> = BTreeMap::new();
        for r in self.reservations.values().chain(self.holds.values()) {
            if let Some(user) = r["user_id"].as_str() {
                *per_user.entry(user.to_owned()).or_default() +=
                    r["seats"].as_i64().expect("seats");
            }
        }
        assert_eq!(
            per_user, self.users,
            "users != seats per named user: {self:?}"
        );
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

pub async fn redis_client(url: &str) -> fred::prelude::Client {
    let client = Builder::from_config(RedisConfig::from_url(url).expect("redis url"))
        .build()
        .expect("redis client");
    client.init().await.expect("redis connects");
    client
}

pub async fn redis_cmd(
    client: &fred::prelude::Client,
    name: &'static str,
    args: Vec<String>,
) -> Value {
    client
        .custom(
            CustomCommand::new_static(name, ClusterHash::FirstKey, false),
            args,
        )
        .await
        .unwrap_or_else(|e| panic!("{name} failed: {e}"))
}

pub async fn wait_until_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..400 {
        if let Ok(r) = http.get(url).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never answered 200");
}

/// Status, headers and JSON body of a response; the body must be JSON.
pub async fn parts(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Json) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, headers, json)
}

/// Sends raw bytes and reads the raw response (the server closes or answers
/// within the timeout), for what an HTTP library would refuse to send.
pub async fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the server answers within 10 s");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if response_complete(&buf) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn response_complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

/// A bounded background load: `workers` tasks each posting `body` to
/// /reserve one request after another, until `finish` or `max_each` requests.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ok: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tasks: tokio::task::JoinSet<Vec<(u16, Json)>>,
}

impl Load {
    pub fn start(h: &Harness, workers: usize, max_each: usize, body: Json) -> Load {
        Load::start_over(&h.http, vec![(h.url("/reserve"), body)], workers, max_each)
    }

    /// The same over several (URL, body) targets: worker `i` posts to
    /// `targets[i % targets.len()]` (several trains, several instances).
    pub fn start_over(
        http: &reqwest::Client,
        targets: Vec<(String, Json)>,
        workers: usize,
        max_each: usize,
    ) -> Load {
        use std::sync::{atomic::*, Arc};
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..workers {
            let (url, body) = targets[worker % targets.len()].clone();
            let http = http.clone();
            let (stop, done, ok) = (stop.clone(), done.clone(), ok.clone());
            tasks.spawn(async move {
                let mut results = Vec::new();
                while !stop.load(Ordering::Relaxed) && results.len() < max_each {
                    let result = match http.post(&url).json(&body).send().await {
                        Ok(response) => {
                            let (status, _, json) = parts(response).await;
                            (status, json)
                        }
                        Err(e) => (0, Json::String(e.to_string())),
                    };
                    if result.0 == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    results.push(result);
                }
                results
            });
        }
        Load {
            stop,
            done,
            ok,
            tasks,
        }
    }

    pub fn completed(&self) -> usize {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn succeeded(&self) -> usize {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits (bounded) until `count()` reaches `target`: progress of the load
    /// itself is the signal, not the clock.
    pub async fn wait_for(&self, what: &str, count: impl Fn(&Load) -> usize, target: usize) {
        for _ in 0..3000 {
            if count(self) >= target {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("load never reached {target} {what} (at {})", count(self));
    }

    pub async fn finish(mut self) -> Vec<(u16, Json)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut all = Vec::new();
        while let Some(results) = self.tasks.join_next().await {
            all.extend(results.expect("load task"));
        }
        all
    }
}

/// How many answers had each status (0 = no HTTP answer at all).
pub fn statuses(results: &[(u16, Json)]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for (status, _) in results {
        *counts.entry(*status).or_default() += 1;
    }
    counts
}
