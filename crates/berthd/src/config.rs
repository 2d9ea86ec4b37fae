//! `daemon.json`: dockerd's configuration file, with dockerd's keys for the
//! settings berthd has. A key given both as a flag and in the file is an error
//! (dockerd's rule and wording), as is a key no configuration option matches;
//! a dockerd key berth has no counterpart for is refused by name rather than
//! ignored. SIGHUP re-reads the file and applies what can change live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde_json::Value;

/// Where berthd looks when `--config-file` is not given (a missing file there
/// is fine; a missing file named on the command line is not).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// The file's settings, typed. `None` / empty: not in the file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileConfig {
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    /// `base=CIDR,size=N`, as the flag takes them.
    pub default_address_pools: Vec<String>,
    pub firewall_backend: Option<String>,
    pub insecure_registries: Vec<String>,
    /// NAME=PATH, as `--add-runtime` takes them.
    pub runtimes: Vec<String>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    /// NAME=SOFT:HARD, as `--default-ulimit` takes them.
    pub default_ulimits: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    /// Container log defaults: driver and options (json-file's max-size, max-file).
    pub log_driver: Option<String>,
    pub log_opts: BTreeMap<String, String>,
}

/// The flag (clap argument id) each file key stands for, with dockerd's key.
const FLAG_OF_KEY: &[(&str, &str)] = &[
    ("hosts", "host"),
    ("data-root", "data_root"),
    ("exec-root", "exec_root"),
    ("pidfile", "pidfile"),
    ("cgroup-parent", "cgroup_parent"),
    ("bridge", "bridge"),
    ("bip", "bip"),
    ("default-address-pools", "default_address_pool"),
    ("firewall-backend", "firewall_backend"),
    ("insecure-registries", "insecure_registry"),
    ("runtimes", "add_runtime"),
    ("debug", "debug"),
    ("log-level", "log_level"),
    ("default-ulimits", "default_ulimit"),
    ("registry-mirrors", "registry_mirror"),
    ("tls", "tls"),
    ("tlsverify", "tlsverify"),
    ("tlscacert", "tlscacert"),
    ("tlscert", "tlscert"),
    ("tlskey", "tlskey"),
];

/// Keys berthd reads that no flag sets.
const FILE_ONLY_KEYS: &[&str] = &["log-driver", "log-opts", "live-restore"];

/// dockerd keys berth has nothing behind yet: refused by name.
const NOT_SUPPORTED: &[&str] = &[
    "userns-remap",
    "storage-driver",
    "storage-opts",
    "default-runtime",
    "icc",
    "ip",
    "ip-forward",
    "iptables",
    "ipv6",
    "mtu",
    "dns",
    "dns-search",
    "dns-opts",
    "labels",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "shutdown-timeout",
    "exec-opts",
    "experimental",
    "features",
    "group",
    "init",
    "seccomp-profile",
    "selinux-enabled",
    "userland-proxy",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to configure the berth daemon with file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unable to configure the berth daemon with file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads `path`; `Ok(None)` when it does not exist and `required` is false.
pub fn read(path: &Path, required: bool) -> Result<Option<(FileConfig, Value)>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let raw: Value = serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))?;
    let config = parse(&raw).map_err(|m| invalid(path, m))?;
    Ok(Some((config, raw)))
}

fn string(key: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| format!("{key}: expected a string, got {v}"))
}

fn boolean(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{key}: expected true or false, got {v}"))
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{key}: expected a list of strings, got {v}"))?
        .iter()
        .map(|item| string(key, item))
        .collect()
}

