//! The records berth keeps of containers, images, networks and volumes: the
//! engine's own types. Docker's wire shapes are `berth-api-types`' and the API
//! converts; what is persisted keeps the field names berth has always written,
//! which are docker's (a fixture of such a record is read back in the tests).
//!
//! `ContainerConfig` is the `config` object of an image's config blob (OCI's
//! image config with docker's additions); a container's configuration is the
//! same object, the image's merged with what the create asked.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::port::PortMap;

/// Docker's `Config` of a container or image (the parts berth honours).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `80/tcp`...; docker writes the set as an object of `{}`.
    #[serde(skip_serializing_if = "Option::is_none", with = "object_keys")]
    pub exposed_ports: Option<BTreeSet<String>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// None: unset, so a container inherits the image's (docker writes `null`).
    #[serde(deserialize_with = "string_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    pub image: String,
    /// The image's anonymous volumes, written as docker writes them: `{"/data": {}}`.
    #[serde(skip_serializing_if = "Option::is_none", with = "object_keys")]
    pub volumes: Option<BTreeSet<String>>,
    pub working_dir: String,
    /// None: unset (inherited); empty: none, whatever the image says.
    #[serde(deserialize_with = "string_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `ONBUILD` triggers, run when a build uses this image as its base.
    #[serde(
        rename = "OnBuild",
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    /// `SHELL` for shell-form instructions in builds on this image.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
}

/// docker's `Config.Healthcheck`: `Test` is `[]` (inherit), `["NONE"]`,
/// `["CMD", arg...]` or `["CMD-SHELL", command]`; durations in nanoseconds,
/// 0 meaning "inherit" (then docker's defaults).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    #[serde(deserialize_with = "null_as_default")]
    pub test: Vec<String>,
    // Clients send null for what they leave unset (docker-py does).
    #[serde(deserialize_with = "null_as_default")]
    pub interval: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub timeout: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub start_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub start_interval: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub retries: i64,
}

/// `State.Health` as docker shows it; the monitor that runs the probes reports it
/// in this very shape.
pub use berth_monitor::{Health, HealthLogEntry};

/// What happens when a container's process exits (docker's `--restart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RestartPolicyRecord", into = "RestartPolicyRecord")]
pub enum RestartPolicy {
    /// It stays stopped.
    #[default]
    No,
    /// It starts again unless a user stopped it.
    Always,
    /// As `Always`, and it also stays stopped across a daemon restart when a
    /// user stopped it.
    UnlessStopped,
    /// It starts again after a non-zero exit, at most `max_retries` times
    /// (0: without limit).
    OnFailure { max_retries: i64 },
}

impl RestartPolicy {
    /// docker's `Name` and `MaximumRetryCount`, checked as dockerd (20.10)
    /// checks them: an empty name is `no` whatever the count.
    pub fn parse(name: &str, maximum_retry_count: i64) -> crate::Result<RestartPolicy> {
        let invalid = |m: String| Err(crate::EngineError::InvalidArgument(m));
        match name {
            "" => Ok(RestartPolicy::No),
            "no" | "always" | "unless-stopped" if maximum_retry_count != 0 => invalid(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            )),
            "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" if maximum_retry_count < 0 => {
                invalid("maximum retry count cannot be negative".into())
            }
            "on-failure" => Ok(RestartPolicy::OnFailure {
                max_retries: maximum_retry_count,
            }),
            other => invalid(format!("invalid restart policy '{other}'")),
        }
    }

    /// docker's name of it.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    /// docker's `MaximumRetryCount`.
    pub fn max_retries(&self) -> i64 {
        match self {
            RestartPolicy::OnFailure { max_retries } => *max_retries,
            _ => 0,
        }
    }
}

/// How a restart policy is persisted (docker's field names, as berth has always
/// written them). A name berth does not know reads as `no`: records are checked
/// when written, and an unreadable record would lose the container.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicyRecord {
    name: String,
    maximum_retry_count: i64,
}

