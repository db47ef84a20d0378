//! Group commit: reservations for a train that arrive while a script call for
//! that train is in flight wait, and go together in the next call.
//!
//! On two cores one EVALSHA per request costs more than the HTTP work around it
//! (a round trip, a script run, an AOF fsync each). Here a lone request is sent
//! at once by its own task and waits for nobody; only while a call is in flight
//! do requests queue, and when it returns a driver task sends the queue (up to
//! `MAX_BATCH`) as one `reserve.lua` call, and so on until the queue is empty.
//! Per-request guarantees come from the script: arrival order decides who gets
//! the last seats, each request keeps its own reservation id and
//! Idempotency-Key, a foreign lock answers 429 to the whole call, and a failed
//! call answers 503 to each member (a call Redis refused wrote nothing; one
//! that timed out may have run, which is what any 503 means).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;

use crate::store::{Reservation, ReserveReply, Store, StoreError};

/// Most reservations in one script call: bounds the script's run time (Redis
/// serves nobody else meanwhile) and the size of one reply.
pub const MAX_BATCH: usize = 64;

type Answer = Result<ReserveReply, StoreError>;

struct Waiting {
    reservation: Reservation,
    reply: oneshot::Sender<Answer>,
}

/// A train is present while a call for it is in flight, with the requests
/// waiting for the next call; absent when idle.
type Queues = HashMap<String, Vec<Waiting>>;

pub struct GroupCommit {
    store: Arc<Store>,
    queues: Arc<Mutex<Queues>>,
    timeout: Duration,
}

impl GroupCommit {
    pub fn new(store: Arc<Store>, timeout: Duration) -> GroupCommit {
        GroupCommit {
            store,
            queues: Arc::default(),
            timeout,
        }
    }

    /// Reserves through the train's queue; the answer is this request's own.
    pub async fn reserve(&self, train_id: &str, reservation: Reservation) -> Answer {
        let waiting = {
            let mut queues = lock(&self.queues);
            match queues.get_mut(train_id) {
                Some(queue) => {
                    let (reply, answer) = oneshot::channel();
                    queue.push(Waiting { reservation, reply });
                    Err(answer)
                }
                None => {
                    queues.insert(train_id.to_owned(), Vec::new());
                    Ok(reservation)
                }
            }
        };
        match waiting {
            // Nothing in flight: this request goes alone, now.
            Ok(reservation) => {
                // Hands over on every exit, even if this future is dropped
                // mid-call (the client went away): the queue must not stall.
                let _hand_over = HandOver {
                    group: self,
                    train_id,
                };
                let answer = self.store.reserve(train_id, &[reservation]).await;
                answer.map(|mut replies| replies.remove(0))
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
        let (store, queues, train) = (self.store.clone(), self.queues.clone(), train_id.to_owned());
        // Also reached from a Drop: outside a runtime (shutting down) there is
        // nobody left to answer, so there is nothing to drive.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drive(store, queues, train));
        }
    }
}

struct HandOver<'a> {
    group: &'a GroupCommit,
    train_id: &'a str,
}

impl Drop for HandOver<'_> {
    fn drop(&mut self) {
        self.group.hand_over(self.train_id);
    }
}

/// Sends the train's queue, one call per `MAX_BATCH`, until it is empty.
async fn drive(store: Arc<Store>, queues: Arc<Mutex<Queues>>, train_id: String) {
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
        let (reservations, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|w| (w.reservation, w.reply)).unzip();
        match store.reserve(&train_id, &reservations).await {
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
fn take(queue: &mut Vec<Waiting>) -> Vec<Waiting> {
    let n = queue.len().min(MAX_BATCH);
    queue.drain(..n).filter(|w| !w.reply.is_closed()).collect()
}

fn lock(queues: &Mutex<Queues>) -> std::sync::MutexGuard<'_, Queues> {
    // A panic while holding this lock cannot leave the map inconsistent
    // (every change is a single insert, push, drain or remove).
    queues
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
