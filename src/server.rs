//! The running service: listen at once, connect to Redis in the background,
//! serve HTTP/1.1 until told to stop, then drain.
//!
//! `Server::start` returns as soon as the socket is bound (port 0 works, so
//! tests start a server per test and read its address). Start-up work that
//! needs Redis runs in a task that retries with backoff; until it is done
//! `/healthz` answers 200 and everything else 503. `Server::shutdown` stops
//! accepting, lets in-flight requests finish, and closes the Redis pool.

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::{watch, Semaphore},
    task::JoinHandle,
};

use crate::{
    api::{self, App},
    config::Config,
    connection::{Arrival, Conn, RequestClock, MAX_HEADERS},
    logging::mask_url,
    metrics::Metrics,
    store::{scripts, Store},
};

/// Connections served at once; past it the listener waits (the kernel's
/// backlog queues new ones) instead of running out of file descriptors.
const MAX_CONNECTIONS: usize = 10_000;
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    serving: JoinHandle<()>,
    starting: JoinHandle<()>,
}

impl Server {
    /// Binds `config.bind`, then connects to `redis_url` in the background.
    pub async fn start(config: Config, redis_url: &str) -> io::Result<Server> {
        let metrics = Arc::new(Metrics::new(
            Metrics::recording_from_env(),
            &api::ROUTES.map(|route| route.pattern),
            &scripts::NAMES,
            api::documented_answers(),
        ));
        if !metrics.is_recording() {
            tracing::warn!("METRICS=off: answers are not recorded (for benchmarks only)");
        }
        Metrics::spawn_upkeep(&metrics);
        let store = Store::new(&config, redis_url, metrics).map_err(io::Error::other)?;
        let listener = listen(config.bind)?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App::new(config, store));
        let (stop, stopped) = watch::channel(false);
        let serving = tokio::spawn(serve(listener, app.clone(), stopped));
        tracing::info!(%addr, "listening");
        tracing::info!(redis = %mask_url(redis_url), "connecting to Redis");
        let starting = tokio::spawn(start_up(app.clone()));
        Ok(Server {
            addr,
            app,
            stop,
            serving,
            starting,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, waits for in-flight requests (bounded), closes Redis.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.starting.abort();
        let _ = self.serving.await;
        self.app.store.quit().await;
    }
}

/// Connections the kernel completes and queues before we accept them.
/// std's 128 overflowed under a burst of new clients (a flash sale, a
/// flood): the kernel then drops their SYNs, and each waits a full second
/// to try again. The kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connect, load scripts, create the default train; retry each failure with
/// backoff, logging it, until it works.
async fn start_up(app: Arc<App>) {
    app.store.connect();
    let mut delay = Duration::from_millis(50);
    for attempt in 1u32.. {
        match prepare(&app).await {
            Ok(()) => {
                app.set_ready();
                tracing::info!(attempt, "ready: Redis connected, scripts loaded");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "start-up: {e}"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn prepare(app: &App) -> Result<(), String> {
    app.store.load_scripts().await.map_err(|e| e.to_string())?;
    let sha1 = app.store.script_sha1s().join(" ");
    tracing::info!(%sha1, "loaded the Lua scripts");
    let config = &app.config;
    match app
        .store
        .put_train(
            &config.default_train,
            config.default_stock,
            false,
            None,
            None,
        )
        .await
    {
        Ok((201, _)) => {
            tracing::info!(train = %config.default_train, stock = config.default_stock, "created the default train");
            Ok(())
        }
        Ok((409, _)) => {
            tracing::info!(train = %config.default_train, "the default train exists; its stock is left as it is");
            Ok(())
        }
        Ok((status, _)) => Err(format!(
            "could not create the default train {}: status {status} (locked?)",
            config.default_train
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn serve(listener: TcpListener, app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let read_timeout = app.config.request_read_timeout();
    let mut http = http1::Builder::new();
    // The headers' part of the read deadline (the body's is `api::read_body`'s),
    // and their size: hyper never buffers more of an unfinished request.
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_header_size(MAX_HEADERS)
        .max_buf_size(MAX_HEADERS);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let clock = RequestClock::new();
        let io = TokioIo::new(Conn::new(stream, clock.clone()));
        let service = service_fn(move |mut req| {
            let app = app.clone();
            let clock = clock.clone();
            let arrival = Arrival {
                peer: peer.ip(),
                deadline: clock.request_began() + read_timeout,
            };
            req.extensions_mut().insert(arrival);
            async move {
                let reply = crate::api::handle(app, req).await;
                clock.request_done();
                Ok::<_, Infallible>(reply)
            }
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections were still busy after {DRAIN_TIMEOUT:?}");
    }
}
