//! Images: import (file and stdin, with --change), tag, inspect, rmi, layer sharing,
//! and hostile archives.

mod common;

use common::{Daemon, Dockerd};

#[test]
fn import_tag_inspect_remove() {
    let d = Daemon::start();
    let tar = common::busybox_tar();
    let id = d
        .berth(&[
            "import",
            "-c",
            "CMD [\"echo\", \"from-cmd\"]",
            "-c",
            "ENV GREETING=hi",
            "-c",
            "WORKDIR /tmp",
            tar.to_str().expect("path"),
            "box:1",
        ])
        .ok()
        .out()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.berth(&["run", "--rm", "box:1"]).ok().out(), "from-cmd");
    assert_eq!(
        d.berth(&["run", "--rm", "box:1", "sh", "-c", "echo $GREETING $(pwd)"])
            .ok()
            .out(),
        "hi /tmp"
    );
    // Same content from stdin: same layer, same diff ID.
    let bytes = std::fs::read(&tar).expect("read tar");
    d.berth_stdin(&["import", "-", "box:stdin"], &bytes).ok();
    let layers_a = d.inspect("box:1", "{{json .RootFS.Layers}}");
    let layers_b = d.inspect("box:stdin", "{{json .RootFS.Layers}}");
    assert_eq!(layers_a, layers_b);
    // The layer's digest is the sha256 of its tar.
    let diff_id = serde_json::from_str::<Vec<String>>(&layers_a).expect("layers")[0].clone();
    let blob = d
        .data_root
        .join("image/blobs/sha256")
        .join(diff_id.trim_start_matches("sha256:"));
    assert_eq!(
        std::fs::metadata(&blob).expect("blob").len(),
        bytes.len() as u64
    );

    d.berth(&["tag", "box:1", "other/name:v2"]).ok();
    let images = d.berth(&["images"]).ok().stdout;
    assert!(
        images.contains("other/name") && images.contains("v2"),
        "{images}"
    );
    assert_eq!(d.inspect("other/name:v2", "{{.Id}}"), id);
    // Untag one of two tags: the image stays.
    let r = d.berth(&["rmi", "other/name:v2"]).ok();
    assert!(r.stdout.contains("Untagged: other/name:v2"));
    assert_eq!(d.inspect("box:1", "{{.Id}}"), id);
    // An image used by a container cannot be removed without force.
    d.berth(&["create", "--name", "user", "box:1"]).ok();
    let r = d.berth(&["rmi", "box:1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("conflict"), "{}", r.stderr);
    d.berth(&["rm", "user"]).ok();
    d.berth(&["rmi", "box:stdin"]).ok();
    let r = d.berth(&["rmi", "box:1"]).ok();
    assert!(r.stdout.contains(&format!("Deleted: {id}")), "{}", r.stdout);
    assert!(!blob.exists(), "unreferenced layer blob is removed");
    assert_eq!(d.berth(&["images", "-q"]).ok().out(), "");
}

#[test]
fn containers_share_image_layers() {
    let d = Daemon::start();
    d.import_busybox();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            d.berth(&["run", "-d", "busybox", "sleep", "60"])
                .ok()
                .out()
                .to_string(),
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let lowers: Vec<String> = ids
        .iter()
        .map(|id| {
            let line = mountinfo
                .lines()
                .find(|l| l.contains(&format!("{id}/rootfs")) && l.contains("overlay"))
                .unwrap_or_else(|| panic!("no overlay mount for {id}"));
            line.split("lowerdir=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .expect("lowerdir")
                .to_string()
        })
        .collect();
    assert!(lowers.iter().all(|l| l == &lowers[0]), "{lowers:?}");
    assert!(lowers[0].starts_with(d.data_root.join("image/layers").to_str().expect("path")));
    // A file written in one container does not show up in another or in the layer.
    d.berth(&["run", "--rm", "busybox", "touch", "/only-here"])
        .ok();
    let r = d.berth(&["run", "--rm", "busybox", "ls", "/only-here"]);
    assert_eq!(r.code, 1);
    assert!(!std::path::Path::new(&lowers[0]).join("only-here").exists());
}

/// One raw tar header + data, so hostile names the tar crate would refuse can be written.
fn entry(out: &mut Vec<u8>, path: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..108].copy_from_slice(b"0000755\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let d = Daemon::start();
    let outside = d.root.join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", {
            let mut t = Vec::new();
            entry(
                &mut t,
                "../../../../../../../tmp/berth-evil",
                b'0',
                "",
                b"pwned",
            );
            t
        }),
        ("symlink-escape", {
            let mut t = Vec::new();
            entry(&mut t, "esc", b'2', outside.to_str().expect("path"), b"");
            entry(&mut t, "esc/evil", b'0', "", b"pwned");
            t
        }),
        ("hardlink-out", {
            let mut t = Vec::new();
            entry(&mut t, "h", b'1', "/etc/passwd", b"");
            t
        }),
    ];
    for (name, mut tar) in cases {
        tar.extend(std::iter::repeat_n(0u8, 1024));
        let r = d.berth_stdin(&["import", "-", &format!("hostile:{name}")], &tar);
        assert_ne!(r.code, 0, "{name} was accepted");
        assert!(
            r.stderr.contains("refusing archive"),
            "{name}: {}",
            r.stderr
        );
    }
    assert!(!std::path::Path::new("/tmp/berth-evil").exists());
    assert!(std::fs::read_dir(&outside)
        .expect("outside")
        .next()
        .is_none());
    assert_eq!(d.berth(&["images", "-q"]).ok().out(), "");
    let tmp = d.data_root.join("image/tmp");
    assert!(
        std::fs::read_dir(&tmp).expect("tmp").next().is_none(),
        "half-written layers left in {tmp:?}"
    );
    let layers = d.data_root.join("image/layers");
    assert!(std::fs::read_dir(&layers).expect("layers").next().is_none());
    // A device node is skipped, not created.
    let mut tar = Vec::new();
    entry(&mut tar, "dev/", b'5', "", b"");
    entry(&mut tar, "dev/mem", b'3', "", b"");
    entry(&mut tar, "bin/", b'5', "", b"");
    tar.extend(std::iter::repeat_n(0u8, 1024));
    d.berth_stdin(&["import", "-", "devices:1"], &tar).ok();
    let found = std::fs::read_dir(&layers)
        .expect("layers")
        .flatten()
        .any(|l| l.path().join("dev/mem").exists());
    assert!(!found, "device node was created");
}

