//! Volumes, bind mounts and tmpfs through the berth CLI against a real berthd.

mod common;

use std::time::Duration;

use common::Daemon;

fn volume_dir(d: &Daemon, name: &str) -> std::path::PathBuf {
    d.data_root.join("volumes").join(name).join("_data")
}

#[test]
fn named_volume_outlives_containers_and_is_filled_from_the_image() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["volume", "create", "--label", "team=a", "data"])
        .ok();
    d.berth(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ])
    .ok();
    let r = d.berth(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/g",
    ]);
    assert_eq!(r.stdout, "kept\n");
    assert_ne!(r.code, 0, "a read-only volume took a write");
    assert!(r.stderr.contains("Read-only"), "{}", r.stderr);

    // An empty volume over /etc gets the image's /etc (docker's copy-up); with
    // nocopy it stays empty.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            "etcvol:/etc",
            "busybox",
            "cat",
            "/etc/passwd",
        ])
        .ok();
    assert!(r.stdout.starts_with("root:x:0:0"), "{}", r.stdout);
    assert!(volume_dir(&d, "etcvol").join("passwd").exists());
    let r = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            "empty:/etc:nocopy",
            "busybox",
            "ls",
            "/etc",
        ])
        .ok();
    assert!(!r.stdout.contains("passwd"), "{}", r.stdout);

    let ls = d.berth(&["volume", "ls", "-q"]).ok();
    let names: Vec<&str> = ls.stdout.lines().collect();
    assert_eq!(names, ["data", "empty", "etcvol"]);
    let filtered = d
        .berth(&["volume", "ls", "-q", "--filter", "label=team=a"])
        .ok();
    assert_eq!(filtered.stdout, "data\n");
    let inspect = d
        .berth(&[
            "volume",
            "inspect",
            "-f",
            "{{.Driver}} {{.Labels.team}} {{.Mountpoint}}",
            "data",
        ])
        .ok();
    assert_eq!(
        inspect.out(),
        format!("local a {}", volume_dir(&d, "data").display())
    );

    // In use (even by a stopped container): 409, named volumes survive rm -v.
    d.berth(&[
        "create",
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ])
    .ok();
    let (status, _, body) = d.http("DELETE", "/volumes/data", None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("volume is in use"), "{body}");
    let mounts = d.inspect(
        "user",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
    );
    assert_eq!(mounts, "volume data /data true");
    d.berth(&["rm", "-v", "user"]).ok();
    assert!(volume_dir(&d, "data").join("f").exists());
    d.berth(&["volume", "rm", "data"]).ok();
    assert!(!d.data_root.join("volumes/data").exists());
    let (status, _, body) = d.http("GET", "/volumes/data", None);
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = d.http("POST", "/volumes/create", Some(r#"{"Name":"../x"}"#));
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = d.http(
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"opt","DriverOpts":{"bogus":"1"}}"#),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_prune() {
    let d = Daemon::start();
    d.import_busybox();
    let tar = common::busybox_tar();
    d.berth(&[
        "import",
        "-c",
        "VOLUME /var/tmp",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap(),
        "withvol",
    ])
    .ok();
    d.berth(&[
        "run",
        "--name",
        "va",
        "-v",
        "/scratch",
        "withvol",
        "sh",
        "-c",
        "echo x > /scratch/f; echo y > /var/tmp/g",
    ])
    .ok();
    let anon: Vec<String> = d
        .berth(&["volume", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(anon.len(), 2, "{anon:?}");
    for v in &anon {
        assert_eq!(v.len(), 64);
    }
    // --volumes-from shares them with a second container.
    let r = d.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "va:ro",
        "busybox",
        "sh",
        "-c",
        "cat /scratch/f /var/tmp/g; touch /scratch/h",
    ]);
    assert_eq!(r.stdout, "x\ny\n");
    assert_ne!(r.code, 0);
    d.berth(&["volume", "create", "keep"]).ok();
    d.berth(&["rm", "-v", "va"]).ok();
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout, "keep\n");

    // run --rm takes its anonymous volumes along; prune only anonymous ones
    // unless --all.
    d.berth(&["run", "--rm", "-v", "/tmp/x", "busybox", "true"])
        .ok();
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout, "keep\n");
    d.berth(&["create", "-v", "/tmp/x", "--name", "vb", "busybox", "true"])
        .ok();
    d.berth(&["rm", "vb"]).ok();
    assert_eq!(
        d.berth(&["volume", "ls", "-q"]).ok().stdout.lines().count(),
        2
    );
    let pruned = d.berth(&["volume", "prune", "-f"]).ok();
    assert!(
        pruned.stdout.contains("Deleted Volumes:"),
        "{}",
        pruned.stdout
    );
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout, "keep\n");
    d.berth(&["volume", "prune", "-f", "--all"]).ok();
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout, "");
}

