//! Integration tests against the real kernel: namespaces, bridges, veths,
//! nftables. They need root; each test owns uniquely named objects
//! (`b<pid><tag>...`) and removes them through its fixture's Drop.

mod common;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_network::{
    attach, bridge_exists, create_netns, detach, ensure_bridge, ephemeral_port, host_routes,
    mac_for_ip, pick_subnet, port_free, remove_bridge, remove_netns, Backend, EndpointConfig,
    Error, Ipv4Net, PortMapping, Proto,
};
use common::*;

fn sysctl(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn netns_lifecycle() {
    if !privileged() {
        return;
    }
    let mut fx = Fixture::new("n");
    let ns = fx.netns("a");
    assert!(ns.exists());
    let lo = in_ns(&ns, &["ip", "-o", "link", "show", "lo"]).unwrap();
    assert!(lo.contains("UP"), "lo not up: {lo}");
    // Only lo inside.
    let links = in_ns(&ns, &["ip", "-o", "link", "show"]).unwrap();
    assert_eq!(links.lines().count(), 1, "{links}");
    // Creating it again is refused and leaves the existing one alone.
    assert!(matches!(create_netns(&ns), Err(Error::NetnsExists(_))));
    assert!(in_ns(&ns, &["true"]).is_ok());
    assert!(create_netns(std::path::Path::new("relative/ns")).is_err());
    remove_netns(&ns).unwrap();
    assert!(!ns.exists());
    remove_netns(&ns).unwrap();
    // The path is free for reuse.
    create_netns(&ns).unwrap();
    remove_netns(&ns).unwrap();
}

#[test]
fn bridge_lifecycle() {
    if !privileged() {
        return;
    }
    let mut fx = Fixture::new("g");
    let spec = fx.network(1, 1, false);
    assert!(bridge_exists(&spec.bridge));
    ensure_bridge(&spec).unwrap(); // idempotent
    let addrs = run_ok(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", &spec.bridge]));
    assert_eq!(addrs.lines().count(), 1, "{addrs}");
    assert!(addrs.contains(&format!("{}/24", spec.gateway)), "{addrs}");
    assert!(
        addrs.contains(&format!("brd {}", spec.subnet.broadcast())),
        "{addrs}"
    );
    let link = run_ok(Command::new("ip").args(["-o", "link", "show", &spec.bridge]));
    assert!(link.contains(",UP"), "{link}");
    assert!(link.contains("02:42:"), "{link}");
    assert_eq!(sysctl("/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(
        sysctl(&format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            spec.bridge
        )),
        "1"
    );

    // A non-bridge interface of that name is neither reused nor removed.
    let dummy = fx.non_bridge(1);
    let mut other = spec.clone();
    other.bridge = dummy.clone();
    assert!(ensure_bridge(&other).is_err());
    assert!(!bridge_exists(&dummy));
    assert!(remove_bridge(&dummy).is_err());
    assert!(link_exists(&dummy));

    // Invalid names are refused before reaching the kernel.
    let mut bad = spec.clone();
    bad.bridge = "bad name".into();
    assert!(matches!(ensure_bridge(&bad), Err(Error::Invalid { .. })));
    assert!(!bridge_exists("bad name"));

    remove_bridge(&spec.bridge).unwrap();
    assert!(!bridge_exists(&spec.bridge));
    remove_bridge(&spec.bridge).unwrap();
}

#[test]
fn two_namespaces_on_one_bridge_ping() {
    if !privileged() {
        return;
    }
    let mut fx = Fixture::new("p");
    let net = fx.network(1, 2, false);
    let a = fx.netns("a");
    let b = fx.netns("b");
    let a_ip = fx.attach(&a, &net, 1, 2, true);
    let b_ip = fx.attach(&b, &net, 2, 3, true);
    assert!(ping(&a, b_ip), "a -> b");
    assert!(ping(&b, a_ip), "b -> a");
    assert!(ping(&a, net.gateway), "a -> gateway");
    assert!(ping_from_host(a_ip), "host -> a");

    let link = in_ns(&a, &["ip", "-o", "link", "show", "eth0"]).unwrap();
    let mac = mac_for_ip(a_ip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(link.contains(&mac), "{link}");
    assert!(link.contains(",UP"), "{link}");
    let route = in_ns(&a, &["ip", "-4", "route", "show", "default"]).unwrap();
    assert!(route.contains(&format!("via {}", net.gateway)), "{route}");
    let master = run_ok(Command::new("ip").args(["-o", "link", "show", &fx.ifname('v', 1)]));
    assert!(
        master.contains(&format!("master {}", net.bridge)),
        "{master}"
    );

    // Same host veth name again: refused, and the existing endpoint survives.
    let dup = EndpointConfig {
        host_veth: fx.ifname('v', 1),
        container_ifname: "eth1".into(),
        ip: host(net.subnet, 9),
        prefix: 24,
        gateway: None,
        mac: None,
    };
    assert!(attach(&b, &net.bridge, &dup).is_err());
    assert!(ping(&a, b_ip), "existing endpoint broken by failed attach");

    // Container interface name already taken inside the namespace.
    let clash = EndpointConfig {
        host_veth: fx.ifname('v', 3),
        container_ifname: "eth0".into(),
        ip: host(net.subnet, 10),
        prefix: 24,
        gateway: None,
        mac: None,
    };
    assert!(attach(&a, &net.bridge, &clash).is_err());
    assert!(!link_exists(&clash.host_veth));

    // Failure after the veth was created (second default route): rolled back.
    let late = EndpointConfig {
        host_veth: fx.ifname('v', 4),
        container_ifname: "eth1".into(),
        ip: host(net.subnet, 11),
        prefix: 24,
        gateway: Some(net.gateway),
        mac: Some([0x02, 0, 0, 0, 0, 0x11]),
    };
    let err = attach(&a, &net.bridge, &late).unwrap_err();
    assert!(err.to_string().contains("default route"), "{err}");
    assert!(!link_exists(&late.host_veth));
    assert!(in_ns(&a, &["ip", "link", "show", "eth1"]).is_err());

    // Missing bridge / netns.
    let mut nobr = late.clone();
    nobr.gateway = None;
    assert!(matches!(
        attach(&a, &fx.ifname('r', 9), &nobr),
        Err(Error::LinkNotFound(_))
    ));
    assert!(attach(std::path::Path::new("/nonexistent/ns"), &net.bridge, &nobr).is_err());
    assert!(!link_exists(&nobr.host_veth));

    // Second interface without default route, with an explicit MAC.
    nobr.host_veth = fx.ifname('v', 5);
    attach(&a, &net.bridge, &nobr).unwrap();
    let eth1 = in_ns(&a, &["ip", "-o", "link", "show", "eth1"]).unwrap();
    assert!(eth1.contains("02:00:00:00:00:11"), "{eth1}");
    detach(&nobr.host_veth).unwrap();

    detach(&fx.ifname('v', 2)).unwrap();
    assert!(!ping_once(&a, b_ip), "b still reachable after detach");
    assert!(in_ns(&b, &["ip", "link", "show", "eth0"]).is_err());
    detach(&fx.ifname('v', 2)).unwrap(); // idempotent
}

#[test]
fn attach_detach_timing() {
    if !privileged() {
        return;
    }
    let mut fx = Fixture::new("t");
    let net = fx.network(1, 3, false);
    const N: u32 = 10;
    let mut create = Duration::ZERO;
    let mut namespaces = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        let ns = fx.netns(&format!("c{i}"));
        create += t.elapsed();
        namespaces.push(ns);
    }
    let mut att = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let t = Instant::now();
        fx.attach(ns, &net, i as u32, 10 + i as u8, true);
        att.push(t.elapsed());
    }
    assert!(ping(&namespaces[0], host(net.subnet, 10 + N as u8 - 1)));
    let mut det = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        detach(&fx.ifname('v', i)).unwrap();
        det.push(t.elapsed());
    }
    let avg = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "TIMING create_netns avg {:?}; attach avg {:?} min {:?} max {:?}; detach avg {:?} max {:?} (n={N})",
        create / N,
        avg(&att),
        att.iter().min().unwrap(),
        att.iter().max().unwrap(),
        avg(&det),
        det.iter().max().unwrap()
    );
}

