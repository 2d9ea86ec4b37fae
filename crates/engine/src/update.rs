//! `update`: new limits for a container, checked as at create, applied to
//! its cgroup at once if it runs, and kept for its next start.

use crate::model::{HostSettings, ResourceUpdate, RestartPolicy};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// `update`: new limits for a container, applied to its cgroup at once if it
    /// runs, and kept for its next start.
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn update_container(&self, reference: &str, u: ResourceUpdate) -> Result<()> {
        let c = self.container(reference)?;
        if let Some(p) = u.restart_policy {
            if c.host_config.auto_remove && p != RestartPolicy::No {
                return Err(EngineError::InvalidArgument(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
        }
        let change = |h: &mut HostSettings| {
            if let Some(m) = u.memory {
                h.resources.memory = m;
            }
            if let Some(m) = u.memory_swap {
                h.resources.memory_swap = m;
            }
            if let Some(n) = u.nano_cpus {
                h.resources.nano_cpus = n;
            }
            if let Some(s) = u.cpu_shares {
                h.resources.cpu_shares = s;
            }
            if let Some(q) = u.cpu_quota {
                h.resources.cpu_quota = q;
            }
            if let Some(p) = u.cpu_period {
                h.resources.cpu_period = p;
            }
            if let Some(p) = u.pids_limit {
                h.resources.pids_limit = p;
            }
            if let Some(p) = u.restart_policy {
                h.restart_policy = p;
            }
        };
        // The result is checked as a create would check it.
        let mut merged = c.host_config.clone();
        change(&mut merged);
        crate::validate::resources(&merged.resources)?;
        let cpu = match (u.nano_cpus, u.cpu_quota, u.cpu_period) {
            (Some(n), _, _) => Some((n.saturating_mul(100_000) / 1_000_000_000, 100_000)),
            (None, Some(q), p) => Some((q, p.filter(|p| *p > 0).unwrap_or(100_000) as u64)),
            _ => None,
        };
        let limits = berth_runtime::cgroups::Limits {
            memory: u.memory,
            cpu,
            cpu_shares: u.cpu_shares.filter(|s| *s > 0).map(|s| s as u64),
            pids: u.pids_limit,
        };
        if c.state.running() {
            // A container that exits during the update takes its cgroup with
            // it (the monitor answers `exited`); as dockerd, the update then
            // holds for the next start.
            self.update_cgroup(&c, limits).await?;
        }
        let c = self.update(&c.id, |r| change(&mut r.host_config))?;
        self.emit_container("update", &c);
        Ok(())
    }
}
