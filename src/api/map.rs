//! The live seat map: `GET /trains/{id}/map` (an HTML page that draws the
//! train's coaches seat by seat, follows sales live and lets a buyer pick,
//! hold, confirm or release seats), `GET /trains/{id}/map.json` (the
//! snapshot that page polls) and `GET /map/{file}` (the page's script,
//! style and icon). Every file is compiled in from `assets/map/`: the page
//! needs nothing but this service (no CDN, no framework).
//!
//! What polling costs Redis: `map.json` is served from a per-train snapshot
//! (`coalesce`) that one `train.lua` call refreshes at most every
//! `MAX_AGE`, however many pages poll; the callers of that window share
//! the call. An open page polls every 500 ms (`POLL_MS` in index.js), so
//! one page costs about two calls a second and a hundred pages on one
//! train at most four. The snapshot holds the whole train (per seat, the
//! legs sold and the legs held), so the page works out any journey and
//! class itself without asking again. `GET /trains/{id}` and
//! `GET /trains/{id}/seats` do not go through it: they stay exact.
//!
//! The map reads no buyer and changes nothing, so it is public and does
//! not count against `RATE_LIMIT_PER_CLIENT`; what a buyer does on the page
//! goes through the holds API like any other client.

use std::{sync::Arc, sync::LazyLock, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE},
    Response, StatusCode,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{trains::JourneyQuery, unknown_train, Answer, App};
use crate::{
    coalesce::Coalesce,
    respond::{error, invalid, ErrorBody, Reply},
    store::StoreError,
};

/// How long a train's snapshot is served before `train.lua` is called
/// again: at most four calls a second per train, and a change shows on
/// every page within this plus one poll.
pub(super) const MAX_AGE: Duration = Duration::from_millis(250);

/// The trains' snapshots, shared by every open page.
pub(super) type Snapshots = Coalesce<Cached>;

/// One train as the cache keeps it: `None` when it does not exist; the
/// failure of the call, shared by the callers of one `MAX_AGE` too.
pub(super) type Cached = Result<Option<Arc<Loaded>>, StoreError>;

pub(super) fn snapshots() -> Snapshots {
    Coalesce::new(MAX_AGE)
}

/// A snapshot: `map.json`'s body, serialized once for every page, and what
/// the page's own route checks its query against.
pub(super) struct Loaded {
    json: Bytes,
    stations: Option<Vec<String>>,
}

/// `map.json`: the whole train, for every journey and class at once.
#[derive(Serialize, ToSchema)]
struct MapState {
    train_id: String,
    /// Redis's clock when the snapshot was read, in ms since the epoch (a
    /// page compares it with its own clock for the hold countdown).
    at_ms: i64,
    /// The train's figures, as `GET /trains/{id}` gives them for the whole
    /// route.
    capacity: i64,
    remaining: i64,
    sold: i64,
    held: i64,
    locked: bool,
    /// Its stations in order, or null on a train without stations.
    stations: Option<Vec<String>>,
    /// Every leg with its figures, in order; a train without stations has
    /// one leg, with `from` and `to` null.
    legs: Vec<MapLeg>,
    /// On a numbered train, its coaches with each seat's legs; else null.
    coaches: Option<Vec<MapCoach>>,
}

/// One leg: the stretch from station k to station k + 1.
#[derive(Serialize, ToSchema)]
struct MapLeg {
    from: Option<String>,
    to: Option<String>,
    remaining: i64,
    sold: i64,
    held: i64,
}

/// One coach and its seats, in row then letter order (seat i is row
/// `i / seats per row + 1`, letter `i % seats per row` of the layout's
/// letters). Legs are bits: bit k set means leg k. A seat is sold for a
/// journey when a bit of the journey's legs is set in `sold`, else held
/// when one is set in `held`, else free.
#[derive(Serialize, ToSchema)]
struct MapCoach {
    coach: String,
    class: String,
    rows: u64,
    /// A row's seat letters from window to window, `_` for the aisle.
    layout: String,
    /// Per seat, the legs live reservations have, in hexadecimal (`0`: none).
    #[schema(example = json!(["0", "3", "0"]))]
    sold: Vec<String>,
    /// Per seat, the legs live holds have, in hexadecimal.
    #[schema(example = json!(["0", "0", "4"]))]
    held: Vec<String>,
}

