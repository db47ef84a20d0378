//! The HTTP API: the routing table, and what every handler shares.
//!
//! `handle` reads as the contract's table: each route pattern with its
//! methods and the handler that serves it. The handlers live with their
//! resource (`reservations`, `holds`, `trains`, `seats`, `map`, `operations`); each reads top
//! to bottom: validate (422 and friends, before Redis is touched), call one
//! script, map the status the script returned to the response. The scripts
//! decide; these files translate.

// Helpers return the error response itself (`Result<_, Reply>`): it is built
// once per request, on the way out, so its size does not matter.
#![allow(clippy::result_large_err)]

mod docs;
mod holds;
mod map;
mod operations;
mod reservations;
mod seats;
mod shared;
mod trains;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{
    body::{Body, Incoming},
    header::{HeaderValue, ALLOW, AUTHORIZATION, WWW_AUTHENTICATE},
    HeaderMap, Method, Request, StatusCode,
};

use crate::{
    batch::GroupCommit,
    config::Config,
    connection::Arrival,
    identity::Identity,
    metrics::{Metrics, RedisFailure},
    rate_limit::RateLimit,
    request::{self, Admin, MAX_BODY},
    respond::{self, error, invalid, Reply},
    store::{Confirming, Holding, Reserving, Store, StoreError},
};

/// What every request handler shares.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Verifies buyers' JWTs; `None` when identities are off.
    identity: Option<Identity>,
    /// Reservations, holds and confirms each go through their train's
    /// group-commit queue.
    reservations: GroupCommit<Reserving>,
    holds: GroupCommit<Holding>,
    confirms: GroupCommit<Confirming>,
    /// RATE_LIMIT_PER_CLIENT, when on: checked for each buyer request first.
    limiter: Option<RateLimit>,
    /// The seat map's per-train snapshots, shared by every open page.
    maps: map::Snapshots,
    /// Set once start-up has connected, loaded the scripts and created the
    /// default train. Until then the API answers 503.
    ready: AtomicBool,
}

