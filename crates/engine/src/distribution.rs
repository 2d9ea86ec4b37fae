//! `pull` and `push`: images to and from any OCI distribution registry.
//!
//! A pull reads the manifest (an index picks linux/amd64), fetches the config,
//! then downloads in parallel only the layers whose diff IDs are not stored yet;
//! each blob is checked against its digest while it streams in, decompressed, and
//! checked again against the config's diff ID before it is unpacked (the store's
//! usual path). A push uploads what the registry lacks (HEAD first), then the
//! config and an OCI manifest. Layers travel uncompressed, so a layer's digest is
//! its diff ID and digests survive any round trip.
//!
//! Registries are spoken to over HTTPS (rustls) with the system's roots plus the
//! registry's own CA from `<certs-dir>/<host:port>/ca.crt` (docker's
//! `certs.d` layout, client certificates included). Plain HTTP is used for
//! loopback registries and `--insecure-registry` hosts that have no CA there
//! (docker's rule).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::model::{ImageConfigBlob, ImageRecord};
use crate::{db, Engine, EngineError, Result};

use berth_oci::media_type::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST as DOCKER_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR,
    OCI_MANIFEST,
};
/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 3;

/// Credentials from docker's `X-Registry-Auth` header.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
}

/// `host[:port]/repo[:tag|@digest]`, split.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRef {
    pub host: String,
    pub repository: String,
    /// A tag, or `sha256:...`.
    pub reference: String,
}

impl RemoteRef {
    pub fn parse(name: &str) -> Result<RemoteRef> {
        let invalid = || EngineError::InvalidArgument(format!("invalid reference format: {name}"));
        let (rest, reference) = match name.split_once('@') {
            Some((r, d)) => (r, d.to_string()),
            None => match name.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r, t.to_string()),
                _ => (name, "latest".to_string()),
            },
        };
        let (host, repository) = match rest.split_once('/') {
            Some((h, r)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_string(), r.to_string())
            }
            _ => {
                let repo = if rest.contains('/') {
                    rest.to_string()
                } else {
                    format!("library/{rest}")
                };
                ("docker.io".to_string(), repo)
            }
        };
        if repository.is_empty() || reference.is_empty() || host.is_empty() {
            return Err(invalid());
        }
        Ok(RemoteRef {
            host,
            repository,
            reference,
        })
    }

    /// The local name the pulled image gets (`host/repo:tag`).
    pub fn local_name(&self) -> String {
        let repo = if self.host == "docker.io" {
            self.repository.trim_start_matches("library/").to_string()
        } else {
            format!("{}/{}", self.host, self.repository)
        };
        if self.reference.starts_with("sha256:") {
            repo
        } else {
            format!("{repo}:{}", self.reference)
        }
    }
}

