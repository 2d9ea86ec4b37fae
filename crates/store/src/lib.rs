//! berth-store: content-addressed blobs and unpacked, read-only image layers.
//!
//! Layout under the store root:
//!
//! ```text
//! blobs/sha256/<hex>   every blob (layer tars, image configs, manifests), named by digest
//! layers/<hex>         a layer unpacked once, named by its diff ID; shared read-only by
//!                      every container whose image has it (overlayfs lowerdir)
//! tmp/                 work in progress; emptied on open, so a crash leaves nothing
//! ```
//!
//! Every write goes to `tmp/` first, is fsynced and digest-checked, then renamed into
//! place, so a reader never sees a partial blob or layer.

mod digest;
mod pack;
mod unpack;

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub use digest::{Digest, DigestReader};
pub use pack::{open_in, pack, stat, PathStat};
pub use unpack::{unpack, unpack_plain, UnpackStats};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("refusing archive: {0}")]
    Hostile(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("unsupported compression: {0}")]
    Compression(String),
}

impl StoreError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A layer that is stored both as a blob and unpacked.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    /// sha256 of the uncompressed tar; also the blob's name.
    pub diff_id: Digest,
    /// Size of the uncompressed tar in bytes.
    pub size: u64,
}

pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root` and clears leftovers of work
    /// that a crash interrupted.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for dir in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(dir);
            fs::create_dir_all(&p)
                .map_err(|e| StoreError::io(format!("create {}", p.display()), e))?;
        }
        let store = Store { root };
        store.clear_tmp();
        Ok(store)
    }

    fn clear_tmp(&self) {
        let tmp = self.root.join("tmp");
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let path = entry.path();
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove leftover temp entry");
                }
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    fn temp_path(&self, what: &str) -> PathBuf {
        let mut rnd = [0u8; 8];
        if let Ok(mut f) = File::open("/dev/urandom") {
            let _ = f.read_exact(&mut rnd);
        }
        self.root.join("tmp").join(format!(
            "{what}-{}-{}",
            std::process::id(),
            hex::encode(rnd)
        ))
    }

    /// Streams `reader` into a blob. With `expected`, the content must hash to it or
    /// nothing is stored. Returns the digest and size.
    pub fn write_blob(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let tmp = self.temp_path("blob");
        let result = self.write_blob_at(&tmp, reader, expected);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_blob_at(
        &self,
        tmp: &Path,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let mut file = File::create(tmp)
            .map_err(|e| StoreError::io(format!("create {}", tmp.display()), e))?;
        let mut hashing = DigestReader::new(reader);
        let size = io::copy(&mut hashing, &mut file)
            .map_err(|e| StoreError::io(format!("write {}", tmp.display()), e))?;
        let digest = hashing.digest();
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(StoreError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        file.sync_all()
            .map_err(|e| StoreError::io(format!("fsync {}", tmp.display()), e))?;
        let dest = self.blob_path(&digest);
        fs::rename(tmp, &dest)
            .map_err(|e| StoreError::io(format!("rename to {}", dest.display()), e))?;
        sync_dir(dest.parent().unwrap_or(&self.root));
        Ok((digest, size))
    }

    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        self.write_blob(bytes, Some(&digest)).map(|(d, _)| d)
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(|e| StoreError::io(format!("read blob {}", p.display()), e))
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| StoreError::io(format!("open blob {}", p.display()), e))
    }

    /// Stores a (possibly gzip-compressed) layer tar: the uncompressed tar becomes a
    /// blob named by its diff ID, then it is unpacked once under `layers/`.
    pub fn import_layer(&self, reader: impl Read) -> Result<StoredLayer> {
        self.import_layer_expecting(reader, None)
    }

    /// Like [`Store::import_layer`], but the uncompressed tar must hash to
    /// `expected` (a diff ID from an image config), checked before anything is
    /// unpacked.
    pub fn import_layer_expecting(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<StoredLayer> {
        let mut buffered = BufReader::with_capacity(256 * 1024, reader);
        let tar_stream = decompressed(&mut buffered)?;
        let (diff_id, size) = self.write_blob(tar_stream, expected)?;
        self.unpack_layer(&diff_id)?;
        Ok(StoredLayer { diff_id, size })
    }

    /// Unpacks the tar blob `diff_id` into `layers/<hex>` unless it is already there.
    pub fn unpack_layer(&self, diff_id: &Digest) -> Result<PathBuf> {
        let dest = self.layer_dir(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let tmp = self.temp_path("layer");
        fs::create_dir(&tmp).map_err(|e| StoreError::io(format!("create {}", tmp.display()), e))?;
        let blob = BufReader::with_capacity(256 * 1024, self.open_blob(diff_id)?);
        let unpacked = unpack(blob, &tmp).and_then(|stats| {
            if stats.skipped_devices > 0 {
                tracing::warn!(layer = %diff_id, count = stats.skipped_devices, "device nodes in layer were not created");
            }
            fs::rename(&tmp, &dest).map_err(|e| StoreError::io(format!("rename to {}", dest.display()), e))
        });
        if let Err(e) = unpacked {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        sync_dir(&self.root.join("layers"));
        Ok(dest)
    }

    /// Removes an unpacked layer and its blob.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        self.remove_layer_dir(diff_id)?;
        self.remove_blob(diff_id)
    }

    fn remove_layer_dir(&self, diff_id: &Digest) -> Result<()> {
        let dir = self.layer_dir(diff_id);
        if dir.exists() {
            // Rename first so that a crash mid-removal leaves only a tmp entry that the
            // next open clears, never a half-deleted layer under its real name.
            let doomed = self.temp_path("rm-layer");
            fs::rename(&dir, &doomed)
                .map_err(|e| StoreError::io(format!("rename {}", dir.display()), e))?;
            fs::remove_dir_all(&doomed)
                .map_err(|e| StoreError::io(format!("remove {}", doomed.display()), e))?;
        }
        Ok(())
    }

    /// Removes every blob and unpacked layer whose digest is not in `keep`: what a
    /// crash between writing content and recording it (or between forgetting an
    /// image and deleting its files) left behind. Returns how many were removed.
    pub fn collect_garbage(&self, keep: &std::collections::HashSet<String>) -> usize {
        let mut removed = 0;
        for (dir, is_layer) in [
            (self.root.join("blobs").join("sha256"), false),
            (self.root.join("layers"), true),
        ] {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&format!("sha256:{name}")) {
                    continue;
                }
                let Ok(d) = Digest::parse(&format!("sha256:{name}")) else {
                    continue;
                };
                let result = if is_layer {
                    self.remove_layer_dir(&d)
                } else {
                    self.remove_blob(&d)
                };
                match result {
                    Ok(()) => removed += 1,
                    Err(err) => tracing::warn!(digest = %d, error = %err, "garbage collection"),
                }
            }
        }
        removed
    }

    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("remove {}", p.display()), e)),
        }
    }
}

/// Wraps `reader` in a decompressor chosen by the stream's magic bytes.
pub fn decompressed<'a, R: io::BufRead + 'a>(reader: &'a mut R) -> Result<Box<dyn Read + 'a>> {
    let head = reader
        .fill_buf()
        .map_err(|e| StoreError::io("read archive", e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::GzDecoder::new(reader)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(StoreError::Compression("zstd".into()));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        return Err(StoreError::Compression("xz".into()));
    }
    if head.starts_with(b"BZh") {
        return Err(StoreError::Compression("bzip2".into()));
    }
    Ok(Box::new(reader))
}

/// fsyncs a directory so that a rename into it survives power loss.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(format!("write {}", path.display()), e)
    })?;
    sync_dir(dir);
    Ok(())
}
