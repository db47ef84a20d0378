//! `REPLICA_ACKS`: after a script call that wrote, `WAIT N REQUEST_TIMEOUT_MS`
//! on the same connection, so the answer waits until N replicas have the write.
//!
//! `WAIT` counts the writes of the connection it is sent on, so it must reach
//! the very connection (and so the primary) that ran the script. fred 10.1
//! gives no direct way to say "the connection of that command":
//! - its own `wait()` (commands/impls/server.rs:280) hashes its first string
//!   argument (`ClusterHash::FirstKey`, protocol/hashers.rs); WAIT's arguments
//!   are integers, so on a cluster it goes to whichever connection comes first
//!   (router/mod.rs:196-203), not to the primary that ran the script;
//! - `Pipeline` has no `LuaInterface` (clients/pipeline.rs), and
//!   `with_cluster_node` names a server, not a connection.
//!
//! So the script and the `WAIT` go as one fred pipeline of two custom
//! commands, both routed by the train's hash slot (`ClusterHash::Custom`):
//! fred's router writes a pipeline's commands one after the other, each routed
//! with the same cached slot table (router/commands.rs:230-248), so both land
//! on one connection, in order. One call per group-commit batch, so one `WAIT`
//! covers the whole batch.
//!
//! Two fred behaviours could still split them, and both are turned into a 503:
//! - a command in flight when its connection drops is re-sent on a new
//!   connection (`max_command_attempts`), where a lone `WAIT` would count
//!   nothing of ours and pass at once;
//! - a `MOVED` reply makes fred re-send the script to another node
//!   (router/commands.rs:288-313) while the `WAIT` already ran on the first.
//!
//! Each command of the pair is allowed exactly one write (`max_attempts: 1`);
//! fred re-sends on redirection through the same write path, which then
//! refuses ("Too many failed write attempts", protocol/command.rs:1776), so
//! a pair that did not run together on one connection fails as a whole.
//! (`max_redirections: 0` would say it more directly, but fred reads 0 as
//! "use the client's default", protocol/command.rs:1886.) A 503 says the
//! outcome is unknown, which is true: retrying with the same Idempotency-Key
//! is safe.

use fred::{
    prelude::{Client, ClientLike, Error as RedisError, ErrorKind},
    types::{config::Options, scripts::Script, ClusterHash, CustomCommand, Value},
    util::redis_keyslot,
};

use super::{CallArgs, Store, StoreError};

impl Store {
    /// Like `eval`, for a script that writes: with `REPLICA_ACKS` above 0 the
    /// answer waits for that many replicas, else 503.
    pub(super) async fn eval_write(
        &self,
        script: &Script,
        args: CallArgs,
        client: &Client,
    ) -> Result<Value, StoreError> {
        if self.replica_acks == 0 {
            return self.eval(script, args, client).await;
        }
        let slot = args.keys.first().map(|k| redis_keyslot(k));
        // `EVALSHA sha1 numkeys keys... args...` (or EVAL with the script).
        let command = |first: Value| {
            let mut command = vec![first, Value::from(args.keys.len().to_string())];
            command.extend(args.keys.iter().cloned().map(Value::Bytes));
            command.extend(args.values());
            command
        };
        let call = async {
            let sha1 = Value::from(script.sha1().clone());
            match self.with_wait(client, "EVALSHA", slot, command(sha1)).await {
                Err(Acked::Redis(e)) if e.details().starts_with("NOSCRIPT") => {
                    let lua = Value::from(script.lua().cloned().unwrap_or_default());
                    self.with_wait(client, "EVAL", slot, command(lua)).await
                }
                result => result,
            }
        };
        match tokio::time::timeout(self.timeout, Box::pin(call)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Acked::Redis(e))) => Err(pair_error(e)),
            Ok(Err(Acked::Short(why))) => Err(StoreError::Unavailable(why)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer (with replica acknowledgements) within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// `name args` then `WAIT n timeout`, pipelined on one connection.
    async fn with_wait(
        &self,
        client: &Client,
        name: &'static str,
        slot: Option<u16>,
        args: Vec<Value>,
    ) -> Result<Value, Acked> {
        let route = slot.map_or(ClusterHash::FirstKey, ClusterHash::Custom);
        let once = Options {
            max_attempts: Some(1),
            ..Default::default()
        };
        let pipeline = client.pipeline();
        let queue = pipeline.with_options(&once);
        // Queuing answers at once; the replies come from `try_all`.
        let _: Value = queue
            .custom(CustomCommand::new_static(name, route.clone(), false), args)
            .await
            .map_err(Acked::Redis)?;
        let wait = vec![
            self.replica_acks.to_string(),
            self.timeout.as_millis().to_string(),
        ];
        let _: Value = queue
            .custom(CustomCommand::new_static("WAIT", route, false), wait)
            .await
            .map_err(Acked::Redis)?;
        let mut replies = pipeline.try_all::<Value>().await.into_iter();
        let (script, acks) = match (replies.next(), replies.next()) {
            (Some(script), Some(acks)) => (script, acks),
            // The pipeline as a whole failed (a timeout): one error for both.
            (Some(Err(e)), None) => return Err(Acked::Redis(e)),
            _ => return Err(Acked::Short("the WAIT pipeline gave no reply".into())),
        };
        let value = script.map_err(Acked::Redis)?;
        let acks = acks
            .map_err(|e| Acked::Short(format!("WAIT failed: {e}")))?
            .as_i64()
            .unwrap_or(0);
        if acks < i64::from(self.replica_acks) {
            return Err(Acked::Short(format!(
                "{acks} of {} replicas acknowledged the write within {} ms",
                self.replica_acks,
                self.timeout.as_millis()
            )));
        }
        Ok(value)
    }
}

/// Why a script-and-WAIT pair gave no acknowledged answer.
enum Acked {
    /// Redis or fred refused the script (NOSCRIPT is retried with EVAL).
    Redis(RedisError),
    /// The script's call is not known to be on N replicas.
    Short(String),
}

/// fred refusing a second write of one half of the pair (see the top of this
/// file) means the pair was split: unknown outcome, 503, like any other
/// transport failure.
fn pair_error(error: RedisError) -> StoreError {
    if *error.kind() == ErrorKind::Unknown && error.details().starts_with("Too many") {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::from(error)
    }
}
