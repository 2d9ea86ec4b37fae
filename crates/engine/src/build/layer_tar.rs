//! Writing layer tars: trees, their parents, and archives ADD unpacks,
//! with the content hashes the cache keys use.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use berth_dockerfile::IgnoreMatcher;
use sha2::{Digest as _, Sha256};

use super::*;

pub(super) fn hash_tree(
    hasher: &mut Sha256,
    path: &Path,
    ctx: &Path,
    ignore: Option<&IgnoreMatcher>,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let rel = path
        .strip_prefix(ctx)
        .map(|r| r.display().to_string())
        .unwrap_or_default();
    if !rel.is_empty() && ignore.is_some_and(|m| m.is_excluded(&rel)) {
        return Ok(());
    }
    hasher.update(format!("\0{rel}\0{:o}\0", meta.mode()));
    if meta.file_type().is_symlink() {
        hasher.update(std::fs::read_link(path)?.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        let mut f = std::fs::File::open(path)?;
        std::io::copy(&mut f, hasher)?;
    } else if meta.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for n in names {
            hash_tree(hasher, &n, ctx, ignore)?;
        }
    }
    Ok(())
}

pub(super) fn add_parents<W: Write>(
    tar: &mut tar::Builder<W>,
    target: &str,
    done: &mut BTreeSet<String>,
) -> std::io::Result<()> {
    let parts: Vec<&str> = target.trim_start_matches('/').split('/').collect();
    let mut path = String::new();
    for p in &parts[..parts.len().saturating_sub(1)] {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(p);
        if done.insert(path.clone()) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, format!("{path}/"), std::io::empty())?;
        }
    }
    Ok(())
}

/// Adds `source` at `dest` (or, with `contents`, what is inside it), applying
/// `--chown`/`--chmod` and `.dockerignore`.
pub(super) fn add_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    source: &Path,
    dest: &str,
    planned: &PlannedCopy,
    contents: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let rel = source
        .strip_prefix(&planned.ctx_dir)
        .map(|r| r.display().to_string())
        .unwrap_or_default();
    if !rel.is_empty() && planned.ignore.as_ref().is_some_and(|m| m.is_excluded(&rel)) {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(source)?;
    let name = dest.trim_start_matches('/').to_string();
    let (uid, gid) = planned.owner.unwrap_or((0, 0));
    let mut h = tar::Header::new_gnu();
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mtime(meta.mtime().max(0) as u64);
    let mode = planned.mode.unwrap_or(meta.mode() & 0o7777);
    h.set_mode(mode);
    if meta.file_type().is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        let target = std::fs::read_link(source)?;
        tar.append_link(&mut h, &name, target)?;
    } else if meta.is_dir() {
        if !contents {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        } else if !name.is_empty() {
            // The destination directory itself gets the source directory's mode.
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(source)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for e in entries {
            let child_dest = format!("{}/{}", dest.trim_end_matches('/'), e.to_string_lossy());
            add_tree(tar, &source.join(&e), &child_dest, planned, false)?;
        }
    } else if meta.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        let f = std::fs::File::open(source)?;
        tar.append_data(&mut h, &name, f.take(meta.len()))?;
    }
    Ok(())
}

/// Whether a local ADD source is a tar archive (plain or gzip) to unpack.
pub(super) fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buffered = std::io::BufReader::new(f);
    let Ok(mut stream) = berth_store::decompressed(&mut buffered) else {
        return false;
    };
    let mut block = [0u8; 512];
    if stream.read_exact(&mut block).is_err() {
        return false;
    }
    let header = tar::Header::from_byte_slice(&block);
    header.cksum().ok().is_some_and(|sum| {
        let computed: u32 = block[..148]
            .iter()
            .chain(&[b' '; 8])
            .chain(&block[156..])
            .map(|b| u32::from(*b))
            .sum();
        sum == computed
    })
}

/// Re-emits an archive's entries under `dest` (ADD of a local tar).
pub(super) fn append_archive<W: Write>(
    tar: &mut tar::Builder<W>,
    source: &Path,
    dest: &str,
) -> std::io::Result<()> {
    let f = std::fs::File::open(source)?;
    let mut buffered = std::io::BufReader::new(f);
    let stream = berth_store::decompressed(&mut buffered).map_err(std::io::Error::other)?;
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Some(rel) = clean_relative(&path.to_string_lossy()) else {
            if path.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(std::io::Error::other(format!(
                    "archive entry {} leaves the destination",
                    path.display()
                )));
            }
            continue;
        };
        let name = format!(
            "{}/{}",
            dest.trim_start_matches('/').trim_end_matches('/'),
            rel.display()
        );
        let name = name.trim_start_matches('/').to_string();
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let target = if header.entry_type() == tar::EntryType::Link {
                    let Some(t) = clean_relative(&target.to_string_lossy()) else {
                        continue;
                    };
                    PathBuf::from(format!(
                        "{}/{}",
                        dest.trim_start_matches('/').trim_end_matches('/'),
                        t.display()
                    ))
                } else {
                    target
                };
                tar.append_link(&mut header, &name, target)?;
            }
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Directory
            | tar::EntryType::Fifo => {
                let size = header.size()?;
                tar.append_data(&mut header, &name, (&mut entry).take(size))?;
            }
            _ => {}
        }
    }
    Ok(())
}
