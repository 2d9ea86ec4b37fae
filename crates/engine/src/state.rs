//! A container's state: docker's statuses as one enum, and the transitions
//! between them as the only way to change it.
//!
//! `running`, `paused` and `restarting` are not stored: they follow from the
//! status, so they cannot disagree with it. Records written before the status
//! was typed carry those booleans too; reading ignores them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::Health;

/// docker's `State.Status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// Made, never started (or its first start failed).
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its process runs, frozen.
    Paused,
    /// Exited; its restart policy starts it again after a back-off.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process has exited.
    Exited,
    /// Removal failed half-way.
    Dead,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Removing,
        Status::Exited,
        Status::Dead,
    ];

    /// docker's word for it (`ps --filter status=`, `State.Status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    /// A word berth does not know reads as `created`: a record is never lost
    /// over its status.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let word = String::deserialize(d)?;
        Ok(Status::parse(&word).unwrap_or_default())
    }
}

/// Why a transition was refused, in docker's words (the engine adds the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotRunning,
    AlreadyPaused,
    NotPaused,
}

/// A container's state as berth keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub status: Status,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// The process in the host's pid namespace while it runs; 0 otherwise.
    pub pid: i32,
    pub exit_code: i32,
    /// Why the last start failed.
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Present while a container with a health check runs (and after, as docker
    /// keeps the last state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// docker's "never": the zero `time.Time`.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl ContainerState {
    pub fn created() -> ContainerState {
        ContainerState {
            status: Status::Created,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            ..Default::default()
        }
    }

    /// Its process exists (frozen or not).
    pub fn running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }

    pub fn paused(&self) -> bool {
        self.status == Status::Paused
    }

    pub fn restarting(&self) -> bool {
        self.status == Status::Restarting
    }

    pub fn dead(&self) -> bool {
        self.status == Status::Dead
    }

    /// A start succeeded: process `pid` runs since `at`; the last run's exit,
    /// error and OOM mark are cleared.
    pub fn started(&mut self, pid: i32, at: String) {
        self.status = Status::Running;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.oom_killed = false;
        self.started_at = at;
        self.finished_at = ZERO_TIME.into();
    }

    /// A restarted berthd found the process `pid` running under its monitor.
    /// A container it already knew as running keeps its start time.
    pub fn adopted(&mut self, pid: i32, now: String) {
        let started_at = if self.running() {
            std::mem::take(&mut self.started_at)
        } else {
            now
        };
        self.started(pid, started_at);
    }

    /// A start the runtime refused: docker keeps the error and exit code 128.
    pub fn start_failed(&mut self, error: String) {
        self.error = error;
        self.exit_code = 128;
    }

    /// The process exited with `exit_code` at `at`.
    pub fn exited(&mut self, exit_code: i32, oom_killed: bool, at: String) {
        self.status = Status::Exited;
        self.pid = 0;
        self.exit_code = exit_code;
        self.oom_killed = oom_killed;
        self.finished_at = at;
    }

    /// The restart policy will start it again.
    pub fn restart_pending(&mut self) {
        if self.status == Status::Exited {
            self.status = Status::Restarting;
        }
    }

    /// A pending restart is off (stopped by hand, or the restart failed).
    pub fn restart_abandoned(&mut self) {
        if self.status == Status::Restarting {
            self.status = Status::Exited;
        }
    }

    /// docker's refusals of `pause`.
    pub fn can_pause(&self) -> Result<(), Refusal> {
        match self.status {
            Status::Running => Ok(()),
            Status::Paused => Err(Refusal::AlreadyPaused),
            _ => Err(Refusal::NotRunning),
        }
    }

    pub fn pause(&mut self) -> Result<(), Refusal> {
        self.can_pause()?;
        self.status = Status::Paused;
        Ok(())
    }

    /// docker's refusal of `unpause`.
    pub fn can_unpause(&self) -> Result<(), Refusal> {
        match self.status {
            Status::Paused => Ok(()),
            _ => Err(Refusal::NotPaused),
        }
    }

    /// Thawed: paused becomes running; any other status stays.
    pub fn thawed(&mut self) {
        if self.status == Status::Paused {
            self.status = Status::Running;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> String {
        "2026-12-06T00:00:00Z".into()
    }

    #[test]
    fn the_flags_follow_the_status() {
        let mut s = ContainerState::created();
        assert!(!s.running() && !s.paused() && !s.restarting());
        s.started(42, now());
        assert!(s.running() && !s.paused());
        s.pause().unwrap();
        assert!(s.running() && s.paused(), "a paused process still runs");
        s.thawed();
        assert_eq!(s.status, Status::Running);
        s.exited(3, false, now());
        assert!(!s.running() && !s.paused());
        assert_eq!((s.pid, s.exit_code), (0, 3));
        s.restart_pending();
        assert!(s.restarting() && !s.running());
    }

    #[test]
    fn a_start_clears_the_last_runs_outcome() {
        let mut s = ContainerState::created();
        s.start_failed("exec: nope".into());
        assert_eq!((s.status, s.exit_code), (Status::Created, 128));
        s.started(7, now());
        s.exited(137, true, "2026-12-06T00:00:01Z".into());
        s.started(8, "2026-12-06T00:00:02Z".into());
        assert_eq!(s.status, Status::Running);
        assert_eq!((s.pid, s.exit_code, s.oom_killed), (8, 0, false));
        assert!(s.error.is_empty());
        assert_eq!(s.finished_at, ZERO_TIME);
        assert_eq!(s.started_at, "2026-12-06T00:00:02Z");
    }

    #[test]
    fn adoption_keeps_the_start_time_of_a_running_container() {
        let mut s = ContainerState::created();
        s.started(7, "2026-12-06T00:00:00Z".into());
        s.adopted(7, "2026-12-06T01:00:00Z".into());
        assert_eq!(s.started_at, "2026-12-06T00:00:00Z");
        // A start cut short by a crash: the record never said running.
        let mut s = ContainerState::created();
        s.adopted(9, "2026-12-06T01:00:00Z".into());
        assert_eq!((s.status, s.pid), (Status::Running, 9));
        assert_eq!(s.started_at, "2026-12-06T01:00:00Z");
    }

    #[test]
    fn pause_and_unpause_refuse_as_docker_does() {
        let mut s = ContainerState::created();
        assert_eq!(s.pause(), Err(Refusal::NotRunning));
        assert_eq!(s.can_unpause(), Err(Refusal::NotPaused));
        s.started(1, now());
        assert_eq!(s.can_unpause(), Err(Refusal::NotPaused));
        s.pause().unwrap();
        assert_eq!(s.pause(), Err(Refusal::AlreadyPaused));
        assert_eq!(s.can_unpause(), Ok(()));
        s.exited(0, false, now());
        assert_eq!(s.pause(), Err(Refusal::NotRunning));
    }

    #[test]
    fn only_an_exit_can_become_a_restart_and_only_a_restart_be_abandoned() {
        let mut s = ContainerState::created();
        s.restart_pending();
        assert_eq!(s.status, Status::Created);
        s.started(1, now());
        s.restart_pending();
        assert_eq!(s.status, Status::Running);
        s.restart_abandoned();
        assert_eq!(s.status, Status::Running);
        s.exited(1, false, now());
        s.restart_pending();
        assert_eq!(s.status, Status::Restarting);
        s.restart_abandoned();
        assert_eq!(s.status, Status::Exited);
    }

    #[test]
    fn records_written_with_the_old_flags_read_back() {
        let old = r#"{"Status":"paused","Running":true,"Paused":true,"Restarting":false,
            "OOMKilled":false,"Dead":false,"Pid":12,"ExitCode":0,"Error":"",
            "StartedAt":"2026-12-06T00:00:00Z","FinishedAt":"0001-01-01T00:00:00Z"}"#;
        let s: ContainerState = serde_json::from_str(old).unwrap();
        assert_eq!((s.status, s.pid), (Status::Paused, 12));
        assert!(s.running() && s.paused());
        let unknown: ContainerState = serde_json::from_str(r#"{"Status":"zombie"}"#).unwrap();
        assert_eq!(unknown.status, Status::Created);
        let written = serde_json::to_value(&s).unwrap();
        assert_eq!(written["Status"], "paused");
        assert!(written.get("Running").is_none(), "derived, not stored");
    }

    #[test]
    fn every_status_reads_back_as_itself() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
        }
    }
}
