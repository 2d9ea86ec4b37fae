//! berth-snapshot: a container's root filesystem as an overlayfs mount.
//!
//! Life cycle of a snapshot (one per container):
//!
//! 1. [`Snapshot::prepare`] creates `upper/` (the container's writable layer),
//!    `work/` (overlayfs scratch space) and `rootfs/` (the mount point) in the
//!    container's directory. The image's layers stay untouched and shared.
//! 2. [`Snapshot::mount`] stacks the read-only image layers under `upper/` at `rootfs/`.
//! 3. [`Snapshot::unmount`] detaches it when the container stops; `upper/` persists so
//!    a restarted container keeps its changes, and `diff`/`commit`/`export` read it.
//! 4. Removing the container removes the directory.

mod diff;

use std::path::{Path, PathBuf};

pub use diff::write_layer;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mount overlay at {target}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
}

pub type Result<T> = std::result::Result<T, SnapshotError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Image layers, topmost first (overlayfs `lowerdir` order).
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

impl Snapshot {
    /// Describes the snapshot living in `dir` over `lowers` (topmost first).
    pub fn new(dir: &Path, lowers: Vec<PathBuf>) -> Snapshot {
        Snapshot {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("rootfs"),
        }
    }

    pub fn prepare(&self) -> Result<()> {
        for d in [&self.upper, &self.work, &self.target] {
            std::fs::create_dir_all(d).map_err(|e| SnapshotError::Io {
                context: format!("create {}", d.display()),
                source: e,
            })?;
        }
        Ok(())
    }

    pub fn mount(&self) -> Result<()> {
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        // An image with no layers (FROM scratch with nothing added) still needs a lower.
        let lowerdir = if lowers.is_empty() {
            self.work.display().to_string()
        } else {
            lowers.join(":")
        };
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdir,
            self.upper.display(),
            self.work.display()
        );
        mount(
            Some("overlay"),
            &self.target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|source| SnapshotError::Mount {
            target: self.target.clone(),
            source,
        })
    }

    /// Detaches the mount; not being mounted is not an error.
    pub fn unmount(&self) -> Result<()> {
        unmount(&self.target)
    }
}

/// Stacks `layers` (topmost first) read-only at `target`: a merged view with no
/// writable layer, for reading a stopped container's filesystem.
pub fn mount_readonly(layers: &[PathBuf], target: &Path) -> Result<()> {
    let lowerdir: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
    // overlayfs needs two lowers when there is no upper; a lone layer is bound instead.
    if lowerdir.len() == 1 {
        return mount(
            Some(layers[0].as_path()),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|source| SnapshotError::Mount {
            target: target.to_path_buf(),
            source,
        });
    }
    let data = format!("lowerdir={}", lowerdir.join(":"));
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(data.as_str()),
    )
    .map_err(|source| SnapshotError::Mount {
        target: target.to_path_buf(),
        source,
    })
}

/// Lazily unmounts `target`; "not mounted" and "missing" count as success.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(SnapshotError::Mount {
            target: target.to_path_buf(),
            source,
        }),
    }
}

/// Detaches every mount at or below `dir`, deepest first (what a crash can leave).
pub fn unmount_all_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| *mp == prefix || mp.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = unmount(Path::new(p));
    }
}

/// True if `path` is a mount point according to /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}
