//! HTTP routing and the distribution API handlers: this module routes a
//! request and holds the shared helpers; the handlers live in `blobs`,
//! `uploads`, `manifests` and `listing`.

mod blobs;
mod listing;
mod manifests;
mod token;
mod uploads;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use sha2::Sha256;

use crate::auth::{Htpasswd, REALM};
use crate::body::{RespBody, SinkError};
use crate::error::{ApiError, ErrorCode, StorageError};
use crate::name::{is_valid_repository_name, is_valid_tag, Digest, DigestError, Reference};
use crate::storage::Storage;
use crate::token::TokenIssuer;

use blobs::{delete_blob, get_blob};
use listing::{catalog, tags_list};
use manifests::{delete_manifest, get_manifest, put_manifest, referrers};
use token::{token_endpoint, token_gate, Access};
use uploads::{cancel_upload, finish_upload, patch_upload, start_upload, upload_status};

pub(crate) type Resp = Response<RespBody>;

/// Incremental hash of an upload session's data, valid for its first
/// `.0` bytes. Lost on restart, in which case the data is re-hashed.
#[derive(Default)]
pub(crate) struct UploadHash {
    state: Option<(u64, Sha256)>,
}

/// Everything the handlers share.
pub(crate) struct AppState {
    pub storage: Storage,
    pub max_blob_size: u64,
    pub max_manifest_size: u64,
    pub read_only: bool,
    pub delete_enabled: bool,
    pub body_idle_timeout: std::time::Duration,
    /// htpasswd users (Basic and token modes).
    pub auth: Option<Arc<Htpasswd>>,
    /// Token mode: signs and checks bearer tokens.
    pub token: Option<Arc<TokenIssuer>>,
    /// Token mode: configured challenge realm.
    pub token_realm: Option<String>,
    /// Whether the listener speaks TLS (for the default realm's scheme).
    pub tls: bool,
    /// The bound address (default realm when a request has no usable Host).
    pub local_addr: std::net::SocketAddr,
    pub uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<UploadHash>>>>,
}

impl AppState {
    /// "none", "basic" or "token", for logs.
    pub fn auth_mode(&self) -> &'static str {
        match (&self.auth, &self.token) {
            (None, _) => "none",
            (Some(_), None) => "basic",
            (Some(_), Some(_)) => "token",
        }
    }

    /// Forgets the in-memory state of an upload session.
    pub fn forget_upload(&self, id: &str) {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn upload_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<UploadHash>> {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }
}

/// Entry point for every request.
pub(crate) async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = if method == Method::GET || method == Method::HEAD {
        dispatch(state, req).await
    } else {
        // Writes run in their own task: if the connection dies, hyper drops
        // this future, but the handler still runs to the end and cleans up
        // (rolls back a chunk, removes a temporary file, waits for its
        // in-flight disk write) instead of stopping at an arbitrary await.
        tokio::spawn(dispatch(state, req))
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(&e)))
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(e),
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    let status = resp.status();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), elapsed_ms, "request failed");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms, "request");
    }
    Ok(resp)
}

fn error_response(e: ApiError) -> Resp {
    let body = e.body();
    let mut b = Response::builder()
        .status(e.status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len());
    for (k, v) in &e.headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            b = b.header(*k, v);
        }
    }
    b.body(RespBody::full(body)).unwrap_or_else(|_| {
        let mut r = Response::new(RespBody::Empty);
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// Builds a response; header values come from validated input only.
fn reply(status: StatusCode, headers: &[(&str, String)], body: RespBody) -> Result<Resp, ApiError> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(body).map_err(|e| ApiError::internal(&e))
}

async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
{
    let st = state.storage.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(ApiError::from)
}

async fn blocking_io<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

// -------------------------------------------------------------------
// Routing
// -------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::Unsupported, "unknown endpoint").with_status(StatusCode::NOT_FOUND)
}

fn check_name(segs: &[&str]) -> Result<String, ApiError> {
    let name = segs.join("/");
    if is_valid_repository_name(&name) {
        Ok(name)
    } else {
        Err(
            ApiError::new(ErrorCode::NameInvalid, "invalid repository name")
                .with_detail(json!({ "name": name })),
        )
    }
}

