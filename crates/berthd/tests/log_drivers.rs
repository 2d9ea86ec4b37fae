//! Log drivers as operators configure them: json-file and local rotation with
//! compression (bytes on disk, `logs` across rotated and gzipped files), the
//! `none` driver, daemon-wide defaults from daemon.json; docker's local format
//! checked against a file dockerd wrote, and the refusals compared with dockerd.

mod common;

use std::path::{Path, PathBuf};

use berth_monitor::logfile::{self, LogFormat, RecordReader};
use common::Daemon;

/// Prints `line 00000` .. `line 01999` (11 bytes each), then exits.
const WRITER: &str = "i=0; while [ $i -lt 2000 ]; do printf 'line %05d\\n' $i; i=$((i+1)); done";

fn container_dir(d: &Daemon, name: &str) -> PathBuf {
    d.data_root.join("containers").join(d.container_id(name))
}

fn wait_exit(d: &Daemon, name: &str) {
    assert_eq!(d.berth(&["wait", name]).ok().out(), "0");
}

/// The numbers of `line NNNNN` lines, in order.
fn numbers(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok()))
        .collect()
}

/// The newest lines, in order, none missing between them, ending at 1999.
fn assert_contiguous_tail(text: &str, why: &str) -> usize {
    let n = numbers(text);
    assert_eq!(n.last(), Some(&1999), "{why}: {text:.200}");
    assert!(
        n.windows(2).all(|w| w[0] + 1 == w[1]),
        "{why}: a gap or disorder"
    );
    n.len()
}

