//! Smaller container verbs: pause/unpause (freezer), rename, top, changes (diff),
//! stats, and the disk usage report (`system df`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::{names, Engine, EngineError, Result};

/// Paths docker leaves out of `diff`: the runtime's mount points.
use crate::commit::NOT_CHANGES as DIFF_IGNORED;

/// The host's memory in bytes: what an unlimited container's limit means.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

impl Engine {
    pub fn pause_container(&self, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        if !c.state.running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        berth_runtime::cgroups::set_frozen(&self.cgroups_path(&c), true)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let c = self.update(&c.id, |r| {
            r.state.paused = true;
            r.state.status = "paused".into();
        })?;
        self.emit_container("pause", &c);
        Ok(())
    }

    pub fn unpause_container(&self, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        if !c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.thaw(&c)?;
        if let Ok(c) = self.container(&c.id) {
            self.emit_container("unpause", &c);
        }
        Ok(())
    }

    /// Thaws a paused container; a frozen process cannot act on signals under
    /// cgroup v1, so stop and kill thaw after signalling.
    pub(crate) fn thaw(&self, c: &crate::ContainerRecord) -> Result<()> {
        berth_runtime::cgroups::set_frozen(&self.cgroups_path(c), false)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.update(&c.id, |r| {
            r.state.paused = false;
            if r.state.running {
                r.state.status = "running".into();
            }
        })?;
        Ok(())
    }

