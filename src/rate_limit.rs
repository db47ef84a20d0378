//! RATE_LIMIT_PER_CLIENT: how many buyer requests a client may make, shared
//! by every instance through Redis, at little cost per request.
//!
//! The count lives in Redis (`store::Limiting`, `rate.lua`: one GCRA bucket
//! per client), so instances share it. Asking Redis for every request put a
//! second round trip in front of every reservation (measured: 0.67x the
//! hot train's rate). So an instance leases a client's allowance in chunks
//! of a fiftieth of its per-second rate and spends them locally: a client
//! at sixty thousand requests a second under a limit of a million costs
//! one Redis call every twenty thousand of them. A lease is counted in
//! Redis when it is taken, so the clients of all instances together never
//! get more than the limit allows by then; a client may spend a lease up to
//! `LEASE` later, so over any stretch it can get at most one chunk per
//! instance more than its burst and rate (2% of a second's allowance). What
//! a lease leaves unused when it lapses is lost to its client. Under a
//! fiftieth (limits below 50), every request asks Redis, exactly.
//!
//! A refusal is remembered until the bucket would allow again, so a client
//! hammering past its limit gets its 429s without a Redis call each. Only
//! one lease per client is asked for at a time; the client's other requests
//! wait for it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{futures::OwnedNotified, Notify},
    time::Instant,
};

use crate::{
    batch::GroupCommit,
    store::{Limiting, Store, StoreError},
};

/// How long a lease may be spent. Long enough that a client well under its
/// limit (a few requests a second, the common case) spends a whole chunk
/// before it lapses: with one second, ten thousand such clients cost 0.75x
/// of the rate without the limit, each lapsing after four requests.
const LEASE: Duration = Duration::from_secs(10);

/// Clients remembered before the idle ones are swept (then twice as many
/// as are left, so sweeping stays rare).
const SWEEP_AT: usize = 4096;

pub struct RateLimit {
    redis: GroupCommit<Limiting>,
    /// Requests asked for at a time: a fiftieth of the per-second rate.
    chunk: u64,
    clients: Arc<Mutex<Clients>>,
}

#[derive(Default)]
struct Clients {
    by_client: HashMap<String, Local>,
    sweep_at: usize,
}

/// What this instance holds of one client's allowance.
#[derive(Default)]
struct Local {
    /// Requests leased and not yet spent, until `lapses`.
    left: u64,
    lapses: Option<Instant>,
    /// Refused by Redis until then.
    refused_until: Option<Instant>,
    /// A lease being asked for: woken when it has answered.
    asking: Option<Arc<Notify>>,
}

impl Local {
    fn idle(&self, now: Instant) -> bool {
        self.asking.is_none()
            && self.lapses.is_none_or(|t| t <= now)
            && self.refused_until.is_none_or(|t| t <= now)
    }
}

/// What to do after looking at the local state.
enum Next {
    Allowed,
    Refused(i64),
    /// Another request of the client is asking for a lease: wait for it
    /// (registered under the lock, so its answer cannot be missed).
    Wait(OwnedNotified),
    /// This request asks.
    Ask(Asking),
}

/// The lease being asked for: when it is dropped (answered, failed, or the
/// request gone), the client's other requests are woken to look again.
struct Asking {
    clients: Arc<Mutex<Clients>>,
    client: String,
    notify: Arc<Notify>,
}

impl Drop for Asking {
    fn drop(&mut self) {
        let mut clients = lock(&self.clients);
        if let Some(local) = clients.by_client.get_mut(&self.client) {
            local.asking = None;
        }
        self.notify.notify_waiters();
    }
}

fn lock(clients: &Mutex<Clients>) -> std::sync::MutexGuard<'_, Clients> {
    // Each change is a plain field update: a panic elsewhere cannot leave
    // the map half-changed.
    clients.lock().unwrap_or_else(|p| p.into_inner())
}

impl RateLimit {
    pub fn new(store: Arc<Store>, per_second: u64, timeout: Duration) -> RateLimit {
        RateLimit {
            redis: GroupCommit::new(Limiting::new(store, per_second), timeout),
            chunk: (per_second / 50).max(1),
            clients: Arc::new(Mutex::new(Clients {
                by_client: HashMap::new(),
                sweep_at: SWEEP_AT,
            })),
        }
    }

    /// Whether `client` (`ip:ADDRESS` or `sub:USER`) may make one more
    /// request: `Ok(Ok(()))`, or `Ok(Err(ms))` until it may.
    pub async fn check(&self, client: &str) -> Result<Result<(), i64>, StoreError> {
        loop {
            let asking = match self.look(client) {
                Next::Allowed => return Ok(Ok(())),
                Next::Refused(ms) => return Ok(Err(ms)),
                Next::Wait(woken) => {
                    woken.await;
                    continue;
                }
                Next::Ask(asking) => asking,
            };
            let bucket = self.redis.decide_ref().bucket(client);
            let answer = self.redis.submit(&bucket, self.chunk).await;
            let now = Instant::now();
            let mut clients = lock(&self.clients);
            let local = clients.by_client.entry(client.to_owned()).or_default();
            let (granted, wait_ms) = answer?;
            if granted == 0 {
                let wait = Duration::from_millis(u64::try_from(wait_ms.max(1)).unwrap_or(1));
                local.refused_until = Some(now + wait);
                return Ok(Err(wait_ms.max(1)));
            }
            // One for this request; the rest for the next ones.
            local.left = granted - 1;
            local.lapses = Some(now + LEASE);
            drop(clients);
            drop(asking);
            return Ok(Ok(()));
        }
    }

    /// Spends from the lease, or says why not, under the lock.
    fn look(&self, client: &str) -> Next {
        let now = Instant::now();
        let mut clients = lock(&self.clients);
        if !clients.by_client.contains_key(client) {
            clients.sweep(now);
            clients
                .by_client
                .insert(client.to_owned(), Local::default());
        }
        // Present: inserted above if it was not.
        let Some(local) = clients.by_client.get_mut(client) else {
            return Next::Allowed;
        };
        if let Some(until) = local.refused_until {
            if until > now {
                let ms = (until - now).as_millis().max(1);
                return Next::Refused(i64::try_from(ms).unwrap_or(i64::MAX));
            }
            local.refused_until = None;
        }
        if local.left > 0 && local.lapses.is_some_and(|t| t > now) {
            local.left -= 1;
            return Next::Allowed;
        }
        if let Some(notify) = &local.asking {
            return Next::Wait(notify.clone().notified_owned());
        }
        let notify = Arc::new(Notify::new());
        local.asking = Some(notify.clone());
        Next::Ask(Asking {
            clients: self.clients.clone(),
            client: client.to_owned(),
            notify,
        })
    }
}

impl Clients {
    /// Forgets idle clients once there are many: memory stays bounded by the
    /// clients active in the last second or so.
    fn sweep(&mut self, now: Instant) {
        if self.by_client.len() < self.sweep_at {
            return;
        }
        self.by_client.retain(|_, local| !local.idle(now));
        self.sweep_at = (2 * self.by_client.len()).max(SWEEP_AT);
    }
}