fn files_in(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("container dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("container.log")
                .then(|| (name, e.metadata().map(|m| m.len()).unwrap_or(0)))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn rotated_and_compressed_logs_are_kept_bounded_and_read_whole() {
    let d = Daemon::start();
    d.import_busybox();
    for (driver, name) in [("json-file", "jf"), ("local", "lc")] {
        // 22 KB of output against 3 files of at most 1 KiB.
        d.berth(&[
            "run",
            "-d",
            "--name",
            name,
            "--log-driver",
            driver,
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "--log-opt",
            "compress=true",
            "busybox",
            "sh",
            "-c",
            WRITER,
        ])
        .ok();
        wait_exit(&d, name);
        let dir = container_dir(&d, name);
        let files = files_in(&dir);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["container.log", "container.log.1.gz", "container.log.2.gz"],
            "{driver}"
        );
        for (file, size) in &files {
            assert!(
                *size <= 1024,
                "{driver}: {file} is {size} bytes, over max-size"
            );
        }
        // gzip(1) reads what the monitor compressed.
        let gz = dir.join("container.log.2.gz");
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .output()
            .expect("gzip");
        assert!(out.status.success());
        assert!(
            out.stdout.len() > 900 && out.stdout.len() <= 1024,
            "{driver}"
        );
        if driver == "json-file" {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.lines().all(|l| l.starts_with(r#"{"log":"line "#)),
                "{text:.200}"
            );
        }
        // logs reads across the gzipped files and the live one.
        let all = d.berth(&["logs", name]).ok();
        assert_contiguous_tail(&all.stdout, driver);
        let mut oldest = RecordReader::default()
            .read_available(
                if driver == "local" {
                    LogFormat::Local
                } else {
                    LogFormat::JsonFile
                },
                &mut &out.stdout[..],
            )
            .expect("decode");
        let first_kept = numbers(&String::from_utf8_lossy(&oldest.remove(0).line));
        assert_eq!(
            numbers(&all.stdout).first(),
            first_kept.first(),
            "{driver}: logs starts at the oldest kept line, in the oldest gzipped file"
        );
        let tail = d.berth(&["logs", "--tail", "5", name]).ok();
        assert_eq!(
            numbers(&tail.stdout),
            [1995, 1996, 1997, 1998, 1999],
            "{driver}"
        );
        let stamped = d.berth(&["logs", "-t", "--tail", "1", name]).ok();
        assert!(stamped.out().ends_with("Z line 01999"), "{}", stamped.out());
        d.berth(&["rm", name]).ok();
    }
    // The local format without compression is smaller than json-file's for the
    // same output (no JSON escaping, no time string).
    for (driver, name) in [("json-file", "jf2"), ("local", "lc2")] {
        d.berth(&[
            "run",
            "-d",
            "--name",
            name,
            "--log-driver",
            driver,
            "--log-opt",
            "compress=false",
            "busybox",
            "sh",
            "-c",
            WRITER,
        ])
        .ok();
        wait_exit(&d, name);
    }
    let size = |name: &str| {
        std::fs::metadata(container_dir(&d, name).join("container.log"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    assert!(
        size("lc2") < size("jf2") * 2 / 3,
        "local {} vs json-file {}",
        size("lc2"),
        size("jf2")
    );
    assert_eq!(numbers(&d.berth(&["logs", "lc2"]).ok().stdout).len(), 2000);
}

#[test]
fn logs_follow_a_rotating_local_log() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run", "-d", "--name", "slow", "--log-driver", "local", "--log-opt", "max-size=2k",
        "--log-opt", "max-file=4", "busybox", "sh", "-c",
        "i=0; while [ $i -lt 2000 ]; do printf 'line %05d\\n' $i; i=$((i+1)); [ $((i % 100)) -eq 0 ] && sleep 0.05; done",
    ])
    .ok();
    let followed = d.berth(&["logs", "-f", "slow"]).ok();
    // Following from the start: everything still on disk when it began, then
    // every line written while it followed, across rotations.
    let n = numbers(&followed.stdout);
    assert_eq!(n.last(), Some(&1999));
    assert!(
        n.windows(2).all(|w| w[0] + 1 == w[1]),
        "a gap while following"
    );
    d.berth(&["rm", "slow"]).ok();
}

#[test]
fn the_none_driver_keeps_nothing_and_says_so() {
    let d = Daemon::start();
    d.import_busybox();
    let run = d.berth(&[
        "run",
        "--log-driver",
        "none",
        "--name",
        "quiet",
        "busybox",
        "echo",
        "hi",
    ]);
    assert_eq!(
        (run.code, run.out()),
        (0, "hi"),
        "attached output still flows"
    );
    let files = files_in(&container_dir(&d, "quiet"));
    assert!(files.is_empty(), "{files:?}");
    let logs = d.berth(&["logs", "quiet"]);
    assert_eq!(logs.code, 1);
    assert_eq!(
        logs.stderr.trim(),
        "Error response from daemon: configured logging driver does not support reading"
    );
    let (status, _, _) = d.http("GET", "/containers/quiet/logs?stdout=1", None);
    assert_eq!(
        status, 501,
        "docker's status for a driver that cannot be read"
    );
    d.berth(&["rm", "quiet"]).ok();
}

#[test]
fn daemon_json_sets_the_default_driver_and_options() {
    let dir = std::env::temp_dir().join(format!("berth-logd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("daemon.json");
    std::fs::write(
        &config,
        r#"{"log-driver": "local", "log-opts": {"max-size": "1k", "max-file": "2"}}"#,
    )
    .expect("daemon.json");
    let d = Daemon::start_with(&["--config-file", config.to_str().unwrap_or_default()]);
    d.import_busybox();
    assert_eq!(
        d.berth(&["info", "--format", "{{.LoggingDriver}}"])
            .ok()
            .out(),
        "local"
    );
    d.berth(&["run", "--name", "dflt", "busybox", "sh", "-c", WRITER])
        .ok();
    assert_eq!(
        d.inspect(
            "dflt",
            "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}"
        ),
        r#"local {"max-file":"2","max-size":"1k"}"#
    );
    let names: Vec<String> = files_in(&container_dir(&d, "dflt"))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        names,
        ["container.log", "container.log.1.gz"],
        "local compresses by default"
    );
    assert_contiguous_tail(&d.berth(&["logs", "dflt"]).ok().stdout, "daemon defaults");
    // Another driver on the command line takes none of the daemon's options.
    d.berth(&[
        "run",
        "--name",
        "own",
        "--log-driver",
        "json-file",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(
        d.inspect("own", "{{json .HostConfig.LogConfig.Config}}"),
        "{}"
    );
    d.berth(&["rm", "dflt", "own"]).ok();
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// berth decodes a log that dockerd's own `local` driver wrote, and refuses
/// the log configurations dockerd refuses, with dockerd's words.
#[test]
fn local_format_and_refusals_match_dockerd() {
    let d = Daemon::start();
    d.import_busybox();
    let docker = common::Dockerd::start(&d.root.join("dk"), &format!("dl{}", &d.name[2..]));
    let tar = common::busybox_tar();
    let (code, _, err) =
        docker.docker(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
    assert_eq!(code, 0, "{err}");
    let (code, id, err) = docker.docker(&[
        "run",
        "-d",
        "--log-driver",
        "local",
        "--log-opt",
        "compress=false",
        "busybox",
        "sh",
        "-c",
        "echo out-line; echo err-line >&2; printf 'no newline'",
    ]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    docker.docker(&["wait", &id]);
    let file = d
        .root
        .join("dk/root/containers")
        .join(&id)
        .join("local-logs/container.log");
    let mut reader = RecordReader::default();
    let records = reader
        .read_available(
            LogFormat::Local,
            &mut logfile::open(&file).expect("dockerd's local log"),
        )
        .expect("read");
    let seen: Vec<(u8, String)> = records
        .iter()
        .map(|r| (r.stream, String::from_utf8_lossy(&r.line).into_owned()))
        .collect();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            (1, "no newline".to_string()),
            (1, "out-line\n".to_string()),
            (2, "err-line\n".to_string())
        ],
        "dockerd's records as berth reads them"
    );
    // The refusals.
    let create = |socket: &Path, log_config: &str| {
        let body = format!(
            r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{{"LogConfig":{log_config}}}}}"#
        );
        common::http_on(socket, "POST", "/v1.41/containers/create", Some(&body))
    };
    for log_config in [
        r#"{"Type":"nosuchdriver","Config":{}}"#,
        r#"{"Type":"json-file","Config":{"nosuchopt":"1"}}"#,
        r#"{"Type":"local","Config":{"nosuchopt":"1"}}"#,
    ] {
        let (docker_status, _, docker_reply) = create(&docker.socket, log_config);
        let (status, _, reply) = create(&d.socket, log_config);
        let message = |r: &str| {
            serde_json::from_str::<serde_json::Value>(r)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or_default()
        };
        assert!(docker_status >= 400, "dockerd accepted {log_config}");
        assert_eq!(
            status, docker_status,
            "{log_config}: {reply} vs dockerd {docker_reply}"
        );
        assert_eq!(message(&reply), message(&docker_reply), "{log_config}");
    }
    // And reading a `none` log: the same status and words.
    let (code, id, _) = docker.docker(&["create", "--log-driver", "none", "busybox", "true"]);
    assert_eq!(code, 0);
    let path = format!("/v1.41/containers/{}/logs?stdout=1", id.trim());
    let (docker_status, _, docker_reply) = common::http_on(&docker.socket, "GET", &path, None);
    d.berth(&[
        "create",
        "--name",
        "nolog",
        "--log-driver",
        "none",
        "busybox",
        "true",
    ])
    .ok();
    let (status, _, reply) = common::http_on(
        &d.socket,
        "GET",
        "/v1.41/containers/nolog/logs?stdout=1",
        None,
    );
    assert_eq!((status, reply.trim()), (docker_status, docker_reply.trim()));
}
