//! berth-compose: the Compose Specification's file format, read into a
//! normalised model ([`model::Project`]). No I/O beyond reading the files; the
//! CLI runs the project against berthd.
//!
//! [`load`] does what docker compose v2 does with a project's files: finds
//! them, reads `.env`, interpolates variables, applies merge keys, `extends`,
//! `include` and override files, filters services by profile, normalises
//! every short form and validates the result.

mod convert;
mod envfile;
mod error;
mod interpolate;
mod load;
mod locate;
mod merge;
pub mod model;
mod parse;
mod paths;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_norway::{Mapping, Value};
use sha2::{Digest, Sha256};

pub use error::ComposeError;
pub use model::*;

/// How to find and read a project; the CLI's flags and environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order; empty = discover in working_dir: compose.yaml,
    /// compose.yml, docker-compose.yml, docker-compose.yaml (first found;
    /// error if none), plus a `compose.override.yml` / `.yaml` /
    /// `docker-compose.override.yml` / `.yaml` next to it when there is one.
    pub files: Vec<PathBuf>,
    /// The project directory (`--project-directory`, else the first file's
    /// directory when files are given, else the current dir). Relative paths
    /// in files resolve against it.
    pub working_dir: Option<PathBuf>,
    /// `-p`; else COMPOSE_PROJECT_NAME from `environment` (or the env files);
    /// else top-level `name:`; else the working dir's base name, normalised
    /// (lower-case; characters outside [a-z0-9_-] removed).
    pub project_name: Option<String>,
    /// `--env-file`; empty = `<working_dir>/.env` if it exists.
    pub env_files: Vec<PathBuf>,
    /// `--profile`; when empty, COMPOSE_PROFILES (comma separated) from
    /// `environment` or the env files.
    pub profiles: Vec<String>,
    /// The CLI process environment; it wins over .env values for interpolation.
    pub environment: BTreeMap<String, String>,
}

/// Load, merge, normalise and validate a project.
pub fn load(opts: &LoadOptions) -> Result<Project, ComposeError> {
    load::load(opts)
}

impl Project {
    /// Service names with every dependency before its dependents (stable:
    /// alphabetical among peers).
    pub fn start_order(&self) -> Vec<String> {
        let mut pending: BTreeMap<&str, BTreeSet<&str>> = self
            .services
            .iter()
            .map(|(name, s)| {
                let deps = s
                    .depends_on
                    .keys()
                    .map(String::as_str)
                    .filter(|d| self.services.contains_key(*d))
                    .collect();
                (name.as_str(), deps)
            })
            .collect();
        let mut order = Vec::with_capacity(pending.len());
        // Repeatedly take the alphabetically first service whose
        // dependencies have all started. `load` rejects cycles; should a
        // hand-built project hold one, its services go last, alphabetically.
        while !pending.is_empty() {
            let next = pending
                .iter()
                .find(|(_, deps)| deps.is_empty())
                .map(|(name, _)| *name)
                .or_else(|| pending.keys().next().copied());
            let Some(next) = next else { break };
            pending.remove(next);
            for deps in pending.values_mut() {
                deps.remove(next);
            }
            order.push(next.to_string());
        }
        order
    }

    /// The normalised model as YAML (for `compose config`), services sorted.
    /// Unset options are left out; secret values read from the environment
    /// are not printed.
    pub fn to_yaml(&self) -> String {
        let mut shown = self.clone();
        for secret in shown.secrets.values_mut() {
            if let FileObject::Content(c) = secret {
                *c = "<redacted>".into();
            }
        }
        let value = match serde_norway::to_value(&shown) {
            Ok(v) => prune(v, false),
            // The model holds only strings, numbers, maps and lists.
            Err(e) => return format!("# cannot render the project: {e}\n"),
        };
        serde_norway::to_string(&value)
            .unwrap_or_else(|e| format!("# cannot render the project: {e}\n"))
    }

    /// A stable hash (sha256 hex) of one service's normalised config, for the
    /// com.docker.compose.config-hash label; empty for an unknown service.
    /// As in docker compose, what does not change the container itself
    /// (replicas, dependencies, profiles, build settings) is left out, so
    /// scaling or editing a build does not recreate running containers.
    pub fn config_hash(&self, service: &str) -> String {
        let Some(s) = self.services.get(service) else {
            return String::new();
        };
        let mut s = s.clone();
        s.replicas = 1;
        s.depends_on.clear();
        s.profiles.clear();
        s.build = None;
        // Struct fields serialise in declaration order and maps are
        // BTreeMaps, so equal configs give equal bytes.
        match serde_json::to_vec(&s) {
            Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
            Err(_) => String::new(),
        }
    }
}

/// Fields of the model that are maps keyed by user-chosen names: their
/// entries are kept even when empty (`networks: {default: {}}`, `FOO: null`).
const NAME_MAPS: &[&str] = &[
    "services",
    "networks",
    "volumes",
    "secrets",
    "configs",
    "environment",
    "args",
    "labels",
    "sysctls",
    "ulimits",
    "depends_on",
    "options",
    "driver_opts",
];

/// Drop null and empty struct fields; render `FileObject` variants (YAML
/// tags) as `file:` / `content:` mappings.
fn prune(v: Value, in_name_map: bool) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, item) in m {
                let field = k.as_str().unwrap_or_default().to_string();
                let item = prune(item, !in_name_map && NAME_MAPS.contains(&field.as_str()));
                let empty = match &item {
                    Value::Null => true,
                    Value::Sequence(s) => s.is_empty(),
                    Value::Mapping(m) => m.is_empty(),
                    _ => false,
                };
                if in_name_map || !empty {
                    out.insert(k, item);
                }
            }
            Value::Mapping(out)
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(|i| prune(i, false)).collect()),
        Value::Tagged(t) => {
            let mut m = Mapping::new();
            let tag = t.tag.to_string();
            m.insert(
                tag.trim_start_matches('!').to_lowercase().into(),
                prune(t.value, false),
            );
            Value::Mapping(m)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
