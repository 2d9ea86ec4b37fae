//! A container's writable layer as an OCI layer tar (for `commit`).
//!
//! overlayfs marks a deleted file with a 0/0 character device and a directory
//! whose lower contents are hidden with the `trusted.overlay.opaque` xattr; an OCI
//! layer says the same with `.wh.<name>` and `.wh..wh..opq` entries.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::{Result, SnapshotError};

fn io_err(context: impl Into<String>, source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        context: context.into(),
        source,
    }
}

fn is_opaque(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 4];
    // SAFETY: valid NUL-terminated path and buffer.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// Writes the layer tar of `upper` to `out`, leaving out `ignored` paths
/// (`/etc/hosts` and the like, which are mount points, not changes).
pub fn write_layer(upper: &Path, ignored: &[&str], out: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    walk(&mut builder, upper, Path::new(""), ignored)?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| io_err("finish layer tar", e))
}

fn walk<W: Write>(
    builder: &mut tar::Builder<W>,
    upper: &Path,
    rel: &Path,
    ignored: &[&str],
) -> Result<()> {
    let dir = upper.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| io_err(format!("read {}", dir.display()), e))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let entry_rel = rel.join(&name);
        let shown = format!("/{}", entry_rel.display());
        if ignored.contains(&shown.as_str()) {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| io_err(format!("stat {}", path.display()), e))?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(0);
            header.set_mode(0o644);
            header.set_mtime(meta.mtime().max(0) as u64);
            let mut wh = std::ffi::OsString::from(".wh.");
            wh.push(&name);
            builder
                .append_data(&mut header, rel.join(wh), io::empty())
                .map_err(|e| io_err(format!("tar whiteout of {shown}"), e))?;
            continue;
        }
        builder
            .append_path_with_name(&path, &entry_rel)
            .map_err(|e| io_err(format!("tar {shown}"), e))?;
        if meta.is_dir() {
            if is_opaque(&path) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(0);
                header.set_mode(0o644);
                builder
                    .append_data(&mut header, entry_rel.join(".wh..wh..opq"), io::empty())
                    .map_err(|e| io_err(format!("tar opaque marker of {shown}"), e))?;
            }
            walk(builder, upper, &entry_rel, ignored)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_become_wh_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let upper = tmp.path();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/new"), b"n").unwrap();
        std::fs::write(upper.join("etc/hosts"), b"").unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let mut out = Vec::new();
        write_layer(upper, &["/etc/hosts"], &mut out).unwrap();
        let names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["etc", "etc/.wh.gone", "etc/new"]);
    }
}
