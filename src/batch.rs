//! Group commit: requests that arrive while a script call is in flight wait,
//! and go together in a later call; unless the shard is lightly loaded.
//!
//! On two cores one EVALSHA per request costs more than the HTTP work around it
//! (a round trip, a script run, an AOF fsync each). Here a lone request is sent
//! at once by its own task and waits for nobody; only while a call is in flight
//! do requests queue, and when it returns the queue (up to `MAX_BATCH`) goes as
//! one call, and so on until the queue is empty.
//!
//! A queue that fills to `EARLY` while one call is in flight does not wait
//! for it: it goes at once, on the same connection (`Store::client`), and
//! waits in Redis's socket while the first runs. So Redis does not idle while
//! the service hands out one call's answers and sends the next, nor while it
//! fsyncs the AOF for the first. Half a full batch, because smaller calls
//! cost more per request than Redis's idle time saves (docs/performance.md).
//! Redis runs the two in the order sent, if the first runs at all: a first
//! that met NOSCRIPT (a flush, a failover) is sent again, after the second.
//! So the second names the first (`CallId::after`) and writes nothing unless
//! the first ran and booked (prelude.lua's `follows`); fenced, it goes again
//! once the first has answered. A first that booked nothing (a sold-out or
//! locked train) fences its follower too, so after a fenced call the shard
//! sends one call at a time for the next `CALM` calls: a sold-out train
//! hammered by a swarm costs about one extra call in `CALM`, not one in two.
//!
//! Lightly loaded (few requests about: `LIGHT`), a shard does not make a
//! request wait for a call of other trains: it goes at once while fewer
//! than `DEPTH` calls are in flight, each behind the last on the same
//! connection (fenced on it as above). At 4 connections over 1,000 trains
//! this nearly doubled the rate and halved p50; a swarm keeps batching,
//! because its load, averaged over arrivals, stays high even in the moment
//! after a call returns. Not while a call sent in a task of its own has not
//! run yet (`unsent`): going at once, in its own task, a request would reach
//! Redis ahead of the call it follows, be fenced, and calm the shard. At 64
//! connections that fenced about one call in a hundred, and kept a third of
//! the hot train's calls one at a time.
//!
//! Queues are per shard, not per train: one call may carry requests for many
//! trains as long as it may touch all their keys (any keys on one Redis, so
//! one queue; one hash slot on a cluster, so a queue per slot). A swarm
//! spread over a thousand trains then batches as well as a swarm on one.
//!
//! The machinery does not know what it carries: a `Decide` says how one batch
//! becomes one script call and which shard a key (a train, or a client for
//! the rate limit) belongs to (reservations, holds, confirms and the rate
//! limit each have one), and each has its own `GroupCommit`. Per-request guarantees come from the
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

use crate::error::StoreError;

/// Most reservations in one script call: bounds the script's run time (Redis
/// serves nobody else meanwhile) and the size of one reply.
pub const MAX_BATCH: usize = 64;

/// Requests that make a queue go while a call is in flight (see the top).
const EARLY: usize = MAX_BATCH / 2;

/// Calls of one shard in flight at most: one running, the others waiting
/// behind it in Redis's socket.
const DEPTH: usize = 4;

/// Below this many requests about (in flight and waiting, as arrivals saw
/// them, averaged), a shard is lightly loaded: a request goes at once while
/// fewer than `DEPTH` calls are in flight, instead of waiting to be batched.
/// Measured (docs/performance.md): 4 and 16 connections over 1,000 trains
/// sit well below it, 64 well above.
const LIGHT: f32 = 24.0;

/// Calls sent one at a time after a fenced one (see the top).
const CALM: u32 = 32;

/// Who a script call is: its token (the train locks' and its call key's,
/// `call:TOKEN` of its first train) and, when it was sent while another call
/// of its queue was in flight, that call's first train and token.
#[derive(Debug, Clone)]
pub struct CallId {
    pub token: String,
    pub after: Option<(String, String)>,
}

impl CallId {
    /// A call that follows none, with a fresh token.
    pub fn new() -> CallId {
        CallId {
            token: uuid::Uuid::new_v4().to_string(),
            after: None,
        }
    }
}

impl Default for CallId {
    fn default() -> Self {
        CallId::new()
    }
}

