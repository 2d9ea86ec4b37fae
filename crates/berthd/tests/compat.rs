//! Pause/unpause, rename, top, diff, stats, history and system df, through berth's
//! CLI and through the unmodified docker CLI (28.x, /usr/local/bin/docker).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Run};

fn docker(d: &Daemon, args: &[&str]) -> Run {
    docker_at("/usr/local/bin/docker", d, args)
}

fn docker_at(binary: &str, d: &Daemon, args: &[&str]) -> Run {
    let child = Command::new(binary)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI is part of this machine image");
    let out = common::wait_output(child, Duration::from_secs(30));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d
        .berth(&[
            "run",
            "-d",
            "--name",
            "counter",
            "busybox",
            "sh",
            "-c",
            "while true; do date +%s%N; sleep 0.05; done",
        ])
        .ok()
        .out()
        .to_string();
    d.berth(&["pause", "counter"]).ok();
    assert_eq!(
        d.inspect("counter", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let state =
        std::fs::read_to_string(d.cgroup_file(&id, "freezer", "freezer.state")).unwrap_or_default();
    assert_eq!(state.trim(), "FROZEN");
    let before = d.berth(&["logs", "counter"]).ok().stdout.lines().count();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        d.berth(&["logs", "counter"]).ok().stdout.lines().count(),
        before,
        "a frozen container kept running"
    );
    let r = d.berth(&["exec", "counter", "true"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is paused"), "{}", r.stderr);
    assert_eq!(
        d.berth(&["pause", "counter"]).code,
        1,
        "pausing twice is a conflict"
    );
    d.berth(&["unpause", "counter"]).ok();
    assert!(d.eventually(Duration::from_secs(5), || d
        .berth(&["logs", "counter"])
        .stdout
        .lines()
        .count()
        > before));
    // Stopping a paused container works: it is thawed after the signal.
    d.berth(&["pause", "counter"]).ok();
    d.berth(&["stop", "-t", "1", "counter"]).ok();
    assert_eq!(
        d.inspect("counter", "{{.State.Status}} {{.State.Paused}}"),
        "exited false"
    );
}

#[test]
fn rename_top_diff_stats_history_df() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "old",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "echo x > /added; rm /bin/vi; sleep 100",
    ])
    .ok();
    d.berth(&["rename", "old", "new"]).ok();
    assert_eq!(d.inspect("new", "{{.Name}}"), "/new");
    assert_eq!(d.berth(&["inspect", "old"]).code, 1);
    d.berth(&["run", "-d", "--name", "other", "busybox", "sleep", "100"])
        .ok();
    let r = d.berth(&["rename", "new", "other"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already in use"));
    let top = d.berth(&["top", "new"]).ok().stdout;
    assert!(top.starts_with("UID") && top.contains("sleep 100"), "{top}");
    let diff = d.berth(&["diff", "new"]).ok().stdout;
    assert_eq!(diff, "A /added\nC /bin\nD /bin/vi\n");
    let stats = d.berth(&["stats", "--no-stream", "new"]).ok().stdout;
    assert!(
        stats.contains("new") && stats.contains("/ 64MiB"),
        "{stats}"
    );
    let history = d.berth(&["history", "busybox"]).ok().stdout;
    assert!(history.contains("Imported from -"), "{history}");
    let df = d.berth(&["system", "df"]).ok().stdout;
    assert!(
        df.lines()
            .any(|l| l.starts_with("Containers") && l.contains(" 2 ")),
        "{df}"
    );
}

#[test]
fn the_docker_cli_drives_berthd() {
    let d = Daemon::start();
    d.import_busybox();
    let v = docker(&d, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!((v.code, v.out()), (0, "1.45"), "{}", v.stderr);
    let r = docker(&d, &["run", "--rm", "busybox", "echo", "hello from docker"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "hello from docker\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        docker(&d, &["run", "busybox", "sh", "-c", "exit 3"]).code,
        3
    );
    let id = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "svc",
            "-l",
            "tier=web",
            "busybox",
            "sh",
            "-c",
            "echo up; sleep 100",
        ],
    );
    assert_eq!(id.code, 0, "{}", id.stderr);
    let ps = docker(
        &d,
        &[
            "ps",
            "--filter",
            "label=tier=web",
            "--format",
            "{{.Names}} {{.Image}}",
        ],
    );
    assert_eq!(ps.out(), "svc busybox");
    assert!(
        d.eventually(Duration::from_secs(5), || docker(&d, &["logs", "svc"])
            .stdout
            == "up\n")
    );
    let ex = docker(&d, &["exec", "svc", "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!((ex.code, ex.stdout.as_str()), (4, "in-exec\n"));
    assert_eq!(
        docker(
            &d,
            &[
                "inspect",
                "-f",
                "{{.State.Running}} {{.Config.Labels.tier}}",
                "svc"
            ]
        )
        .out(),
        "true web"
    );
    assert_eq!(docker(&d, &["pause", "svc"]).code, 0);
    assert_eq!(docker(&d, &["unpause", "svc"]).code, 0);
    assert_eq!(docker(&d, &["rename", "svc", "svc2"]).code, 0);
    assert!(docker(&d, &["top", "svc2"]).stdout.contains("sleep 100"));
    assert_eq!(
        docker(
            &d,
            &["stats", "--no-stream", "--format", "{{.Name}}", "svc2"]
        )
        .out(),
        "svc2"
    );
    assert_eq!(docker(&d, &["stop", "-t", "1", "svc2"]).code, 0);
    assert_eq!(docker(&d, &["wait", "svc2"]).out(), "137");
    assert_eq!(docker(&d, &["rm", "svc2"]).code, 0);
    let missing = docker(&d, &["inspect", "nope"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("No such object") || missing.stderr.contains("No such container"),
        "{}",
        missing.stderr
    );
    assert!(
        docker(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .stdout
            .contains("busybox:latest")
    );
}

#[test]
fn events_history_live_and_filters() {
    let d = Daemon::start();
    d.import_busybox();
    // Live: a follower started first sees the next container's life.
    let follower = d
        .berth_cmd(&[
            "events",
            "--filter",
            "type=container",
            "--filter",
            "container=watched",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("events");
    std::thread::sleep(Duration::from_millis(200));
    d.berth(&["run", "--rm", "--name", "watched", "busybox", "true"])
        .ok();
    d.berth(&["run", "--rm", "--name", "ignored", "busybox", "true"])
        .ok();
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: plain kill(2) of our child.
    unsafe { libc::kill(follower.id() as i32, libc::SIGTERM) };
    let live = common::wait_output(follower, Duration::from_secs(10));
    let live = String::from_utf8_lossy(&live.stdout).into_owned();
    let actions: Vec<&str> = live
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(actions, vec!["create", "start", "die", "destroy"], "{live}");
    assert!(!live.contains("ignored"));
    // History with since/until ends by itself, through berth and through docker.
    let past = d
        .berth(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "event=die",
        ])
        .ok();
    assert_eq!(past.stdout.lines().count(), 2, "{}", past.stdout);
    let since = (chrono_now() - 60).to_string();
    let until = chrono_now().to_string();
    let r = docker(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=watched",
            "--format",
            "{{.Action}}",
        ],
    );
    assert_eq!(r.stdout, "create\nstart\ndie\ndestroy\n", "{}", r.stderr);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        + 1
}

#[test]
fn prune_removes_only_what_is_unused() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["run", "--name", "done1", "busybox", "true"]).ok();
    d.berth(&["run", "--name", "done2", "-l", "keep=no", "busybox", "true"])
        .ok();
    d.berth(&["run", "-d", "--name", "alive", "busybox", "sleep", "60"])
        .ok();
    let done1 = d.container_id("done1");
    let done2 = d.container_id("done2");
    let r = d
        .berth(&["container", "prune", "-f", "--filter", "label=keep=no"])
        .ok();
    assert!(
        r.stdout.contains(&done2) && !r.stdout.contains(&done1),
        "{}",
        r.stdout
    );
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.lines().count(), 2);
    d.berth(&["container", "prune", "-f"]).ok();
    assert_eq!(
        d.berth(&["ps", "-aq"]).ok().stdout.lines().count(),
        1,
        "the running container stays"
    );
    // An untagged image is dangling; a tagged one in use is never pruned.
    let tar = common::busybox_tar();
    d.berth(&[
        "import",
        "-c",
        "CMD [\"true\"]",
        tar.to_str().expect("path"),
    ])
    .ok();
    let r = docker(&d, &["image", "prune", "-f"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("deleted: sha256:"), "{}", r.stdout);
    d.berth(&["image", "prune", "-a", "-f"]).ok();
    assert!(
        d.berth(&["images"]).ok().stdout.contains("busybox"),
        "an image in use was pruned"
    );
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run", "-d", "--name", "elastic", "-m", "32m", "busybox", "sleep", "60",
    ])
    .ok();
    let id = d.container_id("elastic");
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(d.cgroup_file(&id, ctrl, file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    let r = docker(
        &d,
        &[
            "update",
            "-m",
            "128m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "elastic",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("pids", "pids.max"), "50");
    d.berth(&["update", "--cpu-shares", "256", "elastic"]).ok();
    assert_eq!(read("cpu", "cpu.shares"), "256");
    assert_eq!(
        d.inspect("elastic", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}"),
        "134217728 500000000"
    );
    // The new limits survive a restart.
    d.berth(&["restart", "-t", "0", "elastic"]).ok();
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        d.berth(&["update", "-m", "1m", "elastic"]).code,
        1,
        "below docker's 6MB minimum"
    );
}

/// The docker Python SDK from PyPI, in the venv scripts/test.sh makes.
#[test]
fn the_docker_python_sdk_drives_berthd() {
    let d = Daemon::start();
    d.import_busybox();
    let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/sdk-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/test.sh, which creates it",
        python.display()
    );
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/docker_sdk.py");
    let child = Command::new(python)
        .arg(script)
        .arg(&d.socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let out = common::wait_output(child, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "stdout={} stderr={}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "docker-py ok");
}

#[test]
fn docker_cli_volumes_cp_and_commit() {
    let d = Daemon::start();
    d.import_busybox();
    assert_eq!(
        docker(&d, &["volume", "create", "--label", "k=v", "dvol"]).out(),
        "dvol"
    );
    let ls = docker(&d, &["volume", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(ls.out(), "dvol local");
    assert_eq!(
        docker(&d, &["volume", "inspect", "-f", "{{.Labels.k}}", "dvol"]).out(),
        "v"
    );
    let r = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "box",
            "-v",
            "dvol:/data",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mounts = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}",
            "box",
        ],
    );
    assert_eq!(mounts.out(), "volume:/data", "{}", mounts.stderr);
    let rm = docker(&d, &["volume", "rm", "dvol"]);
    assert_ne!(rm.code, 0);
    assert!(rm.stderr.contains("volume is in use"), "{}", rm.stderr);

    // docker cp both ways, with the stat header the CLI decodes.
    let host = d.root.join("dcp");
    std::fs::create_dir_all(host.join("dir")).unwrap();
    std::fs::write(host.join("dir/a"), "A\n").unwrap();
    let r = docker(&d, &["cp", host.join("dir").to_str().unwrap(), "box:/data"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = docker(&d, &["exec", "box", "cat", "/data/dir/a"]);
    assert_eq!(r.stdout, "A\n");
    let back = host.join("back");
    let r = docker(&d, &["cp", "box:/data/dir", back.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(back.join("a")).unwrap(), "A\n");
    let r = docker(&d, &["cp", "box:/etc/passwd", host.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(host.join("passwd"))
        .unwrap()
        .starts_with("root:"));
    let r = docker(&d, &["cp", "box:/missing", host.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Could not find the file"), "{}", r.stderr);

    // docker commit, then a container from the new image.
    docker(
        &d,
        &["exec", "box", "sh", "-c", "echo committed > /etc/motd"],
    );
    let r = docker(
        &d,
        &[
            "commit",
            "-m",
            "motd",
            "-c",
            "CMD [\"cat\", \"/etc/motd\"]",
            "box",
            "withmotd:1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("sha256:"), "{}", r.stdout);
    assert_eq!(
        docker(&d, &["run", "--rm", "withmotd:1"]).stdout,
        "committed\n"
    );
    docker(&d, &["rm", "-f", "-v", "box"]);
    assert_eq!(docker(&d, &["volume", "rm", "dvol"]).code, 0);
    let r = docker(&d, &["volume", "prune", "-f"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn attach_follows_a_running_container_to_its_exit_code() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; echo out-line; echo err-line >&2; exit 5",
    ])
    .ok();
    let r = d.berth(&["attach", "talker"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(r.stdout, "out-line\n");
    assert_eq!(r.stderr, "err-line\n");
    let r = d.berth(&["attach", "talker"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("You cannot attach to a stopped container"),
        "{}",
        r.stderr
    );

    // The docker CLI's attach, with stdin feeding the container.
    d.berth(&[
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        "busybox",
        "sh",
        "-c",
        "read line; echo got $line; exit 7",
    ])
    .ok();
    let mut child = std::process::Command::new("/usr/local/bin/docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .args(["attach", "reader"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stdin.write_all(b"hello\n").unwrap();
    }
    let out = common::wait_output(child, Duration::from_secs(20));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got hello\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(7));
}

/// Debian's docker 20.10 CLI (docker.io) negotiates an older API version.
#[test]
fn debians_docker_20_10_cli_drives_berthd() {
    let d = Daemon::start();
    d.import_busybox();
    let docker = |args: &[&str]| docker_at("/usr/bin/docker", &d, args);
    let v = docker(&[
        "version",
        "--format",
        "{{.Client.Version}} {{.Server.APIVersion}}",
    ]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(v.stdout.starts_with("20.10"), "{}", v.stdout);
    assert_eq!(
        docker(&["run", "--rm", "busybox", "echo", "old cli"]).stdout,
        "old cli\n"
    );
    assert_eq!(docker(&["run", "busybox", "sh", "-c", "exit 4"]).code, 4);
    let r = docker(&[
        "run",
        "-d",
        "--name",
        "old",
        "-v",
        "oldvol:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi; sleep 100",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        d.eventually(Duration::from_secs(5), || docker(&["logs", "old"]).stdout
            == "hi\n")
    );
    assert_eq!(docker(&["exec", "old", "sh", "-c", "exit 6"]).code, 6);
    assert_eq!(
        docker(&["ps", "--format", "{{.Names}} {{.Image}}"]).stdout,
        "old busybox\n"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", "old"]).stdout,
        "true\n"
    );
    let host = d.root.join("cp20");
    std::fs::create_dir_all(&host).unwrap();
    assert_eq!(
        docker(&["cp", "old:/etc/passwd", host.to_str().unwrap()]).code,
        0
    );
    assert!(host.join("passwd").exists());
    let r = docker(&["commit", "old", "old:snap"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(docker(&["volume", "ls", "-q"]).stdout, "oldvol\n");
    assert_eq!(docker(&["stop", "-t", "1", "old"]).code, 0);
    assert_eq!(docker(&["rm", "old"]).code, 0);
    let images = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.stdout.contains("old:snap"), "{}", images.stdout);
    let missing = docker(&["inspect", "nope"]);
    assert_eq!(missing.code, 1);
}

#[test]
fn system_prune_with_berth_and_docker() {
    let d = Daemon::start();
    d.import_busybox();
    let setup = || {
        d.berth(&["run", "--name", "stopped", "-v", "/anon", "busybox", "true"])
            .ok();
        d.berth(&["commit", "stopped"]).ok();
        d.berth(&["network", "create", "unused"]).ok();
        d.berth(&["volume", "create", "named"]).ok();
    };
    let count = |args: &[&str]| d.berth(args).ok().stdout.lines().count();
    setup();
    let r = d.berth(&["system", "prune", "-f", "--volumes"]).ok();
    assert!(r.stdout.contains("Deleted Containers:"), "{}", r.stdout);
    assert!(r.stdout.contains("Deleted Networks:"), "{}", r.stdout);
    assert_eq!(count(&["ps", "-aq"]), 0);
    assert_eq!(
        count(&["network", "ls", "-q"]),
        3,
        "bridge, host and none stay"
    );
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout, "named\n");
    assert_eq!(
        count(&["images", "-q"]),
        1,
        "busybox stays, the dangling commit goes"
    );
    d.berth(&["volume", "rm", "named"]).ok();
    setup();
    let r = docker(&d, &["system", "prune", "-f", "--volumes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(count(&["ps", "-aq"]), 0);
    assert_eq!(count(&["network", "ls", "-q"]), 3);
    assert_eq!(count(&["images", "-q"]), 1);
}

#[test]
fn docker_cli_networks_and_ports() {
    let d = Daemon::start();
    d.import_busybox();
    let subnet = format!("{}.0/24", d.subnet_prefix(2));
    let r = docker(
        &d,
        &[
            "network", "create", "--subnet", &subnet, "--label", "k=v", "dnet",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ls = docker(&d, &["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.stdout.contains("dnet bridge"), "{}", ls.stdout);
    assert!(ls.stdout.contains("bridge bridge"), "{}", ls.stdout);
    let sub = docker(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "dnet",
        ],
    );
    assert_eq!(sub.out(), subnet);
    let r = docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "dnet",
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sh",
            "-c",
            "echo docker-net > /i.html; exec httpd -f -p 80 -h /",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let port = docker(&d, &["port", "srv", "80"]);
    assert!(port.stdout.starts_with("127.0.0.1:"), "{}", port.stdout);
    let ps = docker(&d, &["ps", "--format", "{{.Ports}}"]);
    assert!(ps.stdout.contains("->80/tcp"), "{}", ps.stdout);
    let r = docker(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "dnet",
            "busybox",
            "wget",
            "-qO-",
            "http://srv/i.html",
        ],
    );
    assert_eq!(r.stdout, "docker-net\n", "{}", r.stderr);
    docker(
        &d,
        &["run", "-d", "--name", "late", "busybox", "sleep", "60"],
    );
    assert_eq!(docker(&d, &["network", "connect", "dnet", "late"]).code, 0);
    let r = docker(&d, &["exec", "late", "wget", "-qO-", "http://srv/i.html"]);
    assert_eq!(r.stdout, "docker-net\n", "{}", r.stderr);
    assert_eq!(
        docker(&d, &["network", "disconnect", "dnet", "late"]).code,
        0
    );
    let rm = docker(&d, &["network", "rm", "dnet"]);
    assert_ne!(rm.code, 0);
    docker(&d, &["rm", "-f", "srv", "late"]);
    assert_eq!(docker(&d, &["network", "rm", "dnet"]).code, 0);
    assert_eq!(docker(&d, &["network", "prune", "-f"]).code, 0);
}

/// A flag the command does not have is named, as the docker CLI names it
/// (exit 125, `unknown flag`, where help is), never taken for an image or a
/// container. No daemon is involved: both refuse before connecting.
#[test]
fn unknown_flags_are_refused_as_docker_refuses_them() {
    let d = Daemon::start();
    for args in [
        &["run", "--bogus", "busybox"][..],
        &["run", "-Z", "busybox", "true"][..],
        &["exec", "--bogus", "c", "true"][..],
        &["ps", "--bogus"][..],
        &["network", "create", "--bogus", "n"][..],
    ] {
        let ours = d.berth(args);
        let theirs = docker_at("/usr/bin/docker", &d, args);
        assert_eq!(ours.code, theirs.code, "{args:?}: {}", ours.stderr);
        let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
        assert_eq!(first(&ours.stderr), first(&theirs.stderr), "{args:?}");
        let see = |s: &str| {
            s.lines()
                .find(|l| l.starts_with("See '"))
                .unwrap_or_default()
                .replacen("docker", "berth", 1)
        };
        assert_eq!(see(&ours.stderr), see(&theirs.stderr), "{args:?}");
    }
    // What follows the image is the command's, flags included.
    d.import_busybox();
    let r = d.berth(&["run", "--rm", "busybox", "ls", "-d", "/"]).ok();
    assert_eq!(r.out(), "/");
}

/// `berth completion` scripts load in the shell they are for (bash here; zsh
/// and fish ones name the commands), and `berth man-pages` writes one page
/// per command.
#[test]
fn completions_and_man_pages_come_from_the_cli() {
    let berth = common::bin_dir().join("berth");
    let script = |shell: &str| {
        let out = Command::new(&berth)
            .args(["completion", shell])
            .output()
            .expect("berth completion");
        assert!(out.status.success(), "{shell}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bash = script("bash");
    let loaded = Command::new("bash")
        .args(["-c", "source /dev/stdin; complete -p berth"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .map(|mut i| i.write_all(bash.as_bytes()))
                .transpose()?;
            child.wait_with_output()
        })
        .expect("bash");
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("berth"),
        "bash did not register the completion"
    );
    for shell in ["zsh", "fish"] {
        let s = script(shell);
        assert!(s.contains("compose") && s.contains("run"), "{shell}");
    }
    let dir = std::env::temp_dir().join(format!("berth-man-{}", std::process::id()));
    let r = Command::new(&berth)
        .arg("man-pages")
        .arg(&dir)
        .output()
        .expect("berth man-pages");
    assert!(r.status.success());
    for page in [
        "berth.1",
        "berth-run.1",
        "berth-compose-up.1",
        "berth-network-create.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(
            text.starts_with(".ie"),
            "{page}: {}",
            &text[..text.len().min(80)]
        );
        assert!(text.contains(".TH"), "{page}");
    }
    assert!(
        !dir.join("berth-man-pages.1").exists(),
        "hidden commands get no page"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each flag's description in `--help` as a CLI prints it: docker's layout
/// (`  -a, --all   Show all ...` wrapped under the text) and clap's (the text
/// on the lines below the flag) alike.
fn help_texts(
    program: &std::path::Path,
    command: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let out = Command::new(program)
        .args(command)
        .arg("--help")
        .output()
        .expect("--help");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut texts = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let flag_line = (2..=6).contains(&indent)
            && (trimmed.starts_with("--")
                || (trimmed.starts_with('-') && trimmed.get(2..4) == Some(", ")));
        if flag_line {
            let from = trimmed.find("--").unwrap_or(0);
            let rest = &trimmed[from + 2..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-')
                .collect();
            let description = rest
                .find("  ")
                .map(|i| rest[i..].trim().to_string())
                .unwrap_or_default();
            texts.insert(name.clone(), description);
            current = Some(name);
        } else if let (Some(name), true) = (&current, indent >= 4 && !trimmed.is_empty()) {
            let entry = texts.entry(name.clone()).or_default();
            *entry = format!("{entry} {trimmed}").trim().to_string();
        } else {
            current = None;
        }
    }
    texts
}

/// docker's own `(default X)` suffix, and clap's `[default: X]`-style ones:
/// each CLI prints defaults its way.
fn without_defaults(text: &str) -> String {
    let mut t = text.to_string();
    for open in ["[default: ", "[possible values: ", "[aliases: "] {
        while let Some(i) = t.find(open) {
            let end = t[i..].find(']').map_or(t.len(), |e| i + e + 1);
            t.replace_range(i..end, "");
        }
    }
    let t = t.trim().to_string();
    if let Some(i) = t.rfind(" (default ") {
        let value = &t[i + 10..t.len().saturating_sub(1)];
        let is_value = value.starts_with('"')
            || value == "[]"
            || value == "map[]"
            || value == "true"
            || value == "false"
            || value
                .trim_start_matches('-')
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit());
        if t.ends_with(')') && is_value {
            return t[..i].to_string();
        }
    }
    t
}

/// Every flag berth shares with the docker CLI (Debian's, which .ci/run
/// installs) is described in docker's words, in every shared subcommand.
#[test]
fn help_describes_dockers_flags_in_dockers_words() {
    let docker = std::path::Path::new("/usr/bin/docker");
    assert!(
        docker.exists(),
        "Debian's docker.io is installed by .ci/run"
    );
    let berth = common::bin_dir().join("berth");
    let commands: &[&[&str]] = &[
        &["attach"],
        &["build"],
        &["commit"],
        &["cp"],
        &["create"],
        &["diff"],
        &["events"],
        &["exec"],
        &["export"],
        &["history"],
        &["images"],
        &["import"],
        &["info"],
        &["inspect"],
        &["kill"],
        &["load"],
        &["login"],
        &["logout"],
        &["logs"],
        &["pause"],
        &["port"],
        &["ps"],
        &["pull"],
        &["push"],
        &["rename"],
        &["restart"],
        &["rm"],
        &["rmi"],
        &["run"],
        &["save"],
        &["search"],
        &["start"],
        &["stats"],
        &["stop"],
        &["tag"],
        &["top"],
        &["unpause"],
        &["update"],
        &["version"],
        &["wait"],
        &["network", "create"],
        &["network", "ls"],
        &["network", "rm"],
        &["network", "inspect"],
        &["network", "connect"],
        &["network", "disconnect"],
        &["network", "prune"],
        &["volume", "create"],
        &["volume", "ls"],
        &["volume", "rm"],
        &["volume", "inspect"],
        &["volume", "prune"],
        &["system", "df"],
        &["system", "prune"],
        &["system", "info"],
        &["image", "prune"],
        &["image", "ls"],
        &["image", "inspect"],
        &["container", "prune"],
        &["container", "ls"],
        &["context", "create"],
        &["context", "ls"],
        &["context", "use"],
        &["context", "rm"],
        &["context", "inspect"],
    ];
    let mut compared = 0;
    let mut differences = Vec::new();
    for command in commands {
        let theirs = help_texts(docker, command);
        let ours = help_texts(&berth, command);
        assert!(!ours.is_empty(), "berth {command:?} --help lists no flags");
        for (flag, text) in &theirs {
            let Some(mine) = ours.get(flag).filter(|_| flag != "help") else {
                continue;
            };
            compared += 1;
            if without_defaults(mine) != without_defaults(text) {
                differences.push(format!(
                    "{} --{flag}\n  docker: {text}\n  berth:  {mine}",
                    command.join(" ")
                ));
            }
        }
    }
    assert!(
        compared > 200,
        "only {compared} flags compared: is the help parsed?"
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
