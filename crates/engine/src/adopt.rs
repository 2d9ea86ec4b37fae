//! Recovery: what berthd does about containers whose story it did not see end.
//!
//! Two things can die at any moment: berthd itself (a `kill -9` in the middle of a
//! start) and a container's monitor. The promises kept here:
//!
//! * **Every monitor is found, whatever the record says.** At startup berthd scans
//!   `/proc` for the monitors of its exec root and asks each one for its process
//!   ([`Request::State`]); a record still `created` whose start was cut short
//!   becomes `running`, with the addresses and ports the start had taken (kept in
//!   the bundle's start journal, written before the monitor is spawned). The IP
//!   allocator therefore never hands out an address that a live namespace holds.
//! * **A start cut short before its monitor existed leaves nothing behind**: its
//!   network namespace (with the veths in it) and port rules are removed.
//! * **A lost monitor does not lose its container.** When a monitor dies without an
//!   exit record, berthd kills whatever is left in the container's cgroup, removes
//!   the cgroup, the runtime's state and the mount, and records the exit (137), so
//!   `start`, restart policies and `rm -f` work as for any stopped container.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_monitor::{ExitRecord, Mode, MonitorConfig, Request, StateReply};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::model::{ContainerRecord, EndpointSettings};
use crate::port::PortMap;
use crate::{now_rfc3339, Engine};

/// How long a restarted berthd waits for a monitor that is still starting its
/// container (the same bound berthd gives a start it made itself).
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The start journal's file name in a container's bundle directory.
const START_JOURNAL: &str = "start.json";

/// What a start took on the host before its monitor ran: written to the exec root
/// (tmpfs, so no fsync) before the monitor is spawned, read when a restarted
/// berthd finds that monitor alive although the record never said `running`.
#[derive(Debug, Serialize, Deserialize)]
struct StartJournal {
    networks: BTreeMap<String, EndpointSettings>,
    #[serde(default, deserialize_with = "crate::port::lenient_port_map")]
    ports: PortMap,
}

/// What a monitor said when asked for its container's process.
#[derive(Debug, PartialEq)]
enum MonitorAnswer {
    /// The process runs (or has just exited and the monitor is finishing).
    Running(i32),
    /// The socket accepted the request but closed without a reply: a monitor of
    /// an older berth that has no `state` request, or a start that failed.
    Silent,
    /// No monitor.
    Gone,
}

impl Engine {
    /// Records what the start of `id` has set up so far (see [`StartJournal`]).
    pub(crate) fn write_start_journal(&self, id: &str) -> crate::Result<()> {
        let c = self.container(id)?;
        let journal = StartJournal {
            networks: c.networks,
            ports: c.ports,
        };
        let path = self.bundle_dir(id).join(START_JOURNAL);
        let bytes = serde_json::to_vec(&journal)
            .map_err(|e| crate::EngineError::json("encode start journal", e))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| crate::EngineError::at("write", &path, e))
    }

    pub(crate) fn remove_start_journal(&self, id: &str) {
        let _ = std::fs::remove_file(self.bundle_dir(id).join(START_JOURNAL));
    }

    fn read_start_journal(&self, id: &str) -> Option<StartJournal> {
        let bytes = std::fs::read(self.bundle_dir(id).join(START_JOURNAL)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Settles every container record against what is really there; runs once at
    /// startup, before berthd serves.
    pub(crate) async fn adopt_containers(self: &Arc<Self>) {
        let monitors = live_monitors(&self.config.monitor_bin, &self.config.exec_root);
        let records: Vec<ContainerRecord> = self.lock().containers.values().cloned().collect();
        for c in records {
            let socket = self.monitor_socket(&c.id);
            let exit_file = self.container_dir(&c.id).join("exit.json");
            let monitor_pid = monitors.get(&c.id).copied();
            let answer = if monitor_pid.is_some() || socket.exists() {
                ask_state(&socket, monitor_pid).await
            } else {
                MonitorAnswer::Gone
            };
            match answer {
                MonitorAnswer::Running(pid) => {
                    if !c.state.running() || c.state.pid != pid {
                        tracing::info!(id = %c.id, pid, "adopting a container whose start berthd did not see finish");
                        self.record_adopted_start(&c.id, pid);
                    } else {
                        tracing::info!(id = %c.id, "adopting running container");
                    }
                    self.watch(c.id.clone(), socket, exit_file);
                }
                MonitorAnswer::Silent if c.state.running() => {
                    tracing::info!(id = %c.id, "adopting running container (older monitor)");
                    self.watch(c.id.clone(), socket, exit_file);
                }
                MonitorAnswer::Silent | MonitorAnswer::Gone => {
                    if c.state.running() || exit_file.exists() {
                        tracing::info!(id = %c.id, "container exited while berthd was away");
                        let exit = match read_exit_file(&exit_file) {
                            Some(exit) => exit,
                            // The monitor died too (killed while berthd was down).
                            None => self.clean_after_lost_monitor(&c.id).await,
                        };
                        self.on_exit(&c.id, Some(exit)).await;
                    } else {
                        self.settle_interrupted_start(&c).await;
                    }
                }
            }
        }
    }

    /// A start that got as far as a running process: the record says so now.
    fn record_adopted_start(&self, id: &str, pid: i32) {
        let journal = self.read_start_journal(id);
        let updated = self.update(id, |r| {
            if let Some(j) = journal {
                r.networks = j.networks;
                r.ports = j.ports;
            }
            r.state.adopted(pid, now_rfc3339());
        });
        match updated {
            Ok(record) => self.emit_container("start", &record),
            Err(e) => tracing::warn!(id, error = %e, "cannot record adopted start"),
        }
    }

    /// A record that is not running and has no monitor: whatever a start cut short
    /// set up for it (namespace, veths, port rules, a restart mark) goes.
    async fn settle_interrupted_start(self: &Arc<Self>, c: &ContainerRecord) {
        let leftovers = self.netns_path(&c.id).exists()
            || c.state.restarting()
            || self.bundle_dir(&c.id).join(START_JOURNAL).exists()
            || c.networks.values().any(|e| !e.ip_address.is_empty());
        if !leftovers {
            return;
        }
        tracing::info!(id = %c.id, "cleaning up a start berthd did not finish");
        self.disconnect_after_exit(&c.id).await;
        self.remove_start_journal(&c.id);
        let _ = self.update(&c.id, |r| {
            r.state.restart_abandoned();
        });
    }

    /// After a monitor ended without writing an exit record: kills what the
    /// container left running, and removes its cgroup, runtime state and mount.
    /// Returns the exit to record.
    pub(crate) async fn clean_after_lost_monitor(self: &Arc<Self>, id: &str) -> ExitRecord {
        let Ok(c) = self.container(id) else {
            return lost_exit(255);
        };
        let rel = self.cgroups_path(&c);
        let state_dirs = [
            self.runtime_root().join(id),
            self.runtime_root().join("external").join(id),
        ];
        let rootfs_dir = self.container_dir(id);
        let socket = self.monitor_socket(id);
        let id_owned = id.to_string();
        let killed = tokio::task::spawn_blocking(move || {
            let killed = match berth_runtime::cgroups::kill_and_remove(&rel) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(id = %id_owned, error = %e, "cleaning the cgroup of a lost monitor");
                    0
                }
            };
            berth_snapshot::unmount_all_under(&rootfs_dir);
            for dir in &state_dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
            let _ = std::fs::remove_file(&socket);
            killed
        })
        .await
        .unwrap_or(0);
        tracing::warn!(
            id,
            killed,
            "monitor died without an exit record; container cleaned up"
        );
        lost_exit(if killed > 0 { 137 } else { 255 })
    }

    /// Whether a monitor process for container `id` still runs.
    pub(crate) fn monitor_alive(&self, id: &str) -> bool {
        live_monitors(&self.config.monitor_bin, &self.config.exec_root).contains_key(id)
    }
}

