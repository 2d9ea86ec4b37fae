//! Reaching berthd over TCP, with or without TLS, as the docker CLI does
//! (`-H tcp://HOST:PORT --tlsverify --tlscacert --tlscert --tlskey`).
//!
//! The HTTP client speaks to a `UnixStream` whatever the transport: a TCP or TLS
//! connection is bridged to one end of a socket pair by two threads, so
//! requests, streamed bodies and hijacked attach/exec streams (with their
//! half-close) work the same over every transport.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::ServerName;

/// What the user asked for: `--tls`, `--tlsverify` and the three files.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Encrypt, but do not check the daemon's certificate (docker's `--tls`).
    pub tls: bool,
    /// Encrypt and check the daemon's certificate against `ca`.
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        self.tls || self.verify
    }
}

/// A TCP endpoint, with the TLS configuration built once per CLI run.
#[derive(Clone)]
pub struct TcpEndpoint {
    /// HOST:PORT
    pub addr: String,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl TcpEndpoint {
    /// `addr` is HOST:PORT; TLS files are read now, so a missing one is
    /// reported before any request.
    pub fn new(addr: &str, settings: &TlsSettings) -> Result<TcpEndpoint, String> {
        let tls = if settings.enabled() {
            let host = addr
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(addr)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("invalid server name {host:?}: {e}"))?;
            Some((Arc::new(client_config(settings)?), name))
        } else {
            None
        };
        Ok(TcpEndpoint {
            addr: addr.to_string(),
            tls,
        })
    }

    /// Connects (and completes the TLS handshake), returning the local end of
    /// the bridge.
    pub fn connect(&self) -> io::Result<UnixStream> {
        let tcp = TcpStream::connect(&self.addr)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => bridge_plain(tcp),
            Some((config, name)) => {
                let mut session = rustls::ClientConnection::new(config.clone(), name.clone())
                    .map_err(io::Error::other)?;
                let mut tcp = tcp;
                while session.is_handshaking() {
                    session.complete_io(&mut tcp)?;
                }
                bridge_tls(session, tcp)
            }
        }
    }
}

fn pem_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("could not read {}: {e}", path.display()))
}

fn client_config(settings: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if settings.verify {
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certs(&settings.ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", settings.ca.display()))?;
        }
        builder.with_root_certificates(roots)
    } else {
        // docker's `--tls` without `--tlsverify`: encrypted, daemon unchecked.
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
    };
    // The client certificate is sent when both files exist (docker's rule).
    if settings.cert.is_file() && settings.key.is_file() {
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&settings.key)
            .map_err(|e| format!("could not read {}: {e}", settings.key.display()))?;
        builder
            .with_client_auth_cert(pem_certs(&settings.cert)?, key)
            .map_err(|e| format!("client certificate {}: {e}", settings.cert.display()))
    } else {
        Ok(builder.with_no_client_auth())
    }
}

/// Accepts any server certificate (the user chose `--tls` without
/// `--tlsverify`); signatures are still checked so the session is sound.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Copies bytes both ways between a plain TCP connection and a socket pair.
fn bridge_plain(tcp: TcpStream) -> io::Result<UnixStream> {
    let (local, remote) = UnixStream::pair()?;
    let (mut tcp_in, mut tcp_out) = (tcp.try_clone()?, tcp);
    let (mut remote_in, mut remote_out) = (remote.try_clone()?, remote);
    std::thread::spawn(move || {
        let _ = io::copy(&mut tcp_in, &mut remote_out);
        let _ = remote_out.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = io::copy(&mut remote_in, &mut tcp_out);
        let _ = tcp_out.shutdown(Shutdown::Write);
    });
    Ok(local)
}

/// The TLS session and the socket its records go out on. Records are taken
/// from the session and written under the writer's lock, taken while the
/// session's lock is still held, so records leave in the order they were made.
struct Tls {
    session: Mutex<rustls::ClientConnection>,
    writer: Mutex<TcpStream>,
}

impl Tls {
    /// Sends whatever records the session has pending.
    fn flush(
        &self,
        mut session: std::sync::MutexGuard<'_, rustls::ClientConnection>,
    ) -> io::Result<()> {
        let mut records = Vec::new();
        while session.wants_write() {
            session.write_tls(&mut records)?;
        }
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        drop(session);
        writer.write_all(&records)
    }
}

/// Bridges an established TLS session to a socket pair: one thread decrypts
/// what arrives, one encrypts what the client writes; the client's half-close
/// becomes close_notify.
fn bridge_tls(session: rustls::ClientConnection, tcp: TcpStream) -> io::Result<UnixStream> {
    let (local, remote) = UnixStream::pair()?;
    let mut tcp_in = tcp.try_clone()?;
    let tls = Arc::new(Tls {
        session: Mutex::new(session),
        writer: Mutex::new(tcp),
    });
    let (mut remote_in, mut remote_out) = (remote.try_clone()?, remote);
    let inbound = tls.clone();
    std::thread::spawn(move || {
        if let Err(e) = pump_inbound(&inbound, &mut tcp_in, &mut remote_out) {
            // A daemon that closes without close_notify ends the stream all the
            // same; what else fails (a refused certificate) is worth saying.
            if !matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
            ) {
                eprintln!("error during connect: {e}");
            }
        }
        let _ = remote_out.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = pump_outbound(&tls, &mut remote_in);
        if let Ok(mut session) = tls.session.lock() {
            session.send_close_notify();
            let _ = tls.flush(session);
        }
        if let Ok(w) = tls.writer.lock() {
            let _ = w.shutdown(Shutdown::Write);
        }
    });
    Ok(local)
}

/// Network → client, until the daemon closes the session.
fn pump_inbound(tls: &Tls, tcp: &mut TcpStream, out: &mut UnixStream) -> io::Result<()> {
    let mut raw = vec![0u8; 32 * 1024];
    let mut plain = vec![0u8; 32 * 1024];
    loop {
        let n = tcp.read(&mut raw)?;
        let mut incoming = &raw[..n];
        loop {
            let mut session = tls
                .session
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?;
            if !incoming.is_empty() {
                session.read_tls(&mut incoming)?;
            } else if n == 0 {
                // The peer closed TCP: let the session see the end.
                session.read_tls(&mut incoming)?;
            }
            session.process_new_packets().map_err(io::Error::other)?;
            let mut decrypted = Vec::new();
            let mut closed = false;
            loop {
                match session.reader().read(&mut plain) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(k) => decrypted.extend_from_slice(&plain[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            tls.flush(session)?;
            out.write_all(&decrypted)?;
            if closed {
                return Ok(());
            }
            if incoming.is_empty() {
                break;
            }
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// Client → network, until the client half-closes.
fn pump_outbound(tls: &Tls, input: &mut UnixStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut session = tls
            .session
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        session.writer().write_all(&buf[..n])?;
        tls.flush(session)?;
    }
}
