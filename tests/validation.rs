//! Bad input: every malformed request gets the right 4xx with the contract's
//! JSON error body, and no key in Redis changes.

mod common;

use common::{Harness, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::json;

/// A well-formed id that names nothing.
const NO_ID: &str = "0b6f2a0e-5a4b-4c1e-9d8a-2f1e3c4b5a69";

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    error: &'static str,
}

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    body: Option<&str>,
    status: u16,
    error: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        headers: vec![],
        body: body.map(|b| b.as_bytes().to_vec()),
        status,
        error,
    }
}

fn with_header(mut c: Case, name: &'static str, value: &str) -> Case {
    c.headers.push((name, value.to_owned()));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_json_4xx_and_change_nothing() {
    let h = Harness::start().await;
    h.create_train("t1", 5).await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let post = Method::POST;
    let admin = |c: Case| with_header(c, "authorization", &bearer);
    let long_id = format!(r#"{{"train_id":"{}"}}"#, "a".repeat(65));
    let huge = format!(r#"{{"user_id":"{}"}}"#, "x".repeat(17 * 1024));
    #[rustfmt::skip]
    let cases = vec![
        case("malformed JSON", post.clone(), "/reserve", Some("{"), 422, "invalid_request"),
        case("not an object", post.clone(), "/reserve", Some("[1,2]"), 422, "invalid_request"),
        case("not UTF-8", post.clone(), "/reserve", Some("\u{0}\u{1}"), 422, "invalid_request"),
        case("seats as string", post.clone(), "/reserve", Some(r#"{"train_id":"t1","seats":"2"}"#), 422, "invalid_request"),
        case("seats as float", post.clone(), "/reserve", Some(r#"{"train_id":"t1","seats":1.5}"#), 422, "invalid_request"),
        case("seats zero", post.clone(), "/reserve", Some(r#"{"train_id":"t1","seats":0}"#), 422, "invalid_request"),
        case("seats eleven", post.clone(), "/reserve", Some(r#"{"train_id":"t1","seats":11}"#), 422, "invalid_request"),
        case("seats negative", post.clone(), "/reserve", Some(r#"{"train_id":"t1","seats":-1}"#), 422, "invalid_request"),
        case("seats huge", post.clone(), "/reserve", Some(r#"{"train_id":"t1","seats":1e400}"#), 422, "invalid_request"),
        case("unknown field", post.clone(), "/reserve", Some(r#"{"train_id":"t1","price":3}"#), 422, "invalid_request"),
        case("train id number", post.clone(), "/reserve", Some(r#"{"train_id":1}"#), 422, "invalid_request"),
        case("train id with brace", post.clone(), "/reserve", Some(r#"{"train_id":"t1}:x{"}"#), 422, "invalid_request"),
        case("train id too long", post.clone(), "/reserve", Some(&long_id), 422, "invalid_request"),
        case("train id empty", post.clone(), "/reserve", Some(r#"{"train_id":""}"#), 422, "invalid_request"),
        case("user id empty", post.clone(), "/reserve", Some(r#"{"train_id":"t1","user_id":""}"#), 422, "invalid_request"),
        case("user id number", post.clone(), "/reserve", Some(r#"{"train_id":"t1","user_id":42}"#), 422, "invalid_request"),
        with_header(case("idempotency key too long", post.clone(), "/reserve", Some(r#"{"train_id":"t1"}"#), 422, "invalid_request"), "idempotency-key", &"k".repeat(256)),
        with_header(case("idempotency key with space", post.clone(), "/reserve", Some(r#"{"train_id":"t1"}"#), 422, "invalid_request"), "idempotency-key", "a b"),
        case("body over 16 KiB", post.clone(), "/reserve", Some(&huge), 413, "body_too_large"),
        case("unknown train", post.clone(), "/reserve", Some(r#"{"train_id":"nope"}"#), 404, "unknown_train"),
        case("GET /reserve", Method::GET, "/reserve", None, 405, "method_not_allowed"),
        case("DELETE /trains/t1", Method::DELETE, "/trains/t1", None, 405, "method_not_allowed"),
        case("POST /healthz", post.clone(), "/healthz", None, 405, "method_not_allowed"),
        case("unknown path", Method::GET, "/nope", None, 404, "not_found"),
        case("trains without id", Method::GET, "/trains/", None, 404, "not_found"),
        case("nested train path", Method::GET, "/trains/t1/x", None, 404, "not_found"),
        case("bad train id in path", Method::GET, "/trains/a%7Bb", None, 422, "invalid_request"),
        case("unknown train in path", Method::GET, "/trains/nope", None, 404, "unknown_train"),
        case("PUT without token", Method::PUT, "/trains/t2", Some(r#"{"capacity":3}"#), 401, "unauthorized"),
        with_header(case("PUT with wrong token", Method::PUT, "/trains/t2", Some(r#"{"capacity":3}"#), 401, "unauthorized"), "authorization", "Bearer nope"),
        admin(case("PUT existing train", Method::PUT, "/trains/t1", Some(r#"{"capacity":3}"#), 409, "exists")),
        admin(case("PUT without body", Method::PUT, "/trains/t2", None, 422, "invalid_request")),
        admin(case("PUT negative capacity", Method::PUT, "/trains/t2", Some(r#"{"capacity":-3}"#), 422, "invalid_request")),
        admin(case("PUT unknown field", Method::PUT, "/trains/t2", Some(r#"{"capacity":3,"x":1}"#), 422, "invalid_request")),
        admin(case("PUT bad train id", Method::PUT, "/trains/a%20b", Some(r#"{"capacity":3}"#), 422, "invalid_request")),
        case("hold ttl too short", post.clone(), "/trains/t1/holds", Some(r#"{"ttl_ms":999}"#), 422, "invalid_request"),
        case("hold ttl too long", post.clone(), "/trains/t1/holds", Some(r#"{"ttl_ms":900001}"#), 422, "invalid_request"),
        case("hold ttl as string", post.clone(), "/trains/t1/holds", Some(r#"{"ttl_ms":"5000"}"#), 422, "invalid_request"),
        case("hold ttl as float", post.clone(), "/trains/t1/holds", Some(r#"{"ttl_ms":1500.5}"#), 422, "invalid_request"),
        case("hold seats zero", post.clone(), "/trains/t1/holds", Some(r#"{"seats":0}"#), 422, "invalid_request"),
        case("hold seats eleven", post.clone(), "/trains/t1/holds", Some(r#"{"seats":11}"#), 422, "invalid_request"),
        case("hold names a train", post.clone(), "/trains/t1/holds", Some(r#"{"train_id":"t1"}"#), 422, "invalid_request"),
        case("hold user id empty", post.clone(), "/trains/t1/holds", Some(r#"{"user_id":""}"#), 422, "invalid_request"),
        case("hold malformed JSON", post.clone(), "/trains/t1/holds", Some("{"), 422, "invalid_request"),
        with_header(case("hold idempotency key", post.clone(), "/trains/t1/holds", None, 422, "invalid_request"), "idempotency-key", "a b"),
        case("hold on unknown train", post.clone(), "/trains/nope/holds", None, 404, "unknown_train"),
        case("hold on bad train id", post.clone(), "/trains/a%7Bb/holds", None, 422, "invalid_request"),
        case("GET /trains/t1/holds", Method::GET, "/trains/t1/holds", None, 405, "method_not_allowed"),
        case("hold id not a UUID", Method::GET, "/trains/t1/holds/nope", None, 422, "invalid_request"),
        case("release id not a UUID", Method::DELETE, "/trains/t1/holds/1", None, 422, "invalid_request"),
        case("confirm id not a UUID", post.clone(), "/trains/t1/holds/x/confirm", None, 422, "invalid_request"),
        case("PATCH a hold", Method::PATCH, &format!("/trains/t1/holds/{NO_ID}"), None, 405, "method_not_allowed"),
        case("GET a confirm", Method::GET, &format!("/trains/t1/holds/{NO_ID}/confirm"), None, 405, "method_not_allowed"),
        case("unknown hold", Method::GET, &format!("/trains/t1/holds/{NO_ID}"), None, 404, "unknown_hold"),
        case("release unknown hold", Method::DELETE, &format!("/trains/t1/holds/{NO_ID}"), None, 404, "unknown_hold"),
        case("confirm unknown hold", post.clone(), &format!("/trains/t1/holds/{NO_ID}/confirm"), None, 404, "unknown_hold"),
        case("confirm on unknown train", post.clone(), &format!("/trains/nope/holds/{NO_ID}/confirm"), None, 404, "unknown_train"),
        case("reservation id not a UUID", Method::GET, "/trains/t1/reservations/r-1", None, 422, "invalid_request"),
        case("cancel id not a UUID", Method::DELETE, "/trains/t1/reservations/%20", None, 422, "invalid_request"),
        case("unknown reservation", Method::GET, &format!("/trains/t1/reservations/{NO_ID}"), None, 404, "unknown_reservation"),
        case("cancel unknown reservation", Method::DELETE, &format!("/trains/t1/reservations/{NO_ID}"), None, 404, "unknown_reservation"),
        case("POST a reservation", post.clone(), &format!("/trains/t1/reservations/{NO_ID}"), None, 405, "method_not_allowed"),
    ];

    let before = h.all_keys().await;
    for c in &cases {
        let mut request = h.http.request(c.method.clone(), h.url(&c.path));
        for (name, value) in &c.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &c.body {
            request = request.body(body.clone());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let content_type = response.headers().get("content-type").cloned();
        let (status, headers, body) = common::parts(response).await;
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert_eq!(body["error"], c.error, "{}: {body}", c.name);
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: detail",
            c.name
        );
        assert_eq!(
            content_type.as_ref().map(|v| v.as_bytes()),
            Some(&b"application/json"[..]),
            "{}",
            c.name
        );
        if status == 405 {
            assert!(headers.contains_key("allow"), "{}: Allow header", c.name);
        }
        if status == 401 {
            assert!(headers.contains_key("www-authenticate"), "{}", c.name);
        }
    }
    assert_eq!(before, h.all_keys().await, "no bad request changed a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_before_they_are_read() {
    let h = Harness::start().await;
    // Declares 10 MB and sends none of it: the answer must not wait for it.
    let reply = common::raw_request(
        h.server().addr(),
        b"POST /reserve HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains(r#""error":"body_too_large""#), "{reply}");

    // Chunked, with no declared length: refused while reading.
    let mut chunked =
        b"POST /reserve HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        chunked.extend_from_slice(format!("1000\r\n{}\r\n", "x".repeat(4096)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = common::raw_request(h.server().addr(), &chunked).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_are_off_without_a_token() {
    let h = Harness::start_with(|c| c.admin_token = None).await;
    let before = h.all_keys().await;
    for auth in [None, Some("Bearer "), Some("Bearer anything")] {
        let mut request = h
            .http
            .put(h.url("/trains/t9"))
            .json(&json!({"capacity": 3}));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let (status, _, body) = common::parts(request.send().await.expect("PUT")).await;
        assert_eq!(
            (status, body["error"].clone()),
            (403, json!("forbidden")),
            "{auth:?}"
        );
    }
    assert_eq!(before, h.all_keys().await);
}
