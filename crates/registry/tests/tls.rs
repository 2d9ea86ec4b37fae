//! HTTPS: the registry behind rustls, with certificates made by the
//! `openssl` CLI, including mutual TLS and start-up errors for bad files.

mod common;

use std::path::Path;
use std::time::Duration;

use berth_registry::{AuthMode, Registry, RegistryConfig, RegistryError};
use bytes::Bytes;
use common::pki::{client_config, Ca, Leaf};
use common::*;

struct Pki {
    _dir: tempfile::TempDir,
    ca: Ca,
    server: Leaf,
    other_ca: Ca,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.server("server", "sec1");
    let other_ca = Ca::new(dir.path(), "other-ca");
    Pki {
        _dir: dir,
        ca,
        server,
        other_ca,
    }
}

async fn start_tls(p: &Pki, f: impl FnOnce(&mut RegistryConfig)) -> TestRegistry {
    let (cert, key) = (p.server.cert.clone(), p.server.key.clone());
    TestRegistry::start_with(move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
        f(c);
    })
    .await
}

#[tokio::test]
async fn https_base_and_blob_upload_download() {
    let p = pki();
    let mut reg = start_tls(&p, |_| {}).await;
    let c = reg.client().with_tls(client_config(&p.ca.cert, None));
    let r = c.get("/v2/").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Monolithic upload and download.
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let d = c.push_blob("secure/app", &data).await;
    let g = c.get(&format!("/v2/secure/app/blobs/{d}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(&g.body[..], &data[..]);

    // Chunked upload over TLS too.
    let r = c
        .req("POST", "/v2/secure/app/blobs/uploads/", &[], Bytes::new())
        .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    let chunk = b"chunk-over-tls".repeat(1000);
    let r = c
        .req(
            "PATCH",
            &loc,
            &[("content-range", &format!("0-{}", chunk.len() - 1))],
            chunk.clone(),
        )
        .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    let d2 = digest(&chunk);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = c
        .req("PUT", &format!("{loc}{sep}digest={d2}"), &[], Bytes::new())
        .await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let g = c.get(&format!("/v2/secure/app/blobs/{d2}")).await;
    assert_eq!(&g.body[..], &chunk[..]);

    c.push_image("secure/img", "v1", "tls").await;
    assert_eq!(c.get("/v2/secure/img/manifests/v1").await.status, 200);
    reg.stop().await;
}

#[tokio::test]
async fn plain_http_to_tls_port_fails() {
    let p = pki();
    let mut reg = start_tls(&p, |_| {}).await;
    // A plain HTTP client gets no HTTP response.
    let plain = reg.client();
    let err = plain.try_req("GET", "/v2/", &[], Bytes::new()).await;
    assert!(err.is_err(), "plain HTTP got {err:?}");
    let raw_resp = raw(
        reg.addr,
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        false,
        Duration::from_secs(5),
    )
    .await;
    assert!(!raw_resp.contains("HTTP/1."), "{raw_resp:?}");
    // The server is still fine afterwards.
    let c = reg.client().with_tls(client_config(&p.ca.cert, None));
    assert_eq!(c.get("/v2/").await.status, 200);
    reg.stop().await;
}

#[tokio::test]
async fn client_trusting_another_ca_fails() {
    let p = pki();
    let mut reg = start_tls(&p, |_| {}).await;
    let c = reg.client().with_tls(client_config(&p.other_ca.cert, None));
    let err = c
        .try_req("GET", "/v2/", &[], Bytes::new())
        .await
        .unwrap_err();
    assert!(err.contains("TLS handshake"), "{err}");
    reg.stop().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let p = pki();
    let good = p.ca.client("client");
    let rogue = p.other_ca.client("rogue");
    let client_ca = p.ca.cert.clone();
    let mut reg = start_tls(&p, |c| c.tls_client_ca = Some(client_ca)).await;

    // No certificate: refused (during the handshake, or at the first read
    // with TLS 1.3, where the client finishes before the server checks).
    let anon = reg.client().with_tls(client_config(&p.ca.cert, None));
    let r = anon.try_req("GET", "/v2/", &[], Bytes::new()).await;
    assert!(r.is_err(), "no client cert got {r:?}");
    // A certificate from another CA: refused.
    let bad = reg
        .client()
        .with_tls(client_config(&p.ca.cert, Some(&rogue)));
    let r = bad.try_req("GET", "/v2/", &[], Bytes::new()).await;
    assert!(r.is_err(), "rogue client cert got {r:?}");
    // A certificate signed by the client CA: works, uploads included.
    let ok = reg
        .client()
        .with_tls(client_config(&p.ca.cert, Some(&good)));
    assert_eq!(ok.get("/v2/").await.status, 200);
    let d = ok.push_blob("mtls/app", b"mutually authenticated").await;
    let g = ok.get(&format!("/v2/mtls/app/blobs/{d}")).await;
    assert_eq!(&g.body[..], b"mutually authenticated");
    reg.stop().await;
}

async fn bind_err(root: &Path, f: impl FnOnce(&mut RegistryConfig)) -> String {
    let mut cfg = RegistryConfig::new("127.0.0.1:0".parse().unwrap(), root);
    f(&mut cfg);
    match Registry::bind(cfg).await {
        Ok(_) => panic!("bind succeeded"),
        Err(e) => {
            assert!(
                matches!(e, RegistryError::Tls(_) | RegistryError::Config(_)),
                "{e:?}"
            );
            e.to_string()
        }
    }
}

#[tokio::test]
async fn bad_tls_files_fail_bind_naming_the_path() {
    let p = pki();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let missing = tmp.path().join("no-such-cert.pem");
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let bad_pem = tmp.path().join("bad.pem");
    std::fs::write(
        &bad_pem,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    let key = p.server.key.clone();
    let e = bind_err(&root, |c| {
        c.tls_cert = Some(missing.clone());
        c.tls_key = Some(key.clone());
    })
    .await;
    assert!(
        e.contains("no-such-cert.pem") && e.contains("certificate"),
        "{e}"
    );

    let e = bind_err(&root, |c| {
        c.tls_cert = Some(garbage.clone());
        c.tls_key = Some(key.clone());
    })
    .await;
    assert!(
        e.contains("garbage.pem") && e.contains("no certificate"),
        "{e}"
    );

    let e = bind_err(&root, |c| {
        c.tls_cert = Some(bad_pem.clone());
        c.tls_key = Some(key.clone());
    })
    .await;
    assert!(e.contains("bad.pem"), "{e}");

    // The certificate file given as the key: no private key in it.
    let cert = p.server.cert.clone();
    let e = bind_err(&root, |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(cert.clone());
    })
    .await;
    assert!(e.contains("server.crt") && e.contains("private key"), "{e}");

    // A key that does not belong to the certificate.
    let other_key = p.other_ca.key.clone();
    let e = bind_err(&root, |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(other_key.clone());
    })
    .await;
    assert!(
        e.contains("server.crt") && e.contains("other-ca.key"),
        "{e}"
    );

    // Missing client CA.
    let e = bind_err(&root, |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(key.clone());
        c.tls_client_ca = Some(tmp.path().join("no-ca.pem"));
    })
    .await;
    assert!(e.contains("no-ca.pem") && e.contains("client CA"), "{e}");

    // Half a configuration.
    let e = bind_err(&root, |c| c.tls_cert = Some(cert.clone())).await;
    assert!(e.contains("tls_cert and tls_key"), "{e}");
    let e = bind_err(&root, |c| c.tls_client_ca = Some(cert.clone())).await;
    assert!(e.contains("tls_client_ca"), "{e}");
}

