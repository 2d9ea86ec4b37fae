//! `compose cp`: `docker cp` with a service in place of a container.

use super::{load, service_containers, ProjectOptions};
use crate::client::Client;
use crate::{fail, CmdResult};

/// `SERVICE:PATH` on either side (not both). Copying into a service goes to
/// every container of it unless `index` names one; copying out reads the
/// container `index` (the first when 0), as compose does.
pub fn cp(client: &Client, popts: &ProjectOptions, src: &str, dest: &str, index: u32) -> CmdResult {
    let project = load(popts)?;
    // A local path may hold a colon only after a slash (`./a:b`), as docker reads it.
    let service_of = |arg: &str| -> Option<(String, String)> {
        if arg.starts_with('/') || arg.starts_with('.') || arg == "-" {
            return None;
        }
        let (service, path) = arg.split_once(':')?;
        Some((service.to_string(), path.to_string()))
    };
    let containers_of = |service: &str| {
        service_containers(client, &project, &[service.to_string()], false).and_then(|all| {
            if all.is_empty() {
                Err(fail(format!(
                    "no container found for service \"{service}\""
                )))
            } else {
                Ok(all)
            }
        })
    };
    match (service_of(src), service_of(dest)) {
        (Some(_), Some(_)) => Err(fail("copying between services is not supported")),
        (None, None) => Err(fail("must specify at least one container source")),
        (Some((service, path)), None) => {
            let all = containers_of(&service)?;
            let at = index.saturating_sub(1) as usize;
            let (id, _) = all.get(at).ok_or_else(|| {
                fail(format!(
                    "service \"{service}\" is not running container #{index}"
                ))
            })?;
            crate::copy::cp(client, &format!("{id}:{path}"), dest)
        }
        (None, Some((service, path))) => {
            let all = containers_of(&service)?;
            let chosen: Vec<_> = if index == 0 {
                all
            } else {
                let at = index as usize - 1;
                vec![all.get(at).cloned().ok_or_else(|| {
                    fail(format!(
                        "service \"{service}\" is not running container #{index}"
                    ))
                })?]
            };
            for (id, _) in chosen {
                let code = crate::copy::cp(client, src, &format!("{id}:{path}"))?;
                if code != 0 {
                    return Ok(code);
                }
            }
            Ok(0)
        }
    }
}
