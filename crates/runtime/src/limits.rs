//! docker's `--ulimit` and `--sysctl`: which names exist, which are allowed.

/// The resource limits docker's `--ulimit` knows, by its names.
const RLIMITS: &[(&str, &str, libc::__rlimit_resource_t)] = &[
    ("as", "RLIMIT_AS", libc::RLIMIT_AS),
    ("core", "RLIMIT_CORE", libc::RLIMIT_CORE),
    ("cpu", "RLIMIT_CPU", libc::RLIMIT_CPU),
    ("data", "RLIMIT_DATA", libc::RLIMIT_DATA),
    ("fsize", "RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("locks", "RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("memlock", "RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("msgqueue", "RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("nice", "RLIMIT_NICE", libc::RLIMIT_NICE),
    ("nofile", "RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("nproc", "RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("rss", "RLIMIT_RSS", libc::RLIMIT_RSS),
    ("rtprio", "RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("rttime", "RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("sigpending", "RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("stack", "RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// One `process.rlimits` entry of the OCI spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE` and so on.
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// Checks docker's `{Name, Soft, Hard}` (-1 meaning unlimited) and turns it into
/// an OCI rlimit. A hard limit above the daemon's own needs CAP_SYS_RESOURCE,
/// which the container's setrlimit would otherwise fail on at start.
pub fn rlimit(name: &str, soft: i64, hard: i64) -> Result<Rlimit, String> {
    let (_, kind, resource) = RLIMITS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| format!("invalid ulimit type: {name}"))?;
    let value = |v: i64| if v < 0 { libc::RLIM_INFINITY } else { v as u64 };
    let (soft, hard) = (value(soft), value(hard));
    if soft > hard {
        return Err(format!(
            "ulimit {name}: soft limit {soft} is above the hard limit {hard}"
        ));
    }
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let known = unsafe { libc::getrlimit(*resource, &mut own) } == 0;
    let may_raise = crate::caps::held_by_self()
        .iter()
        .any(|c| c == "CAP_SYS_RESOURCE");
    if known && hard > own.rlim_max && !may_raise {
        return Err(format!(
            "ulimit {name}: hard limit {hard} is above the daemon's own ({}), and berthd lacks CAP_SYS_RESOURCE to raise it",
            own.rlim_max
        ));
    }
    Ok(Rlimit {
        kind: kind.to_string(),
        soft,
        hard,
    })
}

/// IPC sysctls a container's own IPC namespace holds (docker's list).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Whether `--sysctl key` may be set: only what the container's own namespaces
/// hold (IPC, `fs.mqueue.*`, and `net.*` unless it shares the host's network).
pub fn check_sysctl(key: &str, host_network: bool) -> Result<(), String> {
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        return Ok(());
    }
    if key.starts_with("net.") {
        if host_network {
            return Err(format!(
                "sysctl {key:?} is not allowed in host network namespace"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "sysctl {key:?} is not allowed: only namespaced kernel parameters (net.*, fs.mqueue.*, kernel IPC) can be set"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        let r = rlimit("nofile", 512, 1024).expect("valid");
        assert_eq!(
            (r.kind.as_str(), r.soft, r.hard),
            ("RLIMIT_NOFILE", 512, 1024)
        );
        assert!(rlimit("bogus", 1, 1).is_err());
        assert!(rlimit("nofile", 2048, 1024)
            .unwrap_err()
            .contains("above the hard"));
        assert_eq!(
            rlimit("core", -1, -1).expect("unlimited core").hard,
            libc::RLIM_INFINITY
        );
    }

    #[test]
    fn sysctls() {
        assert!(check_sysctl("net.ipv4.ip_forward", false).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", true).is_err());
        assert!(check_sysctl("kernel.shmmax", false).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", false).is_ok());
        assert!(check_sysctl("vm.swappiness", false).is_err());
        assert!(check_sysctl("kernel.panic", false).is_err());
    }
}
