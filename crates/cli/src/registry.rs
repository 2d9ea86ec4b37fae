//! `pull`, `push`, `login`, `logout`, `search`, and `registry serve`.
//!
//! Credentials live in docker's `~/.docker/config.json` (`auths.<host>.auth` is
//! base64 of `user:password`), so docker and berth share logins.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{encode_query, Client};
use crate::{fail, CmdResult, Failure};

/// docker's client configuration directory: `$DOCKER_CONFIG` or `~/.docker`.
pub(crate) fn config_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DOCKER_CONFIG") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".docker")
}

fn config_path() -> PathBuf {
    config_dir().join("config.json")
}

/// docker's `config.json`: what berth uses is typed; every other key
/// (credential helpers, proxies, other tools' settings) is kept as it was.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ClientConfig {
    /// Always written, as docker writes it; `null` reads as none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(
        rename = "currentContext",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_context: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// A login: `auth` is base64 of `user:password`; `identitytoken` and the like
/// are kept.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct AuthEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, AuthEntry>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

/// The configuration file, or an empty one if there is none. A file that is
/// there but unreadable is an error, so that no command overwrites it.
pub(crate) fn read_config() -> Result<ClientConfig, Failure> {
    let path = config_path();
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientConfig::default()),
        Err(e) => Err(fail(format!("read {}: {e}", path.display()))),
    }
}

pub(crate) fn write_config(config: &ClientConfig) -> Result<(), crate::Failure> {
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| fail(e.to_string()))?;
    crate::context::write_private(&config_path(), &bytes)
}

/// The registry host of an image name (docker.io when it has none).
fn registry_of(name: &str) -> String {
    match name.split_once('/') {
        Some((h, _)) if h.contains('.') || h.contains(':') || h == "localhost" => h.to_string(),
        _ => "docker.io".to_string(),
    }
}

/// `X-Registry-Auth` for `host` from the stored logins.
fn auth_header(host: &str) -> Vec<(&'static str, String)> {
    // A broken config file sends no credentials; login and logout say why.
    let Ok(cfg) = read_config() else {
        return Vec::new();
    };
    let Some(auth) = cfg.auths.get(host).map(|a| a.auth.as_str()) else {
        return Vec::new();
    };
    let (username, password) = berth_api_types::decode_basic(auth).unwrap_or_default();
    let header = berth_api_types::AuthConfig {
        username,
        password,
        serveraddress: host.to_string(),
        ..Default::default()
    }
    .to_header();
    vec![("X-Registry-Auth", header)]
}

/// Prints a pull/push progress stream; an error line makes the command fail.
fn follow(resp: crate::client::Response, quiet: bool) -> CmdResult {
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(resp.body).lines() {
        let line = line?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(e) = v["error"].as_str() {
            eprintln!("Error response from daemon: {e}");
            return Ok(1);
        }
        if quiet {
            continue;
        }
        if let Some(status) = v["status"].as_str() {
            match v["id"].as_str() {
                Some(id) => writeln!(out, "{id}: {status}")?,
                None => writeln!(out, "{status}")?,
            }
        }
    }
    Ok(0)
}

pub fn pull(client: &Client, name: &str, quiet: bool) -> CmdResult {
    let (resp, image, tag) = start_pull(client, name)?;
    let code = follow(resp, quiet)?;
    if code == 0 && quiet {
        let sep = if tag.starts_with("sha256:") { '@' } else { ':' };
        println!("{image}{sep}{tag}");
    }
    Ok(code)
}

/// Pulls or pushes without printing progress: the daemon's error, if the
/// stream carried one (compose prints one line per service instead).
pub(crate) fn transfer_silently(client: &Client, name: &str, push: bool) -> Result<(), Failure> {
    let resp = if push {
        start_push(client, name)?
    } else {
        start_pull(client, name)?.0
    };
    for line in BufReader::new(resp.body).lines() {
        let line = line?;
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if let Some(e) = v["error"].as_str() {
                return Err(fail(e.to_string()));
            }
        }
    }
    Ok(())
}

