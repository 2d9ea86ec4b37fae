//! The CLI's client of the Docker Engine API: hyper's HTTP/1.1 client on a
//! unix socket, or over TCP and TLS (bridged to a socket pair by `transport`),
//! behind a blocking interface.
//!
//! The commands are blocking code (terminal, stdin, signal threads), so the
//! async side is kept in here: one single-threaded runtime drives the
//! connections while a caller waits on it. Each request gets its own
//! connection; the CLI makes only a handful per command.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The API version berth's CLI speaks (docker 26's).
const API_PREFIX: &str = "/v1.45";
/// What the build context is sent in, per chunk.
const UPLOAD_CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Cannot connect to the berth daemon at {host}. Is berthd running? ({source})")]
    Connect { host: String, source: io::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("invalid response from daemon: {0}")]
    Protocol(String),
    /// The daemon answered with an error status and docker's `{"message": ...}`.
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },
}

impl From<hyper::Error> for ClientError {
    fn from(e: hyper::Error) -> ClientError {
        ClientError::Protocol(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// The runtime that drives every connection of this process: on the thread of
/// whichever caller is waiting (`block_on` from several threads shares it), so
/// that a command costs no extra thread.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                // Signals are the commands' threads' business (`run` forwards
                // them to the container, SIGWINCH resizes its terminal): one
                // delivered to a thread of the runtime's would be lost.
                .on_thread_start(|| {
                    let _ = nix::sys::signal::SigSet::all().thread_block();
                })
                .enable_io()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| ClientError::Protocol("cannot start the HTTP client's runtime".into()))
}

/// A handle on one daemon; cheap to clone into threads.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
}

#[derive(Clone)]
enum Endpoint {
    Unix(std::path::PathBuf),
    Tcp(crate::transport::TcpEndpoint),
}

pub enum RequestBody<'a> {
    None,
    /// A JSON body, already encoded: see [`RequestBody::json`].
    Json(Vec<u8>),
    /// Streamed with chunked transfer encoding.
    Stream(&'a mut dyn Read, &'a str),
}

impl RequestBody<'_> {
    /// `value` (a request type of `berth-api-types`, mostly) as a JSON body.
    pub fn json(value: &impl serde::Serialize) -> Result<RequestBody<'static>> {
        serde_json::to_vec(value)
            .map(RequestBody::Json)
            .map_err(|e| ClientError::Protocol(format!("encode request body: {e}")))
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(mut self) -> Result<Value> {
        let mut buf = Vec::new();
        self.body.read_to_end(&mut buf)?;
        if buf.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&buf).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn into_error(mut self) -> ClientError {
        let mut buf = Vec::new();
        let _ = self.body.read_to_end(&mut buf);
        let message = serde_json::from_slice::<Value>(&buf)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&buf).trim().to_string());
        ClientError::Api {
            status: self.status,
            message,
        }
    }
}

/// A hijacked connection after `101 UPGRADED`: what the daemon sent along
/// with its answer comes first from `reader`.
pub struct Hijacked {
    pub reader: Box<dyn Read + Send>,
    pub writer: UnixStream,
}

/// What a request sends: nothing, one buffer, or chunks from the caller's reader.
enum OutBody {
    Full(Option<Bytes>),
    Channel(tokio::sync::mpsc::Receiver<io::Result<Bytes>>),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match self.get_mut() {
            OutBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            OutBody::Channel(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, OutBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            OutBody::Channel(_) => SizeHint::default(),
        }
    }
}

/// A response body read as a blocking `Read`.
struct BodyReader {
    body: Incoming,
    pending: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            let rt = runtime().map_err(io::Error::other)?;
            match rt.block_on(self.body.frame()) {
                None => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.advance(n);
        Ok(n)
    }
}

