//! Linux capabilities: Docker's default set, name normalisation, and the set the
//! calling process actually holds (what `--privileged` grants).

use crate::{Result, RuntimeError};

/// Every capability name the kernel knows, indexed by capability number.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set for unprivileged containers.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Accepts docker's spellings (`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`) and
/// returns the canonical `CAP_` name, or `ALL`.
pub fn normalize(name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(RuntimeError::UnknownCapability(name.to_string()))
    }
}

/// The capabilities in this process's bounding set that are also effective: the most
/// a container started by us can be given. Root on some hosts lacks a few (here:
/// CAP_SYS_RESOURCE), so a fixed "all capabilities" list would make the runtime fail.
pub fn held_by_self() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let held = mask("CapEff:") & mask("CapBnd:");
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| held & (1u64 << bit) != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// Applies `--cap-add` / `--cap-drop` to a base set the way docker does: drop first
/// (`ALL` clears the base), then add (`ALL` means everything the daemon holds).
pub fn resolve(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
    held: &[String],
) -> Result<Vec<String>> {
    if privileged {
        return Ok(held.to_vec());
    }
    let adds = cap_add
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>>>()?;
    let drops = cap_drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<Vec<_>>>()?;
    let mut set: Vec<String> = if drops.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    for add in adds {
        if add == "ALL" {
            for c in held {
                if !set.contains(c) {
                    set.push(c.clone());
                }
            }
        } else if !set.contains(&add) && !drops.contains(&add) {
            set.push(add);
        }
    }
    Ok(set)
}

/// Every capability [`held_by_self`] in the bounding, effective and permitted sets:
/// what a privileged exec is given, as docker gives it.
pub fn privileged_process_capabilities() -> oci_spec::runtime::LinuxCapabilities {
    let held: oci_spec::runtime::Capabilities = held_by_self()
        .into_iter()
        .filter_map(|name| serde_json::from_value(serde_json::Value::String(name)).ok())
        .collect();
    let mut sets = oci_spec::runtime::LinuxCapabilities::default();
    sets.set_bounding(Some(held.clone()));
    sets.set_effective(Some(held.clone()));
    sets.set_permitted(Some(held));
    sets.set_inheritable(None);
    sets.set_ambient(None);
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_docker_spellings() {
        assert_eq!(normalize("net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(normalize("CAP_SYS_ADMIN").unwrap(), "CAP_SYS_ADMIN");
        assert_eq!(normalize("all").unwrap(), "ALL");
        assert!(normalize("CAP_BOGUS").is_err());
    }

    #[test]
    fn drop_all_then_add_one() {
        let held = held_by_self();
        let caps = resolve(false, &["NET_ADMIN".into()], &["ALL".into()], &held).unwrap();
        assert_eq!(caps, vec!["CAP_NET_ADMIN".to_string()]);
    }

    #[test]
    fn default_set_minus_drop() {
        let caps = resolve(false, &[], &["chown".into()], &[]).unwrap();
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), DEFAULT_CAPABILITIES.len() - 1);
    }
}
