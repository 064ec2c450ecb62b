//! The engine's DNS server: on each bridge network's gateway address, port
//! 53 (UDP and TCP), it answers for the names of the live containers on
//! that network and forwards other queries to the host's resolvers. The
//! policy is `network::dns::backend`'s; this is the thin part around it.
//!
//! One thread polls every [`POLL`] and keeps two things current:
//! - the snapshot of networks and live containers the answers come from
//!   (a scan of the networks and containers directories: see docs/bench.md
//!   for its cost), so a recreated container's new address is served
//!   within [`POLL`];
//! - the listeners: one per network in the store, started when a network
//!   appears and stopped when it goes.
//!
//! A miss (NXDOMAIN, or a client the snapshot does not know yet) refreshes
//! the snapshot at once, at most every [`MISS_REFRESH`], so a container
//! that just started is found by its first query.
//!
//! While it runs, `<root>/dns.active` names the engine (see
//! `network::dns`), and containers created meanwhile get the gateway as
//! their nameserver.

mod forward;
mod listener;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::runtime::Handle;

use super::daemon::log;
use crate::network::dns::upstream::{self, UpstreamError, UPSTREAM_ENV};
use crate::network::dns::{HostResolvers, NetworkInfo, Snapshot};
use crate::network::{NetworkRecord, NetworkStore, NetworkStoreError};
use crate::runtime::config::{ContainerConfig, Status};
use crate::runtime::container::{self, ContainerError};
use crate::store::Root;

/// How often the networks and containers are scanned.
const POLL: Duration = Duration::from_millis(200);
/// The least time between two refreshes caused by misses.
const MISS_REFRESH: Duration = Duration::from_millis(20);

#[derive(Debug, Error)]
pub enum DnsServerError {
    #[error("listing the networks to serve DNS on")]
    Networks(#[source] NetworkStoreError),
    #[error("listing the containers whose names DNS serves")]
    Containers(#[source] ContainerError),
    #[error("network {network:?}: serving DNS on {address}")]
    Bind {
        network: String,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{UPSTREAM_ENV} is invalid; using the host's resolvers")]
    Upstream(#[source] UpstreamError),
}

/// What the listeners share: the current snapshot and how to renew it.
pub(crate) struct Shared {
    root: Root,
    /// `BERTH_DNS_UPSTREAM`, when set (and valid).
    upstreams: Option<Vec<SocketAddr>>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// When the snapshot was last loaded; also serialises loads.
    loaded: Mutex<Instant>,
    /// Round robin: the rotation of the next multi-address answer.
    rotation: AtomicUsize,
}

impl Shared {
    pub(crate) fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn next_rotation(&self) -> usize {
        self.rotation.fetch_add(1, Ordering::Relaxed)
    }

    fn publish(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut s) => *s = Arc::clone(&snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&snapshot),
        }
        snapshot
    }

    /// Loads and publishes a snapshot unless one was loaded less than
    /// `age` ago; concurrent callers wait for one load. Blocking.
    pub(crate) fn refresh_if_older(&self, age: Duration) -> Arc<Snapshot> {
        let mut loaded = match self.loaded.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if loaded.elapsed() < age {
            return self.current();
        }
        match load(&self.root, self.upstreams.as_deref()) {
            Ok((snapshot, _)) => {
                *loaded = Instant::now();
                self.publish(snapshot)
            }
            // The poll loop reports load errors; a miss keeps the old one.
            Err(_) => self.current(),
        }
    }
}

/// The snapshot of `root` now, and the network records it came from.
fn load(root: &Root, upstreams: Option<&[SocketAddr]>) -> Result<(Snapshot, Vec<NetworkRecord>), DnsServerError> {
    let records = NetworkStore::new(root).list().map_err(DnsServerError::Networks)?;
    let containers = container::list(root).map_err(DnsServerError::Containers)?;
    let live: Vec<&ContainerConfig> = containers
        .iter()
        .filter(|c| {
            c.state()
                .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused))
        })
        .map(|c| &c.config)
        .collect();
    // Read every time: the host's resolvers may change under the engine
    // (DHCP, a VPN), and the file is small.
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host = HostResolvers {
        upstreams: upstreams.map_or_else(|| upstream::nameservers(&resolv), <[SocketAddr]>::to_vec),
        search: upstream::search_domains(&resolv),
    };
    let networks: Vec<NetworkInfo> = records.iter().map(NetworkInfo::from).collect();
    Ok((Snapshot::build(&networks, &live, host), records))
}

