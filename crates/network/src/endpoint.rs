//! veth endpoints connecting a container network namespace to a bridge.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::validate::validate_ifname;

/// One interface of a container on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Name of the host side of the veth pair (`[a-zA-Z0-9_.-]{1,15}`),
    /// e.g. `veth1a2b3c4`; it becomes a port of the bridge.
    pub host_veth: String,
    /// Name of the interface inside the container: `eth0`, `eth1`, ...
    pub container_ifname: String,
    /// The container's address on the network.
    pub ip: Ipv4Addr,
    /// Prefix length of the network's subnet.
    pub prefix: u8,
    /// Default gateway; set it only for the container's first network.
    pub gateway: Option<Ipv4Addr>,
    /// MAC address of the container interface; `None` uses [`mac_for_ip`].
    pub mac: Option<[u8; 6]>,
}

impl EndpointConfig {
    fn validate(&self) -> Result<()> {
        validate_ifname(&self.host_veth)?;
        validate_ifname(&self.container_ifname)?;
        if self.prefix == 0 || self.prefix > 32 {
            return Err(Error::invalid(
                "prefix length",
                self.prefix.to_string(),
                "must be 1 to 32",
            ));
        }
        if let Some(mac) = self.mac {
            if mac[0] & 1 == 1 || mac == [0; 6] {
                return Err(Error::invalid(
                    "MAC address",
                    format_mac(&mac),
                    "must be a unicast address",
                ));
            }
        }
        Ok(())
    }
}

/// Docker's MAC scheme: `02:42` followed by the four bytes of the address
/// (locally administered, unicast, unique per network).
pub fn mac_for_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Connects the network namespace `netns` to `bridge`.
///
/// Creates the veth pair `ep.host_veth` ⟷ `ep.container_ifname` with the peer
/// created directly inside `netns`, enslaves the host side to the bridge (with
/// hairpin mode, so a container can reach itself through a published port),
/// sets the MAC, brings `lo` and the interface up, assigns `ip/prefix` and adds
/// the default route via `ep.gateway` if given. All-or-nothing: on any error
/// the veth pair is deleted again.
pub fn attach(netns: &Path, bridge: &str, ep: &EndpointConfig) -> Result<()> {
    ep.validate()?;
    validate_ifname(bridge)?;
    let ns = File::open(netns).map_err(|e| Error::io("open netns", netns, e))?;
    let mut nl = Netlink::open().map_err(|e| Error::netlink("open socket", &ep.host_veth, e))?;
    let br_index = nl
        .link_index(bridge)
        .map_err(|e| Error::netlink("get link", bridge, e))?
        .ok_or_else(|| Error::LinkNotFound(bridge.to_string()))?;

    // The peer cannot be created up (veth_open fails with ENOTCONN before
    // the pair is linked); it is brought up from inside the namespace.
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(ep.container_ifname.clone()));
    peer.attributes.push(LinkAttribute::Address(
        ep.mac.unwrap_or_else(|| mac_for_ip(ep.ip)).to_vec(),
    ));
    peer.attributes
        .push(LinkAttribute::NetNsFd(std::os::fd::AsRawFd::as_raw_fd(&ns)));

    let mut host = LinkMessage::default();
    host.header.flags = LinkFlags::Up;
    host.header.change_mask = LinkFlags::Up;
    host.attributes
        .push(LinkAttribute::IfName(ep.host_veth.clone()));
    host.attributes.push(LinkAttribute::Controller(br_index));
    host.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    nl.create_link(host).map_err(|e| {
        Error::netlink(
            "create veth pair",
            format!(
                "{} / {} in {}",
                ep.host_veth,
                ep.container_ifname,
                netns.display()
            ),
            e,
        )
    })?;

    let configured = configure_container_side(&ns, netns, ep);
    if let Err(e) = configured {
        if let Err(del) = nl.delete_link(&ep.host_veth) {
            tracing::warn!(veth = %ep.host_veth, "cleanup after failed attach: {del}");
        }
        return Err(e);
    }
    let hairpin = format!("/sys/class/net/{}/brport/hairpin_mode", ep.host_veth);
    if let Err(e) = std::fs::write(&hairpin, "1") {
        tracing::debug!(veth = %ep.host_veth, "enabling hairpin mode: {e}");
    }
    tracing::debug!(veth = %ep.host_veth, bridge, ip = %ep.ip, "attached endpoint");
    Ok(())
}

fn configure_container_side(ns: &File, netns: &Path, ep: &EndpointConfig) -> Result<()> {
    let ctx = |what: &str| format!("{what} in {}", netns.display());
    let mut nl =
        Netlink::open_in(ns).map_err(|e| Error::netlink("open socket", ctx("netns"), e))?;
    let lo = nl
        .link_index("lo")
        .map_err(|e| Error::netlink("get link", ctx("lo"), e))?
        .ok_or_else(|| Error::LinkNotFound(ctx("lo")))?;
    nl.set_up(lo)
        .map_err(|e| Error::netlink("set link up", ctx("lo"), e))?;
    let ifname = &ep.container_ifname;
    let index = nl
        .link_index(ifname)
        .map_err(|e| Error::netlink("get link", ctx(ifname), e))?
        .ok_or_else(|| Error::LinkNotFound(ctx(ifname)))?;
    nl.add_address(index, ep.ip, ep.prefix).map_err(|e| {
        Error::netlink(
            "add address",
            ctx(&format!("{}/{} on {ifname}", ep.ip, ep.prefix)),
            e,
        )
    })?;
    nl.set_up(index)
        .map_err(|e| Error::netlink("set link up", ctx(ifname), e))?;
    if let Some(gw) = ep.gateway {
        nl.add_default_route(gw, index).map_err(|e| {
            Error::netlink(
                "add default route",
                ctx(&format!("via {gw} dev {ifname}")),
                e,
            )
        })?;
    }
    Ok(())
}

/// Deletes the veth pair whose host side is `host_veth` (the container side
/// goes with it). Succeeds if it no longer exists, e.g. because the
/// container's namespace is already gone.
pub fn detach(host_veth: &str) -> Result<()> {
    validate_ifname(host_veth)?;
    let mut nl = Netlink::open().map_err(|e| Error::netlink("open socket", host_veth, e))?;
    if nl
        .delete_link(host_veth)
        .map_err(|e| Error::netlink("delete veth", host_veth, e))?
    {
        tracing::debug!(veth = host_veth, "detached endpoint");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mac() {
        assert_eq!(
            mac_for_ip(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
        );
        assert_eq!(
            format_mac(&mac_for_ip(Ipv4Addr::new(10, 0, 0, 255))),
            "02:42:0a:00:00:ff"
        );
    }

    #[test]
    fn endpoint_validation() {
        let ok = EndpointConfig {
            host_veth: "veth0abc".into(),
            container_ifname: "eth0".into(),
            ip: Ipv4Addr::new(10, 0, 0, 2),
            prefix: 24,
            gateway: None,
            mac: None,
        };
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.host_veth = "veth with space".into();
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.prefix = 33;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.mac = Some([1, 0, 0, 0, 0, 1]);
        assert!(bad.validate().is_err());
    }
}
