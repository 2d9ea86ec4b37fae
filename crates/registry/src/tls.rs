//! TLS for the listener: loads the PEM certificate chain, private key and
//! optional client CA bundle into a rustls server configuration (ring
//! provider, TLS 1.2 and 1.3, ALPN `http/1.1`).

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;

fn pem_error(path: &Path, what: &'static str, e: pem::Error) -> TlsError {
    match e {
        pem::Error::Io(source) => TlsError::Read {
            path: path.to_path_buf(),
            what,
            source,
        },
        pem::Error::NoItemsFound => TlsError::Pem {
            path: path.to_path_buf(),
            what,
            reason: match what {
                "private key" => "no PKCS#8, RSA or EC private key found".into(),
                _ => "no certificate found".into(),
            },
        },
        other => TlsError::Pem {
            path: path.to_path_buf(),
            what,
            reason: other.to_string(),
        },
    }
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, what, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, what, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, what, pem::Error::NoItemsFound));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, "private key", e))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration. Blocking (reads files).
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert, "certificate")?;
    let key_der = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Setup {
            reason: "no usable protocol versions".into(),
            source,
        })?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca, "client CA")? {
                roots.add(c).map_err(|e| TlsError::Pem {
                    path: ca.to_path_buf(),
                    what: "client CA",
                    reason: format!("unusable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::Pem {
                    path: ca.to_path_buf(),
                    what: "client CA",
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder
            .with_single_cert(chain, key_der)
            .map_err(|source| TlsError::Setup {
                reason: format!(
                    "certificate {} and private key {} are not usable together",
                    cert.display(),
                    key.display()
                ),
                source,
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
