//! Trains in Redis: the snapshot behind `GET /trains/{id}` (`train.lua`,
//! read-only) and creating or resetting one (`put_train.lua`).

use fred::types::Value;

use super::{int, status_code, CallArgs, Store, StoreError};
use crate::seats::{Coach, Occupancy};

/// `train.lua`'s reply, for GET /trains/{id}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainState {
    pub capacity: i64,
    pub remaining: i64,
    pub sold: i64,
    pub held: i64,
    /// `None`: unlocked. `Some(None)`: locked with no expiry. `Some(Some(ms))`.
    pub lock: Option<Option<i64>>,
    /// A train with stations: their names, and per leg (station k to k + 1)
    /// its figures.
    pub stations: Option<Vec<String>>,
    pub legs: Vec<LegState>,
    /// A train with numbered seats: which seat is free or held on which leg.
    pub seats: Option<Occupancy>,
    /// Redis's clock when the snapshot was read (ms since the epoch).
    pub at_ms: i64,
}

/// One leg's seats: free, on live reservations, on live holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegState {
    pub remaining: i64,
    pub sold: i64,
    pub held: i64,
}

impl Store {
    /// `None` when the train does not exist. Holds that have expired count as
    /// remaining, reclaimed or not (see `train.lua`).
    pub async fn train(&self, train_id: &str) -> Result<Option<TrainState>, StoreError> {
        let mut call = CallArgs::with_capacity(10, 0, 400);
        for name in [
            "stock",
            "capacity",
            "sold",
            "held",
            "lock",
            "holds",
            "hold_expiry",
            "legs",
            "seats",
            "coaches",
        ] {
            call.train_key(&self.prefix, train_id, name);
        }
        let reply: Vec<Value> = self
            .eval(&self.scripts.train, call, self.client(train_id))
            .await?;
        let text = |at: usize| reply.get(at).and_then(Value::as_string);
        let Some(stock) = text(0) else {
            return Ok(None);
        };
        let (capacity, sold, held) = (text(1), text(2), text(3));
        let pttl = reply.get(4).map_or(Ok(-2), int)?;
        let stations = text(5)
            .map(|raw| {
                serde_json::from_str::<Vec<String>>(&raw).map_err(|e| {
                    StoreError::Failed(format!(
                        "the stations of train {train_id} are unreadable: {e}"
                    ))
                })
            })
            .transpose()?;
        let list = |at: usize| match reply.get(at) {
            Some(Value::Array(values)) => values.as_slice(),
            _ => &[],
        };
        let legs = list(6)
            .chunks_exact(3)
            .map(|leg| {
                Ok(LegState {
                    remaining: int(&leg[0])?,
                    sold: int(&leg[1])?,
                    held: int(&leg[2])?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let int = |name: &str, raw: Option<String>| -> Result<Option<i64>, StoreError> {
            raw.map(|v| {
                v.parse().map_err(|_| {
                    StoreError::Failed(format!("{name} of train {train_id} is not an integer"))
                })
            })
            .transpose()
        };
        let remaining = int("stock", Some(stock))?.unwrap_or(0);
        let sold = int("sold", sold)?.unwrap_or(0);
        let held = int("held", held)?.unwrap_or(0);
        let capacity = int("capacity", capacity)?.unwrap_or(remaining + sold + held);
        let unreadable =
            |what: &str, e: String| StoreError::Failed(format!("{what} of train {train_id}: {e}"));
        let now = reply.get(10).map_or(Ok(0), super::int)?;
        let seats = match text(7) {
            None => None,
            Some(raw) => {
                let coaches: Vec<Coach> =
                    serde_json::from_str(&raw).map_err(|e| unreadable("coaches", e.to_string()))?;
                let scores = list(8)
                    .chunks_exact(2)
                    // A score as Redis writes a double (whole, below 2^53).
                    .map(|run| {
                        run[1]
                            .as_str()
                            .and_then(|s| s.parse::<f64>().ok())
                            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                            .map(|f| f as u64)
                            .ok_or("a free run's score is not a whole number")
                    })
                    .collect::<Result<Vec<u64>, _>>()
                    .map_err(|e| unreadable("seats", e.to_owned()))?;
                let holds = list(9).iter().filter_map(Value::as_string);
                Some(
                    Occupancy::new(coaches, scores, holds, now)
                        .map_err(|e| unreadable("seats", e))?,
                )
            }
        };
        let lock = match pttl {
            -2 => None,
            -1 => Some(None),
            ms => Some(Some(ms)),
        };
        Ok(Some(TrainState {
            capacity,
            remaining,
            sold,
            held,
            lock,
            stations,
            legs,
            seats,
            at_ms: now,
        }))
    }

    /// Creates (or, with `reset`, resets) a train. Returns the script's status:
    /// 201, 200, 409 or 429 (with ms until the lock frees).
    pub async fn put_train(
        &self,
        train_id: &str,
        capacity: u64,
        reset: bool,
        stations: Option<&[String]>,
        coaches: Option<&[Coach]>,
    ) -> Result<(u16, i64), StoreError> {
        let stations = stations
            .map(|names| serde_json::to_string(names).unwrap_or_default())
            .unwrap_or_default();
        let coaches = coaches
            .map(|coaches| serde_json::to_string(coaches).unwrap_or_default())
            .unwrap_or_default();
        let member = |call: &mut CallArgs| {
            call.number(capacity);
            call.arg(if reset { "1" } else { "0" });
            call.arg(&stations);
            call.arg(&coaches);
        };
        let answer = self
            .call_one(&self.scripts.put_train, train_id, member, 2)
            .await?;
        Ok((status_code(int(&answer[0])?)?, int(&answer[1])?))
    }
}
