//! RUN: the step in a real container, its writable layer committed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_dockerfile::Dockerfile;

use super::*;
use crate::model::{ContainerConfig, HostSettings, ImageConfigBlob, NetworkMode};
use crate::{Engine, Result};

impl Engine {
    pub(super) fn lowers_of(&self, blob: &ImageConfigBlob) -> Result<Vec<PathBuf>> {
        let mut lowers = Vec::new();
        for d in blob.rootfs.diff_ids.iter().rev() {
            lowers.push(self.store.unpack_layer(&berth_store::Digest::parse(d)?)?);
        }
        Ok(lowers)
    }

    /// `COPY --from=`: a stage built earlier (by name or index) or a local image.
    pub(super) fn copy_from_lowers(
        &self,
        dockerfile: &Dockerfile,
        built: &HashMap<usize, String>,
        from: &str,
    ) -> Result<Vec<PathBuf>> {
        let stage_index = dockerfile
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(from.to_ascii_lowercase().as_str()))
            .or_else(|| from.parse::<usize>().ok());
        let image = match stage_index.and_then(|i| built.get(&i)) {
            Some(id) => self.image(id)?,
            None => self.image(from)?,
        };
        self.lowers_of(&image.config)
    }

    /// Runs one RUN step in a container and returns its committed layer; the error
    /// is docker's message with the command's last output lines.
    pub(super) async fn run_step(
        self: &Arc<Self>,
        state: &StageState,
        argv: &[String],
        args_env: &[String],
        opts: &BuildOptions,
        progress: &Progress,
    ) -> std::result::Result<berth_store::StoredLayer, String> {
        let mut config = ContainerConfig {
            image: state.parent.clone(),
            entrypoint: Some(argv[..1].to_vec()),
            cmd: Some(argv[1..].to_vec()),
            env: args_env.to_vec(),
            user: state.blob.config.user.clone(),
            working_dir: state.blob.config.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        config.labels.clear();
        let host = HostSettings {
            network_mode: NetworkMode::from(opts.network_mode.as_str()),
            resources: crate::model::Resources {
                memory: opts.memory,
                cpu_shares: opts.cpu_shares,
                ..Default::default()
            },
            ..Default::default()
        };
        let c = self
            .create_container(None, config, host)
            .map_err(|e| e.to_string())?;
        progress
            .stream(format!(" ---> Running in {}\n", short(&c.id)))
            .await;
        let result = self.run_and_capture(&c.id, progress).await;
        let layer = match result {
            Ok(()) => self
                .capture_layer(&self.container(&c.id).map_err(|e| e.to_string())?, false)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = self.forget_container(&c.id, true) {
            tracing::warn!(id = %c.id, error = %e, "build container not removed");
        } else {
            progress
                .stream(format!(
                    "Removing intermediate container {}\n",
                    short(&c.id)
                ))
                .await;
        }
        layer
    }

    pub(super) async fn run_and_capture(
        self: &Arc<Self>,
        id: &str,
        progress: &Progress,
    ) -> std::result::Result<(), String> {
        self.start_container(id).await.map_err(|e| e.to_string())?;
        let (_, mut rx) = self
            .logs(
                id,
                crate::LogOptions {
                    stdout: true,
                    stderr: true,
                    follow: true,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
        let mut frames = Vec::new();
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        while let Some(chunk) = rx.recv().await {
            frames.extend_from_slice(&chunk);
            // stdcopy frames: 8-byte header, then the payload.
            while frames.len() >= 8 {
                let len = u32::from_be_bytes([frames[4], frames[5], frames[6], frames[7]]) as usize;
                if frames.len() < 8 + len {
                    break;
                }
                let text = String::from_utf8_lossy(&frames[8..8 + len]).into_owned();
                frames.drain(..8 + len);
                for l in text.lines() {
                    tail.push_back(l.to_string());
                    if tail.len() > 5 {
                        tail.pop_front();
                    }
                }
                progress.stream(text).await;
            }
        }
        self.wait_not_running(id, None).await;
        let c = self.container(id).map_err(|e| e.to_string())?;
        if c.state.exit_code != 0 {
            let last: Vec<String> = tail.into_iter().collect();
            return Err(format!(
                "The command '{}' returned a non-zero code: {}{}",
                c.argv().join(" "),
                c.state.exit_code,
                if last.is_empty() {
                    String::new()
                } else {
                    format!("; last output:\n{}", last.join("\n"))
                }
            ));
        }
        Ok(())
    }
}