impl From<RestartPolicyRecord> for RestartPolicy {
    fn from(r: RestartPolicyRecord) -> RestartPolicy {
        let fallback = match r.name.as_str() {
            "on-failure" => RestartPolicy::OnFailure { max_retries: 0 },
            _ => RestartPolicy::No,
        };
        RestartPolicy::parse(&r.name, r.maximum_retry_count).unwrap_or(fallback)
    }
}

impl From<RestartPolicy> for RestartPolicyRecord {
    fn from(p: RestartPolicy) -> RestartPolicyRecord {
        RestartPolicyRecord {
            name: p.name().into(),
            maximum_retry_count: p.max_retries(),
        }
    }
}

/// Where a container's network comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum NetworkMode {
    /// The default bridge network (`default`, or nothing asked).
    #[default]
    Default,
    /// A loopback interface only.
    None,
    /// The host's own network namespace.
    Host,
    /// The namespace of another container (`container:<name or id>`).
    Container(String),
    /// A network by name or id (`bridge` is the default one by name).
    Network(String),
}

impl NetworkMode {
    /// Joins no bridge network of its own: none, host or another container's.
    pub fn is_special(&self) -> bool {
        matches!(
            self,
            NetworkMode::None | NetworkMode::Host | NetworkMode::Container(_)
        )
    }

    /// The network a bridge-mode container joins first, by name or id.
    pub fn primary_network(&self) -> Option<&str> {
        match self {
            NetworkMode::Default => Some("bridge"),
            NetworkMode::Network(n) => Some(n),
            _ => None,
        }
    }
}

impl From<String> for NetworkMode {
    fn from(mode: String) -> NetworkMode {
        match mode.as_str() {
            "" | "default" => NetworkMode::Default,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            _ => match mode.strip_prefix("container:") {
                Some(other) => NetworkMode::Container(other.to_string()),
                None => NetworkMode::Network(mode),
            },
        }
    }
}

impl From<&str> for NetworkMode {
    fn from(mode: &str) -> NetworkMode {
        NetworkMode::from(mode.to_string())
    }
}

impl From<NetworkMode> for String {
    fn from(mode: NetworkMode) -> String {
        mode.to_string()
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkMode::Default => f.write_str("default"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Container(other) => write!(f, "container:{other}"),
            NetworkMode::Network(n) => f.write_str(n),
        }
    }
}

/// The log driver and its options (`--log-driver`, `--log-opt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogSettings {
    #[serde(rename = "Type")]
    pub driver: String,
    #[serde(rename = "Config")]
    pub options: BTreeMap<String, String>,
}

/// The limits a container's cgroup enforces: set at create, changed by `update`.
/// 0 (None) is "no limit" throughout.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    /// Bytes.
    pub memory: i64,
    /// Memory plus swap, bytes; -1 for unlimited swap.
    pub memory_swap: i64,
    /// The soft limit, bytes.
    pub memory_reservation: i64,
    /// The kernel's list format (`0-2,4`).
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// CPUs in billionths (`--cpus 1.5` is 1.5e9).
    pub nano_cpus: i64,
    /// Relative weight (1024 is one share).
    pub cpu_shares: i64,
    /// CFS period and quota, microseconds.
    pub cpu_period: i64,
    pub cpu_quota: i64,
    /// -1: unlimited; 0: unset.
    pub pids_limit: i64,
    pub oom_kill_disable: Option<bool>,
}

/// A change of a container's resources (`update`): what is Some changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceUpdate {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartPolicy>,
}

