//! Which daemon a command talks to, and `berth context`: named endpoints kept
//! where and as the docker CLI keeps its contexts, so that both see the same
//! ones. In `$DOCKER_CONFIG` (or `~/.docker`): `contexts/meta/<sha256 of the
//! name>/meta.json`, the TLS files under `contexts/tls/<sha256>/docker/`, and
//! the current context in `config.json`'s `currentContext`.
//!
//! Precedence, as docker's: `-H` (with the `--tls*` flags), else `--context`,
//! else `BERTH_HOST`, else `BERTH_CONTEXT`, else the current context, else the
//! local socket.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::client::Client;
use crate::registry::{config_dir, read_config, write_config};
use crate::transport::TlsSettings;
use crate::{fail, CmdResult, Failure};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
const DEFAULT_CONTEXT: &str = "default";

/// The global flags that choose a daemon.
pub struct Connection {
    pub host: Option<String>,
    pub context: Option<String>,
    pub tls: bool,
    pub tlsverify: bool,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

impl Connection {
    /// TLS from flags and environment: `BERTH_TLS_VERIFY` (non-empty) means
    /// `--tlsverify`; the files default to `BERTH_CERT_PATH` or the config dir.
    fn tls_settings(&self) -> TlsSettings {
        let dir = std::env::var_os("BERTH_CERT_PATH")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(config_dir);
        let env_verify = std::env::var("BERTH_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
        TlsSettings {
            tls: self.tls,
            verify: self.tlsverify || env_verify,
            ca: self.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem")),
            cert: self.tlscert.clone().unwrap_or_else(|| dir.join("cert.pem")),
            key: self.tlskey.clone().unwrap_or_else(|| dir.join("key.pem")),
        }
    }
}

/// The client for the daemon the flags, environment and contexts choose.
pub fn connect(connection: &Connection) -> Result<Client, String> {
    if connection.host.is_some() && connection.context.is_some() {
        return Err("Conflicting options: either specify --host or --context, not both".into());
    }
    if let Some(host) = &connection.host {
        return Client::new(host, &connection.tls_settings());
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let name = match (&connection.context, env("BERTH_HOST")) {
        (Some(name), _) => name.clone(),
        (None, Some(host)) => return Client::new(&host, &connection.tls_settings()),
        (None, None) => env("BERTH_CONTEXT").unwrap_or_else(current),
    };
    if name == DEFAULT_CONTEXT {
        return Client::new(DEFAULT_HOST, &connection.tls_settings());
    }
    let context = load(&name)?;
    Client::new(&context.host, &context.tls())
}

#[derive(Subcommand)]
pub enum ContextCommand {
    /// Create a context
    Create {
        /// Description of the context
        #[arg(long)]
        description: Option<String>,
        /// set the docker endpoint
        #[arg(long)]
        docker: Option<String>,
        name: String,
    },
    /// List contexts
    #[command(alias = "list")]
    Ls {
        /// Only show context names
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Pretty-print contexts using a Go template
        #[arg(long)]
        format: Option<String>,
    },
    /// Set the current berth context
    Use { name: String },
    /// Remove one or more contexts
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of a context in use
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Display detailed information on one or more contexts
    Inspect { names: Vec<String> },
    /// Print the name of the current context
    Show,
}

/// One stored context.
/// A context's `meta.json`, as the docker CLI writes it: the one format of
/// `context create`, of every read of a context, and of `context inspect`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContextMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    metadata: ContextMetadata,
    #[serde(default)]
    endpoints: ContextEndpoints,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContextMetadata {
    #[serde(default)]
    description: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ContextEndpoints {
    #[serde(default)]
    docker: DockerEndpoint,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEndpoint {
    #[serde(default)]
    host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

struct Context {
    name: String,
    description: String,
    host: String,
    skip_tls_verify: bool,
    tls_dir: PathBuf,
}

impl Context {
    fn meta(&self) -> ContextMeta {
        ContextMeta {
            name: self.name.clone(),
            metadata: ContextMetadata {
                description: self.description.clone(),
            },
            endpoints: ContextEndpoints {
                docker: DockerEndpoint {
                    host: self.host.clone(),
                    skip_tls_verify: self.skip_tls_verify,
                },
            },
        }
    }

    fn tls(&self) -> TlsSettings {
        let file = |name: &str| self.tls_dir.join(name);
        let any = ["ca.pem", "cert.pem", "key.pem"]
            .iter()
            .any(|f| file(f).is_file());
        TlsSettings {
            tls: any,
            verify: any && !self.skip_tls_verify,
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
        }
    }
}

fn digest(name: &str) -> String {
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

fn meta_dir(name: &str) -> PathBuf {
    config_dir().join("contexts/meta").join(digest(name))
}

fn tls_dir(name: &str) -> PathBuf {
    config_dir()
        .join("contexts/tls")
        .join(digest(name))
        .join("docker")
}

/// The current context's name: `currentContext` in config.json, or `default`.
fn current() -> String {
    read_config()
        .ok()
        .and_then(|c| c.current_context)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_CONTEXT.to_string())
}

fn load(name: &str) -> Result<Context, String> {
    let path = meta_dir(name).join("meta.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("context {name:?} does not exist"))
        }
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    let meta: ContextMeta = serde_json::from_slice(&bytes)
        .map_err(|e| format!("context {name:?}: {}: {e}", path.display()))?;
    let endpoint = meta.endpoints.docker;
    Ok(Context {
        name: if meta.name.is_empty() {
            name.to_string()
        } else {
            meta.name
        },
        description: meta.metadata.description,
        host: if endpoint.host.is_empty() {
            DEFAULT_HOST.to_string()
        } else {
            endpoint.host
        },
        skip_tls_verify: endpoint.skip_tls_verify,
        tls_dir: tls_dir(name),
    })
}

/// Every stored context, by name.
fn all() -> Vec<Context> {
    let mut out: Vec<Context> = std::fs::read_dir(config_dir().join("contexts/meta"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let bytes = std::fs::read(entry.path().join("meta.json")).ok()?;
            let meta: ContextMeta = serde_json::from_slice(&bytes).ok()?;
            load(&meta.name).ok()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn default_context() -> Context {
    Context {
        name: DEFAULT_CONTEXT.into(),
        description: "Current DOCKER_HOST based configuration".into(),
        host: std::env::var("BERTH_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.into()),
        skip_tls_verify: false,
        tls_dir: PathBuf::from("/nonexistent"),
    }
}

/// docker's context and endpoint names: a letter or digit, then letters,
/// digits, `.`, `_`, `+` and `-`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
        && name != DEFAULT_CONTEXT
}

pub fn run(command: ContextCommand) -> CmdResult {
    match command {
        ContextCommand::Create {
            description,
            docker,
            name,
        } => create(&name, description.as_deref(), docker.as_deref()),
        ContextCommand::Ls { quiet, format } => list(quiet, format.as_deref()),
        ContextCommand::Use { name } => use_context(&name),
        ContextCommand::Rm { force, names } => remove(&names, force),
        ContextCommand::Inspect { names } => inspect(&names),
        ContextCommand::Show => {
            println!("{}", current());
            Ok(0)
        }
    }
}

fn create(name: &str, description: Option<&str>, docker: Option<&str>) -> CmdResult {
    if !valid_name(name) {
        return Err(fail(format!(
            "context name {name:?} is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\""
        )));
    }
    if meta_dir(name).join("meta.json").exists() {
        return Err(fail(format!("context {name:?} already exists")));
    }
    let mut host = DEFAULT_HOST.to_string();
    let mut skip_tls_verify = false;
    let mut files: Vec<(&str, PathBuf)> = Vec::new();
    for part in docker.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| fail(format!("invalid docker endpoint option {part:?}")))?;
        match key {
            "host" => host = value.to_string(),
            "ca" => files.push(("ca.pem", PathBuf::from(value))),
            "cert" => files.push(("cert.pem", PathBuf::from(value))),
            "key" => files.push(("key.pem", PathBuf::from(value))),
            "skip-tls-verify" => {
                skip_tls_verify = value
                    .parse()
                    .map_err(|_| fail(format!("skip-tls-verify: {value:?} is not a boolean")))?
            }
            "from" => return Err(fail("--docker from=... is not supported by berth")),
            other => {
                return Err(fail(format!(
                    "unrecognized config key: {other} (host, ca, cert, key, skip-tls-verify)"
                )))
            }
        }
    }
    // Refuse what cannot be used before storing anything.
    Client::new(&host, &TlsSettings::default()).map_err(fail)?;
    let tls = tls_dir(name);
    for (file, source) in &files {
        let bytes = std::fs::read(source)
            .map_err(|e| fail(format!("unable to read {}: {e}", source.display())))?;
        write_private(&tls.join(file), &bytes)?;
    }
    let meta = Context {
        name: name.to_string(),
        description: description.unwrap_or("").to_string(),
        host,
        skip_tls_verify,
        tls_dir: tls,
    }
    .meta();
    let bytes = serde_json::to_vec(&meta).map_err(|e| fail(e.to_string()))?;
    write_private(&meta_dir(name).join("meta.json"), &bytes)?;
    println!("{name}");
    eprintln!("Successfully created context {name:?}");
    Ok(0)
}

/// Writes a file only its owner reads (keys among them), atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
    let tmp = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| fail(format!("write {}: {e}", path.display())))
}

fn list(quiet: bool, format: Option<&str>) -> CmdResult {
    let current = current();
    let mut contexts = vec![default_context()];
    contexts.extend(all());
    if quiet {
        for c in &contexts {
            println!("{}", c.name);
        }
        return Ok(0);
    }
    if format == Some("json") {
        for c in &contexts {
            let line = ContextLine {
                name: &c.name,
                description: &c.description,
                docker_endpoint: &c.host,
                current: c.name == current,
                error: "",
            };
            let text = serde_json::to_string(&line).map_err(|e| fail(e.to_string()))?;
            println!("{text}");
        }
        return Ok(0);
    }
    if let Some(other) = format {
        return Err(fail(format!("--format {other:?}: only json is supported")));
    }
    let rows: Vec<[String; 3]> = contexts
        .iter()
        .map(|c| {
            let marker = if c.name == current { " *" } else { "" };
            [
                format!("{}{marker}", c.name),
                c.description.clone(),
                c.host.clone(),
            ]
        })
        .collect();
    let width = |i: usize, title: &str| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0, "NAME"), width(1, "DESCRIPTION"));
    println!("{:w0$}   {:w1$}   DOCKER ENDPOINT", "NAME", "DESCRIPTION");
    for [name, description, host] in rows {
        println!("{name:w0$}   {description:w1$}   {host}");
    }
    Ok(0)
}

fn use_context(name: &str) -> CmdResult {
    if name != DEFAULT_CONTEXT {
        load(name).map_err(fail)?;
    }
    let mut config = read_config()?;
    config.current_context = (name != DEFAULT_CONTEXT).then(|| name.to_string());
    write_config(&config)?;
    println!("{name}");
    eprintln!("Current context is now {name:?}");
    Ok(0)
}

fn remove(names: &[String], force: bool) -> CmdResult {
    let current = current();
    let mut errors = Vec::new();
    for name in names {
        if name == DEFAULT_CONTEXT {
            errors.push(format!("context {name:?} cannot be removed"));
            continue;
        }
        if let Err(e) = load(name) {
            errors.push(e);
            continue;
        }
        if *name == current {
            if !force {
                errors.push(format!(
                    "context {name:?} is in use, set -f flag to force remove"
                ));
                continue;
            }
            use_context(DEFAULT_CONTEXT)?;
        }
        let _ = std::fs::remove_dir_all(meta_dir(name));
        let _ = std::fs::remove_dir_all(config_dir().join("contexts/tls").join(digest(name)));
        println!("{name}");
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(fail(errors.join("\n")))
    }
}

fn inspect(names: &[String]) -> CmdResult {
    let names = if names.is_empty() {
        vec![current()]
    } else {
        names.to_vec()
    };
    let mut out = Vec::new();
    for name in &names {
        let c = if name == DEFAULT_CONTEXT {
            default_context()
        } else {
            load(name).map_err(fail)?
        };
        let tls = c.tls();
        let material: Vec<&str> = ["ca.pem", "cert.pem", "key.pem"]
            .into_iter()
            .filter(|f| c.tls_dir.join(f).is_file())
            .collect();
        let in_memory = || "<IN MEMORY>".to_string();
        out.push(ContextInspect {
            meta: c.meta(),
            tls_material: if material.is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([("docker", material)])
            },
            storage: ContextStorage {
                metadata_path: if name == DEFAULT_CONTEXT {
                    in_memory()
                } else {
                    meta_dir(name).display().to_string()
                },
                tls_path: if tls.tls {
                    c.tls_dir
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                } else {
                    in_memory()
                },
            },
        });
    }
    let text = serde_json::to_string_pretty(&out).map_err(|e| fail(e.to_string()))?;
    println!("{text}");
    Ok(0)
}

/// A line of `context ls --format json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContextLine<'a> {
    name: &'a str,
    description: &'a str,
    docker_endpoint: &'a str,
    current: bool,
    error: &'a str,
}

/// An entry of `context inspect`: the stored meta, then where it lives.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContextInspect<'a> {
    #[serde(flatten)]
    meta: ContextMeta,
    #[serde(rename = "TLSMaterial")]
    tls_material: BTreeMap<&'static str, Vec<&'a str>>,
    storage: ContextStorage,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContextStorage {
    metadata_path: String,
    #[serde(rename = "TLSPath")]
    tls_path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("remote-1.prod_x+y"));
        assert!(!valid_name("-remote"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("default"));
    }
}
