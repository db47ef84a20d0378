//! Numbered seats: a train's coaches (checked when it is created), the seat
//! ids they give (`7-12A`), and each seat's state for a journey, worked out
//! from what `train.lua` reads.
//!
//! The scripts decide who gets which seat (see "Numbered seats" in
//! `lua/prelude.lua`); this module only checks layouts and seat ids before
//! anything reaches Redis, and turns a snapshot (the free runs and the holds)
//! into the seat map and per-class figures that `GET /trains/{id}` and
//! `GET /trains/{id}/seats` show. Both sides number seats the same way: in
//! coach order, then row, then letter.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Rows a coach may have.
pub const ROWS: std::ops::RangeInclusive<u64> = 1..=40;
/// Seats one row may have.
pub const MAX_ROW_SEATS: usize = 10;
/// Seats a train may have.
pub const MAX_SEATS: usize = 2_000;
/// Seat ids one request may name.
pub const MAX_SEAT_IDS: usize = 10;
/// The scripts number runs' seats below this (`SLOT` in prelude.lua).
const SLOT: u64 = 4096;
/// And their stops below this (`STOPS`).
const STOPS: u64 = 64;

/// One coach of a train, as `PUT /trains/{id}` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Coach {
    /// The coach's name in seat ids: 1 to 8 of `A-Z a-z 0-9`, distinct.
    #[schema(
        min_length = 1,
        max_length = 8,
        pattern = "^[A-Za-z0-9]{1,8}$",
        example = "7"
    )]
    pub coach: String,
    /// Its class: 1 to 32 of `a-z 0-9 _ -`.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = "^[a-z0-9_-]{1,32}$",
        example = "second"
    )]
    pub class: String,
    /// Rows, 1 to 40, numbered from 1.
    #[schema(minimum = 1, maximum = 40, example = 16)]
    #[serde(deserialize_with = "crate::request::whole::required")]
    pub rows: u64,
    /// One row's seat letters from window to window, `_` for the aisle
    /// (not first, not last, not twice in a row): 1 to 10 distinct `A`-`Z`
    /// (the pattern says all of it: no letter again later, at most ten).
    #[schema(
        min_length = 1,
        max_length = 19,
        pattern = r"^(?!.*([A-Z]).*\1)[A-Z](_?[A-Z]){0,9}$",
        example = "AB_CD"
    )]
    pub layout: String,
}

impl Coach {
    /// The seat letters of a row, in order.
    pub fn letters(&self) -> impl Iterator<Item = char> + '_ {
        self.layout.chars().filter(|c| *c != '_')
    }

    fn width(&self) -> usize {
        self.letters().count()
    }
}

/// A class name: 1 to 32 of `a-z 0-9 _ -`.
pub fn valid_class(class: &str) -> bool {
    (1..=32).contains(&class.len())
        && class
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A class a request or query names, if any: checked before Redis is
/// asked, and never echoed back (it may be any length).
pub fn check_class(class: Option<&str>) -> Result<(), String> {
    match class {
        Some(class) if !valid_class(class) => {
            Err("class must be 1 to 32 of a-z 0-9 _ -".to_owned())
        }
        _ => Ok(()),
    }
}

/// Checks a train's coaches; returns the number of seats.
pub fn check_coaches(coaches: &[Coach]) -> Result<usize, String> {
    if coaches.is_empty() {
        return Err("coaches must list at least one coach".to_owned());
    }
    let mut seats = 0;
    for (at, coach) in coaches.iter().enumerate() {
        let field = |name: &str| format!("coaches[{at}].{name}");
        let ok = (1..=8).contains(&coach.coach.len())
            && coach.coach.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(format!("{}: 1 to 8 of A-Z a-z 0-9", field("coach")));
        }
        if coaches[..at].iter().any(|c| c.coach == coach.coach) {
            return Err(format!(
                "{}: coach {:?} is listed twice",
                field("coach"),
                coach.coach
            ));
        }
        if !valid_class(&coach.class) {
            return Err(format!("{}: 1 to 32 of a-z 0-9 _ -", field("class")));
        }
        if !ROWS.contains(&coach.rows) {
            return Err(format!(
                "{}: from {} to {}",
                field("rows"),
                ROWS.start(),
                ROWS.end()
            ));
        }
        check_layout(&coach.layout).map_err(|why| format!("{}: {why}", field("layout")))?;
        seats += coach.rows as usize * coach.width();
    }
    if seats > MAX_SEATS {
        return Err(format!(
            "the coaches have {seats} seats; a train has at most {MAX_SEATS}"
        ));
    }
    Ok(seats)
}

