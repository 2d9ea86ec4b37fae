//! A pull: the manifest (an index picks this machine's platform), the config,
//! then in parallel only the layers whose diff IDs are not stored yet. Each
//! blob is checked against its digest while it streams in, decompressed, and
//! checked again against the config's diff ID before it is unpacked (the
//! store's usual path).

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_distribution::{Client, DistributionError, RegistryAuth, RemoteRef};
use berth_oci::manifest::{digest_of, platform_entry, ImageIndex, Manifest};
use berth_oci::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

use super::short_digest;
use crate::model::{ImageConfigBlob, ImageRecord};
use crate::progress::Progress;
use crate::{db, Engine, EngineError, Result};

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 3;

impl Engine {
    pub(super) async fn pull_image(
        self: &Arc<Self>,
        name: &str,
        auth: Option<RegistryAuth>,
        progress: &Progress,
    ) -> Result<()> {
        let remote = RemoteRef::parse(name)?;
        progress
            .status(
                Some(&remote.reference),
                &format!("Pulling from {}", remote.repository),
            )
            .await;
        let accept = [
            OCI_MANIFEST,
            DOCKER_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST_LIST,
        ]
        .join(", ");
        let (client, mut manifest, mut manifest_digest) =
            self.first_source(&remote, auth, &accept).await?;
        let client = Arc::new(client);
        if let Manifest::Index(index) = &manifest {
            let chosen = platform_manifest(index)?;
            let (m, d) = client
                .manifest(&remote.repository, &chosen.to_string(), &accept)
                .await?;
            manifest = m;
            manifest_digest = d;
        }
        let Manifest::Image(manifest) = manifest else {
            return Err(DistributionError::Protocol(format!(
                "the manifest for linux/{} of {name} is itself an index",
                crate::image::go_arch()
            ))
            .into());
        };
        let config_digest =
            digest_of(manifest.config()).map_err(|source| DistributionError::Manifest {
                reference: name.to_string(),
                source,
            })?;
        let config_bytes = client
            .blob_bytes(&remote.repository, &config_digest.to_string())
            .await?;
        if berth_store::Digest::of(&config_bytes) != config_digest {
            return Err(EngineError::InvalidArgument(format!(
                "config blob does not match its digest {config_digest}"
            )));
        }
        let config: ImageConfigBlob = serde_json::from_slice(&config_bytes)
            .map_err(|e| EngineError::json("image config", e))?;
        let layers = manifest
            .layers()
            .iter()
            .map(digest_of)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| DistributionError::Manifest {
                reference: name.to_string(),
                source,
            })?;
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(EngineError::InvalidArgument(
                "manifest and config disagree on the number of layers".into(),
            ));
        }

        let mut size = 0u64;
        let mut jobs = tokio::task::JoinSet::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL_LAYERS));
        for (layer, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            let digest = layer.to_string();
            let diff = berth_store::Digest::parse(diff_id)?;
            if self.store.has_layer(&diff) {
                progress
                    .status(Some(&short_digest(&digest)), "Already exists")
                    .await;
                size += std::fs::metadata(self.store.blob_path(&diff))
                    .map(|m| m.len())
                    .unwrap_or(0);
                continue;
            }
            progress
                .status(Some(&short_digest(&digest)), "Pulling fs layer")
                .await;
            let engine = self.clone();
            let client = client.clone();
            let repo = remote.repository.clone();
            let progress = progress.clone();
            let semaphore = semaphore.clone();
            jobs.spawn(async move {
                let _permit = semaphore.acquire().await;
                let stored = engine.fetch_layer(&client, &repo, &digest, diff).await?;
                progress
                    .status(Some(&short_digest(&digest)), "Pull complete")
                    .await;
                Ok::<u64, EngineError>(stored)
            });
        }
        while let Some(done) = jobs.join_next().await {
            size += done.map_err(|e| EngineError::task("layer download", e))??;
        }
        let id = self.store.put_blob_bytes(&config_bytes)?.to_string();
        let record = ImageRecord {
            repo_digests: vec![format!("{}@{manifest_digest}", remote.local_repository())],
            ..ImageRecord::new(id.clone(), config, size)
        };
        let existed = {
            let mut st = self.lock();
            let existed = st.images.contains_key(&id);
            let entry = st.images.entry(id.clone()).or_insert(record.clone());
            for d in record.repo_digests {
                if !entry.repo_digests.contains(&d) {
                    entry.repo_digests.push(d);
                }
            }
            let entry = entry.clone();
            self.db.put(db::IMAGES, &id, &entry)?;
            existed
        };
        let local = remote.local_name();
        if !remote.is_digest() {
            self.tag_image(&id, &local)?;
        }
        self.events.emit("image", "pull", &local, BTreeMap::new());
        progress
            .status(None, &format!("Digest: {manifest_digest}"))
            .await;
        let verdict = if existed {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        progress
            .status(None, &format!("Status: {verdict} {local}"))
            .await;
        Ok(())
    }

    /// Downloads one layer blob, verifying the blob digest while it streams and
    /// the diff ID when it is stored; returns the uncompressed size.
    async fn fetch_layer(
        self: &Arc<Self>,
        client: &Client,
        repo: &str,
        digest: &str,
        diff_id: berth_store::Digest,
    ) -> Result<u64> {
        let expected = berth_store::Digest::parse(digest)?;
        let blob = client.blob(repo, digest).await?;
        let (reader, feeder) = crate::stream::ChannelReader::feed(blob);
        let engine = self.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let mut hashing = berth_store::DigestReader::new(reader);
            let stored = engine
                .store
                .import_layer_expecting(&mut hashing, Some(&diff_id));
            // Drain what the decompressor left (gzip trailers) so the digest covers
            // every byte of the blob.
            let _ = std::io::copy(&mut hashing, &mut std::io::sink());
            (stored, hashing.digest())
        })
        .await
        .map_err(|e| EngineError::task(format!("unpack layer {digest}"), e))?;
        let complete = feeder.await.unwrap_or(false);
        let (stored, actual) = stored;
        if !complete {
            return Err(DistributionError::Protocol(format!(
                "download of {digest} was interrupted"
            ))
            .into());
        }
        if actual != expected {
            if let Ok(s) = &stored {
                let _ = self.store.remove_layer(&s.diff_id);
            }
            return Err(EngineError::InvalidArgument(format!(
                "blob {digest} does not match its digest (got {actual})"
            )));
        }
        Ok(stored?.size)
    }
}

/// The digest of this machine's `linux/<arch>` entry in an index.
fn platform_manifest(index: &ImageIndex) -> Result<berth_oci::Digest> {
    let arch = crate::image::go_arch();
    let entry = platform_entry(index, "linux", arch).ok_or_else(|| {
        EngineError::NotFound(format!(
            "no matching manifest for linux/{arch} in the manifest list entries"
        ))
    })?;
    digest_of(entry).map_err(|source| {
        DistributionError::Manifest {
            reference: format!("linux/{arch} entry"),
            source,
        }
        .into()
    })
}
