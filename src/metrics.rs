//! Prometheus metrics: the families of the contract's table, kept in one
//! registry per running service and rendered by `GET /metrics` in the text
//! format (version 0.0.4).
//!
//! The registry and the exposition are `metrics-exporter-prometheus`'s, used
//! as a plain recorder (no global, no listener of its own): each `Server`
//! has its own, so tests that run many servers in one process never see each
//! other's counts, and `/metrics` is served by our router like any route.
//!
//! Shaped for the hot path: every series a request can touch is registered
//! once, at start-up, and kept as a handle, so recording an answer is a
//! lookup in a read-only table and a few atomic adds, with no lock and no
//! allocation. Registering at start-up is also what makes every family
//! (and each known label value) show at 0 before anything happened. Labels
//! are bounded by construction: `route` is a route pattern or `unmatched`,
//! `method` one of the standard methods or `other`, never anything a client
//! typed.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use hyper::{Method, StatusCode};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const HTTP_REQUESTS: &str = "train_reservation_http_requests_total";
pub const HTTP_DURATION: &str = "train_reservation_http_request_duration_seconds";
pub const SEATS_SOLD: &str = "train_reservation_seats_sold_total";
pub const SCRIPT_CALLS: &str = "train_reservation_script_calls_total";
pub const BATCH_SIZE: &str = "train_reservation_batch_size";
pub const REDIS_ERRORS: &str = "train_reservation_redis_errors_total";
pub const READY: &str = "train_reservation_ready";

/// The `route` label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Seconds: from a lone fast answer (~0.1 ms) to the request timeout's range.
const DURATION_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// How often recorded samples are folded into their buckets. Until then
/// each waits in the recorder's buffer (16 bytes a sample, one per answer
/// and one per script call), so the buffer grows with the request rate:
/// folding every 5 s, 58,000 answers/s took peak RSS to 15.2-15.9 MiB (14.1
/// after 28,000/s); every second, 12.0-12.3 after both. Folding costs the
/// same per sample either way.
const UPKEEP: Duration = Duration::from_secs(1);
/// Reservations per `reserve.lua` call: 1 up to `batch::MAX_BATCH` (64).
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The `method` label values; anything else is `other`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "other",
];

/// The statuses this API answers, for the direct-indexed table of series.
const STATUSES: [u16; 16] = [
    200, 201, 301, 400, 401, 403, 404, 405, 408, 409, 410, 413, 422, 429, 500, 503,
];

/// Why a request's Redis work failed: put in a response's extensions by the
/// code that turns a store error into a 503 or 500, and counted (as
/// `redis_errors_total{kind}`) where every answer is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailure {
    /// Unreachable, loading or too slow: 503.
    Unavailable,
    /// An error no retry fixes: 500.
    Failed,
}

