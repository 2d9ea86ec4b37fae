//! Unpacks a layer tar into a directory without ever writing outside it.
//!
//! Every entry is created with `*at` syscalls relative to a parent directory that was
//! opened with `openat2(RESOLVE_IN_ROOT)`: symlinks met on the way (`bin -> /usr/bin`,
//! or a hostile `x -> /etc`) resolve as if the target directory were `/`, so they can
//! never lead out of it. Paths with `..` are refused outright; absolute paths are taken
//! relative to the root, like tar does. Device nodes are not created (a container
//! gets its devices from the runtime); whiteouts become overlayfs whiteouts.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::{Result, StoreError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    pub entries: u64,
    pub skipped_devices: u64,
}

/// Extracts the layer tar stream `reader` into the existing directory `dest`;
/// whiteout entries become overlayfs whiteouts.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    unpack_with(reader, dest, true)
}

/// Extracts a plain archive (`cp` into a container): `.wh.` names are ordinary
/// files, everything else as [`unpack`].
pub fn unpack_plain(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    unpack_with(reader, dest, false)
}

fn unpack_with(reader: impl Read, dest: &Path, layer: bool) -> Result<UnpackStats> {
    let root = open_dir(dest)?;
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    let entries = archive
        .entries()
        .map_err(|e| StoreError::io("read tar", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| StoreError::io("read tar entry", e))?;
        let raw_path = entry
            .path()
            .map_err(|e| StoreError::io("read tar entry path", e))?
            .into_owned();
        let Some(rel) = normalize(&raw_path)? else {
            continue; // the root itself
        };
        stats.entries += 1;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            continue;
        }
        let (parent_rel, name) = split(&rel);
        let name_str = name.to_string_lossy();
        let parent = ensure_dir(&root, parent_rel)?;

        if layer && name_str == OPAQUE_MARKER {
            set_opaque(&root, parent_rel)?;
            continue;
        }
        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX).filter(|_| layer) {
            let hidden = OsStr::new(hidden);
            remove_existing(&parent, hidden, &rel)?;
            mknod(&parent, hidden, libc::S_IFCHR, 0, &rel)?;
            continue;
        }

        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0) as i64;

        match kind {
            EntryType::Directory => {
                let cname = cstr(name)?;
                // SAFETY: valid dirfd and NUL-terminated name.
                let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o700) };
                if rc < 0 {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(StoreError::io(format!("mkdir {}", rel.display()), err));
                    }
                    if !is_dir_at(&parent, name) {
                        remove_existing(&parent, name, &rel)?;
                        // SAFETY: as above.
                        if unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o700) } < 0 {
                            return Err(StoreError::io(
                                format!("mkdir {}", rel.display()),
                                io::Error::last_os_error(),
                            ));
                        }
                    }
                }
                chown_at(&parent, name, uid, gid, &rel)?;
                chmod_at(&parent, name, mode, &rel)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&parent, name, &rel)?;
                let cname = cstr(name)?;
                // SAFETY: valid dirfd and NUL-terminated name; O_EXCL|O_NOFOLLOW make sure
                // we create a fresh file and never write through a link.
                let fd = unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        cname.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                if fd < 0 {
                    return Err(StoreError::io(
                        format!("create {}", rel.display()),
                        io::Error::last_os_error(),
                    ));
                }
                // SAFETY: fd was just opened and is owned by nobody else.
                let mut file = unsafe { File::from_raw_fd(fd) };
                io::copy(&mut entry, &mut file)
                    .map_err(|e| StoreError::io(format!("write {}", rel.display()), e))?;
                // SAFETY: valid fd.
                if unsafe { libc::fchown(file.as_raw_fd(), uid, gid) } < 0 {
                    return Err(StoreError::io(
                        format!("chown {}", rel.display()),
                        io::Error::last_os_error(),
                    ));
                }
                // chown clears set-id bits, so the mode goes on afterwards.
                // SAFETY: valid fd.
                if unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) } < 0 {
                    return Err(StoreError::io(
                        format!("chmod {}", rel.display()),
                        io::Error::last_os_error(),
                    ));
                }
                set_mtime(&parent, name, mtime, &rel)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| StoreError::io(format!("read link of {}", rel.display()), e))?
                    .ok_or_else(|| {
                        StoreError::Hostile(format!("symlink {} has no target", rel.display()))
                    })?;
                remove_existing(&parent, name, &rel)?;
                let ctarget = cstr(target.as_os_str())?;
                let cname = cstr(name)?;
                // SAFETY: valid dirfd, NUL-terminated strings. The link's target is stored
                // verbatim; it is only ever resolved inside the container or in-root here.
                if unsafe { libc::symlinkat(ctarget.as_ptr(), parent.as_raw_fd(), cname.as_ptr()) }
                    < 0
                {
                    return Err(StoreError::io(
                        format!("symlink {}", rel.display()),
                        io::Error::last_os_error(),
                    ));
                }
                chown_at(&parent, name, uid, gid, &rel)?;
                set_mtime(&parent, name, mtime, &rel)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| StoreError::io(format!("read link of {}", rel.display()), e))?
                    .ok_or_else(|| {
                        StoreError::Hostile(format!("hard link {} has no target", rel.display()))
                    })?
                    .into_owned();
                let Some(target_rel) = normalize(&target)? else {
                    return Err(StoreError::Hostile(format!(
                        "hard link {} points at the root",
                        rel.display()
                    )));
                };
                let (target_parent_rel, target_name) = split(&target_rel);
                let target_parent =
                    open_in_root(&root, target_parent_rel, libc::O_PATH | libc::O_DIRECTORY)
                        .map_err(|e| {
                            StoreError::Hostile(format!(
                                "hard link {} to missing {}: {e}",
                                rel.display(),
                                target.display()
                            ))
                        })?;
                remove_existing(&parent, name, &rel)?;
                let ctarget = cstr(target_name)?;
                let cname = cstr(name)?;
                // SAFETY: valid dirfds and names; flags 0 means a symlink at the target is
                // linked itself, never followed out of the root.
                if unsafe {
                    libc::linkat(
                        target_parent.as_raw_fd(),
                        ctarget.as_ptr(),
                        parent.as_raw_fd(),
                        cname.as_ptr(),
                        0,
                    )
                } < 0
                {
                    return Err(StoreError::io(
                        format!("link {}", rel.display()),
                        io::Error::last_os_error(),
                    ));
                }
            }
            EntryType::Fifo => {
                remove_existing(&parent, name, &rel)?;
                mknod(&parent, name, libc::S_IFIFO | mode as libc::mode_t, 0, &rel)?;
                chown_at(&parent, name, uid, gid, &rel)?;
            }
            EntryType::Char | EntryType::Block => {
                stats.skipped_devices += 1;
            }
            other => {
                tracing::debug!(path = %rel.display(), kind = ?other, "skipping unsupported tar entry");
            }
        }
    }
    Ok(stats)
}

