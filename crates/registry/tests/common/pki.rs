//! Test certificates made with the `openssl` CLI, and rustls client
//! configurations trusting them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (is it installed?)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA with its certificate and key, in `dir`.
pub struct Ca {
    pub dir: PathBuf,
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate signed by a [`Ca`] and its key.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A self-signed EC P-256 CA named `name` (files `<name>.crt/.key`).
    pub fn new(dir: &Path, name: &str) -> Ca {
        let cert = format!("{name}.crt");
        let key = format!("{name}.key");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &cert,
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Ca {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }

    /// Signs a leaf certificate `<name>.crt` for `key` (a key file that
    /// already exists in the CA's dir), with the given X.509v3 extensions.
    fn sign(&self, name: &str, key: &str, exts: &str) -> Leaf {
        let dir = &self.dir;
        let csr = format!("{name}.csr");
        let ext = format!("{name}.ext");
        let cert = format!("{name}.crt");
        std::fs::write(dir.join(&ext), exts).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                key,
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &csr,
            ],
        );
        let serial = format!("0x{}", hex::encode(rand::random::<[u8; 8]>()));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                self.cert.to_str().unwrap(),
                "-CAkey",
                self.key.to_str().unwrap(),
                "-set_serial",
                &serial,
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        );
        Leaf {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }

    /// A server certificate for 127.0.0.1 (IP SAN) and localhost. `key_kind`
    /// picks the key file format: "sec1" (EC PRIVATE KEY), "pkcs8" (PRIVATE
    /// KEY, EC) or "rsa" (PKCS#1 RSA PRIVATE KEY).
    pub fn server(&self, name: &str, key_kind: &str) -> Leaf {
        let key = format!("{name}.key");
        match key_kind {
            "sec1" => openssl(
                &self.dir,
                &[
                    "ecparam",
                    "-genkey",
                    "-name",
                    "prime256v1",
                    "-noout",
                    "-out",
                    &key,
                ],
            ),
            "pkcs8" => openssl(
                &self.dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-out",
                    &key,
                ],
            ),
            "rsa" => openssl(&self.dir, &["genrsa", "-traditional", "-out", &key, "2048"]),
            other => panic!("unknown key kind {other}"),
        }
        self.sign(
            name,
            &key,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
    }

    /// A client certificate (EC, PKCS#8 key).
    pub fn client(&self, name: &str) -> Leaf {
        let key = format!("{name}.key");
        openssl(
            &self.dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-out",
                &key,
            ],
        );
        self.sign(
            name,
            &key,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
    }
}

/// A rustls client trusting `ca`, optionally presenting a client certificate.
pub fn client_config(ca: &Path, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(&leaf.cert)
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_file(&leaf.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