impl Client {
    /// A client of the daemon at `host` (`unix:///path`, a bare path, or
    /// `tcp://HOST:PORT` with `tls`).
    pub fn new(
        host: &str,
        tls: &crate::transport::TlsSettings,
    ) -> std::result::Result<Client, String> {
        let endpoint = if let Some(rest) = host.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let addr = if rest.contains(':') && !rest.ends_with(']') {
                rest.to_string()
            } else {
                // docker's default ports: 2376 with TLS, 2375 without.
                format!("{rest}:{}", if tls.enabled() { 2376 } else { 2375 })
            };
            Endpoint::Tcp(crate::transport::TcpEndpoint::new(&addr, tls)?)
        } else if let Some(path) = host.strip_prefix("unix://") {
            Endpoint::Unix(std::path::PathBuf::from(path))
        } else if host.starts_with('/') {
            Endpoint::Unix(std::path::PathBuf::from(host))
        } else {
            return Err(format!(
                "invalid host {host:?}: expected unix:///PATH or tcp://HOST:PORT"
            ));
        };
        Ok(Client { endpoint })
    }

    pub fn host(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Tcp(tcp) => format!("tcp://{}", tcp.addr),
        }
    }

    fn connect(&self) -> Result<UnixStream> {
        let connected = match &self.endpoint {
            Endpoint::Unix(path) => UnixStream::connect(path),
            Endpoint::Tcp(tcp) => tcp.connect(),
        };
        connected.map_err(|source| ClientError::Connect {
            host: self.host(),
            source,
        })
    }

    /// Sends a request and returns the response with its body unread.
    pub fn request(&self, method: &str, path: &str, body: RequestBody<'_>) -> Result<Response> {
        self.request_with(method, path, body, &[])
    }

    /// A bodiless request with extra headers (`X-Registry-Auth`), failing on an
    /// error status.
    pub fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Response> {
        let resp = self.request_with(method, path, RequestBody::None, headers)?;
        if resp.status >= 400 {
            return Err(resp.into_error());
        }
        Ok(resp)
    }

    fn build(
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: OutBody,
    ) -> Result<hyper::Request<OutBody>> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{API_PREFIX}{path}"))
            .header(hyper::header::HOST, "berth")
            .header(hyper::header::USER_AGENT, "berth-cli/0.1");
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        req.body(body)
            .map_err(|e| ClientError::Protocol(format!("request {method} {path}: {e}")))
    }

    /// Opens a connection and sends `req` on it; the connection is driven by
    /// the runtime until the response (and any upgrade) is done.
    async fn send(
        stream: UnixStream,
        req: hyper::Request<OutBody>,
    ) -> Result<hyper::Response<Incoming>> {
        stream.set_nonblocking(true)?;
        let stream = tokio::net::UnixStream::from_std(stream)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection.with_upgrades());
        Ok(sender.send_request(req).await?)
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: RequestBody<'_>,
        headers: &[(&str, String)],
    ) -> Result<Response> {
        let stream = self.connect()?;
        let rt = runtime()?;
        let mut extra: Vec<(&str, String)> = headers.to_vec();
        let response = match body {
            RequestBody::None => {
                if method != "GET" && method != "HEAD" {
                    extra.push(("Content-Length", "0".into()));
                }
                let req = Self::build(method, path, &extra, OutBody::Full(None))?;
                rt.block_on(Self::send(stream, req))?
            }
            RequestBody::Json(bytes) => {
                extra.push(("Content-Type", "application/json".into()));
                let req = Self::build(method, path, &extra, OutBody::Full(Some(bytes.into())))?;
                rt.block_on(Self::send(stream, req))?
            }
            RequestBody::Stream(reader, content_type) => {
                extra.push(("Content-Type", content_type.to_string()));
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let req = Self::build(method, path, &extra, OutBody::Channel(rx))?;
                // The caller's reader is read between sends; a daemon that
                // answers early (an error) closes the channel.
                let feed = async move {
                    let mut buf = vec![0u8; UPLOAD_CHUNK];
                    loop {
                        let chunk = match reader.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                            Err(e) => Err(e),
                        };
                        let failed = chunk.is_err();
                        if tx.send(chunk).await.is_err() || failed {
                            break;
                        }
                    }
                };
                let (response, ()) =
                    rt.block_on(async { tokio::join!(Self::send(stream, req), feed) });
                response?
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(Response {
            status,
            headers,
            body: Box::new(BodyReader {
                body: response.into_body(),
                pending: Bytes::new(),
            }),
        })
    }

    /// Sends a request and fails on an error status.
    pub fn call(&self, method: &str, path: &str, body: RequestBody<'_>) -> Result<Response> {
        let resp = self.request(method, path, body)?;
        if resp.status >= 400 {
            return Err(resp.into_error());
        }
        Ok(resp)
    }

    pub fn get_json(&self, path: &str) -> Result<Value> {
        self.call("GET", path, RequestBody::None)?.json()
    }

    /// A POST without a body; the answer's JSON.
    pub fn post(&self, path: &str) -> Result<Value> {
        self.call("POST", path, RequestBody::None)?.json()
    }

    /// A POST of `body` as JSON; the answer's JSON.
    pub fn post_json(&self, path: &str, body: &impl serde::Serialize) -> Result<Value> {
        self.call("POST", path, RequestBody::json(body)?)?.json()
    }

    /// Opens a hijacked stream (attach, exec start): the daemon answers
    /// `101 UPGRADED`, and the connection becomes a plain socket again.
    pub fn hijack(&self, path: &str, body: RequestBody<'_>) -> Result<Hijacked> {
        let bytes = match body {
            RequestBody::None => Vec::new(),
            RequestBody::Json(bytes) => bytes,
            RequestBody::Stream(..) => {
                return Err(ClientError::Protocol(
                    "a hijacked request cannot stream its body".into(),
                ))
            }
        };
        let stream = self.connect()?;
        let rt = runtime()?;
        let headers = [
            ("Connection", "Upgrade".to_string()),
            ("Upgrade", "tcp".to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        let req = Self::build("POST", path, &headers, OutBody::Full(Some(bytes.into())))?;
        let outcome: Result<std::result::Result<hyper::upgrade::Upgraded, _>> =
            rt.block_on(async {
                let response = Self::send(stream, req).await?;
                if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
                    return Ok(Err(response));
                }
                Ok(Ok(hyper::upgrade::on(response).await?))
            });
        let upgraded = match outcome? {
            Ok(upgraded) => upgraded,
            Err(response) => {
                return Err(Response {
                    status: response.status().as_u16(),
                    headers: Vec::new(),
                    body: Box::new(BodyReader {
                        body: response.into_body(),
                        pending: Bytes::new(),
                    }),
                }
                .into_error());
            }
        };
        let parts = upgraded
            .downcast::<TokioIo<tokio::net::UnixStream>>()
            .map_err(|_| ClientError::Protocol("the upgraded connection is not a socket".into()))?;
        let socket = parts.io.into_inner().into_std()?;
        socket.set_nonblocking(false)?;
        let reader = Read::chain(io::Cursor::new(parts.read_buf), socket.try_clone()?);
        Ok(Hijacked {
            reader: Box::new(reader),
            writer: socket,
        })
    }
}

/// Splits docker's stdcopy stream into stdout and stderr.
pub fn demux(
    reader: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> io::Result<()> {
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Err(e) = reader.read_exact(&mut header) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                return Ok(());
            }
            return Err(e);
        }
        let mut len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let out: &mut dyn Write = if header[0] == 2 {
            &mut *stderr
        } else {
            &mut *stdout
        };
        while len > 0 {
            let n = len.min(buf.len());
            reader.read_exact(&mut buf[..n])?;
            out.write_all(&buf[..n])?;
            len -= n;
        }
        out.flush()?;
    }
}

