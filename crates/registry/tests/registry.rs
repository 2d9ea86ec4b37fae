//! End-to-end tests: a real server on 127.0.0.1:0 driven over HTTP.

mod common;

use std::time::Duration;

use berth_registry::{garbage_collect, garbage_collect_with, GcOptions};
use bytes::Bytes;
use common::*;

fn patterned(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn base_endpoint_and_unknown_paths() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let r = c.get("/v2/").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(c.get("/v2").await.status, 200);
    let r = c.get("/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(c.get("/v2/foo/bar").await.status, 404);
    // Wrong method: 405 UNSUPPORTED.
    let r = c
        .req("POST", "/v2/foo/manifests/latest", &[], Bytes::new())
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.error_code(), "UNSUPPORTED");
    reg.stop().await;
}

#[tokio::test]
async fn monolithic_upload_head_get_and_repo_scoping() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let data = patterned(3000);
    let d = digest(&data);
    let r = c
        .req(
            "POST",
            &format!("/v2/lib/app/blobs/uploads/?digest={d}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/lib/app/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    let h = c.head(&format!("/v2/lib/app/blobs/{d}")).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("3000"));
    assert_eq!(h.header("docker-content-digest"), Some(d.as_str()));
    assert!(h.body.is_empty());

    let g = c.get(&format!("/v2/lib/app/blobs/{d}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(&g.body[..], &data[..]);

    // Not linked into another repository.
    let o = c.get(&format!("/v2/other/blobs/{d}")).await;
    assert_eq!(o.status, 404);
    assert_eq!(o.error_code(), "BLOB_UNKNOWN");
    // Malformed digest.
    let bad = c.get("/v2/lib/app/blobs/sha256:1234").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code(), "DIGEST_INVALID");
    // Unsupported algorithm.
    let bad = c.get("/v2/lib/app/blobs/sha512:abcd").await;
    assert_eq!(bad.status, 400);
    // Stored content-addressed.
    assert_eq!(
        reg.files_under("blobs/sha256"),
        vec![d.trim_start_matches("sha256:").to_string()]
    );
    reg.stop().await;
}

#[tokio::test]
async fn chunked_upload_with_status_and_large_blob() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let data = patterned(3 * 1024 * 1024 + 17); // several write batches and read chunks
    let d = digest(&data);

    let r = c
        .req(
            "POST",
            "/v2/chunky/blobs/uploads/",
            &[("content-length", "0")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap().to_string();
    let uuid = r.header("docker-upload-uuid").unwrap().to_string();
    assert!(loc.ends_with(&uuid));
    assert_eq!(r.header("range"), Some("0-0"));

    let cut1 = 1024 * 1024;
    let cut2 = 2 * 1024 * 1024 + 5;
    let p1 = c
        .req(
            "PATCH",
            &loc,
            &[("content-range", &format!("0-{}", cut1 - 1))],
            data[..cut1].to_vec(),
        )
        .await;
    assert_eq!(p1.status, 202, "{:?}", String::from_utf8_lossy(&p1.body));
    assert_eq!(p1.header("range"), Some(format!("0-{}", cut1 - 1).as_str()));
    let loc = p1.header("location").unwrap().to_string();

    // Streaming PATCH without Content-Range (docker-style).
    let p2 = c.req("PATCH", &loc, &[], data[cut1..cut2].to_vec()).await;
    assert_eq!(p2.status, 202);
    assert_eq!(p2.header("range"), Some(format!("0-{}", cut2 - 1).as_str()));

    let s = c.get(&loc).await;
    assert_eq!(s.status, 204);
    assert_eq!(s.header("range"), Some(format!("0-{}", cut2 - 1).as_str()));
    assert_eq!(s.header("docker-upload-uuid"), Some(uuid.as_str()));

    // Final chunk in the closing PUT.
    let put = c
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-range", &format!("{}-{}", cut2, data.len() - 1))],
            data[cut2..].to_vec(),
        )
        .await;
    assert_eq!(put.status, 201, "{:?}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.header("docker-content-digest"), Some(d.as_str()));

    let g = c.get(&format!("/v2/chunky/blobs/{d}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body.len(), data.len());
    assert!(g.body[..] == data[..]);
    // Session is gone afterwards.
    assert_eq!(c.get(&loc).await.status, 404);
    assert!(reg.files_under("uploads").is_empty());
    reg.stop().await;
}

#[tokio::test]
async fn out_of_order_chunk_is_416() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let r = c
        .req("POST", "/v2/ooo/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    let p = c
        .req("PATCH", &loc, &[("content-range", "0-4")], &b"hello"[..])
        .await;
    assert_eq!(p.status, 202);
    // Gap: starts at 10 instead of 5.
    let bad = c
        .req("PATCH", &loc, &[("content-range", "10-14")], &b"world"[..])
        .await;
    assert_eq!(bad.status, 416);
    assert_eq!(bad.header("range"), Some("0-4"));
    assert!(bad.header("location").is_some());
    // Overlap: starts at 0 again.
    let bad = c
        .req("PATCH", &loc, &[("content-range", "0-4")], &b"hello"[..])
        .await;
    assert_eq!(bad.status, 416);
    // Range does not match the length.
    let bad = c
        .req("PATCH", &loc, &[("content-range", "5-20")], &b"world"[..])
        .await;
    assert_eq!(bad.status, 416);
    // Out-of-order final chunk in PUT.
    let d = digest(b"helloworld");
    let bad = c
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[("content-range", "6-10")],
            &b"world"[..],
        )
        .await;
    assert_eq!(bad.status, 416);
    // The correct continuation still works.
    let ok = c
        .req("PATCH", &loc, &[("content-range", "5-9")], &b"world"[..])
        .await;
    assert_eq!(ok.status, 202);
    let put = c
        .req("PUT", &format!("{loc}?digest={d}"), &[], Bytes::new())
        .await;
    assert_eq!(put.status, 201);
    assert_eq!(
        &c.get(&format!("/v2/ooo/blobs/{d}")).await.body[..],
        b"helloworld"
    );
    reg.stop().await;
}

#[tokio::test]
async fn upload_resumes_after_dropped_connection_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mut reg = TestRegistry::start_at(&root, |_| {}).await;
    let c = reg.client();
    let data = patterned(10_000);
    let d = digest(&data);
    let r = c
        .req("POST", "/v2/resume/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    let p = c
        .req(
            "PATCH",
            &loc,
            &[("content-range", "0-3999")],
            data[..4000].to_vec(),
        )
        .await;
    assert_eq!(p.status, 202);

    // A chunk whose connection dies half way is rolled back entirely.
    let mut req = format!(
        "PATCH {loc} HTTP/1.1\r\nhost: x\r\ncontent-range: 4000-9999\r\ncontent-length: 6000\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(&data[4000..7000]);
    let _ = raw(reg.addr, &req, true, Duration::from_secs(2)).await;
    let status_ok = {
        let mut ok = false;
        for _ in 0..50 {
            let s = c.get(&loc).await;
            if s.status == 204 && s.header("range") == Some("0-3999") {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ok
    };
    assert!(status_ok, "interrupted chunk should be rolled back");

    // Restart the server on the same root: the session survives (and its
    // hash is rebuilt from disk).
    reg.stop().await;
    let mut reg = TestRegistry::start_at(&root, |_| {}).await;
    let c = reg.client();
    let loc = loc.clone();
    let s = c.get(&loc).await;
    assert_eq!(s.status, 204);
    assert_eq!(s.header("range"), Some("0-3999"));
    let p = c
        .req(
            "PATCH",
            &loc,
            &[("content-range", "4000-9999")],
            data[4000..].to_vec(),
        )
        .await;
    assert_eq!(p.status, 202);
    let put = c
        .req("PUT", &format!("{loc}?digest={d}"), &[], Bytes::new())
        .await;
    assert_eq!(put.status, 201, "{:?}", String::from_utf8_lossy(&put.body));
    assert_eq!(
        c.get(&format!("/v2/resume/blobs/{d}")).await.body.len(),
        10_000
    );
    reg.stop().await;

    // Stale sessions are purged at start.
    let mut reg = TestRegistry::start_at(&root, |_| {}).await;
    let c = reg.client();
    let r = c
        .req("POST", "/v2/resume/blobs/uploads/", &[], Bytes::new())
        .await;
    let stale = r.header("location").unwrap().to_string();
    reg.stop().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut reg =
        TestRegistry::start_at(&root, |cfg| cfg.upload_max_age = Duration::from_secs(1)).await;
    assert_eq!(reg.client().get(&stale).await.status, 404);
    assert!(reg.files_under("uploads").is_empty());
    reg.stop().await;
}

#[tokio::test]
async fn digest_mismatch_is_400_and_stores_nothing() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let wrong = digest(b"something else");
    let r = c
        .req(
            "POST",
            &format!("/v2/dm/blobs/uploads/?digest={wrong}"),
            &[],
            &b"actual data"[..],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "DIGEST_INVALID");

    let r = c
        .req("POST", "/v2/dm/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    let p = c.req("PATCH", &loc, &[], &b"actual data"[..]).await;
    assert_eq!(p.status, 202);
    let put = c
        .req("PUT", &format!("{loc}?digest={wrong}"), &[], Bytes::new())
        .await;
    assert_eq!(put.status, 400);
    assert_eq!(put.error_code(), "DIGEST_INVALID");
    // PUT without a digest.
    let r = c
        .req("POST", "/v2/dm/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc2 = r.header("location").unwrap().to_string();
    let put = c.req("PUT", &loc2, &[], Bytes::new()).await;
    assert_eq!(put.status, 400);
    assert_eq!(put.error_code(), "DIGEST_INVALID");

    assert!(reg.files_under("blobs").is_empty());
    assert!(reg.files_under("tmp").is_empty());
    assert!(reg.files_under("repositories").is_empty());
    assert_eq!(c.get(&loc).await.status, 404, "failed session is discarded");
    assert_eq!(c.head(&format!("/v2/dm/blobs/{wrong}")).await.status, 404);
    reg.stop().await;
}

#[tokio::test]
async fn cancel_upload() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let r = c
        .req("POST", "/v2/cx/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    c.req("PATCH", &loc, &[], &b"abc"[..]).await;
    assert_eq!(c.delete(&loc).await.status, 204);
    let s = c.get(&loc).await;
    assert_eq!(s.status, 404);
    assert_eq!(s.error_code(), "BLOB_UPLOAD_UNKNOWN");
    // Another repository cannot use a session it does not own.
    let r = c
        .req("POST", "/v2/cx/blobs/uploads/", &[], Bytes::new())
        .await;
    let uuid = r.header("docker-upload-uuid").unwrap().to_string();
    assert_eq!(
        c.get(&format!("/v2/other/blobs/uploads/{uuid}"))
            .await
            .status,
        404
    );
    assert!(reg.files_under("uploads").len() == 2); // data + info of the live session
    reg.stop().await;
}

#[tokio::test]
async fn manifest_push_pull_and_validation() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let (m, cfg, layer) = c.push_image("app", "v1", "a").await;

    let g = c.get("/v2/app/manifests/v1").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(g.header("docker-content-digest"), Some(m.as_str()));
    assert_eq!(digest(&g.body), m);
    let by_digest = c.get(&format!("/v2/app/manifests/{m}")).await;
    assert_eq!(by_digest.status, 200);
    assert_eq!(by_digest.body, g.body);
    let h = c.head("/v2/app/manifests/v1").await;
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-length"),
        Some(g.body.len().to_string().as_str())
    );
    assert_eq!(h.header("docker-content-digest"), Some(m.as_str()));

    // Unknown tag / repository.
    let r = c.get("/v2/app/manifests/nope").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = c.get("/v2/nothere/manifests/v1").await;
    assert_eq!(r.status, 404);
    // Invalid tag.
    let r = c
        .get(&format!("/v2/app/manifests/{}", "x".repeat(200)))
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "TAG_INVALID"));

    // Missing blob → MANIFEST_BLOB_UNKNOWN, nothing stored.
    let missing = digest(b"never uploaded");
    let bad = image_manifest(&cfg, 10, &[(&layer, 10), (&missing, 14)], None);
    let r = c.put_manifest("app", "broken", OCI_MANIFEST, &bad).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing);
    assert_eq!(c.get("/v2/app/manifests/broken").await.status, 404);
    // A blob from another repository does not count either.
    let foreign = c.push_blob("elsewhere", b"foreign blob").await;
    let bad = image_manifest(&cfg, 10, &[(&foreign, 12)], None);
    assert_eq!(
        c.put_manifest("app", "broken", OCI_MANIFEST, &bad)
            .await
            .error_code(),
        "MANIFEST_BLOB_UNKNOWN"
    );

    // Invalid JSON / wrong schema / media type mismatch.
    let r = c
        .put_manifest("app", "bad", OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    let good = image_manifest(&cfg, 10, &[(&layer, 10)], None);
    let r = c.put_manifest("app", "bad", OCI_INDEX, &good).await;
    assert_eq!(r.error_code(), "MANIFEST_INVALID");
    // Digest reference that does not match the body.
    let r = c
        .put_manifest("app", &digest(b"other"), OCI_MANIFEST, &good)
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    // Push by digest with tags (OCI-Tag).
    let dg = digest(&good);
    let r = c
        .put_manifest("app", &format!("{dg}?tag=t1&tag=t2"), OCI_MANIFEST, &good)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("oci-tag"), Some("t1, t2"));
    assert_eq!(
        c.get("/v2/app/manifests/t2")
            .await
            .header("docker-content-digest"),
        Some(dg.as_str())
    );

    // Docker schema2 manifest and manifest list; OCI index with a missing child.
    let docker = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cfg, "size": 10},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 10}]
    })
    .to_string();
    let r = c
        .put_manifest(
            "app",
            "docker",
            "application/vnd.docker.distribution.manifest.v2+json",
            docker.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201);
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": digest(docker.as_bytes()), "size": docker.len(),
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    })
    .to_string();
    let r = c
        .put_manifest(
            "app",
            "list",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            list.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let got = c.get("/v2/app/manifests/list").await;
    assert_eq!(
        got.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    assert_eq!(&got.body[..], list.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": m, "size": g.body.len()},
            {"mediaType": OCI_MANIFEST, "digest": missing, "size": 5}
        ]
    })
    .to_string();
    let r = c
        .put_manifest("app", "idx", OCI_INDEX, index.as_bytes())
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );

    // 5 MiB manifest refused with 413.
    let huge = vec![b' '; 5 << 20];
    let r = c.put_manifest("app", "huge", OCI_MANIFEST, &huge).await;
    assert_eq!((r.status, r.error_code().as_str()), (413, "SIZE_INVALID"));
    reg.stop().await;
}