/// The typed settings of a parsed file, or dockerd's complaint.
pub fn parse(raw: &Value) -> Result<FileConfig, String> {
    let map = raw
        .as_object()
        .ok_or_else(|| "the file must hold a JSON object".to_string())?;
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| {
            !FLAG_OF_KEY.iter().any(|(key, _)| key == k)
                && !FILE_ONLY_KEYS.contains(k)
                && !NOT_SUPPORTED.contains(k)
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        ));
    }
    if let Some(key) = map.keys().find(|k| NOT_SUPPORTED.contains(&k.as_str())) {
        return Err(format!("{key} is not supported by berth"));
    }
    let mut c = FileConfig::default();
    for (key, v) in map {
        match key.as_str() {
            "hosts" => {
                c.hosts = strings(key, v)?;
            }
            "data-root" => c.data_root = Some(string(key, v)?.into()),
            "exec-root" => c.exec_root = Some(string(key, v)?.into()),
            "pidfile" => c.pidfile = Some(string(key, v)?.into()),
            "cgroup-parent" => c.cgroup_parent = Some(string(key, v)?),
            "bridge" => c.bridge = Some(string(key, v)?),
            "bip" => c.bip = Some(string(key, v)?),
            "default-address-pools" => {
                let pools = v
                    .as_array()
                    .ok_or_else(|| format!("{key}: expected a list of {{base, size}}"))?;
                for p in pools {
                    let base = p["base"].as_str();
                    let size = p["size"].as_u64();
                    match (base, size) {
                        (Some(b), Some(s)) => {
                            c.default_address_pools.push(format!("base={b},size={s}"))
                        }
                        _ => return Err(format!("{key}: {p} needs base and size")),
                    }
                }
            }
            "firewall-backend" => c.firewall_backend = Some(string(key, v)?),
            "insecure-registries" => c.insecure_registries = strings(key, v)?,
            "runtimes" => {
                let runtimes = v
                    .as_object()
                    .ok_or_else(|| format!("{key}: expected {{\"NAME\": {{\"path\": ...}}}}"))?;
                for (name, r) in runtimes {
                    let path = r["path"]
                        .as_str()
                        .ok_or_else(|| format!("{key}.{name}: needs a path"))?;
                    c.runtimes.push(format!("{name}={path}"));
                }
            }
            "debug" => c.debug = Some(boolean(key, v)?),
            "log-level" => c.log_level = Some(string(key, v)?),
            "default-ulimits" => {
                let limits = v.as_object().ok_or_else(|| {
                    format!(
                        "{key}: expected {{\"NAME\": {{\"Name\": ..., \"Soft\": N, \"Hard\": N}}}}"
                    )
                })?;
                for (name, limit) in limits {
                    let (Some(soft), Some(hard)) = (limit["Soft"].as_i64(), limit["Hard"].as_i64())
                    else {
                        return Err(format!("{key}.{name}: needs Soft and Hard numbers"));
                    };
                    let name = limit["Name"].as_str().unwrap_or(name);
                    c.default_ulimits.push(format!("{name}={soft}:{hard}"));
                }
            }
            "registry-mirrors" => c.registry_mirrors = strings(key, v)?,
            "tls" => c.tls = Some(boolean(key, v)?),
            "tlsverify" => c.tlsverify = Some(boolean(key, v)?),
            "tlscacert" => c.tlscacert = Some(string(key, v)?.into()),
            "tlscert" => c.tlscert = Some(string(key, v)?.into()),
            "tlskey" => c.tlskey = Some(string(key, v)?.into()),
            "log-driver" => c.log_driver = Some(string(key, v)?),
            "log-opts" => {
                let opts = v
                    .as_object()
                    .ok_or_else(|| format!("{key}: expected an object of strings"))?;
                for (name, value) in opts {
                    c.log_opts.insert(name.clone(), string(name, value)?);
                }
            }
            // Containers always outlive berthd (each has its own monitor):
            // live restore is how berth works, not an option.
            "live-restore" if v.as_bool() != Some(true) => {
                return Err(
                    "live-restore: berth always keeps containers running across daemon restarts"
                        .into(),
                );
            }
            _ => {}
        }
    }
    // dockerd checks the options against the daemon's driver.
    berth_engine::log_driver::validate(
        c.log_driver.as_deref().unwrap_or("json-file"),
        &c.log_opts,
    )?;
    Ok(c)
}

/// dockerd's check: every key of the file that a flag on the command line
/// also sets, with both values.
pub fn conflicts(raw: &Value, matches: &ArgMatches) -> Result<(), String> {
    let Some(map) = raw.as_object() else {
        return Ok(());
    };
    let mut found = Vec::new();
    for (key, flag) in FLAG_OF_KEY {
        let Some(file_value) = map.get(*key) else {
            continue;
        };
        if matches.value_source(flag) != Some(ValueSource::CommandLine) {
            continue;
        }
        let from_flag: Vec<String> = matches
            .get_raw(flag)
            .map(|vals| {
                vals.map(|v| v.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| vec!["true".into()]);
        let shown = match file_value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        found.push(format!(
            "{key}: (from flag: {}, from file: {shown})",
            from_flag.join(",")
        ));
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            found.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_become_settings() {
        let c = parse(&json!({
            "data-root": "/d",
            "bip": "10.9.0.1/24",
            "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
            "insecure-registries": ["reg:5000"],
            "runtimes": {"runc": {"path": "/usr/bin/runc"}},
            "log-opts": {"max-size": "1k", "max-file": "2"},
            "live-restore": true,
            "debug": true,
            "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}},
            "registry-mirrors": ["http://127.0.0.1:5000"]
        }))
        .unwrap();
        assert_eq!(c.default_ulimits, ["nofile=1024:2048"]);
        assert_eq!(c.registry_mirrors, ["http://127.0.0.1:5000"]);
        assert_eq!(c.data_root, Some(PathBuf::from("/d")));
        assert_eq!(c.default_address_pools, ["base=10.10.0.0/16,size=24"]);
        assert_eq!(c.runtimes, ["runc=/usr/bin/runc"]);
        assert_eq!(c.log_opts["max-file"], "2");
        assert_eq!(c.debug, Some(true));
    }

    #[test]
    fn unknown_unsupported_and_wrong_types_are_refused() {
        let e = parse(&json!({"nonsense": 1, "bip": "x"})).unwrap_err();
        assert_eq!(
            e,
            "the following directives don't match any configuration option: nonsense"
        );
        assert!(parse(&json!({"userns-remap": "default"}))
            .unwrap_err()
            .contains("userns-remap is not supported"));
        assert!(parse(&json!({"default-ulimits": {"nofile": {"Soft": 1}}})).is_err());
        assert!(parse(&json!({"bip": 5})).is_err());
        assert_eq!(
            parse(&json!({"log-driver": "syslog"})).unwrap_err(),
            "error looking up logging plugin syslog: plugin \"syslog\" not found"
        );
        assert!(parse(&json!({"log-driver": "local", "log-opts": {"compress": "false"}})).is_ok());
        assert!(parse(&json!({"log-driver": "local", "log-opts": {"labels": "x"}})).is_err());
        assert!(parse(&json!({"log-opts": {"labels": "x"}})).is_err());
        assert!(parse(&json!({"live-restore": false})).is_err());
        assert!(parse(&json!([])).is_err());
    }
}