fn check_layout(layout: &str) -> Result<(), String> {
    let bytes = layout.as_bytes();
    if bytes.first() == Some(&b'_') || bytes.last() == Some(&b'_') || layout.contains("__") {
        return Err("the aisle (_) may not come first, last, or twice in a row".to_owned());
    }
    let mut seen = [false; 26];
    let mut width = 0;
    for b in bytes {
        match b {
            b'A'..=b'Z' => {
                let slot = &mut seen[usize::from(b - b'A')];
                if *slot {
                    return Err(format!("seat letter {} is repeated", char::from(*b)));
                }
                *slot = true;
                width += 1;
            }
            b'_' => {}
            _ => return Err("only seat letters A-Z and _ for the aisle".to_owned()),
        }
    }
    if !(1..=MAX_ROW_SEATS).contains(&width) {
        return Err(format!("a row has 1 to {MAX_ROW_SEATS} seats"));
    }
    Ok(())
}

/// Whether `id` has the shape of a seat id, `{coach}-{row}{letter}`
/// (whether the train has it is the script's to say).
pub fn valid_seat_id(id: &str) -> bool {
    let Some((coach, place)) = id.split_once('-') else {
        return false;
    };
    let Some((row, letter)) = place.split_at_checked(place.len().saturating_sub(1)) else {
        return false;
    };
    (1..=8).contains(&coach.len())
        && coach.bytes().all(|b| b.is_ascii_alphanumeric())
        && (1..=2).contains(&row.len())
        && row.bytes().all(|b| b.is_ascii_digit())
        && !row.starts_with('0')
        && letter.len() == 1
        && letter.bytes().all(|b| b.is_ascii_uppercase())
}

/// A seat's state for a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatState {
    Free,
    Held,
    Sold,
}

/// Which legs of each seat are free and which held, in seat order: a
/// numbered train as `train.lua` read it (expired holds already free).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupancy {
    pub coaches: Vec<Coach>,
    /// Per seat, bit k set: leg k free.
    free: Vec<u64>,
    /// Per seat, bit k set: leg k on a live hold.
    held: Vec<u64>,
}

/// What a hold record tells about seats (the fields `record` in
/// prelude.lua writes).
#[derive(Deserialize)]
struct HoldSeats {
    #[serde(default)]
    places: Vec<u64>,
    stops: Option<(u32, u32)>,
    expires_at_ms: i64,
}

impl Occupancy {
    /// From the free runs' scores (`seats`), the holds' records and the
    /// time `train.lua` read them at.
    pub fn new(
        coaches: Vec<Coach>,
        scores: impl IntoIterator<Item = u64>,
        holds: impl IntoIterator<Item = String>,
        now: i64,
    ) -> Result<Occupancy, String> {
        let seats: usize = coaches.iter().map(|c| c.rows as usize * c.width()).sum();
        let (mut free, mut held) = (vec![0u64; seats], vec![0u64; seats]);
        for score in scores {
            let seat = (score % SLOT) as usize;
            let code = score / SLOT;
            let (s, e) = ((code / STOPS) % STOPS, code % STOPS);
            let slot = free.get_mut(seat).ok_or("a free run names no seat")?;
            *slot |= legs(s as u32, e as u32);
        }
        for rec in holds {
            let hold: HoldSeats =
                serde_json::from_str(&rec).map_err(|e| format!("unreadable hold: {e}"))?;
            let (a, b) = hold.stops.unwrap_or((0, 1));
            for &seat in hold.places.iter().skip(1) {
                let seat = seat as usize;
                let (Some(f), Some(h)) = (free.get_mut(seat), held.get_mut(seat)) else {
                    return Err("a hold names no seat".to_owned());
                };
                if hold.expires_at_ms <= now {
                    *f |= legs(a, b);
                } else {
                    *h |= legs(a, b);
                }
            }
        }
        Ok(Occupancy {
            coaches,
            free,
            held,
        })
    }

    /// Each seat's id, class and state for the journey a..b, in seat order.
    pub fn seats(&self, a: u32, b: u32) -> impl Iterator<Item = (String, &str, SeatState)> + '_ {
        let journey = legs(a, b);
        self.coaches
            .iter()
            .flat_map(|coach| {
                (1..=coach.rows).flat_map(move |row| {
                    coach.letters().map(move |letter| {
                        (format!("{}-{row}{letter}", coach.coach), &*coach.class)
                    })
                })
            })
            .zip(self.free.iter().zip(&self.held))
            .map(move |((id, class), (&free, &held))| {
                let taken = journey & !free;
                let state = if taken == 0 {
                    SeatState::Free
                } else if taken & !held != 0 {
                    SeatState::Sold
                } else {
                    SeatState::Held
                };
                (id, class, state)
            })
    }

    /// Per seat, in seat order: the legs among 0..n (bit k: leg k) that a
    /// live reservation has, and those a live hold has. The seat map page
    /// works out any journey's states from these (see `api::map`).
    pub fn taken_legs(&self, n: u32) -> impl Iterator<Item = (u64, u64)> + '_ {
        let route = legs(0, n);
        self.free.iter().zip(&self.held).map(move |(&free, &held)| {
            let taken = route & !free;
            (taken & !held, taken & held)
        })
    }

    /// Per class, in order of first appearance: its seats and those free
    /// for the journey a..b.
    pub fn classes(&self, a: u32, b: u32) -> Vec<(String, i64, i64)> {
        let mut out: Vec<(String, i64, i64)> = Vec::new();
        for (_, class, state) in self.seats(a, b) {
            let at = match out.iter().position(|(name, _, _)| name == class) {
                Some(at) => at,
                None => {
                    out.push((class.to_owned(), 0, 0));
                    out.len() - 1
                }
            };
            out[at].1 += 1;
            out[at].2 += i64::from(state == SeatState::Free);
        }
        out
    }
}

