//! The pieces of the API's description that many operations share: path
//! parameters, the `Idempotency-Key` header, and the error answers with
//! their headers. The handlers' `#[utoipa::path]` annotations name them;
//! `docs` gathers the document. Kept apart from `docs` (which names every
//! handler) so that handlers and the document do not import each other.

use utoipa::{IntoParams, ToResponse};

use crate::respond::ErrorBody;

/// A train, in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by utoipa, not by the router (which parses paths itself)
pub(super) struct TrainPath {
    /// The train id: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_.-]{1,64}$",
        example = "default"
    )]
    id: String,
}

/// A hold, in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct HoldPath {
    /// The train id: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_.-]{1,64}$",
        example = "default"
    )]
    id: String,
    /// The hold id the service gave (a UUID).
    #[param(format = "uuid")]
    hold_id: String,
}

/// A reservation, in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct ReservationPath {
    /// The train id: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_.-]{1,64}$",
        example = "default"
    )]
    id: String,
    /// The reservation id the service gave (a UUID).
    #[param(format = "uuid")]
    reservation_id: String,
}

/// The optional `Idempotency-Key` header.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(super) struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters (else 422). The first request with a
    /// key that books or holds seats stores its answer for 24 hours; a later
    /// one with the same key gets that answer again, with `Idempotent-Replayed:
    /// true`, and books nothing. A refusal stores nothing: the same key is
    /// decided afresh. The same key with another body: 422
    /// `idempotency_mismatch`.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$"
    )]
    key: String,
}

/// 401 `unauthorized`: a missing or refused bearer token.
#[derive(ToResponse)]
#[response(
    description = "`unauthorized`: a bearer token is needed and was missing or refused \
        (for buyers, only when the service runs with `AUTH_JWT_SECRET`).",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
#[allow(dead_code)]
pub(super) struct Unauthorized(ErrorBody);

/// 403 `forbidden`.
#[derive(ToResponse)]
#[response(
    description = "`forbidden`: the caller may not do this (another user's hold or \
        reservation, a `user_id` other than the token's `sub`, or admin endpoints with \
        `ADMIN_TOKEN` unset)."
)]
#[allow(dead_code)]
pub(super) struct Forbidden(ErrorBody);

/// 413 `body_too_large`.
#[derive(ToResponse)]
#[response(description = "`body_too_large`: the body is over 16 KiB.")]
#[allow(dead_code)]
pub(super) struct TooLarge(ErrorBody);

/// 422 `invalid_request` (and `idempotency_mismatch` where a key is taken).
#[derive(ToResponse)]
#[response(
    description = "`invalid_request`: malformed JSON, wrong types, unknown fields, a bad \
        id or `Idempotency-Key`, a value out of range; `idempotency_mismatch`: the \
        `Idempotency-Key` was used with another request; or `invalid_journey`: `from` or \
        `to` is not a station of the train, `from` is not before `to`, or the train has no \
        stations."
)]
#[allow(dead_code)]
pub(super) struct Invalid(ErrorBody);

/// 429 `locked`.
#[derive(ToResponse)]
#[response(
    description = "`locked`: the train's lock is held by someone else (an operator freezing \
        sales, another client); nothing changed. `retry_after_ms` says for how long.",
    headers(("Retry-After" = u64, description = "Whole seconds to wait, at least 1."))
)]
#[allow(dead_code)]
pub(super) struct Locked(ErrorBody);

/// 429 `locked` or `rate_limited`, where a buyer's request may change a train.
#[derive(ToResponse)]
#[response(
    description = "`locked`: the train's lock is held by someone else (an operator freezing \
        sales, another client); or `rate_limited`: this client made more requests than \
        `RATE_LIMIT_PER_CLIENT` allows. Nothing changed either way; `retry_after_ms` says \
        how long to wait.",
    headers(("Retry-After" = u64, description = "Whole seconds to wait, at least 1."))
)]
#[allow(dead_code)]
pub(super) struct Throttled(ErrorBody);

/// 429 `rate_limited`.
#[derive(ToResponse)]
#[response(
    description = "`rate_limited`: this client made more requests than \
        `RATE_LIMIT_PER_CLIENT` allows; `retry_after_ms` says how long to wait.",
    headers(("Retry-After" = u64, description = "Whole seconds to wait, at least 1."))
)]
#[allow(dead_code)]
pub(super) struct RateLimited(ErrorBody);

/// 408 `request_timeout`.
#[derive(ToResponse)]
#[response(
    description = "`request_timeout`: the request (headers and body) did not arrive whole \
        within `REQUEST_READ_TIMEOUT_MS` of its first byte; the connection is closed.",
    headers(("Connection" = String, description = "`close`"))
)]
#[allow(dead_code)]
pub(super) struct Timeout(ErrorBody);

/// 503 `unavailable`.
#[derive(ToResponse)]
#[response(
    description = "`unavailable`: the service is starting, or Redis is unreachable or too \
        slow. The outcome is unknown (the script may have run): retrying with the same \
        `Idempotency-Key` is always safe.",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))
)]
#[allow(dead_code)]
pub(super) struct Unavailable(ErrorBody);

/// 500 `internal`.
#[derive(ToResponse)]
#[response(
    description = "`internal`: Redis answered with an error no retry fixes (say, an operator \
        stored a non-integer in a stock key). Logged."
)]
#[allow(dead_code)]
pub(super) struct Internal(ErrorBody);
