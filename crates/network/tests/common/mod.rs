//! Shared fixtures for the integration tests. Every kernel object a test
//! creates is registered on its [`Fixture`] and removed on drop, also when
//! the test panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use berth_network::{
    attach, create_netns, detach, ensure_bridge, remove_bridge, remove_netns, Backend,
    EndpointConfig, Firewall, Ipv4Net, NetworkSpec,
};

/// Whether the tests can touch the kernel (root with the needed tools).
pub fn privileged() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: integration test needs root");
        return false;
    }
    true
}

/// The firewall backend's tools are installed: a test of that backend cannot
/// run without them, so their absence fails it.
pub fn require(backend: Backend) {
    assert!(
        backend.available(),
        "{backend} tools are not installed (Debian packages nftables, iptables)"
    );
}

/// What `backend` holds for the firewall named `table`: the nftables table, or
/// the daemon's iptables chains and the jumps into them, as `iptables-save` says.
pub fn firewall_text(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Nftables => run_ok(Command::new("nft").args(["list", "table", "ip", table])),
        Backend::Iptables => run_ok(&mut Command::new("iptables-save"))
            .lines()
            .filter(|l| l.contains(&format!("{table}-")))
            .map(|l| format!("{}\n", l.replace('"', "")))
            .collect(),
    }
}

/// Short per-process prefix for interface / table names: `b<pid>`.
pub fn prefix() -> String {
    format!("b{}", std::process::id())
}

/// A /24 unique to this process and `k` inside 10.0.0.0/8.
pub fn subnet(k: u8) -> Ipv4Net {
    let second = 100 + (std::process::id() % 100) as u8;
    Ipv4Net::new(Ipv4Addr::new(10, second, k, 0), 24).unwrap()
}

/// Host address number `n` of `net`.
pub fn host(net: Ipv4Net, n: u8) -> Ipv4Addr {
    let o = net.network().octets();
    Ipv4Addr::new(o[0], o[1], o[2], n)
}

/// Owns everything a test creates.
pub struct Fixture {
    tag: String,
    dir: PathBuf,
    bridges: Vec<String>,
    veths: Vec<String>,
    netns: Vec<PathBuf>,
    tables: Vec<(String, Backend)>,
    dummies: Vec<String>,
}

impl Fixture {
    /// `tag`: 1-3 characters unique per test in the process.
    pub fn new(tag: &str) -> Self {
        let tag = format!("{}{tag}", prefix());
        assert!(tag.len() <= 12, "tag too long: {tag}");
        let dir = PathBuf::from(format!("/run/berth-nettest-{tag}"));
        Fixture {
            tag,
            dir,
            bridges: Vec::new(),
            veths: Vec::new(),
            netns: Vec::new(),
            tables: Vec::new(),
            dummies: Vec::new(),
        }
    }

    /// An interface name unique to this fixture: `<tag><kind><n>`.
    pub fn ifname(&self, kind: char, n: u32) -> String {
        let s = format!("{}{kind}{n}", self.tag);
        assert!(s.len() <= 15, "{s}");
        s
    }

    /// Creates (and registers) a bridge network with subnet `subnet(k)`.
    pub fn network(&mut self, n: u32, k: u8, internal: bool) -> NetworkSpec {
        let net = subnet(k);
        if let Some(r) = berth_network::host_routes()
            .into_iter()
            .find(|r| r.overlaps(&net))
        {
            panic!("test subnet {net} overlaps host route {r}; cannot run this test here");
        }
        let spec = NetworkSpec {
            id: format!("{}{n}", self.tag),
            name: format!("net{n}"),
            bridge: self.ifname('r', n),
            subnet: net,
            gateway: host(net, 1),
            internal,
        };
        self.bridges.push(spec.bridge.clone());
        ensure_bridge(&spec).expect("ensure_bridge");
        spec
    }

    /// Creates (and registers) a network namespace.
    pub fn netns(&mut self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        self.netns.push(path.clone());
        create_netns(&path).expect("create_netns");
        path
    }

    /// Attaches `ns` to `net` with host address `n` (and the gateway as
    /// default route if `default_route`). Returns the container address.
    pub fn attach(
        &mut self,
        ns: &Path,
        net: &NetworkSpec,
        veth_n: u32,
        n: u8,
        default_route: bool,
    ) -> Ipv4Addr {
        let ip = host(net.subnet, n);
        let ep = EndpointConfig {
            host_veth: self.ifname('v', veth_n),
            container_ifname: "eth0".into(),
            ip,
            prefix: net.subnet.prefix(),
            gateway: default_route.then_some(net.gateway),
            mac: None,
        };
        self.veths.push(ep.host_veth.clone());
        attach(ns, &net.bridge, &ep).expect("attach");
        ip
    }