#[test]
fn isolation_internal_and_masquerade_nftables() {
    isolation_internal_and_masquerade(Backend::Nftables, "i", 4);
}

#[test]
fn isolation_internal_and_masquerade_iptables() {
    isolation_internal_and_masquerade(Backend::Iptables, "j", 10);
}

/// `tag` and subnets `k..k+3` unique per backend: both variants run at once.
fn isolation_internal_and_masquerade(backend: Backend, tag: &str, k: u8) {
    if !privileged() {
        return;
    }
    require(backend);
    let mut fx = Fixture::new(tag);
    let n1 = fx.network(1, k, false);
    let n2 = fx.network(2, k + 1, false);
    let ni = fx.network(3, k + 2, true);
    let nu = fx.network(4, k + 3, false); // a bridge this firewall does not manage
    let (a, b, c, d, e, o) = (
        fx.netns("a"),
        fx.netns("b"),
        fx.netns("c"),
        fx.netns("d"),
        fx.netns("e"),
        fx.netns("o"),
    );
    let a_ip = fx.attach(&a, &n1, 1, 2, true);
    let b_ip = fx.attach(&b, &n1, 2, 3, true);
    let c_ip = fx.attach(&c, &n2, 3, 2, true);
    // d gets a default route so that only the firewall keeps it in.
    let d_ip = fx.attach(&d, &ni, 4, 2, true);
    let e_ip = fx.attach(&e, &ni, 5, 3, false);
    let o_ip = fx.attach(&o, &nu, 6, 2, true);

    let fw = fx.firewall(backend);
    fw.init().unwrap(); // idempotent
                        // Without networks in the table, routing between bridges works.
    assert!(ping(&c, a_ip), "c -> a before isolation");
    assert!(ping(&d, o_ip), "d -> o before isolation");

    for n in [&n1, &n2, &ni] {
        fw.add_network(n).unwrap();
    }
    fw.add_network(&n1).unwrap(); // idempotent
    fw.init().unwrap(); // re-init (daemon restart) keeps the networks' rules

    assert!(ping(&a, b_ip), "a -> b (same network)");
    assert!(ping(&b, a_ip), "b -> a (same network)");
    assert!(!ping_once(&c, a_ip), "c -> a crosses networks");
    assert!(!ping_once(&a, c_ip), "a -> c crosses networks");
    assert!(ping(&a, o_ip), "a -> o (egress to an unmanaged bridge)");

    // Internal network: nothing in or out, but its members see each other.
    assert!(!ping_once(&d, o_ip), "d (internal) -> o");
    assert!(!ping_once(&o, d_ip), "o -> d (internal)");
    assert!(ping(&d, e_ip), "d -> e (same internal network)");
    let routes = in_ns(&e, &["ip", "-4", "route", "show", "default"]).unwrap();
    assert!(
        routes.trim().is_empty(),
        "internal endpoint without gateway has a default route: {routes}"
    );
    assert!(!ping_once(&e, o_ip));

    // Masquerade: o sees a's connection coming from its own gateway.
    let _srv = tcp_server(&o, 8080);
    let peer = with_netns(&a, || tcp_fetch(SocketAddr::from((o_ip, 8080)))).expect("a -> o:8080");
    assert!(
        peer.starts_with(&format!("{}:", nu.gateway)),
        "not masqueraded: {peer}"
    );

    let table = firewall_text(backend, &fx.table());
    match backend {
        Backend::Nftables => {
            assert!(
                table.contains(&format!("oifname != \"{}\" masquerade", n1.bridge)),
                "{table}"
            );
            assert!(
                !table.contains(&format!("nat-{}", ni.bridge)),
                "internal network masqueraded: {table}"
            );
            assert_eq!(
                table
                    .matches(&format!("chain fwd-out-{} ", n1.bridge))
                    .count(),
                1
            );
            assert_eq!(
                table
                    .matches(&format!("iifname \"{}\" accept", n1.bridge))
                    .count(),
                1,
                "{table}"
            );
            assert_eq!(
                table.matches("fib daddr type local jump ports").count(),
                2,
                "{table}"
            );
        }
        Backend::Iptables => {
            assert!(
                table.contains(&format!(
                    "! -o {} -m comment --comment net:{} -j MASQUERADE",
                    n1.bridge, n1.bridge
                )),
                "{table}"
            );
            assert!(
                !table.contains(&format!("-s {} ", ni.subnet)),
                "internal network masqueraded: {table}"
            );
            // Re-adding and re-initializing duplicated nothing.
            assert_eq!(
                table
                    .matches(&format!(
                        "-i {} -o {} -m comment --comment net:{} -j ACCEPT",
                        n1.bridge, n1.bridge, n1.bridge
                    ))
                    .count(),
                1,
                "{table}"
            );
            assert_eq!(table.matches("--dst-type LOCAL -j ").count(), 2, "{table}");
            assert_eq!(table.matches("-A FORWARD ").count(), 1, "{table}");
        }
    }

    fw.remove_network(&n2).unwrap();
    fw.remove_network(&n2).unwrap(); // idempotent
    let table = firewall_text(backend, &fx.table());
    assert!(!table.contains(&n2.bridge), "{table}");
    assert!(table.contains(&n1.bridge), "{table}");
    fw.remove_network(&ni).unwrap();
    assert!(
        ping(&d, o_ip),
        "d -> o after the internal network's rules are gone"
    );

    fw.teardown().unwrap();
    fw.teardown().unwrap();
    let left = match backend {
        Backend::Nftables => run_ok(Command::new("nft").args(["list", "tables"]))
            .lines()
            .filter(|l| l.ends_with(&format!(" {}", fx.table())))
            .collect::<String>(),
        Backend::Iptables => firewall_text(backend, &fx.table()),
    };
    assert!(left.is_empty(), "left after teardown: {left}");
    assert!(ping(&c, a_ip), "c -> a after teardown");
}

