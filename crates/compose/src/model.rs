//! The normalised compose model: what `load` produces after interpolation,
//! merging, `extends`, profiles and defaults. Every value is resolved (relative
//! paths made absolute against the project directory, short forms expanded), so
//! the CLI that runs a project never looks at YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Project {
    /// `-p`, `COMPOSE_PROJECT_NAME`, the top-level `name`, or the directory's
    /// name; lower-case letters, digits, `-` and `_` only.
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// Services enabled by the active profiles only.
    pub services: BTreeMap<String, Service>,
    /// Always holds `default` when a service uses it (implicitly or by name).
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    /// Exec form; a string in the file is split as a shell would (quotes kept together).
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` contents first, then `environment` over them; None = a name
    /// without value (taken from the CLI's environment when set, else dropped).
    pub environment: BTreeMap<String, Option<String>>,
    pub ports: Vec<Port>,
    /// "80", "80/udp".
    pub expose: Vec<String>,
    pub volumes: Vec<ServiceVolume>,
    /// `tmpfs:` entries ("/run", "/tmp:size=64m").
    pub tmpfs: Vec<String>,
    /// Network name (the key under top-level `networks`) → settings. Empty when
    /// `network_mode` is set; `{"default": {}}` when the service names none.
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// "host", "none", "service:<name>", "container:<id>".
    pub network_mode: Option<String>,
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    /// "no", "always", "on-failure[:N]", "unless-stopped"; from
    /// `deploy.restart_policy` (none → "no", any → "always", on-failure[:max_attempts])
    /// when `restart` is unset.
    pub restart: Option<String>,
    /// `deploy.replicas`, else `scale`, else 1 (both set to different
    /// counts is an error, as in docker compose).
    pub replicas: u32,
    pub labels: BTreeMap<String, String>,
    pub container_name: Option<String>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub init: Option<bool>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    /// Bytes.
    pub shm_size: Option<i64>,
    pub stop_signal: Option<String>,
    /// Seconds.
    pub stop_grace_period: Option<i64>,
    pub tty: bool,
    pub stdin_open: bool,
    /// "host:ip".
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub logging: Option<Logging>,
    pub read_only: bool,
    /// Bytes: `mem_limit`, or `deploy.resources.limits.memory`.
    pub mem_limit: Option<i64>,
    /// `cpus`, or `deploy.resources.limits.cpus`.
    pub cpus: Option<f64>,
    pub secrets: Vec<FileMount>,
    pub configs: Vec<FileMount>,
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Build {
    /// Absolute.
    pub context: PathBuf,
    /// Relative to the context, as given (default "Dockerfile").
    pub dockerfile: String,
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Port {
    /// Container port.
    pub target: u16,
    /// Host port ("8080"), or a range ("8000-8010") the engine picks a free
    /// one from; None = a random one.
    pub published: Option<String>,
    pub host_ip: Option<String>,
    /// "tcp" or "udp".
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceVolume {
    pub kind: VolumeKind,
    /// Bind: an absolute host path. Volume: the key under top-level `volumes`,
    /// or None for an anonymous volume. Tmpfs: None.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// Tmpfs size in bytes, when given.
    pub tmpfs_size: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependency {
    pub condition: Condition,
    /// Restart this service when the dependency is recreated.
    pub restart: bool,
    /// false: a missing dependency (profile off) is ignored.
    pub required: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Healthcheck {
    /// Docker's form: ["CMD", ...], ["CMD-SHELL", cmd] or ["NONE"] (`disable: true`).
    pub test: Vec<String>,
    /// Nanoseconds; 0 = unset.
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Logging {
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileMount {
    /// The key under top-level `secrets`/`configs`.
    pub source: String,
    /// Absolute path in the container (secrets default `/run/secrets/<source>`,
    /// configs default `/<source>`).
    pub target: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Network {
    /// The engine's name: `name:` if given, else `<project>_<key>`.
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `ipam.config[].subnet`, `gateway`.
    pub subnets: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Volume {
    /// The engine's name: `name:` if given, else `<project>_<key>`.
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A secret or config: its content comes from a file or an environment variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FileObject {
    /// Absolute path.
    File(PathBuf),
    /// The value of this variable in the CLI's environment (resolved at load).
    Content(String),
}
