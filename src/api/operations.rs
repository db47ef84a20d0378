//! What operators and orchestrators call: `GET /healthz` (the process is
//! alive) and `GET /readyz` (Redis answers and the scripts run).

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
/// the script cache is lost on a Redis restart, and this reloads it).
pub(super) async fn readyz(app: &App) -> Reply {
    if !app.is_ready() {
        return respond::unavailable("starting: Redis not connected or scripts not loaded");
    }
    match app.store.train(&app.config.default_train).await {
        Ok(_) => json(StatusCode::OK, &Health { status: "ready" }),
        Err(e) => respond::unavailable(e.to_string()),
    }
}
