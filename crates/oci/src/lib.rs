//! berth-oci: the OCI vocabulary every berth crate shares: content digests,
//! repository name and tag rules, the media types of manifests, indexes,
//! configs and layers, and the manifest and index types themselves (oci-spec's).
//! No I/O; used by the store, the registry, the distribution client and the
//! engine alike, so that each rule exists once.

pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod name;

pub use digest::{Digest, DigestError};
