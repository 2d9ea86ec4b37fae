//! Published ports as types: a container port with its protocol, and where on
//! the host it is published. The Docker API writes these as strings (`"80/tcp"`,
//! `HostPort: "8000-8010"`) and the API parses them into these with dockerd's
//! messages; a CRI `PortMapping` (numbers and a protocol enum) maps onto them as
//! directly. Records are still written in docker's string form, so that what
//! berth stored before reads back the same.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::EngineError;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A port of the container: `80/tcp`; a bare number is TCP, as docker reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerPort {
    pub port: u16,
    pub protocol: Protocol,
}

impl ContainerPort {
    pub fn tcp(port: u16) -> ContainerPort {
        ContainerPort {
            port,
            protocol: Protocol::Tcp,
        }
    }
}

impl FromStr for ContainerPort {
    type Err = EngineError;

    /// dockerd's `nat.NewPort` rules and messages.
    fn from_str(s: &str) -> Result<ContainerPort, EngineError> {
        let (number, protocol) = s.split_once('/').unwrap_or((s, "tcp"));
        let port = number
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!("invalid port specification: {number:?}"))
            })?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid proto: {other}"
                )))
            }
        };
        Ok(ContainerPort { port, protocol })
    }
}

/// The ports an `EXPOSE` word names, as docker's `nat.ParsePortSpecs` reads
/// them: `80`, `53/UDP` (any case), and each port of a range, `8000-8002/tcp`.
pub fn exposed(spec: &str) -> Result<Vec<ContainerPort>, EngineError> {
    let (numbers, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    let bad = || EngineError::InvalidArgument(format!("invalid containerPort: {numbers}"));
    let (low, high) = match numbers.split_once('-') {
        Some((low, high)) => (low, high),
        None => (numbers, numbers),
    };
    let (low, high) = match (low.parse::<u16>(), high.parse::<u16>()) {
        (Ok(low), Ok(high)) if 0 < low && low <= high => (low, high),
        _ => return Err(bad()),
    };
    (low..=high)
        .map(|port| format!("{port}/{protocol}").parse())
        .collect()
}

impl fmt::Display for ContainerPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol.as_str())
    }
}

impl Serialize for ContainerPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContainerPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContainerPort, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The host side of a port's publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPorts {
    /// Any free port (docker's empty `HostPort`).
    Any,
    /// This port; 0, which docker also accepts, means any.
    Port(u16),
    /// The first free port of `low..=high` (`-p 8000-8010:80`).
    Range { low: u16, high: u16 },
}

impl FromStr for HostPorts {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<HostPorts, EngineError> {
        let bad = || EngineError::InvalidArgument(format!("invalid port specification: {s:?}"));
        if s.is_empty() {
            return Ok(HostPorts::Any);
        }
        if let Ok(port) = s.parse::<u16>() {
            return Ok(HostPorts::Port(port));
        }
        let (low, high) = s.split_once('-').ok_or_else(bad)?;
        match (low.parse::<u16>(), high.parse::<u16>()) {
            (Ok(low), Ok(high)) if 0 < low && low <= high => Ok(HostPorts::Range { low, high }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for HostPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPorts::Any => Ok(()),
            HostPorts::Port(p) => write!(f, "{p}"),
            HostPorts::Range { low, high } => write!(f, "{low}-{high}"),
        }
    }
}

/// Where a container port is published: an address of the host (None: all of
/// them) and its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostBinding {
    pub host_ip: Option<IpAddr>,
    pub host_port: HostPorts,
}

impl Default for HostBinding {
    fn default() -> HostBinding {
        HostBinding {
            host_ip: None,
            host_port: HostPorts::Any,
        }
    }
}

impl HostBinding {
    /// Docker's `{"HostIp", "HostPort"}` strings, with dockerd's messages.
    pub fn parse(host_ip: &str, host_port: &str) -> Result<HostBinding, EngineError> {
        let host_ip =
            match host_ip {
                "" => None,
                ip => Some(ip.parse::<IpAddr>().map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid IP address: {ip}"))
                })?),
            };
        Ok(HostBinding {
            host_ip,
            host_port: host_port.parse()?,
        })
    }

    /// `HostIp` as docker writes it: empty for all addresses.
    pub fn host_ip_text(&self) -> String {
        self.host_ip.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// Docker's form, in which records have always been written.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerBinding {
    #[serde(default)]
    host_ip: String,
    #[serde(default)]
    host_port: String,
}

