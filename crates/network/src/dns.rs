//! Embedded DNS server for user-defined networks, plus the minimal DNS
//! message codec it needs.
//!
//! The server answers `A` queries for names its lookup function knows (the
//! engine resolves container names, aliases and ids of the network), returns
//! an empty NOERROR answer for other types of known names (so `AAAA` lookups
//! fall back to `A` quickly), and relays everything else to the host's
//! upstream resolvers; with no upstream, or when they all time out, the
//! client gets SERVFAIL.
//!
//! The codec only handles what a stub resolver sends: one question, no
//! compression in the question. Every read is bounds-checked; malformed
//! packets are answered with FORMERR when their header is readable and
//! dropped otherwise.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Query type ANY.
pub const TYPE_ANY: u16 = 255;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Response code: no error.
pub const RCODE_NOERROR: u8 = 0;
/// Response code: format error.
pub const RCODE_FORMERR: u8 = 1;
/// Response code: server failure.
pub const RCODE_SERVFAIL: u8 = 2;
/// Response code: no such name.
pub const RCODE_NXDOMAIN: u8 = 3;
/// Response code: not implemented.
pub const RCODE_NOTIMP: u8 = 4;

const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;
const MAX_NAME_LEN: usize = 255;
/// Classic UDP DNS payload limit; answers are capped to fit it.
const MAX_UDP_ANSWER: usize = 512;
/// Receive buffer (EDNS payloads from upstream can exceed 512 bytes).
const RECV_BUF: usize = 4096;

/// Name lookup used by [`DnsServer`]: gets a lowercase name without trailing
/// dot and the address the query came from (so a resolver can answer what
/// that container may see), returns the addresses if the name is known. It is
/// called on the server task, so it must not block (read an in-memory map).
pub type Lookup = Arc<dyn Fn(&str, std::net::IpAddr) -> Option<Vec<Ipv4Addr>> + Send + Sync>;

/// Why a packet could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsParseError {
    /// Shorter than a DNS header: not answerable.
    TooShort,
    /// The QR bit says it is a response (when a query was expected) or vice versa.
    WrongDirection,
    /// The header is readable but the rest is not valid.
    Malformed,
    /// Opcode other than QUERY.
    NotImplemented,
}

impl std::fmt::Display for DnsParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DnsParseError::TooShort => "packet shorter than a DNS header",
            DnsParseError::WrongDirection => "unexpected QR bit",
            DnsParseError::Malformed => "malformed DNS message",
            DnsParseError::NotImplemented => "unsupported opcode",
        })
    }
}

impl std::error::Error for DnsParseError {}

/// A parsed single-question query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Transaction id.
    pub id: u16,
    /// Header flags as received.
    pub flags: u16,
    /// Question name, lowercase, without trailing dot (`""` for the root).
    pub name: String,
    /// Whether `name` is a faithful rendering (no dots or non-printable
    /// bytes inside labels); only such names are looked up locally.
    pub plain_name: bool,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// The question section as received (name + type + class).
    question: Vec<u8>,
}

/// A parsed response (what a client needs from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Transaction id.
    pub id: u16,
    /// Response code (low 4 bits of the flags).
    pub rcode: u8,
    /// Whether the TC bit is set.
    pub truncated: bool,
    /// Number of answer records.
    pub answer_count: u16,
    /// The addresses of all A records in the answer section.
    pub a_records: Vec<Ipv4Addr>,
}

fn be16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads an uncompressed name at `off`; returns (name, plain, end offset).
fn read_plain_name(buf: &[u8], mut off: usize) -> Result<(String, bool, usize), DnsParseError> {
    let start = off;
    let mut name = String::new();
    let mut plain = true;
    loop {
        let len = *buf.get(off).ok_or(DnsParseError::Malformed)? as usize;
        off += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            // Compression pointer or reserved label type: not in questions.
            return Err(DnsParseError::Malformed);
        }
        let label = buf.get(off..off + len).ok_or(DnsParseError::Malformed)?;
        off += len;
        if off - start > MAX_NAME_LEN {
            return Err(DnsParseError::Malformed);
        }
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            if b == b'.' || !b.is_ascii_graphic() {
                plain = false;
                let _ = write!(name, "\\{b:03}");
            } else {
                name.push(char::from(b.to_ascii_lowercase()));
            }
        }
    }
    if off - start > MAX_NAME_LEN {
        return Err(DnsParseError::Malformed);
    }
    Ok((name, plain, off))
}