#[test]
fn published_ports_nftables() {
    published_ports(Backend::Nftables, "f", 8, 15);
}

#[test]
fn published_ports_iptables() {
    published_ports(Backend::Iptables, "e", 14, 16);
}

/// `k` is the containers' subnet, `k_outside` that of a namespace standing for
/// another host: it reaches this one through a bridge the firewall does not
/// manage, as traffic from a LAN would through the host's interface.
fn published_ports(backend: Backend, tag: &str, k: u8, k_outside: u8) {
    if !privileged() {
        return;
    }
    require(backend);
    let mut fx = Fixture::new(tag);
    let net = fx.network(1, k, false);
    let lan = fx.network(2, k_outside, false);
    let a = fx.netns("a");
    let b = fx.netns("b");
    let remote = fx.netns("r");
    let a_ip = fx.attach(&a, &net, 1, 2, true);
    fx.attach(&b, &net, 2, 3, true);
    let remote_ip = fx.attach(&remote, &lan, 3, 2, true);
    let fw = fx.firewall(backend);
    fw.add_network(&net).unwrap();
    let _tcp = tcp_server(&a, 80);
    let _udp = udp_echo_server(&a, 5353);

    let mut reserved = HashSet::new();
    let p1 = ephemeral_port(Proto::Tcp, None, &reserved).unwrap();
    reserved.insert(p1);
    let p2 = ephemeral_port(Proto::Tcp, None, &reserved).unwrap();
    reserved.insert(p2);
    let p3 = ephemeral_port(Proto::Udp, None, &reserved).unwrap();
    let (o1, o2) = ("0a1b2c", "ffee01");
    let m1 = PortMapping {
        proto: Proto::Tcp,
        host_ip: None,
        host_port: p1,
        container_ip: a_ip,
        container_port: 80,
    };
    fw.publish(o1, std::slice::from_ref(&m1)).unwrap();
    fw.publish(o1, std::slice::from_ref(&m1)).unwrap(); // replaces, no duplicate jump
    fw.publish(
        o2,
        &[
            PortMapping {
                proto: Proto::Tcp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: p2,
                container_ip: a_ip,
                container_port: 80,
            },
            PortMapping {
                proto: Proto::Udp,
                host_ip: None,
                host_port: p3,
                container_ip: a_ip,
                container_port: 5353,
            },
        ],
    )
    .unwrap();
    let rules = firewall_text(backend, &fx.table());
    let o1_rules = match backend {
        Backend::Nftables => rules.matches(&format!("jump pub-{o1}")).count(),
        Backend::Iptables => rules.matches(&format!("--comment pub:{o1} ")).count(),
    };
    assert_eq!(o1_rules, 1, "{rules}");
    let mut owners = fw.published_owners().unwrap();
    owners.sort();
    assert_eq!(owners, vec![o1.to_string(), o2.to_string()]);

    let local = |ip: Ipv4Addr, port: u16| SocketAddr::V4(SocketAddrV4::new(ip, port));
    // Loopback: DNAT in output + route_localnet + masquerade.
    let peer = tcp_fetch(local(Ipv4Addr::LOCALHOST, p1)).expect("127.0.0.1:p1");
    assert!(peer.starts_with(&format!("{}:", net.gateway)), "{peer}");
    // The bridge's own address and the host's global address.
    tcp_fetch(local(net.gateway, p1)).expect("gateway:p1");
    if let Some(ip) = host_global_ip() {
        let peer = tcp_fetch(local(ip, p1)).unwrap_or_else(|e| panic!("{ip}:{p1}: {e}"));
        println!("host address {ip}: container saw {peer}");
    } else {
        println!("no global host address; skipped that check");
    }
    // From another host: DNAT on the way in, forwarded to the bridge, the
    // client's own address kept (as docker keeps it).
    let peer =
        with_netns(&remote, || tcp_fetch(local(lan.gateway, p1))).expect("remote -> host:p1");
    assert!(
        peer.starts_with(&format!("{remote_ip}:")),
        "source address not kept: {peer}"
    );
    with_netns(&remote, || tcp_fetch(local(lan.gateway, p2)))
        .expect_err("p2 is published on 127.0.0.1 only, not to other hosts");
    // From another container and from the container itself (hairpin).
    with_netns(&b, || tcp_fetch(local(net.gateway, p1))).expect("b -> gateway:p1");
    with_netns(&a, || tcp_fetch(local(net.gateway, p1))).expect("a -> gateway:p1 (hairpin)");
    // Loopback-only mapping and UDP.
    tcp_fetch(local(Ipv4Addr::LOCALHOST, p2)).expect("127.0.0.1:p2");
    tcp_fetch(local(net.gateway, p2)).expect_err("p2 is published on 127.0.0.1 only");
    assert_eq!(
        udp_roundtrip(local(Ipv4Addr::LOCALHOST, p3), b"hello").expect("udp p3"),
        b"hello"
    );

    fw.unpublish(o1).unwrap();
    let err = tcp_fetch(local(Ipv4Addr::LOCALHOST, p1)).expect_err("p1 still published");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    fw.unpublish(o1).unwrap(); // idempotent
    tcp_fetch(local(Ipv4Addr::LOCALHOST, p2)).expect("o2 unaffected by unpublish(o1)");

    fw.publish(o1, &[m1]).unwrap();
    let keep: HashSet<String> = [o1.to_uppercase()].into();
    let removed = fw.reconcile(&keep).unwrap();
    assert_eq!(removed, vec![o2.to_string()]);
    let err = tcp_fetch(local(Ipv4Addr::LOCALHOST, p2)).expect_err("p2 still published");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    tcp_fetch(local(Ipv4Addr::LOCALHOST, p1)).expect("kept owner");
    assert_eq!(fw.published_owners().unwrap(), vec![o1.to_string()]);
    assert!(fw.reconcile(&keep).unwrap().is_empty());

    // Publishing with an empty list is the same as unpublishing.
    fw.publish(o1, &[]).unwrap();
    assert!(fw.published_owners().unwrap().is_empty());
    let rules = firewall_text(backend, &fx.table());
    assert!(
        !rules.contains("pub-") && !rules.contains("pub:"),
        "{rules}"
    );
}

