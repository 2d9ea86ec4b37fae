//! berth-api: the Docker Engine API over HTTP/1.1 (unix socket, TCP, or TLS over TCP).
//!
//! A request flows: berthd accepts a connection and hands it to [`serve_connection`] → hyper parses it → [`route`]
//! strips an optional `/v1.NN` prefix and dispatches on method and path →
//! a handler in [`containers`] or [`images`] calls the engine → the engine's result
//! or error becomes docker's JSON (errors as `{"message": ...}` with docker's status).
//! Attach is a hijacked connection: `101 UPGRADED`, then raw bytes both ways.

// Handlers return a ready-made error response as their `Err`; it is built once per
// failed request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod body;
mod containers;
mod convert;
mod exec;
mod images;
mod networks;
mod system;
mod volumes;

use std::convert::Infallible;
use std::sync::Arc;

use berth_engine::{Engine, EngineError, ErrorKind};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

pub use body::Body;

/// The newest API version berth speaks, and the oldest it accepts.
pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";

/// Largest JSON request body accepted (docker's create bodies are a few KB).
const MAX_JSON_BODY: usize = 4 * 1024 * 1024;

pub type Resp = Response<Body>;

/// How long a client may take to send what it announced (dockerd's server has a
/// header timeout too). Long-lived responses (logs -f, events, attach) are not
/// affected: these bound only the reading of a request.
#[derive(Debug, Clone, Copy)]
pub struct ReadTimeouts {
    /// From the connection's first byte (or the previous response) to the end of
    /// the request's headers.
    pub headers: std::time::Duration,
    /// The longest pause within a request body.
    pub body_idle: std::time::Duration,
}

impl Default for ReadTimeouts {
    fn default() -> Self {
        ReadTimeouts {
            headers: std::time::Duration::from_secs(60),
            body_idle: std::time::Duration::from_secs(60),
        }
    }
}

/// Requests served so far: each one's number in its log span.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The body timeout of the running server, read by the body readers.
static READ_TIMEOUTS: std::sync::OnceLock<ReadTimeouts> = std::sync::OnceLock::new();

pub(crate) fn body_idle_limit() -> std::time::Duration {
    READ_TIMEOUTS.get().copied().unwrap_or_default().body_idle
}

/// Sets the request read timeouts of every connection served from now on (the
/// first call wins; a server has one setting).
pub fn set_read_timeouts(timeouts: ReadTimeouts) {
    let _ = READ_TIMEOUTS.get_or_init(|| timeouts);
}

/// Serves the API on one accepted connection until it closes. Any byte stream
/// will do: a unix socket, a TCP connection, or a TLS session over one (the
/// caller has authenticated the client by then); hijacked streams (attach,
/// exec) work over each.
pub async fn serve_connection<S>(engine: Arc<Engine>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let timeouts = READ_TIMEOUTS.get().copied().unwrap_or_default();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        use tracing::Instrument;
        let engine = engine.clone();
        // Every log line of a request carries its number, method and path.
        let span = tracing::info_span!(
            "request",
            id = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            method = %req.method(),
            path = %req.uri().path(),
        );
        async move { Ok::<_, Infallible>(route(engine, req).await) }.instrument(span)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeouts.headers)
        .max_buf_size(1024 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with error");
    }
}

pub(crate) struct Ctx {
    pub engine: Arc<Engine>,
    /// Query parameters in order; a key may repeat (`changes=...&changes=...`).
    pub query: Vec<(String, String)>,
}

impl Ctx {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.q(key),
            Some("1") | Some("true") | Some("True") | Some("yes")
        )
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Resp> {
        match self.q(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid value for {key}: {v:?}"),
                )
            }),
        }
    }
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Docker's error body.
pub(crate) fn error(status: StatusCode, message: &str) -> Resp {
    let body = serde_json::to_vec(&serde_json::json!({ "message": message })).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::full(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// The one table from the engine's error kinds to Docker's statuses. A failure
/// of the engine or the host (500) is logged with its whole cause chain; the
/// client gets docker's one-line message.
pub(crate) fn engine_error(e: EngineError) -> Resp {
    let status = match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotModified => return status_only(StatusCode::NOT_MODIFIED),
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => {
            tracing::error!(error = %e.chain(), "request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, &e.to_string())
}

pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            Response::builder()
                .status(status)
                .header("Content-Type", "application/json")
                .body(Body::full(body))
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(crate) fn status_only(status: StatusCode) -> Resp {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Reads a JSON request body (bounded); an empty body reads as `{}`.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Resp> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY);
    let bytes: Bytes = match tokio::time::timeout(body_idle_limit(), limited.collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("read request body: {e}"),
            ))
        }
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "read request body: the client sent no body within the time allowed",
            ))
        }
    };
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        bytes
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))
}

