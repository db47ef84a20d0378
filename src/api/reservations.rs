//! `POST /reserve`, and one reservation: `GET` and `DELETE` (cancel)
//! `/trains/{id}/reservations/{reservation_id}`.

use hyper::{body::Incoming, Request, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    buyer, idempotency_key, limit_reached, read_body, replayed, target, unexpected, unknown_train,
    user_for, Answer, App,
};
use crate::{
    request::{self, Journey},
    respond::{self, error, invalid, json, ErrorBody, Reply},
    store::{Journeying, Reservation, ReserveReply},
};

/// The 200 of `POST /reserve` (and of a hold's confirm).
#[derive(Serialize, ToSchema)]
pub(super) struct Reserved<'a> {
    pub reservation_id: &'a str,
    pub train_id: &'a str,
    pub seats: i64,
    /// Seats still free for this journey (on a train without stations, on the train).
    pub remaining: i64,
    /// On a train with stations: where the journey starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    /// On a train with stations: where it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
    /// On a numbered train: the seats, like `7-12A`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_ids: Option<&'a [String]>,
    /// On a numbered train: the seats' class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'a str>,
}

/// Reserve seats on a train (the default train when the body names none).
#[utoipa::path(
    post,
    path = "/reserve",
    tag = "reservations",
    operation_id = "reserve",
    request_body(content = Option<request::ReserveBody>, description = "Optional; every field is optional."),
    params(super::shared::IdempotencyKey),
    security((), ("user_jwt" = [])),
    responses(
        (status = 200, description = "Reserved.", body = Reserved,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is a stored answer replayed for an `Idempotency-Key`."))),
        (status = 400, description = "`sold_out`: fewer seats left than asked (`remaining`, for the journey; on a train with stations `full_legs` names the legs that lack seats).", body = ErrorBody,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is a stored answer replayed for an `Idempotency-Key`."))),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_train`: no such train.", body = ErrorBody),
        (status = 409, description = "`limit_reached`: the user would have more than `MAX_SEATS_PER_USER` seats on the train (`limit`, `used`); `seat_taken`: a seat of `seat_ids` is not free for the journey (`seat_ids`: those not free); `not_together`: no group of that many seats together is free.", body = ErrorBody),
        (status = 408, response = super::shared::Timeout),
        (status = 413, response = super::shared::TooLarge),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::Throttled),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn reserve(app: &App, req: Request<Incoming>) -> Answer {
    let verified = buyer(app, req.headers())?;
    let idempotency_key = idempotency_key(req.headers())?;
    let body = read_body(app, req).await?;
    let mut reserve = request::parse_reserve(&body, &app.config.default_train).map_err(invalid)?;
    reserve.user_id = user_for(app, verified, reserve.user_id.take())?;
    let idempotency = idempotency_key.map(|key| (key, reserve.fingerprint()));
    let reservation = Reservation {
        reservation_id: Uuid::new_v4().to_string(),
        seats: reserve.seats,
        user_id: reserve.user_id.clone(),
        idempotency,
        journey: reserve.journey.clone(),
        seating: reserve.seating.clone(),
    };
    let reply = app
        .reservations
        .submit(&reserve.train_id, reservation)
        .await?;
    let ReserveReply {
        status,
        reservation_id,
        n,
        replayed: was_replayed,
        journey,
    } = reply;
    let train_id = &reserve.train_id;
    let response = match status {
        200 => json(
            StatusCode::OK,
            &Reserved {
                reservation_id: &reservation_id,
                train_id,
                seats: reserve.seats.into(),
                remaining: n,
                from: journey.from.as_deref(),
                to: journey.to.as_deref(),
                seat_ids: journey.seat_ids.as_deref(),
                class: journey.class.as_deref(),
            },
        ),
        400 => sold_out(train_id, n, reserve.seats, &journey),
        409 => conflict(app, train_id, n, reserve.seats, &journey),
        429 => respond::locked(n),
        404 => unknown_train(train_id),
        422 if n == 0 => idempotency_mismatch(),
        422 if n == 4 => invalid_seats(train_id, &journey),
        422 => invalid_journey(train_id, n, &reserve.journey),
        other => unexpected("reserve.lua", other),
    };
    if status == 200 && !was_replayed {
        app.metrics.seats_sold(reserve.seats);
    }
    Ok(if was_replayed {
        replayed(response)
    } else {
        response
    })
}

/// 400 `sold_out` with the seats left (for the journey, and on a train with
/// stations the legs that lack them).
pub(super) fn sold_out(train_id: &str, remaining: i64, asked: u8, journey: &Journeying) -> Reply {
    let left = remaining.max(0);
    let Some(full_legs) = &journey.full_legs else {
        return error(
            StatusCode::BAD_REQUEST,
            "sold_out",
            format!("train {train_id} has {left} seat(s) left; {asked} asked"),
            &[("remaining", remaining.into())],
        );
    };
    let (from, to) = (journey.from.as_deref(), journey.to.as_deref());
    error(
        StatusCode::BAD_REQUEST,
        "sold_out",
        format!(
            "train {train_id} has {left} seat(s) left from {} to {}; {asked} asked",
            from.unwrap_or("?"),
            to.unwrap_or("?")
        ),
        &[
            ("remaining", remaining.into()),
            ("full_legs", full_legs.clone()),
        ],
    )
}

/// 409: over the per-user limit, or (on a numbered train) `seat_taken`
/// with the seats that are not free, or `not_together`.
pub(super) fn conflict(
    app: &App,
    train_id: &str,
    used: i64,
    asked: u8,
    journey: &Journeying,
) -> Reply {
    match journey.error.as_deref() {
        Some("seat_taken") => error(
            StatusCode::CONFLICT,
            "seat_taken",
            format!(
                "on train {train_id}, seat(s) {} are not free for this journey; nothing was booked",
                journey.taken.join(", ")
            ),
            &[("seat_ids", serde_json::json!(journey.taken))],
        ),
        Some("not_together") => error(
            StatusCode::CONFLICT,
            "not_together",
            format!(
                "train {train_id} has no {asked} seats together (one coach, next to each other, \
                 in the fewest rows) free for this journey; nothing was held or booked"
            ),
            &[],
        ),
        _ => limit_reached(app, used),
    }
}

/// 422 `invalid_request`: seat fields the train cannot have (no numbered
/// seats, an unknown class or seat), in the script's words.
pub(super) fn invalid_seats(train_id: &str, journey: &Journeying) -> Reply {
    let why = journey.detail.as_deref().unwrap_or("bad seat fields");
    invalid(format!("train {train_id}: {why}"))
}

/// 422 `invalid_journey`: the script found no such journey on the train
/// (`why`: 1 an unknown station, 2 `from` not before `to`, 3 stations named
/// on a train without any).
pub(super) fn invalid_journey(train_id: &str, why: i64, journey: &Journey) -> Reply {
    let named: Vec<String> = [("from", &journey.from), ("to", &journey.to)]
        .into_iter()
        .filter_map(|(field, name)| Some(format!("{field} {:?}", name.as_ref()?)))
        .collect();
    let detail = match why {
        1 => format!(
            "train {train_id} does not call at every station named ({})",
            named.join(", ")
        ),
        2 => format!("on train {train_id}, from must come before to"),
        _ => format!("train {train_id} has no stations: send no from or to"),
    };
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_journey",
        detail,
        &[],
    )
}

