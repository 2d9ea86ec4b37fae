//! `POST /containers/create` and `POST /containers/{id}/update`, and the
//! `HostConfig` that inspect shows: docker's `container.Config`, `HostConfig`
//! and `NetworkingConfig` as clients send them.
//!
//! Reading is lenient as dockerd's is (unset fields may come as `null`, `Cmd`
//! and `Entrypoint` as one string); writing leaves out what is unset, so that a
//! body built by berth's CLI means the same to dockerd as to berthd (an absent
//! `Entrypoint` inherits the image's, an empty one clears it).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::objects::null_as_default;

/// `Cmd`/`Entrypoint`: a list, a single string, or null.
fn string_or_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
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

/// docker's `{}`: the value of each key of `ExposedPorts` and `Volumes`, sets
/// written as objects. Reads whatever a client put there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Empty, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Empty)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The body of `POST /containers/create`: the container's `Config` at the top
/// level, with `HostConfig` and `NetworkingConfig` beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(rename = "HostConfig", default, deserialize_with = "null_as_default")]
    pub host_config: HostConfig,
    #[serde(
        rename = "NetworkingConfig",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "NetworkingConfig::is_empty"
    )]
    pub networking_config: NetworkingConfig,
}

/// docker's `container.Config`, as a create request carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub hostname: String,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub domainname: String,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    /// `"80/tcp" → {}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// None: the image's.
    #[serde(
        deserialize_with = "string_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    #[serde(deserialize_with = "null_as_default")]
    pub image: String,
    /// `"/path" → {}`: anonymous volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    /// None: the image's; empty: none.
    #[serde(
        deserialize_with = "string_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_disabled: Option<bool>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_timeout: Option<i64>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
}

/// docker's `Config.Healthcheck`: `Test` is `[]` (inherit), `["NONE"]`,
/// `["CMD", arg...]` or `["CMD-SHELL", command]`; durations in nanoseconds,
/// 0 meaning "inherit".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    #[serde(deserialize_with = "null_as_default")]
    pub test: Vec<String>,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// docker's `HostConfig`: what a create request asks of the host, and what
/// inspect shows of it. Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v SRC:DEST[:MODE]`.
    #[serde(deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    /// `default`, `bridge`, `none`, `host`, `container:<id>` or a network.
    #[serde(deserialize_with = "null_as_default")]
    pub network_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub restart_policy: RestartPolicy,
    #[serde(deserialize_with = "null_as_default")]
    pub auto_remove: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub log_config: LogConfig,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub memory: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_swap: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    /// The kernel's list format (`0-2,4`).
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "null_as_default")]
    pub cpuset_mems: String,
    #[serde(deserialize_with = "null_as_default")]
    pub nano_cpus: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_shares: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_quota: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub pids_limit: i64,
    pub oom_kill_disable: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub extra_hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns: Vec<String>,
    pub init: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub cgroup_parent: String,
    #[serde(deserialize_with = "null_as_default")]
    pub runtime: String,
    /// `--mount`.
    #[serde(deserialize_with = "null_as_default")]
    pub mounts: Vec<Mount>,
    /// `--tmpfs`: path → mount options.
    #[serde(deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub volumes_from: Vec<String>,
    /// `-p`: `"80/tcp"` → host bindings.
    #[serde(deserialize_with = "null_as_default")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`.
    #[serde(deserialize_with = "null_as_default")]
    pub publish_all_ports: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    #[serde(deserialize_with = "null_as_default")]
    pub sysctls: BTreeMap<String, String>,
    /// Bytes; 0 asks for docker's 64 MiB.
    #[serde(deserialize_with = "null_as_default")]
    pub shm_size: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub group_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub devices: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub device_cgroup_rules: Vec<String>,
}

/// `--restart`: `Name` is empty or `no`, `always`, `unless-stopped` or
/// `on-failure` (the only one with a `MaximumRetryCount`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub maximum_retry_count: i64,
}

/// `--log-driver` and its `--log-opt`s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    #[serde(rename = "Type", deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(rename = "Config", deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// One `--ulimit` (-1 is unlimited).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub soft: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub hard: i64,
}

/// Where a container port is published: an empty `HostPort` is a free one,
/// `N-M` any free one of a range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(deserialize_with = "null_as_default")]
    pub host_ip: String,
    #[serde(deserialize_with = "null_as_default")]
    pub host_port: String,
}

/// One `--mount`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type", deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub source: String,
    #[serde(deserialize_with = "null_as_default")]
    pub target: String,
    #[serde(deserialize_with = "null_as_default")]
    pub read_only: bool,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub bind_options: Option<BindOptions>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_options: Option<VolumeOptions>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub propagation: String,
    #[serde(deserialize_with = "null_as_default", skip_serializing_if = "is_false")]
    pub create_mountpoint: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub no_copy: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub driver_config: Option<DriverConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub size_bytes: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub mode: u32,
}

/// `NetworkingConfig`: settings per network to join at create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub endpoints_config: BTreeMap<String, EndpointConfig>,
}

impl NetworkingConfig {
    fn is_empty(&self) -> bool {
        self.endpoints_config.is_empty()
    }
}

/// What a create asks of its place on one network (`--network-alias`, `--ip`,
/// `--mac-address`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointConfig {
    #[serde(
        rename = "IPAMConfig",
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_config: Option<EndpointIpamRequest>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
}

/// `--ip`: the address asked for on a user-defined network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamRequest {
    #[serde(rename = "IPv4Address", deserialize_with = "null_as_default")]
    pub ipv4_address: String,
}

/// `POST /containers/create`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateResponse {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub warnings: Vec<String>,
}

/// `POST /containers/{id}/update`: what is present changes, the rest stays.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerUpdateRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

/// `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreateRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(
        deserialize_with = "string_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub detach_keys: String,
}

/// `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub detach: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_with_nulls_and_strings() {
        let req: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"busybox","Cmd":"true","Entrypoint":null,"Env":null,"Labels":{"a":"b"},
                "Unknown":1,"HostConfig":{"Binds":null,"Memory":null,"RestartPolicy":null},
                "NetworkingConfig":null}"#,
        )
        .unwrap();
        assert_eq!(req.config.cmd, Some(vec!["true".to_string()]));
        assert_eq!(req.config.entrypoint, None);
        assert_eq!(req.config.labels["a"], "b");
        assert!(req.host_config.binds.is_empty() && req.host_config.memory == 0);
        let req: ContainerCreateRequest =
            serde_json::from_str(r#"{"Image":"i","Entrypoint":[]}"#).unwrap();
        assert_eq!(req.config.entrypoint, Some(vec![]));
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert!(serde_json::from_str::<ContainerConfig>(r#"{"Tty":"yes"}"#).is_err());
        assert!(serde_json::from_str::<HostConfig>(r#"{"Memory":"lots"}"#).is_err());
    }

    #[test]
    fn what_the_cli_writes_leaves_the_image_its_command() {
        let req = ContainerCreateRequest {
            config: ContainerConfig {
                image: "busybox".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let body = serde_json::to_value(&req).unwrap();
        assert!(body.get("Entrypoint").is_none() && body.get("Cmd").is_none());
        assert!(body.get("NetworkingConfig").is_none());
        assert_eq!(body["HostConfig"]["RestartPolicy"]["Name"], "");
        let back: ContainerCreateRequest = serde_json::from_value(body).unwrap();
        assert_eq!(back, req);
    }
}
