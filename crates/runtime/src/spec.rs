//! Builds an OCI runtime spec (`config.json`) with Docker's defaults.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{caps, seccomp, Result, RuntimeError};

pub use oci_spec::runtime::{Process, User};

/// Paths docker hides from unprivileged containers (bind of /dev/null or an empty tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths docker remounts read-only in unprivileged containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A fresh network namespace with only loopback.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// An existing network namespace (bridge networks prepare one; `container:X`
    /// shares X's).
    Join(PathBuf),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountSpec {
    pub destination: String,
    pub source: String,
    pub kind: String,
    pub options: Vec<String>,
}

/// Everything berth decides about one container process, in plain terms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpecOptions {
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub terminal: bool,
    pub hostname: String,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp_unconfined: bool,
    pub network: NetworkMode,
    /// Bytes; 0 means unlimited.
    pub memory: i64,
    /// The soft limit in bytes; 0 means none.
    #[serde(default)]
    pub memory_reservation: i64,
    /// `--cpuset-cpus` / `--cpuset-mems` lists; empty means all.
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    /// CPU quota in billionths of a CPU (docker's NanoCpus); 0 means unlimited.
    pub nano_cpus: i64,
    pub cpu_shares: u64,
    pub cpu_quota: i64,
    pub cpu_period: u64,
    /// 0 or negative means unlimited.
    pub pids_limit: i64,
    /// e.g. `/berth/<id>`: relative to each cgroup hierarchy's root.
    pub cgroups_path: String,
    pub mounts: Vec<MountSpec>,
    /// `--ulimit`, checked by [`crate::limits::rlimit`].
    #[serde(default)]
    pub rlimits: Vec<crate::limits::Rlimit>,
    /// `--sysctl`, checked by [`crate::limits::check_sysctl`].
    #[serde(default)]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// Bytes of /dev/shm; 0 means docker's 64 MiB.
    #[serde(default)]
    pub shm_size: u64,
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": kind, "source": source, "options": options })
}

/// Builds the OCI `config.json` for `opts`.
pub fn build_spec(opts: &SpecOptions) -> Result<Value> {
    let held = caps::held_by_self();
    let capabilities = caps::resolve(opts.privileged, &opts.cap_add, &opts.cap_drop, &held)?;

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match &opts.network {
        NetworkMode::None => namespaces.push(json!({"type": "network"})),
        NetworkMode::Join(path) => namespaces.push(json!({"type": "network", "path": path})),
        NetworkMode::Host => {}
    }

    let shm_size = if opts.shm_size > 0 {
        format!("size={}", opts.shm_size)
    } else {
        "size=65536k".to_string()
    };
    let sys_options: &[&str] = if opts.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_options: &[&str] = if opts.privileged {
        &["rw", "nosuid", "noexec", "nodev"]
    } else {
        &["ro", "nosuid", "noexec", "nodev"]
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_options),
        // Read-only unless privileged, as docker mounts it.
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cgroup_options),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];
    for m in &opts.mounts {
        mounts.push(json!({
            "destination": m.destination,
            "type": m.kind,
            "source": m.source,
            "options": m.options,
        }));
    }

    let mut resources = json!({
        "devices": default_device_rules(opts.privileged),
    });
    if opts.memory > 0 {
        resources["memory"] = json!({ "limit": opts.memory });
    }
    if opts.memory_reservation > 0 {
        resources["memory"]["reservation"] = json!(opts.memory_reservation);
    }
    let mut cpu = serde_json::Map::new();
    if !opts.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(opts.cpuset_cpus));
    }
    if !opts.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(opts.cpuset_mems));
    }
    if opts.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(opts.cpu_shares));
    }
    if opts.nano_cpus > 0 {
        let period: u64 = 100_000;
        let quota = opts.nano_cpus.saturating_mul(period as i64) / 1_000_000_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(quota.max(1000)));
    } else if opts.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(opts.cpu_quota));
        let period = if opts.cpu_period > 0 {
            opts.cpu_period
        } else {
            100_000
        };
        cpu.insert("period".into(), json!(period));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if opts.pids_limit > 0 {
        resources["pids"] = json!({ "limit": opts.pids_limit });
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": opts.cgroups_path,
        "rootfsPropagation": "private",
    });
    if !opts.sysctls.is_empty() {
        linux["sysctl"] = json!(opts.sysctls);
    }
    if !opts.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        if !opts.seccomp_unconfined {
            linux["seccomp"] = seccomp::docker_default(&capabilities)?;
        }
    }

    let mut user = json!({ "uid": opts.uid, "gid": opts.gid });
    if !opts.additional_gids.is_empty() {
        user["additionalGids"] = json!(opts.additional_gids);
    }
    let mut process = json!({
        "terminal": opts.terminal,
        "user": user,
        "args": opts.args,
        "env": opts.env,
        "cwd": if opts.cwd.is_empty() { "/" } else { opts.cwd.as_str() },
        "capabilities": {
            "bounding": capabilities,
            "effective": capabilities,
            "permitted": capabilities,
        },
    });
    // Only present when true: libcontainer 0.7 loads seccomp before dropping
    // capabilities only when the field is absent, and `false` would make it load the
    // filter after CAP_SYS_ADMIN is gone, which the kernel refuses.
    if opts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !opts.rlimits.is_empty() {
        process["rlimits"] = opts
            .rlimits
            .iter()
            .map(|r| json!({ "type": r.kind, "soft": r.soft, "hard": r.hard }))
            .collect();
    }

    Ok(json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": { "path": opts.rootfs, "readonly": opts.readonly_rootfs },
        "hostname": opts.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

/// Docker's default device cgroup rules: deny everything, then allow the handful of
/// character devices every container gets, and mknod of anything.
fn default_device_rules(privileged: bool) -> Value {
    if privileged {
        return json!([{ "allow": true, "access": "rwm" }]);
    }
    let char_dev = |major: i64, minor: Option<i64>| json!({ "allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm" });
    json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "access": "m" },
        { "allow": true, "type": "b", "access": "m" },
        char_dev(1, Some(3)),
        char_dev(1, Some(5)),
        char_dev(1, Some(7)),
        char_dev(1, Some(8)),
        char_dev(1, Some(9)),
        char_dev(5, Some(0)),
        char_dev(5, Some(1)),
        char_dev(5, Some(2)),
        char_dev(136, None),
        char_dev(10, Some(200)),
    ])
}