#[tokio::test]
async fn tag_list_pagination_and_link_header() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let (m, _, _) = c.push_image("pag/repo", "e", "x").await;
    let body = c.get(&format!("/v2/pag/repo/manifests/{m}")).await.body;
    for t in ["c", "a", "d", "b", "B"] {
        assert_eq!(
            c.put_manifest("pag/repo", t, OCI_MANIFEST, &body)
                .await
                .status,
            201
        );
    }
    let all = c.get("/v2/pag/repo/tags/list").await;
    assert_eq!(all.status, 200);
    assert_eq!(
        all.json(),
        serde_json::json!({"name": "pag/repo", "tags": ["B", "a", "b", "c", "d", "e"]})
    );
    assert!(all.header("link").is_none());

    let mut collected = Vec::new();
    let mut url = "/v2/pag/repo/tags/list?n=2".to_string();
    let mut pages = 0;
    loop {
        let r = c.get(&url).await;
        assert_eq!(r.status, 200);
        let tags = r.json()["tags"].as_array().unwrap().clone();
        assert!(tags.len() <= 2);
        collected.extend(tags.into_iter().map(|t| t.as_str().unwrap().to_string()));
        pages += 1;
        match r.header("link") {
            Some(l) => {
                assert!(l.ends_with("; rel=\"next\""), "{l}");
                url = l[1..l.find('>').unwrap()].to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(collected, vec!["B", "a", "b", "c", "d", "e"]);
    let first = c.get("/v2/pag/repo/tags/list?n=2").await;
    assert_eq!(
        first.header("link"),
        Some("</v2/pag/repo/tags/list?n=2&last=a>; rel=\"next\"")
    );

    let r = c.get("/v2/pag/repo/tags/list?n=3&last=b").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["c", "d", "e"]));
    let r = c.get("/v2/pag/repo/tags/list?last=c").await;
    assert_eq!(r.json()["tags"], serde_json::json!(["d", "e"]));
    let r = c.get("/v2/pag/repo/tags/list?n=0").await;
    assert_eq!(r.json()["tags"], serde_json::json!([]));
    assert!(r.header("link").is_none());
    let r = c.get("/v2/pag/repo/tags/list?n=abc").await;
    assert_eq!(r.status, 400);
    let r = c.get("/v2/unknown/tags/list").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    reg.stop().await;
}