/// How a container uses the host: its network, mounts, privileges, limits
/// and policies. The engine's own record; it is persisted with the field
/// names berth has always written (docker's), so that earlier records read
/// back unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostSettings {
    /// `-v SRC:DEST[:MODE]`, resolved into `ContainerRecord::mounts` at create.
    pub binds: Vec<String>,
    pub network_mode: NetworkMode,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    #[serde(rename = "LogConfig")]
    pub log: LogSettings,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    #[serde(flatten)]
    pub resources: Resources,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub init: Option<bool>,
    pub cgroup_parent: String,
    /// OCI runtime: empty or `berth` for the built-in one, else a name the daemon
    /// knows (`runc`).
    pub runtime: String,
    pub mounts: Vec<MountRequest>,
    pub tmpfs: BTreeMap<String, String>,
    pub volumes_from: Vec<String>,
    /// `-p`: container port → host bindings.
    #[serde(deserialize_with = "crate::port::lenient_port_map")]
    pub port_bindings: PortMap,
    /// `-P`: every exposed port on a random host port.
    pub publish_all_ports: bool,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    /// `--shm-size` in bytes (docker records its 64 MiB default).
    pub shm_size: i64,
    /// `--group-add`: group names or ids.
    pub group_add: Vec<String>,
    /// `--device`: not implemented, kept only so that a request naming devices
    /// is refused rather than silently run without them.
    pub devices: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
}

/// One `--ulimit` (-1 is unlimited).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A container's place on one network (docker's `EndpointSettings`). The
/// address fields are filled while the container runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig", skip_serializing_if = "Option::is_none")]
    pub ipam_config: Option<EndpointIpam>,
    #[serde(deserialize_with = "null_as_default")]
    pub aliases: Vec<String>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub mac_address: String,
    /// The host side of the veth pair (berth's own field).
    #[serde(rename = "BerthHostVeth", skip_serializing_if = "String::is_empty")]
    pub host_veth: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// A network (docker's `Network` shape is built from it by the API).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The Linux bridge.
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The default `bridge` network: no DNS, not removable.
    pub default_bridge: bool,
}

/// One entry of docker's `HostConfig.Mounts` (`--mount`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountRequest {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: String,
    pub create_mountpoint: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<DriverConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

/// A mount of a container, resolved at create time (docker's `MountPoint`; the
/// API shows it under `Mounts`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MountPoint {
    /// volume | bind | tmpfs
    pub kind: String,
    /// Volume name.
    pub name: String,
    /// Host path (bind, volume's `_data`); empty for tmpfs.
    pub source: String,
    pub destination: String,
    /// What the user wrote after the second colon of `-v` (`ro`, `z`, ...).
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// tmpfs mount data (`size=...`, `mode=...`).
    pub tmpfs_options: Vec<String>,
    /// Fill an empty volume from the image on start.
    pub copy_data: bool,
    /// Made for this container alone (`-v /path`, image VOLUME); `rm -v` deletes it.
    pub anonymous: bool,
}

/// A named or anonymous volume (docker's `Volume` shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub scope: String,
}

pub use crate::state::{ContainerState, Status, ZERO_TIME};

/// One container as berth persists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without docker's leading slash.
    pub name: String,
    pub created: String,
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostSettings,
    pub state: ContainerState,
    pub restart_count: i64,
    /// Set by `stop`/`kill` from a user so that restart policies leave it stopped.
    #[serde(default)]
    pub manually_stopped: bool,
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Networks by name (bridge-mode containers only).
    #[serde(default)]
    pub networks: BTreeMap<String, EndpointSettings>,
    /// Ports while running: every exposed one, with the bindings actually made.
    #[serde(default, deserialize_with = "crate::port::lenient_port_map")]
    pub ports: PortMap,
    /// MAC address asked for at create (`--mac-address`).
    #[serde(default)]
    pub mac_address: String,
}

impl ContainerRecord {
    /// The command line the container runs: entrypoint followed by cmd.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.config.entrypoint.clone().unwrap_or_default();
        argv.extend(self.config.cmd.iter().flatten().cloned());
        argv
    }
}

/// An image's config blob (OCI image config / docker image JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfigBlob {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryStep>,
}

