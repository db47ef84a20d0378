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

mod args;
mod holds;
mod primaries;
mod rate;
mod replicas;
mod reservations;
pub mod scripts;
mod trains;

pub use crate::error::StoreError;
pub use holds::{Confirm, ConfirmReply, Confirming, HoldReply, HoldRequest, HoldView, Holding};
pub use rate::Limiting;
pub use reservations::{Reservation, ReservationView, ReserveReply, Reserving};
pub use trains::{LegState, TrainState};

use args::CallArgs;
use scripts::{key_parts, Scripts};

use std::{sync::Arc, time::Duration};

use fred::{
    prelude::{
        Builder, Client, ClientLike, Config as RedisConfig, ConnectionConfig, Error as RedisError,
        EventInterface, LuaInterface, PerformanceConfig, Pool, ReconnectPolicy, TcpConfig,
    },
    types::{config::UnresponsiveConfig, scripts::Script, FromValue, Value},
};

use crate::{batch::CallId, config::Config, metrics::Metrics};

/// Clients in the pool: fred pipelines concurrent commands on each connection,
/// and two connections keep both cores busy without contending (see NOTES.md).
const POOL_SIZE: usize = 2;

/// How much later than fred's own command timeout `bounded` gives up.
const FRED_TIMES_OUT_FIRST: Duration = Duration::from_millis(100);

/// Idempotency records and ended ids are kept this long (the contract: 24 hours).
const MEMORY_MS: &str = "86400000";

pub struct Store {
    pool: Pool,
    scripts: Scripts,
    prefix: String,
    /// ARGV[2..=5] of every train script: lock PX, memory, per-user limit,
    /// how long a call's key is kept.
    common: [String; 4],
    /// A Redis Cluster: one script call may only touch one hash slot.
    clustered: bool,
    timeout: Duration,
    /// Counts script calls (`script_calls_total`) and batch sizes.
    pub metrics: Arc<Metrics>,
    /// `REPLICA_ACKS`: replicas that must acknowledge each write (see `replicas`).
    replica_acks: u32,
}

