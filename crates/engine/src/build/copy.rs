//! COPY and ADD: the sources a step reads (globs, .dockerignore, other
//! stages), planned and then written as a layer tar without a container.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_dockerfile::{CopyFiles, IgnoreMatcher};
use sha2::{Digest as _, Sha256};

use super::*;
use crate::Engine;

// ---------------------------------------------------------------- COPY / ADD

pub(super) struct CopyInput {
    pub(super) files: CopyFiles,
    pub(super) is_add: bool,
    pub(super) ctx_dir: PathBuf,
    pub(super) workdir: String,
    /// The image being built on (top layer first): for `--chown` names and for
    /// whether the destination is an existing directory.
    pub(super) lowers: Vec<PathBuf>,
    /// `--from`: the source image's layers (top first), or `None` for the context.
    pub(super) from_lowers: Option<Vec<PathBuf>>,
    /// `.dockerignore` patterns (context sources only).
    pub(super) ignore: Option<Vec<String>>,
}

/// One file or directory to put into the layer.
pub(super) struct CopyItem {
    pub(super) source: PathBuf,
    /// Absolute path in the image.
    pub(super) dest: String,
    /// Copy a directory's contents (not the directory itself) to `dest`.
    pub(super) contents: bool,
    /// ADD of a local archive: its entries go under `dest`.
    pub(super) extract: bool,
}

pub(super) struct PlannedCopy {
    pub(super) items: Vec<CopyItem>,
    pub(super) heredocs: Vec<(String, Vec<u8>)>,
    pub(super) owner: Option<(u32, u32)>,
    pub(super) mode: Option<u32>,
    pub(super) content_hash: String,
    pub(super) ignore: Option<IgnoreMatcher>,
    pub(super) ctx_dir: PathBuf,
    /// Mount point of `--from` layers, unmounted after the layer is written.
    pub(super) from_mount: Option<PathBuf>,
}

impl Drop for PlannedCopy {
    fn drop(&mut self) {
        if let Some(m) = self.from_mount.take() {
            let _ = berth_snapshot::unmount(&m);
            let _ = std::fs::remove_dir(&m);
        }
    }
}

pub(super) use crate::path_match as glob_match;

