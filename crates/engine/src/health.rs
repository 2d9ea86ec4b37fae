//! Health checks: what docker's `HEALTHCHECK` and `--health-*` settings mean for
//! a container, handed to its monitor at start (the monitor runs the probes, see
//! `berth-monitor`'s `health.rs`), and what berthd does with the reports: keeps
//! `State.Health` for inspect and `ps`, and emits `health_status: ...` events.

use std::path::Path;
use std::time::Duration;

use berth_monitor::{Health, HealthProbe};

use crate::model::{ContainerRecord, Healthcheck};
use crate::{Engine, EngineError, Result};

/// docker's defaults for a check that leaves them at 0.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;

/// The probe's process file in a container's bundle.
const PROBE_PROCESS: &str = "health-process.json";

/// docker's create-time merge: the container's check, with the image's filling
/// what it leaves out (an empty `Test`, zero durations and retries).
pub(crate) fn merge(container: &mut Option<Healthcheck>, image: Option<&Healthcheck>) {
    let Some(image) = image else { return };
    let Some(own) = container else {
        *container = Some(image.clone());
        return;
    };
    if own.test.is_empty() {
        own.test = image.test.clone();
    }
    for (mine, theirs) in [
        (&mut own.interval, image.interval),
        (&mut own.timeout, image.timeout),
        (&mut own.start_period, image.start_period),
        (&mut own.start_interval, image.start_interval),
        (&mut own.retries, image.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
}

/// The argv a probe runs, or None when the container has no active check.
/// `CMD-SHELL` runs under the container's `SHELL` (default `/bin/sh -c`), as
/// docker's daemon runs it.
pub(crate) fn probe_command(
    check: Option<&Healthcheck>,
    shell: &[String],
) -> Result<Option<Vec<String>>> {
    let Some(check) = check else { return Ok(None) };
    match check.test.first().map(String::as_str) {
        None | Some("NONE") => Ok(None),
        Some("CMD") if check.test.len() > 1 => Ok(Some(check.test[1..].to_vec())),
        Some("CMD-SHELL") if check.test.len() == 2 => {
            let mut argv = if shell.is_empty() {
                vec!["/bin/sh".to_string(), "-c".to_string()]
            } else {
                shell.to_vec()
            };
            argv.push(check.test[1].clone());
            Ok(Some(argv))
        }
        _ => Err(EngineError::InvalidArgument(format!(
            "invalid Healthcheck.Test {:?}: expected [\"NONE\"], [\"CMD\", args...] or [\"CMD-SHELL\", command]",
            check.test
        ))),
    }
}

/// The checks docker makes of the durations and retries at create.
pub(crate) fn validate(check: Option<&Healthcheck>) -> Result<()> {
    let Some(check) = check else { return Ok(()) };
    probe_command(Some(check), &[])?;
    let min = 1_000_000; // 1 ms, docker's minimum
    for (name, value) in [
        ("Interval", check.interval),
        ("Timeout", check.timeout),
        ("StartPeriod", check.start_period),
        ("StartInterval", check.start_interval),
    ] {
        if value != 0 && value < min {
            return Err(EngineError::InvalidArgument(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if check.retries < 0 {
        return Err(EngineError::InvalidArgument(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

fn or_default(ns: i64, default: Duration) -> u64 {
    if ns > 0 {
        (ns / 1_000_000).max(1) as u64
    } else {
        default.as_millis() as u64
    }
}

impl Engine {
    /// At start: the probe for the monitor to run (writing its process file next
    /// to `config.json`), or None.
    pub(crate) fn health_probe(
        &self,
        c: &ContainerRecord,
        bundle: &Path,
    ) -> Result<Option<HealthProbe>> {
        let check = c.config.healthcheck.as_ref();
        let shell = if c.config.shell.is_empty() {
            self.image(&c.image_id)
                .map(|i| i.config.config.shell)
                .unwrap_or_default()
        } else {
            c.config.shell.clone()
        };
        let Some(argv) = probe_command(check, &shell)? else {
            return Ok(None);
        };
        let Some(check) = check else { return Ok(None) };
        let spec_path = bundle.join("config.json");
        let mut process = berth_runtime::container_process(&spec_path)
            .map_err(|e| EngineError::runtime(format!("health check of container {}", c.id), e))?;
        process.set_args(Some(argv));
        process.set_terminal(Some(false));
        let path = bundle.join(PROBE_PROCESS);
        let bytes = serde_json::to_vec(&process)
            .map_err(|e| EngineError::json("encode probe process", e))?;
        std::fs::write(&path, bytes).map_err(|e| EngineError::at("write", &path, e))?;
        let rel = self.cgroups_path(c);
        let freezer = if berth_runtime::cgroups::is_unified() {
            berth_runtime::cgroups::dir("", &rel).join("cgroup.freeze")
        } else {
            berth_runtime::cgroups::dir("freezer", &rel).join("freezer.state")
        };
        Ok(Some(HealthProbe {
            process_json: path,
            interval_ms: or_default(check.interval, DEFAULT_INTERVAL),
            timeout_ms: or_default(check.timeout, DEFAULT_TIMEOUT),
            start_period_ms: or_default(check.start_period, Duration::ZERO),
            start_interval_ms: or_default(check.start_interval, DEFAULT_START_INTERVAL),
            retries: if check.retries > 0 {
                u32::try_from(check.retries).unwrap_or(u32::MAX)
            } else {
                DEFAULT_RETRIES
            },
            freezer_file: Some(freezer),
        }))
    }

    /// A report from the monitor: kept in memory (it is the monitor's to know,
    /// and it tells again whenever berthd reconnects), with an event when the
    /// status changes.
    pub(crate) fn record_health(&self, id: &str, health: Health) {
        let changed = {
            let mut st = self.lock();
            let Some(c) = st.containers.get_mut(id) else {
                return;
            };
            let before = c.state.health.as_ref().map(|h| h.status.clone());
            let changed = before.as_deref() != Some(health.status.as_str());
            c.state.health = Some(health);
            changed.then(|| c.clone())
        };
        if let Some(record) = changed {
            let status = record
                .state
                .health
                .as_ref()
                .map(|h| h.status.clone())
                .unwrap_or_default();
            // docker's action carries the status: "health_status: healthy".
            self.emit_container(&format!("health_status: {status}"), &record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(test: &[&str]) -> Healthcheck {
        Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_image_fills_what_the_container_leaves_out() {
        let image = Healthcheck {
            interval: 5_000_000_000,
            retries: 7,
            ..check(&["CMD", "true"])
        };
        let mut none = None;
        merge(&mut none, Some(&image));
        assert_eq!(none.as_ref(), Some(&image));
        let mut own = Some(Healthcheck {
            timeout: 2_000_000_000,
            ..Default::default()
        });
        merge(&mut own, Some(&image));
        let own = own.expect("merged");
        assert_eq!(own.test, ["CMD", "true"]);
        assert_eq!(
            (own.interval, own.timeout, own.retries),
            (5_000_000_000, 2_000_000_000, 7)
        );
        let mut disabled = Some(check(&["NONE"]));
        merge(&mut disabled, Some(&image));
        assert_eq!(probe_command(disabled.as_ref(), &[]).ok(), Some(None));
    }

    #[test]
    fn test_forms_become_argv() {
        assert_eq!(
            probe_command(Some(&check(&["CMD", "curl", "-f", "x"])), &[]).ok(),
            Some(Some(vec!["curl".to_string(), "-f".into(), "x".into()]))
        );
        assert_eq!(
            probe_command(Some(&check(&["CMD-SHELL", "exit 1"])), &[]).ok(),
            Some(Some(vec![
                "/bin/sh".to_string(),
                "-c".into(),
                "exit 1".into()
            ]))
        );
        assert!(probe_command(Some(&check(&["CMD"])), &[]).is_err());
        assert!(probe_command(Some(&check(&["BOGUS", "x"])), &[]).is_err());
        assert!(validate(Some(&Healthcheck {
            interval: 10,
            ..check(&["CMD", "true"])
        }))
        .is_err());
        assert!(validate(Some(&Healthcheck {
            retries: -1,
            ..check(&["CMD", "true"])
        }))
        .is_err());
    }
}