#[test]
fn host_routes_include_bridges() {
    if !privileged() {
        return;
    }
    let mut fx = Fixture::new("h");
    let net = fx.network(1, 9, false);
    let routes = host_routes();
    assert!(routes.contains(&net.subnet), "{routes:?}");
    assert!(routes.iter().all(|r| r.prefix() > 0));
    let pool: Ipv4Net = format!("{}/16", net.subnet.network()).parse().unwrap();
    let picked = pick_subnet(&[(pool.trunc(), 24)], &routes).unwrap();
    assert!(!routes.iter().any(|r| r.overlaps(&picked)), "{picked}");
    assert_eq!(pick_subnet(&[(net.subnet, 24)], &routes), None);
}

#[test]
fn port_checks() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert!(!port_free(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), port));
    assert!(!port_free(Proto::Tcp, None, port));
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut it = range.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (lo, hi) = (it.next().unwrap(), it.next().unwrap());
    let mut reserved = HashSet::new();
    for _ in 0..20 {
        let p = ephemeral_port(Proto::Udp, Some(Ipv4Addr::LOCALHOST), &reserved).unwrap();
        assert!((lo..=hi).contains(&p));
        assert!(reserved.insert(p), "reserved port {p} handed out twice");
        assert!(port_free(Proto::Udp, Some(Ipv4Addr::LOCALHOST), p));
    }
}

