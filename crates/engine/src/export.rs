//! `export`: a container's filesystem (image layers plus its changes) as a tar stream.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::stream::ChannelWriter;
use crate::{Engine, EngineError, Result};

impl Engine {
    /// Streams the container's merged filesystem as a tar archive. A stopped
    /// container's layers are stacked read-only at a temporary mount point.
    pub fn export_container(self: &Arc<Self>, reference: &str) -> Result<mpsc::Receiver<Bytes>> {
        let c = self.container(reference)?;
        let dir = self.container_dir(&c.id);
        let (source, temporary): (PathBuf, bool) = if c.state.running() {
            (dir.join("rootfs"), false)
        } else {
            let image = self.image(&c.image_id)?;
            let mut lowers = vec![dir.join("upper")];
            lowers.extend(self.image_lowers(&image)?);
            let target = dir.join(format!("export-{}", &crate::random_id()[..8]));
            std::fs::create_dir_all(&target).map_err(|e| EngineError::at("create", &target, e))?;
            let existing: Vec<PathBuf> = lowers.into_iter().filter(|p| p.exists()).collect();
            berth_snapshot::mount_readonly(&existing, &target).map_err(|e| {
                let _ = std::fs::remove_dir(&target);
                EngineError::snapshot(format!("mount container {} for export", c.id), e)
            })?;
            (target, true)
        };
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let mut writer = ChannelWriter::new(tx);
            {
                let mut builder = tar::Builder::new(&mut writer);
                builder.follow_symlinks(false);
                if let Err(e) = builder
                    .append_dir_all(".", &source)
                    .and_then(|_| builder.finish())
                {
                    tracing::warn!(path = %source.display(), error = %e, "export ended early");
                }
            }
            let _ = writer.flush();
            if temporary {
                let _ = berth_snapshot::unmount(&source);
                let _ = std::fs::remove_dir(&source);
            }
        });
        Ok(rx)
    }
}