/// How a batch of one kind of request becomes one script call.
pub trait Decide: Send + Sync + 'static {
    type Member: Send + 'static;
    type Answer: Send + 'static;

    /// Requests whose keys have the same shard may share a call. A key is
    /// what requests are grouped and ordered by: their train (reservations,
    /// holds, confirms) or their client (the rate limit).
    fn shard(&self, key: &str) -> u16;

    /// One call for `batch` (key, member), in arrival order: one answer per
    /// member, in the same order. `StoreError::Fenced` when the call it
    /// follows had not run.
    fn decide(
        &self,
        batch: &[(String, Self::Member)],
        id: &CallId,
    ) -> impl Future<Output = Result<Vec<Self::Answer>, StoreError>> + Send;
}

type Answer<D> = Result<<D as Decide>::Answer, StoreError>;

struct Waiting<D: Decide> {
    key: String,
    member: D::Member,
    reply: oneshot::Sender<Answer<D>>,
}

/// The call sent last: the next one sent while it is in flight follows it.
/// `done` resolves once it has answered (its sender is dropped).
struct Sent {
    key: String,
    token: String,
    done: oneshot::Receiver<()>,
}

/// A shard with calls in flight, and the requests waiting for a later call.
/// Absent when idle.
struct Shard<D: Decide> {
    queue: Vec<Waiting<D>>,
    in_flight: usize,
    last: Option<Sent>,
    /// Calls still to send one at a time (after a fenced call).
    calm: u32,
    /// Requests in the calls in flight.
    requests: usize,
    /// Requests about (in flight and waiting) as arrivals saw them, averaged.
    load: f32,
    /// Calls sent in a task of their own that has not run yet: their
    /// command is not yet in fred's queue, so a request going at once would
    /// reach Redis ahead of them, be fenced, and make the shard calm.
    unsent: usize,
}

impl<D: Decide> Shard<D> {
    /// Whether the queue goes now: nothing in flight; or, unless calm, a
    /// light load, or `EARLY` requests waiting, with fewer than `DEPTH`
    /// calls in flight.
    fn due(&self) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        match self.in_flight {
            0 => true,
            _ if self.calm > 0 => false,
            n => self.light() || (n < DEPTH && self.queue.len() >= EARLY),
        }
    }

    /// Whether a call may go at once although others are in flight: few
    /// requests about (in flight and waiting), so little to batch.
    fn light(&self) -> bool {
        self.calm == 0 && self.in_flight < DEPTH && self.load < LIGHT
    }

    /// Registers a call of `key` as sent: its id, the signal it must
    /// wait for if fenced, and the sender it drops when it has answered.
    fn register(
        &mut self,
        key: &str,
        size: usize,
    ) -> (CallId, Option<oneshot::Receiver<()>>, oneshot::Sender<()>) {
        self.requests += size;
        let before = if self.in_flight > 0 {
            self.last.take()
        } else {
            None
        };
        let (done, done_rx) = oneshot::channel();
        let id = CallId {
            after: before.as_ref().map(|b| (b.key.clone(), b.token.clone())),
            ..CallId::new()
        };
        self.last = Some(Sent {
            key: key.to_owned(),
            token: id.token.clone(),
            done: done_rx,
        });
        self.in_flight += 1;
        self.calm = self.calm.saturating_sub(1);
        (id, before.map(|b| b.done), done)
    }
}

