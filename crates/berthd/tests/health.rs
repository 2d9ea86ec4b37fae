//! Health checks run by the engine (in each container's monitor): statuses,
//! events, `ps`, timeouts, the log docker keeps, image HEALTHCHECKs, probes that
//! go on across a `kill -9` of berthd, and docker's own clients reading them.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

fn health(d: &Daemon, name: &str) -> serde_json::Value {
    let (status, _, body) = d.http("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("inspect JSON");
    v["State"]["Health"].clone()
}

fn wait_for_status(d: &Daemon, name: &str, want: &str, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let h = health(d, name);
        if h["Status"] == want {
            return h;
        }
        assert!(Instant::now() < deadline, "{name} never became {want}: {h}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// starting → unhealthy (after `retries` failures) → healthy, with docker's
/// events, `ps` wording and `health=` filter.
#[test]
fn statuses_events_ps_and_filters() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--health-cmd",
        "cat /tmp/ready",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 1.5; echo up > /tmp/ready; sleep 300",
    ])
    .ok();
    d.berth(&["run", "-d", "--name", "plain", "busybox", "sleep", "300"])
        .ok();
    assert_eq!(health(&d, "flaky")["Status"], "starting");
    assert!(health(&d, "plain").is_null(), "no check, no Health");
    let unhealthy = wait_for_status(&d, "flaky", "unhealthy", Duration::from_secs(10));
    assert!(
        unhealthy["FailingStreak"].as_u64() >= Some(2),
        "{unhealthy}"
    );
    let ps = d
        .berth(&[
            "ps",
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Names}} {{.Status}}",
        ])
        .ok();
    assert!(
        ps.out().starts_with("flaky Up") && ps.out().ends_with("(unhealthy)"),
        "{}",
        ps.stdout
    );
    let healthy = wait_for_status(&d, "flaky", "healthy", Duration::from_secs(10));
    assert_eq!(healthy["FailingStreak"], 0);
    let log = healthy["Log"].as_array().expect("log");
    assert!(!log.is_empty() && log.len() <= 5, "{healthy}");
    let last = log.last().expect("last probe");
    assert_eq!(
        (last["ExitCode"].as_i64(), last["Output"].as_str()),
        (Some(0), Some("up\n"))
    );
    assert_eq!(
        d.berth(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"])
            .ok()
            .out(),
        "flaky"
    );
    assert_eq!(
        d.berth(&["ps", "--filter", "health=none", "--format", "{{.Names}}"])
            .ok()
            .out(),
        "plain"
    );
    let events = d
        .berth(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "container=flaky",
        ])
        .ok()
        .stdout;
    let health_events: Vec<&str> = events
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(|_| l))
        .filter(|l| l.contains("health_status"))
        .collect();
    assert!(
        health_events
            .iter()
            .any(|l| l.contains("health_status: unhealthy"))
            && health_events
                .iter()
                .any(|l| l.contains("health_status: healthy")),
        "{events}"
    );
    // One event per change, not per probe.
    assert!(health_events.len() <= 3, "{events}");
}

/// A probe that outlives its timeout is killed and counts as a failure; probes
/// never overlap; output is capped at 4 KiB and only five results are kept.
#[test]
fn timeouts_output_cap_and_no_pile_up() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo trying; sleep 5",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--health-cmd",
        "head -c 10000 /dev/zero | tr '\\0' x; exit 1",
        "--health-interval",
        "100ms",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    let slow = wait_for_status(&d, "slow", "unhealthy", Duration::from_secs(10));
    let probe = &slow["Log"][0];
    assert_eq!(probe["ExitCode"], -1, "{slow}");
    assert!(
        probe["Output"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Health check exceeded timeout"),
        "{slow}"
    );
    // The killed probes are gone from the container.
    let procs = d.berth(&["exec", "slow", "ps", "-o", "args"]).ok().stdout;
    assert!(
        procs.matches("sleep 5").count() <= 1,
        "timed-out probes left running: {procs}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let chatty = health(&d, "chatty");
    let log = chatty["Log"].as_array().expect("log");
    assert_eq!(log.len(), 5, "docker keeps five: {}", log.len());
    for entry in log {
        assert_eq!(entry["Output"].as_str().map(str::len), Some(4096));
        assert_eq!(entry["ExitCode"], 1);
    }
    // Each probe started after the previous one ended.
    let times: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e["Start"].as_str().unwrap_or_default().to_string(),
                e["End"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for pair in times.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "probes overlapped: {times:?}");
    }
}