impl RedisFailure {
    const KINDS: [&'static str; 2] = ["unavailable", "failed"];

    fn index(self) -> usize {
        match self {
            RedisFailure::Unavailable => 0,
            RedisFailure::Failed => 1,
        }
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The registry of one service, with a handle on every series it records.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Off only for `make bench`'s comparison (`METRICS=off`): answers are
    /// then not recorded, and the families stay at 0.
    recording: bool,
    /// `route` label values: the route patterns, then `unmatched`.
    routes: Vec<&'static str>,
    /// `http_requests_total` by (route, method, status), indexed by
    /// `slot`, for the answers the API documents; others are registered
    /// when they first happen.
    requests: Vec<Option<Counter>>,
    /// `http_request_duration_seconds` by route.
    durations: Vec<Histogram>,
    seats_sold: Counter,
    script_calls: Vec<Counter>,
    batch_size: Histogram,
    redis_errors: [Counter; 2],
    ready: Gauge,
}

impl Metrics {
    /// Registers every family at 0. `routes`: the route patterns, in the
    /// router's order; `scripts`: the Lua scripts' names, in the store's
    /// order; `answers`: the (method, route index, status) the API documents.
    pub fn new(
        recording: bool,
        routes: &[&'static str],
        scripts: &[&'static str],
        answers: impl IntoIterator<Item = (Method, usize, u16)>,
    ) -> Metrics {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &DURATION_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &BATCH_BUCKETS)
            });
        // Only an empty bucket list is refused, and ours are constants.
        let recorder = builder
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let describe = [
            (
                HTTP_REQUESTS,
                "Answered HTTP requests, by method, route pattern and status.",
            ),
            (
                HTTP_DURATION,
                "Time from request to response, by route pattern.",
            ),
            (
                SEATS_SOLD,
                "Seats of new reservations (200s that are not replays, confirms included).",
            ),
            (SCRIPT_CALLS, "Lua script calls sent to Redis, by script."),
            (
                BATCH_SIZE,
                "Reservations carried by one reserve.lua call (group commit).",
            ),
            (
                REDIS_ERRORS,
                "Failed Redis calls that answered 503 (unavailable) or 500 (failed).",
            ),
            (
                READY,
                "1 while the service is ready (Redis answers, scripts loaded), else 0.",
            ),
        ];
        for (name, help) in describe {
            let (name, help) = (KeyName::from(name), SharedString::from(help));
            match name.as_str() {
                HTTP_DURATION | BATCH_SIZE => recorder.describe_histogram(name, None, help),
                READY => recorder.describe_gauge(name, None, help),
                _ => recorder.describe_counter(name, None, help),
            }
        }

        let mut route_labels = routes.to_vec();
        route_labels.push(UNMATCHED);
        let mut metrics = Metrics {
            durations: route_labels
                .iter()
                .map(|route| {
                    let key = Key::from_parts(HTTP_DURATION, vec![Label::new("route", *route)]);
                    recorder.register_histogram(&key, &METADATA)
                })
                .collect(),
            seats_sold: recorder.register_counter(&Key::from_static_name(SEATS_SOLD), &METADATA),
            script_calls: scripts
                .iter()
                .map(|script| {
                    let key = Key::from_parts(SCRIPT_CALLS, vec![Label::new("script", *script)]);
                    recorder.register_counter(&key, &METADATA)
                })
                .collect(),
            batch_size: recorder.register_histogram(&Key::from_static_name(BATCH_SIZE), &METADATA),
            redis_errors: RedisFailure::KINDS.map(|kind| {
                let key = Key::from_parts(REDIS_ERRORS, vec![Label::new("kind", kind)]);
                recorder.register_counter(&key, &METADATA)
            }),
            ready: recorder.register_gauge(&Key::from_static_name(READY), &METADATA),
            requests: Vec::new(),
            routes: route_labels,
            recording,
            recorder,
            handle,
        };
        metrics.requests = vec![None; metrics.routes.len() * METHODS.len() * STATUSES.len()];
        for (method, route, status) in answers {
            let at = (route, method_index(&method), status);
            if let Some(slot) = metrics.slot(at) {
                metrics.requests[slot] = Some(metrics.register_request(at));
            }
        }
        metrics.ready.set(0.0);
        metrics
    }

    /// Whether answers are recorded: `METRICS=off` turns it off, for
    /// benchmarks that measure what recording costs. Read once, at start-up.
    pub fn recording_from_env() -> bool {
        std::env::var("METRICS").map_or(true, |v| !v.eq_ignore_ascii_case("off"))
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// One answered request: `route` is the index of its pattern (the
    /// number of routes for `unmatched`).
    pub fn answered(
        &self,
        method: &Method,
        route: usize,
        status: StatusCode,
        elapsed: Duration,
        failure: Option<RedisFailure>,
    ) {
        if !self.recording {
            return;
        }
        let route = route.min(self.routes.len() - 1);
        let at = (route, method_index(method), status.as_u16());
        match self.slot(at).and_then(|slot| self.requests[slot].as_ref()) {
            Some(counter) => counter.increment(1),
            // Not a documented answer (a 405, an unknown method): the
            // registry creates the series once and finds it after that.
            None => self.register_request(at).increment(1),
        }
        self.durations[route].record(elapsed.as_secs_f64());
        if let Some(failure) = failure {
            self.redis_errors[failure.index()].increment(1);
        }
    }

    /// One Lua script call sent to Redis; `script` indexes the names given
    /// to `new`.
    pub fn script_call(&self, script: Option<usize>) {
        if let Some(counter) = script.and_then(|at| self.script_calls.get(at)) {
            if self.recording {
                counter.increment(1);
            }
        }
    }

    /// One `reserve.lua` call carrying `reservations`.
    pub fn batch(&self, reservations: usize) {
        if self.recording {
            self.batch_size.record(reservations as f64);
        }
    }

    /// Seats of a new reservation (not a replay).
    pub fn seats_sold(&self, seats: impl TryInto<u64>) {
        if self.recording {
            self.seats_sold.increment(seats.try_into().unwrap_or(0));
        }
    }

    /// The readiness gauge (recorded even when recording is off: it is not
    /// on any request's path).
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(if ready { 1.0 } else { 0.0 });
    }

    /// The exposition, in Prometheus text format 0.0.4, in a fixed order
    /// (see `in_order`).
    pub fn render(&self) -> String {
        in_order(&self.handle.render())
    }

    /// Folds recorded histogram samples into their buckets. `render` does it
    /// too; this bounds the memory they take when nobody scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Runs `upkeep` every `UPKEEP` for as long as the metrics live.
    pub fn spawn_upkeep(metrics: &Arc<Metrics>) {
        let metrics: Weak<Metrics> = Arc::downgrade(metrics);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                match metrics.upgrade() {
                    Some(metrics) => metrics.upkeep(),
                    None => return,
                }
            }
        });
    }

    /// Where a (route, method, status) series sits in `requests`.
    fn slot(&self, (route, method, status): (usize, usize, u16)) -> Option<usize> {
        let status = STATUSES.iter().position(|s| *s == status)?;
        let slot = (route * METHODS.len() + method) * STATUSES.len() + status;
        (route < self.routes.len()).then_some(slot)
    }

    fn register_request(&self, (route, method, status): (usize, usize, u16)) -> Counter {
        let labels = vec![
            Label::new("method", METHODS[method]),
            Label::new("route", self.routes[route]),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(&Key::from_parts(HTTP_REQUESTS, labels), &METADATA)
    }
}

