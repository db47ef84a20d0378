//! Group commit: requests that arrive while a script call is in flight wait,
//! and go together in the next call.
//!
//! On two cores one EVALSHA per request costs more than the HTTP work around it
//! (a round trip, a script run, an AOF fsync each). Here a lone request is sent
//! at once by its own task and waits for nobody; only while a call is in flight
//! do requests queue, and when it returns a driver task sends the queue (up to
//! `MAX_BATCH`) as one call, and so on until the queue is empty.
//!
//! Queues are per shard, not per train: one call may carry requests for many
//! trains as long as it may touch all their keys (any keys on one Redis, so
//! one queue; one hash slot on a cluster, so a queue per slot). A swarm
//! spread over a thousand trains then batches as well as a swarm on one.
//!
//! The machinery does not know what it carries: a `Decide` says how one batch
//! becomes one script call and which shard a train belongs to (reservations,
//! holds, confirms each have one), and each has its own `GroupCommit`. Per-request guarantees come from the
//! scripts: arrival order decides who gets the last seats, each request keeps
//! its own id and Idempotency-Key, a foreign lock answers 429 to the whole
//! call, and a failed call answers 503 to each member (a call Redis refused
//! wrote nothing; one that timed out may have run, which is what any 503 means).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::store::StoreError;

/// Most reservations in one script call: bounds the script's run time (Redis
/// serves nobody else meanwhile) and the size of one reply.
pub const MAX_BATCH: usize = 64;

/// How a batch of one kind of request becomes one script call.
pub trait Decide: Send + Sync + 'static {
    type Member: Send + 'static;
    type Answer: Send + 'static;

    /// Requests of trains with the same shard may share a call.
    fn shard(&self, train_id: &str) -> u16;

    /// One call for `batch` (train, member), in arrival order: one answer per
    /// member, in the same order.
    fn decide(
        &self,
        batch: &[(String, Self::Member)],
    ) -> impl Future<Output = Result<Vec<Self::Answer>, StoreError>> + Send;
}

type Answer<D> = Result<<D as Decide>::Answer, StoreError>;

struct Waiting<D: Decide> {
    train_id: String,
    member: D::Member,
    reply: oneshot::Sender<Answer<D>>,
}

/// A shard is present while a call for it is in flight, with the requests
/// waiting for the next call; absent when idle.
type Queues<D> = HashMap<u16, Vec<Waiting<D>>>;

pub struct GroupCommit<D: Decide> {
    decide: Arc<D>,
    queues: Arc<Mutex<Queues<D>>>,
    timeout: Duration,
}

impl<D: Decide> GroupCommit<D> {
    pub fn new(decide: D, timeout: Duration) -> GroupCommit<D> {
        GroupCommit {
            decide: Arc::new(decide),
            queues: Arc::default(),
            timeout,
        }
    }

    /// Decides through the train's shard's queue; the answer is this
    /// request's own.
    pub async fn submit(&self, train_id: &str, member: D::Member) -> Answer<D> {
        let shard = self.decide.shard(train_id);
        let waiting = {
            let mut queues = lock(&self.queues);
            match queues.get_mut(&shard) {
                Some(queue) => {
                    let (reply, answer) = oneshot::channel();
                    let train_id = train_id.to_owned();
                    queue.push(Waiting {
                        train_id,
                        member,
                        reply,
                    });
                    Err(answer)
                }
                None => {
                    queues.insert(shard, Vec::new());
                    Ok(member)
                }
            }
        };
        match waiting {
            // Nothing in flight: this request goes alone, now.
            Ok(member) => {
                // Hands over on every exit, even if this future is dropped
                // mid-call (the client went away): the queue must not stall.
                let _hand_over = HandOver { group: self, shard };
                let alone = [(train_id.to_owned(), member)];
                let answers = self.decide.decide(&alone).await?;
                answers
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Failed("a script answered no value".into()))
            }
            Err(answer) => match tokio::time::timeout(self.timeout, answer).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(StoreError::Failed("the group-commit driver ended".into())),
                // Our slot is skipped if it has not been sent yet (see `take`).
                Err(_) => Err(StoreError::Unavailable(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                ))),
            },
        }
    }

    /// After a call: if requests queued up meanwhile, a driver task sends them;
    /// otherwise the shard is idle again.
    fn hand_over(&self, shard: u16) {
        let mut queues = lock(&self.queues);
        if queues.get(&shard).is_some_and(Vec::is_empty) {
            queues.remove(&shard);
            return;
        }
        drop(queues);
        let (decide, queues) = (self.decide.clone(), self.queues.clone());
        // Also reached from a Drop: outside a runtime (shutting down) there is
        // nobody left to answer, so there is nothing to drive.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drive(decide, queues, shard));
        }
    }
}

struct HandOver<'a, D: Decide> {
    group: &'a GroupCommit<D>,
    shard: u16,
}

impl<D: Decide> Drop for HandOver<'_, D> {
    fn drop(&mut self) {
        self.group.hand_over(self.shard);
    }
}

/// Sends the shard's queue, one call per `MAX_BATCH`, until it is empty.
async fn drive<D: Decide>(decide: Arc<D>, queues: Arc<Mutex<Queues<D>>>, shard: u16) {
    loop {
        let batch = {
            let mut all = lock(&queues);
            let Some(queue) = all.get_mut(&shard) else {
                return;
            };
            let batch = take(queue);
            if batch.is_empty() && queue.is_empty() {
                all.remove(&shard);
                return;
            }
            batch
        };
        if batch.is_empty() {
            continue;
        }
        let (members, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|w| ((w.train_id, w.member), w.reply))
            .unzip();
        match decide.decide(&members).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The oldest `MAX_BATCH` waiting requests whose clients still wait (one that
/// already answered 503 on its timeout is dropped, not booked).
fn take<D: Decide>(queue: &mut Vec<Waiting<D>>) -> Vec<Waiting<D>> {
    let n = queue.len().min(MAX_BATCH);
    queue.drain(..n).filter(|w| !w.reply.is_closed()).collect()
}

fn lock<D: Decide>(queues: &Mutex<Queues<D>>) -> std::sync::MutexGuard<'_, Queues<D>> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (every change is a single insert, push, drain or remove).
    queues
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
