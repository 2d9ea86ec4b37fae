//! Manifest GET/HEAD/PUT/DELETE and the referrers API.

use serde_json::Value;

use super::*;
use crate::body::read_limited;
use crate::error::ErrorEntry;
use crate::manifest::{self, OCI_INDEX};
use crate::storage::ManifestRecord;

pub(super) fn manifest_unknown(reference: &Reference) -> ApiError {
    let detail = match reference {
        Reference::Tag(t) => json!({ "tag": t }),
        Reference::Digest(d) => json!({ "digest": d.to_string() }),
    };
    ApiError::new(ErrorCode::ManifestUnknown, "manifest unknown").with_detail(detail)
}

pub(super) async fn get_manifest(
    state: &AppState,
    name: String,
    reference: Reference,
    head: bool,
) -> Result<Resp, ApiError> {
    let repo = name.clone();
    let r = reference.clone();
    let found = blocking(state, move |s| {
        let digest = match &r {
            Reference::Digest(d) => *d,
            Reference::Tag(t) => match s.resolve_tag(&repo, t)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        let Some(rec) = s.manifest_record(&repo, &digest)? else {
            return Ok(None);
        };
        let body = if head {
            s.blob_size(&digest)?.map(|n| (n, Vec::new()))
        } else {
            s.read_blob(&digest)?.map(|b| (b.len() as u64, b))
        };
        Ok(body.map(|(len, b)| (rec, len, b)))
    })
    .await?;
    let Some((rec, len, body)) = found else {
        let repo = name.clone();
        if !blocking(state, move |s| Ok(s.repo_exists(&repo))).await? {
            return Err(name_unknown(&name));
        }
        return Err(manifest_unknown(&reference));
    };
    let digest = rec.digest.to_string();
    reply(
        StatusCode::OK,
        &[
            ("content-type", rec.media_type.clone()),
            ("content-length", len.to_string()),
            ("docker-content-digest", digest.clone()),
            ("etag", format!("\"{digest}\"")),
        ],
        if head {
            RespBody::Empty
        } else {
            RespBody::full(body)
        },
    )
}

pub(super) async fn put_manifest(
    state: &AppState,
    name: String,
    reference: Reference,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let limit = state.max_manifest_size;
    if content_length(req.headers())?.is_some_and(|l| l > limit) {
        return Err(too_large("manifest", limit));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(req.into_body(), limit, state.body_idle_timeout)
        .await
        .map_err(|e| match e {
            SinkError::Client(_) => {
                ApiError::new(ErrorCode::ManifestInvalid, "request body incomplete")
            }
            other => sink_error(other, "manifest", limit),
        })?;
    let parsed = manifest::parse(content_type.as_deref(), &body).map_err(|reason| {
        ApiError::new(ErrorCode::ManifestInvalid, "manifest invalid")
            .with_detail(json!({ "reason": reason }))
    })?;
    let digest = Digest::of(&body);
    let mut tags = Vec::new();
    match &reference {
        Reference::Digest(d) if *d != digest => {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                "manifest digest does not match the content",
            )
            .with_detail(json!({ "expected": d.to_string(), "computed": digest.to_string() })))
        }
        Reference::Digest(_) => {
            for t in q.all("tag") {
                if !is_valid_tag(t) {
                    return Err(ApiError::new(ErrorCode::TagInvalid, "invalid tag")
                        .with_detail(json!({ "tag": t })));
                }
                tags.push(t.to_string());
            }
        }
        Reference::Tag(t) => tags.push(t.clone()),
    }

    // Every referenced blob and child manifest must exist in this repository.
    let repo = name.clone();
    let (blobs, children) = (parsed.blobs.clone(), parsed.children.clone());
    let missing = blocking(state, move |s| {
        let mut missing = Vec::new();
        for b in &blobs {
            if s.repo_blob_size(&repo, b)?.is_none() {
                missing.push(*b);
            }
        }
        for c in &children {
            if s.manifest_record(&repo, c)?.is_none() || s.blob_size(c)?.is_none() {
                missing.push(*c);
            }
        }
        Ok(missing)
    })
    .await?;
    if !missing.is_empty() {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            errors: missing
                .iter()
                .map(|d| ErrorEntry {
                    code: ErrorCode::ManifestBlobUnknown,
                    message: "manifest references a blob or manifest unknown to the repository"
                        .into(),
                    detail: Some(json!({ "digest": d.to_string() })),
                })
                .collect(),
            headers: Vec::new(),
        });
    }

    let rec = ManifestRecord {
        digest,
        media_type: parsed.media_type.clone(),
        subject: parsed.subject,
    };
    let repo = name.clone();
    let store_tags = tags.clone();
    blocking(state, move |s| {
        if s.blob_size(&digest)?.is_none() {
            let (tmp, mut f) = s.temp_file()?;
            let written = (|| {
                use std::io::Write;
                f.write_all(&body)?;
                f.sync_all()
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(StorageError::io("write manifest", &tmp)(e));
            }
            drop(f);
            s.commit_blob(&tmp, &digest)?;
        }
        s.put_manifest(&repo, &rec, &store_tags)
    })
    .await?;
    tracing::info!(repo = %name, %digest, media_type = %parsed.media_type, "manifest pushed");

    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_string()),
    ];
    if let Some(s) = parsed.subject {
        headers.push(("oci-subject", s.to_string()));
    }
    if matches!(reference, Reference::Digest(_)) && !tags.is_empty() {
        headers.push(("oci-tag", tags.join(", ")));
    }
    reply(StatusCode::CREATED, &headers, RespBody::Empty)
}

