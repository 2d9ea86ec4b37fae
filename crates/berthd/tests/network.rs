//! Bridge networking: the default bridge, published ports, user networks with DNS,
//! isolation, and clean-up, through the berth CLI against a real berthd.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::Daemon;

/// One HTTP GET over plain TCP; the body, or `None` when the connection fails.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn nft_table(d: &Daemon) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.name)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

/// The Linux bridge behind network `name`.
fn bridge_of(d: &Daemon, name: &str) -> String {
    d.bridge_of_network(name)
}

/// A web server container serving `text` on port 80.
fn web(d: &Daemon, extra: &[&str], text: &str) -> String {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    args.extend(["busybox", "sh", "-c", &script]);
    d.berth(&args).ok().out().to_string()
}

#[test]
fn default_bridge_gives_an_address_routes_and_etc_files() {
    let d = Daemon::start();
    d.import_busybox();
    let prefix = d.subnet_prefix(0);
    let r = d
        .berth(&["run", "--rm", "--hostname", "web1", "busybox", "sh", "-c",
            "ip -4 addr show eth0 | grep inet; ip route | grep default; grep web1 /etc/hosts; ping -c1 -W2 $(ip route | awk '/default/ {print $3}') >/dev/null && echo gw-ok"])
        .ok();
    assert!(
        r.stdout.contains(&format!("inet {prefix}.2/24")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("default via {prefix}.1 dev eth0")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("{prefix}.2\tweb1")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("gw-ok"), "{}", r.stdout);

    let id = d
        .berth(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "100"])
        .ok()
        .out()
        .to_string();
    let ip = d.inspect("sleeper", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with(&prefix), "{ip}");
    assert_eq!(
        d.inspect("sleeper", "{{.NetworkSettings.Networks.bridge.IPAddress}}"),
        ip
    );
    assert!(links().contains(&format!("vb{}", &id[..7])));
    // --network none and host still work.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok();
    assert!(!r.stdout.contains("eth0"), "{}", r.stdout);
    // container:X shares the other container's interfaces.
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "container:sleeper",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ])
        .ok();
    assert!(r.stdout.contains(&ip), "{}", r.stdout);
    // Quick restarts: each start gets a fresh veth while the last one may still
    // be going away with its namespace.
    for _ in 0..3 {
        d.berth(&["restart", "-t", "0", "sleeper"]).ok();
    }
    assert!(d
        .inspect("sleeper", "{{.NetworkSettings.IPAddress}}")
        .starts_with(&prefix));
    d.berth(&["rm", "-f", "sleeper"]).ok();
    assert!(d.eventually(Duration::from_secs(5), || !links()
        .contains(&format!("vb{}", &id[..7]))));
    assert!(!d.exec_root.join("netns").join(&id).exists());
}