#[test]
fn bind_mounts_and_tmpfs() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.root.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let spec = format!("{}:/h", host.display());
    let r = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            &spec,
            "busybox",
            "sh",
            "-c",
            "cat /h/in; echo back > /h/out",
        ])
        .ok();
    assert_eq!(r.stdout, "from host\n");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "back\n");
    let ro = format!("type=bind,source={},target=/h,readonly", host.display());
    let r = d.berth(&["run", "--rm", "--mount", &ro, "busybox", "touch", "/h/x"]);
    assert_ne!(r.code, 0);
    // --mount refuses a missing source; -v creates it, as docker does.
    let missing = d.root.join("missing");
    let m = format!("type=bind,source={},target=/m", missing.display());
    let r = d.berth(&["run", "--rm", "--mount", &m, "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("bind source path does not exist"),
        "{}",
        r.stderr
    );
    assert!(!missing.exists());
    let v = format!("{}:/m", missing.display());
    d.berth(&["run", "--rm", "-v", &v, "busybox", "true"]).ok();
    assert!(missing.is_dir());
    let r = d.berth(&[
        "run", "--rm", "-v", "/a:/b", "-v", "/c:/b", "busybox", "true",
    ]);
    assert!(r.stderr.contains("Duplicate mount point"), "{}", r.stderr);

    // A full size-limited tmpfs is ENOSPC for the container, nothing for berthd.
    let r = d.berth(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t:size=1m",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/t/fill bs=64k count=100 2>&1; df -k /t | tail -1",
    ]);
    assert!(r.stdout.contains("No space left on device"), "{}", r.stdout);
    let r = d.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=1770",
        "busybox",
        "stat",
        "-c",
        "%a",
        "/t",
    ]);
    assert_eq!(r.ok().out(), "1770");
    // A local-driver tmpfs volume with a size.
    d.berth(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "small",
    ])
    .ok();
    let r = d.berth(&[
        "run",
        "--rm",
        "-v",
        "small:/s",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/s/fill bs=64k count=100 2>&1",
    ]);
    assert!(r.stdout.contains("No space left on device"), "{}", r.stdout);
    assert_eq!(d.berth(&["version"]).code, 0);
    d.berth(&["volume", "rm", "small"]).ok();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounted.contains(d.data_root.join("volumes").to_str().unwrap()));
}

