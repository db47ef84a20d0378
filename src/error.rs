//! Why a Redis call gave no answer the service can pass on, and how fred's
//! errors map to it.
//!
//! Outside `store` because both sides of the group commit name it: the
//! store returns it, and `batch` hands it to every member of a failed call.
//! Here it spares `batch` importing the store, which imports `batch`.

use fred::prelude::{Error as RedisError, ErrorKind};

/// Why a Redis call gave no answer we can pass on.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// Redis unreachable, loading, or slower than the request timeout: the
    /// outcome is unknown (a script may have run). The client may retry.
    Unavailable(String),
    /// Redis answered with an error no retry will fix (a key of the wrong type,
    /// a broken script). Logged; the client gets a 500.
    Failed(String),
    /// The call wrote nothing: it was sent while the call before it was in
    /// flight, and that one had not run (prelude.lua's `follows`). The
    /// group commit sends it again once that call has answered.
    Fenced,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "Redis unavailable: {why}"),
            StoreError::Failed(why) => write!(f, "Redis error: {why}"),
            StoreError::Fenced => write!(f, "a script call ran before the call it follows"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<RedisError> for StoreError {
    fn from(error: RedisError) -> Self {
        const TRANSIENT: [&str; 6] = [
            "LOADING",
            "BUSY",
            "MASTERDOWN",
            "READONLY",
            "TRYAGAIN",
            "CLUSTERDOWN",
        ];
        let transient_kind = matches!(
            error.kind(),
            ErrorKind::Timeout
                | ErrorKind::IO
                | ErrorKind::Canceled
                | ErrorKind::Routing
                | ErrorKind::Backpressure
                | ErrorKind::Cluster
        );
        let details = error.details();
        if details.starts_with("FENCED") {
            return StoreError::Fenced;
        }
        if transient_kind || TRANSIENT.iter().any(|p| details.starts_with(p)) {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Failed(error.to_string())
        }
    }
}
