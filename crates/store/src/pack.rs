//! Reading a container's files for `cp` without ever leaving its root.
//!
//! The path is opened with `openat2(RESOLVE_IN_ROOT)` and the tree below it is
//! walked through directory file descriptors with `O_NOFOLLOW`, so neither a
//! symlink in the archive's path nor a container process swapping a directory for a
//! symlink mid-walk can lead outside the root.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::unpack::{open_dir, open_in_root};
use crate::{Result, StoreError};

/// What docker's `X-Docker-Container-Path-Stat` header carries.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (docker's CLI decodes them that way).
    pub mode: u32,
    pub mtime: i64,
    /// The symlink's target resolved inside the root, or empty.
    pub link_target: String,
    pub is_dir: bool,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;

fn go_mode(st: &libc::stat) -> u32 {
    let mut m = st.st_mode & 0o777;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => m |= GO_MODE_DIR,
        libc::S_IFLNK => m |= GO_MODE_SYMLINK,
        libc::S_IFBLK => m |= GO_MODE_DEVICE,
        libc::S_IFCHR => m |= GO_MODE_DEVICE | GO_MODE_CHAR,
        libc::S_IFIFO => m |= GO_MODE_PIPE,
        libc::S_IFSOCK => m |= GO_MODE_SOCKET,
        _ => {}
    }
    if st.st_mode & libc::S_ISUID != 0 {
        m |= GO_MODE_SETUID;
    }
    if st.st_mode & libc::S_ISGID != 0 {
        m |= GO_MODE_SETGID;
    }
    if st.st_mode & libc::S_ISVTX != 0 {
        m |= GO_MODE_STICKY;
    }
    m
}

fn fstatat(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: zeroed stat buffer filled by the kernel; valid dirfd and name.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn readlinkat(dir: &OwnedFd, name: &OsStr) -> io::Result<PathBuf> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

use std::os::unix::ffi::OsStringExt;

fn openat(dir: &OwnedFd, name: &OsStr, flags: i32) -> io::Result<OwnedFd> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid dirfd and name; O_NOFOLLOW keeps links from being followed.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: freshly opened fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Splits a container path into its parent (resolved in the root) and final name.
/// A trailing `/` or `/.` means "follow the last component too".
fn split_container_path(path: &str) -> (PathBuf, Option<OsString>) {
    let follow_last = path.ends_with('/') || path.ends_with("/.") || path == ".";
    let clean: PathBuf = Path::new(path)
        .components()
        .filter(|c| {
            !matches!(
                c,
                std::path::Component::RootDir | std::path::Component::CurDir
            )
        })
        .collect();
    if follow_last || clean.as_os_str().is_empty() {
        return (clean, None);
    }
    let parent = clean.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = clean.file_name().map(OsStr::to_os_string);
    (parent, name)
}

/// Opens directory `path` inside `root` (symlinks resolved as if `root` were `/`):
/// where `cp` extracts into.
pub fn open_in(root: &Path, path: &str) -> Result<OwnedFd> {
    let root_fd = open_dir(root)?;
    let rel: PathBuf = Path::new(path)
        .components()
        .filter(|c| {
            !matches!(
                c,
                std::path::Component::RootDir | std::path::Component::CurDir
            )
        })
        .collect();
    open_in_root(&root_fd, &rel, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| StoreError::io(format!("open {path}"), e))
}

/// `HEAD /containers/{id}/archive`: what sits at `path` inside `root`.
pub fn stat(root: &Path, path: &str) -> Result<PathStat> {
    let root_fd = open_dir(root)?;
    let (parent, name) = split_container_path(path);
    let dir = open_in_root(&root_fd, &parent, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| StoreError::io(format!("stat {path}"), e))?;
    let shown = Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let name_os = name.clone().unwrap_or_else(|| OsString::from(""));
    let st = fstatat(&dir, &name_os).map_err(|e| StoreError::io(format!("stat {path}"), e))?;
    let mut link_target = String::new();
    let mut is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // Docker reports where the link leads, resolved inside the container.
        let full = parent.join(&name_os);
        if let Ok(fd) = open_in_root(&root_fd, &full, libc::O_PATH) {
            if let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
                let root_real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
                if let Ok(inside) = target.strip_prefix(&root_real) {
                    link_target = format!("/{}", inside.display());
                }
            }
            let tst = fstatat(&fd, OsStr::new(""))
                .map_err(|e| StoreError::io(format!("stat {path}"), e))?;
            is_dir = tst.st_mode & libc::S_IFMT == libc::S_IFDIR;
        }
    }
    Ok(PathStat {
        name: shown,
        size: st.st_size,
        mode: go_mode(&st),
        mtime: st.st_mtime,
        link_target,
        is_dir,
    })
}

/// `GET /containers/{id}/archive`: writes a tar of `path` inside `root` to `out`,
/// its entries named under `base` (docker renames the top entry to the basename of
/// the requested path, or `.` for `dir/.`).
pub fn pack(root: &Path, path: &str, base: &str, out: impl Write) -> Result<()> {
    let root_fd = open_dir(root)?;
    let (parent, name) = split_container_path(path);
    let dir = open_in_root(&root_fd, &parent, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| StoreError::io(format!("open {path}"), e))?;
    let mut builder = tar::Builder::new(out);
    match name {
        Some(name) => add_entry(&mut builder, &dir, &name, Path::new(base))?,
        None => {
            // The directory itself (followed): re-open it readable.
            let fd = open_in_root(&dir, Path::new("."), libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| StoreError::io(format!("open {path}"), e))?;
            let st = fstatat(&fd, OsStr::new(""))
                .map_err(|e| StoreError::io(format!("stat {path}"), e))?;
            append_header(
                &mut builder,
                &st,
                Path::new(base),
                tar::EntryType::Directory,
                None,
            )?;
            add_children(&mut builder, &fd, Path::new(base))?;
        }
    }
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| StoreError::io("finish tar", e))
}

