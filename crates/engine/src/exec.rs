//! `exec`: further processes inside a running container, each under its own monitor
//! (mode `exec`), joining the container's namespaces and cgroup via libcontainer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_monitor::{ExitRecord, Mode, MonitorConfig, Request};

use crate::logs::{AttachStream, PendingAttach};
use crate::{random_id, Engine, EngineError, Result};

/// A process to run in a running container: what `exec` asks.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub privileged: bool,
    pub detach_keys: String,
}

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

/// An exec needs a running container that is not frozen: joining a frozen cgroup
/// would leave the new process (and the runtime starting it) stuck.
fn can_exec_in(c: &crate::ContainerRecord) -> Result<()> {
    if !c.state.running() {
        return Err(EngineError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    if c.state.paused() {
        return Err(EngineError::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    Ok(())
}

#[derive(Default)]
pub(crate) struct Execs {
    pub map: HashMap<String, ExecRecord>,
}

impl Engine {
    fn exec_exit_file(&self, exec: &ExecRecord) -> PathBuf {
        self.bundle_dir(&exec.container_id)
            .join(format!("exec-{}.exit", exec.id))
    }

    #[tracing::instrument(level = "info", skip_all, fields(container = %container))]
    pub fn create_exec(&self, container: &str, config: ExecConfig) -> Result<ExecRecord> {
        let c = self.container(container)?;
        can_exec_in(&c)?;
        if config.cmd.is_empty() {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let record = ExecRecord {
            id: random_id(),
            container_id: c.id.clone(),
            config,
            running: false,
            exit_code: None,
            pid: 0,
        };
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .insert(record.id.clone(), record.clone());
        Ok(record)
    }

    /// The exec's record; an exit the monitor already wrote to disk counts, so a
    /// client that saw its stream end always sees the exit code.
    pub fn exec(&self, id: &str) -> Result<ExecRecord> {
        let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        let exec = execs
            .map
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))?;
        if exec.running {
            let file = self
                .bundle_dir(&exec.container_id)
                .join(format!("exec-{}.exit", exec.id));
            if let Some(exit) = std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok())
            {
                exec.running = false;
                exec.exit_code = Some(exit.exit_code);
            }
        }
        Ok(exec.clone())
    }

    /// Fails the way [`Engine::start_exec`] would before doing anything: unknown or
    /// already started exec, container not running or paused.
    pub fn check_exec_startable(&self, id: &str) -> Result<()> {
        let exec = self.exec(id)?;
        if exec.running || exec.exit_code.is_some() {
            return Err(EngineError::Conflict(format!(
                "exec {id} has already been started"
            )));
        }
        can_exec_in(&self.container(&exec.container_id)?)
    }

    /// Starts an exec. With `attach`, returns the stream to its stdio, connected before
    /// the process runs.
    #[tracing::instrument(level = "info", skip_all, fields(exec = %id))]
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        attach: Option<(bool, bool, bool)>,
    ) -> Result<(bool, Option<AttachStream>)> {
        let exec = self.exec(id)?;
        if exec.running || exec.exit_code.is_some() {
            return Err(EngineError::Conflict(format!(
                "exec {id} has already been started"
            )));
        }
        let c = self.container(&exec.container_id)?;
        can_exec_in(&c)?;
        let bundle = self.bundle_dir(&c.id);
        let process_path = bundle.join(format!("exec-{}.json", exec.id));
        self.write_exec_process(&c, &exec, &process_path)?;
        let exit_file = self.exec_exit_file(&exec);
        let config = MonitorConfig {
            health: None,
            cgroup: None,
            mode: Mode::Exec,
            id: c.id.clone(),
            state_root: self.runtime_root(),
            bundle: bundle.clone(),
            process_json: Some(process_path),
            rootfs: None,
            socket: self.monitor_socket(&exec.id),
            console_socket: self
                .config
                .exec_root
                .join("s")
                .join(format!("{}.con", &exec.id[..24])),
            tty: exec.config.tty,
            open_stdin: exec.config.attach_stdin,
            stdin_once: true,
            log: None,
            exit_file: exit_file.clone(),
            oom_files: Vec::new(),
            loopback_up: false,
            attach_before_start: usize::from(attach.is_some()),
            runtime: self.container_runtime(&c)?,
            copy_up: Vec::new(),
            seccomp_cache: Some(self.seccomp_cache_dir()),
        };
        let mut pending = Vec::new();
        let mut stream = None;
        if let Some((stdin, stdout, stderr)) = attach {
            let (tx, rx) = tokio::sync::oneshot::channel();
            pending.push(PendingAttach {
                request: Request::Attach {
                    stdin,
                    stdout,
                    stderr,
                },
                tx,
            });
            stream = Some(AttachStream::Pending(rx));
        }
        let reply = self
            .run_monitor(
                &config,
                &bundle.join(format!("exec-{}.log", exec.id)),
                pending,
            )
            .await?;
        let Some(pid) = reply.pid else {
            let msg = reply.error.unwrap_or_else(|| "exec failed".into());
            // docker's codes: 127 for a command that is not there, 126 otherwise.
            let lower = msg.to_lowercase();
            let code = if lower.contains("not found") || lower.contains("no such file") {
                127
            } else {
                126
            };
            self.set_exec(id, |e| e.exit_code = Some(code));
            return Err(EngineError::RuntimeRefused(msg));
        };
        self.set_exec(id, |e| {
            e.running = true;
            e.pid = pid;
        });
        let engine = self.clone();
        let id = id.to_string();
        let socket = config.socket.clone();
        tokio::spawn(async move {
            let exit = match crate::logs::connect_monitor(&socket, &Request::Wait, None).await {
                Ok(stream) => {
                    use tokio::io::AsyncBufReadExt;
                    let mut line = String::new();
                    let _ = tokio::io::BufReader::new(stream).read_line(&mut line).await;
                    serde_json::from_str::<ExitRecord>(&line).ok()
                }
                Err(_) => None,
            };
            let exit = exit.or_else(|| {
                std::fs::read(&exit_file)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
            });
            engine.set_exec(&id, |e| {
                e.running = false;
                e.exit_code = Some(exit.map(|x| x.exit_code).unwrap_or(255));
            });
        });
        Ok((exec.config.tty, stream))
    }

    fn set_exec(&self, id: &str, change: impl FnOnce(&mut ExecRecord)) {
        if let Some(e) = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .get_mut(id)
        {
            change(e);
        }
    }

    pub async fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.exec(id)?;
        if !exec.running {
            return Err(EngineError::Conflict(format!("exec {id} is not running")));
        }
        let _ = crate::logs::connect_monitor(
            &self.monitor_socket(&exec.id),
            &Request::Resize { height, width },
            None,
        )
        .await;
        Ok(())
    }

    /// Writes the OCI process for an exec: the container's process (capabilities,
    /// rlimits) with the exec's command, environment, directory, user and terminal.
    fn write_exec_process(
        &self,
        c: &crate::ContainerRecord,
        exec: &ExecRecord,
        path: &std::path::Path,
    ) -> Result<()> {
        let spec_path = self.bundle_dir(&c.id).join("config.json");
        let mut process = berth_runtime::container_process(&spec_path)
            .map_err(|e| EngineError::runtime(format!("exec in container {}", c.id), e))?;
        let mut env = process.env().clone().unwrap_or_default();
        for e in &exec.config.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if exec.config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        process.set_args(Some(exec.config.cmd.clone()));
        process.set_env(Some(env));
        process.set_terminal(Some(exec.config.tty));
        if !exec.config.working_dir.is_empty() {
            process.set_cwd(exec.config.working_dir.clone().into());
        }
        if !exec.config.user.is_empty() {
            let snapshot = berth_monitor::Snapshot::new(
                &self.container_dir(&c.id),
                self.image_lowers(&self.image(&c.image_id)?)?,
            );
            let (uid, gid, _) = crate::user::resolve_user(&exec.config.user, &snapshot)?;
            process.set_user(berth_runtime::spec::user(uid, gid));
        }
        if exec.config.privileged {
            process.set_capabilities(Some(berth_runtime::caps::privileged_process_capabilities()));
        }
        let bytes = serde_json::to_vec(&process)
            .map_err(|e| EngineError::json("encode exec process", e))?;
        std::fs::write(path, bytes).map_err(|e| EngineError::at("write", path, e))
    }
}
