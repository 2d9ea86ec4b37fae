//! Name service: the embedded DNS server on each user network, and the
//! resolv.conf every container gets.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::model::{ContainerRecord, NetworkRecord};
use crate::Engine;

impl Engine {
    pub(super) fn start_dns(self: &Arc<Self>, n: &NetworkRecord) {
        let Ok(gateway) = n.gateway.parse::<Ipv4Addr>() else {
            return;
        };
        let engine = Arc::downgrade(self);
        let network_id = n.id.clone();
        let lookup: berth_network::Lookup = Arc::new(move |name: &str, from: std::net::IpAddr| {
            let engine = engine.upgrade()?;
            let ips = engine.resolve_for(&network_id, name, from);
            (!ips.is_empty()).then_some(ips)
        });
        let upstream = berth_network::host_resolvers();
        let name = n.name.clone();
        let handle = tokio::spawn(async move {
            let socket = match tokio::net::UdpSocket::bind(SocketAddr::from((gateway, 53))).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(network = %name, error = %e, "embedded DNS not available");
                    return;
                }
            };
            if let Err(e) = berth_network::DnsServer::new(lookup, upstream)
                .run(socket)
                .await
            {
                tracing::warn!(network = %name, error = %e, "embedded DNS stopped");
            }
        });
        self.networking
            .dns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n.id.clone(), handle);
    }

    /// What a query to network `network_id`'s DNS from address `from` resolves:
    /// names (container name, alias, short ID) on every user network the asking
    /// container is on, as docker's per-container resolver does.
    pub(super) fn resolve_for(
        &self,
        network_id: &str,
        name: &str,
        from: std::net::IpAddr,
    ) -> Vec<Ipv4Addr> {
        let st = self.lock();
        let from = from.to_string();
        let mut networks: HashSet<&str> = st
            .containers
            .values()
            .filter(|c| c.state.running())
            .flat_map(|c| {
                let asks = c.networks.values().any(|e| e.ip_address == from);
                c.networks
                    .values()
                    .filter(move |_| asks)
                    .map(|e| e.network_id.as_str())
            })
            .collect();
        networks.insert(network_id);
        let mut out = Vec::new();
        for c in st.containers.values().filter(|c| c.state.running()) {
            for ep in c
                .networks
                .values()
                .filter(|e| networks.contains(e.network_id.as_str()))
            {
                if st
                    .networks
                    .get(&ep.network_id)
                    .is_some_and(|n| n.default_bridge)
                {
                    continue;
                }
                let known = c.name.eq_ignore_ascii_case(name)
                    || ep.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                    || (name.len() >= 12 && c.id.starts_with(name))
                    || c.config.hostname.eq_ignore_ascii_case(name);
                if known {
                    if let Ok(ip) = ep.ip_address.parse() {
                        out.push(ip);
                    }
                }
            }
        }
        out
    }

    /// The nameserver lines a container gets: the embedded DNS on user networks,
    /// the host's resolvers (without loopback ones, which mean nothing inside)
    /// elsewhere; `--dns` wins.
    pub(crate) fn resolv_conf(&self, c: &ContainerRecord) -> String {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut out = String::new();
        let user_network_gateway = c.networks.values().find_map(|e| {
            self.network(&e.network_id)
                .ok()
                .filter(|n| !n.default_bridge)
                .map(|n| n.gateway)
        });
        let own_ns = !c.networks.is_empty();
        if !c.host_config.dns.is_empty() {
            for d in &c.host_config.dns {
                out.push_str(&format!("nameserver {d}\n"));
            }
        } else if let Some(gw) = user_network_gateway {
            out.push_str(&format!("nameserver {gw}\n"));
        } else {
            let mut any = false;
            for line in host.lines() {
                let t = line.trim();
                if let Some(ns) = t.strip_prefix("nameserver") {
                    let ns = ns.trim();
                    if own_ns && (ns.starts_with("127.") || ns == "::1") {
                        continue;
                    }
                    out.push_str(&format!("nameserver {ns}\n"));
                    any = true;
                }
            }
            if !any && own_ns {
                // docker's fallback when the host only has a local resolver.
                out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
            }
        }
        let search: Vec<String> = if c.host_config.dns_search.is_empty() {
            host.lines()
                .filter_map(|l| l.trim().strip_prefix("search"))
                .flat_map(|s| s.split_whitespace().map(String::from))
                .collect()
        } else {
            c.host_config.dns_search.clone()
        };
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !c.host_config.dns_options.is_empty() {
            out.push_str(&format!(
                "options {}\n",
                c.host_config.dns_options.join(" ")
            ));
        }
        out
    }
}
