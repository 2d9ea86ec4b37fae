//! What the kernel shows inside and around a container: namespaces, mounts,
//! capabilities, seccomp, masked paths, and cgroup limits.

mod common;

use std::time::Duration;

use common::Daemon;

fn cap_set(status: &str, set: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(set)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("{set} line in {status}"))
}

fn cap_eff(status: &str) -> u64 {
    cap_set(status, "CapEff")
}

/// berth loads a precompiled filter at the container's last step and gives back
/// the capabilities that took: the kernel must show exactly one filter and
/// exactly the requested sets, for `run` and for `exec`, as root and not.
fn assert_docker_defaults(status: &str, root: bool) {
    let expected = if root { DOCKER_DEFAULT_CAPS } else { 0 };
    assert_eq!(cap_set(status, "CapEff"), expected, "{status}");
    assert_eq!(cap_set(status, "CapPrm"), expected, "{status}");
    assert_eq!(cap_set(status, "CapBnd"), DOCKER_DEFAULT_CAPS, "{status}");
    assert_eq!(cap_set(status, "CapInh"), 0, "{status}");
    assert_eq!(cap_set(status, "CapAmb"), 0, "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("Seccomp_filters:\t1"), "{status}");
}

/// Docker's default capability set as a mask.
const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;

#[test]
fn namespaces_hide_the_host() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d.berth(&["run", "--rm", "--hostname", "boxy", "busybox", "sh", "-c",
        "hostname; ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline | tr '\\0' ' '; echo; ip -o link | cut -d: -f2; cat /proc/self/mountinfo"]).ok();
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("boxy"));
    let pids: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid count");
    assert!(pids <= 4, "container sees {pids} processes: {}", r.stdout);
    assert!(
        lines.next().unwrap_or_default().starts_with("sh -c"),
        "PID 1 is the container's command"
    );
    assert_eq!(
        lines.next().map(str::trim),
        Some("lo"),
        "only loopback in a fresh netns"
    );
    let mountinfo: String = lines.collect::<Vec<_>>().join("\n");
    for host_path in ["/work", "/home", d.data_root.to_str().unwrap_or("/x")] {
        assert!(
            !mountinfo
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(host_path)),
            "host path {host_path} visible: {mountinfo}"
        );
    }
    // The host sees our container process in its own cgroup under our parent.
    let id = d
        .berth(&["run", "-d", "busybox", "sleep", "100"])
        .ok()
        .out()
        .to_string();
    let pid = d.inspect(&id, "{{.State.Pid}}");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    assert!(
        cgroup.contains(&format!("{}/{}", d.cgroup_parent, id)),
        "{cgroup}"
    );
    let host_net = std::fs::read_link("/proc/self/ns/net").expect("own netns");
    let ctr_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("container netns");
    assert_ne!(host_net, ctr_net);
    let host_net_run = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "sh",
            "-c",
            "ip -o link | wc -l",
        ])
        .ok();
    let count: usize = host_net_run.out().parse().unwrap_or(0);
    assert!(count >= 1, "host network mode sees the host's links");
}

