//! Name resolution on bridge networks through each container's hosts file
//! (`<container dir>/hosts`, bind-mounted as its /etc/hosts): every live
//! container on a network lists every other live container on it by
//! container name, hostname and network aliases.
//!
//! [`render`] and [`entries`] decide what a file says, with no I/O;
//! [`write_own`], [`refresh_network`] and [`refresh_for_container`] read
//! the containers directory and rewrite the files, under the root's
//! `hosts` lock so two refreshes never interleave their writes.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::runtime::config::{ContainerConfig, Status};
use crate::runtime::container::{self, Container, ContainerError};
use crate::store::Root;

/// The line that marks a hosts file berth rewrites.
pub const MARKER: &str = "# berth: managed";

/// The address a container without bridge networks gives its hostname.
const LOOPBACK_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);

const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

#[derive(Debug, Error)]
pub enum HostsError {
    #[error("locking the hosts files of {root}: {source}")]
    Lock {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("listing containers for the hosts files: {0}")]
    Containers(#[from] ContainerError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One hosts line: an address and the names it answers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostEntry {
    pub address: Ipv4Addr,
    pub names: Vec<String>,
}

/// The whole file: the localhost lines, the marker, the container's own
/// lines, then `peers` and `extra` (`extra_hosts`), each as given.
pub fn render(own: &[HostEntry], peers: &[HostEntry], extra: &[HostEntry]) -> String {
    let mut out = String::from(LOCALHOST);
    out.push_str(MARKER);
    out.push('\n');
    for entry in own.iter().chain(peers).chain(extra) {
        out.push_str(&format!("{}\t{}\n", entry.address, entry.names.join(" ")));
    }
    out
}

/// The names `config` has on a network with `aliases`: hostname, name,
/// aliases, each once (docker's order).
fn names(config: &ContainerConfig, aliases: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in [&config.hostname, &config.name].into_iter().chain(aliases) {
        if !name.is_empty() && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The own lines and peer lines of `config`'s hosts file, given the other
/// live containers: one own line per network (or `127.0.1.1 hostname`
/// without any), and one line per address of a peer on a network `config`
/// is on, sorted by address and deduplicated.
pub fn entries(config: &ContainerConfig, live: &[&ContainerConfig]) -> (Vec<HostEntry>, Vec<HostEntry>) {
    let own = if config.networks.is_empty() {
        vec![HostEntry {
            address: LOOPBACK_HOST,
            names: vec![config.hostname.clone()],
        }]
    } else {
        config
            .networks
            .iter()
            .map(|a| HostEntry {
                address: a.address,
                names: names(config, &a.aliases),
            })
            .collect()
    };
    let mut peers: Vec<HostEntry> = live
        .iter()
        .filter(|peer| peer.id != config.id)
        .flat_map(|peer| {
            peer.networks
                .iter()
                .filter(|a| config.networks.iter().any(|mine| mine.network == a.network))
                .map(|a| HostEntry {
                    address: a.address,
                    names: names(peer, &a.aliases),
                })
        })
        .collect();
    peers.sort();
    peers.dedup();
    (own, peers)
}

/// Running (or paused: still on the network) containers.
fn live_containers(root: &Root) -> Result<Vec<Container>, HostsError> {
    Ok(container::list(root)?
        .into_iter()
        .filter(|c| {
            c.state()
                .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused))
        })
        .collect())
}

/// Rewrites `path` in place: truncate and write through the same inode.
/// The file is bind-mounted into the container, so a rename would leave it
/// seeing the old inode forever. Unchanged content is not rewritten, which
/// keeps the instant a reader could see a short file rare.
fn write_in_place(path: &Path, content: &str) -> Result<(), HostsError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    let err = |source| HostsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        // World-readable: the container's user may not be root.
        .mode(0o644)
        .open(path)
        .map_err(err)?;
    file.write_all(content.as_bytes()).map_err(err)
}

fn write_file(container: &Container, live: &[Container]) -> Result<(), HostsError> {
    let configs: Vec<&ContainerConfig> = live.iter().map(|c| &c.config).collect();
    let (own, peers) = entries(&container.config, &configs);
    let extra: Vec<HostEntry> = container
        .config
        .extra_hosts
        .iter()
        .map(|(name, address)| HostEntry {
            address: *address,
            names: vec![name.clone()],
        })
        .collect();
    write_in_place(&container.dir.join("hosts"), &render(&own, &peers, &extra))
}

fn lock(root: &Root) -> Result<nix::fcntl::Flock<std::fs::File>, HostsError> {
    root.lock("hosts").map_err(|source| HostsError::Lock {
        root: root.path().to_path_buf(),
        source,
    })
}

