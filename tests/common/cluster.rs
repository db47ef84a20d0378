//! A real Redis Cluster for a test: three primaries, optionally one replica
//! each, as `redis-server --cluster-enabled yes` children on free loopback
//! ports, each in its own directory under one temporary directory, joined with
//! `redis-cli --cluster create`.
//!
//! The nodes are the service's own `EmbeddedRedis` (append-only file fsynced
//! always, stopped by PID, killed with us) with the cluster options added.
//! Everything here is synchronous and called from the test's own thread: the
//! children's PR_SET_PDEATHSIG follows the thread that started them, and the
//! checks are `redis-cli` calls polled until the cluster says what we wait for
//! (`cluster_state:ok`, `master_link_status:up`, a slot's new owner), never a
//! fixed sleep. `kill` (SIGKILL, a crash) and `restart` (same port and
//! directory, as a supervisor would) are for failover tests; `Drop` stops
//! every node still running, replicas first.

use std::{
    net::{Ipv4Addr, TcpListener},
    path::PathBuf,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use tempfile::TempDir;
use train_reservation::EmbeddedRedis;

/// `cluster-node-timeout`: short, so a killed primary's replica takes over in
/// about two seconds.
pub const NODE_TIMEOUT_MS: u64 = 1000;
/// Upper bound on any wait for the cluster to settle.
const SETTLE: Duration = Duration::from_secs(40);

pub struct Cluster {
    nodes: Vec<Node>,
    replicas: bool,
    dir: TempDir,
}

struct Node {
    port: u16,
    /// The cluster bus port, chosen free too (port + 10000 may be taken or > 65535).
    bus_port: u16,
    dir: PathBuf,
    redis: Option<EmbeddedRedis>,
}

impl Node {
    fn start(&mut self) {
        let args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &self.dir.join("nodes.conf").display().to_string(),
            "--cluster-node-timeout",
            &NODE_TIMEOUT_MS.to_string(),
            "--cluster-port",
            &self.bus_port.to_string(),
            // A SIGTERM'd primary does not wait for its replicas (Drop).
            "--shutdown-timeout",
            "0",
            // A replica's full sync starts at once, not after the default 5 s.
            "--repl-diskless-sync-delay",
            "0",
        ]
        .map(String::from)
        .to_vec();
        let redis = EmbeddedRedis::start_with(&self.dir, self.port, &args)
            .unwrap_or_else(|e| panic!("cluster node on port {}: {e}", self.port));
        self.redis = Some(redis);
    }
}

/// One line of `CLUSTER NODES`, as far as tests care.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: String,
    /// The id of its primary, for a replica.
    pub primary_id: Option<String>,
    pub port: u16,
    pub primary: bool,
    pub failed: bool,
    pub slots: Vec<(u16, u16)>,
}

impl NodeView {
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
}

