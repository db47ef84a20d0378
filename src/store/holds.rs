//! Holds in Redis: taking seats while a buyer pays (`hold.lua`), confirming
//! them into reservations (`confirm.lua`), both one call per group-commit
//! batch; releasing one (`release.lua`) and reading one (`get_hold.lua`).

use std::sync::Arc;

use serde::Deserialize;

use super::{int, reservations::GiveBack, status_code, CallArgs, Journeying, Store, StoreError};
use crate::{
    batch::{CallId, Decide},
    request::{Journey, Seating},
};

/// One hold request, as `hold.lua` takes it.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub hold_id: String,
    pub seats: u8,
    pub user_id: Option<String>,
    pub ttl_ms: u64,
    /// `(key, fingerprint of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
    /// The stations it names, if any.
    pub journey: Journey,
    /// What it asks of a numbered train's seats.
    pub seating: Seating,
}

/// `hold.lua`'s answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldReply {
    pub status: u16,
    pub hold_id: String,
    /// Seats left (201, 400), seats the user already has (409), ms until the
    /// lock frees (429).
    pub n: i64,
    pub replayed: bool,
    pub expires_at_ms: i64,
    /// What the answer adds on a train with stations.
    pub journey: Journeying,
}

/// One confirm request: the hold, and the user who must own it (`None`:
/// anyone who knows the id, with identities off).
#[derive(Debug, Clone)]
pub struct Confirm {
    pub hold_id: String,
    pub caller: Option<String>,
}

/// `confirm.lua`'s answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmReply {
    pub status: u16,
    /// Seats left (200) or ms until the lock frees (429); -1 with 404: no such train.
    pub n: i64,
    pub replayed: bool,
    pub seats: i64,
    /// What the answer adds on a train with stations.
    pub journey: Journeying,
}

/// A live hold, as `GET /trains/{id}/holds/{hold_id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HoldView {
    pub user_id: Option<String>,
    pub seats: i64,
    pub expires_at_ms: i64,
    /// On a train with stations: the journey.
    pub from: Option<String>,
    pub to: Option<String>,
    /// On a numbered train: its seats and their class.
    pub seat_ids: Option<Vec<String>>,
    pub class: Option<String>,
}

/// Group commit of holds: one `hold.lua` call per batch.
pub struct Holding(pub Arc<Store>);

impl Decide for Holding {
    type Member = HoldRequest;
    type Answer = HoldReply;

    fn shard(&self, train_id: &str) -> u16 {
        self.0.shard(train_id)
    }

    async fn decide(
        &self,
        batch: &[(String, HoldRequest)],
        id: &CallId,
    ) -> Result<Vec<HoldReply>, StoreError> {
        self.0.hold(batch, id).await
    }
}

/// Group commit of confirms: one `confirm.lua` call per batch.
pub struct Confirming(pub Arc<Store>);

impl Decide for Confirming {
    type Member = Confirm;
    type Answer = ConfirmReply;

    fn shard(&self, train_id: &str) -> u16 {
        self.0.shard(train_id)
    }

    async fn decide(
        &self,
        batch: &[(String, Confirm)],
        id: &CallId,
    ) -> Result<Vec<ConfirmReply>, StoreError> {
        self.0.confirm(batch, id).await
    }
}

impl Store {
    /// Runs `hold.lua` for hold requests on one or more trains (in order
    /// within each train); one reply each, in the batch's order.
    pub async fn hold(
        &self,
        batch: &[(String, HoldRequest)],
        id: &CallId,
    ) -> Result<Vec<HoldReply>, StoreError> {
        let replies = self
            .call_trains(&self.scripts.hold, batch, id, 6, |h, records, call| {
                call.arg(&h.hold_id);
                call.number(h.seats);
                call.user(h.user_id.as_deref());
                call.number(h.ttl_ms);
                records.member_args(&h.idempotency, call);
                call.journey(&h.journey);
                call.seating(&h.seating);
            })
            .await?;
        replies
            .into_iter()
            .map(|answer| {
                Ok(HoldReply {
                    status: status_code(int(&answer[0])?)?,
                    hold_id: answer[1].as_string().unwrap_or_default(),
                    n: int(&answer[2])?,
                    replayed: int(&answer[3])? == 1,
                    expires_at_ms: int(&answer[4])?,
                    journey: Journeying::from_reply(&answer[5])?,
                })
            })
            .collect()
    }

    /// Runs `confirm.lua` for confirms on one or more trains (in order
    /// within each train); one reply each, in the batch's order.
    pub async fn confirm(
        &self,
        batch: &[(String, Confirm)],
        id: &CallId,
    ) -> Result<Vec<ConfirmReply>, StoreError> {
        let replies = self
            .call_trains(&self.scripts.confirm, batch, id, 5, |c, _, call| {
                call.arg(&c.hold_id);
                call.user(c.caller.as_deref());
            })
            .await?;
        replies
            .into_iter()
            .map(|answer| {
                Ok(ConfirmReply {
                    status: status_code(int(&answer[0])?)?,
                    n: int(&answer[1])?,
                    replayed: int(&answer[2])? == 1,
                    seats: int(&answer[3])?,
                    journey: Journeying::from_reply(&answer[4])?,
                })
            })
            .collect()
    }

    /// Releases a live hold (`release.lua`); `caller` as for `Confirm`.
    pub async fn release(
        &self,
        train_id: &str,
        hold_id: &str,
        caller: Option<&str>,
    ) -> Result<GiveBack, StoreError> {
        let member = |call: &mut CallArgs| {
            call.arg(hold_id);
            call.user(caller);
        };
        let answer = self
            .call_one(&self.scripts.release, train_id, member, 3)
            .await?;
        Ok((
            status_code(int(&answer[0])?)?,
            int(&answer[1])?,
            int(&answer[2])?,
        ))
    }

    /// One hold: 200 with its record while live, 410 once expired, 404 otherwise.
    pub async fn get_hold(
        &self,
        train_id: &str,
        hold_id: &str,
    ) -> Result<(u16, Option<HoldView>), StoreError> {
        let mut call = CallArgs::with_capacity(2, 1, 128);
        call.train_key(&self.prefix, train_id, "holds");
        call.train_key(&self.prefix, train_id, "ended");
        call.arg(hold_id);
        let (status, raw): (i64, String) = self
            .eval(&self.scripts.get_hold, call, self.client(train_id))
            .await?;
        let status = status_code(status)?;
        if status != 200 {
            return Ok((status, None));
        }
        let view = serde_json::from_str(&raw)
            .map_err(|e| StoreError::Failed(format!("hold {hold_id} is unreadable: {e}")))?;
        Ok((status, Some(view)))
    }
}
