//! Test harness: each test starts its own berthd (own data root, exec root, socket
//! and cgroup parent), drives it with the real `berth` CLI or raw HTTP, and leaves
//! nothing behind: containers, monitors, mounts, cgroups and directories are removed
//! when the [`Daemon`] is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berthd"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox rootfs tarball, built once and kept under target/ for every test
/// binary (made under a temporary name and renamed, so concurrent binaries never
/// read half a file), rebuilt when Debian's busybox is newer.
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let out = workspace_root().join("target/test-busybox.tar");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let busybox = std::env::var_os("BUSYBOX")
            .map_or_else(|| PathBuf::from("/bin/busybox"), PathBuf::from);
        if modified(&out).is_some() && modified(&out) >= modified(&busybox) {
            return out;
        }
        let tmp = out.with_extension(format!("tar.{}", std::process::id()));
        let status = Command::new(workspace_root().join("scripts/mkbusybox.sh"))
            .arg(&tmp)
            .status()
            .expect("run mkbusybox.sh");
        assert!(status.success(), "mkbusybox.sh failed");
        std::fs::rename(&tmp, &out).expect("keep the busybox tarball");
        out
    })
    .clone()
}

pub struct Daemon {
    pub name: String,
    pub root: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    /// Further berthd flags, kept for restarts.
    extra_args: Vec<String>,
    /// Environment for berthd, kept for restarts.
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// berthds killed but not yet reaped (see [`Daemon::kill9_leaving_zombie`]).
    zombies: Vec<Child>,
}

/// Output of a CLI run, with text helpers.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(o: Output) -> Run {
        Run::from(o)
    }

    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed: stdout={:?} stderr={:?}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn out(&self) -> &str {
        self.stdout.trim()
    }
}