#[test]
fn default_security_matches_docker() {
    let d = Daemon::start();
    d.import_busybox();
    let status = d
        .berth(&["run", "--rm", "busybox", "cat", "/proc/self/status"])
        .ok()
        .stdout;
    assert_docker_defaults(&status, true);
    assert!(status.contains("NoNewPrivs:\t0"));
    let as_user = d
        .berth(&[
            "run",
            "--rm",
            "-u",
            "1000",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert_docker_defaults(&as_user, false);
    let id = d
        .berth(&["run", "-d", "busybox", "sleep", "100"])
        .ok()
        .out()
        .to_string();
    for (user, root) in [("0", true), ("1000", false)] {
        let status = d
            .berth(&["exec", "-u", user, &id, "cat", "/proc/self/status"])
            .ok()
            .stdout;
        assert_docker_defaults(&status, root);
    }
    d.berth(&["rm", "-f", &id]).ok();
    // Without CAP_SETPCAP and CAP_SYS_ADMIN in the requested set, the lent ones
    // must still be gone, from the bounding set too.
    let dropped = d
        .berth(&[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CHOWN",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert_eq!(cap_set(&dropped, "CapBnd"), 1, "{dropped}");
    assert_eq!(cap_set(&dropped, "CapEff"), 1, "{dropped}");
    assert!(dropped.contains("Seccomp_filters:\t1"), "{dropped}");
    // Seccomp blocks what the capability set would not allow anyway, and more.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "mount -t tmpfs none /mnt 2>&1; echo rc=$?",
        ])
        .ok();
    assert!(
        r.stdout.contains("rc=1") || r.stdout.contains("rc=255"),
        "{}",
        r.stdout
    );
    // Masked and read-only paths.
    let r = d.berth(&["run", "--rm", "busybox", "sh", "-c",
        "wc -c < /proc/keys; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo writable || echo readonly; echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable || echo sysrq-readonly"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0].trim(),
        "0",
        "/proc/keys must read empty: {}",
        r.stdout
    );
    assert_eq!(lines[1], "readonly");
    assert_eq!(lines[2], "sysrq-readonly");
}

#[test]
fn security_flags_change_what_the_kernel_applies() {
    let d = Daemon::start();
    d.import_busybox();
    let own = std::fs::read_to_string("/proc/self/status").expect("own status");
    let privileged = d
        .berth(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert_eq!(
        cap_eff(&privileged),
        cap_eff(&own),
        "--privileged grants what berthd holds"
    );
    assert!(privileged.contains("Seccomp:\t0"));
    let none = d
        .berth(&[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert_eq!(cap_eff(&none), 0);
    let added = d
        .berth(&[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_ADMIN",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert_eq!(cap_eff(&added), 1 << 12);
    let nnp = d
        .berth(&[
            "run",
            "--rm",
            "--security-opt",
            "no-new-privileges",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok()
        .stdout;
    assert!(nnp.contains("NoNewPrivs:\t1"));
    let ro = d
        .berth(&[
            "run",
            "--rm",
            "--read-only",
            "busybox",
            "sh",
            "-c",
            "touch /x 2>/dev/null && echo rw || echo ro",
        ])
        .ok();
    assert_eq!(ro.out(), "ro");
    let user = d
        .berth(&["run", "--rm", "-u", "65534:65534", "busybox", "id"])
        .ok();
    assert!(user.out().starts_with("uid=65534"), "{}", user.out());
    let named = d
        .berth(&["run", "--rm", "-u", "nobody", "busybox", "id", "-u"])
        .ok();
    assert_eq!(named.out(), "65534");
    let env = d
        .berth(&[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "--entrypoint",
            "sh",
            "busybox",
            "-c",
            "echo $A $(pwd) $HOSTNAME",
        ])
        .ok();
    assert!(env.out().starts_with("1 /tmp "), "{}", env.out());
    let bad = d.berth(&["run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true"]);
    assert_eq!(bad.code, 125);
}

#[test]
fn cgroup_limits_are_applied() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d
        .berth(&[
            "run",
            "-d",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "32",
            "busybox",
            "sleep",
            "100",
        ])
        .ok()
        .out()
        .to_string();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(d.cgroup_file(&id, ctrl, file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("pids", "pids.max"), "32");
    let pid = d.inspect(&id, "{{.State.Pid}}");
    assert!(read("pids", "cgroup.procs").lines().any(|l| l == pid));
    d.berth(&["rm", "-f", &id]).ok();
    assert!(
        !d.cgroup_file(&id, "memory", "").exists(),
        "container cgroup removed with the container"
    );
}

#[test]
fn fork_bomb_is_contained_by_pids_limit() {
    let d = Daemon::start();
    d.import_busybox();
    let bomb = "bomb() { bomb | bomb & }; bomb 2>/dev/null; sleep 30";
    let id = d
        .berth(&[
            "run",
            "-d",
            "--pids-limit",
            "16",
            "busybox",
            "sh",
            "-c",
            bomb,
        ])
        .ok()
        .out()
        .to_string();
    let events = d.cgroup_file(&id, "pids", "pids.events");
    let hit_limit = || {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
            > 0
    };
    assert!(
        d.eventually(Duration::from_secs(10), hit_limit),
        "the bomb never reached the limit"
    );
    let current: u64 = std::fs::read_to_string(d.cgroup_file(&id, "pids", "pids.current"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(999);
    assert!(current <= 16, "{current} processes despite --pids-limit 16");
    // The host is fine: berthd answers and can remove the container.
    d.berth(&["rm", "-f", &id]).ok();
}

#[test]
fn oom_kill_reports_137_and_oomkilled() {
    let d = Daemon::start();
    d.import_busybox();
    // A shell variable of 64 MB in a 16 MB container.
    let r = d.berth(&[
        "run",
        "--name",
        "hog",
        "-m",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
    ]);
    assert_eq!(r.code, 137, "stdout={} stderr={}", r.stdout, r.stderr);
    assert!(d.eventually(Duration::from_secs(5), || d
        .inspect("hog", "{{.State.OOMKilled}}")
        == "true"));
}

#[test]
fn external_runc_runtime_runs_the_same_spec() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--runtime",
            "runc",
            "busybox",
            "cat",
            "/proc/self/status",
        ])
        .ok();
    assert_eq!(cap_eff(&r.stdout), DOCKER_DEFAULT_CAPS);
    assert!(r.stdout.contains("Seccomp:\t2"));
    assert_eq!(
        d.berth(&[
            "run",
            "--rm",
            "--runtime",
            "runc",
            "busybox",
            "sh",
            "-c",
            "exit 7"
        ])
        .code,
        7
    );
    d.berth(&[
        "run",
        "-d",
        "--name",
        "viarunc",
        "--runtime",
        "runc",
        "-m",
        "32m",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let id = d.container_id("viarunc");
    let limit = std::fs::read_to_string(d.cgroup_file(&id, "memory", "memory.limit_in_bytes"))
        .unwrap_or_default();
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    let r = d.berth(&["exec", "viarunc", "sh", "-c", "echo exec-ok; exit 3"]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "exec-ok\n"));
    assert_eq!(d.inspect("viarunc", "{{.HostConfig.Runtime}}"), "runc");
    d.berth(&["kill", "viarunc"]).ok();
    assert_eq!(d.berth(&["wait", "viarunc"]).ok().out(), "137");
    let r = d.berth(&["run", "--rm", "--runtime", "nope", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("Unknown runtime specified nope"),
        "{}",
        r.stderr
    );
}

/// `--ulimit`, `--sysctl`, `--shm-size` and `--group-add`, as the container's
/// kernel state shows them, and the docker-style refusals for what cannot work.
#[test]
fn ulimits_sysctls_shm_and_extra_groups() {
    let d = Daemon::start();
    d.import_busybox();
    let r = d
        .berth(&[
            "run", "--rm", "--ulimit", "nofile=512:1024", "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=80", "--sysctl", "kernel.shmmax=123456789",
            "--shm-size", "128m", "--group-add", "1234", "--group-add", "nogroup", "busybox",
            "sh", "-c",
            "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax; df -k /dev/shm | tail -1 | awk '{print $2}'; id -G",
        ])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        ["512", "1024", "80", "123456789", "131072", "0 1234 65534"],
        "{}",
        r.stdout
    );
    // The host's own values are untouched.
    let host_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .expect("host sysctl");
    assert_ne!(host_start.trim(), "80");
    // docker's defaults: 64 MiB of /dev/shm, recorded in HostConfig.
    let id = d
        .berth(&["create", "busybox", "true"])
        .ok()
        .out()
        .to_string();
    assert_eq!(d.inspect(&id, "{{.HostConfig.ShmSize}}"), "67108864");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "df -k /dev/shm | tail -1 | awk '{print $2}'",
        ])
        .ok();
    assert_eq!(r.out(), "65536");

    // Refused at create, as docker refuses them, with nothing created.
    let before = d.berth(&["ps", "-aq"]).ok().stdout;
    let own = std::fs::read_to_string("/proc/self/status").expect("own status");
    let may_raise_limits = cap_eff(&own) & (1 << 24) != 0; // CAP_SYS_RESOURCE
    for (args, why) in [
        (vec!["--sysctl", "vm.swappiness=1"], "not allowed"),
        (
            vec!["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
            "host network",
        ),
        (vec!["--ulimit", "nofile=2048:1024"], "above the hard limit"),
        (vec!["--ulimit", "bogus=1"], "invalid ulimit type"),
        (vec!["--ulimit", "nofile=1:4294967295"], "CAP_SYS_RESOURCE"),
    ] {
        if why == "CAP_SYS_RESOURCE" && may_raise_limits {
            continue;
        }
        let mut full = vec!["run", "--rm"];
        full.extend(args.iter());
        full.extend(["busybox", "true"]);
        let r = d.berth(&full);
        assert_eq!(r.code, 125, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout, before);
    let (status, _, body) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Sysctls":{"kernel.panic":"1"}}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
}

/// The static probe of `tests/probe/seccomp_probe.c`, kept in target/ (as the
/// busybox tarball is) and rebuilt when the source is newer.
fn seccomp_probe() -> std::path::PathBuf {
    static PROBE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let src = common::workspace_root().join("crates/berthd/tests/probe/seccomp_probe.c");
            let out = common::workspace_root().join("target/seccomp-probe");
            let modified =
                |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            if modified(&out).is_some() && modified(&out) >= modified(&src) {
                return out;
            }
            let tmp = out.with_extension(std::process::id().to_string());
            let status = std::process::Command::new("gcc")
                .args(["-static", "-O2", "-o"])
                .arg(&tmp)
                .arg(&src)
                .status()
                .expect("run gcc");
            assert!(status.success(), "gcc could not build the seccomp probe");
            std::fs::rename(&tmp, &out).expect("keep the seccomp probe");
            out
        })
        .clone()
}

/// Runs the probe in a container of `runtime` with `flags`, one line per call.
fn probe_verdicts(d: &Daemon, runtime: &str, flags: &[&str]) -> Vec<String> {
    let probe = seccomp_probe();
    let bind = format!("{}:/probe:ro", probe.display());
    let mut args = vec!["run", "--rm", "--runtime", runtime, "-v", &bind];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "/probe"]);
    let r = d.berth(&args).ok();
    r.stdout.lines().map(str::to_string).collect()
}

/// Docker's profile filters clone, clone3, unshare, socket and personality by
/// argument. berth compiles the profile itself (precompiled BPF); runc compiles
/// the same config.json with libseccomp-golang: every verdict must be the same,
/// and the namespace-creating calls must be refused without CAP_SYS_ADMIN.
#[test]
fn seccomp_argument_filters_match_runc() {
    let d = Daemon::start();
    d.import_busybox();
    let cases: [&[&str]; 4] = [
        &[],
        &["--cap-drop", "ALL"],
        &["-u", "1000"],
        &["--cap-add", "SYS_ADMIN"],
    ];
    let mut table = String::new();
    for flags in cases {
        let berth = probe_verdicts(&d, "berth", flags);
        let runc = probe_verdicts(&d, "runc", flags);
        assert!(berth.len() >= 25, "probe output: {berth:?}");
        for (b, r) in berth.iter().zip(&runc) {
            table.push_str(&format!("{flags:?}\t{b}\t(runc: {r})\n"));
        }
        assert_eq!(berth, runc, "berth and runc disagree with flags {flags:?}");
        let verdict = |call: &str| {
            berth
                .iter()
                .find_map(|l| l.strip_prefix(call)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no line for {call} in {berth:?}"))
                .to_string()
        };
        let admin = flags.contains(&"SYS_ADMIN");
        for call in [
            "clone(CLONE_NEWUSER)",
            "clone(CLONE_NEWUSER|CLONE_NEWNET)",
            "clone(CLONE_NEWNS)",
            "unshare(CLONE_NEWUSER)",
        ] {
            if admin {
                assert_eq!(verdict(call), "ok", "{call} with CAP_SYS_ADMIN");
            } else {
                assert_eq!(verdict(call), "EPERM", "{call} with {flags:?}");
            }
        }
        assert_eq!(verdict("clone(plain)"), "ok");
        assert_eq!(
            verdict("clone3(plain)"),
            if admin { "ok" } else { "ENOSYS" }
        );
        assert_eq!(verdict("socket(AF_VSOCK)"), "EPERM");
        assert_eq!(verdict("personality(READ_IMPLIES_EXEC)"), "EPERM");
        assert_eq!(verdict("personality(PER_LINUX32)"), "ok");
    }
    eprintln!("{table}");
}

/// Tries to write every cgroup file and make a sub-cgroup from inside; prints one
/// line per success, then `limits <memory limit>`. (The tmpfs at /sys/fs/cgroup
/// itself is private to the container; runc leaves it writable, berth does not.)
const CGROUP_WRITE_PROBE: &str = r#"
for f in $(find /sys/fs/cgroup -type f); do
  case "$f" in *cgroup.procs|*tasks|*freezer.state|*cgroup.freeze|*cgroup.kill) continue;; esac
  v=$(cat "$f" 2>/dev/null | head -n 1)
  if (echo "${v:-1}" > "$f") 2>/dev/null; then echo "wrote $f"; fi
done
(echo -1 > /sys/fs/cgroup/memory/memory.limit_in_bytes) 2>/dev/null && echo "lifted memory"
(echo max > /sys/fs/cgroup/pids/pids.max) 2>/dev/null && echo "lifted pids"
for d in /sys/fs/cgroup/memory /sys/fs/cgroup/pids /sys/fs/cgroup/cpu; do
  mkdir "$d/escape" 2>/dev/null && echo "made $d/escape"
done
echo "limits $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
"#;

/// docker mounts the cgroup hierarchies read-only unless `--privileged`: nothing
/// in them may be written from inside, under berth's runtime as under runc.
#[test]
fn cgroupfs_is_read_only_inside() {
    let d = Daemon::start();
    d.import_busybox();
    let limit = (32u64 << 20).to_string();
    for runtime in ["berth", "runc"] {
        for user in ["0", "1000"] {
            let r = d
                .berth(&[
                    "run",
                    "--rm",
                    "--runtime",
                    runtime,
                    "-u",
                    user,
                    "-m",
                    "32m",
                    "--pids-limit",
                    "20",
                    "busybox",
                    "sh",
                    "-c",
                    CGROUP_WRITE_PROBE,
                ])
                .ok();
            assert_eq!(
                r.out(),
                format!("limits {limit}"),
                "{runtime} as {user}: writes got through"
            );
        }
    }
    // A long-running one: the host still sees its limits after the attempts, and
    // no sub-cgroup outlives it.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "tries",
        "-m",
        "32m",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        &format!("{CGROUP_WRITE_PROBE}\nsleep 60"),
    ])
    .ok();
    let id = d.container_id("tries");
    assert!(d.eventually(Duration::from_secs(20), || d
        .berth(&["logs", "tries"])
        .stdout
        .contains("limits")));
    assert_eq!(d.berth(&["logs", "tries"]).out(), format!("limits {limit}"));
    let host_limit = std::fs::read_to_string(d.cgroup_file(&id, "memory", "memory.limit_in_bytes"))
        .expect("host view of the limit");
    assert_eq!(host_limit.trim(), limit);
    let mountinfo = d
        .berth(&["exec", "tries", "cat", "/proc/self/mountinfo"])
        .ok()
        .stdout;
    let cgroup_mounts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|p| p.starts_with("/sys/fs/cgroup"))
        })
        .collect();
    assert!(cgroup_mounts.len() > 2, "{mountinfo}");
    for m in &cgroup_mounts {
        assert!(
            m.split(' ').nth(5).is_some_and(|o| o.starts_with("ro")),
            "{m}"
        );
    }
    d.berth(&["rm", "-f", "tries"]).ok();
    for controller in ["memory", "pids", "cpu"] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&d.cgroup_parent)
            .join(&id);
        assert!(!dir.exists(), "{} outlived rm", dir.display());
    }
    // --privileged: writable, as docker makes it.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--privileged",
            "busybox",
            "sh",
            "-c",
            "grep ' /sys/fs/cgroup/memory ' /proc/self/mountinfo",
        ])
        .ok();
    assert!(
        r.out()
            .split(' ')
            .nth(5)
            .is_some_and(|o| o.starts_with("rw")),
        "{}",
        r.stdout
    );
}