#[tokio::test]
async fn rsa_and_pkcs8_keys_are_accepted() {
    let p = pki();
    for kind in ["rsa", "pkcs8"] {
        let leaf = p.ca.server(&format!("server-{kind}"), kind);
        let head = std::fs::read_to_string(&leaf.key).unwrap();
        let expected = if kind == "rsa" {
            "-----BEGIN RSA PRIVATE KEY-----"
        } else {
            "-----BEGIN PRIVATE KEY-----"
        };
        assert!(head.starts_with(expected), "{head}");
        let mut reg = TestRegistry::start_with(|c| {
            c.tls_cert = Some(leaf.cert.clone());
            c.tls_key = Some(leaf.key.clone());
        })
        .await;
        let c = reg.client().with_tls(client_config(&p.ca.cert, None));
        assert_eq!(c.get("/v2/").await.status, 200, "{kind}");
        reg.stop().await;
    }
}

#[tokio::test]
async fn token_mode_over_tls_announces_an_https_realm() {
    let p = pki();
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("u:{}\n", bcrypt::hash("p", 4).unwrap())).unwrap();
    let mut reg = start_tls(&p, |c| {
        c.htpasswd = Some(htpasswd.clone());
        c.auth_mode = AuthMode::Token;
    })
    .await;
    let c = reg.client().with_tls(client_config(&p.ca.cert, None));
    let r = c.get("/v2/x/tags/list").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            "Bearer realm=\"https://{}/token\",service=\"berth-registry\",scope=\"repository:x:pull\"",
            reg.addr
        )
    );
    let t = c
        .clone()
        .with_basic("u", "p")
        .get("/token?service=berth-registry&scope=repository:x:pull")
        .await;
    assert_eq!(t.status, 200);
    let token = t.json()["token"].as_str().unwrap().to_string();
    let r = c.with_bearer(&token).get("/v2/x/tags/list").await;
    assert_eq!(r.status, 404); // authorized; the repository does not exist
    assert_eq!(r.error_code(), "NAME_UNKNOWN");
    reg.stop().await;
}

