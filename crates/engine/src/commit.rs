//! `commit`: a container's writable layer becomes a new image on top of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::image::{apply_changes, normalize_reference, valid_reference};
use crate::model::{ContainerConfig, HistoryStep, ImageRecord};
use crate::{now_rfc3339, Engine, EngineError, Result};

/// Paths that are mount points berth puts into every container, not changes.
pub(crate) const NOT_CHANGES: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

#[derive(Debug, Default, Clone)]
pub struct CommitOptions {
    /// `repo[:tag]` for the new image.
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    /// Freeze a running container while its layer is read (docker's default).
    pub pause: bool,
    /// Dockerfile instructions (`CMD`, `ENV`, ...) applied to the new config.
    pub changes: Vec<String>,
    /// A config whose non-empty fields replace the container's.
    pub config: Option<ContainerConfig>,
}

impl Engine {
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn commit_container(
        self: &Arc<Self>,
        reference: &str,
        opts: CommitOptions,
    ) -> Result<ImageRecord> {
        let c = self.container(reference)?;
        let target = match &opts.reference {
            Some(r) if !r.is_empty() => {
                let n = normalize_reference(r);
                if !valid_reference(&n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid reference format: {r}"
                    )));
                }
                Some(n)
            }
            _ => None,
        };
        let parent = self.image(&c.image_id)?;
        let mut config = c.config.clone();
        if let Some(over) = &opts.config {
            merge_config(&mut config, over);
        }
        apply_changes(&mut config, &opts.changes)?;

        let layer = self.capture_layer(&c, opts.pause).await?;
        let mut blob = parent.config.clone();
        blob.author = opts.author.clone();
        blob.config = config;
        let mut step = HistoryStep::created_by(c.argv().join(" "));
        if !opts.author.is_empty() {
            step.author = Some(opts.author.clone());
        }
        if !opts.comment.is_empty() {
            step.comment = Some(opts.comment.clone());
        }
        let record =
            self.record_image(blob, Some(&layer), step, parent.size, &opts.comment, "", "")?;
        let id = record.id.clone();
        if let Some(t) = target {
            self.tag_image(&id, &t)?;
        }
        let mut attrs = BTreeMap::from([
            ("name".to_string(), c.name.clone()),
            ("imageID".to_string(), id.clone()),
        ]);
        if !opts.comment.is_empty() {
            attrs.insert("comment".into(), opts.comment);
        }
        self.events.emit("container", "commit", &c.id, attrs);
        self.image(&id)
    }

    /// Reads a container's writable layer into the store (freezing a running
    /// container meanwhile when `pause`).
    pub(crate) async fn capture_layer(
        self: &Arc<Self>,
        c: &crate::model::ContainerRecord,
        pause: bool,
    ) -> Result<berth_store::StoredLayer> {
        let freeze = pause && c.state.running() && !c.state.paused();
        if freeze {
            self.freeze_container(c, true).await?;
        }
        let engine = self.clone();
        let upper = self.container_dir(&c.id).join("upper");
        // A container that never started has no writable layer yet: it changed
        // nothing, and its layer is empty (dockerd commits it too). The start
        // would make the same directory. Only the layer's own directory is
        // made: a container removed meanwhile is not brought back.
        match std::fs::create_dir(&upper) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(EngineError::at("create", &upper, e));
            }
            _ => {}
        }
        let layer = tokio::task::spawn_blocking(move || engine.store_layer_of(&upper))
            .await
            .map_err(|e| EngineError::task(format!("layer of container {}", c.id), e));
        if freeze {
            if let Err(e) = self.freeze_container(c, false).await {
                tracing::warn!(id = %c.id, error = %e.chain(), "thaw after commit failed");
            }
        }
        layer?
    }

    /// Streams `upper` as a layer tar into the store (blocking).
    fn store_layer_of(&self, upper: &std::path::Path) -> Result<berth_store::StoredLayer> {
        let (reader, writer) =
            std::io::pipe().map_err(|e| EngineError::io("pipe for the layer tar", e))?;
        let upper = upper.to_path_buf();
        let context = format!("read container layer {}", upper.display());
        let writer_thread = std::thread::Builder::new()
            .name("berth-layer-writer".into())
            .spawn(move || berth_snapshot::write_layer(&upper, NOT_CHANGES, writer))
            .map_err(|e| EngineError::io("start the layer tar writer", e))?;
        let stored = self.store.import_layer(reader);
        let written = writer_thread
            .join()
            .map_err(|_| EngineError::ThreadPanicked {
                what: "wrote the layer tar",
            })?;
        written.map_err(|e| EngineError::snapshot(context, e))?;
        stored.map_err(EngineError::from)
    }

    /// Writes a new image: `blob` (the parent's config blob with the new config)
    /// gets `layer` appended (if any) and `step` as its history entry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_image(
        &self,
        mut blob: crate::model::ImageConfigBlob,
        layer: Option<&berth_store::StoredLayer>,
        mut step: HistoryStep,
        parent_size: u64,
        comment: &str,
        parent: &str,
        build_key: &str,
    ) -> Result<ImageRecord> {
        let created = now_rfc3339();
        blob.created = created.clone();
        step.created = Some(created.clone());
        if let Some(l) = layer {
            blob.rootfs.diff_ids.push(l.diff_id.to_string());
        } else {
            step.empty_layer = true;
        }
        if blob.rootfs.kind.is_empty() {
            blob.rootfs.kind = "layers".into();
        }
        blob.history.push(step);
        let bytes =
            serde_json::to_vec(&blob).map_err(|e| EngineError::json("encode image config", e))?;
        let id = self.store.put_blob_bytes(&bytes)?.to_string();
        self.keep_image(ImageRecord {
            created,
            comment: comment.to_string(),
            parent: parent.to_string(),
            build_key: build_key.to_string(),
            ..ImageRecord::new(id, blob, parent_size + layer.map_or(0, |l| l.size))
        })
    }
}

/// Docker's commit merge: what the request's config sets wins, the rest is kept.
fn merge_config(base: &mut ContainerConfig, over: &ContainerConfig) {
    if over.cmd.as_ref().is_some_and(|c| !c.is_empty()) {
        base.cmd = over.cmd.clone();
    }
    if over.entrypoint.as_ref().is_some_and(|e| !e.is_empty()) {
        base.entrypoint = over.entrypoint.clone();
    }
    for e in &over.env {
        let key = e.split('=').next().unwrap_or(e);
        base.env.retain(|x| x.split('=').next() != Some(key));
        base.env.push(e.clone());
    }
    for (k, v) in &over.labels {
        base.labels.insert(k.clone(), v.clone());
    }
    if !over.working_dir.is_empty() {
        base.working_dir = over.working_dir.clone();
    }
    if !over.user.is_empty() {
        base.user = over.user.clone();
    }
    if over.exposed_ports.is_some() {
        base.exposed_ports = over.exposed_ports.clone();
    }
    if over.volumes.is_some() {
        base.volumes = over.volumes.clone();
    }
    if over.stop_signal.is_some() {
        base.stop_signal = over.stop_signal.clone();
    }
}