/// Maps the part of the path after `/v2/` to a route.
fn parse_route(rest: &str) -> Result<Route, ApiError> {
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        return Ok(Route::Tags(check_name(&segs[..n - 2])?));
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let name = check_name(&segs[..n - 3])?;
        return Ok(if segs[n - 1].is_empty() {
            Route::UploadStart(name)
        } else {
            Route::Upload(name, segs[n - 1].to_string())
        });
    }
    if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
        return Ok(Route::UploadStart(check_name(&segs[..n - 2])?));
    }
    if n >= 3 {
        let last = segs[n - 1].to_string();
        match segs[n - 2] {
            "blobs" => return Ok(Route::Blob(check_name(&segs[..n - 2])?, last)),
            "manifests" => return Ok(Route::Manifest(check_name(&segs[..n - 2])?, last)),
            "referrers" => return Ok(Route::Referrers(check_name(&segs[..n - 2])?, last)),
            _ => {}
        }
    }
    Err(not_found())
}

fn unauthorized() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "authentication required")
        .with_header("www-authenticate", format!("Basic realm=\"{REALM}\""))
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::Unsupported,
        "method not allowed on this endpoint",
    )
}

async fn dispatch(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let state = &state;
    let path = req.uri().path().to_string();
    if path == "/token" {
        return match (&state.token, &state.auth) {
            (Some(issuer), Some(users)) => token_endpoint(issuer, users, &req).await,
            _ => Err(not_found()),
        };
    }
    let rest = match path.strip_prefix("/v2") {
        Some("") => "",
        Some(r) => r.strip_prefix('/').ok_or_else(not_found)?,
        None => return Err(not_found()),
    };
    if let (Some(auth), None) = (&state.auth, &state.token) {
        let hv = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if auth.check(hv).await.is_none() {
            return Err(unauthorized());
        }
    }
    let route = parse_route(rest)?;
    let method = req.method().clone();
    let access = match &state.token {
        Some(issuer) => token_gate(state, issuer, &req, &route, &method)?,
        None => Access::Unrestricted,
    };
    let reading = method == Method::GET || method == Method::HEAD;
    if state.read_only && !reading {
        return Err(ApiError::new(
            ErrorCode::Denied,
            "registry is in read-only mode",
        ));
    }
    let deletes_content = matches!(route, Route::Manifest(..) | Route::Blob(..));
    if method == Method::DELETE && deletes_content && !state.delete_enabled {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            "deletion is disabled",
        ));
    }
    let query = Query::parse(req.uri().query());
    match route {
        Route::Base => match method {
            Method::GET | Method::HEAD => reply(
                StatusCode::OK,
                &[
                    ("content-type", "application/json".into()),
                    ("content-length", "2".into()),
                ],
                if method == Method::GET {
                    RespBody::full(&b"{}"[..])
                } else {
                    RespBody::Empty
                },
            ),
            _ => Err(method_not_allowed()),
        },
        Route::Catalog => match method {
            Method::GET => catalog(state, &query).await,
            _ => Err(method_not_allowed()),
        },
        Route::Tags(name) => match method {
            Method::GET => tags_list(state, name, &query).await,
            _ => Err(method_not_allowed()),
        },
        Route::Manifest(name, reference) => {
            let reference = parse_reference(&reference)?;
            match method {
                Method::GET | Method::HEAD => {
                    get_manifest(state, name, reference, method == Method::HEAD).await
                }
                Method::PUT => put_manifest(state, name, reference, &query, req).await,
                Method::DELETE => delete_manifest(state, name, reference).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Blob(name, digest) => {
            let digest = parse_digest(&digest)?;
            match method {
                Method::GET | Method::HEAD => {
                    get_blob(state, name, digest, method == Method::HEAD, req.headers()).await
                }
                Method::DELETE => delete_blob(state, name, digest).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::UploadStart(name) => match method {
            Method::POST => start_upload(state, name, &query, &access, req).await,
            _ => Err(method_not_allowed()),
        },
        Route::Upload(name, id) => match method {
            Method::GET => upload_status(state, name, id).await,
            Method::PATCH => patch_upload(state, name, id, req).await,
            Method::PUT => finish_upload(state, name, id, &query, req).await,
            Method::DELETE => cancel_upload(state, name, id).await,
            _ => Err(method_not_allowed()),
        },
        Route::Referrers(name, digest) => match method {
            Method::GET => referrers(state, name, &digest, &query).await,
            _ => Err(method_not_allowed()),
        },
    }
}

// -------------------------------------------------------------------
// Request helpers
// -------------------------------------------------------------------

struct Query(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hexval = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let pairs = q
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(p), String::new()),
            })
            .collect();
        Query(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn digest_error(s: &str, e: DigestError) -> ApiError {
    ApiError::new(ErrorCode::DigestInvalid, e.to_string()).with_detail(json!({ "digest": s }))
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse().map_err(|e| digest_error(s, e))
}

fn parse_reference(s: &str) -> Result<Reference, ApiError> {
    if s.contains(':') {
        parse_digest(s).map(Reference::Digest)
    } else if is_valid_tag(s) {
        Ok(Reference::Tag(s.to_string()))
    } else {
        Err(ApiError::new(ErrorCode::TagInvalid, "invalid tag").with_detail(json!({ "tag": s })))
    }
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::new(ErrorCode::SizeInvalid, "invalid Content-Length")),
    }
}

