//! The probe behind `train-reservation healthcheck`: one HTTP/1.1 `GET` of
//! `/readyz`, healthy only on a 200 within a deadline.
//!
//! The runtime image is Debian slim with no curl or wget, so the binary probes
//! itself (the Dockerfile's HEALTHCHECK, Compose's healthcheck). It writes the
//! request by hand over a tokio `TcpStream` rather than pulling in an HTTP
//! client: it needs one status line from our own server, nothing more. Every
//! step (resolving, connecting, writing, reading) shares one deadline, so a
//! service that accepts and never answers fails the probe instead of hanging
//! it. Only plain `http://host:port/path` URLs are accepted.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{timeout_at, Instant},
};

/// The deadline of one probe: Docker's `--timeout=2s` leaves it room.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Longest status line plus headers read before giving up on an answer.
const MAX_HEAD: usize = 8 * 1024;
/// How much of a non-200 body is quoted in the failure reason.
const MAX_QUOTED_BODY: usize = 200;

/// What an `http://host:port/path` URL names.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// Host for connecting: a name or an IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// `host:port` as written, for the `Host` header.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let refuse = |why: &str| Err(format!("{url:?}: {why} (expected http://HOST:PORT/PATH)"));
        let Some(rest) = url
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
            .and(url.get(7..))
        else {
            return refuse("only http:// URLs can be probed");
        };
        if rest.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return refuse("spaces or control characters in the URL");
        }
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return refuse("user names and passwords are not supported");
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // [IPv6]:port
            let Some((host, after)) = bracketed.split_once(']') else {
                return refuse("an IPv6 address needs its closing ]");
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return refuse("not an IPv6 address between [ ]");
            }
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return refuse("unexpected characters after ]"),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return refuse("no host");
        }
        let port = match port {
            None => 80,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return refuse("the port must be a number from 1 to 65535"),
            },
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }
}

/// `/readyz` on the address the service listens on. A wildcard listen address
/// (0.0.0.0, as in the container, or [::]) is probed on loopback.
pub fn default_url(bind: SocketAddr) -> String {
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(match bind {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/readyz")
}

/// `GET url`: `Ok` on a 200 within `timeout`, otherwise the reason, in a
/// sentence that names the URL.
pub async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let target = Target::parse(url)?;
    let deadline = Instant::now() + timeout;
    let (mut stream, mut head) = match timeout_at(deadline, status_line(&target)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(format!("GET {url}: {e}")),
        Err(_) => {
            return Err(format!(
                "GET {url}: no answer within {} ms",
                timeout.as_millis()
            ))
        }
    };
    let line = first_line(&head);
    let status = parse_status(&line).map_err(|e| format!("GET {url}: {e}"))?;
    if status == 200 {
        return Ok(());
    }
    // Not ready: quote what the service says (its JSON error body), if it
    // arrives before the deadline; the status alone is reason enough.
    let _ = timeout_at(deadline, read_more(&mut stream, &mut head, MAX_HEAD)).await;
    let body = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| String::from_utf8_lossy(&head[i + 4..]).trim().to_owned())
        .unwrap_or_default();
    let quoted: String = body.chars().take(MAX_QUOTED_BODY).collect();
    Err(format!("GET {url}: answered {line} {quoted}")
        .trim_end()
        .to_owned())
}

/// Connects, sends the request, and reads until the status line is complete.
async fn status_line(target: &Target) -> Result<(TcpStream, Vec<u8>), String> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: train-reservation-healthcheck\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = Vec::with_capacity(1024);
    while !head.windows(2).any(|w| w == b"\r\n") {
        if head.len() >= MAX_HEAD {
            return Err("no HTTP status line in the first 8 KiB".to_owned());
        }
        if read_more(&mut stream, &mut head, MAX_HEAD).await? == 0 {
            return Err(if head.is_empty() {
                "the connection was closed without an answer".to_owned()
            } else {
                "the connection was closed in the middle of the status line".to_owned()
            });
        }
    }
    Ok((stream, head))
}

/// Appends what the next read returns (at most up to `limit` bytes in all).
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, String> {
    let mut chunk = [0u8; 1024];
    let room = limit.saturating_sub(buf.len()).min(chunk.len());
    if room == 0 {
        return Ok(0);
    }
    let n = stream
        .read(&mut chunk[..room])
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn first_line(head: &[u8]) -> String {
    let end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end]).into_owned()
}

/// `HTTP/1.1 200 OK` -> 200.
fn parse_status(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!("not an HTTP/1.x answer: {line:?}"));
    }
    code.parse()
        .map_err(|_| format!("not an HTTP/1.x answer: {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, authority: &str, path: &str) -> Result<Target, String> {
        Ok(Target {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    #[test]
    fn http_urls_are_parsed() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8000/readyz"),
            target("127.0.0.1", 8000, "127.0.0.1:8000", "/readyz")
        );
        assert_eq!(
            Target::parse("HTTP://[::1]:8000/readyz?x=1#frag"),
            target("::1", 8000, "[::1]:8000", "/readyz?x=1")
        );
        assert_eq!(Target::parse("http://app"), target("app", 80, "app", "/"));
        assert_eq!(
            Target::parse("http://app:8000?q"),
            target("app", 8000, "app:8000", "/?q")
        );
        assert_eq!(
            Target::parse("http://[::1]/readyz"),
            target("::1", 80, "[::1]", "/readyz")
        );
    }

    #[test]
    fn other_urls_are_refused_with_a_reason() {
        for (url, reason) in [
            ("https://127.0.0.1:8000/readyz", "only http://"),
            ("127.0.0.1:8000/readyz", "only http://"),
            ("", "only http://"),
            ("http://", "no host"),
            ("http://:8000/readyz", "no host"),
            ("http://h:0/", "port"),
            ("http://h:99999/", "port"),
            ("http://h:x/", "port"),
            ("http://h:8000:1/", "port"),
            ("http://[::1:8000/", "closing ]"),
            ("http://[nope]:8000/", "IPv6"),
            ("http://[::1]x/", "after ]"),
            ("http://u:p@h:1/", "user names"),
            ("http://h:1/a b", "spaces"),
            ("http://h:1/a\r\nX: y", "control"),
        ] {
            match Target::parse(url) {
                Ok(t) => panic!("{url:?} accepted as {t:?}"),
                Err(e) => assert!(e.contains(reason), "{url:?}: {e}"),
            }
        }
    }

    #[test]
    fn wildcard_bind_addresses_are_probed_on_loopback() {
        let url = |s: &str| default_url(s.parse().expect("socket address"));
        assert_eq!(url("0.0.0.0:8000"), "http://127.0.0.1:8000/readyz");
        assert_eq!(url("[::]:8000"), "http://[::1]:8000/readyz");
        assert_eq!(url("127.0.0.1:8000"), "http://127.0.0.1:8000/readyz");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80/readyz");
        assert_eq!(url("[fe80::1]:9"), "http://[fe80::1]:9/readyz");
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(parse_status("HTTP/1.0 503 Service Unavailable"), Ok(503));
        assert_eq!(parse_status("HTTP/1.1 204"), Ok(204));
        for bad in [
            "",
            "HTTP/1.1",
            "HTTP/2 200",
            "SSH-2.0-OpenSSH",
            "HTTP/1.1 20 OK",
            "HTTP/1.1 2x0 OK",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }
}