#[test]
fn export_round_trips_a_containers_filesystem() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo payload > /data; rm /bin/vi",
    ])
    .ok();
    let out = d.root.join("export.tar");
    d.berth(&["export", "-o", out.to_str().expect("path"), "src"])
        .ok();
    d.berth(&["import", out.to_str().expect("path"), "exported:1"])
        .ok();
    let r = d
        .berth(&[
            "run",
            "--rm",
            "exported:1",
            "sh",
            "-c",
            "cat /data; ls /bin/vi 2>&1 || true",
        ])
        .ok();
    assert!(r.stdout.starts_with("payload\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("No such file"),
        "deleted file came back: {}",
        r.stdout
    );
    // Nothing stays mounted from exporting a stopped container.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mountinfo.contains("/export-"), "{mountinfo}");
}

#[test]
fn kill_9_during_import_leaves_a_consistent_store() {
    use std::io::Write;
    let mut d = Daemon::start();
    let tar = std::fs::read(common::busybox_tar()).expect("tar");
    let mut child = d
        .berth_cmd(&["import", "-", "half:1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn import");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&tar[..tar.len() / 2]).expect("feed half");
    stdin.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.kill9();
    drop(stdin);
    let _ = child.wait();
    d.respawn();
    assert_eq!(d.berth(&["images", "-q"]).ok().out(), "");
    for dir in ["image/tmp", "image/layers"] {
        let p = d.data_root.join(dir);
        assert!(
            std::fs::read_dir(&p).expect("dir").next().is_none(),
            "{dir} not clean after crash"
        );
    }
    // The store still works.
    d.import_busybox();
    assert_eq!(
        d.berth(&["run", "--rm", "busybox", "echo", "ok"])
            .ok()
            .out(),
        "ok"
    );
}