/// The snapshot of a train: the cache's, or a fresh `train.lua` call when
/// that one is older than `MAX_AGE` (one call for all who ask meanwhile).
async fn snapshot(app: &App, id: &str) -> Result<Arc<Loaded>, Reply> {
    match app.maps.get(id, || load(app, id)).await {
        Ok(Some(train)) => Ok(train),
        Ok(None) => Err(unknown_train(id)),
        Err(e) => Err(e.into()),
    }
}

/// One `train.lua` call, made into `map.json`'s body.
async fn load(app: &App, id: &str) -> Cached {
    let Some(state) = app.store.train(id).await? else {
        return Ok(None);
    };
    let stations = state.stations.clone();
    let legs: Vec<MapLeg> = match &stations {
        Some(names) => names
            .windows(2)
            .zip(&state.legs)
            .map(|(pair, leg)| MapLeg {
                from: Some(pair[0].clone()),
                to: Some(pair[1].clone()),
                remaining: leg.remaining,
                sold: leg.sold,
                held: leg.held,
            })
            .collect(),
        None => vec![MapLeg {
            from: None,
            to: None,
            remaining: state.remaining,
            sold: state.sold,
            held: state.held,
        }],
    };
    let coaches = state.seats.as_ref().map(|occupancy| {
        let n = stations
            .as_ref()
            .map_or(1, |s| s.len().saturating_sub(1).max(1));
        let mut taken = occupancy.taken_legs(n as u32);
        occupancy
            .coaches
            .iter()
            .map(|coach| {
                let seats = coach.rows as usize * coach.letters().count();
                let (mut sold, mut held) = (Vec::with_capacity(seats), Vec::with_capacity(seats));
                for (s, h) in taken.by_ref().take(seats) {
                    sold.push(format!("{s:x}"));
                    held.push(format!("{h:x}"));
                }
                MapCoach {
                    coach: coach.coach.clone(),
                    class: coach.class.clone(),
                    rows: coach.rows,
                    layout: coach.layout.clone(),
                    sold,
                    held,
                }
            })
            .collect()
    });
    let body = MapState {
        train_id: id.to_owned(),
        at_ms: state.at_ms,
        capacity: state.capacity,
        remaining: state.remaining,
        sold: state.sold,
        held: state.held,
        locked: state.lock.is_some(),
        stations: stations.clone(),
        legs,
        coaches,
    };
    // Our own plain structs always serialize; `{}` would still be JSON.
    let json = Bytes::from(serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec()));
    Ok(Some(Arc::new(Loaded { json, stations })))
}

/// `?class=` of the page: which coaches to show first.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ClassQuery {
    /// Show only the coaches of this class (the page's class filter). A
    /// well-formed class the train does not have shows every coach, with a
    /// note: the filter is the page's, not a question to the train.
    #[param(
        min_length = 1,
        max_length = 32,
        pattern = "^[a-z0-9_-]{1,32}$",
        example = "second"
    )]
    class: Option<String>,
}

