//! The Redis side: the connection pool, the Lua scripts in `lua/`, and one typed
//! call per script.
//!
//! Each operation is exactly one `EVALSHA` (reloading the script on NOSCRIPT), so
//! everything that must be atomic happens inside Redis and this file only names
//! keys, passes arguments and decodes replies. It decides nothing: the status a
//! script returns is the HTTP status the client gets.

use std::time::Duration;

use fred::{
    prelude::{
        Builder, ClientLike, Config as RedisConfig, ConnectionConfig, Error as RedisError,
        ErrorKind, EventInterface, LuaInterface, PerformanceConfig, Pool, ReconnectPolicy,
        TcpConfig,
    },
    types::{config::UnresponsiveConfig, scripts::Script, FromValue, MultipleKeys, Value},
};

use crate::config::Config;

/// Clients in the pool: fred pipelines concurrent commands on each connection,
/// and two connections keep both cores busy without contending (see NOTES.md).
const POOL_SIZE: usize = 2;

/// Why a Redis call gave no answer we can pass on.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// Redis unreachable, loading, or slower than the request timeout: the
    /// outcome is unknown (a script may have run). The client may retry.
    Unavailable(String),
    /// Redis answered with an error no retry will fix (a key of the wrong type,
    /// a broken script). Logged; the client gets a 500.
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "Redis unavailable: {why}"),
            StoreError::Failed(why) => write!(f, "Redis error: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<RedisError> for StoreError {
    fn from(error: RedisError) -> Self {
        const TRANSIENT: [&str; 6] = [
            "LOADING",
            "BUSY",
            "MASTERDOWN",
            "READONLY",
            "TRYAGAIN",
            "CLUSTERDOWN",
        ];
        let transient_kind = matches!(
            error.kind(),
            ErrorKind::Timeout
                | ErrorKind::IO
                | ErrorKind::Canceled
                | ErrorKind::Routing
                | ErrorKind::Backpressure
                | ErrorKind::Cluster
        );
        let details = error.details();
        if transient_kind || TRANSIENT.iter().any(|p| details.starts_with(p)) {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Failed(error.to_string())
        }
    }
}

/// The scripts, embedded in the binary at build time.
struct Scripts {
    reserve: Script,
    train: Script,
    put_train: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            reserve: Script::from_lua(include_str!("../lua/reserve.lua")),
            train: Script::from_lua(include_str!("../lua/train.lua")),
            put_train: Script::from_lua(include_str!("../lua/put_train.lua")),
        }
    }

    fn all(&self) -> [&Script; 3] {
        [&self.reserve, &self.train, &self.put_train]
    }
}

/// The keys of one train. The `{ID}` hash tag keeps them in one Cluster slot.
struct TrainKeys {
    base: String,
}

impl TrainKeys {
    fn new(prefix: &str, train_id: &str) -> TrainKeys {
        TrainKeys {
            base: format!("{prefix}:{{{train_id}}}:"),
        }
    }

    fn key(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.base.len() + name.len());
        key.push_str(&self.base);
        key.push_str(name);
        key
    }
}

/// One reservation request, as `reserve.lua` takes it. Owned, because it
/// may wait in a group-commit queue (see `batch`) for the call that carries it.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub reservation_id: String,
    pub seats: u8,
    pub user_id: Option<String>,
    /// `(key, fingerprint of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
}

/// `reserve.lua`'s reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveReply {
    pub status: u16,
    pub reservation_id: String,
    /// Seats left (200, 400) or ms until the lock frees (429).
    pub n: i64,
    pub replayed: bool,
}

/// `train.lua`'s reply, for GET /trains/{id}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainState {
    pub capacity: i64,
    pub remaining: i64,
    pub sold: i64,
    /// `None`: unlocked. `Some(None)`: locked with no expiry. `Some(Some(ms))`.
    pub lock: Option<Option<i64>>,
}

/// Idempotency records are kept this long (the contract: 24 hours).
const IDEMPOTENCY_TTL_MS: &str = "86400000";

pub struct Store {
    pool: Pool,
    scripts: Scripts,
    prefix: String,
    lock_ttl_ms: String,
    timeout: Duration,
}