#[tokio::test]
async fn catalog_with_pagination() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    assert_eq!(
        c.get("/v2/_catalog").await.json(),
        serde_json::json!({"repositories": []})
    );
    for repo in ["zeta", "alpha", "alpha/nested", "mid/x/y"] {
        c.push_image(repo, "latest", repo).await;
    }
    let all = c.get("/v2/_catalog").await;
    assert_eq!(
        all.json()["repositories"],
        serde_json::json!(["alpha", "alpha/nested", "mid/x/y", "zeta"])
    );
    let p1 = c.get("/v2/_catalog?n=3").await;
    assert_eq!(
        p1.json()["repositories"],
        serde_json::json!(["alpha", "alpha/nested", "mid/x/y"])
    );
    assert_eq!(
        p1.header("link"),
        Some("</v2/_catalog?n=3&last=mid/x/y>; rel=\"next\"")
    );
    let p2 = c.get("/v2/_catalog?n=3&last=mid/x/y").await;
    assert_eq!(p2.json()["repositories"], serde_json::json!(["zeta"]));
    assert!(p2.header("link").is_none());
    reg.stop().await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let d = c.push_blob("src/repo", b"shared layer").await;
    let r = c
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/dst/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        &c.get(&format!("/v2/dst/blobs/{d}")).await.body[..],
        b"shared layer"
    );

    // Unknown blob, or a repository that does not have it: upload session.
    let unknown = digest(b"nope");
    let r = c
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={unknown}&from=src/repo"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("/v2/dst/blobs/uploads/"));
    let r = c
        .req(
            "POST",
            &format!("/v2/third/blobs/uploads/?mount={d}&from=empty"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(c.head(&format!("/v2/third/blobs/{d}")).await.status, 404);
    // Stored once.
    assert_eq!(reg.files_under("blobs/sha256").len(), 1);
    reg.stop().await;
}

#[tokio::test]
async fn range_requests() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let data = b"0123456789abcdef".to_vec();
    let d = c.push_blob("rng", &data).await;
    let url = format!("/v2/rng/blobs/{d}");
    let r = c
        .req("GET", &url, &[("range", "bytes=2-5")], Bytes::new())
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(&r.body[..], b"2345");
    assert_eq!(r.header("content-range"), Some("bytes 2-5/16"));
    assert_eq!(r.header("content-length"), Some("4"));
    let r = c
        .req("GET", &url, &[("range", "bytes=-3")], Bytes::new())
        .await;
    assert_eq!((r.status, &r.body[..]), (206, &b"def"[..]));
    let r = c
        .req("GET", &url, &[("range", "bytes=10-")], Bytes::new())
        .await;
    assert_eq!((r.status, &r.body[..]), (206, &b"abcdef"[..]));
    let r = c
        .req("GET", &url, &[("range", "bytes=100-")], Bytes::new())
        .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */16"));
    let r = c.get(&url).await;
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    reg.stop().await;
}