/// Splits `/v1.45/containers/x/json` into the version-less segments.
fn segments(path: &str) -> Result<Vec<String>, Resp> {
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    if let Some(first) = parts.first() {
        if let Some(v) = first.strip_prefix('v') {
            if v.split('.')
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                && v.contains('.')
            {
                if version_lt(v, MIN_API_VERSION) {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        &format!("client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"),
                    ));
                }
                parts.remove(0);
            }
        }
    }
    Ok(parts)
}

fn version_lt(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        s.split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a) < parse(b)
}

async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> Resp {
    let segs = match segments(req.uri().path()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ctx = Ctx {
        engine,
        query: parse_query(req.uri().query()),
    };
    let method = req.method().clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    tracing::debug!("request");
    let mut resp = match (&method, s.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => system::ping(),
        (&Method::GET, ["version"]) => system::version(&ctx),
        (&Method::GET, ["info"]) => system::info(&ctx),
        (&Method::GET, ["events"]) => system::events(&ctx),

        (&Method::POST, ["build"]) => images::build(&ctx, req).await,
        (&Method::POST, ["build", "prune"]) => images::build_prune(&ctx),
        (&Method::POST, ["commit"]) => containers::commit(&ctx, req).await,
        (&Method::POST, ["containers", "create"]) => containers::create(&ctx, req).await,
        (&Method::POST, ["containers", "prune"]) => containers::prune(&ctx).await,
        (&Method::POST, ["images", "prune"]) => images::prune(&ctx),
        (&Method::GET, ["images", "get"]) => images::save(&ctx, ctx.all("names")),
        (&Method::POST, ["images", "load"]) => images::load(&ctx, req).await,
        (&Method::GET, ["containers", "json"]) => containers::list(&ctx),
        (&Method::GET, ["containers", id, "json"]) => containers::inspect(&ctx, id),
        (&Method::POST, ["containers", id, "start"]) => containers::start(&ctx, id).await,
        (&Method::POST, ["containers", id, "stop"]) => containers::stop(&ctx, id).await,
        (&Method::POST, ["containers", id, "restart"]) => containers::restart(&ctx, id).await,
        (&Method::POST, ["containers", id, "kill"]) => containers::kill(&ctx, id).await,
        (&Method::POST, ["containers", id, "wait"]) => containers::wait(&ctx, id).await,
        (&Method::DELETE, ["containers", id]) => containers::remove(&ctx, id).await,
        (&Method::GET, ["containers", id, "logs"]) => containers::logs(&ctx, id),
        (&Method::POST, ["containers", id, "attach"]) => containers::attach(&ctx, id, req).await,
        (&Method::POST, ["containers", id, "resize"]) => containers::resize(&ctx, id).await,
        (&Method::GET, ["containers", id, "export"]) => containers::export(&ctx, id),
        (&Method::HEAD, ["containers", id, "archive"]) => containers::archive_head(&ctx, id).await,
        (&Method::GET, ["containers", id, "archive"]) => containers::archive_get(&ctx, id).await,
        (&Method::PUT, ["containers", id, "archive"]) => {
            containers::archive_put(&ctx, id, req).await
        }
        (&Method::POST, ["containers", id, "pause"]) => containers::pause(&ctx, id).await,
        (&Method::POST, ["containers", id, "unpause"]) => containers::unpause(&ctx, id).await,
        (&Method::POST, ["containers", id, "rename"]) => containers::rename(&ctx, id),
        (&Method::POST, ["containers", id, "update"]) => containers::update(&ctx, id, req).await,
        (&Method::GET, ["containers", id, "top"]) => containers::top(&ctx, id),
        (&Method::GET, ["containers", id, "changes"]) => containers::changes(&ctx, id),
        (&Method::GET, ["containers", id, "stats"]) => containers::stats(&ctx, id),
        (&Method::GET, ["system", "df"]) => system::disk_usage(&ctx),
        (&Method::POST, ["containers", id, "exec"]) => exec::create(&ctx, id, req).await,
        (&Method::POST, ["exec", id, "start"]) => exec::start(&ctx, id, req).await,
        (&Method::GET, ["exec", id, "json"]) => exec::inspect(&ctx, id),
        (&Method::POST, ["exec", id, "resize"]) => exec::resize(&ctx, id).await,

        (&Method::POST, ["networks", "create"]) => networks::create(&ctx, req).await,
        (&Method::POST, ["networks", "prune"]) => networks::prune(&ctx).await,
        (&Method::GET, ["networks"]) => networks::list(&ctx),
        (&Method::GET, ["networks", id]) => networks::inspect(&ctx, id),
        (&Method::DELETE, ["networks", id]) => networks::remove(&ctx, id).await,
        (&Method::POST, ["networks", id, "connect"]) => networks::connect(&ctx, id, req).await,
        (&Method::POST, ["networks", id, "disconnect"]) => {
            networks::disconnect(&ctx, id, req).await
        }
        (&Method::POST, ["volumes", "create"]) => volumes::create(&ctx, req).await,
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(&ctx),
        (&Method::GET, ["volumes"]) => volumes::list(&ctx),
        (&Method::GET, ["volumes", name]) => volumes::inspect(&ctx, name),
        (&Method::DELETE, ["volumes", name]) => volumes::remove(&ctx, name),

        (&Method::POST, ["images", "create"]) => images::create(&ctx, req).await,
        (&Method::GET, ["images", "json"]) => images::list(&ctx),
        (&Method::GET, ["images", rest @ .., "json"]) if !rest.is_empty() => {
            images::inspect(&ctx, &rest.join("/"))
        }
        (&Method::GET, ["images", rest @ .., "get"]) if !rest.is_empty() => {
            images::save(&ctx, vec![rest.join("/")])
        }
        (&Method::GET, ["images", rest @ .., "history"]) if !rest.is_empty() => {
            images::history(&ctx, &rest.join("/"))
        }
        (&Method::POST, ["images", rest @ .., "push"]) if !rest.is_empty() => {
            images::push(&ctx, &rest.join("/"), &req)
        }
        (&Method::POST, ["auth"]) => images::auth(&ctx, req).await,
        (&Method::POST, ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            images::tag(&ctx, &rest.join("/"))
        }
        (&Method::DELETE, ["images", rest @ ..]) if !rest.is_empty() => {
            images::remove(&ctx, &rest.join("/"))
        }

        _ => error(
            StatusCode::NOT_FOUND,
            &format!("page not found: {} {}", method, req.uri().path()),
        ),
    };
    let headers = resp.headers_mut();
    headers.insert(
        "Api-Version",
        hyper::header::HeaderValue::from_static(API_VERSION),
    );
    headers.insert(
        "Server",
        hyper::header::HeaderValue::from_static("berth/0.1 (linux)"),
    );
    headers.insert(
        "Docker-Experimental",
        hyper::header::HeaderValue::from_static("false"),
    );
    headers.insert("Ostype", hyper::header::HeaderValue::from_static("linux"));
    if method == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_is_stripped() {
        assert_eq!(
            segments("/v1.45/containers/json").unwrap(),
            vec!["containers", "json"]
        );
        assert_eq!(
            segments("/containers/json").unwrap(),
            vec!["containers", "json"]
        );
        assert!(segments("/v1.12/containers/json").is_err());
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some(
            "changes=CMD%20%5B%22sh%22%5D&x=a+b&bad=%zz&changes=ENV%20A%3Db",
        ));
        assert_eq!(q[0], ("changes".to_string(), "CMD [\"sh\"]".to_string()));
        assert_eq!(q[1].1, "a b");
        assert_eq!(q[2].1, "%zz");
        assert_eq!(q[3].1, "ENV A=b");
    }
}
