//! Group commit: requests for a train that arrive while a script call for that
//! train is in flight wait, and go together in the next call.
//!
//! On two cores one EVALSHA per request costs more than the HTTP work around it
//! (a round trip, a script run, an AOF fsync each). Here a lone request is sent
//! at once by its own task and waits for nobody; only while a call is in flight
//! do requests queue, and when it returns a driver task sends the queue (up to
//! `MAX_BATCH`) as one call, and so on until the queue is empty.
//!
//! The machinery does not know what it carries: a `Decide` says how one batch
//! becomes one script call (reservations, holds, confirms each have one), and
//! each has its own `GroupCommit`. Per-request guarantees come from the
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

    /// One call for `batch`, in order: one answer per member, in the same order.
    fn decide(
        &self,
        train_id: &str,
        batch: &[Self::Member],
    ) -> impl Future<Output = Result<Vec<Self::Answer>, StoreError>> + Send;
}

type Answer<D> = Result<<D as Decide>::Answer, StoreError>;

struct Waiting<D: Decide> {
    member: D::Member,
    reply: oneshot::Sender<Answer<D>>,
}

/// A train is present while a call for it is in flight, with the requests
/// waiting for the next call; absent when idle.
type Queues<D> = HashMap<String, Vec<Waiting<D>>>;

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

    /// Decides through the train's queue; the answer is this request's own.
    pub async fn submit(&self, train_id: &str, member: D::Member) -> Answer<D> {
        let waiting = {
            let mut queues = lock(&self.queues);
            match queues.get_mut(train_id) {
                Some(queue) => {
                    let (reply, answer) = oneshot::channel();
                    queue.push(Waiting { member, reply });
                    Err(answer)
                }
                None => {
                    queues.insert(train_id.to_owned(), Vec::new());
                    Ok(member)
                }
            }
        };
        match waiting {
            // Nothing in flight: this request goes alone, now.
            Ok(member) => {
                // Hands over on every exit, even if this future is dropped
                // mid-call (the client went away): the queue must not stall.
                let _hand_over = HandOver {
                    group: self,
                    train_id,
                };
                let answers = self
                    .decide
                    .decide(train_id, std::slice::from_ref(&member))
                    .await?;
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
    /// otherwise the train is idle again.
    fn hand_over(&self, train_id: &str) {
        let mut queues = lock(&self.queues);
        if queues.get(train_id).is_some_and(Vec::is_empty) {
            queues.remove(train_id);
            return;
        }
        drop(queues);
        let (decide, queues, train) = (
            self.decide.clone(),
            self.queues.clone(),
            train_id.to_owned(),
        );
        // Also reached from a Drop: outside a runtime (shutting down) there is
        // nobody left to answer, so there is nothing to drive.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drive(decide, queues, train));
        }
    }
}

struct HandOver<'a, D: Decide> {
    group: &'a GroupCommit<D>,
    train_id: &'a str,
}

impl<D: Decide> Drop for HandOver<'_, D> {
    fn drop(&mut self) {
        self.group.hand_over(self.train_id);
    }
}

/// Sends the train's queue, one call per `MAX_BATCH`, until it is empty.
async fn drive<D: Decide>(decide: Arc<D>, queues: Arc<Mutex<Queues<D>>>, train_id: String) {
    loop {
        let batch = {
            let mut all = lock(&queues);
            let Some(queue) = all.get_mut(&train_id) else {
                return;
            };
            let batch = take(queue);
            if batch.is_empty() && queue.is_empty() {
                all.remove(&train_id);
                return;
            }
            batch
        };
        if batch.is_empty() {
            continue;
        }
        let (members, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|w| (w.member, w.reply)).unzip();
        match decide.decide(&train_id, &members).await {
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
