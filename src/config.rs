//! Configuration: every knob of the external contract, by flag or environment
//! variable (the flag wins), with the contract's defaults.
//!
//! One plain struct, parsed once at start-up by clap and then passed by value, so
//! tests can build a `Config` by hand (`Config::for_tests`) without touching the
//! process environment. The command line itself is [`Cli`]: that `Config`
//! flattened, plus an optional subcommand (`healthcheck`, the container
//! probe), so `Config` stays a flat list of the service's options.
//!
//! Secrets (ADMIN_TOKEN) that are set but empty count as unset: Compose and
//! `.env` files easily pass `VAR=` for "not configured", and an empty string
//! must never become a token anyone can present. clap cannot map a value to
//! "absent", so [`Config::normalised`] does it right after parsing: every
//! secret added later belongs there too.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;

/// Sells the last seats of a train to a swarm of buyers at once, never overselling.
///
/// Every reservation is one atomic Redis Lua script. With no REDIS_URL the service
/// starts its own private redis-server (data under ./data/redis).
#[derive(Parser, Debug, Clone)]
#[command(name = "train-reservation", version, about, long_about = None,
          subcommand_help_heading = "Commands (without one: run the service)")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Probe a running service: exit 0 when it is ready (the container HEALTHCHECK)
    ///
    /// GET /readyz with a 1 s deadline: exit 0 on a 200; exit 1 on anything
    /// else (another status, connection refused, no answer in time), with the
    /// reason on stderr. Starts nothing: no Redis, no listener.
    Healthcheck {
        /// URL to probe, http://HOST:PORT/PATH only. Default: /readyz on
        /// BIND_ADDR (--bind), with 0.0.0.0 probed as 127.0.0.1 and [::] as [::1].
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

impl Cli {
    /// The process's command line and environment, [`Config::normalised`].
    /// On a bad flag or value clap prints why and exits with status 2.
    pub fn load() -> Cli {
        let mut cli = Cli::parse();
        cli.config = cli.config.normalised();
        cli
    }
}

/// The service's options (also parsable alone: see `Config::for_tests`).
#[derive(Parser, Debug, Clone)]
#[command(name = "train-reservation")]
pub struct Config {
    /// HTTP listen address (Docker sets 0.0.0.0:8000).
    #[arg(long = "bind", env = "BIND_ADDR", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// redis://, rediss:// or redis-cluster:// URL. Unset: start a private
    /// redis-server child on a free loopback port, data under ./data/redis.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true, value_parser = RedisUrl)]
    pub redis_url: Option<String>,

    /// PX (milliseconds) of the per-train lock each script takes.
    #[arg(long = "lock-ttl-ms", env = "LOCK_TTL_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub lock_ttl_ms: u64,

    /// Train used when a request names none.
    #[arg(long = "default-train", env = "DEFAULT_TRAIN", default_value = "default",
          value_parser = parse_train_id)]
    pub default_train: String,

    /// Seats given to the default train at start-up, only if it does not exist yet
    /// (a restart never resets stock).
    #[arg(long = "default-stock", env = "DEFAULT_STOCK", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(0..=crate::request::MAX_CAPACITY))]
    pub default_stock: u64,

    /// First segment of every Redis key: PREFIX:{ID}:stock and so on.
    #[arg(long = "key-prefix", env = "KEY_PREFIX", default_value = "train",
          value_parser = parse_prefix)]
    pub key_prefix: String,

    /// Bearer token for the admin endpoints (PUT /trains/{id}). Unset or empty:
    /// they answer 403.
    #[arg(long = "admin-token", env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Upper bound (milliseconds) on one request's Redis work; past it the request
    /// answers 503 and the client may retry (safely, with an Idempotency-Key).
    #[arg(long = "request-timeout-ms", env = "REQUEST_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,

    /// How long (milliseconds) a hold keeps its seats when the request names no ttl_ms.
    #[arg(long = "hold-ttl-ms", env = "HOLD_TTL_MS", default_value_t = 300_000,
          value_parser = clap::value_parser!(u64).range(crate::request::HOLD_TTL_MS))]
    pub hold_ttl_ms: u64,

    /// Seats one user may have on one train, reserved plus held; 0 = no limit.
    #[arg(long = "max-seats-per-user", env = "MAX_SEATS_PER_USER", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=crate::request::MAX_CAPACITY))]
    pub max_seats_per_user: u64,

    /// HS256 secret: when set, buyers must present a JWT whose `sub` is their
    /// user id. Unset (or empty): anonymous buyers.
    #[arg(
        long = "auth-jwt-secret",
        env = "AUTH_JWT_SECRET",
        hide_env_values = true
    )]
    pub auth_jwt_secret: Option<String>,

    /// Replicas that must acknowledge a write (WAIT, on the connection that
    /// ran the script) before the service answers it; fewer: 503. 0 = do not wait.
    #[arg(long = "replica-acks", env = "REPLICA_ACKS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=64))]
    pub replica_acks: u32,
    /// A request's headers and body must arrive within this many
    /// milliseconds of its first byte; past it: 408 and the connection closed.
    #[arg(long = "request-read-timeout-ms", env = "REQUEST_READ_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub request_read_timeout_ms: u64,

    /// Buyer requests one client may make per second (bursts of twice as
    /// many), counted in Redis so every instance shares it; 0 = no limit.
    #[arg(long = "rate-limit-per-client", env = "RATE_LIMIT_PER_CLIENT", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub rate_limit_per_client: u64,

    /// Take the client's address from the last X-Forwarded-For entry (only
    /// behind a proxy that sets it: anyone else can write that header).
    #[arg(long = "trust-forwarded-for", env = "TRUST_FORWARDED_FOR", default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub trust_forwarded_for: bool,

    /// How long a script call can still be re-sent by the Redis client, in
    /// ms: its call key, and the ids of released holds and cancelled
    /// reservations, are kept this long. Not an option: ten request
    /// timeouts, at least a minute (set by `normalised`; tests shorten it).
    #[arg(skip)]
    pub call_window_ms: u64,

    /// Log lines: `text` (human-readable) or `json` (one object per line).
    /// RUST_LOG filters them (default: info).
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The contract's defaults, listening on a free loopback port, for a given Redis.
    pub fn for_tests(redis_url: &str) -> Config {
        let mut config = Config::parse_from(["train-reservation"]);
        config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config.redis_url = Some(redis_url.to_owned());
        config.normalised()
    }

    /// What clap cannot express: a secret set to the empty string is unset
    /// (`ADMIN_TOKEN=` turns the admin endpoints off, it does not make ""
    /// the token). Every way of building a `Config` from input goes through here.
    pub fn normalised(mut self) -> Config {
        self.admin_token = self.admin_token.filter(|token| !token.is_empty());
        self.auth_jwt_secret = self.auth_jwt_secret.filter(|secret| !secret.is_empty());
        // fred writes a command (first or again after a reconnect) only
        // until its timeout, REQUEST_TIMEOUT_MS, fires (store::Store::bounded).
        self.call_window_ms = self.request_timeout_ms.saturating_mul(10).max(60_000);
        self
    }

    pub fn request_read_timeout(&self) -> Duration {
        Duration::from_millis(self.request_read_timeout_ms)
    }

    pub fn lock_ttl(&self) -> Duration {
        Duration::from_millis(self.lock_ttl_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

fn parse_train_id(value: &str) -> Result<String, String> {
    if crate::request::valid_train_id(value) {
        Ok(value.to_owned())
    } else {
        Err("a train id is 1 to 64 characters of A-Z a-z 0-9 _ . -".to_owned())
    }
}

/// Refuses at start-up what could never connect (a typo in the scheme would
/// otherwise look like an outage and be retried forever).
fn parse_redis_url(value: &str) -> Result<String, String> {
    const SCHEMES: [&str; 4] = [
        "redis://",
        "rediss://",
        "redis-cluster://",
        "rediss-cluster://",
    ];
    if !SCHEMES.iter().any(|scheme| value.starts_with(scheme)) {
        return Err(format!(
            "a Redis URL starts with one of {}",
            SCHEMES.join(" ")
        ));
    }
    fred::prelude::Config::from_url(value)
        .map(|_| value.to_owned())
        .map_err(|e| format!("not a usable Redis URL: {e}"))
}

/// `parse_redis_url` for clap, with an error that shows the URL with its
/// password masked (clap's own message would repeat the value as given).
#[derive(Clone)]
struct RedisUrl;

impl clap::builder::TypedValueParser for RedisUrl {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let value = value.to_str().unwrap_or("");
        parse_redis_url(value).map_err(|why| {
            let arg = arg.map_or("--redis-url".to_owned(), ToString::to_string);
            let masked = crate::logging::mask_url(value);
            let message = format!("invalid value '{masked}' for '{arg}': {why}\n");
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
        })
    }
}

/// The prefix becomes part of every key; braces would break the Cluster hash tag.
fn parse_prefix(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'{' | b'}'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err("a key prefix is 1 to 64 visible ASCII characters, without { or }".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_are_checked_at_start_up() {
        for ok in [
            "redis://127.0.0.1:6379",
            "rediss://h:6380/1",
            "redis-cluster://h1:7000?node=h2:7001",
        ] {
            assert!(parse_redis_url(ok).is_ok(), "{ok}");
        }
        for bad in ["nope://x", "127.0.0.1:6379", "http://h", ""] {
            assert!(parse_redis_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_are_parsed_and_validated() {
        let config = Config::parse_from(["t", "--lock-ttl-ms", "50", "--key-prefix", "app:train"]);
        assert_eq!(
            (config.lock_ttl_ms, config.key_prefix.as_str()),
            (50, "app:train")
        );
        assert!(Config::try_parse_from(["t", "--default-train", "a b"]).is_err());
        assert!(Config::try_parse_from(["t", "--key-prefix", "x{y}"]).is_err());
        assert!(Config::try_parse_from(["t", "--lock-ttl-ms", "0"]).is_err());
        assert_eq!(
            Config::parse_from(["t", "--log-format", "json"]).log_format,
            LogFormat::Json
        );
        assert!(Config::try_parse_from(["t", "--log-format", "xml"]).is_err());
        assert_eq!(Config::parse_from(["t"]).replica_acks, 0);
        assert_eq!(
            Config::parse_from(["t", "--replica-acks", "1"]).replica_acks,
            1
        );
        assert!(Config::try_parse_from(["t", "--replica-acks", "-1"]).is_err());
        let config = Config::parse_from(["t"]).normalised();
        assert_eq!(
            (config.request_read_timeout_ms, config.rate_limit_per_client),
            (10_000, 0)
        );
        assert!(!config.trust_forwarded_for);
        assert_eq!(config.call_window_ms, 60_000);
        assert!(Config::parse_from(["t", "--trust-forwarded-for"]).trust_forwarded_for);
        assert!(Config::parse_from(["t", "--trust-forwarded-for=true"]).trust_forwarded_for);
        assert!(!Config::parse_from(["t", "--trust-forwarded-for", "false"]).trust_forwarded_for);
        assert!(Config::try_parse_from(["t", "--request-read-timeout-ms", "0"]).is_err());
    }

    #[test]
    fn an_empty_admin_token_is_unset() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(args)
                .map(|cli| cli.config.normalised().admin_token)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse(&["t", "--admin-token", ""]), Ok(None));
        assert_eq!(parse(&["t", "--admin-token=", "healthcheck"]), Ok(None));
        assert_eq!(
            parse(&["t", "--admin-token", "s3cret"]),
            Ok(Some("s3cret".to_owned()))
        );
        // A token is taken as given: only the empty string means unset.
        assert_eq!(
            parse(&["t", "--admin-token", " "]),
            Ok(Some(" ".to_owned()))
        );
        let jwt = |args: &[&str]| Cli::parse_from(args).config.normalised().auth_jwt_secret;
        assert_eq!(jwt(&["t", "--auth-jwt-secret", ""]), None);
        assert_eq!(jwt(&["t", "--auth-jwt-secret", "k"]), Some("k".to_owned()));
    }

    #[test]
    fn the_healthcheck_subcommand_keeps_the_service_options() {
        let cli = Cli::try_parse_from(["t", "--bind", "0.0.0.0:9000", "healthcheck"])
            .map_err(|e| e.to_string());
        let cli = cli.as_ref().map(|c| (c.config.bind, c.command.clone()));
        assert_eq!(
            cli,
            Ok((
                SocketAddr::from(([0, 0, 0, 0], 9000)),
                Some(Command::Healthcheck { url: None })
            ))
        );
        let cli = Cli::try_parse_from(["t", "healthcheck", "--url", "http://h:1/x"]);
        assert_eq!(
            cli.map(|c| c.command).map_err(|e| e.to_string()),
            Ok(Some(Command::Healthcheck {
                url: Some("http://h:1/x".to_owned())
            }))
        );
        let service = Cli::try_parse_from(["t", "--lock-ttl-ms", "50"]).map_err(|e| e.to_string());
        assert_eq!(
            service.map(|c| (c.config.lock_ttl_ms, c.command)),
            Ok((50, None))
        );
        assert!(Cli::try_parse_from(["t", "healthcheck", "--nope"]).is_err());
        assert!(Cli::try_parse_from(["t", "probe"]).is_err());
    }

    #[test]
    fn a_bad_redis_url_is_refused_without_its_password() {
        let e = Config::try_parse_from(["t", "--redis-url", "nope://u:s3cret@h:1"])
            .expect_err("a bad scheme is refused");
        let message = e.to_string();
        assert!(message.contains("nope://u:***@h:1"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