/// Turns a tar entry path into a clean relative path: leading `/` and `.` dropped,
/// `..` refused. `None` means the root directory itself.
fn normalize(path: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(StoreError::Hostile(format!(
                    "entry {:?} contains '..'",
                    path
                )));
            }
            Component::Normal(c) => out.push(c),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

fn split(rel: &Path) -> (&Path, &OsStr) {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().unwrap_or(OsStr::new(""));
    (parent, name)
}

fn cstr(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| StoreError::Hostile(format!("name {:?} contains NUL", s)))
}

pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(StoreError::io(
            format!("open {}", path.display()),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: freshly opened fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// openat2 with RESOLVE_IN_ROOT: `rel` resolves as if `root` were `/`.
pub(crate) fn open_in_root(root: &OwnedFd, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    let path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: open_how is plain old data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid dirfd, NUL-terminated path and a correctly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: freshly opened fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens directory `rel` inside `root`, creating missing components (mode 0755).
fn ensure_dir(root: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    match open_in_root(root, rel, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(StoreError::io(format!("open dir {}", rel.display()), e)),
    }
    let (parent_rel, name) = split(rel);
    let parent = ensure_dir(root, parent_rel)?;
    let cname = cstr(name)?;
    // SAFETY: valid dirfd, NUL-terminated name.
    if unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o755) } < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(StoreError::io(format!("mkdir {}", rel.display()), err));
        }
    }
    open_in_root(root, rel, libc::O_PATH | libc::O_DIRECTORY).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            // mkdir said it exists, open says it does not: a dangling symlink whose
            // target lies outside anything this archive created.
            StoreError::Hostile(format!(
                "{} is a symlink to a missing directory",
                rel.display()
            ))
        } else {
            StoreError::io(format!("open dir {}", rel.display()), e)
        }
    })
}

