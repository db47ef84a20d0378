//! Building responses: every body is JSON, every error is
//! `{"error": "<code>", "detail": "<sentence>", ...extra fields}`.
//!
//! Kept apart from routing so each handler reads as "decide, then answer", and
//! so no path can answer with anything but the contract's shapes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    header::{HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER},
    Response, StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub type Reply = Response<Full<Bytes>>;

// The shape of every error body, for `/openapi.json`. The bodies themselves
// are built by `error`; the test below and the contract tests hold the two
// together (`deny_unknown_fields`: a field not declared here is refused).
/// Every error answer: a stable machine-readable `error` code, a `detail`
/// sentence for humans, and the fields some codes add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Machine-readable code: `sold_out`, `locked`, `unknown_train`,
    /// `unknown_hold`, `unknown_reservation`, `hold_expired`, `limit_reached`,
    /// `invalid_journey`, `seat_taken`, `not_together`, `no_seat_map`,
    /// `already_confirmed`, `exists`, `invalid_request`, `idempotency_mismatch`,
    /// `body_too_large`, `headers_too_large`, `request_timeout`, `rate_limited`,
    /// `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `unavailable` or `internal`.
    #[schema(example = "sold_out")]
    pub error: String,
    /// A sentence for humans.
    #[schema(example = "train default has 0 seat(s) left; 1 asked")]
    pub detail: String,
    /// With `sold_out`: the seats left.
    #[schema(nullable = false)]
    pub remaining: Option<i64>,
    /// With `locked`: milliseconds until the lock frees; with `rate_limited`:
    /// until this client's next request is allowed (at least 1).
    #[schema(nullable = false, minimum = 1)]
    pub retry_after_ms: Option<i64>,
    /// With `limit_reached`: the seats one user may have on the train.
    #[schema(nullable = false)]
    pub limit: Option<u64>,
    /// With `limit_reached`: the seats this user already had there.
    #[schema(nullable = false)]
    pub used: Option<i64>,
    /// With `sold_out` on a train with stations: the legs of the journey
    /// that lack the seats asked.
    #[schema(nullable = false)]
    pub full_legs: Option<Vec<FullLeg>>,
    /// With `seat_taken`: the seats asked that are not free for the journey.
    #[schema(nullable = false)]
    pub seat_ids: Option<Vec<String>>,
}

/// A leg of a journey without enough seats (in a `sold_out` answer).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FullLeg {
    pub from: String,
    pub to: String,
    /// Seats free on this leg.
    pub remaining: i64,
}

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
    too_many(
        "locked",
        "the train is locked by another client; retry later",
        retry_after_ms,
    )
}

/// 429: this client made more requests than RATE_LIMIT_PER_CLIENT allows;
/// its next is allowed in `retry_after_ms`.
pub fn rate_limited(retry_after_ms: i64) -> Reply {
    too_many(
        "rate_limited",
        "too many requests from this client; retry later",
        retry_after_ms,
    )
}

/// A 429 with `retry_after_ms` (at least 1) and `Retry-After` (whole
/// seconds, at least 1).
fn too_many(code: &str, detail: &str, retry_after_ms: i64) -> Reply {
    let ms = retry_after_ms.max(1);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        detail,
        &[("retry_after_ms", ms.into())],
    );
    let seconds = (ms + 999) / 1000;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// 408: the request did not arrive whole within REQUEST_READ_TIMEOUT_MS;
/// the connection is closed after this answer.
pub fn request_timeout(read_timeout_ms: u64) -> Reply {
    let mut response = error(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!("a request must arrive whole within {read_timeout_ms} ms of its first byte"),
        &[],
    );
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(reply: Reply) -> ErrorBody {
        let bytes = reply.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("an ErrorBody, with no undeclared field")
    }

    #[tokio::test]
    async fn error_bodies_have_the_documented_shape() {
        let locked = body(locked(1500)).await;
        assert_eq!(
            (locked.error.as_str(), locked.retry_after_ms),
            ("locked", Some(1500))
        );
        let extra = [
            ("remaining", 0.into()),
            ("limit", 2.into()),
            ("used", 2.into()),
        ];
        let full = body(error(StatusCode::BAD_REQUEST, "x", "y", &extra)).await;
        assert_eq!(
            (full.remaining, full.limit, full.used),
            (Some(0), Some(2), Some(2))
        );
        let limited = body(rate_limited(20)).await;
        assert_eq!(
            (limited.error.as_str(), limited.retry_after_ms),
            ("rate_limited", Some(20))
        );
        for reply in [
            invalid("bad"),
            unavailable("down"),
            internal("oops"),
            request_timeout(10),
        ] {
            body(reply).await;
        }
    }
}
