//! Holds in Redis: taking seats while a buyer pays (`hold.lua`), confirming
//! them into reservations (`confirm.lua`), both one call per group-commit
//! batch; releasing one (`release.lua`) and reading one (`get_hold.lua`).

use std::sync::Arc;

use fred::types::Value;
use serde::Deserialize;

use super::{int, per_member, reservations::GiveBack, status_code, user_arg, Store, StoreError};
use crate::batch::Decide;

/// One hold request, as `hold.lua` takes it.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub hold_id: String,
    pub seats: u8,
    pub user_id: Option<String>,
    pub ttl_ms: u64,
    /// `(key, fingerprint of the request)` when the client sent an Idempotency-Key.
    pub idempotency: Option<(String, String)>,
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
}

/// A live hold, as `GET /trains/{id}/holds/{hold_id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HoldView {
    pub user_id: Option<String>,
    pub seats: i64,
    pub expires_at_ms: i64,
}

/// Group commit of holds: one `hold.lua` call per batch.
pub struct Holding(pub Arc<Store>);

impl Decide for Holding {
    type Member = HoldRequest;
    type Answer = HoldReply;

    async fn decide(
        &self,
        train_id: &str,
        batch: &[HoldRequest],
    ) -> Result<Vec<HoldReply>, StoreError> {
        self.0.hold(train_id, batch).await
    }
}

/// Group commit of confirms: one `confirm.lua` call per batch.
pub struct Confirming(pub Arc<Store>);

impl Decide for Confirming {
    type Member = Confirm;
    type Answer = ConfirmReply;

    async fn decide(
        &self,
        train_id: &str,
        batch: &[Confirm],
    ) -> Result<Vec<ConfirmReply>, StoreError> {
        self.0.confirm(train_id, batch).await
    }
}

impl Store {
    /// Runs `hold.lua` for one or more hold requests on one train, in order.
    pub async fn hold(
        &self,
        train_id: &str,
        batch: &[HoldRequest],
    ) -> Result<Vec<HoldReply>, StoreError> {
        let mut keys = self.keys(train_id);
        let mut members = Vec::with_capacity(6 * batch.len());
        for h in batch {
            let (record, fingerprint) = match &h.idempotency {
                None => (0, String::new()),
                Some((key, fp)) => (keys.idempotency(key), fp.clone()),
            };
            members.extend([
                h.hold_id.clone(),
                h.seats.to_string(),
                user_arg(h.user_id.as_deref()),
                h.ttl_ms.to_string(),
                record.to_string(),
                fingerprint,
            ]);
        }
        let token = batch.first().map(|h| h.hold_id.clone()).unwrap_or_default();
        let reply: Vec<Value> = self
            .call_train(&self.scripts.hold, keys, token, members)
            .await?;
        per_member(reply, 5, batch.len())?
            .into_iter()
            .map(|answer| {
                Ok(HoldReply {
                    status: status_code(int(&answer[0])?)?,
                    hold_id: answer[1].as_string().unwrap_or_default(),
                    n: int(&answer[2])?,
                    replayed: int(&answer[3])? == 1,
                    expires_at_ms: int(&answer[4])?,
                })
            })
            .collect()
    }

    /// Runs `confirm.lua` for one or more confirms on one train, in order.
    pub async fn confirm(
        &self,
        train_id: &str,
        batch: &[Confirm],
    ) -> Result<Vec<ConfirmReply>, StoreError> {
        let mut members = Vec::with_capacity(2 * batch.len());
        for c in batch {
            members.extend([c.hold_id.clone(), user_arg(c.caller.as_deref())]);
        }
        let token = uuid::Uuid::new_v4().to_string();
        let reply: Vec<Value> = self
            .call_train(&self.scripts.confirm, self.keys(train_id), token, members)
            .await?;
        per_member(reply, 4, batch.len())?
            .into_iter()
            .map(|answer| {
                Ok(ConfirmReply {
                    status: status_code(int(&answer[0])?)?,
                    n: int(&answer[1])?,
                    replayed: int(&answer[2])? == 1,
                    seats: int(&answer[3])?,
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
        let members = vec![hold_id.to_owned(), user_arg(caller)];
        let token = uuid::Uuid::new_v4().to_string();
        let (status, n, seats): (i64, i64, i64) = self
            .call_train(&self.scripts.release, self.keys(train_id), token, members)
            .await?;
        Ok((status_code(status)?, n, seats))
    }

    /// One hold: 200 with its record while live, 410 once expired, 404 otherwise.
    pub async fn get_hold(
        &self,
        train_id: &str,
        hold_id: &str,
    ) -> Result<(u16, Option<HoldView>), StoreError> {
        let keys = self.keys(train_id);
        let key_list = vec![keys.get("holds"), keys.get("ended")];
        let (status, raw): (i64, String) = self
            .eval(&self.scripts.get_hold, key_list, vec![hold_id.to_owned()])
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
