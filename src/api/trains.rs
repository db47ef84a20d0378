//! One train: `GET /trains/{id}` (public figures) and `PUT /trains/{id}`
//! (admin: create, or reset with `"reset": true`).

use hyper::{
    body::Incoming,
    header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE},
    Request, StatusCode,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read_body, reservations::invalid_journey, unexpected, unknown_train, Answer, App};
use crate::{
    request::{self, Admin},
    respond::{self, error, invalid, json, ErrorBody, Reply},
};

/// A train's figures. Expired holds count as `remaining`, never as `held`.
#[derive(Serialize, ToSchema)]
struct TrainView<'a> {
    train_id: &'a str,
    capacity: i64,
    /// Seats free over the whole route, or for the journey asked
    /// (`?from=&to=`): the fewest free on any of its legs.
    remaining: i64,
    /// Seats of live reservations, whatever their journey.
    sold: i64,
    /// Seats of live holds, whatever their journey.
    held: i64,
    locked: bool,
    /// Milliseconds until the lock expires: 0 when unlocked, null when the
    /// lock has no expiry (an operator froze the train).
    lock_ttl_ms: Option<i64>,
    /// On a train with stations: its stations, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    stations: Option<&'a [String]>,
    /// On a train with stations: one entry per leg (of the journey asked,
    /// or of the whole route).
    #[serde(skip_serializing_if = "Option::is_none")]
    legs: Option<Vec<LegView<'a>>>,
    /// On a numbered train: per class, its seats and those free for the
    /// journey (the whole route, or the journey asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<Vec<ClassView>>,
}

/// One class of a numbered train.
#[derive(Serialize, ToSchema)]
pub(super) struct ClassView {
    class: String,
    capacity: i64,
    /// Seats of this class free on every leg of the journey.
    remaining: i64,
}

/// One leg: the stretch between two consecutive stations.
#[derive(Serialize, ToSchema)]
struct LegView<'a> {
    from: &'a str,
    to: &'a str,
    /// Seats free on this leg.
    remaining: i64,
    /// Seats of live reservations whose journey covers this leg.
    sold: i64,
    /// Seats of live holds whose journey covers this leg.
    held: i64,
}

/// `?from=&to=` of `GET /trains/{id}`.
#[derive(Debug, Default, PartialEq, Eq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct JourneyQuery {
    /// A station of the train (default: the first).
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Dijon"
    )]
    from: Option<String>,
    /// A later station of the train (default: the last).
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Marseille"
    )]
    to: Option<String>,
}

impl JourneyQuery {
    /// The query string's `from` and `to`, percent-decoded; other names
    /// are refused (422), as unknown body fields are.
    pub(super) fn parse(query: Option<&str>) -> Result<JourneyQuery, String> {
        Ok(JourneyQuery::parse_with(query, None)?.0)
    }

    /// As `parse`, also taking `extra` (a third parameter's name), whose
    /// value is returned beside.
    pub(super) fn parse_with(
        query: Option<&str>,
        extra: Option<&str>,
    ) -> Result<(JourneyQuery, Option<String>), String> {
        let (mut out, mut other) = (JourneyQuery::default(), None);
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match name.as_ref() {
                "from" => &mut out.from,
                "to" => &mut out.to,
                n if Some(n) == extra => &mut other,
                n => {
                    let names =
                        extra.map_or("from and to".to_owned(), |e| format!("from, to and {e}"));
                    return Err(format!("unknown query parameter {n:?}: use {names}"));
                }
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(format!("{name} is given twice"));
            }
        }
        // Station names as a body's: checked before Redis is asked.
        request::Journey::new(out.from.clone(), out.to.clone())?;
        Ok((out, other))
    }

    /// The journey asked as legs a..b of a train (`stations`; none: its one
    /// leg), or the 422 that says why there is none.
    pub(super) fn legs(
        &self,
        id: &str,
        stations: Option<&[String]>,
    ) -> Result<(usize, usize), Reply> {
        let journey = self.journey(stations).map_err(|why| {
            let named = request::Journey {
                from: self.from.clone(),
                to: self.to.clone(),
            };
            invalid_journey(id, why, &named)
        })?;
        Ok(journey.unwrap_or((0, stations.map_or(1, |s| s.len().max(2) - 1))))
    }

    /// Station indexes `a < b` of the journey on `stations`, or why not.
    pub(super) fn journey(
        &self,
        stations: Option<&[String]>,
    ) -> Result<Option<(usize, usize)>, i64> {
        let Some(stations) = stations else {
            return match (&self.from, &self.to) {
                (None, None) => Ok(None),
                _ => Err(3),
            };
        };
        let at = |name: &Option<String>, default: usize| match name {
            None => Ok(default),
            Some(name) => stations.iter().position(|s| s == name).ok_or(1),
        };
        let (a, b) = (at(&self.from, 0)?, at(&self.to, stations.len() - 1)?);
        if a >= b {
            return Err(2);
        }
        Ok(Some((a, b)))
    }
}

