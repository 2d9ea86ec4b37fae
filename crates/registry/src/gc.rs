//! Offline mark-and-sweep garbage collection of the blob store.
//!
//! Run it while the registry is stopped (or at least while nobody pushes):
//! a blob uploaded but not yet referenced by a manifest looks garbage to
//! the collector. [`GcOptions::min_age`] protects blobs younger than the
//! given age for the case where it must run beside a live server.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::GcError;
use crate::manifest::{self, References};
use crate::name::Digest;
use crate::storage::Storage;

/// Options for [`garbage_collect_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GcOptions {
    /// Also delete manifests that no tag reaches (directly, through an
    /// index, or as a referrer of a reachable manifest).
    pub delete_untagged: bool,
    /// Report what would be deleted without deleting anything.
    pub dry_run: bool,
    /// Never delete blobs modified more recently than this.
    pub min_age: Duration,
}

/// What a collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Repositories scanned.
    pub repositories: usize,
    /// Untagged manifests deleted (with `delete_untagged`).
    pub manifests_deleted: usize,
    /// Blobs kept because something references them.
    pub blobs_marked: usize,
    /// Blobs deleted (or that would be, in a dry run).
    pub blobs_deleted: usize,
    /// Bytes those blobs occupied.
    pub bytes_freed: u64,
    /// Repository blob links removed because their blob is gone.
    pub layer_links_removed: usize,
    /// Digests of the deleted blobs.
    pub deleted: Vec<Digest>,
}

/// Collects garbage under `root` with default options: deletes every blob
/// not referenced by a manifest of any repository.
pub fn garbage_collect(root: &Path) -> Result<GcReport, GcError> {
    garbage_collect_with(root, &GcOptions::default())
}

fn manifest_refs(st: &Storage, d: &Digest) -> Result<Option<References>, GcError> {
    let Some(body) = st.read_blob(d)? else {
        return Ok(None);
    };
    manifest::references(&body)
        .map(Some)
        .map_err(|source| GcError::CorruptManifest {
            path: st.blob_path(d),
            source,
        })
}

/// Manifests of `repo` reachable from its tags: through index children and
/// through `subject` back-references (referrers of reachable manifests).
fn reachable_manifests(
    st: &Storage,
    repo: &str,
    revisions: &[Digest],
) -> Result<HashSet<Digest>, GcError> {
    let mut reachable = HashSet::new();
    let mut work: Vec<Digest> = st.tag_map(repo)?.into_iter().map(|(_, d)| d).collect();
    loop {
        while let Some(d) = work.pop() {
            if !reachable.insert(d) {
                continue;
            }
            if let Some(refs) = manifest_refs(st, &d)? {
                work.extend(refs.children);
            }
        }
        for r in revisions {
            if reachable.contains(r) {
                continue;
            }
            if let Some(rec) = st.manifest_record(repo, r)? {
                if rec.subject.is_some_and(|s| reachable.contains(&s)) {
                    work.push(*r);
                }
            }
        }
        if work.is_empty() {
            return Ok(reachable);
        }
    }
}

/// Collects garbage under `root`.
///
/// Mark: every manifest revision of every repository, following index →
/// manifest → config/layers, and `subject`. Sweep: every blob not marked
/// (and older than `min_age`). Finally, repository blob links whose blob
/// no longer exists are removed.
pub fn garbage_collect_with(root: &Path, opts: &GcOptions) -> Result<GcReport, GcError> {
    let st = Storage::new(root);
    let mut report = GcReport::default();
    let repos = st.list_repositories()?;
    report.repositories = repos.len();

    let mut marked: HashSet<Digest> = HashSet::new();
    let mut parsed: HashSet<Digest> = HashSet::new();
    for repo in &repos {
        let mut revisions = st.list_revisions(repo)?;
        if opts.delete_untagged {
            let keep = reachable_manifests(&st, repo, &revisions)?;
            let mut kept = Vec::new();
            for r in revisions {
                if keep.contains(&r) {
                    kept.push(r);
                } else {
                    tracing::info!(repo, digest = %r, dry_run = opts.dry_run, "gc: deleting untagged manifest");
                    if !opts.dry_run {
                        st.delete_manifest(repo, &r)?;
                    }
                    report.manifests_deleted += 1;
                }
            }
            revisions = kept;
        }
        let mut work = revisions;
        while let Some(d) = work.pop() {
            marked.insert(d);
            if !parsed.insert(d) {
                continue;
            }
            if let Some(refs) = manifest_refs(&st, &d)? {
                marked.extend(refs.blobs);
                work.extend(refs.children);
                work.extend(refs.subject);
            }
        }
    }
    report.blobs_marked = marked.len();

    let now = SystemTime::now();
    let mut gone: HashSet<Digest> = HashSet::new();
    for (d, size, mtime) in st.list_blobs()? {
        if marked.contains(&d) {
            continue;
        }
        let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
        if age < opts.min_age {
            continue;
        }
        tracing::info!(digest = %d, size, dry_run = opts.dry_run, "gc: deleting blob");
        if !opts.dry_run {
            st.delete_blob(&d)?;
        }
        gone.insert(d);
        report.blobs_deleted += 1;
        report.bytes_freed += size;
        report.deleted.push(d);
    }

    for repo in &repos {
        for d in st.list_layer_links(repo)? {
            let missing = gone.contains(&d) || st.blob_size(&d)?.is_none();
            if missing {
                if !opts.dry_run {
                    st.unlink_blob(repo, &d)?;
                }
                report.layer_links_removed += 1;
            }
        }
    }
    report.deleted.sort();
    Ok(report)
}