fn too_large(what: &str, limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::SizeInvalid,
        format!("{what} exceeds the maximum size of {limit} bytes"),
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    .with_detail(json!({ "limit": limit }))
    // The body is left unread: do not try to reuse the connection.
    .with_header("connection", "close".to_string())
}

fn sink_error(e: SinkError, what: &str, limit: u64) -> ApiError {
    match e {
        SinkError::TooLarge => too_large(what, limit),
        SinkError::Client(e) => {
            tracing::debug!(error = %e, "request body incomplete");
            ApiError::new(ErrorCode::BlobUploadInvalid, "request body incomplete")
        }
        SinkError::Io(e) => ApiError::internal(&e),
        SinkError::Timeout => ApiError::new(
            ErrorCode::BlobUploadInvalid,
            "timed out waiting for request body",
        )
        .with_header("connection", "close".to_string()),
    }
}

fn name_unknown(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NameUnknown,
        "repository name not known to registry",
    )
    .with_detail(json!({ "name": name }))
}

#[cfg(test)]
mod tests {
    use super::blobs::{parse_range, RangeSpec};
    use super::listing::paginate;
    use super::uploads::parse_content_range;
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse_route("").unwrap(), Route::Base);
        assert_eq!(parse_route("_catalog").unwrap(), Route::Catalog);
        assert_eq!(
            parse_route("a/b/tags/list").unwrap(),
            Route::Tags("a/b".into())
        );
        assert_eq!(
            parse_route("a/blobs/uploads/").unwrap(),
            Route::UploadStart("a".into())
        );
        assert_eq!(
            parse_route("a/blobs/uploads").unwrap(),
            Route::UploadStart("a".into())
        );
        assert_eq!(
            parse_route("a/blobs/uploads/x").unwrap(),
            Route::Upload("a".into(), "x".into())
        );
        assert_eq!(
            parse_route("blobs/blobs/sha256:x").unwrap(),
            Route::Blob("blobs".into(), "sha256:x".into())
        );
        assert_eq!(
            parse_route("a/manifests/latest").unwrap(),
            Route::Manifest("a".into(), "latest".into())
        );
        let e = parse_route("../../etc/blobs/sha256:x").unwrap_err();
        assert_eq!(e.errors[0].code, ErrorCode::NameInvalid);
        let e = parse_route("a/../b/manifests/latest").unwrap_err();
        assert_eq!(e.errors[0].code, ErrorCode::NameInvalid);
        assert!(parse_route("a/b").is_err());
    }

    #[test]
    fn ranges() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(
            parse_range(Some(&v("bytes=0-4")), 10),
            RangeSpec::Partial(0, 4)
        );
        assert_eq!(
            parse_range(Some(&v("bytes=5-")), 10),
            RangeSpec::Partial(5, 9)
        );
        assert_eq!(
            parse_range(Some(&v("bytes=-3")), 10),
            RangeSpec::Partial(7, 9)
        );
        assert_eq!(
            parse_range(Some(&v("bytes=2-100")), 10),
            RangeSpec::Partial(2, 9)
        );
        assert_eq!(
            parse_range(Some(&v("bytes=10-")), 10),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(parse_range(Some(&v("bytes=5-2")), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some(&v("bytes=0-1,3-4")), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some(&v("items=0-1")), 10), RangeSpec::Full);
        assert_eq!(parse_content_range(&v("0-99")), Some((0, 99)));
        assert_eq!(parse_content_range(&v("bytes 100-199/*")), Some((100, 199)));
        assert_eq!(parse_content_range(&v("5-2")), None);
        assert_eq!(parse_content_range(&v("abc")), None);
    }

    #[test]
    fn pagination_and_query() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            paginate(items.clone(), Some(2), None),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            paginate(items.clone(), Some(2), Some("b")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(paginate(items.clone(), Some(0), None), (vec![], false));
        assert_eq!(paginate(items, None, Some("c")), (vec!["d".into()], false));
        let q = Query::parse(Some("mount=sha256%3Aab&from=a%2Fb&tag=1&tag=2&x"));
        assert_eq!(q.get("mount"), Some("sha256:ab"));
        assert_eq!(q.get("from"), Some("a/b"));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz+"), "%zz+");
    }
}