/// Skips a possibly compressed name at `off`, returning the offset after it.
fn skip_name(buf: &[u8], mut off: usize) -> Result<usize, DnsParseError> {
    for _ in 0..128 {
        let len = *buf.get(off).ok_or(DnsParseError::Malformed)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(off + 1),
            0x00 => {
                off += 1 + len;
                if off > buf.len() {
                    return Err(DnsParseError::Malformed);
                }
            }
            0xC0 => {
                buf.get(off + 1).ok_or(DnsParseError::Malformed)?;
                return Ok(off + 2);
            }
            _ => return Err(DnsParseError::Malformed),
        }
    }
    Err(DnsParseError::Malformed)
}

/// Parses a query with exactly one question.
pub fn parse_query(buf: &[u8]) -> Result<Query, DnsParseError> {
    if buf.len() < HEADER_LEN {
        return Err(DnsParseError::TooShort);
    }
    let id = be16(buf, 0).ok_or(DnsParseError::TooShort)?;
    let flags = be16(buf, 2).ok_or(DnsParseError::TooShort)?;
    if flags & FLAG_QR != 0 {
        return Err(DnsParseError::WrongDirection);
    }
    if flags & OPCODE_MASK != 0 {
        return Err(DnsParseError::NotImplemented);
    }
    if be16(buf, 4) != Some(1) {
        return Err(DnsParseError::Malformed);
    }
    let (name, plain_name, end) = read_plain_name(buf, HEADER_LEN)?;
    let qtype = be16(buf, end).ok_or(DnsParseError::Malformed)?;
    let qclass = be16(buf, end + 2).ok_or(DnsParseError::Malformed)?;
    let question = buf
        .get(HEADER_LEN..end + 4)
        .ok_or(DnsParseError::Malformed)?
        .to_vec();
    Ok(Query {
        id,
        flags,
        name,
        plain_name,
        qtype,
        qclass,
        question,
    })
}

fn response_flags(query_flags: u16, authoritative: bool, rcode: u8) -> u16 {
    let mut f =
        FLAG_QR | FLAG_RA | (query_flags & (OPCODE_MASK | FLAG_RD)) | u16::from(rcode & 0x0F);
    if authoritative {
        f |= FLAG_AA;
    }
    f
}

fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_UDP_ANSWER);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&qd.to_be_bytes());
    out.extend_from_slice(&an.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

/// Builds an answer to `q` with A records for `ips` (the name is written as a
/// pointer to the question). Records that would not fit in 512 bytes are
/// left out.
pub fn build_answer(q: &Query, ips: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    let room = MAX_UDP_ANSWER.saturating_sub(HEADER_LEN + q.question.len()) / 16;
    let ips = &ips[..ips.len().min(room)];
    let mut out = header(
        q.id,
        response_flags(q.flags, true, RCODE_NOERROR),
        1,
        ips.len() as u16,
    );
    out.extend_from_slice(&q.question);
    for ip in ips {
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// Builds an answer-less response to `q` with `rcode` (e.g. SERVFAIL, or
/// NOERROR for "name exists, no record of this type").
pub fn build_error(q: &Query, rcode: u8) -> Vec<u8> {
    let mut out = header(
        q.id,
        response_flags(q.flags, rcode == RCODE_NOERROR, rcode),
        1,
        0,
    );
    out.extend_from_slice(&q.question);
    out
}

/// Builds a header-only response (for packets whose question is unusable).
/// `packet` must be at least 12 bytes long; returns `None` otherwise.
fn build_header_error(packet: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let id = be16(packet, 0)?;
    let flags = be16(packet, 2)?;
    Some(header(id, response_flags(flags, false, rcode), 0, 0))
}

/// Builds a recursive query for `name` (with or without trailing dot).
/// Fails for empty labels, labels over 63 bytes or names over 255 bytes.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsParseError> {
    let mut out = header(id, FLAG_RD, 1, 0);
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(DnsParseError::Malformed);
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - HEADER_LEN > MAX_NAME_LEN {
        return Err(DnsParseError::Malformed);
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// Parses a response: header, skips the questions, collects A records.
pub fn parse_response(buf: &[u8]) -> Result<Response, DnsParseError> {
    if buf.len() < HEADER_LEN {
        return Err(DnsParseError::TooShort);
    }
    let id = be16(buf, 0).ok_or(DnsParseError::TooShort)?;
    let flags = be16(buf, 2).ok_or(DnsParseError::TooShort)?;
    if flags & FLAG_QR == 0 {
        return Err(DnsParseError::WrongDirection);
    }
    let qd = be16(buf, 4).ok_or(DnsParseError::Malformed)?;
    let an = be16(buf, 6).ok_or(DnsParseError::Malformed)?;
    let mut off = HEADER_LEN;
    for _ in 0..qd {
        off = skip_name(buf, off)? + 4;
        if off > buf.len() {
            return Err(DnsParseError::Malformed);
        }
    }
    let mut a_records = Vec::new();
    for _ in 0..an {
        off = skip_name(buf, off)?;
        let rtype = be16(buf, off).ok_or(DnsParseError::Malformed)?;
        let rclass = be16(buf, off + 2).ok_or(DnsParseError::Malformed)?;
        be32(buf, off + 4).ok_or(DnsParseError::Malformed)?;
        let rdlen = be16(buf, off + 8).ok_or(DnsParseError::Malformed)? as usize;
        let rdata = buf
            .get(off + 10..off + 10 + rdlen)
            .ok_or(DnsParseError::Malformed)?;
        if rtype == TYPE_A && rclass == CLASS_IN && rdlen == 4 {
            a_records.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        off += 10 + rdlen;
    }
    Ok(Response {
        id,
        rcode: (flags & 0x000F) as u8,
        truncated: flags & FLAG_TC != 0,
        answer_count: an,
        a_records,
    })
}

/// Upstream resolvers of the host from `/etc/resolv.conf` (port 53),
/// skipping loopback ones (127.0.0.0/8, ::1), which containers cannot reach.
pub fn host_resolvers() -> Vec<SocketAddr> {
    match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(text) => parse_resolv_conf(&text),
        Err(e) => {
            tracing::warn!("reading /etc/resolv.conf: {e}");
            Vec::new()
        }
    }
}

/// Parses `nameserver` lines of a resolv.conf text; see [`host_resolvers`].
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if ip.is_loopback() || ip.is_unspecified() {
            continue;
        }
        let sa = SocketAddr::new(ip, 53);
        if !out.contains(&sa) {
            out.push(sa);
        }
    }
    out
}

/// Random number from the kernel (falls back to the clock if unavailable).
pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 4 {
        return u32::from_ne_bytes(b);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0x9e37_79b9)
}

/// What to do with one incoming packet.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Drop,
    Reply(Vec<u8>),
    Forward(Query),
}

/// The embedded DNS server; see the module documentation.
#[derive(Clone)]
pub struct DnsServer {
    lookup: Lookup,
    upstream: Vec<SocketAddr>,
    timeout: Duration,
    ttl: u32,
    max_inflight: usize,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("upstream", &self.upstream)
            .field("timeout", &self.timeout)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// A server resolving through `lookup`, forwarding unknown names to
    /// `upstream` (in order). Defaults: 2 s timeout per upstream, TTL 600 s,
    /// at most 256 forwarded queries in flight.
    pub fn new(lookup: Lookup, upstream: Vec<SocketAddr>) -> Self {
        DnsServer {
            lookup,
            upstream,
            timeout: Duration::from_secs(2),
            ttl: 600,
            max_inflight: 256,
        }
    }

