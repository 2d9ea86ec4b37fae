//! TLS toward registries: the system's roots plus docker's `certs.d` layout
//! (`<dir>/<host:port>/*.crt` CAs, `client.cert` + `client.key`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{DistributionError, Result};

const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

fn certificates(
    context: String,
    e: impl std::error::Error + Send + Sync + 'static,
) -> DistributionError {
    DistributionError::Certificates {
        context,
        source: Box::new(e),
    }
}

fn pem_items(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let context = || format!("read {}", path.display());
    CertificateDer::pem_file_iter(path)
        .map_err(|e| certificates(context(), e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| certificates(context(), e))
}

/// The rustls client config for `host`: system roots, the host's `*.crt` files
/// and its `*.cert`/`*.key` pair from each of `dirs` (docker's certs.d layout).
pub(crate) fn client_config(host: &str, dirs: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()) {
        let (_added, _ignored) = roots.add_parsable_certificates(pem_items(bundle)?);
    }
    let mut client_auth = None;
    for dir in dirs.iter().map(|d| d.join(host)).filter(|d| d.is_dir()) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".crt") {
                for cert in pem_items(&path)? {
                    roots
                        .add(cert)
                        .map_err(|e| certificates(format!("CA {}", path.display()), e))?;
                }
            } else if name.ends_with(".cert") {
                let key_path = path.with_extension("key");
                let key = PrivateKeyDer::from_pem_file(&key_path)
                    .map_err(|e| certificates(format!("client key {}", key_path.display()), e))?;
                client_auth = Some((pem_items(&path)?, key));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| certificates("TLS protocol versions".into(), e))?
        .with_root_certificates(roots);
    let config = match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| certificates(format!("client certificate for {host}"), e))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