#[test]
fn published_ports_reach_the_container_and_go_away_with_it() {
    let d = Daemon::start();
    d.import_busybox();
    web(
        &d,
        &["--name", "web", "-p", "127.0.0.1::80", "-p", "80"],
        "hello-port",
    );
    let port_line = d.berth(&["port", "web", "80"]).ok().stdout;
    let addrs: Vec<&str> = port_line.lines().collect();
    assert_eq!(addrs.len(), 2, "{port_line}");
    let local = addrs
        .iter()
        .find(|a| a.starts_with("127.0.0.1:"))
        .unwrap()
        .to_string();
    let any = addrs
        .iter()
        .find(|a| a.starts_with("0.0.0.0:"))
        .unwrap()
        .to_string();
    assert!(d.eventually(Duration::from_secs(5), || http_get(&local).is_some()));
    assert_eq!(http_get(&local).unwrap(), "hello-port\n");
    // The wildcard binding answers on loopback and on the host's own address.
    let any_port = any.rsplit(':').next().unwrap();
    assert_eq!(
        http_get(&format!("127.0.0.1:{any_port}")).unwrap(),
        "hello-port\n"
    );
    let host_ip =
        String::from_utf8_lossy(&Command::new("hostname").arg("-I").output().unwrap().stdout)
            .split_whitespace()
            .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok() && !a.starts_with("10."))
            .map(String::from);
    if let Some(host_ip) = host_ip {
        assert_eq!(
            http_get(&format!("{host_ip}:{any_port}")).unwrap(),
            "hello-port\n"
        );
    }
    let ps = d.berth(&["ps", "--format", "{{.Names}}"]).ok();
    assert_eq!(ps.stdout, "web\n");

    // A taken host port is a clear error and leaves nothing behind.
    let fixed = local.rsplit(':').next().unwrap().to_string();
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("127.0.0.1:{fixed}:80"),
        "busybox",
        "sleep",
        "10",
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("port is already allocated"),
        "{}",
        r.stderr
    );
    assert_eq!(d.inspect("clash", "{{.State.Running}}"), "false");

    d.berth(&["stop", "-t", "1", "web"]).ok();
    assert!(http_get(&local).is_none(), "still answering after stop");
    assert!(!nft_table(&d).contains("pub-"), "{}", nft_table(&d));
    // Start again: the same container publishes again.
    d.berth(&["start", "web"]).ok();
    let again = d.berth(&["port", "web", "80"]).ok().stdout;
    let local2 = again
        .lines()
        .find(|a| a.starts_with("127.0.0.1:"))
        .unwrap()
        .to_string();
    assert!(d.eventually(Duration::from_secs(5), || http_get(&local2).is_some()));
}

#[test]
fn user_networks_resolve_names_and_isolate() {
    let d = Daemon::start();
    d.import_busybox();
    let subnet = format!("{}.0/24", d.subnet_prefix(1));
    d.berth(&[
        "network", "create", "--subnet", &subnet, "--label", "team=x", "appnet",
    ])
    .ok();
    d.berth(&["network", "create", "othernet"]).ok();
    let r = d.berth(&["network", "create", "--subnet", &subnet, "clash"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("overlaps"), "{}", r.stderr);
    let r = d.berth(&["network", "create", "appnet"]);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    let ls = d.berth(&["network", "ls", "--format", "{{.Name}}"]).ok();
    assert_eq!(ls.stdout, "appnet\nbridge\nhost\nnone\nothernet\n");

    let fixed_ip = format!("{}.50", d.subnet_prefix(1));
    web(
        &d,
        &[
            "--name",
            "api",
            "--network",
            "appnet",
            "--network-alias",
            "backend",
            "--ip",
            &fixed_ip,
        ],
        "from-api",
    );
    assert_eq!(
        d.inspect("api", "{{.NetworkSettings.Networks.appnet.IPAddress}}"),
        fixed_ip
    );
    let r = d
        .berth(&["run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
            "nslookup api | grep -A1 'Name:' | tail -1; wget -qO- http://backend/index.html; wget -qO- http://api/index.html"])
        .ok();
    assert!(r.stdout.contains(&fixed_ip), "{}", r.stdout);
    assert_eq!(r.stdout.matches("from-api").count(), 2, "{}", r.stdout);
    // A name outside the network is not resolved; another network cannot reach api.
    let r = d.berth(&["run", "--rm", "--network", "othernet", "busybox", "sh", "-c",
        &format!("nslookup api >/dev/null 2>&1 && echo resolved; wget -T 2 -qO- http://{fixed_ip}/index.html || echo unreachable")]);
    assert!(!r.stdout.contains("resolved"), "{}", r.stdout);
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);
    // Nor can the default bridge.
    let r = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("wget -T 2 -qO- http://{fixed_ip}/index.html || echo unreachable"),
    ]);
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);

    // connect puts a running container on a second network at once.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "roamer",
        "--network",
        "othernet",
        "busybox",
        "sleep",
        "100",
    ])
    .ok();
    d.berth(&[
        "network", "connect", "--alias", "wanderer", "appnet", "roamer",
    ])
    .ok();
    let r = d
        .berth(&["exec", "roamer", "wget", "-qO-", "http://api/index.html"])
        .ok();
    assert_eq!(r.stdout, "from-api\n");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            "wanderer",
        ])
        .ok();
    assert!(r.stdout.contains("1 packets received"), "{}", r.stdout);
    d.berth(&["network", "disconnect", "appnet", "roamer"]).ok();
    let r = d.berth(&[
        "exec",
        "roamer",
        "sh",
        "-c",
        "wget -T 2 -qO- http://api/index.html || echo gone",
    ]);
    assert!(r.stdout.contains("gone"), "{}", r.stdout);

    // In use: no removal; inspect shows the members.
    let r = d.berth(&["network", "rm", "appnet"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("active endpoints"), "{}", r.stderr);
    let members = d
        .berth(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{end}}",
            "appnet",
        ])
        .ok();
    assert_eq!(members.out(), "api");

    // Internal networks have no way out, not even to the gateway's other side.
    d.berth(&["network", "create", "--internal", "sealed"]).ok();
    let r = d.berth(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "sh",
        "-c",
        &format!("wget -T 2 -qO- http://{fixed_ip}/index.html || echo sealed"),
    ]);
    assert!(r.stdout.contains("sealed"), "{}", r.stdout);

    let bridge = bridge_of(&d, "appnet");
    d.berth(&["rm", "-f", "api", "roamer"]).ok();
    d.berth(&["network", "rm", "appnet", "othernet", "sealed"])
        .ok();
    assert!(
        !links().contains(&format!(" {bridge}:")),
        "bridge {bridge} left behind"
    );
    assert!(!nft_table(&d).contains(&bridge), "{}", nft_table(&d));
}

