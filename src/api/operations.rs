//! What operators and orchestrators call: `GET /healthz` (the process is
//! alive) and `GET /readyz` (Redis answers and the scripts run, on every
//! primary of a cluster).

use hyper::StatusCode;
use serde::Serialize;

use super::App;
use crate::respond::{self, json, Reply};

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

pub(super) fn healthz() -> Reply {
    json(StatusCode::OK, &Health { status: "ok" })
}

/// Ready while Redis answers and the scripts run (a script call, not a PING:
/// the script cache is lost on a Redis restart, and this reloads it). On a
/// cluster that call reaches one primary, so every primary is also asked for
/// its scripts (and given the missing ones).
pub(super) async fn readyz(app: &App) -> Reply {
    if !app.is_ready() {
        return respond::unavailable("starting: Redis not connected or scripts not loaded");
    }
    let checked = match app.store.train(&app.config.default_train).await {
        Ok(_) => app.store.check_primaries().await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => json(StatusCode::OK, &Health { status: "ready" }),
        Err(e) => respond::unavailable(e.to_string()),
    }
}
