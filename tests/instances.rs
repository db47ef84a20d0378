//! Many instances of the service on one Redis, and on a Redis Cluster: three
//! servers (in-process, each on its own port, each with its own pool and
//! group-commit queues) sell one train at once and never sell more than its
//! capacity. Nothing is shared between them but Redis, so this is the
//! guarantee that lets the service scale out.

mod common;

use std::collections::BTreeSet;

use common::{cluster::Cluster, Harness};
use serde_json::json;
use tokio::task::JoinSet;
use train_reservation::{Config, Server};

const CAPACITY: usize = 100;
const REQUESTS: usize = 300;

/// `count` more instances beside the harness's own, against the same Redis.
async fn more_instances(h: &Harness, count: usize) -> Vec<Server> {
    let mut servers = Vec::new();
    for _ in 0..count {
        let server = Server::start(Config::for_tests(&h.redis_url), &h.redis_url)
            .await
            .expect("server starts");
        common::wait_until_ready(&h.http, &format!("{}/readyz", server.url())).await;
        servers.push(server);
    }
    servers
}

/// `REQUESTS` one-seat reservations of train `shared`, round-robin over the
/// instances, all at once; then exactly `CAPACITY` of them won.
async fn hammer_one_train(h: &Harness, others: &[Server]) {
    h.create_train("shared", CAPACITY as u64).await;
    let mut urls = vec![h.server().url()];
    urls.extend(others.iter().map(Server::url));
    let mut tasks = JoinSet::new();
    for i in 0..REQUESTS {
        let (http, url) = (h.http.clone(), format!("{}/reserve", urls[i % urls.len()]));
        tasks.spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"train_id": "shared", "user_id": format!("u{i}")}))
                .send()
                .await
                .expect("POST /reserve");
            common::parts(response).await
        });
    }
    let mut won = BTreeSet::new();
    let mut sold_out = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, _, body) = result.expect("request task");
        match status {
            200 => {
                won.insert(body["reservation_id"].as_str().expect("id").to_owned());
            }
            400 => {
                assert_eq!(body["error"], "sold_out");
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won.len(), CAPACITY, "exactly the capacity is sold");
    assert_eq!(sold_out, REQUESTS - CAPACITY);

    let train = h.train("shared").await;
    assert_eq!((train.stock, train.sold), (Some(0), Some(CAPACITY as i64)));
    assert_eq!(train.lock, None);
    let stored: BTreeSet<String> = train.reservations.keys().cloned().collect();
    assert_eq!(stored, won, "every 200 is stored, and nothing else");
    train.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_redis_sell_exactly_the_capacity() {
    let h = Harness::start().await;
    let others = more_instances(&h, 2).await;
    hammer_one_train(&h, &others).await;
    for server in others {
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_cluster_sell_exactly_the_capacity() {
    let cluster = Cluster::start(false);
    let h = Harness::start_on(&cluster.url(), |_| {}).await;
    let others = more_instances(&h, 2).await;
    hammer_one_train(&h, &others).await;
    for server in others {
        server.shutdown().await;
    }
}