/// The `serve` binary with the TLS and token flags.
#[tokio::test]
async fn binary_serves_https_with_token_auth() {
    use tokio::io::AsyncBufReadExt;
    let p = pki();
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("u:{}\n", bcrypt::hash("p", 4).unwrap())).unwrap();
    let key_file = tmp.path().join("token.key");
    std::fs::write(
        &key_file,
        "0123456789abcdef0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_berth-registry");

    // Flag errors are usage errors.
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--root"])
        .arg(tmp.path().join("r"))
        .args(["--tls-cert"])
        .arg(&p.server.cert)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--auth", "token", "--root"])
        .arg(tmp.path().join("r"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A bad key file is a start-up failure naming it.
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(tmp.path().join("r"))
        .arg("--tls-cert")
        .arg(&p.server.cert)
        .arg("--tls-key")
        .arg(tmp.path().join("nope.key"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.key"));

    let mut child = tokio::process::Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(tmp.path().join("r"))
        .arg("--htpasswd")
        .arg(&htpasswd)
        .args(["--auth", "token", "--token-ttl", "60", "--token-key"])
        .arg(&key_file)
        .arg("--tls-cert")
        .arg(&p.server.cert)
        .arg("--tls-key")
        .arg(&p.server.key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("binary did not start")
        .unwrap()
        .unwrap();
    let addr: std::net::SocketAddr = line
        .strip_prefix("listening on ")
        .and_then(|l| l.strip_suffix(" (https)"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let c = Client {
        addr,
        auth: None,
        tls: Some(client_config(&p.ca.cert, None)),
    };
    let r = c.get("/v2/").await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with(&format!("Bearer realm=\"https://{addr}/token\"")));
    let t = c
        .clone()
        .with_basic("u", "p")
        .get("/token?service=berth-registry")
        .await;
    assert_eq!(t.status, 200);
    assert_eq!(t.json()["expires_in"], 60);
    let token = t.json()["token"].as_str().unwrap().to_string();
    assert_eq!(c.with_bearer(&token).get("/v2/").await.status, 200);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn skopeo_copy_into_tls_registry() {
    let Some(bin) = skopeo() else {
        eprintln!("SKIPPED: skopeo is not installed (apt-get install -y skopeo)");
        return;
    };
    let bin = bin.as_path();
    let p = pki();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let manifest_d = make_oci_layout(&src, "v1");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // skopeo's cert dir: the CA as ca.crt, a client pair as *.cert/*.key.
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&p.ca.cert, certs.join("ca.crt")).unwrap();

    let mut reg = start_tls(&p, |_| {}).await;
    let dest = format!("docker://{}/tls/img:v1", reg.addr);
    run_skopeo(
        bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            &format!("oci:{}:v1", src.display()),
            &dest,
        ],
    )
    .await;
    let c = reg.client().with_tls(client_config(&p.ca.cert, None));
    let r = c.head("/v2/tls/img/manifests/v1").await;
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));
    // Without the CA skopeo must refuse the server.
    let out = tokio::process::Command::new(bin)
        .args(["--insecure-policy", "inspect", "--raw", &dest])
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    reg.stop().await;

    // Mutual TLS: skopeo presents client.cert/client.key from the cert dir.
    let client = p.ca.client("skopeo-client");
    std::fs::copy(&client.cert, certs.join("client.cert")).unwrap();
    std::fs::copy(&client.key, certs.join("client.key")).unwrap();
    let client_ca = p.ca.cert.clone();
    let mut reg = start_tls(&p, |c| c.tls_client_ca = Some(client_ca)).await;
    run_skopeo(
        bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}/mtls/img:v1", reg.addr),
        ],
    )
    .await;
    let c = reg
        .client()
        .with_tls(client_config(&p.ca.cert, Some(&client)));
    let r = c.head("/v2/mtls/img/manifests/v1").await;
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));
    reg.stop().await;
}