    pub fn rename_container(&self, reference: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        if !names::valid(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let c = self.container(reference)?;
        if c.name == new_name {
            return Err(EngineError::Conflict(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let st = self.lock();
            if let Some(other) = st.containers.values().find(|o| o.name == new_name) {
                return Err(EngineError::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
        }
        let old = c.name.clone();
        let c = self.update(&c.id, |r| r.name = new_name.to_string())?;
        let attrs = BTreeMap::from([
            ("name".to_string(), c.name.clone()),
            ("oldName".to_string(), format!("/{old}")),
        ]);
        self.events.emit("container", "rename", &c.id, attrs);
        Ok(())
    }

    /// `top`: the container's processes as `ps -ef` would show them on the host.
    pub fn top(&self, reference: &str) -> Result<Value> {
        let c = self.container(reference)?;
        if !c.state.running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let user_name = |uid: &str| {
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[2] == uid)
                .map(|f| f[0].to_string())
                .unwrap_or_else(|| uid.to_string())
        };
        let ticks_per_sec = 100u64;
        let boot = std::fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let mut processes = Vec::new();
        for pid in berth_runtime::cgroups::pids(&self.cgroups_path(&c)) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            let uid = field("Uid:")
                .and_then(|v| v.split_whitespace().next().map(String::from))
                .unwrap_or_default();
            let ppid = field("PPid:").unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the parenthesised command name.
            let rest: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().collect())
                .unwrap_or_default();
            let num = |i: usize| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let cpu_secs = (num(11) + num(12)) / ticks_per_sec;
            let start = boot + (num(19) / ticks_per_sec) as i64;
            let stime = chrono::DateTime::from_timestamp(start, 0)
                .map(|t| t.format("%H:%M").to_string())
                .unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut cmd = String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .trim()
                .to_string();
            if cmd.is_empty() {
                cmd = field("Name:").map(|n| format!("[{n}]")).unwrap_or_default();
            }
            processes.push(json!([
                user_name(&uid),
                pid.to_string(),
                ppid,
                "0",
                stime,
                "?",
                format!(
                    "{:02}:{:02}:{:02}",
                    cpu_secs / 3600,
                    cpu_secs / 60 % 60,
                    cpu_secs % 60
                ),
                cmd,
            ]));
        }
        Ok(json!({
            "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "Processes": processes,
        }))
    }

    /// `diff`: what the container changed relative to its image. Kind 0 = modified,
    /// 1 = added, 2 = deleted.
    pub fn changes(&self, reference: &str) -> Result<Vec<Value>> {
        let c = self.container(reference)?;
        let upper = self.container_dir(&c.id).join("upper");
        let lowers = self.image_lowers(&self.image(&c.image_id)?)?;
        let mut out = Vec::new();
        let mut stack = vec![upper.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(rel) = path.strip_prefix(&upper) else {
                    continue;
                };
                let shown = format!("/{}", rel.display());
                if DIFF_IGNORED
                    .iter()
                    .any(|i| shown == *i || shown.starts_with(&format!("{i}/")))
                {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
                let in_image = lowers
                    .iter()
                    .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok());
                let kind = if whiteout {
                    2
                } else if in_image {
                    0
                } else {
                    1
                };
                out.push(json!({ "Path": shown, "Kind": kind }));
                if meta.is_dir() {
                    stack.push(path);
                }
            }
        }
        out.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
        // A directory of the image that holds nothing but the runtime's mount points
        // (`/etc` for /etc/hosts) did not change as far as the user is concerned.
        let reported: Vec<String> = out
            .iter()
            .filter_map(|v| v["Path"].as_str().map(String::from))
            .collect();
        let ignored_parents: Vec<&str> = DIFF_IGNORED
            .iter()
            .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
            .collect();
        out.retain(|v| {
            let path = v["Path"].as_str().unwrap_or_default();
            let only_mount_points = v["Kind"] == 0
                && ignored_parents.contains(&path)
                && !reported.iter().any(|r| r.starts_with(&format!("{path}/")));
            !only_mount_points
        });
        Ok(out)
    }

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
                json!({ "usage": usage.memory_usage, "limit": usage.memory_limit.min(host_memory()), "stats": stats })
            } else {
                json!({})
            },
            "name": format!("/{}", c.name),
            "id": c.id,
        }))
    }

    /// `system df`: images, containers (with the size of their writable layer) and
    /// the total size of the layers on disk.
    pub fn disk_usage(self: &Arc<Self>) -> Value {
        let containers = self
            .containers(true, &Default::default())
            .unwrap_or_default();
        let images = self.images();
        let mut layer_sizes: BTreeMap<String, u64> = BTreeMap::new();
        for i in &images {
            for d in &i.config.rootfs.diff_ids {
                let size = berth_store::Digest::parse(d)
                    .map(|dg| {
                        std::fs::metadata(self.store.blob_path(&dg))
                            .map(|m| m.len())
                            .unwrap_or(0)
                    })
                    .unwrap_or(0);
                layer_sizes.insert(d.clone(), size);
            }
        }
        let image_list: Vec<Value> = images
            .iter()
            .map(|i| {
                let shared: u64 = i
                    .config
                    .rootfs
                    .diff_ids
                    .iter()
                    .filter(|d| images.iter().filter(|o| o.config.rootfs.diff_ids.contains(d)).count() > 1)
                    .map(|d| layer_sizes.get(d).copied().unwrap_or(0))
                    .sum();
                json!({
                    "Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": [],
                    "Created": chrono::DateTime::parse_from_rfc3339(&i.created).map(|t| t.timestamp()).unwrap_or(0),
                    "Size": i.size, "SharedSize": shared, "VirtualSize": i.size, "Labels": i.config.config.labels,
                    "Containers": containers.iter().filter(|c| c.image_id == i.id).count(),
                })
            })
            .collect();
        let container_list: Vec<Value> = containers
            .iter()
            .map(|c| {
                let image_size = images.iter().find(|i| i.id == c.image_id).map(|i| i.size).unwrap_or(0);
                let rw = dir_size(&self.container_dir(&c.id).join("upper"));
                json!({
                    "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.config.image, "ImageID": c.image_id,
                    "Command": c.argv().join(" "),
                    "Created": chrono::DateTime::parse_from_rfc3339(&c.created).map(|t| t.timestamp()).unwrap_or(0),
                    "SizeRw": rw, "SizeRootFs": rw + image_size, "Labels": c.config.labels,
                    "State": c.state.status, "Status": c.state.status, "Mounts": [],
                })
            })
            .collect();
        let volume_list: Vec<Value> = self
            .volumes(&Default::default())
            .unwrap_or_default()
            .iter()
            .map(|v| {
                json!({
                    "Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint,
                    "CreatedAt": v.created_at, "Labels": v.labels, "Scope": v.scope,
                    "Options": v.options,
                    "UsageData": {
                        "Size": dir_size(std::path::Path::new(&v.mountpoint)),
                        "RefCount": self.volume_users(&v.name).len(),
                    },
                })
            })
            .collect();
        json!({
            "LayersSize": layer_sizes.values().sum::<u64>(),
            "Images": image_list,
            "Containers": container_list,
            "Volumes": volume_list,
            "BuildCache": [],
        })
    }
}

