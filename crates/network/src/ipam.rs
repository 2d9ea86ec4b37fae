//! IP address management: address allocation inside a subnet, subnet
//! selection from docker's default address pools, and discovery of subnets
//! already in use on the host.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::ipnet::Ipv4Net;

/// Picks an address for a container on a network.
///
/// Never returns the network address, the broadcast address (for prefixes
/// shorter than /31), the gateway, or anything in `used`. With `requested`,
/// that address is validated and returned (`AddressOutOfRange` if it is not
/// in the subnet, [`Error::AddressInUse`] — "Address already in use" — if it
/// is taken or reserved); otherwise the lowest free host address is returned,
/// or [`Error::PoolExhausted`] ("no available IPv4 addresses on this
/// network's address pools").
pub fn allocate_ip(
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr> {
    let reserved = |ip: Ipv4Addr| {
        ip == gateway
            || used.contains(&ip)
            || (subnet.prefix() < 31 && (ip == subnet.network() || ip == subnet.broadcast()))
    };
    if let Some(ip) = requested {
        if !subnet.contains(ip) {
            return Err(Error::AddressOutOfRange { ip });
        }
        if reserved(ip) {
            return Err(Error::AddressInUse { ip });
        }
        return Ok(ip);
    }
    subnet
        .hosts()
        .find(|ip| !reserved(*ip))
        .ok_or(Error::PoolExhausted)
}

/// Docker's default address pools (`default-address-pools`): 172.17.0.0/16
/// … 172.31.0.0/16 split into /16s, then 192.168.0.0/16 split into /20s.
pub fn default_pools() -> Vec<(Ipv4Net, u8)> {
    let mut pools: Vec<(Ipv4Net, u8)> = (17u8..=31)
        .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok())
        .map(|n| (n, 16))
        .collect();
    if let Ok(n) = Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16) {
        pools.push((n, 20));
    }
    pools
}

/// Picks the first subnet from `pools` that overlaps nothing in `taken`.
///
/// Each pool is `(base, size)`: `base` is split into subnets of prefix length
/// `size` (docker's `default-address-pools` semantics, see
/// [`default_pools`]); a pool whose `size` is shorter than its base prefix
/// is used as a single subnet. `taken` should hold the subnets of the other
/// networks plus [`host_routes`]. Returns `None` when everything is taken.
pub fn pick_subnet(pools: &[(Ipv4Net, u8)], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    for (base, size) in pools {
        let size = (*size).max(base.prefix()).min(32);
        let mut candidates = base.trunc().subnets(size);
        if let Some(net) = candidates.find(|c| !taken.iter().any(|t| t.overlaps(c))) {
            return Some(net);
        }
    }
    None
}

/// Subnets already in use on the host (in this network namespace): every
/// non-default route of the main table (`/proc/net/route`) plus the network
/// of every IPv4 interface address (including interfaces that are down).
///
/// Pass the result as part of `taken` to [`pick_subnet`] so new networks do
/// not collide with e.g. `docker0`, podman's bridge or the LAN. Errors are
/// logged and yield a partial list.
pub fn host_routes() -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    match std::fs::read_to_string("/proc/net/route") {
        Ok(text) => out.extend(parse_proc_net_route(&text)),
        Err(e) => tracing::warn!("reading /proc/net/route: {e}"),
    }
    match crate::netlink::Netlink::open().and_then(|mut nl| nl.ipv4_addresses()) {
        Ok(addrs) => {
            for (_, net) in addrs {
                if net.prefix() > 0 {
                    out.push(net.trunc());
                }
            }
        }
        Err(e) => tracing::warn!("listing interface addresses: {e}"),
    }
    out.sort();
    out.dedup();
    out
}

