//! The in-process runtime: youki's libcontainer.
//!
//! Only the single-threaded `berth-monitor` calls this. libcontainer forks with raw
//! clone3, blocks until the container process is set up, marks its caller
//! non-dumpable and writes the caller's oom_score_adj: none of that is safe inside
//! the multi-threaded daemon.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;

use crate::{Result, RuntimeError};

/// The three standard streams handed to the container's first process.
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

fn runtime_err(what: &str, id: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Runtime(format!("{what} {id}: {e}"))
}

fn base_builder(
    id: &str,
    state_root: &Path,
    stdio: Stdio,
    console_socket: Option<&Path>,
) -> Result<ContainerBuilder> {
    let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_executor(DefaultExecutor {})
        .with_root_path(state_root)
        .map_err(|e| runtime_err("state root for", id, e))?
        .with_console_socket(console_socket.map(Path::to_path_buf));
    if let Some(fd) = stdio.stdin {
        builder = builder.with_stdin(fd);
    }
    if let Some(fd) = stdio.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        builder = builder.with_stderr(fd);
    }
    Ok(builder)
}

/// Creates the container described by `bundle/config.json`, runs `before_start` with
/// the init pid while the process still waits (namespaces exist, user code has not
/// run), then starts it. Returns the pid of the container's init process.
pub fn create_and_start(
    id: &str,
    state_root: &Path,
    bundle: &Path,
    stdio: Stdio,
    console_socket: Option<&Path>,
    before_start: impl FnOnce(i32) -> Result<()>,
) -> Result<i32> {
    let mut container = base_builder(id, state_root, stdio, console_socket)?
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| runtime_err("create", id, e))?;
    let pid = container
        .pid()
        .ok_or_else(|| runtime_err("create", id, "no init pid"))?
        .as_raw();
    if let Err(e) = before_start(pid) {
        let _ = container.delete(true);
        return Err(e);
    }
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(runtime_err("start", id, e));
    }
    Ok(pid)
}

/// Starts a further process inside a running container (`exec`), described by an OCI
/// `process.json`. Returns its pid; it is a child of the caller.
pub fn exec(
    id: &str,
    state_root: &Path,
    process_json: &Path,
    stdio: Stdio,
    console_socket: Option<&Path>,
) -> Result<i32> {
    let pid = base_builder(id, state_root, stdio, console_socket)?
        .as_tenant()
        .with_detach(true)
        .with_process(Some(process_json.to_path_buf()))
        .build()
        .map_err(|e| runtime_err("exec in", id, e))?;
    Ok(pid.as_raw())
}

/// Removes the runtime's record of a container and its cgroup, killing what is left.
pub fn delete(id: &str, state_root: &Path) -> Result<()> {
    let dir: PathBuf = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    let mut container = Container::load(dir).map_err(|e| runtime_err("load", id, e))?;
    container
        .delete(true)
        .map_err(|e| runtime_err("delete", id, e))
}