    /// Sets the time to wait for each upstream resolver.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the TTL of local answers.
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// Convenience for `DnsServer::new(lookup, upstream).run(socket)`.
    pub async fn serve(
        socket: UdpSocket,
        lookup: Lookup,
        upstream: Vec<SocketAddr>,
    ) -> io::Result<()> {
        DnsServer::new(lookup, upstream).run(socket).await
    }

    /// Serves queries arriving on `socket` until the task is aborted (the
    /// engine binds one socket per network on `gateway:53` and aborts the
    /// task when the network goes away). Returns only if the socket keeps
    /// failing.
    pub async fn run(self, socket: UdpSocket) -> io::Result<()> {
        let socket = Arc::new(socket);
        let inflight = Arc::new(Semaphore::new(self.max_inflight));
        let me = Arc::new(self);
        let mut buf = vec![0u8; RECV_BUF];
        let mut consecutive_errors = 0u32;
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(r) => {
                    consecutive_errors = 0;
                    r
                }
                Err(e) => {
                    consecutive_errors += 1;
                    if consecutive_errors > 100 {
                        return Err(e);
                    }
                    tracing::debug!("dns recv: {e}");
                    continue;
                }
            };
            let packet = &buf[..n];
            match me.handle_from(packet, peer.ip()) {
                Action::Drop => {}
                Action::Reply(reply) => {
                    if let Err(e) = socket.send_to(&reply, peer).await {
                        tracing::debug!(%peer, "dns send: {e}");
                    }
                }
                Action::Forward(query) => {
                    let Ok(permit) = inflight.clone().try_acquire_owned() else {
                        let _ = socket
                            .send_to(&build_error(&query, RCODE_SERVFAIL), peer)
                            .await;
                        continue;
                    };
                    let raw = packet.to_vec();
                    let socket = socket.clone();
                    let me = me.clone();
                    tokio::spawn(async move {
                        let reply = match me.forward(&raw, query.id).await {
                            Some(r) => r,
                            None => build_error(&query, RCODE_SERVFAIL),
                        };
                        if let Err(e) = socket.send_to(&reply, peer).await {
                            tracing::debug!(%peer, "dns send: {e}");
                        }
                        drop(permit);
                    });
                }
            }
        }
    }

    #[cfg(test)]
    fn handle(&self, packet: &[u8]) -> Action {
        self.handle_from(packet, std::net::IpAddr::from([0, 0, 0, 0]))
    }

    fn handle_from(&self, packet: &[u8], from: std::net::IpAddr) -> Action {
        let q = match parse_query(packet) {
            Ok(q) => q,
            Err(DnsParseError::TooShort) | Err(DnsParseError::WrongDirection) => {
                return Action::Drop
            }
            Err(DnsParseError::Malformed) => {
                return build_header_error(packet, RCODE_FORMERR)
                    .map_or(Action::Drop, Action::Reply)
            }
            Err(DnsParseError::NotImplemented) => {
                return build_header_error(packet, RCODE_NOTIMP).map_or(Action::Drop, Action::Reply)
            }
        };
        if q.plain_name && !q.name.is_empty() && q.qclass == CLASS_IN {
            if let Some(ips) = (self.lookup)(&q.name, from) {
                tracing::trace!(name = %q.name, qtype = q.qtype, "dns local answer");
                return Action::Reply(match q.qtype {
                    TYPE_A | TYPE_ANY => build_answer(&q, &ips, self.ttl),
                    _ => build_error(&q, RCODE_NOERROR),
                });
            }
        }
        if self.upstream.is_empty() {
            return Action::Reply(build_error(&q, RCODE_SERVFAIL));
        }
        Action::Forward(q)
    }

    /// Relays `raw` to the upstream resolvers in turn; returns the first
    /// valid reply with the client's id restored.
    async fn forward(&self, raw: &[u8], client_id: u16) -> Option<Vec<u8>> {
        for up in &self.upstream {
            let bind: SocketAddr = if up.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let sock = match UdpSocket::bind(bind).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("dns forward bind: {e}");
                    continue;
                }
            };
            if let Err(e) = sock.connect(up).await {
                tracing::debug!(upstream = %up, "dns forward connect: {e}");
                continue;
            }
            let id = (random_u32() & 0xFFFF) as u16;
            let mut query = raw.to_vec();
            query[..2].copy_from_slice(&id.to_be_bytes());
            if let Err(e) = sock.send(&query).await {
                tracing::debug!(upstream = %up, "dns forward send: {e}");
                continue;
            }
            let deadline = tokio::time::Instant::now() + self.timeout;
            let mut buf = vec![0u8; RECV_BUF];
            loop {
                match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                    Ok(Ok(n)) => {
                        let reply = &buf[..n];
                        if n >= HEADER_LEN
                            && be16(reply, 0) == Some(id)
                            && be16(reply, 2).is_some_and(|f| f & FLAG_QR != 0)
                        {
                            let mut reply = reply.to_vec();
                            reply[..2].copy_from_slice(&client_id.to_be_bytes());
                            return Some(reply);
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(upstream = %up, "dns forward recv: {e}");
                        break;
                    }
                    Err(_) => {
                        tracing::debug!(upstream = %up, "dns forward timed out");
                        break;
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> DnsServer {
        let lookup: Lookup = Arc::new(|name: &str, _from: std::net::IpAddr| match name {
            "web" => Some(vec![Ipv4Addr::new(10, 0, 0, 2)]),
            "many" => Some((0..100).map(|i| Ipv4Addr::new(10, 0, 1, i)).collect()),
            _ => None,
        });
        DnsServer::new(lookup, vec!["192.0.2.53:53".parse().unwrap()])
    }

    fn reply(a: Action) -> Response {
        match a {
            Action::Reply(r) => parse_response(&r).unwrap(),
            other => panic!("expected reply, got {other:?}"),
        }
    }

    #[test]
    fn query_roundtrip() {
        let q = build_query(0x1234, "Web.Example.", TYPE_A).unwrap();
        let p = parse_query(&q).unwrap();
        assert_eq!(p.id, 0x1234);
        assert_eq!(p.name, "web.example");
        assert!(p.plain_name);
        assert_eq!((p.qtype, p.qclass), (TYPE_A, CLASS_IN));
        assert_eq!(build_query(1, "", TYPE_A).unwrap().len(), HEADER_LEN + 5);
        assert!(build_query(1, "a..b", TYPE_A).is_err());
        assert!(build_query(1, &"a".repeat(64), TYPE_A).is_err());
        assert!(build_query(1, &vec!["a".repeat(63); 5].join("."), TYPE_A).is_err());
    }

    #[test]
    fn answers_known_names() {
        let s = server();
        for name in ["web", "WEB", "web.", "Web."] {
            let r = reply(s.handle(&build_query(7, name, TYPE_A).unwrap()));
            assert_eq!(r.id, 7);
            assert_eq!(r.rcode, RCODE_NOERROR);
            assert_eq!(r.a_records, vec![Ipv4Addr::new(10, 0, 0, 2)], "{name}");
        }
        let r = reply(s.handle(&build_query(8, "web", TYPE_AAAA).unwrap()));
        assert_eq!((r.rcode, r.answer_count), (RCODE_NOERROR, 0));
        // Capped to 512 bytes.
        let raw = match s.handle(&build_query(9, "many", TYPE_A).unwrap()) {
            Action::Reply(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(raw.len() <= 512);
        assert!(parse_response(&raw).unwrap().a_records.len() > 20);
    }

    #[test]
    fn forwards_unknown_and_servfails_without_upstream() {
        let s = server();
        let q = build_query(9, "example.com", TYPE_A).unwrap();
        assert!(matches!(s.handle(&q), Action::Forward(_)));
        let mut s2 = server();
        s2.upstream.clear();
        assert_eq!(reply(s2.handle(&q)).rcode, RCODE_SERVFAIL);
    }

    #[test]
    fn malformed_packets() {
        let s = server();
        assert_eq!(s.handle(&[]), Action::Drop);
        assert_eq!(s.handle(&[0; 11]), Action::Drop);
        // A response is never answered (no loops).
        let mut resp = build_query(1, "web", TYPE_A).unwrap();
        resp[2] |= 0x80;
        assert_eq!(s.handle(&resp), Action::Drop);
        // Opcode STATUS -> NOTIMP.
        let mut st = build_query(1, "web", TYPE_A).unwrap();
        st[2] |= 0x10;
        assert_eq!(reply(s.handle(&st)).rcode, RCODE_NOTIMP);
        // Two questions -> FORMERR.
        let mut two = build_query(1, "web", TYPE_A).unwrap();
        two[5] = 2;
        assert_eq!(reply(s.handle(&two)).rcode, RCODE_FORMERR);
        // Compression pointer in the question -> FORMERR.
        let mut ptr = header(1, FLAG_RD, 1, 0);
        ptr.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        assert_eq!(reply(s.handle(&ptr)).rcode, RCODE_FORMERR);
        // Label with a dot is not looked up locally.
        let mut dotted = header(1, FLAG_RD, 1, 0);
        dotted.extend_from_slice(&[3, b'w', b'.', b'b', 0, 0, 1, 0, 1]);
        match s.handle(&dotted) {
            Action::Forward(q) => assert!(!q.plain_name),
            other => panic!("{other:?}"),
        }
        // Over-long name.
        let mut long = header(1, FLAG_RD, 1, 0);
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(reply(s.handle(&long)).rcode, RCODE_FORMERR);
    }

    #[test]
    fn truncated_queries_never_panic() {
        let s = server();
        let q = build_query(0xBEEF, "web.example.com", TYPE_A).unwrap();
        for len in 0..q.len() {
            match s.handle(&q[..len]) {
                Action::Drop => assert!(len < HEADER_LEN),
                Action::Reply(r) => {
                    let r = parse_response(&r).unwrap();
                    assert_eq!(r.rcode, RCODE_FORMERR, "len {len}");
                }
                Action::Forward(_) => panic!("truncated query forwarded (len {len})"),
            }
            let _ = parse_response(&q[..len]);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let s = server();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let base = build_query(3, "web.example", TYPE_A).unwrap();
        for i in 0..20_000 {
            let len = (next() % 80) as usize;
            let mut pkt: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 {
                // Mutate a valid query instead of pure noise.
                pkt = base.clone();
                for _ in 0..(next() % 4 + 1) {
                    let at = (next() as usize) % pkt.len();
                    pkt[at] = next() as u8;
                }
                pkt.truncate((next() as usize) % (pkt.len() + 1));
            }
            if let Action::Reply(r) = s.handle(&pkt) {
                assert!(parse_response(&r).is_ok());
            }
            let _ = parse_response(&pkt);
            let _ = parse_query(&pkt);
        }
    }

    #[test]
    fn response_with_compression() {
        // Upstream-style answer: question + CNAME + A, names compressed.
        let q = build_query(5, "a.example", TYPE_A).unwrap();
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 2; // ancount
        r.extend_from_slice(&[0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 0x0E]);
        r.extend_from_slice(&[0xC0, 0x0E, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        let p = parse_response(&r).unwrap();
        assert_eq!(p.a_records, vec![Ipv4Addr::new(1, 2, 3, 4)]);
        assert_eq!(p.answer_count, 2);
        r.truncate(r.len() - 2);
        assert_eq!(parse_response(&r), Err(DnsParseError::Malformed));
    }

    #[test]
    fn resolv_conf() {
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53 # x\nnameserver ::1\n\
nameserver 2001:db8::1\nnameserver bogus\nsearch example\nnameserver 10.255.255.53\n;nameserver 1.1.1.1\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.255.255.53:53".parse().unwrap(),
                "[2001:db8::1]:53".parse().unwrap()
            ]
        );
    }
}
