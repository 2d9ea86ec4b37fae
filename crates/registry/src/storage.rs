//! The on-disk store. Synchronous (std::fs); the HTTP layer calls it through
//! `spawn_blocking`. See the crate documentation for the layout and the
//! crash-safety rule every write here follows.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::name::{is_valid_repository_name, is_valid_tag, Digest};

type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What is recorded about one manifest revision of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub subject: Option<Digest>,
}

#[derive(Serialize, Deserialize)]
struct RevisionFile {
    digest: String,
    #[serde(rename = "mediaType")]
    media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
}

/// Metadata of an upload session (`uploads/<uuid>/info`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadInfo {
    pub repo: String,
    pub started: u64,
}

/// Handle on a storage root. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    root: PathBuf,
}

/// Returns true if `s` looks like an upload id we issued (a hyphenated
/// lowercase-hex UUID), so it is safe to use as a file name.
pub(crate) fn is_valid_upload_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// A new random (version 4) UUID string.
pub(crate) fn new_upload_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// fsync a directory so renames/creations/removals in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(StorageError::io("open directory", dir))?;
    f.sync_all()
        .map_err(StorageError::io("fsync directory", dir))
}

impl Storage {
    /// A handle on `root` without touching the filesystem.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Storage { root: root.into() }
    }

    /// Creates the top-level directories and removes leftover temporary
    /// files from a previous run. Only one server may use a root at a time.
    pub fn init(&self) -> Result<()> {
        for d in [self.blobs_dir(), self.repos_dir(), self.uploads_dir()] {
            self.ensure_dir(&d)?;
        }
        let tmp = self.tmp_dir();
        if tmp.exists() {
            fs::remove_dir_all(&tmp)
                .map_err(StorageError::io("clear temporary directory", &tmp))?;
        }
        self.ensure_dir(&tmp)?;
        Ok(())
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn repos_dir(&self) -> PathBuf {
        self.root.join("repositories")
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// Directory of a repository. `name` must have been validated.
    pub fn repo_dir(&self, name: &str) -> PathBuf {
        debug_assert!(is_valid_repository_name(name));
        let mut p = self.repos_dir();
        for part in name.split('/') {
            p.push(part);
        }
        p
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers")
            .join("sha256")
            .join(d.hex())
    }

    fn revisions_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests")
            .join("revisions")
            .join("sha256")
    }

    fn revision_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.revisions_dir(name).join(d.hex())
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests").join("tags")
    }

    fn tag_link(&self, name: &str, tag: &str) -> PathBuf {
        self.tags_dir(name).join(tag).join("link")
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests")
            .join("referrers")
            .join("sha256")
            .join(subject.hex())
    }

    pub fn upload_dir(&self, id: &str) -> PathBuf {
        debug_assert!(is_valid_upload_id(id));
        self.uploads_dir().join(id)
    }

    pub fn upload_data_path(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("data")
    }

    // ---------------------------------------------------------------
    // Primitive, crash-safe file operations
    // ---------------------------------------------------------------

    /// Creates `dir` and any missing parents, fsyncing each parent whose
    /// entries changed.
    pub fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.ensure_dir(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {
                if let Some(parent) = dir.parent() {
                    fsync_dir(parent)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(StorageError::io("create directory", dir)(e)),
        }
    }

    /// Creates a new, empty temporary file under `tmp/` (same filesystem as
    /// the blob store, so it can be renamed into place).
    pub fn temp_file(&self) -> Result<(PathBuf, File)> {
        let dir = self.tmp_dir();
        loop {
            let name: [u8; 12] = rand::random();
            let path = dir.join(hex::encode(name));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.ensure_dir(&dir)?;
                }
                Err(e) => return Err(StorageError::io("create temporary file", &path)(e)),
            }
        }
    }

    /// Writes `data` to `path` atomically: temp file, fsync, rename, fsync
    /// of the directory.
    pub fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        self.ensure_dir(&dir)?;
        let (tmp, mut f) = self.temp_file()?;
        let res = (|| {
            f.write_all(data).map_err(StorageError::io("write", &tmp))?;
            f.sync_all().map_err(StorageError::io("fsync", &tmp))?;
            drop(f);
            fs::rename(&tmp, path).map_err(StorageError::io("rename into", path))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res?;
        fsync_dir(&dir)
    }

    /// Removes a file and fsyncs its directory. Returns false if it did not
    /// exist.
    fn remove_durable(&self, path: &Path) -> Result<bool> {
        match fs::remove_file(path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    fsync_dir(dir)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io("remove", path)(e)),
        }
    }

    fn read_small(&self, path: &Path) -> Result<Option<String>> {
        match fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", path)(e)),
        }
    }

    fn read_digest_file(&self, path: &Path) -> Result<Option<Digest>> {
        match self.read_small(path)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<Digest>()
                .map(Some)
                .map_err(|e| StorageError::Corrupt {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }),
        }
    }

    /// Names in `dir`, or an empty list if it does not exist.
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io("list directory", dir)(e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(StorageError::io("list directory", dir))?;
            if let Ok(n) = ent.file_name().into_string() {
                out.push(n);
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------
    // Blobs
    // ---------------------------------------------------------------

    /// Size of a stored blob, if present in the global store.
    pub fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("stat", &p)(e)),
        }
    }

    /// Moves an already-fsynced file `src` (under `tmp/` or `uploads/`) into
    /// the blob store as `d`, then fsyncs the blob directory. If the blob is
    /// already present `src` is simply removed.
    pub fn commit_blob(&self, src: &Path, d: &Digest) -> Result<()> {
        let dst = self.blob_path(d);
        if dst.is_file() {
            let _ = fs::remove_file(src);
            return Ok(());
        }
        let dir = self.blobs_dir();
        self.ensure_dir(&dir)?;
        fs::rename(src, &dst).map_err(StorageError::io("rename into", &dst))?;
        fsync_dir(&dir)
    }

    /// Whether blob `d` is linked into repository `name` (as a layer/config
    /// blob or as a manifest) and present in the store.
    pub fn repo_blob_size(&self, name: &str, d: &Digest) -> Result<Option<u64>> {
        if self.layer_link(name, d).is_file() || self.revision_link(name, d).is_file() {
            self.blob_size(d)
        } else {
            Ok(None)
        }
    }

    /// Links blob `d` into repository `name`.
    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<()> {
        let link = self.layer_link(name, d);
        if link.is_file() {
            return Ok(());
        }
        self.write_atomic(&link, d.to_string().as_bytes())
    }

    /// Removes the link of blob `d` from repository `name`. The data stays
    /// in the store until garbage collection.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        self.remove_durable(&self.layer_link(name, d))
    }

    /// Digests linked as layer/config blobs into a repository.
    pub fn list_layer_links(&self, name: &str) -> Result<Vec<Digest>> {
        let dir = self.repo_dir(name).join("_layers").join("sha256");
        Ok(self
            .list_dir(&dir)?
            .iter()
            .filter_map(|n| Digest::from_hex(n))
            .collect())
    }

    /// All blob digests in the store, with their modification time.
    pub fn list_blobs(&self) -> Result<Vec<(Digest, u64, SystemTime)>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for n in self.list_dir(&dir)? {
            let Some(d) = Digest::from_hex(&n) else {
                continue;
            };
            let p = dir.join(&n);
            match fs::metadata(&p) {
                Ok(m) if m.is_file() => {
                    out.push((d, m.len(), m.modified().unwrap_or(SystemTime::now())))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("stat", &p)(e)),
            }
        }
        Ok(out)
    }

    /// Deletes a blob from the store (garbage collection only).
    pub fn delete_blob(&self, d: &Digest) -> Result<bool> {
        self.remove_durable(&self.blob_path(d))
    }

    // ---------------------------------------------------------------
    // Manifests and tags
    // ---------------------------------------------------------------

    /// Records manifest `rec` (whose bytes are already committed as a blob)
    /// in repository `name`: revision link, referrers index entry, then the
    /// tags, in that order so that a crash never leaves a tag pointing at
    /// an unrecorded revision.
    pub fn put_manifest(&self, name: &str, rec: &ManifestRecord, tags: &[String]) -> Result<()> {
        let file = RevisionFile {
            digest: rec.digest.to_string(),
            media_type: rec.media_type.clone(),
            subject: rec.subject.map(|s| s.to_string()),
        };
        let json = serde_json::to_vec(&file).map_err(|e| StorageError::Corrupt {
            path: self.revision_link(name, &rec.digest),
            reason: e.to_string(),
        })?;
        self.write_atomic(&self.revision_link(name, &rec.digest), &json)?;
        if let Some(subject) = &rec.subject {
            let link = self.referrers_dir(name, subject).join(rec.digest.hex());
            if !link.is_file() {
                self.write_atomic(&link, rec.digest.to_string().as_bytes())?;
            }
        }
        for tag in tags {
            debug_assert!(is_valid_tag(tag));
            self.write_atomic(&self.tag_link(name, tag), rec.digest.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// The revision record of manifest `d` in `name`, if present.
    pub fn manifest_record(&self, name: &str, d: &Digest) -> Result<Option<ManifestRecord>> {
        let path = self.revision_link(name, d);
        let Some(s) = self.read_small(&path)? else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.clone(),
            reason,
        };
        let f: RevisionFile = serde_json::from_str(&s).map_err(|e| corrupt(e.to_string()))?;
        let digest: Digest = f
            .digest
            .parse()
            .map_err(|e: crate::name::DigestError| corrupt(e.to_string()))?;
        if digest != *d {
            return Err(corrupt(format!("records digest {digest}")));
        }
        let subject = match f.subject {
            Some(s) => Some(
                s.parse()
                    .map_err(|e: crate::name::DigestError| corrupt(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Some(ManifestRecord {
            digest,
            media_type: f.media_type,
            subject,
        }))
    }

    /// The digest a tag points to.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>> {
        self.read_digest_file(&self.tag_link(name, tag))
    }

    /// All manifest digests recorded in a repository.
    pub fn list_revisions(&self, name: &str) -> Result<Vec<Digest>> {
        Ok(self
            .list_dir(&self.revisions_dir(name))?
            .iter()
            .filter_map(|n| Digest::from_hex(n))
            .collect())
    }

    /// Sorted tags of a repository, or `None` if the repository is unknown.
    pub fn list_tags(&self, name: &str) -> Result<Option<Vec<String>>> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        let dir = self.tags_dir(name);
        let mut tags: Vec<String> = self
            .list_dir(&dir)?
            .into_iter()
            .filter(|t| is_valid_tag(t) && dir.join(t).join("link").is_file())
            .collect();
        tags.sort();
        Ok(Some(tags))
    }

    /// Tags with the digest each points to.
    pub fn tag_map(&self, name: &str) -> Result<Vec<(String, Digest)>> {
        let mut out = Vec::new();
        for tag in self.list_tags(name)?.unwrap_or_default() {
            if let Some(d) = self.resolve_tag(name, &tag)? {
                out.push((tag, d));
            }
        }
        Ok(out)
    }

    /// Removes a tag. Returns false if it did not exist.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool> {
        let link = self.tag_link(name, tag);
        let removed = self.remove_durable(&link)?;
        if let Some(dir) = link.parent() {
            let _ = fs::remove_dir(dir);
        }
        Ok(removed)
    }

    /// Deletes manifest `d` from repository `name`: every tag pointing at
    /// it, its referrers index entry, then the revision itself. The blob
    /// stays until garbage collection. Returns false if it was not there.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<bool> {
        let Some(rec) = self.manifest_record(name, d)? else {
            return Ok(false);
        };
        for (tag, target) in self.tag_map(name)? {
            if target == *d {
                self.delete_tag(name, &tag)?;
            }
        }
        if let Some(subject) = &rec.subject {
            let dir = self.referrers_dir(name, subject);
            self.remove_durable(&dir.join(d.hex()))?;
            let _ = fs::remove_dir(&dir);
        }
        self.remove_durable(&self.revision_link(name, d))
    }

    /// Digests of manifests in `name` whose `subject` is `subject`.
    pub fn list_referrers(&self, name: &str, subject: &Digest) -> Result<Vec<Digest>> {
        let mut v: Vec<Digest> = self
            .list_dir(&self.referrers_dir(name, subject))?
            .iter()
            .filter_map(|n| Digest::from_hex(n))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Reads a whole blob (manifests only; they are size-limited).
    pub fn read_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        let p = self.blob_path(d);
        match fs::read(&p) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", &p)(e)),
        }
    }

    // ---------------------------------------------------------------
    // Repositories
    // ---------------------------------------------------------------

    pub fn repo_exists(&self, name: &str) -> bool {
        let dir = self.repo_dir(name);
        dir.join("_manifests").is_dir() || dir.join("_layers").is_dir()
    }

    /// All repository names, sorted.
    pub fn list_repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack: Vec<(PathBuf, String)> = vec![(self.repos_dir(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for n in self.list_dir(&dir)? {
                if n.starts_with('_') {
                    continue;
                }
                let full = if prefix.is_empty() {
                    n.clone()
                } else {
                    format!("{prefix}/{n}")
                };
                if !is_valid_repository_name(&full) {
                    continue;
                }
                let p = dir.join(&n);
                if !p.is_dir() {
                    continue;
                }
                if p.join("_manifests").is_dir() || p.join("_layers").is_dir() {
                    out.push(full.clone());
                }
                stack.push((p, full));
            }
        }
        out.sort();
        Ok(out)
    }

    // ---------------------------------------------------------------
    // Upload sessions
    // ---------------------------------------------------------------

    /// Starts an upload session for `repo`, returning its id.
    ///
    /// Sessions are scratch state, not part of the durable store, so they
    /// are written without fsync: a crash can at worst lose a session (the
    /// client gets 404 and starts over), and a session whose `info` did not
    /// survive intact is treated as unknown and purged later.
    pub fn create_upload(&self, repo: &str) -> Result<String> {
        let id = new_upload_id();
        let dir = self.upload_dir(&id);
        self.ensure_dir(&self.uploads_dir())?;
        fs::create_dir(&dir).map_err(StorageError::io("create directory", &dir))?;
        let data = self.upload_data_path(&id);
        File::create(&data).map_err(StorageError::io("create", &data))?;
        let info = UploadInfo {
            repo: repo.to_string(),
            started: now_secs(),
        };
        let info_path = dir.join("info");
        let json = serde_json::to_vec(&info).map_err(|e| StorageError::Corrupt {
            path: info_path.clone(),
            reason: e.to_string(),
        })?;
        fs::write(&info_path, json).map_err(StorageError::io("write", &info_path))?;
        Ok(id)
    }

    /// The session's metadata and current size, if it exists (and its
    /// metadata is intact).
    pub fn upload_status(&self, id: &str) -> Result<Option<(UploadInfo, u64)>> {
        let dir = self.upload_dir(id);
        let info_path = dir.join("info");
        let Some(s) = self.read_small(&info_path)? else {
            return Ok(None);
        };
        let Ok(info) = serde_json::from_str::<UploadInfo>(&s) else {
            tracing::warn!(path = %info_path.display(), "unreadable upload session metadata; treating the session as unknown");
            return Ok(None);
        };
        let data = self.upload_data_path(id);
        match fs::metadata(&data) {
            Ok(m) => Ok(Some((info, m.len()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("stat", &data)(e)),
        }
    }

    /// Removes an upload session.
    pub fn delete_upload(&self, id: &str) -> Result<()> {
        let dir = self.upload_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove upload", &dir)(e)),
        }
    }

    /// Upload session ids whose data was last written more than `max_age`
    /// ago (or that are incomplete/unreadable leftovers).
    pub fn stale_uploads(&self, max_age: Duration) -> Result<Vec<String>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for n in self.list_dir(&self.uploads_dir())? {
            if !is_valid_upload_id(&n) {
                continue;
            }
            let dir = self.upload_dir(&n);
            let newest = [dir.join("data"), dir.join("info"), dir.clone()]
                .iter()
                .filter_map(|p| fs::metadata(p).ok()?.modified().ok())
                .max();
            let stale = match newest {
                Some(t) => now.duration_since(t).unwrap_or(Duration::ZERO) > max_age,
                None => true,
            };
            if stale {
                out.push(n);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids() {
        for _ in 0..100 {
            let id = new_upload_id();
            assert!(is_valid_upload_id(&id), "{id}");
        }
        assert!(!is_valid_upload_id("../../../../etc/passwd-aaaaaaaaaaaaaa"));
        assert!(!is_valid_upload_id(""));
    }

    #[test]
    fn manifest_and_tags_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path());
        s.init().unwrap();
        let d = Digest::of(b"m");
        let subj = Digest::of(b"s");
        let rec = ManifestRecord {
            digest: d,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            subject: Some(subj),
        };
        s.put_manifest("a/b", &rec, &["t1".into(), "t2".into()])
            .unwrap();
        assert_eq!(s.manifest_record("a/b", &d).unwrap(), Some(rec));
        assert_eq!(s.resolve_tag("a/b", "t1").unwrap(), Some(d));
        assert_eq!(s.list_tags("a/b").unwrap().unwrap(), vec!["t1", "t2"]);
        assert_eq!(s.list_referrers("a/b", &subj).unwrap(), vec![d]);
        assert_eq!(s.list_repositories().unwrap(), vec!["a/b"]);
        assert!(s.delete_manifest("a/b", &d).unwrap());
        assert_eq!(s.list_tags("a/b").unwrap().unwrap(), Vec::<String>::new());
        assert!(s.list_referrers("a/b", &subj).unwrap().is_empty());
        assert!(!s.delete_manifest("a/b", &d).unwrap());
        assert!(s.list_tags("nope").unwrap().is_none());
    }
}
