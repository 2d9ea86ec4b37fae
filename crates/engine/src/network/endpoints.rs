//! A container's endpoints: the networks it joins at create, its namespace and
//! veths at start, connect/disconnect while it runs, release after it exits.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::model::{ContainerRecord, EndpointSettings, NetworkMode, NetworkRecord};
use crate::{random_id, Engine, EngineError, Result};

impl Engine {
    /// The networks a new container joins, from its network mode and the
    /// request's `NetworkingConfig`.
    pub(crate) fn initial_endpoints(
        &self,
        mode: &NetworkMode,
        requested: &BTreeMap<String, EndpointSettings>,
    ) -> Result<BTreeMap<String, EndpointSettings>> {
        let mut out = BTreeMap::new();
        let Some(primary) = mode.primary_network() else {
            return Ok(out);
        };
        if self.networking.firewall.is_none() {
            return Ok(out);
        }
        let n = self.network(primary)?;
        let mut ep = requested
            .get(primary)
            .or_else(|| requested.get(&n.id))
            .cloned()
            .unwrap_or_default();
        if n.default_bridge && (!ep.aliases.is_empty() || ep.ipam_config.is_some()) {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        ep.network_id = n.id.clone();
        out.insert(n.name.clone(), ep);
        Ok(out)
    }

    /// Prepares a bridge-mode container's namespace: endpoints with addresses,
    /// published ports. Records what it did in the container's record; on error
    /// undoes it.
    pub(crate) async fn connect_for_start(self: &Arc<Self>, id: &str) -> Result<Option<PathBuf>> {
        let c = self.container(id)?;
        if c.networks.is_empty() {
            return Ok(None);
        }
        let netns = self.netns_path(id);
        let engine = self.clone();
        let id_owned = id.to_string();
        let result = tokio::task::spawn_blocking(move || engine.connect_blocking(&id_owned))
            .await
            .map_err(|e| EngineError::task("connect container networks", e))?;
        match result {
            Ok(()) => Ok(Some(netns)),
            Err(e) => {
                self.disconnect_after_exit(id).await;
                Err(e)
            }
        }
    }

    pub(super) fn connect_blocking(&self, id: &str) -> Result<()> {
        let netns = self.netns_path(id);
        if let Some(dir) = netns.parent() {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::at("create", dir, e))?;
        }
        let _ = berth_network::remove_netns(&netns);
        berth_network::create_netns(&netns).map_err(net_error)?;
        let c = self.container(id)?;
        let mut endpoints = BTreeMap::new();
        for (index, (name, settings)) in c.networks.iter().enumerate() {
            let n = self
                .network(&settings.network_id)
                .or_else(|_| self.network(name))?;
            let ep = self.attach_endpoint(&c, &n, settings, index, &netns)?;
            endpoints.insert(n.name.clone(), ep);
        }
        let ports = self.publish_ports(&c, &endpoints)?;
        // In memory only: the start that follows writes the record (with these
        // addresses) once.
        self.modify_in_memory(id, |r| {
            r.networks = endpoints;
            r.ports = ports;
        });
        Ok(())
    }