/// One registry conversation: host, credentials, and a bearer token once earned.
struct Session {
    host: String,
    auth: Option<RegistryAuth>,
    token: tokio::sync::Mutex<Option<String>>,
    /// HTTPS when set.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A connection to a registry, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

fn pem_items(path: &std::path::Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("read {}: {e}", path.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| err(format!("read {}: {e}", path.display())))
}

/// rustls client config for `host`: system roots, the host's `ca.crt` files and
/// its `client.cert`/`client.key` from docker's certs.d layout.
fn tls_config(host: &str, dirs: &[std::path::PathBuf]) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for system in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        let p = std::path::Path::new(system);
        if p.exists() {
            let (_added, _ignored) = roots.add_parsable_certificates(pem_items(p)?);
            break;
        }
    }
    let mut client_auth = None;
    for dir in dirs.iter().map(|d| d.join(host)).filter(|d| d.is_dir()) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".crt") {
                for cert in pem_items(&path)? {
                    roots
                        .add(cert)
                        .map_err(|e| err(format!("CA {}: {e}", path.display())))?;
                }
            } else if name.ends_with(".cert") {
                let key_path = path.with_extension("key");
                use rustls_pki_types::pem::PemObject;
                let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&key_path)
                    .map_err(|e| err(format!("client key {}: {e}", key_path.display())))?;
                client_auth = Some((pem_items(&path)?, key));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_root_certificates(roots);
    match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| err(format!("client certificate for {host}: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn err(what: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(what.to_string())
}

fn basic(auth: &RegistryAuth) -> String {
    format!(
        "Basic {}",
        crate::base64_encode(format!("{}:{}", auth.username, auth.password).as_bytes())
    )
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

impl Session {
    fn is_loopback(&self) -> bool {
        let host = self
            .host
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.host);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    async fn send_once(
        &self,
        method: &hyper::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        authorization: Option<String>,
    ) -> Result<Response<Incoming>> {
        let tcp = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|e| err(format!("connect to registry {}: {e}", self.host)))?;
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
                .map_err(|e| err(format!("registry name {name}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        EngineError::Forbidden(format!("TLS with registry {}: {e}", self.host))
                    })?;
                Box::new(tls)
            }
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| err(format!("registry {}: {e}", self.host)))?;
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
            .map_err(err)?;
        sender
            .send_request(req)
            .await
            .map_err(|e| err(format!("registry {}: {e}", self.host)))
    }

    /// Sends a request, answering a 401 challenge (Basic or Bearer) once.
    async fn send(
        &self,
        method: hyper::Method,
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
        let current = current.or_else(|| {
            self.auth
                .as_ref()
                .filter(|a| !a.username.is_empty())
                .map(basic)
        });
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
            match &self.auth {
                Some(a) if !a.username.is_empty() => basic(a),
                _ => {
                    return Err(EngineError::Forbidden(format!(
                        "unauthorized: authentication required for {} (run berth login {})",
                        self.host, self.host
                    )))
                }
            }
        };
        let resp = self
            .send_once(&method, path, headers, body, Some(authorization))
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(EngineError::Forbidden(format!(
                "unauthorized: incorrect username or password for {}",
                self.host
            )));
        }
        Ok(resp)
    }

    /// The token dance: GET realm?service=&scope= with Basic credentials.
    async fn fetch_token(&self, challenge: &str) -> Result<String> {
        let params = challenge_params(challenge);
        let realm = params
            .get("realm")
            .ok_or_else(|| err(format!("bearer challenge without realm: {challenge}")))?;
        let (rest, tls) = match (
            realm.strip_prefix("http://"),
            realm.strip_prefix("https://"),
        ) {
            (Some(r), _) => (r, None),
            (_, Some(r)) => (
                r,
                Some(match &self.tls {
                    Some(c) => c.clone(),
                    None => Arc::new(tls_config("", &[])?),
                }),
            ),
            _ => return Err(err(format!("token realm {realm} is not an http(s) URL"))),
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
        let token_session = Session {
            host,
            auth: None,
            token: tokio::sync::Mutex::new(None),
            tls,
        };
        let auth = self
            .auth
            .as_ref()
            .filter(|a| !a.username.is_empty())
            .map(basic);
        let resp = token_session
            .send_once(
                &hyper::Method::GET,
                &format!("{path}?{}", query.join("&")),
                &[],
                Bytes::new(),
                auth,
            )
            .await?;
        let status = resp.status();
        let body = collect(resp).await?;
        if !status.is_success() {
            return Err(EngineError::Forbidden(format!(
                "token request refused: {status}"
            )));
        }
        let v: Value = serde_json::from_slice(&body).map_err(err)?;
        v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .map(String::from)
            .ok_or_else(|| err("token response without a token"))
    }
}

async fn collect(resp: Response<Incoming>) -> Result<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| err(format!("read registry response: {e}")))
}

/// The registry's JSON error (`errors[0].message`) or the status line.
async fn registry_error(what: &str, resp: Response<Incoming>) -> EngineError {
    let status = resp.status();
    let body = collect(resp).await.unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(String::from))
        .unwrap_or_else(|| status.to_string());
    match status {
        StatusCode::NOT_FOUND => EngineError::NotFound(format!("{what}: not found: {detail}")),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            EngineError::Forbidden(format!("{what}: {detail}"))
        }
        _ => err(format!("{what}: {detail}")),
    }
}

