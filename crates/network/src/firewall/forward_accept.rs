//! Living next to dockerd's iptables rules with the nftables backend.
//!
//! A forwarded packet must pass every base chain at the forward hook. Where the
//! host's iptables FORWARD chain drops by default (dockerd sets that policy), it
//! drops berth's container traffic whatever berth's own nftables table decides. So
//! for each of its bridges the nftables backend also accepts in iptables: in
//! DOCKER-USER when that chain exists (dockerd keeps its rules across restarts and
//! consults it first), otherwise at the top of FORWARD. Isolation stays in berth's
//! table: a drop there is final whatever iptables accepts. Hosts whose FORWARD
//! policy is ACCEPT get no such rules.

use std::process::{Command, Stdio};

use crate::error::{Error, Result};

fn iptables(args: &[&str]) -> std::result::Result<String, String> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn tag(table: &str, bridge: &str) -> String {
    format!("berth:{table}:{bridge}")
}

fn fail(op: &str, table: &str, message: String) -> Error {
    Error::Iptables {
        op: op.to_string(),
        prefix: table.to_string(),
        message,
    }
}

/// Whether iptables drops forwarded packets by default here. False where the
/// iptables tools are missing: then nothing of theirs can drop.
fn forward_drops() -> bool {
    iptables(&["-S", "FORWARD"]).is_ok_and(|rules| rules.lines().any(|l| l == "-P FORWARD DROP"))
}

/// Accepts `bridge`'s forwarded traffic in iptables where its FORWARD policy
/// drops. Idempotent.
pub(crate) fn accept(table: &str, bridge: &str) -> Result<()> {
    if !forward_drops() {
        return Ok(());
    }
    let chain = if iptables(&["-S", "DOCKER-USER"]).is_ok() {
        "DOCKER-USER"
    } else {
        "FORWARD"
    };
    let tag = tag(table, bridge);
    for direction in ["-i", "-o"] {
        let rule = [
            direction,
            bridge,
            "-m",
            "comment",
            "--comment",
            &tag,
            "-j",
            "ACCEPT",
        ];
        let mut check = vec!["-C", chain];
        check.extend_from_slice(&rule);
        if iptables(&check).is_ok() {
            continue;
        }
        let mut insert = vec!["-I", chain, "1"];
        insert.extend_from_slice(&rule);
        iptables(&insert).map_err(|m| fail(&format!("accept {bridge} in {chain}"), table, m))?;
    }
    tracing::info!(
        table,
        bridge,
        chain,
        "iptables FORWARD drops by default: accepting the bridge there"
    );
    Ok(())
}

/// Removes the accept rules of `bridge`, or of every bridge of `table` when
/// None. Idempotent; nothing to do where iptables is missing.
pub(crate) fn remove(table: &str, bridge: Option<&str>) -> Result<()> {
    let wanted = |comment: &str| match bridge {
        Some(b) => comment == tag(table, b),
        None => comment.starts_with(&format!("berth:{table}:")),
    };
    for chain in ["FORWARD", "DOCKER-USER"] {
        let Ok(rules) = iptables(&["-S", chain]) else {
            continue;
        };
        for rule in rules.lines() {
            let words: Vec<&str> = rule
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            let ours = words
                .windows(2)
                .any(|w| w[0] == "--comment" && wanted(w[1]));
            if !ours || words.first() != Some(&"-A") {
                continue;
            }
            let mut delete = vec!["-D"];
            delete.extend_from_slice(&words[1..]);
            iptables(&delete)
                .map_err(|m| fail(&format!("remove accept rule from {chain}"), table, m))?;
        }
    }
    Ok(())
}
