//! `berth-monitor CONFIG_JSON`: parents one container process; see the library docs.

mod health;
mod log;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_monitor::{
    frame_header, ControlReply, ExitRecord, Mode, MonitorConfig, Request, StartReply, StateReply,
    UsageReply, WaitLine, STDERR, STDOUT,
};
use berth_runtime::external::ExternalRuntime;
use berth_runtime::youki::{self, Stdio};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::log::LogWriter;

fn main() {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: berth-monitor CONFIG_JSON");
        std::process::exit(2);
    };
    let config: MonitorConfig = match serde_json::from_str(&arg) {
        Ok(c) => c,
        Err(e) => {
            reply(&StartReply {
                pid: None,
                error: Some(format!("bad monitor config: {e}")),
            });
            std::process::exit(2);
        }
    };
    // Log to a private copy of stderr (the monitor log): libcontainer's forked
    // children inherit the subscriber, and their fd 2 is the container's stderr.
    // SAFETY: F_DUPFD_CLOEXEC on fd 2 returns a new fd we own (or -1).
    let log_fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    let log_file = if log_fd >= 0 {
        // SAFETY: fresh fd from fcntl.
        unsafe { File::from_raw_fd(log_fd) }
    } else {
        match File::options().append(true).open("/dev/null") {
            Ok(f) => f,
            Err(_) => std::process::exit(1),
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(log_file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_MONITOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();

    // Detach: the caller (berthd) reaps our first half at once, and the second half
    // belongs to no one but init, so a dying berthd takes nothing with it.
    // SAFETY: single-threaded here; the child continues with plain code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            reply(&StartReply {
                pid: None,
                error: Some(format!("fork monitor: {e}")),
            });
            std::process::exit(1);
        }
    }
    let _ = nix::unistd::setsid();
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let code = match Monitor::start(config) {
        Ok(mut m) => {
            m.run();
            0
        }
        Err(e) => {
            reply(&StartReply {
                pid: None,
                error: Some(e),
            });
            1
        }
    };
    std::process::exit(code);
}

fn reply(r: &StartReply) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let mut out = io::stdout().lock();
    let _ = out.write_all(&line);
    let _ = out.flush();
}

/// Replaces stdout (berthd's pipe) with /dev/null so berthd sees EOF after the reply.
fn close_reply_channel() {
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        // SAFETY: dup2 onto our own stdout.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

struct Client {
    stream: UnixStream,
    request: Request,
    /// Attach clients that send stdin; cleared at their EOF.
    reads_stdin: bool,
}

struct Monitor {
    config: MonitorConfig,
    pid: i32,
    listener: UnixListener,
    signals: SignalFd,
    /// stdout and stderr of the process (for a TTY: just the pty master, as stdout).
    outputs: Vec<(u8, OwnedFd)>,
    /// Where client stdin goes; for a TTY the pty master (a dup).
    stdin: Option<OwnedFd>,
    pending_stdin: VecDeque<u8>,
    close_stdin_when_drained: bool,
    pty_master: Option<RawFd>,
    log: Option<LogWriter>,
    clients: Vec<Client>,
    exit: Option<ExitRecord>,
    /// The health check, for a container that has one.
    prober: Option<health::Prober>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

fn bind(path: &Path) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))
}

/// Fills empty volumes with what the image has at their mount points.
fn copy_up_volumes(rootfs: &Path, copies: &[berth_monitor::CopyUp]) -> Result<(), String> {
    for c in copies {
        if !berth_volume::is_empty_dir(&c.volume_dir) {
            continue;
        }
        let source =
            berth_volume::scoped_path(rootfs, &c.destination).map_err(|e| e.to_string())?;
        if !source.is_dir() {
            continue;
        }
        berth_volume::copy_up(&source, &c.volume_dir)
            .map_err(|e| format!("copy image content of {} into volume: {e}", c.destination))?;
    }
    Ok(())
}

