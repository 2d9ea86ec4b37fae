//! The one place where a container's settings are checked, for `create` and
//! `update` alike, with dockerd's messages: what dockerd refuses is refused here
//! with a 400, and so is what dockerd accepts at create only to fail at start
//! (a negative CPU share, a NUL in the environment, a port binding that cannot be
//! made), because a create that succeeds should be a container that can start.

use crate::model::{HostSettings, Resources};
use crate::port::{PortMap, Protocol};
use crate::{EngineError, Result};

/// The kernel's smallest useful memory limit, as dockerd enforces it.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(message.into())
}

/// The resource settings of `h` (memory, CPU, cpuset), as dockerd's
/// `verifyPlatformContainerResources` checks them; used by create and by update
/// (on the merged result).
pub(crate) fn resources(h: &Resources) -> Result<()> {
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if h.memory_swap > 0 && h.memory == 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if h.memory > 0 && h.memory_swap > 0 && h.memory_swap < h.memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if h.memory_reservation != 0 && h.memory_reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if h.memory > 0 && h.memory_reservation > 0 && h.memory < h.memory_reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let cpus = online_cpu_count();
    if h.nano_cpus < 0 || h.nano_cpus > cpus.saturating_mul(1_000_000_000) {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    if h.nano_cpus > 0 && h.cpu_quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if h.nano_cpus > 0 && h.cpu_period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if h.cpu_shares < 0 {
        return Err(invalid(format!(
            "invalid CPU shares ({}): the value must not be negative",
            h.cpu_shares
        )));
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if h.pids_limit < -1 {
        return Err(invalid(format!(
            "invalid pids limit {}: -1 (unlimited), 0 (unset) or a positive count",
            h.pids_limit
        )));
    }
    cpuset(&h.cpuset_cpus, "cpus", "CPUs", &online("cpu"))?;
    cpuset(&h.cpuset_mems, "mems", "memory nodes", &online("node"))?;
    Ok(())
}

/// `--cpuset-cpus` / `--cpuset-mems`: a list such as `0-2,4` naming only what
/// the host has.
fn cpuset(value: &str, kind: &str, what: &str, available: &str) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    let requested = parse_list(value).ok_or_else(|| {
        invalid(format!(
            "Invalid value {value} for cpuset {kind}: invalid format: {value}"
        ))
    })?;
    let have = parse_list(available).unwrap_or_default();
    if requested.iter().any(|n| !have.contains(n)) {
        return Err(invalid(format!(
            "Requested {what} are not available - requested {value}, available: {available}"
        )));
    }
    Ok(())
}

/// The kernel's list format (`0-3,5`), as numbers.
fn parse_list(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// What `/sys/devices/system/{cpu,node}/online` lists (`0` for memory nodes on a
/// kernel without NUMA).
fn online(kind: &str) -> String {
    std::fs::read_to_string(format!("/sys/devices/system/{kind}/online"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0".into())
}

fn online_cpu_count() -> i64 {
    parse_list(&online("cpu")).map_or(1, |l| l.len().max(1) as i64)
}

/// `Env`: `NAME=value` or `NAME`, with a name and no NUL anywhere (the kernel
/// cannot pass one to execve).
pub(crate) fn environment(env: &[String]) -> Result<()> {
    for e in env {
        let name = e.split_once('=').map_or(e.as_str(), |(n, _)| n);
        if name.is_empty() || e.contains('\0') {
            return Err(invalid(format!(
                "invalid environment variable: {}",
                e.replace('\0', "\\x00")
            )));
        }
    }
    Ok(())
}

/// `PortBindings`: what berth cannot publish although docker's grammar (checked
/// when the bindings were parsed, [`crate::port`]) allows it.
pub(crate) fn port_bindings(bindings: &PortMap) -> Result<()> {
    for (port, hosts) in bindings {
        if port.protocol == Protocol::Sctp {
            return Err(invalid("publishing sctp ports is not supported by berth"));
        }
        for b in hosts {
            if let Some(ip @ std::net::IpAddr::V6(_)) = b.host_ip {
                return Err(invalid(format!(
                    "IPv6 host address {ip} is not supported by berth"
                )));
            }
        }
    }
    Ok(())
}

/// The mode of `-v SRC:DEST:MODE`, as dockerd's `ValidMountMode`: each kind of
/// option (access, SELinux label, propagation, copy, consistency) at most once.
pub(crate) fn bind_mode(mode: &str, propagations: &[&str]) -> Result<()> {
    let mut counts = [0u8; 5];
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        let kind = match m {
            "ro" | "rw" => 0,
            "z" | "Z" => 1,
            p if propagations.contains(&p) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return Err(invalid(format!("invalid mode: {mode}"))),
        };
        counts[kind] += 1;
    }
    if counts.iter().any(|&c| c > 1) {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    Ok(())
}

/// `HostConfig.Devices`: not implemented yet, so refused rather than dropped.
pub(crate) fn devices(h: &HostSettings) -> Result<()> {
    if h.devices.is_empty() && h.device_cgroup_rules.is_empty() {
        return Ok(());
    }
    Err(invalid(
        "devices (--device, --device-cgroup-rule) are not supported by berth yet",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut Resources)) -> Result<()> {
        let mut h = Resources::default();
        change(&mut h);
        resources(&h)
    }

    fn message(r: Result<()>) -> String {
        match r {
            Err(EngineError::InvalidArgument(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn memory_as_dockerd_checks_it() {
        assert!(with(|_| {}).is_ok());
        assert!(with(|h| h.memory = MIN_MEMORY).is_ok());
        for m in [1, 1 << 20, -5] {
            assert_eq!(
                message(with(|h| h.memory = m)),
                "Minimum memory limit allowed is 6MB"
            );
        }
        assert!(message(with(|h| {
            h.memory = 10 << 20;
            h.memory_swap = 1000;
        }))
        .starts_with("Minimum memoryswap"));
        assert!(with(|h| {
            h.memory = 10 << 20;
            h.memory_swap = -1;
        })
        .is_ok());
        assert!(message(with(|h| h.memory_swap = 10 << 20)).starts_with("You should always"));
        assert!(message(with(|h| {
            h.memory = 10 << 20;
            h.memory_reservation = 100 << 20;
        }))
        .contains("memory reservation"));
    }

    #[test]
    fn cpu_as_dockerd_checks_it() {
        assert!(message(with(|h| h.nano_cpus = -1)).starts_with("Range of CPUs"));
        assert!(message(with(|h| h.nano_cpus = i64::MAX)).starts_with("Range of CPUs"));
        assert!(with(|h| h.nano_cpus = 5_000_000).is_ok());
        assert!(message(with(|h| {
            h.nano_cpus = 1_000_000_000;
            h.cpu_quota = 50_000;
        }))
        .contains("Nano CPUs and CPU Quota"));
        assert!(message(with(|h| h.cpu_shares = -1)).contains("CPU shares"));
        assert!(message(with(|h| h.cpu_period = 10)).contains("cfs period"));
        assert!(message(with(|h| h.cpu_quota = 10)).contains("cfs quota"));
        assert!(with(|h| h.cpu_quota = -1).is_ok());
    }

    #[test]
    fn cpusets_name_what_the_host_has() {
        assert!(with(|h| h.cpuset_cpus = "0".into()).is_ok());
        assert!(message(with(|h| h.cpuset_cpus = "0-4095".into()))
            .starts_with("Requested CPUs are not available - requested 0-4095, available: "));
        assert_eq!(
            message(with(|h| h.cpuset_cpus = "garbage".into())),
            "Invalid value garbage for cpuset cpus: invalid format: garbage"
        );
        assert!(message(with(|h| h.cpuset_mems = "5".into()))
            .starts_with("Requested memory nodes are not available"));
        assert_eq!(parse_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_list("3-1"), None);
        assert_eq!(parse_list("1,"), None);
        assert_eq!(parse_list("0-4000000000"), None);
    }

    #[test]
    fn environment_entries_need_a_name_and_no_nul() {
        assert!(environment(&["A=1".into(), "B".into(), "C=".into()]).is_ok());
        for bad in ["=x", "", "A\0B=1", "A=x\0y"] {
            assert!(environment(&[bad.to_string()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn port_bindings_that_could_never_be_made() {
        // Parsing (docker's grammar) then the check (what berth can publish),
        // as a create request goes through them.
        let check = |port: &str, ip: &str, host: &str| {
            let port: crate::port::ContainerPort = port.parse()?;
            let b = crate::port::HostBinding::parse(ip, host)?;
            port_bindings(&[(port, vec![b])].into_iter().collect())
        };
        assert!(check("80/tcp", "", "8080").is_ok());
        assert!(check("53/udp", "127.0.0.1", "").is_ok());
        // A host range: berthd picks a free port of it at start.
        assert!(check("80/tcp", "", "8000-8010").is_ok());
        assert!(check("80/tcp", "", "0-10").is_err());
        for (port, ip, host, refusal) in [
            (
                "80/tcp",
                "",
                "99999",
                r#"invalid port specification: "99999""#,
            ),
            ("abc/tcp", "", "80", r#"invalid port specification: "abc""#),
            ("80/bogus", "", "80", "invalid proto: bogus"),
            ("80/tcp", "bad", "80", "invalid IP address: bad"),
            (
                "80/tcp",
                "",
                "80-70",
                r#"invalid port specification: "80-70""#,
            ),
            (
                "80/sctp",
                "",
                "80",
                "publishing sctp ports is not supported by berth",
            ),
            (
                "80/tcp",
                "::1",
                "80",
                "IPv6 host address ::1 is not supported by berth",
            ),
        ] {
            assert_eq!(
                message(check(port, ip, host)),
                refusal,
                "{port} {ip} {host}"
            );
        }
    }

    #[test]
    fn bind_modes_once_each() {
        let props = [
            "private", "rprivate", "shared", "rshared", "slave", "rslave",
        ];
        for ok in ["", "ro", "rw", "ro,z", "rw,rslave,nocopy", "Z,delegated"] {
            assert!(bind_mode(ok, &props).is_ok(), "{ok}");
        }
        for bad in [
            "rw,ro",
            "ro,ro",
            "bogus",
            "shared,slave",
            "z,Z",
            "nocopy,nocopy",
        ] {
            assert_eq!(
                message(bind_mode(bad, &props)),
                format!("invalid mode: {bad}")
            );
        }
    }
}
