//! Restart policies: whether a container that just exited starts again, and
//! after how long (docker's rules, kept apart from the machinery that acts on
//! them so that they are tested without a container).

use std::time::Duration;

use crate::model::{ContainerRecord, RestartPolicy};

/// What to do about a container that exited with `exit_code` at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterExit {
    /// It stays stopped.
    Stay,
    /// Start it again after `delay`; `restart_count` is its new count.
    Restart { delay: Duration, restart_count: i64 },
}

/// A container that ran longer than this starts its back-off count afresh (docker's 10 s).
const RAN_LONG: chrono::Duration = chrono::Duration::seconds(10);
/// The back-off never grows past a minute.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// docker's decision: `always` and `unless-stopped` restart unless a user
/// stopped the container; `on-failure[:N]` restarts on a non-zero exit while
/// fewer than N restarts were made (any number when N is 0). The delay is
/// 100 ms doubling per consecutive restart, capped at a minute.
pub(crate) fn after_exit(
    record: &ContainerRecord,
    exit_code: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> AfterExit {
    let restart = !record.manually_stopped
        && match record.host_config.restart_policy {
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                exit_code != 0 && (max_retries == 0 || record.restart_count < max_retries)
            }
            RestartPolicy::No => false,
        };
    if !restart {
        return AfterExit::Stay;
    }
    let ran_long = chrono::DateTime::parse_from_rfc3339(&record.state.started_at)
        .map(|t| now.signed_duration_since(t) > RAN_LONG)
        .unwrap_or(false);
    let count = if ran_long { 0 } else { record.restart_count };
    let delay =
        Duration::from_millis(100u64.saturating_mul(1 << count.clamp(0, 10) as u64)).min(MAX_DELAY);
    AfterExit::Restart {
        delay,
        restart_count: count + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContainerConfig, ContainerState, HostSettings};

    fn exited(
        policy: &str,
        retries: i64,
        restart_count: i64,
        ran_for_secs: i64,
    ) -> (ContainerRecord, chrono::DateTime<chrono::Utc>) {
        let started = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let record = ContainerRecord {
            id: "c".into(),
            name: "c".into(),
            created: String::new(),
            image_id: String::new(),
            config: ContainerConfig::default(),
            host_config: HostSettings {
                restart_policy: RestartPolicy::parse(policy, retries).unwrap(),
                ..Default::default()
            },
            state: ContainerState {
                started_at: started.to_rfc3339(),
                ..ContainerState::created()
            },
            restart_count,
            manually_stopped: false,
            mounts: Vec::new(),
            networks: Default::default(),
            ports: Default::default(),
            mac_address: String::new(),
        };
        (record, started + chrono::Duration::seconds(ran_for_secs))
    }

    fn restarts(policy: &str, retries: i64, count: i64, code: i32) -> bool {
        let (r, now) = exited(policy, retries, count, 1);
        after_exit(&r, code, now) != AfterExit::Stay
    }

    #[test]
    fn which_policies_restart() {
        for code in [0, 1, 137] {
            assert!(!restarts("", 0, 0, code));
            assert!(!restarts("no", 0, 0, code));
            assert!(restarts("always", 0, 0, code));
            assert!(restarts("unless-stopped", 0, 0, code));
        }
        assert!(
            !restarts("on-failure", 0, 0, 0),
            "a clean exit is not a failure"
        );
        assert!(restarts("on-failure", 0, 50, 1), "0 retries means no limit");
        assert!(restarts("on-failure", 3, 2, 1));
        assert!(!restarts("on-failure", 3, 3, 1), "the limit reached");
    }

    #[test]
    fn a_user_stop_wins_over_every_policy() {
        for policy in ["always", "unless-stopped", "on-failure"] {
            let (mut r, now) = exited(policy, 0, 0, 1);
            r.manually_stopped = true;
            assert_eq!(after_exit(&r, 1, now), AfterExit::Stay, "{policy}");
        }
    }

    #[test]
    fn back_off_doubles_caps_at_a_minute_and_resets_after_a_long_run() {
        let delay_after = |count: i64, ran: i64| {
            let (r, now) = exited("always", 0, count, ran);
            match after_exit(&r, 1, now) {
                AfterExit::Restart {
                    delay,
                    restart_count,
                } => (delay, restart_count),
                AfterExit::Stay => panic!("always restarts"),
            }
        };
        assert_eq!(delay_after(0, 1), (Duration::from_millis(100), 1));
        assert_eq!(delay_after(1, 1), (Duration::from_millis(200), 2));
        assert_eq!(delay_after(4, 1), (Duration::from_millis(1600), 5));
        assert_eq!(delay_after(12, 1).0, MAX_DELAY);
        assert_eq!(
            delay_after(7, 11),
            (Duration::from_millis(100), 1),
            "ran 11 s: afresh"
        );
        let (mut r, now) = exited("always", 0, 3, 1);
        r.state.started_at = "not a time".into();
        assert!(matches!(
            after_exit(&r, 0, now),
            AfterExit::Restart {
                restart_count: 4,
                ..
            }
        ));
    }
}
