//! Host port availability checks for port publishing.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use crate::error::{Error, Result};
use crate::firewall::Proto;

/// Whether `port` can currently be bound on `host_ip` (all addresses when
/// `None` or `0.0.0.0`) for `proto`, checked by binding and closing a socket.
///
/// Ports published by other containers through DNAT do not hold sockets; the
/// caller must keep its own record of those.
pub fn port_free(proto: Proto, host_ip: Option<Ipv4Addr>, port: u16) -> bool {
    let addr = SocketAddrV4::new(host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).is_ok(),
        Proto::Udp => UdpSocket::bind(addr).is_ok(),
    }
}

/// Reads `/proc/sys/net/ipv4/ip_local_port_range`, defaulting to Linux's
/// 32768-60999.
fn local_port_range() -> (u16, u16) {
    let parsed = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>());
            match (it.next(), it.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) if lo > 0 && lo <= hi => Some((lo, hi)),
                _ => None,
            }
        });
    parsed.unwrap_or((32768, 60999))
}

/// Picks a free host port from the kernel's ephemeral range (docker's
/// behaviour for `-p 80` without a host port). Starts at a random point,
/// skips `reserved` (ports the caller has already handed out) and ports that
/// cannot be bound (see [`port_free`]).
pub fn ephemeral_port(
    proto: Proto,
    host_ip: Option<Ipv4Addr>,
    reserved: &HashSet<u16>,
) -> Result<u16> {
    let (low, high) = local_port_range();
    let span = u32::from(high - low) + 1;
    let start = crate::dns::random_u32() % span;
    for i in 0..span {
        let port = low + ((start + i) % span) as u16;
        if reserved.contains(&port) {
            continue;
        }
        if port_free(proto, host_ip, port) {
            return Ok(port);
        }
    }
    Err(Error::NoFreePort {
        proto: proto.as_str(),
        low,
        high,
    })
}