impl Engine {
    /// `container prune`: removes every stopped container (optionally only those
    /// matching `label` filters). Returns the removed IDs.
    pub async fn prune_containers(self: &Arc<Self>, labels: &[String]) -> Result<Vec<String>> {
        let mut filters = crate::Filters::new();
        if !labels.is_empty() {
            filters.insert("label".into(), labels.to_vec());
        }
        let stopped: Vec<String> = self
            .containers(true, &filters)?
            .into_iter()
            .filter(|c| !c.state.running && !c.state.restarting)
            .map(|c| c.id)
            .collect();
        let mut removed = Vec::new();
        for id in stopped {
            if self.forget_container(&id, false).is_ok() {
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// `image prune`: removes untagged images (all unused ones with `all`) that no
    /// container uses. Returns docker's Untagged/Deleted report.
    pub fn prune_images(&self, all: bool) -> Result<Vec<Value>> {
        let used: std::collections::HashSet<String> = self
            .containers(true, &Default::default())?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let mut report = Vec::new();
        for image in self.images() {
            if used.contains(&image.id)
                || (!all && !image.repo_tags.is_empty())
                || self.is_intermediate(&image.id)
                || !self.images().iter().any(|i| i.id == image.id)
            {
                continue;
            }
            if let Ok(r) = self.remove_image(&image.id, true) {
                report.extend(r);
            }
        }
        Ok(report)
    }
}

/// `docker update`'s body: the resources that can change on a live container.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateConfig {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<crate::model::RestartPolicy>,
}

impl Engine {
    /// `update`: new limits for a container, applied to its cgroup at once if it
    /// runs, and kept for its next start.
    pub fn update_container(&self, reference: &str, u: UpdateConfig) -> Result<()> {
        let c = self.container(reference)?;
        if let Some(p) = &u.restart_policy {
            if c.host_config.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(EngineError::InvalidArgument(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
        }
        let change = |h: &mut crate::model::HostConfig| {
            if let Some(m) = u.memory {
                h.memory = m;
            }
            if let Some(m) = u.memory_swap {
                h.memory_swap = m;
            }
            if let Some(n) = u.nano_cpus {
                h.nano_cpus = n;
            }
            if let Some(s) = u.cpu_shares {
                h.cpu_shares = s;
            }
            if let Some(q) = u.cpu_quota {
                h.cpu_quota = q;
            }
            if let Some(p) = u.cpu_period {
                h.cpu_period = p;
            }
            if let Some(p) = u.pids_limit {
                h.pids_limit = p;
            }
            if let Some(p) = u.restart_policy.clone() {
                h.restart_policy = p;
            }
        };
        // The result is checked as a create would check it.
        let mut merged = c.host_config.clone();
        change(&mut merged);
        crate::validate::resources(&merged)?;
        let cpu = match (u.nano_cpus, u.cpu_quota, u.cpu_period) {
            (Some(n), _, _) => Some((n.saturating_mul(100_000) / 1_000_000_000, 100_000)),
            (None, Some(q), p) => Some((q, p.filter(|p| *p > 0).unwrap_or(100_000) as u64)),
            _ => None,
        };
        let limits = berth_runtime::cgroups::Limits {
            memory: u.memory,
            cpu,
            cpu_shares: u.cpu_shares.filter(|s| *s > 0).map(|s| s as u64),
            pids: u.pids_limit,
        };
        if c.state.running {
            let rel = self.cgroups_path(&c);
            if let Err(e) = berth_runtime::cgroups::apply(&rel, &limits) {
                // A container that exits during the update takes its cgroup
                // with it; as dockerd, the update then holds for the next start.
                if berth_runtime::cgroups::dir("pids", &rel).exists() {
                    return Err(EngineError::Internal(format!(
                        "update container {}: {e}",
                        c.id
                    )));
                }
                tracing::debug!(id = %c.id, error = %e, "container exited during update");
            }
        }
        let c = self.update(&c.id, |r| change(&mut r.host_config))?;
        self.emit_container("update", &c);
        Ok(())
    }
}