#[test]
fn save_and_load_round_trip_with_berth_docker_and_podman() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.inspect("busybox", "{{.Id}}");
    let saved = d.root.join("saved.tar");
    d.berth(&["save", "-o", saved.to_str().expect("path"), "busybox"])
        .ok();
    d.berth(&["rmi", "busybox"]).ok();
    let r = d.berth(&["load", "-i", saved.to_str().expect("path")]).ok();
    assert_eq!(r.out(), "Loaded image: busybox:latest");
    assert_eq!(
        d.inspect("busybox", "{{.Id}}"),
        id,
        "the image ID survives the round trip"
    );
    assert_eq!(
        d.berth(&["run", "--rm", "busybox", "echo", "loaded"])
            .ok()
            .out(),
        "loaded"
    );

    // podman reads berth's archive and keeps the ID; berth reads podman's
    // docker-archive and oci-archive (gzip layers) back to the same ID.
    let pm = d.root.join("podman");
    let podman = |args: &[&str]| {
        let child = std::process::Command::new("podman")
            .arg("--root")
            .arg(pm.join("root"))
            .arg("--runroot")
            .arg(pm.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "file",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("podman is installed by .ci/run");
        let out = common::wait_output(child, std::time::Duration::from_secs(120));
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    podman(&["load", "-i", saved.to_str().expect("path")]);
    let podman_id = podman(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert_eq!(
        podman_id.trim().trim_start_matches("sha256:"),
        id.trim_start_matches("sha256:")
    );
    for format in ["docker-archive", "oci-archive"] {
        let out = pm.join(format!("{format}.tar"));
        podman(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().expect("path"),
            "localhost/busybox:latest",
        ]);
        d.berth(&["rmi", "-f", &id]).ok();
        let r = d.berth(&["load", "-i", out.to_str().expect("path")]).ok();
        assert!(r.out().contains("busybox:latest"), "{format}: {}", r.out());
        assert_eq!(
            d.inspect("localhost/busybox:latest", "{{.Id}}"),
            id,
            "{format}"
        );
    }
    podman(&["rmi", "-a", "-f"]);
    let _ = std::fs::remove_dir_all(&pm);

    // skopeo: berth's archive → skopeo's docker-archive and oci layout → berth.
    let skopeo_archive = d.root.join("skopeo.tar");
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            &format!("docker-archive:{}", saved.display()),
            &format!(
                "docker-archive:{}:skopeo/busybox:copied",
                skopeo_archive.display()
            ),
        ])
        .output()
        .expect("skopeo is installed by .ci/run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = d
        .berth(&["load", "-i", skopeo_archive.to_str().expect("path")])
        .ok();
    assert!(r.out().contains("skopeo/busybox:copied"), "{}", r.out());
    assert_eq!(d.inspect("skopeo/busybox:copied", "{{.Id}}"), id);

    // A layer that does not match the config's diff ID is refused, nothing stored.
    let bad = d.root.join("bad");
    std::fs::create_dir_all(bad.join("blobs/sha256")).expect("mkdir");
    let layer = b"not the layer the config names";
    let layer_hex = sha256_hex(layer);
    std::fs::write(bad.join("blobs/sha256").join(&layer_hex), layer).expect("write");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        "0".repeat(64)
    );
    std::fs::write(bad.join("config.json"), &config).expect("write");
    std::fs::write(bad.join("manifest.json"), format!(r#"[{{"Config":"config.json","RepoTags":["bad:1"],"Layers":["blobs/sha256/{layer_hex}"]}}]"#)).expect("write");
    let tarball = d.root.join("bad.tar");
    assert!(std::process::Command::new("tar")
        .arg("-C")
        .arg(&bad)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("tar")
        .success());
    let r = d.berth(&["load", "-i", tarball.to_str().expect("path")]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("digest"), "{}", r.stderr);
    assert_eq!(d.berth(&["inspect", "bad:1"]).code, 1);
    assert!(std::fs::read_dir(d.data_root.join("image/tmp"))
        .expect("tmp")
        .next()
        .is_none());
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn save_and_load_round_trip_with_a_real_dockerd() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo layered > /f",
    ])
    .ok();
    d.berth(&["commit", "src", "two:1"]).ok();
    let id = d.inspect("two:1", "{{.Id}}");
    let docker = Dockerd::start(&d.root.join("dk"), &format!("dk{}", &d.name[2..]));
    let saved = d.root.join("berth-saved.tar");
    d.berth(&["save", "-o", saved.to_str().unwrap(), "two:1"])
        .ok();
    let (code, out, err) = docker.docker(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "docker load: {err}");
    assert!(out.contains("two:1"), "{out}");
    let (_, docker_id, _) = docker.docker(&["image", "inspect", "-f", "{{.Id}}", "two:1"]);
    assert_eq!(docker_id.trim(), id, "docker keeps berth's image ID");
    let (_, layers, _) =
        docker.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "two:1"]);
    assert_eq!(layers.trim(), d.inspect("two:1", "{{json .RootFS.Layers}}"));
    docker.docker(&["tag", "two:1", "from-docker:2"]);
    let dsaved = d.root.join("docker-saved.tar");
    let (code, _, err) = docker.docker(&["save", "-o", dsaved.to_str().unwrap(), "from-docker:2"]);
    assert_eq!(code, 0, "docker save: {err}");
    d.berth(&["rm", "src"]).ok();
    d.berth(&["rmi", "two:1"]).ok();
    let r = d.berth(&["load", "-i", dsaved.to_str().unwrap()]).ok();
    assert!(r.out().contains("from-docker:2"), "{}", r.out());
    assert_eq!(
        d.inspect("from-docker:2", "{{.Id}}"),
        id,
        "berth keeps docker's image ID"
    );
    assert_eq!(
        d.berth(&["run", "--rm", "from-docker:2", "cat", "/f"])
            .ok()
            .stdout,
        "layered\n"
    );
}
