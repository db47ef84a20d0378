//! The Redis side: the connection pool, the Lua scripts in `lua/`, and one typed
//! call per script, grouped by resource (`reservations`, `holds`, `trains`).
//!
//! Each operation is exactly one `EVALSHA` (reloading the script on NOSCRIPT), so
//! everything that must be atomic happens inside Redis and these files only name
//! keys, pass arguments and decode replies. They decide nothing: the status a
//! script returns is the HTTP status the client gets.
//!
//! Two things only replicas and clusters need have their own files: the `WAIT`
//! after a write when `REPLICA_ACKS` is set (`replicas`), and the script
//! caches of every primary for `/readyz` (`primaries`).

mod holds;
mod primaries;
mod replicas;
mod reservations;
pub mod scripts;
mod trains;

pub use holds::{Confirm, ConfirmReply, Confirming, HoldReply, HoldRequest, HoldView, Holding};
pub use reservations::{Reservation, ReservationView, ReserveReply, Reserving};
pub use trains::TrainState;

use scripts::{Scripts, TrainKeys};

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

/// Idempotency records and ended ids are kept this long (the contract: 24 hours).
const MEMORY_MS: &str = "86400000";

pub struct Store {
    pool: Pool,
    scripts: Scripts,
    prefix: String,
    /// ARGV[2..=4] of every train script: lock PX, memory, per-user limit.
    common: [String; 3],
    timeout: Duration,
    /// `REPLICA_ACKS`: replicas that must acknowledge each write (see `replicas`).
    replica_acks: u32,
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
            common: [
                config.lock_ttl_ms.to_string(),
                MEMORY_MS.to_owned(),
                config.max_seats_per_user.to_string(),
            ],
            timeout,
            replica_acks: config.replica_acks,
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

    /// The keys of one train, to which a call adds its idempotency records.
    fn keys<'a>(&'a self, train_id: &'a str) -> TrainKeys<'a> {
        TrainKeys::new(&self.prefix, train_id)
    }

    /// One call of a train script (prelude.lua + its own part): the train's
    /// keys, the common ARGV (lock token, lock PX, memory, per-user limit),
    /// then the members. Every train script writes, so with `REPLICA_ACKS` the
    /// call waits for the replicas (`eval_write`).
    async fn call_train<R: FromValue>(
        &self,
        script: &Script,
        keys: TrainKeys<'_>,
        token: String,
        members: Vec<String>,
    ) -> Result<R, StoreError> {
        let mut args = Vec::with_capacity(4 + members.len());
        args.push(token);
        args.extend(self.common.iter().cloned());
        args.extend(members);
        let value = self.eval_write(script, keys.into_list(), args).await?;
        R::from_value(value)
            .map_err(|e| StoreError::Failed(format!("unexpected script reply: {e}")))
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

/// An integer element of a script's reply.
fn int(v: &Value) -> Result<i64, StoreError> {
    v.as_i64()
        .ok_or_else(|| StoreError::Failed(format!("unexpected reply value {v:?}")))
}

/// A script's flat reply split into `width` values per member, checked
/// against the number of members sent.
fn per_member(
    reply: Vec<Value>,
    width: usize,
    members: usize,
) -> Result<Vec<Vec<Value>>, StoreError> {
    if reply.len() != width * members {
        return Err(StoreError::Failed(format!(
            "a script answered {} values for {members} requests",
            reply.len()
        )));
    }
    Ok(reply.chunks_exact(width).map(<[Value]>::to_vec).collect())
}

/// A user as the scripts take it: '' (anonymous) or a JSON string literal.
fn user_arg(user: Option<&str>) -> String {
    user.map(|u| serde_json::Value::from(u).to_string())
        .unwrap_or_default()
}

fn status_code(status: i64) -> Result<u16, StoreError> {
    u16::try_from(status)
        .ok()
        .filter(|s| (200..600).contains(s))
        .ok_or_else(|| StoreError::Failed(format!("script returned status {status}")))
}
