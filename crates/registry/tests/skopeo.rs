//! Interoperability with a real client: skopeo (Debian package `skopeo`).
//! Skipped, with a notice, when skopeo is not installed.

mod common;

use common::*;
use serde_json::json;

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