#[derive(Clone, Copy)]
enum Transfer {
    Pull,
    Push,
}

/// Progress lines in docker's pull/push JSON stream shape.
#[derive(Clone)]
struct Progress(mpsc::Sender<Bytes>);

impl Progress {
    async fn status(&self, id: Option<&str>, status: &str) {
        let mut v = json!({ "status": status });
        if let Some(id) = id {
            v["id"] = json!(id);
        }
        self.send(v).await;
    }

    async fn send(&self, v: Value) {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        let _ = self.0.send(Bytes::from(line)).await;
    }

    async fn error(&self, message: &str) {
        self.send(json!({ "errorDetail": { "message": message }, "error": message }))
            .await;
    }
}

fn short_digest(d: &str) -> String {
    d.trim_start_matches("sha256:").chars().take(12).collect()
}

impl Engine {
    fn session(&self, host: &str, auth: Option<RegistryAuth>) -> Result<Session> {
        let mut s = Session {
            host: if host == "docker.io" {
                "registry-1.docker.io:443".into()
            } else if host.contains(':') {
                host.to_string()
            } else {
                format!("{host}:443")
            },
            auth,
            token: tokio::sync::Mutex::new(None),
            tls: None,
        };
        let dirs = [
            self.config.certs_dir.clone(),
            std::path::PathBuf::from("/etc/docker/certs.d"),
        ];
        let has_certs = dirs.iter().any(|d| d.join(host).is_dir());
        let insecure = s.is_loopback() || self.insecure_registry(host);
        if has_certs || !insecure {
            s.tls = Some(Arc::new(tls_config(host, &dirs)?));
        }
        Ok(s)
    }

    /// Where a pull is served from, with the manifest it answered: for Docker
    /// Hub's images each mirror in turn (`registry-mirrors`, without the
    /// user's Hub credentials), then the Hub itself, as dockerd tries them.
    async fn first_source(
        &self,
        remote: &RemoteRef,
        auth: Option<RegistryAuth>,
        accept: &str,
    ) -> Result<(Session, Value, String)> {
        if remote.host == "docker.io" {
            for mirror in self.registry_mirrors() {
                let (plain_http, host) = match mirror.trim_end_matches('/') {
                    m if m.starts_with("http://") => (true, m["http://".len()..].to_string()),
                    m => (false, m.trim_start_matches("https://").to_string()),
                };
                let Ok(mut session) = self.session(&host, None) else {
                    continue;
                };
                if plain_http {
                    session.tls = None;
                }
                match fetch_manifest(&session, &remote.repository, &remote.reference, accept).await
                {
                    Ok((manifest, digest)) => return Ok((session, manifest, digest)),
                    Err(e) => {
                        tracing::info!(%mirror, error = %e, "mirror did not serve the image; trying the next source")
                    }
                }
            }
        }
        let session = self.session(&remote.host, auth)?;
        let (manifest, digest) =
            fetch_manifest(&session, &remote.repository, &remote.reference, accept).await?;
        Ok((session, manifest, digest))
    }

    /// `POST /images/create?fromImage=`: progress stream; ends in an error line on failure.
    pub fn pull(self: &Arc<Self>, name: &str, auth: Option<RegistryAuth>) -> mpsc::Receiver<Bytes> {
        self.transfer(Transfer::Pull, name, auth)
    }

    /// `POST /images/{name}/push`: the same kind of stream.
    pub fn push(self: &Arc<Self>, name: &str, auth: Option<RegistryAuth>) -> mpsc::Receiver<Bytes> {
        self.transfer(Transfer::Push, name, auth)
    }

