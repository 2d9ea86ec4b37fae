//! `stats`: one sample of a container's cgroup counters.

use crate::{Engine, Result};

/// The host's memory in bytes (`MemTotal`): what an unlimited container's
/// limit means, and what `info` reports.
pub fn host_memory() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// One sample of a container's counters; the API shapes it as docker's stats
/// JSON, the CRI as `ContainerStats`.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub id: String,
    pub name: String,
    /// When it was read (RFC 3339).
    pub read: String,
    /// Whether the container ran: a stopped one has no memory figures.
    pub running: bool,
    pub usage: berth_runtime::cgroups::Usage,
    /// The host's CPU time in nanoseconds (docker's `system_cpu_usage`).
    pub system_cpu_ns: u64,
    pub online_cpus: usize,
    /// The memory limit in effect: the cgroup's, or the host's memory if lower.
    pub memory_limit: u64,
}

/// The host's CPU time in nanoseconds, from `/proc/stat`'s first line (USER_HZ
/// is 100, so a jiffy is 10 ms).
fn host_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let jiffies: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    jiffies * 10_000_000
}

impl Engine {
    /// One sample of `reference`'s cgroup counters.
    /// The counters are read by the container's monitor, its one owner.
    pub async fn stats_sample(&self, reference: &str) -> Result<StatsSample> {
        let c = self.container(reference)?;
        let online_cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let usage = if c.state.running() {
            self.usage_of(&c).await?
        } else {
            None
        };
        let running = usage.is_some();
        let system_cpu_ns = if running { host_cpu_ns() } else { 0 };
        let usage = usage.unwrap_or_default();
        let memory_limit = usage.memory_limit.min(host_memory().unwrap_or(u64::MAX));
        Ok(StatsSample {
            id: c.id,
            name: c.name,
            read: crate::now_rfc3339(),
            running,
            usage,
            system_cpu_ns,
            online_cpus,
            memory_limit,
        })
    }
}
