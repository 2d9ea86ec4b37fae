//! `berth-registry`: an OCI Distribution Spec v1.1 registry server.
//!
//! Serves the pull, push, content-discovery (tags, catalog, referrers) and
//! content-management (delete) parts of the spec over HTTP/1.1 (plain or
//! over TLS), for OCI image manifests and indexes and Docker schema2
//! manifests and manifest lists. Optional authentication against an
//! htpasswd file, by HTTP Basic or by the distribution bearer-token flow.
//!
//! ```no_run
//! # async fn run() -> Result<(), berth_registry::RegistryError> {
//! use berth_registry::{Registry, RegistryConfig};
//! let config = RegistryConfig::new("127.0.0.1:5000".parse().unwrap(), "/var/lib/berth/registry");
//! let registry = Registry::bind(config).await?;
//! println!("listening on {}", registry.local_addr());
//! registry.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! # Authentication
//!
//! Without [`RegistryConfig::htpasswd`] the registry is anonymous
//! read/write. With it, [`RegistryConfig::auth_mode`] picks the scheme; in
//! both, every htpasswd user may do everything (no per-repository ACLs):
//!
//! - [`AuthMode::Basic`] (default): every request to `/v2/` carries HTTP
//!   Basic credentials; otherwise 401 `UNAUTHORIZED` with
//!   `WWW-Authenticate: Basic realm="berth-registry"`.
//! - [`AuthMode::Token`]: the token flow docker clients use. A request
//!   without a valid bearer token gets 401 with
//!   `WWW-Authenticate: Bearer realm="<base>/token",service="berth-registry",scope="..."`,
//!   where `<base>` is `http[s]://<Host>` (or [`RegistryConfig::token_realm`])
//!   and the scope is what the request needs: `repository:<name>:pull` for
//!   GET/HEAD, `repository:<name>:pull,push` for uploads and manifest PUT,
//!   `repository:<name>:delete` for DELETE of manifests and blobs,
//!   `registry:catalog:*` for `/v2/_catalog`; `/v2/` itself needs any valid
//!   token and its challenge has no scope. The client then calls
//!   `GET /token?service=berth-registry&scope=...` (repeatable, or
//!   space-separated) with Basic credentials and receives
//!   `{"token", "access_token", "expires_in", "issued_at"}`. Tokens are
//!   HS256 JWTs (HMAC-SHA256 under a key random per start or read from
//!   [`RegistryConfig::token_key`]) naming the user, the granted scopes (all
//!   requested `pull`/`push`/`delete`/`*` actions on valid names) and the
//!   expiry ([`RegistryConfig::token_ttl`]). A bad signature or an expired
//!   token gets the challenge with `error="invalid_token"`; a valid token
//!   without the needed scope gets it with `error="insufficient_scope"`.
//!   A cross-repository mount (`?mount=&from=`) only mounts when the token
//!   also grants pull on `from`; otherwise an upload session is opened.
//!   Basic credentials are not accepted on `/v2/` in this mode.
//!
//! # TLS
//!
//! With [`RegistryConfig::tls_cert`] and [`RegistryConfig::tls_key`] (PEM)
//! the listener speaks only HTTPS: HTTP/1.1 over rustls (ring provider,
//! TLS 1.2 and 1.3, ALPN `http/1.1`); plain HTTP connections fail the
//! handshake and are closed. With [`RegistryConfig::tls_client_ca`] clients
//! must also present a certificate chaining to one of those CAs (mutual
//! TLS). Unreadable or invalid files fail [`Registry::bind`] with a
//! [`TlsError`] naming the file; certificates are read once, at bind.
//!
//! # Storage layout
//!
//! Everything lives under [`RegistryConfig::root`]:
//!
//! ```text
//! blobs/sha256/<hex>                                   blob (and manifest) bytes, content-addressed
//! repositories/<name>/_layers/sha256/<hex>              blob linked into the repository
//! repositories/<name>/_manifests/revisions/sha256/<hex> manifest in the repository (JSON: digest, mediaType, subject)
//! repositories/<name>/_manifests/tags/<tag>/link        digest the tag points to
//! repositories/<name>/_manifests/referrers/sha256/<subject-hex>/<hex>
//!                                                       index of manifests whose `subject` is <subject>
//! uploads/<uuid>/{info,data}                            resumable upload sessions
//! tmp/                                                  temporary files (emptied at start)
//! ```
//!
//! `<name>` may contain `/`, giving nested directories; the name grammar
//! forbids components starting with `_`, so they never clash with the
//! `_layers`/`_manifests` directories. A blob is served from a repository
//! only if it is linked into it (`_layers`, by upload or cross-repository
//! mount, or as a manifest revision).
//!
//! # Crash safety
//!
//! Every file of the store (blobs, links, revisions, tags) is written as:
//! temporary file on the same filesystem → write → `fsync` → `rename` into
//! place → `fsync` of the directory (new directories are fsynced into their
//! parents too). Blob bytes are verified against their digest before the
//! rename; a failed, truncated or oversized upload never reaches `blobs/`.
//! Writes are ordered so a reference is only written once what it refers
//! to is durable (blob → repository link → manifest revision → tag), so a
//! crash can leave unreferenced data (removed by [`garbage_collect`]) but
//! never a reference to missing or partial data.
//!
//! Upload sessions are scratch state: their data is fsynced only when the
//! upload completes (just before the rename into `blobs/`), each PATCH is
//! all-or-nothing (an interrupted chunk is cut back off), and sessions idle
//! longer than [`RegistryConfig::upload_max_age`] are deleted at start and
//! hourly. One server process per root.

