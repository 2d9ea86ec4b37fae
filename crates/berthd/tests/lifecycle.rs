//! Container life cycle through the berth CLI against a real berthd.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Daemon;

#[test]
fn run_prints_output_and_propagates_exit_codes() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d.berth(&["run", "--rm", "busybox", "echo", "hello"]).ok();
    assert_eq!(r.stdout, "hello\n");
    let r = d.berth(&[
        "run",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    // --rm removed the first container; the second stays, exited.
    let ps = d.berth(&["ps", "-aq"]).ok();
    assert_eq!(ps.stdout.lines().count(), 1, "{}", ps.stdout);
    let r = d.berth(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
}

#[test]
fn killed_container_exits_128_plus_signal() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"])
        .ok();
    d.berth(&["kill", "victim"]).ok();
    assert_eq!(d.berth(&["wait", "victim"]).ok().out(), "137");
    d.berth(&["start", "victim"]).ok();
    d.berth(&["kill", "-s", "TERM", "victim"]).ok();
    // sleep as PID 1 has no TERM handler, so the kernel ignores SIGTERM for it.
    assert_eq!(d.inspect("victim", "{{.State.Status}}"), "running");
    d.berth(&["kill", "-s", "USR1", "victim"]).ok();
    assert_eq!(d.inspect("victim", "{{.State.Status}}"), "running");
    d.berth(&["stop", "-t", "0", "victim"]).ok();
    assert_eq!(d.inspect("victim", "{{.State.ExitCode}}"), "137");
}

#[test]
fn detached_lifecycle_stop_restart_logs() {
    let d = Daemon::start();
    d.import_busybox();
    let script = "trap 'echo got term; exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";
    let id = d
        .berth(&[
            "run",
            "-d",
            "--name",
            "ticker",
            "-l",
            "team=core",
            "busybox",
            "sh",
            "-c",
            script,
        ])
        .ok();
    assert_eq!(id.out().len(), 64);
    assert!(d.eventually(Duration::from_secs(5), || d
        .berth(&["logs", "ticker"])
        .stdout
        .contains("tick 2")));
    assert_eq!(
        d.berth(&["logs", "--tail", "1", "ticker"])
            .ok()
            .stdout
            .lines()
            .count(),
        1
    );
    let ts = d.berth(&["logs", "-t", "--tail", "1", "ticker"]).ok();
    assert!(
        ts.stdout.starts_with("20") && ts.stdout.contains("Z tick"),
        "{}",
        ts.stdout
    );
    assert_eq!(
        d.berth(&["ps", "-q", "--filter", "label=team=core"])
            .ok()
            .stdout
            .lines()
            .count(),
        1
    );
    assert_eq!(
        d.berth(&["ps", "-q", "--filter", "name=ticker"])
            .ok()
            .stdout
            .lines()
            .count(),
        1
    );
    assert_eq!(
        d.berth(&["ps", "-q", "--filter", "status=exited"])
            .ok()
            .stdout
            .lines()
            .count(),
        0
    );
    let formatted = d
        .berth(&["ps", "--format", "{{.Names}}|{{.State}}|{{.Labels}}"])
        .ok();
    assert_eq!(formatted.out(), "ticker|running|team=core");
    let table = d
        .berth(&["ps", "--format", "table {{.Names}}\t{{.Image}}"])
        .ok();
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, vec!["NAMES", "IMAGE"]);

    d.berth(&["stop", "-t", "5", "ticker"]).ok();
    assert_eq!(
        d.inspect("ticker", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    assert!(d
        .berth(&["logs", "ticker"])
        .ok()
        .stdout
        .contains("got term"));
    assert_eq!(d.berth(&["ps", "-q"]).ok().out(), "");
    assert_eq!(
        d.berth(&["ps", "-aq", "--filter", "status=exited"])
            .ok()
            .stdout
            .lines()
            .count(),
        1
    );

    d.berth(&["restart", "-t", "1", "ticker"]).ok();
    assert_eq!(d.inspect("ticker", "{{.State.Running}}"), "true");
    // A name in use is a 409 conflict.
    let dup = d.berth(&["create", "--name", "ticker", "busybox", "true"]);
    assert_eq!(
        dup.code, 125,
        "docker's exit code for a daemon-side create error"
    );
    assert!(dup.stderr.contains("is already in use"), "{}", dup.stderr);
    // A running container is not removed without -f.
    let rm = d.berth(&["rm", "ticker"]);
    assert_eq!(rm.code, 1);
    assert!(
        rm.stderr.contains("stop the container before removing"),
        "{}",
        rm.stderr
    );
    d.berth(&["rm", "-f", "ticker"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}

#[test]
fn logs_follow_streams_until_exit() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "follow",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done",
    ])
    .ok();
    let r = d.berth(&["logs", "-f", "follow"]).ok();
    assert_eq!(r.stdout, "line1\nline2\nline3\nline4\nline5\n");
}

#[test]
fn create_then_start_attached_and_stdin() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo created-then-started; exit 4",
    ])
    .ok();
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "created");
    let r = d.berth(&["start", "-a", "c1"]);
    assert_eq!(r.code, 4);
    assert_eq!(r.stdout, "created-then-started\n");
    let r = d
        .berth_stdin(
            &["run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z"],
            b"streamed stdin\n",
        )
        .ok();
    assert_eq!(r.stdout, "STREAMED STDIN\n");
}