#[tokio::test]
async fn referrers_api() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let (subject, _, _) = c.push_image("ref", "v1", "subject").await;
    let subject_size = c
        .get(&format!("/v2/ref/manifests/{subject}"))
        .await
        .body
        .len();

    // Artifact 1: explicit artifactType, annotations, empty config.
    let empty = c.push_blob("ref", b"{}").await;
    let sig_layer = c.push_blob("ref", b"signature").await;
    let a1 = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig_layer, "size": 9}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
        "annotations": {"org.example.k": "v"}
    })
    .to_string();
    let r = c
        .put_manifest("ref", &digest(a1.as_bytes()), OCI_MANIFEST, a1.as_bytes())
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("oci-subject"), Some(subject.as_str()));

    // Artifact 2: artifactType from config media type.
    let sbom_cfg = c.push_blob("ref", b"{\"sbom\":true}").await;
    let a2 = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.example.sbom", "digest": sbom_cfg, "size": 13},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size}
    })
    .to_string();
    let r = c
        .put_manifest("ref", &digest(a2.as_bytes()), OCI_MANIFEST, a2.as_bytes())
        .await;
    assert_eq!(r.status, 201);

    let r = c.get(&format!("/v2/ref/referrers/{subject}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert!(r.header("oci-filters-applied").is_none());
    let idx = r.json();
    assert_eq!(idx["schemaVersion"], 2);
    assert_eq!(idx["mediaType"], OCI_INDEX);
    let ms = idx["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    let find = |d: &str| ms.iter().find(|m| m["digest"] == d).unwrap().clone();
    let e1 = find(&digest(a1.as_bytes()));
    assert_eq!(e1["artifactType"], "application/vnd.example.sig");
    assert_eq!(e1["annotations"]["org.example.k"], "v");
    assert_eq!(e1["size"], a1.len());
    assert_eq!(e1["mediaType"], OCI_MANIFEST);
    assert_eq!(
        find(&digest(a2.as_bytes()))["artifactType"],
        "application/vnd.example.sbom"
    );

    let r = c
        .get(&format!(
            "/v2/ref/referrers/{subject}?artifactType=application%2Fvnd.example.sbom"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let ms = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["digest"], digest(a2.as_bytes()));

    // No referrers: 200 with an empty index; bad digest: 400.
    let r = c.get(&format!("/v2/ref/referrers/{}", digest(b"x"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
    assert_eq!(c.get("/v2/ref/referrers/sha256:bad").await.status, 400);

    // Deleting a referrer removes it from the list.
    assert_eq!(
        c.delete(&format!("/v2/ref/manifests/{}", digest(a1.as_bytes())))
            .await
            .status,
        202
    );
    let r = c.get(&format!("/v2/ref/referrers/{subject}")).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
    reg.stop().await;
}

#[tokio::test]
async fn delete_and_garbage_collect() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let (keep_m, keep_c, keep_l) = c.push_image("gc/keep", "v1", "keep").await;
    let (gone_m, gone_c, gone_l) = c.push_image("gc/gone", "v1", "gone").await;
    // A layer shared by both repositories must survive.
    let shared = c.push_blob("gc/keep", b"shared").await;
    c.push_blob("gc/gone", b"shared").await;
    let m2 = image_manifest(&keep_c, 1, &[(&keep_l, 1), (&shared, 6)], None);
    assert_eq!(
        c.put_manifest("gc/keep", "v2", OCI_MANIFEST, &m2)
            .await
            .status,
        201
    );
    // An orphan blob nobody references.
    let orphan = c.push_blob("gc/keep", b"orphan").await;

    // Tag delete: 202, then 404.
    assert_eq!(c.delete("/v2/gc/gone/manifests/v1").await.status, 202);
    assert_eq!(c.get("/v2/gc/gone/manifests/v1").await.status, 404);
    assert_eq!(c.delete("/v2/gc/gone/manifests/v1").await.status, 404);
    // Manifest delete by digest: 202 and gone (also tags pointing to it).
    assert_eq!(
        c.put_manifest(
            "gc/gone",
            "again",
            OCI_MANIFEST,
            &c.get(&format!("/v2/gc/keep/manifests/{keep_m}")).await.body
        )
        .await
        .status,
        400
    );
    assert_eq!(
        c.delete(&format!("/v2/gc/gone/manifests/{gone_m}"))
            .await
            .status,
        202
    );
    assert_eq!(
        c.get(&format!("/v2/gc/gone/manifests/{gone_m}"))
            .await
            .status,
        404
    );
    // Blob delete unlinks from the repository only.
    assert_eq!(
        c.delete(&format!("/v2/gc/gone/blobs/{gone_c}"))
            .await
            .status,
        202
    );
    assert_eq!(
        c.head(&format!("/v2/gc/gone/blobs/{gone_c}")).await.status,
        404
    );
    assert_eq!(
        c.delete(&format!("/v2/gc/gone/blobs/{gone_c}"))
            .await
            .status,
        404
    );
    assert_eq!(
        c.head(&format!("/v2/gc/gone/blobs/{gone_l}")).await.status,
        200
    );

    let before = reg.files_under("blobs/sha256").len();
    let dry = garbage_collect_with(&reg.root, &{
        let mut o = GcOptions::default();
        o.dry_run = true;
        o
    })
    .unwrap();
    assert_eq!(
        reg.files_under("blobs/sha256").len(),
        before,
        "dry run deletes nothing"
    );
    let report = garbage_collect(&reg.root).unwrap();
    assert_eq!(dry.blobs_deleted, report.blobs_deleted);
    let hex = |d: &str| berth_registry::Digest::from_hex(d.trim_start_matches("sha256:")).unwrap();
    let mut expected = vec![hex(&gone_m), hex(&gone_c), hex(&gone_l), hex(&orphan)];
    expected.sort();
    assert_eq!(report.deleted, expected);
    assert_eq!(report.blobs_deleted, 4);
    assert!(report.bytes_freed > 0);
    // Links to deleted blobs were removed (gone_l in gc/gone, orphan in gc/keep).
    assert_eq!(report.layer_links_removed, 2);
    assert_eq!(
        c.head(&format!("/v2/gc/gone/blobs/{gone_l}")).await.status,
        404
    );

    // Everything still referenced is intact and pullable.
    for d in [&keep_c, &keep_l, &shared] {
        assert_eq!(c.head(&format!("/v2/gc/keep/blobs/{d}")).await.status, 200);
    }
    assert_eq!(
        c.head(&format!("/v2/gc/gone/blobs/{shared}")).await.status,
        200
    );
    assert_eq!(c.get("/v2/gc/keep/manifests/v1").await.status, 200);
    assert_eq!(c.get("/v2/gc/keep/manifests/v2").await.status, 200);

    // Untagged manifests: v1's manifest loses its tag and is collected
    // with delete_untagged; its blobs stay because v2 uses them.
    assert_eq!(c.delete("/v2/gc/keep/manifests/v1").await.status, 202);
    let again = garbage_collect(&reg.root).unwrap();
    assert_eq!(
        again.blobs_deleted, 0,
        "untagged manifests are kept by default"
    );
    let mut o = GcOptions::default();
    o.delete_untagged = true;
    let r = garbage_collect_with(&reg.root, &o).unwrap();
    assert_eq!(r.manifests_deleted, 1);
    assert_eq!(r.deleted, vec![hex(&keep_m)]);
    assert_eq!(
        c.get(&format!("/v2/gc/keep/manifests/{keep_m}"))
            .await
            .status,
        404
    );
    assert_eq!(c.get("/v2/gc/keep/manifests/v2").await.status, 200);
    reg.stop().await;
}

#[tokio::test]
async fn gc_follows_index_and_subject() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let (child, cc, cl) = c.push_image("idx", "child", "c").await;
    let child_len = c
        .get(&format!("/v2/idx/manifests/{child}"))
        .await
        .body
        .len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": child_len}]
    })
    .to_string();
    assert_eq!(
        c.put_manifest("idx", "multi", OCI_INDEX, index.as_bytes())
            .await
            .status,
        201
    );
    // A referrer of the child (untagged).
    let cfg = c.push_blob("idx", b"{}").await;
    let sig = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "x/sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": child, "size": child_len}
    })
    .to_string();
    assert_eq!(
        c.put_manifest("idx", &digest(sig.as_bytes()), OCI_MANIFEST, sig.as_bytes())
            .await
            .status,
        201
    );
    // Only the index stays tagged.
    assert_eq!(c.delete("/v2/idx/manifests/child").await.status, 202);
    let mut o = GcOptions::default();
    o.delete_untagged = true;
    let r = garbage_collect_with(&reg.root, &o).unwrap();
    assert_eq!(
        r.manifests_deleted, 0,
        "child via index and its referrer are reachable"
    );
    assert_eq!(r.blobs_deleted, 0);
    for d in [&child, &cc, &cl, &cfg, &digest(sig.as_bytes())] {
        assert!(reg
            .root
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
            .exists());
    }
    // Untag the index: everything becomes collectable.
    assert_eq!(c.delete("/v2/idx/manifests/multi").await.status, 202);
    let r = garbage_collect_with(&reg.root, &o).unwrap();
    assert_eq!(r.manifests_deleted, 3);
    assert_eq!(r.blobs_deleted, 6);
    assert!(reg.files_under("blobs/sha256").is_empty());
    reg.stop().await;
}

