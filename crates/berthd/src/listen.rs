//! Where berthd listens, with dockerd's `-H` forms: `unix:///path`,
//! `tcp://HOST:PORT` and `fd://` (the sockets systemd passes on socket
//! activation). Whoever reaches the API is root on this machine, so TCP is
//! served only with TLS that requires a client certificate signed by
//! `--tlscacert` (`--tlsverify`), except on a loopback address, where plain TCP
//! or server-only TLS is allowed with a loud warning.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::Engine;

/// dockerd's ports: 2375 for plain TCP, 2376 with TLS.
const PLAIN_PORT: u16 = 2375;
const TLS_PORT: u16 = 2376;
/// A client that connects but never finishes its handshake is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `HOST:PORT` as given (resolved when bound).
    Tcp(String),
    /// Every socket systemd passed, or the one with this descriptor number.
    Fd(Option<RawFd>),
}

/// `--tls*` settings (dockerd's flags and defaults, under /etc/berth).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub tls: bool,
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsOptions {
    fn enabled(&self) -> bool {
        self.tls || self.verify
    }
}

/// Parses one `-H` value as dockerd does: `tcp://` without a host means
/// localhost, without a port 2375 (2376 with TLS).
pub fn parse_host(value: &str, tls: bool) -> Result<Host, String> {
    let bad = |why: &str| format!("invalid host {value:?}: {why}");
    if let Some(path) = value.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad("a unix socket needs a path"));
        }
        return Ok(Host::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = value.strip_prefix("fd://") {
        if rest.is_empty() {
            return Ok(Host::Fd(None));
        }
        return rest
            .parse()
            .map(|fd| Host::Fd(Some(fd)))
            .map_err(|_| bad("fd:// takes a descriptor number or nothing"));
    }
    if let Some(rest) = value.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        let default_port = if tls { TLS_PORT } else { PLAIN_PORT };
        let (host, port) = match rest.rsplit_once(':') {
            // `[::1]:2376`, `host:2376`, `:2376`; a bare IPv6 address needs brackets.
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                let port = p.parse::<u16>().map_err(|_| bad("bad port"))?;
                (h, port)
            }
            _ => (rest, default_port),
        };
        let host = if host.is_empty() { "localhost" } else { host };
        return Ok(Host::Tcp(format!("{host}:{port}")));
    }
    if value.starts_with('/') {
        return Ok(Host::Unix(PathBuf::from(value)));
    }
    Err(bad("expected unix://PATH, tcp://HOST:PORT or fd://"))
}

/// A bound listener, ready to serve.
pub enum Listener {
    Unix {
        listener: tokio::net::UnixListener,
        /// Removed at exit when berthd made it (not for systemd's sockets).
        owned_path: Option<PathBuf>,
    },
    Tcp {
        listener: tokio::net::TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    },
}

impl Listener {
    pub fn owned_path(&self) -> Option<&Path> {
        match self {
            Listener::Unix { owned_path, .. } => owned_path.as_deref(),
            Listener::Tcp { .. } => None,
        }
    }
}

/// Binds every host (after checking them all, so a refused TCP host binds
/// nothing).
pub fn bind_all(hosts: &[Host], tls: &TlsOptions) -> Result<Vec<Listener>, String> {
    let mut acceptor = None;
    let mut tcp = Vec::new();
    for host in hosts {
        if let Host::Tcp(addr) = host {
            let resolved = resolve(addr)?;
            check_exposure(&format!("tcp://{addr}"), &resolved, tls)?;
            tcp.push(resolved);
        }
    }
    let mut listeners = Vec::new();
    let mut tcp = tcp.into_iter();
    for host in hosts {
        match host {
            Host::Unix(path) => listeners.push(bind_unix(path)?),
            Host::Tcp(_) => {
                let Some(addr) = tcp.next() else { continue };
                let listener = std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .and_then(tokio::net::TcpListener::from_std)
                    .map_err(|e| format!("listen on tcp://{addr}: {e}"))?;
                listeners.push(Listener::Tcp {
                    listener,
                    tls: tls_acceptor(&mut acceptor, tls)?,
                });
            }
            Host::Fd(which) => {
                for listener in crate::systemd::listeners(*which)? {
                    if let Listener::Tcp { listener: l, .. } = &listener {
                        let addr = l
                            .local_addr()
                            .map_err(|e| format!("fd://: read the socket's address: {e}"))?;
                        check_exposure("fd://", &addr, tls)?;
                        let Listener::Tcp { listener: l, .. } = listener else {
                            continue;
                        };
                        listeners.push(Listener::Tcp {
                            listener: l,
                            tls: tls_acceptor(&mut acceptor, tls)?,
                        });
                    } else {
                        listeners.push(listener);
                    }
                }
            }
        }
    }
    Ok(listeners)
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| format!("tcp://{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("tcp://{addr}: the name has no address"))
}

/// The rule of the module doc: non-loopback TCP needs `--tlsverify`.
fn check_exposure(shown: &str, addr: &SocketAddr, tls: &TlsOptions) -> Result<(), String> {
    if tls.verify {
        return Ok(());
    }
    if !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {shown} ({addr}) without --tlsverify: anyone who can reach it \
             would control this machine as root. Give --tlsverify with --tlscacert, --tlscert and \
             --tlskey, or listen on a loopback address"
        ));
    }
    let what = if tls.tls {
        "TLS without client certificates"
    } else {
        "plain TCP without encryption or authentication"
    };
    let warning = format!(
        "API listening on {shown} ({addr}) with {what}: every local user who can connect to it \
         controls this machine as root; use --tlsverify"
    );
    eprintln!("berthd: WARNING: {warning}");
    tracing::warn!("{warning}");
    Ok(())
}