    fn transfer(
        self: &Arc<Self>,
        op: Transfer,
        name: &str,
        auth: Option<RegistryAuth>,
    ) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(64);
        let engine = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let progress = Progress(tx);
            let result = match op {
                Transfer::Pull => engine.pull_inner(&name, auth, &progress).await,
                Transfer::Push => engine.push_inner(&name, auth, &progress).await,
            };
            if let Err(e) = result {
                progress.error(&e.to_string()).await;
            }
        });
        rx
    }

    async fn pull_inner(
        self: &Arc<Self>,
        name: &str,
        auth: Option<RegistryAuth>,
        progress: &Progress,
    ) -> Result<()> {
        let remote = RemoteRef::parse(name)?;
        progress
            .status(
                Some(&remote.reference),
                &format!("Pulling from {}", remote.repository),
            )
            .await;
        let accept = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST].join(", ");
        let (session, mut manifest, mut manifest_digest) =
            self.first_source(&remote, auth, &accept).await?;
        let session = Arc::new(session);
        let media = manifest["mediaType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if media == OCI_INDEX || media == DOCKER_LIST || manifest["manifests"].is_array() {
            let arch = crate::image::go_arch();
            let chosen = manifest["manifests"]
                .as_array()
                .and_then(|list| {
                    list.iter().find(|m| {
                        m["platform"]["os"].as_str() == Some("linux")
                            && m["platform"]["architecture"].as_str() == Some(arch)
                    })
                })
                .and_then(|m| m["digest"].as_str())
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "no matching manifest for linux/{arch} in the manifest list entries"
                    ))
                })?
                .to_string();
            let (m, d) = fetch_manifest(&session, &remote.repository, &chosen, &accept).await?;
            manifest = m;
            manifest_digest = d;
        }
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| err("manifest without a config"))?
            .to_string();
        let config_bytes = fetch_blob_bytes(&session, &remote.repository, &config_digest).await?;
        let expected = berth_store::Digest::parse(&config_digest)?;
        if berth_store::Digest::of(&config_bytes) != expected {
            return Err(EngineError::InvalidArgument(format!(
                "config blob does not match its digest {config_digest}"
            )));
        }
        let config: ImageConfigBlob =
            serde_json::from_slice(&config_bytes).map_err(|e| err(format!("image config: {e}")))?;
        let layers: Vec<Value> = manifest["layers"].as_array().cloned().unwrap_or_default();
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(EngineError::InvalidArgument(
                "manifest and config disagree on the number of layers".into(),
            ));
        }

        let mut size = 0u64;
        let mut jobs = tokio::task::JoinSet::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL_LAYERS));
        for (layer, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
            let digest = layer["digest"].as_str().unwrap_or_default().to_string();
            let diff = berth_store::Digest::parse(diff_id)?;
            if self.store.has_layer(&diff) {
                progress
                    .status(Some(&short_digest(&digest)), "Already exists")
                    .await;
                size += std::fs::metadata(self.store.blob_path(&diff))
                    .map(|m| m.len())
                    .unwrap_or(0);
                continue;
            }
            progress
                .status(Some(&short_digest(&digest)), "Pulling fs layer")
                .await;
            let engine = self.clone();
            let session = session.clone();
            let repo = remote.repository.clone();
            let progress = progress.clone();
            let semaphore = semaphore.clone();
            jobs.spawn(async move {
                let _permit = semaphore.acquire().await;
                let stored = engine.fetch_layer(&session, &repo, &digest, diff).await?;
                progress
                    .status(Some(&short_digest(&digest)), "Pull complete")
                    .await;
                Ok::<u64, EngineError>(stored)
            });
        }
        while let Some(done) = jobs.join_next().await {
            size += done.map_err(|e| err(e.to_string()))??;
        }
        let id = self.store.put_blob_bytes(&config_bytes)?.to_string();
        let repo_digest = format!(
            "{}@{manifest_digest}",
            RemoteRef {
                reference: "x".into(),
                ..remote.clone()
            }
            .local_name()
            .trim_end_matches(":x")
        );
        let record = ImageRecord {
            repo_digests: vec![repo_digest],
            ..ImageRecord::new(id.clone(), config, size)
        };
        let existed = {
            let mut st = self.lock();
            let existed = st.images.contains_key(&id);
            let entry = st.images.entry(id.clone()).or_insert(record.clone());
            for d in record.repo_digests {
                if !entry.repo_digests.contains(&d) {
                    entry.repo_digests.push(d);
                }
            }
            let entry = entry.clone();
            self.db.put(db::IMAGES, &id, &entry)?;
            existed
        };
        let local = remote.local_name();
        if !remote.reference.starts_with("sha256:") {
            self.tag_image(&id, &local)?;
        }
        self.events.emit("image", "pull", &local, BTreeMap::new());
        progress
            .status(None, &format!("Digest: {manifest_digest}"))
            .await;
        let verdict = if existed {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        progress
            .status(None, &format!("Status: {verdict} {local}"))
            .await;
        Ok(())
    }

    /// Downloads one layer blob, verifying the blob digest while it streams and
    /// the diff ID when it is stored; returns the uncompressed size.
    async fn fetch_layer(
        self: &Arc<Self>,
        session: &Session,
        repo: &str,
        digest: &str,
        diff_id: berth_store::Digest,
    ) -> Result<u64> {
        let expected = berth_store::Digest::parse(digest)?;
        let resp = get_blob(session, repo, digest).await?;
        let (reader, feeder) = crate::stream::ChannelReader::feed(resp.into_body());
        let engine = self.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let mut hashing = berth_store::DigestReader::new(reader);
            let stored = engine
                .store
                .import_layer_expecting(&mut hashing, Some(&diff_id));
            // Drain what the decompressor left (gzip trailers) so the digest covers
            // every byte of the blob.
            let _ = std::io::copy(&mut hashing, &mut std::io::sink());
            (stored, hashing.digest())
        })
        .await
        .map_err(|e| err(e.to_string()))?;
        let complete = feeder.await.unwrap_or(false);
        let (stored, actual) = stored;
        if !complete {
            return Err(err(format!("download of {digest} was interrupted")));
        }
        if actual != expected {
            if let Ok(s) = &stored {
                let _ = self.store.remove_layer(&s.diff_id);
            }
            return Err(EngineError::InvalidArgument(format!(
                "blob {digest} does not match its digest (got {actual})"
            )));
        }
        Ok(stored?.size)
    }

    async fn push_inner(
        self: &Arc<Self>,
        name: &str,
        auth: Option<RegistryAuth>,
        progress: &Progress,
    ) -> Result<()> {
        let image = self.image(name)?;
        let remote = RemoteRef::parse(&crate::normalize_reference(name))?;
        let session = self.session(&remote.host, auth)?;
        progress
            .status(
                None,
                &format!(
                    "The push refers to repository [{}/{}]",
                    remote.host, remote.repository
                ),
            )
            .await;
        let repo = remote.repository.clone();
        let mut layer_descriptors = Vec::new();
        for diff_id in &image.config.rootfs.diff_ids {
            let digest = berth_store::Digest::parse(diff_id)?;
            let size = std::fs::metadata(self.store.blob_path(&digest))
                .map_err(|e| err(format!("layer {diff_id}: {e}")))?
                .len();
            let id = short_digest(diff_id);
            if blob_exists(&session, &repo, diff_id).await? {
                progress.status(Some(&id), "Layer already exists").await;
            } else {
                progress.status(Some(&id), "Pushing").await;
                let data = tokio::fs::read(self.store.blob_path(&digest))
                    .await
                    .map_err(|e| err(format!("read layer {diff_id}: {e}")))?;
                upload_blob(&session, &repo, diff_id, Bytes::from(data)).await?;
                progress.status(Some(&id), "Pushed").await;
            }
            layer_descriptors
                .push(json!({ "mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": size }));
        }
        let config_digest = berth_store::Digest::parse(&image.id)?;
        let config_bytes = self.store.read_blob(&config_digest)?;
        if !blob_exists(&session, &repo, &image.id).await? {
            upload_blob(
                &session,
                &repo,
                &image.id,
                Bytes::from(config_bytes.clone()),
            )
            .await?;
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": image.id, "size": config_bytes.len() },
            "layers": layer_descriptors,
        });
        let manifest_bytes = Bytes::from(serde_json::to_vec(&manifest).map_err(err)?);
        let manifest_digest = berth_store::Digest::of(&manifest_bytes).to_string();
        let resp = session
            .send(
                hyper::Method::PUT,
                &format!("/v2/{repo}/manifests/{}", remote.reference),
                &[("Content-Type", OCI_MANIFEST.to_string())],
                manifest_bytes.clone(),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error("push manifest", resp).await);
        }
        self.events.emit("image", "push", name, BTreeMap::new());
        progress
            .status(
                None,
                &format!(
                    "{}: digest: {manifest_digest} size: {}",
                    remote.reference,
                    manifest_bytes.len()
                ),
            )
            .await;
        progress
            .send(json!({ "progressDetail": {}, "aux": { "Tag": remote.reference, "Digest": manifest_digest, "Size": manifest_bytes.len() } }))
            .await;
        Ok(())
    }

    /// `POST /auth`: checks credentials against the registry's `/v2/`.
    pub async fn login(&self, server: &str, auth: RegistryAuth) -> Result<String> {
        let host = server
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let session = self.session(host, Some(auth))?;
        let resp = session
            .send(hyper::Method::GET, "/v2/", &[], Bytes::new())
            .await?;
        if resp.status().is_success() {
            Ok("Login Succeeded".into())
        } else {
            Err(registry_error("login", resp).await)
        }
    }
}

