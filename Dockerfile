# syntax=docker/dockerfile:1
# Container image for train-reservation: a build stage compiles the release
# binary, a small Debian stage runs it as a non-root user on 0.0.0.0:8000.
# It ships no redis-server: set REDIS_URL (docker-compose.yml does).
# Its HEALTHCHECK is the binary's own probe, `train-reservation healthcheck`.
#
#   docker build -t train-reservation .
#   docker run --rm -p 8000:8000 -e REDIS_URL=redis://HOST:6379 train-reservation

# --- build ------------------------------------------------------------------
# The package's rust-version: Cargo.lock was resolved (resolver 3) for it.
# Keep it at least Cargo.toml's rust-version (tests/deploy.rs checks).
# The slim image has gcc and libc6-dev, enough for ring (rustls).
FROM rust:1.88-slim-bookworm AS build
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The binary embeds lua/*.lua with include_str! at compile time, and the
# seat map page's files (assets/map/) with include_str!/include_bytes!.
COPY lua ./lua
COPY assets ./assets
# Cache mounts keep the crate downloads and compiled dependencies between
# builds (BuildKit); the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked \
    && cp target/release/train-reservation /usr/local/bin/train-reservation

# --- run --------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: root certificates for rediss:// (TLS to Redis).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --create-home app
COPY --from=build /usr/local/bin/train-reservation /usr/local/bin/train-reservation
USER app
WORKDIR /app
ENV BIND_ADDR=0.0.0.0:8000
EXPOSE 8000
# SIGTERM (docker stop) makes the service finish in-flight requests and exit 0.
STOPSIGNAL SIGTERM
# Healthy = ready: `train-reservation healthcheck` GETs /readyz on BIND_ADDR
# (0.0.0.0 probed as 127.0.0.1) and exits 0 only on a 200 within 1 s, so the
# container turns healthy once Redis answers and the scripts are loaded. The
# slim image has no curl or wget; the probe needs neither and starts nothing.
# Orchestrators with their own HTTP probes can use GET /readyz and GET /healthz.
HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/train-reservation", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/train-reservation"]
