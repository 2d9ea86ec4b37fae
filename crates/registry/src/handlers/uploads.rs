//! Blob uploads: monolithic, chunked and resumable sessions, and
//! cross-repository mounts.

use std::fs::{File, OpenOptions};

use sha2::Digest as _;

use super::blobs::blob_created;
use super::*;
use crate::body::Sink;
use crate::storage::is_valid_upload_id;

/// Parses an upload `Content-Range` (`<start>-<end>`, inclusive; a
/// `bytes ` prefix and `/<total>` suffix are tolerated).
pub(super) fn parse_content_range(v: &HeaderValue) -> Option<(u64, u64)> {
    let s = v.to_str().ok()?.trim();
    let s = s
        .strip_prefix("bytes ")
        .or_else(|| s.strip_prefix("bytes="))
        .unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
    (a <= b).then_some((a, b))
}

pub(super) fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

pub(super) fn upload_headers(name: &str, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("docker-upload-uuid", id.to_string()),
        ("range", range_value(size)),
        ("content-length", "0".into()),
    ]
}

pub(super) fn upload_unknown(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        "blob upload unknown to registry",
    )
    .with_detail(json!({ "uuid": id }))
}

pub(super) fn range_invalid(name: &str, id: &str, size: u64, why: &str) -> ApiError {
    let mut e = ApiError::new(ErrorCode::BlobUploadInvalid, why)
        .with_status(StatusCode::RANGE_NOT_SATISFIABLE);
    for (k, v) in upload_headers(name, id, size) {
        if k != "content-length" {
            e = e.with_header(k, v);
        }
    }
    e
}

pub(super) async fn start_upload(
    state: &AppState,
    name: String,
    q: &Query,
    access: &Access,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    if let Some(alg) = q.get("digest-algorithm") {
        if alg != "sha256" {
            return Err(
                ApiError::new(ErrorCode::DigestInvalid, "unsupported digest algorithm")
                    .with_detail(json!({ "algorithm": alg })),
            );
        }
    }
    if let Some(m) = q.get("mount") {
        let digest = parse_digest(m)?;
        // With tokens, mounting needs pull access to the source repository;
        // without it the client just uploads the blob.
        let from = q
            .get("from")
            .filter(|f| is_valid_repository_name(f) && access.can_pull(f));
        if let Some(from) = from {
            let (from, repo) = (from.to_string(), name.clone());
            let mounted = blocking(state, move |s| {
                if s.repo_blob_size(&from, &digest)?.is_some() {
                    s.link_blob(&repo, &digest)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            })
            .await?;
            if mounted {
                tracing::info!(repo = %name, %digest, "blob mounted");
                return blob_created(&name, &digest);
            }
        }
        // Not mountable: fall back to a regular upload session.
    } else if let Some(d) = q.get("digest") {
        let digest = parse_digest(d)?;
        return monolithic_upload(state, name, digest, req).await;
    }
    let repo = name.clone();
    let id = blocking(state, move |s| s.create_upload(&repo)).await?;
    tracing::debug!(repo = %name, upload = %id, "upload started");
    reply(
        StatusCode::ACCEPTED,
        &upload_headers(&name, &id, 0),
        RespBody::Empty,
    )
}

pub(super) async fn monolithic_upload(
    state: &AppState,
    name: String,
    digest: Digest,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let max = state.max_blob_size;
    let declared = content_length(req.headers())?;
    if declared.is_some_and(|l| l > max) {
        return Err(too_large("blob", max));
    }
    let (tmp, file) = blocking(state, |s| s.temp_file()).await?;
    let mut sink = Sink::new(file, Sha256::new());
    let copied = sink
        .copy_body(req.into_body(), max, state.body_idle_timeout)
        .await;
    let remove_tmp = |tmp: std::path::PathBuf| async move {
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(tmp)).await;
    };
    if let Err(e) = copied {
        sink.abort().await;
        remove_tmp(tmp).await;
        return Err(sink_error(e, "blob", max));
    }
    let (file, hasher, n) = match sink.finish(false).await {
        Ok(v) => v,
        Err(e) => {
            remove_tmp(tmp).await;
            return Err(ApiError::internal(&e));
        }
    };
    if declared.is_some_and(|l| l != n) {
        remove_tmp(tmp).await;
        return Err(ApiError::new(
            ErrorCode::SizeInvalid,
            "body length does not match Content-Length",
        ));
    }
    let computed = Digest::from_sha256(hasher.finalize().into());
    if computed != digest {
        remove_tmp(tmp).await;
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "provided digest did not match uploaded content",
        )
        .with_detail(json!({ "expected": digest.to_string(), "computed": computed.to_string() })));
    }
    let repo = name.clone();
    blocking(state, move |s| {
        if let Err(e) = file.sync_all() {
            let _ = std::fs::remove_file(&tmp);
            return Err(StorageError::io("fsync", &tmp)(e));
        }
        drop(file);
        s.commit_blob(&tmp, &digest)?;
        s.link_blob(&repo, &digest)
    })
    .await?;
    tracing::info!(repo = %name, %digest, size = n, "blob uploaded");
    blob_created(&name, &digest)
}

/// Locks an upload session and returns its current size.
pub(super) async fn lock_session(
    state: &AppState,
    name: &str,
    id: &str,
) -> Result<(tokio::sync::OwnedMutexGuard<UploadHash>, u64), ApiError> {
    if !is_valid_upload_id(id) {
        return Err(upload_unknown(id));
    }
    let guard = state.upload_lock(id).lock_owned().await;
    let sid = id.to_string();
    match blocking(state, move |s| s.upload_status(&sid)).await? {
        Some((info, size)) if info.repo == name => Ok((guard, size)),
        Some(_) => Err(upload_unknown(id)),
        None => {
            drop(guard);
            state.forget_upload(id);
            Err(upload_unknown(id))
        }
    }
}