#[tokio::test]
async fn path_traversal_names_rejected() {
    let mut reg = TestRegistry::start().await;
    let d = digest(b"x");
    for path in [
        format!("/v2/../../etc/blobs/{d}"),
        "/v2/a/../b/manifests/latest".to_string(),
        format!("/v2/a/%2e%2e/b/blobs/{d}"),
        format!("/v2//etc/blobs/{d}"),
        "/v2/UPPER/tags/list".to_string(),
        "/v2/a/../../../tmp/blobs/uploads/".to_string(),
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let resp = raw(reg.addr, req.as_bytes(), false, Duration::from_secs(5)).await;
        assert_eq!(raw_status(&resp), 400, "{path}: {resp}");
        assert!(resp.contains("NAME_INVALID"), "{path}: {resp}");
    }
    let req = format!("POST /v2/../../x/blobs/uploads/?digest={d} HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx");
    let resp = raw(reg.addr, req.as_bytes(), false, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&resp), 400);
    // Upload ids are not paths either.
    let c = reg.client();
    let r = c.get("/v2/a/blobs/uploads/..%2F..%2Fetc").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
    // Nothing was created anywhere.
    assert!(reg.files_under("repositories").is_empty());
    assert!(reg.files_under("blobs").is_empty());
    assert!(!reg.root.parent().unwrap().join("x").exists());
    reg.stop().await;
}