/// A train's figures (public).
#[utoipa::path(
    get,
    path = "/trains/{id}",
    tag = "trains",
    operation_id = "get_train",
    params(super::shared::TrainPath, JourneyQuery),
    responses(
        (status = 200, description = "The train.", body = TrainView),
        (status = 404, description = "`unknown_train`: no such train.", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a bad train id or query; or \
            `invalid_journey`: `from` or `to` is not a station of the train, `from` is not \
            before `to`, or the train has no stations.", body = ErrorBody),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn get(app: &App, id: &str, query: Option<&str>) -> Answer {
    let query = JourneyQuery::parse(query).map_err(invalid)?;
    let state = app
        .store
        .train(id)
        .await?
        .ok_or_else(|| unknown_train(id))?;
    let stations = state.stations.as_deref();
    let (a, b) = query.legs(id, stations)?;
    let mut remaining = state.remaining;
    let legs = stations.map(|stations| {
        let legs: Vec<LegView> = (a..b)
            .filter_map(|k| {
                let leg = state.legs.get(k)?;
                Some(LegView {
                    from: &stations[k],
                    to: stations.get(k + 1)?,
                    remaining: leg.remaining,
                    sold: leg.sold,
                    held: leg.held,
                })
            })
            .collect();
        if let Some(fewest) = legs.iter().map(|leg| leg.remaining).min() {
            remaining = fewest;
        }
        legs
    });
    // On a numbered train, what a buyer meets: seats free from a to b.
    let classes = state.seats.as_ref().map(|seats| {
        let classes: Vec<ClassView> = seats
            .classes(a as u32, b as u32)
            .into_iter()
            .map(|(class, capacity, remaining)| ClassView {
                class,
                capacity,
                remaining,
            })
            .collect();
        remaining = classes.iter().map(|c| c.remaining).sum();
        classes
    });
    Ok(json(
        StatusCode::OK,
        &TrainView {
            train_id: id,
            capacity: state.capacity,
            remaining,
            sold: state.sold,
            held: state.held,
            locked: state.lock.is_some(),
            lock_ttl_ms: state.lock.unwrap_or(Some(0)),
            stations,
            legs,
            classes,
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
    /// Its stations, when it has some.
    #[serde(skip_serializing_if = "Option::is_none")]
    stations: Option<&'a [String]>,
    /// Its coaches, when its seats are numbered.
    #[serde(skip_serializing_if = "Option::is_none")]
    coaches: Option<&'a [crate::seats::Coach]>,
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
    let capacity = put.seats();
    let created = TrainCreated {
        train_id: id,
        capacity,
        remaining: capacity,
        sold: 0,
        stations: put.stations.as_deref(),
        coaches: put.coaches.as_deref(),
    };
    let (stations, coaches) = (put.stations.as_deref(), put.coaches.as_deref());
    Ok(
        match app
            .store
            .put_train(id, capacity, put.reset, stations, coaches)
            .await?
        {
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
