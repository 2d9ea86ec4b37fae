//! `pause` / `unpause`: the container's cgroup frozen and thawed (the freezer
//! on v1, `cgroup.freeze` on v2), by the container's monitor.

use crate::control::Delivery;
use crate::{Engine, EngineError, Result};

impl Engine {
    pub async fn pause_container(&self, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        if !c.state.running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        if self.freeze_container(&c, true).await? == Delivery::Exited {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let c = self.update(&c.id, |r| {
            r.state.paused = true;
            r.state.status = "paused".into();
        })?;
        self.emit_container("pause", &c);
        Ok(())
    }

    pub async fn unpause_container(&self, reference: &str) -> Result<()> {
        let c = self.container(reference)?;
        if !c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.thaw(&c).await?;
        if let Ok(c) = self.container(&c.id) {
            self.emit_container("unpause", &c);
        }
        Ok(())
    }

    /// Thaws a paused container; a frozen process cannot act on signals under
    /// cgroup v1, so stop and kill thaw after signalling.
    pub(crate) async fn thaw(&self, c: &crate::ContainerRecord) -> Result<()> {
        self.freeze_container(c, false).await?;
        self.update(&c.id, |r| {
            r.state.paused = false;
            if r.state.running {
                r.state.status = "running".into();
            }
        })?;
        Ok(())
    }
}
