//! `save` and `load`: images as docker-archive tarballs that docker, podman and
//! skopeo read, laid out as an OCI image layout too (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) next to docker's `manifest.json`, as docker 25+ writes them.
//! `load` reads either: docker's `manifest.json`, or an OCI `index.json`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_store::Digest;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::{ImageConfigBlob, ImageRecord};
use crate::stream::ChannelWriter;
use crate::{Engine, EngineError, Result};

use berth_oci::manifest::{
    descriptor, digest_of, image_index, image_manifest, ImageIndex, ImageManifest,
};
use berth_oci::media_type::{OCI_CONFIG, OCI_LAYER_TAR as OCI_LAYER, OCI_MANIFEST};

/// The index annotation containerd (and docker 25+) reads an image's name from.
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI index annotation for a manifest's tag.
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

fn append_bytes(
    builder: &mut tar::Builder<&mut ChannelWriter>,
    path: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes)
}

/// An entry of docker's `manifest.json`.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// One image found in an archive: its config file, layer files and tags.
struct ArchiveImage {
    config: PathBuf,
    layers: Vec<PathBuf>,
    tags: Vec<String>,
}

/// Resolves an archive-relative path inside the unpacked archive, refusing escapes.
fn inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(EngineError::InvalidArgument(format!(
            "archive path {} escapes the archive",
            rel.display()
        )));
    }
    Ok(root.join(rel))
}

