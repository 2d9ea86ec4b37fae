//! Reading and poking a container's cgroup from outside it (freezer, stats, procs),
//! on cgroup v1 (one hierarchy per controller) and v2 (one unified hierarchy).

use std::path::{Path, PathBuf};

use crate::{Result, RuntimeError};

const ROOT: &str = "/sys/fs/cgroup";

/// True when /sys/fs/cgroup is itself the unified (v2) hierarchy.
pub fn is_unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The directory of `controller` for the cgroup at `rel` (e.g. `/berth/<id>`).
pub fn dir(controller: &str, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if is_unified() {
        Path::new(ROOT).join(rel)
    } else {
        Path::new(ROOT).join(controller).join(rel)
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| RuntimeError::io(format!("write {value:?} to {}", path.display()), e))
}

/// Freezes (`true`) or thaws every process of the cgroup at `rel`, and waits until
/// the kernel reports the new state.
pub fn set_frozen(rel: &str, frozen: bool) -> Result<()> {
    let (file, value, done) = if is_unified() {
        (
            dir("", rel).join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
            None,
        )
    } else {
        let state = if frozen { "FROZEN" } else { "THAWED" };
        (
            dir("freezer", rel).join("freezer.state"),
            state,
            Some(state),
        )
    };
    write(&file, value)?;
    if let Some(want) = done {
        // v1 freezing is asynchronous: FREEZING until every task stopped.
        for _ in 0..1000 {
            if read(&file).as_deref() == Some(want) {
                return Ok(());
            }
            write(&file, value)?;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        return Err(RuntimeError::Runtime(format!(
            "{} did not become {want}",
            file.display()
        )));
    }
    Ok(())
}

/// Process IDs in the cgroup at `rel` (host pid namespace).
pub fn pids(rel: &str) -> Vec<i32> {
    read(&dir("pids", rel).join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Every directory of the cgroup at `rel`: one per mounted v1 hierarchy that has
/// it (or the one unified directory), each followed by its sub-cgroups, deepest
/// first, so that removing them in order succeeds.
pub fn all_dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let roots: Vec<PathBuf> = if is_unified() {
        vec![PathBuf::from(ROOT)]
    } else {
        std::fs::read_dir(ROOT)
            .map(|entries| {
                entries
                    .flatten()
                    // Comounted hierarchies appear twice (cpu -> cpu,cpuacct).
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut dirs = Vec::new();
    for root in roots {
        let top = root.join(rel);
        if top.is_dir() {
            collect_subdirs(&top, &mut dirs);
            dirs.push(top);
        }
    }
    dirs
}

fn collect_subdirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let path = e.path();
            collect_subdirs(&path, out);
            out.push(path);
        }
    }
}

/// Kills every process in the cgroup at `rel` and its sub-cgroups (thawing a
/// frozen one first, or SIGKILL would wait for the thaw), then removes the
/// cgroup's directories. For a container whose monitor is gone: nothing else
/// will. Returns how many processes were signalled.
pub fn kill_and_remove(rel: &str) -> Result<usize> {
    let _ = set_frozen(rel, false);
    let mut signalled = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let procs: std::collections::HashSet<i32> = all_dirs(rel)
            .iter()
            .filter_map(|d| read(&d.join("cgroup.procs")))
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        if procs.is_empty() {
            break;
        }
        for pid in procs {
            // SAFETY: kill(2) with a pid read from the cgroup and a constant signal.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                signalled.insert(pid);
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(RuntimeError::Runtime(format!(
                "processes of cgroup {rel} survived SIGKILL for 10 s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for d in all_dirs(rel) {
        // An emptied cgroup may take a moment before the kernel lets it go.
        let mut removed = std::fs::remove_dir(&d);
        for _ in 0..200 {
            match &removed {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    removed = std::fs::remove_dir(&d);
                }
                _ => break,
            }
        }
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RuntimeError::io(format!("remove {}", d.display()), e)),
        }
    }
    Ok(signalled.len())
}

/// A snapshot of the numbers `docker stats` shows.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_stat: Vec<(String, u64)>,
    /// Total CPU time in nanoseconds.
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    pub pids: u64,
    pub pids_limit: u64,
}

fn parse_kv(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Reads memory, CPU and pids usage of the cgroup at `rel`.
pub fn usage(rel: &str) -> Usage {
    let num = |p: PathBuf| read(&p).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut u = Usage::default();
    if is_unified() {
        let d = dir("", rel);
        u.memory_usage = num(d.join("memory.current"));
        u.memory_limit = read(&d.join("memory.max"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        u.memory_stat = parse_kv(&read(&d.join("memory.stat")).unwrap_or_default());
        let cpu = parse_kv(&read(&d.join("cpu.stat")).unwrap_or_default());
        let get = |k: &str| {
            cpu.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| *v * 1000)
                .unwrap_or(0)
        };
        u.cpu_total_ns = get("usage_usec");
        u.cpu_user_ns = get("user_usec");
        u.cpu_system_ns = get("system_usec");
        u.pids = num(d.join("pids.current"));
        u.pids_limit = read(&d.join("pids.max"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    } else {
        let m = dir("memory", rel);
        u.memory_usage = num(m.join("memory.usage_in_bytes"));
        u.memory_limit = num(m.join("memory.limit_in_bytes"));
        u.memory_stat = parse_kv(&read(&m.join("memory.stat")).unwrap_or_default());
        let c = dir("cpuacct", rel);
        u.cpu_total_ns = num(c.join("cpuacct.usage"));
        let ticks = parse_kv(&read(&c.join("cpuacct.stat")).unwrap_or_default());
        // cpuacct.stat is in USER_HZ (100 per second on Linux).
        let get = |k: &str| {
            ticks
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| *v * 10_000_000)
                .unwrap_or(0)
        };
        u.cpu_user_ns = get("user");
        u.cpu_system_ns = get("system");
        let p = dir("pids", rel);
        u.pids = num(p.join("pids.current"));
        u.pids_limit = read(&p.join("pids.max"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    }
    u
}

/// New limits for a running container (`docker update`); `None` leaves one as is.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Bytes; 0 or less means unlimited.
    pub memory: Option<i64>,
    /// (quota, period) in microseconds; quota 0 or less means unlimited.
    pub cpu: Option<(i64, u64)>,
    pub cpu_shares: Option<u64>,
    /// 0 or less means unlimited.
    pub pids: Option<i64>,
}

/// Writes `limits` into the cgroup at `rel`.
pub fn apply(rel: &str, limits: &Limits) -> Result<()> {
    let unified = is_unified();
    if let Some(memory) = limits.memory {
        if unified {
            let v = if memory > 0 {
                memory.to_string()
            } else {
                "max".into()
            };
            write(&dir("", rel).join("memory.max"), &v)?;
        } else {
            write(
                &dir("memory", rel).join("memory.limit_in_bytes"),
                &(if memory > 0 { memory } else { -1 }).to_string(),
            )?;
        }
    }
    if let Some((quota, period)) = limits.cpu {
        if unified {
            let q = if quota > 0 {
                quota.to_string()
            } else {
                "max".into()
            };
            write(&dir("", rel).join("cpu.max"), &format!("{q} {period}"))?;
        } else {
            let d = dir("cpu", rel);
            write(&d.join("cpu.cfs_period_us"), &period.to_string())?;
            write(
                &d.join("cpu.cfs_quota_us"),
                &(if quota > 0 { quota } else { -1 }).to_string(),
            )?;
        }
    }
    if let Some(shares) = limits.cpu_shares {
        if unified {
            // The OCI conversion from shares (2..262144) to weight (1..10000).
            let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
            write(&dir("", rel).join("cpu.weight"), &weight.to_string())?;
        } else {
            write(&dir("cpu", rel).join("cpu.shares"), &shares.to_string())?;
        }
    }
    if let Some(pids) = limits.pids {
        let v = if pids > 0 {
            pids.to_string()
        } else {
            "max".into()
        };
        write(&dir("pids", rel).join("pids.max"), &v)?;
    }
    Ok(())
}
