//! Trains in Redis: the snapshot behind `GET /trains/{id}` (`train.lua`,
//! read-only) and creating or resetting one (`put_train.lua`).

use fred::types::Value;

use super::{int, status_code, CallArgs, Store, StoreError};

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
        let mut call = CallArgs::with_capacity(8, 0, 320);
        for name in [
            "stock",
            "capacity",
            "sold",
            "held",
            "lock",
            "holds",
            "hold_expiry",
            "legs",
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
        let legs = reply
            .get(6..)
            .unwrap_or_default()
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
    ) -> Result<(u16, i64), StoreError> {
        let stations = stations
            .map(|names| serde_json::to_string(names).unwrap_or_default())
            .unwrap_or_default();
        let member = |call: &mut CallArgs| {
            call.number(capacity);
            call.arg(if reset { "1" } else { "0" });
            call.arg(&stations);
        };
        let answer = self
            .call_one(&self.scripts.put_train, train_id, member, 2)
            .await?;
        Ok((status_code(int(&answer[0])?)?, int(&answer[1])?))
    }
}