#[test]
fn restart_policies_restart_with_backoff() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ])
    .ok();
    assert!(d.eventually(Duration::from_secs(10), || {
        d.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    }));
    assert_eq!(
        d.berth(&["logs", "flaky"])
            .ok()
            .stdout
            .matches("run")
            .count(),
        3
    );
    d.berth(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 0",
    ])
    .ok();
    assert!(d.eventually(Duration::from_secs(10), || {
        d.inspect("always", "{{.RestartCount}}")
            .parse::<i64>()
            .unwrap_or(0)
            >= 2
    }));
    d.berth(&["stop", "always"]).ok();
    let count = d.inspect("always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.inspect("always", "{{.RestartCount}}"),
        count,
        "a stopped container must not restart"
    );
    assert_eq!(d.inspect("always", "{{.State.Status}}"), "exited");
}

#[test]
fn containers_survive_berthd_kill_9_and_are_adopted() {
    let mut d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' TERM; while true; do sleep 0.1; done",
    ])
    .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; echo done-while-down; exit 5",
    ])
    .ok();
    let survivor_pid = d.inspect("survivor", "{{.State.Pid}}");
    d.kill9();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        std::path::Path::new(&format!("/proc/{survivor_pid}")).exists(),
        "container died with berthd"
    );
    d.respawn();
    assert_eq!(
        d.inspect("short", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 5"
    );
    assert_eq!(d.berth(&["logs", "short"]).ok().out(), "done-while-down");
    assert_eq!(d.inspect("survivor", "{{.State.Status}}"), "running");
    assert_eq!(d.berth(&["ps", "-q"]).ok().stdout.lines().count(), 1);
    // The adopted container is fully usable: exec, attach-less logs -f, stop, wait.
    let r = d
        .berth(&[
            "exec",
            "survivor",
            "sh",
            "-c",
            "echo adopted-exec; echo to-log > /proc/1/fd/1",
        ])
        .ok();
    assert_eq!(r.out(), "adopted-exec");
    let follower = d
        .berth_cmd(&["logs", "-f", "survivor"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("logs -f");
    let waiter = d
        .berth_cmd(&["wait", "survivor"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wait");
    d.berth(&["stop", "survivor"]).ok();
    let followed = common::wait_output(follower, Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "to-log\n");
    let waited = common::wait_output(waiter, Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&waited.stdout).trim(), "9");
    assert_eq!(d.inspect("survivor", "{{.State.ExitCode}}"), "9");
}

/// A process that exits before berthd asks the monitor for its exit used to be
/// answered before the monitor had unmounted and written its record, so the
/// auto-remove raced the monitor and `run --rm` waited forever.
#[test]
fn run_rm_of_instant_exits_never_hangs_or_leaks() {
    let d = Daemon::start();
    d.import_busybox();
    for _ in 0..40 {
        d.berth(&["run", "--rm", "busybox", "true"]).ok();
    }
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    let left: Vec<_> = std::fs::read_dir(d.data_root.join("containers"))
        .expect("containers dir")
        .collect();
    assert!(
        left.is_empty(),
        "container directories left behind: {left:?}"
    );
}

#[test]
fn json_file_log_rotates_by_size() {
    let d = Daemon::start();
    d.import_busybox();
    let script = "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done";
    d.berth(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=4k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        script,
    ])
    .ok();
    let id = d.container_id("chatty");
    let dir = d.data_root.join("containers").join(&id);
    let mut logs: Vec<String> = std::fs::read_dir(&dir)
        .expect("container dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("container.log"))
        .collect();
    logs.sort();
    assert_eq!(
        logs,
        vec!["container.log", "container.log.1", "container.log.2"]
    );
    for l in &logs {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.join(l)).expect("log");
        // Not world-readable: container output often carries secrets (docker: 0640).
        assert_eq!(meta.permissions().mode() & 0o777, 0o640, "{l}");
        let size = meta.len();
        assert!(size <= 4096, "{l} is {size} bytes");
        for line in std::fs::read_to_string(dir.join(l)).expect("read").lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json-file line");
            assert!(v["log"].is_string() && v["stream"] == "stdout" && v["time"].is_string());
        }
    }
    // `logs` reads across the rotated files in order and ends with the last line.
    let out = d.berth(&["logs", "chatty"]).ok().stdout;
    assert!(out.ends_with("line-399-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"));
    let numbers: Vec<u32> = out
        .lines()
        .filter_map(|l| l.split('-').nth(1)?.parse().ok())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines out of order"
    );
}

