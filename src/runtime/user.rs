//! Resolving `--user` against the image's `/etc/passwd` and `/etc/group`,
//! as runc's `user.GetExecUser` does. Pure: takes the files' contents.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: groups listing the user, then `--group-add`.
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error("invalid user specification {0:?}")]
    Invalid(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if line.starts_with('#') || fields.len() < 6 {
            return None;
        }
        Some(PasswdEntry {
            name: fields[0],
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
            home: fields[5],
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if line.starts_with('#') || fields.len() < 3 {
            return None;
        }
        Some(GroupEntry {
            name: fields[0],
            gid: fields[2].parse().ok()?,
            members: fields
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …).
pub fn resolve(spec: &str, passwd: &str, group: &str, group_add: &[String]) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = passwd_entries(passwd).find(|e| e.name == user_part || e.uid.to_string() == user_part);
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.to_string()), e.home.to_string()),
        // A numeric uid need not exist in the image (docker allows it).
        (None, Ok(uid)) => (uid, 0, None, "/".to_string()),
        (None, Err(_)) => return Err(UserError::NoSuchUser(user_part.to_string())),
    };
    if let Some(g) = group_part {
        if g.is_empty() {
            return Err(UserError::Invalid(spec.to_string()));
        }
        gid = lookup_group(g, group)?;
    }
    let mut additional_gids: Vec<u32> = Vec::new();
    // Membership only applies when the primary group was not forced.
    if let (Some(name), None) = (&name, group_part) {
        for g in group_entries(group) {
            if g.members.contains(&name.as_str()) && g.gid != gid && !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    for g in group_add {
        let id = lookup_group(g, group)?;
        if !additional_gids.contains(&id) {
            additional_gids.push(id);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

fn lookup_group(g: &str, group: &str) -> Result<u32, UserError> {
    match group_entries(group).find(|e| e.name == g) {
        Some(e) => Ok(e.gid),
        None => g.parse().map_err(|_| UserError::NoSuchGroup(g.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nbob:x:1000:\naudio:x:29:bob,www\nvideo:x:44:bob\n";

    #[test]
    fn default_is_root() {
        let u = resolve("", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn by_name_with_supplementary_groups() {
        let u = resolve("bob", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![29, 44]);
        assert_eq!(u.home, "/home/bob");
    }

    #[test]
    fn numeric_and_group_forms() {
        let u = resolve("33", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (33, 33));
        let u = resolve("4242:video", PASSWD, GROUP, &["audio".into(), "7".into()]).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 44));
        assert_eq!(u.additional_gids, vec![29, 7]);
        assert_eq!(u.home, "/");
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("nobody", PASSWD, GROUP, &[]),
            Err(UserError::NoSuchUser("nobody".into()))
        );
        assert_eq!(
            resolve("bob:nogroup", PASSWD, GROUP, &[]),
            Err(UserError::NoSuchGroup("nogroup".into()))
        );
        assert!(resolve("bob:", PASSWD, GROUP, &[]).is_err());
    }
}
