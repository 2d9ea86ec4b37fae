//! IPv4 network prefix type.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An IPv4 address with a prefix length, e.g. `172.18.0.0/16`.
///
/// The address is kept as given (so `172.18.0.1/16`, an interface address,
/// can be represented); [`Ipv4Net::network`] / [`Ipv4Net::trunc`] give the
/// masked form. All set operations (`contains`, `overlaps`, ...) work on the
/// masked network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// Builds a prefix; fails if `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self> {
        if prefix > 32 {
            return Err(Error::invalid(
                "prefix length",
                prefix.to_string(),
                "must be at most 32",
            ));
        }
        Ok(Ipv4Net { addr, prefix })
    }

    /// The address as given.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length (0..=32).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a `u32` (host order).
    fn mask_u32(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The netmask, e.g. `255.255.0.0` for a /16.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_u32())
    }

    /// The network address (address with host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask_u32())
    }

    /// The broadcast address (address with all host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask_u32())
    }

    /// The same prefix with host bits cleared (`172.18.0.1/16` → `172.18.0.0/16`).
    pub fn trunc(&self) -> Ipv4Net {
        Ipv4Net {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// Whether the host bits of the address are all zero.
    pub fn is_network_address(&self) -> bool {
        self.addr == self.network()
    }

    /// Number of addresses covered (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask_u32() == u32::from(self.network())
    }

    /// Whether the two networks share at least one address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        let mask = if p == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(p))
        };
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// The first usable host address: the gateway docker gives a network when
    /// none is asked for. Every subnet has one (a /31 or /32 uses all its
    /// addresses), so this cannot fail.
    pub fn first_host(&self) -> Ipv4Addr {
        let network = u32::from(self.network());
        Ipv4Addr::from(if self.prefix >= 31 {
            network
        } else {
            network + 1
        })
    }

    /// Iterates over the usable host addresses: all addresses except the
    /// network and broadcast address (for /31 and /32 every address is usable,
    /// RFC 3021).
    pub fn hosts(&self) -> Hosts {
        let net = u64::from(u32::from(self.network()));
        let bcast = u64::from(u32::from(self.broadcast()));
        let (next, last) = if self.prefix >= 31 {
            (net, bcast)
        } else {
            (net + 1, bcast - 1)
        };
        Hosts { next, last }
    }

    /// Iterates over the subnets of length `prefix` inside this network, in
    /// address order. Empty if `prefix` is shorter than this network's prefix
    /// or longer than 32.
    pub fn subnets(&self, prefix: u8) -> Subnets {
        if prefix < self.prefix || prefix > 32 {
            return Subnets {
                next: 1,
                last: 0,
                step: 1,
                prefix,
            };
        }
        Subnets {
            next: u64::from(u32::from(self.network())),
            last: u64::from(u32::from(self.broadcast())),
            step: 1u64 << (32 - u32::from(prefix)),
            prefix,
        }
    }
}

/// Iterator over the host addresses of an [`Ipv4Net`], see [`Ipv4Net::hosts`].
#[derive(Debug, Clone)]
pub struct Hosts {
    next: u64,
    last: u64,
}

impl Iterator for Hosts {
    type Item = Ipv4Addr;

    fn next(&mut self) -> Option<Ipv4Addr> {
        if self.next > self.last {
            return None;
        }
        let ip = Ipv4Addr::from(self.next as u32);
        self.next += 1;
        Some(ip)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.last + 1).saturating_sub(self.next) as usize;
        (n, Some(n))
    }
}

/// Iterator over equally sized subnets, see [`Ipv4Net::subnets`].
#[derive(Debug, Clone)]
pub struct Subnets {
    next: u64,
    last: u64,
    step: u64,
    prefix: u8,
}

impl Iterator for Subnets {
    type Item = Ipv4Net;

