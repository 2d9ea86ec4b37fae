//! Persistent network namespaces (bind-mounted nsfs files, like `ip netns`).

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::netlink::Netlink;

/// `NSFS_MAGIC` from `<linux/magic.h>`.
const NSFS_MAGIC: i64 = 0x6e73_6673;

// `fs_type_t` differs between targets, hence the cast.
#[allow(clippy::unnecessary_cast)]
fn is_nsfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Creates a new, empty network namespace and pins it at `path` (a
/// bind-mount of the namespace onto a regular file, the same mechanism as
/// `ip netns add`). The namespace's `lo` is brought up.
///
/// The work happens on a dedicated short-lived thread (`unshare` affects the
/// calling thread only), so the caller's thread never changes namespace.
/// Missing parent directories are created. Fails with
/// [`Error::NetnsExists`] if `path` already holds a namespace; on any error
/// nothing is left behind.
pub fn create_netns(path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::invalid(
            "netns path",
            path.display().to_string(),
            "must be absolute",
        ));
    }
    if is_nsfs(path) {
        return Err(Error::NetnsExists(path.to_path_buf()));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let target: PathBuf = path.to_path_buf();
    let result = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || create_netns_on_this_thread(&target))
        .map_err(|e| Error::io("spawn netns thread", path, e))?
        .join()
        .unwrap_or_else(|_| {
            Err(Error::HelperPanicked {
                path: path.to_path_buf(),
            })
        });
    if result.is_ok() {
        tracing::debug!(netns = %path.display(), "created network namespace");
    }
    result
}

fn create_netns_on_this_thread(path: &Path) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::io("unshare network namespace for", path, e.into()))?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o444)
        .open(path)
        .map_err(|e| Error::io("create netns file", path, e))?;
    if let Err(e) = mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        let _ = std::fs::remove_file(path);
        return Err(Error::io("bind-mount netns onto", path, e.into()));
    }
    let lo_up = (|| -> io::Result<()> {
        let mut nl = Netlink::open()?;
        let lo = nl
            .link_index("lo")?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no lo interface"))?;
        nl.set_up(lo)
    })();
    if let Err(e) = lo_up {
        let _ = remove_netns(path);
        return Err(Error::netlink(
            "set link up",
            format!("lo in {}", path.display()),
            e,
        ));
    }
    Ok(())
}

/// Unpins and deletes a namespace created by [`create_netns`]: lazily
/// unmounts `path` (`MNT_DETACH`) and removes the file. Idempotent: a
/// missing or unmounted file is fine. The namespace itself lives on until
/// its last process exits.
pub fn remove_netns(path: &Path) -> Result<()> {
    // Unmount every stacked mount, if any.
    for _ in 0..8 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            Err(e) => return Err(Error::io("unmount netns", path, e.into())),
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => {
            tracing::debug!(netns = %path.display(), "removed network namespace");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove netns file", path, e)),
    }
}