pub(super) fn idempotency_mismatch() -> Reply {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_mismatch",
        "this Idempotency-Key was used with a different request",
        &[],
    )
}

/// One reservation.
#[derive(Serialize, ToSchema)]
#[schema(as = ReservationView)]
struct ReservationBody<'a> {
    reservation_id: &'a str,
    train_id: &'a str,
    user_id: Option<&'a str>,
    seats: i64,
    created_at_ms: i64,
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

/// Read one reservation (its user, or the admin, when identities are on).
#[utoipa::path(
    get,
    path = "/trains/{id}/reservations/{reservation_id}",
    tag = "reservations",
    operation_id = "get_reservation",
    params(super::shared::ReservationPath),
    security((), ("user_jwt" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The reservation.", body = ReservationBody),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_reservation`: never made, or cancelled.", body = ErrorBody),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::RateLimited),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn get(app: &App, train_id: &str, raw_id: &str, req: Request<Incoming>) -> Answer {
    let (id, caller) = target(app, raw_id, "reservation_id", req.headers(), true)?;
    let Some(r) = app.store.reservation(train_id, &id).await? else {
        return Err(unknown_reservation(train_id, &id));
    };
    if caller.is_some() && r.user_id != caller {
        return Err(super::forbidden("this reservation belongs to another user"));
    }
    Ok(json(
        StatusCode::OK,
        &ReservationBody {
            reservation_id: &id,
            train_id,
            user_id: r.user_id.as_deref(),
            seats: r.seats,
            created_at_ms: r.created_at_ms,
            from: r.from.as_deref(),
            to: r.to.as_deref(),
            seat_ids: r.seat_ids.as_deref(),
            class: r.class.as_deref(),
        },
    ))
}

/// A cancelled reservation: its seats are back on sale.
#[derive(Serialize, ToSchema)]
struct Cancelled<'a> {
    reservation_id: &'a str,
    train_id: &'a str,
    seats: i64,
    remaining: i64,
}

/// Cancel a reservation: its seats go back on sale, for good.
#[utoipa::path(
    delete,
    path = "/trains/{id}/reservations/{reservation_id}",
    tag = "reservations",
    operation_id = "cancel_reservation",
    params(super::shared::ReservationPath),
    security((), ("user_jwt" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Cancelled.", body = Cancelled),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 404, description = "`unknown_reservation` (never made, or already cancelled) or `unknown_train`.", body = ErrorBody),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::Throttled),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn cancel(
    app: &App,
    train_id: &str,
    raw_id: &str,
    req: Request<Incoming>,
) -> Answer {
    let (id, caller) = target(app, raw_id, "reservation_id", req.headers(), true)?;
    Ok(
        match app.store.cancel(train_id, &id, caller.as_deref()).await? {
            (200, remaining, seats) => json(
                StatusCode::OK,
                &Cancelled {
                    reservation_id: &id,
                    train_id,
                    seats,
                    remaining,
                },
            ),
            (403, _, _) => super::forbidden("this reservation belongs to another user"),
            (404, -1, _) => unknown_train(train_id),
            (404, _, _) => unknown_reservation(train_id, &id),
            (429, ms, _) => respond::locked(ms),
            (other, _, _) => unexpected("cancel.lua", other),
        },
    )
}

fn unknown_reservation(train_id: &str, id: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "unknown_reservation",
        format!("train {train_id} has no reservation {id} (never made, or cancelled)"),
        &[],
    )
}
