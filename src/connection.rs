//! One client connection as the server reads it, so that no client can hold
//! the service for others: when each request's first byte came, and the
//! answer to headers that grow too large.
//!
//! hyper bounds the headers' time (`header_read_timeout`, which starts when
//! the connection waits for a request) and size (`max_header_size`), but not
//! the body's time: a client that sends its headers and then one byte of a
//! 100-byte body kept a connection slot for as long as it liked. So every
//! request carries an [`Arrival`]: its peer and the deadline by which its
//! body must be in, `REQUEST_READ_TIMEOUT_MS` after the request's first byte,
//! which [`Conn`] notes as the bytes come in (`api::read_body` enforces it).
//!
//! hyper answers oversized headers itself, with a bodiless 431. The contract
//! wants every error as JSON, so `Conn` swaps that one answer, on its way
//! out, for the same status with the JSON error body. Nothing else written
//! is touched.

use std::{
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

/// Most bytes of request headers (request line included); more is 431.
pub const MAX_HEADERS: usize = 16 * 1024;

/// Where a request came from and by when its body must have arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub peer: IpAddr,
    pub deadline: Instant,
}

/// When the current request of a connection began: the first byte read
/// after the previous request was answered.
#[derive(Debug)]
pub struct RequestClock {
    state: Mutex<Clock>,
}

#[derive(Debug)]
struct Clock {
    /// Waiting for a request: the next byte read starts one.
    armed: bool,
    first_byte: Instant,
}

impl RequestClock {
    pub fn new() -> Arc<RequestClock> {
        Arc::new(RequestClock {
            state: Mutex::new(Clock {
                armed: true,
                first_byte: Instant::now(),
            }),
        })
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // Two plain fields: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn saw_bytes(&self) {
        let mut clock = self.clock();
        if clock.armed {
            clock.armed = false;
            clock.first_byte = Instant::now();
        }
    }

    /// Called when hyper hands over a request (its headers are in): when
    /// its first byte came. A pipelined request whose bytes came with the
    /// previous one's begins now.
    pub fn request_began(&self) -> Instant {
        let mut clock = self.clock();
        if clock.armed {
            clock.armed = false;
            clock.first_byte = Instant::now();
        }
        clock.first_byte
    }

    /// Called when the request has its answer: the next byte starts another.
    pub fn request_done(&self) {
        self.clock().armed = true;
    }
}

/// A connection's stream: reads note the request clock; hyper's own 431 is
/// replaced by the JSON one.
pub struct Conn<T> {
    io: T,
    clock: Arc<RequestClock>,
    /// The JSON 431 still to be written (from `.0`), once hyper wrote its own.
    replacing: Option<(&'static [u8], usize)>,
}

impl<T> Conn<T> {
    pub fn new(io: T, clock: Arc<RequestClock>) -> Conn<T> {
        Conn {
            io,
            clock,
            replacing: None,
        }
    }
}

/// How hyper's automatic answer to oversized headers begins.
const HYPER_431: &[u8] = b"HTTP/1.1 431 ";

/// The contract's 431: the JSON error body, and the connection closed.
const JSON_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
content-type: application/json\r\n\
connection: close\r\n\
content-length: 90\r\n\r\n\
{\"error\":\"headers_too_large\",\"detail\":\"request headers are limited to 16384 bytes in all\"}";

impl<T: AsyncWrite + Unpin> Conn<T> {
    /// Starts replacing when `first` is hyper's 431; then everything hyper
    /// writes is dropped (it closes the connection after it).
    fn replaces(&mut self, first: &[u8]) -> bool {
        if self.replacing.is_none() && first.starts_with(HYPER_431) {
            self.replacing = Some((JSON_431, 0));
        }
        self.replacing.is_some()
    }

    /// Writes what is left of the replacement.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((text, at)) = &mut self.replacing {
            if *at == text.len() {
                break;
            }
            match Pin::new(&mut self.io).poll_write(cx, &text[*at..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *at += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Conn<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.saw_bytes();
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Conn<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replaces(buf) {
            // Taken (and dropped): the replacement goes out on flush.
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
        if self.replaces(first) {
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_431_declares_its_length() {
        let text = std::str::from_utf8(JSON_431).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains(&MAX_HEADERS.to_string()));
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body["error"], "headers_too_large");
    }
}