/// dockerd sets the iptables FORWARD policy to DROP, which drops forwarded
/// packets whatever berth's nftables table accepts; berth's networks must keep
/// working next to it. The test runs in a network namespace of its own, so the
/// policy touches nothing else on the host.
#[test]
fn nftables_networks_work_where_iptables_forward_drops() {
    if !privileged() {
        return;
    }
    require(Backend::Nftables);
    require(Backend::Iptables);
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("private netns");
        run_ok(Command::new("ip").args(["link", "set", "lo", "up"]));
        run_ok(Command::new("iptables").args(["-w", "-P", "FORWARD", "DROP"]));
        let mut fx = Fixture::new("w");
        let net = fx.network(1, 17, false);
        let outside = fx.network(2, 18, false); // stands for the host's uplink
        let a = fx.netns("a");
        let o = fx.netns("o");
        let a_ip = fx.attach(&a, &net, 1, 2, true);
        let o_ip = fx.attach(&o, &outside, 2, 2, true);
        assert!(!ping_once(&a, o_ip), "the DROP policy is in force");

        let fw = fx.firewall(Backend::Nftables);
        fw.add_network(&net).unwrap();
        fw.add_network(&net).unwrap(); // idempotent
        assert!(ping(&a, o_ip), "a -> outside, accepted by berth's rules");
        assert!(
            !ping_once(&o, a_ip),
            "outside -> a: still refused, berth's table decides"
        );
        let rules = run_ok(Command::new("iptables").args(["-w", "-S", "FORWARD"]));
        let tag = format!("berth:{}:{}", fx.table(), net.bridge);
        assert_eq!(rules.matches(&tag).count(), 2, "{rules}");

        fw.remove_network(&net).unwrap();
        let rules = run_ok(Command::new("iptables").args(["-w", "-S", "FORWARD"]));
        assert!(!rules.contains("berth:"), "{rules}");
        assert!(!ping_once(&a, o_ip), "the network's accept rules are gone");
        drop(fx);
    })
    .join()
    .expect("test thread");
}