#[test]
fn berthd_restart_keeps_running_containers_reachable_and_cleans_up_later() {
    let mut d = Daemon::start();
    d.import_busybox();
    web(&d, &["--name", "keep", "-p", "127.0.0.1::80"], "still-here");
    let addr = d.berth(&["port", "keep", "80"]).ok().out().to_string();
    assert!(d.eventually(Duration::from_secs(5), || http_get(&addr).is_some()));
    d.kill9();
    d.respawn();
    assert_eq!(http_get(&addr).unwrap(), "still-here\n");
    // While berthd was down the container died: its rules go at the next start.
    d.kill9();
    let pid = {
        let out = Command::new("pgrep")
            .args(["-f", "httpd -f -p 80 -h /www"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for p in pid {
        let _ = Command::new("kill").args(["-9", &p]).output();
    }
    std::thread::sleep(Duration::from_millis(300));
    d.respawn();
    assert!(d.eventually(Duration::from_secs(5), || d
        .inspect("keep", "{{.State.Running}}")
        == "false"));
    assert!(!nft_table(&d).contains("pub-"), "{}", nft_table(&d));
    assert!(http_get(&addr).is_none());
}

fn iptables_rules(d: &Daemon) -> String {
    let out = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("berth_{}-", d.name)))
        .map(|l| format!("{}\n", l.replace('"', "")))
        .collect()
}

/// The same networking with the iptables backend (what a host without nft
/// gets): published ports, names, isolation, and rules gone with their owners.
#[test]
fn iptables_backend_publishes_resolves_isolates_and_cleans_up() {
    let d = Daemon::start_with(&["--firewall-backend", "iptables"]);
    d.import_busybox();
    assert!(
        nft_table(&d).is_empty(),
        "an nft table with the iptables backend"
    );
    let id = web(&d, &["--name", "web", "-p", "127.0.0.1::80"], "hello-ipt");
    let local = d.berth(&["port", "web", "80"]).ok().out().to_string();
    assert!(d.eventually(Duration::from_secs(5), || http_get(&local).is_some()));
    assert_eq!(http_get(&local).unwrap(), "hello-ipt\n");
    let rules = iptables_rules(&d);
    assert!(rules.contains(&format!("--comment pub:{id} ")), "{rules}");

    d.berth(&["network", "create", "ipnet"]).ok();
    web(&d, &["--name", "api", "--network", "ipnet"], "from-api");
    let api_ip = d.inspect("api", "{{.NetworkSettings.Networks.ipnet.IPAddress}}");
    let r = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "ipnet",
            "busybox",
            "wget",
            "-qO-",
            "http://api/index.html",
        ])
        .ok();
    assert_eq!(r.stdout, "from-api\n");
    // The default bridge cannot reach a user network's container.
    let r = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("wget -T 2 -qO- http://{api_ip}/index.html || echo unreachable"),
    ]);
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);

    let bridge = bridge_of(&d, "ipnet");
    assert!(iptables_rules(&d).contains(&format!("net:{bridge} ")));
    d.berth(&["stop", "-t", "1", "web"]).ok();
    assert!(http_get(&local).is_none(), "still answering after stop");
    assert!(
        !iptables_rules(&d).contains("pub:"),
        "{}",
        iptables_rules(&d)
    );
    d.berth(&["rm", "-f", "web", "api"]).ok();
    d.berth(&["network", "rm", "ipnet"]).ok();
    let rules = iptables_rules(&d);
    assert!(!rules.contains(&bridge), "{rules}");
    assert!(
        rules.contains(&format!("net:{} ", d.name)),
        "the default bridge keeps its rules: {rules}"
    );
}