/// The exporter's exposition with its families in name order and each
/// family's series in label order, the way Prometheus's own clients write
/// it. The exporter's order follows its hash maps, so it changed from one
/// start, and one scrape, to the next: an operator reading `/metrics` by
/// eye could not find a series where it was the last time. A histogram's
/// lines for one label set stay together, in the exporter's order (buckets
/// by `le`, then `_sum` and `_count`). Scrapes are rare and the text a few
/// hundred lines, so sorting it costs nothing that matters.
fn in_order(text: &str) -> String {
    let mut families: Vec<(String, Vec<&str>)> = text
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|lines| !lines.is_empty())
        .map(|lines| (family_name(lines[0]).to_owned(), lines))
        .collect();
    families.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(text.len());
    for (_, lines) in &mut families {
        let head = lines
            .iter()
            .take_while(|line| line.starts_with('#'))
            .count();
        let mut series: Vec<_> = lines[head..]
            .iter()
            .enumerate()
            .map(|(at, line)| (series_order(line), at, *line))
            .collect();
        series.sort();
        for line in lines[..head]
            .iter()
            .chain(series.iter().map(|(_, _, line)| line))
        {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// The family a block's first line names: `# HELP name ...`, `# TYPE name
/// ...`, or a series `name{...} value`.
fn family_name(line: &str) -> &str {
    match line.strip_prefix("# ") {
        Some(comment) => comment.split_whitespace().nth(1).unwrap_or(""),
        None => line.split(['{', ' ']).next().unwrap_or(""),
    }
}

/// Where a series line sorts in its family: by its labels other than `le`,
/// then a histogram's buckets before its `_sum` and `_count`.
fn series_order(line: &str) -> (String, u8) {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let rank = match &line[..name_end] {
        name if name.ends_with("_sum") => 1,
        name if name.ends_with("_count") => 2,
        _ => 0,
    };
    let mut labels = String::new();
    if line[name_end..].starts_with('{') {
        // Label values are quoted, with `\"` and `\\` escaped, and route
        // patterns hold braces: the set ends at the first `}` outside quotes.
        let (mut quoted, mut escaped, mut pair) = (false, false, String::new());
        for c in line[name_end + 1..].chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ',' | '}' if !quoted => {
                    if !pair.starts_with("le=") {
                        labels.push_str(&pair);
                        labels.push(',');
                    }
                    pair.clear();
                    if c == '}' {
                        break;
                    }
                    continue;
                }
                _ => {}
            }
            pair.push(c);
        }
    }
    (labels, rank)
}

