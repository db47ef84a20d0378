//! Building responses: every body is JSON, every error is
//! `{"error": "<code>", "detail": "<sentence>", ...extra fields}`.
//!
//! Kept apart from routing so each handler reads as "decide, then answer", and
//! so no path can answer with anything but the contract's shapes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER},
    Response, StatusCode,
};
use serde::Serialize;
use serde_json::{Map, Value};

pub type Reply = Response<Full<Bytes>>;

/// A JSON response with the given status.
pub fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    // Serializing our own plain structs cannot fail; fall back to `{}` regardless.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error response: `code` is the machine-readable `error`, `detail` the
/// human sentence, `extra` any further fields the contract names.
pub fn error(
    status: StatusCode,
    code: &str,
    detail: impl Into<String>,
    extra: &[(&str, Value)],
) -> Reply {
    let mut body = Map::with_capacity(2 + extra.len());
    body.insert("error".into(), code.into());
    body.insert("detail".into(), detail.into().into());
    for (name, value) in extra {
        body.insert((*name).into(), value.clone());
    }
    json(status, &body)
}

pub fn invalid(detail: impl Into<String>) -> Reply {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        detail,
        &[],
    )
}

/// 503: Redis is unreachable, still starting, or too slow. The outcome of the
/// request is unknown; retrying (with the same Idempotency-Key) is safe.
pub fn unavailable(detail: impl Into<String>) -> Reply {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail, &[]);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 500: Redis answered with an error no retry fixes (say, an operator stored a
/// non-integer in a stock key). Logged where it is decided.
pub fn internal(detail: impl Into<String>) -> Reply {
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail, &[])
}

/// 429: the train's lock is held by someone else for `retry_after_ms` more.
pub fn locked(retry_after_ms: i64) -> Reply {
    let ms = retry_after_ms.max(1);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "locked",
        "the train is locked by another client; retry later",
        &[("retry_after_ms", ms.into())],
    );
    let seconds = (ms + 999) / 1000;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