/// berthd started on a bridge it has no record of (a fresh data root each
/// time, as another daemon's or a hand-made bridge) adopts the address the
/// bridge has, as dockerd adopts docker0, rather than adding a subnet per start;
/// and a clean exit with nothing running takes its firewall table with it.
#[test]
fn an_existing_bridge_is_adopted_not_piled_with_subnets() {
    let tag = format!("ab{}", std::process::id() % 100_000);
    let bridge = format!("{tag}br");
    let root = std::env::temp_dir().join(format!("berth-{tag}"));
    let exec_root = std::path::PathBuf::from(format!("/run/{tag}"));
    let address = format!(
        "10.{}.{}.1/24",
        150 + std::process::id() % 40,
        std::process::id() % 200
    );
    let ip = |args: &[&str]| Command::new("ip").args(args).output().expect("ip");
    assert!(ip(&["link", "add", &bridge, "type", "bridge"])
        .status
        .success());
    assert!(ip(&["addr", "add", &address, "dev", &bridge])
        .status
        .success());
    let cleanup = || {
        let _ = ip(&["link", "del", &bridge]);
        if let Ok(fw) = berth_network::Firewall::new(
            &format!("berth_{bridge}"),
            berth_network::Backend::Nftables,
        ) {
            let _ = fw.teardown();
        }
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_dir_all(&exec_root);
    };
    for round in 0..4 {
        let data_root = root.join(format!("data{round}"));
        let socket = root.join("s.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(root.join("pid"))
            .arg("--cgroup-parent")
            .arg(format!("berth-test-{tag}"))
            .arg("--bridge")
            .arg(&bridge)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("berthd");
        let up = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        let inspect = common::http_on(&socket, "GET", "/networks/bridge", None).2;
        // SAFETY: SIGTERM to our own child: a clean exit.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        if !up {
            cleanup();
            panic!("berthd did not start in round {round}");
        }
        let addresses =
            String::from_utf8_lossy(&ip(&["-o", "-4", "addr", "show", "dev", &bridge]).stdout)
                .into_owned();
        let table = Command::new("nft")
            .args(["list", "table", "ip", &format!("berth_{bridge}")])
            .output()
            .expect("nft");
        if addresses.lines().count() != 1
            || table.status.success()
            || !inspect.contains(&address.replace(".1/24", ".0/24"))
        {
            cleanup();
            panic!(
                "round {round}: addresses {addresses:?}, table left: {}, network: {inspect}",
                table.status.success()
            );
        }
    }
    cleanup();
}
