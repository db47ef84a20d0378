//! `GET /trains/{id}/seats`: a numbered train's seat map, every seat free,
//! held or sold for one journey (and class).
//!
//! The figures come from `train.lua`'s snapshot; `seats::Occupancy` works
//! out each seat's state. Public, like `GET /trains/{id}`: a seat map shows
//! no buyer.

use hyper::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{trains::JourneyQuery, unknown_train, Answer, App};
use crate::{
    respond::{error, invalid, json, ErrorBody},
    seats::SeatState,
};

/// A seat map.
#[derive(Serialize, ToSchema)]
struct SeatMap<'a> {
    train_id: &'a str,
    /// The journey's first station (null on a train without stations).
    from: Option<&'a str>,
    /// Its last station.
    to: Option<&'a str>,
    coaches: Vec<CoachMap<'a>>,
}

/// One coach: its layout, and its seats in row and letter order.
#[derive(Serialize, ToSchema)]
struct CoachMap<'a> {
    coach: &'a str,
    class: &'a str,
    rows: u64,
    /// A row's seat letters from window to window, `_` for the aisle.
    layout: &'a str,
    seats: Vec<SeatView>,
}

/// One seat and its state for the journey: `sold` when a reservation has it
/// on any leg of the journey, else `held` when a live hold has it on one,
/// else `free`.
#[derive(Serialize, ToSchema)]
struct SeatView {
    seat_id: String,
    state: SeatState,
}

/// `?class=` beside `?from=&to=`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ClassQuery {
    /// Only the coaches of this class.
    #[param(
        min_length = 1,
        max_length = 32,
        pattern = "^[a-z0-9_-]{1,32}$",
        example = "second"
    )]
    class: Option<String>,
}

/// A numbered train's seat map for a journey (public).
#[utoipa::path(
    get,
    path = "/trains/{id}/seats",
    tag = "trains",
    operation_id = "get_seats",
    params(super::shared::TrainPath, JourneyQuery, ClassQuery),
    responses(
        (status = 200, description = "The seat map.", body = SeatMap),
        (status = 404, description = "`unknown_train`: no such train; `no_seat_map`: the train's \
            seats are not numbered (it was created with `capacity`, not `coaches`).", body = ErrorBody),
        (status = 422, description = "`invalid_request`: a bad train id, query or class; or \
            `invalid_journey`: `from` or `to` is not a station of the train, `from` is not \
            before `to`, or the train has no stations.", body = ErrorBody),
        (status = 500, response = super::shared::Internal),
        (status = 503, response = super::shared::Unavailable),
    ),
)]
pub(super) async fn get(app: &App, id: &str, query: Option<&str>) -> Answer {
    let (journey, class) = JourneyQuery::parse_with(query, Some("class")).map_err(invalid)?;
    crate::seats::check_class(class.as_deref()).map_err(invalid)?;
    let state = app
        .store
        .train(id)
        .await?
        .ok_or_else(|| unknown_train(id))?;
    let Some(occupancy) = &state.seats else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "no_seat_map",
            format!("train {id} has no numbered seats (it was made with a capacity, not coaches)"),
            &[],
        ));
    };
    let stations = state.stations.as_deref();
    let (a, b) = journey.legs(id, stations)?;
    if let Some(class) = &class {
        if !occupancy.coaches.iter().any(|c| &c.class == class) {
            return Err(invalid(format!("train {id} has no class {class:?}")));
        }
    }
    let mut states = occupancy.seats(a as u32, b as u32);
    let mut coaches = Vec::with_capacity(occupancy.coaches.len());
    for coach in &occupancy.coaches {
        let n = coach.rows as usize * coach.letters().count();
        let seats: Vec<SeatView> = states
            .by_ref()
            .take(n)
            .map(|(seat_id, _, state)| SeatView { seat_id, state })
            .collect();
        if class.as_ref().is_none_or(|class| class == &coach.class) {
            coaches.push(CoachMap {
                coach: &coach.coach,
                class: &coach.class,
                rows: coach.rows,
                layout: &coach.layout,
                seats,
            });
        }
    }
    let station = |k: usize| stations.and_then(|s| s.get(k)).map(String::as_str);
    Ok(json(
        StatusCode::OK,
        &SeatMap {
            train_id: id,
            from: station(a),
            to: station(b),
            coaches,
        },
    ))
}
