//! Bearer-token authentication (`AuthMode::Token`): challenges, the
//! `/token` endpoint, scope checks, expiry and tampering.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use berth_registry::{AuthMode, Registry, RegistryConfig, RegistryError};
use bytes::Bytes;
use common::*;

const USER: &str = "tokuser";
const PASS: &str = "t0k3n-pass";

fn htpasswd(dir: &Path) -> PathBuf {
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("{USER}:{}\n", bcrypt::hash(PASS, 4).unwrap())).unwrap();
    p
}

async fn start_token(dir: &Path, f: impl FnOnce(&mut RegistryConfig)) -> TestRegistry {
    let h = htpasswd(dir);
    TestRegistry::start_with(move |c| {
        c.htpasswd = Some(h);
        c.auth_mode = AuthMode::Token;
        f(c);
    })
    .await
}

fn challenge(reg: &TestRegistry, scope: Option<&str>, error: Option<&str>) -> String {
    let mut s = format!(
        "Bearer realm=\"http://{}/token\",service=\"berth-registry\"",
        reg.addr
    );
    if let Some(sc) = scope {
        s.push_str(&format!(",scope=\"{sc}\""));
    }
    if let Some(e) = error {
        s.push_str(&format!(",error=\"{e}\""));
    }
    s
}

/// Fetches a token for `scopes` with the right credentials.
async fn token(reg: &TestRegistry, scopes: &[&str]) -> String {
    let mut q = String::from("/token?service=berth-registry");
    for s in scopes {
        q.push_str("&scope=");
        q.push_str(&s.replace(':', "%3A").replace(',', "%2C"));
    }
    let r = reg.client().with_basic(USER, PASS).get(&q).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn anonymous_requests_get_bearer_challenges_with_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = start_token(tmp.path(), |_| {}).await;
    let anon = reg.client();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("GET", "/v2/", None),
        ("GET", "/v2/_catalog", Some("registry:catalog:*")),
        ("GET", "/v2/lib/app/tags/list", Some("repository:lib/app:pull")),
        ("GET", "/v2/lib/app/manifests/v1", Some("repository:lib/app:pull")),
        ("HEAD", "/v2/lib/app/manifests/v1", Some("repository:lib/app:pull")),
        (
            "GET",
            "/v2/lib/app/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            Some("repository:lib/app:pull"),
        ),
        ("PUT", "/v2/lib/app/manifests/v1", Some("repository:lib/app:pull,push")),
        ("POST", "/v2/lib/app/blobs/uploads/", Some("repository:lib/app:pull,push")),
        ("PATCH", "/v2/lib/app/blobs/uploads/abc", Some("repository:lib/app:pull,push")),
        ("DELETE", "/v2/lib/app/manifests/v1", Some("repository:lib/app:delete")),
    ];
    for (method, path, scope) in cases {
        let r = anon.req(method, path, &[], Bytes::new()).await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(challenge(&reg, *scope, None).as_str()),
            "{method} {path}"
        );
        if *method != "HEAD" {
            assert_eq!(r.error_code(), "UNAUTHORIZED");
        }
    }
    // Basic credentials are not accepted on /v2/ in token mode.
    let basic = reg.client().with_basic(USER, PASS);
    let r = basic.get("/v2/").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(&reg, None, None).as_str())
    );
    // A Host header that cannot go into the realm falls back to the address.
    let resp = raw(
        reg.addr,
        b"GET /v2/ HTTP/1.1\r\nHost: evil\",x=\"y\r\nConnection: close\r\n\r\n",
        false,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(raw_status(&resp), 401);
    assert!(
        resp.to_ascii_lowercase().contains(&format!(
            "www-authenticate: {}\r\n",
            challenge(&reg, None, None).to_ascii_lowercase()
        )),
        "{resp}"
    );
    reg.stop().await;
}

#[tokio::test]
async fn token_endpoint_checks_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = start_token(tmp.path(), |_| {}).await;
    let path = "/token?service=berth-registry&scope=repository:a:pull,push";

    let r = reg.client().get(path).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"berth-registry\"")
    );
    assert!(r.json().get("token").is_none());
    let r = reg.client().with_basic(USER, "wrong").get(path).await;
    assert_eq!(r.status, 401);
    let r = reg.client().with_basic("nobody", PASS).get(path).await;
    assert_eq!(r.status, 401);
    let r = reg.client().with_bearer("x.y.z").get(path).await;
    assert_eq!(r.status, 401);

    let ok = reg.client().with_basic(USER, PASS);
    let r = ok.get(path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    let tok = j["token"].as_str().unwrap();
    assert_eq!(j["access_token"].as_str(), Some(tok));
    assert_eq!(j["expires_in"], 300);
    let issued = j["issued_at"].as_str().unwrap();
    // RFC 3339, UTC: 2024-01-02T03:04:05Z
    assert_eq!(issued.len(), 20, "{issued}");
    assert!(issued.ends_with('Z') && &issued[10..11] == "T", "{issued}");
    assert!(issued.starts_with("20"), "{issued}");

    // The token is a JWT naming the user and the granted scopes.
    let parts: Vec<&str> = tok.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], USER);
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "a", "actions": ["pull", "push"]}])
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );

    // docker login: no scope at all.
    let r = ok
        .get("/token?service=berth-registry&account=tokuser")
        .await;
    assert_eq!(r.status, 200);
    // Scopes may also come space-separated ('+' or %20).
    let r = ok
        .get("/token?scope=repository:a:pull+repository:b:push%20registry:catalog:*")
        .await;
    assert_eq!(r.status, 200);
    // Wrong service, wrong method, too many scopes.
    assert_eq!(ok.get("/token?service=other").await.status, 400);
    assert_eq!(
        ok.req("POST", "/token", &[], Bytes::new()).await.status,
        405
    );
    let many: String = (0..100)
        .map(|i| format!("&scope=repository:r{i}:pull"))
        .collect();
    assert_eq!(ok.get(&format!("/token?x=1{many}")).await.status, 400);
    reg.stop().await;
}

