//! Published ports (`-p`, `-P`): host ports picked and DNAT rules installed.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use berth_network::{PortMapping, Proto};

use super::*;
use crate::model::{ContainerRecord, EndpointSettings};
use crate::port::{ContainerPort, HostBinding, HostPorts, PortMap, Protocol};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// `-p` and `-P`: picks host ports (random ones for an empty HostPort) and
    /// installs the DNAT rules.
    pub(super) fn publish_ports(
        &self,
        c: &ContainerRecord,
        endpoints: &BTreeMap<String, EndpointSettings>,
    ) -> Result<PortMap> {
        // Exposed ports are docker's strings, from the image or the request; an
        // older image may hold a range or an upper-case protocol, read as docker
        // reads them. One that does not parse at all is not published.
        let mut exposed: Vec<ContainerPort> = Vec::new();
        for spec in c.config.exposed_ports.iter().flatten() {
            match crate::port::exposed(spec) {
                Ok(ports) => exposed.extend(ports),
                Err(e) => {
                    tracing::warn!(container = %c.id, port = %spec, error = %e, "exposed port left out")
                }
            }
        }
        let mut wanted: PortMap = c.host_config.port_bindings.clone();
        if c.host_config.publish_all_ports {
            for port in &exposed {
                wanted
                    .entry(*port)
                    .or_insert_with(|| vec![HostBinding::default()]);
            }
        }
        let mut shown: PortMap = exposed.iter().map(|p| (*p, Vec::new())).collect();
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
            .filter_map(|b| match b.host_port {
                HostPorts::Port(p) => Some(p),
                _ => None,
            })
            .collect();
        let mut mappings = Vec::new();
        let mut taken_now = reserved.clone();
        for (port, bindings) in &wanted {
            let proto = match port.protocol {
                Protocol::Tcp => Proto::Tcp,
                Protocol::Udp => Proto::Udp,
                Protocol::Sctp => {
                    return Err(EngineError::InvalidArgument(
                        "publishing sctp ports is not supported by berth".into(),
                    ))
                }
            };
            for b in bindings {
                let host_ip = match b.host_ip {
                    None => None,
                    Some(IpAddr::V4(ip)) if ip.is_unspecified() => None,
                    Some(IpAddr::V4(ip)) => Some(ip),
                    Some(IpAddr::V6(ip)) => {
                        return Err(EngineError::InvalidArgument(format!(
                            "IPv6 host address {ip} is not supported by berth"
                        )))
                    }
                };
                let host_port = match b.host_port {
                    HostPorts::Any | HostPorts::Port(0) => {
                        berth_network::ephemeral_port(proto, host_ip, &taken_now)
                            .map_err(net_error)?
                    }
                    // A range (`-p 8000-8010:80`): the first free port of it, as docker.
                    HostPorts::Range { low, high } => (low..=high)
                        .find(|p| {
                            !taken_now.contains(p) && berth_network::port_free(proto, host_ip, *p)
                        })
                        .ok_or_else(|| {
                            EngineError::Forbidden(format!(
                                "driver failed programming external connectivity on endpoint {}: all ports of {} are allocated",
                                c.name, b.host_port
                            ))
                        })?,
                    HostPorts::Port(p) => {
                        if taken_now.contains(&p) || !berth_network::port_free(proto, host_ip, p) {
                            return Err(EngineError::Forbidden(format!(
                                "driver failed programming external connectivity on endpoint {}: Bind for {}:{p} failed: port is already allocated",
                                c.name,
                                host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
                            )));
                        }
                        p
                    }
                };
                taken_now.insert(host_port);
                mappings.push(PortMapping {
                    proto,
                    host_ip,
                    host_port,
                    container_ip,
                    container_port: port.port,
                });
                shown.entry(*port).or_default().push(HostBinding {
                    host_ip: Some(IpAddr::V4(host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED))),
                    host_port: HostPorts::Port(host_port),
                });
            }
        }
        fw.publish(&c.id, &mappings).map_err(net_error)?;
        Ok(shown)
    }
}