fn method_index(method: &Method) -> usize {
    let name = method.as_str();
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == name)
        .unwrap_or(METHODS.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(
            true,
            &["/reserve", "/trains/{id}"],
            &["reserve", "train"],
            [(Method::POST, 0, 200), (Method::GET, 1, 404)],
        )
    }

    #[test]
    fn every_family_is_there_from_the_start() {
        let text = metrics().render();
        for family in [
            HTTP_REQUESTS,
            HTTP_DURATION,
            SEATS_SOLD,
            SCRIPT_CALLS,
            BATCH_SIZE,
            REDIS_ERRORS,
            READY,
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family}:\n{text}"
            );
        }
        for series in [
            r#"train_reservation_http_requests_total{method="POST",route="/reserve",status="200"} 0"#,
            r#"train_reservation_script_calls_total{script="train"} 0"#,
            r#"train_reservation_redis_errors_total{kind="failed"} 0"#,
            r#"train_reservation_http_request_duration_seconds_count{route="unmatched"} 0"#,
            "train_reservation_batch_size_count 0",
            "train_reservation_ready 0",
        ] {
            assert!(text.contains(series), "{series}:\n{text}");
        }
    }

    #[test]
    fn labels_stay_bounded() {
        let m = metrics();
        let weird = Method::from_bytes(b"BREW").expect("a method token");
        m.answered(
            &weird,
            99,
            StatusCode::METHOD_NOT_ALLOWED,
            Duration::ZERO,
            None,
        );
        m.answered(
            &Method::POST,
            0,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(3),
            Some(RedisFailure::Unavailable),
        );
        let text = m.render();
        assert!(text.contains(
            r#"train_reservation_http_requests_total{method="other",route="unmatched",status="405"} 1"#
        ), "{text}");
        assert!(text.contains(r#"train_reservation_redis_errors_total{kind="unavailable"} 1"#));
        assert!(!text.contains("BREW"));
    }

    #[test]
    fn families_and_series_come_in_order() {
        let exporter = concat!(
            "# HELP b_seconds Time.\n# TYPE b_seconds histogram\n",
            "b_seconds_bucket{route=\"/z\",le=\"1\"} 0\nb_seconds_bucket{route=\"/z\",le=\"+Inf\"} 0\n",
            "b_seconds_sum{route=\"/z\"} 0\nb_seconds_count{route=\"/z\"} 0\n",
            "b_seconds_bucket{route=\"/t/{id}\",le=\"1\"} 2\nb_seconds_bucket{route=\"/t/{id}\",le=\"+Inf\"} 3\n",
            "b_seconds_sum{route=\"/t/{id}\"} 4\nb_seconds_count{route=\"/t/{id}\"} 3\n\n",
            "# TYPE a_total counter\n",
            "a_total{method=\"POST\",status=\"200\"} 1\na_total{method=\"GET\",status=\"404\"} 2\n",
            "a_total{method=\"GET\",status=\"200\"} 3\n\n",
            "# TYPE c gauge\nc 1\n\n",
        );
        assert_eq!(
            in_order(exporter),
            concat!(
                "# TYPE a_total counter\n",
                "a_total{method=\"GET\",status=\"200\"} 3\na_total{method=\"GET\",status=\"404\"} 2\n",
                "a_total{method=\"POST\",status=\"200\"} 1\n\n",
                "# HELP b_seconds Time.\n# TYPE b_seconds histogram\n",
                "b_seconds_bucket{route=\"/t/{id}\",le=\"1\"} 2\nb_seconds_bucket{route=\"/t/{id}\",le=\"+Inf\"} 3\n",
                "b_seconds_sum{route=\"/t/{id}\"} 4\nb_seconds_count{route=\"/t/{id}\"} 3\n",
                "b_seconds_bucket{route=\"/z\",le=\"1\"} 0\nb_seconds_bucket{route=\"/z\",le=\"+Inf\"} 0\n",
                "b_seconds_sum{route=\"/z\"} 0\nb_seconds_count{route=\"/z\"} 0\n\n",
                "# TYPE c gauge\nc 1\n\n",
            )
        );
        // The service's own exposition: the same text from two registries
        // that recorded the same (so in the same order), families by name.
        let (one, two) = (metrics(), metrics());
        for m in [&one, &two] {
            m.answered(&Method::POST, 0, StatusCode::OK, Duration::ZERO, None);
        }
        let text = one.render();
        assert_eq!(text, two.render());
        let families: Vec<_> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .collect();
        let mut sorted = families.clone();
        sorted.sort();
        assert_eq!(families, sorted);
    }

    #[test]
    fn recording_off_records_nothing() {
        let m = Metrics::new(false, &["/reserve"], &["reserve"], [(Method::POST, 0, 200)]);
        m.answered(&Method::POST, 0, StatusCode::OK, Duration::ZERO, None);
        m.script_call(Some(0));
        m.seats_sold(1u8);
        m.batch(1);
        let text = m.render();
        assert!(text.contains(
            r#"train_reservation_http_requests_total{method="POST",route="/reserve",status="200"} 0"#
        ));
        assert!(
            text.contains("train_reservation_seats_sold_total 0"),
            "{text}"
        );
    }
}
