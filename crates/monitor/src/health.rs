//! Health checks, run by the container's monitor as docker's daemon runs them:
//! a probe is an exec of the check's command in the container, on schedule, one
//! at a time, killed when it outlives its timeout.
//!
//! Each probe runs in a forked helper (the libcontainer exec changes process-wide
//! state and blocks), which becomes a subreaper so that the probe is its child
//! whatever the runtime does, enforces the timeout, and reports the outcome on a
//! status pipe. The monitor itself only polls two pipes and reaps the helper, so
//! between probes a health check costs no process at all.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use berth_monitor::{Health, HealthLogEntry, HealthProbe, MonitorConfig};
use berth_runtime::external::ExternalRuntime;
use berth_runtime::youki::{self, Stdio};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// docker keeps this much of a probe's output.
const MAX_OUTPUT: usize = 4096;
/// docker keeps this many probe results.
const MAX_LOG: usize = 5;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// A probe in flight.
struct Running {
    helper: Pid,
    started: String,
    output: OwnedFd,
    status: OwnedFd,
    captured: Vec<u8>,
}

pub struct Prober {
    probe: HealthProbe,
    pub health: Health,
    container_started: Instant,
    next_due: Instant,
    running: Option<Running>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Prober {
    pub fn new(probe: HealthProbe) -> Prober {
        let now = Instant::now();
        let mut p = Prober {
            probe,
            health: Health {
                status: STARTING.into(),
                failing_streak: 0,
                log: Vec::new(),
            },
            container_started: now,
            next_due: now,
            running: None,
        };
        p.next_due = now + p.current_interval(now);
        p
    }

    fn in_start_period(&self, now: Instant) -> bool {
        now.duration_since(self.container_started) < ms(self.probe.start_period_ms)
    }

    /// docker probes at the start interval while a container is still starting
    /// within its start period, at the interval otherwise.
    fn current_interval(&self, now: Instant) -> Duration {
        if self.health.status == STARTING && self.in_start_period(now) {
            ms(self.probe.start_interval_ms)
        } else {
            ms(self.probe.interval_ms)
        }
    }

    /// How long the monitor may sleep before the next probe is due (None while
    /// one runs: its pipes and SIGCHLD wake the monitor).
    pub fn wait_budget(&self) -> Option<Duration> {
        if self.running.is_some() {
            return None;
        }
        Some(self.next_due.saturating_duration_since(Instant::now()))
    }

    /// The pipe to poll while a probe runs.
    pub fn output_fd(&self) -> Option<RawFd> {
        self.running.as_ref().map(|r| r.output.as_raw_fd())
    }

    pub fn helper(&self) -> Option<Pid> {
        self.running.as_ref().map(|r| r.helper)
    }

    /// Starts a probe if one is due (and none runs, and the container is not
    /// paused: joining a frozen cgroup would hang).
    pub fn tick(&mut self, config: &MonitorConfig) {
        let now = Instant::now();
        if self.running.is_some() || now < self.next_due {
            return;
        }
        if self.frozen() {
            self.next_due = now + self.current_interval(now);
            return;
        }
        match spawn_probe(config, &self.probe) {
            Ok((helper, output, status)) => {
                self.running = Some(Running {
                    helper,
                    started: now_rfc3339(),
                    output,
                    status,
                    captured: Vec::new(),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "health probe could not start");
                let started = now_rfc3339();
                self.record(started, -1, format!("health probe could not start: {e}"));
            }
        }
    }

    fn frozen(&self) -> bool {
        self.probe.freezer_file.as_ref().is_some_and(|f| {
            std::fs::read_to_string(f)
                .map(|s| matches!(s.trim(), "FROZEN" | "FREEZING" | "1"))
                .unwrap_or(false)
        })
    }

    /// Reads what the probe wrote so far (kept up to docker's cap, the rest
    /// drained and dropped).
    pub fn read_output(&mut self) {
        let Some(r) = &mut self.running else { return };
        drain(r.output.as_raw_fd(), &mut r.captured);
    }

    /// The helper exited: the probe is over. Returns true when the health
    /// changed (the caller reports it).
    pub fn helper_exited(&mut self) -> bool {
        let Some(mut r) = self.running.take() else {
            return false;
        };
        drain(r.output.as_raw_fd(), &mut r.captured);
        let mut status = [0u8; 5];
        let mut file = std::fs::File::from(r.status);
        let outcome = match file.read_exact(&mut status) {
            Ok(()) => Some((
                status[0] != 0,
                i32::from_ne_bytes([status[1], status[2], status[3], status[4]]),
            )),
            Err(_) => None,
        };
        let mut output = String::from_utf8_lossy(&r.captured).into_owned();
        let code = match outcome {
            Some((true, _)) => {
                output = format!(
                    "Health check exceeded timeout ({:?})",
                    ms(self.probe.timeout_ms)
                );
                -1
            }
            Some((false, code)) => code,
            None => {
                output.push_str("health probe helper ended without a result");
                -1
            }
        };
        self.record(r.started, code, output);
        true
    }

    fn record(&mut self, started: String, exit_code: i32, output: String) {
        let now = Instant::now();
        let entry = HealthLogEntry {
            start: started,
            end: now_rfc3339(),
            exit_code,
            output,
        };
        self.health.log.push(entry);
        if self.health.log.len() > MAX_LOG {
            let excess = self.health.log.len() - MAX_LOG;
            self.health.log.drain(..excess);
        }
        if exit_code == 0 {
            self.health.failing_streak = 0;
            self.health.status = HEALTHY.into();
        } else if !(self.health.status == STARTING && self.in_start_period(now)) {
            // As docker: failures while starting within the start period do not count.
            self.health.failing_streak += 1;
            if self.health.failing_streak >= self.probe.retries.max(1) {
                self.health.status = UNHEALTHY.into();
            }
        }
        self.next_due = now + self.current_interval(now);
    }

    /// The container is gone: a probe still running is killed with its helper.
    pub fn abandon(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = kill(r.helper, Signal::SIGKILL);
            let _ = waitpid(r.helper, None);
        }
    }
}

fn drain(fd: RawFd, captured: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a stack buffer from a non-blocking fd we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        let room = MAX_OUTPUT.saturating_sub(captured.len());
        captured.extend_from_slice(&buf[..(n as usize).min(room)]);
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// Forks the helper that runs one probe. Returns its pid, the read end of the
/// probe's output and the read end of the status pipe.
fn spawn_probe(
    config: &MonitorConfig,
    probe: &HealthProbe,
) -> Result<(Pid, OwnedFd, OwnedFd), String> {
    let (out_r, out_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(out_r.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(out_r.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    // SAFETY: the monitor is single-threaded; the helper runs plain code and
    // leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork probe helper: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(out_r);
            drop(status_r);
            let (timed_out, code) = run_probe(config, probe, out_w);
            let mut record = [0u8; 5];
            record[0] = u8::from(timed_out);
            record[1..].copy_from_slice(&code.to_ne_bytes());
            // SAFETY: write(2) of a stack buffer to our pipe end, then _exit.
            unsafe {
                libc::write(status_w.as_raw_fd(), record.as_ptr().cast(), record.len());
                libc::_exit(0)
            }
        }
        nix::unistd::ForkResult::Parent { child } => Ok((child, out_r, status_r)),
    }
}

/// In the helper: exec the probe, wait for it within the timeout. Returns
/// (timed out, exit code).
fn run_probe(config: &MonitorConfig, probe: &HealthProbe, output: OwnedFd) -> (bool, i32) {
    // Whatever the runtime does with its intermediate processes, the probe ends
    // up our child.
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // The monitor blocks SIGCHLD for its signalfd; the probe must not inherit that.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    let stdin = std::fs::File::open("/dev/null").map(OwnedFd::from).ok();
    // SAFETY: dup of a valid fd.
    let stderr = unsafe { libc::fcntl(output.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    let stdio = Stdio {
        stdin,
        stdout: Some(output),
        // SAFETY: a fresh fd from F_DUPFD_CLOEXEC (or none).
        stderr: (stderr >= 0).then(|| unsafe { OwnedFd::from_raw_fd(stderr) }),
    };
    let started = match &config.runtime {
        None => youki::exec(
            &config.id,
            &config.state_root,
            &config.bundle,
            &probe.process_json,
            config.seccomp_cache.as_deref(),
            stdio,
            None,
        ),
        Some(binary) => ExternalRuntime {
            binary: binary.clone(),
            root: config.state_root.join("external"),
        }
        .exec(&config.id, &config.bundle, &probe.process_json, stdio, None),
    };
    let pid = match started {
        Ok(pid) => Pid::from_raw(pid),
        Err(e) => {
            eprintln!("health probe: {e}");
            return (false, 126);
        }
    };
    let deadline = Instant::now() + ms(probe.timeout_ms);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return (false, code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return (false, 128 + sig as i32),
            Ok(_) => {}
            Err(_) => return (false, 125),
        }
        if Instant::now() >= deadline {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return (true, -1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prober(retries: u32, start_period_ms: u64) -> Prober {
        Prober::new(HealthProbe {
            process_json: "/nonexistent".into(),
            interval_ms: 30_000,
            timeout_ms: 30_000,
            start_period_ms,
            start_interval_ms: 5_000,
            retries,
            freezer_file: None,
        })
    }

    #[test]
    fn statuses_follow_dockers_rules() {
        let mut p = prober(3, 0);
        assert_eq!(p.health.status, STARTING);
        p.record("t".into(), 1, "no".into());
        p.record("t".into(), 1, "no".into());
        assert_eq!(
            (p.health.status.as_str(), p.health.failing_streak),
            (STARTING, 2)
        );
        p.record("t".into(), 1, "no".into());
        assert_eq!(
            (p.health.status.as_str(), p.health.failing_streak),
            (UNHEALTHY, 3)
        );
        p.record("t".into(), 0, "yes".into());
        assert_eq!(
            (p.health.status.as_str(), p.health.failing_streak),
            (HEALTHY, 0)
        );
        for _ in 0..10 {
            p.record("t".into(), 1, "x".into());
        }
        assert_eq!(p.health.log.len(), MAX_LOG);
        assert_eq!(p.health.status, UNHEALTHY);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let mut p = prober(1, 60_000);
        p.record("t".into(), 1, "not yet".into());
        assert_eq!(
            (p.health.status.as_str(), p.health.failing_streak),
            (STARTING, 0)
        );
        // Probing at the start interval meanwhile.
        assert!(p.wait_budget().is_some_and(|d| d <= Duration::from_secs(5)));
        p.record("t".into(), 0, "up".into());
        assert_eq!(p.health.status, HEALTHY);
        // Healthy: the start period no longer shields failures.
        p.record("t".into(), 1, "down".into());
        assert_eq!(p.health.status, UNHEALTHY);
        assert!(p.wait_budget().is_some_and(|d| d > Duration::from_secs(5)));
    }

    #[test]
    fn output_is_capped() {
        let (r, w) = pipe().expect("pipe");
        // SAFETY: fcntl on our fd.
        unsafe {
            let flags = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(r.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let mut writer = std::fs::File::from(w);
        std::io::Write::write_all(&mut writer, &[b'x'; 10_000]).expect("write");
        let mut captured = Vec::new();
        drain(r.as_raw_fd(), &mut captured);
        assert_eq!(captured.len(), MAX_OUTPUT);
    }
}
