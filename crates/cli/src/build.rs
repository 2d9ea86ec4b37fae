//! `berth build` and `berth builder prune`: the classic builder protocol (a tar
//! context in, docker's JSON progress stream out).

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use berth_dockerfile::IgnoreMatcher;
use serde_json::Value;

use crate::client::{encode_query, Client, RequestBody};
use crate::containers::confirm;
use crate::{fail, format, CmdResult, Failure};

pub struct BuildArgs {
    pub tags: Vec<String>,
    pub file: Option<String>,
    pub build_args: Vec<String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: Vec<String>,
    pub network: String,
    pub quiet: bool,
    pub memory: Option<String>,
    pub context: String,
}

/// Name under which a Dockerfile from outside the context travels inside it.
const OUTSIDE_DOCKERFILE: &str = ".berth-dockerfile";

pub fn build(client: &Client, args: &BuildArgs) -> CmdResult {
    let mut pairs: Vec<(&str, String)> = args.tags.iter().map(|t| ("t", t.clone())).collect();
    let mut build_args = serde_json::Map::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.into(), Value::String(v.into())),
            // `--build-arg NAME` takes the value from the client's environment.
            None => build_args.insert(
                a.clone(),
                std::env::var(a).map(Value::String).unwrap_or(Value::Null),
            ),
        };
    }
    pairs.push(("buildargs", Value::Object(build_args).to_string()));
    let labels: serde_json::Map<String, Value> = args
        .labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect();
    pairs.push(("labels", Value::Object(labels).to_string()));
    if let Some(t) = &args.target {
        pairs.push(("target", t.clone()));
    }
    if args.no_cache {
        pairs.push(("nocache", "1".into()));
    }
    if args.quiet {
        pairs.push(("q", "1".into()));
    }
    if let Some(m) = &args.memory {
        pairs.push(("memory", crate::run::parse_bytes(m)?.to_string()));
    }
    pairs.push(("networkmode", args.network.clone()));
    pairs.push(("rm", "1".into()));

    let mut resp = if args.context == "-" {
        if let Some(f) = &args.file {
            pairs.push(("dockerfile", f.clone()));
        }
        let path = format!("/build{}", encode_query(&pairs));
        client.call(
            "POST",
            &path,
            RequestBody::Stream(&mut io::stdin().lock(), "application/x-tar"),
        )?
    } else {
        let dir = PathBuf::from(&args.context);
        if !dir.is_dir() {
            return Err(fail(format!(
                "unable to prepare context: path {:?} not found",
                args.context
            )));
        }
        let (dockerfile_in_context, outside) = match &args.file {
            None => ("Dockerfile".to_string(), None),
            Some(f) => {
                let p = Path::new(f);
                let abs = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    std::env::current_dir()?.join(p)
                };
                let ctx_abs = std::fs::canonicalize(&dir)?;
                let file_abs = std::fs::canonicalize(&abs)
                    .map_err(|e| fail(format!("unable to prepare context: {f}: {e}")))?;
                match file_abs.strip_prefix(&ctx_abs) {
                    Ok(rel) => (rel.display().to_string(), None),
                    Err(_) => (OUTSIDE_DOCKERFILE.to_string(), Some(file_abs)),
                }
            }
        };
        pairs.push(("dockerfile", dockerfile_in_context.clone()));
        let ignore = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
        let matcher =
            IgnoreMatcher::new(&ignore).map_err(|e| fail(format!(".dockerignore: {e}")))?;
        let (mut reader, writer) = pipe()?;
        let keep = vec![dockerfile_in_context, ".dockerignore".to_string()];
        let thread = std::thread::spawn(move || -> io::Result<()> {
            let mut tar = tar::Builder::new(writer);
            tar.follow_symlinks(false);
            add_dir(&mut tar, &dir, Path::new(""), &matcher, &keep)?;
            if let Some(f) = outside {
                tar.append_path_with_name(f, OUTSIDE_DOCKERFILE)?;
            }
            tar.into_inner()?.flush()
        });
        let path = format!("/build{}", encode_query(&pairs));
        let resp = client.call(
            "POST",
            &path,
            RequestBody::Stream(&mut reader, "application/x-tar"),
        );
        drop(reader);
        let sent = thread.join().map_err(|_| fail("context writer panicked"))?;
        let resp = resp?;
        sent.map_err(|e| fail(format!("read build context: {e}")))?;
        resp
    };
    let mut failed = false;
    let mut image_id = String::new();
    let mut out = io::stdout().lock();
    for line in BufReader::new(&mut resp.body).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(err) = v["error"].as_str() {
            eprintln!("{err}");
            failed = true;
        } else if let Some(id) = v["aux"]["ID"].as_str() {
            image_id = id.to_string();
        } else if let Some(s) = v["stream"].as_str() {
            if !args.quiet {
                out.write_all(s.as_bytes())?;
                out.flush()?;
            }
        }
    }
    if failed {
        return Ok(1);
    }
    if args.quiet {
        println!("{image_id}");
    }
    Ok(0)
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    ignore: &IgnoreMatcher,
    keep: &[String],
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let child = rel.join(e.file_name());
        let shown = child.display().to_string();
        let meta = std::fs::symlink_metadata(e.path())?;
        let excluded = ignore.is_excluded(&shown) && !keep.contains(&shown);
        if meta.is_dir() {
            if excluded && ignore.can_skip_dir(&shown) {
                continue;
            }
            if !excluded {
                tar.append_dir(&child, e.path())?;
            }
            add_dir(tar, root, &child, ignore, keep)?;
        } else if !excluded {
            tar.append_path_with_name(e.path(), &child)?;
        }
    }
    Ok(())
}

fn pipe() -> Result<(std::fs::File, std::fs::File), Failure> {
    let (r, w) = nix::unistd::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

pub fn prune(client: &Client, all: bool, force: bool) -> CmdResult {
    if !confirm(force, "all dangling build cache")? {
        return Ok(0);
    }
    let path = if all {
        "/build/prune?all=1"
    } else {
        "/build/prune"
    };
    let v = client.post(path)?;
    let deleted = v["CachesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted build cache objects:");
        for d in deleted {
            println!("{}", d.as_str().unwrap_or_default());
        }
    }
    println!(
        "Total reclaimed space: {}",
        format::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}