impl App {
    pub fn new(config: Config, store: Store) -> App {
        let store = Arc::new(store);
        let metrics = store.metrics.clone();
        let timeout = config.request_timeout();
        App {
            identity: config.auth_jwt_secret.as_deref().map(Identity::new),
            reservations: GroupCommit::new(Reserving::new(store.clone()), timeout),
            holds: GroupCommit::new(Holding(store.clone()), timeout),
            confirms: GroupCommit::new(Confirming(store.clone()), timeout),
            limiter: (config.rate_limit_per_client > 0)
                .then(|| RateLimit::new(store.clone(), config.rate_limit_per_client, timeout)),
            maps: map::snapshots(),
            config,
            store,
            metrics,
            ready: AtomicBool::new(false),
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.metrics.set_ready(true);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// One route of the service: its pattern (as `/openapi.json` names it, and
/// as the `route` label of the metrics) and the methods it answers, as its
/// `Allow` header lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub pattern: &'static str,
    pub allow: &'static str,
}

/// Every route the service answers, in `Route::index` order. The router's
/// `Allow` headers and the metrics' `route` labels come from here, and the
/// tests check it against `/openapi.json` both ways, so the three cannot
/// drift apart.
#[rustfmt::skip]
pub const ROUTES: [RouteSpec; 17] = [
    RouteSpec { pattern: "/reserve", allow: "POST" },
    RouteSpec { pattern: "/trains/{id}", allow: "GET, HEAD, PUT" },
    RouteSpec { pattern: "/trains/{id}/holds", allow: "POST" },
    RouteSpec { pattern: "/trains/{id}/holds/{hold_id}", allow: "GET, HEAD, DELETE" },
    RouteSpec { pattern: "/trains/{id}/holds/{hold_id}/confirm", allow: "POST" },
    RouteSpec { pattern: "/trains/{id}/reservations/{reservation_id}", allow: "GET, HEAD, DELETE" },
    RouteSpec { pattern: "/healthz", allow: "GET, HEAD" },
    RouteSpec { pattern: "/readyz", allow: "GET, HEAD" },
    RouteSpec { pattern: "/metrics", allow: "GET, HEAD" },
    RouteSpec { pattern: "/openapi.json", allow: "GET, HEAD" },
    RouteSpec { pattern: "/docs", allow: "GET, HEAD" },
    RouteSpec { pattern: "/docs/", allow: "GET, HEAD" },
    RouteSpec { pattern: "/docs/{file}", allow: "GET, HEAD" },
    RouteSpec { pattern: "/trains/{id}/seats", allow: "GET, HEAD" },
    RouteSpec { pattern: "/trains/{id}/map", allow: "GET, HEAD" },
    RouteSpec { pattern: "/trains/{id}/map.json", allow: "GET, HEAD" },
    RouteSpec { pattern: "/map/{file}", allow: "GET, HEAD" },
];

/// (method, route index, status) of every answer `/openapi.json` documents:
/// the `http_requests_total` series registered (at 0) at start-up.
pub fn documented_answers() -> Vec<(Method, usize, u16)> {
    let document = docs::document();
    let mut answers = Vec::new();
    for (index, route) in ROUTES.iter().enumerate() {
        let Some(item) = document.paths.paths.get(route.pattern) else {
            continue;
        };
        let operations = [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            for status in operation.responses.responses.keys() {
                if let Ok(status) = status.parse() {
                    answers.push((method.clone(), index, status));
                }
            }
        }
    }
    answers
}

/// The routes of the contract; ids are taken from the path as sent.
enum Route {
    Reserve,
    Train(String),
    Holds(String),
    Hold(String, String),
    Confirm(String, String),
    Reservation(String, String),
    /// `/trains/{id}/seats`: a numbered train's seat map.
    Seats(String),
    /// `/trains/{id}/map`: the live seat map page.
    Map(String),
    /// `/trains/{id}/map.json`: the snapshot the page polls.
    MapState(String),
    /// One of the page's files, under `/map/`.
    MapFile(String),
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    /// `/docs`: redirects to `/docs/`, where Swagger UI's relative links work.
    DocsRedirect,
    /// `/docs/`: Swagger UI's page.
    DocsPage,
    /// One of Swagger UI's files, under `/docs/`.
    DocsFile(String),
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let owned = |s: &&str| (*s).to_owned();
        Some(match segments.as_slice() {
            ["reserve"] => Route::Reserve,
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["openapi.json"] => Route::OpenApi,
            ["docs"] => Route::DocsRedirect,
            ["docs", ""] => Route::DocsPage,
            ["docs", file] => Route::DocsFile(owned(file)),
            ["trains", id] if !id.is_empty() => Route::Train(owned(id)),
            ["trains", id, "holds"] => Route::Holds(owned(id)),
            ["trains", id, "seats"] => Route::Seats(owned(id)),
            ["trains", id, "map"] => Route::Map(owned(id)),
            ["trains", id, "map.json"] => Route::MapState(owned(id)),
            ["map", file] => Route::MapFile(owned(file)),
            ["trains", id, "holds", hold] if !hold.is_empty() => {
                Route::Hold(owned(id), owned(hold))
            }
            ["trains", id, "holds", hold, "confirm"] => Route::Confirm(owned(id), owned(hold)),
            ["trains", id, "reservations", r] if !r.is_empty() => {
                Route::Reservation(owned(id), owned(r))
            }
            _ => return None,
        })
    }

    /// Where the route is in `ROUTES`.
    fn index(&self) -> usize {
        match self {
            Route::Reserve => 0,
            Route::Train(_) => 1,
            Route::Holds(_) => 2,
            Route::Hold(..) => 3,
            Route::Confirm(..) => 4,
            Route::Reservation(..) => 5,
            Route::Healthz => 6,
            Route::Readyz => 7,
            Route::Metrics => 8,
            Route::OpenApi => 9,
            Route::DocsRedirect => 10,
            Route::DocsPage => 11,
            Route::DocsFile(_) => 12,
            Route::Seats(_) => 13,
            Route::Map(_) => 14,
            Route::MapState(_) => 15,
            Route::MapFile(_) => 16,
        }
    }

    /// The `Allow` header of the route.
    fn allow(&self) -> &'static str {
        ROUTES[self.index()].allow
    }

    /// The train id in the path, if the route has one.
    fn train(&self) -> Option<&str> {
        match self {
            Route::Train(t) | Route::Holds(t) | Route::Seats(t) => Some(t),
            Route::Map(t) | Route::MapState(t) => Some(t),
            Route::Hold(t, _) | Route::Confirm(t, _) | Route::Reservation(t, _) => Some(t),
            _ => None,
        }
    }

