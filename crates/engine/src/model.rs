//! Records berth keeps, in the Docker Engine API's JSON shapes where they are shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "string_or_list")]
    pub cmd: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "string_or_list")]
    pub entrypoint: Vec<String>,
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Config", deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// Docker's `HostConfig` (the parts berth honours; unknown fields are ignored).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub log_config: LogConfig,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    pub memory: i64,
    pub memory_swap: i64,
    /// `--memory-reservation`: the soft limit, in bytes.
    #[serde(deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    /// `--cpuset-cpus` / `--cpuset-mems`, the kernel's list format (`0-2,4`).
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_mems: String,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub pids_limit: i64,
    pub oom_kill_disable: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub extra_hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns: Vec<String>,
    pub init: Option<bool>,
    pub cgroup_parent: String,
    /// OCI runtime: empty or `berth` for the built-in one, else a name the daemon
    /// knows (`runc`).
    pub runtime: String,
    #[serde(deserialize_with = "null_as_default")]
    pub mounts: Vec<MountRequest>,
    #[serde(deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub volumes_from: Vec<String>,
    /// `-p`: "80/tcp" → host bindings.
    #[serde(deserialize_with = "null_as_default")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: every exposed port on a random host port.
    pub publish_all_ports: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_options: Vec<String>,
    /// `--ulimit`.
    #[serde(deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl`.
    #[serde(deserialize_with = "null_as_default")]
    pub sysctls: BTreeMap<String, String>,
    /// `--shm-size` in bytes (docker records its 64 MiB default).
    pub shm_size: i64,
    /// `--group-add`: group names or ids.
    #[serde(deserialize_with = "null_as_default")]
    pub group_add: Vec<String>,
    /// `--device`: not implemented, kept only so that a request naming devices
    /// is refused rather than silently run without them.
    #[serde(deserialize_with = "null_as_default")]
    pub devices: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
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
    pub host_config: HostConfig,
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
    /// Published ports while running ("80/tcp" → bindings actually made).
    #[serde(default)]
    pub ports: BTreeMap<String, Vec<PortBinding>>,
    /// MAC address asked for at create (`--mac-address`).
    #[serde(default)]
    pub mac_address: String,
}

impl ContainerRecord {
    /// The command line the container runs: entrypoint followed by cmd.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.config.entrypoint.clone();
        argv.extend(self.config.cmd.iter().cloned());
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
    pub history: Vec<serde_json::Value>,
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

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker accepts `Cmd`/`Entrypoint` as a list, a single string, or null.
pub(crate) fn string_or_list<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::One(s)) => vec![s],
        Some(Either::Many(v)) => v,
    })
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
        assert_eq!(c.cmd, vec!["true"]);
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.labels["a"], "b");
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert!(serde_json::from_str::<ContainerConfig>(r#"{"Tty":"yes"}"#).is_err());
        assert!(serde_json::from_str::<HostConfig>(r#"{"Memory":"lots"}"#).is_err());
    }
}