/// The hash of the first `size` bytes of the session's data.
pub(super) async fn session_hasher(
    state: &AppState,
    id: &str,
    h: &mut UploadHash,
    size: u64,
) -> Result<Sha256, ApiError> {
    if let Some((off, hasher)) = &h.state {
        if *off == size {
            return Ok(hasher.clone());
        }
    }
    let path = state.storage.upload_data_path(id);
    let hasher = blocking_io(move || {
        use std::io::Read;
        let f = File::open(&path)?;
        let mut hasher = Sha256::new();
        io::copy(&mut f.take(size), &mut hasher)?;
        Ok(hasher)
    })
    .await?;
    h.state = Some((size, hasher.clone()));
    Ok(hasher)
}

/// Appends the request body to the session's data (checking any
/// `Content-Range`), atomically per request: on failure the data is cut
/// back to `size`. Returns the new size.
pub(super) async fn append_chunk(
    state: &AppState,
    name: &str,
    id: &str,
    h: &mut UploadHash,
    size: u64,
    req: Request<Incoming>,
) -> Result<u64, ApiError> {
    let max = state.max_blob_size;
    let declared = content_length(req.headers())?;
    if let Some(cr) = req.headers().get(header::CONTENT_RANGE) {
        let Some((start, end)) = parse_content_range(cr) else {
            return Err(range_invalid(name, id, size, "malformed Content-Range"));
        };
        if start != size {
            return Err(range_invalid(name, id, size, "chunk out of order"));
        }
        if declared.is_some_and(|l| l != end - start + 1) {
            return Err(range_invalid(
                name,
                id,
                size,
                "Content-Range does not match Content-Length",
            ));
        }
    }
    if declared.is_some_and(|l| size.saturating_add(l) > max) {
        return Err(too_large("blob", max));
    }
    if declared == Some(0) {
        return Ok(size);
    }
    let hasher = session_hasher(state, id, h, size).await?;
    let path = state.storage.upload_data_path(id);
    let p = path.clone();
    let file = blocking_io(move || OpenOptions::new().append(true).open(&p)).await?;
    let mut sink = Sink::new(file, hasher);
    let copied = sink
        .copy_body(req.into_body(), max - size, state.body_idle_timeout)
        .await;
    let result = match copied {
        Ok(()) => sink.finish(false).await.map_err(SinkError::Io),
        Err(e) => {
            sink.abort().await;
            Err(e)
        }
    };
    let failure = match result {
        Ok((_, hasher, n)) if declared.is_none_or(|l| l == n) => {
            h.state = Some((size + n, hasher));
            return Ok(size + n);
        }
        Ok(_) => ApiError::new(
            ErrorCode::SizeInvalid,
            "body length does not match Content-Length",
        ),
        Err(e) => sink_error(e, "blob", max),
    };
    // Roll the session back to where this request started.
    blocking_io(move || OpenOptions::new().write(true).open(&path)?.set_len(size)).await?;
    Err(failure)
}

pub(super) async fn upload_status(
    state: &AppState,
    name: String,
    id: String,
) -> Result<Resp, ApiError> {
    let (_guard, size) = lock_session(state, &name, &id).await?;
    reply(
        StatusCode::NO_CONTENT,
        &upload_headers(&name, &id, size),
        RespBody::Empty,
    )
}

pub(super) async fn patch_upload(
    state: &AppState,
    name: String,
    id: String,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (mut guard, size) = lock_session(state, &name, &id).await?;
    let new_size = append_chunk(state, &name, &id, &mut guard, size, req).await?;
    reply(
        StatusCode::ACCEPTED,
        &upload_headers(&name, &id, new_size),
        RespBody::Empty,
    )
}

pub(super) async fn finish_upload(
    state: &AppState,
    name: String,
    id: String,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let digest = match q.get("digest") {
        Some(d) => parse_digest(d)?,
        None => {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                "digest query parameter required",
            ))
        }
    };
    let (mut guard, size) = lock_session(state, &name, &id).await?;
    let size = append_chunk(state, &name, &id, &mut guard, size, req).await?;
    let hasher = session_hasher(state, &id, &mut guard, size).await?;
    let computed = Digest::from_sha256(hasher.finalize().into());
    let sid = id.clone();
    if computed != digest {
        blocking(state, move |s| s.delete_upload(&sid)).await?;
        drop(guard);
        state.forget_upload(&id);
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "provided digest did not match uploaded content",
        )
        .with_detail(json!({ "expected": digest.to_string(), "computed": computed.to_string() })));
    }
    let repo = name.clone();
    blocking(state, move |s| {
        let data = s.upload_data_path(&sid);
        File::open(&data)
            .and_then(|f| f.sync_all())
            .map_err(StorageError::io("fsync", &data))?;
        s.commit_blob(&data, &digest)?;
        s.link_blob(&repo, &digest)?;
        s.delete_upload(&sid)
    })
    .await?;
    drop(guard);
    state.forget_upload(&id);
    tracing::info!(repo = %name, %digest, size, "blob upload completed");
    blob_created(&name, &digest)
}

pub(super) async fn cancel_upload(
    state: &AppState,
    name: String,
    id: String,
) -> Result<Resp, ApiError> {
    let (guard, _) = lock_session(state, &name, &id).await?;
    let sid = id.clone();
    blocking(state, move |s| s.delete_upload(&sid)).await?;
    drop(guard);
    state.forget_upload(&id);
    reply(
        StatusCode::NO_CONTENT,
        &[("content-length", "0".into())],
        RespBody::Empty,
    )
}