#![warn(missing_docs)]

mod auth;
mod body;
mod error;
mod gc;
mod handlers;
mod manifest;
pub mod name;
mod storage;
mod tls;
mod token;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use auth::REALM;
pub use error::{AuthError, ErrorCode, GcError, RegistryError, StorageError, TlsError};
pub use gc::{garbage_collect, garbage_collect_with, GcOptions, GcReport};
pub use manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
pub use name::Digest;

use handlers::AppState;
use storage::Storage;

/// Default [`RegistryConfig::max_blob_size`]: 10 GiB.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 10 << 30;
/// Default [`RegistryConfig::max_manifest_size`]: 4 MiB.
pub const DEFAULT_MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Default [`RegistryConfig::token_ttl`]: 5 minutes.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// How often stale upload sessions are purged while running.
const UPLOAD_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// How clients authenticate when [`RegistryConfig::htpasswd`] is set
/// (without an htpasswd file the registry is anonymous read/write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// HTTP Basic credentials on every request (the default).
    #[default]
    Basic,
    /// The distribution token flow: requests carry `Authorization: Bearer`
    /// tokens, issued by the registry's own `GET /token` endpoint to
    /// clients presenting htpasswd credentials.
    Token,
}

/// Registry server configuration. Build with [`RegistryConfig::new`] and
/// adjust the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistryConfig {
    /// Address to listen on (port 0 picks a free port; see
    /// [`Registry::local_addr`]).
    pub addr: SocketAddr,
    /// Storage root directory (created if missing).
    pub root: PathBuf,
    /// htpasswd file; when set, every request must be authenticated
    /// (as [`RegistryConfig::auth_mode`] says) by a user with a bcrypt or
    /// `{SHA}` entry. Read at start.
    pub htpasswd: Option<PathBuf>,
    /// Basic or bearer-token authentication; needs
    /// [`RegistryConfig::htpasswd`] for [`AuthMode::Token`].
    pub auth_mode: AuthMode,
    /// Token mode: file whose content (surrounding whitespace trimmed, at
    /// least 32 bytes) is the HMAC-SHA256 signing key, so tokens survive a
    /// restart and can be shared by servers on one root. Random per start
    /// when unset.
    pub token_key: Option<PathBuf>,
    /// Token mode: lifetime of issued tokens (whole seconds, at least 1).
    pub token_ttl: Duration,
    /// Token mode: the `realm` URL sent in challenges. Default:
    /// `http[s]://<Host header>/token`, i.e. this server's `/token`.
    pub token_realm: Option<String>,
    /// PEM certificate chain (leaf first); with
    /// [`RegistryConfig::tls_key`] the listener speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates; when set (with TLS), clients must present a
    /// certificate signed by one of them (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Largest blob accepted; larger uploads get 413 `SIZE_INVALID`, before
    /// any data is read when the client declares its `Content-Length`.
    pub max_blob_size: u64,
    /// Largest manifest accepted (413 `SIZE_INVALID` above it).
    pub max_manifest_size: u64,
    /// Upload sessions idle longer than this are deleted.
    pub upload_max_age: Duration,
    /// Refuse every write with 403 `DENIED`.
    pub read_only: bool,
    /// Allow DELETE of manifests, tags and blobs (405 `UNSUPPORTED` if not).
    pub delete_enabled: bool,
    /// How long [`Registry::run`] waits for open connections to finish
    /// after the shutdown future resolves.
    pub shutdown_timeout: Duration,
    /// Timeout for receiving a request's headers.
    pub header_read_timeout: Duration,
    /// An upload whose client sends nothing for this long is aborted (and
    /// rolled back), so a stalled client cannot hold a session forever.
    pub body_idle_timeout: Duration,
}

