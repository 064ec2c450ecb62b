//! Outbound NAT for non-internal networks, with nftables.
//!
//! Each engine root owns one table, `ip berth_<root tag>`, so several roots
//! never touch each other's rules and a residue check can look for exactly
//! that table. Its `postrouting` chain (nat hook, priority 100 = srcnat)
//! holds one rule per network: traffic from the subnet that leaves through
//! any interface but the network's own bridge is masqueraded. Each rule
//! carries the network's name as its comment, which is how teardown finds
//! it again; the table goes when its last rule does.
//!
//! This drives the `nft` command (package `nftables`) with a script on
//! stdin, as netavark's `nftables` crate does with JSON batches (reference
//! B.5); a whole script is applied atomically or not at all. Changes are
//! serialised per root by `Root::lock("nat")`, so removing the last rule and
//! the table cannot race another network adding its rule.

use std::io::{self, Write};
use std::process::{Command, Stdio};

use thiserror::Error;

use super::cidr::Ipv4Cidr;
use crate::store::Root;

const NFT: &str = "nft";
const CHAIN: &str = "postrouting";

#[derive(Debug, Error)]
pub enum NatError {
    #[error("running `nft {args}` (NAT for network {network:?}; is the nftables package installed?)")]
    Spawn {
        network: String,
        args: String,
        #[source]
        source: io::Error,
    },
    #[error("`nft {args}` failed (NAT for network {network:?}): {stderr}")]
    Failed {
        network: String,
        args: String,
        stderr: String,
    },
    #[error("locking the NAT rules of {root}")]
    Lock {
        root: String,
        #[source]
        source: io::Error,
    },
}

/// The nftables table of the engine root tagged `root_tag`.
pub fn table_name(root_tag: &str) -> String {
    format!("berth_{root_tag}")
}

/// The script that adds `network`'s masquerade rule (creating the table and
/// chain if needed; `add` is a no-op for existing ones). Pure, so tested.
pub fn masquerade_script(table: &str, network: &str, subnet: &Ipv4Cidr, bridge: &str) -> String {
    format!(
        "add table ip {table}\n\
         add chain ip {table} {CHAIN} {{ type nat hook postrouting priority 100; policy accept; }}\n\
         add rule ip {table} {CHAIN} ip saddr {subnet} oifname != \"{bridge}\" masquerade comment \"{network}\"\n"
    )
}

/// The handles of `network`'s rules in `nft -a list chain` output, and
/// whether any other rule is left.
pub fn rule_handles(listing: &str, network: &str) -> (Vec<u64>, bool) {
    let marker = format!("comment \"{network}\"");
    let mut handles = Vec::new();
    let mut others = false;
    for line in listing.lines().map(str::trim) {
        let Some((rule, handle)) = line.rsplit_once("# handle ") else {
            continue;
        };
        // The chain's own line (`chain postrouting { # handle 1`) is no rule.
        if rule.trim_end().ends_with('{') {
            continue;
        }
        match handle.trim().parse::<u64>() {
            Ok(h) if rule.contains(&marker) => handles.push(h),
            Ok(_) => others = true,
            Err(_) => {}
        }
    }
    (handles, others)
}

/// Adds the masquerade rule of `network`.
pub fn add_masquerade(root: &Root, network: &str, subnet: &Ipv4Cidr, bridge: &str) -> Result<(), NatError> {
    let _lock = lock(root)?;
    let script = masquerade_script(&table_name(&root.tag()), network, subnet, bridge);
    nft(network, &["-f", "-"], Some(&script)).map(drop)
}

/// Removes the rules of `network` and, if it held the last, the table.
/// Nothing to remove is not an error.
pub fn remove_masquerade(root: &Root, network: &str) -> Result<(), NatError> {
    let _lock = lock(root)?;
    let table = table_name(&root.tag());
    let listing = match nft(network, &["-a", "list", "chain", "ip", &table, CHAIN], None) {
        Ok(listing) => listing,
        // No table or chain: nothing of ours is there.
        Err(NatError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => return Ok(()),
        Err(e) => return Err(e),
    };
    let (handles, others) = rule_handles(&listing, network);
    if !others {
        return nft(network, &["delete", "table", "ip", &table], None).map(drop);
    }
    for handle in handles {
        let handle = handle.to_string();
        nft(
            network,
            &["delete", "rule", "ip", &table, CHAIN, "handle", &handle],
            None,
        )?;
    }
    Ok(())
}

/// Whether the root's table exists (for residue checks).
pub fn table_exists(root: &Root) -> Result<bool, NatError> {
    let listing = nft("-", &["list", "tables", "ip"], None)?;
    let wanted = format!("table ip {}", table_name(&root.tag()));
    Ok(listing.lines().any(|l| l.trim() == wanted))
}

fn lock(root: &Root) -> Result<nix::fcntl::Flock<std::fs::File>, NatError> {
    root.lock("nat").map_err(|source| NatError::Lock {
        root: root.path().display().to_string(),
        source,
    })
}

/// Runs `nft ARGS` with `stdin`, returning its stdout.
fn nft(network: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NatError> {
    let joined = args.join(" ");
    let spawn_error = |source| NatError::Spawn {
        network: network.into(),
        args: joined.clone(),
        source,
    };
    let mut child = Command::new(NFT)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_error)?;
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    if !output.status.success() {
        return Err(NatError::Failed {
            network: network.into(),
            args: joined,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_table_subnet_bridge_and_network() {
        let subnet: Ipv4Cidr = "10.200.1.0/24".parse().unwrap();
        let script = masquerade_script("berth_0123abcd", "front", &subnet, "berth0123456789");
        assert!(script.starts_with("add table ip berth_0123abcd\n"));
        assert!(script.contains("type nat hook postrouting priority 100;"));
        assert!(script.ends_with(
            "add rule ip berth_0123abcd postrouting ip saddr 10.200.1.0/24 oifname != \"berth0123456789\" masquerade comment \"front\"\n"
        ));
    }

    #[test]
    fn finds_a_networks_rules_by_comment() {
        let listing = r#"table ip berth_0123abcd {
	chain postrouting { # handle 1
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.200.1.0/24 oifname != "berth1" masquerade comment "front" # handle 2
		ip saddr 10.200.2.0/24 oifname != "berth2" masquerade comment "front2" # handle 3
	}
}"#;
        assert_eq!(rule_handles(listing, "front"), (vec![2], true));
        assert_eq!(rule_handles(listing, "front2"), (vec![3], true));
        assert_eq!(rule_handles(listing, "other"), (vec![], true));
        let alone = listing.replace(
            "\t\tip saddr 10.200.2.0/24 oifname != \"berth2\" masquerade comment \"front2\" # handle 3\n",
            "",
        );
        assert_eq!(rule_handles(&alone, "front"), (vec![2], false));
    }
}