/// HEALTHCHECK from the image, `--no-healthcheck`, and probes that carry on
/// while berthd is killed and restarted (the monitor runs them).
#[test]
fn image_checks_and_probes_across_a_berthd_kill() {
    let mut d = Daemon::start();
    d.import_busybox();
    let dir = d.root.join("ctx");
    std::fs::create_dir_all(&dir).expect("context");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=150ms --retries=1 CMD [\"sh\", \"-c\", \"test -e /tmp/sick && exit 1; echo ok\"]\n",
    )
    .expect("Dockerfile");
    d.berth(&[
        "build",
        "-q",
        "-t",
        "checked",
        dir.to_str().unwrap_or_default(),
    ])
    .ok();
    d.berth(&["run", "-d", "--name", "checked", "checked", "sleep", "300"])
        .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "unchecked",
        "--no-healthcheck",
        "checked",
        "sleep",
        "300",
    ])
    .ok();
    wait_for_status(&d, "checked", "healthy", Duration::from_secs(10));
    assert!(health(&d, "unchecked").is_null());
    assert_eq!(
        d.inspect("unchecked", "{{json .Config.Healthcheck.Test}}"),
        "[\"NONE\"]"
    );
    // The container falls sick, then berthd is killed: its monitor keeps probing.
    d.berth(&["exec", "checked", "touch", "/tmp/sick"]).ok();
    let before = health(&d, "checked")["Log"]
        .as_array()
        .and_then(|l| l.last().cloned())
        .unwrap_or_default();
    d.kill9();
    std::thread::sleep(Duration::from_millis(900));
    d.respawn();
    // The restarted berthd hears the monitor's report as it reconnects; the
    // probes in it ran while no berthd existed (150 ms apart, 900 ms away).
    let newer = |h: &serde_json::Value| {
        h["Log"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|e| e["Start"].as_str() > before["Start"].as_str())
                    .count()
            })
            .unwrap_or(0)
    };
    let mut after = health(&d, "checked");
    for _ in 0..50 {
        if newer(&after) >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        after = health(&d, "checked");
    }
    assert!(
        newer(&after) >= 3,
        "probes stopped while berthd was down: {before} then {after}"
    );
    assert_eq!(after["Status"], "unhealthy", "{after}");
    // No process of its own: between probes, only the monitor and the container.
    // A probe runs every 150 ms, so one sample may catch it running; the
    // fewest seen over many samples is what stays resident.
    let id = d.container_id("checked");
    let naming_the_container = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&id))
                    .unwrap_or(false)
            })
            .count()
    };
    let monitors = (0..40)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(7));
            naming_the_container()
        })
        .min()
        .unwrap_or(usize::MAX);
    assert!(monitors <= 2, "{monitors} processes name the container");
}

/// Debian's docker-compose 1.29 against berthd: `condition: service_healthy`
/// gates the start, and `ps` lists each container once.
#[test]
fn docker_compose_waits_for_healthy_services() {
    let d = Daemon::start();
    d.import_busybox();
    let dir = d.root.join("proj");
    std::fs::create_dir_all(&dir).expect("project dir");
    std::fs::write(
        dir.join("docker-compose.yml"),
        r#"version: "2.4"
services:
  db:
    image: busybox
    command: sh -c "sleep 1; touch /tmp/ready; sleep 300"
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 200ms
      retries: 30
  web:
    image: busybox
    command: sleep 300
    depends_on:
      db:
        condition: service_healthy
"#,
    )
    .expect("compose file");
    let compose = |args: &[&str]| d.docker_compose(&dir, "hc", args, Duration::from_secs(90));
    let up = compose(&["up", "-d"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    // web started only once db was healthy (event times, in nanoseconds).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs() + 1)
        .unwrap_or(0);
    let (_, _, events) = d.http("GET", &format!("/events?since=1&until={now}"), None);
    let time_of = |name: &str, action: &str| {
        events
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["Actor"]["Attributes"]["name"] == name && e["Action"] == action)
            .and_then(|e| e["timeNano"].as_i64())
            .unwrap_or_else(|| panic!("no {action} event for {name}: {events}"))
    };
    let db_healthy = time_of("hc_db_1", "health_status: healthy");
    let web_started = time_of("hc_web_1", "start");
    assert!(
        web_started > db_healthy,
        "web started at {web_started}, before db was healthy at {db_healthy}"
    );
    let ps = compose(&["ps"]);
    let listing = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert_eq!(listing.matches("hc_db_1").count(), 1, "{listing}");
    assert_eq!(listing.matches("hc_web_1").count(), 1, "{listing}");
    assert!(listing.contains("(healthy)"), "{listing}");
    let down = compose(&["down", "-t", "1"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}