async fn fetch_manifest(
    session: &Session,
    repo: &str,
    reference: &str,
    accept: &str,
) -> Result<(Value, String)> {
    let resp = session
        .send(
            hyper::Method::GET,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", accept.to_string())],
            Bytes::new(),
        )
        .await?;
    if !resp.status().is_success() {
        return Err(registry_error(&format!("manifest for {repo}:{reference}"), resp).await);
    }
    let body = collect(resp).await?;
    if body.len() > 4 << 20 {
        return Err(EngineError::InvalidArgument(
            "manifest larger than 4 MiB".into(),
        ));
    }
    let digest = berth_store::Digest::of(&body).to_string();
    if reference.starts_with("sha256:") && digest != reference {
        return Err(EngineError::InvalidArgument(format!(
            "manifest does not match its digest {reference}"
        )));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| err(format!("manifest: {e}")))?;
    Ok((v, digest))
}

/// `GET` of a blob, failing on an error status.
async fn get_blob(session: &Session, repo: &str, digest: &str) -> Result<Response<Incoming>> {
    let resp = session
        .send(
            hyper::Method::GET,
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            Bytes::new(),
        )
        .await?;
    if !resp.status().is_success() {
        return Err(registry_error(&format!("blob {digest}"), resp).await);
    }
    Ok(resp)
}

