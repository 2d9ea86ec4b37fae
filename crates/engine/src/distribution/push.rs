//! A push: the layers the registry lacks (HEAD first), then the config, then an
//! OCI manifest under the tag.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_distribution::{RegistryAuth, RemoteRef};
use berth_oci::manifest::{descriptor, image_manifest};
use berth_oci::media_type::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use bytes::Bytes;

use super::short_digest;
use crate::progress::{Progress, ProgressEvent};
use crate::{Engine, EngineError, Result};

impl Engine {
    pub(super) async fn push_image(
        self: &Arc<Self>,
        name: &str,
        auth: Option<RegistryAuth>,
        progress: &Progress,
    ) -> Result<()> {
        let image = self.image(name)?;
        let remote = RemoteRef::parse(&crate::normalize_reference(name))?;
        let client = self.registry_client(&remote.host, auth)?;
        progress
            .status(
                None,
                &format!(
                    "The push refers to repository [{}/{}]",
                    remote.host, remote.repository
                ),
            )
            .await;
        let repo = remote.repository.clone();
        let mut layer_descriptors = Vec::new();
        for diff_id in &image.config.rootfs.diff_ids {
            let digest = berth_store::Digest::parse(diff_id)?;
            let path = self.store.blob_path(&digest);
            let size = std::fs::metadata(&path)
                .map_err(|e| EngineError::at("stat layer", &path, e))?
                .len();
            let id = short_digest(diff_id);
            if client.blob_exists(&repo, diff_id).await? {
                progress.status(Some(&id), "Layer already exists").await;
            } else {
                progress.status(Some(&id), "Pushing").await;
                let data = tokio::fs::read(&path)
                    .await
                    .map_err(|e| EngineError::at("read layer", &path, e))?;
                client
                    .upload_blob(&repo, diff_id, Bytes::from(data))
                    .await?;
                progress.status(Some(&id), "Pushed").await;
            }
            layer_descriptors.push(descriptor(OCI_LAYER_TAR, &digest, size));
        }
        let config_digest = berth_store::Digest::parse(&image.id)?;
        let config_bytes = self.store.read_blob(&config_digest)?;
        if !client.blob_exists(&repo, &image.id).await? {
            client
                .upload_blob(&repo, &image.id, Bytes::from(config_bytes.clone()))
                .await?;
        }
        let manifest = image_manifest(
            descriptor(OCI_CONFIG, &config_digest, config_bytes.len() as u64),
            layer_descriptors,
        );
        let manifest_bytes = Bytes::from(
            serde_json::to_vec(&manifest).map_err(|e| EngineError::json("encode manifest", e))?,
        );
        let manifest_digest = berth_store::Digest::of(&manifest_bytes).to_string();
        client
            .put_manifest(
                &repo,
                &remote.reference,
                OCI_MANIFEST,
                manifest_bytes.clone(),
            )
            .await?;
        self.events.emit("image", "push", name, BTreeMap::new());
        progress
            .status(
                None,
                &format!(
                    "{}: digest: {manifest_digest} size: {}",
                    remote.reference,
                    manifest_bytes.len()
                ),
            )
            .await;
        progress
            .send(ProgressEvent::Pushed {
                tag: remote.reference.clone(),
                digest: manifest_digest,
                size: manifest_bytes.len(),
            })
            .await;
        Ok(())
    }
}