/// One step of an image config's `history`, as the OCI image spec has it.
/// Read leniently: a field of the wrong type (another tool's history) reads as
/// unset rather than making the image unreadable.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistoryStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The step changed only the config: no layer of its own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl<'de> Deserialize<'de> for HistoryStep {
    /// Anything but an object (Go reads `null` as an empty step) is an empty step.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HistoryStep, D::Error> {
        use serde_json::Value;
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            created: Value,
            #[serde(default)]
            created_by: Value,
            #[serde(default)]
            author: Value,
            #[serde(default)]
            comment: Value,
            #[serde(default)]
            empty_layer: Value,
        }
        let text = |v: Value| match v {
            Value::String(s) => Some(s),
            _ => None,
        };
        let value = Value::deserialize(d)?;
        if !value.is_object() {
            return Ok(HistoryStep::default());
        }
        let raw = Raw::deserialize(value).map_err(serde::de::Error::custom)?;
        Ok(HistoryStep {
            created: text(raw.created),
            created_by: text(raw.created_by),
            author: text(raw.author),
            comment: text(raw.comment),
            empty_layer: raw.empty_layer == Value::Bool(true),
        })
    }
}

impl HistoryStep {
    /// A step whose `created_by` is `command`.
    pub fn created_by(command: impl Into<String>) -> HistoryStep {
        HistoryStep {
            created_by: Some(command.into()),
            ..HistoryStep::default()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// One image as berth persists it; the config blob itself lives in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub created: String,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
    pub comment: String,
    pub config: ImageConfigBlob,
    /// The image a build step started from (docker's `Parent`); empty otherwise.
    #[serde(default)]
    pub parent: String,
    /// What a build step did (instruction and a hash of its inputs): the layer
    /// cache finds a step's result as the child of `parent` with this key.
    #[serde(default)]
    pub build_key: String,
    /// `repo@sha256:...` of the manifests this image was pulled by.
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

impl ImageRecord {
    /// A new image of `config`, stored as the blob `id`: created when its
    /// config says (now if it does not), untagged, with no parent, build key or
    /// pull digest. Callers set what differs with struct update syntax.
    pub fn new(id: String, config: ImageConfigBlob, size: u64) -> ImageRecord {
        let created = if config.created.is_empty() {
            crate::now_rfc3339()
        } else {
            config.created.clone()
        };
        ImageRecord {
            id,
            repo_tags: Vec::new(),
            created,
            size,
            comment: String::new(),
            config,
            parent: String::new(),
            build_key: String::new(),
            repo_digests: Vec::new(),
        }
    }
}

/// Docker's sets written as objects whose values are `{}` (`ExposedPorts`,
/// `Volumes`): read the keys whatever the values hold, write `{}` for each.
pub(crate) mod object_keys {
    use std::collections::BTreeSet;

    use serde::de::IgnoredAny;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        keys: &Option<BTreeSet<String>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match keys {
            None => s.serialize_none(),
            Some(keys) => {
                let mut map = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    map.serialize_entry(k, &Empty)?;
                }
                map.end()
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeSet<String>>, D::Error> {
        let map = Option::<std::collections::BTreeMap<String, IgnoredAny>>::deserialize(d)?;
        Ok(map.map(|m| m.into_keys().collect()))
    }

    /// `{}`.
    struct Empty;

    impl serde::Serialize for Empty {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_map(Some(0))?.end()
        }
    }
}

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker accepts `Cmd`/`Entrypoint` as a list, a single string, or null.
pub(crate) fn string_or_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|e| match e {
        Either::One(s) => vec![s],
        Either::Many(v) => v,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_with_nulls_and_strings() {
        let c: ContainerConfig = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":"true","Entrypoint":null,"Env":null,"Labels":{"a":"b"},"Unknown":1}"#,
        )
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["true".to_string()]));
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.labels["a"], "b");
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert!(serde_json::from_str::<ContainerConfig>(r#"{"Tty":"yes"}"#).is_err());
        assert!(serde_json::from_str::<HostSettings>(r#"{"Memory":"lots"}"#).is_err());
    }

    /// A record as the berth before the engine's own types wrote it, with every
    /// setting set: it reads back, and writes back the same JSON.
    #[test]
    fn records_written_before_read_back_unchanged() {
        let old = include_str!("fixtures/container-record-v1.json");
        let record: ContainerRecord = serde_json::from_str(old).unwrap();
        let h = &record.host_config;
        assert_eq!(
            h.restart_policy,
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(h.network_mode, NetworkMode::Network("net1".into()));
        assert_eq!(h.log.driver, "json-file");
        assert_eq!(h.resources.memory, 10 << 20);
        assert_eq!(h.resources.pids_limit, 64);
        assert_eq!(h.mounts.len(), 3);
        let again = serde_json::to_value(&record).unwrap();
        let old: serde_json::Value = serde_json::from_str(old).unwrap();
        assert_eq!(again, old);
    }

    #[test]
    fn restart_policies_as_dockerd_checks_them() {
        assert_eq!(RestartPolicy::parse("", 0).unwrap(), RestartPolicy::No);
        assert_eq!(RestartPolicy::parse("", 4).unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure", 5).unwrap(),
            RestartPolicy::OnFailure { max_retries: 5 }
        );
        assert!(RestartPolicy::parse("sometimes", 0).is_err());
        assert!(RestartPolicy::parse("always", 2).is_err());
        assert!(RestartPolicy::parse("on-failure", -1).is_err());
        // An older record with an empty name reads as `no` and says so.
        let p: RestartPolicy =
            serde_json::from_str(r#"{"Name":"","MaximumRetryCount":0}"#).unwrap();
        assert_eq!(p, RestartPolicy::No);
        assert_eq!(serde_json::to_value(p).unwrap()["Name"], "no");
    }

    #[test]
    fn network_modes_round_trip() {
        for mode in [
            "default",
            "none",
            "host",
            "container:web",
            "bridge",
            "appnet",
        ] {
            assert_eq!(NetworkMode::from(mode).to_string(), mode);
        }
        assert_eq!(NetworkMode::from(""), NetworkMode::Default);
        assert!(NetworkMode::from("container:x").is_special());
        assert_eq!(
            NetworkMode::from("bridge").primary_network(),
            Some("bridge")
        );
        assert_eq!(NetworkMode::Default.primary_network(), Some("bridge"));
    }

    #[test]
    fn an_image_config_reads_and_writes_as_docker_writes_it() {
        // An image config as docker writes it, plus what other tools put there:
        // a port whose value is not `{}`, a history step with a number for a
        // date and an unknown field. It must still read, and write back docker's form.
        let text = r#"{"architecture":"amd64","os":"linux",
            "config":{"ExposedPorts":{"80/tcp":{},"53/udp":null},"Volumes":{"/data":{}}},
            "rootfs":{"type":"layers","diff_ids":[]},
            "history":[{"created":"2026-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) EXPOSE 80","empty_layer":true},
                       {"created":5,"created_by":"RUN x","comment":"c","author":"a","extra":1},
                       null]}"#;
        let blob: ImageConfigBlob = serde_json::from_str(text).unwrap();
        let ports: Vec<&str> = blob
            .config
            .exposed_ports
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(
            blob.history[0],
            HistoryStep {
                created: Some("2026-01-01T00:00:00Z".into()),
                empty_layer: true,
                ..HistoryStep::created_by("/bin/sh -c #(nop) EXPOSE 80")
            }
        );
        assert_eq!(blob.history[1].created, None);
        assert_eq!(blob.history[1].author.as_deref(), Some("a"));
        assert_eq!(blob.history[2], HistoryStep::default());
        let written = serde_json::to_value(&blob).unwrap();
        assert_eq!(
            written["config"]["ExposedPorts"],
            serde_json::json!({"53/udp": {}, "80/tcp": {}})
        );
        assert_eq!(
            written["config"]["Volumes"],
            serde_json::json!({"/data": {}})
        );
        assert_eq!(
            written["history"][1],
            serde_json::json!({"created_by": "RUN x", "author": "a", "comment": "c"})
        );
        // Unset stays unset: no `ExposedPorts: null` in a config berth writes.
        let bare = serde_json::to_value(ContainerConfig::default()).unwrap();
        assert!(bare.get("ExposedPorts").is_none() && bare.get("Volumes").is_none());
    }
}
