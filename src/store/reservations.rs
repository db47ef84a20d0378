//! Reservations in Redis: booking (one call for a whole group-commit batch:
//! `reserve_plain.lua` when every request in it is plain, else, or when it
//! hands the call back, `reserve.lua`), cancelling (`cancel.lua`), and
//! reading one record.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use fred::{prelude::HashesInterface, types::Value};
use serde::Deserialize;

use super::{int, status_code, CallArgs, Journeying, Records, Store, StoreError};
use crate::{
    batch::{CallId, Decide},
    request::{Journey, Seating},
};

/// One reservation request, as `reserve.lua` takes it. Owned, because it
/// may wait in a group-commit queue (see `batch`) for the call that carries it.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub reservation_id: String,
    pub seats: u8,
    pub user_id: Option<String>,
    /// `(key, fingerprint of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
    /// The stations it names, if any.
    pub journey: Journey,
    /// What it asks of a numbered train's seats.
    pub seating: Seating,
}

/// `reserve.lua`'s answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveReply {
    pub status: u16,
    pub reservation_id: String,
    /// Seats left (200, 400), seats the user already has (409), or ms until
    /// the lock frees (429).
    pub n: i64,
    pub replayed: bool,
    /// What the answer adds on a train with stations (see `Journeying`).
    pub journey: Journeying,
}

/// A stored reservation, as `GET /trains/{id}/reservations/{rid}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReservationView {
    pub user_id: Option<String>,
    pub seats: i64,
    pub created_at_ms: i64,
    /// On a train with stations: the journey.
    pub from: Option<String>,
    pub to: Option<String>,
    /// On a numbered train: its seats and their class.
    pub seat_ids: Option<Vec<String>>,
    pub class: Option<String>,
}

/// What `cancel.lua` and `release.lua` answer: status, seats left, seats given back.
pub type GiveBack = (u16, i64, i64);

/// Group commit of reservations: one call per batch. A batch whose requests
/// name no stations and no seats goes to `reserve_plain.lua` first, which
/// books it in 0.6-0.8x `reserve.lua`'s time inside Redis, or hands the
/// call back untouched when `reserve.lua` must decide (see the script).
pub struct Reserving {
    store: Arc<Store>,
    handed_back: HandedBack,
}

impl Reserving {
    pub fn new(store: Arc<Store>) -> Reserving {
        Reserving {
            store,
            handed_back: HandedBack::default(),
        }
    }
}

impl Decide for Reserving {
    type Member = Reservation;
    type Answer = ReserveReply;

    fn shard(&self, train_id: &str) -> u16 {
        self.store.shard(train_id)
    }

    async fn decide(
        &self,
        batch: &[(String, Reservation)],
        id: &CallId,
    ) -> Result<Vec<ReserveReply>, StoreError> {
        self.store.metrics.batch(batch.len());
        let plain = batch
            .iter()
            .all(|(_, r)| r.journey == Journey::default() && r.seating == Seating::default());
        if plain && !self.handed_back.any_lately(batch) {
            // Handed back, the batch goes to reserve.lua in its own layout
            // with the same token: reserve_plain.lua wrote nothing, not even
            // the call's key.
            match self.store.reserve_plain(batch, id).await? {
                Ok(replies) => return Ok(replies),
                Err(trains) => {
                    for train in trains {
                        self.handed_back.note(train);
                    }
                }
            }
        }
        self.store.reserve(batch, id).await
    }
}

/// Trains that made `reserve_plain.lua` hand a call back in the last
/// `HANDED_BACK_FOR` (a train with stations, numbered seats or seats held):
/// the next batches with their requests go straight to `reserve.lua`,
/// without the round trip. Only a hint: either script decides right. At
/// most `HANDED_BACK_MAX` trains, all forgotten at once when full.
#[derive(Default)]
struct HandedBack(Mutex<HashMap<String, Instant>>);

const HANDED_BACK_FOR: Duration = Duration::from_secs(10);
const HANDED_BACK_MAX: usize = 10_000;

impl HandedBack {
    /// Whether a train of the batch handed a call back lately.
    fn any_lately<M>(&self, batch: &[(String, M)]) -> bool {
        let trains = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        !trains.is_empty()
            && batch.iter().any(|(train, _)| {
                trains
                    .get(train)
                    .is_some_and(|at| at.elapsed() < HANDED_BACK_FOR)
            })
    }

