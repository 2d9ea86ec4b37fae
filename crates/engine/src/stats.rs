//! `stats`: one sample of a container's cgroup counters in docker's shape.

use crate::{Engine, Result};
use serde_json::{json, Value};

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

impl Engine {
    /// One `stats` sample in docker's JSON shape; `previous` fills `precpu_stats`.
    pub fn stats_sample(&self, reference: &str, previous: Option<&Value>) -> Result<Value> {
        let c = self.container(reference)?;
        let online = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (usage, system) = if c.state.running {
            let u = berth_runtime::cgroups::usage(&self.cgroups_path(&c));
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
            (u, jiffies * 10_000_000)
        } else {
            (berth_runtime::cgroups::Usage::default(), 0)
        };
        let stats: serde_json::Map<String, Value> = usage
            .memory_stat
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let cpu = json!({
            "cpu_usage": {
                "total_usage": usage.cpu_total_ns,
                "usage_in_kernelmode": usage.cpu_system_ns,
                "usage_in_usermode": usage.cpu_user_ns,
            },
            "system_cpu_usage": system,
            "online_cpus": online,
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        });
        let zero_time = crate::model::ZERO_TIME;
        Ok(json!({
            "read": crate::now_rfc3339(),
            "preread": previous.and_then(|p| p["read"].as_str()).unwrap_or(zero_time),
            "pids_stats": { "current": usage.pids, "limit": usage.pids_limit },
            "blkio_stats": {
                "io_service_bytes_recursive": null, "io_serviced_recursive": null,
                "io_queue_recursive": null, "io_service_time_recursive": null,
                "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null,
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": previous.map(|p| p["cpu_stats"].clone()).unwrap_or_else(|| json!({
                "cpu_usage": { "total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
                "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
            })),
            "memory_stats": if c.state.running {
                json!({ "usage": usage.memory_usage, "limit": usage.memory_limit.min(host_memory().unwrap_or(u64::MAX)), "stats": stats })
            } else {
                json!({})
            },
            "name": format!("/{}", c.name),
            "id": c.id,
        }))
    }
}
