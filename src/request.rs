//! Parsing and validating what clients send: JSON bodies, train ids, the
//! Idempotency-Key and the admin bearer token.
//!
//! Pure functions from bytes and strings to typed requests, or to the sentence
//! a 422 carries. Nothing here touches Redis, so bad input can never change a
//! key, and the whole surface can be tested (and fuzzed) without a server.

use serde::Deserialize;
use utoipa::ToSchema;

/// Largest request body read, in bytes; larger ones get 413.
pub const MAX_BODY: usize = 16 * 1024;
/// Seats one request may book.
pub const MAX_SEATS: u64 = 10;
/// Largest train a PUT may create.
pub const MAX_CAPACITY: u64 = 1_000_000_000;
/// Longest user id kept with a reservation.
pub const MAX_USER_ID: usize = 128;
/// The `ttl_ms` a hold may ask for (and the range of HOLD_TTL_MS).
pub const HOLD_TTL_MS: std::ops::RangeInclusive<u64> = 1_000..=900_000;
/// Stations a train may have.
pub const STATIONS: std::ops::RangeInclusive<usize> = 2..=50;
/// Longest station name, in characters.
pub const MAX_STATION: usize = 64;

/// `[A-Za-z0-9_.-]{1,64}`: the ids that can become part of a key.
pub fn valid_train_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A validated `POST /reserve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub train_id: String,
    pub user_id: Option<String>,
    pub seats: u8,
    pub journey: Journey,
    pub seating: Seating,
}

impl Reserve {
    /// Identifies the request for Idempotency-Key matching: the same key with a
    /// different fingerprint is a client bug (422), not a replay.
    pub fn fingerprint(&self) -> String {
        let user = self.user_id.as_deref().unwrap_or("");
        format!(
            "{}|{}|{}{}{}",
            self.train_id,
            self.seats,
            user,
            self.journey.fingerprint(),
            self.seating.fingerprint()
        )
    }
}

/// The stations a request names (`None`: the first, the last). Whether the
/// train has them is the script's to say (422 `invalid_journey`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journey {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Journey {
    /// Checks the names' shape (the same rule as a train's stations).
    pub fn new(from: Option<String>, to: Option<String>) -> Result<Journey, String> {
        for (field, name) in [("from", &from), ("to", &to)] {
            if let Some(name) = name {
                station_name(name).map_err(|why| format!("{field}: {why}"))?;
            }
        }
        Ok(Journey { from, to })
    }

    /// What it adds to a request's fingerprint ('' when it names no station,
    /// so fingerprints of requests without stations are what they were).
    fn fingerprint(&self) -> String {
        if self.from.is_none() && self.to.is_none() {
            return String::new();
        }
        let name = |n: &Option<String>| serde_json::to_string(n).unwrap_or_default();
        format!("|{}|{}", name(&self.from), name(&self.to))
    }
}

/// What a request asks of a numbered train's seats (all empty: the service
/// picks, in any class). Whether the train has those seats and that class
/// is the script's to say (422 `invalid_request`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seating {
    pub class: Option<String>,
    pub seat_ids: Vec<String>,
    pub together: bool,
}

impl Seating {
    /// Checks the fields' shape; returns them with the seats the request
    /// books (`seats`, or the number of seat ids, which must agree).
    fn new(
        class: Option<String>,
        seat_ids: Option<Vec<String>>,
        together: Option<bool>,
        seats: Option<u64>,
    ) -> Result<(Seating, u8), String> {
        crate::seats::check_class(class.as_deref())?;
        let together = together.unwrap_or(false);
        let Some(ids) = seat_ids else {
            let seating = Seating {
                class,
                seat_ids: Vec::new(),
                together,
            };
            return Ok((seating, self::seats(seats)?));
        };
        if together {
            return Err("seat_ids names the seats: send together only without them".to_owned());
        }
        if !(1..=crate::seats::MAX_SEAT_IDS).contains(&ids.len()) {
            return Err(format!(
                "seat_ids must name 1 to {} seats",
                crate::seats::MAX_SEAT_IDS
            ));
        }
        for (at, id) in ids.iter().enumerate() {
            if !crate::seats::valid_seat_id(id) {
                return Err(format!(
                    "seat_ids[{at}]: a seat id is {{coach}}-{{row}}{{letter}}, like 7-12A"
                ));
            }
            if ids[..at].contains(id) {
                return Err(format!("seat_ids[{at}]: {id} is named twice"));
            }
        }
        let n = ids.len() as u64;
        if seats.is_some_and(|asked| asked != n) {
            return Err(format!(
                "seats must equal the number of seat_ids ({n}), or be left out"
            ));
        }
        let seating = Seating {
            class,
            seat_ids: ids,
            together: false,
        };
        Ok((seating, self::seats(Some(n))?))
    }

    /// What it adds to a request's fingerprint ('' when it asks nothing).
    fn fingerprint(&self) -> String {
        if *self == Seating::default() {
            return String::new();
        }
        format!(
            "|{}|{}|{}",
            self.class.as_deref().unwrap_or(""),
            self.seat_ids.join(","),
            self.together
        )
    }
}

/// A station name: 1 to `MAX_STATION` characters, no control characters.
fn station_name(name: &str) -> Result<(), String> {
    let ok =
        (1..=MAX_STATION).contains(&name.chars().count()) && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a station name is 1 to {MAX_STATION} characters, without control characters"
        ))
    }
}

/// The body of `POST /reserve`. Unknown fields are refused (422).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReserveRequest, example = json!({"train_id": "default", "user_id": "u-42", "seats": 1}))]
pub struct ReserveBody {
    /// The train; absent: `DEFAULT_TRAIN`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_.-]{1,64}$",
        example = "default"
    )]
    train_id: Option<String>,
    /// Who buys (kept with the reservation). With identities on, the token's
    /// `sub` (another value: 403).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "u-42"
    )]
    user_id: Option<String>,
    /// Seats to reserve, 1 to 10; absent: 1.
    #[schema(minimum = 1, maximum = 10, example = 1)]
    #[serde(default, deserialize_with = "whole::optional")]
    seats: Option<u64>,
    /// Where the journey starts, on a train with stations; absent: its first
    /// station. Unknown, or on a train without stations: 422 `invalid_journey`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Paris"
    )]
    from: Option<String>,
    /// Where the journey ends (after `from`); absent: the last station.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Lyon"
    )]
    to: Option<String>,
    /// On a train with coaches: only seats of this class (unknown: 422).
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = "^[a-z0-9_-]{1,32}$",
        example = "second"
    )]
    class: Option<String>,
    /// On a train with coaches: exactly these seats (all or none; taken:
    /// 409 `seat_taken`). 1 to 10 distinct ids; `seats`, if given, must be
    /// their number.
    #[schema(schema_with = seat_ids_schema)]
    seat_ids: Option<Vec<String>>,
    /// On a train with coaches: all seats in one coach, next to each other
    /// in the fewest rows (none such: 409 `not_together`). Default false.
    together: Option<bool>,
}

/// `seat_ids` in `/openapi.json`: the rules `Seating::new` enforces.
fn seat_ids_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let id = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9]{1,8}-[1-9][0-9]?[A-Z]$"));
    ArrayBuilder::new()
        // `null` is taken as absent, as for every other optional field.
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(id)
        .min_items(Some(1))
        .max_items(Some(crate::seats::MAX_SEAT_IDS))
        .unique_items(true)
        .description(Some(
            "On a train with coaches: exactly these seats (all or none; one taken: 409 \
             `seat_taken`). 1 to 10 distinct ids like `7-12A`; `seats`, if given, must be their \
             number.",
        ))
        // One seat: composed with the other fields' examples (`seats`: 1), a valid body.
        .examples([serde_json::json!(["7-12A"])])
        .build()
}

/// Parses a `POST /reserve` body (empty means all defaults).
pub fn parse_reserve(body: &[u8], default_train: &str) -> Result<Reserve, String> {
    let parsed: ReserveBody = if is_blank(body) {
        ReserveBody {
            train_id: None,
            user_id: None,
            seats: None,
            from: None,
            to: None,
            class: None,
            seat_ids: None,
            together: None,
        }
    } else {
        parse_json(body)?
    };
    let train_id = parsed.train_id.unwrap_or_else(|| default_train.to_owned());
    if !valid_train_id(&train_id) {
        return Err(bad_train_id());
    }
    let (seating, seats) =
        Seating::new(parsed.class, parsed.seat_ids, parsed.together, parsed.seats)?;
    Ok(Reserve {
        train_id,
        seats,
        user_id: user_id(parsed.user_id)?,
        journey: Journey::new(parsed.from, parsed.to)?,
        seating,
    })
}

/// `seats`: 1 to `MAX_SEATS`, 1 when absent.
fn seats(seats: Option<u64>) -> Result<u8, String> {
    let seats = seats.unwrap_or(1);
    match u8::try_from(seats) {
        Ok(n) if (1..=MAX_SEATS).contains(&seats) => Ok(n),
        _ => Err(format!("seats must be an integer from 1 to {MAX_SEATS}")),
    }
}

/// `user_id`: 1 to `MAX_USER_ID` characters, no control characters.
fn user_id(user: Option<String>) -> Result<Option<String>, String> {
    if let Some(user) = &user {
        let ok = (1..=MAX_USER_ID).contains(&user.chars().count())
            && !user.chars().any(char::is_control);
        if !ok {
            return Err(format!(
                "user_id must be 1 to {MAX_USER_ID} characters, without control characters"
            ));
        }
    }
    Ok(user)
}

/// A validated `POST /trains/{id}/holds` body (the train comes from the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub user_id: Option<String>,
    pub seats: u8,
    pub ttl_ms: u64,
    pub journey: Journey,
    pub seating: Seating,
}

impl Hold {
    /// As `Reserve::fingerprint`; a hold never matches a reservation's key.
    pub fn fingerprint(&self, train_id: &str) -> String {
        let user = self.user_id.as_deref().unwrap_or("");
        let journey = self.journey.fingerprint();
        let seating = self.seating.fingerprint();
        format!(
            "hold|{train_id}|{}|{}|{user}{journey}{seating}",
            self.seats, self.ttl_ms
        )
    }
}

/// The body of `POST /trains/{id}/holds`. Unknown fields are refused (422).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HoldRequest, example = json!({"user_id": "u-42", "seats": 1, "ttl_ms": 60000}))]
pub struct HoldBody {
    /// Who holds (only they may confirm or release, with identities on).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "u-42"
    )]
    user_id: Option<String>,
    /// Seats to hold, 1 to 10; absent: 1.
    #[schema(minimum = 1, maximum = 10, example = 1)]
    #[serde(default, deserialize_with = "whole::optional")]
    seats: Option<u64>,
    /// How long the hold keeps its seats, in ms; absent: `HOLD_TTL_MS`.
    #[schema(minimum = 1000, maximum = 900000, example = 60000)]
    #[serde(default, deserialize_with = "whole::optional")]
    ttl_ms: Option<u64>,
    /// Where the journey starts, as for `POST /reserve`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Paris"
    )]
    from: Option<String>,
    /// Where the journey ends, as for `POST /reserve`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Lyon"
    )]
    to: Option<String>,
    /// On a train with coaches: only seats of this class (unknown: 422).
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = "^[a-z0-9_-]{1,32}$",
        example = "second"
    )]
    class: Option<String>,
    /// On a train with coaches: exactly these seats (all or none; taken:
    /// 409 `seat_taken`). 1 to 10 distinct ids; `seats`, if given, must be
    /// their number.
    #[schema(schema_with = seat_ids_schema)]
    seat_ids: Option<Vec<String>>,
    /// On a train with coaches: all seats in one coach, next to each other
    /// in the fewest rows (none such: 409 `not_together`). Default false.
    together: Option<bool>,
}

/// Parses a `POST /trains/{id}/holds` body (empty means all defaults).
pub fn parse_hold(body: &[u8], default_ttl_ms: u64) -> Result<Hold, String> {
    let parsed: HoldBody = if is_blank(body) {
        HoldBody {
            user_id: None,
            seats: None,
            ttl_ms: None,
            from: None,
            to: None,
            class: None,
            seat_ids: None,
            together: None,
        }
    } else {
        parse_json(body)?
    };
    let ttl_ms = parsed.ttl_ms.unwrap_or(default_ttl_ms);
    if !HOLD_TTL_MS.contains(&ttl_ms) {
        return Err(format!(
            "ttl_ms must be an integer from {} to {}",
            HOLD_TTL_MS.start(),
            HOLD_TTL_MS.end()
        ));
    }
    let (seating, seats) =
        Seating::new(parsed.class, parsed.seat_ids, parsed.together, parsed.seats)?;
    Ok(Hold {
        seats,
        user_id: user_id(parsed.user_id)?,
        ttl_ms,
        journey: Journey::new(parsed.from, parsed.to)?,
        seating,
    })
}

/// A hold or reservation id from a path: a UUID (the service makes them),
/// returned in the canonical lower-case hyphenated form the keys use.
pub fn parse_id(raw: &str, what: &str) -> Result<String, String> {
    uuid::Uuid::try_parse(raw)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| format!("{what} must be a UUID, like 0b6f2a0e-5a4b-4c1e-9d8a-2f1e3c4b5a69"))
}

/// The body of `PUT /trains/{id}`. Unknown fields are refused (422).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PutTrainRequest)]
pub struct PutTrain {
    /// Seats of the train, 0 to 1,000,000,000 (unnumbered); or leave it out
    /// and send `coaches`.
    #[schema(minimum = 0, maximum = 1000000000, example = 300)]
    #[serde(default, deserialize_with = "whole::optional")]
    pub capacity: Option<u64>,
    /// `true`: reset an existing train (its sales and holds are cleared;
    /// `stations` replace its stations, or remove them when absent).
    #[serde(default)]
    pub reset: bool,
    /// The stations the train calls at, in order: 2 to 50 distinct names of
    /// 1 to 64 characters, no control characters. A seat is then sold per
    /// leg (between two consecutive stations). Absent: one leg, no stations.
    #[schema(schema_with = stations_schema)]
    pub stations: Option<Vec<String>>,
    /// Numbered seats, instead of `capacity`: the train's coaches in order,
    /// each `{"coach", "class", "rows", "layout"}`; seat ids are
    /// `{coach}-{row}{letter}` (`7-12A`). At most 2,000 seats.
    #[schema(min_items = 1, example = json!([{"coach": "1", "class": "first", "rows": 2, "layout": "A_BC"}, {"coach": "2", "class": "second", "rows": 4, "layout": "AB_CD"}]))]
    pub coaches: Option<Vec<crate::seats::Coach>>,
}

impl PutTrain {
    /// The train's seats: `capacity`, or the seats of its coaches.
    pub fn seats(&self) -> u64 {
        match &self.coaches {
            Some(coaches) => crate::seats::check_coaches(coaches).unwrap_or(0) as u64,
            None => self.capacity.unwrap_or(0),
        }
    }
}

/// `stations` in `/openapi.json`: the rules `parse_put_train` enforces.
fn stations_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_STATION))
        .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]*$"));
    ArrayBuilder::new()
        // `null` is taken as absent, as for every other optional field.
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(name)
        .min_items(Some(*STATIONS.start()))
        .max_items(Some(*STATIONS.end()))
        .unique_items(true)
        .description(Some(
            "The stations the train calls at, in order: 2 to 50 distinct names of 1 to 64 \
             characters, no control characters. A seat is then sold per leg (between two \
             consecutive stations). Absent: one leg, no stations.",
        ))
        .examples([serde_json::json!([
            "Paris",
            "Dijon",
            "Lyon",
            "Avignon",
            "Marseille"
        ])])
        .build()
}

pub fn parse_put_train(body: &[u8]) -> Result<PutTrain, String> {
    if is_blank(body) {
        return Err("a body is required: {\"capacity\": N, \"reset\": false}".to_owned());
    }
    let put: PutTrain = parse_json(body)?;
    match (&put.capacity, &put.coaches) {
        (Some(_), Some(_)) => {
            return Err("send capacity or coaches, not both: coaches give the capacity".to_owned())
        }
        (None, None) => return Err("capacity or coaches is required".to_owned()),
        (Some(capacity), None) if *capacity > MAX_CAPACITY => {
            return Err(format!(
                "capacity must be an integer from 0 to {MAX_CAPACITY}"
            ))
        }
        (_, Some(coaches)) => {
            crate::seats::check_coaches(coaches)?;
        }
        _ => {}
    }
    if let Some(stations) = &put.stations {
        if !STATIONS.contains(&stations.len()) {
            return Err(format!(
                "stations must list {} to {} stations",
                STATIONS.start(),
                STATIONS.end()
            ));
        }
        for (at, name) in stations.iter().enumerate() {
            station_name(name).map_err(|why| format!("stations[{at}]: {why}"))?;
            if stations[..at].contains(name) {
                return Err(format!("stations[{at}]: {name:?} is listed twice"));
            }
        }
    }
    Ok(put)
}

/// Counts as JSON Schema (and `/openapi.json`) defines an `integer`: any
/// number with no fractional part, so `2.0` is 2. serde's `u64` alone
/// refuses `2.0`; `2.5`, negatives and non-numbers are still refused.
pub(crate) mod whole {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // 2^64 as f64; every integral f64 below it fits a u64 exactly.
            const LIMIT: f64 = 18_446_744_073_709_551_616.0;
            if v.fract() == 0.0 && (0.0..LIMIT).contains(&v) {
                Ok(v as u64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Whole)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct Maybe;
        impl<'de> Visitor<'de> for Maybe {
            type Value = Option<u64>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or null")
            }

            fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
                required(d).map(Some)
            }
        }
        d.deserialize_option(Maybe)
    }
}

/// An Idempotency-Key is 1 to 255 visible ASCII characters.
pub fn parse_idempotency_key(raw: &[u8]) -> Result<&str, String> {
    let ok = (1..=255).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic);
    match std::str::from_utf8(raw) {
        Ok(key) if ok => Ok(key),
        _ => Err("Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned()),
    }
}

/// How the admin bearer token compares.
#[derive(Debug, PartialEq, Eq)]
pub enum Admin {
    /// No ADMIN_TOKEN configured: admin endpoints are off (403).
    Disabled,
    /// Missing or wrong credentials (401).
    Denied,
    Allowed,
}

/// Checks an `Authorization` header against the configured token, in time
/// that does not depend on where they differ.
pub fn check_admin(configured: Option<&str>, authorization: Option<&[u8]>) -> Admin {
    let Some(expected) = configured else {
        return Admin::Disabled;
    };
    let presented = authorization
        .and_then(|h| h.strip_prefix(b"Bearer "))
        .unwrap_or_default();
    let same_length = presented.len() == expected.len();
    let diff = presented
        .iter()
        .zip(expected.as_bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if same_length && diff == 0 && !expected.is_empty() {
        Admin::Allowed
    } else {
        Admin::Denied
    }
}

pub fn bad_train_id() -> String {
    "train_id must be 1 to 64 characters of A-Z a-z 0-9 _ . -".to_owned()
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// A JSON object into `T`. Only an object: serde would also build a struct
/// from an array of its fields in order (`[null, null]` was a valid
/// reservation, found by schemathesis).
fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("the body must be a JSON object".to_owned());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_defaults_and_limits() {
        let r = parse_reserve(b"", "default").expect("empty body is valid");
        assert_eq!(
            (r.train_id.as_str(), r.seats, r.user_id, r.journey.clone()),
            ("default", 1, None, Journey::default())
        );
        let r = parse_reserve(br#"{"from":"Z\u00fcrich HB","to":"Lyon"}"#, "d").expect("valid");
        assert_eq!(r.journey.from.as_deref(), Some("Zürich HB"));
        // Naming no station leaves the fingerprint as it was before journeys.
        assert_eq!(
            parse_reserve(b"", "d").expect("valid").fingerprint(),
            "d|1|"
        );
        assert_ne!(
            r.fingerprint(),
            parse_reserve(b"", "d").expect("valid").fingerprint()
        );
        let r =
            parse_reserve(br#"{"train_id":"t-1","user_id":"u","seats":10}"#, "d").expect("valid");
        assert_eq!((r.train_id.as_str(), r.seats), ("t-1", 10));
        // JSON Schema's integer: 2.0 is 2 (schemathesis sent it; serde alone refused it).
        let r = parse_reserve(br#"{"seats":2.0,"train_id":null}"#, "d").expect("valid");
        assert_eq!((r.train_id.as_str(), r.seats), ("d", 2));
        for bad in [
            &br#"{"seats":0}"#[..],
            br#"{"seats":11}"#,
            br#"{"seats":-1}"#,
            br#"{"seats":1.5}"#,
            br#"{"seats":-2.0}"#,
            br#"{"seats":1e300}"#,
            br#"{"seats":true}"#,
            br#"{"seats":"1"}"#,
            br#"{"seats":99999999999999999999999}"#,
            br#"{"train_id":"a b"}"#,
            br#"{"train_id":""}"#,
            br#"{"train_id":7}"#,
            br#"{"user_id":""}"#,
            br#"{"from":""}"#,
            br#"{"to":"a\u0007b"}"#,
            br#"{"from":7}"#,
            br#"{"extra":1}"#,
            br#"[1]"#,
            br#"[null, null]"#,
            br#"["t-1", "u", 1]"#,
            br#""x""#,
            b"{",
            b"\xff",
        ] {
            assert!(
                parse_reserve(bad, "d").is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn hold_bodies() {
        let h = parse_hold(b"", 300_000).expect("empty body is valid");
        assert_eq!((h.seats, h.ttl_ms, h.user_id), (1, 300_000, None));
        let h = parse_hold(br#"{"seats":2,"ttl_ms":1000,"user_id":"u"}"#, 5).expect("valid");
        assert_eq!((h.seats, h.ttl_ms), (2, 1000));
        for bad in [
            &br#"{"ttl_ms":999}"#[..],
            br#"{"ttl_ms":900001}"#,
            br#"{"ttl_ms":"1000"}"#,
            br#"{"ttl_ms":-1}"#,
            br#"{"seats":0}"#,
            br#"{"train_id":"x"}"#,
            br#"{"user_id":""}"#,
        ] {
            assert!(
                parse_hold(bad, 300_000).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ids_are_uuids() {
        let id = "0B6F2A0E-5A4B-4C1E-9D8A-2F1E3C4B5A69";
        assert_eq!(parse_id(id, "hold_id"), Ok(id.to_lowercase()));
        for bad in ["", "x", "0b6f2a0e5a4b", "../x"] {
            assert!(parse_id(bad, "hold_id").is_err(), "{bad}");
        }
    }

    #[test]
    fn train_ids() {
        assert!(valid_train_id("A-z_0.9"));
        assert!(valid_train_id(&"x".repeat(64)));
        assert!(!valid_train_id(&"x".repeat(65)));
        assert!(!valid_train_id("a{b}"));
        assert!(!valid_train_id("a:b"));
        assert!(!valid_train_id("é"));
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(parse_idempotency_key(b"k-1"), Ok("k-1"));
        assert!(parse_idempotency_key(&[b'k'; 255]).is_ok());
        assert!(parse_idempotency_key(&[b'k'; 256]).is_err());
        assert!(parse_idempotency_key(b"").is_err());
        assert!(parse_idempotency_key(b"a b").is_err());
        assert!(parse_idempotency_key("é".as_bytes()).is_err());
    }

    #[test]
    fn admin_tokens() {
        assert_eq!(check_admin(None, Some(b"Bearer x")), Admin::Disabled);
        assert_eq!(
            check_admin(Some("s3cret"), Some(b"Bearer s3cret")),
            Admin::Allowed
        );
        assert_eq!(
            check_admin(Some("s3cret"), Some(b"Bearer s3cre")),
            Admin::Denied
        );
        assert_eq!(
            check_admin(Some("s3cret"), Some(b"Bearer s3cretx")),
            Admin::Denied
        );
        assert_eq!(check_admin(Some("s3cret"), Some(b"s3cret")), Admin::Denied);
        assert_eq!(check_admin(Some("s3cret"), None), Admin::Denied);
    }

    #[test]
    fn put_train_bodies() {
        assert_eq!(
            parse_put_train(br#"{"capacity":5}"#),
            Ok(PutTrain {
                capacity: Some(5),
                reset: false,
                stations: None,
                coaches: None,
            })
        );
        let put = parse_put_train(br#"{"capacity":5,"stations":["A","Z\u00fcrich HB"]}"#);
        assert_eq!(
            put.map(|p| p.stations),
            Ok(Some(vec!["A".to_owned(), "Zürich HB".to_owned()]))
        );
        let fifty: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
        let body = serde_json::json!({"capacity": 1, "stations": fifty}).to_string();
        assert!(parse_put_train(body.as_bytes()).is_ok());
        assert!(parse_put_train(br#"{"capacity":5,"reset":true}"#).is_ok_and(|p| p.reset));
        assert!(parse_put_train(br#"{"capacity":0.0}"#).is_ok_and(|p| p.seats() == 0));
        // A coach's rows are a JSON Schema integer too (schemathesis sent 20.0).
        let coach = br#"{"coaches":[{"coach":"1","class":"a","rows":20.0,"layout":"AB"}]}"#;
        assert!(parse_put_train(coach).is_ok_and(|p| p.seats() == 40));
        let coach = br#"{"coaches":[{"coach":"1","class":"a","rows":2.5,"layout":"AB"}]}"#;
        assert!(parse_put_train(coach).is_err());
        let long = serde_json::json!({"capacity": 1, "stations": ["A", "x".repeat(65)]});
        assert!(parse_put_train(long.to_string().as_bytes()).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
        let many = serde_json::json!({"capacity": 1, "stations": many});
        assert!(parse_put_train(many.to_string().as_bytes()).is_err());
        for bad in [
            &b""[..],
            br#"{}"#,
            br#"{"capacity":-1}"#,
            br#"{"capacity":0.5}"#,
            br#"{"capacity":1,"x":1}"#,
            br#"{"capacity":1000000001}"#,
            br#"{"capacity":1,"reset":"yes"}"#,
            br#"{"capacity":1,"stations":["A"]}"#,
            br#"{"capacity":1,"stations":[]}"#,
            br#"{"capacity":1,"stations":["A","A"]}"#,
            br#"{"capacity":1,"stations":["A",""]}"#,
            br#"{"capacity":1,"stations":["A","B\nC"]}"#,
            br#"{"capacity":1,"stations":"A,B"}"#,
            br#"{"capacity":1,"stations":["A",2]}"#,
            br#"{"capacity":1,"stations":null,"x":1}"#,
        ] {
            assert!(
                parse_put_train(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
