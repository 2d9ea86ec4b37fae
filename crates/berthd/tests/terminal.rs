//! `run -it` and `exec -it` through a real pseudo-terminal: echo, Ctrl-C to the
//! container, window resize, and the exit code.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Daemon;

struct Pty {
    master: std::fs::File,
    child: std::process::Child,
}

fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a pty fd we own.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

fn spawn_in_pty(d: &Daemon, args: &[&str]) -> Pty {
    spawn_cmd_in_pty(d.berth_cmd(args))
}

/// The unmodified docker CLI, pointed at this berthd.
fn docker_in_pty(d: &Daemon, args: &[&str]) -> Pty {
    let mut cmd = std::process::Command::new("/usr/local/bin/docker");
    cmd.args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.root.join("docker-config"));
    spawn_cmd_in_pty(cmd)
}

fn spawn_cmd_in_pty(mut cmd: std::process::Command) -> Pty {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    set_size(&pty.master, 40, 100);
    let slave: OwnedFd = pty.slave;
    cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn berth in pty");
    let master = std::fs::File::from(pty.master);
    // SAFETY: fcntl on our fd.
    unsafe {
        let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    Pty { master, child }
}

impl Pty {
    /// Reads until `needle` shows up (or fails the test after 10 s).
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
            if String::from_utf8_lossy(&seen).contains(needle) {
                return String::from_utf8_lossy(&seen).into_owned();
            }
        }
        panic!(
            "never saw {needle:?}; got {:?}",
            String::from_utf8_lossy(&seen)
        );
    }

    fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("write to pty");
    }

    fn exit_code(mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "berth did not exit");
            let mut buf = [0u8; 4096];
            let _ = self.master.read(&mut buf);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn run_it_is_a_working_terminal() {
    let d = Daemon::start();
    d.import_busybox();
    let mut t = spawn_in_pty(&d, &["run", "-it", "--rm", "busybox", "sh"]);
    t.expect("# ");
    t.send("echo $((6*7)); tty; stty size\r");
    let out = t.expect("40 100");
    assert!(out.contains("42") && out.contains("/dev/pts/0"), "{out}");
    // Ctrl-C reaches the container's foreground process, not berth.
    t.send("sleep 100\r");
    std::thread::sleep(Duration::from_millis(300));
    t.send("\x03");
    t.send("echo after-interrupt\r");
    t.expect("after-interrupt\r\n");
    // A window size change is forwarded (SIGWINCH → resize).
    set_size(&t.master, 50, 120);
    // SAFETY: plain kill(2) to our child.
    unsafe { libc::kill(t.child.id() as i32, libc::SIGWINCH) };
    std::thread::sleep(Duration::from_millis(300));
    t.send("stty size\r");
    t.expect("50 120");
    t.send("exit 3\r");
    assert_eq!(t.exit_code(), 3);
}

#[test]
fn exec_it_joins_a_running_container() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "host",
        "busybox",
        "sh",
        "-c",
        "echo marker > /tmp/m; sleep 100",
    ])
    .ok();
    let mut t = spawn_in_pty(&d, &["exec", "-it", "host", "sh"]);
    t.expect("# ");
    t.send("cat /tmp/m; tty; ps | grep -c 'sleep 100'\r");
    let out = t.expect("/dev/pts/");
    assert!(out.contains("marker"), "{out}");
    t.send("exit 5\r");
    assert_eq!(t.exit_code(), 5);
    // Non-interactive exec: exit code, env, workdir, user, stdin.
    let r = d.berth(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "65534",
        "host",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u); exit 4",
    ]);
    assert_eq!(r.code, 4);
    assert_eq!(r.stdout, "1 /tmp 65534\n");
    let r = d
        .berth_stdin(&["exec", "-i", "host", "tr", "a-z", "A-Z"], b"piped\n")
        .ok();
    assert_eq!(r.stdout, "PIPED\n");
    let r = d.berth(&["exec", "host", "no-such-binary"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    // The exec joined the container's cgroup and pid namespace.
    let r = d.berth(&["exec", "host", "cat", "/proc/1/cmdline"]).ok();
    assert!(
        r.stdout.starts_with("sleep"),
        "PID 1 is the container's own: {}",
        r.stdout
    );
    let stopped = d
        .berth(&["run", "-d", "busybox", "true"])
        .ok()
        .out()
        .to_string();
    d.berth(&["wait", &stopped]).ok();
    assert_eq!(d.berth(&["exec", &stopped, "true"]).code, 1);
}

#[test]
fn docker_cli_run_it_and_exec_it() {
    let d = Daemon::start();
    d.import_busybox();
    let mut t = docker_in_pty(
        &d,
        &["run", "-it", "--rm", "--name", "dockertty", "busybox", "sh"],
    );
    t.expect("# ");
    t.send("echo $((6*7)); stty size\r");
    let out = t.expect("40 100");
    assert!(out.contains("42"), "{out}");
    let mut e = docker_in_pty(&d, &["exec", "-it", "dockertty", "sh"]);
    e.expect("# ");
    e.send("tty; exit 6\r");
    e.expect("/dev/pts/");
    assert_eq!(e.exit_code(), 6);
    t.send("exit 2\r");
    assert_eq!(t.exit_code(), 2);
}
