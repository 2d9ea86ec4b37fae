//! `berth cp`: docker's copy rules over the archive endpoints.
//!
//! Container → host: `GET /containers/{id}/archive` gives a tar whose top entry is
//! named after the source; it is unpacked under the destination's rules (into an
//! existing directory, or renamed to a destination that does not exist yet).
//! Host → container: `HEAD` says what the destination is, then a tar built with the
//! right top-level name is `PUT` into the directory that receives it.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::client::{encode_query, Client, RequestBody};
use crate::{fail, CmdResult, Failure};

/// `CONTAINER:PATH`, or a local path (`-` for a tar on stdin/stdout).
enum Location {
    Container(String, String),
    Local(String),
}

fn parse(arg: &str) -> Location {
    // A local path containing ':' must start with '/' or '.' (docker's rule).
    if arg.starts_with('/') || arg.starts_with('.') {
        return Location::Local(arg.into());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => Location::Container(c.into(), p.into()),
        _ => Location::Local(arg.into()),
    }
}

/// The stat docker sends base64-encoded in `X-Docker-Container-Path-Stat`.
struct RemoteStat {
    is_dir: bool,
}

fn decode_stat(header: Option<&str>) -> Option<RemoteStat> {
    let stat = berth_api_types::PathStat::from_header(header?)?;
    // A symlink is not a directory: what it leads to decides, reported apart.
    Some(RemoteStat {
        is_dir: stat.is_dir(),
    })
}

fn path_query(path: &str) -> String {
    encode_query(&[("path", path.to_string())])
}

pub fn cp(client: &Client, src: &str, dest: &str) -> CmdResult {
    match (parse(src), parse(dest)) {
        (Location::Container(c, p), Location::Local(l)) => copy_from(client, &c, &p, &l),
        (Location::Local(l), Location::Container(c, p)) => copy_to(client, &l, &c, &p),
        (Location::Container(..), Location::Container(..)) => {
            Err(fail("copying between containers is not supported"))
        }
        (Location::Local(..), Location::Local(..)) => {
            Err(fail("must specify at least one container source"))
        }
    }
}

fn copy_from(client: &Client, container: &str, path: &str, local: &str) -> CmdResult {
    let mut resp = client.call(
        "GET",
        &format!("/containers/{container}/archive{}", path_query(path)),
        RequestBody::None,
    )?;
    if local == "-" {
        io::copy(&mut resp.body, &mut io::stdout().lock())?;
        return Ok(0);
    }
    let stat = decode_stat(resp.header("X-Docker-Container-Path-Stat"));
    let src_is_dir = stat.as_ref().is_some_and(|s| s.is_dir);
    let dest = Path::new(local);
    let dest_exists = dest.exists();
    let dest_is_dir = dest.is_dir();
    if !dest_exists && (local.ends_with('/') || local.ends_with("/.")) {
        return Err(fail(format!(
            "destination directory {local} does not exist"
        )));
    }
    if src_is_dir && dest_exists && !dest_is_dir {
        return Err(fail(format!("cannot copy a directory to a file: {local}")));
    }
    // Where the archive's top entry lands.
    let contents_only = path.ends_with("/.");
    let (root, rename): (PathBuf, Option<PathBuf>) = if dest_is_dir {
        (dest.to_path_buf(), None)
    } else {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !parent.is_dir() {
            return Err(fail(format!(
                "destination directory {} does not exist",
                parent.display()
            )));
        }
        (parent, dest.file_name().map(PathBuf::from))
    };
    if contents_only && !dest_exists {
        std::fs::create_dir_all(dest)?;
    }
    let mut archive = tar::Archive::new(resp.body);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let mut parts = name
            .components()
            .filter(|c| !matches!(c, Component::CurDir));
        let rel: PathBuf = if contents_only {
            name.components()
                .filter(|c| !matches!(c, Component::CurDir))
                .collect()
        } else {
            let Some(top) = parts.next() else { continue };
            let rest: PathBuf = parts.collect();
            let top = match &rename {
                Some(r) => r.clone(),
                None => PathBuf::from(top.as_os_str()),
            };
            if rest.as_os_str().is_empty() {
                top
            } else {
                top.join(rest)
            }
        };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(fail(format!("refusing archive entry {}", name.display())));
        }
        let base = if contents_only {
            dest.to_path_buf()
        } else {
            root.clone()
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = base.join(&rel);
        // A symlink unpacked earlier must not carry later entries out of `base`.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
            let real_parent = std::fs::canonicalize(parent)?;
            let real_base = std::fs::canonicalize(&base)?;
            if !real_parent.starts_with(&real_base) {
                return Err(fail(format!(
                    "refusing archive entry {} (leads outside {})",
                    name.display(),
                    base.display()
                )));
            }
        }
        entry.unpack(&target)?;
    }
    Ok(0)
}

