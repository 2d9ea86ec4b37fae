//! DNS server tests over real UDP sockets on 127.0.0.1, with fake upstream
//! resolvers. No traffic leaves the loopback interface.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_network::dns::{
    build_query, parse_query, parse_response, RCODE_FORMERR, RCODE_NOERROR, RCODE_SERVFAIL, TYPE_A,
    TYPE_AAAA,
};
use berth_network::{DnsServer, Lookup};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

fn lookup() -> Lookup {
    Arc::new(|name: &str, _from: std::net::IpAddr| match name {
        "web" | "web.mynet" => Some(vec![Ipv4Addr::new(172, 18, 0, 2)]),
        "db" => Some(vec![
            Ipv4Addr::new(172, 18, 0, 3),
            Ipv4Addr::new(172, 18, 0, 4),
        ]),
        _ => None,
    })
}

async fn start(
    upstream: Vec<SocketAddr>,
    timeout: Duration,
) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let server = DnsServer::new(lookup(), upstream).with_timeout(timeout);
    (addr, tokio::spawn(server.run(sock)))
}

/// Fake upstream: answers every A query with 198.51.100.7 (and records the
/// names asked), or stays silent when `silent`.
async fn fake_upstream(silent: bool) -> (SocketAddr, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            if silent {
                continue;
            }
            let Ok(q) = parse_query(&buf[..n]) else {
                continue;
            };
            // Build an answer by hand: header + echoed question + one A record.
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80; // QR
            r[3] = 0x80; // RA, NOERROR
            r[6..8].copy_from_slice(&1u16.to_be_bytes());
            r[10..12].copy_from_slice(&0u16.to_be_bytes()); // drop any OPT record
            let qend = 12 + r[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
            r.truncate(qend);
            r.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 198, 51, 100, 7]);
            assert_eq!(q.qtype, TYPE_A);
            let _ = sock.send_to(&r, peer).await;
        }
    });
    (addr, h)
}

async fn ask(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    ask_within(server, packet, Duration::from_secs(3)).await
}

async fn ask_within(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(packet, server).await.unwrap();
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(wait, c.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test]
async fn answers_known_names_and_forwards_unknown() {
    let (up, up_task) = fake_upstream(false).await;
    let (srv, task) = start(vec![up], Duration::from_secs(2)).await;

    for (id, name) in [(1u16, "web"), (2, "WEB."), (3, "Web.MyNet")] {
        let r = parse_response(
            &ask(srv, &build_query(id, name, TYPE_A).unwrap())
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.id, id);
        assert_eq!(r.rcode, RCODE_NOERROR);
        assert_eq!(r.a_records, vec![Ipv4Addr::new(172, 18, 0, 2)], "{name}");
    }
    let r = parse_response(
        &ask(srv, &build_query(4, "db", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.a_records.len(), 2);
    let r = parse_response(
        &ask(srv, &build_query(5, "web", TYPE_AAAA).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!((r.rcode, r.answer_count), (RCODE_NOERROR, 0));

    // Unknown name: relayed from the upstream, with our id.
    let r = parse_response(
        &ask(srv, &build_query(0xABCD, "example.test", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.id, 0xABCD);
    assert_eq!(r.a_records, vec![Ipv4Addr::new(198, 51, 100, 7)]);

    // Garbage is dropped or FORMERR'd, and the server keeps going.
    assert!(ask_within(srv, &[1, 2, 3], Duration::from_millis(300))
        .await
        .is_none());
    let mut bad = build_query(6, "web", TYPE_A).unwrap();
    bad.truncate(bad.len() - 3);
    let r = parse_response(&ask(srv, &bad).await.unwrap()).unwrap();
    assert_eq!(r.rcode, RCODE_FORMERR);
    let r = parse_response(
        &ask(srv, &build_query(7, "web", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.a_records, vec![Ipv4Addr::new(172, 18, 0, 2)]);

    task.abort();
    up_task.abort();
}

#[tokio::test]
async fn servfail_without_or_with_silent_upstream() {
    let (srv, task) = start(vec![], Duration::from_secs(2)).await;
    let r = parse_response(
        &ask(srv, &build_query(9, "example.test", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!((r.id, r.rcode), (9, RCODE_SERVFAIL));
    task.abort();

    let (up, up_task) = fake_upstream(true).await;
    let (srv, task) = start(vec![up], Duration::from_millis(300)).await;
    let t = std::time::Instant::now();
    let r = parse_response(
        &ask(srv, &build_query(10, "example.test", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!((r.id, r.rcode), (10, RCODE_SERVFAIL));
    assert!(t.elapsed() >= Duration::from_millis(250));
    // Known names are still answered while a forward is pending.
    let r = parse_response(
        &ask(srv, &build_query(11, "web", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.rcode, RCODE_NOERROR);
    task.abort();
    up_task.abort();
}

#[tokio::test]
async fn falls_through_to_second_upstream() {
    // First upstream: a closed port (ICMP unreachable) -> next one answers.
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let (up, up_task) = fake_upstream(false).await;
    let (srv, task) = start(vec![closed, up], Duration::from_millis(500)).await;
    let r = parse_response(
        &ask(srv, &build_query(12, "example.test", TYPE_A).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.a_records, vec![Ipv4Addr::new(198, 51, 100, 7)]);
    task.abort();
    up_task.abort();
}
