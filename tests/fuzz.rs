//! Hostile input, generated: request parsing never panics, accepts only what
//! the contract allows, and over HTTP every rejection is a 4xx with the JSON
//! error body and no key change.

mod common;

use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};
use train_reservation::request::{self, MAX_SEATS};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        (-20i64..20).prop_map(Json::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,80}".prop_map(Json::from),
        "[A-Za-z0-9_.-]{0,70}".prop_map(Json::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::from),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects shaped like a reservation body: known fields with any values,
/// sometimes an unknown one.
fn reserve_body() -> impl Strategy<Value = Json> {
    (
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        proptest::option::of(prop_oneof![json_value(), (0u64..14).prop_map(Json::from)]),
        proptest::option::of(("[a-z]{1,8}", json_value())),
    )
        .prop_map(|(train, user, seats, extra)| {
            let mut body = Map::new();
            for (name, value) in [("train_id", train), ("user_id", user), ("seats", seats)] {
                if let Some(value) = value {
                    body.insert(name.into(), value);
                }
            }
            if let Some((name, value)) = extra {
                body.insert(name, value);
            }
            Json::Object(body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = request::parse_reserve(&bytes, "default");
        let _ = request::parse_put_train(&bytes);
        let _ = request::parse_idempotency_key(&bytes);
        let _ = request::check_admin(Some("token"), Some(&bytes));
    }

    #[test]
    fn what_parses_is_what_the_contract_allows(body in reserve_body()) {
        let bytes = serde_json::to_vec(&body).expect("json");
        if let Ok(reserve) = request::parse_reserve(&bytes, "default") {
            prop_assert!(request::valid_train_id(&reserve.train_id));
            prop_assert!((1..=MAX_SEATS).contains(&u64::from(reserve.seats)));
            let object = body.as_object().expect("object");
            prop_assert!(object.keys().all(|k| ["train_id", "user_id", "seats"].contains(&k.as_str())));
            if let Some(user) = &reserve.user_id {
                prop_assert!(!user.is_empty() && !user.chars().any(char::is_control));
            }
        }
    }
}

/// Requests a hostile client might send: any method, path, body and key.
fn http_request() -> impl Strategy<Value = (String, String, Vec<u8>, Option<String>)> {
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("DELETE"),
        Just("PATCH"),
        Just("OPTIONS")
    ]
    .prop_map(String::from);
    let path = prop_oneof![
        Just("/reserve".to_owned()),
        "/trains/[A-Za-z0-9_.%{}:-]{0,70}",
        "/[a-z/]{0,20}",
    ];
    let body = prop_oneof![
        reserve_body().prop_map(|b| serde_json::to_vec(&b).expect("json")),
        json_value().prop_map(|b| serde_json::to_vec(&b).expect("json")),
        proptest::collection::vec(any::<u8>(), 0..256),
    ];
    let key = proptest::option::of("[ -~]{0,300}");
    (method, path, body, key)
}

#[test]
fn over_http_every_rejection_is_a_json_4xx_that_changes_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let h = runtime.block_on(async {
        let h = common::Harness::start().await;
        // A sold-out train: a valid request is a 400 and books nothing.
        h.create_train("default", 0).await;
        h
    });
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((method, path, body, key) in http_request())| {
        runtime.block_on(async {
            let before = h.all_keys().await;
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request = h.http.request(method, h.url(&path)).body(body);
            if let Some(key) = &key {
                request = request.header("idempotency-key", key);
            }
            let Ok(response) = request.send().await else {
                return Ok(()); // the client library refused to send it
            };
            let (status, _, body) = common::parts(response).await;
            prop_assert!(status < 500, "{status} {body}");
            if status >= 400 {
                prop_assert!(body["error"].is_string() && body["detail"].is_string(), "{body}");
            }
            // Only a decision stored under an Idempotency-Key may write.
            let wrote_record = status == 400 && key.is_some();
            if status != 200 && !wrote_record {
                prop_assert_eq!(before, h.all_keys().await, "{} changed a key", status);
            }
            Ok(())
        })?;
    });
}
