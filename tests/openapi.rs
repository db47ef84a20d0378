//! `/openapi.json` and the router agree, both ways: every operation the
//! document lists is answered (not 404 `not_found`, not 405) with a status
//! the document lists for it, and every route of the router's own table
//! (`api::ROUTES`, from which it takes its `Allow` headers) is documented
//! with exactly its methods.

mod common;

use std::collections::BTreeSet;

use common::{Harness, ADMIN_TOKEN};
use reqwest::{header::AUTHORIZATION, Method};
use serde_json::{json, Value as Json};
use train_reservation::api::ROUTES;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// A request path for a route pattern, with sample values.
fn instantiate(pattern: &str) -> String {
    pattern
        .replace("{id}", "default")
        .replace("{hold_id}", &uuid::Uuid::new_v4().to_string())
        .replace("{reservation_id}", &uuid::Uuid::new_v4().to_string())
        .replace("{file}", "index.css")
}

/// The document's operations, as (path, lower-case method).
fn operations(document: &Json) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item");
            item.keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .map(|method| (path.clone(), method.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn the_document_and_the_router_agree_both_ways() {
    let h = Harness::start().await;
    let (status, document) = h.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let documented = operations(&document);

    // Document -> server: each operation is answered, with a documented status.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (path, method) in &documented {
        let url = h.url(&instantiate(path));
        let mut request = http
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                &url,
            )
            .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"));
        if path == "/trains/{id}" && method == "put" {
            request = request.json(&json!({"capacity": 5}));
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        let error = serde_json::from_str::<Json>(&body)
            .ok()
            .and_then(|b| b["error"].as_str().map(str::to_owned));
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert_ne!(
            error.as_deref(),
            Some("not_found"),
            "{method} {path}: {body}"
        );
        let responses = &document["paths"][path][method]["responses"];
        assert!(
            responses.get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which is not documented: {body}"
        );
    }

    // Server -> document: each route of the router's table, with its methods
    // (HEAD is GET without a body, as HTTP defines it: OpenAPI lists GET).
    let mut routed = BTreeSet::new();
    for route in ROUTES {
        for method in route.allow.split(", ") {
            if method == "HEAD" {
                assert!(route.allow.contains("GET"), "{}", route.pattern);
                continue;
            }
            routed.insert((route.pattern.to_owned(), method.to_lowercase()));
        }
    }
    assert_eq!(
        routed, documented,
        "left: routed by the server; right: in /openapi.json"
    );

    // And a GET route answers HEAD too.
    for route in ROUTES.iter().filter(|r| r.allow.contains("HEAD")) {
        let url = h.url(&instantiate(route.pattern));
        let response = http.head(&url).send().await.expect("HEAD");
        assert_ne!(response.status().as_u16(), 405, "HEAD {}", route.pattern);
    }
}

#[tokio::test]
async fn swagger_ui_is_served_by_the_service_itself() {
    let h = Harness::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = http.get(h.url("/docs")).send().await.expect("GET /docs");
    assert_eq!(response.status().as_u16(), 301);
    assert_eq!(response.headers()["location"], "docs/");

    let page = h.http.get(h.url("/docs")).send().await.expect("GET /docs");
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.url().path(), "/docs/");
    let html = page.text().await.expect("page");
    // Every script and style the page loads is ours, relative to /docs/.
    for asset in [
        "./swagger-ui.css",
        "./swagger-ui-bundle.js",
        "./swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset}");
        let url = h.url(&format!("/docs/{}", asset.trim_start_matches("./")));
        let response = h.http.get(url).send().await.expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{asset}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let init = h
        .http
        .get(h.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("js");
    let init = init.text().await.expect("js");
    assert!(init.contains(r#""url": "/openapi.json""#), "{init}");
    assert!(init.contains(r#""docExpansion": "list""#), "{init}");

    let (status, body) = h.get("/docs/no-such-file.js").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}
