//! An external OCI runtime binary (runc, crun) driven through its command line, for
//! `--runtime`. Same contract as [`crate::youki`]: the caller must be a child
//! subreaper, because the runtime's own process exits and leaves the container's
//! processes to it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::youki::Stdio as ContainerStdio;
use crate::{Result, RuntimeError};

pub struct ExternalRuntime {
    pub binary: PathBuf,
    /// The runtime's `--root` state directory.
    pub root: PathBuf,
}

fn stdio(fd: Option<OwnedFd>) -> Stdio {
    fd.map(Stdio::from).unwrap_or_else(Stdio::null)
}

impl ExternalRuntime {
    fn command(&self, log: &Path) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// The last error the runtime logged (its stderr is the container's).
    fn error_from_log(&self, what: &str, log: &Path) -> RuntimeError {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let message = text
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(String::from))
            .unwrap_or_else(|| format!("{} {what} failed", self.binary.display()));
        RuntimeError::Runtime(message)
    }

    fn run(&self, mut cmd: Command, what: &str, log: &Path) -> Result<()> {
        let status = cmd
            .status()
            .map_err(|e| RuntimeError::io(format!("run {}", self.binary.display()), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(self.error_from_log(what, log))
        }
    }

    fn read_pid(pid_file: &Path) -> Result<i32> {
        std::fs::read_to_string(pid_file)
            .map_err(|e| RuntimeError::io(format!("read {}", pid_file.display()), e))?
            .trim()
            .parse()
            .map_err(|_| RuntimeError::Runtime(format!("bad pid file {}", pid_file.display())))
    }

    /// `create`, then `before_start(pid)`, then `start`. Returns the init pid.
    pub fn create_and_start(
        &self,
        id: &str,
        bundle: &Path,
        io: ContainerStdio,
        console_socket: Option<&Path>,
        before_start: impl FnOnce(i32) -> Result<()>,
    ) -> Result<i32> {
        let log = bundle.join("runtime.log");
        let pid_file = bundle.join("init.pid");
        let mut create = self.command(&log);
        create
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(socket) = console_socket {
            create.arg("--console-socket").arg(socket);
        }
        create
            .arg(id)
            .stdin(stdio(io.stdin))
            .stdout(stdio(io.stdout))
            .stderr(stdio(io.stderr));
        self.run(create, "create", &log)?;
        let pid = Self::read_pid(&pid_file)?;
        let started = before_start(pid).and_then(|()| {
            let mut start = self.command(&log);
            start
                .arg("start")
                .arg(id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            self.run(start, "start", &log)
        });
        if let Err(e) = started {
            let _ = self.delete(id, bundle);
            return Err(e);
        }
        Ok(pid)
    }

    /// `exec --detach` of an OCI process.json. Returns the process's pid.
    pub fn exec(
        &self,
        id: &str,
        bundle: &Path,
        process_json: &Path,
        io: ContainerStdio,
        console_socket: Option<&Path>,
    ) -> Result<i32> {
        let log = bundle.join("runtime.log");
        let pid_file = process_json.with_extension("pid");
        let mut exec = self.command(&log);
        exec.arg("exec")
            .arg("--detach")
            .arg("--process")
            .arg(process_json)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(socket) = console_socket {
            exec.arg("--console-socket").arg(socket);
        }
        exec.arg(id)
            .stdin(stdio(io.stdin))
            .stdout(stdio(io.stdout))
            .stderr(stdio(io.stderr));
        self.run(exec, "exec", &log)?;
        Self::read_pid(&pid_file)
    }

    pub fn delete(&self, id: &str, bundle: &Path) -> Result<()> {
        let log = bundle.join("runtime.log");
        let mut delete = self.command(&log);
        delete
            .arg("delete")
            .arg("--force")
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.run(delete, "delete", &log)
    }
}