fn append_header<W: Write>(
    builder: &mut tar::Builder<W>,
    st: &libc::stat,
    name: &Path,
    kind: tar::EntryType,
    link: Option<&Path>,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(st.st_uid as u64);
    header.set_gid(st.st_gid as u64);
    header.set_mtime(st.st_mtime.max(0) as u64);
    header.set_size(0);
    let name = if kind == tar::EntryType::Directory {
        let mut s = name.as_os_str().to_os_string();
        s.push("/");
        PathBuf::from(s)
    } else {
        name.to_path_buf()
    };
    let res = match link {
        Some(l) => builder.append_link(&mut header, &name, l),
        None => builder.append_data(&mut header, &name, io::empty()),
    };
    res.map_err(|e| StoreError::io(format!("tar {}", name.display()), e))
}

fn add_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &OsStr,
    tar_name: &Path,
) -> Result<()> {
    let st = fstatat(dir, name)
        .map_err(|e| StoreError::io(format!("stat {}", tar_name.display()), e))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            append_header(builder, &st, tar_name, tar::EntryType::Directory, None)?;
            let sub = openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| StoreError::io(format!("open {}", tar_name.display()), e))?;
            add_children(builder, &sub, tar_name)?;
        }
        libc::S_IFREG => {
            let fd = openat(dir, name, libc::O_RDONLY)
                .map_err(|e| StoreError::io(format!("open {}", tar_name.display()), e))?;
            let file = File::from(fd);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(st.st_mode & 0o7777);
            header.set_uid(st.st_uid as u64);
            header.set_gid(st.st_gid as u64);
            header.set_mtime(st.st_mtime.max(0) as u64);
            header.set_size(st.st_size as u64);
            // A file that shrinks while being read would corrupt the stream; take
            // exactly the size announced, padding with zeros if it got shorter.
            use std::io::Read;
            let reader = file
                .take(st.st_size as u64)
                .chain(io::repeat(0))
                .take(st.st_size as u64);
            builder
                .append_data(&mut header, tar_name, reader)
                .map_err(|e| StoreError::io(format!("tar {}", tar_name.display()), e))?;
        }
        libc::S_IFLNK => {
            let target = readlinkat(dir, name)
                .map_err(|e| StoreError::io(format!("readlink {}", tar_name.display()), e))?;
            append_header(
                builder,
                &st,
                tar_name,
                tar::EntryType::Symlink,
                Some(&target),
            )?;
        }
        libc::S_IFIFO => append_header(builder, &st, tar_name, tar::EntryType::Fifo, None)?,
        // Devices and sockets are not copied out (docker copies devices; a
        // container's /dev is the runtime's, not its image's).
        _ => {}
    }
    Ok(())
}

fn add_children<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    tar_name: &Path,
) -> Result<()> {
    let listing = openat(dir, OsStr::new("."), libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| StoreError::io(format!("open {}", tar_name.display()), e))?;
    let mut names: Vec<OsString> = Vec::new();
    {
        let d = nix_dir(listing)
            .map_err(|e| StoreError::io(format!("read {}", tar_name.display()), e))?;
        names.extend(d);
    }
    names.sort();
    for n in names {
        add_entry(builder, dir, &n, &tar_name.join(&n))?;
    }
    Ok(())
}

/// Lists a directory fd (without `.` and `..`).
fn nix_dir(fd: OwnedFd) -> io::Result<Vec<OsString>> {
    // SAFETY: fdopendir takes ownership of the fd; closedir releases it.
    unsafe {
        let raw = fd.as_raw_fd();
        std::mem::forget(fd);
        let dirp = libc::fdopendir(raw);
        if dirp.is_null() {
            libc::close(raw);
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        loop {
            let ent = libc::readdir64(dirp);
            if ent.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*ent).d_name.as_ptr());
            let bytes = name.to_bytes();
            if bytes != b"." && bytes != b".." {
                out.push(OsStr::from_bytes(bytes).to_os_string());
            }
        }
        libc::closedir(dirp);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_stat_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/sub/f"), b"inside").unwrap();
        std::fs::write(tmp.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("etc/escape")).unwrap();
        std::os::unix::fs::symlink("/../../..", root.join("up")).unwrap();

        let s = stat(&root, "/link").unwrap();
        assert_eq!(s.link_target, "/etc");
        assert!(s.is_dir);
        assert_eq!(s.mode & GO_MODE_SYMLINK, GO_MODE_SYMLINK);
        assert!(stat(&root, "/up/secret").is_err(), "escaped through ..");

        let mut out = Vec::new();
        pack(&root, "/link/", "link", &mut out).unwrap();
        let mut names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["link/", "link/escape", "link/sub/", "link/sub/f"]);

        // The symlink itself when there is no trailing slash.
        let mut out = Vec::new();
        pack(&root, "/etc/escape", "escape", &mut out).unwrap();
        let mut a = tar::Archive::new(out.as_slice());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
        assert!(pack(&root, "/up/secret", "x", Vec::new()).is_err());
    }
}