fn bind_unix(path: &Path) -> Result<Listener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    // Root-only, like docker.sock (group root).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(Listener::Unix {
        listener,
        owned_path: Some(path.to_path_buf()),
    })
}

/// One acceptor for every TCP listener; `None` for plain TCP.
fn tls_acceptor(
    built: &mut Option<tokio_rustls::TlsAcceptor>,
    tls: &TlsOptions,
) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    if !tls.enabled() {
        return Ok(None);
    }
    if built.is_none() {
        *built = Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_config(
            tls,
        )?)));
    }
    Ok(built.clone())
}

fn pem_certs(path: &Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The server's TLS settings: its certificate and key, and with `--tlsverify`
/// a verifier that requires a client certificate chaining to `--tlscacert`.
fn server_config(tls: &TlsOptions) -> Result<rustls::ServerConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if tls.verify {
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certs(&tls.ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", tls.ca.display()))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tlscacert {}: {e}", tls.ca.display()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("read the key {}: {e}", tls.key.display()))?;
    builder
        .with_single_cert(pem_certs(&tls.cert)?, key)
        .map_err(|e| format!("--tlscert/--tlskey: {e}"))
}

/// Accepts connections on `listener` forever, each served on its own task.
pub async fn serve(engine: Arc<Engine>, listener: Listener) {
    match listener {
        Listener::Unix { listener, .. } => loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(berth_api::serve_connection(engine.clone(), stream));
                }
                Err(e) => accept_failed(e).await,
            }
        },
        Listener::Tcp { listener, tls } => loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let engine = engine.clone();
            let Some(acceptor) = tls.clone() else {
                tokio::spawn(berth_api::serve_connection(engine, stream));
                continue;
            };
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(session)) => berth_api::serve_connection(engine, session).await,
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                }
            });
        },
    }
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_dockerd_parses_them() {
        assert_eq!(
            parse_host("unix:///run/x.sock", false),
            Ok(Host::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            parse_host("tcp://0.0.0.0:2376", true),
            Ok(Host::Tcp("0.0.0.0:2376".into()))
        );
        assert_eq!(
            parse_host("tcp://", false),
            Ok(Host::Tcp("localhost:2375".into()))
        );
        assert_eq!(
            parse_host("tcp://:9999", true),
            Ok(Host::Tcp("localhost:9999".into()))
        );
        assert_eq!(
            parse_host("tcp://10.0.0.1", true),
            Ok(Host::Tcp("10.0.0.1:2376".into()))
        );
        assert_eq!(
            parse_host("tcp://[::1]:2376", true),
            Ok(Host::Tcp("[::1]:2376".into()))
        );
        assert_eq!(parse_host("fd://", false), Ok(Host::Fd(None)));
        assert_eq!(parse_host("fd://3", false), Ok(Host::Fd(Some(3))));
        assert!(parse_host("tcp://h:port", false).is_err());
        assert!(parse_host("http://h:1", false).is_err());
        assert!(parse_host("unix://", false).is_err());
    }

    #[test]
    fn only_loopback_may_go_without_client_certificates() {
        let mut tls = TlsOptions {
            tls: false,
            verify: false,
            ca: PathBuf::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
        };
        let public: SocketAddr = "0.0.0.0:2375".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:2375".parse().unwrap();
        assert!(check_exposure("tcp://", &public, &tls).is_err());
        assert!(check_exposure("tcp://", &loopback, &tls).is_ok());
        tls.tls = true;
        assert!(check_exposure("tcp://", &public, &tls).is_err());
        tls.verify = true;
        assert!(check_exposure("tcp://", &public, &tls).is_ok());
    }
}
