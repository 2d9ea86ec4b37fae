//! Copying a directory tree with everything a file carries (docker's volume copy-up).

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::{io, Result};

/// Whether `dir` has no entries (a missing directory counts as empty).
pub fn is_empty_dir(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    }
}

/// Copies the contents of `src` into the existing directory `dst`, then gives `dst`
/// the owner and mode of `src`, as docker does for a fresh volume. Symlinks are
/// copied as links, never followed.
pub fn copy_up(src: &Path, dst: &Path) -> Result<()> {
    copy_dir_contents(src, dst)?;
    let meta =
        std::fs::symlink_metadata(src).map_err(|e| io(format!("stat {}", src.display()), e))?;
    copy_metadata(src, dst, &meta)
}

fn copy_dir_contents(src: &Path, dst: &Path) -> Result<()> {
    let entries = std::fs::read_dir(src).map_err(|e| io(format!("read {}", src.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(format!("read {}", src.display()), e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)
            .map_err(|e| io(format!("stat {}", from.display()), e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            match std::fs::create_dir(&to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(format!("create {}", to.display()), e)),
            }
            copy_dir_contents(&from, &to)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&from)
                .map_err(|e| io(format!("readlink {}", from.display()), e))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| io(format!("symlink {}", to.display()), e))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(|e| io(format!("copy {}", from.display()), e))?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
            // Overlay whiteouts (0/0 character devices) mark deleted files: skip them.
            if ft.is_char_device() && meta.rdev() == 0 {
                continue;
            }
            nix::sys::stat::mknod(
                &to,
                nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT),
                nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777),
                meta.rdev(),
            )
            .map_err(|e| io(format!("mknod {}", to.display()), e.into()))?;
        }
        copy_metadata(&from, &to, &meta)?;
    }
    Ok(())
}

fn copy_metadata(from: &Path, to: &Path, meta: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| io(format!("chown {}", to.display()), e))?;
    if !meta.file_type().is_symlink() {
        // After chown: chown clears setuid/setgid bits.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| io(format!("chmod {}", to.display()), e))?;
    }
    copy_xattrs(from, to)?;
    let times = [
        nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
        nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        None,
        to,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| io(format!("set times of {}", to.display()), e.into()))?;
    Ok(())
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        io(
            format!("{}", p.display()),
            std::io::ErrorKind::InvalidInput.into(),
        )
    })
}

fn copy_xattrs(from: &Path, to: &Path) -> Result<()> {
    let src = cpath(from)?;
    let dst = cpath(to)?;
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length; the kernel writes at most that much.
    let len = unsafe { libc::llistxattr(src.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if len <= 0 {
        return Ok(());
    }
    names.truncate(len as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        // Overlay's own attributes describe the layer, not the file.
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 65536];
        // SAFETY: as above.
        let vlen = unsafe {
            libc::lgetxattr(
                src.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if vlen < 0 {
            continue;
        }
        // SAFETY: pointers valid for the given lengths.
        let rc = unsafe {
            libc::lsetxattr(
                dst.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                vlen as usize,
                0,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            let label = OsStr::from_bytes(CStr::to_bytes(&cname))
                .to_string_lossy()
                .into_owned();
            tracing::debug!(path = %to.display(), xattr = %label, error = %err, "xattr not copied");
        }
    }
    Ok(())
}

/// Bytes used by the regular files under `dir` (not following symlinks).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_modes_owners_links_and_xattrs() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/f"), b"hello").unwrap();
        std::os::unix::fs::lchown(src.path().join("sub/f"), Some(1234), Some(2345)).unwrap();
        std::fs::set_permissions(
            src.path().join("sub/f"),
            std::fs::Permissions::from_mode(0o4751),
        )
        .unwrap();
        std::os::unix::fs::symlink("../nowhere", src.path().join("link")).unwrap();
        let f = cpath(&src.path().join("sub/f")).unwrap();
        let name = CString::new("user.berth").unwrap();
        // SAFETY: valid pointers.
        let xattr_ok =
            unsafe { libc::lsetxattr(f.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) } == 0;
        std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();

        copy_up(src.path(), dst.path()).unwrap();
        let m = std::fs::metadata(dst.path().join("sub/f")).unwrap();
        assert_eq!(std::fs::read(dst.path().join("sub/f")).unwrap(), b"hello");
        assert_eq!(m.mode() & 0o7777, 0o4751);
        assert_eq!((m.uid(), m.gid()), (1234, 2345));
        assert_eq!(
            std::fs::read_link(dst.path().join("link")).unwrap(),
            Path::new("../nowhere")
        );
        assert_eq!(
            std::fs::metadata(dst.path()).unwrap().mode() & 0o7777,
            0o1777
        );
        if xattr_ok {
            let d = cpath(&dst.path().join("sub/f")).unwrap();
            let mut buf = [0u8; 8];
            // SAFETY: valid pointers.
            let n =
                unsafe { libc::lgetxattr(d.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 8) };
            assert_eq!(n, 1);
        }
        assert_eq!(dir_size(dst.path()), 5 + "../nowhere".len() as u64);
        assert!(!is_empty_dir(dst.path()));
    }
}
