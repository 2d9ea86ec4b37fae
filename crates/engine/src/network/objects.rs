//! Network objects: the default bridge, user networks (create, remove,
//! prune), their subnets, and the firewall brought up and reconciled at start.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_network::Ipv4Net;

use super::*;
use crate::model::NetworkRecord;
use crate::{db, now_rfc3339, random_id, Engine, EngineError, Result};

impl Engine {
    /// Brings the default bridge, every network's bridge and the firewall up, and
    /// starts the DNS servers.
    pub(crate) fn setup_networking(self: &Arc<Self>) -> Result<()> {
        let Some(fw) = &self.networking.firewall else {
            return Ok(());
        };
        fw.backend().require().map_err(net_error)?;
        fw.init().map_err(net_error)?;
        if !self.lock().networks.values().any(|n| n.default_bridge) {
            self.create_default_bridge()?;
        }
        for n in self.networks() {
            let spec = spec_of(&n)?;
            berth_network::ensure_bridge(&spec).map_err(net_error)?;
            fw.add_network(&spec).map_err(net_error)?;
            if !n.default_bridge {
                self.start_dns(&n);
            }
        }
        Ok(())
    }

    /// Drops port rules of containers that are not running (their berthd died
    /// before it could unpublish them).
    pub(crate) fn reconcile_port_rules(&self) {
        let Some(fw) = &self.networking.firewall else {
            return;
        };
        let running: HashSet<String> = self
            .lock()
            .containers
            .values()
            .filter(|c| c.state.running())
            .map(|c| c.id.clone())
            .collect();
        match fw.reconcile(&running) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(
                    count = removed.len(),
                    "removed port rules of containers that are gone"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "port rule reconciliation"),
        }
    }

    pub(super) fn create_default_bridge(&self) -> Result<()> {
        let cfg = &self.config.network;
        let existing = match cfg.bip {
            Some(_) => None,
            None => berth_network::bridge_ipv4_address(&cfg.bridge).map_err(net_error)?,
        };
        let (subnet, gateway) = match (&cfg.bip, existing) {
            (Some(bip), _) => {
                let (addr, prefix) = bip.split_once('/').ok_or_else(|| {
                    EngineError::InvalidArgument(format!("--bip {bip}: expected ADDRESS/PREFIX"))
                })?;
                let gw: Ipv4Addr = addr.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!("--bip {bip}: bad address"))
                })?;
                let prefix: u8 = prefix.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!("--bip {bip}: bad prefix"))
                })?;
                let net = Ipv4Net::new(gw, prefix).map_err(net_error)?.trunc();
                (net, gw)
            }
            // A bridge that already carries an address (another data root's, or
            // one made by hand) is adopted with it, as dockerd adopts docker0:
            // adding a fresh subnet at every such start would pile them up.
            (None, Some(net)) => {
                tracing::info!(bridge = %cfg.bridge, address = %net.addr(), "adopting the existing bridge's address");
                (net.trunc(), net.addr())
            }
            (None, None) => {
                let net = self.free_subnet(None)?;
                (net, net.first_host())
            }
        };
        let record = NetworkRecord {
            id: random_id(),
            name: "bridge".into(),
            created: now_rfc3339(),
            bridge: cfg.bridge.clone(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::from([(
                "com.docker.network.bridge.name".to_string(),
                cfg.bridge.clone(),
            )]),
            default_bridge: true,
        };
        self.db.put(db::NETWORKS, &record.id, &record)?;
        self.lock().networks.insert(record.id.clone(), record);
        Ok(())
    }

    /// A subnet from the pools that overlaps no network of ours and nothing the
    /// host routes (docker0, podman's, the LAN).
    pub(super) fn free_subnet(&self, requested_size: Option<u8>) -> Result<Ipv4Net> {
        let mut taken: Vec<Ipv4Net> = berth_network::host_routes();
        taken.extend(
            self.lock()
                .networks
                .values()
                .filter_map(|n| n.subnet.parse::<Ipv4Net>().ok()),
        );
        let pools: Vec<(Ipv4Net, u8)> = self
            .config
            .network
            .pools
            .iter()
            .map(|(net, size)| (*net, requested_size.unwrap_or(*size)))
            .collect();
        berth_network::pick_subnet(&pools, &taken).ok_or_else(|| {
            EngineError::Forbidden(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
            )
        })
    }

    /// `network create`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_network(
        self: &Arc<Self>,
        name: &str,
        driver: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
        internal: bool,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<NetworkRecord> {
        let Some(fw) = &self.networking.firewall else {
            return Err(EngineError::Forbidden(
                "networking is disabled on this daemon".into(),
            ));
        };
        if !crate::names::valid(name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid network name {name:?}"
            )));
        }
        if !driver.is_empty() && driver != "bridge" {
            return Err(EngineError::NotFound(format!(
                "could not find plugin {driver} in v1 plugin registry: plugin not found"
            )));
        }
        if SPECIAL_MODES.contains(&name)
            || name == "bridge"
            || self.network(name).map(|n| n.name == name).unwrap_or(false)
        {
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let subnet: Ipv4Net = match subnet {
            Some(s) => {
                let net: Ipv4Net = s.parse().map_err(|e: berth_network::Error| {
                    EngineError::InvalidArgument(format!("invalid subnet {s}: {e}"))
                })?;
                let others: Vec<NetworkRecord> = self.networks();
                if let Some(o) = others.iter().find(|o| {
                    o.subnet
                        .parse::<Ipv4Net>()
                        .is_ok_and(|on| on.overlaps(&net))
                }) {
                    return Err(EngineError::Forbidden(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({} of network {})",
                        o.subnet, o.name
                    )));
                }
                net.trunc()
            }
            None => self.free_subnet(None)?,
        };
        let gateway: Ipv4Addr = match gateway {
            Some(g) => g
                .parse()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid gateway {g}")))?,
            None => subnet.first_host(),
        };
        let id = random_id();
        let bridge = options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        let record = NetworkRecord {
            id: id.clone(),
            name: name.to_string(),
            created: now_rfc3339(),
            bridge,
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            internal,
            labels,
            options,
            default_bridge: false,
        };
        let spec = spec_of(&record)?;
        spec.validate()
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        // Kernel state first, record last; on failure nothing is left.
        berth_network::ensure_bridge(&spec).map_err(net_error)?;
        if let Err(e) = fw.add_network(&spec) {
            let _ = berth_network::remove_bridge(&spec.bridge);
            return Err(net_error(e));
        }
        {
            let mut st = self.lock();
            if st.networks.values().any(|n| n.name == name) {
                drop(st);
                let _ = fw.remove_network(&spec);
                let _ = berth_network::remove_bridge(&spec.bridge);
                return Err(EngineError::Conflict(format!(
                    "network with name {name} already exists"
                )));
            }
            self.db.put(db::NETWORKS, &id, &record)?;
            st.networks.insert(id.clone(), record.clone());
        }
        self.start_dns(&record);
        self.events.emit(
            "network",
            "create",
            &id,
            BTreeMap::from([
                ("name".to_string(), name.to_string()),
                ("type".to_string(), "bridge".to_string()),
            ]),
        );
        Ok(record)
    }

    /// `network rm`: refused while a running container is on it.
    pub fn remove_network(&self, reference: &str) -> Result<()> {
        let n = self.network(reference)?;
        if n.default_bridge {
            return Err(EngineError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let active: Vec<String> = self
            .network_containers(&n.id)
            .into_iter()
            .filter(|c| c.state.running())
            .map(|c| c.name)
            .collect();
        if !active.is_empty() {
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                active.join(", ")
            )));
        }
        {
            let mut st = self.lock();
            self.db.delete(db::NETWORKS, &n.id)?;
            st.networks.remove(&n.id);
        }
        if let Some(h) = self
            .networking
            .dns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&n.id)
        {
            h.abort();
        }
        let spec = spec_of(&n)?;
        if let Some(fw) = &self.networking.firewall {
            if let Err(e) = fw.remove_network(&spec) {
                tracing::warn!(network = %n.name, error = %e, "firewall rules not removed");
            }
        }
        berth_network::remove_bridge(&n.bridge).map_err(net_error)?;
        self.events.emit(
            "network",
            "destroy",
            &n.id,
            BTreeMap::from([("name".to_string(), n.name.clone())]),
        );
        Ok(())
    }

    /// `network prune`: user networks no container is configured on.
    pub fn prune_networks(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in self.networks() {
            if n.default_bridge || !self.network_containers(&n.id).is_empty() {
                continue;
            }
            if self.remove_network(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Tears down every network berth made (daemon shutdown is not it: networks
    /// persist). Used by tests' clean-up through `berthd --cleanup-networks`.
    pub fn teardown_networks(&self) {
        for n in self.networks() {
            let _ = berth_network::remove_bridge(&n.bridge);
        }
        if let Some(fw) = &self.networking.firewall {
            let _ = fw.teardown();
        }
    }

    /// At a clean shutdown: with no container left running, berthd's firewall
    /// table (and its FORWARD accepts) serves nothing and goes; the next start
    /// rebuilds it. Running containers keep their rules (they outlive berthd).
    /// Bridges stay, as docker0 does.
    pub fn release_firewall_if_idle(&self) {
        let running = self.lock().containers.values().any(|c| c.state.running());
        if running {
            return;
        }
        if let Some(fw) = &self.networking.firewall {
            if let Err(e) = fw.teardown() {
                tracing::warn!(error = %e, "removing the firewall table at shutdown");
            }
        }
    }
}
