//! A small blocking HTTP/1.1 client for the Docker Engine API on a unix socket,
//! or over TCP and TLS (bridged to a socket pair by `transport`).
//!
//! The CLI makes a handful of requests per command, so each one gets its own
//! connection; blocking I/O keeps start-up cost near zero (no async runtime).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde_json::Value;

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

pub type Result<T> = std::result::Result<T, ClientError>;

/// A handle on one daemon; cheap to clone into threads.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
}

#[derive(Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(crate::transport::TcpEndpoint),
}

pub enum RequestBody<'a> {
    None,
    Json(&'a Value),
    /// Streamed with chunked transfer encoding.
    Stream(&'a mut dyn Read, &'a str),
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

/// A hijacked connection after `101 UPGRADED`.
pub struct Hijacked {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
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
            Endpoint::Unix(PathBuf::from(path))
        } else if host.starts_with('/') {
            Endpoint::Unix(PathBuf::from(host))
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

    fn send_head(
        &self,
        stream: &mut UnixStream,
        method: &str,
        path: &str,
        extra: &[(&str, String)],
    ) -> Result<()> {
        let mut head = format!(
            "{method} /v1.45{path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli/0.1\r\n"
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        Ok(())
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

    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: RequestBody<'_>,
        headers: &[(&str, String)],
    ) -> Result<Response> {
        let mut stream = self.connect()?;
        match body {
            RequestBody::None => {
                let mut extra = vec![("Connection", "close".to_string())];
                extra.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
                if method != "GET" && method != "HEAD" {
                    extra.push(("Content-Length", "0".into()));
                }
                self.send_head(&mut stream, method, path, &extra)?;
            }
            RequestBody::Json(v) => {
                let bytes =
                    serde_json::to_vec(v).map_err(|e| ClientError::Protocol(e.to_string()))?;
                self.send_head(
                    &mut stream,
                    method,
                    path,
                    &[
                        ("Connection", "close".into()),
                        ("Content-Type", "application/json".into()),
                        ("Content-Length", bytes.len().to_string()),
                    ],
                )?;
                stream.write_all(&bytes)?;
            }
            RequestBody::Stream(reader, content_type) => {
                self.send_head(
                    &mut stream,
                    method,
                    path,
                    &[
                        ("Connection", "close".into()),
                        ("Content-Type", content_type.to_string()),
                        ("Transfer-Encoding", "chunked".into()),
                    ],
                )?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    stream.write_all(format!("{n:x}\r\n").as_bytes())?;
                    stream.write_all(&buf[..n])?;
                    stream.write_all(b"\r\n")?;
                }
                stream.write_all(b"0\r\n\r\n")?;
            }
        }
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader)?;
        let body = body_reader(reader, &headers, status, method);
        Ok(Response {
            status,
            headers,
            body,
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

    pub fn post_json(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        let body = match body {
            Some(v) => RequestBody::Json(v),
            None => RequestBody::None,
        };
        self.call("POST", path, body)?.json()
    }

    /// Opens a hijacked stream (attach, exec start).
    pub fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let mut stream = self.connect()?;
        let bytes = match body {
            Some(v) => serde_json::to_vec(v).map_err(|e| ClientError::Protocol(e.to_string()))?,
            None => Vec::new(),
        };
        self.send_head(
            &mut stream,
            "POST",
            path,
            &[
                ("Connection", "Upgrade".into()),
                ("Upgrade", "tcp".into()),
                ("Content-Type", "application/json".into()),
                ("Content-Length", bytes.len().to_string()),
            ],
        )?;
        stream.write_all(&bytes)?;
        let writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader)?;
        if status != 101 && status != 200 {
            // The connection stays open (keep-alive): read exactly the error body.
            let body = body_reader(reader, &headers, status, "POST");
            return Err(Response {
                status,
                headers,
                body,
            }
            .into_error());
        }
        Ok(Hijacked { reader, writer })
    }
}

/// The response body as framed by its headers: chunked, sized, or until EOF.
fn body_reader(
    reader: BufReader<UnixStream>,
    headers: &[(String, String)],
    status: u16,
    method: &str,
) -> Box<dyn Read + Send> {
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    if status == 204 || status == 304 || method == "HEAD" {
        Box::new(io::empty())
    } else if chunked {
        Box::new(Chunked {
            inner: reader,
            remaining: 0,
            done: false,
        })
    } else if let Some(n) = length {
        Box::new(reader.take(n))
    } else {
        Box::new(reader)
    }
}

fn read_head(reader: &mut BufReader<UnixStream>) -> Result<(u16, Vec<(String, String)>)> {
    let mut raw = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 {
            return Err(ClientError::Protocol(
                "connection closed before response".into(),
            ));
        }
        if raw.ends_with(b"\r\n\r\n") || raw.ends_with(b"\n\n") {
            break;
        }
        if raw.len() > 64 * 1024 {
            return Err(ClientError::Protocol("response head too large".into()));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&raw)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let status = resp
        .code
        .ok_or_else(|| ClientError::Protocol("no status".into()))?;
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((status, headers))
}

/// Decodes a chunked transfer-encoded body.
struct Chunked<R> {
    inner: R,
    remaining: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                self.done = true;
                return Ok(0);
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.remaining = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {line:?}"),
                )
            })?;
            if self.remaining == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.remaining);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.done = true;
            return Ok(0);
        }
        self.remaining -= n;
        if self.remaining == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
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
