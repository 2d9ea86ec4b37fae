//! One conversation with one registry: connection (plain or TLS), credentials,
//! the bearer token once earned, and the distribution API's requests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_oci::manifest::Manifest;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::{tls, DistributionError, RegistryAuth, Result};

/// A blob's body as it streams in (an `http_body::Body` of `Bytes`).
pub type Blob = Incoming;

/// Manifests above this are refused: real ones are a few kB.
const MAX_MANIFEST: usize = 4 << 20;

/// A connection to a registry, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A registry, with the credentials and token of one pull, push or login.
pub struct Client {
    /// `host:port` as connected to.
    host: String,
    auth: Option<RegistryAuth>,
    token: tokio::sync::Mutex<Option<String>>,
    /// HTTPS when set.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client for the registry `host` (as written in references: `docker.io`,
    /// `host`, `host:port`). Docker's rule picks the scheme: HTTPS unless the
    /// host is loopback or `insecure` and has no certificates in `certs_dirs`.
    pub fn new(
        host: &str,
        auth: Option<RegistryAuth>,
        certs_dirs: &[PathBuf],
        insecure: bool,
    ) -> Result<Client> {
        let address = if host == "docker.io" {
            "registry-1.docker.io:443".to_string()
        } else if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:443")
        };
        let mut client = Client {
            host: address,
            auth,
            token: tokio::sync::Mutex::new(None),
            tls: None,
        };
        let has_certs = certs_dirs.iter().any(|d| d.join(host).is_dir());
        if has_certs || !(insecure || client.is_loopback()) {
            client.tls = Some(tls::client_config(host, certs_dirs)?);
        }
        Ok(client)
    }

    /// The same registry over plain HTTP (an `http://` mirror).
    pub fn over_plain_http(mut self) -> Client {
        self.tls = None;
        self
    }

    fn is_loopback(&self) -> bool {
        let host = self
            .host
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.host);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    /// The manifest `reference` (tag or digest) of `repo`, parsed, with its digest.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &str,
    ) -> Result<(Manifest, String)> {
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", accept.to_string())],
                Bytes::new(),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error(&format!("manifest for {repo}:{reference}"), resp).await);
        }
        let body = self.collect(resp.into_body()).await?;
        if body.len() > MAX_MANIFEST {
            return Err(DistributionError::Mismatch(
                "manifest larger than 4 MiB".into(),
            ));
        }
        let digest = berth_oci::Digest::of(&body).to_string();
        if reference.starts_with("sha256:") && digest != reference {
            return Err(DistributionError::Mismatch(format!(
                "manifest does not match its digest {reference}"
            )));
        }
        let manifest = Manifest::parse(&body).map_err(|source| DistributionError::Manifest {
            reference: format!("{repo}:{reference}"),
            source,
        })?;
        Ok((manifest, digest))
    }

    /// A blob's body, streaming; the caller checks its digest.
    pub async fn blob(&self, repo: &str, digest: &str) -> Result<Blob> {
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error(&format!("blob {digest}"), resp).await);
        }
        Ok(resp.into_body())
    }

    /// A (small) blob whole: an image config.
    pub async fn blob_bytes(&self, repo: &str, digest: &str) -> Result<Bytes> {
        self.collect(self.blob(repo, digest).await?).await
    }

    /// Whether the registry already has the blob (a push skips it then).
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let resp = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Bytes::new(),
            )
            .await?;
        Ok(resp.status().is_success())
    }

    /// A monolithic upload: POST for a session, then PUT with the digest.
    pub async fn upload_blob(&self, repo: &str, digest: &str, data: Bytes) -> Result<()> {
        let resp = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Bytes::new(),
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(registry_error("start upload", resp).await);
        }
        let location = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| DistributionError::Protocol("upload without a Location".into()))?
            .to_string();
        let _ = self.collect(resp.into_body()).await;
        // Location may be absolute; keep path and query.
        let path = match location.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map(|i| rest[i..].to_string())
                .unwrap_or_else(|| "/".into()),
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let resp = self
            .send(
                Method::PUT,
                &format!("{path}{sep}digest={digest}"),
                &[("Content-Type", "application/octet-stream".to_string())],
                data,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(registry_error(&format!("upload {digest}"), resp).await);
        }
        Ok(())
    }

    /// Stores a manifest under `reference` (a tag).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: Bytes,
    ) -> Result<()> {
        let resp = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Content-Type", media_type.to_string())],
                manifest,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error("push manifest", resp).await);
        }
        Ok(())
    }

    /// `GET /v2/` with the credentials: what `login` checks.
    pub async fn check_credentials(&self) -> Result<()> {
        let resp = self.send(Method::GET, "/v2/", &[], Bytes::new()).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(registry_error("login", resp).await)
        }
    }

    /// A whole (small) body.
    async fn collect(&self, body: Incoming) -> Result<Bytes> {
        body.collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|source| DistributionError::Http {
                host: self.host.clone(),
                source,
            })
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        authorization: Option<String>,
    ) -> Result<Response<Incoming>> {
        let tcp = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|source| DistributionError::Connect {
                host: self.host.clone(),
                source,
            })?;
        let stream: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = self
                    .host
                    .rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or(&self.host);
                let name = rustls_pki_types::ServerName::try_from(
                    name.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string(),
                )
                .map_err(|e| DistributionError::Certificates {
                    context: format!("registry name {name}"),
                    source: Box::new(e),
                })?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|source| DistributionError::Handshake {
                        host: self.host.clone(),
                        source,
                    })?;
                Box::new(tls)
            }
        };
        let http = |source| DistributionError::Http {
            host: self.host.clone(),
            source,
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("Host", &self.host)
            .header("User-Agent", "berth/0.1");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let req = req
            .header("Content-Length", body.len())
            .body(Full::new(body))
            .map_err(|e| DistributionError::Protocol(format!("request {path}: {e}")))?;
        sender.send_request(req).await.map_err(http)
    }

    /// Sends a request, answering a 401 challenge (Basic or Bearer) once.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Response<Incoming>> {
        let current = self
            .token
            .lock()
            .await
            .clone()
            .map(|t| format!("Bearer {t}"));
        let current = current.or_else(|| self.basic());
        let resp = self
            .send_once(&method, path, headers, body.clone(), current)
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let authorization = if challenge.to_ascii_lowercase().starts_with("bearer") {
            let token = self.fetch_token(&challenge).await?;
            *self.token.lock().await = Some(token.clone());
            format!("Bearer {token}")
        } else {
            match self.basic() {
                Some(basic) => basic,
                None => {
                    return Err(DistributionError::AuthenticationRequired {
                        host: self.host.clone(),
                    })
                }
            }
        };
        let resp = self
            .send_once(&method, path, headers, body, Some(authorization))
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(DistributionError::BadCredentials {
                host: self.host.clone(),
            });
        }
        Ok(resp)
    }

    /// `Authorization: Basic` from the credentials, if a user name is given.
    fn basic(&self) -> Option<String> {
        use base64::Engine as _;
        let auth = self.auth.as_ref().filter(|a| !a.username.is_empty())?;
        let pair = format!("{}:{}", auth.username, auth.password);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// The token dance: GET realm?service=&scope= with Basic credentials.
    async fn fetch_token(&self, challenge: &str) -> Result<String> {
        let params = challenge_params(challenge);
        let protocol = DistributionError::Protocol;
        let realm = params
            .get("realm")
            .ok_or_else(|| protocol(format!("bearer challenge without realm: {challenge}")))?;
        let (rest, tls) = match (
            realm.strip_prefix("http://"),
            realm.strip_prefix("https://"),
        ) {
            (Some(r), _) => (r, None),
            (_, Some(r)) => (
                r,
                Some(match &self.tls {
                    Some(c) => c.clone(),
                    None => tls::client_config("", &[])?,
                }),
            ),
            _ => {
                return Err(protocol(format!(
                    "token realm {realm} is not an http(s) URL"
                )))
            }
        };
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut query = Vec::new();
        for key in ["service", "scope"] {
            if let Some(v) = params.get(key) {
                query.push(format!("{key}={}", v.replace(' ', "%20")));
            }
        }
        let host = if host.contains(':') {
            host.to_string()
        } else if tls.is_some() {
            format!("{host}:443")
        } else {
            format!("{host}:80")
        };
        let token_server = Client {
            host,
            auth: None,
            token: tokio::sync::Mutex::new(None),
            tls,
        };
        let resp = token_server
            .send_once(
                &Method::GET,
                &format!("{path}?{}", query.join("&")),
                &[],
                Bytes::new(),
                self.basic(),
            )
            .await?;
        let status = resp.status();
        let body = token_server.collect(resp.into_body()).await?;
        if !status.is_success() {
            return Err(DistributionError::TokenRefused { status });
        }
        /// The token server's answer; docker's servers say `token`, OAuth2
        /// ones `access_token`.
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| protocol(format!("token response: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .ok_or_else(|| protocol("token response without a token".into()))
    }
}

/// `key="value"` pairs of a `WWW-Authenticate` challenge. Values are quoted and
/// may hold commas (`scope="repository:x:pull,push"`).
fn challenge_params(header: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = header.split_once(' ').map(|(_, r)| r).unwrap_or("").trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        out.insert(key, value.to_string());
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

/// The registry's JSON error (`errors[0].message`) or the status line.
async fn registry_error(what: &str, resp: Response<Incoming>) -> DistributionError {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    /// The distribution spec's error body: `{"errors": [{"code", "message"}]}`.
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        message: Option<String>,
    }
    let detail = serde_json::from_slice::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.errors.into_iter().next())
        .and_then(|e| e.message)
        .unwrap_or_else(|| status.to_string());
    let what = what.to_string();
    match status {
        StatusCode::NOT_FOUND => DistributionError::NotFound { what, detail },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            DistributionError::Denied { what, detail }
        }
        _ => DistributionError::Status { what, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_keep_quoted_commas() {
        let c = challenge_params(
            r#"Bearer realm="http://a/token",service="reg",scope="repository:x:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(c["realm"], "http://a/token");
        assert_eq!(c["service"], "reg");
        assert_eq!(c["scope"], "repository:x:pull,push");
        assert_eq!(c["error"], "insufficient_scope");
        let c = challenge_params("Basic realm=registry");
        assert_eq!(c["realm"], "registry");
    }

    #[test]
    fn scheme_follows_dockers_rule() {
        let plain = |host: &str, insecure| {
            Client::new(host, None, &[], insecure)
                .map(|c| c.tls.is_none())
                .unwrap()
        };
        assert!(plain("localhost:5000", false));
        assert!(plain("127.0.0.1:5000", false));
        assert!(plain("registry.lan:5000", true));
        assert!(!plain("registry.lan:5000", false));
        let hub = Client::new("docker.io", None, &[], false).unwrap();
        assert_eq!(hub.host, "registry-1.docker.io:443");
        assert!(hub.tls.is_some());
    }
}
