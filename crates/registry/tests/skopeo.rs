//! Interoperability with a real client: skopeo (Debian package `skopeo`).
//! Skipped, with a notice, when skopeo is not installed.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

fn skopeo() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/skopeo");
    p.exists().then_some(p)
}

fn write_blob(layout: &Path, data: &[u8]) -> String {
    let d = digest(data);
    let p = layout
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    std::fs::write(p, data).unwrap();
    d
}

/// A one-layer OCI image layout at `dir` with tag `tag`; returns the
/// manifest digest.
fn make_oci_layout(dir: &Path, tag: &str) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let mut builder = tar::Builder::new(Vec::new());
    let content = b"hello from berth-registry\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    let layer = builder.into_inner().unwrap();
    let layer_d = write_blob(dir, &layer);

    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_d]},
    }))
    .unwrap();
    let config_d = write_blob(dir, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_d = write_blob(dir, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_d,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    manifest_d
}

async fn run_skopeo(bin: &Path, home: &Path, args: &[&str]) {
    let out = tokio::process::Command::new(bin)
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .output()
        .await
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn layout_manifest_digest(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn skopeo_copy_in_and_out() {
    let Some(bin) = skopeo() else {
        eprintln!("SKIPPED: skopeo is not installed (apt-get install -y skopeo)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let manifest_d = make_oci_layout(&src, "v1");
    let mut reg = TestRegistry::start().await;
    let host = reg.addr.to_string();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let dest = format!("docker://{host}/skopeo/test:v1");
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &dest,
        ],
    )
    .await;
    let c = reg.client();
    let r = c.get("/v2/skopeo/test/manifests/v1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));

    // Registry to registry (exercises HEAD checks and cross-repo mounts).
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &dest,
            &format!("docker://{host}/skopeo/copy:v2"),
        ],
    )
    .await;
    let r = c.get("/v2/skopeo/copy/manifests/v2").await;
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));

    // And back out to a fresh layout.
    let out = tmp.path().join("out");
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{host}/skopeo/copy:v2"),
            &format!("oci:{}:v1", out.display()),
        ],
    )
    .await;
    assert_eq!(layout_manifest_digest(&out), manifest_d);
    for entry in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let copied = out.join("blobs/sha256").join(entry.file_name());
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(&copied).unwrap()
        );
    }
    let tags = c.get("/v2/skopeo/test/tags/list").await.json();
    assert_eq!(tags["tags"], json!(["v1"]));
    reg.stop().await;
}

#[tokio::test]
async fn skopeo_with_htpasswd_credentials() {
    let Some(bin) = skopeo() else {
        eprintln!("SKIPPED: skopeo is not installed (apt-get install -y skopeo)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let manifest_d = make_oci_layout(&src, "v1");
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("pusher:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    let mut reg = TestRegistry::start_with(|c| c.htpasswd = Some(htpasswd.clone())).await;
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    run_skopeo(
        &bin,
        &home,
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "pusher:pw",
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}/private/img:v1", reg.addr),
        ],
    )
    .await;
    let c = reg.client().with_basic("pusher", "pw");
    let r = c.head("/v2/private/img/manifests/v1").await;
    assert_eq!(r.header("docker-content-digest"), Some(manifest_d.as_str()));
    reg.stop().await;
}