impl Store {
    /// Builds the pool (not yet connected). fred by default neither reconnects
    /// nor times commands out; both are set here so an outage gives fast 503s
    /// and heals by itself.
    pub fn new(config: &Config, url: &str) -> Result<Store, StoreError> {
        let mut redis_config = RedisConfig::from_url(url)
            .map_err(|e| StoreError::Failed(format!("bad REDIS_URL: {e}")))?;
        // Otherwise a Redis that is down at start-up ends the connection task
        // for good, and the service would never become ready.
        redis_config.fail_fast = false;
        let timeout = config.request_timeout();
        let pool = Builder::from_config(redis_config)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .set_performance_config(PerformanceConfig {
                default_command_timeout: timeout,
                ..Default::default()
            })
            .set_connection_config(ConnectionConfig {
                connection_timeout: timeout.max(Duration::from_secs(1)),
                tcp: TcpConfig {
                    nodelay: Some(true),
                    ..Default::default()
                },
                // A connection with a command unanswered for twice the request
                // timeout is closed and reopened: a half-open TCP connection
                // (fred #307) would otherwise time out every command forever.
                unresponsive: UnresponsiveConfig {
                    max_timeout: Some(timeout * 2),
                    interval: (timeout / 2).max(Duration::from_millis(100)),
                },
                ..Default::default()
            })
            .build_pool(POOL_SIZE)
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(Store {
            pool,
            scripts: Scripts::new(),
            prefix: config.key_prefix.clone(),
            lock_ttl_ms: config.lock_ttl_ms.to_string(),
            timeout,
        })
    }

    /// Starts the connection tasks; they reconnect forever with backoff, and
    /// each failed attempt and each reconnection is logged.
    pub fn connect(&self) {
        for client in self.pool.clients() {
            client.on_error(|(error, server)| async move {
                let at = server.map(|s| format!(" to {s}")).unwrap_or_default();
                tracing::warn!("Redis connection{at}: {error}");
                Ok(())
            });
            client.on_reconnect(|server| async move {
                tracing::info!(%server, "Redis connection (re)established");
                Ok(())
            });
        }
        // The handle finishes only when the pool quits; errors surface per command.
        drop(self.pool.connect());
    }

    /// `SCRIPT LOAD` of every script (on every primary of a cluster).
    pub async fn load_scripts(&self) -> Result<(), StoreError> {
        for script in self.scripts.all() {
            self.bounded(script.load(self.pool.next())).await?;
        }
        Ok(())
    }

    /// Runs `reserve.lua` for one or more reservations on one train, in order;
    /// one reply each, in the same order.
    pub async fn reserve(
        &self,
        train_id: &str,
        batch: &[Reservation],
    ) -> Result<Vec<ReserveReply>, StoreError> {
        let keys = TrainKeys::new(&self.prefix, train_id);
        let mut key_list: Vec<String> = ["stock", "sold", "lock", "reservations"]
            .map(|n| keys.key(n))
            .into();
        let mut args: Vec<String> = Vec::with_capacity(3 + 5 * batch.len());
        let token = batch
            .first()
            .map(|r| r.reservation_id.clone())
            .unwrap_or_default();
        args.extend([
            token,
            self.lock_ttl_ms.clone(),
            IDEMPOTENCY_TTL_MS.to_owned(),
        ]);
        for r in batch {
            let record = match &r.idempotency {
                None => 0,
                Some((key, _)) => {
                    let name = keys.key(&format!("idem:{key}"));
                    // Two requests with one key share one record: the second replays.
                    match key_list.iter().position(|k| *k == name) {
                        Some(at) => at + 1,
                        None => {
                            key_list.push(name);
                            key_list.len()
                        }
                    }
                }
            };
            args.extend([
                r.reservation_id.clone(),
                r.seats.to_string(),
                // A JSON value: the script writes it into the record as is.
                serde_json::to_string(&r.user_id).unwrap_or_else(|_| "null".to_owned()),
                record.to_string(),
                r.idempotency
                    .as_ref()
                    .map(|(_, fp)| fp.clone())
                    .unwrap_or_default(),
            ]);
        }
        let reply: Vec<Value> = self.eval(&self.scripts.reserve, key_list, args).await?;
        if reply.len() != 4 * batch.len() {
            return Err(StoreError::Failed(format!(
                "reserve.lua answered {} values for {} requests",
                reply.len(),
                batch.len()
            )));
        }
        reply
            .chunks_exact(4)
            .map(|answer| {
                let int = |v: &Value| {
                    v.as_i64()
                        .ok_or_else(|| StoreError::Failed(format!("unexpected reply value {v:?}")))
                };
                Ok(ReserveReply {
                    status: status_code(int(&answer[0])?)?,
                    reservation_id: answer[1].as_string().unwrap_or_default(),
                    n: int(&answer[2])?,
                    replayed: int(&answer[3])? == 1,
                })
            })
            .collect()
    }