/// Parses the text of `/proc/net/route` into destination prefixes, skipping
/// default routes.
pub(crate) fn parse_proc_net_route(text: &str) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let (Ok(dest), Ok(mask)) = (
            u32::from_str_radix(fields[1], 16),
            u32::from_str_radix(fields[7], 16),
        ) else {
            continue;
        };
        // The kernel prints the big-endian address as a native integer.
        let dest = Ipv4Addr::from(dest.to_ne_bytes());
        let mask = u32::from(Ipv4Addr::from(mask.to_ne_bytes()));
        let prefix = mask.leading_ones();
        if prefix == 0 || mask.count_ones() != prefix {
            continue;
        }
        if let Ok(net) = Ipv4Net::new(dest, prefix as u8) {
            out.push(net.trunc());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn allocate_sequential() {
        let subnet = n("172.18.0.0/16");
        let gw = ip("172.18.0.1");
        let mut used = HashSet::new();
        let a = allocate_ip(subnet, gw, &used, None).unwrap();
        assert_eq!(a, ip("172.18.0.2"));
        used.insert(a);
        assert_eq!(
            allocate_ip(subnet, gw, &used, None).unwrap(),
            ip("172.18.0.3")
        );
    }

    #[test]
    fn allocate_requested() {
        let subnet = n("10.1.0.0/24");
        let gw = ip("10.1.0.1");
        let used: HashSet<_> = [ip("10.1.0.5")].into();
        assert_eq!(
            allocate_ip(subnet, gw, &used, Some(ip("10.1.0.9"))).unwrap(),
            ip("10.1.0.9")
        );
        for taken in ["10.1.0.5", "10.1.0.1", "10.1.0.0", "10.1.0.255"] {
            let e = allocate_ip(subnet, gw, &used, Some(ip(taken))).unwrap_err();
            assert_eq!(e.to_string(), "Address already in use", "{taken}");
        }
        let e = allocate_ip(subnet, gw, &used, Some(ip("10.2.0.9"))).unwrap_err();
        assert!(matches!(e, Error::AddressOutOfRange { .. }));
    }

    #[test]
    fn allocate_exhausted() {
        let subnet = n("10.1.0.0/29"); // hosts .1 - .6
        let gw = ip("10.1.0.1");
        let mut used = HashSet::new();
        for _ in 0..5 {
            let a = allocate_ip(subnet, gw, &used, None).unwrap();
            assert!(a != gw && a != subnet.network() && a != subnet.broadcast());
            assert!(used.insert(a));
        }
        let e = allocate_ip(subnet, gw, &used, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no available IPv4 addresses on this network's address pools"
        );
    }

    #[test]
    fn allocate_point_to_point() {
        // /31: both addresses usable; one is the gateway.
        let subnet = n("10.9.0.0/31");
        let a = allocate_ip(subnet, ip("10.9.0.0"), &HashSet::new(), None).unwrap();
        assert_eq!(a, ip("10.9.0.1"));
    }

    #[test]
    fn pick_defaults() {
        let pools = default_pools();
        assert_eq!(pools.len(), 16);
        assert_eq!(pick_subnet(&pools, &[]), Some(n("172.17.0.0/16")));
        assert_eq!(
            pick_subnet(&pools, &[n("172.17.0.0/16")]),
            Some(n("172.18.0.0/16"))
        );
        // A host route inside 172.18/16 also blocks it.
        assert_eq!(
            pick_subnet(&pools, &[n("172.17.0.0/16"), n("172.18.42.0/24")]),
            Some(n("172.19.0.0/16"))
        );
        // A covering route blocks the whole 172.16/12 range.
        assert_eq!(
            pick_subnet(&pools, &[n("172.16.0.0/12")]),
            Some(n("192.168.0.0/20"))
        );
        assert_eq!(
            pick_subnet(
                &pools,
                &[
                    n("172.16.0.0/12"),
                    n("192.168.0.0/20"),
                    n("192.168.17.0/24")
                ]
            ),
            Some(n("192.168.32.0/20"))
        );
        assert_eq!(
            pick_subnet(&pools, &[n("172.16.0.0/12"), n("192.168.0.0/16")]),
            None
        );
        assert_eq!(
            pick_subnet(&pools, &[n("0.0.0.0/1"), n("128.0.0.0/1")]),
            None
        );
    }

    #[test]
    fn pick_odd_pools() {
        // size shorter than the base prefix: the base itself.
        assert_eq!(
            pick_subnet(&[(n("10.5.0.0/16"), 8)], &[]),
            Some(n("10.5.0.0/16"))
        );
        // base with host bits set is truncated.
        assert_eq!(
            pick_subnet(&[(n("10.5.3.4/16"), 24)], &[]),
            Some(n("10.5.0.0/24"))
        );
        assert_eq!(pick_subnet(&[], &[]), None);
    }

    #[test]
    fn proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
bad line\n\
x\tZZZZ\t0\t0\t0\t0\t0\t0000FFFF\n";
        let got = parse_proc_net_route(text);
        if cfg!(target_endian = "little") {
            assert_eq!(got, vec![n("192.0.2.0/24"), n("172.17.0.0/16")]);
        }
    }
}