impl RegistryConfig {
    /// A configuration with defaults: anonymous read/write, 10 GiB blobs,
    /// 4 MiB manifests, deletes enabled, uploads expire after 24 hours.
    pub fn new(addr: SocketAddr, root: impl Into<PathBuf>) -> Self {
        RegistryConfig {
            addr,
            root: root.into(),
            htpasswd: None,
            auth_mode: AuthMode::Basic,
            token_key: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            token_realm: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            max_blob_size: DEFAULT_MAX_BLOB_SIZE,
            max_manifest_size: DEFAULT_MAX_MANIFEST_SIZE,
            upload_max_age: Duration::from_secs(24 * 3600),
            read_only: false,
            delete_enabled: true,
            shutdown_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(120),
        }
    }

    /// Sets [`RegistryConfig::htpasswd`].
    pub fn with_htpasswd(mut self, path: impl Into<PathBuf>) -> Self {
        self.htpasswd = Some(path.into());
        self
    }

    /// Sets [`RegistryConfig::auth_mode`].
    pub fn with_auth_mode(mut self, mode: AuthMode) -> Self {
        self.auth_mode = mode;
        self
    }

    /// Sets [`RegistryConfig::tls_cert`] and [`RegistryConfig::tls_key`].
    pub fn with_tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(cert.into());
        self.tls_key = Some(key.into());
        self
    }

    /// Checks the combinations of options (not the files).
    fn validate(&self) -> Result<(), RegistryError> {
        if self.max_manifest_size == 0 || self.max_blob_size == 0 {
            return Err(RegistryError::Config("size limits must be positive".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(RegistryError::Config(
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(RegistryError::Config(
                "tls_client_ca needs tls_cert and tls_key".into(),
            ));
        }
        if self.auth_mode == AuthMode::Token {
            if self.htpasswd.is_none() {
                return Err(RegistryError::Config(
                    "token authentication needs an htpasswd file".into(),
                ));
            }
            if self.token_ttl.as_secs() == 0 {
                return Err(RegistryError::Config(
                    "token_ttl must be at least one second".into(),
                ));
            }
            if let Some(realm) = &self.token_realm {
                let ok = (realm.starts_with("http://") || realm.starts_with("https://"))
                    && realm
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
                if !ok {
                    return Err(RegistryError::Config(format!(
                        "token_realm {realm:?} is not an http(s) URL"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A bound, not yet running registry server.
pub struct Registry {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    config: RegistryConfig,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("local_addr", &self.local_addr)
            .field("root", &self.config.root)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

fn purge_stale_uploads(state: &AppState, max_age: Duration) -> Result<usize, StorageError> {
    let stale = state.storage.stale_uploads(max_age)?;
    let mut n = 0;
    for id in stale {
        // Skip sessions a request is working on right now.
        let busy = state
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .is_some_and(|m| m.try_lock().is_err());
        if busy {
            continue;
        }
        state.storage.delete_upload(&id)?;
        state.forget_upload(&id);
        n += 1;
    }
    if n > 0 {
        tracing::info!(count = n, "removed stale upload sessions");
    }
    Ok(n)
}

impl Registry {
    /// Prepares the storage root, loads the htpasswd file, token key and
    /// TLS files and binds the listener. Stale upload sessions and
    /// temporary files are removed.
    pub async fn bind(config: RegistryConfig) -> Result<Registry, RegistryError> {
        config.validate()?;
        let cfg = config.clone();
        let (auth, token, tls) = tokio::task::spawn_blocking(move || load_credentials(&cfg))
            .await
            .map_err(|e| RegistryError::Task(e.to_string()))??;
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| RegistryError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| RegistryError::Bind {
                addr: config.addr,
                source,
            })?;
        let state = Arc::new(AppState {
            storage: Storage::new(&config.root),
            max_blob_size: config.max_blob_size,
            max_manifest_size: config.max_manifest_size,
            read_only: config.read_only,
            delete_enabled: config.delete_enabled,
            body_idle_timeout: config.body_idle_timeout,
            auth,
            token,
            token_realm: config.token_realm.clone(),
            tls: tls.is_some(),
            local_addr,
            uploads: Mutex::new(HashMap::new()),
        });
        let st = Arc::clone(&state);
        let max_age = config.upload_max_age;
        tokio::task::spawn_blocking(move || {
            st.storage.init()?;
            purge_stale_uploads(&st, max_age)
        })
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))??;
        Ok(Registry {
            listener,
            tls,
            local_addr,
            state,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves requests until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish (up to
    /// [`RegistryConfig::shutdown_timeout`]) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RegistryError> {
        let Registry {
            listener,
            tls,
            local_addr,
            state,
            config,
        } = self;
        tracing::info!(
            addr = %local_addr,
            root = %config.root.display(),
            auth = state.auth_mode(),
            tls = tls.is_some(),
            "registry listening"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut conns = JoinSet::new();
        let mut purge = tokio::time::interval(UPLOAD_PURGE_INTERVAL);
        purge.tick().await; // the first tick is immediate; bind() already purged
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                _ = purge.tick() => {
                    let st = Arc::clone(&state);
                    let max_age = config.upload_max_age;
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = purge_stale_uploads(&st, max_age) {
                            tracing::warn!(error = %e, "purging stale uploads failed");
                        }
                    });
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let state = Arc::clone(&state);
                        let stop = stop_rx.clone();
                        let header_timeout = config.header_read_timeout;
                        match &tls {
                            None => {
                                conns.spawn(serve_connection(stream, peer, state, stop, header_timeout));
                            }
                            Some(acceptor) => {
                                let acceptor = acceptor.clone();
                                conns.spawn(async move {
                                    // Bounded like reading the request headers, so
                                    // a silent client cannot hold a task forever.
                                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                                        Ok(Ok(tls_stream)) => {
                                            serve_connection(tls_stream, peer, state, stop, header_timeout).await;
                                        }
                                        Ok(Err(e)) => {
                                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                        }
                                        Err(_) => {
                                            tracing::debug!(%peer, "TLS handshake timed out");
                                        }
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        tracing::info!(open_connections = conns.len(), "registry shutting down");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = conns.len(),
                "aborting connections still open after shutdown timeout"
            );
            conns.shutdown().await;
        }
        Ok(())
    }
}

/// Loads what `bind` needs from files: htpasswd, token issuer, TLS.
fn load_credentials(config: &RegistryConfig) -> Result<Credentials, RegistryError> {
    let auth = match &config.htpasswd {
        Some(p) => Some(Arc::new(auth::Htpasswd::load(p)?)),
        None => None,
    };
    let token = match (auth.is_some(), config.auth_mode) {
        (true, AuthMode::Token) => Some(Arc::new(match &config.token_key {
            Some(p) => token::TokenIssuer::from_key_file(p, config.token_ttl)?,
            None => token::TokenIssuer::random(config.token_ttl),
        })),
        _ => {
            if config.token_key.is_some() {
                tracing::warn!("token_key is ignored: token authentication is not enabled");
            }
            None
        }
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::from(tls::server_config(
            cert,
            key,
            config.tls_client_ca.as_deref(),
        )?)),
        _ => None,
    };
    Ok((auth, token, tls))
}

type Credentials = (
    Option<Arc<auth::Htpasswd>>,
    Option<Arc<token::TokenIssuer>>,
    Option<TlsAcceptor>,
);

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handlers::handle(Arc::clone(&state), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                // Either the stop signal or the sender going away: finish
                // the current request and close.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Binds and runs a registry until `shutdown` resolves. Use
/// [`Registry::bind`] + [`Registry::run`] to learn the bound address first.
pub async fn serve(
    config: RegistryConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RegistryError> {
    Registry::bind(config).await?.run(shutdown).await
}
