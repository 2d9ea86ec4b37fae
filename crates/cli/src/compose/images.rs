//! `compose pull`, `compose push` and the images `down --rmi` removes.

use std::io::Read;

use super::{image_of, load, progress, ProjectOptions};
use crate::client::{Client, RequestBody};
use crate::registry::transfer_silently;
use crate::{fail, CmdResult, Failure};
use berth_compose::Project;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub services: Vec<String>,
    pub quiet: bool,
    pub ignore_pull_failures: bool,
    /// Leave out services that have a `build` section.
    pub ignore_buildable: bool,
}

/// Which images `down --rmi` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveImages {
    /// Only images named after the project (services without `image`).
    Local,
    /// Every image a service uses.
    All,
}

impl std::str::FromStr for RemoveImages {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Self::Local),
            "all" => Ok(Self::All),
            other => Err(format!("invalid --rmi option {other:?}: only local or all")),
        }
    }
}

fn selected<'a>(
    project: &'a Project,
    services: &'a [String],
) -> Result<impl Iterator<Item = (&'a String, &'a berth_compose::Service)>, Failure> {
    if let Some(unknown) = services.iter().find(|s| !project.services.contains_key(*s)) {
        return Err(fail(format!("no such service: {unknown}")));
    }
    Ok(project
        .services
        .iter()
        .filter(move |(name, _)| services.is_empty() || services.contains(name)))
}

/// `compose pull`: every service's image from its registry. A service that
/// only builds (no `image`) has nothing to pull; one that builds and names an
/// image may fail to pull (it will be built), as compose treats it.
pub fn pull(client: &Client, popts: &ProjectOptions, opts: &PullOptions) -> CmdResult {
    let project = load(popts)?;
    let mut failed = Vec::new();
    for (name, service) in selected(&project, &opts.services)? {
        let Some(image) = &service.image else {
            if !opts.quiet {
                progress("Service", name, "Skipped - No image to be pulled");
            }
            continue;
        };
        if opts.ignore_buildable && service.build.is_some() {
            if !opts.quiet {
                progress("Service", name, "Skipped - Image can be built");
            }
            continue;
        }
        match transfer_silently(client, image, false) {
            Ok(()) => {
                if !opts.quiet {
                    progress("Service", name, "Pulled");
                }
            }
            Err(e) if service.build.is_some() || opts.ignore_pull_failures => {
                eprintln!(" ! {name} Warning {}", e.message);
            }
            Err(e) => {
                eprintln!(" \u{2718} {name} Error {}", e.message);
                failed.push(name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(fail(format!("failed to pull: {}", failed.join(", "))))
    }
}

/// `compose push`: the images of the services that build one and name it.
pub fn push(
    client: &Client,
    popts: &ProjectOptions,
    services: &[String],
    ignore_push_failures: bool,
    quiet: bool,
) -> CmdResult {
    let project = load(popts)?;
    for (_, service) in selected(&project, services)? {
        // As compose: only what is built, and only under a name the file
        // gives (the default `<project>-<service>` has nowhere to go).
        let (Some(image), Some(_)) = (&service.image, &service.build) else {
            continue;
        };
        match transfer_silently(client, image, true) {
            Ok(()) => {
                if !quiet {
                    progress("Image", image, "Pushed");
                }
            }
            Err(e) if ignore_push_failures => eprintln!(" ! {image} Warning {}", e.message),
            Err(e) => return Err(fail(format!("push {image}: {}", e.message))),
        }
    }
    Ok(0)
}

/// The images `down --rmi` takes away, once each; an image still used
/// elsewhere stays, with a warning, as compose leaves it.
pub(super) fn remove(client: &Client, project: &Project, which: RemoveImages) -> CmdResult {
    let mut names: Vec<String> = project
        .services
        .iter()
        .filter(|(_, s)| which == RemoveImages::All || s.image.is_none())
        .map(|(name, s)| image_of(project, name, s))
        .collect();
    names.sort();
    names.dedup();
    for image in names {
        let resp = client.request("DELETE", &format!("/images/{image}"), RequestBody::None)?;
        match resp.status {
            200..=299 => progress("Image", &image, "Removed"),
            404 => {}
            _ => {
                let mut body = String::new();
                let mut reader = resp.body;
                let _ = reader.read_to_string(&mut body);
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(String::from))
                    .unwrap_or(body);
                eprintln!(" ! Image {image} Warning {}", message.trim());
            }
        }
    }
    Ok(0)
}
