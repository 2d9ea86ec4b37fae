//! Minimal synchronous rtnetlink client built on `netlink-packet-route` and
//! `netlink-sys` (no async runtime, no `ip` processes).
//!
//! A netlink socket operates on the network namespace it was created in, so
//! [`Netlink::open_in`] creates the socket on a short-lived thread that has
//! `setns`'d into the target namespace; the socket keeps working from any
//! thread afterwards.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::ipnet::Ipv4Net;

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RECV_BUF: usize = 64 * 1024;

fn invalid_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A connected NETLINK_ROUTE socket.
pub(crate) struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Opens a socket inside the network namespace referred to by `netns`
    /// (an nsfs file such as a bind-mounted `/proc/<pid>/ns/net`).
    pub(crate) fn open_in(netns: &File) -> io::Result<Self> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netns helper thread panicked")))
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        let n = self.sock.send(&buf, 0)?;
        if n != buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(self.seq)
    }

    /// Receives one datagram and calls `f` for each netlink message in it
    /// that answers `seq`, with (message type, raw message bytes). `f`
    /// returns `Some(result)` to finish.
    fn recv_until<T>(
        &mut self,
        seq: u32,
        mut f: impl FnMut(u16, &[u8]) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        loop {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0)?;
            if n > self.buf.len() {
                return Err(invalid_data("netlink reply truncated"));
            }
            let data = &self.buf[..n];
            let mut off = 0usize;
            while off + NLMSG_HDR_LEN <= data.len() {
                let hdr = &data[off..off + NLMSG_HDR_LEN];
                let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
                let ty = u16::from_ne_bytes([hdr[4], hdr[5]]);
                let mseq = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
                if len < NLMSG_HDR_LEN || off + len > data.len() {
                    return Err(invalid_data("malformed netlink message length"));
                }
                let msg = &data[off..off + len];
                off += (len + 3) & !3;
                if mseq != seq {
                    continue;
                }
                if let Some(r) = f(ty, msg) {
                    return r;
                }
            }
        }
    }

    fn error_code(msg: &[u8]) -> io::Result<i32> {
        let b = msg
            .get(NLMSG_HDR_LEN..NLMSG_HDR_LEN + 4)
            .ok_or_else(|| invalid_data("short netlink error message"))?;
        Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Sends a request and waits for the kernel's acknowledgement.
    pub(crate) fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.recv_until(seq, |ty, msg| match ty {
            NLMSG_ERROR => Some(match Self::error_code(msg) {
                Ok(0) => Ok(()),
                Ok(code) => Err(io::Error::from_raw_os_error(code.saturating_abs())),
                Err(e) => Err(e),
            }),
            NLMSG_DONE => Some(Ok(())),
            _ => None,
        })
    }

    fn parse(msg: &[u8]) -> io::Result<RouteNetlinkMessage> {
        let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg)
            .map_err(|e| invalid_data(format!("parsing netlink message: {e}")))?;
        match parsed.payload {
            NetlinkPayload::InnerMessage(m) => Ok(m),
            _ => Err(invalid_data("unexpected netlink payload")),
        }
    }

    /// Sends a dump request and collects the replies. Messages that fail to
    /// parse are skipped with a warning.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.recv_until(seq, |ty, msg| match ty {
            NLMSG_DONE => Some(Ok(())),
            NLMSG_ERROR => Some(match Self::error_code(msg) {
                Ok(0) => Ok(()),
                Ok(code) => Err(io::Error::from_raw_os_error(code.saturating_abs())),
                Err(e) => Err(e),
            }),
            _ => {
                match Self::parse(msg) {
                    Ok(m) => out.push(m),
                    Err(e) => tracing::warn!("skipping netlink dump entry: {e}"),
                }
                None
            }
        })?;
        Ok(out)
    }

    /// Sends a "get" request expecting exactly one reply message.
    fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<RouteNetlinkMessage> {
        let seq = self.send(msg, 0)?;
        self.recv_until(seq, |ty, msg| match ty {
            NLMSG_ERROR => Some(match Self::error_code(msg) {
                Ok(0) => Err(invalid_data("empty netlink reply")),
                Ok(code) => Err(io::Error::from_raw_os_error(code.saturating_abs())),
                Err(e) => Err(e),
            }),
            NLMSG_DONE => Some(Err(invalid_data("empty netlink reply"))),
            _ => Some(Self::parse(msg)),
        })
    }

    /// Looks a link up by name; `Ok(None)` if it does not exist.
    pub(crate) fn link_by_name(&mut self, name: &str) -> io::Result<Option<LinkMessage>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.get(RouteNetlinkMessage::GetLink(m)) {
            Ok(RouteNetlinkMessage::NewLink(link)) => Ok(Some(link)),
            Ok(_) => Err(invalid_data("unexpected reply to RTM_GETLINK")),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Index of the link called `name`, if any.
    pub(crate) fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link_by_name(name)?.map(|l| l.header.index))
    }

    /// Creates a link described by `m` (must fail if it exists).
    pub(crate) fn create_link(&mut self, m: LinkMessage) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Sets IFF_UP on the link.
    pub(crate) fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0)
    }

    /// Deletes the link called `name`; `Ok(false)` if it did not exist.
    pub(crate) fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(m), 0) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds (or replaces) an IPv4 address with its subnet broadcast.
    pub(crate) fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.scope = AddressScope::Universe;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        if prefix < 31 {
            if let Ok(net) = Ipv4Net::new(ip, prefix) {
                m.attributes
                    .push(AddressAttribute::Broadcast(net.broadcast()));
            }
        }
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Adds a default route via `gateway` out of interface `oif` in the main
    /// table; fails with EEXIST if a default route already exists.
    pub(crate) fn add_default_route(&mut self, gateway: Ipv4Addr, oif: u32) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 0;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        m.attributes.push(RouteAttribute::Oif(oif));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// All IPv4 addresses of the namespace as (interface index, address/prefix).
    pub(crate) fn ipv4_addresses(&mut self) -> io::Result<Vec<(u32, Ipv4Net)>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let mut out = Vec::new();
        for msg in self.dump(RouteNetlinkMessage::GetAddress(m))? {
            let RouteNetlinkMessage::NewAddress(a) = msg else {
                continue;
            };
            let local = a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                a.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = addr {
                if let Ok(net) = Ipv4Net::new(ip, a.header.prefix_len) {
                    out.push((a.header.index, net));
                }
            }
        }
        Ok(out)
    }
}

/// The `IFLA_INFO_KIND` of a link message, if present.
pub(crate) fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}
