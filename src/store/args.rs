//! A script call's KEYS and ARGV, written one after another into one buffer.
//!
//! Why not a `Vec<String>`: fred clones every argument when it encodes a
//! command (it keeps the command to send it again after a reconnect), and the
//! NOSCRIPT fallback sends them all a second time. A `Bytes` made from a
//! `String` allocates on its first clone; slices of one shared buffer clone
//! by counting. A group-commit call of 32 requests on 32 trains names some
//! 550 keys and arguments: one buffer instead of over a thousand allocations.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use fred::types::Value;

use super::scripts::key_parts;

/// KEYS and ARGV of one script call, each a slice of one buffer.
pub struct CallArgs {
    buf: BytesMut,
    pub keys: Vec<Bytes>,
    pub args: Vec<Bytes>,
}

impl CallArgs {
    /// Room for `keys` keys and `args` arguments of about `bytes` bytes in all
    /// (more only costs another buffer).
    pub fn with_capacity(keys: usize, args: usize, bytes: usize) -> Self {
        CallArgs {
            buf: BytesMut::with_capacity(bytes),
            keys: Vec::with_capacity(keys),
            args: Vec::with_capacity(args),
        }
    }

    /// A key of a train (`scripts::key_parts`).
    pub fn train_key(&mut self, prefix: &str, train_id: &str, name: &str) {
        for part in key_parts(prefix, train_id, name) {
            self.buf.put_slice(part.as_bytes());
        }
        let key = self.cut();
        self.keys.push(key);
    }

    /// A key named in full.
    pub fn key(&mut self, key: &str) {
        self.buf.put_slice(key.as_bytes());
        let key = self.cut();
        self.keys.push(key);
    }

    /// An argument, as it is.
    pub fn arg(&mut self, text: &str) {
        self.buf.put_slice(text.as_bytes());
        self.push_arg();
    }

    /// A number argument, in decimal.
    pub fn number(&mut self, n: impl std::fmt::Display) {
        // Writing into a BytesMut cannot fail: it grows as needed.
        let _ = write!(self.buf, "{n}");
        self.push_arg();
    }

    /// A user as the scripts take it: '' (anonymous) or a JSON string literal.
    pub fn user(&mut self, user: Option<&str>) {
        if let Some(user) = user {
            // Writing a string into a growing buffer cannot fail.
            let _ = serde_json::to_writer((&mut self.buf).writer(), user);
        }
        self.push_arg();
    }

    /// A request's journey: its `from` and `to` station names ('' for none).
    pub fn journey(&mut self, journey: &crate::request::Journey) {
        self.arg(journey.from.as_deref().unwrap_or(""));
        self.arg(journey.to.as_deref().unwrap_or(""));
    }

    /// A request's seating: its class, seat ids (comma-separated) and
    /// together ('1'), each '' when not asked.
    pub fn seating(&mut self, seating: &crate::request::Seating) {
        self.arg(seating.class.as_deref().unwrap_or(""));
        self.arg(&seating.seat_ids.join(","));
        self.arg(if seating.together { "1" } else { "" });
    }

    /// The arguments as fred takes them (sharing the buffer).
    pub fn values(&self) -> Vec<Value> {
        self.args.iter().cloned().map(Value::Bytes).collect()
    }

    fn push_arg(&mut self) {
        let arg = self.cut();
        self.args.push(arg);
    }

    /// What was written since the last cut, as its own shared slice.
    fn cut(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_args_are_the_texts_written() {
        let mut call = CallArgs::with_capacity(2, 4, 8);
        call.train_key("train", "t-1", "stock");
        call.key("train:{t-1}:call:x");
        call.arg("abc");
        call.number(42u8);
        call.user(Some("ann \"a\""));
        call.user(None);
        assert_eq!(call.keys, ["train:{t-1}:stock", "train:{t-1}:call:x"]);
        assert_eq!(call.args, ["abc", "42", "\"ann \\\"a\\\"\"", ""]);
    }
}
