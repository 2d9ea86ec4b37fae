//! berth-runtime: everything that turns a container description into kernel state.
//!
//! * [`spec`] builds the OCI runtime spec (namespaces, mounts, capabilities, seccomp,
//!   masked paths, cgroup limits) from berth's plain [`spec::SpecOptions`].
//! * [`seccomp`] evaluates Docker's default seccomp profile for a given capability set.
//! * [`seccomp_bpf`] compiles a profile once into a cached BPF program.
//! * [`cgroupfs`] makes the container's `/sys/fs/cgroup` read-only, as the spec asks.
//! * [`cgroups`] reads and freezes a container's cgroup from outside (pause, stats, top).
//! * [`caps`] knows Docker's default capability set and what the caller holds.
//! * [`youki`] drives youki's `libcontainer`. It forks with raw clone3, blocks and
//!   changes process-wide attributes, so it must only ever run inside a single-threaded
//!   monitor process, never inside berthd.
//! * [`external`] drives an external OCI runtime binary (runc) for `--runtime`.
//! * [`netdev`] brings up loopback inside a container's network namespace.
//! * [`limits`] checks `--ulimit` and `--sysctl` the way docker does.

pub mod caps;
pub mod cgroupfs;
pub mod cgroups;
pub mod external;
pub mod limits;
pub mod netdev;
pub mod seccomp;
pub mod seccomp_bpf;
pub mod spec;
pub mod youki;

pub use spec::{build_spec, container_process, MountSpec, NetworkMode, SpecOptions};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid seccomp profile: {0}")]
    Seccomp(String),
    #[error("OCI runtime error: {0}")]
    Runtime(String),
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// A container's OCI spec could not be read back.
    #[error("OCI spec {path}: {source}")]
    Spec {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl RuntimeError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