/// Legs a..b as bits.
fn legs(a: u32, b: u32) -> u64 {
    let upto = |k: u32| if k >= 64 { u64::MAX } else { (1u64 << k) - 1 };
    upto(b) & !upto(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coach(name: &str, class: &str, rows: u64, layout: &str) -> Coach {
        Coach {
            coach: name.to_owned(),
            class: class.to_owned(),
            rows,
            layout: layout.to_owned(),
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(check_coaches(&[coach("7", "second", 16, "AB_CD")]), Ok(64));
        assert_eq!(
            check_coaches(&[coach("a1", "first_1", 40, "ABCDEFGHIJ")]),
            Ok(400)
        );
        for bad in [
            vec![],
            vec![coach("", "x", 1, "A")],
            vec![coach("123456789", "x", 1, "A")],
            vec![coach("7-", "x", 1, "A")],
            vec![coach("7", "X", 1, "A")],
            vec![coach("7", "a b", 1, "A")],
            vec![coach("7", &"x".repeat(33), 1, "A")],
            vec![coach("7", "x", 0, "A")],
            vec![coach("7", "x", 41, "A")],
            vec![coach("7", "x", 1, "AA")],
            vec![coach("7", "x", 1, "_A")],
            vec![coach("7", "x", 1, "A_")],
            vec![coach("7", "x", 1, "A__B")],
            vec![coach("7", "x", 1, "ABCDEFGHIJK")],
            vec![coach("7", "x", 1, "a")],
            vec![coach("7", "x", 1, "")],
            vec![coach("7", "x", 1, "A"), coach("7", "y", 1, "B")],
            (0..6)
                .map(|i| coach(&i.to_string(), "x", 40, "ABCDEFGHIJ"))
                .collect(),
        ] {
            assert!(check_coaches(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn seat_ids() {
        for good in ["7-12A", "A1-1Z", "12345678-40J"] {
            assert!(valid_seat_id(good), "{good}");
        }
        for bad in [
            "7-12", "7-A", "-1A", "7-012A", "7-123A", "7-1a", "7_1A", "7-1AB", "", "é-1A",
        ] {
            assert!(!valid_seat_id(bad), "{bad}");
        }
    }

    #[test]
    fn states_from_runs_and_holds() {
        // Two seats, three legs. Seat 0 is free on legs 0 and 2 (sold on 1);
        // seat 1 is free on leg 0 only: legs 1..3 are a live hold.
        let run = |c: u64, s: u64, e: u64, i: u64| ((c * STOPS + s) * STOPS + e) * SLOT + i;
        let occupancy = Occupancy::new(
            vec![coach("1", "second", 1, "AB")],
            [run(0, 0, 1, 0), run(0, 2, 3, 0), run(0, 0, 1, 1)],
            [
                r#"{"user_id":null,"seats":1,"places":[0,1],"stops":[1,3],"expires_at_ms":200}"#
                    .to_owned(),
            ],
            100,
        )
        .expect("readable");
        let states: Vec<_> = occupancy.seats(0, 3).map(|(id, _, s)| (id, s)).collect();
        assert_eq!(
            states,
            [
                ("1-1A".to_owned(), SeatState::Sold),
                ("1-1B".to_owned(), SeatState::Held)
            ]
        );
        assert_eq!(occupancy.classes(0, 1), [("second".to_owned(), 2, 2)]);
        // Per seat, the legs sold and the legs held: seat 0 sold on leg 1,
        // seat 1 held on legs 1 and 2.
        let taken: Vec<_> = occupancy.taken_legs(3).collect();
        assert_eq!(taken, [(0b010, 0b000), (0b000, 0b110)]);
        assert_eq!(occupancy.classes(2, 3), [("second".to_owned(), 2, 1)]);
        // Once the hold has expired, its seat is free again on its legs.
        let expired = Occupancy::new(
            vec![coach("1", "second", 1, "AB")],
            [run(0, 0, 1, 1)],
            [
                r#"{"user_id":null,"seats":1,"places":[0,1],"stops":[1,3],"expires_at_ms":200}"#
                    .to_owned(),
            ],
            300,
        )
        .expect("readable");
        assert_eq!(expired.classes(0, 3), [("second".to_owned(), 2, 1)]);
    }
}
