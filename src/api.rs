//! The HTTP API: routing, then one handler per endpoint.
//!
//! A handler reads top to bottom as the contract's table: validate (422 and
//! friends, before Redis is touched), call one script, map the status the
//! script returned to the response. The scripts decide; this file translates.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{
    body::{Body, Incoming},
    header::{HeaderValue, ALLOW, AUTHORIZATION, WWW_AUTHENTICATE},
    Method, Request, StatusCode,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    batch::GroupCommit,
    config::Config,
    request::{self, Admin, MAX_BODY},
    respond::{self, error, invalid, json, Reply},
    store::{Reservation, ReserveReply, Store, StoreError},
};

/// What every request handler shares.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    /// Reservations go through their train's group-commit queue.
    reservations: GroupCommit,
    /// Set once start-up has connected, loaded the scripts and created the
    /// default train. Until then the API answers 503.
    ready: AtomicBool,
}

impl App {
    pub fn new(config: Config, store: Store) -> App {
        let store = Arc::new(store);
        App {
            reservations: GroupCommit::new(store.clone(), config.request_timeout()),
            config,
            store,
            ready: AtomicBool::new(false),
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Routes one request. Never fails: every outcome is a response.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    let method = req.method().clone();
    if path == "/reserve" {
        return match method {
            Method::POST if !app.is_ready() => starting(),
            Method::POST => reserve(&app, req).await,
            _ => method_not_allowed("POST"),
        };
    }
    if let Some(id) = path
        .strip_prefix("/trains/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
    {
        if !request::valid_train_id(id) {
            return invalid(request::bad_train_id());
        }
        let id = id.to_owned();
        return match method {
            Method::GET | Method::HEAD if !app.is_ready() => starting(),
            Method::GET | Method::HEAD => get_train(&app, &id).await,
            Method::PUT => put_train(&app, &id, req).await,
            _ => method_not_allowed("GET, HEAD, PUT"),
        };
    }
    match (path, method) {
        ("/healthz", Method::GET | Method::HEAD) => json(StatusCode::OK, &Health { status: "ok" }),
        ("/readyz", Method::GET | Method::HEAD) => readyz(&app).await,
        ("/healthz" | "/readyz", _) => method_not_allowed("GET, HEAD"),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint at {path}"),
            &[],
        ),
    }
}

/// 503 until start-up is done (Redis connected, scripts loaded).
fn starting() -> Reply {
    respond::unavailable("the service is starting: Redis is not connected yet")
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

#[derive(Serialize)]
struct Reserved<'a> {
    reservation_id: &'a str,
    train_id: &'a str,
    seats: u8,
    remaining: i64,
}

async fn reserve(app: &App, req: Request<Incoming>) -> Reply {
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(raw) => match request::parse_idempotency_key(raw.as_bytes()) {
            Ok(key) => Some(key.to_owned()),
            Err(detail) => return invalid(detail),
        },
    };
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let mut reserve = match request::parse_reserve(&body, &app.config.default_train) {
        Ok(reserve) => reserve,
        Err(detail) => return invalid(detail),
    };
    let idempotency = idempotency_key.map(|key| (key, reserve.fingerprint()));
    let reservation = Reservation {
        reservation_id: Uuid::new_v4().to_string(),
        seats: reserve.seats,
        user_id: reserve.user_id.take(),
        idempotency,
    };
    let reply = match app
        .reservations
        .reserve(&reserve.train_id, reservation)
        .await
    {
        Ok(reply) => reply,
        Err(e) => return store_error(e),
    };
    let ReserveReply {
        status,
        reservation_id,
        n,
        replayed,
    } = reply;
    let mut response = match status {
        200 => json(
            StatusCode::OK,
            &Reserved {
                reservation_id: &reservation_id,
                train_id: &reserve.train_id,
                seats: reserve.seats,
                remaining: n,
            },
        ),
        400 => error(
            StatusCode::BAD_REQUEST,
            "sold_out",
            format!(
                "train {} has {} seat(s) left; {} asked",
                reserve.train_id,
                n.max(0),
                reserve.seats
            ),
            &[("remaining", n.into())],
        ),
        429 => respond::locked(n),
        404 => unknown_train(&reserve.train_id),
        422 => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_mismatch",
            "this Idempotency-Key was used with a different request",
            &[],
        ),
        other => {
            tracing::error!(status = other, "reserve.lua returned an unknown status");
            respond::internal(format!("unexpected script status {other}"))
        }
    };
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

#[derive(Serialize)]
struct TrainView<'a> {
    train_id: &'a str,
    capacity: i64,
    remaining: i64,
    sold: i64,
    locked: bool,
    /// Milliseconds until the lock expires: 0 when unlocked, null when the
    /// lock has no expiry (an operator froze the train).
    lock_ttl_ms: Option<i64>,
}