/// Rewrites the hosts file of every live container on `network`.
fn refresh_unlocked(live: &[Container], network: &str) -> Result<(), HostsError> {
    let mut first_error = None;
    for c in live
        .iter()
        .filter(|c| c.config.networks.iter().any(|a| a.network == network))
    {
        // One container removed meanwhile must not stop its peers' refresh.
        if let Err(e) = write_file(c, live) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes `container`'s own hosts file with the live peers now, whatever
/// its state: at create and just before a start, so the command finds its
/// peers from its first instruction.
pub fn write_own(root: &Root, container: &Container) -> Result<(), HostsError> {
    // Without a bridge network there are no peers: skip the lock and the
    // scan of every container (this runs on every start).
    if container.config.networks.is_empty() {
        return write_file(container, &[]);
    }
    let _lock = lock(root)?;
    write_file(container, &live_containers(root)?)
}

/// Rewrites the hosts file of every live container attached to `network`.
pub fn refresh_network(root: &Root, network: &str) -> Result<(), HostsError> {
    let _lock = lock(root)?;
    refresh_unlocked(&live_containers(root)?, network)
}

/// Refreshes every network `container` is attached to (after it started
/// or stopped), its own file included while it is live.
pub fn refresh_for_container(root: &Root, container: &Container) -> Result<(), HostsError> {
    if container.config.networks.is_empty() {
        return Ok(());
    }
    let _lock = lock(root)?;
    let live = live_containers(root)?;
    let mut first_error = None;
    for a in &container.config.networks {
        if let Err(e) = refresh_unlocked(&live, &a.network) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::config::NetworkAttachment;

    fn attachment(network: &str, address: [u8; 4], aliases: &[&str]) -> NetworkAttachment {
        NetworkAttachment {
            network: network.into(),
            bridge: "berth0".into(),
            address: address.into(),
            prefix: 24,
            gateway: Ipv4Addr::new(address[0], address[1], address[2], 1),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            veth_host: "bveth0".into(),
            mtu: 1500,
            internal: false,
        }
    }

    fn config(id: &str, name: &str, hostname: &str, networks: Vec<NetworkAttachment>) -> ContainerConfig {
        let json = serde_json::json!({
            "id": id, "name": name, "image": "busybox", "image_id": "x", "layers": [],
            "args": ["sh"], "env": [], "working_dir": "/", "user": "", "group_add": [],
            "hostname": hostname, "domainname": null, "mounts": [], "devices": [],
            "resources": crate::runtime::cgroups::Resources::default(), "capabilities": [], "privileged": false, "read_only": false,
            "no_new_privileges": false, "seccomp": "default", "rlimits": [], "sysctls": {},
            "shm_size": 0, "init": false, "tty": false, "interactive": false,
            "stop_signal": "SIGTERM", "stop_timeout": 10, "network": "bridge",
            "auto_remove": false, "labels": {}, "log_max_size": 0, "log_max_files": 1,
            "created": "now",
        });
        let mut c: ContainerConfig = serde_json::from_value(json).unwrap();
        c.networks = networks;
        c
    }

    #[test]
    fn own_lines_and_localhost() {
        let a = config(
            "aaa",
            "a",
            "host-a",
            vec![attachment("n1", [10, 0, 0, 2], &["web", "a"])],
        );
        let (own, peers) = entries(&a, &[&a]);
        assert!(peers.is_empty(), "a container is not its own peer");
        let text = render(&own, &peers, &[]);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains(&format!("{MARKER}\n")));
        assert!(text.ends_with("10.0.0.2\thost-a a web\n"), "{text}");

        let lone = config("bbb", "b", "bbbb", Vec::new());
        let (own, _) = entries(&lone, &[]);
        assert!(render(&own, &[], &[]).ends_with("127.0.1.1\tbbbb\n"));
    }

    #[test]
    fn peers_are_those_sharing_a_network_once_per_address() {
        let me = config(
            "me",
            "me",
            "me",
            vec![
                attachment("n1", [10, 0, 1, 2], &[]),
                attachment("n2", [10, 0, 2, 2], &[]),
            ],
        );
        let both = config(
            "both",
            "both",
            "hb",
            vec![
                attachment("n2", [10, 0, 2, 9], &["db"]),
                attachment("n1", [10, 0, 1, 9], &[]),
            ],
        );
        let other = config("o", "other", "o", vec![attachment("n3", [10, 0, 3, 5], &[])]);
        let early = config("e", "early", "e", vec![attachment("n1", [10, 0, 1, 3], &[])]);
        let (_, peers) = entries(&me, &[&other, &both, &early, &me]);
        let lines: Vec<String> = peers
            .iter()
            .map(|p| format!("{} {}", p.address, p.names.join(" ")))
            .collect();
        assert_eq!(lines, ["10.0.1.3 e early", "10.0.1.9 hb both", "10.0.2.9 hb both db"]);
        // Deterministic whatever order the containers are listed in.
        let (_, again) = entries(&me, &[&early, &me, &both, &other]);
        assert_eq!(peers, again);
    }

    #[test]
    fn extra_hosts_follow_peers() {
        let extra = [HostEntry {
            address: Ipv4Addr::new(192, 0, 2, 1),
            names: vec!["gw.example".into()],
        }];
        let peer = [HostEntry {
            address: Ipv4Addr::new(10, 0, 0, 3),
            names: vec!["p".into()],
        }];
        let text = render(&[], &peer, &extra);
        assert!(text.ends_with("10.0.0.3\tp\n192.0.2.1\tgw.example\n"), "{text}");
    }
}
