//! The container's view of `/sys/fs/cgroup`, made read-only.
//!
//! The OCI spec asks for the cgroup mount with `ro` (docker does, unless
//! `--privileged`), but libcontainer 0.7 mounts cgroup v1 hierarchies read-write
//! whatever the options say: a container could then lift its own memory and pids
//! limits or make sub-cgroups that outlive it. runc honours `ro` by remounting; berth
//! does the same from outside, between create and start, while the container's init
//! still waits and none of its code has run.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::{Result, RuntimeError};

/// Where the spec mounts cgroupfs.
pub const CGROUP_MOUNT_POINT: &str = "/sys/fs/cgroup";

/// Whether an OCI `config.json` asks for a read-only cgroup mount.
pub fn spec_wants_readonly(config: &serde_json::Value) -> bool {
    config
        .get("mounts")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            m.get("destination").and_then(serde_json::Value::as_str) == Some(CGROUP_MOUNT_POINT)
        })
        .any(|m| {
            m.get("options")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|o| o.iter().any(|v| v.as_str() == Some("ro")))
        })
}

/// The mount points at or under `/sys/fs/cgroup` in a mountinfo text, deepest
/// first (so that a parent is sealed after what it holds), with their per-mount
/// flags.
fn cgroup_mounts(mountinfo: &str) -> Vec<(String, MsFlags)> {
    let mut found: Vec<(String, MsFlags)> = mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = unescape(fields.nth(4)?);
            let options = fields.next()?;
            let inside =
                point == CGROUP_MOUNT_POINT || point.starts_with(&format!("{CGROUP_MOUNT_POINT}/"));
            inside.then(|| (point, per_mount_flags(options)))
        })
        .collect();
    found.sort_by_key(|(point, _)| std::cmp::Reverse(point.len()));
    found.dedup_by(|a, b| a.0 == b.0);
    found
}

/// The flags of mountinfo's per-mount options (field 6) that a bind remount
/// would otherwise clear.
fn per_mount_flags(options: &str) -> MsFlags {
    options.split(',').fold(MsFlags::empty(), |acc, o| {
        acc | match o {
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            _ => MsFlags::empty(),
        }
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remounts every mount at or under `/sys/fs/cgroup` in the mount namespace of
/// `pid` read-only (per mount point: the host's hierarchies stay writable). Runs
/// in a forked child, so the caller never leaves its own mount namespace; the
/// caller must be single-threaded (the monitor is).
pub fn seal_readonly(pid: i32) -> Result<()> {
    // The container's mounts as its root sees them, read from the host side: inside,
    // /proc belongs to the container's pid namespace.
    let info_path = format!("/proc/{pid}/mountinfo");
    let mountinfo = std::fs::read_to_string(&info_path)
        .map_err(|e| RuntimeError::io(format!("read {info_path}"), e))?;
    let mounts = cgroup_mounts(&mountinfo);
    if mounts.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{pid}/ns/mnt");
    let namespace =
        File::open(&ns_path).map_err(|e| RuntimeError::io(format!("open {ns_path}"), e))?;
    // setns leaves the caller at the namespace's original root, which the
    // container's pivot_root detached: the container's own root is entered by fd.
    let root_path = format!("/proc/{pid}/root");
    let root =
        File::open(&root_path).map_err(|e| RuntimeError::io(format!("open {root_path}"), e))?;
    // SAFETY: the monitor is single-threaded; the child only makes system calls
    // before it exits with _exit.
    match unsafe { fork() }.map_err(|e| RuntimeError::io("fork to seal cgroupfs", e.into()))? {
        ForkResult::Child => {
            let code = match seal_in_child(&namespace, &root, &mounts) {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: leaves the forked child without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, errno)) => Err(RuntimeError::io(
                format!("remount {CGROUP_MOUNT_POINT} read-only in container pid {pid}"),
                std::io::Error::from_raw_os_error(errno),
            )),
            Ok(other) => Err(RuntimeError::Runtime(format!(
                "sealing {CGROUP_MOUNT_POINT} of pid {pid}: helper ended with {other:?}"
            ))),
            Err(e) => Err(RuntimeError::io("wait for the cgroupfs helper", e.into())),
        },
    }
}

fn seal_in_child(
    namespace: &File,
    root: &File,
    mounts: &[(String, MsFlags)],
) -> std::result::Result<(), nix::errno::Errno> {
    setns(namespace, CloneFlags::CLONE_NEWNS)?;
    nix::unistd::fchdir(root.as_raw_fd())?;
    nix::unistd::chroot(".")?;
    for (point, flags) in mounts {
        mount(
            None::<&str>,
            point.as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | *flags,
            None::<&str>,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup_mounts_deepest_first_with_their_flags() {
        let info = "\
22 1 0:20 / / rw,relatime - overlay overlay rw
30 22 0:25 / /sys rw,nosuid,nodev,noexec - sysfs sysfs ro
31 30 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - tmpfs tmpfs rw,mode=755
32 31 0:27 /berth/x /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu,cpuacct
33 31 0:28 /berth/x /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
34 22 0:29 / /sys/fs/cgroupish rw - tmpfs tmpfs rw
35 22 0:30 / /with\\040space rw - tmpfs tmpfs rw";
        let found = cgroup_mounts(info);
        let points: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            points,
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup"
            ]
        );
        assert_eq!(
            found[0].1,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME
        );
        assert_eq!(found[1].1, MsFlags::MS_NOSUID);
        assert_eq!(unescape("/with\\040space"), "/with space");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn reads_the_ro_option_from_the_spec() {
        let ro = serde_json::json!({"mounts": [
            {"destination": "/proc", "type": "proc", "options": ["rw"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro", "nosuid"]}
        ]});
        let rw = serde_json::json!({"mounts": [
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["nosuid"]}
        ]});
        assert!(spec_wants_readonly(&ro));
        assert!(!spec_wants_readonly(&rw));
        assert!(!spec_wants_readonly(&serde_json::json!({})));
    }
}