type Queues<D> = HashMap<u16, Shard<D>>;

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

    /// What turns this queue's batches into calls.
    pub fn decide_ref(&self) -> &D {
        &self.decide
    }

    /// Decides through the key's shard's queue; the answer is this
    /// request's own.
    pub async fn submit(&self, key: &str, member: D::Member) -> Answer<D> {
        let shard = self.decide.shard(key);
        let waiting = {
            let mut queues = lock(&self.queues);
            if let Some(state) = queues.get_mut(&shard) {
                let seen = (state.requests + state.queue.len() + 1) as f32;
                state.load += (seen - state.load) / 16.0;
            }
            match queues.get_mut(&shard) {
                Some(state) if !(state.queue.is_empty() && state.unsent == 0 && state.light()) => {
                    let (reply, answer) = oneshot::channel();
                    state.queue.push(Waiting {
                        key: key.to_owned(),
                        member,
                        reply,
                    });
                    send_due(&self.decide, &self.queues, shard, state);
                    Err(answer)
                }
                Some(state) => {
                    // Few calls in flight and nobody waiting: this one goes
                    // at once too, behind them on the same connection.
                    let (id, before, done) = state.register(key, 1);
                    Ok((member, id, before, done))
                }
                None => {
                    let mut state = Shard {
                        queue: Vec::new(),
                        in_flight: 0,
                        last: None,
                        calm: 0,
                        requests: 0,
                        load: 1.0,
                        unsent: 0,
                    };
                    let (id, before, done) = state.register(key, 1);
                    queues.insert(shard, state);
                    Ok((member, id, before, done))
                }
            }
        };
        match waiting {
            // Nothing in flight, or a light load: this request goes alone, now.
            Ok((member, mut id, before, done)) => {
                // Hands over on every exit, even if this future is dropped
                // mid-call (the client went away): the queue must not stall.
                let _hand_over = HandOver {
                    decide: &self.decide,
                    queues: &self.queues,
                    shard,
                    size: 1,
                };
                let alone = [(key.to_owned(), member)];
                let mut result = self.decide.decide(&alone, &id).await;
                if matches!(result, Err(StoreError::Fenced)) {
                    after_fence(&self.queues, shard, before, &mut id).await;
                    result = self.decide.decide(&alone, &id).await;
                }
                drop(done);
                result?
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Failed("a script answered no value".into()))
            }
            Err(answer) => match tokio::time::timeout(self.timeout, answer).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(StoreError::Failed("the group-commit call ended".into())),
                // Our slot is skipped if it has not been sent yet (see `take`).
                Err(_) => Err(StoreError::Unavailable(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                ))),
            },
        }
    }
}

/// Sends the shard's queue (its oldest `MAX_BATCH`) as one call, in a task
/// of its own. Called with the queues locked, so calls are registered in
/// the order they are taken.
fn send<D: Decide>(
    decide: &Arc<D>,
    queues: &Arc<Mutex<Queues<D>>>,
    shard: u16,
    state: &mut Shard<D>,
) {
    let batch = take(&mut state.queue);
    let Some(first) = batch.first() else { return };
    // Outside a runtime (shutting down) there is nobody left to answer.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let size = batch.len();
    let (id, before, done) = state.register(&first.key, size);
    state.unsent += 1;
    runtime.spawn(call(
        decide.clone(),
        queues.clone(),
        shard,
        batch,
        id,
        before,
        done,
    ));
}

/// Sends the queue for as long as it is due. Each round takes from the
/// queue, so this ends: a round whose clients had all gone (503) sends
/// nothing, and the next looks at what is left.
fn send_due<D: Decide>(
    decide: &Arc<D>,
    queues: &Arc<Mutex<Queues<D>>>,
    shard: u16,
    state: &mut Shard<D>,
) {
    while state.due() {
        send(decide, queues, shard, state);
    }
}

/// After a call: it is no longer in flight, and the queue goes if it is due.
fn hand_over<D: Decide>(decide: &Arc<D>, queues: &Arc<Mutex<Queues<D>>>, shard: u16, size: usize) {
    let mut all = lock(queues);
    let Some(state) = all.get_mut(&shard) else {
        return;
    };
    state.in_flight = state.in_flight.saturating_sub(1);
    state.requests = state.requests.saturating_sub(size);
    send_due(decide, queues, shard, state);
    if state.in_flight == 0 && state.queue.is_empty() {
        all.remove(&shard);
    }
}

struct HandOver<'a, D: Decide> {
    decide: &'a Arc<D>,
    queues: &'a Arc<Mutex<Queues<D>>>,
    shard: u16,
    /// Requests the call carried (as registered).
    size: usize,
}

impl<D: Decide> Drop for HandOver<'_, D> {
    fn drop(&mut self) {
        hand_over(self.decide, self.queues, self.shard, self.size);
    }
}