    fn next(&mut self) -> Option<Ipv4Net> {
        if self.next > self.last {
            return None;
        }
        let net = Ipv4Net {
            addr: Ipv4Addr::from(self.next as u32),
            prefix: self.prefix,
        };
        self.next += self.step;
        Some(net)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    /// Parses `a.b.c.d/len`; the prefix length is mandatory.
    fn from_str(s: &str) -> Result<Self> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| Error::invalid("subnet", s, "expected CIDR notation a.b.c.d/len"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| Error::invalid("subnet", s, "invalid IPv4 address"))?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("subnet", s, "invalid prefix length"));
        }
        let prefix: u8 = p
            .parse()
            .map_err(|_| Error::invalid("subnet", s, "invalid prefix length"))?;
        Ipv4Net::new(addr, prefix)
            .map_err(|_| Error::invalid("subnet", s, "prefix length must be at most 32"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_display() {
        assert_eq!(n("172.18.0.0/16").to_string(), "172.18.0.0/16");
        assert_eq!(n("10.0.0.1/8").to_string(), "10.0.0.1/8");
        assert_eq!(n("0.0.0.0/0").prefix(), 0);
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/008",
            "x/8",
            "10.0.0.0/8/8",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        assert!(Ipv4Net::new(Ipv4Addr::LOCALHOST, 33).is_err());
    }

    #[test]
    fn masks() {
        let net = n("172.18.3.4/16");
        assert_eq!(net.network(), Ipv4Addr::new(172, 18, 0, 0));
        assert_eq!(net.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
        assert_eq!(net.netmask(), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(net.trunc(), n("172.18.0.0/16"));
        assert!(!net.is_network_address());
        assert_eq!(net.size(), 65536);
        let all = n("0.0.0.0/0");
        assert_eq!(all.broadcast(), Ipv4Addr::BROADCAST);
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(all.size(), 1 << 32);
        let one = n("10.1.2.3/32");
        assert_eq!(one.network(), one.broadcast());
        assert_eq!(one.netmask(), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn contains_overlaps() {
        let a = n("172.18.0.0/16");
        assert!(a.contains(Ipv4Addr::new(172, 18, 255, 1)));
        assert!(!a.contains(Ipv4Addr::new(172, 19, 0, 1)));
        assert!(a.overlaps(&n("172.18.5.0/24")));
        assert!(n("172.18.5.0/24").overlaps(&a));
        assert!(a.overlaps(&n("172.16.0.0/12")));
        assert!(!a.overlaps(&n("172.19.0.0/16")));
        assert!(a.overlaps(&n("0.0.0.0/0")));
        assert!(a.contains_net(&n("172.18.5.0/24")));
        assert!(!a.contains_net(&n("172.16.0.0/12")));
    }

    #[test]
    fn first_host_is_the_first_of_hosts() {
        for s in [
            "10.0.0.0/24",
            "10.0.0.0/30",
            "10.0.0.4/31",
            "10.0.0.7/32",
            "0.0.0.0/0",
        ] {
            assert_eq!(Some(n(s).first_host()), n(s).hosts().next(), "{s}");
        }
        assert_eq!(
            n("172.18.5.9/16").first_host(),
            Ipv4Addr::new(172, 18, 0, 1)
        );
    }

    #[test]
    fn hosts_iteration() {
        let h: Vec<_> = n("10.0.0.0/30").hosts().collect();
        assert_eq!(
            h,
            vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert_eq!(n("10.0.0.0/31").hosts().count(), 2);
        assert_eq!(
            n("10.0.0.7/32").hosts().collect::<Vec<_>>(),
            vec![Ipv4Addr::new(10, 0, 0, 7)]
        );
        assert_eq!(n("10.0.0.0/24").hosts().count(), 254);
        assert_eq!(n("10.0.0.0/24").hosts().size_hint(), (254, Some(254)));
        let top = n("255.255.255.252/30").hosts().collect::<Vec<_>>();
        assert_eq!(
            top,
            vec![
                Ipv4Addr::new(255, 255, 255, 253),
                Ipv4Addr::new(255, 255, 255, 254)
            ]
        );
    }

    #[test]
    fn subnet_iteration() {
        let s: Vec<_> = n("192.168.0.0/16").subnets(20).collect();
        assert_eq!(s.len(), 16);
        assert_eq!(s[0], n("192.168.0.0/20"));
        assert_eq!(s[1], n("192.168.16.0/20"));
        assert_eq!(s[15], n("192.168.240.0/20"));
        assert_eq!(n("10.0.0.0/16").subnets(8).count(), 0);
        assert_eq!(n("255.255.255.0/24").subnets(32).count(), 256);
        assert_eq!(
            n("10.0.0.0/16").subnets(16).collect::<Vec<_>>(),
            vec![n("10.0.0.0/16")]
        );
    }
}