    fn note(&self, train: &str) {
        let mut trains = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if trains.len() >= HANDED_BACK_MAX {
            trains.clear();
        }
        trains.insert(train.to_owned(), Instant::now());
    }
}

impl Store {
    /// Runs `reserve.lua` for reservations on one or more trains (in order
    /// within each train); one reply each, in the batch's order.
    pub async fn reserve(
        &self,
        batch: &[(String, Reservation)],
        id: &CallId,
    ) -> Result<Vec<ReserveReply>, StoreError> {
        let answers = self
            .call_trains(&self.scripts.reserve, batch, id, 5, reservation_fields)
            .await?;
        replies(answers)
    }

    /// Runs `reserve_plain.lua` for a batch of plain requests; when it
    /// handed the call back (nothing written: `reserve` must decide it),
    /// the trains that made it so (none when it was the call or a request).
    pub async fn reserve_plain<'a>(
        &self,
        batch: &'a [(String, Reservation)],
        id: &CallId,
    ) -> Result<Result<Vec<ReserveReply>, Vec<&'a str>>, StoreError> {
        let answers = self
            .call_trains(&self.scripts.reserve_plain, batch, id, 5, plain_fields)
            .await?;
        if answers.first().and_then(|answer| answer.first()?.as_i64()) != Some(0) {
            return replies(answers).map(Ok);
        }
        // Status 0 throughout; n = 1 for the requests of the train at fault.
        let mut trains: Vec<&str> = Vec::new();
        for ((train, _), answer) in batch.iter().zip(&answers) {
            if answer.get(2).and_then(Value::as_i64) == Some(1) && !trains.contains(&train.as_str())
            {
                trains.push(train);
            }
        }
        Ok(Err(trains))
    }

    /// Cancels a reservation (`cancel.lua`). `caller`: the user who must own
    /// it, or `None` when anyone who knows the id may (identities off, admin).
    pub async fn cancel(
        &self,
        train_id: &str,
        reservation_id: &str,
        caller: Option<&str>,
    ) -> Result<GiveBack, StoreError> {
        let member = |call: &mut CallArgs| {
            call.arg(reservation_id);
            call.user(caller);
        };
        let answer = self
            .call_one(&self.scripts.cancel, train_id, member, 3)
            .await?;
        Ok((
            status_code(int(&answer[0])?)?,
            int(&answer[1])?,
            int(&answer[2])?,
        ))
    }

    /// One stored reservation; `None` when there is none under that id.
    pub async fn reservation(
        &self,
        train_id: &str,
        reservation_id: &str,
    ) -> Result<Option<ReservationView>, StoreError> {
        let key = self.key(train_id, "reservations");
        let raw: Option<String> = self
            .bounded(self.pool.next().hget(key, reservation_id))
            .await?;
        raw.map(|raw| {
            serde_json::from_str(&raw).map_err(|e| {
                StoreError::Failed(format!("reservation {reservation_id} is unreadable: {e}"))
            })
        })
        .transpose()
    }
}

/// One request's ten fields, as `reserve.lua` takes them.
fn reservation_fields(r: &Reservation, records: &mut Records, call: &mut CallArgs) {
    plain_fields(r, records, call);
    call.journey(&r.journey);
    call.seating(&r.seating);
}

/// The first five, all `reserve_plain.lua` takes: its requests name no
/// stations and no seats (`Reserving` sends it no others).
fn plain_fields(r: &Reservation, records: &mut Records, call: &mut CallArgs) {
    call.arg(&r.reservation_id);
    call.number(r.seats);
    call.user(r.user_id.as_deref());
    records.member_args(&r.idempotency, call);
}

/// The scripts' five fields per request, as replies.
fn replies(answers: Vec<Vec<Value>>) -> Result<Vec<ReserveReply>, StoreError> {
    answers
        .into_iter()
        .map(|answer| {
            Ok(ReserveReply {
                status: status_code(int(&answer[0])?)?,
                reservation_id: answer[1].as_string().unwrap_or_default(),
                n: int(&answer[2])?,
                replayed: int(&answer[3])? == 1,
                journey: Journeying::from_reply(&answer[4])?,
            })
        })
        .collect()
}
