//! `pause` / `unpause`: the container's cgroup frozen and thawed (the freezer
//! on v1, `cgroup.freeze` on v2), by the container's monitor.

use crate::control::Delivery;
use crate::state::Refusal;
use crate::{ContainerRecord, Engine, EngineError, Result};

/// docker's 409 for a refused transition.
fn refused(c: &ContainerRecord, refusal: Refusal) -> EngineError {
    let what = match refusal {
        Refusal::NotRunning => "is not running",
        Refusal::AlreadyPaused => "is already paused",
        Refusal::NotPaused => "is not paused",
    };
    EngineError::Conflict(format!("Container {} {what}", c.id))
}

impl Engine {
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn pause_container(&self, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        c.state.can_pause().map_err(|r| refused(&c, r))?;
        if self.freeze_container(&c, true).await? == Delivery::Exited {
            return Err(refused(&c, Refusal::NotRunning));
        }
        let mut refusal = None;
        let c = self.update(&c.id, |r| refusal = r.state.pause().err())?;
        if let Some(r) = refusal {
            // It exited (or was paused by another request) while being frozen.
            return Err(refused(&c, r));
        }
        self.emit_container("pause", &c);
        Ok(())
    }

    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn unpause_container(&self, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        c.state.can_unpause().map_err(|r| refused(&c, r))?;
        self.thaw(&c).await?;
        if let Ok(c) = self.container(&c.id) {
            self.emit_container("unpause", &c);
        }
        Ok(())
    }

    /// Thaws a paused container; a frozen process cannot act on signals under
    /// cgroup v1, so stop and kill thaw after signalling.
    pub(crate) async fn thaw(&self, c: &ContainerRecord) -> Result<()> {
        self.freeze_container(c, false).await?;
        self.update(&c.id, |r| r.state.thawed())?;
        Ok(())
    }
}
