//! The private `redis-server` child: the default when no `REDIS_URL` is given,
//! and the Redis every test starts for itself.
//!
//! The child listens on a free loopback port only, keeps its data in a directory
//! of ours with the append-only file on and `appendfsync always` (an acknowledged
//! reservation is on disk), and never outlives us:
//! - `Drop` sends SIGTERM (Redis then fsyncs its AOF and exits) and waits, with a
//!   SIGKILL if it takes too long;
//! - `PR_SET_PDEATHSIG` makes the kernel kill it if we die without running `Drop`
//!   (a crash, a SIGKILL). The signal follows the *thread* that spawned the child,
//!   so call `start` from a thread that lives as long as the child should: the
//!   main thread, or a test's own thread.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How long a starting redis-server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopping redis-server may take to flush and exit before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const INSTALL_HINT: &str = "redis-server was not found on PATH. Install it \
    (Debian/Ubuntu: `apt-get install -y redis-server`, macOS: `brew install redis`) \
    or set REDIS_URL (or --redis-url) to an existing Redis, e.g. redis://127.0.0.1:6379";

/// A running `redis-server` child process, stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl EmbeddedRedis {
    /// Starts `redis-server` on a free loopback port with its data in `dir`
    /// (created if missing) and waits until it accepts connections.
    pub fn start(dir: &Path) -> io::Result<EmbeddedRedis> {
        Self::start_on(dir, free_port()?)
    }

    /// Same as `start` on a given port: a fault test restarts Redis where it was,
    /// on the same port and data directory.
    pub fn start_on(dir: &Path, port: u16) -> io::Result<EmbeddedRedis> {
        Self::start_with(dir, port, &[])
    }

    /// Same as `start_on`, with more `redis-server` options after ours (a test's
    /// cluster node: `--cluster-enabled yes` and friends).
    pub fn start_with(dir: &Path, port: u16, extra: &[String]) -> io::Result<EmbeddedRedis> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(io::ErrorKind::NotFound, INSTALL_HINT),
            _ => e,
        })?;
        let mut redis = EmbeddedRedis { child, port, dir };
        redis.wait_until_accepting()?;
        Ok(redis)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would: no AOF flush beyond what `appendfsync always`
    /// already wrote. For fault tests.
    pub fn kill(mut self) -> io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Readiness: the port accepts TCP connections (Redis may still be loading
    /// its AOF; callers retry LOADING like any other transient error).
    fn wait_until_accepting(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "redis-server exited at start-up ({status}); see {}",
                    self.dir.join("redis.log").display()
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server did not accept connections on port {}",
                        self.port
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: `pid` is our own child, not yet reaped, so the id is still ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
            }
        }
        tracing::warn!(
            pid,
            "redis-server did not stop within {STOP_TIMEOUT:?}; killing it"
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on right now (the OS picks it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
