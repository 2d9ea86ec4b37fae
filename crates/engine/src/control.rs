//! Control requests to a container's monitor: the one owner of its process.
//!
//! berthd does not signal a container's pid, freeze its cgroup or write its
//! limits itself. The monitor is the process's subreaper, so only the monitor
//! knows for certain that the pid still names the container: berthd learns of an exit later (over
//! the wait stream), and in between the kernel may give the pid to an unrelated
//! host process. containerd's shim owns its task for the same reason.
//!
//! A monitor started by an older berthd (adopted across an upgrade) does not know
//! these requests; it drops the connection unanswered. For such containers
//! berthd falls back to acting itself (see [`Delivery::Unsupported`]), and then
//! signals the recorded pid only while it is in the container's cgroup.

use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use berth_monitor::{ControlReply, Request, UsageReply};

use crate::logs::connect_monitor;
use crate::{ContainerRecord, Engine, EngineError, Result};

/// A monitor that does not answer within this long is taken as stuck.
const REPLY_LIMIT: Duration = Duration::from_secs(15);

/// What became of a control request.
#[derive(Debug, PartialEq)]
pub(crate) enum Delivery {
    /// The monitor did it.
    Done,
    /// The process has exited (or its monitor is gone): nothing to act on.
    Exited,
    /// The monitor predates control requests; the caller acts itself.
    Unsupported,
}

/// A monitor's answer, or why there is none.
enum Answer<T> {
    Reply(T),
    /// The monitor is gone (`Exited`) or hung up unanswered (`Unsupported`).
    Gone(Delivery),
}

/// The monitor closed the connection: it exited while we spoke.
fn hung_up(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

impl Engine {
    /// Sends `request` to `c`'s monitor and reads its one-line answer.
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        c: &ContainerRecord,
        request: &Request,
    ) -> Result<Answer<T>> {
        let socket = self.monitor_socket(&c.id);
        let stream = match connect_monitor(&socket, request, None).await {
            Ok(s) => s,
            // No monitor listening: it has finished, so the process is gone.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(Answer::Gone(Delivery::Exited))
            }
            Err(e) if hung_up(&e) => return Ok(Answer::Gone(self.unanswered(&c.id))),
            Err(e) => {
                return Err(EngineError::io(
                    format!("connect to the monitor of container {}", c.id),
                    e,
                ))
            }
        };
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stream);
        let read = tokio::time::timeout(REPLY_LIMIT, reader.read_line(&mut line))
            .await
            .map_err(|_| EngineError::Monitor {
                container: c.id.clone(),
                reason: format!("no answer to {request:?} within {REPLY_LIMIT:?}"),
            })?;
        match read {
            Err(e) if hung_up(&e) => return Ok(Answer::Gone(self.unanswered(&c.id))),
            Err(e) => {
                return Err(EngineError::io(
                    format!("read the monitor's answer for container {}", c.id),
                    e,
                ))
            }
            Ok(_) if line.trim().is_empty() => return Ok(Answer::Gone(self.unanswered(&c.id))),
            Ok(_) => {}
        }
        serde_json::from_str(&line)
            .map(Answer::Reply)
            .map_err(|e| EngineError::Monitor {
                container: c.id.clone(),
                reason: format!("bad answer {line:?}: {e}"),
            })
    }

    /// Sends a control request to `c`'s monitor and waits for its [`ControlReply`].
    pub(crate) async fn control(&self, c: &ContainerRecord, request: Request) -> Result<Delivery> {
        let reply: ControlReply = match self.ask(c, &request).await? {
            Answer::Reply(r) => r,
            Answer::Gone(delivery) => return Ok(delivery),
        };
        if let Some(reason) = reply.error {
            return Err(EngineError::Monitor {
                container: c.id.clone(),
                reason,
            });
        }
        Ok(if reply.exited {
            Delivery::Exited
        } else {
            Delivery::Done
        })
    }

    /// `c`'s cgroup counters, read by its monitor; None once it has exited.
    pub(crate) async fn usage_of(
        &self,
        c: &ContainerRecord,
    ) -> Result<Option<berth_runtime::cgroups::Usage>> {
        match self.ask::<UsageReply>(c, &Request::Stats).await? {
            Answer::Reply(UsageReply {
                exited: false,
                usage,
            }) => Ok(Some(usage)),
            Answer::Reply(_) | Answer::Gone(Delivery::Exited | Delivery::Done) => Ok(None),
            Answer::Gone(Delivery::Unsupported) => {
                Ok(Some(berth_runtime::cgroups::usage(&self.cgroups_path(c))))
            }
        }
    }

    /// A monitor that hung up without an answer: one that is finishing (its
    /// exit record is there) or one that predates control requests.
    fn unanswered(&self, id: &str) -> Delivery {
        if self.container_dir(id).join("exit.json").exists() {
            Delivery::Exited
        } else {
            Delivery::Unsupported
        }
    }

    /// Signals the container's process through its monitor.
    pub(crate) async fn signal_container(
        &self,
        c: &ContainerRecord,
        sig: nix::sys::signal::Signal,
    ) -> Result<Delivery> {
        let delivery = self
            .control(c, Request::Kill { signal: sig as i32 })
            .await?;
        if delivery == Delivery::Unsupported {
            // Nothing vouches for the recorded pid here (an old monitor, or one
            // killed before it wrote the exit): it is signalled only while it is
            // still in the container's cgroup, which a recycled pid (a host
            // process) is not.
            let pid = c.state.pid;
            if pid <= 0 || !berth_runtime::cgroups::pids(&self.cgroups_path(c)).contains(&pid) {
                return Ok(Delivery::Exited);
            }
            tracing::debug!(id = %c.id, "monitor predates control requests; signalling directly");
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
                .map_err(|e| EngineError::sys(format!("signal container {}", c.id), e))?;
        }
        Ok(delivery)
    }

    /// Writes new limits into the container's cgroup through its monitor.
    pub(crate) async fn update_cgroup(
        &self,
        c: &ContainerRecord,
        limits: berth_runtime::cgroups::Limits,
    ) -> Result<Delivery> {
        let delivery = self
            .control(
                c,
                Request::Update {
                    limits: limits.clone(),
                },
            )
            .await?;
        if delivery == Delivery::Unsupported {
            tracing::debug!(id = %c.id, "monitor predates control requests; updating directly");
            let rel = self.cgroups_path(c);
            if let Err(e) = berth_runtime::cgroups::apply(&rel, &limits) {
                if berth_runtime::cgroups::dir("pids", &rel).exists() {
                    return Err(EngineError::runtime(
                        format!("update container {}", c.id),
                        e,
                    ));
                }
            }
        }
        Ok(delivery)
    }

    /// Freezes or thaws the container's cgroup through its monitor.
    pub(crate) async fn freeze_container(
        &self,
        c: &ContainerRecord,
        frozen: bool,
    ) -> Result<Delivery> {
        let delivery = self.control(c, Request::Freeze { frozen }).await?;
        if delivery == Delivery::Unsupported {
            tracing::debug!(id = %c.id, "monitor predates control requests; freezing directly");
            let verb = if frozen { "freeze" } else { "thaw" };
            berth_runtime::cgroups::set_frozen(&self.cgroups_path(c), frozen)
                .map_err(|e| EngineError::runtime(format!("{verb} container {}", c.id), e))?;
        }
        Ok(delivery)
    }
}