impl Monitor {
    fn start(config: MonitorConfig) -> Result<Monitor, String> {
        let listener = bind(&config.socket)?;
        let mut early_clients = Vec::new();
        for _ in 0..config.attach_before_start {
            if let Some(c) = accept_client(&listener, Duration::from_secs(10)) {
                early_clients.push(c);
            }
        }
        if let Some(snapshot) = &config.rootfs {
            snapshot.prepare().map_err(|e| e.to_string())?;
            snapshot.mount().map_err(|e| e.to_string())?;
            if let Err(e) = copy_up_volumes(&snapshot.target, &config.copy_up) {
                let _ = snapshot.unmount();
                let _ = std::fs::remove_file(&config.socket);
                return Err(e);
            }
        }
        let started = Self::start_process(&config);
        let (pid, outputs, stdin, pty_master) = match started {
            Ok(v) => v,
            Err(e) => {
                if let Some(snapshot) = &config.rootfs {
                    let _ = snapshot.unmount();
                }
                let _ = std::fs::remove_file(&config.socket);
                return Err(e);
            }
        };

        // SIGCHLD through a signalfd; blocked only now, so the container never
        // inherited the blocked mask. A child that already exited is still a zombie
        // and is found by the first waitpid.
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()
            .map_err(|e| format!("block SIGCHLD: {e}"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("signalfd: {e}"))?;

        let log = match &config.log {
            Some(l) => Some(
                LogWriter::open(l.clone())
                    .map_err(|e| format!("open log {}: {e}", l.path.display()))?,
            ),
            None => None,
        };
        reply(&StartReply {
            pid: Some(pid),
            error: None,
        });
        close_reply_channel();
        // Starting parsed the spec (and maybe compiled a seccomp filter); that
        // memory is free now, and returning it keeps each of many long-lived
        // monitors small.
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe { libc::malloc_trim(0) };
        for (_, fd) in &outputs {
            set_nonblocking(fd.as_raw_fd());
        }
        if let Some(fd) = &stdin {
            set_nonblocking(fd.as_raw_fd());
        }
        // A restarted berthd may have asked for the state while the start ran.
        early_clients.retain(|c| {
            if matches!(c.request, Request::State) {
                let _ = send_line(&c.stream, &StateReply { pid });
                return false;
            }
            true
        });
        for c in &mut early_clients {
            if let Request::Attach {
                stdin: wants_stdin, ..
            } = c.request
            {
                c.reads_stdin = wants_stdin && stdin.is_some();
            }
        }
        Ok(Monitor {
            pid,
            listener,
            signals,
            outputs,
            stdin,
            pending_stdin: VecDeque::new(),
            close_stdin_when_drained: false,
            pty_master,
            log,
            clients: early_clients,
            prober: match config.mode {
                Mode::Init => config.health.clone().map(health::Prober::new),
                Mode::Exec => None,
            },
            config,
            exit: None,
        })
    }

    #[allow(clippy::type_complexity)]
    fn start_process(
        config: &MonitorConfig,
    ) -> Result<(i32, Vec<(u8, OwnedFd)>, Option<OwnedFd>, Option<RawFd>), String> {
        let mut stdio = Stdio::default();
        let mut outputs = Vec::new();
        let mut stdin_writer = None;
        let console = if config.tty {
            Some(bind(&config.console_socket)?)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            stdio.stdout = Some(out_w);
            stdio.stderr = Some(err_w);
            outputs.push((STDOUT, out_r));
            outputs.push((STDERR, err_r));
            if config.open_stdin {
                let (in_r, in_w) = pipe()?;
                stdio.stdin = Some(in_r);
                stdin_writer = Some(in_w);
            } else {
                let null = File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
                stdio.stdin = Some(null.into());
            }
            None
        };
        let console_path = console.as_ref().map(|_| config.console_socket.as_path());
        let before_start = |pid| {
            if config.loopback_up {
                berth_runtime::netdev::loopback_up(pid)?;
            }
            Ok(())
        };
        let pid = match (config.mode, external_runtime(config)) {
            (Mode::Init, None) => youki::create_and_start(
                &config.id,
                &config.state_root,
                &config.bundle,
                config.seccomp_cache.as_deref(),
                stdio,
                console_path,
                before_start,
            ),
            (Mode::Init, Some(rt)) => rt.create_and_start(
                &config.id,
                &config.bundle,
                stdio,
                console_path,
                before_start,
            ),
            (Mode::Exec, rt) => {
                let process = config
                    .process_json
                    .as_deref()
                    .ok_or_else(|| "exec without process.json".to_string())?;
                match rt {
                    None => youki::exec(
                        &config.id,
                        &config.state_root,
                        &config.bundle,
                        process,
                        config.seccomp_cache.as_deref(),
                        stdio,
                        console_path,
                    ),
                    Some(rt) => rt.exec(&config.id, &config.bundle, process, stdio, console_path),
                }
            }
        }
        .map_err(|e| e.to_string())?;

        let mut pty_master = None;
        if let Some(listener) = console {
            let master = receive_pty_master(&listener)?;
            let _ = std::fs::remove_file(&config.console_socket);
            let raw = master.as_raw_fd();
            // SAFETY: dup of a valid fd; the copy is owned by the returned OwnedFd.
            let dup = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(format!("dup pty master: {}", io::Error::last_os_error()));
            }
            // SAFETY: fresh fd from F_DUPFD_CLOEXEC.
            stdin_writer = Some(unsafe { OwnedFd::from_raw_fd(dup) });
            pty_master = Some(raw);
            outputs.push((STDOUT, master));
        }
        Ok((pid, outputs, stdin_writer, pty_master))
    }

