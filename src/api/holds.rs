//! Holds: seats kept while a buyer pays. `POST /trains/{id}/holds`, `GET`
//! and `DELETE` (release) `/trains/{id}/holds/{hold_id}`, and `POST
//! .../confirm`, which turns the hold into a reservation under the same id.

use hyper::{body::Incoming, Request, StatusCode};
use serde::Serialize;
use uuid::Uuid;

use super::{
    buyer, idempotency_key, limit_reached, read_body, replayed,
    reservations::{idempotency_mismatch, sold_out, Reserved},
    target, unexpected, unknown_train, user_for, Answer, App,
};
use crate::{
    request,
    respond::{self, error, invalid, json, Reply},
    store::{Confirm, HoldRequest},
};

#[derive(Serialize)]
struct Held<'a> {
    hold_id: &'a str,
    train_id: &'a str,
    seats: u8,
    expires_at_ms: i64,
    remaining: i64,
}

pub(super) async fn create(app: &App, train_id: &str, req: Request<Incoming>) -> Answer {
    let verified = buyer(app, req.headers())?;
    let idempotency_key = idempotency_key(req.headers())?;
    let body = read_body(req).await?;
    let mut hold = request::parse_hold(&body, app.config.hold_ttl_ms).map_err(invalid)?;
    hold.user_id = user_for(app, verified, hold.user_id.take())?;
    let member = HoldRequest {
        hold_id: Uuid::new_v4().to_string(),
        seats: hold.seats,
        user_id: hold.user_id.clone(),
        ttl_ms: hold.ttl_ms,
        idempotency: idempotency_key.map(|key| (key, hold.fingerprint(train_id))),
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
            },
        ),
        400 => sold_out(train_id, reply.n, hold.seats),
        409 => limit_reached(app, reply.n),
        410 => hold_expired(&reply.hold_id),
        429 => respond::locked(reply.n),
        404 => unknown_train(train_id),
        422 => idempotency_mismatch(),
        other => unexpected("hold.lua", other),
    };
    Ok(if reply.replayed {
        replayed(response)
    } else {
        response
    })
}

#[derive(Serialize)]
struct HoldBody<'a> {
    hold_id: &'a str,
    train_id: &'a str,
    user_id: Option<&'a str>,
    seats: i64,
    expires_at_ms: i64,
}

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
            },
        )),
        (410, _) => Err(hold_expired(&id)),
        (404, _) => Err(unknown_hold(train_id, &id)),
        (other, _) => Err(unexpected("get_hold.lua", other)),
    }
}

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
            let body = json(
                StatusCode::OK,
                &Reserved {
                    reservation_id: &id,
                    train_id,
                    seats: reply.seats,
                    remaining: reply.n,
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

#[derive(Serialize)]
struct Released<'a> {
    hold_id: &'a str,
    train_id: &'a str,
    seats: i64,
    remaining: i64,
}

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
