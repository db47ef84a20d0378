//! Single-flight, short-lived answers per key: however many callers ask for
//! the same key at once, one of them fetches and the others wait for, then
//! share, what it got; an answer younger than `max_age` is served without
//! fetching at all.
//!
//! The live seat map (`api::map`) reads its trains through this: every
//! open page polls, and without it each poll would be one `train.lua` call,
//! so a hundred pages would cost a hundred times one. With it a train costs
//! at most one call per `max_age`, whatever the number of pages.
//!
//! Answers are kept only while they are fresh or being fetched: the table
//! is swept of stale keys whenever it has doubled since the last sweep, so
//! requests for many different keys (trains that do not exist, say) cannot
//! make it grow beyond what the last `max_age` asked for.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The table is not swept below this many keys.
const SWEEP_FROM: usize = 256;

/// One key's latest answer and when its fetch started; the async lock is
/// what makes the fetch single-flight (callers queue on it in order).
type Slot<V> = tokio::sync::Mutex<Option<(Instant, V)>>;

pub struct Coalesce<V> {
    max_age: Duration,
    slots: Mutex<Slots<V>>,
}

struct Slots<V> {
    by_key: HashMap<String, Arc<Slot<V>>>,
    /// Sweep when the table reaches this size.
    sweep_at: usize,
}

impl<V: Clone> Coalesce<V> {
    pub fn new(max_age: Duration) -> Coalesce<V> {
        Coalesce {
            max_age,
            slots: Mutex::new(Slots {
                by_key: HashMap::new(),
                sweep_at: SWEEP_FROM,
            }),
        }
    }

    /// The answer for `key`: the latest one if its fetch started less than
    /// `max_age` ago, else a new one from `fetch`, which only one caller at
    /// a time runs for a key (the others wait and take its answer). An
    /// answer is kept whatever it is, so a failure is shared too and the
    /// callers of one `max_age` do not retry it one after another.
    ///
    /// Freshness counts from when the fetch *started*: an answer never
    /// claims to be newer than the data it can have seen.
    pub async fn get<F, Fut>(&self, key: &str, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let slot = self.slot(key);
        let mut latest = slot.lock().await;
        if let Some((at, answer)) = latest.as_ref() {
            if at.elapsed() < self.max_age {
                return answer.clone();
            }
        }
        // If this caller goes away mid-fetch, the lock is released with the
        // old answer in place, and the next caller in line fetches.
        let started = Instant::now();
        let answer = fetch().await;
        *latest = Some((started, answer.clone()));
        answer
    }

    /// The slot of `key`, made if needed.
    fn slot(&self, key: &str) -> Arc<Slot<V>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.by_key.get(key) {
            return slot.clone();
        }
        if slots.by_key.len() >= slots.sweep_at {
            let max_age = self.max_age;
            // Kept: slots a caller holds (waiting or fetching), and those
            // with a fresh answer. Dropped: whatever only the table holds.
            slots.by_key.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot.try_lock().map_or(true, |latest| {
                        latest
                            .as_ref()
                            .is_some_and(|(at, _)| at.elapsed() < max_age)
                    })
            });
            slots.sweep_at = (slots.by_key.len() * 2).max(SWEEP_FROM);
        }
        let slot = Arc::new(tokio::sync::Mutex::new(None));
        slots.by_key.insert(key.to_owned(), slot.clone());
        slot
    }

    /// Keys in the table (for tests).
    pub fn len(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A hundred callers at once: one fetch, one answer for all.
    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(Coalesce::new(Duration::from_millis(250)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get("t", || async {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        fetches.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task"), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    /// Past `max_age` the next caller fetches again; other keys are apart.
    #[tokio::test]
    async fn a_stale_answer_is_fetched_again() {
        let cache = Coalesce::new(Duration::from_millis(30));
        assert_eq!(cache.get("a", || async { 1 }).await, 1);
        assert_eq!(cache.get("a", || async { 2 }).await, 1);
        assert_eq!(cache.get("b", || async { 3 }).await, 3);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("a", || async { 4 }).await, 4);
    }

    /// A caller dropped mid-fetch leaves the slot to the next one.
    #[tokio::test]
    async fn a_caller_gone_mid_fetch_does_not_block_the_others() {
        let cache = Coalesce::new(Duration::from_secs(60));
        let gone = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get("a", std::future::pending::<u32>),
        )
        .await;
        assert!(gone.is_err());
        assert_eq!(cache.get("a", || async { 7 }).await, 7);
    }

    /// Many keys asked once each: the table is swept of stale ones and
    /// stays near what one `max_age` asked for.
    #[tokio::test]
    async fn stale_keys_are_swept() {
        let cache = Coalesce::new(Duration::from_millis(1));
        for k in 0..10_000 {
            cache.get(&k.to_string(), || async { k }).await;
            if k % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        assert!(cache.len() <= 4 * SWEEP_FROM, "{} keys kept", cache.len());
    }
}
