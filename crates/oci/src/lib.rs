//! berth-oci: the OCI vocabulary every berth crate shares: content digests,
//! repository name and tag rules, and the media types of manifests, indexes,
//! configs and layers. No I/O; used by the store, the registry and the engine
//! alike, so that each rule exists once.

pub mod digest;
pub mod media_type;
pub mod name;

pub use digest::{Digest, DigestError};
