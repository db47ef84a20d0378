//! What operators and orchestrators call: `GET /healthz` (the process is
//! alive) and `GET /readyz` (Redis answers and the scripts run).

use hyper::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::App;
use crate::respond::{self, json, Reply};

/// A probe's answer.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok` (healthz) or `ready` (readyz).
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is alive (whether or not Redis is).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = Health)),
)]
pub(super) fn healthz() -> Reply {
    json(StatusCode::OK, &Health { status: "ok" })
}

/// Ready while Redis answers and the scripts run (a script call, not a PING:
/// the script cache is lost on a Redis restart, and this reloads it).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: Redis answers and the scripts are loaded.", body = Health),
        (status = 503, response = super::docs::Unavailable),
    ),
)]
pub(super) async fn readyz(app: &App) -> Reply {
    if !app.is_ready() {
        return respond::unavailable("starting: Redis not connected or scripts not loaded");
    }
    match app.store.train(&app.config.default_train).await {
        Ok(_) => json(StatusCode::OK, &Health { status: "ready" }),
        Err(e) => respond::unavailable(e.to_string()),
    }
}