/// A running DNS server; [`DnsServer::stop`] ends it.
pub struct DnsServer {
    root: Root,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Marks the root as served and starts the poll thread, which starts
    /// the listeners on `runtime`.
    pub fn spawn(root: Root, runtime: Handle) -> DnsServer {
        let upstreams = match std::env::var(UPSTREAM_ENV) {
            Ok(value) => match upstream::parse_list(&value) {
                Ok(list) => Some(list),
                Err(e) => {
                    log(format_args!("dns: {}", DnsServerError::Upstream(e)));
                    None
                }
            },
            Err(_) => None,
        };
        let shared = Arc::new(Shared {
            root: root.clone(),
            upstreams,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            loaded: Mutex::new(Instant::now()),
            rotation: AtomicUsize::new(0),
        });
        if let Err(e) = crate::network::dns::mark_serving(&root) {
            // Containers then keep the host's resolvers: hosts files still
            // name their peers.
            log(format_args!("dns: writing {}: {e}", crate::network::dns::MARKER_FILE));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || Poll::new(shared, runtime).run(&flag));
        DnsServer {
            root,
            stop,
            thread: Some(thread),
        }
    }

    /// Unmarks the root (new containers get the host's resolvers again),
    /// then closes every listener.
    pub fn stop(mut self) {
        crate::network::dns::clear_serving(&self.root);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The listeners of one network.
struct Served {
    id: String,
    gateway: Ipv4Addr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Served {
    fn close(self) {
        // Aborting drops the task's future, and with it the socket.
        for task in self.tasks {
            task.abort();
        }
    }
}

struct Poll {
    shared: Arc<Shared>,
    runtime: Handle,
    served: BTreeMap<String, Served>,
    /// The last error reported per network (or "" for the scan), so a
    /// failure that persists is logged once.
    reported: BTreeMap<String, String>,
}

impl Poll {
    fn new(shared: Arc<Shared>, runtime: Handle) -> Poll {
        Poll {
            shared,
            runtime,
            served: BTreeMap::new(),
            reported: BTreeMap::new(),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            self.tick();
            std::thread::sleep(POLL);
        }
        for (network, served) in std::mem::take(&mut self.served) {
            served.close();
            log(format_args!("dns: stopped serving network {network:?}"));
        }
    }

    fn tick(&mut self) {
        let loaded = {
            let mut at = match self.shared.loaded.lock() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            load(&self.shared.root, self.shared.upstreams.as_deref()).map(|(snapshot, records)| {
                *at = Instant::now();
                self.shared.publish(snapshot);
                records
            })
        };
        match loaded {
            Ok(records) => {
                self.reported.remove("");
                self.reconcile(&records);
            }
            Err(e) => self.report("", &e),
        }
    }

    fn report(&mut self, key: &str, error: &DnsServerError) {
        let text = crate::engine::apply::error_chain(error);
        if self.reported.get(key) != Some(&text) {
            log(format_args!("dns: {text}"));
            self.reported.insert(key.to_string(), text);
        }
    }

    /// Starts listeners for new networks, stops those of networks gone
    /// (or recreated under the same name with another gateway).
    fn reconcile(&mut self, records: &[NetworkRecord]) {
        let wanted: BTreeMap<&str, &NetworkRecord> = records.iter().map(|r| (r.name.as_str(), r)).collect();
        let stale: Vec<String> = self
            .served
            .iter()
            .filter(|(name, s)| {
                wanted
                    .get(name.as_str())
                    .is_none_or(|r| r.id != s.id || r.addressing.gateway != s.gateway)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(served) = self.served.remove(&name) {
                served.close();
                log(format_args!("dns: stopped serving network {name:?}"));
            }
        }
        for record in records {
            if self.served.contains_key(&record.name) {
                continue;
            }
            match listener::start(&self.shared, &self.runtime, &record.name, record.addressing.gateway) {
                Ok(tasks) => {
                    log(format_args!(
                        "dns: serving network {:?} on {}:53",
                        record.name, record.addressing.gateway
                    ));
                    self.reported.remove(&record.name);
                    self.served.insert(
                        record.name.clone(),
                        Served {
                            id: record.id.clone(),
                            gateway: record.addressing.gateway,
                            tasks,
                        },
                    );
                }
                Err(e) => self.report(&record.name, &e),
            }
        }
        self.reported
            .retain(|key, _| key.is_empty() || wanted.contains_key(key.as_str()));
    }
}
