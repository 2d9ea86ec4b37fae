//! berth-api-types: the Docker Engine API's wire shapes that both ends of the
//! API speak, so that `crates/api` (the server) and `crates/cli` (a client)
//! encode and decode them once. No I/O, no engine types.
//!
//! Here so far: docker's base64 ([`base64`]), the `X-Registry-Auth` credentials
//! ([`AuthConfig`]), the `X-Docker-Container-Path-Stat` header ([`PathStat`]),
//! the request bodies of networks and volumes ([`NetworkCreateRequest`],
//! [`NetworkConnectRequest`], [`VolumeCreateRequest`]), and of containers:
//! create ([`ContainerCreateRequest`] with its [`HostConfig`]) and update
//! ([`ContainerUpdateRequest`]).

pub mod base64;
mod container;
mod filters;
mod objects;

pub use container::{
    BindOptions, ContainerConfig, ContainerCreateRequest, ContainerCreateResponse,
    ContainerUpdateRequest, DriverConfig, Empty, EndpointConfig, EndpointIpamRequest,
    ExecCreateRequest, ExecStartRequest, Healthcheck, HostConfig, LogConfig, Mount,
    NetworkingConfig, PortBinding, RestartPolicy, TmpfsOptions, Ulimit, VolumeOptions,
};
pub use filters::Filters;

pub use objects::{
    Ipam, IpamPool, NetworkConnectRequest, NetworkCreateRequest, VolumeCreateRequest,
};

use serde::{Deserialize, Serialize};

/// Registry credentials as docker sends them in `X-Registry-Auth` (base64url of
/// this JSON) and in `POST /auth`'s body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
}

impl AuthConfig {
    /// The `X-Registry-Auth` value.
    pub fn to_header(&self) -> String {
        base64::encode(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    /// An `X-Registry-Auth` value; None if it is not base64 of such JSON.
    pub fn from_header(value: &str) -> Option<AuthConfig> {
        serde_json::from_slice(&base64::decode(value)?).ok()
    }
}

/// The `auth` field of a `config.json` login: base64 of `user:password`.
pub fn encode_basic(username: &str, password: &str) -> String {
    base64::encode(format!("{username}:{password}").as_bytes())
}

/// The user and password of a `config.json` `auth` field.
pub fn decode_basic(auth: &str) -> Option<(String, String)> {
    let pair = String::from_utf8(base64::decode(auth)?).ok()?;
    let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
    Some((user.to_string(), password.to_string()))
}

/// What `HEAD`/`GET /containers/{id}/archive` report of a path, base64 JSON in
/// the `X-Docker-Container-Path-Stat` header. `mode` is Go's `os.FileMode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.ModeDir` and `os.ModeSymlink` bits.
pub const GO_MODE_DIR: u32 = 1 << 31;
pub const GO_MODE_SYMLINK: u32 = 1 << 27;

impl PathStat {
    pub fn to_header(&self) -> String {
        base64::encode(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    pub fn from_header(value: &str) -> Option<PathStat> {
        serde_json::from_slice(&base64::decode(value)?).ok()
    }

    /// A directory (a symlink is not one: what it leads to is reported apart).
    pub fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0 && self.mode & GO_MODE_SYMLINK == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_round_trips_and_reads_dockers_header() {
        let auth = AuthConfig {
            username: "u".into(),
            password: "p:w".into(),
            serveraddress: "reg.example:5000".into(),
            ..Default::default()
        };
        assert_eq!(AuthConfig::from_header(&auth.to_header()), Some(auth));
        // The docker CLI sends base64url without padding.
        let docker = "eyJ1c2VybmFtZSI6ImEiLCJwYXNzd29yZCI6ImIifQ";
        let read = AuthConfig::from_header(docker).unwrap();
        assert_eq!((read.username.as_str(), read.password.as_str()), ("a", "b"));
        assert_eq!(AuthConfig::from_header("not base64!"), None);
        assert_eq!(AuthConfig::from_header(&base64::encode(b"[1]")), None);
    }

    #[test]
    fn basic_pairs_keep_colons_in_the_password() {
        let auth = encode_basic("user", "pa:ss");
        assert_eq!(auth, "dXNlcjpwYTpzcw==");
        assert_eq!(
            decode_basic(&auth),
            Some(("user".to_string(), "pa:ss".to_string()))
        );
    }

    #[test]
    fn path_stat_as_docker_encodes_it() {
        let stat = PathStat {
            name: "etc".into(),
            size: 4096,
            mode: GO_MODE_DIR | 0o755,
            mtime: "2026-12-06T00:00:00Z".into(),
            link_target: String::new(),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&base64::decode(&stat.to_header()).unwrap()).unwrap();
        assert_eq!(json["linkTarget"], "");
        assert_eq!(json["mode"], 2147484141u64);
        assert!(PathStat::from_header(&stat.to_header()).unwrap().is_dir());
        let link = PathStat {
            mode: GO_MODE_SYMLINK | GO_MODE_DIR | 0o777,
            ..stat
        };
        assert!(!link.is_dir());
    }
}