impl Store {
    /// Builds the pool (not yet connected). fred by default neither reconnects
    /// nor times commands out; both are set here so an outage gives fast 503s
    /// and heals by itself.
    pub fn new(config: &Config, url: &str, metrics: Arc<Metrics>) -> Result<Store, StoreError> {
        let mut redis_config = RedisConfig::from_url(url)
            .map_err(|e| StoreError::Failed(format!("bad REDIS_URL: {e}")))?;
        // Otherwise a Redis that is down at start-up ends the connection task
        // for good, and the service would never become ready.
        redis_config.fail_fast = false;
        let timeout = config.request_timeout();
        let clustered = redis_config.server.is_clustered();
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
            clustered,
            pool,
            scripts: Scripts::new(),
            prefix: config.key_prefix.clone(),
            common: [
                config.lock_ttl_ms.to_string(),
                MEMORY_MS.to_owned(),
                config.max_seats_per_user.to_string(),
                config.call_window_ms.to_string(),
            ],
            timeout,
            metrics,
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
            // The first connection is a start-up step; any later one is a reconnect.
            let connected = std::sync::atomic::AtomicBool::new(false);
            client.on_reconnect(move |server| {
                let again = connected.swap(true, std::sync::atomic::Ordering::Relaxed);
                async move {
                    if again {
                        tracing::warn!(%server, "Redis connection re-established");
                    } else {
                        tracing::info!(%server, "Redis connection established");
                    }
                    Ok(())
                }
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

    /// `name=SHA1` of every script, for the start-up log.
    pub fn script_sha1s(&self) -> Vec<String> {
        let all = self.scripts.all();
        scripts::NAMES
            .iter()
            .zip(all)
            .map(|(name, script)| format!("{name}={}", &**script.sha1()))
            .collect()
    }

    /// Which group-commit queue a train's requests join: requests that one
    /// script call may carry together share a shard. A single Redis runs any
    /// keys in one call (one shard); a cluster only keys of one hash slot.
    pub fn shard(&self, train_id: &str) -> u16 {
        if self.clustered {
            fred::util::redis_keyslot(format!("{{{train_id}}}").as_bytes())
        } else {
            0
        }
    }

    /// The shard of any key named in full (`shard` is a train's).
    pub fn key_shard(&self, key: &str) -> u16 {
        if self.clustered {
            fred::util::redis_keyslot(key.as_bytes())
        } else {
            0
        }
    }

    /// The client for a train's calls: all calls of one group-commit queue
    /// travel on one connection, so Redis runs them in the order sent.
    fn client(&self, train_id: &str) -> &Client {
        self.client_at(self.shard(train_id))
    }

    /// The client for the calls of a shard.
    fn client_at(&self, shard: u16) -> &Client {
        let clients = self.pool.clients();
        &clients[usize::from(shard) % clients.len()]
    }

    /// The name of one key of a train (`scripts::key_parts`).
    fn key(&self, train_id: &str, name: &str) -> String {
        key_parts(&self.prefix, train_id, name).concat()
    }

    /// One call of a train script (prelude.lua + its own part) for a batch
    /// whose members may name different trains. KEYS: the train's keys the
    /// script takes (`Scripts::train_keys`: thirteen, or seven), the
    /// call's own key, the key of the call it follows (`id.after`), then the
    /// idempotency records the members name; ARGV: the common five (token,
    /// lock PX, memory, per-user limit, call key PX), the followed key's
    /// index (0 = none), then per train the index of its first key, its
    /// member count and its members' fields, which `fields` writes (in
    /// arrival order within the train). Returns `width` reply values per
    /// member, in the batch's order. Every train script writes, so with
    /// `REPLICA_ACKS` the call waits for the replicas (`eval_write`).
    async fn call_trains<M>(
        &self,
        script: &Script,
        batch: &[(String, M)],
        id: &CallId,
        width: usize,
        fields: impl Fn(&M, &mut Records, &mut CallArgs),
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let train_keys = self.scripts.train_keys(script);
        // Trains in order of first arrival, each with its members' positions.
        let mut trains: Vec<(&str, Vec<usize>)> = Vec::new();
        for (at, (train, _)) in batch.iter().enumerate() {
            match trains.iter_mut().find(|(t, _)| *t == train.as_str()) {
                Some((_, members)) => members.push(at),
                None => trains.push((train, vec![at])),
            }
        }
        let key_bytes: usize = trains
            .iter()
            .map(|(train, _)| train_keys.len() * (self.prefix.len() + train.len() + 16))
            .sum();
        let mut call = CallArgs::with_capacity(
            train_keys.len() * trains.len() + 2,
            6 + 2 * trains.len() + 6 * batch.len(),
            key_bytes + 128 + 96 * batch.len(),
        );
        for (train, _) in &trains {
            for name in train_keys {
                call.train_key(&self.prefix, train, name);
            }
        }
        let first_train = trains.first().map_or("", |(train, _)| train);
        call.train_key(&self.prefix, first_train, &format!("call:{}", id.token));
        // The followed call's key, and its KEYS index (0: follows none).
        let mut after = 0;
        if let Some((train, token)) = &id.after {
            call.train_key(&self.prefix, train, &format!("call:{token}"));
            after = call.keys.len();
        }
        let mut records = Records {
            first: call.keys.len(),
            prefix: &self.prefix,
            train: "",
            names: Vec::new(),
        };
        call.arg(&id.token);
        for common in &self.common {
            call.arg(common);
        }
        call.number(after);
        let mut order = Vec::with_capacity(batch.len());
        for (n, (train, members)) in trains.iter().enumerate() {
            call.number(train_keys.len() * n + 1);
            call.number(members.len());
            records.train = train;
            for &at in members {
                fields(&batch[at].1, &mut records, &mut call);
                order.push(at);
            }
        }
        for name in &records.names {
            call.key(name);
        }
        let reply = self
            .eval_write(script, call, self.client(first_train))
            .await?;
        let reply: Vec<Value> = FromValue::from_value(reply)
            .map_err(|e| StoreError::Failed(format!("unexpected script reply: {e}")))?;
        let mut answers: Vec<Vec<Value>> = vec![Vec::new(); batch.len()];
        for (answer, at) in per_member(reply, width, batch.len())?
            .into_iter()
            .zip(order)
        {
            answers[at] = answer;
        }
        Ok(answers)
    }

    /// `call_trains` for one member of one train (release, cancel,
    /// put_train), whose fields `member` writes.
    async fn call_one(
        &self,
        script: &Script,
        train_id: &str,
        member: impl Fn(&mut CallArgs),
        width: usize,
    ) -> Result<Vec<Value>, StoreError> {
        let batch = [(train_id.to_owned(), ())];
        let mut answers = self
            .call_trains(script, &batch, &CallId::new(), width, |_, _, call| {
                member(call)
            })
            .await?;
        Ok(answers.pop().unwrap_or_default())
    }

    /// One `EVALSHA`. On NOSCRIPT (Redis restarted, failed over, or an
    /// operator ran SCRIPT FLUSH) it sends the script itself with `EVAL`, which
    /// also caches it again: unlike SCRIPT LOAD then EVALSHA, no second flush
    /// in between can make it fail. Each of the two is bounded on its own
    /// (`bounded`), so fred's timeout is the one that fires.
    async fn eval<R: FromValue>(
        &self,
        script: &Script,
        call: CallArgs,
        client: &Client,
    ) -> Result<R, StoreError> {
        self.metrics.script_call(self.scripts.index(script));
        // Boxed: fred's futures are large, and every caller's future would
        // otherwise carry (and move) them inline.
        let cached = self
            .bounded(Box::pin(async {
                let sha1 = script.sha1().clone();
                match client.evalsha(sha1, call.keys.clone(), call.values()).await {
                    Err(e) if e.details().starts_with("NOSCRIPT") => Ok(None),
                    result => result.map(Some),
                }
            }))
            .await?;
        let value: Value = match cached {
            Some(value) => value,
            None => {
                let lua = script.lua().cloned().unwrap_or_default();
                let eval = client.eval(lua, call.keys.clone(), call.values());
                self.bounded(Box::pin(eval)).await?
            }
        };
        R::from_value(value)
            .map_err(|e| StoreError::Failed(format!("unexpected script reply: {e}")))
    }

    /// Bounds one Redis command a little past fred's own timeout for it
    /// (`default_command_timeout`, the request timeout), so that fred's
    /// fires first: it marks the command timed out, and fred then never
    /// writes it, neither late nor again after a reconnect (fred 10.1,
    /// router/utils.rs:71 and router/mod.rs:374). Dropped by an outer
    /// timeout instead, a command waiting in fred for a reconnect could run
    /// minutes later. So a call runs only within the request timeout of being
    /// made, which the scripts' call keys rely on (`Config::call_window_ms`).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout + FRED_TIMES_OUT_FIRST, call).await {
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

/// What a script adds to an answer about a booking (empty on a train with
/// neither stations nor numbered seats): the stations it runs between and,
/// with a 400 `sold_out`, the legs that lack seats; its seats and their
/// class; a 409's refusal (`seat_taken` with the seats `taken`, or
/// `not_together`); or why a 422 named seats the train does not have. The
/// script sends the fields as one JSON object (`journey_fields` in
/// prelude.lua), which the answer adds to its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Journeying {
    pub from: Option<String>,
    pub to: Option<String>,
    /// `[{"from", "to", "remaining"}]`, passed on as the script wrote it.
    pub full_legs: Option<serde_json::Value>,
    pub seat_ids: Option<Vec<String>>,
    pub class: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub taken: Vec<String>,
    pub detail: Option<String>,
}

impl Journeying {
    fn from_reply(v: &Value) -> Result<Journeying, StoreError> {
        let text = v.as_str().unwrap_or_default();
        if text.is_empty() {
            return Ok(Journeying::default());
        }
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Failed(format!("unreadable journey in a script reply: {e}")))
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

/// The idempotency records a call names, after the trains' keys and the
/// call's own key.
pub(crate) struct Records<'a> {
    /// KEYS before the first record (ten per train, and the call's key).
    first: usize,
    prefix: &'a str,
    /// The train of the member being added.
    train: &'a str,
    names: Vec<String>,
}

impl Records<'_> {
    /// The 1-based KEYS index of the record for an Idempotency-Key on the
    /// member's train, added once: two requests with one key share one
    /// record (the second replays).
    pub fn index(&mut self, key: &str) -> usize {
        let name = key_parts(self.prefix, self.train, &format!("idem:{key}")).concat();
        let at = match self.names.iter().position(|k| *k == name) {
            Some(at) => at,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        };
        self.first + at + 1
    }

    /// A member's last two fields: its record's KEYS index (0 = none) and
    /// its request fingerprint ('' = none).
    pub fn member_args(&mut self, idempotency: &Option<(String, String)>, call: &mut CallArgs) {
        match idempotency {
            None => {
                call.arg("0");
                call.arg("");
            }
            Some((key, fingerprint)) => {
                call.number(self.index(key));
                call.arg(fingerprint);
            }
        }
    }
}

fn status_code(status: i64) -> Result<u16, StoreError> {
    u16::try_from(status)
        .ok()
        .filter(|s| (200..600).contains(s))
        .ok_or_else(|| StoreError::Failed(format!("script returned status {status}")))
}
