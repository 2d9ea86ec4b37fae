//! Parsing and validation of the manifest formats the registry accepts.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::name::Digest;

pub use berth_oci::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

/// Media types accepted on manifest PUT.
pub const SUPPORTED_MANIFEST_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

#[derive(Debug, Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: String,
    /// Not used, but required: deserialization fails without a valid size.
    #[allow(dead_code)]
    size: u64,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Map<String, Value>>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The media type it is stored and served with.
    pub media_type: String,
    /// Blobs that must exist in the repository (config and layers).
    pub blobs: Vec<Digest>,
    /// Manifests that must exist in the repository (index entries).
    pub children: Vec<Digest>,
    /// The `subject` digest, if any.
    pub subject: Option<Digest>,
}

fn strip_params(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

fn descriptor_digest(d: &RawDescriptor, field: &str) -> Result<Digest, String> {
    d.digest
        .parse()
        .map_err(|e| format!("{field}: digest {:?}: {e}", d.digest))
}

fn is_foreign(d: &RawDescriptor) -> bool {
    !d.urls.is_empty()
        && d.media_type
            .as_deref()
            .is_some_and(|m| m.contains("foreign") || m.contains("nondistributable"))
}

/// Parses and validates a manifest body pushed with `content_type`.
/// The error string is a human-readable reason for `MANIFEST_INVALID`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Parsed, String> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let ct = content_type.map(strip_params).filter(|s| !s.is_empty());
    let ct_known = ct.filter(|c| SUPPORTED_MANIFEST_TYPES.contains(c));
    let media_type = match (ct_known, raw.media_type.as_deref()) {
        (Some(c), Some(m)) if c != m => {
            return Err(format!(
                "Content-Type {c} does not match the manifest's mediaType {m}"
            ))
        }
        (Some(c), _) => c.to_string(),
        (None, Some(m)) if SUPPORTED_MANIFEST_TYPES.contains(&m) => m.to_string(),
        (None, Some(m)) => return Err(format!("unsupported manifest media type {m}")),
        (None, None) => match ct {
            Some(c) if c != "application/json" && c != "application/octet-stream" => {
                return Err(format!("unsupported manifest media type {c}"))
            }
            // No type given anywhere: infer the OCI type from the shape.
            _ if raw.manifests.is_some() => OCI_INDEX.to_string(),
            _ if raw.config.is_some() => OCI_MANIFEST.to_string(),
            _ => return Err("cannot determine the manifest media type".to_string()),
        },
    };
    if raw.schema_version != Some(2) {
        return Err("schemaVersion must be 2".to_string());
    }
    let is_index = media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST;
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    if is_index {
        let manifests = raw
            .manifests
            .as_ref()
            .ok_or("index has no manifests array")?;
        for (i, m) in manifests.iter().enumerate() {
            children.push(descriptor_digest(m, &format!("manifests[{i}]"))?);
        }
    } else {
        let config = raw
            .config
            .as_ref()
            .ok_or("image manifest has no config descriptor")?;
        blobs.push(descriptor_digest(config, "config")?);
        let layers = raw
            .layers
            .as_ref()
            .ok_or("image manifest has no layers array")?;
        for (i, l) in layers.iter().enumerate() {
            let d = descriptor_digest(l, &format!("layers[{i}]"))?;
            if !is_foreign(l) {
                blobs.push(d);
            }
        }
    }
    let subject = match &raw.subject {
        Some(s) => Some(descriptor_digest(s, "subject")?),
        None => None,
    };
    blobs.sort();
    blobs.dedup();
    Ok(Parsed {
        media_type,
        blobs,
        children,
        subject,
    })
}

/// Everything a stored manifest references, for garbage collection.
#[derive(Debug, Default)]
pub struct References {
    /// Config and layer blobs.
    pub blobs: Vec<Digest>,
    /// Child manifests (index entries).
    pub children: Vec<Digest>,
    /// The `subject` manifest.
    pub subject: Option<Digest>,
}

/// Parses a stored manifest's references. Unparseable digests are skipped.
pub fn references(body: &[u8]) -> Result<References, serde_json::Error> {
    let raw: RawManifest = serde_json::from_slice(body)?;
    let parse = |d: &RawDescriptor| d.digest.parse::<Digest>().ok();
    let mut blobs: Vec<Digest> = raw.config.iter().filter_map(parse).collect();
    blobs.extend(raw.layers.iter().flatten().filter_map(parse));
    Ok(References {
        blobs,
        children: raw.manifests.iter().flatten().filter_map(parse).collect(),
        subject: raw.subject.as_ref().and_then(parse),
    })
}

/// The descriptor of a referrer as listed by the referrers API.
pub fn referrer_descriptor(
    media_type: &str,
    digest: &Digest,
    body: &[u8],
) -> Result<Value, serde_json::Error> {
    let raw: RawManifest = serde_json::from_slice(body)?;
    let mut desc = Map::new();
    desc.insert("mediaType".into(), Value::from(media_type));
    desc.insert("digest".into(), Value::from(digest.to_string()));
    desc.insert("size".into(), Value::from(body.len() as u64));
    let artifact_type = raw.artifact_type.filter(|a| !a.is_empty()).or_else(|| {
        if raw.manifests.is_none() {
            raw.config.and_then(|c| c.media_type)
        } else {
            None
        }
    });
    if let Some(a) = artifact_type {
        desc.insert("artifactType".into(), Value::from(a));
    }
    if let Some(ann) = raw.annotations.filter(|a| !a.is_empty()) {
        desc.insert("annotations".into(), Value::Object(ann));
    }
    Ok(Value::Object(desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::of(s.as_bytes()).to_string()
    }

    #[test]
    fn parses_oci_manifest_with_subject() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d("c"), "size": 2},
            "layers": [{"mediaType": "x", "digest": d("l"), "size": 1}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d("s"), "size": 3},
        });
        let p = parse(Some(OCI_MANIFEST), body.to_string().as_bytes()).unwrap();
        assert!(p.children.is_empty());
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.subject, Some(Digest::of(b"s")));
    }

    #[test]
    fn rejects_bad_manifests() {
        let ok_cfg = serde_json::json!({"mediaType": "x", "digest": d("c"), "size": 2});
        let cases = [
            serde_json::json!({"schemaVersion": 1, "mediaType": OCI_MANIFEST, "config": ok_cfg, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX}),
            serde_json::json!({"schemaVersion": 2, "mediaType": "text/plain", "config": ok_cfg, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": "sha256:zz", "size": 1}, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": d("c"), "size": -1}, "layers": []}),
        ];
        for c in cases {
            assert!(parse(None, c.to_string().as_bytes()).is_err(), "{c}");
        }
        assert!(parse(None, b"not json").is_err());
        // Content-Type and mediaType disagree.
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": ok_cfg, "layers": []});
        assert!(parse(Some(OCI_INDEX), m.to_string().as_bytes()).is_err());
        assert!(parse(
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            m.to_string().as_bytes()
        )
        .is_ok());
    }

    #[test]
    fn referrer_descriptor_artifact_type_fallback() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/x.cfg", "digest": d("c"), "size": 2},
            "layers": [],
            "annotations": {"a": "b"}
        })
        .to_string();
        let v = referrer_descriptor(OCI_MANIFEST, &Digest::of(body.as_bytes()), body.as_bytes())
            .unwrap();
        assert_eq!(v["artifactType"], "application/x.cfg");
        assert_eq!(v["annotations"]["a"], "b");
        assert_eq!(v["size"], body.len() as u64);
    }
}
