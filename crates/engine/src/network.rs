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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use berth_network::{Backend, Firewall, Ipv4Net, NetworkSpec, PortMapping, Proto};

use crate::model::{ContainerRecord, EndpointSettings, NetworkRecord, PortBinding};
use crate::{db, now_rfc3339, random_id, Engine, EngineError, Result};

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
    EngineError::Internal(e.to_string())
}

fn spec_of(n: &NetworkRecord) -> Result<NetworkSpec> {
    Ok(NetworkSpec {
        id: n.id.clone(),
        name: n.name.clone(),
        bridge: n.bridge.clone(),
        subnet: n
            .subnet
            .parse()
            .map_err(|e: berth_network::Error| EngineError::Internal(e.to_string()))?,
        gateway: n
            .gateway
            .parse()
            .map_err(|_| EngineError::Internal(format!("bad gateway {}", n.gateway)))?,
        internal: n.internal,
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

    /// Brings the default bridge, every network's bridge and the firewall up, and
    /// starts the DNS servers.
    pub(crate) fn setup_networking(self: &Arc<Self>) -> Result<()> {
        let Some(fw) = &self.networking.firewall else {
            return Ok(());
        };
        if !fw.backend().available() {
            return Err(EngineError::Internal(format!(
                "{} is not installed: bridge networking needs it",
                fw.backend()
            )));
        }
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
            .filter(|c| c.state.running)
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

    fn create_default_bridge(&self) -> Result<()> {
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
                let gw = net
                    .hosts()
                    .next()
                    .ok_or_else(|| EngineError::Internal("empty pool subnet".into()))?;
                (net, gw)
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
    fn free_subnet(&self, requested_size: Option<u8>) -> Result<Ipv4Net> {
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
            None => subnet.hosts().next().ok_or_else(|| {
                EngineError::InvalidArgument(format!("subnet {subnet} has no host addresses"))
            })?,
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
            .filter(|c| c.state.running)
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
        let running = self.lock().containers.values().any(|c| c.state.running);
        if running {
            return;
        }
        if let Some(fw) = &self.networking.firewall {
            if let Err(e) = fw.teardown() {
                tracing::warn!(error = %e, "removing the firewall table at shutdown");
            }
        }
    }

    fn start_dns(self: &Arc<Self>, n: &NetworkRecord) {
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
    fn resolve_for(&self, network_id: &str, name: &str, from: std::net::IpAddr) -> Vec<Ipv4Addr> {
        let st = self.lock();
        let from = from.to_string();
        let mut networks: HashSet<&str> = st
            .containers
            .values()
            .filter(|c| c.state.running)
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
        for c in st.containers.values().filter(|c| c.state.running) {
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

    /// The networks a new container joins, from its network mode and the
    /// request's `NetworkingConfig`.
    pub(crate) fn initial_endpoints(
        &self,
        mode: &str,
        requested: &BTreeMap<String, EndpointSettings>,
    ) -> Result<BTreeMap<String, EndpointSettings>> {
        let mut out = BTreeMap::new();
        if SPECIAL_MODES.contains(&mode) || mode.starts_with("container:") {
            return Ok(out);
        }
        if self.networking.firewall.is_none() {
            return Ok(out);
        }
        let primary = match mode {
            "" | "default" | "bridge" => "bridge",
            other => other,
        };
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
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        match result {
            Ok(()) => Ok(Some(netns)),
            Err(e) => {
                self.disconnect_after_exit(id).await;
                Err(e)
            }
        }
    }

    fn connect_blocking(&self, id: &str) -> Result<()> {
        let netns = self.netns_path(id);
        if let Some(dir) = netns.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::Internal(format!("create {}: {e}", dir.display())))?;
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

    fn attach_endpoint(
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

    /// `-p` and `-P`: picks host ports (random ones for an empty HostPort) and
    /// installs the DNAT rules.
    fn publish_ports(
        &self,
        c: &ContainerRecord,
        endpoints: &BTreeMap<String, EndpointSettings>,
    ) -> Result<BTreeMap<String, Vec<PortBinding>>> {
        let mut wanted: BTreeMap<String, Vec<PortBinding>> = c.host_config.port_bindings.clone();
        if c.host_config.publish_all_ports {
            for port in c.config.exposed_ports.iter().flat_map(|p| p.keys()) {
                wanted
                    .entry(port.clone())
                    .or_insert_with(|| vec![PortBinding::default()]);
            }
        }
        let mut shown: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
        for port in c.config.exposed_ports.iter().flat_map(|p| p.keys()) {
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
            .filter(|o| o.id != c.id && o.state.running)
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

    fn modify_in_memory(&self, id: &str, change: impl FnOnce(&mut ContainerRecord)) {
        if let Some(r) = self.lock().containers.get_mut(id) {
            change(r);
        }
    }

    /// `network connect`: configures the network and, on a running container,
    /// attaches a new interface right away.
    pub async fn connect_network(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        settings: EndpointSettings,
    ) -> Result<()> {
        let n = self.network(network)?;
        let c = self.container(container)?;
        if SPECIAL_MODES.contains(&c.host_config.network_mode.as_str())
            || c.host_config.network_mode.starts_with("container:")
        {
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
        if c.state.running {
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
            .map_err(|e| EngineError::Internal(e.to_string()))?;
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
        if c.state.running && !ep.host_veth.is_empty() {
            let veth = ep.host_veth.clone();
            tokio::task::spawn_blocking(move || berth_network::detach(&veth))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?
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
}