fn copy_to(client: &Client, local: &str, container: &str, path: &str) -> CmdResult {
    let head = client.call(
        "HEAD",
        &format!("/containers/{container}/archive{}", path_query(path)),
        RequestBody::None,
    );
    let dest_stat = match head {
        Ok(r) => decode_stat(r.header("X-Docker-Container-Path-Stat")),
        Err(crate::client::ClientError::Api { status: 404, .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if local == "-" {
        if !dest_stat.as_ref().is_some_and(|s| s.is_dir) {
            return Err(fail(format!(
                "destination \"{container}:{path}\" must be a directory"
            )));
        }
        return put(client, container, path, &mut io::stdin().lock());
    }
    let src = Path::new(local);
    let meta = std::fs::symlink_metadata(src).map_err(|e| fail(format!("stat {local}: {e}")))?;
    let contents_only = local.ends_with("/.");
    let (target_dir, top_name): (String, String) = match &dest_stat {
        Some(s) if s.is_dir => (
            path.to_string(),
            src.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into()),
        ),
        Some(_) if meta.is_dir() => {
            return Err(fail(format!(
                "cannot copy a directory to a file: {container}:{path}"
            )))
        }
        _ => {
            if path.ends_with('/') && dest_stat.is_none() {
                return Err(fail(format!(
                    "destination directory {container}:{path} does not exist"
                )));
            }
            let p = Path::new(path);
            let parent = p
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| fail(format!("invalid destination {path}")))?;
            (parent, name)
        }
    };
    // Build the tar in memory-bounded fashion through a pipe: a thread writes it.
    let (mut reader, writer) = pipe()?;
    let src_owned = src.to_path_buf();
    let is_dir = meta.is_dir();
    let builder_thread = std::thread::spawn(move || -> io::Result<()> {
        let mut b = tar::Builder::new(writer);
        b.follow_symlinks(false);
        if is_dir {
            if contents_only {
                b.append_dir_all(".", &src_owned)?;
            } else {
                b.append_dir_all(&top_name, &src_owned)?;
            }
        } else {
            b.append_path_with_name(&src_owned, &top_name)?;
        }
        b.into_inner()?.flush()
    });
    let result = put(client, container, &target_dir, &mut reader);
    drop(reader);
    let built = builder_thread
        .join()
        .map_err(|_| fail("archive builder panicked"))?;
    let code = result?;
    built.map_err(|e| fail(format!("read {local}: {e}")))?;
    Ok(code)
}

fn put(client: &Client, container: &str, dir: &str, body: &mut dyn Read) -> CmdResult {
    client.call(
        "PUT",
        &format!("/containers/{container}/archive{}", path_query(dir)),
        RequestBody::Stream(body, "application/x-tar"),
    )?;
    Ok(0)
}

fn pipe() -> Result<(std::fs::File, std::fs::File), Failure> {
    let (r, w) = nix::unistd::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert!(
            matches!(parse("ctr:/etc"), Location::Container(c, p) if c == "ctr" && p == "/etc")
        );
        assert!(matches!(parse("./a:b"), Location::Local(_)));
        assert!(matches!(parse("-"), Location::Local(_)));
    }
}