impl Cluster {
    /// Three primaries (and with `replicas`, one replica each), slots spread
    /// by `redis-cli --cluster create`; returns once every node says
    /// `cluster_state:ok` and every replica is linked to its primary.
    pub fn start(replicas: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = if replicas { 6 } else { 3 };
        let ports = free_ports(2 * count);
        let mut nodes: Vec<Node> = (0..count)
            .map(|i| Node {
                port: ports[2 * i],
                bus_port: ports[2 * i + 1],
                dir: dir.path().join(format!("node-{i}")),
                redis: None,
            })
            .collect();
        for node in &mut nodes {
            node.start();
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        create.args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        if replicas {
            create.args(["--cluster-replicas", "1"]);
        }
        let output = create
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli runs");
        let cluster = Cluster {
            nodes,
            replicas,
            dir,
        };
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_healthy();
        cluster
    }

    /// The URL the service takes: every node as a seed.
    pub fn url(&self) -> String {
        let mut ports = self.nodes.iter().map(|n| n.port);
        let first = ports.next().expect("a node");
        let rest: Vec<String> = ports.map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", rest.join("&"))
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    pub fn pid(&self, port: u16) -> Option<u32> {
        self.node(port).redis.as_ref().map(EmbeddedRedis::pid)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `redis-cli -p PORT args...` on one node; its output, trimmed.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli(port, args).unwrap_or_else(|e| panic!("redis-cli -p {port} {args:?}: {e}"))
    }

    /// The cluster as a running node sees it (`CLUSTER NODES`).
    pub fn view(&self) -> Vec<NodeView> {
        let port = self.live_ports()[0];
        parse_nodes(&self.cli(port, &["CLUSTER", "NODES"]))
    }

    /// The primaries that own slots, by port.
    pub fn primaries(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .view()
            .into_iter()
            .filter(|n| n.primary && !n.failed && !n.slots.is_empty())
            .map(|n| n.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        self.cli(port, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The port of the primary owning `key` now.
    pub fn primary_of(&self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        self.view()
            .into_iter()
            .find(|n| n.primary && !n.failed && n.owns(slot))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no primary owns slot {slot}"))
    }

    /// The primary of each key, with one look at the cluster.
    pub fn primaries_of(&self, keys: &[String]) -> Vec<u16> {
        let view = self.view();
        keys.iter()
            .map(|key| {
                let slot = self.slot_of(key);
                view.iter()
                    .find(|n| n.primary && !n.failed && n.owns(slot))
                    .map(|n| n.port)
                    .unwrap_or_else(|| panic!("no primary owns slot {slot}"))
            })
            .collect()
    }

    /// The port of a replica of the primary on `port`.
    pub fn replica_of(&self, port: u16) -> u16 {
        let view = self.view();
        let primary = view.iter().find(|n| n.port == port).expect("primary");
        view.iter()
            .find(|n| n.primary_id.as_deref() == Some(primary.id.as_str()))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no replica of {port}"))
    }

    /// SIGKILL of one node by its PID, as a crash.
    pub fn kill(&mut self, port: u16) {
        let redis = self.node_mut(port).redis.take().expect("node running");
        redis.kill().expect("SIGKILL");
    }

    /// Kills the primary owning `key`; returns its port.
    pub fn kill_primary_of(&mut self, key: &str) -> u16 {
        let port = self.primary_of(key);
        self.kill(port);
        port
    }

    /// Starts a stopped node again on its port and directory (its nodes.conf
    /// says which cluster it belongs to), as a supervisor would.
    pub fn restart(&mut self, port: u16) {
        let node = self.node_mut(port);
        assert!(node.redis.is_none(), "node {port} is running");
        node.start();
    }

    /// Waits until a primary other than `dead` owns `key`'s slot in the view
    /// of every running node, and they all say `cluster_state:ok`; returns
    /// that primary's port.
    pub fn wait_failover(&self, key: &str, dead: u16) -> u16 {
        let slot = self.slot_of(key);
        let mut owner = None;
        wait_until("a replica to take over", || {
            let mut owners = Vec::new();
            for port in self.live_ports() {
                let Ok(nodes) = cli(port, &["CLUSTER", "NODES"]) else {
                    return false;
                };
                let found = parse_nodes(&nodes)
                    .into_iter()
                    .find(|n| n.primary && !n.failed && n.owns(slot))
                    .map(|n| n.port);
                owners.push(found);
            }
            let agreed = owners.windows(2).all(|w| w[0] == w[1]);
            owner = owners.first().copied().flatten();
            agreed && owner.is_some_and(|p| p != dead) && self.all_ok()
        });
        owner.expect("a new owner")
    }

    /// Waits until every running node says `cluster_state:ok` and, with
    /// replicas, every primary owning slots has an online replica and every
    /// replica's link to its primary is up.
    pub fn wait_healthy(&self) {
        wait_until("the cluster to be ok", || {
            self.all_ok() && (!self.replicas || self.replicas_linked())
        });
    }

    fn all_ok(&self) -> bool {
        self.live_ports().into_iter().all(|port| {
            cli(port, &["CLUSTER", "INFO"]).is_ok_and(|info| info.contains("cluster_state:ok"))
        })
    }

    fn replicas_linked(&self) -> bool {
        let Some(port) = self.live_ports().first().copied() else {
            return false;
        };
        let Ok(nodes) = cli(port, &["CLUSTER", "NODES"]) else {
            return false;
        };
        let view = parse_nodes(&nodes);
        let live = self.live_ports();
        view.iter().filter(|n| live.contains(&n.port)).all(|n| {
            let Ok(info) = cli(n.port, &["INFO", "replication"]) else {
                return false;
            };
            if n.primary && !n.slots.is_empty() {
                info.lines()
                    .any(|l| l.starts_with("slave0:") && l.contains("state=online"))
            } else if n.primary {
                true
            } else {
                info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")
            }
        })
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.redis.is_some())
            .map(|n| n.port)
            .collect()
    }

    fn node(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Replicas first, so no primary has a replica to wait for; each
        // EmbeddedRedis stops its own process by PID.
        let replicas: Vec<u16> = if self.live_ports().is_empty() {
            Vec::new()
        } else {
            let port = self.live_ports()[0];
            cli(port, &["CLUSTER", "NODES"])
                .map(|nodes| {
                    parse_nodes(&nodes)
                        .into_iter()
                        .filter(|n| !n.primary)
                        .map(|n| n.port)
                        .collect()
                })
                .unwrap_or_default()
        };
        for node in &mut self.nodes {
            if replicas.contains(&node.port) {
                drop(node.redis.take());
            }
        }
        for node in &mut self.nodes {
            drop(node.redis.take());
        }
    }
}

/// `redis-cli -p PORT args...`: its standard output, trimmed, or why not
/// (any redis-server of a test, in a cluster or not).
pub fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || text.starts_with("Could not connect") {
        return Err(format!("{text}{}", String::from_utf8_lossy(&output.stderr)));
    }
    if text.starts_with("ERR") || text.starts_with("CLUSTERDOWN") {
        return Err(text);
    }
    Ok(text)
}

/// `CLUSTER NODES`: `id host:port@bus flags master ping pong epoch link slot...`.
fn parse_nodes(text: &str) -> Vec<NodeView> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let address = fields.get(1)?;
            let port = address.split(['@', ',']).next()?.rsplit(':').next()?;
            let flags = fields.get(2)?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(NodeView {
                id: fields.first()?.to_string(),
                primary_id: fields
                    .get(3)
                    .filter(|id| **id != "-")
                    .map(|id| id.to_string()),
                port: port.parse().ok()?,
                primary: flags.contains("master"),
                failed: flags.contains("fail") || flags.contains("noaddr"),
                slots,
            })
        })
        .collect()
}

/// Polls `check` every 20 ms until it holds; panics after `SETTLE`.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `n` distinct free loopback ports: all bound at once, then released.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}