async fn fetch_blob_bytes(session: &Session, repo: &str, digest: &str) -> Result<Bytes> {
    collect(get_blob(session, repo, digest).await?).await
}

async fn blob_exists(session: &Session, repo: &str, digest: &str) -> Result<bool> {
    let resp = session
        .send(
            hyper::Method::HEAD,
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            Bytes::new(),
        )
        .await?;
    Ok(resp.status().is_success())
}

async fn upload_blob(session: &Session, repo: &str, digest: &str, data: Bytes) -> Result<()> {
    let resp = session
        .send(
            hyper::Method::POST,
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
        .ok_or_else(|| err("upload without a Location"))?
        .to_string();
    let _ = collect(resp).await;
    // Location may be absolute; keep path and query.
    let path = match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_else(|| "/".into()),
        None => location,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let resp = session
        .send(
            hyper::Method::PUT,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = RemoteRef::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("localhost:5000", "team/app", "v1")
        );
        assert_eq!(r.local_name(), "localhost:5000/team/app:v1");
        let r = RemoteRef::parse("busybox").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("docker.io", "library/busybox", "latest")
        );
        assert_eq!(r.local_name(), "busybox:latest");
        let r = RemoteRef::parse("127.0.0.1:5000/x@sha256:abc").unwrap();
        assert_eq!(r.reference, "sha256:abc");
        assert_eq!(r.local_name(), "127.0.0.1:5000/x");
        let c = challenge_params(
            r#"Bearer realm="http://a/token",service="reg",scope="repository:x:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(c["realm"], "http://a/token");
        assert_eq!(c["scope"], "repository:x:pull,push");
        assert_eq!(c["error"], "insufficient_scope");
    }
}