pub(super) async fn delete_manifest(
    state: &AppState,
    name: String,
    reference: Reference,
) -> Result<Resp, ApiError> {
    let repo = name.clone();
    let r = reference.clone();
    let (deleted, exists) = blocking(state, move |s| {
        let deleted = match &r {
            Reference::Tag(t) => s.delete_tag(&repo, t)?,
            Reference::Digest(d) => s.delete_manifest(&repo, d)?,
        };
        Ok((deleted, s.repo_exists(&repo)))
    })
    .await?;
    if !deleted {
        return Err(if exists {
            manifest_unknown(&reference)
        } else {
            name_unknown(&name)
        });
    }
    tracing::info!(repo = %name, ?reference, "manifest deleted");
    reply(
        StatusCode::ACCEPTED,
        &[("content-length", "0".into())],
        RespBody::Empty,
    )
}

pub(super) async fn referrers(
    state: &AppState,
    name: String,
    digest: &str,
    q: &Query,
) -> Result<Resp, ApiError> {
    let subject = parse_digest(digest)?;
    let filter = q
        .get("artifactType")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let repo = name;
    let mut descs = blocking(state, move |s| {
        let mut out = Vec::new();
        for d in s.list_referrers(&repo, &subject)? {
            let Some(rec) = s.manifest_record(&repo, &d)? else {
                continue;
            };
            let Some(body) = s.read_blob(&d)? else {
                continue;
            };
            match manifest::referrer_descriptor(&rec.media_type, &d, &body) {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(digest = %d, error = %e, "stored referrer is not valid JSON")
                }
            }
        }
        Ok(out)
    })
    .await?;
    let mut headers = vec![("content-type", OCI_INDEX.to_string())];
    if let Some(f) = &filter {
        descs.retain(|d| d.get("artifactType").and_then(Value::as_str) == Some(f.as_str()));
        headers.push(("oci-filters-applied", "artifactType".to_string()));
    }
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descs,
    }))
    .map_err(|e| ApiError::internal(&e))?;
    headers.push(("content-length", body.len().to_string()));
    reply(StatusCode::OK, &headers, RespBody::full(body))
}