pub fn encode_query(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The client against scripted daemons on a real socket: what a daemon that
/// reads ahead, answers garbage, fails or hangs up does to it.
#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A one-connection daemon at a fresh socket: `serve` gets the request's
    /// head (through the blank line) and the connection.
    fn daemon(
        serve: impl FnOnce(String, &mut BufReader<UnixStream>) + Send + 'static,
    ) -> (Client, std::thread::JoinHandle<()>, tempdir::Dir) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("d.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                if reader.read_line(&mut head).expect("read head") == 0 {
                    break;
                }
            }
            serve(head, &mut reader);
        });
        let client = Client::new(
            &format!("unix://{}", path.display()),
            &crate::transport::TlsSettings::default(),
        )
        .expect("client");
        (client, server, dir)
    }

    mod tempdir {
        /// A directory removed when dropped.
        pub struct Dir(pub std::path::PathBuf);

        impl Dir {
            pub fn new() -> Dir {
                let path = std::env::temp_dir().join(format!(
                    "berth-cli-client-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path).expect("mkdir");
                Dir(path)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn content_length(head: &str) -> usize {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_hijack_keeps_what_the_daemon_sent_along_with_its_101() {
        let (client, server, _dir) = daemon(|head, conn| {
            assert!(head.starts_with("POST /v1.45/containers/c/attach?stream=1 HTTP/1.1"));
            assert!(head.to_ascii_lowercase().contains("upgrade: tcp"));
            let mut body = vec![0; content_length(&head)];
            conn.read_exact(&mut body).expect("body");
            // The answer and the first output in one write: hyper reads both.
            conn.get_mut()
                .write_all(
                    b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello",
                )
                .expect("write");
            let mut ping = [0u8; 4];
            conn.read_exact(&mut ping).expect("ping");
            assert_eq!(&ping, b"ping");
            conn.get_mut().write_all(b"pong").expect("pong");
        });
        let mut hijacked = client
            .hijack("/containers/c/attach?stream=1", RequestBody::None)
            .expect("hijack");
        // The socket is shared with the reader: a lost "hello" fails, not hangs.
        let limit = Some(std::time::Duration::from_secs(10));
        hijacked.writer.set_read_timeout(limit).expect("timeout");
        let mut hello = [0u8; 5];
        hijacked.reader.read_exact(&mut hello).expect("hello");
        assert_eq!(&hello, b"hello");
        hijacked.writer.write_all(b"ping").expect("ping");
        let mut rest = Vec::new();
        hijacked.reader.read_to_end(&mut rest).expect("pong");
        assert_eq!(rest, b"pong");
        server.join().expect("server");
    }

    #[test]
    fn a_refused_hijack_reads_dockers_message() {
        let (client, server, _dir) = daemon(|_, conn| {
            let body = br#"{"message":"No such container: c"}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            conn.get_mut().write_all(head.as_bytes()).expect("head");
            conn.get_mut().write_all(body).expect("body");
        });
        match client.hijack("/containers/c/attach", RequestBody::None) {
            Err(ClientError::Api { status, message }) => {
                assert_eq!((status, message.as_str()), (404, "No such container: c"));
            }
            Err(other) => panic!("expected a 404, got {other}"),
            Ok(_) => panic!("expected a 404, got a stream"),
        }
        server.join().expect("server");
    }

    #[test]
    fn garbage_and_hang_ups_are_errors() {
        let (client, server, _dir) = daemon(|_, conn| {
            conn.get_mut()
                .write_all(b"SSH-2.0-OpenSSH\r\n\r\n")
                .expect("write");
        });
        assert!(matches!(
            client.get_json("/version"),
            Err(ClientError::Protocol(_))
        ));
        server.join().expect("server");

        // A body cut short: 100 bytes promised, 5 sent, then the daemon is gone.
        let (client, server, _dir) = daemon(|_, conn| {
            conn.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":")
                .expect("write");
        });
        let response = client
            .call("GET", "/containers/json", RequestBody::None)
            .expect("head");
        server.join().expect("server");
        assert!(response.json().is_err());
    }

    #[test]
    fn an_upload_arrives_whole_in_chunks() {
        let (client, server, _dir) = daemon(|head, conn| {
            assert!(head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"));
            let mut received = Vec::new();
            loop {
                let mut size = String::new();
                conn.read_line(&mut size).expect("chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
                let mut chunk = vec![0u8; size + 2];
                conn.read_exact(&mut chunk).expect("chunk");
                if size == 0 {
                    break;
                }
                received.extend_from_slice(&chunk[..size]);
            }
            let sum: u64 = received.iter().map(|b| *b as u64).sum();
            let body = format!("{{\"bytes\":{},\"sum\":{sum}}}", received.len());
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            conn.get_mut().write_all(head.as_bytes()).expect("head");
            conn.get_mut().write_all(body.as_bytes()).expect("body");
        });
        let data: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        let sum: u64 = data.iter().map(|b| *b as u64).sum();
        let mut reader = io::Cursor::new(data);
        let answer = client
            .call(
                "POST",
                "/build",
                RequestBody::Stream(&mut reader, "application/x-tar"),
            )
            .expect("upload")
            .json()
            .expect("json");
        assert_eq!(answer["bytes"], 1_500_000);
        assert_eq!(answer["sum"], sum);
        server.join().expect("server");
    }
}
