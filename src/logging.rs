//! Logs: `tracing` events, human-readable by default and one JSON object per
//! line with `LOG_FORMAT=json`, filtered by `RUST_LOG` (default `info`).
//!
//! Kept to start-up steps, warnings and errors: nothing is logged per request
//! at info level (that is what `/metrics` is for), so a busy service's log
//! stays readable and cheap. A Redis URL reaches a log line only through
//! [`mask_url`], which hides its password.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written (`LOG_FORMAT`, `--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level, for log shippers.
    Json,
}

/// Installs the global subscriber, writing to standard output. Call once,
/// first thing in `main`; a second call (tests) leaves the first in place.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// A Redis URL fit for a log line or an error message: the password (or a
/// lone userinfo, which Redis URLs use for a password too) becomes `***`.
/// `redis://app:s3cret@h:6379/0` gives `redis://app:***@h:6379/0`.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        // Not a URL: it may be anything, a bare password included.
        return "<not a URL>".to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!(
        "{}{masked}{}{}",
        &url[..scheme_end],
        &authority[at..],
        &rest[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn passwords_are_masked() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
            ("redis://app:s3cret@h:6379", "redis://app:***@h:6379"),
            ("rediss://s3cret@h", "rediss://***@h"),
            ("redis://app:p@ss:w@rd@h:1?x=y", "redis://app:***@h:1?x=y"),
            (
                "redis-cluster://u:s3cret@h1:7000?node=h2:7001",
                "redis-cluster://u:***@h1:7000?node=h2:7001",
            ),
            ("s3cret", "<not a URL>"),
        ] {
            assert_eq!(mask_url(url), shown, "{url}");
        }
    }
}