pub(super) fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Engine {
    pub(super) fn plan_copy(&self, input: CopyInput) -> std::result::Result<PlannedCopy, String> {
        let what = if input.is_add { "ADD" } else { "COPY" };
        let (root, from_mount) = match &input.from_lowers {
            Some(lowers) => {
                let target = self
                    .config
                    .data_root
                    .join("build")
                    .join(format!("from-{}", &crate::random_id()[..12]));
                std::fs::create_dir_all(&target)
                    .map_err(|e| format!("create {}: {e}", target.display()))?;
                let existing: Vec<PathBuf> =
                    lowers.iter().filter(|p| p.exists()).cloned().collect();
                if existing.is_empty() {
                    (target.clone(), Some(target))
                } else {
                    berth_snapshot::mount_readonly(&existing, &target).map_err(|e| {
                        let _ = std::fs::remove_dir(&target);
                        e.to_string()
                    })?;
                    (target.clone(), Some(target))
                }
            }
            None => (input.ctx_dir.clone(), None),
        };
        let ignore = match &input.ignore {
            Some(patterns) => {
                Some(IgnoreMatcher::from_patterns(patterns.iter()).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let mut planned = PlannedCopy {
            items: Vec::new(),
            heredocs: Vec::new(),
            owner: None,
            mode: None,
            content_hash: String::new(),
            ignore,
            ctx_dir: root.clone(),
            from_mount,
        };
        let files = &input.files;
        // Destination, relative to WORKDIR.
        let workdir = if input.workdir.is_empty() {
            "/".to_string()
        } else {
            input.workdir.clone()
        };
        let dest_is_dir_syntax =
            files.dest.ends_with('/') || files.dest.ends_with("/.") || files.dest == ".";
        let dest = if files.dest.starts_with('/') {
            files.dest.clone()
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), files.dest)
        };
        let dest = normalize_abs(&dest);

        let snapshot =
            berth_snapshot::Snapshot::new(Path::new("/nonexistent-upper"), input.lowers.clone());
        if let Some(chown) = &files.chown {
            let (u, g, _) =
                crate::user::resolve_user(chown, &snapshot).map_err(|e| e.to_string())?;
            planned.owner = Some((u, g));
        }
        if let Some(chmod) = &files.chmod {
            planned.mode = Some(
                u32::from_str_radix(chmod, 8)
                    .map_err(|_| format!("invalid --chmod {chmod:?}: octal mode expected"))?
                    & 0o7777,
            );
        }

        for h in &files.heredocs {
            let target = if dest_is_dir_syntax {
                format!("{}/{}", dest.trim_end_matches('/'), h.name)
            } else {
                dest.clone()
            };
            planned
                .heredocs
                .push((target, h.data().into_owned().into_bytes()));
        }

        // Expand sources (globs, context-relative).
        let mut sources: Vec<PathBuf> = Vec::new();
        for s in files.sources.iter().filter(|s| !s.starts_with("<<")) {
            if s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@") {
                if input.is_add {
                    return Err(format!("ADD {s}: fetching URLs is not possible here: this host has no network access to it"));
                }
                return Err(format!("COPY {s}: source can't be a URL for COPY"));
            }
            let rel = s.trim_start_matches('/');
            if has_glob(rel) {
                let matched = glob_in(&root, rel, planned.ignore.as_ref());
                if matched.is_empty() {
                    return Err(format!(
                        "{what} failed: no source files were specified matching {s}"
                    ));
                }
                sources.extend(matched);
            } else {
                let path = berth_volume::scoped_path(&root, rel).map_err(|e| e.to_string())?;
                let rel_clean = path
                    .strip_prefix(&root)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let excluded = planned
                    .ignore
                    .as_ref()
                    .is_some_and(|m| !rel_clean.is_empty() && m.is_excluded(&rel_clean));
                if excluded || std::fs::symlink_metadata(&path).is_err() {
                    return Err(format!(
                        "{what} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
                    ));
                }
                sources.push(path);
            }
        }
        let many = sources.len() + planned.heredocs.len() > 1;
        if many && !dest_is_dir_syntax {
            return Err(format!("When using {what} with more than one source file, the destination must be a directory and end with a /"));
        }
        let dest_dir_exists = input.lowers.iter().any(|l| {
            berth_volume::scoped_path(l, &dest)
                .map(|p| p.is_dir())
                .unwrap_or(false)
        });
        for source in sources {
            let meta = std::fs::metadata(&source)
                .map_err(|e| format!("stat {}: {e}", source.display()))?;
            let name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if meta.is_dir() {
                planned.items.push(CopyItem {
                    source,
                    dest: dest.clone(),
                    contents: true,
                    extract: false,
                });
            } else if input.is_add && is_archive(&source) {
                planned.items.push(CopyItem {
                    source,
                    dest: dest.clone(),
                    contents: false,
                    extract: true,
                });
            } else {
                let target = if dest_is_dir_syntax || many || dest_dir_exists {
                    format!("{}/{}", dest.trim_end_matches('/'), name)
                } else {
                    dest.clone()
                };
                planned.items.push(CopyItem {
                    source,
                    dest: target,
                    contents: false,
                    extract: false,
                });
            }
        }
        // The cache key: names, modes and contents, never mtimes.
        let mut hasher = Sha256::new();
        hasher.update(format!("{:?}{:?}{dest}", planned.owner, planned.mode));
        for (target, data) in &planned.heredocs {
            hasher.update(target.as_bytes());
            hasher.update(data);
        }
        for item in &planned.items {
            hasher.update(item.dest.as_bytes());
            hash_tree(
                &mut hasher,
                &item.source,
                &planned.ctx_dir,
                planned.ignore.as_ref(),
            )
            .map_err(|e| format!("read {}: {e}", item.source.display()))?;
        }
        planned.content_hash = hex::encode(hasher.finalize());
        Ok(planned)
    }

    pub(super) fn write_copy_layer(
        &self,
        planned: PlannedCopy,
    ) -> std::result::Result<berth_store::StoredLayer, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let thread = std::thread::spawn(move || -> std::io::Result<()> {
            let mut tar = tar::Builder::new(writer);
            tar.follow_symlinks(false);
            let mut dirs_done = BTreeSet::new();
            for (target, data) in &planned.heredocs {
                add_parents(&mut tar, target, &mut dirs_done)?;
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(planned.mode.unwrap_or(0o644));
                let (u, g) = planned.owner.unwrap_or((0, 0));
                h.set_uid(u.into());
                h.set_gid(g.into());
                h.set_mtime(0);
                tar.append_data(&mut h, target.trim_start_matches('/'), data.as_slice())?;
            }
            for item in &planned.items {
                if item.extract {
                    add_parents(
                        &mut tar,
                        &format!("{}/x", item.dest.trim_end_matches('/')),
                        &mut dirs_done,
                    )?;
                    append_archive(&mut tar, &item.source, &item.dest)?;
                } else if item.contents {
                    add_parents(
                        &mut tar,
                        &format!("{}/x", item.dest.trim_end_matches('/')),
                        &mut dirs_done,
                    )?;
                    add_tree(&mut tar, &item.source, &item.dest, &planned, true)?;
                } else {
                    add_parents(&mut tar, &item.dest, &mut dirs_done)?;
                    add_tree(&mut tar, &item.source, &item.dest, &planned, false)?;
                }
            }
            tar.into_inner()?.flush()
        });
        let stored = self.store.import_layer(reader);
        let written = thread
            .join()
            .map_err(|_| "layer writer panicked".to_string())?;
        written.map_err(|e| format!("write layer: {e}"))?;
        stored.map_err(|e| e.to_string())
    }
}

pub(super) fn normalize_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Matches a glob relative to `root`, component by component.
pub(super) fn glob_in(root: &Path, pattern: &str, ignore: Option<&IgnoreMatcher>) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for dir in &current {
            if has_glob(comp) {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if glob_match(comp, &n) {
                        next.push(dir.join(n));
                    }
                }
            } else {
                let p = dir.join(comp);
                if std::fs::symlink_metadata(&p).is_ok() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter(|p| p.starts_with(root) && p != root)
        .filter(|p| {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            !ignore.is_some_and(|m| m.is_excluded(&rel))
        })
        .collect()
}