#[tokio::test]
async fn huge_declared_sizes_refused_up_front() {
    let mut reg = TestRegistry::start().await;
    let d = digest(b"x");
    let ten_gb = 10u64 * 1024 * 1024 * 1024 + 1;
    for (method, path) in [
        ("POST", format!("/v2/big/blobs/uploads/?digest={d}")),
        ("PUT", "/v2/big/manifests/latest".to_string()),
    ] {
        let req =
            format!("{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {ten_gb}\r\n\r\n");
        let started = std::time::Instant::now();
        let resp = raw(reg.addr, req.as_bytes(), false, Duration::from_secs(10)).await;
        assert_eq!(raw_status(&resp), 413, "{method} {path}: {resp}");
        assert!(resp.contains("SIZE_INVALID"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused before reading the body"
        );
    }
    // PATCH on a session as well.
    let c = reg.client();
    let r = c
        .req("POST", "/v2/big/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    let req = format!("PATCH {loc} HTTP/1.1\r\nhost: x\r\ncontent-length: {ten_gb}\r\n\r\n");
    let resp = raw(reg.addr, req.as_bytes(), false, Duration::from_secs(10)).await;
    assert_eq!(raw_status(&resp), 413, "{resp}");
    assert!(reg.files_under("blobs").is_empty());
    assert!(reg.files_under("tmp").is_empty());
    reg.stop().await;

    // A small configured maximum also applies to bodies without a declared
    // length (chunked transfer) while streaming.
    let mut reg = TestRegistry::start_with(|c| c.max_blob_size = 1000).await;
    let data = vec![7u8; 1500];
    let d = digest(&data);
    let mut req = format!("POST /v2/small/blobs/uploads/?digest={d} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n").into_bytes();
    req.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    req.extend_from_slice(&data);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let resp = raw(reg.addr, &req, false, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&resp), 413, "{resp}");
    assert!(eventually(|| reg.files_under("tmp").is_empty()).await);
    assert!(reg.files_under("blobs").is_empty());
    reg.stop().await;
}

#[tokio::test]
async fn truncated_upload_leaves_nothing() {
    let mut reg = TestRegistry::start().await;
    let data = vec![1u8; 100_000];
    let d = digest(&data);
    let mut req = format!("POST /v2/trunc/blobs/uploads/?digest={d} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n", data.len()).into_bytes();
    req.extend_from_slice(&data[..30_000]);
    let _ = raw(reg.addr, &req, true, Duration::from_secs(2)).await;
    assert!(
        eventually(|| reg.files_under("tmp").is_empty()).await,
        "temp file removed"
    );
    assert!(reg.files_under("blobs").is_empty());
    assert!(reg.files_under("repositories").is_empty());
    assert_eq!(
        reg.client()
            .head(&format!("/v2/trunc/blobs/{d}"))
            .await
            .status,
        404
    );

    // Same for a truncated manifest.
    let req = b"PUT /v2/trunc/manifests/latest HTTP/1.1\r\nhost: x\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: 500\r\n\r\n{\"schemaVersion\":";
    let _ = raw(reg.addr, req, true, Duration::from_secs(2)).await;
    assert_eq!(
        reg.client().get("/v2/trunc/manifests/latest").await.status,
        404
    );
    assert!(reg.files_under("blobs").is_empty());
    reg.stop().await;
}

#[tokio::test]
async fn read_only_and_delete_disabled() {
    let mut reg = TestRegistry::start_with(|c| c.read_only = true).await;
    let c = reg.client();
    assert_eq!(c.get("/v2/").await.status, 200);
    let r = c
        .req("POST", "/v2/ro/blobs/uploads/", &[], Bytes::new())
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
    reg.stop().await;

    let mut reg = TestRegistry::start_with(|c| c.delete_enabled = false).await;
    let c = reg.client();
    let (m, _, _) = c.push_image("nodel", "v1", "x").await;
    let r = c.delete(&format!("/v2/nodel/manifests/{m}")).await;
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));
    assert_eq!(c.get("/v2/nodel/manifests/v1").await.status, 200);
    // Cancelling an upload session is not a content deletion.
    let r = c
        .req("POST", "/v2/nodel/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(c.delete(&loc).await.status, 204);
    reg.stop().await;
}