#[test]
fn cp_both_ways_follows_docker_rules_and_stays_inside() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.root.join("cp");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/f"), "leaf\n").unwrap();
    std::fs::write(host.join("one"), "single\n").unwrap();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "live",
        "-v",
        "cpvol:/vol",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.berth(&["create", "--name", "cold", "busybox", "true"])
        .ok();

    for ctr in ["live", "cold"] {
        let one = host.join("one");
        let tree = host.join("tree");
        // file into an existing dir, file to a new name, dir into dir, dir contents.
        d.berth(&["cp", one.to_str().unwrap(), &format!("{ctr}:/tmp")])
            .ok();
        d.berth(&["cp", one.to_str().unwrap(), &format!("{ctr}:/tmp/renamed")])
            .ok();
        d.berth(&["cp", tree.to_str().unwrap(), &format!("{ctr}:/root")])
            .ok();
        d.berth(&[
            "cp",
            &format!("{}/.", tree.display()),
            &format!("{ctr}:/home"),
        ])
        .ok();
        let r = d.berth(&[
            "cp",
            one.to_str().unwrap(),
            &format!("{ctr}:/nonexistent/dir/"),
        ]);
        assert_ne!(r.code, 0);

        let out = host.join(format!("out-{ctr}"));
        std::fs::create_dir_all(&out).unwrap();
        d.berth(&["cp", &format!("{ctr}:/tmp/one"), out.to_str().unwrap()])
            .ok();
        d.berth(&[
            "cp",
            &format!("{ctr}:/tmp/renamed"),
            out.join("again").to_str().unwrap(),
        ])
        .ok();
        d.berth(&[
            "cp",
            &format!("{ctr}:/root/tree"),
            out.join("t2").to_str().unwrap(),
        ])
        .ok();
        d.berth(&[
            "cp",
            &format!("{ctr}:/home/."),
            out.join("h").to_str().unwrap(),
        ])
        .ok();
        assert_eq!(
            std::fs::read_to_string(out.join("one")).unwrap(),
            "single\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("again")).unwrap(),
            "single\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("t2/sub/f")).unwrap(),
            "leaf\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("h/sub/f")).unwrap(),
            "leaf\n"
        );
        let r = d.berth(&["cp", &format!("{ctr}:/nope"), out.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("Could not find the file /nope"),
            "{}",
            r.stderr
        );
    }
    // Into a running container's volume (seen through its mount namespace).
    d.berth(&["cp", host.join("one").to_str().unwrap(), "live:/vol"])
        .ok();
    assert!(volume_dir(&d, "cpvol").join("one").exists());
    let r = d
        .berth(&["exec", "live", "cat", "/root/tree/sub/f", "/home/sub/f"])
        .ok();
    assert_eq!(r.stdout, "leaf\nleaf\n");
    d.berth(&["start", "-a", "cold"]).ok();
    let diff = d.berth(&["diff", "cold"]).ok();
    assert!(diff.stdout.contains("A /tmp/renamed"), "{}", diff.stdout);

    // A symlink in the container pointing at the host's /etc is resolved inside it.
    d.berth(&["exec", "live", "ln", "-s", "/etc", "/tmp/hostetc"])
        .ok();
    d.berth(&["exec", "live", "ln", "-s", "../../../../../../", "/tmp/up"])
        .ok();
    let out = host.join("leak");
    std::fs::create_dir_all(&out).unwrap();
    d.berth(&[
        "cp",
        "live:/tmp/hostetc/",
        out.join("etc").to_str().unwrap(),
    ])
    .ok();
    let passwd = std::fs::read_to_string(out.join("etc/passwd")).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\nnobody"),
        "{passwd}"
    );
    let marker = d.root.join("cp/one");
    let r = d
        .berth(&["cp", marker.to_str().unwrap(), "live:/tmp/up/tmp"])
        .ok();
    assert_eq!(r.code, 0);
    let r = d.berth(&["exec", "live", "cat", "/tmp/one"]).ok();
    assert_eq!(r.stdout, "single\n");

    // A hostile archive through the API: '..' is refused, nothing lands outside.
    let mut tar = Vec::new();
    {
        let mut h = tar::Header::new_gnu();
        let name = b"../../../../escaped";
        h.as_mut_bytes()[..name.len()].copy_from_slice(name);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(b"x");
        tar.extend(std::iter::repeat_n(0u8, 511 + 1024));
    }
    let (status, body) = d.http_bytes("PUT", "/containers/live/archive?path=/tmp", &tar);
    assert_eq!(status, 400, "{body}");
    assert!(!std::path::Path::new("/escaped").exists());
    let (status, _, _) = d.http("HEAD", "/containers/live/archive?path=/etc/passwd", None);
    assert_eq!(status, 200);
}

