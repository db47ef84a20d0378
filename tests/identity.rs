//! Identity: with AUTH_JWT_SECRET set, buyers present an HS256 JWT; every
//! kind of bad token is a 401 with `WWW-Authenticate: Bearer`, a body naming
//! someone else is 403, and holds and reservations belong to their user.

mod common;

use common::{Harness, ADMIN_TOKEN};
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value as Json};

const SECRET: &str = "test-jwt-secret";

fn jwt(alg: Algorithm, secret: &str, claims: Json) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

fn token_for(user: &str) -> String {
    jwt(
        Algorithm::HS256,
        SECRET,
        json!({"sub": user, "exp": get_current_timestamp() + 600}),
    )
}

async fn start() -> Harness {
    let h = Harness::start_with(|c| c.auth_jwt_secret = Some(SECRET.to_owned())).await;
    h.create_train("id1", 10).await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_and_change_nothing() {
    let h = start().await;
    let later = get_current_timestamp() + 600;
    let cases = [
        ("missing", None),
        ("malformed", Some("not-a-jwt".to_owned())),
        (
            "wrong signature",
            Some(jwt(
                Algorithm::HS256,
                "other",
                json!({"sub": "u", "exp": later}),
            )),
        ),
        (
            "expired",
            Some(jwt(
                Algorithm::HS256,
                SECRET,
                json!({"sub": "u", "exp": 1_000_000}),
            )),
        ),
        (
            "no exp",
            Some(jwt(Algorithm::HS256, SECRET, json!({"sub": "u"}))),
        ),
        (
            "no sub",
            Some(jwt(Algorithm::HS256, SECRET, json!({"exp": later}))),
        ),
        (
            "empty sub",
            Some(jwt(
                Algorithm::HS256,
                SECRET,
                json!({"sub": "", "exp": later}),
            )),
        ),
        (
            "HS512",
            Some(jwt(
                Algorithm::HS512,
                SECRET,
                json!({"sub": "u", "exp": later}),
            )),
        ),
        // {"alg":"none"} with a valid-looking payload and no signature.
        (
            "alg none",
            Some(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ."
                    .to_owned(),
            ),
        ),
        ("admin token", Some(ADMIN_TOKEN.to_owned())),
    ];
    let id = "0b6f2a0e-5a4b-4c1e-9d8a-2f1e3c4b5a69";
    let endpoints = [
        (
            Method::POST,
            "/reserve".to_owned(),
            Some(json!({"train_id": "id1"})),
        ),
        (Method::POST, "/trains/id1/holds".to_owned(), None),
        (Method::GET, format!("/trains/id1/holds/{id}"), None),
        (Method::DELETE, format!("/trains/id1/holds/{id}"), None),
        (
            Method::POST,
            format!("/trains/id1/holds/{id}/confirm"),
            None,
        ),
        (Method::GET, format!("/trains/id1/reservations/{id}"), None),
        (
            Method::DELETE,
            format!("/trains/id1/reservations/{id}"),
            None,
        ),
    ];
    let before = h.all_keys().await;
    for (name, token) in &cases {
        for (method, path, body) in &endpoints {
            // The admin token opens reservations (read, cancel): not a 401 there.
            if *name == "admin token" && path.contains("/reservations/") {
                continue;
            }
            let (status, headers, reply) = h
                .call(method.clone(), path, body.clone(), token.as_deref())
                .await;
            assert_eq!(
                (status, reply["error"].clone()),
                (401, json!("unauthorized")),
                "{name}: {method} {path}"
            );
            assert_eq!(
                headers["www-authenticate"], "Bearer",
                "{name}: {method} {path}"
            );
        }
    }
    assert_eq!(before, h.all_keys().await, "no refused token changed a key");

    // The public parts stay public.
    assert_eq!(h.get("/trains/id1").await.0, 200);
    assert_eq!(h.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_is_the_tokens_sub_and_owns_what_it_makes() {
    let h = start().await;
    let (ann, bob) = (token_for("ann"), token_for("bob"));

    // The user comes from the token; a body naming someone else is 403.
    let (status, _, body) = h
        .call(
            Method::POST,
            "/reserve",
            Some(json!({"train_id": "id1", "user_id": "bob"})),
            Some(&ann),
        )
        .await;
    assert_eq!((status, body["error"].clone()), (403, json!("forbidden")));
    let (status, _, body) = h
        .call(
            Method::POST,
            "/reserve",
            Some(json!({"train_id": "id1", "user_id": "ann"})),
            Some(&ann),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let reservation = body["reservation_id"].as_str().expect("id").to_owned();
    let (status, _, body) = h
        .call(Method::POST, "/trains/id1/holds", None, Some(&ann))
        .await;
    assert_eq!(status, 201, "{body}");
    let hold = body["hold_id"].as_str().expect("id").to_owned();
    let train = h.train("id1").await;
    assert_eq!(train.reservations[&reservation]["user_id"], "ann");
    assert_eq!(train.holds[&hold]["user_id"], "ann");

    // Bob may not read, confirm, release or cancel Ann's.
    let before = h.all_keys().await;
    for (method, path) in [
        (Method::GET, format!("/trains/id1/holds/{hold}")),
        (Method::POST, format!("/trains/id1/holds/{hold}/confirm")),
        (Method::DELETE, format!("/trains/id1/holds/{hold}")),
        (
            Method::GET,
            format!("/trains/id1/reservations/{reservation}"),
        ),
        (
            Method::DELETE,
            format!("/trains/id1/reservations/{reservation}"),
        ),
    ] {
        let (status, _, body) = h.call(method.clone(), &path, None, Some(&bob)).await;
        assert_eq!(
            (status, body["error"].clone()),
            (403, json!("forbidden")),
            "{method} {path}"
        );
    }
    assert_eq!(before, h.all_keys().await, "a 403 changes nothing");

    // Ann may; the admin token may read and cancel reservations.
    let (status, _, _) = h
        .call(
            Method::POST,
            &format!("/trains/id1/holds/{hold}/confirm"),
            None,
            Some(&ann),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = {
        let (s, _, b) = h
            .call(
                Method::GET,
                &format!("/trains/id1/reservations/{reservation}"),
                None,
                Some(&ann),
            )
            .await;
        (s, b)
    };
    assert_eq!((status, body["user_id"].clone()), (200, json!("ann")));
    let (status, _, _) = h
        .call(
            Method::DELETE,
            &format!("/trains/id1/reservations/{hold}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "the admin cancels");
    h.train("id1").await.assert_invariants();
}