fn start_pull(
    client: &Client,
    name: &str,
) -> Result<(crate::client::Response, String, String), Failure> {
    let (image, tag) = match name.split_once('@') {
        Some((i, d)) => (i.to_string(), d.to_string()),
        None => match name.rsplit_once(':') {
            Some((i, t)) if !t.contains('/') => (i.to_string(), t.to_string()),
            _ => (name.to_string(), "latest".to_string()),
        },
    };
    let q = encode_query(&[("fromImage", image.clone()), ("tag", tag.clone())]);
    let resp = client.call_with_headers(
        "POST",
        &format!("/images/create{q}"),
        &auth_header(&registry_of(name)),
    )?;
    Ok((resp, image, tag))
}

pub fn push(client: &Client, name: &str, quiet: bool) -> CmdResult {
    let resp = start_push(client, name)?;
    follow(resp, quiet)
}

fn start_push(client: &Client, name: &str) -> Result<crate::client::Response, Failure> {
    let (image, tag) = match name.rsplit_once(':') {
        Some((i, t)) if !t.contains('/') => (i.to_string(), t.to_string()),
        _ => (name.to_string(), "latest".to_string()),
    };
    let q = encode_query(&[("tag", tag)]);
    Ok(client.call_with_headers(
        "POST",
        &format!("/images/{image}/push{q}"),
        &auth_header(&registry_of(name)),
    )?)
}

pub fn login(
    client: &Client,
    server: &str,
    username: Option<&str>,
    password: Option<&str>,
    password_stdin: bool,
) -> CmdResult {
    let username = match username {
        Some(u) => u.to_string(),
        None => {
            eprint!("Username: ");
            let mut u = String::new();
            std::io::stdin().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    let password = match (password, password_stdin) {
        (Some(p), _) => p.to_string(),
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(fail(
                "password required: use --password or --password-stdin",
            ))
        }
    };
    let body = berth_api_types::AuthConfig {
        username: username.clone(),
        password: password.clone(),
        serveraddress: server.to_string(),
        ..Default::default()
    };
    let v = client.post_json("/auth", &body)?;
    let mut cfg = read_config()?;
    // A new login replaces the entry whole, as docker's does: a token another
    // tool stored beside the old password must not outlive it.
    cfg.auths.insert(
        server.to_string(),
        AuthEntry {
            auth: berth_api_types::encode_basic(&username, &password),
            other: serde_json::Map::new(),
        },
    );
    write_config(&cfg)?;
    println!("{}", v["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(0)
}

pub fn logout(server: &str) -> CmdResult {
    let mut cfg = read_config()?;
    let removed = cfg.auths.remove(server).is_some();
    if removed {
        write_config(&cfg)?;
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

pub fn search(term: &str) -> CmdResult {
    Err(fail(format!(
        "search is not supported: berth talks to OCI registries, which have no search API (wanted: {term})"
    )))
}

/// `berth registry serve|gc ...`: runs the `berth-registry` program that sits
/// next to `berth` (or on PATH).
pub fn registry(args: &[String]) -> CmdResult {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("berth-registry")))
        .filter(|p| p.exists());
    let program = sibling.unwrap_or_else(|| PathBuf::from("berth-registry"));
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&program).args(args).exec();
    Err(fail(format!("run {}: {err}", program.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_keeps_what_berth_does_not_use() {
        let text = r#"{"auths":{"r.example":{"auth":"dTpw","identitytoken":"t"}},
            "credsStore":"pass","proxies":{"default":{"httpProxy":"x"}},"currentContext":"c"}"#;
        let mut config: ClientConfig = serde_json::from_str(text).unwrap();
        assert_eq!(config.auths["r.example"].auth, "dTpw");
        assert_eq!(config.current_context.as_deref(), Some("c"));
        config.current_context = None;
        config.auths.entry("other".into()).or_default().auth = "eDp5".into();
        let written: Value = serde_json::to_value(&config).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "auths": {"r.example": {"auth": "dTpw", "identitytoken": "t"}, "other": {"auth": "eDp5"}},
                "credsStore": "pass",
                "proxies": {"default": {"httpProxy": "x"}},
            })
        );
        // A file berth cannot read is refused rather than overwritten; `null`
        // auths (Go reads them) are none, and none are still written.
        assert!(serde_json::from_str::<ClientConfig>(r#"{"auths":[]}"#).is_err());
        let empty: ClientConfig = serde_json::from_str(r#"{"auths":null}"#).unwrap();
        assert_eq!(serde_json::to_string(&empty).unwrap(), r#"{"auths":{}}"#);
    }
}