impl Serialize for HostBinding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DockerBinding {
            host_ip: self.host_ip_text(),
            host_port: self.host_port.to_string(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HostBinding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HostBinding, D::Error> {
        let b = DockerBinding::deserialize(d)?;
        HostBinding::parse(&b.host_ip, &b.host_port).map_err(serde::de::Error::custom)
    }
}

/// Container ports and their host bindings.
pub type PortMap = BTreeMap<ContainerPort, Vec<HostBinding>>;

/// A port as records and image configs may hold it: the protocol in any case.
pub(crate) fn stored_port(key: &str) -> Result<ContainerPort, EngineError> {
    match key.split_once('/') {
        Some((number, protocol)) => format!("{number}/{}", protocol.to_ascii_lowercase()).parse(),
        None => key.parse(),
    }
}

/// Reads a [`PortMap`] from a record, leaving out any entry that does not
/// parse, with a warning: a record must never become unreadable (and its
/// container lost) over one port.
pub(crate) fn lenient_port_map<'de, D: Deserializer<'de>>(d: D) -> Result<PortMap, D::Error> {
    let raw = Option::<BTreeMap<String, Option<Vec<serde_json::Value>>>>::deserialize(d)?;
    let mut out = PortMap::new();
    for (key, bindings) in raw.into_iter().flatten() {
        // Older records kept a protocol as it was given (`53/UDP`), which the
        // firewall read in any case.
        let Ok(port) = stored_port(&key) else {
            tracing::warn!(port = %key, "left out a stored port that does not parse");
            continue;
        };
        let entry = out.entry(port).or_default();
        for b in bindings.into_iter().flatten() {
            match serde_json::from_value::<HostBinding>(b) {
                Ok(b) => entry.push(b),
                Err(e) => {
                    tracing::warn!(port = %key, error = %e, "left out a stored binding that does not parse")
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_as_dockerd_reads_them() {
        assert_eq!(
            "80".parse::<ContainerPort>().unwrap(),
            ContainerPort::tcp(80)
        );
        assert_eq!(
            "53/udp".parse::<ContainerPort>().unwrap().to_string(),
            "53/udp"
        );
        for (bad, message) in [
            ("0/tcp", r#"invalid port specification: "0""#),
            ("http", r#"invalid port specification: "http""#),
            ("70000", r#"invalid port specification: "70000""#),
            ("80/icmp", "invalid proto: icmp"),
            ("80/TCP", "invalid proto: TCP"),
        ] {
            let e = bad.parse::<ContainerPort>().unwrap_err();
            assert_eq!(e.to_string(), message, "{bad}");
        }
        assert_eq!("".parse::<HostPorts>().unwrap(), HostPorts::Any);
        assert_eq!("0".parse::<HostPorts>().unwrap(), HostPorts::Port(0));
        assert_eq!(
            "8000-8010".parse::<HostPorts>().unwrap(),
            HostPorts::Range {
                low: 8000,
                high: 8010
            }
        );
        for bad in ["8010-8000", "0-5", "a", "1-", "-1", "99999"] {
            assert!(bad.parse::<HostPorts>().is_err(), "{bad}");
        }
        assert_eq!(
            HostBinding::parse("1.2.3", "80").unwrap_err().to_string(),
            "invalid IP address: 1.2.3"
        );
    }

    #[test]
    fn exposed_ports_expand_ranges_as_docker_does() {
        let shown = |spec: &str| -> Vec<String> {
            exposed(spec)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(shown("80"), ["80/tcp"]);
        assert_eq!(shown("53/UDP"), ["53/udp"]);
        assert_eq!(shown("8000-8002/tcp"), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        for bad in ["", "abc", "0", "9-8", "80/icmp", "1-70000"] {
            assert!(exposed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bindings_are_written_as_docker_writes_them_and_read_back() {
        let map: PortMap = [(
            ContainerPort::tcp(80),
            vec![
                HostBinding::parse("127.0.0.1", "8080").unwrap(),
                HostBinding::parse("", "").unwrap(),
                HostBinding::parse("", "9000-9001").unwrap(),
            ],
        )]
        .into();
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(
            text,
            r#"{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"},{"HostIp":"","HostPort":""},{"HostIp":"","HostPort":"9000-9001"}]}"#
        );
        #[derive(Deserialize)]
        struct Record {
            #[serde(deserialize_with = "lenient_port_map")]
            ports: PortMap,
        }
        let back: Record = serde_json::from_str(&format!(r#"{{"ports":{text}}}"#)).unwrap();
        assert_eq!(back.ports, map);
        // What a record can hold that no longer parses is left out, not fatal;
        // an exposed port with no binding is `null`, as docker writes it.
        let odd: Record = serde_json::from_str(
            r#"{"ports":{"8000-8010/tcp":[],"x":null,"53/UDP":null,"81/tcp":[{"HostIp":"::1::","HostPort":"1"},{"HostPort":"2"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            odd.ports,
            [
                ("53/udp".parse().unwrap(), vec![]),
                (
                    ContainerPort::tcp(81),
                    vec![HostBinding::parse("", "2").unwrap()]
                )
            ]
            .into()
        );
    }
}
