//! One train: `GET /trains/{id}` (public figures) and `PUT /trains/{id}`
//! (admin: create, or reset with `"reset": true`).

use hyper::{
    body::Incoming,
    header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE},
    Request, StatusCode,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read_body, unexpected, unknown_train, Answer, App};
use crate::{
    request::{self, Admin},
    respond::{self, error, invalid, json, ErrorBody},
};

/// A train's figures. Expired holds count as `remaining`, never as `held`.
#[derive(Serialize, ToSchema)]
struct TrainView<'a> {
    train_id: &'a str,
    capacity: i64,
    remaining: i64,
    sold: i64,
    held: i64,
    locked: bool,
    /// Milliseconds until the lock expires: 0 when unlocked, null when the
    /// lock has no expiry (an operator froze the train).
    lock_ttl_ms: Option<i64>,
}

/// A train's figures (public).
#[utoipa::path(
    get,
    path = "/trains/{id}",
    tag = "trains",
    operation_id = "get_train",
    params(super::shared::TrainPath),
    responses(
        (status = 200, description = "The train.", body = TrainView),
        (status = 404, description = "`unknown_train`: no such train.", body = ErrorBody),
        (status = 422, response = super::shared::Invalid),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn get(app: &App, id: &str) -> Answer {
    let state = app
        .store
        .train(id)
        .await?
        .ok_or_else(|| unknown_train(id))?;
    Ok(json(
        StatusCode::OK,
        &TrainView {
            train_id: id,
            capacity: state.capacity,
            remaining: state.remaining,
            sold: state.sold,
            held: state.held,
            locked: state.lock.is_some(),
            lock_ttl_ms: state.lock.unwrap_or(Some(0)),
        },
    ))
}

/// A train just created or reset.
#[derive(Serialize, ToSchema)]
struct TrainCreated<'a> {
    train_id: &'a str,
    capacity: u64,
    remaining: u64,
    sold: u64,
}

/// Create a train, or reset one with `"reset": true` (admin).
#[utoipa::path(
    put,
    path = "/trains/{id}",
    tag = "trains",
    operation_id = "put_train",
    params(super::shared::TrainPath),
    request_body = request::PutTrain,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Reset: capacity set, sales and holds cleared.", body = TrainCreated),
        (status = 201, description = "Created.", body = TrainCreated),
        (status = 401, response = super::shared::Unauthorized),
        (status = 403, response = super::shared::Forbidden),
        (status = 409, description = "`exists`: the train exists; send `\"reset\": true` to reset it.", body = ErrorBody),
        (status = 408, response = super::shared::Timeout),
        (status = 413, response = super::shared::TooLarge),
        (status = 422, response = super::shared::Invalid),
        (status = 429, response = super::shared::Locked),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn put(app: &App, id: &str, req: Request<Incoming>) -> Answer {
    let authorization = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    match request::check_admin(app.config.admin_token.as_deref(), authorization) {
        Admin::Allowed => {}
        Admin::Disabled => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "admin endpoints are disabled: set ADMIN_TOKEN to enable them",
                &[],
            ))
        }
        Admin::Denied => {
            let mut reply = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token (Authorization: Bearer <ADMIN_TOKEN>)",
                &[],
            );
            reply
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Err(reply);
        }
    }
    let body = read_body(app, req).await?;
    let put = request::parse_put_train(&body).map_err(invalid)?;
    let created = TrainCreated {
        train_id: id,
        capacity: put.capacity,
        remaining: put.capacity,
        sold: 0,
    };
    Ok(
        match app.store.put_train(id, put.capacity, put.reset).await? {
            (201, _) => json(StatusCode::CREATED, &created),
            (200, _) => json(StatusCode::OK, &created),
            (409, _) => error(
                StatusCode::CONFLICT,
                "exists",
                format!(
                "train {id} exists; send \"reset\": true to reset its capacity and clear its sales"
            ),
                &[],
            ),
            (429, ms) => respond::locked(ms),
            (other, _) => unexpected("put_train.lua", other),
        },
    )
}