/// The daemon's log tells one container's story under its id: each lifecycle
/// event, the API request it came from, and its exit as the watcher saw it.
#[test]
fn one_containers_story_is_in_the_log_under_its_id() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run", "-d", "--name", "storied", "busybox", "sh", "-c", "exit 3",
    ])
    .ok();
    let id = d.container_id("storied");
    assert_eq!(d.berth(&["wait", "storied"]).ok().out(), "3");
    d.berth(&["rm", "storied"]).ok();
    let log = d.log();
    let story: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
    let line = |action: &str| {
        story
            .iter()
            .find(|l| {
                l.contains(&format!("action=\"{action}\""))
                    || l.contains(&format!("action={action}"))
            })
            .unwrap_or_else(|| panic!("no {action} line for {id} in:\n{}", story.join("\n")))
            .to_string()
    };
    let created = line("create");
    assert!(
        created.contains("request{") && created.contains("method=POST"),
        "{created}"
    );
    assert!(created.contains("/containers/create"), "{created}");
    assert!(
        line("start").contains(&format!("/containers/{id}/start"))
            || line("start").contains("/start")
    );
    let died = line("die");
    assert!(died.contains("exit_code=3"), "{died}");
    assert!(died.contains(&format!("watch{{container={id}}}")), "{died}");
    line("destroy");
}

/// One request line to a container's monitor, its one-line answer parsed.
fn monitor_request(d: &Daemon, id: &str, request: &str) -> serde_json::Value {
    use std::io::{BufRead, Write};
    let socket = d.exec_root.join("s").join(format!("{}.sock", &id[..24]));
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("monitor socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    writeln!(stream, "{request}").expect("send");
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .expect("answer");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn the_monitor_owns_signals_the_freezer_and_limits() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["run", "-d", "--name", "owned", "busybox", "sleep", "1000"])
        .ok();
    let id = d.container_id("owned");
    let answer = monitor_request(&d, &id, r#"{"kind":"kill","signal":0}"#);
    assert_eq!(answer["exited"], false, "{answer}");
    assert!(answer["error"].is_null(), "{answer}");
    let answer = monitor_request(&d, &id, r#"{"kind":"kill","signal":999}"#);
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid signal")),
        "{answer}"
    );
    // berth pause and unpause are the monitor freezing the container's cgroup.
    d.berth(&["pause", "owned"]).ok();
    let state = d.cgroup_file(&id, "freezer", "freezer.state");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap_or_default().trim(),
        "FROZEN"
    );
    let answer = monitor_request(&d, &id, r#"{"kind":"freeze","frozen":false}"#);
    assert!(answer["error"].is_null(), "{answer}");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap_or_default().trim(),
        "THAWED"
    );
    d.berth(&["unpause", "owned"]).ok();
    // berth update is the monitor writing the cgroup's limits.
    d.berth(&["update", "-m", "48m", "owned"]).ok();
    let limit = d.cgroup_file(&id, "memory", "memory.limit_in_bytes");
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap_or_default().trim(),
        (48 << 20).to_string()
    );
    let answer = monitor_request(
        &d,
        &id,
        r#"{"kind":"update","limits":{"memory":67108864,"cpu":null,"cpu_shares":null,"pids":null}}"#,
    );
    assert!(answer["error"].is_null(), "{answer}");
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap_or_default().trim(),
        "67108864"
    );
    // A kill of a paused container thaws it, so the signal takes effect.
    d.berth(&["pause", "owned"]).ok();
    d.berth(&["kill", "owned"]).ok();
    assert_eq!(d.berth(&["wait", "owned"]).ok().out(), "137");
    d.berth(&["rm", "owned"]).ok();
}

