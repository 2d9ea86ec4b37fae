//! Error types: the public ones (start-up, storage, GC) and the spec's JSON
//! error responses.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper::StatusCode;
use serde_json::Value;

/// Errors from starting or running the registry server.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The listening socket could not be bound.
    #[error("cannot bind registry listener on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The storage root could not be prepared.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The htpasswd or token key file could not be read or parsed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The TLS certificate, key or client CA could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An invalid configuration value.
    #[error("invalid registry configuration: {0}")]
    Config(String),
    /// A background task failed unexpectedly.
    #[error("registry task failed: {0}")]
    Task(String),
}

/// Errors from the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "rename", ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A link or metadata file has unexpected content.
    #[error("corrupt metadata file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl StorageError {
    /// Builds a closure mapping an `io::Error` to [`StorageError::Io`].
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io { op, path, source }
    }
}

/// Errors loading an htpasswd file or a token signing key.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read.
    #[error("cannot read htpasswd file {path}: {source}")]
    Read {
        /// The htpasswd path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file contains no usable entries.
    #[error("htpasswd file {path} has no usable bcrypt or {{SHA}} entries")]
    Empty {
        /// The htpasswd path.
        path: PathBuf,
    },
    /// The token signing key file could not be read.
    #[error("cannot read token key file {path}: {source}")]
    TokenKeyRead {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The token signing key is too short.
    #[error("token key file {path} holds {len} bytes; at least {min} are needed")]
    TokenKeyShort {
        /// The key file.
        path: PathBuf,
        /// Bytes found (after trimming surrounding whitespace).
        len: usize,
        /// Bytes required.
        min: usize,
    },
}

/// Errors loading the TLS files ([`crate::RegistryConfig::tls_cert`],
/// [`crate::RegistryConfig::tls_key`], [`crate::RegistryConfig::tls_client_ca`]).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read TLS {what} file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Which file ("certificate", "private key", "client CA").
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file is not valid PEM or holds nothing usable.
    #[error("invalid TLS {what} file {path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Which file ("certificate", "private key", "client CA").
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the
    /// certificate).
    #[error("TLS setup failed: {reason}: {source}")]
    Setup {
        /// What was being set up, naming the files.
        reason: String,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
}

/// Errors from [`crate::garbage_collect`].
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Reading or deleting from the store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored manifest could not be parsed, so its references are unknown;
    /// collection stops rather than risk deleting blobs it references.
    #[error("manifest blob {path} is not valid JSON ({source}); refusing to collect")]
    CorruptManifest {
        /// The blob file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The error codes of the distribution spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`
    BlobUploadUnknown,
    /// `DIGEST_INVALID`
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`
    ManifestUnknown,
    /// `NAME_INVALID`
    NameInvalid,
    /// `NAME_UNKNOWN`
    NameUnknown,
    /// `SIZE_INVALID`
    SizeInvalid,
    /// `UNAUTHORIZED`
    Unauthorized,
    /// `DENIED`
    Denied,
    /// `UNSUPPORTED`
    Unsupported,
    /// `TOOMANYREQUESTS`
    TooManyRequests,
    /// `TAG_INVALID` (legacy Docker code)
    TagInvalid,
    /// `UNKNOWN`: internal server errors (Docker's code for 5xx).
    Unknown,
}

impl ErrorCode {
    /// The code string used in JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The status normally returned with this code.
    pub fn default_status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid => StatusCode::BAD_REQUEST,
        }
    }
}

/// One entry of the `errors` array.
#[derive(Debug, Clone)]
pub(crate) struct ErrorEntry {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Option<Value>,
}

/// An HTTP error response in the spec's JSON format.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorEntry>,
    /// Extra response headers (e.g. `Range` on a 416).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: code.default_status(),
            errors: vec![ErrorEntry {
                code,
                message: message.into(),
                detail: None,
            }],
            headers: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        if let Some(e) = self.errors.last_mut() {
            e.detail = Some(detail);
        }
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A 500 whose details are logged but not sent to the client.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal registry error");
        ApiError::new(ErrorCode::Unknown, "internal server error")
    }

    pub fn body(&self) -> Vec<u8> {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut obj = serde_json::Map::new();
                obj.insert("code".into(), Value::from(e.code.as_str()));
                obj.insert("message".into(), Value::from(e.message.clone()));
                if let Some(d) = &e.detail {
                    obj.insert("detail".into(), d.clone());
                }
                Value::Object(obj)
            })
            .collect();
        let mut out = serde_json::to_vec(&serde_json::json!({ "errors": errors }))
            .unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
        out.push(b'\n');
        out
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::internal(&e)
    }
}
