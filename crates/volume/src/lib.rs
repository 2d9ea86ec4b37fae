//! berth-volume: the `local` volume driver's host side.
//!
//! A volume is a directory `<root>/<name>/_data`. Created in a temporary directory and
//! renamed into place, so a crash never leaves a half-made volume under a real name.
//! Volumes made with `-o type=... -o device=... -o o=...` (docker's local driver
//! options) are mounted over `_data` when a container first needs them, and unmounted
//! when the volume is removed.
//!
//! [`copy_up`] is docker's "copy the image's files into a fresh volume": owners,
//! modes, timestamps, extended attributes, symlinks and device nodes are preserved.

mod copy;

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

pub use copy::{copy_up, dir_size, is_empty_dir};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("invalid option key: {0:?}")]
    InvalidOption(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, VolumeError>;

pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> VolumeError {
    VolumeError::Io {
        context: context.into(),
        source,
    }
}

/// The local driver's options, as `docker volume create -o` takes them.
pub const OPTION_KEYS: &[&str] = &["type", "device", "o", "size"];

/// Checks driver options before anything is created.
pub fn validate_options(options: &[(String, String)]) -> Result<()> {
    for (k, _) in options {
        if !OPTION_KEYS.contains(&k.as_str()) {
            return Err(VolumeError::InvalidOption(k.clone()));
        }
    }
    let has = |k: &str| options.iter().any(|(key, _)| key == k);
    if has("size") {
        return Err(VolumeError::Invalid(
            "quota size requested but no quota support".into(),
        ));
    }
    if (has("type") || has("o")) && !has("device") && !is_tmpfs(options) {
        return Err(VolumeError::Invalid(
            "missing required option: \"device\"".into(),
        ));
    }
    Ok(())
}

fn is_tmpfs(options: &[(String, String)]) -> bool {
    options.iter().any(|(k, v)| k == "type" && v == "tmpfs")
}

/// Creates `<root>/<name>/_data` atomically; returns the `_data` path.
pub fn create_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let final_dir = root.join(name);
    let data = final_dir.join("_data");
    if data.is_dir() {
        return Ok(data);
    }
    let tmp = root.join(format!(".tmp-{name}"));
    let _ = std::fs::remove_dir_all(&tmp);
    let tmp_data = tmp.join("_data");
    std::fs::create_dir_all(&tmp_data)
        .map_err(|e| io(format!("create {}", tmp_data.display()), e))?;
    // Docker's volumes are world-readable directories owned by root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp_data, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io(format!("chmod {}", tmp_data.display()), e))?;
    std::fs::rename(&tmp, &final_dir)
        .map_err(|e| io(format!("rename to {}", final_dir.display()), e))?;
    if let Ok(d) = std::fs::File::open(root) {
        let _ = d.sync_all();
    }
    Ok(data)
}

/// Mounts a volume's device over its `_data` if its options name one and it is not
/// mounted yet (the local driver's `type`/`device`/`o`).
pub fn ensure_mounted(data: &Path, options: &[(String, String)]) -> Result<()> {
    let get = |k: &str| {
        options
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let kind = get("type").unwrap_or("");
    match get("device") {
        Some(device) => mount_device(data, device, kind, get("o").unwrap_or("")),
        None if kind == "tmpfs" => mount_device(data, "tmpfs", kind, get("o").unwrap_or("")),
        None => Ok(()),
    }
}

fn mount_device(data: &Path, device: &str, kind: &str, opts: &str) -> Result<()> {
    if is_mountpoint(data) {
        return Ok(());
    }
    let mut flags = MsFlags::empty();
    let mut rest = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            other => rest.push(other),
        }
    }
    if kind == "none" && !flags.contains(MsFlags::MS_BIND) {
        return Err(VolumeError::Invalid(
            "type=none needs o=bind to mount a device".into(),
        ));
    }
    let data_opts = rest.join(",");
    let fstype = if kind.is_empty() || kind == "none" {
        None
    } else {
        Some(kind)
    };
    nix::mount::mount(
        Some(device),
        data,
        fstype,
        flags,
        (!data_opts.is_empty()).then_some(data_opts.as_str()),
    )
    .map_err(|e| {
        io(
            format!("mount {device} ({kind}) on {}", data.display()),
            std::io::Error::from(e),
        )
    })
}

/// Unmounts and deletes a volume's directory.
pub fn remove_dir(root: &Path, name: &str) -> Result<()> {
    let dir = root.join(name);
    let data = dir.join("_data");
    while is_mountpoint(&data) {
        nix::mount::umount2(&data, MntFlags::MNT_DETACH)
            .map_err(|e| io(format!("unmount {}", data.display()), e.into()))?;
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("remove {}", dir.display()), e)),
    }
}

/// Whether `path` is the root of a mount (its device differs from its parent's, or
/// mountinfo lists it).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == wanted)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// Names of volume directories under `root` (skipping temporary ones).
pub fn list_dirs(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let o = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(
            validate_options(&[o("type", "tmpfs"), o("device", "tmpfs"), o("o", "size=1m")])
                .is_ok()
        );
        assert!(validate_options(&[o("type", "tmpfs"), o("o", "size=1m")]).is_ok());
        assert!(matches!(
            validate_options(&[o("bogus", "1")]),
            Err(VolumeError::InvalidOption(_))
        ));
        assert!(validate_options(&[o("type", "ext4")]).is_err());
    }

    #[test]
    fn create_is_idempotent_and_remove_cleans() {
        let root = tempfile::tempdir().unwrap();
        let data = create_dir(root.path(), "v1").unwrap();
        std::fs::write(data.join("f"), b"x").unwrap();
        assert_eq!(create_dir(root.path(), "v1").unwrap(), data);
        assert!(data.join("f").exists());
        remove_dir(root.path(), "v1").unwrap();
        assert!(!root.path().join("v1").exists());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}

/// Resolves `path` inside `root` as the container would see it: symlinks are
/// followed, but absolute targets and `..` stay confined to `root` (docker's
/// FollowSymlinkInScope). The result may name something that does not exist yet.
pub fn scoped_path(root: &Path, path: &str) -> Result<PathBuf> {
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(VolumeError::Invalid(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| io(format!("readlink {}", candidate.display()), e))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        std::path::Component::Normal(n) => pending.push(n.to_os_string()),
                        std::path::Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("b", r.join("a/rel")).unwrap();
        assert_eq!(scoped_path(r, "/abs/passwd").unwrap(), r.join("etc/passwd"));
        assert_eq!(scoped_path(r, "/a/b/up/etc").unwrap(), r.join("etc"));
        assert_eq!(scoped_path(r, "/a/rel/x").unwrap(), r.join("a/b/x"));
        assert_eq!(scoped_path(r, "../../x").unwrap(), r.join("x"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(scoped_path(r, "/loop").is_err());
    }
}
