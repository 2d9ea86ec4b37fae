//! `compose wait`: blocks until the first container of the services stops.

use std::sync::mpsc;

use super::{down, load, service_containers, DownOptions, ProjectOptions};
use crate::client::Client;
use crate::{fail, CmdResult};

/// Waits on every container of `services` at once; the first to stop gives
/// the exit code. With `down_project`, the project is then taken down.
pub fn wait(
    client: &Client,
    popts: &ProjectOptions,
    services: &[String],
    down_project: bool,
) -> CmdResult {
    let project = load(popts)?;
    if services.is_empty() {
        return Err(fail("requires at least 1 argument"));
    }
    let containers = service_containers(client, &project, services, false)?;
    if containers.is_empty() {
        return Err(fail(format!(
            "no containers for project \"{}\"",
            project.name
        )));
    }
    let (tx, rx) = mpsc::channel();
    for (id, name) in containers {
        let tx = tx.clone();
        let client = client.clone();
        // Detached: the losers of the race block on berthd until the process ends.
        std::thread::spawn(move || {
            let outcome = client
                .post(&format!("/containers/{id}/wait"))
                .map(|v| v["StatusCode"].as_i64().unwrap_or(0))
                .map_err(|e| format!("{name}: {e}"));
            let _ = tx.send(outcome);
        });
    }
    drop(tx);
    let code = rx
        .recv()
        .map_err(|_| fail("no container answered"))?
        .map_err(fail)?;
    if down_project {
        down(client, popts, &DownOptions::default())?;
    }
    Ok(i32::try_from(code).unwrap_or(1))
}
