//! The engine's one error type.
//!
//! Every failure names what it was doing (which container, which path) and keeps
//! the error that caused it as its `source`, so a log line or an API answer can
//! show the whole chain. Front doors do not match on variants: they ask
//! [`EngineError::kind`] and map the [`ErrorKind`] once (the Docker API to HTTP
//! statuses, the CRI to gRPC codes).

use std::path::Path;

/// What went wrong, as a caller must react to it; each front door turns this into
/// its own status (404, `NotFound`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such container, image, network, volume or exec.
    NotFound,
    /// The object's state forbids the request (running, in use, name taken).
    Conflict,
    /// The request itself is wrong (bad value, hostile archive, bad digest).
    InvalidArgument,
    /// The request asked for what is already true (docker answers 304).
    NotModified,
    /// Refused for want of rights (registry credentials, TLS trust).
    Forbidden,
    /// What this configuration cannot do (docker's 501: reading a `none` log).
    NotImplemented,
    /// The engine or the host failed; the request may well have been right.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotModified(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotImplemented(String),
    /// A file system or process call failed; `context` says on what
    /// (`create /var/lib/berth/containers/<id>`).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A system call on a container's behalf failed (signal, freeze).
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    /// The metadata store (redb) failed.
    #[error("metadata store: {what}: {source}")]
    Metadata {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A record or spec berth writes could not be encoded or read back.
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// Setting up a container's confinement failed (cgroups, freezer, spec).
    #[error("{context}: {source}")]
    Runtime {
        context: String,
        #[source]
        source: berth_runtime::RuntimeError,
    },
    /// Mounting or reading a container's file system failed.
    #[error("{context}: {source}")]
    Snapshot {
        context: String,
        #[source]
        source: berth_snapshot::SnapshotError,
    },
    /// The OCI runtime refused to start a container or exec process; the text is
    /// the runtime's own, as docker passes it on.
    #[error("{0}")]
    RuntimeRefused(String),
    /// A container's monitor did not answer as it must.
    #[error("monitor of container {container}: {reason}")]
    Monitor { container: String, reason: String },
    /// A blocking task the engine handed work to was lost (it panicked).
    #[error("{what}: {source}")]
    Task {
        what: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Volume(#[from] berth_volume::VolumeError),
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    #[error(transparent)]
    Registry(#[from] berth_distribution::DistributionError),
    /// A thread berth started for blocking work panicked. The panic's own message
    /// went to stderr through the panic hook, under the thread's name.
    #[error("the thread that {what} panicked")]
    ThreadPanicked { what: &'static str },
    /// A network record in berth's state holds an address (subnet, gateway)
    /// that does not parse.
    #[error("network {network}: stored {field} {value:?}: {source}")]
    StoredAddress {
        network: String,
        field: &'static str,
        value: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<berth_oci::DigestError> for EngineError {
    fn from(e: berth_oci::DigestError) -> Self {
        EngineError::InvalidArgument(format!("invalid digest: {e}"))
    }
}

impl EngineError {
    /// The one classification front doors map to their statuses.
    pub fn kind(&self) -> ErrorKind {
        use berth_store::StoreError;
        match self {
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            EngineError::NotModified(_) => ErrorKind::NotModified,
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::NotImplemented(_) => ErrorKind::NotImplemented,
            EngineError::Store(
                StoreError::Hostile(_)
                | StoreError::Compression(_)
                | StoreError::DigestMismatch { .. }
                | StoreError::InvalidDigest(_),
            ) => ErrorKind::InvalidArgument,
            EngineError::Volume(e) => match e {
                berth_volume::VolumeError::Io { .. } => ErrorKind::Internal,
                _ => ErrorKind::InvalidArgument,
            },
            EngineError::Registry(e) => match e.kind() {
                berth_distribution::ErrorKind::NotFound => ErrorKind::NotFound,
                berth_distribution::ErrorKind::Refused => ErrorKind::Forbidden,
                berth_distribution::ErrorKind::Invalid => ErrorKind::InvalidArgument,
                berth_distribution::ErrorKind::Failed => ErrorKind::Internal,
            },
            EngineError::Io { .. }
            | EngineError::Sys { .. }
            | EngineError::Metadata { .. }
            | EngineError::Json { .. }
            | EngineError::Runtime { .. }
            | EngineError::Snapshot { .. }
            | EngineError::RuntimeRefused(_)
            | EngineError::Monitor { .. }
            | EngineError::Task { .. }
            | EngineError::Store(_)
            | EngineError::Network(_)
            | EngineError::ThreadPanicked { .. }
            | EngineError::StoredAddress { .. } => ErrorKind::Internal,
        }
    }

    /// An I/O failure while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> EngineError {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }

    /// An I/O failure of `verb` on `path` (`create /x: ...`).
    pub fn at(verb: &str, path: &Path, source: std::io::Error) -> EngineError {
        EngineError::io(format!("{verb} {}", path.display()), source)
    }

    /// A system call failure while doing `context`.
    pub fn sys(context: impl Into<String>, source: nix::Error) -> EngineError {
        EngineError::Sys {
            context: context.into(),
            source,
        }
    }

    /// A cgroup or spec failure while doing `context`.
    pub fn runtime(context: impl Into<String>, source: berth_runtime::RuntimeError) -> EngineError {
        EngineError::Runtime {
            context: context.into(),
            source,
        }
    }

    /// A mount or layer failure while doing `context`.
    pub fn snapshot(
        context: impl Into<String>,
        source: berth_snapshot::SnapshotError,
    ) -> EngineError {
        EngineError::Snapshot {
            context: context.into(),
            source,
        }
    }

    /// A JSON encode/decode failure of `what`.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> EngineError {
        EngineError::Json {
            what: what.into(),
            source,
        }
    }

    /// A lost blocking task that was doing `what`.
    pub fn task(what: impl Into<String>, source: tokio::task::JoinError) -> EngineError {
        EngineError::Task {
            what: what.into(),
            source,
        }
    }

    /// A metadata store failure while doing `what`.
    pub fn metadata(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> EngineError {
        EngineError::Metadata {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// The error and each cause under it, `: `-joined, for logs.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            // Variants that print `{context}: {source}` already show the first cause.
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = c.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_refusals_are_the_callers_fault_and_store_io_is_not() {
        let hostile = EngineError::from(berth_store::StoreError::Hostile("../x".into()));
        assert_eq!(hostile.kind(), ErrorKind::InvalidArgument);
        assert_eq!(hostile.to_string(), "refusing archive: ../x");
        let io = EngineError::from(berth_store::StoreError::io(
            "read blob",
            std::io::Error::from_raw_os_error(libc::EIO),
        ));
        assert_eq!(io.kind(), ErrorKind::Internal);
    }

    #[test]
    fn io_errors_keep_their_path_and_cause() {
        let e = EngineError::at(
            "create",
            Path::new("/var/lib/berth/x"),
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.to_string().starts_with("create /var/lib/berth/x: "));
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(
            source,
            Some(std::io::Error::from_raw_os_error(libc::ENOSPC).to_string())
        );
        // The cause is shown once, not twice.
        assert_eq!(e.chain(), e.to_string());
    }

    #[test]
    fn volume_refusals_are_bad_requests() {
        let e = EngineError::from(berth_volume::VolumeError::InvalidOption("x".into()));
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}
