//! Running containers: start (through a monitor), stop, kill, wait, restart policies,
//! and re-adopting containers whose monitors outlived a berthd.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use berth_monitor::{ExitRecord, Mode, MonitorConfig, Request, Snapshot, StartReply};
use berth_runtime::NetworkMode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::adopt::read_exit_file;
use crate::model::ContainerRecord;
use crate::{db, now_rfc3339, Engine, EngineError, Result};

const MONITOR_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

impl Engine {
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn start_container(self: &Arc<Self>, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        if c.state.running() {
            return Err(EngineError::NotModified("container already started".into()));
        }
        let started = self.spawn_container(&c.id, true).await;
        if started.is_err() && c.host_config.auto_remove {
            // As dockerd: an auto-remove container that cannot start is removed
            // (with its anonymous volumes), not left behind in `created`.
            if let Err(e) = self.forget_container(&c.id, true) {
                tracing::warn!(id = %c.id, error = %e, "auto-remove after a failed start");
            }
        }
        started
    }

    /// Starts the container's process under a new monitor.
    /// `user_start`: a start by a user (not a restart policy), which clears the
    /// manual-stop mark and the restart count.
    async fn spawn_container(self: &Arc<Self>, id: &str, user_start: bool) -> Result<()> {
        let fs_lock = self.fs_lock(id);
        let _mounted_by_us = fs_lock.lock().await;
        let c = self.container(id)?;
        let network = match self.network_mode(&c) {
            Ok(m) => m,
            Err(e) => return Err(e),
        };
        let network = match self.connect_for_start(id).await? {
            Some(netns) => NetworkMode::Join(netns),
            None => network,
        };
        let result = self.spawn_connected(id, user_start, network).await;
        if result.is_err() {
            self.disconnect_after_exit(id).await;
        }
        result
    }

    async fn spawn_connected(
        self: &Arc<Self>,
        id: &str,
        user_start: bool,
        network: NetworkMode,
    ) -> Result<()> {
        let c = self.container(id)?;
        let image = self.image(&c.image_id)?;
        let engine = self.clone();
        let lowers = tokio::task::spawn_blocking(move || engine.image_lowers(&image))
            .await
            .map_err(|e| EngineError::task("image layers", e))??;
        let dir = self.container_dir(id);
        let bundle = self.bundle_dir(id);
        std::fs::create_dir_all(&bundle).map_err(|e| EngineError::at("create", &bundle, e))?;
        let snapshot = Snapshot::new(&dir, lowers);
        let (config, copy_up) = self.write_bundle(&c, &snapshot, &network)?;
        let health = self.health_probe(&c, &bundle)?;

        let monitor_config = MonitorConfig {
            mode: Mode::Init,
            id: id.to_string(),
            state_root: self.runtime_root(),
            bundle: bundle.clone(),
            process_json: None,
            rootfs: Some(snapshot),
            socket: self.monitor_socket(id),
            console_socket: self
                .config
                .exec_root
                .join("s")
                .join(format!("{}.con", &id[..24])),
            tty: c.config.tty,
            open_stdin: c.config.open_stdin,
            stdin_once: c.config.stdin_once,
            log: config,
            exit_file: dir.join("exit.json"),
            oom_files: self.oom_files(&c),
            loopback_up: network == NetworkMode::None,
            attach_before_start: 0,
            runtime: self.container_runtime(&c)?,
            copy_up,
            seccomp_cache: Some(self.seccomp_cache_dir()),
            health,
            cgroup: Some(self.cgroups_path(&c)),
        };
        let mut monitor_config = monitor_config;
        let pending = self.lock().pending_attach.remove(id).unwrap_or_default();
        monitor_config.attach_before_start = pending.len();
        let _ = std::fs::remove_file(&monitor_config.exit_file);
        self.write_start_journal(id)?;
        let reply = self
            .run_monitor(&monitor_config, &bundle.join("monitor.log"), pending)
            .await?;
        let pid = match reply {
            StartReply { pid: Some(pid), .. } => pid,
            StartReply { error, .. } => {
                let msg = error.unwrap_or_else(|| "monitor exited without a reply".into());
                self.update(id, |r| r.state.start_failed(msg.clone()))?;
                return Err(EngineError::RuntimeRefused(format!(
                    "failed to create task for container: {msg}"
                )));
            }
        };
        let record = self.update(id, |r| {
            if user_start {
                r.manually_stopped = false;
                r.restart_count = 0;
            }
            r.state.started(pid, now_rfc3339());
            // Every start begins a fresh health history, as docker's does.
            r.state.health = monitor_config
                .health
                .as_ref()
                .map(|_| crate::model::Health {
                    status: "starting".into(),
                    ..Default::default()
                });
        })?;
        self.emit_container("start", &record);
        self.watch(
            id.to_string(),
            monitor_config.socket,
            monitor_config.exit_file,
        );
        Ok(())
    }

