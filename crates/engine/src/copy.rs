//! `cp`: docker's archive endpoints (`HEAD`/`GET`/`PUT /containers/{id}/archive`).
//!
//! A running container is reached through `/proc/<pid>/root`, which shows its
//! whole mount namespace (volumes and tmpfs included). A stopped one gets its
//! overlay mounted for the duration, under the container's filesystem lock so a
//! start cannot race it; paths under its volumes and bind mounts go to their host
//! directories. Either way, every path resolves inside the chosen root
//! (`berth_store::{stat, pack, open_in}` use `RESOLVE_IN_ROOT`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_snapshot::Snapshot;
use berth_store::PathStat;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::model::ContainerRecord;
use crate::stream::ChannelWriter;
use crate::{Engine, EngineError, Result};

/// Where a container's files are reachable from the host, and what to undo after.
struct ContainerRoot {
    root: PathBuf,
    /// The path to use inside `root`.
    path: String,
    /// Set when the overlay was mounted for this operation.
    mounted: Option<Snapshot>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if let Some(s) = self.mounted.take() {
            if let Err(e) = s.unmount() {
                tracing::warn!(path = %s.target.display(), error = %e, "cp: unmount failed");
            }
        }
    }
}

fn not_found(path: &str, c: &ContainerRecord) -> EngineError {
    EngineError::NotFound(format!(
        "Could not find the file {path} in container {}",
        c.name
    ))
}

impl Engine {
    async fn container_root(
        self: &Arc<Self>,
        reference: &str,
        path: &str,
    ) -> Result<ContainerRoot> {
        if !path.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "path must be absolute: {path:?}"
            )));
        }
        let c = self.container(reference)?;
        if c.state.running() && c.state.pid > 0 {
            return Ok(ContainerRoot {
                root: PathBuf::from(format!("/proc/{}/root", c.state.pid)),
                path: path.to_string(),
                mounted: None,
                _guard: None,
            });
        }
        if let Some((source, rest)) = mount_for(&c, path) {
            return Ok(ContainerRoot {
                root: source,
                path: rest,
                mounted: None,
                _guard: None,
            });
        }
        let guard = self.fs_lock(&c.id).lock_owned().await;
        // Started while we waited: the running container's view is the truth.
        let c = self.container(&c.id)?;
        if c.state.running() && c.state.pid > 0 {
            return Ok(ContainerRoot {
                root: PathBuf::from(format!("/proc/{}/root", c.state.pid)),
                path: path.to_string(),
                mounted: None,
                _guard: None,
            });
        }
        let image = self.image(&c.image_id)?;
        let engine = self.clone();
        let lowers = tokio::task::spawn_blocking(move || engine.image_lowers(&image))
            .await
            .map_err(|e| EngineError::task("image layers", e))??;
        let snapshot = Snapshot::new(&self.container_dir(&c.id), lowers);
        snapshot
            .prepare()
            .and_then(|_| snapshot.mount())
            .map_err(|e| EngineError::snapshot(format!("mount container {}", c.id), e))?;
        Ok(ContainerRoot {
            root: snapshot.target.clone(),
            path: path.to_string(),
            mounted: Some(snapshot),
            _guard: Some(guard),
        })
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn archive_stat(self: &Arc<Self>, reference: &str, path: &str) -> Result<PathStat> {
        let c = self.container(reference)?;
        let root = self.container_root(reference, path).await?;
        tokio::task::spawn_blocking(move || berth_store::stat(&root.root, &root.path))
            .await
            .map_err(|e| EngineError::task("stat in container", e))?
            .map_err(|_| not_found(path, &c))
    }

    /// `GET /containers/{id}/archive`: the stat of `path` and a tar stream of it.
    pub async fn archive_get(
        self: &Arc<Self>,
        reference: &str,
        path: &str,
    ) -> Result<(PathStat, mpsc::Receiver<Bytes>)> {
        let c = self.container(reference)?;
        let root = self.container_root(reference, path).await?;
        let stat = berth_store::stat(&root.root, &root.path).map_err(|_| not_found(path, &c))?;
        // Docker names the top entry after the path as asked: `dir/.` packs the
        // directory's contents under `.`.
        let base = if path.ends_with("/.") {
            ".".to_string()
        } else {
            stat.name.clone()
        };
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let mut writer = ChannelWriter::new(tx);
            if let Err(e) = berth_store::pack(&root.root, &root.path, &base, &mut writer) {
                tracing::warn!(path = %root.path, error = %e, "cp: archive ended early");
            }
            drop(root);
        });
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into directory `path`.
    pub async fn archive_put(
        self: &Arc<Self>,
        reference: &str,
        path: &str,
        mut reader: impl Read + Send + 'static,
    ) -> Result<()> {
        let c = self.container(reference)?;
        if c.host_config.readonly_rootfs && mount_for(&c, path).is_none() {
            return Err(EngineError::Forbidden(
                "container rootfs is marked read-only".into(),
            ));
        }
        let root = self.container_root(reference, path).await?;
        let stat = berth_store::stat(&root.root, &root.path).map_err(|_| not_found(path, &c))?;
        if !stat.is_dir {
            return Err(EngineError::InvalidArgument(
                "extraction point is not a directory".into(),
            ));
        }
        tokio::task::spawn_blocking(move || {
            let dir = berth_store::open_in(&root.root, &root.path)?;
            let dest = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&dir)
            ));
            berth_store::unpack_plain(&mut reader, &dest)?;
            drop(root);
            // Tar readers stop at the end-of-archive block; the client may still be
            // sending padding, and answering before it is read breaks its pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            Ok::<(), berth_store::StoreError>(())
        })
        .await
        .map_err(|e| EngineError::task("extract into container", e))?
        .map_err(EngineError::from)?;
        self.emit_container("extract-to-dir", &c);
        Ok(())
    }
}

/// The volume or bind mount of a stopped container that holds `path`, as (host
/// directory, path inside it).
fn mount_for(c: &ContainerRecord, path: &str) -> Option<(PathBuf, String)> {
    let clean: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    c.mounts
        .iter()
        .filter(|m| m.kind == "volume" || m.kind == "bind")
        .filter_map(|m| {
            let dest: Vec<&str> = m.destination.split('/').filter(|p| !p.is_empty()).collect();
            clean.starts_with(&dest).then(|| {
                let mut rest = format!("/{}", clean[dest.len()..].join("/"));
                if path.ends_with("/.") {
                    rest.push_str(if rest == "/" { "." } else { "/." });
                } else if path.ends_with('/') && rest != "/" {
                    rest.push('/');
                }
                (dest.len(), Path::new(&m.source).to_path_buf(), rest)
            })
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, source, rest)| (source, rest))
}