#[tokio::test]
async fn token_scopes_allow_and_deny() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = start_token(tmp.path(), |_| {}).await;

    // Push with a pull,push token on "a".
    let push_a = reg
        .client()
        .with_bearer(&token(&reg, &["repository:a:pull,push"]).await);
    assert_eq!(push_a.get("/v2/").await.status, 200);
    let (m, _c, layer) = push_a.push_image("a", "v1", "tok").await;
    // Pull with the same token, and with a pull-only token.
    assert_eq!(push_a.get("/v2/a/manifests/v1").await.status, 200);
    let pull_a = reg
        .client()
        .with_bearer(&token(&reg, &["repository:a:pull"]).await);
    let r = pull_a.get(&format!("/v2/a/manifests/{m}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        pull_a.get(&format!("/v2/a/blobs/{layer}")).await.status,
        200
    );
    assert_eq!(pull_a.get("/v2/a/tags/list").await.status, 200);

    // A pull-only token cannot push.
    let r = pull_a
        .req("POST", "/v2/a/blobs/uploads/", &[], Bytes::new())
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            challenge(
                &reg,
                Some("repository:a:pull,push"),
                Some("insufficient_scope")
            )
            .as_str()
        )
    );
    assert_eq!(r.error_code(), "UNAUTHORIZED");

    // A token for "a" used on "b": insufficient scope, for pulls and pushes.
    let r = push_a.get("/v2/b/tags/list").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(&reg, Some("repository:b:pull"), Some("insufficient_scope")).as_str())
    );
    let r = push_a
        .req("POST", "/v2/b/blobs/uploads/", &[], Bytes::new())
        .await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));

    // The catalog needs registry:catalog:*.
    let r = push_a.get("/v2/_catalog").await;
    assert_eq!(r.status, 401);
    let cat = reg
        .client()
        .with_bearer(&token(&reg, &["registry:catalog:*"]).await);
    let r = cat.get("/v2/_catalog").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["repositories"], serde_json::json!(["a"]));

    // Cross-repository mount: only with pull access to the source.
    let push_b = reg
        .client()
        .with_bearer(&token(&reg, &["repository:b:pull,push"]).await);
    let mount = format!("/v2/b/blobs/uploads/?mount={layer}&from=a");
    let r = push_b.req("POST", &mount, &[], Bytes::new()).await;
    assert_eq!(r.status, 202, "mount without access to a must not mount");
    let both = reg
        .client()
        .with_bearer(&token(&reg, &["repository:b:pull,push", "repository:a:pull"]).await);
    let r = both.req("POST", &mount, &[], Bytes::new()).await;
    assert_eq!(r.status, 201);
    assert_eq!(both.get(&format!("/v2/b/blobs/{layer}")).await.status, 200);

    // DELETE needs the delete action ('*' covers it).
    let r = push_a.delete(&format!("/v2/a/manifests/{m}")).await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"repository:a:delete\""));
    let star = reg
        .client()
        .with_bearer(&token(&reg, &["repository:a:*"]).await);
    assert_eq!(
        star.delete(&format!("/v2/a/manifests/{m}")).await.status,
        202
    );
    reg.stop().await;
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = start_token(tmp.path(), |c| c.token_ttl = Duration::from_secs(1)).await;
    let r = reg
        .client()
        .with_basic(USER, PASS)
        .get("/token?scope=repository:a:pull")
        .await;
    assert_eq!(r.json()["expires_in"], 1);
    let tok = r.json()["token"].as_str().unwrap().to_string();
    let c = reg.client().with_bearer(&tok);
    // Valid right away (the repository just does not exist yet).
    assert_eq!(c.get("/v2/a/tags/list").await.status, 404);

    // Tampered: payload claims push, or signature altered, or garbage.
    let parts: Vec<&str> = tok.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["access"][0]["actions"] = serde_json::json!(["pull", "push"]);
    claims["exp"] = serde_json::json!(claims["exp"].as_u64().unwrap() + 3600);
    let forged_payload = b64.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let mut sig = b64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], b64.encode(&sig));
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    for bad in [forged.as_str(), &bad_sig, &unsigned, "garbage", "a.b.c"] {
        let r = reg.client().with_bearer(bad).get("/v2/a/tags/list").await;
        assert_eq!(r.status, 401, "{bad}");
        assert_eq!(
            r.header("www-authenticate"),
            Some(challenge(&reg, Some("repository:a:pull"), Some("invalid_token")).as_str()),
        );
    }

    // Expired after its 1 s lifetime.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = c.get("/v2/a/tags/list").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(&reg, Some("repository:a:pull"), Some("invalid_token")).as_str()),
    );
    assert_eq!(c.get("/v2/").await.status, 401);

    // A token from another server (another random key) is refused.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut other = start_token(tmp2.path(), |_| {}).await;
    let foreign = token(&other, &["repository:a:pull"]).await;
    let r = reg.client().with_bearer(&foreign).get("/v2/").await;
    assert_eq!(r.status, 401);
    other.stop().await;
    reg.stop().await;
}