/// Waits for `child` with a deadline; a hung command is killed and fails the test.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("collect output"),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "command timed out after {limit:?}: stdout={:?} stderr={:?}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// A daemon with further flags (kept across [`Daemon::respawn`]).
    pub fn start_with(extra_args: &[&str]) -> Daemon {
        Daemon::start_env(extra_args, &[])
    }

    /// A daemon with further flags and environment variables.
    pub fn start_env(extra_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("bt{}x{n}", std::process::id());
        let root = std::env::temp_dir().join(format!("berth-{name}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create test root");
        let mut d = Daemon {
            data_root: root.join("data"),
            exec_root: PathBuf::from(format!("/run/{name}")),
            socket: root.join("berth.sock"),
            cgroup_parent: format!("berth-test-{name}"),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            name,
            root,
            child: None,
            zombies: Vec::new(),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("berthd.log"))
            .expect("open daemon log");
        // Each daemon reads its own (empty unless the test gives one)
        // daemon.json, never the machine's /etc/berth/daemon.json.
        let mut own_config = Vec::new();
        if !self.extra_args.iter().any(|a| a == "--config-file") {
            let path = self.root.join("daemon.json");
            if !path.exists() {
                std::fs::write(&path, "{}").expect("write daemon.json");
            }
            own_config = vec!["--config-file".to_string(), path.display().to_string()];
        }
        let child = Command::new(env!("CARGO_BIN_EXE_berthd"))
            .args(&own_config)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(self.root.join("berthd.pid"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--certs-dir")
            .arg(self.root.join("certs.d"))
            .arg("--bridge")
            .arg(&self.name)
            .arg("--bip")
            .arg(format!("{}.1/24", self.subnet_prefix(0)))
            .arg("--default-address-pool")
            .arg(format!("base={}.0/22,size=24", self.subnet_prefix(0)))
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        let pid = child.id().to_string();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Up once the pid file names this berthd (it has the lock, so a killed
        // predecessor's socket is closed) and its socket answers.
        let pidfile = self.root.join("berthd.pid");
        while Instant::now() < deadline {
            let ours = std::fs::read_to_string(&pidfile).is_ok_and(|p| p.trim() == pid);
            if ours && UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("berthd did not come up; log: {}", self.log());
    }

    /// `10.A.B` of this daemon's k-th /24 (k < 4): daemons of one test process
    /// get disjoint /22s, so they run side by side.
    pub fn subnet_prefix(&self, k: u8) -> String {
        let n: u32 = self
            .name
            .rsplit('x')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let a = 200 + std::process::id() % 40;
        format!("10.{a}.{}", (n % 64) * 4 + u32::from(k))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("berthd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `kill -9` of berthd, then a fresh berthd on the same state.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `kill -9` of berthd without reaping it, as a shell's `kill -9` leaves it
    /// until the shell waits: the old pid stays a zombie while the next berthd
    /// starts.
    pub fn kill9_leaving_zombie(&mut self) {
        if let Some(c) = self.child.take() {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            self.zombies.push(c);
        }
    }

    pub fn respawn(&mut self) {
        self.spawn();
    }

    /// Debian's docker-compose 1.29 (the reference compose) on project
    /// `project` in `dir`, against this daemon; killed after `limit`.
    pub fn docker_compose(
        &self,
        dir: &Path,
        project: &str,
        args: &[&str],
        limit: Duration,
    ) -> Output {
        let child = Command::new("docker-compose")
            .args(["-p", project])
            .args(args)
            .current_dir(dir)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-compose is installed by .ci/run");
        wait_output(child, limit)
    }

    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        cmd
    }

    /// Runs the berth CLI with a 60 s deadline.
    pub fn berth(&self, args: &[&str]) -> Run {
        let child = self
            .berth_cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        let run = Run::from(wait_output(child, Duration::from_secs(60)));
        if run.stderr.contains("Cannot connect to the berth daemon") {
            // berthd is gone: its log says why, which the failure alone would not.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let exit = self
                .child
                .as_ref()
                .map(|c| format!("berthd pid {}", c.id()))
                .unwrap_or_default();
            eprintln!(
                "{exit}: the last lines of its log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        run
    }

    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .berth_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        Run::from(wait_output(child, Duration::from_secs(60)))
    }

    pub fn import_busybox(&self) {
        let tar = busybox_tar();
        self.berth(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().expect("utf8 path"),
            "busybox:latest",
        ])
        .ok();
    }

    /// One raw HTTP/1.1 request; returns (status, headers, body).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        http_on(&self.socket, method, path, body)
    }

    /// One raw request with a binary body; returns (status, body as text).
    pub fn http_bytes(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write request");
        s.write_all(body).expect("write body");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read response");
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, rest.to_string())
    }

    pub fn inspect(&self, name: &str, template: &str) -> String {
        self.berth(&["inspect", "-f", template, name])
            .ok()
            .out()
            .to_string()
    }

    /// The Linux bridge behind a network: the bridge name option given at
    /// creation (the default network has it), else docker's `br-<id12>`.
    pub fn bridge_of_network(&self, network: &str) -> String {
        let out = self.berth(&["network", "inspect", network]).stdout;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let n = &v[0];
        match n["Options"]["com.docker.network.bridge.name"].as_str() {
            Some(b) => b.to_string(),
            None => format!(
                "br-{}",
                n["Id"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(12)
                    .collect::<String>()
            ),
        }
    }

    pub fn container_id(&self, name: &str) -> String {
        self.inspect(name, "{{.Id}}")
    }

    /// A cgroup v1 controller file of a container (or the v2 file on a v2 host).
    pub fn cgroup_file(&self, id: &str, controller: &str, file: &str) -> PathBuf {
        let v1 = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.cgroup_parent)
            .join(id)
            .join(file);
        if Path::new("/sys/fs/cgroup").join(controller).exists() {
            v1
        } else {
            Path::new("/sys/fs/cgroup")
                .join(&self.cgroup_parent)
                .join(id)
                .join(file)
        }
    }

    /// Polls `cond` for up to `limit`.
    pub fn eventually(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cond()
    }

    fn cleanup(&mut self) {
        for mut z in self.zombies.drain(..) {
            let _ = z.wait();
        }
        if self.child.is_none() && UnixStream::connect(&self.socket).is_err() {
            self.spawn_quietly();
        }
        let ids = self.berth(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter());
            let _ = self.berth(&args);
        }
        let bridges: Vec<String> = self
            .berth(&["network", "ls", "-q"])
            .stdout
            .split_whitespace()
            .map(|id| self.bridge_of_network(id))
            .collect();
        let _ = self.berth(&["network", "prune", "-f"]);
        self.kill9();
        // Bridges (the default one and any a test left) and the firewall table.
        for bridge in bridges
            .iter()
            .map(String::as_str)
            .chain([self.name.as_str()])
        {
            let _ = Command::new("ip").args(["link", "del", bridge]).output();
        }
        let backend = if self.extra_args.iter().any(|a| a == "iptables") {
            berth_network::Backend::Iptables
        } else {
            berth_network::Backend::Nftables
        };
        if let Ok(fw) = berth_network::Firewall::new(&format!("berth_{}", self.name), backend) {
            let _ = fw.teardown();
        }
        // Anything still running from this daemon (a test that killed things oddly).
        kill_processes_mentioning(&self.exec_root);
        unmount_under(&self.data_root);
        unmount_under(&self.exec_root);
        remove_cgroups(&self.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.root);
    }

    fn spawn_quietly(&mut self) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn()));
        if result.is_err() {
            self.child = None;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One request over a unix socket, `Connection: close`; returns (status, head,
/// body), the body de-chunked.
pub fn http_on(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write request");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read response");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, head.to_string(), body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

fn kill_processes_mentioning(path: &Path) {
    let needle = path.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn unmount_under(path: &Path) {
    let prefix = path.display().to_string();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&prefix))
        .map(String::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Removes this daemon's cgroup parent everywhere, with whatever is left under
/// it at any depth (killing stragglers, waiting out cgroups the kernel is still
/// releasing): berth's own clean-up after a lost monitor.
pub fn remove_cgroups(parent: &str) {
    let _ = berth_runtime::cgroups::kill_and_remove(parent);
}

pub fn cgroups_exist(parent: &str) -> bool {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.flatten().any(|e| e.path().join(parent).exists()))
        .unwrap_or(false)
}

/// A private dockerd (own bridge, no iptables), stopped and cleaned up on drop.
pub struct Dockerd {
    child: std::process::Child,
    pub socket: std::path::PathBuf,
    root: std::path::PathBuf,
    bridge: String,
}

impl Dockerd {
    pub fn start(dir: &std::path::Path, bridge: &str) -> Dockerd {
        Dockerd::start_with(dir, bridge, &[])
    }

    /// A dockerd with further flags.
    pub fn start_with(dir: &std::path::Path, bridge: &str, extra_args: &[&str]) -> Dockerd {
        std::fs::create_dir_all(dir).unwrap();
        let ok = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success()
        };
        assert!(ok(&["link", "add", bridge, "type", "bridge"]));
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let socket = dir.join("d.sock");
        let child = std::process::Command::new("dockerd")
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("x"))
            .arg("--pidfile")
            .arg(dir.join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--bridge", bridge, "--iptables=false", "--ip-forward=false"])
            .args(extra_args)
            .stdout(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dockerd is installed by .ci/run (docker.io)");
        let d = Dockerd {
            child,
            socket,
            root: dir.to_path_buf(),
            bridge: bridge.to_string(),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while d.docker(&["version"]).0 != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "dockerd did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        d
    }

    pub fn docker(&self, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new("/usr/local/bin/docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd too.
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.root.display().to_string();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = std::process::Command::new("umount")
                .args(["-l", p])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
