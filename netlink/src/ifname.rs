//! Interface names: validation against the kernel's rules and short, stable
//! names derived from long ones.

use thiserror::Error;

/// `IFNAMSIZ` is 16 in `<linux/if.h>`, including the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IfNameError {
    #[error("interface name is empty")]
    Empty,
    #[error("interface name {0:?} is longer than {MAX_IFNAME_LEN} bytes")]
    TooLong(String),
    /// `dev_valid_name()` in net/core/dev.c rejects '/', ':' and whitespace,
    /// and the names "." and "..".
    #[error("interface name {0:?} contains a character the kernel refuses ('/', ':' or whitespace) or is '.'/'..'")]
    InvalidCharacter(String),
}

/// Checks a name the way the kernel's `dev_valid_name()` does, so that an
/// invalid name is reported before any netlink request is sent.
pub fn validate(name: &str) -> Result<(), IfNameError> {
    if name.is_empty() {
        return Err(IfNameError::Empty);
    }
    if name.len() > MAX_IFNAME_LEN {
        return Err(IfNameError::TooLong(name.to_string()));
    }
    if name == "." || name == ".." || name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(IfNameError::InvalidCharacter(name.to_string()));
    }
    Ok(())
}

/// A kernel-sized name `<prefix><hash>` for a long logical name (a network or
/// container id). The hash is FNV-1a over `seed`, so the same seed always
/// gives the same name and the store can map it back; `prefix` is truncated
/// so the result always fits [`MAX_IFNAME_LEN`].
pub fn short_name(prefix: &str, seed: &str) -> String {
    const HASH_HEX: usize = 10;
    let keep = MAX_IFNAME_LEN - HASH_HEX;
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(keep)
        .collect();
    let hash = fnv1a64(seed.as_bytes());
    format!("{prefix}{:0width$x}", hash >> (64 - 4 * HASH_HEX), width = HASH_HEX)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_the_kernel() {
        assert!(validate("eth0").is_ok());
        assert!(validate("abcdefghijklmno").is_ok());
        assert_eq!(validate(""), Err(IfNameError::Empty));
        assert!(matches!(validate("abcdefghijklmnop"), Err(IfNameError::TooLong(_))));
        assert!(matches!(validate("a/b"), Err(IfNameError::InvalidCharacter(_))));
        assert!(matches!(validate("a b"), Err(IfNameError::InvalidCharacter(_))));
        assert!(matches!(validate(".."), Err(IfNameError::InvalidCharacter(_))));
    }

    #[test]
    fn short_names_fit_and_are_stable() {
        let a = short_name("br-", "myproject_default");
        let b = short_name("br-", "myproject_default");
        let c = short_name("br-", "myproject_backend");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("br-"));
        assert!(validate(&a).is_ok());
        let long = short_name("a-very-long-prefix", "x");
        assert_eq!(long.len(), MAX_IFNAME_LEN);
        assert!(validate(&long).is_ok());
    }
}