    /// Whether the route needs Redis (and so answers 503 until it is ready).
    fn uses_redis(&self) -> bool {
        self.train().is_some() || matches!(self, Route::Reserve)
    }

    /// Whether the route serves buyers (and so counts against their rate
    /// limit): reservations and holds, not the train or operations routes,
    /// nor the seat map (read-only, and its polls share one cached
    /// snapshot: they cost Redis nothing per request).
    fn serves_buyers(&self) -> bool {
        self.uses_redis() && !matches!(self, Route::Train(_) | Route::Map(_) | Route::MapState(_))
    }
}

/// Routes one request and counts its answer: every answer goes through
/// here, so the HTTP metrics are recorded in this one place.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let method = req.method().clone();
    let route = Route::parse(req.uri().path());
    let index = route.as_ref().map_or(ROUTES.len(), Route::index);
    let reply = match route {
        Some(route) => dispatch(&app, route, req).await,
        None => {
            let detail = format!("no endpoint at {}", req.uri().path());
            error(StatusCode::NOT_FOUND, "not_found", detail, &[])
        }
    };
    let failure = reply.extensions().get::<RedisFailure>().copied();
    app.metrics
        .answered(&method, index, reply.status(), started.elapsed(), failure);
    reply
}

async fn dispatch(app: &App, route: Route, req: Request<Incoming>) -> Reply {
    use Method as M;
    let method = req.method().clone();
    let allowed = route.allow().split(", ").any(|m| m == method.as_str());
    if !allowed {
        return method_not_allowed(route.allow());
    }
    if route.train().is_some_and(|id| !request::valid_train_id(id)) {
        return invalid(request::bad_train_id());
    }
    if route.uses_redis() && !app.is_ready() {
        return respond::unavailable("the service is starting: Redis is not connected yet");
    }
    if route.serves_buyers() {
        if let Err(refusal) = rate_limit(app, &req).await {
            return refusal;
        }
    }
    // Handlers answer `Err(reply)` for every refusal, so they can use `?`.
    let answer = match (route, method) {
        (Route::Reserve, M::POST) => reservations::reserve(app, req).await,
        (Route::Reservation(t, r), M::GET | M::HEAD) => reservations::get(app, &t, &r, req).await,
        (Route::Reservation(t, r), M::DELETE) => reservations::cancel(app, &t, &r, req).await,
        (Route::Holds(t), M::POST) => holds::create(app, &t, req).await,
        (Route::Hold(t, h), M::GET | M::HEAD) => holds::get(app, &t, &h, req).await,
        (Route::Hold(t, h), M::DELETE) => holds::release(app, &t, &h, req).await,
        (Route::Confirm(t, h), M::POST) => holds::confirm(app, &t, &h, req).await,
        (Route::Train(t), M::GET | M::HEAD) => trains::get(app, &t, req.uri().query()).await,
        (Route::Train(t), M::PUT) => trains::put(app, &t, req).await,
        (Route::Seats(t), M::GET | M::HEAD) => seats::get(app, &t, req.uri().query()).await,
        (Route::Map(t), M::GET | M::HEAD) => map::page(app, &t, req.uri().query()).await,
        (Route::MapState(t), M::GET | M::HEAD) => map::state(app, &t, req.uri().query()).await,
        (Route::MapFile(file), _) => Ok(map::file(&file)),
        (Route::Healthz, _) => Ok(operations::healthz()),
        (Route::Readyz, _) => Ok(operations::readyz(app).await),
        (Route::Metrics, _) => Ok(operations::metrics(app)),
        (Route::OpenApi, _) => Ok(docs::openapi_json()),
        (Route::DocsRedirect, _) => Ok(docs::redirect()),
        (Route::DocsPage, _) => Ok(docs::page()),
        (Route::DocsFile(file), _) => Ok(docs::file(&file)),
        (route, _) => Err(method_not_allowed(route.allow())),
    };
    answer.unwrap_or_else(|refusal| refusal)
}

/// What a handler answers: the response, or the refusal that replaces it.
type Answer = Result<Reply, Reply>;