    fn run(&mut self) {
        self.reap();
        let mut exit_deadline: Option<Instant> = None;
        loop {
            if self.exit.is_some() {
                if self.outputs.is_empty() {
                    break;
                }
                let deadline =
                    *exit_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                if Instant::now() >= deadline {
                    break;
                }
            }
            self.poll_once();
        }
        self.finish();
    }

    fn poll_once(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(self.signals.as_raw_fd(), libc::POLLIN));
        fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
        let outputs_start = fds.len();
        for (_, fd) in &self.outputs {
            fds.push(pfd(fd.as_raw_fd(), libc::POLLIN));
        }
        let clients_start = fds.len();
        for c in &self.clients {
            let events = if c.reads_stdin { libc::POLLIN } else { 0 };
            // Not POLLRDHUP: it stays set after a client shuts its write side, which
            // would make poll return at once forever (POLLHUP/POLLERR always arrive).
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        let stdin_slot = fds.len();
        if let (Some(fd), false) = (&self.stdin, self.pending_stdin.is_empty()) {
            fds.push(pfd(fd.as_raw_fd(), libc::POLLOUT));
        }
        let probe_slot = fds.len();
        let probe_fd = self.prober.as_ref().and_then(|p| p.output_fd());
        if let Some(fd) = probe_fd {
            fds.push(pfd(fd, libc::POLLIN));
        }
        let timeout = if self.exit.is_some() {
            100
        } else {
            match self.prober.as_ref().and_then(|p| p.wait_budget()) {
                // Rounded up, so that the probe is due when poll returns.
                Some(budget) => budget.as_millis().saturating_add(1).min(i32::MAX as u128) as i32,
                None => -1,
            }
        };
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if self.exit.is_none() {
            if let Some(p) = &mut self.prober {
                p.tick(&self.config);
            }
        }
        if n <= 0 {
            return;
        }
        if probe_fd.is_some() && fds[probe_slot].revents != 0 {
            if let Some(p) = &mut self.prober {
                p.read_output();
            }
        }
        if fds[0].revents != 0 {
            while let Ok(Some(_)) = self.signals.read_signal() {}
            self.reap();
        }
        if fds[1].revents != 0 {
            self.accept();
        }
        // Outputs: iterate in reverse so removal keeps indices valid.
        for i in (0..self.outputs.len()).rev() {
            let revents = fds[outputs_start + i].revents;
            if revents != 0 {
                self.read_output(i);
            }
        }
        if fds.len() > stdin_slot && fds[stdin_slot].revents != 0 {
            self.flush_stdin();
        }
        // Clients accepted during this round were not polled: only the first ones were.
        let client_events: Vec<i16> = fds[clients_start..stdin_slot]
            .iter()
            .map(|p| p.revents)
            .collect();
        for i in (0..client_events.len()).rev() {
            if client_events[i] != 0 {
                self.client_event(i, client_events[i]);
            }
        }
    }