#[tokio::test]
async fn delete_manifest_by_digest_removes_its_tags() {
    let mut reg = TestRegistry::start().await;
    let c = reg.client();
    let (m, _, _) = c.push_image("dt", "one", "x").await;
    let body = c.get("/v2/dt/manifests/one").await.body;
    assert_eq!(
        c.put_manifest("dt", "two", OCI_MANIFEST, &body)
            .await
            .status,
        201
    );
    let (other, _, _) = c.push_image("dt", "three", "y").await;
    assert_eq!(
        c.get("/v2/dt/tags/list").await.json()["tags"],
        serde_json::json!(["one", "three", "two"])
    );
    assert_eq!(c.delete(&format!("/v2/dt/manifests/{m}")).await.status, 202);
    assert_eq!(
        c.get("/v2/dt/tags/list").await.json()["tags"],
        serde_json::json!(["three"])
    );
    assert_eq!(c.head("/v2/dt/manifests/one").await.status, 404);
    assert_eq!(c.head("/v2/dt/manifests/two").await.status, 404);
    assert_eq!(
        c.head(&format!("/v2/dt/manifests/{other}")).await.status,
        200
    );
    let r = c.delete(&format!("/v2/dt/manifests/{m}")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = c.delete(&format!("/v2/nope/manifests/{m}")).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    reg.stop().await;
}

fn write_htpasswd(dir: &std::path::Path, content: &str) -> std::path::PathBuf {
    let p = dir.join("htpasswd");
    std::fs::write(&p, content).unwrap();
    p
}

async fn check_auth(reg: &TestRegistry, user: &str, password: &str) {
    let anon = reg.client();
    let r = anon.get("/v2/").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"berth-registry\"")
    );
    assert_eq!(r.error_code(), "UNAUTHORIZED");
    // Every endpoint is protected, not just /v2/.
    assert_eq!(anon.get("/v2/_catalog").await.status, 401);
    let r = anon
        .req("POST", "/v2/a/blobs/uploads/", &[], Bytes::new())
        .await;
    assert_eq!(r.status, 401);

    let wrong = reg.client().with_basic(user, "wrong-password");
    assert_eq!(wrong.get("/v2/").await.status, 401);
    let nobody = reg.client().with_basic("nobody", password);
    assert_eq!(nobody.get("/v2/").await.status, 401);

    let ok = reg.client().with_basic(user, password);
    assert_eq!(ok.get("/v2/").await.status, 200);
    // Second request hits the verification cache.
    assert_eq!(ok.get("/v2/").await.status, 200);
    ok.push_image("authed/app", "v1", user).await;
    assert_eq!(ok.get("/v2/authed/app/manifests/v1").await.status, 200);
    assert_eq!(anon.get("/v2/authed/app/manifests/v1").await.status, 401);
}

