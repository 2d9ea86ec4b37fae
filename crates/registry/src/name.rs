//! Validation of repository names, tags and digests.
//!
//! Everything that reaches the filesystem from a request passes through one
//! of these validators first, which is what keeps path traversal (`..`,
//! absolute paths, `%2e`, empty components) out of the storage layer.

pub use berth_oci::name::*;
pub use berth_oci::{Digest, DigestError};

/// The `<tag-or-digest>` part of a manifest URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag, already validated.
    Tag(String),
    /// A content digest.
    Digest(Digest),
}