/// Forks `sleep` so that it gets pid `pid` (the kernel hands out
/// `ns_last_pid + 1` next); None if another process keeps taking it.
fn decoy_with_pid(pid: i32) -> Option<std::process::Child> {
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .ok()?;
        if child.id() as i32 == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

#[test]
fn a_kill_never_reaches_a_host_process_that_took_the_containers_pid() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["run", "-d", "--name", "gone", "busybox", "sleep", "1000"])
        .ok();
    let pid: i32 = d.inspect("gone", "{{.State.Pid}}").parse().expect("pid");
    // berthd stops looking; the container dies on its own and its monitor reaps
    // it, so its pid is free while berthd's record still says "running, pid P".
    let berthd = d.pid() as i32;
    // SAFETY: kill(2) of processes this test started.
    unsafe { libc::kill(berthd, libc::SIGSTOP) };
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let freed = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    let decoy = if freed { decoy_with_pid(pid) } else { None };
    // The kill request is queued before berthd runs again.
    let answer = kill_queued_while_stopped(&d, berthd, "gone");
    let alive = survived(decoy);
    assert!(
        alive,
        "berthd's kill hit the host process holding the old pid"
    );
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    assert!(answer.contains("is not running"), "{answer}");
    assert!(d.eventually(Duration::from_secs(10), || d
        .inspect("gone", "{{.State.Status}} {{.State.ExitCode}}")
        == "exited 137"));
}

/// Sends `POST /containers/{name}/kill?signal=KILL` to the SIGSTOPped berthd
/// `berthd`, lets it run again, and returns its whole answer.
fn kill_queued_while_stopped(d: &Daemon, berthd: i32, name: &str) -> String {
    let mut client = std::os::unix::net::UnixStream::connect(&d.socket).expect("socket");
    let request = format!(
        "POST /containers/{name}/kill?signal=KILL HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    client.write_all(request.as_bytes()).expect("request");
    // SAFETY: kill(2) of the berthd this test started.
    unsafe { libc::kill(berthd, libc::SIGCONT) };
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = client.read_to_string(&mut answer);
    answer
}

/// Whether the host process parked on the container's old pid is still alive;
/// it is stopped either way.
fn survived(decoy: Option<std::process::Child>) -> bool {
    let mut decoy = decoy.expect("a host process got the container's old pid");
    let alive = decoy.try_wait().expect("decoy").is_none();
    let _ = decoy.kill();
    let _ = decoy.wait();
    alive
}

/// The monitor of the container with id `id` (its command line holds its config).
fn monitor_of(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let exe = std::fs::read_link(e.path().join("exe")).ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        (exe.to_string_lossy().contains("berth-monitor")
            && String::from_utf8_lossy(&cmdline).contains(id))
        .then_some(pid)
    })
}

#[test]
fn a_kill_through_a_monitor_that_cannot_answer_spares_the_pids_new_owner() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"])
        .ok();
    let id = d.container_id("orphan");
    let pid: i32 = d.inspect("orphan", "{{.State.Pid}}").parse().expect("pid");
    let monitor = monitor_of(&id).expect("the container's monitor");
    let berthd = d.pid() as i32;
    // berthd stops looking; the monitor is killed before it can record the exit,
    // then the container's process dies and its pid is free again.
    // SAFETY: kill(2) of processes this test started.
    unsafe { libc::kill(berthd, libc::SIGSTOP) };
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let freed = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    let decoy = if freed { decoy_with_pid(pid) } else { None };
    // Where the monitor listened, something now hangs up without an answer, as
    // a monitor from before control requests does.
    let socket = d.exec_root.join("s").join(format!("{}.sock", &id[..24]));
    let _ = std::fs::remove_file(&socket);
    let mute = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    mute.set_nonblocking(true).expect("nonblocking");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let mute_thread = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed)
        {
            match mute.accept() {
                Ok((conn, _)) => drop(conn),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let answer = kill_queued_while_stopped(&d, berthd, "orphan");
    let alive = survived(decoy);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = mute_thread.join();
    assert!(
        alive,
        "berthd's kill hit the host process holding the old pid"
    );
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    assert!(d.eventually(Duration::from_secs(15), || d
        .inspect("orphan", "{{.State.Status}}")
        == "exited"));
    d.berth(&["rm", "-f", "orphan"]).ok();
}