#[tokio::test]
async fn htpasswd_bcrypt_and_sha_auth() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    // The bcrypt crate writes $2b$; htpasswd -B writes $2y$. Accept both.
    let y_hash = hash.replacen("$2b$", "$2y$", 1);
    let content =
        format!("# users\nalice:{hash}\nbob:{y_hash}\ncarol:{{SHA}}5en6G6MezRroT3XKqkdPOmY/BfQ=\n");
    let path = write_htpasswd(dir.path(), &content);
    let mut reg = TestRegistry::start_with(|c| c.htpasswd = Some(path.clone())).await;
    check_auth(&reg, "alice", "s3cret").await;
    check_auth(&reg, "bob", "s3cret").await;
    check_auth(&reg, "carol", "secret").await;
    reg.stop().await;

    // Unusable files are start-up errors.
    let bad = write_htpasswd(dir.path(), "md5user:$apr1$abc$def\n");
    let mut cfg =
        berth_registry::RegistryConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("r2"));
    cfg.htpasswd = Some(bad);
    assert!(berth_registry::Registry::bind(cfg.clone()).await.is_err());
    cfg.htpasswd = Some(dir.path().join("missing"));
    let err = berth_registry::Registry::bind(cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
}

#[tokio::test]
async fn htpasswd_file_made_by_apache_htpasswd() {
    let bin = std::path::Path::new("/usr/bin/htpasswd");
    if !bin.exists() {
        eprintln!("SKIPPED: /usr/bin/htpasswd not installed (apt-get install apache2-utils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    let st = std::process::Command::new(bin)
        .args(["-B", "-b", "-c"])
        .arg(&path)
        .args(["deb", "pa55word"])
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("deb:$2y$"), "{text}");
    let mut reg = TestRegistry::start_with(|c| c.htpasswd = Some(path.clone())).await;
    check_auth(&reg, "deb", "pa55word").await;
    reg.stop().await;
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_blob() {
    let mut reg = TestRegistry::start().await;
    let data = patterned(700_000);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let c = reg.client();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let repo = format!("con{}", i % 3);
            if i % 2 == 0 {
                c.push_blob(&repo, &data).await
            } else {
                let r = c
                    .req(
                        "POST",
                        &format!("/v2/{repo}/blobs/uploads/"),
                        &[],
                        Bytes::new(),
                    )
                    .await;
                let loc = r.header("location").unwrap().to_string();
                let p = c.req("PATCH", &loc, &[], data.clone()).await;
                assert_eq!(p.status, 202);
                let d = digest(&data);
                let put = c
                    .req("PUT", &format!("{loc}?digest={d}"), &[], Bytes::new())
                    .await;
                assert_eq!(put.status, 201);
                d
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let d = digest(&data);
    for i in 0..3 {
        let g = reg.client().get(&format!("/v2/con{i}/blobs/{d}")).await;
        assert_eq!(digest(&g.body), d);
    }
    assert_eq!(reg.files_under("blobs/sha256").len(), 1);
    assert!(reg.files_under("tmp").is_empty());
    reg.stop().await;
}

#[tokio::test]
async fn stalled_upload_times_out_and_rolls_back() {
    let mut reg =
        TestRegistry::start_with(|c| c.body_idle_timeout = Duration::from_millis(300)).await;
    let c = reg.client();
    let r = c
        .req("POST", "/v2/stall/blobs/uploads/", &[], Bytes::new())
        .await;
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(c.req("PATCH", &loc, &[], &b"12345"[..]).await.status, 202);
    // Declares 100 bytes, sends 10, then goes quiet without closing.
    let req = format!("PATCH {loc} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789");
    let started = std::time::Instant::now();
    let resp = raw(reg.addr, req.as_bytes(), false, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "server gave up on the body"
    );
    assert_eq!(raw_status(&resp), 400, "{resp}");
    let s = c.get(&loc).await;
    assert_eq!(s.header("range"), Some("0-4"));
    reg.stop().await;
}