fn is_dir_at(parent: &OwnedFd, name: &OsStr) -> bool {
    let Ok(c) = cstr(name) else { return false };
    // SAFETY: zeroed stat buffer filled by the kernel.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstatat(
            parent.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) == 0
            && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
    }
}

/// Removes whatever sits at `name` (a later entry replaces an earlier one). Non-empty
/// directories are refused rather than recursively deleted.
fn remove_existing(parent: &OwnedFd, name: &OsStr, rel: &Path) -> Result<()> {
    let c = cstr(name)?;
    let flags = if is_dir_at(parent, name) {
        libc::AT_REMOVEDIR
    } else {
        0
    };
    // SAFETY: valid dirfd and name; unlinkat never follows symlinks.
    if unsafe { libc::unlinkat(parent.as_raw_fd(), c.as_ptr(), flags) } < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOENT) {
            return Err(StoreError::io(format!("replace {}", rel.display()), err));
        }
    }
    Ok(())
}

fn mknod(
    parent: &OwnedFd,
    name: &OsStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
    rel: &Path,
) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dirfd and name.
    if unsafe { libc::mknodat(parent.as_raw_fd(), c.as_ptr(), mode, dev) } < 0 {
        return Err(StoreError::io(
            format!("mknod {}", rel.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn chown_at(parent: &OwnedFd, name: &OsStr, uid: u32, gid: u32, rel: &Path) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dirfd and name; AT_SYMLINK_NOFOLLOW changes a link itself.
    if unsafe {
        libc::fchownat(
            parent.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } < 0
    {
        return Err(StoreError::io(
            format!("chown {}", rel.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn chmod_at(parent: &OwnedFd, name: &OsStr, mode: u32, rel: &Path) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dirfd and name; only called on directories we just created.
    if unsafe { libc::fchmodat(parent.as_raw_fd(), c.as_ptr(), mode as libc::mode_t, 0) } < 0 {
        return Err(StoreError::io(
            format!("chmod {}", rel.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn set_mtime(parent: &OwnedFd, name: &OsStr, mtime: i64, rel: &Path) -> Result<()> {
    let c = cstr(name)?;
    let t = libc::timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: valid dirfd, name and a two-element timespec array.
    if unsafe {
        libc::utimensat(
            parent.as_raw_fd(),
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } < 0
    {
        return Err(StoreError::io(
            format!("set mtime of {}", rel.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn set_opaque(root: &OwnedFd, dir_rel: &Path) -> Result<()> {
    let dir = open_in_root(root, dir_rel, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| StoreError::io(format!("open {}", dir_rel.display()), e))?;
    let key = c"trusted.overlay.opaque";
    // SAFETY: valid fd, NUL-terminated key and a one-byte value.
    if unsafe { libc::fsetxattr(dir.as_raw_fd(), key.as_ptr(), b"y".as_ptr().cast(), 1, 0) } < 0 {
        return Err(StoreError::io(
            format!("mark {} opaque", dir_rel.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// Builds a tar by hand so that hostile paths the `tar` crate's builder would
    /// reject can be written.
    fn raw_entry(out: &mut Vec<u8>, path: &str, kind: EntryType, link: &str, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        {
            let bytes = header.as_mut_bytes();
            bytes[..path.len()].copy_from_slice(path.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        if !link.is_empty() {
            let bytes = header.as_mut_bytes();
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
        if kind == EntryType::Char {
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }

    fn finish(mut out: Vec<u8>) -> Vec<u8> {
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir(&outside).unwrap();
        (tmp, dest, outside)
    }

    #[test]
    fn plain_files_dirs_and_links() {
        let (_t, dest, _) = setup();
        let mut tar = Vec::new();
        raw_entry(&mut tar, "./bin/", EntryType::Directory, "", b"");
        raw_entry(
            &mut tar,
            "./bin/busybox",
            EntryType::Regular,
            "",
            b"#!binary",
        );
        raw_entry(&mut tar, "./bin/sh", EntryType::Symlink, "busybox", b"");
        raw_entry(&mut tar, "./bin/ash", EntryType::Link, "bin/busybox", b"");
        raw_entry(&mut tar, "/etc/hostname", EntryType::Regular, "", b"x\n");
        let stats = unpack(&finish(tar)[..], &dest).unwrap();
        assert_eq!(stats.entries, 5);
        assert_eq!(
            std::fs::read(dest.join("bin/busybox")).unwrap(),
            b"#!binary"
        );
        assert_eq!(
            std::fs::read_link(dest.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::metadata(dest.join("bin/ash")).unwrap().ino(),
            std::fs::metadata(dest.join("bin/busybox")).unwrap().ino()
        );
        assert_eq!(std::fs::read(dest.join("etc/hostname")).unwrap(), b"x\n");
    }

    #[test]
    fn dotdot_is_refused() {
        let (_t, dest, outside) = setup();
        let mut tar = Vec::new();
        raw_entry(
            &mut tar,
            "../outside/evil",
            EntryType::Regular,
            "",
            b"pwned",
        );
        let err = unpack(&finish(tar)[..], &dest).unwrap_err();
        assert!(matches!(err, StoreError::Hostile(_)), "{err}");
        assert!(!outside.join("evil").exists());
    }

    #[test]
    fn symlink_escape_is_confined() {
        let (_t, dest, outside) = setup();
        let mut tar = Vec::new();
        raw_entry(
            &mut tar,
            "escape",
            EntryType::Symlink,
            outside.to_str().unwrap(),
            b"",
        );
        raw_entry(&mut tar, "escape/evil", EntryType::Regular, "", b"pwned");
        let err = unpack(&finish(tar)[..], &dest).unwrap_err();
        assert!(matches!(err, StoreError::Hostile(_)), "{err}");
        let mut tar = Vec::new();
        raw_entry(
            &mut tar,
            "rel",
            EntryType::Symlink,
            "../../../../../../../..",
            b"",
        );
        raw_entry(&mut tar, "rel/evil2", EntryType::Regular, "", b"pwned");
        raw_entry(&mut tar, "abs", EntryType::Symlink, "/", b"");
        raw_entry(&mut tar, "abs/evil3", EntryType::Regular, "", b"pwned");
        unpack(&finish(tar)[..], &dest).unwrap();
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        // The writes landed inside the root, where the links resolve when `dest` is `/`.
        assert!(dest.join("evil2").exists());
        assert!(dest.join("evil3").exists());
    }

    #[test]
    fn symlink_then_overwrite_does_not_write_through() {
        let (_t, dest, outside) = setup();
        let victim = outside.join("victim");
        std::fs::write(&victim, b"original").unwrap();
        let mut tar = Vec::new();
        raw_entry(
            &mut tar,
            "f",
            EntryType::Symlink,
            victim.to_str().unwrap(),
            b"",
        );
        raw_entry(&mut tar, "f", EntryType::Regular, "", b"pwned");
        unpack(&finish(tar)[..], &dest).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"original");
        assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"pwned");
    }

    #[test]
    fn hard_link_out_of_tree_is_confined_or_refused() {
        let (_t, dest, outside) = setup();
        let secret = outside.join("secret");
        std::fs::write(&secret, b"secret").unwrap();
        let mut tar = Vec::new();
        raw_entry(
            &mut tar,
            "h",
            EntryType::Link,
            secret.to_str().unwrap(),
            b"",
        );
        let result = unpack(&finish(tar)[..], &dest);
        assert!(result.is_err());
        assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
        let mut tar = Vec::new();
        raw_entry(&mut tar, "h2", EntryType::Link, "../outside/secret", b"");
        assert!(matches!(
            unpack(&finish(tar)[..], &dest),
            Err(StoreError::Hostile(_))
        ));
        assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
    }

    #[test]
    fn device_nodes_are_not_created() {
        let (_t, dest, _) = setup();
        let mut tar = Vec::new();
        raw_entry(&mut tar, "dev/mem", EntryType::Char, "", b"");
        let stats = unpack(&finish(tar)[..], &dest).unwrap();
        assert_eq!(stats.skipped_devices, 1);
        assert!(!dest.join("dev/mem").exists());
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let (_t, dest, _) = setup();
        let mut tar = Vec::new();
        raw_entry(&mut tar, "etc/.wh.gone", EntryType::Regular, "", b"");
        unpack(&finish(tar)[..], &dest).unwrap();
        let meta = std::fs::symlink_metadata(dest.join("etc/gone")).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), 0);
    }
}