/// The id in a path and who may act on it: `(id, None)` for anyone who
/// knows the id, `(id, Some(user))` for that user only (see `owner_check`).
fn target(
    app: &App,
    raw_id: &str,
    what: &str,
    headers: &HeaderMap,
    admin_may: bool,
) -> Result<(String, Option<String>), Reply> {
    let id = request::parse_id(raw_id, what).map_err(invalid)?;
    Ok((id, owner_check(app, headers, admin_may)?))
}

/// RATE_LIMIT_PER_CLIENT: 429 `rate_limited` when this request's client
/// has used its allowance, decided before any script that could change a
/// train (see `rate_limit`). Nothing to do when it is off.
async fn rate_limit(app: &App, req: &Request<Incoming>) -> Result<(), Reply> {
    let Some(limiter) = &app.limiter else {
        return Ok(());
    };
    limiter
        .check(&client_of(app, req))
        .await?
        .map_err(respond::rate_limited)
}

/// Whom a request counts against: the JWT's `sub` when identities are on
/// and the token is good; else the peer's address, or with
/// TRUST_FORWARDED_FOR the last address in X-Forwarded-For (the one the
/// trusted proxy added; the ones before it are the client's to write).
fn client_of(app: &App, req: &Request<Incoming>) -> String {
    if let Some(identity) = &app.identity {
        let authorization = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Ok(sub) = identity.user(authorization) {
            return format!("sub:{sub}");
        }
    }
    let forwarded = app
        .config
        .trust_forwarded_for
        .then(|| last_forwarded(req.headers()))
        .flatten();
    let peer = req
        .extensions()
        .get::<Arrival>()
        .map(|arrival| arrival.peer);
    match forwarded.or(peer) {
        Some(address) => format!("ip:{address}"),
        None => "ip:unknown".to_owned(),
    }
}

/// The last address of the last `X-Forwarded-For` header, if it is one.
fn last_forwarded(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let address = last.to_str().ok()?.rsplit(',').next()?.trim();
    address.parse().ok()
}

/// Who a buyer is. With identities off anyone is anonymous (`None`), with
/// them on the verified JWT `sub`; a missing or bad token is the 401 reply.
fn buyer(app: &App, headers: &HeaderMap) -> Result<Option<String>, Reply> {
    let Some(identity) = &app.identity else {
        return Ok(None);
    };
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    identity.user(authorization).map(Some).map_err(|why| {
        let mut reply = error(StatusCode::UNAUTHORIZED, "unauthorized", why, &[]);
        reply
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        reply
    })
}

/// Whom a request is for: the buyer's verified identity, or the body's
/// `user_id` with identities off. A body naming someone else than the token
/// is 403; with a per-user limit, someone must be named (422).
fn user_for(
    app: &App,
    verified: Option<String>,
    named: Option<String>,
) -> Result<Option<String>, Reply> {
    let user = match (verified, named) {
        (Some(sub), Some(named)) if sub != named => {
            return Err(forbidden("user_id differs from the bearer token's sub"))
        }
        (Some(sub), _) => Some(sub),
        (None, named) => named,
    };
    if user.is_none() && app.config.max_seats_per_user > 0 {
        return Err(invalid(
            "a per-user limit is on: name the user (user_id, or a bearer token's sub)",
        ));
    }
    Ok(user)
}

/// Who may read or change an existing hold or reservation: `Ok(None)` for
/// anyone who knows its id (identities off, or the admin token), `Ok(Some)`
/// for that user only.
fn owner_check(app: &App, headers: &HeaderMap, admin_may: bool) -> Result<Option<String>, Reply> {
    if app.identity.is_none() {
        return Ok(None);
    }
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if admin_may
        && request::check_admin(app.config.admin_token.as_deref(), authorization) == Admin::Allowed
    {
        return Ok(None);
    }
    buyer(app, headers)
}

/// An `Idempotency-Key` header, validated (422 when malformed).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Reply> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = request::parse_idempotency_key(raw.as_bytes()).map_err(invalid)?;
    Ok(Some(key.to_owned()))
}

