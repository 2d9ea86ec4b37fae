//! `kill`, `stop` and `restart`: signals to a container's process, docker's
//! stop sequence (the stop signal, then SIGKILL after the timeout).

use crate::control::Delivery;
use crate::{Engine, EngineError, Result};
use std::sync::Arc;
use std::time::Duration;

/// docker's stop timeout when neither the request nor the container sets one.
const DEFAULT_STOP_TIMEOUT: i64 = 10;

pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal> {
    use std::str::FromStr;
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| EngineError::InvalidArgument(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map_err(|_| EngineError::InvalidArgument(format!("Invalid signal: {s}")))
}

impl Engine {
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference, signal = %signal))]
    pub async fn kill_container(self: &Arc<Self>, reference: &str, signal: &str) -> Result<()> {
        let sig = parse_signal(signal)?;
        let c = self.container(reference)?;
        if !c.state.running() || c.state.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if matches!(sig, nix::sys::signal::Signal::SIGKILL) {
            self.set_manually_stopped(&c.id)?;
        }
        if self.signal_container(&c, sig).await? == Delivery::Exited {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if c.state.paused() {
            self.thaw(&c).await?;
        }
        // Like docker, a SIGKILL returns once the container is down, so that an
        // `rm` right after `kill` finds it stopped.
        if matches!(sig, nix::sys::signal::Signal::SIGKILL) {
            self.wait_not_running(&c.id, Some(Duration::from_secs(10)))
                .await;
        }
        Ok(())
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout` seconds.
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn stop_container(
        self: &Arc<Self>,
        reference: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.container(reference)?;
        self.set_manually_stopped(&c.id)?;
        if !c.state.running() {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        let timeout = timeout
            .or(c.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        let signal = signal
            .map(str::to_string)
            .or_else(|| c.config.stop_signal.clone())
            .unwrap_or_else(|| "TERM".into());
        let sig = parse_signal(&signal)?;
        if let Err(e) = self.signal_container(&c, sig).await {
            tracing::warn!(id = %c.id, error = %e.chain(), "stop signal not delivered");
        }
        if c.state.paused() {
            self.thaw(&c).await?;
        }
        let limit = if timeout < 0 {
            None
        } else {
            Some(Duration::from_secs(timeout as u64))
        };
        if !self.wait_not_running(&c.id, limit).await {
            if let Err(e) = self
                .signal_container(&c, nix::sys::signal::Signal::SIGKILL)
                .await
            {
                tracing::warn!(id = %c.id, error = %e.chain(), "SIGKILL not delivered");
            }
            self.wait_not_running(&c.id, None).await;
        }
        Ok(())
    }

    #[tracing::instrument(level = "info", skip_all, fields(container = %reference))]
    pub async fn restart_container(
        self: &Arc<Self>,
        reference: &str,
        timeout: Option<i64>,
    ) -> Result<()> {
        match self.stop_container(reference, timeout, None).await {
            Ok(()) | Err(EngineError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        self.start_container(reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(
            parse_signal("KILL").unwrap(),
            nix::sys::signal::Signal::SIGKILL
        );
        assert_eq!(
            parse_signal("sigterm").unwrap(),
            nix::sys::signal::Signal::SIGTERM
        );
        assert_eq!(
            parse_signal("9").unwrap(),
            nix::sys::signal::Signal::SIGKILL
        );
        assert!(parse_signal("NOPE").is_err());
    }
}
