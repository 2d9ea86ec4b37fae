//! Blob GET/HEAD (with ranges) and DELETE.

use std::fs::File;

use super::*;
use crate::body::stream_file;

/// A `Range` request header evaluated against a blob's size.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RangeSpec {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Evaluates a `Range` request header against a blob of `size` bytes.
/// Only single byte ranges are honoured; anything else serves the whole blob.
pub(super) fn parse_range(h: Option<&HeaderValue>, size: u64) -> RangeSpec {
    let Some(spec) = h.and_then(|v| v.to_str().ok()) else {
        return RangeSpec::Full;
    };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full; // multiple ranges: serve everything
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Full;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Partial(size.saturating_sub(n), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Partial(start, end.min(size - 1))
}

pub(super) fn blob_unknown(d: &Digest) -> ApiError {
    ApiError::new(ErrorCode::BlobUnknown, "blob unknown to registry")
        .with_detail(json!({ "digest": d.to_string() }))
}

pub(super) async fn get_blob(
    state: &AppState,
    name: String,
    digest: Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Resp, ApiError> {
    let range = headers.get(header::RANGE).cloned();
    let repo = name;
    let opened = blocking(state, move |s| {
        if s.repo_blob_size(&repo, &digest)?.is_none() {
            return Ok(None);
        }
        if head {
            return Ok(s.blob_size(&digest)?.map(|n| (None, n)));
        }
        let path = s.blob_path(&digest);
        match File::open(&path) {
            Ok(f) => {
                let len = f.metadata().map_err(StorageError::io("stat", &path))?.len();
                Ok(Some((Some(f), len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("open", &path)(e)),
        }
    })
    .await?;
    let Some((file, size)) = opened else {
        return Err(blob_unknown(&digest));
    };
    let d = digest.to_string();
    let mut hdrs = vec![
        ("content-type", "application/octet-stream".to_string()),
        ("docker-content-digest", d.clone()),
        ("etag", format!("\"{d}\"")),
        ("accept-ranges", "bytes".to_string()),
        ("cache-control", "max-age=31536000".to_string()),
    ];
    let Some(file) = file else {
        hdrs.push(("content-length", size.to_string()));
        return reply(StatusCode::OK, &hdrs, RespBody::Empty);
    };
    match parse_range(range.as_ref(), size) {
        RangeSpec::Full => {
            hdrs.push(("content-length", size.to_string()));
            reply(StatusCode::OK, &hdrs, stream_file(file, 0, size))
        }
        RangeSpec::Partial(a, b) => {
            let len = b - a + 1;
            hdrs.push(("content-length", len.to_string()));
            hdrs.push(("content-range", format!("bytes {a}-{b}/{size}")));
            reply(
                StatusCode::PARTIAL_CONTENT,
                &hdrs,
                stream_file(file, a, len),
            )
        }
        RangeSpec::Unsatisfiable => Err(ApiError::new(
            ErrorCode::BlobUnknown,
            "requested range not satisfiable",
        )
        .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
        .with_header("content-range", format!("bytes */{size}"))),
    }
}

pub(super) async fn delete_blob(
    state: &AppState,
    name: String,
    digest: Digest,
) -> Result<Resp, ApiError> {
    let repo = name.clone();
    if !blocking(state, move |s| s.unlink_blob(&repo, &digest)).await? {
        return Err(blob_unknown(&digest));
    }
    tracing::info!(repo = %name, %digest, "blob unlinked");
    reply(
        StatusCode::ACCEPTED,
        &[
            ("content-length", "0".into()),
            ("docker-content-digest", digest.to_string()),
        ],
        RespBody::Empty,
    )
}

pub(super) fn blob_created(name: &str, digest: &Digest) -> Result<Resp, ApiError> {
    reply(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
        RespBody::Empty,
    )
}