fn lost_exit(exit_code: i32) -> ExitRecord {
    ExitRecord {
        exit_code,
        oom_killed: false,
        finished_at: now_rfc3339(),
    }
}

pub(crate) fn read_exit_file(path: &Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Asks the monitor on `socket` for its process. While `monitor_pid` is alive and
/// has not bound its socket yet (it was spawned just before berthd died), keeps
/// trying; a start in progress answers once it is done.
async fn ask_state(socket: &Path, monitor_pid: Option<i32>) -> MonitorAnswer {
    let deadline = Instant::now() + STATE_TIMEOUT;
    let stream = loop {
        match UnixStream::connect(socket).await {
            Ok(s) => break s,
            Err(_) => {
                let alive = monitor_pid.is_some_and(process_exists);
                if !alive || Instant::now() >= deadline {
                    return MonitorAnswer::Gone;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let exchange = async {
        let mut stream = stream;
        let mut req = serde_json::to_vec(&Request::State).ok()?;
        req.push(b'\n');
        stream.write_all(&req).await.ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.ok()?;
        serde_json::from_str::<StateReply>(&line).ok()
    };
    match tokio::time::timeout(STATE_TIMEOUT, exchange).await {
        Ok(Some(reply)) => MonitorAnswer::Running(reply.pid),
        _ => MonitorAnswer::Silent,
    }
}

fn process_exists(pid: i32) -> bool {
    // A zombie has no /proc/<pid>/exe target and no more work to do.
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok()
}

/// The init-mode monitors serving containers of this exec root, by container id,
/// found from `/proc`: each monitor's argument is its whole configuration.
///
/// Only processes in berthd's own mount and pid namespaces count: a container
/// can run a binary at the same path inside its root with a forged argument,
/// and must not make berthd believe a lost monitor still lives.
fn live_monitors(monitor_bin: &Path, exec_root: &Path) -> HashMap<String, i32> {
    let wanted = std::fs::canonicalize(monitor_bin).unwrap_or_else(|_| monitor_bin.to_path_buf());
    let namespaces = |dir: &Path| {
        (
            std::fs::read_link(dir.join("ns/mnt")).ok(),
            std::fs::read_link(dir.join("ns/pid")).ok(),
        )
    };
    let own = namespaces(Path::new("/proc/self"));
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(exe) = std::fs::read_link(e.path().join("exe")) else {
            continue;
        };
        // A rebuilt binary shows as "<path> (deleted)" in running monitors.
        let exe = exe.to_string_lossy();
        let exe = PathBuf::from(exe.strip_suffix(" (deleted)").unwrap_or(&exe));
        if exe != wanted || own.0.is_none() || namespaces(&e.path()) != own {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let Some(arg) = cmdline.split(|&b| b == 0).nth(1) else {
            continue;
        };
        let Ok(config) = serde_json::from_slice::<MonitorConfig>(arg) else {
            continue;
        };
        if config.mode == Mode::Init && config.socket.starts_with(exec_root) {
            found.insert(config.id, pid);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_is_no_monitor() {
        let own = std::env::current_exe().expect("own exe");
        let found = live_monitors(&own, Path::new("/nonexistent-exec-root"));
        assert!(found.is_empty(), "{found:?}");
    }

    #[tokio::test]
    async fn a_missing_socket_without_a_monitor_is_gone() {
        let answer = ask_state(Path::new("/nonexistent/monitor.sock"), None).await;
        assert_eq!(answer, MonitorAnswer::Gone);
    }
}
