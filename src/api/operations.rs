//! What operators and orchestrators call: `GET /healthz` (the process is
//! alive), `GET /readyz` (Redis answers and the scripts run, on every
//! primary of a cluster) and `GET /metrics` (Prometheus). None of them needs
//! a token, and `/healthz` and `/metrics` answer before Redis is ready.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    header::{HeaderValue, CONTENT_TYPE},
    Response, StatusCode,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::App;
use crate::{
    metrics::{self, RedisFailure},
    respond::{self, json, Reply},
};

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
/// the script cache is lost on a Redis restart, and this reloads it). On a
/// cluster that call reaches one primary, so every primary is also asked for
/// its scripts (and given the missing ones).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: Redis answers and the scripts are loaded (on every primary of a cluster).", body = Health),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn readyz(app: &App) -> Reply {
    if !app.is_ready() {
        return respond::unavailable("starting: Redis not connected or scripts not loaded");
    }
    let checked = match app.store.train(&app.config.default_train).await {
        Ok(_) => app.store.check_primaries().await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => {
            app.metrics.set_ready(true);
            json(StatusCode::OK, &Health { status: "ready" })
        }
        Err(e) => {
            app.metrics.set_ready(false);
            let mut reply = respond::unavailable(e.to_string());
            reply.extensions_mut().insert(RedisFailure::Unavailable);
            reply
        }
    }
}

/// The service's metrics, in Prometheus text format 0.0.4.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4: see the README's \
        \"Operating it\" for each family.", body = String, content_type = "text/plain")),
)]
pub(super) fn metrics(app: &App) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(app.metrics.render())));
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    reply
}