    /// Runs `berth-monitor` and reads its one-line start reply.
    pub(crate) async fn run_monitor(
        &self,
        config: &MonitorConfig,
        log: &Path,
        pending: Vec<crate::logs::PendingAttach>,
    ) -> Result<StartReply> {
        let arg = serde_json::to_string(config)
            .map_err(|e| EngineError::json("encode monitor config", e))?;
        let stderr = std::fs::File::create(log).map_err(|e| EngineError::at("create", log, e))?;
        let mut child = tokio::process::Command::new(&self.config.monitor_bin)
            .arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| EngineError::at("run", &self.config.monitor_bin, e))?;
        let stdout = child.stdout.take().ok_or_else(|| EngineError::Monitor {
            container: config.id.clone(),
            reason: "spawned without its stdout pipe".into(),
        })?;
        for p in pending {
            match crate::logs::connect_monitor(
                &config.socket,
                &p.request,
                Some(Duration::from_secs(5)),
            )
            .await
            {
                Ok(stream) => {
                    let _ = p.tx.send(stream);
                }
                Err(e) => tracing::warn!(id = %config.id, error = %e, "early attach failed"),
            }
        }
        let mut line = String::new();
        // A monitor stuck inside the runtime (say, joining a frozen cgroup) must not
        // hang the API call forever.
        let read = match tokio::time::timeout(
            MONITOR_REPLY_TIMEOUT,
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no reply within 60 s",
            )),
        };
        // The first half of the monitor exits as soon as it has forked.
        let _ = child.wait().await;
        read.map_err(|e| {
            EngineError::io(
                format!("read the monitor's reply for container {}", config.id),
                e,
            )
        })?;
        if line.trim().is_empty() {
            let detail = std::fs::read_to_string(log).unwrap_or_default();
            return Ok(StartReply {
                pid: None,
                error: Some(format!("monitor died: {}", detail.trim())),
            });
        }
        serde_json::from_str(&line).map_err(|e| EngineError::Monitor {
            container: config.id.clone(),
            reason: format!("bad reply {line:?}: {e}"),
        })
    }

    /// The namespace a container's network comes from, before bridge networks
    /// (which `connect_for_start` prepares) are considered.
    fn network_mode(&self, c: &ContainerRecord) -> Result<NetworkMode> {
        let mode = &c.host_config.network_mode;
        if *mode == crate::model::NetworkMode::Host {
            return Ok(NetworkMode::Host);
        }
        if let crate::model::NetworkMode::Container(other) = mode {
            let o = self.container(other)?;
            if !o.state.running() || o.state.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    o.id
                )));
            }
            return Ok(NetworkMode::Join(PathBuf::from(format!(
                "/proc/{}/ns/net",
                o.state.pid
            ))));
        }
        Ok(NetworkMode::None)
    }

    pub(crate) fn cgroups_path(&self, c: &ContainerRecord) -> String {
        let parent = if c.host_config.cgroup_parent.is_empty() {
            self.config.cgroup_parent.as_str()
        } else {
            c.host_config.cgroup_parent.as_str()
        };
        format!("/{}/{}", parent.trim_matches('/'), c.id)
    }

    fn oom_files(&self, c: &ContainerRecord) -> Vec<PathBuf> {
        let rel = self.cgroups_path(c);
        let rel = rel.trim_start_matches('/');
        vec![
            Path::new("/sys/fs/cgroup/memory")
                .join(rel)
                .join("memory.oom_control"),
            Path::new("/sys/fs/cgroup").join(rel).join("memory.events"),
        ]
    }

    /// Follows a running container's monitor until the process exits.
    pub(crate) fn watch(self: &Arc<Self>, id: String, socket: PathBuf, exit_file: PathBuf) {
        use tracing::Instrument;
        let engine = self.clone();
        // What happens after the exit (restart, auto-remove) is logged under
        // the container, wherever the start came from.
        let span = tracing::info_span!("watch", container = %id);
        tokio::spawn(
            async move {
                let exit = loop {
                    if let Some(exit) =
                        wait_monitor(&socket, |h| engine.record_health(&id, h)).await
                    {
                        break exit;
                    }
                    if let Some(exit) = read_exit_file(&exit_file) {
                        break exit;
                    }
                    // The connection can fail while the monitor is still there (it
                    // finishes writing its exit record after closing the socket).
                    if engine.monitor_alive(&id) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    if let Some(exit) = read_exit_file(&exit_file) {
                        break exit;
                    }
                    break engine.clean_after_lost_monitor(&id).await;
                };
                engine.on_exit(&id, Some(exit)).await;
            }
            .instrument(span),
        );
    }

    pub(crate) async fn on_exit(self: &Arc<Self>, id: &str, exit: Option<ExitRecord>) {
        self.disconnect_after_exit(id).await;
        self.remove_start_journal(id);
        let exit = exit.unwrap_or_else(|| ExitRecord {
            exit_code: 255,
            oom_killed: false,
            finished_at: now_rfc3339(),
        });
        let mark_exited = |r: &mut ContainerRecord| {
            r.state
                .exited(exit.exit_code, exit.oom_killed, exit.finished_at.clone());
        };
        let Ok(current) = self.container(id) else {
            return;
        };
        if current.host_config.auto_remove {
            // Going straight to removal: the intermediate "exited" record would be
            // deleted a moment later, so it is not written (a crash in between is
            // handled by adoption, which finds no monitor and removes it then).
            let mut record = current;
            mark_exited(&mut record);
            self.set_in_memory(record.clone());
            self.emit_container("die", &record);
            if let Err(e) = self.forget_container(id, true) {
                tracing::warn!(id, error = %e, "auto-remove failed");
                // Waiters for `removed` must not hang on a removal that will not come.
                let attrs =
                    std::collections::BTreeMap::from([("error".to_string(), e.to_string())]);
                self.events.emit("container", "remove-failed", id, attrs);
            }
            return;
        }
        let Ok(record) = self.update(id, mark_exited) else {
            return;
        };
        let _ = std::fs::remove_file(self.container_dir(id).join("exit.json"));
        self.emit_container("die", &record);
        let crate::restart_policy::AfterExit::Restart {
            delay,
            restart_count,
        } = crate::restart_policy::after_exit(&record, exit.exit_code, chrono::Utc::now())
        else {
            return;
        };
        let _ = self.update(id, |r| {
            r.state.restart_pending();
            r.restart_count = restart_count;
        });
        let engine = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Ok(c) = engine.container(&id) else { return };
            if c.manually_stopped || !c.state.restarting() {
                return;
            }
            if let Err(e) = engine.spawn_container(&id, false).await {
                tracing::warn!(id, error = %e, "restart failed");
                let _ = engine.update(&id, |r| r.state.restart_abandoned());
            } else if let Ok(c) = engine.container(&id) {
                engine.emit_container("restart", &c);
            }
        });
    }

    /// Replaces a record in memory only (its durable copy is about to be deleted).
    fn set_in_memory(&self, record: ContainerRecord) {
        if let Some(c) = self.lock().containers.get_mut(&record.id) {
            *c = record;
        }
    }

    pub(crate) fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let mut st = self.lock();
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(format!("No such container: {id}")))?;
        let mut next = c.clone();
        change(&mut next);
        self.db.put(db::CONTAINERS, id, &next)?;
        *c = next.clone();
        Ok(next)
    }

    pub(crate) fn set_manually_stopped(&self, id: &str) -> Result<()> {
        self.update(id, |r| {
            r.manually_stopped = true;
            r.state.restart_abandoned();
        })
        .map(|_| ())
    }

    /// Waits until the container is not running (true) or `limit` passes (false).
    pub async fn wait_not_running(&self, id: &str, limit: Option<Duration>) -> bool {
        let mut events = self.subscribe();
        let wait = async {
            loop {
                match self.container(id) {
                    Ok(c) if c.state.running() => {}
                    _ => return,
                }
                match events.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        match limit {
            Some(d) => tokio::time::timeout(d, wait).await.is_ok(),
            None => {
                wait.await;
                true
            }
        }
    }
}

/// Waits on the monitor for the exit record, handing each health report that
/// comes before it to `on_health`.
async fn wait_monitor(
    socket: &Path,
    mut on_health: impl FnMut(crate::model::Health),
) -> Option<ExitRecord> {
    let mut stream = UnixStream::connect(socket).await.ok()?;
    let mut req = serde_json::to_vec(&Request::Wait).ok()?;
    req.push(b'\n');
    stream.write_all(&req).await.ok()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        match serde_json::from_str::<berth_monitor::WaitLine>(&line).ok()? {
            berth_monitor::WaitLine::Health { health } => on_health(health),
            berth_monitor::WaitLine::Exit(exit) => return Some(exit),
        }
    }
}