#[test]
fn commit_captures_changes_as_a_new_layer() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "--name",
        "work",
        "busybox",
        "sh",
        "-c",
        "echo made > /root/new; rm /etc/group; mkdir -p /opt/app && echo v1 > /opt/app/conf",
    ])
    .ok();
    let id = d
        .berth(&[
            "commit",
            "-a",
            "Ann <ann@example.com>",
            "-m",
            "add app",
            "-c",
            "CMD [\"cat\", \"/opt/app/conf\"]",
            "-c",
            "ENV STAGE=prod",
            "work",
            "myapp:v1",
        ])
        .ok()
        .out()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.berth(&["run", "--rm", "myapp:v1"]).ok().stdout, "v1\n");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "myapp:v1",
            "sh",
            "-c",
            "cat /root/new; echo $STAGE; ls /etc/group 2>&1; true",
        ])
        .ok();
    assert!(r.stdout.starts_with("made\nprod\n"), "{}", r.stdout);
    assert!(r.stdout.contains("No such file"), "{}", r.stdout);
    let author = d
        .berth(&[
            "image",
            "inspect",
            "-f",
            "{{.Author}} {{len .RootFS.Layers}}",
            "myapp:v1",
        ])
        .ok();
    assert_eq!(author.out(), "Ann <ann@example.com> 2");
    let history = d.berth(&["history", "myapp:v1"]).ok();
    assert!(history.stdout.contains("add app"), "{}", history.stdout);

    // A running container is committed too (frozen meanwhile, then running on).
    d.berth(&[
        "run",
        "-d",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo x > /x; sleep 1000",
    ])
    .ok();
    assert!(d.eventually(Duration::from_secs(5), || {
        d.berth(&["exec", "live", "cat", "/x"]).code == 0
    }));
    d.berth(&["commit", "live", "snap"]).ok();
    assert_eq!(d.inspect("live", "{{.State.Status}}"), "running");
    assert_eq!(
        d.berth(&["run", "--rm", "snap", "cat", "/x"]).ok().stdout,
        "x\n"
    );
    let (status, _, body) = d.http("POST", "/commit?container=nope", None);
    assert_eq!(status, 404, "{body}");

    // Removing the images frees their layers; the base stays.
    d.berth(&["rm", "-f", "work", "live"]).ok();
    d.berth(&["rmi", "myapp:v1", "snap"]).ok();
    let layers = std::fs::read_dir(d.data_root.join("image/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 1);
}

#[test]
fn bind_propagation_is_recorded_and_passed_to_the_runtime() {
    let d = Daemon::start();
    d.import_busybox();
    let src = d.root.join("prop");
    std::fs::create_dir_all(&src).unwrap();
    let spec = format!(
        "type=bind,source={},target=/m,bind-propagation=rslave",
        src.display()
    );
    let id = d
        .berth(&[
            "run", "-d", "--name", "prop", "--mount", &spec, "busybox", "sleep", "100",
        ])
        .ok()
        .out()
        .to_string();
    assert_eq!(
        d.inspect("prop", "{{range .Mounts}}{{.Propagation}}{{end}}"),
        "rslave"
    );
    let config =
        std::fs::read_to_string(d.exec_root.join("containers").join(&id).join("config.json"))
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    let m = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/m")
        .unwrap();
    assert!(
        m["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "rslave"),
        "{m}"
    );
    let r = d.berth(&[
        "run",
        "--rm",
        "--mount",
        &format!(
            "type=bind,source={},target=/m,bind-propagation=sideways",
            src.display()
        ),
        "busybox",
        "true",
    ]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("invalid propagation mode"),
        "{}",
        r.stderr
    );
}

#[test]
fn rslave_bind_sees_host_mounts_made_after_start() {
    let d = Daemon::start();
    d.import_busybox();
    let shared = d.root.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    let sh = |args: &[&str]| {
        assert!(
            std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .unwrap()
                .success(),
            "{args:?}"
        )
    };
    let s = shared.to_str().unwrap().to_string();
    sh(&["mount", "--bind", &s, &s]);
    sh(&["mount", "--make-shared", &s]);
    let sub = shared.join("sub");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let spec = format!("type=bind,source={s},target=/m,bind-propagation=rslave");
        d.berth(&[
            "run", "-d", "--name", "prop", "--mount", &spec, "busybox", "sleep", "100",
        ])
        .ok();
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "later",
            sub.to_str().unwrap(),
        ]);
        std::fs::write(sub.join("hello"), "from the host\n").unwrap();
        let r = d.berth(&["exec", "prop", "cat", "/m/sub/hello"]);
        assert_eq!(r.stdout, "from the host\n", "{}", r.stderr);
        d.berth(&["rm", "-f", "prop"]).ok();
    }));
    let _ = std::process::Command::new("umount").arg(&sub).status();
    let _ = std::process::Command::new("umount").arg(&shared).status();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
