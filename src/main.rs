//! The `train-reservation` binary: parse the configuration, start a private
//! redis-server when no REDIS_URL is given, serve until SIGINT or SIGTERM.
//! Everything else lives in the library crate, where tests drive it.
//!
//! `train-reservation healthcheck` is the container probe instead: it is
//! dispatched before anything else starts (no logging set-up, no Redis, no
//! listener, a single-threaded runtime), so probing a service every few
//! seconds costs almost nothing and can never disturb it.

use std::{path::Path, process::ExitCode};

use tokio::signal::unix::{signal, SignalKind};
use train_reservation::{
    config::{Cli, Command},
    logging, probe, Config, EmbeddedRedis, Server,
};

/// Where the embedded redis-server keeps its data, relative to the working directory.
const EMBEDDED_DIR: &str = "data/redis";

/// Tokio workers: one core fewer than the machine has (at least one). The
/// other core is Redis's: the embedded redis-server runs beside us, and on
/// 2 cores a second worker only adds cross-thread wake-ups (make bench: 1
/// worker 48k reservations/s, 2 workers 42k, 3 workers 32k). One worker is
/// a current-thread runtime: no work-stealing queues or cross-thread wake-ups
/// at all (bench/ab.py on 2 cores: 1.19x the reservations/s of a one-worker
/// multi-thread runtime, 0.91x its CPU per reservation).
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

fn main() -> ExitCode {
    let cli = Cli::load();
    match cli.command {
        Some(Command::Healthcheck { url }) => {
            healthcheck(url.unwrap_or_else(|| probe::default_url(cli.config.bind)))
        }
        None => serve(cli.config),
    }
}

/// Exit 0 when `url` answers 200 within `probe::TIMEOUT`, else 1 (Docker's
/// "unhealthy") with the reason on stderr.
fn healthcheck(url: String) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(probe::check(&url, probe::TIMEOUT)),
        Err(e) => Err(format!("cannot start the async runtime: {e}")),
    };
    match result {
        Ok(()) => {
            println!("train-reservation healthcheck: {url} answered 200");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("train-reservation healthcheck: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> ExitCode {
    let runtime = match workers() {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(e) => {
            eprintln!("train-reservation: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> ExitCode {
    logging::init(config.log_format);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        bind = %config.bind,
        "starting train-reservation"
    );

    // Started here, on the main thread, so the child's parent-death signal
    // follows the process's lifetime (see `embedded`).
    let (embedded, url) = match &config.redis_url {
        Some(url) => (None, url.clone()),
        None => match EmbeddedRedis::start(Path::new(EMBEDDED_DIR)) {
            Ok(redis) => {
                let url = redis.url();
                tracing::info!(
                    %url, pid = redis.pid(), dir = %redis.dir().display(),
                    "started a private redis-server (inspect it with: redis-cli -p {})", redis.port()
                );
                (Some(redis), url)
            }
            Err(e) => {
                eprintln!("train-reservation: cannot start the embedded Redis: {e}");
                return ExitCode::FAILURE;
            }
        },
    };

    let server = match Server::start(config, &url).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("train-reservation: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = stop_signal().await {
        eprintln!("train-reservation: cannot listen for signals: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopping: draining in-flight requests");
    server.shutdown().await;
    drop(embedded);
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

async fn stop_signal() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}