/// One call for a batch taken from the queue: answers each member, then
/// hands over. Fenced (the call it follows had not run), it waits until
/// that one has answered and goes again, following nothing.
async fn call<D: Decide>(
    decide: Arc<D>,
    queues: Arc<Mutex<Queues<D>>>,
    shard: u16,
    batch: Vec<Waiting<D>>,
    mut id: CallId,
    before: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
) {
    let _hand_over = HandOver {
        decide: &decide,
        queues: &queues,
        shard,
        size: batch.len(),
    };
    // Its command goes into fred's queue in this same poll (`decide`).
    if let Some(state) = lock(&queues).get_mut(&shard) {
        state.unsent = state.unsent.saturating_sub(1);
    }
    let (mut members, mut replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|w| ((w.key, w.member), w.reply))
        .unzip();
    let mut result = decide.decide(&members, &id).await;
    if matches!(result, Err(StoreError::Fenced)) {
        after_fence(&queues, shard, before, &mut id).await;
        // Whoever gave up meanwhile (503) is not booked behind their back.
        (members, replies) = members
            .into_iter()
            .zip(replies)
            .filter(|(_, reply)| !reply.is_closed())
            .unzip();
        result = match members.is_empty() {
            true => Ok(Vec::new()),
            false => decide.decide(&members, &id).await,
        };
    }
    drop(done);
    match result {
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

/// After a fenced call (the one it followed had not run): the shard sends
/// one call at a time for a while (`CALM`), and this call waits until the
/// one it followed has answered, then goes again following nothing.
async fn after_fence<D: Decide>(
    queues: &Mutex<Queues<D>>,
    shard: u16,
    before: Option<oneshot::Receiver<()>>,
    id: &mut CallId,
) {
    if let Some(state) = lock(queues).get_mut(&shard) {
        state.calm = CALM;
    }
    if let Some(before) = before {
        let _ = before.await;
    }
    id.after = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Redis as the scripts see it: calls run in the order they reach it,
    /// and one that follows a call that has not run yet is fenced. A call
    /// reaches it when its `decide` is first polled, as with fred. The first
    /// calls to arrive wait in it for their gate, so they stay in flight.
    #[derive(Default)]
    struct Redis {
        ran: Mutex<Vec<String>>,
        gates: Mutex<Vec<Option<oneshot::Receiver<()>>>>,
        fenced: AtomicUsize,
    }

    impl Decide for Redis {
        type Member = ();
        type Answer = ();

        fn shard(&self, _: &str) -> u16 {
            0
        }

        fn decide(
            &self,
            batch: &[(String, ())],
            id: &CallId,
        ) -> impl Future<Output = Result<Vec<()>, StoreError>> + Send {
            let mut ran = self.ran.lock().expect("ran");
            let arrived = match &id.after {
                Some((_, token)) if !ran.contains(token) => {
                    self.fenced.fetch_add(1, Ordering::SeqCst);
                    Err(StoreError::Fenced)
                }
                _ => {
                    ran.push(id.token.clone());
                    let mut gates = self.gates.lock().expect("gates");
                    Ok(gates.get_mut(ran.len() - 1).and_then(Option::take))
                }
            };
            let answers = vec![(); batch.len()];
            async move {
                if let Some(gate) = arrived? {
                    let _ = gate.await;
                }
                Ok(answers)
            }
        }
    }

    #[tokio::test]
    async fn a_request_sent_at_once_never_overtakes_a_call_still_to_be_sent() {
        // DEPTH calls in flight, each held in Redis; one more request waits.
        let (gates, held): (Vec<_>, Vec<_>) = (0..DEPTH).map(|_| oneshot::channel()).unzip();
        let redis = Redis {
            gates: Mutex::new(held.into_iter().map(Some).collect()),
            ..Redis::default()
        };
        let commit = Arc::new(GroupCommit::new(redis, Duration::from_secs(5)));
        let mut requests = tokio::task::JoinSet::new();
        for n in 0..=DEPTH {
            let commit = commit.clone();
            requests.spawn(async move { commit.submit(&format!("t{n}"), ()).await });
            tokio::task::yield_now().await;
        }
        assert_eq!(commit.decide_ref().ran.lock().expect("ran").len(), DEPTH);
        // Two calls answer together: the first hands the waiting request
        // over in a call of its own, which runs only after the others ready
        // now; the second leaves room for a request to go at once. One
        // arrives in the same moment: it must not reach Redis ahead of the
        // call it follows.
        let mut gates = gates.into_iter();
        for gate in gates.by_ref().take(2) {
            let _ = gate.send(());
        }
        let late = commit.clone();
        requests.spawn(async move { late.submit("late", ()).await });
        for gate in gates {
            let _ = gate.send(());
        }
        while let Some(answer) = requests.join_next().await {
            assert!(matches!(answer, Ok(Ok(()))), "{answer:?}");
        }
        assert_eq!(
            commit.decide_ref().ran.lock().expect("ran").len(),
            DEPTH + 2
        );
        assert_eq!(commit.decide_ref().fenced.load(Ordering::SeqCst), 0);
    }
}
