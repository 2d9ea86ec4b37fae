//! berth-distribution: berth's client of the OCI distribution API.
//!
//! What it knows: how an image reference names a registry, repository and tag
//! ([`RemoteRef`]); how to reach a registry (HTTPS with the system's roots plus
//! docker's `certs.d` layout, plain HTTP for loopback and insecure registries);
//! how to earn access (Basic credentials, the Bearer token dance); and the
//! requests of the distribution API ([`Client`]: manifests, blobs, uploads).
//!
//! What it does not know: where images are stored or how a pull is shown. The
//! engine drives pulls and pushes over this client, so the engine itself speaks
//! no HTTP and holds no TLS stack.

mod client;
mod reference;
mod tls;

pub use client::{Blob, Client};
pub use reference::RemoteRef;

/// Credentials from docker's `X-Registry-Auth` header.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
}

/// How a caller should take a [`DistributionError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The registry has no such repository, tag or blob.
    NotFound,
    /// The registry or its TLS refused us: credentials, trust, permissions.
    Refused,
    /// What was asked or what arrived is malformed (reference, digest, size).
    Invalid,
    /// The conversation failed: connection, protocol, unexpected status.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    #[error("connect to registry {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with registry {host}: {source}")]
    Handshake {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The registry's or the client's certificates could not be used.
    #[error("{context}: {source}")]
    Certificates {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("registry {host}: {source}")]
    Http {
        host: String,
        #[source]
        source: hyper::Error,
    },
    #[error("unauthorized: authentication required for {host} (run berth login {host})")]
    AuthenticationRequired { host: String },
    #[error("unauthorized: incorrect username or password for {host}")]
    BadCredentials { host: String },
    #[error("token request refused: {status}")]
    TokenRefused { status: hyper::StatusCode },
    /// The registry answered 404 (`detail` is its own message).
    #[error("{what}: not found: {detail}")]
    NotFound { what: String, detail: String },
    /// The registry answered 401 or 403.
    #[error("{what}: {detail}")]
    Denied { what: String, detail: String },
    /// The registry answered another error status.
    #[error("{what}: {detail}")]
    Status { what: String, detail: String },
    /// The registry's answer is not what the protocol says it must be.
    #[error("{0}")]
    Protocol(String),
    /// A manifest the registry served could not be read.
    #[error("manifest for {reference}: {source}")]
    Manifest {
        reference: String,
        #[source]
        source: berth_oci::manifest::ManifestError,
    },
    /// Content that does not match its digest or is beyond a limit.
    #[error("{0}")]
    Mismatch(String),
}

impl DistributionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DistributionError::NotFound { .. } => ErrorKind::NotFound,
            DistributionError::Handshake { .. }
            | DistributionError::AuthenticationRequired { .. }
            | DistributionError::BadCredentials { .. }
            | DistributionError::TokenRefused { .. }
            | DistributionError::Denied { .. } => ErrorKind::Refused,
            DistributionError::InvalidReference(_) | DistributionError::Mismatch(_) => {
                ErrorKind::Invalid
            }
            DistributionError::Connect { .. }
            | DistributionError::Certificates { .. }
            | DistributionError::Http { .. }
            | DistributionError::Status { .. }
            | DistributionError::Protocol(_)
            | DistributionError::Manifest { .. } => ErrorKind::Failed,
        }
    }
}

pub type Result<T> = std::result::Result<T, DistributionError>;
