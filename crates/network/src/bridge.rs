//! Linux bridge management.

use std::io;
use std::path::Path;

use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};

use crate::endpoint::mac_for_ip;
use crate::error::{Error, Result};
use crate::netlink::{link_kind, Netlink};
use crate::validate::validate_ifname;
use crate::NetworkSpec;

/// Makes sure the bridge of `spec` exists and is configured; idempotent.
///
/// Creates the bridge if missing (with a stable MAC derived from the
/// gateway), assigns `gateway/prefix` (with broadcast) to it, brings it up,
/// enables `net.ipv4.ip_forward` and sets
/// `net.ipv4.conf.<bridge>.route_localnet=1` so ports published on 127.0.0.1
/// can be DNAT'ed to containers. Fails if an interface of that name exists
/// but is not a bridge. Other addresses already on the bridge are left alone.
pub fn ensure_bridge(spec: &NetworkSpec) -> Result<()> {
    spec.validate()?;
    let name = spec.bridge.as_str();
    let mut nl = Netlink::open().map_err(|e| Error::netlink("open socket", name, e))?;
    let index = match nl
        .link_by_name(name)
        .map_err(|e| Error::netlink("get link", name, e))?
    {
        Some(link) => {
            if link_kind(&link) != Some(&InfoKind::Bridge) {
                return Err(Error::invalid(
                    "bridge",
                    name,
                    "an interface with this name exists and is not a bridge",
                ));
            }
            link.header.index
        }
        None => {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.to_string()));
            m.attributes
                .push(LinkAttribute::Address(mac_for_ip(spec.gateway).to_vec()));
            m.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Bridge,
                )]));
            match nl.create_link(m) {
                Ok(()) => tracing::info!(bridge = name, network = %spec.name, "created bridge"),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(Error::netlink("create bridge", name, e)),
            }
            nl.link_index(name)
                .map_err(|e| Error::netlink("get link", name, e))?
                .ok_or_else(|| Error::LinkNotFound(name.to_string()))?
        }
    };
    nl.add_address(index, spec.gateway, spec.subnet.prefix())
        .map_err(|e| {
            Error::netlink(
                "add address",
                format!("{}/{} on {name}", spec.gateway, spec.subnet.prefix()),
                e,
            )
        })?;
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
        "1",
    )?;
    nl.set_up(index)
        .map_err(|e| Error::netlink("set link up", name, e))?;
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    Ok(())
}

/// Deletes the bridge `name`; succeeds if it does not exist. Refuses to
/// delete an interface that is not a bridge.
pub fn remove_bridge(name: &str) -> Result<()> {
    validate_ifname(name)?;
    let mut nl = Netlink::open().map_err(|e| Error::netlink("open socket", name, e))?;
    match nl
        .link_by_name(name)
        .map_err(|e| Error::netlink("get link", name, e))?
    {
        None => return Ok(()),
        Some(link) if link_kind(&link) != Some(&InfoKind::Bridge) => {
            return Err(Error::invalid("bridge", name, "interface is not a bridge"));
        }
        Some(_) => {}
    }
    if nl
        .delete_link(name)
        .map_err(|e| Error::netlink("delete bridge", name, e))?
    {
        tracing::info!(bridge = name, "removed bridge");
    }
    Ok(())
}

/// Whether a bridge called `name` exists in the host network namespace.
/// Returns false for invalid names and non-bridge interfaces.
pub fn bridge_exists(name: &str) -> bool {
    if validate_ifname(name).is_err() {
        return false;
    }
    let found = Netlink::open().and_then(|mut nl| nl.link_by_name(name));
    match found {
        Ok(Some(link)) => link_kind(&link) == Some(&InfoKind::Bridge),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(bridge = name, "looking up bridge: {e}");
            false
        }
    }
}

/// The first IPv4 address (with its prefix) of the existing bridge `name`, or
/// None when there is no such bridge or it has no IPv4 address. A daemon that
/// finds a bridge it has no record of adopts this address, as dockerd adopts
/// an existing docker0, instead of adding one more subnet to it.
pub fn bridge_ipv4_address(name: &str) -> Result<Option<crate::Ipv4Net>> {
    validate_ifname(name)?;
    let mut nl = Netlink::open().map_err(|e| Error::netlink("open socket", name, e))?;
    let Some(link) = nl
        .link_by_name(name)
        .map_err(|e| Error::netlink("get link", name, e))?
    else {
        return Ok(None);
    };
    if link_kind(&link) != Some(&InfoKind::Bridge) {
        return Ok(None);
    }
    let index = link.header.index;
    let addresses = nl
        .ipv4_addresses()
        .map_err(|e| Error::netlink("list addresses", name, e))?;
    Ok(addresses
        .into_iter()
        .find(|(i, _)| *i == index)
        .map(|(_, net)| net))
}

/// Writes a sysctl value unless it already has it.
pub(crate) fn write_sysctl(path: &str, value: &str) -> Result<()> {
    let p = Path::new(path);
    if let Ok(cur) = std::fs::read_to_string(p) {
        if cur.trim() == value {
            return Ok(());
        }
    }
    std::fs::write(p, value).map_err(|e: io::Error| Error::io("write sysctl", p, e))
}
