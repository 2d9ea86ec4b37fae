//! Networks: the default `bridge`, user-defined bridge networks with DNS, published
//! ports, and each container's endpoints.
//!
//! A bridge-mode container gets a network namespace of its own, made by berthd
//! before the start (`<exec-root>/netns/<id>`, bind-mounted so it outlives
//! berthd), with one veth endpoint per network; the runtime joins it by path.
//! Addresses are handed out at start from the network's subnet and shown while
//! the container runs. When it stops, its published ports are unpublished and the
//! namespace is unmounted; the kernel then deletes the veth pairs.
//!
//! All firewall state lives in one nftables table per daemon (`berth`, or
//! `berth_<bridge>` when `--bridge` names another default bridge), or, on hosts
//! without nft (or with `--firewall-backend iptables`), in iptables chains named
//! after that table; berthd reconciles it on start. User networks get an embedded DNS server on their
//! gateway address that answers container names, network aliases and short IDs.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_network::{Backend, Firewall, Ipv4Net, NetworkSpec};

use crate::model::{ContainerRecord, NetworkRecord};
use crate::{Engine, EngineError, Result};

mod dns;
mod endpoints;
mod objects;
mod ports;

/// Network modes that are not networks of their own.
pub(crate) const SPECIAL_MODES: &[&str] = &["none", "host"];

/// What `--bridge`, `--bip` and `--default-address-pool` configure.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The default bridge's interface (dockerd's `--bridge`, default `berth0`).
    pub bridge: String,
    /// Gateway address and prefix of the default bridge (`--bip`), e.g.
    /// `172.30.0.1/16`; chosen from the pools when empty.
    pub bip: Option<String>,
    /// Pools user networks' subnets come from (`--default-address-pool`).
    pub pools: Vec<(Ipv4Net, u8)>,
    /// Turn networking off (containers get loopback only); for hosts without
    /// nftables or iptables.
    pub disabled: bool,
    /// The tool that programs the firewall (`--firewall-backend`); detected
    /// (nftables, else iptables) when None.
    pub firewall_backend: Option<Backend>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            bip: None,
            pools: berth_network::default_pools(),
            disabled: false,
            firewall_backend: None,
        }
    }
}

/// Per-daemon network runtime: the firewall and the DNS servers.
pub(crate) struct Networking {
    pub firewall: Option<Firewall>,
    dns: std::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

fn net_error(e: berth_network::Error) -> EngineError {
    EngineError::Network(e)
}

fn spec_of(n: &NetworkRecord) -> Result<NetworkSpec> {
    Ok(NetworkSpec {
        id: n.id.clone(),
        name: n.name.clone(),
        bridge: n.bridge.clone(),
        subnet: stored(n, "subnet", &n.subnet)?,
        gateway: stored(n, "gateway", &n.gateway)?,
        internal: n.internal,
    })
}

/// A network record's `field`, parsed; a value that does not parse names the
/// network and keeps the parse error.
fn stored<T>(n: &NetworkRecord, field: &'static str, value: &str) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value.parse().map_err(|e| EngineError::StoredAddress {
        network: n.name.clone(),
        field,
        value: value.to_string(),
        source: Box::new(e),
    })
}

/// The firewall table a daemon owns: `berth` for the default bridge name,
/// `berth_<bridge>` otherwise, so daemons side by side never share one.
pub(crate) fn table_name(bridge: &str) -> String {
    if bridge == "berth0" {
        "berth".into()
    } else {
        format!(
            "berth_{}",
            bridge
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        )
    }
}

impl Networking {
    pub(crate) fn new(config: &NetworkConfig) -> Networking {
        let backend = if config.disabled {
            None
        } else {
            let detected = config.firewall_backend.or_else(Backend::detect);
            if detected.is_none() {
                tracing::error!("neither nft nor iptables is installed: networking disabled");
            }
            detected
        };
        let firewall = backend.and_then(|backend| {
            Firewall::new(&table_name(&config.bridge), backend)
                .map_err(|e| tracing::error!(error = %e, "networking disabled"))
                .ok()
        });
        Networking {
            firewall,
            dns: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl Engine {
    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("netns").join(id)
    }

    pub fn networks(&self) -> Vec<NetworkRecord> {
        let mut v: Vec<NetworkRecord> = self.lock().networks.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// By full ID, name, or unique ID prefix.
    pub fn network(&self, reference: &str) -> Result<NetworkRecord> {
        let st = self.lock();
        if let Some(n) = st.networks.get(reference) {
            return Ok(n.clone());
        }
        if let Some(n) = st.networks.values().find(|n| n.name == reference) {
            return Ok(n.clone());
        }
        let mut matches = st
            .networks
            .values()
            .filter(|n| !reference.is_empty() && n.id.starts_with(reference));
        match (matches.next(), matches.next()) {
            (Some(n), None) => Ok(n.clone()),
            _ => Err(EngineError::NotFound(format!(
                "network {reference} not found"
            ))),
        }
    }

    /// Containers (running or not) configured on network `id`.
    pub fn network_containers(&self, id: &str) -> Vec<ContainerRecord> {
        self.lock()
            .containers
            .values()
            .filter(|c| c.networks.values().any(|e| e.network_id == id))
            .cloned()
            .collect()
    }
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(EngineError::InvalidArgument(format!(
            "invalid MAC address {s}"
        )));
    }
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16)
            .map_err(|_| EngineError::InvalidArgument(format!("invalid MAC address {s}")))?;
    }
    Ok(mac)
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_tables() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("zz").is_err());
        assert_eq!(
            format_mac(&[2, 0x42, 0xac, 0x11, 0, 2]),
            "02:42:ac:11:00:02"
        );
        assert_eq!(table_name("berth0"), "berth");
        assert_eq!(table_name("bt12x3"), "berth_bt12x3");
    }

    #[test]
    fn a_stored_gateway_that_does_not_parse_names_its_network_and_keeps_the_cause() {
        let record = NetworkRecord {
            name: "front".into(),
            bridge: "br-front".into(),
            subnet: "10.9.0.0/24".into(),
            gateway: "10.9.0.300".into(),
            ..Default::default()
        };
        let e = spec_of(&record).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
        let cause = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(cause, Some("invalid IPv4 address syntax".to_string()));
        assert!(e
            .to_string()
            .starts_with("network front: stored gateway \"10.9.0.300\""));

        let good = NetworkRecord {
            gateway: "10.9.0.1".into(),
            ..record
        };
        assert_eq!(spec_of(&good).unwrap().gateway.to_string(), "10.9.0.1");

        let bad_subnet = NetworkRecord {
            subnet: "10.9.0.0/40".into(),
            ..good
        };
        let e = spec_of(&bad_subnet).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("network front: stored subnet \"10.9.0.0/40\": "));
        assert!(std::error::Error::source(&e).is_some());
    }
}
