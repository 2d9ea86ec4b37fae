//! daemon.json: berthd reads dockerd's keys, refuses what dockerd refuses with
//! dockerd's words (compared with Debian's dockerd on the same files), gives
//! containers the daemon's log options, and reloads on SIGHUP.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Run};

fn hup(d: &Daemon) {
    // SAFETY: kill(2) on the pid of the berthd this test started.
    unsafe {
        libc::kill(d.pid() as libc::pid_t, libc::SIGHUP);
    }
}

/// A daemon binary run against `config` with `flags`, expected to refuse at
/// once; its exit code and stderr.
fn refused(binary: &str, dir: &Path, config: &str, flags: &[&str]) -> Run {
    std::fs::create_dir_all(dir).expect("dir");
    let file = dir.join("daemon.json");
    std::fs::write(&file, config).expect("daemon.json");
    let child = Command::new(binary)
        .arg("--config-file")
        .arg(&file)
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("sock").display()))
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon binary");
    Run::from_output(common::wait_output(child, Duration::from_secs(60)))
}

#[test]
fn conflicts_and_unknown_keys_are_refused_as_dockerd_refuses_them() {
    let root = std::env::temp_dir().join(format!("berth-cfg-{}", std::process::id()));
    let cases: [(&str, &[&str], &str); 3] = [
        (
            r#"{"bip": "10.251.2.1/24"}"#,
            &["--bip", "10.251.1.1/24"],
            "the following directives are specified both as a flag and in the configuration file: bip: (from flag: 10.251.1.1/24, from file: 10.251.2.1/24)",
        ),
        (
            r#"{"nonsense": true}"#,
            &[],
            "the following directives don't match any configuration option: nonsense",
        ),
        (r#"{"bip": "#, &[], "daemon.json"),
    ];
    for (i, (config, flags, expected)) in cases.iter().enumerate() {
        let ours = refused(
            env!("CARGO_BIN_EXE_berthd"),
            &root.join(format!("b{i}")),
            config,
            flags,
        );
        let theirs = refused("dockerd", &root.join(format!("d{i}")), config, flags);
        assert_ne!(ours.code, 0, "{config}");
        assert_ne!(theirs.code, 0, "dockerd accepted {config}");
        assert!(ours.stderr.contains(expected), "berthd: {}", ours.stderr);
        assert!(
            theirs.stderr.contains(expected),
            "dockerd: {}",
            theirs.stderr
        );
        assert!(
            !root.join(format!("b{i}")).join("data").exists(),
            "berthd made state before refusing"
        );
    }
    // A file named on the command line must exist; the default one may not.
    let missing = Command::new(env!("CARGO_BIN_EXE_berthd"))
        .args(["--config-file", "/nonexistent/daemon.json"])
        .output()
        .expect("berthd");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/daemon.json"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn file_settings_apply_and_sighup_reloads_them() {
    let dir = std::env::temp_dir().join(format!("berth-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("daemon.json");
    std::fs::write(
        &file,
        r#"{
  "log-level": "warn",
  "live-restore": true,
  "log-driver": "json-file",
  "log-opts": {"max-size": "1k", "max-file": "2"},
  "runtimes": {"alt": {"path": "/usr/bin/runc"}},
  "insecure-registries": ["registry.example:5000"]
}"#,
    )
    .expect("daemon.json");
    let d = Daemon::start_with(&["--config-file", &file.display().to_string()]);
    d.import_busybox();

    // Log defaults reach the container, and rotation holds to them.
    d.berth(&[
        "run",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ])
    .ok();
    let log_config: serde_json::Value =
        serde_json::from_str(&d.inspect("chatty", "{{json .HostConfig.LogConfig}}"))
            .expect("LogConfig");
    assert_eq!(
        log_config,
        serde_json::json!({"Type": "json-file", "Config": {"max-file": "2", "max-size": "1k"}})
    );
    let id = d.container_id("chatty");
    let log_dir = d.data_root.join("containers").join(&id);
    let logs: Vec<u64> = std::fs::read_dir(&log_dir)
        .expect("container dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .collect();
    assert_eq!(logs.len(), 2, "max-file 2: {logs:?}");
    assert!(logs.iter().all(|l| *l <= 2048), "max-size 1k: {logs:?}");
    let shown = d.berth(&["logs", "chatty"]).ok().stdout;
    assert!(
        shown.ends_with("line-399-xxxxxxxxxxxxxxxxxxxx\n"),
        "{shown}"
    );
    // A container's own options win, key by key.
    d.berth(&[
        "run",
        "--log-opt",
        "max-file=5",
        "--name",
        "own",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(
        d.inspect("own", "{{json .HostConfig.LogConfig.Config}}"),
        r#"{"max-file":"5","max-size":"1k"}"#
    );
    d.berth(&["rm", "own"]).ok();
    // The runtime the file registers.
    d.berth(&["run", "--rm", "--runtime", "alt", "busybox", "true"])
        .ok();
    // warn: no info lines yet.
    assert!(!d.log().contains("berthd listening"), "{}", d.log());

    // SIGHUP with a broken file: reported, nothing changes, berthd serves on.
    std::fs::write(&file, "{").expect("break daemon.json");
    hup(&d);
    assert!(
        d.eventually(Duration::from_secs(5), || d
            .log()
            .contains("configuration not reloaded")),
        "{}",
        d.log()
    );
    d.berth(&["version"]).ok();
    // SIGHUP with info: the reload is logged, at the new level.
    std::fs::write(&file, r#"{"log-level": "info"}"#).expect("daemon.json");
    hup(&d);
    assert!(
        d.eventually(Duration::from_secs(5), || d
            .log()
            .contains("Reloaded configuration")),
        "{}",
        d.log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--default-ulimit` (and daemon.json's `default-ulimits`) give every
/// container the limits it does not set itself: the same answers as dockerd
/// with the same flags.
#[test]
fn default_ulimits_apply_as_in_dockerd() {
    let defaults = [
        "--default-ulimit",
        "nofile=1000:2000",
        "--default-ulimit",
        "core=0:0",
    ];
    let d = Daemon::start_with(&defaults);
    d.import_busybox();
    let docker = common::Dockerd::start_with(
        &d.root.join("dk"),
        &format!("du{}", &d.name[2..]),
        &defaults,
    );
    let tar = common::busybox_tar();
    let (code, _, err) =
        docker.docker(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
    assert_eq!(code, 0, "{err}");
    let probe = "echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -c)";
    for own in [&[][..], &["--ulimit", "nofile=500:600"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(own);
        args.extend_from_slice(&["busybox", "sh", "-c", probe]);
        let (code, docker_out, err) = docker.docker(&args);
        assert_eq!(code, 0, "{err}");
        let berth = d.berth(&args).ok();
        assert_eq!(berth.out(), docker_out.trim(), "{own:?}");
    }
    assert_eq!(
        d.berth(&["run", "--rm", "busybox", "sh", "-c", probe])
            .ok()
            .out(),
        "1000 2000 0"
    );
    // A default the kernel does not know stops berthd at start, with the name.
    let dir = d.root.join("bad-ulimit");
    let r = refused(
        env!("CARGO_BIN_EXE_berthd"),
        &dir,
        r#"{"default-ulimits": {"nosuch": {"Name": "nosuch", "Soft": 1, "Hard": 1}}}"#,
        &[],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("invalid ulimit type: nosuch"),
        "{}",
        r.stderr
    );
}
