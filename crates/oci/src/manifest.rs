//! Image manifests and indexes: oci-spec's types (Docker's manifest v2 schema 2
//! and manifest list have the same shapes, under other media types), with the
//! few constructors and lookups berth's pull, push, save and load share.

use std::str::FromStr;

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::media_type::{DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::{Digest, DigestError};

/// Why a manifest body was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the shape its media type (or its fields) say it is.
    #[error("invalid {what}: {source}")]
    Invalid {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A descriptor's digest is not a sha256 digest berth can store.
    #[error("descriptor digest {digest}: {source}")]
    Digest {
        digest: String,
        #[source]
        source: DigestError,
    },
}

/// A manifest as a registry or an image layout holds it: one image, or an index
/// of images (one per platform, or one per tag in a layout's `index.json`).
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl Manifest {
    /// Parses `body`. An index is known by its media type or, when it names
    /// none (the OCI spec makes it optional), by its `manifests` list.
    pub fn parse(body: &[u8]) -> Result<Manifest, ManifestError> {
        #[derive(serde::Deserialize)]
        struct Shape {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde::de::IgnoredAny>,
        }
        let shape: Shape =
            serde_json::from_slice(body).map_err(|source| ManifestError::Invalid {
                what: "manifest",
                source,
            })?;
        let is_index = match shape.media_type.as_deref() {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(_) => false,
            None => shape.manifests.is_some(),
        };
        if is_index {
            serde_json::from_slice(body)
                .map(|index| Manifest::Index(Box::new(index)))
                .map_err(|source| ManifestError::Invalid {
                    what: "image index",
                    source,
                })
        } else {
            serde_json::from_slice(body)
                .map(|image| Manifest::Image(Box::new(image)))
                .map_err(|source| ManifestError::Invalid {
                    what: "image manifest",
                    source,
                })
        }
    }
}

/// A descriptor of `size` bytes of `media_type` content with `digest`.
pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, oci_digest(digest))
}

/// An OCI image manifest of `config` and `layers`, in the order docker writes
/// its fields (`schemaVersion`, `mediaType`, `config`, `layers`).
pub fn image_manifest(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
    oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(OCI_MANIFEST))
        .config(config)
        .layers(layers)
        .build()
        .expect("every field an image manifest requires is set")
}

/// An OCI image index of `manifests`.
pub fn image_index(manifests: Vec<Descriptor>) -> ImageIndex {
    oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(OCI_INDEX))
        .manifests(manifests)
        .build()
        .expect("every field an image index requires is set")
}

/// The entry of `index` for `os`/`architecture` (Go's names: `linux`, `amd64`).
pub fn platform_entry<'a>(
    index: &'a ImageIndex,
    os: &str,
    architecture: &str,
) -> Option<&'a Descriptor> {
    index.manifests().iter().find(|m| {
        m.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == os && p.architecture().to_string() == architecture
        })
    })
}

/// A descriptor's digest as berth stores content: sha256 only.
pub fn digest_of(descriptor: &Descriptor) -> Result<Digest, ManifestError> {
    let text = descriptor.digest().to_string();
    Digest::from_str(&text).map_err(|source| ManifestError::Digest {
        digest: text,
        source,
    })
}

fn oci_digest(digest: &Digest) -> oci_spec::image::Digest {
    // A `Digest` only ever holds 32 bytes, so its hex is always a valid sha256
    // encoding and this parse cannot fail.
    oci_spec::image::Sha256Digest::from_str(&digest.hex())
        .expect("64 lowercase hex digits are a valid sha256 digest")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::{DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_TAR};

    #[test]
    fn a_built_manifest_is_written_as_docker_orders_it_and_reads_back() {
        let config = Digest::of(b"config");
        let layer = Digest::of(b"layer");
        let manifest = image_manifest(
            descriptor(OCI_CONFIG, &config, 6),
            vec![descriptor(OCI_LAYER_TAR, &layer, 5)],
        );
        let text = serde_json::to_string(&manifest).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config}","size":6}},"layers":[{{"mediaType":"{OCI_LAYER_TAR}","digest":"{layer}","size":5}}]}}"#
            )
        );
        let Manifest::Image(back) = Manifest::parse(text.as_bytes()).unwrap() else {
            panic!("an image manifest read back as an index");
        };
        assert_eq!(digest_of(back.config()).unwrap(), config);
        assert_eq!(digest_of(&back.layers()[0]).unwrap(), layer);
    }

    #[test]
    fn an_index_is_known_by_its_media_type_or_its_list() {
        let entry = |arch: &str| {
            format!(
                r#"{{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                Digest::of(arch.as_bytes())
            )
        };
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{},{}]}}"#,
            entry("arm64"),
            entry("amd64")
        );
        let Manifest::Index(index) = Manifest::parse(list.as_bytes()).unwrap() else {
            panic!("a manifest list read as an image");
        };
        let amd64 = platform_entry(&index, "linux", "amd64").unwrap();
        assert_eq!(digest_of(amd64).unwrap(), Digest::of(b"amd64"));
        assert!(platform_entry(&index, "linux", "s390x").is_none());

        let untyped = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, entry("amd64"));
        assert!(matches!(
            Manifest::parse(untyped.as_bytes()),
            Ok(Manifest::Index(_))
        ));
    }

    #[test]
    fn hostile_manifests_are_errors() {
        let d = Digest::of(b"x");
        for body in [
            "".to_string(),
            "[]".to_string(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{d}","size":-1}},"layers":[]}}"#
            ),
            r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#.to_string(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":{{}}}}"#),
        ] {
            assert!(Manifest::parse(body.as_bytes()).is_err(), "accepted {body}");
        }
        let sha512 = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha512:{}","size":1}},"layers":[]}}"#,
            "a".repeat(128)
        );
        let Ok(Manifest::Image(m)) = Manifest::parse(sha512.as_bytes()) else {
            panic!("a sha512 descriptor is a valid manifest");
        };
        assert!(matches!(
            digest_of(m.config()),
            Err(ManifestError::Digest { .. })
        ));
    }
}
