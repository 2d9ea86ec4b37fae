//! berth-monitor: the small process that parents one container (or one exec).
//!
//! berthd never parents containers. For each start it runs `berth-monitor CONFIG_JSON`;
//! the monitor detaches into its own session, mounts the root filesystem, creates the
//! container through the runtime, and then owns it until it exits: it holds the
//! container's stdio, writes the json-file log, serves attach/resize/wait requests on a
//! unix socket, and writes the exit record. berthd can die and come back; the monitor
//! and the container carry on, and the exit record waits on disk.
//!
//! This library half holds the protocol both sides share.
//!
//! Protocol on the monitor socket: the client sends one JSON line ([`Request`]); then
//! * `attach`: the monitor streams output in docker's stdcopy framing (8-byte header:
//!   stream id, three zero bytes, big-endian length), and whatever the client writes
//!   is fed to the container's stdin; the client's write-shutdown is stdin EOF.
//! * `wait`: with a health check, the monitor sends a [`WaitLine::Health`] line at
//!   once and after every probe; it replies with one [`ExitRecord`] line when the
//!   process exits.
//! * `resize`: applied to the terminal, then the connection closes.
//! * `state`: the monitor replies with one [`StateReply`] line once the process has
//!   started (a request made during the start waits for it), then closes. A berthd
//!   that restarts uses it to find the process of a start it did not see finish.

pub mod logfile;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use berth_snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The container's first process: creates the container.
    Init,
    /// A further process in a running container (`exec`).
    Exec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file exceeds this many bytes; 0 means never.
    pub max_size: u64,
    /// Files kept in all, counting the live one.
    pub max_files: u32,
    /// json-file or local (docker's drivers of those names).
    #[serde(default)]
    pub format: logfile::LogFormat,
    /// gzip rotated files (`container.log.N.gz`).
    #[serde(default)]
    pub compress: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub mode: Mode,
    /// The runtime's container id.
    pub id: String,
    /// The runtime's state directory (libcontainer root).
    pub state_root: PathBuf,
    /// Init: the OCI bundle holding config.json.
    pub bundle: PathBuf,
    /// Exec: the OCI process.json to run.
    pub process_json: Option<PathBuf>,
    /// Init: the overlay to mount before creating the container.
    pub rootfs: Option<Snapshot>,
    pub socket: PathBuf,
    pub console_socket: PathBuf,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub log: Option<LogConfig>,
    pub exit_file: PathBuf,
    /// Files whose `oom_kill N` counter tells whether the kernel OOM-killed in the
    /// container's cgroup (memory.oom_control on v1, memory.events on v2).
    pub oom_files: Vec<PathBuf>,
    /// Bring up `lo` in the container's own network namespace.
    pub loopback_up: bool,
    /// Attach clients to accept before the process starts, so that none of its
    /// output is missed (docker's `run` attaches first, then starts).
    #[serde(default)]
    pub attach_before_start: usize,
    /// An external OCI runtime binary (runc) instead of the built-in libcontainer.
    #[serde(default)]
    pub runtime: Option<PathBuf>,
    /// Volumes to fill from the image once the root filesystem is mounted.
    #[serde(default)]
    pub copy_up: Vec<CopyUp>,
    /// Where compiled seccomp filters are kept between containers.
    #[serde(default)]
    pub seccomp_cache: Option<PathBuf>,
    /// Init: the health check to run, if any.
    #[serde(default)]
    pub health: Option<HealthProbe>,
    /// Init: the container's cgroup, relative to each hierarchy's root, which
    /// [`Request::Freeze`] freezes.
    #[serde(default)]
    pub cgroup: Option<String>,
}

/// A container's health check, run by its monitor (so probes go on while berthd
/// is away, and cost no process of their own between probes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthProbe {
    /// The probe's OCI process: the container's own, with the probe's command.
    pub process_json: PathBuf,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Failures during this time after the start do not count.
    pub start_period_ms: u64,
    /// The interval while the start period lasts and the container is `starting`.
    pub start_interval_ms: u64,
    /// Consecutive failures that make the container `unhealthy`.
    pub retries: u32,
    /// The cgroup's freezer file: no probe runs in a paused container.
    #[serde(default)]
    pub freezer_file: Option<PathBuf>,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// The last five probes, oldest first.
    pub log: Vec<HealthLogEntry>,
}

/// One probe: RFC 3339 times, the exit code (-1 for a probe that timed out) and
/// the first 4 KiB of its output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLogEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// A line on a `wait` connection: health reports while the process runs, then
/// the exit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum WaitLine {
    Health { health: Health },
    Exit(ExitRecord),
}

/// Docker's copy-up: an empty volume mounted over a directory of the image gets
/// that directory's contents before the container starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyUp {
    /// Path inside the container.
    pub destination: String,
    /// The volume's directory on the host.
    pub volume_dir: PathBuf,
}

/// First line the monitor prints on stdout: the process started, or why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartReply {
    pub pid: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Request {
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
    Resize {
        height: u16,
        width: u16,
    },
    State,
    /// Signal the process. Only the monitor can do this without a race: it is
    /// the process's subreaper, so the pid cannot be recycled until the monitor
    /// itself has reaped it. Answered with a [`ControlReply`].
    Kill {
        signal: i32,
    },
    /// Freeze or thaw the container's cgroup (pause/unpause). Answered with a
    /// [`ControlReply`].
    Freeze {
        frozen: bool,
    },
    /// Write new resource limits into the container's cgroup (`update`).
    /// Answered with a [`ControlReply`].
    Update {
        limits: berth_runtime::cgroups::Limits,
    },
    /// Read the container's cgroup counters. Answered with a [`UsageReply`].
    Stats,
}

/// The answer to [`Request::Stats`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UsageReply {
    /// The process had already exited: no figures.
    #[serde(default)]
    pub exited: bool,
    #[serde(default)]
    pub usage: berth_runtime::cgroups::Usage,
}

/// The answer to a control request ([`Request::Kill`], [`Request::Freeze`],
/// [`Request::Update`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ControlReply {
    /// The process had already exited: nothing was done.
    #[serde(default)]
    pub exited: bool,
    /// Why the request failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// The answer to [`Request::State`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateReply {
    /// The container's (or exec's) process, in the host's pid namespace.
    pub pid: i32,
}

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Docker's stdcopy frame header.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let n = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}
