//! `--user` and `--group-add` resolved against the container's own
//! `/etc/passwd` and `/etc/group`, as docker resolves them.

use crate::{EngineError, Result};
use berth_monitor::Snapshot;

/// `--group-add` entries as gids: numbers as they are, names from the
/// container's /etc/group.
pub(crate) fn resolve_groups(groups: &[String], snapshot: &Snapshot) -> Result<Vec<u32>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let group_file = std::iter::once(&snapshot.upper)
        .chain(snapshot.lowers.iter())
        .find_map(|dir| std::fs::read_to_string(dir.join("etc/group")).ok())
        .unwrap_or_default();
    groups
        .iter()
        .map(|g| {
            g.parse::<u32>().or_else(|_| {
                group_file
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| {
                        EngineError::InvalidArgument(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })
            })
        })
        .collect()
}

/// Resolves docker's `-u` forms (`uid`, `uid:gid`, `name`, `name:group`) against
/// the container's /etc/passwd and /etc/group.
pub(crate) fn resolve_user(user: &str, snapshot: &Snapshot) -> Result<(u32, u32, Vec<u32>)> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let read = |rel: &str| -> String {
        std::iter::once(&snapshot.upper)
            .chain(snapshot.lowers.iter())
            .find_map(|dir| std::fs::read_to_string(dir.join(rel)).ok())
            .unwrap_or_default()
    };
    let passwd = read("etc/passwd");
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(uid) => {
            let gid = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == u)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(0);
            (uid, gid)
        }
        Err(_) => passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read("etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    Ok((uid, gid, Vec::new()))
}
