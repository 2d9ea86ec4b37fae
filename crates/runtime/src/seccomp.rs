//! Docker's default seccomp profile, evaluated for one container.
//!
//! Docker's profile format has conditional rules (`includes`/`excludes` on
//! capabilities, architectures and a minimum kernel). The OCI spec has none, so the
//! conditions are resolved here, per container, against the capability set the
//! container will actually hold.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::{Result, RuntimeError};

/// Docker's default profile (moby/profiles, Apache-2.0), embedded verbatim.
pub const DOCKER_DEFAULT_PROFILE: &str = include_str!("../profiles/docker-default-seccomp.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Value>>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// The Go architecture name docker's profile uses for this build.
fn native_go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "s390x" => "SCMP_ARCH_S390X",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

fn parse_kernel(version: &str) -> (u32, u32) {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn running_kernel() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse_kernel(release.trim())
}

/// Whether the kernel runs x32-ABI syscalls (CONFIG_X86_X32_ABI). Most kernels do
/// not; there an x32 syscall fails with ENOSYS whatever the filter says, so leaving
/// the x32 sub-architecture out of the filter changes nothing a process can do, and
/// saves libseccomp about a third of its filter-building time on every start.
fn x32_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        if std::env::consts::ARCH != "x86_64" {
            return false;
        }
        const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
        // SAFETY: getpid has no arguments and no side effects in any ABI.
        let rc = unsafe { libc::syscall(libc::SYS_getpid | X32_SYSCALL_BIT) };
        !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
    })
}

/// Returns the OCI `linux.seccomp` object for a container holding `capabilities`.
pub fn docker_default(capabilities: &[String]) -> Result<Value> {
    evaluate(
        DOCKER_DEFAULT_PROFILE,
        capabilities,
        native_go_arch(),
        running_kernel(),
    )
}

fn evaluate(profile: &str, caps: &[String], arch: &str, kernel: (u32, u32)) -> Result<Value> {
    let profile: Profile =
        serde_json::from_str(profile).map_err(|e| RuntimeError::Seccomp(e.to_string()))?;
    let native = native_scmp_arch();
    let mut architectures = vec![native.to_string()];
    if let Some(map) = profile.arch_map.iter().find(|m| m.architecture == native) {
        architectures.extend(
            map.sub_architectures
                .iter()
                .flatten()
                .filter(|a| a.as_str() != "SCMP_ARCH_X32" || x32_supported())
                .cloned(),
        );
    }
    let has_cap = |c: &String| caps.contains(c);
    let mut syscalls = Vec::new();
    for rule in profile.syscalls {
        let inc = rule.includes.unwrap_or_default();
        let inc_caps = inc.caps.unwrap_or_default();
        let inc_arches = inc.arches.unwrap_or_default();
        if !inc_caps.is_empty() && !inc_caps.iter().all(has_cap) {
            continue;
        }
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == arch) {
            continue;
        }
        if let Some(min) = &inc.min_kernel {
            if kernel < parse_kernel(min) {
                continue;
            }
        }
        let exc = rule.excludes.unwrap_or_default();
        if exc.caps.unwrap_or_default().iter().any(has_cap) {
            continue;
        }
        if exc.arches.unwrap_or_default().iter().any(|a| a == arch) {
            continue;
        }
        let args = rule.args.unwrap_or_default();
        let mut entry = json!({ "names": rule.names, "action": rule.action });
        if let Some(errno) = rule.errno_ret {
            entry["errnoRet"] = json!(errno);
        }
        if !args.is_empty() {
            entry["args"] = Value::Array(args);
        }
        syscalls.push(entry);
    }
    let mut out = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(errno) = profile.default_errno_ret {
        out["defaultErrnoRet"] = json!(errno);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(profile: &Value, name: &str) -> bool {
        profile["syscalls"].as_array().unwrap().iter().any(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r["args"].is_null()
                && r["names"].as_array().unwrap().iter().any(|n| n == name)
        })
    }

    #[test]
    fn default_caps_do_not_unlock_admin_syscalls() {
        let caps: Vec<String> = crate::caps::DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = evaluate(DOCKER_DEFAULT_PROFILE, &caps, "amd64", (6, 1)).unwrap();
        assert!(allowed(&p, "read"));
        assert!(allowed(&p, "arch_prctl"));
        assert!(!allowed(&p, "mount"));
        assert!(!allowed(&p, "bpf"));
        assert!(!allowed(&p, "riscv_flush_icache"));
        // clone3 gets ENOSYS without CAP_SYS_ADMIN so that libc falls back to clone.
        let clone3 = p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["names"][0] == "clone3" && r["action"] == "SCMP_ACT_ERRNO")
            .expect("clone3 errno rule");
        assert_eq!(clone3["errnoRet"], 38);
    }

    #[test]
    fn sys_admin_unlocks_mount() {
        let caps = vec!["CAP_SYS_ADMIN".to_string()];
        let p = evaluate(DOCKER_DEFAULT_PROFILE, &caps, "amd64", (6, 1)).unwrap();
        assert!(allowed(&p, "mount"));
    }

    #[test]
    fn old_kernel_skips_min_kernel_rules() {
        let p = evaluate(DOCKER_DEFAULT_PROFILE, &[], "amd64", (4, 1)).unwrap();
        assert!(!allowed(&p, "ptrace"));
        let p = evaluate(DOCKER_DEFAULT_PROFILE, &[], "amd64", (5, 10)).unwrap();
        assert!(allowed(&p, "ptrace"));
    }

    #[test]
    fn output_is_a_valid_oci_seccomp_object() {
        let p = docker_default(&[]).unwrap();
        let parsed: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(p).unwrap();
        assert!(!parsed.syscalls().as_ref().unwrap().is_empty());
    }
}
