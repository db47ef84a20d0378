//! train-reservation: sells the last seats of a train to a swarm of buyers at
//! once and never oversells.
//!
//! Each reservation is one Redis Lua script (`lua/reserve.lua`), so the check
//! and the decrement can never interleave with another buyer's. The modules,
//! in the order a request meets them:
//!
//! - [`config`]: flags and environment variables of the contract;
//! - [`server`]: listening, start-up against Redis, graceful shutdown;
//! - [`connection`]: a connection's read deadline and header limit;
//! - [`api`]: the routing table, and one module of handlers per resource;
//! - [`identity`]: who is buying, from a verified JWT;
//! - [`rate_limit`]: RATE_LIMIT_PER_CLIENT, leased from Redis in chunks;
//! - [`request`]: parsing and validating what clients send;
//! - [`seats`]: coach layouts, seat ids, and seat maps of numbered trains;
//! - [`respond`]: the JSON responses and error bodies;
//! - [`batch`]: group commit, many queued requests in one script call;
//! - [`coalesce`]: one fetch shared by every caller of a short window (the
//!   seat map's per-train snapshots);
//! - [`store`]: the Redis pool and one typed call per Lua script;
//! - [`error`]: why a Redis call gave no answer (the store's and `batch`'s);
//! - [`embedded`]: the private redis-server used when no REDIS_URL is given;
//! - [`metrics`]: the Prometheus registry behind `GET /metrics`;
//! - [`logging`]: text or JSON log lines, and masking passwords out of them;
//! - [`probe`]: `train-reservation healthcheck`, the container's readiness probe.
//!
//! `GET /openapi.json` and `GET /docs` (Swagger UI) are generated from the
//! handlers' annotations, in `api`.

pub mod api;
pub mod batch;
pub mod coalesce;
pub mod config;
pub mod connection;
pub mod embedded;
pub mod error;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod probe;
pub mod rate_limit;
pub mod request;
pub mod respond;
pub mod seats;
pub mod server;
pub mod store;

pub use config::Config;
pub use embedded::EmbeddedRedis;
pub use server::Server;