/// Reads the body, refusing more than `MAX_BODY` bytes: first by the declared
/// length (nothing read), then while reading (`Limited`, which does not look at
/// Content-Length). A body still incomplete at the request's read deadline
/// (see `connection`) is 408, and the connection closes.
async fn read_body(app: &App, req: Request<Incoming>) -> Result<Bytes, Reply> {
    let deadline = req.extensions().get::<Arrival>().map_or_else(
        || tokio::time::Instant::now() + app.config.request_read_timeout(),
        |arrival| arrival.deadline,
    );
    let body = req.into_body();
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    let read = tokio::time::timeout_at(deadline, Limited::new(body, MAX_BODY).collect());
    match read.await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(invalid(format!("could not read the request body: {e}"))),
        Err(_) => Err(respond::request_timeout(app.config.request_read_timeout_ms)),
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

fn forbidden(detail: &str) -> Reply {
    error(StatusCode::FORBIDDEN, "forbidden", detail, &[])
}

/// 409 `limit_reached`: the user already has `used` seats of the limit.
fn limit_reached(app: &App, used: i64) -> Reply {
    let limit = app.config.max_seats_per_user;
    error(
        StatusCode::CONFLICT,
        "limit_reached",
        format!("a user may have {limit} seat(s) on this train, reserved plus held; this one has {used}"),
        &[("limit", limit.into()), ("used", used.into())],
    )
}

fn replayed(mut reply: Reply) -> Reply {
    reply
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    reply
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

/// A script status the handler does not know: a bug between Lua and Rust.
fn unexpected(script: &str, status: u16) -> Reply {
    tracing::error!(status, "{script} returned an unknown status");
    respond::internal(format!("unexpected script status {status}"))
}

/// A Redis call that gave no usable answer: 503 (outcome unknown, retry with
/// the same Idempotency-Key) or 500 (a broken key or script; logged). The
/// reply carries why, for `handle` to count as redis_errors_total{kind}.
impl From<StoreError> for Reply {
    fn from(e: StoreError) -> Reply {
        let (mut reply, failure) = match e {
            e @ (StoreError::Unavailable(_) | StoreError::Fenced) => {
                tracing::warn!("answering 503: {e}");
                let reply = respond::unavailable(
                    "Redis is unreachable or too slow; the outcome is unknown. \
                 Retrying with the same Idempotency-Key is safe",
                );
                (reply, RedisFailure::Unavailable)
            }
            StoreError::Failed(why) => {
                tracing::error!("answering 500: {why}");
                (respond::internal(why), RedisFailure::Failed)
            }
        };
        reply.extensions_mut().insert(failure);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pattern of `ROUTES`, with sample values in its `{...}`, is
    /// parsed back to the route at its own index: the table and the parser
    /// agree.
    #[test]
    fn the_table_and_the_parser_agree() {
        for (index, spec) in ROUTES.iter().enumerate() {
            let path = spec
                .pattern
                .replace("{id}", "t-1")
                .replace("{hold_id}", "0b6f2a0e-5a4b-4c1e-9d8a-2f1e3c4b5a69")
                .replace("{reservation_id}", "0b6f2a0e-5a4b-4c1e-9d8a-2f1e3c4b5a69")
                .replace("{file}", "index.css");
            let route = Route::parse(&path).unwrap_or_else(|| panic!("{path} is not routed"));
            assert_eq!(route.index(), index, "{path}");
        }
        assert!(Route::parse("/nope").is_none());
    }

    /// Every documented answer has its `http_requests_total` series from
    /// start-up, at 0 (a status missing from the metrics' table would only
    /// appear once answered: 408 did).
    #[test]
    fn every_documented_answer_is_counted_from_start_up() {
        let answers = documented_answers();
        let metrics = Metrics::new(
            true,
            &ROUTES.map(|route| route.pattern),
            &crate::store::scripts::NAMES,
            answers.clone(),
        );
        let text = metrics.render();
        for (method, route, status) in answers {
            let series = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"}} 0",
                ROUTES[route].pattern
            );
            assert!(
                text.contains(&series),
                "{series} is not exposed at start-up"
            );
        }
    }

    /// Every route answers at least one documented method, and the metrics
    /// register a series for each documented answer.
    #[test]
    fn every_route_has_documented_answers() {
        let answers = documented_answers();
        for (index, spec) in ROUTES.iter().enumerate() {
            assert!(
                answers.iter().any(|(_, route, _)| *route == index),
                "{} has no documented answer",
                spec.pattern
            );
        }
    }
}