/// A copy of the process of the container whose spec is at `spec_path`: an exec
/// or a health probe is another process with the same confinement (capabilities,
/// rlimits, seccomp, AppArmor), edited from this.
pub fn container_process(spec_path: &Path) -> Result<Process> {
    #[derive(Deserialize)]
    struct ProcessOnly {
        process: Option<Process>,
    }
    let bytes = std::fs::read(spec_path)
        .map_err(|e| RuntimeError::io(format!("read {}", spec_path.display()), e))?;
    let spec: ProcessOnly =
        serde_json::from_slice(&bytes).map_err(|source| RuntimeError::Spec {
            path: spec_path.to_path_buf(),
            source,
        })?;
    spec.process
        .ok_or_else(|| RuntimeError::Runtime(format!("{} has no process", spec_path.display())))
}

/// A user `uid`:`gid` with no supplementary groups.
pub fn user(uid: u32, gid: u32) -> User {
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SpecOptions {
        SpecOptions {
            rootfs: "/tmp/rootfs".into(),
            args: vec!["sh".into()],
            cgroups_path: "/berth/abc".into(),
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: 10,
            ..Default::default()
        }
    }

    #[test]
    fn spec_parses_as_oci() {
        let v = build_spec(&opts()).unwrap();
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 10);
        let mut o = opts();
        o.memory_reservation = 32 << 20;
        o.cpuset_cpus = "0".into();
        o.cpuset_mems = "0".into();
        let v = build_spec(&o).unwrap();
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().reservation(), Some(32 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        assert_eq!(res.cpu().as_ref().unwrap().mems().as_deref(), Some("0"));
    }

    #[test]
    fn privileged_has_no_masks_or_seccomp() {
        let mut o = opts();
        o.privileged = true;
        let v = build_spec(&o).unwrap();
        assert!(v["linux"]["seccomp"].is_null());
        assert!(v["linux"]["maskedPaths"].is_null());
    }

    #[test]
    fn host_network_keeps_host_netns() {
        let mut o = opts();
        o.network = NetworkMode::Host;
        let v = build_spec(&o).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
    }
}
