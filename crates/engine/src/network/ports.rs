//! Published ports (`-p`, `-P`): host ports picked and DNAT rules installed.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use berth_network::{PortMapping, Proto};

use super::*;
use crate::model::{ContainerRecord, EndpointSettings, PortBinding};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// `-p` and `-P`: picks host ports (random ones for an empty HostPort) and
    /// installs the DNAT rules.
    pub(super) fn publish_ports(
        &self,
        c: &ContainerRecord,
        endpoints: &BTreeMap<String, EndpointSettings>,
    ) -> Result<BTreeMap<String, Vec<PortBinding>>> {
        let mut wanted: BTreeMap<String, Vec<PortBinding>> = c.host_config.port_bindings.clone();
        if c.host_config.publish_all_ports {
            for port in c.config.exposed_ports.iter().flatten() {
                wanted
                    .entry(port.clone())
                    .or_insert_with(|| vec![PortBinding::default()]);
            }
        }
        let mut shown: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
        for port in c.config.exposed_ports.iter().flatten() {
            shown.entry(port.clone()).or_default();
        }
        if wanted.is_empty() {
            return Ok(shown);
        }
        let Some(fw) = &self.networking.firewall else {
            return Ok(shown);
        };
        let container_ip: Ipv4Addr = endpoints
            .values()
            .next()
            .and_then(|e| e.ip_address.parse().ok())
            .ok_or_else(|| EngineError::InvalidArgument("published ports need a network".into()))?;
        let reserved: HashSet<u16> = self
            .lock()
            .containers
            .values()
            .filter(|o| o.id != c.id && o.state.running())
            .flat_map(|o| o.ports.values().flatten())
            .filter_map(|b| b.host_port.parse().ok())
            .collect();
        let mut mappings = Vec::new();
        let mut taken_now = reserved.clone();
        for (port, bindings) in &wanted {
            let (num, proto) = port.split_once('/').unwrap_or((port.as_str(), "tcp"));
            let container_port: u16 = num
                .parse()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid port {port}")))?;
            let proto: Proto = proto
                .parse()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid protocol in {port}")))?;
            for b in bindings {
                let host_ip = match b.host_ip.as_str() {
                    "" | "0.0.0.0" => None,
                    ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                        EngineError::InvalidArgument(format!("invalid host IP {ip}"))
                    })?),
                };
                let host_port = if b.host_port.is_empty() || b.host_port == "0" {
                    berth_network::ephemeral_port(proto, host_ip, &taken_now).map_err(net_error)?
                } else if let Some((low, high)) = b.host_port.split_once('-') {
                    // A range (`-p 8000-8010:80`): the first free port of it, as docker.
                    let bad = || {
                        EngineError::InvalidArgument(format!("invalid host port {}", b.host_port))
                    };
                    let (low, high): (u16, u16) = (
                        low.parse().map_err(|_| bad())?,
                        high.parse().map_err(|_| bad())?,
                    );
                    (low..=high)
                        .find(|p| {
                            !taken_now.contains(p) && berth_network::port_free(proto, host_ip, *p)
                        })
                        .ok_or_else(|| {
                            EngineError::Forbidden(format!(
                                "driver failed programming external connectivity on endpoint {}: all ports of {} are allocated",
                                c.name, b.host_port
                            ))
                        })?
                } else {
                    let p: u16 = b.host_port.parse().map_err(|_| {
                        EngineError::InvalidArgument(format!("invalid host port {}", b.host_port))
                    })?;
                    if taken_now.contains(&p) || !berth_network::port_free(proto, host_ip, p) {
                        return Err(EngineError::Forbidden(format!(
                            "driver failed programming external connectivity on endpoint {}: Bind for {}:{p} failed: port is already allocated",
                            c.name,
                            host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into())
                        )));
                    }
                    p
                };
                taken_now.insert(host_port);
                mappings.push(PortMapping {
                    proto,
                    host_ip,
                    host_port,
                    container_ip,
                    container_port,
                });
                shown.entry(port.clone()).or_default().push(PortBinding {
                    host_ip: host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    host_port: host_port.to_string(),
                });
            }
        }
        fw.publish(&c.id, &mappings).map_err(net_error)?;
        Ok(shown)
    }
}
