//! The Lua scripts (embedded at build time) and the key layout they share.
//!
//! Every script that changes a train is `lua/prelude.lua` followed by its own
//! part: the prelude holds what all of them need (the lock with its
//! compare-and-delete, the clock, reclaiming expired holds, per-user counts),
//! so it is written once and each call is still one self-contained EVALSHA.
//! Those scripts all take thirteen keys per train, in `TRAIN_KEYS` order, and may
//! carry several trains in one call (see prelude.lua). `reserve_plain.lua`
//! books plain requests on plain trains without the prelude, and hands the
//! rest back: it takes the seven keys per train that booking needs
//! (`PLAIN_TRAIN_KEYS`) and five fields per request, the same calls made
//! smaller (a third of a call's time in Redis goes to its arguments).

use fred::types::scripts::Script;

/// The name of one key of a train, `PREFIX:{ID}:name`, in its parts (to
/// join or to write out). The `{ID}` hash tag keeps all of a train's keys in
/// one Cluster slot.
pub fn key_parts<'a>(prefix: &'a str, train_id: &'a str, name: &'a str) -> [&'a str; 5] {
    [prefix, ":{", train_id, "}:", name]
}

/// Keys of a train, in the order every train script takes them (thirteen per train).
pub const TRAIN_KEYS: [&str; 13] = [
    "stock",
    "capacity",
    "sold",
    "held",
    "lock",
    "reservations",
    "holds",
    "hold_expiry",
    "users",
    "ended",
    "legs",
    "seats",
    "coaches",
];

/// The keys of a train that `reserve_plain.lua` takes, in its order.
pub const PLAIN_TRAIN_KEYS: [&str; 7] = [
    "stock",
    "sold",
    "held",
    "lock",
    "reservations",
    "users",
    "legs",
];

/// Full text of each script as sent to Redis (public for tests that call a
/// script directly, as a client library's retry would).
pub const RESERVE: &str = concat!(
    include_str!("../../lua/prelude.lua"),
    include_str!("../../lua/reserve.lua")
);
/// Plain reservations on plain trains, without the prelude (see the script).
pub const RESERVE_PLAIN: &str = include_str!("../../lua/reserve_plain.lua");
pub const HOLD: &str = concat!(
    include_str!("../../lua/prelude.lua"),
    include_str!("../../lua/hold.lua")
);
pub const CONFIRM: &str = concat!(
    include_str!("../../lua/prelude.lua"),
    include_str!("../../lua/confirm.lua")
);
pub const RELEASE: &str = concat!(
    include_str!("../../lua/prelude.lua"),
    include_str!("../../lua/release.lua")
);
pub const CANCEL: &str = concat!(
    include_str!("../../lua/prelude.lua"),
    include_str!("../../lua/cancel.lua")
);
pub const PUT_TRAIN: &str = concat!(
    include_str!("../../lua/prelude.lua"),
    include_str!("../../lua/put_train.lua")
);
pub const TRAIN: &str = include_str!("../../lua/train.lua");
pub const GET_HOLD: &str = include_str!("../../lua/get_hold.lua");
pub const RATE: &str = include_str!("../../lua/rate.lua");

/// The scripts' names, in `Scripts::all()` order (the `script` label of
/// `script_calls_total`).
pub const NAMES: [&str; 10] = [
    "reserve",
    "reserve_plain",
    "hold",
    "confirm",
    "release",
    "cancel",
    "put_train",
    "train",
    "get_hold",
    "rate",
];

pub(crate) struct Scripts {
    pub reserve: Script,
    pub reserve_plain: Script,
    pub hold: Script,
    pub confirm: Script,
    pub release: Script,
    pub cancel: Script,
    pub put_train: Script,
    pub train: Script,
    pub get_hold: Script,
    pub rate: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            reserve: Script::from_lua(RESERVE),
            reserve_plain: Script::from_lua(RESERVE_PLAIN),
            hold: Script::from_lua(HOLD),
            confirm: Script::from_lua(CONFIRM),
            release: Script::from_lua(RELEASE),
            cancel: Script::from_lua(CANCEL),
            put_train: Script::from_lua(PUT_TRAIN),
            train: Script::from_lua(TRAIN),
            get_hold: Script::from_lua(GET_HOLD),
            rate: Script::from_lua(RATE),
        }
    }

    /// The keys of a train that `script` takes, in its order.
    pub fn train_keys(&self, script: &Script) -> &'static [&'static str] {
        if std::ptr::eq(script, &self.reserve_plain) {
            &PLAIN_TRAIN_KEYS
        } else {
            &TRAIN_KEYS
        }
    }

    /// Where `script` is in `all()` (and so its name in `NAMES`).
    pub fn index(&self, script: &Script) -> Option<usize> {
        self.all().iter().position(|s| std::ptr::eq(*s, script))
    }

    pub fn all(&self) -> [&Script; 10] {
        [
            &self.reserve,
            &self.reserve_plain,
            &self.hold,
            &self.confirm,
            &self.release,
            &self.cancel,
            &self.put_train,
            &self.train,
            &self.get_hold,
            &self.rate,
        ]
    }
}
