//! `kill -9` of berthd in the middle of store writes: after a restart the store is
//! consistent and no volume byte is lost.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::Daemon;

/// A layer tar with `mb` MiB of incompressible data, so an import takes a while.
fn big_tar(path: &Path, mb: usize, seed: u8) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut data = vec![0u8; mb << 20];
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut builder = tar::Builder::new(&mut f);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder
        .append_data(&mut h, "blob.bin", data.as_slice())
        .unwrap();
    builder.into_inner().unwrap().flush().unwrap();
}

fn names_in(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every record points at files that exist, and every file has a record.
fn assert_consistent(d: &Daemon) {
    let (status, _, body) = d.http("GET", "/images/json", None);
    assert_eq!(status, 200, "{body}");
    let images: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let mut referenced = HashSet::new();
    for i in &images {
        let id = i["Id"].as_str().unwrap();
        let (status, _, inspect) = d.http("GET", &format!("/images/{id}/json"), None);
        assert_eq!(status, 200, "{inspect}");
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        referenced.insert(id.trim_start_matches("sha256:").to_string());
        for layer in v["RootFS"]["Layers"].as_array().unwrap() {
            let hex = layer
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string();
            assert!(
                d.data_root.join("image/layers").join(&hex).is_dir(),
                "image {id} lacks layer {hex}"
            );
            referenced.insert(hex);
        }
    }
    let image_root = d.data_root.join("image");
    for name in names_in(&image_root.join("layers")) {
        assert!(referenced.contains(&name), "orphaned layer {name}");
    }
    for name in names_in(&image_root.join("blobs/sha256")) {
        assert!(referenced.contains(&name), "orphaned blob {name}");
    }
    assert!(
        names_in(&image_root.join("tmp")).is_empty(),
        "tmp not cleared"
    );

    let (_, _, body) = d.http("GET", "/volumes", None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let volumes: HashSet<String> = v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Name"].as_str().unwrap().to_string())
        .collect();
    let dirs = names_in(&d.data_root.join("volumes"));
    assert_eq!(volumes, dirs, "volume records and directories differ");

    let (_, _, body) = d.http("GET", "/containers/json?all=1", None);
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let ids: HashSet<String> = list
        .iter()
        .map(|c| c["Id"].as_str().unwrap().to_string())
        .collect();
    let dirs = names_in(&d.data_root.join("containers"));
    assert_eq!(ids, dirs, "container records and directories differ");
}

#[test]
fn kill9_during_import_commit_load_volume_create_and_rm() {
    let mut d = Daemon::start();
    d.import_busybox();
    // Data that must survive every crash.
    d.berth(&[
        "run",
        "--rm",
        "-v",
        "precious:/p",
        "busybox",
        "sh",
        "-c",
        "seq 1 20000 > /p/numbers",
    ])
    .ok();
    let precious = d.data_root.join("volumes/precious/_data/numbers");
    let expected = std::fs::read(&precious).unwrap();
    d.berth(&[
        "run",
        "--name",
        "base",
        "busybox",
        "sh",
        "-c",
        "seq 1 50000 > /data.txt",
    ])
    .ok();
    d.berth(&["commit", "base", "two-layers"]).ok();
    let saved = d.root.join("saved.tar");
    d.berth(&["save", "-o", saved.to_str().unwrap(), "two-layers"])
        .ok();
    d.berth(&["rmi", "two-layers"]).ok();
    let tars: Vec<_> = (0..3)
        .map(|i| {
            let p = d.root.join(format!("big{i}.tar"));
            big_tar(&p, 24, i);
            p
        })
        .collect();

    // A registry with a many-layer image, pulled while berthd is killed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut registry = d
        .berth_cmd(&[
            "registry",
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--root",
            d.root.join("reg").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ctx = d.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut dockerfile = String::from("FROM busybox\n");
    for (i, t) in tars.iter().enumerate() {
        std::fs::copy(t, ctx.join(format!("layer{i}"))).unwrap();
        dockerfile.push_str(&format!("COPY layer{i} /\n"));
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let pulled = format!("127.0.0.1:{port}/crash/many:1");
    d.berth(&["build", "-q", "-t", &pulled, ctx.to_str().unwrap()])
        .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    d.berth(&["push", &pulled]).ok();
    d.berth(&["rmi", &pulled]).ok();
    d.berth(&["builder", "prune", "-af"]).ok();

    for round in 0..6u64 {
        let _ = d.berth(&["rmi", &pulled]);
        let mut clients = Vec::new();
        for (i, t) in tars.iter().enumerate() {
            clients.push(
                d.berth_cmd(&["import", t.to_str().unwrap(), &format!("big{round}x{i}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
        }
        for args in [
            vec!["commit".to_string(), "base".into(), format!("c{round}")],
            vec!["load".into(), "-i".into(), saved.display().to_string()],
            vec!["volume".into(), "create".into(), format!("vol{round}")],
            vec![
                "run".into(),
                "-d".into(),
                "-v".into(),
                "/anon".into(),
                "busybox".into(),
                "true".into(),
            ],
            vec!["rmi".into(), format!("big{}x0", round.saturating_sub(1))],
            vec!["pull".into(), pulled.clone()],
        ] {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            clients.push(
                d.berth_cmd(&refs)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
        }
        std::thread::sleep(Duration::from_millis(15 + round * 40));
        d.kill9();
        for mut c in clients {
            let _ = c.wait();
        }
        d.respawn();
        assert_consistent(&d);
        assert_eq!(
            std::fs::read(&precious).unwrap(),
            expected,
            "volume data changed"
        );
    }
    // The pull completes after all that.
    let _ = d.berth(&["rmi", &pulled]);
    d.berth(&["pull", &pulled]).ok();
    assert_consistent(&d);
    let _ = registry.kill();
    let _ = registry.wait();
    // And it still works.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            "precious:/p",
            "busybox",
            "tail",
            "-n",
            "1",
            "/p/numbers",
        ])
        .ok();
    assert_eq!(r.stdout, "20000\n");
}