    /// The name of this fixture's firewall.
    pub fn table(&self) -> String {
        format!("berth_test_{}", self.tag)
    }

    /// A firewall unique to this fixture, initialized.
    pub fn firewall(&mut self, backend: Backend) -> Firewall {
        let name = self.table();
        self.tables.push((name.clone(), backend));
        let fw = Firewall::new(&name, backend).unwrap();
        fw.init().expect("firewall init");
        fw
    }

    /// A veth interface (i.e. not a bridge) with peer `<name>p`, registered
    /// for removal.
    pub fn non_bridge(&mut self, n: u32) -> String {
        let name = self.ifname('d', n);
        self.dummies.push(name.clone());
        run_ok(Command::new("ip").args([
            "link",
            "add",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{name}p"),
        ]));
        name
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for (t, backend) in &self.tables {
            if let Ok(fw) = Firewall::new(t, *backend) {
                if let Err(e) = fw.teardown() {
                    eprintln!("cleanup: teardown {t}: {e}");
                }
            }
        }
        for v in &self.veths {
            if let Err(e) = detach(v) {
                eprintln!("cleanup: detach {v}: {e}");
            }
        }
        for d in &self.dummies {
            let _ = Command::new("ip").args(["link", "del", d]).status();
        }
        for b in &self.bridges {
            if let Err(e) = remove_bridge(b) {
                eprintln!("cleanup: remove bridge {b}: {e}");
            }
        }
        for ns in &self.netns {
            if let Err(e) = remove_netns(ns) {
                eprintln!("cleanup: remove netns {}: {e}", ns.display());
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` inside network namespace `ns` via nsenter; returns stdout or
/// an error with the combined output.
pub fn in_ns(ns: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether `ns` can ping `ip`: up to 3 echoes with 1 s timeouts, so a
/// loaded machine does not make positive checks flaky.
pub fn ping(ns: &Path, ip: Ipv4Addr) -> bool {
    (0..3).any(|_| ping_once(ns, ip))
}

/// One echo with a 1 s timeout; for checks that expect no reply.
pub fn ping_once(ns: &Path, ip: Ipv4Addr) -> bool {
    in_ns(ns, &["busybox", "ping", "-c1", "-W1", &ip.to_string()]).is_ok()
}

/// Whether the host can ping `ip`.
pub fn ping_from_host(ip: Ipv4Addr) -> bool {
    (0..3).any(|_| {
        Command::new("busybox")
            .args(["ping", "-c1", "-W1", &ip.to_string()])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// Runs `f` on a thread that has joined network namespace `ns`.
pub fn with_netns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP or UDP server running inside a namespace; stops on drop.
pub struct NsServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for NsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts a TCP server in `ns` on `0.0.0.0:port` that writes the peer's
/// address ("ip:port\n") to every client and closes.
pub fn tcp_server(ns: &Path, port: u16) -> NsServer {
    let file = std::fs::File::open(ns).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((mut s, peer)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = writeln!(s, "{peer}");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("tcp server start");
    NsServer {
        stop,
        handle: Some(handle),
    }
}

/// Starts a UDP echo server in `ns` on `0.0.0.0:port`.
pub fn udp_echo_server(ns: &Path, port: u16) -> NsServer {
    let file = std::fs::File::open(ns).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 512];
        while !stop2.load(Ordering::SeqCst) {
            if let Ok((n, peer)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], peer);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("udp server start");
    NsServer {
        stop,
        handle: Some(handle),
    }
}

/// Connects to `addr` and returns what the server wrote (trimmed).
pub fn tcp_fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.trim().to_string())
}

/// Sends a datagram to `addr` and waits up to 1 s for the echo.
pub fn udp_roundtrip(addr: SocketAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.send_to(payload, addr)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// A global-scope IPv4 address of the host that is not on one of this
/// process's test interfaces, if any.
pub fn host_global_ip() -> Option<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let test_if = f.get(1).is_some_and(|n| {
            n.starts_with('b') && n[1..].starts_with(|c: char| c.is_ascii_digit())
        });
        if f.len() < 4 || test_if {
            continue;
        }
        if let Some(ip) = f[3].split('/').next().and_then(|s| s.parse().ok()) {
            return Some(ip);
        }
    }
    None
}