#[tokio::test]
async fn token_key_file_is_shared_and_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("token.key");
    std::fs::write(&key, format!("{}\n", "k".repeat(40))).unwrap();
    let k1 = key.clone();
    let mut one = start_token(tmp.path(), |c| c.token_key = Some(k1)).await;
    let tok = token(&one, &["repository:shared:pull"]).await;
    one.stop().await;
    // A restarted server with the same key accepts the old token.
    let k2 = key.clone();
    let mut two = start_token(tmp.path(), |c| c.token_key = Some(k2)).await;
    let r = two.client().with_bearer(&tok).get("/v2/").await;
    assert_eq!(r.status, 200);
    two.stop().await;

    let bind_err = |f: Box<dyn FnOnce(&mut RegistryConfig)>| {
        let root = tmp.path().join("r");
        let h = htpasswd(tmp.path());
        async move {
            let mut cfg = RegistryConfig::new("127.0.0.1:0".parse().unwrap(), root);
            cfg.htpasswd = Some(h);
            cfg.auth_mode = AuthMode::Token;
            f(&mut cfg);
            match Registry::bind(cfg).await {
                Ok(_) => panic!("bind succeeded"),
                Err(e) => e,
            }
        }
    };
    let short = tmp.path().join("short.key");
    std::fs::write(&short, "tooshort\n").unwrap();
    let e = bind_err(Box::new(move |c| c.token_key = Some(short))).await;
    assert!(matches!(e, RegistryError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("short.key"), "{e}");
    let missing = tmp.path().join("missing.key");
    let e = bind_err(Box::new(move |c| c.token_key = Some(missing))).await;
    assert!(e.to_string().contains("missing.key"), "{e}");
    let e = bind_err(Box::new(|c| c.htpasswd = None)).await;
    assert!(matches!(e, RegistryError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("htpasswd"), "{e}");
    let e = bind_err(Box::new(|c| c.token_ttl = Duration::ZERO)).await;
    assert!(matches!(e, RegistryError::Config(_)), "{e:?}");
    let e = bind_err(Box::new(|c| c.token_realm = Some("ftp://x\"y".into()))).await;
    assert!(matches!(e, RegistryError::Config(_)), "{e:?}");
}

#[tokio::test]
async fn configured_realm_is_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = start_token(tmp.path(), |c| {
        c.token_realm = Some("https://auth.example.test/token".into())
    })
    .await;
    let r = reg.client().get("/v2/").await;
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"https://auth.example.test/token\",service=\"berth-registry\"")
    );
    reg.stop().await;
}

#[tokio::test]
async fn skopeo_token_flow_end_to_end() {
    let Some(bin) = skopeo() else {
        eprintln!("SKIPPED: skopeo is not installed (apt-get install -y skopeo)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let manifest_d = make_oci_layout(&src, "v1");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut reg = start_token(tmp.path(), |_| {}).await;
    let creds = format!("{USER}:{PASS}");
    let dest = format!("docker://{}/tok/img:v1", reg.addr);
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", src.display()),
            &dest,
        ],
    )
    .await;
    // Registry to registry within the token registry: cross-repo mounts
    // with a token covering both repositories.
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            &creds,
            "--dest-creds",
            &creds,
            &dest,
            &format!("docker://{}/tok/copy:v2", reg.addr),
        ],
    )
    .await;
    let out = tmp.path().join("out");
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &format!("docker://{}/tok/copy:v2", reg.addr),
            &format!("oci:{}:v1", out.display()),
        ],
    )
    .await;
    assert_eq!(layout_manifest_digest(&out), manifest_d);
    let c = reg
        .client()
        .with_bearer(&token(&reg, &["repository:tok/img:pull"]).await);
    let r = c.head("/v2/tok/img/manifests/v1").await;
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));
    // Wrong password: skopeo fails.
    let o = tokio::process::Command::new(&bin)
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &format!("{USER}:nope"),
            &dest,
        ])
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .output()
        .await
        .unwrap();
    assert!(!o.status.success());
    reg.stop().await;
}
