//! Kernel side of Docker-compatible bridge networking for berth.
//!
//! This crate does the host-level work behind `docker network create` /
//! `docker run --network`:
//!
//! * [`Ipv4Net`], [`allocate_ip`], [`pick_subnet`], [`host_routes`]: pure
//!   address management (IPAM) plus discovery of subnets already routed on the
//!   host.
//! * [`ensure_bridge`], [`remove_bridge`], [`bridge_exists`]: the Linux bridge
//!   behind a network, configured with in-process rtnetlink.
//! * [`create_netns`], [`remove_netns`]: persistent (bind-mounted) network
//!   namespaces that the OCI runtime joins by path.
//! * [`attach`], [`detach`], [`mac_for_ip`]: veth endpoints connecting a
//!   namespace to a bridge.
//! * [`Firewall`]: NAT, isolation and published ports per daemon, in one
//!   nftables table (`nft -f -`) or, where nft is absent, in iptables chains
//!   (`iptables-restore --noflush`).
//! * [`port_free`], [`ephemeral_port`]: host port checks for publishing.
//! * [`DnsServer`]: the embedded resolver containers on user networks use.
//!
//! Everything is synchronous and blocking (call it from `spawn_blocking`),
//! except the DNS server which is tokio-based.

#![warn(missing_docs)]

mod bridge;
pub mod dns;
mod endpoint;
mod error;
mod firewall;
mod ipam;
mod ipnet;
mod netlink;
mod netns;
mod ports;
mod validate;

pub use bridge::{bridge_exists, bridge_ipv4_address, ensure_bridge, remove_bridge};
pub use dns::{host_resolvers, DnsServer, Lookup};
pub use endpoint::{attach, detach, mac_for_ip, EndpointConfig};
pub use error::{Error, Result};
pub use firewall::{Backend, Firewall, PortMapping, Proto};
pub use ipam::{allocate_ip, default_pools, host_routes, pick_subnet};
pub use ipnet::{Hosts, Ipv4Net, Subnets};
pub use netns::{create_netns, remove_netns};
pub use ports::{ephemeral_port, port_free};
pub use validate::{validate_ifname, validate_owner, validate_table_name};

use std::net::Ipv4Addr;

/// Description of one bridge network, as the engine stores it.
///
/// This is the input to [`ensure_bridge`] and [`Firewall::add_network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Network ID (64 hex characters for docker-created networks); only used
    /// for logging here.
    pub id: String,
    /// User-visible network name; only used for logging here.
    pub name: String,
    /// Linux bridge interface name (`[a-zA-Z0-9_.-]{1,15}`), e.g. `br-0123456789ab`.
    pub bridge: String,
    /// The network's IPv4 subnet, e.g. `172.18.0.0/16`.
    pub subnet: Ipv4Net,
    /// Gateway address, assigned to the bridge; must lie inside `subnet`.
    pub gateway: Ipv4Addr,
    /// `docker network create --internal`: no masquerading and no forwarding
    /// between the bridge and anything else.
    pub internal: bool,
}

impl NetworkSpec {
    /// Checks the bridge name and that the gateway is a usable host address
    /// of the subnet.
    pub fn validate(&self) -> Result<()> {
        validate_ifname(&self.bridge)?;
        if !self.subnet.contains(self.gateway) {
            return Err(Error::Invalid {
                what: "gateway",
                value: self.gateway.to_string(),
                reason: format!("not inside subnet {}", self.subnet),
            });
        }
        if self.subnet.prefix() < 31
            && (self.gateway == self.subnet.network() || self.gateway == self.subnet.broadcast())
        {
            return Err(Error::Invalid {
                what: "gateway",
                value: self.gateway.to_string(),
                reason: format!("is the network or broadcast address of {}", self.subnet),
            });
        }
        Ok(())
    }
}
