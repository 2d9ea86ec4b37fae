//! Smaller container verbs: rename, top, changes (diff), and the disk usage
//! report (`system df`). Pause, stats, prune and update have their own rooms.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::{names, Engine, EngineError, Result};

/// Paths docker leaves out of `diff`: the runtime's mount points.
use crate::commit::NOT_CHANGES as DIFF_IGNORED;

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
    pub fn rename_container(&self, reference: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        names::check_container_name(new_name)?;
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
    pub fn top(&self, reference: &str) -> Result<Vec<ProcessRow>> {
        let c = self.container(reference)?;
        if !c.state.running() {
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
            processes.push(ProcessRow {
                user: user_name(&uid),
                pid: pid.to_string(),
                ppid,
                start_time: stime,
                cpu_time: format!(
                    "{:02}:{:02}:{:02}",
                    cpu_secs / 3600,
                    cpu_secs / 60 % 60,
                    cpu_secs % 60
                ),
                command: cmd,
            });
        }
        Ok(processes)
    }

    /// `diff`: what the container changed relative to its image. Kind 0 = modified,
    /// 1 = added, 2 = deleted.
    pub fn changes(&self, reference: &str) -> Result<Vec<Change>> {
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
                    ChangeKind::Deleted
                } else if in_image {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                out.push(Change { path: shown, kind });
                if meta.is_dir() {
                    stack.push(path);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        // A directory of the image that holds nothing but the runtime's mount points
        // (`/etc` for /etc/hosts) did not change as far as the user is concerned.
        let reported: Vec<String> = out.iter().map(|c| c.path.clone()).collect();
        let ignored_parents: Vec<&str> = DIFF_IGNORED
            .iter()
            .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
            .collect();
        out.retain(|c| {
            let path = c.path.as_str();
            let only_mount_points = c.kind == ChangeKind::Modified
                && ignored_parents.contains(&path)
                && !reported.iter().any(|r| r.starts_with(&format!("{path}/")));
            !only_mount_points
        });
        Ok(out)
    }

    /// `system df`: images, containers (with the size of their writable layer),
    /// volumes and the total size of the layers on disk.
    pub fn disk_usage(self: &Arc<Self>) -> DiskUsage {
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
        let image_usage = images
            .iter()
            .map(|i| {
                let shared_size = i
                    .config
                    .rootfs
                    .diff_ids
                    .iter()
                    .filter(|d| {
                        images
                            .iter()
                            .filter(|o| o.config.rootfs.diff_ids.contains(d))
                            .count()
                            > 1
                    })
                    .map(|d| layer_sizes.get(d).copied().unwrap_or(0))
                    .sum();
                ImageUsage {
                    containers: containers.iter().filter(|c| c.image_id == i.id).count(),
                    image: i.clone(),
                    shared_size,
                }
            })
            .collect();
        let container_usage = containers
            .into_iter()
            .map(|c| {
                let image_size = images
                    .iter()
                    .find(|i| i.id == c.image_id)
                    .map(|i| i.size)
                    .unwrap_or(0);
                let size_rw = dir_size(&self.container_dir(&c.id).join("upper"));
                ContainerUsage {
                    container: c,
                    size_rw,
                    size_root_fs: size_rw + image_size,
                }
            })
            .collect();
        let volume_usage = self
            .volumes(&Default::default())
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeUsage {
                size: dir_size(std::path::Path::new(&v.mountpoint)),
                ref_count: self.volume_users(&v.name).len(),
                volume: v,
            })
            .collect();
        DiskUsage {
            layers_size: layer_sizes.values().sum(),
            images: image_usage,
            containers: container_usage,
            volumes: volume_usage,
        }
    }
}

/// One process of `top`, as `ps -ef` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    pub user: String,
    pub pid: String,
    pub ppid: String,
    /// `HH:MM` it started.
    pub start_time: String,
    /// CPU time as `HH:MM:SS`.
    pub cpu_time: String,
    pub command: String,
}

/// What `diff` reports of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

/// One path a container changed relative to its image.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// `system df`'s figures.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// All layers on disk, shared ones once.
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
}

#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: crate::ImageRecord,
    /// Bytes of its layers that other images use too.
    pub shared_size: u64,
    /// Containers made from it.
    pub containers: usize,
}

#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub container: crate::ContainerRecord,
    /// Its writable layer.
    pub size_rw: u64,
    /// Its writable layer plus its image.
    pub size_root_fs: u64,
}

#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub volume: crate::VolumeRecord,
    pub size: u64,
    /// Containers that name it.
    pub ref_count: usize,
}