    /// `None` when the train does not exist.
    pub async fn train(&self, train_id: &str) -> Result<Option<TrainState>, StoreError> {
        let keys = TrainKeys::new(&self.prefix, train_id);
        let key_list: Vec<String> = ["stock", "capacity", "sold", "lock"]
            .map(|n| keys.key(n))
            .into();
        let (stock, capacity, sold, pttl): (Option<String>, Option<String>, Option<String>, i64) =
            self.eval(&self.scripts.train, key_list, Vec::<String>::new())
                .await?;
        let Some(stock) = stock else { return Ok(None) };
        let int = |name: &str, raw: Option<String>| -> Result<Option<i64>, StoreError> {
            raw.map(|v| {
                v.parse().map_err(|_| {
                    StoreError::Failed(format!("{name} of train {train_id} is not an integer"))
                })
            })
            .transpose()
        };
        let remaining = int("stock", Some(stock))?.unwrap_or(0);
        let sold = int("sold", sold)?.unwrap_or(0);
        let capacity = int("capacity", capacity)?.unwrap_or(remaining + sold);
        let lock = match pttl {
            -2 => None,
            -1 => Some(None),
            ms => Some(Some(ms)),
        };
        Ok(Some(TrainState {
            capacity,
            remaining,
            sold,
            lock,
        }))
    }

    /// Creates (or, with `reset`, resets) a train. Returns the script's status:
    /// 201, 200, 409 or 429 (with ms until the lock frees).
    pub async fn put_train(
        &self,
        train_id: &str,
        capacity: u64,
        reset: bool,
    ) -> Result<(u16, i64), StoreError> {
        let keys = TrainKeys::new(&self.prefix, train_id);
        let key_list: Vec<String> = ["stock", "capacity", "lock", "sold", "reservations"]
            .map(|n| keys.key(n))
            .into();
        let args = vec![
            uuid::Uuid::new_v4().to_string(),
            self.lock_ttl_ms.clone(),
            capacity.to_string(),
            if reset { "1" } else { "0" }.to_owned(),
        ];
        let (status, n): (i64, i64) = self.eval(&self.scripts.put_train, key_list, args).await?;
        Ok((status_code(status)?, n))
    }

    /// One `EVALSHA`. On NOSCRIPT (Redis restarted, failed over, or an
    /// operator ran SCRIPT FLUSH) it sends the script itself with `EVAL`, which
    /// also caches it again: unlike SCRIPT LOAD then EVALSHA, no second flush
    /// in between can make it fail.
    async fn eval<R: FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, StoreError> {
        let client = self.pool.next();
        let keys = MultipleKeys::from(keys);
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        let call = async {
            match client
                .evalsha::<Value, _, _, _>(script.sha1().clone(), keys.clone(), args.clone())
                .await
            {
                Err(e) if e.details().starts_with("NOSCRIPT") => {
                    let lua = script.lua().cloned().unwrap_or_default();
                    client.eval(lua, keys, args).await
                }
                result => result,
            }
        };
        // Boxed: fred's future is large, and every caller's future would
        // otherwise carry (and move) it inline.
        let value = self.bounded(Box::pin(call)).await?;
        R::from_value(value)
            .map_err(|e| StoreError::Failed(format!("unexpected script reply: {e}")))
    }

    /// Bounds one Redis call by the request timeout. fred's own command timeout
    /// covers a command; this also covers the NOSCRIPT reload and retry.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    pub async fn quit(&self) {
        let _ = self.pool.quit().await;
    }
}

fn status_code(status: i64) -> Result<u16, StoreError> {
    u16::try_from(status)
        .ok()
        .filter(|s| (200..600).contains(s))
        .ok_or_else(|| StoreError::Failed(format!("script returned status {status}")))
}
