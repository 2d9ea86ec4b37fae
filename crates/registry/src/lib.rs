//! `berth-registry`: an OCI Distribution Spec v1.1 registry server.
//!
//! Serves the pull, push, content-discovery (tags, catalog, referrers) and
//! content-management (delete) parts of the spec over HTTP/1.1, for OCI
//! image manifests and indexes and Docker schema2 manifests and manifest
//! lists. Optional HTTP Basic authentication against an htpasswd file.
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

pub use auth::REALM;
pub use error::{AuthError, ErrorCode, GcError, RegistryError, StorageError};
pub use gc::{garbage_collect, garbage_collect_with, GcOptions, GcReport};
pub use manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
pub use name::Digest;

use handlers::AppState;
use storage::Storage;

/// Default [`RegistryConfig::max_blob_size`]: 10 GiB.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 10 << 30;
/// Default [`RegistryConfig::max_manifest_size`]: 4 MiB.
pub const DEFAULT_MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// How often stale upload sessions are purged while running.
const UPLOAD_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

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
    /// htpasswd file; when set, every request needs HTTP Basic
    /// credentials matching a bcrypt or `{SHA}` entry. Read at start.
    pub htpasswd: Option<PathBuf>,
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
}

/// A bound, not yet running registry server.
pub struct Registry {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    config: RegistryConfig,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("local_addr", &self.local_addr)
            .field("root", &self.config.root)
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
    /// Prepares the storage root, loads the htpasswd file and binds the
    /// listener. Stale upload sessions and temporary files are removed.
    pub async fn bind(config: RegistryConfig) -> Result<Registry, RegistryError> {
        if config.max_manifest_size == 0 || config.max_blob_size == 0 {
            return Err(RegistryError::Config("size limits must be positive".into()));
        }
        let auth = match &config.htpasswd {
            Some(p) => {
                let p = p.clone();
                let h = tokio::task::spawn_blocking(move || auth::Htpasswd::load(&p))
                    .await
                    .map_err(|e| RegistryError::Task(e.to_string()))??;
                Some(Arc::new(h))
            }
            None => None,
        };
        let state = Arc::new(AppState {
            storage: Storage::new(&config.root),
            max_blob_size: config.max_blob_size,
            max_manifest_size: config.max_manifest_size,
            read_only: config.read_only,
            delete_enabled: config.delete_enabled,
            body_idle_timeout: config.body_idle_timeout,
            auth,
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
        Ok(Registry {
            listener,
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
            local_addr,
            state,
            config,
        } = self;
        tracing::info!(
            addr = %local_addr,
            root = %config.root.display(),
            auth = state.auth.is_some(),
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
                        conns.spawn(serve_connection(stream, peer, state, stop, header_timeout));
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

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_timeout: Duration,
) {
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
