//! The per-client rate limit in Redis (`rate.lua`): one call per
//! group-commit batch of lease requests, whatever clients they come from
//! (`rate_limit` leases a client's allowance in chunks).
//!
//! A client's bucket is one key under its own hash tag,
//! `PREFIX:rate:{CLIENT}`, so on a cluster it lives on whichever primary its
//! slot says, apart from every train; the batches are then per slot, as the
//! trains' are. Every instance on the same Redis shares the count.

use std::sync::Arc;

use super::{int, CallArgs, Store, StoreError};
use crate::batch::{CallId, Decide};

/// Group commit of rate checks: one `rate.lua` call per batch. A member
/// asks for a number of requests of one client (the batch key is the
/// client's bucket); the answer is how many it got, and when it got none,
/// the ms until one would be allowed.
pub struct Limiting {
    pub store: Arc<Store>,
    /// ARGV[1..=2] of every call: the interval between requests in
    /// microseconds, and the burst.
    args: [String; 2],
}

impl Limiting {
    /// `per_second` requests a second per client, in bursts of twice that.
    pub fn new(store: Arc<Store>, per_second: u64) -> Limiting {
        let per_second = per_second.max(1);
        Limiting {
            store,
            args: [
                format!("{:.3}", 1e6 / per_second as f64),
                (2 * per_second).to_string(),
            ],
        }
    }

    /// The key of a client's bucket (`client`: `ip:ADDRESS` or `sub:USER`).
    pub fn bucket(&self, client: &str) -> String {
        format!("{}:rate:{{{client}}}", self.store.prefix)
    }
}

impl Decide for Limiting {
    type Member = u64;
    type Answer = (u64, i64);

    fn shard(&self, bucket: &str) -> u16 {
        self.store.key_shard(bucket)
    }

    async fn decide(
        &self,
        batch: &[(String, u64)],
        _id: &CallId,
    ) -> Result<Vec<(u64, i64)>, StoreError> {
        let mut buckets: Vec<&str> = Vec::new();
        let mut call = CallArgs::with_capacity(4, 2 + 2 * batch.len(), 64 * batch.len() + 32);
        for arg in &self.args {
            call.arg(arg);
        }
        for (bucket, want) in batch {
            let at = match buckets.iter().position(|b| b == bucket) {
                Some(at) => at,
                None => {
                    buckets.push(bucket);
                    buckets.len() - 1
                }
            };
            call.number(at + 1);
            call.number(want);
        }
        for bucket in &buckets {
            call.key(bucket);
        }
        let client = self
            .store
            .client_at(self.shard(buckets.first().copied().unwrap_or("")));
        let reply: Vec<fred::types::Value> = self
            .store
            .eval(&self.store.scripts.rate, call, client)
            .await?;
        if reply.len() != 2 * batch.len() {
            return Err(StoreError::Failed(format!(
                "rate.lua answered {} values for {} members",
                reply.len(),
                batch.len()
            )));
        }
        reply
            .chunks_exact(2)
            .map(|pair| Ok((u64::try_from(int(&pair[0])?).unwrap_or(0), int(&pair[1])?)))
            .collect()
    }
}