    pub(super) fn attach_endpoint(
        &self,
        c: &ContainerRecord,
        n: &NetworkRecord,
        settings: &EndpointSettings,
        index: usize,
        netns: &std::path::Path,
    ) -> Result<EndpointSettings> {
        let spec = spec_of(n)?;
        if !berth_network::bridge_exists(&n.bridge) {
            berth_network::ensure_bridge(&spec).map_err(net_error)?;
            if let Some(fw) = &self.networking.firewall {
                fw.add_network(&spec).map_err(net_error)?;
            }
        }
        let requested = settings
            .ipam_config
            .as_ref()
            .map(|i| i.ipv4_address.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| EngineError::InvalidArgument(format!("invalid IPv4 address {s}")))
            })
            .transpose()?;
        let ip = {
            // Allocation and recording happen under the lock, so two starts never
            // get one address.
            let mut st = self.lock();
            let used: HashSet<Ipv4Addr> = st
                .containers
                .values()
                .filter(|o| o.id != c.id)
                .flat_map(|o| o.networks.values())
                .filter(|e| e.network_id == n.id)
                .filter_map(|e| e.ip_address.parse().ok())
                .collect();
            let ip = berth_network::allocate_ip(spec.subnet, spec.gateway, &used, requested)
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
            if let Some(rec) = st.containers.get_mut(&c.id) {
                if let Some(ep) = rec.networks.get_mut(&n.name) {
                    ep.ip_address = ip.to_string();
                }
            }
            ip
        };
        let mac = if index == 0 && !c.mac_address.is_empty() {
            parse_mac(&c.mac_address)?
        } else {
            berth_network::mac_for_ip(ip)
        };
        // A fresh suffix per start: the previous start's veth may still be on its
        // way out (the kernel deletes it with the old namespace, asynchronously).
        let host_veth = format!("vb{}{}{index}", &c.id[..7], &random_id()[..4]);
        let ep_cfg = berth_network::EndpointConfig {
            host_veth: host_veth.clone(),
            container_ifname: format!("eth{index}"),
            ip,
            prefix: spec.subnet.prefix(),
            gateway: (index == 0).then_some(spec.gateway),
            mac: Some(mac),
        };
        berth_network::attach(netns, &n.bridge, &ep_cfg).map_err(net_error)?;
        let mut aliases = settings.aliases.clone();
        if !n.default_bridge && !aliases.contains(&c.id[..12].to_string()) {
            aliases.push(c.id[..12].to_string());
        }
        Ok(EndpointSettings {
            ipam_config: settings.ipam_config.clone(),
            aliases,
            network_id: n.id.clone(),
            endpoint_id: random_id(),
            gateway: spec.gateway.to_string(),
            ip_address: ip.to_string(),
            ip_prefix_len: spec.subnet.prefix(),
            mac_address: format_mac(&mac),
            host_veth,
        })
    }

    /// After the container's process is gone: ports unpublished, addresses
    /// released, namespace unmounted (the kernel removes the veths with it).
    pub(crate) async fn disconnect_after_exit(self: &Arc<Self>, id: &str) {
        let Ok(c) = self.container(id) else {
            return;
        };
        let had_ports = c.ports.values().any(|b| !b.is_empty());
        let netns = self.netns_path(id);
        let engine = self.clone();
        let id_owned = id.to_string();
        let _ = tokio::task::spawn_blocking(move || {
            if had_ports {
                if let Some(fw) = &engine.networking.firewall {
                    if let Err(e) = fw.unpublish(&id_owned) {
                        tracing::warn!(id = %id_owned, error = %e, "unpublish ports");
                    }
                }
            }
            if let Err(e) = berth_network::remove_netns(&netns) {
                tracing::warn!(id = %id_owned, error = %e, "remove network namespace");
            }
        })
        .await;
        // The exit's own record update persists this.
        self.modify_in_memory(id, |r| {
            for ep in r.networks.values_mut() {
                ep.ip_address.clear();
                ep.gateway.clear();
                ep.mac_address.clear();
                ep.endpoint_id.clear();
                ep.ip_prefix_len = 0;
                ep.host_veth.clear();
            }
            r.ports.clear();
        });
    }

    pub(super) fn modify_in_memory(&self, id: &str, change: impl FnOnce(&mut ContainerRecord)) {
        if let Some(r) = self.lock().containers.get_mut(id) {
            change(r);
        }
    }

    /// `network connect`: configures the network and, on a running container,
    /// attaches a new interface right away.
    #[tracing::instrument(level = "info", skip_all, fields(network = %network, container = %container))]
    pub async fn connect_network(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        settings: EndpointSettings,
    ) -> Result<()> {
        let n = self.network(network)?;
        let c = self.container(container)?;
        if c.host_config.network_mode.is_special() {
            return Err(EngineError::InvalidArgument(format!(
                "container cannot be disconnected from network mode {}",
                c.host_config.network_mode
            )));
        }
        if c.networks.contains_key(&n.name) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.name
            )));
        }
        let mut settings = settings;
        settings.network_id = n.id.clone();
        self.update(&c.id, |r| {
            r.networks.insert(n.name.clone(), settings.clone());
        })?;
        if c.state.running() {
            let engine = self.clone();
            let id = c.id.clone();
            let name = n.name.clone();
            let result = tokio::task::spawn_blocking(move || -> Result<()> {
                let c = engine.container(&id)?;
                let index = c
                    .networks
                    .keys()
                    .position(|k| k == &name)
                    .unwrap_or(0)
                    .max(1);
                let ep =
                    engine.attach_endpoint(&c, &n, &settings, index, &engine.netns_path(&id))?;
                engine.update(&id, |r| {
                    r.networks.insert(name.clone(), ep.clone());
                })?;
                Ok(())
            })
            .await
            .map_err(|e| EngineError::task("connect container network", e))?;
            if let Err(e) = result {
                let _ = self.update(&c.id, |r| {
                    r.networks
                        .remove(&self.network(network).map(|n| n.name).unwrap_or_default());
                });
                return Err(e);
            }
            // A container that had only the default bridge now needs the embedded
            // DNS: rewrite its resolv.conf in place (it is bind-mounted by inode).
            if let Ok(now) = self.container(&c.id) {
                let path = self.container_dir(&c.id).join("resolv.conf");
                let text = self.resolv_conf(&now);
                if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                    use std::io::Write;
                    if let Ok(mut f) = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&path)
                    {
                        let _ = f.write_all(text.as_bytes());
                    }
                }
            }
        }
        self.events.emit(
            "network",
            "connect",
            &self.network(network)?.id,
            BTreeMap::from([("container".to_string(), c.id.clone())]),
        );
        Ok(())
    }

    /// `network disconnect`.
    #[tracing::instrument(level = "info", skip_all, fields(network = %network, container = %container))]
    pub async fn disconnect_network(
        self: &Arc<Self>,
        network: &str,
        container: &str,
    ) -> Result<()> {
        let n = self.network(network)?;
        let c = self.container(container)?;
        let Some(ep) = c.networks.get(&n.name).cloned() else {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.name, n.name
            )));
        };
        if c.state.running() && !ep.host_veth.is_empty() {
            let veth = ep.host_veth.clone();
            tokio::task::spawn_blocking(move || berth_network::detach(&veth))
                .await
                .map_err(|e| EngineError::task("detach container network", e))?
                .map_err(net_error)?;
        }
        self.update(&c.id, |r| {
            r.networks.remove(&n.name);
        })?;
        self.events.emit(
            "network",
            "disconnect",
            &n.id,
            BTreeMap::from([("container".to_string(), c.id.clone())]),
        );
        Ok(())
    }
}