impl Engine {
    /// Streams the named images as one archive.
    pub fn save_images(self: &Arc<Self>, references: &[String]) -> Result<mpsc::Receiver<Bytes>> {
        let mut images: Vec<(ImageRecord, Vec<String>)> = Vec::new();
        for r in references {
            let image = self.image(r)?;
            let normalized = crate::normalize_reference(r);
            let tags = if image.repo_tags.contains(&normalized) {
                vec![normalized]
            } else {
                image.repo_tags.clone()
            };
            match images.iter_mut().find(|(i, _)| i.id == image.id) {
                Some((_, t)) => t.extend(tags),
                None => images.push((image, tags)),
            }
        }
        let (tx, rx) = mpsc::channel(8);
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = ChannelWriter::new(tx);
            if let Err(e) = engine.write_archive(&mut writer, &images) {
                tracing::warn!(error = %e, "save ended early");
            }
            let _ = writer.flush();
        });
        Ok(rx)
    }

    fn write_archive(
        &self,
        writer: &mut ChannelWriter,
        images: &[(ImageRecord, Vec<String>)],
    ) -> std::io::Result<()> {
        let mut builder = tar::Builder::new(writer);
        let mut written: std::collections::HashSet<String> = Default::default();
        let mut manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        append_bytes(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        for (image, tags) in images {
            let config_digest = Digest::parse(&image.id).map_err(std::io::Error::other)?;
            let config = self
                .store
                .read_blob(&config_digest)
                .map_err(std::io::Error::other)?;
            let config_path = format!("blobs/sha256/{}", config_digest.hex());
            if written.insert(config_path.clone()) {
                append_bytes(&mut builder, &config_path, &config)?;
            }
            let mut layer_paths = Vec::new();
            let mut layer_descriptors = Vec::new();
            for diff_id in &image.config.rootfs.diff_ids {
                let d = Digest::parse(diff_id).map_err(std::io::Error::other)?;
                let path = format!("blobs/sha256/{}", d.hex());
                let blob = self.store.blob_path(&d);
                let size = std::fs::metadata(&blob)?.len();
                if written.insert(path.clone()) {
                    builder.append_path_with_name(&blob, &path)?;
                }
                layer_descriptors.push(descriptor(OCI_LAYER, &d, size));
                layer_paths.push(path);
            }
            let oci_manifest = serde_json::to_vec(&image_manifest(
                descriptor(OCI_CONFIG, &config_digest, config.len() as u64),
                layer_descriptors,
            ))
            .map_err(std::io::Error::other)?;
            let manifest_digest = Digest::of(&oci_manifest);
            let manifest_descriptor =
                descriptor(OCI_MANIFEST, &manifest_digest, oci_manifest.len() as u64);
            let manifest_path = format!("blobs/sha256/{}", manifest_digest.hex());
            if written.insert(manifest_path.clone()) {
                append_bytes(&mut builder, &manifest_path, &oci_manifest)?;
            }
            for tag in tags {
                let (repo, t) = tag.rsplit_once(':').unwrap_or((tag.as_str(), "latest"));
                repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(t.to_string(), config_digest.hex().to_string());
                let mut entry = manifest_descriptor.clone();
                entry.set_annotations(Some(
                    [
                        (ANNOTATION_CONTAINERD_NAME.to_string(), tag.clone()),
                        (ANNOTATION_REF_NAME.to_string(), t.to_string()),
                    ]
                    .into(),
                ));
                index.push(entry);
            }
            if tags.is_empty() {
                index.push(manifest_descriptor);
            }
            manifest.push(ManifestEntry {
                config: config_path,
                repo_tags: Some(tags.clone()),
                layers: layer_paths,
            });
        }
        let index = image_index(index);
        append_bytes(
            &mut builder,
            "index.json",
            &serde_json::to_vec(&index).map_err(std::io::Error::other)?,
        )?;
        append_bytes(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).map_err(std::io::Error::other)?,
        )?;
        append_bytes(
            &mut builder,
            "repositories",
            &serde_json::to_vec(&repositories).map_err(std::io::Error::other)?,
        )?;
        builder.finish()
    }

    /// Loads every image of a docker-archive or OCI archive. Blocking. Returns the
    /// loaded references (tags, or IDs for untagged images).
    pub fn load_images(self: &Arc<Self>, mut reader: impl Read) -> Result<Vec<String>> {
        let staging = self
            .store
            .root()
            .join("tmp")
            .join(format!("load-{}", &crate::random_id()[..12]));
        std::fs::create_dir_all(&staging).map_err(|e| EngineError::at("create", &staging, e))?;
        let unpacked = berth_store::unpack(&mut reader, &staging);
        // The client may still send end-of-archive padding: read it all before
        // answering.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        let result = unpacked
            .map_err(EngineError::from)
            .and_then(|_| self.load_unpacked(&staging));
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    fn load_unpacked(&self, root: &Path) -> Result<Vec<String>> {
        let entries: Vec<ArchiveImage> = if root.join("manifest.json").is_file() {
            let bytes = std::fs::read(root.join("manifest.json"))
                .map_err(|e| EngineError::InvalidArgument(format!("read manifest.json: {e}")))?;
            let manifest: Vec<ManifestEntry> = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::InvalidArgument(format!("invalid manifest.json: {e}")))?;
            manifest
                .into_iter()
                .map(|m| {
                    let layers = m
                        .layers
                        .iter()
                        .map(|l| inside(root, l))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(ArchiveImage {
                        config: inside(root, &m.config)?,
                        layers,
                        tags: m.repo_tags.unwrap_or_default(),
                    })
                })
                .collect::<Result<_>>()?
        } else if root.join("index.json").is_file() {
            self.oci_entries(root)?
        } else {
            return Err(EngineError::InvalidArgument(
                "archive has neither manifest.json nor index.json".into(),
            ));
        };
        let mut loaded = Vec::new();
        for ArchiveImage {
            config: config_path,
            layers,
            tags,
        } in entries
        {
            let config_bytes = std::fs::read(&config_path).map_err(|e| {
                EngineError::InvalidArgument(format!("read {}: {e}", config_path.display()))
            })?;
            let config: ImageConfigBlob = serde_json::from_slice(&config_bytes)
                .map_err(|e| EngineError::InvalidArgument(format!("invalid image config: {e}")))?;
            if config.rootfs.diff_ids.len() != layers.len() {
                return Err(EngineError::InvalidArgument(format!(
                    "image config lists {} layers, the archive {}",
                    config.rootfs.diff_ids.len(),
                    layers.len()
                )));
            }
            let mut size = 0;
            for (layer, expected) in layers.iter().zip(&config.rootfs.diff_ids) {
                let file = std::fs::File::open(layer).map_err(|e| {
                    EngineError::InvalidArgument(format!("open {}: {e}", layer.display()))
                })?;
                let expected = Digest::parse(expected)?;
                let stored = self.store.import_layer_expecting(file, Some(&expected))?;
                size += stored.size;
            }
            let id = self.store.put_blob_bytes(&config_bytes)?.to_string();
            self.keep_image(ImageRecord::new(id.clone(), config, size))?;
            for tag in &tags {
                self.tag_image(&id, tag)?;
                loaded.push(crate::normalize_reference(tag));
            }
            if tags.is_empty() {
                loaded.push(id.clone());
            }
            self.events.emit("image", "load", &id, BTreeMap::new());
        }
        Ok(loaded)
    }

    /// Entries of an OCI image layout: index → manifest → config and layers.
    fn oci_entries(&self, root: &Path) -> Result<Vec<ArchiveImage>> {
        fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
            let bytes = std::fs::read(path).map_err(|e| {
                EngineError::InvalidArgument(format!("read {}: {e}", path.display()))
            })?;
            serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::InvalidArgument(format!("invalid {}: {e}", path.display()))
            })
        }
        let blob = |d: &berth_oci::manifest::Descriptor| -> Result<PathBuf> {
            let d = digest_of(d).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
            inside(root, &format!("blobs/sha256/{}", d.hex()))
        };
        let index: ImageIndex = read(&root.join("index.json"))?;
        let mut out = Vec::new();
        for m in index.manifests() {
            let manifest: ImageManifest = read(&blob(m)?)?;
            let config = blob(manifest.config())?;
            let layers = manifest
                .layers()
                .iter()
                .map(blob)
                .collect::<Result<Vec<_>>>()?;
            let annotations = m.annotations().clone().unwrap_or_default();
            let tag = annotations
                .get(ANNOTATION_CONTAINERD_NAME)
                .cloned()
                .or_else(|| {
                    annotations
                        .get(ANNOTATION_REF_NAME)
                        .filter(|r| r.contains(':') || r.contains('/'))
                        .cloned()
                });
            out.push(ArchiveImage {
                config,
                layers,
                tags: tag.into_iter().collect(),
            });
        }
        Ok(out)
    }
}
