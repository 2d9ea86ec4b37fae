//! Containers must never outlive berthd's knowledge: `kill -9` of berthd in the
//! middle of starts, `kill -9` of a container's monitor, and starts that fail.
//! After each, every process, cgroup, mount, veth and address is accounted for,
//! and everything is removable.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;

/// Container ids that have a cgroup directory under this daemon's parent, with
/// the processes in it (pids hierarchy, or the unified one).
fn container_cgroups(d: &Daemon) -> HashMap<String, Vec<i32>> {
    let base = if Path::new("/sys/fs/cgroup/pids").is_dir() {
        Path::new("/sys/fs/cgroup/pids").join(&d.cgroup_parent)
    } else {
        Path::new("/sys/fs/cgroup").join(&d.cgroup_parent)
    };
    let mut found = HashMap::new();
    for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        if !e.path().is_dir() {
            continue;
        }
        let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
        let pids = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        found.insert(e.file_name().to_string_lossy().into_owned(), pids);
    }
    found
}

/// Every cgroup directory of any controller under this daemon's parent.
fn cgroup_dirs(d: &Daemon) -> Vec<String> {
    let mut dirs = Vec::new();
    for controller in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let parent = controller.path().join(&d.cgroup_parent);
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path().display().to_string());
            }
        }
    }
    dirs
}

/// Monitor processes whose command line names this daemon's exec root.
fn monitors_of(d: &Daemon) -> Vec<i32> {
    let needle = d.exec_root.display().to_string();
    let is_monitor = |pid: &std::path::Path| {
        std::fs::read_link(pid.join("exe"))
            .is_ok_and(|exe| exe.to_string_lossy().contains("berth-monitor"))
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            if !is_monitor(&e.path()) {
                return None;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then_some(pid)
        })
        .collect()
}

fn veths_on_bridge(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect()
}

fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn netns_files(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.exec_root.join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes every container and checks that nothing of them is left on the host.
fn remove_all_and_assert_nothing_left(d: &Daemon) {
    let ids = d.berth(&["ps", "-aq", "--no-trunc"]).ok().stdout;
    for id in ids.split_whitespace() {
        d.berth(&["rm", "-f", id]).ok();
    }
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    let clean = d.eventually(Duration::from_secs(10), || {
        cgroup_dirs(d).is_empty()
            && monitors_of(d).is_empty()
            && netns_files(d).is_empty()
            && veths_on_bridge(&d.name).is_empty()
            && mounts_under(&d.data_root).is_empty()
    });
    assert!(
        clean,
        "left behind: cgroups {:?}, monitors {:?}, netns {:?}, veths {:?}, mounts {:?}",
        cgroup_dirs(d),
        monitors_of(d),
        netns_files(d),
        veths_on_bridge(&d.name),
        mounts_under(&d.data_root)
    );
}

/// A small xorshift, seeded from the clock: each run kills at other moments.
struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock, or from `JITTER_SEED` to replay a failed run's
    /// kill moments.
    fn new() -> Jitter {
        let seed = std::env::var("JITTER_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("jitter seed {seed}");
        Jitter(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Two clients start containers back to back while berthd is killed (and left a
/// zombie) at a random moment, then restarted at once; six rounds. Afterwards
/// every process in the daemon's cgroups belongs to a container recorded as
/// running, addresses are unique and really held by their namespaces, and
/// everything can be removed without a trace.
#[test]
fn kill9_during_starts_leaves_no_container_unaccounted_for() {
    let mut d = Daemon::start();
    d.import_busybox();
    let mut jitter = Jitter::new();
    let berth = common::bin_dir().join("berth");
    let host = format!("unix://{}", d.socket.display());
    for _round in 0..6 {
        let loops: Vec<_> = (0..2)
            .map(|_| {
                Command::new("sh")
                    .arg("-c")
                    .arg(r#"while "$0" -H "$1" run -d busybox sleep 600 >/dev/null 2>&1; do :; done"#)
                    .arg(&berth)
                    .arg(&host)
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("start loop")
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + jitter.below(600)));
        // Left unreaped: a zombie berthd must not block the restart.
        d.kill9_leaving_zombie();
        for l in loops {
            common::wait_output(l, Duration::from_secs(60));
        }
        d.respawn();
    }
    let listed = d
        .berth(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}"])
        .ok()
        .stdout;
    let states: HashMap<String, String> = listed
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, st)| (id.to_string(), st.to_string()))
        .collect();
    assert!(
        states.len() >= 6,
        "too few starts to prove anything: {listed}"
    );
    let log = d.log();
    eprintln!(
        "{} containers: {} running, {} created; {} starts adopted mid-way, {} cleaned up",
        states.len(),
        states.values().filter(|s| *s == "running").count(),
        states.values().filter(|s| *s == "created").count(),
        log.matches("start berthd did not see finish").count(),
        log.matches("cleaning up a start berthd did not finish")
            .count(),
    );
    // No process outside a running container.
    for (id, pids) in container_cgroups(&d) {
        if !pids.is_empty() {
            assert_eq!(
                states.get(&id).map(String::as_str),
                Some("running"),
                "container {id} has processes {pids:?} but is recorded as {:?}",
                states.get(&id)
            );
        }
    }
    // Running ones: the process is there, addresses are unique and are the ones
    // the namespaces hold.
    let mut addresses = HashSet::new();
    for (id, state) in &states {
        if state != "running" {
            continue;
        }
        let pid = d.inspect(id, "{{.State.Pid}}");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{id}: pid {pid} gone"
        );
        let ip = d.inspect(id, "{{.NetworkSettings.IPAddress}}");
        assert!(!ip.is_empty(), "{id} runs without an address");
        assert!(addresses.insert(ip.clone()), "{ip} handed out twice");
        let held = d
            .berth(&["exec", id, "ip", "-o", "-4", "addr", "show", "eth0"])
            .ok()
            .stdout;
        assert!(
            held.contains(&format!("inet {ip}/")),
            "{id}: {ip} vs {held}"
        );
    }
    // Not running: startable (the record is not stuck on a half-made start).
    for (id, state) in &states {
        if state == "created" {
            d.berth(&["start", id]).ok();
            let ip = d.inspect(id, "{{.NetworkSettings.IPAddress}}");
            assert!(addresses.insert(ip.clone()), "{ip} handed out twice");
        }
    }
    remove_all_and_assert_nothing_left(&d);
}

fn monitor_of(container_pid: &str) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{container_pid}/stat")).expect("stat");
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let ppid: i32 = after_comm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).expect("monitor exe");
    assert!(
        exe.to_string_lossy().contains("berth-monitor"),
        "parent of the container is {}",
        exe.display()
    );
    ppid
}

fn is_gone(pid: &str) -> bool {
    // Reparented to init once its monitor died: gone, or a zombie about to be reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// `kill -9` of a container's monitor: berthd notices, kills what the monitor
/// held, cleans its cgroups, mount and veth, records the exit; `start`, restart
/// policies and `rm -f` then work as for any stopped container.
#[test]
fn a_killed_monitor_does_not_lose_its_container() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run", "-d", "--name", "lone", "-p", "80", "busybox", "sleep", "600",
    ])
    .ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let lone_id = d.container_id("lone");
    let lone_pid = d.inspect("lone", "{{.State.Pid}}");
    let phoenix_pid = d.inspect("phoenix", "{{.State.Pid}}");
    for pid in [&lone_pid, &phoenix_pid] {
        let monitor = monitor_of(pid);
        // SAFETY: kill(2) of a monitor this test's daemon started.
        unsafe { libc::kill(monitor, libc::SIGKILL) };
    }
    assert!(
        d.eventually(Duration::from_secs(15), || d
            .inspect("lone", "{{.State.Status}}")
            == "exited"),
        "lone: {}",
        d.inspect("lone", "{{.State.Status}}")
    );
    assert_eq!(d.inspect("lone", "{{.State.ExitCode}}"), "137");
    assert!(
        d.eventually(Duration::from_secs(10), || is_gone(&lone_pid)),
        "the container process outlived its monitor"
    );
    assert!(
        !container_cgroups(&d).contains_key(&lone_id),
        "cgroup of lone left behind"
    );
    assert_eq!(d.inspect("lone", "{{.NetworkSettings.IPAddress}}"), "");
    // The restart policy brings phoenix back in a fresh process.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = d.inspect("phoenix", "{{.State.Status}} {{.State.Pid}}");
        if now.starts_with("running ") && !now.ends_with(&format!(" {phoenix_pid}")) {
            break;
        }
        assert!(Instant::now() < deadline, "phoenix did not restart: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.eventually(Duration::from_secs(10), || is_gone(&phoenix_pid)));
    // lone starts again, as any stopped container.
    d.berth(&["start", "lone"]).ok();
    assert_eq!(d.inspect("lone", "{{.State.Status}}"), "running");
    // And a monitor killed while berthd is down is found at the next start.
    let lone_pid = d.inspect("lone", "{{.State.Pid}}");
    let monitor = monitor_of(&lone_pid);
    let mut d = d;
    d.kill9();
    // SAFETY: as above.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    d.respawn();
    assert!(d.eventually(Duration::from_secs(10), || is_gone(&lone_pid)));
    assert_eq!(d.inspect("lone", "{{.State.Status}}"), "exited");
    remove_all_and_assert_nothing_left(&d);
}

/// docker removes an auto-remove container whose start fails.
#[test]
fn run_rm_whose_start_fails_leaves_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d.berth(&["run", "--rm", "busybox", "/does-not-exist"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    let r = d.berth(&["run", "--rm", "-d", "busybox", "/does-not-exist"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    remove_all_and_assert_nothing_left(&d);
}
