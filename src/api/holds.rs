//! Holds: seats kept while a buyer pays. `POST /trains/{id}/holds`, `GET`
//! and `DELETE` (release) `/trains/{id}/holds/{hold_id}`, and `POST
//! .../confirm`, which turns the hold into a reservation under the same id.

use hyper::{body::Incoming, Request, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    buyer, idempotency_key, read_body, replayed,
    reservations::{
        conflict, idempotency_mismatch, invalid_journey, invalid_seats, sold_out, Reserved,
    },
    target, unexpected, unknown_train, user_for, Answer, App,
};
use crate::{
    request,
    respond::{self, error, invalid, json, ErrorBody, Reply},
    store::{Confirm, HoldRequest},
};

/// A new hold: its seats have left the stock until it expires.
#[derive(Serialize, ToSchema)]
struct Held<'a> {
    hold_id: &'a str,
    train_id: &'a str,
    seats: u8,
    expires_at_ms: i64,
    /// Seats still free for this journey (on a train without stations, on the train).
    remaining: i64,
    /// On a train with stations: where the journey starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    /// On a train with stations: where it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    /// On a numbered train: the seats, like `7-12A`.
    #[serde(skip_serializing_if = "Option::is_none")]
    seat_ids: Option<&'a [String]>,
    /// On a numbered train: the seats' class.
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'a str>,
}

/// Hold seats while the buyer pays; confirm or release the hold before it expires.
#[utoipa::path(
    post,
    path = "/trains/{id}/holds",
    tag = "holds",
    operation_id = "create_hold",
    params(super::shared::TrainPath, super::shared::IdempotencyKey),
    request_body(content = Option<request::HoldBody>, description = "Optional; every field is optional."),
    security((), ("user_jwt" = [])),
    responses(
        (status = 201, description = "Held.", body = Held, headers(("Idempotent-Replayed" = String, description = "`true` when this is a stored answer replayed."))),
        (status = 400, description = "`sold_out`: fewer seats left than asked (`remaining`, for the journey; on a train with stations `full_legs` names the legs that lack seats).", body = ErrorBody, headers(("Idempotent-Replayed" = String, description = "`true` when this is a stored answer replayed."))),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_train`: no such train.", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the user would have more than `MAX_SEATS_PER_USER` seats on the train (`limit`, `used`); `seat_taken`: a seat of `seat_ids` is not free for the journey (`seat_ids`: those not free); `not_together`: no group of that many seats together is free.", body = ErrorBody),
        (status = 410, description = "`hold_expired`: the `Idempotency-Key` made a hold that has expired since.", body = ErrorBody),
        (status = 408, response = super::shared::Timeout),
        (status = 413, response = super::shared::TooLarge),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::Throttled),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn create(app: &App, train_id: &str, req: Request<Incoming>) -> Answer {
    let verified = buyer(app, req.headers())?;
    let idempotency_key = idempotency_key(req.headers())?;
    let body = read_body(app, req).await?;
    let mut hold = request::parse_hold(&body, app.config.hold_ttl_ms).map_err(invalid)?;
    hold.user_id = user_for(app, verified, hold.user_id.take())?;
    let member = HoldRequest {
        hold_id: Uuid::new_v4().to_string(),
        seats: hold.seats,
        user_id: hold.user_id.clone(),
        ttl_ms: hold.ttl_ms,
        idempotency: idempotency_key.map(|key| (key, hold.fingerprint(train_id))),
        journey: hold.journey.clone(),
        seating: hold.seating.clone(),
    };
    let reply = app.holds.submit(train_id, member).await?;
    let response = match reply.status {
        201 => json(
            StatusCode::CREATED,
            &Held {
                hold_id: &reply.hold_id,
                train_id,
                seats: hold.seats,
                expires_at_ms: reply.expires_at_ms,
                remaining: reply.n,
                from: reply.journey.from.as_deref(),
                to: reply.journey.to.as_deref(),
                seat_ids: reply.journey.seat_ids.as_deref(),
                class: reply.journey.class.as_deref(),
            },
        ),
        400 => sold_out(train_id, reply.n, hold.seats, &reply.journey),
        409 => conflict(app, train_id, reply.n, hold.seats, &reply.journey),
        410 => hold_expired(&reply.hold_id),
        429 => respond::locked(reply.n),
        404 => unknown_train(train_id),
        422 if reply.n == 0 => idempotency_mismatch(),
        422 if reply.n == 4 => invalid_seats(train_id, &reply.journey),
        422 => invalid_journey(train_id, reply.n, &hold.journey),
        other => unexpected("hold.lua", other),
    };
    Ok(if reply.replayed {
        replayed(response)
    } else {
        response
    })
}

/// A live hold.
#[derive(Serialize, ToSchema)]
#[schema(as = HoldView)]
struct HoldBody<'a> {
    hold_id: &'a str,
    train_id: &'a str,
    user_id: Option<&'a str>,
    seats: i64,
    expires_at_ms: i64,
    /// On a train with stations: the journey.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    /// On a numbered train: the seats and their class.
    #[serde(skip_serializing_if = "Option::is_none")]
    seat_ids: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'a str>,
}

/// Read a live hold.
#[utoipa::path(
    get,
    path = "/trains/{id}/holds/{hold_id}",
    tag = "holds",
    operation_id = "get_hold",
    params(super::shared::HoldPath),
    security((), ("user_jwt" = [])),
    responses(
        (status = 200, description = "The hold.", body = HoldBody),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_hold`: never made, released, or confirmed.", body = ErrorBody),
        (status = 410, description = "`hold_expired`: its seats are back on sale.", body = ErrorBody),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::RateLimited),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn get(app: &App, train_id: &str, raw_id: &str, req: Request<Incoming>) -> Answer {
    let (id, caller) = target(app, raw_id, "hold_id", req.headers(), false)?;
    match app.store.get_hold(train_id, &id).await? {
        (200, Some(h)) if caller.is_some() && h.user_id != caller => Err(not_yours()),
        (200, Some(h)) => Ok(json(
            StatusCode::OK,
            &HoldBody {
                hold_id: &id,
                train_id,
                user_id: h.user_id.as_deref(),
                seats: h.seats,
                expires_at_ms: h.expires_at_ms,
                from: h.from.as_deref(),
                to: h.to.as_deref(),
                seat_ids: h.seat_ids.as_deref(),
                class: h.class.as_deref(),
            },
        )),
        (410, _) => Err(hold_expired(&id)),
        (404, _) => Err(unknown_hold(train_id, &id)),
        (other, _) => Err(unexpected("get_hold.lua", other)),
    }
}