/// A train's live seat map (public): an HTML page.
#[utoipa::path(
    get,
    path = "/trains/{id}/map",
    tag = "trains",
    operation_id = "seat_map_page",
    params(super::shared::TrainPath, JourneyQuery, ClassQuery),
    responses(
        (status = 200, description = "The page. It draws each coach seat by seat, coloured free, \
            held or sold for the journey and class picked on it, follows the train live by \
            polling `map.json`, and holds, confirms or releases seats through the holds API. \
            A train without coaches is drawn as its legs' figures. Every file it loads comes \
            from this service.", body = String, content_type = "text/html"),
        (status = 404, description = "`unknown_train`: no such train.", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a bad train id, an unknown query \
            parameter or a malformed class; or `invalid_journey`: `from` or `to` is not a \
            station of the train, `from` is not before `to`, or the train has no stations.",
            body = ErrorBody),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn page(app: &App, id: &str, query: Option<&str>) -> Answer {
    let (journey, class) = JourneyQuery::parse_with(query, Some("class")).map_err(invalid)?;
    crate::seats::check_class(class.as_deref()).map_err(invalid)?;
    let train = snapshot(app, id).await?;
    journey.legs(id, train.stations.as_deref())?;
    let html = if app.identity.is_some() {
        PAGE_WITH_IDENTITIES.clone()
    } else {
        Bytes::from_static(PAGE.as_bytes())
    };
    let mut reply = asset(html, "text/html; charset=utf-8");
    // The page may load and call nothing but this service.
    reply.headers_mut().insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    reply.headers_mut().insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    Ok(reply)
}

/// What the seat map page polls: the whole train (public).
#[utoipa::path(
    get,
    path = "/trains/{id}/map.json",
    tag = "trains",
    operation_id = "seat_map_state",
    params(super::shared::TrainPath),
    responses(
        (status = 200, description = "The train's snapshot, at most 250 ms old: read by one \
            `train.lua` call shared by every caller of those 250 ms (for exact figures right \
            after a change, read `GET /trains/{id}` or `GET /trains/{id}/seats`).",
            body = MapState),
        (status = 404, description = "`unknown_train`: no such train.", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a bad train id, or a query (this \
            takes none: the page works out journeys and classes itself).", body = ErrorBody),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn state(app: &App, id: &str, query: Option<&str>) -> Answer {
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(invalid(
            "map.json takes no query: it holds every journey and class of the train",
        ));
    }
    let train = snapshot(app, id).await?;
    let mut reply = asset(train.json.clone(), "application/json");
    reply
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(reply)
}

/// One of the page's files.
#[utoipa::path(
    get,
    path = "/map/{file}",
    tag = "trains",
    operation_id = "seat_map_file",
    params(("file" = String, Path, description = "A file of the seat map page: `index.js`, \
        `index.css` or `icon.svg`.", pattern = "^[A-Za-z0-9._-]+$")),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "image/svg+xml"),
        )),
        (status = 404, description = "`not_found`: no such file.", body = ErrorBody),
    ),
)]
pub(super) fn file(name: &str) -> Reply {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => asset(Bytes::from_static(bytes), content_type),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the seat map has no file {name}"),
            &[],
        ),
    }
}

/// The page, as `assets/map/index.html` has it (identities off).
const PAGE: &str = include_str!("../../assets/map/index.html");

/// The page when buyers need a JWT: it then shows the bearer token field.
static PAGE_WITH_IDENTITIES: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(PAGE.replace(r#"data-identities="off""#, r#"data-identities="on""#))
});

/// The page's files: name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 3] = [
    (
        "index.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/map/index.js"),
    ),
    (
        "index.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/map/index.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/map/icon.svg"),
    ),
];

/// A 200 with a file's bytes, revalidated by browsers on each load (the
/// files change with the binary).
fn asset(bytes: Bytes, content_type: &'static str) -> Reply {
    let mut reply = Response::new(Full::new(bytes));
    let headers = reply.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page names its files relatively, and each is served.
    #[test]
    fn the_page_loads_only_its_own_files() {
        assert!(PAGE.contains(r#"data-identities="off""#));
        for (name, _, bytes) in FILES {
            assert!(PAGE.contains(&format!("../../map/{name}")), "{name}");
            assert!(!bytes.is_empty(), "{name}");
        }
        // No address elsewhere in the page, its script or its style.
        for text in [PAGE.as_bytes(), FILES[0].2, FILES[1].2] {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains("http:") && !text.contains("https:") && !text.contains("//cdn"));
        }
    }
}