    fn reap(&mut self) {
        loop {
            let waited = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG));
            let probe_helper = self.prober.as_ref().and_then(|p| p.helper());
            if let (Ok(status), Some(helper)) = (&waited, probe_helper) {
                if status.pid() == Some(helper) {
                    let changed = self.prober.as_mut().is_some_and(|p| p.helper_exited());
                    if changed {
                        self.report_health();
                    }
                    continue;
                }
            }
            match waited {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.pid => {
                    self.record_exit(code);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.pid => {
                    self.record_exit(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }

    /// Sends the current health to every `wait` client (berthd keeps it for
    /// inspect and turns status changes into events).
    fn report_health(&mut self) {
        let Some(p) = &self.prober else { return };
        let line = WaitLine::Health {
            health: p.health.clone(),
        };
        self.clients
            .retain(|c| !matches!(c.request, Request::Wait) || send_line(&c.stream, &line).is_ok());
    }

    fn record_exit(&mut self, exit_code: i32) {
        if let Some(p) = &mut self.prober {
            p.abandon();
        }
        let oom_killed = self.config.oom_files.iter().any(|f| oom_kill_count(f) > 0);
        self.exit = Some(ExitRecord {
            exit_code,
            oom_killed,
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        });
    }

    fn accept(&mut self) {
        let Some(client) = accept_client(&self.listener, Duration::from_secs(5)) else {
            return;
        };
        match client.request {
            Request::Resize { height, width } => {
                if let Some(master) = self.pty_master {
                    let ws = libc::winsize {
                        ws_row: height,
                        ws_col: width,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
                    unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) };
                }
            }
            Request::State => {
                let _ = send_line(&client.stream, &StateReply { pid: self.pid });
            }
            Request::Kill { signal } => {
                let _ = send_line(&client.stream, &self.signal(signal));
            }
            Request::Freeze { frozen } => {
                let _ = send_line(&client.stream, &self.freeze(frozen));
            }
            Request::Update { limits } => {
                let _ = send_line(&client.stream, &self.update_limits(&limits));
            }
            Request::Stats => {
                let reply = match (&self.config.cgroup, self.exit.is_some()) {
                    (Some(rel), false) => UsageReply {
                        exited: false,
                        usage: berth_runtime::cgroups::usage(rel),
                    },
                    _ => UsageReply {
                        exited: true,
                        usage: Default::default(),
                    },
                };
                let _ = send_line(&client.stream, &reply);
            }
            // Answered only from finish(), after the exit record is on disk and the
            // rootfs is unmounted: whoever waits may remove the container at once.
            Request::Wait => {
                // A (re)connecting berthd learns the health at once.
                if let Some(p) = &self.prober {
                    let line = WaitLine::Health {
                        health: p.health.clone(),
                    };
                    if send_line(&client.stream, &line).is_err() {
                        return;
                    }
                }
                self.clients.push(client)
            }
            Request::Attach { stdin, .. } => {
                let reads_stdin = stdin && self.stdin.is_some();
                self.clients.push(Client {
                    reads_stdin,
                    ..client
                });
            }
        }
    }

    /// Signals the process. Its pid cannot have been recycled: this monitor is
    /// its subreaper and sets `exit` in the same pass that reaps it.
    fn signal(&self, signal: i32) -> ControlReply {
        if self.exit.is_some() {
            return ControlReply {
                exited: true,
                error: None,
            };
        }
        // Signal 0 is kill(2)'s "does it still exist" probe.
        let sig = match signal {
            0 => Ok(None),
            n => Signal::try_from(n).map(Some),
        };
        let error = match sig {
            Ok(sig) => nix::sys::signal::kill(Pid::from_raw(self.pid), sig)
                .err()
                .map(|e| format!("signal {signal} to pid {}: {e}", self.pid)),
            Err(_) => Some(format!("invalid signal {signal}")),
        };
        ControlReply {
            exited: false,
            error,
        }
    }

    /// Freezes or thaws the container's cgroup.
    fn freeze(&self, frozen: bool) -> ControlReply {
        self.on_cgroup(|rel| berth_runtime::cgroups::set_frozen(rel, frozen))
    }

    /// Writes new limits into the container's cgroup.
    fn update_limits(&self, limits: &berth_runtime::cgroups::Limits) -> ControlReply {
        self.on_cgroup(|rel| berth_runtime::cgroups::apply(rel, limits))
    }

    /// Runs a change of the container's cgroup. Once the process has exited the
    /// cgroup is gone or going: nothing is done, and the answer says `exited`.
    fn on_cgroup(&self, change: impl FnOnce(&str) -> berth_runtime::Result<()>) -> ControlReply {
        if self.exit.is_some() {
            return ControlReply {
                exited: true,
                error: None,
            };
        }
        let error = match &self.config.cgroup {
            None => Some("this monitor has no cgroup".to_string()),
            Some(rel) => change(rel).err().map(|e| e.to_string()),
        };
        ControlReply {
            exited: false,
            error,
        }
    }

    fn read_output(&mut self, index: usize) {
        let mut buf = [0u8; 32 * 1024];
        let (stream, fd) = (&self.outputs[index].0, self.outputs[index].1.as_raw_fd());
        let stream = *stream;
        // SAFETY: reading into a stack buffer from an fd we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let data = &buf[..n as usize];
            if let Some(log) = &mut self.log {
                log.write(stream, data);
            }
            self.broadcast(stream, data);
            return;
        }
        let err = io::Error::last_os_error();
        if n < 0 && err.kind() == io::ErrorKind::WouldBlock {
            return;
        }
        // EOF, or EIO from a pty master whose last slave closed.
        if let Some(log) = &mut self.log {
            log.flush_partial(stream);
        }
        self.outputs.remove(index);
    }

    fn broadcast(&mut self, stream: u8, data: &[u8]) {
        let header = frame_header(stream, data.len());
        self.clients.retain(|c| {
            let wants = match c.request {
                Request::Attach { stdout, stderr, .. } => {
                    (stream == STDOUT && stdout) || (stream == STDERR && stderr)
                }
                _ => return true,
            };
            if !wants {
                return true;
            }
            send_all(&c.stream, &header).is_ok() && send_all(&c.stream, data).is_ok()
        });
    }

    fn client_event(&mut self, index: usize, revents: i16) {
        if self.clients[index].reads_stdin && revents & libc::POLLIN != 0 {
            let mut buf = [0u8; 32 * 1024];
            match (&self.clients[index].stream).read(&mut buf) {
                Ok(0) | Err(_) => {
                    self.clients[index].reads_stdin = false;
                    if self.config.stdin_once {
                        self.close_stdin_when_drained = true;
                        self.flush_stdin();
                    }
                }
                Ok(n) => {
                    self.pending_stdin.extend(&buf[..n]);
                    self.flush_stdin();
                }
            }
            return;
        }
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            self.clients.remove(index);
        }
    }

    fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.pending_stdin.is_empty() {
                let (front, _) = self.pending_stdin.as_slices();
                // SAFETY: writing from a valid slice to an fd we own.
                let n = unsafe { libc::write(fd.as_raw_fd(), front.as_ptr().cast(), front.len()) };
                if n <= 0 {
                    if io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                        self.pending_stdin.clear();
                    }
                    break;
                }
                self.pending_stdin.drain(..n as usize);
            }
        }
        if self.close_stdin_when_drained && self.pending_stdin.is_empty() {
            if self.pty_master.is_some() {
                // A terminal has no half-close; ^D is what a shell reads as EOF.
                if let Some(fd) = &self.stdin {
                    // SAFETY: one-byte write to our pty master.
                    unsafe { libc::write(fd.as_raw_fd(), [4u8].as_ptr().cast(), 1) };
                }
            }
            self.stdin = None;
        }
    }

    fn finish(&mut self) {
        if let Some(log) = &mut self.log {
            log.flush_partial(STDOUT);
            log.flush_partial(STDERR);
            log.finish();
        }
        let exit = self.exit.clone().unwrap_or_else(|| ExitRecord {
            exit_code: 255,
            oom_killed: false,
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        });
        if self.config.mode == Mode::Init {
            let deleted = match external_runtime(&self.config) {
                None => youki::delete(&self.config.id, &self.config.state_root),
                Some(rt) => rt.delete(&self.config.id, &self.config.bundle),
            };
            if let Err(e) = deleted {
                tracing::warn!(id = %self.config.id, error = %e, "runtime delete failed");
            }
            if let Some(snapshot) = &self.config.rootfs {
                if let Err(e) = snapshot.unmount() {
                    tracing::warn!(id = %self.config.id, error = %e, "unmount failed");
                }
            }
        }
        let record = serde_json::to_vec(&exit).unwrap_or_default();
        if let Err(e) = write_atomic(&self.config.exit_file, &record) {
            tracing::error!(id = %self.config.id, error = %e, "cannot write exit record");
        }
        let _ = std::fs::remove_file(&self.config.socket);
        for client in &self.clients {
            if matches!(client.request, Request::Wait) {
                let _ = send_line(&client.stream, &exit);
            }
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Accepts one client and reads its request line. A client that says nothing
/// within `timeout` is dropped rather than waited on.
fn accept_client(listener: &UnixListener, timeout: Duration) -> Option<Client> {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) } <= 0 {
        return None;
    }
    let (stream, _) = listener.accept().ok()?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mut reader = &stream;
    while line.len() < 4096 {
        match reader.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
    let request = serde_json::from_slice::<Request>(&line).ok()?;
    let _ = stream.set_read_timeout(None);
    Some(Client {
        stream,
        request,
        reads_stdin: false,
    })
}

fn external_runtime(config: &MonitorConfig) -> Option<ExternalRuntime> {
    config.runtime.as_ref().map(|binary| ExternalRuntime {
        binary: binary.clone(),
        root: config.state_root.join("external"),
    })
}

fn receive_pty_master(listener: &UnixListener) -> Result<OwnedFd, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener
        .accept()
        .map_err(|e| format!("accept console socket: {e}"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receive pty master: {e}"))?;
    for c in msg
        .cmsgs()
        .map_err(|e| format!("receive pty master: {e}"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err("console socket sent no pty master".into())
}

fn send_all(stream: &UnixStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: sending from a valid slice; MSG_NOSIGNAL turns SIGPIPE into EPIPE.
        let n = unsafe {
            libc::send(
                stream.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

fn send_line(stream: &UnixStream, value: &impl serde::Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    send_all(stream, &line)
}

fn oom_kill_count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