/// Confirm a hold: its seats are sold, as a reservation with the hold's id.
#[utoipa::path(
    post,
    path = "/trains/{id}/holds/{hold_id}/confirm",
    tag = "holds",
    operation_id = "confirm_hold",
    params(super::shared::HoldPath),
    security((), ("user_jwt" = [])),
    responses(
        (status = 200, description = "Confirmed: the body of a `/reserve` 200, `reservation_id` = the hold id. \
            Confirming again answers the same, replayed.", body = Reserved, headers(("Idempotent-Replayed" = String, description = "`true` when this is a stored answer replayed."))),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_hold` or `unknown_train`.", body = ErrorBody),
        (status = 410, description = "`hold_expired`: too late, its seats are back on sale.", body = ErrorBody),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::Throttled),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn confirm(
    app: &App,
    train_id: &str,
    raw_id: &str,
    req: Request<Incoming>,
) -> Answer {
    let (id, caller) = target(app, raw_id, "hold_id", req.headers(), false)?;
    let member = Confirm {
        hold_id: id.clone(),
        caller,
    };
    let reply = app.confirms.submit(train_id, member).await?;
    Ok(match reply.status {
        200 => {
            if !reply.replayed {
                app.metrics.seats_sold(reply.seats);
            }
            let body = json(
                StatusCode::OK,
                &Reserved {
                    reservation_id: &id,
                    train_id,
                    seats: reply.seats,
                    remaining: reply.n,
                    from: reply.journey.from.as_deref(),
                    to: reply.journey.to.as_deref(),
                    seat_ids: reply.journey.seat_ids.as_deref(),
                    class: reply.journey.class.as_deref(),
                },
            );
            if reply.replayed {
                replayed(body)
            } else {
                body
            }
        }
        403 => not_yours(),
        404 if reply.n == -1 => unknown_train(train_id),
        404 => unknown_hold(train_id, &id),
        410 => hold_expired(&id),
        429 => respond::locked(reply.n),
        other => unexpected("confirm.lua", other),
    })
}

/// A released hold: its seats are back on sale.
#[derive(Serialize, ToSchema)]
struct Released<'a> {
    hold_id: &'a str,
    train_id: &'a str,
    seats: i64,
    remaining: i64,
}

/// Release a hold: its seats go back on sale.
#[utoipa::path(
    delete,
    path = "/trains/{id}/holds/{hold_id}",
    tag = "holds",
    operation_id = "release_hold",
    params(super::shared::HoldPath),
    security((), ("user_jwt" = [])),
    responses(
        (status = 200, description = "Released.", body = Released),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_hold` (never made, or already released) or `unknown_train`.", body = ErrorBody),
        (status = 409, description = "`already_confirmed`: cancel the reservation instead.", body = ErrorBody),
        (status = 410, description = "`hold_expired`: its seats are already back on sale.", body = ErrorBody),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::Throttled),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn release(
    app: &App,
    train_id: &str,
    raw_id: &str,
    req: Request<Incoming>,
) -> Answer {
    let (id, caller) = target(app, raw_id, "hold_id", req.headers(), false)?;
    Ok(
        match app.store.release(train_id, &id, caller.as_deref()).await? {
            (200, remaining, seats) => json(
                StatusCode::OK,
                &Released {
                    hold_id: &id,
                    train_id,
                    seats,
                    remaining,
                },
            ),
            (403, _, _) => not_yours(),
            (404, -1, _) => unknown_train(train_id),
            (404, _, _) => unknown_hold(train_id, &id),
            (409, _, _) => error(
                StatusCode::CONFLICT,
                "already_confirmed",
                format!("hold {id} was confirmed: cancel the reservation instead"),
                &[],
            ),
            (410, _, _) => hold_expired(&id),
            (429, ms, _) => respond::locked(ms),
            (other, _, _) => unexpected("release.lua", other),
        },
    )
}

fn not_yours() -> Reply {
    super::forbidden("this hold belongs to another user")
}

fn unknown_hold(train_id: &str, id: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "unknown_hold",
        format!("train {train_id} has no hold {id} (never made, released, or confirmed)"),
        &[],
    )
}

fn hold_expired(id: &str) -> Reply {
    error(
        StatusCode::GONE,
        "hold_expired",
        format!("hold {id} expired; its seats are back on sale"),
        &[],
    )
}