async fn get_train(app: &App, id: &str) -> Reply {
    match app.store.train(id).await {
        Ok(Some(state)) => json(
            StatusCode::OK,
            &TrainView {
                train_id: id,
                capacity: state.capacity,
                remaining: state.remaining,
                sold: state.sold,
                locked: state.lock.is_some(),
                lock_ttl_ms: state.lock.unwrap_or(Some(0)),
            },
        ),
        Ok(None) => unknown_train(id),
        Err(e) => store_error(e),
    }
}

#[derive(Serialize)]
struct TrainCreated<'a> {
    train_id: &'a str,
    capacity: u64,
    remaining: u64,
    sold: u64,
}

async fn put_train(app: &App, id: &str, req: Request<Incoming>) -> Reply {
    let authorization = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    match request::check_admin(app.config.admin_token.as_deref(), authorization) {
        Admin::Allowed => {}
        Admin::Disabled => {
            return error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "admin endpoints are disabled: set ADMIN_TOKEN to enable them",
                &[],
            )
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
            return reply;
        }
    }
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let put = match request::parse_put_train(&body) {
        Ok(put) => put,
        Err(detail) => return invalid(detail),
    };
    if !app.is_ready() {
        return starting();
    }
    let created = TrainCreated {
        train_id: id,
        capacity: put.capacity,
        remaining: put.capacity,
        sold: 0,
    };
    match app.store.put_train(id, put.capacity, put.reset).await {
        Ok((201, _)) => json(StatusCode::CREATED, &created),
        Ok((200, _)) => json(StatusCode::OK, &created),
        Ok((409, _)) => error(
            StatusCode::CONFLICT,
            "exists",
            format!(
                "train {id} exists; send \"reset\": true to reset its capacity and clear its sales"
            ),
            &[],
        ),
        Ok((429, ms)) => respond::locked(ms),
        Ok((other, _)) => {
            tracing::error!(status = other, "put_train.lua returned an unknown status");
            respond::internal(format!("unexpected script status {other}"))
        }
        Err(e) => store_error(e),
    }
}

/// Ready while Redis answers and the scripts run (a script call, not a PING:
/// the script cache is lost on a Redis restart, and this reloads it).
async fn readyz(app: &App) -> Reply {
    if !app.is_ready() {
        return respond::unavailable("starting: Redis not connected or scripts not loaded");
    }
    match app.store.train(&app.config.default_train).await {
        Ok(_) => json(StatusCode::OK, &Health { status: "ready" }),
        Err(e) => respond::unavailable(e.to_string()),
    }
}

/// Reads the body, refusing more than `MAX_BODY` bytes: first by the declared
/// length (nothing read), then while reading (`Limited`, which does not look at
/// Content-Length).
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Reply> {
    let body = req.into_body();
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(invalid(format!("could not read the request body: {e}"))),
    }
}

fn too_large() -> Reply {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request bodies are limited to {MAX_BODY} bytes"),
        &[],
    )
}

fn unknown_train(id: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "unknown_train",
        format!("no train {id}"),
        &[],
    )
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut reply = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("allowed methods: {allow}"),
        &[],
    );
    reply
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    reply
}

fn store_error(e: StoreError) -> Reply {
    match e {
        StoreError::Unavailable(why) => {
            tracing::warn!("answering 503: {why}");
            respond::unavailable(
                "Redis is unreachable or too slow; the outcome is unknown. \
                 Retrying with the same Idempotency-Key is safe",
            )
        }
        StoreError::Failed(why) => {
            tracing::error!("answering 500: {why}");
            respond::internal(why)
        }
    }
}
