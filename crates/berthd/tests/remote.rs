//! Remote access: berthd on TCP with mutual TLS, driven by the berth CLI, the
//! docker CLI and docker-py; refused without a client certificate, with one
//! from another CA, and against a daemon certificate the client does not trust;
//! no non-loopback listener without --tlsverify; contexts shared with the docker
//! CLI; and systemd socket activation (`-H fd://`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Run};

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate
/// signed by it, and a second ("rogue") CA with its own client certificate.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).expect("cert dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = |name: &str| {
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-out",
                name,
            ])
        };
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
        for ca in ["ca", "rogue-ca"] {
            key(&format!("{ca}-key.pem"));
            openssl(&[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{ca}-key.pem"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
            ]);
        }
        let sign = |name: &str, ca: &str, subject: &str, ext: &str| {
            key(&format!("{name}-key.pem"));
            openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}-key.pem"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                ext,
            ]);
        };
        sign("server", "ca", "/CN=localhost", "server.ext");
        sign("client", "ca", "/CN=client", "client.ext");
        sign("rogue-client", "rogue-ca", "/CN=rogue", "client.ext");
        Certs {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A docker-style cert directory (ca.pem, cert.pem, key.pem) for `client`.
    fn client_dir(&self, client: &str, ca: &str) -> PathBuf {
        let dir = self.dir.join(format!("{client}-with-{ca}"));
        std::fs::create_dir_all(&dir).expect("dir");
        for (from, to) in [
            (format!("{ca}.pem"), "ca.pem"),
            (format!("{client}.pem"), "cert.pem"),
            (format!("{client}-key.pem"), "key.pem"),
        ] {
            std::fs::copy(self.dir.join(from), dir.join(to)).expect("copy cert");
        }
        dir
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A berthd serving its unix socket and `tcp://127.0.0.1:PORT`, with mutual
/// TLS set in its daemon.json (dockerd's keys).
fn tls_daemon(certs: &Certs) -> (Daemon, String) {
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let config = certs.dir.join("daemon.json");
    let settings = serde_json::json!({
        "tlsverify": true,
        "tlscacert": certs.path("ca.pem"),
        "tlscert": certs.path("server.pem"),
        "tlskey": certs.path("server-key.pem"),
    });
    std::fs::write(&config, settings.to_string()).expect("daemon.json");
    let d = Daemon::start_with(&["--config-file", &config.display().to_string(), "-H", &host]);
    d.import_busybox();
    (d, host)
}

fn run_cmd(mut cmd: Command) -> Run {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    Run::from_output(common::wait_output(child, Duration::from_secs(60)))
}

/// The berth CLI with only the given global flags and environment (no -H unix).
fn berth_plain(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(common::bin_dir().join("berth"));
    cmd.args(args)
        .env_remove("BERTH_HOST")
        .env_remove("BERTH_CONTEXT")
        .env_remove("BERTH_TLS_VERIFY")
        .env_remove("BERTH_CERT_PATH")
        .envs(env.iter().copied());
    run_cmd(cmd)
}

fn docker(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new("docker");
    cmd.args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .envs(env.iter().copied());
    run_cmd(cmd)
}

fn tls_flags<'a>(certs: &'a Certs, host: &'a str, client: &'a Path) -> Vec<String> {
    let _ = certs;
    vec![
        "-H".into(),
        host.into(),
        "--tlsverify".into(),
        "--tlscacert".into(),
        client.join("ca.pem").display().to_string(),
        "--tlscert".into(),
        client.join("cert.pem").display().to_string(),
        "--tlskey".into(),
        client.join("key.pem").display().to_string(),
    ]
}

fn with<'a>(flags: &'a [String], args: &[&'a str]) -> Vec<&'a str> {
    flags
        .iter()
        .map(String::as_str)
        .chain(args.iter().copied())
        .collect()
}

#[test]
fn mutual_tls_serves_berth_docker_and_docker_py_and_refuses_strangers() {
    let certs =
        Certs::make(&std::env::temp_dir().join(format!("berth-tls-{}", std::process::id())));
    let (d, host) = tls_daemon(&certs);
    let good = certs.client_dir("client", "ca");
    let flags = tls_flags(&certs, &host, &good);

    // The berth CLI: a request, a streamed stdin (hijacked, half-closed), exec, logs.
    let r = berth_plain(
        &[],
        &with(&flags, &["run", "--rm", "busybox", "echo", "over-tls"]),
    );
    assert_eq!((r.code, r.out().trim()), (0, "over-tls"), "{}", r.stderr);
    let mut cmd = Command::new(common::bin_dir().join("berth"));
    cmd.args(with(
        &flags,
        &["run", "--rm", "-i", "busybox", "sh", "-c", "wc -c"],
    ));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth run -i");
    let payload = vec![b'x'; 300_000];
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&payload)
        .expect("write stdin");
    let out = common::wait_output(child, Duration::from_secs(60));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "300000",
        "stdin over TLS arrives whole; stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    berth_plain(
        &[],
        &with(
            &flags,
            &[
                "run",
                "-d",
                "--name",
                "remote-svc",
                "busybox",
                "sh",
                "-c",
                "echo logged; sleep 60",
            ],
        ),
    )
    .ok();
    assert_eq!(
        berth_plain(&[], &with(&flags, &["exec", "remote-svc", "hostname"]))
            .ok()
            .out()
            .trim()
            .len(),
        12
    );
    assert!(d.eventually(Duration::from_secs(5), || berth_plain(
        &[],
        &with(&flags, &["logs", "remote-svc"])
    )
    .out()
    .contains("logged")));

    // The same through the environment: BERTH_HOST, BERTH_TLS_VERIFY, BERTH_CERT_PATH.
    let cert_path = good.display().to_string();
    let r = berth_plain(
        &[
            ("BERTH_HOST", &host),
            ("BERTH_TLS_VERIFY", "1"),
            ("BERTH_CERT_PATH", &cert_path),
        ],
        &["ps", "--format", "{{.Names}}"],
    );
    assert_eq!((r.code, r.out().trim()), (0, "remote-svc"), "{}", r.stderr);

    // The docker CLI with the same certificates.
    let r = docker(
        &[],
        &with(
            &flags,
            &[
                "version",
                "--format",
                "{{.Server.Platform.Name}}|{{.Server.APIVersion}}",
            ],
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().trim().ends_with("|1.45"), "{}", r.out());
    let r = docker(
        &[],
        &with(
            &flags,
            &["run", "--rm", "busybox", "echo", "docker-over-tls"],
        ),
    );
    assert_eq!(
        (r.code, r.out().trim()),
        (0, "docker-over-tls"),
        "{}",
        r.stderr
    );

    // docker-py.
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/sdk-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/test.sh",
        python.display()
    );
    let script = r#"
import sys, docker
from docker.tls import TLSConfig
url, ca, cert, key, expect_ok = sys.argv[1:6]
tls = TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
try:
    c = docker.DockerClient(base_url=url, tls=tls, timeout=30)
    out = c.containers.run("busybox", ["echo", "py-over-tls"], remove=True)
    print(out.decode().strip())
except Exception as e:
    print("refused:", type(e).__name__, e)
"#;
    let py = |client: &Path| {
        let url = host.replace("tcp://", "https://");
        let mut cmd = Command::new(&python);
        // requests lets these override the CA a client names (requests#3829).
        cmd.env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE");
        cmd.arg("-c")
            .arg(script)
            .arg(url)
            .args(["ca.pem", "cert.pem", "key.pem"].map(|f| client.join(f).display().to_string()))
            .arg("1");
        run_cmd(cmd)
    };
    let r = py(&good);
    assert_eq!(r.out().trim(), "py-over-tls", "{}", r.stderr);

    // A client certificate from another CA: refused by berthd, for every client.
    let rogue = certs.client_dir("rogue-client", "ca");
    let rogue_flags = tls_flags(&certs, &host, &rogue);
    let r = berth_plain(&[], &with(&rogue_flags, &["ps"]));
    assert_ne!(
        r.code,
        0,
        "a rogue client certificate was accepted: {}",
        r.out()
    );
    let r = docker(&[], &with(&rogue_flags, &["ps"]));
    assert_ne!(r.code, 0, "docker with a rogue certificate: {}", r.out());
    assert!(py(&rogue).out().starts_with("refused:"));
    // No client certificate at all.
    let bare = certs.dir.join("no-client-cert");
    std::fs::create_dir_all(&bare).expect("dir");
    std::fs::copy(certs.dir.join("ca.pem"), bare.join("ca.pem")).expect("copy");
    let r = berth_plain(&[], &with(&tls_flags(&certs, &host, &bare), &["ps"]));
    assert_ne!(r.code, 0, "no client certificate was accepted");
    let r = docker(&[], &with(&tls_flags(&certs, &host, &bare), &["ps"]));
    assert_ne!(r.code, 0);
    // A daemon certificate the client does not trust: the client refuses.
    let distrust = certs.client_dir("client", "rogue-ca");
    let r = berth_plain(&[], &with(&tls_flags(&certs, &host, &distrust), &["ps"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);
    // Plain HTTP to the TLS port gets nothing served.
    let r = berth_plain(&[], &["-H", &host, "ps"]);
    assert_ne!(r.code, 0);
    // A client that connects and stalls does not hold up others.
    let _stalled =
        std::net::TcpStream::connect(host.trim_start_matches("tcp://")).expect("connect");
    assert_eq!(berth_plain(&[], &with(&flags, &["ps", "-q"])).code, 0);

    let log = d.log();
    assert!(
        log.contains("TLS handshake refused"),
        "refusals are logged: {log}"
    );
    berth_plain(&[], &with(&flags, &["rm", "-f", "remote-svc"])).ok();
    drop(d);
}

#[test]
fn contexts_are_shared_with_the_docker_cli() {
    let certs =
        Certs::make(&std::env::temp_dir().join(format!("berth-ctx-{}", std::process::id())));
    let (d, host) = tls_daemon(&certs);
    let config = certs.dir.join("docker-config");
    let config_env = config.display().to_string();
    let env = [("DOCKER_CONFIG", config_env.as_str())];
    let endpoint = format!(
        "host={host},ca={},cert={},key={}",
        certs.path("ca.pem"),
        certs.path("client.pem"),
        certs.path("client-key.pem")
    );
    let r = berth_plain(
        &env,
        &[
            "context",
            "create",
            "remote",
            "--description",
            "a TLS berthd",
            "--docker",
            &endpoint,
        ],
    );
    assert_eq!((r.code, r.out().trim()), (0, "remote"), "{}", r.stderr);
    let r = berth_plain(
        &env,
        &["context", "create", "remote", "--docker", &endpoint],
    );
    assert_ne!(r.code, 0, "a second context of one name");
    assert_ne!(
        berth_plain(&env, &["context", "create", "bad/name"]).code,
        0
    );

    // The docker CLI reads what berth stored, and reaches berthd through it.
    let r = docker(
        &env,
        &["context", "ls", "--format", "{{.Name}} {{.DockerEndpoint}}"],
    );
    assert!(
        r.out().lines().any(|l| l == format!("remote {host}")),
        "{}{}",
        r.out(),
        r.stderr
    );
    let r = docker(
        &env,
        &[
            "--context",
            "remote",
            "run",
            "--rm",
            "busybox",
            "echo",
            "via-context",
        ],
    );
    assert_eq!((r.code, r.out().trim()), (0, "via-context"), "{}", r.stderr);
    let key_mode = std::fs::read_dir(config.join("contexts/tls"))
        .expect("tls dir")
        .flatten()
        .map(|e| e.path().join("docker/key.pem"))
        .map(|p| {
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(p).expect("key").permissions(),
            ) & 0o777
        })
        .next();
    assert_eq!(key_mode, Some(0o600), "the stored key is private");

    // berth through --context, then as the current context (docker follows it too).
    let r = berth_plain(
        &env,
        &[
            "--context",
            "remote",
            "run",
            "--rm",
            "busybox",
            "echo",
            "flag",
        ],
    );
    assert_eq!((r.code, r.out().trim()), (0, "flag"), "{}", r.stderr);
    assert_eq!(
        berth_plain(&env, &["--context", "remote", "-H", &host, "ps"])
            .stderr
            .trim(),
        "Conflicting options: either specify --host or --context, not both"
    );
    berth_plain(&env, &["context", "use", "remote"]).ok();
    assert_eq!(
        berth_plain(&env, &["context", "show"]).out().trim(),
        "remote"
    );
    let r = berth_plain(&env, &["context", "ls"]);
    assert!(
        r.out()
            .lines()
            .any(|l| l.starts_with("remote *") && l.contains("a TLS berthd")),
        "{}",
        r.out()
    );
    assert_eq!(
        berth_plain(&env, &["info", "--format", "{{.Name}}"]).code,
        0
    );
    let r = docker(&env, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(r.out().trim(), "1.45", "{}", r.stderr);
    // BERTH_HOST still wins over the current context, as DOCKER_HOST does.
    let socket = format!("unix://{}", d.socket.display());
    let r = berth_plain(&[env[0], ("BERTH_HOST", &socket)], &["ps", "-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A context docker made is usable by berth.
    docker(
        &env,
        &["context", "create", "made-by-docker", "--docker", &endpoint],
    )
    .ok();
    let r = berth_plain(
        &env,
        &[
            "--context",
            "made-by-docker",
            "run",
            "--rm",
            "busybox",
            "echo",
            "docker-made",
        ],
    );
    assert_eq!((r.code, r.out().trim()), (0, "docker-made"), "{}", r.stderr);
    let inspected: serde_json::Value = serde_json::from_str(
        berth_plain(&env, &["context", "inspect", "made-by-docker"])
            .ok()
            .out(),
    )
    .expect("json");
    assert_eq!(inspected[0]["Endpoints"]["docker"]["Host"], host.as_str());

    // Removing the one in use needs -f and falls back to the default.
    assert_ne!(berth_plain(&env, &["context", "rm", "remote"]).code, 0);
    berth_plain(&env, &["context", "rm", "-f", "remote", "made-by-docker"]).ok();
    assert_eq!(
        berth_plain(&env, &["context", "show"]).out().trim(),
        "default"
    );
    let r = docker(&env, &["context", "ls", "-q"]);
    assert_eq!(r.out().trim(), "default", "{}", r.stderr);
    assert_ne!(berth_plain(&env, &["--context", "remote", "ps"]).code, 0);
    drop(d);
}

/// A bare daemon's directory and cgroup parent, removed however the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        common::remove_cgroups(&cgroup_parent(&self.0));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cgroup_parent(dir: &Path) -> String {
    format!(
        "berth-test-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("bare")
    )
}

/// berthd run directly (not through the harness) with `args` after its own
/// roots under `dir`; networking off.
fn bare_berthd(dir: &Path, args: &[&str]) -> Command {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("daemon.json"), "{}").expect("daemon.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berthd"));
    cmd.arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("berthd.pid"))
        .arg("--cgroup-parent")
        .arg(cgroup_parent(dir))
        .arg("--bridge")
        .arg("none")
        .args(args);
    cmd
}

#[test]
fn tcp_without_client_certificates_only_on_loopback() {
    let dir = std::env::temp_dir().join(format!("berth-tcp-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    let port = free_port().to_string();
    for (flags, why) in [
        (
            vec!["-H", "tcp://0.0.0.0:PORT"],
            "plain TCP on every address",
        ),
        (
            vec!["-H", "tcp://0.0.0.0:PORT", "--tls"],
            "TLS without client certificates",
        ),
    ] {
        let flags: Vec<String> = flags.iter().map(|f| f.replace("PORT", &port)).collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let child = bare_berthd(&dir, &flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berthd");
        let out = Run::from_output(common::wait_output(child, Duration::from_secs(20)));
        assert_eq!(out.code, 1, "{why}: {}", out.stderr);
        assert!(
            out.stderr.contains("refusing to listen on tcp://0.0.0.0"),
            "{why}: {}",
            out.stderr
        );
        assert!(
            !dir.join("data").exists(),
            "{why}: a refused listener must not open the engine"
        );
    }
    // Loopback plain TCP: served, with a warning.
    let host = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("log")).expect("log");
    let mut child = bare_berthd(
        &dir,
        &[
            "-H",
            &host,
            "-H",
            &format!("unix://{}", dir.join("s.sock").display()),
        ],
    )
    .stdout(log.try_clone().expect("dup"))
    .stderr(log)
    .spawn()
    .expect("berthd");
    let mut answered = false;
    for _ in 0..200 {
        let r = berth_plain(
            &[],
            &["-H", &host, "version", "--format", "{{.Server.APIVersion}}"],
        );
        if r.code == 0 {
            assert_eq!(r.out().trim(), "1.45");
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(answered, "loopback TCP not served: {log}");
    assert!(
        log.contains("WARNING: API listening on tcp://127.0.0.1"),
        "{log}"
    );
    assert!(
        !dir.join("s.sock").exists(),
        "berthd removes its own socket at exit"
    );
}

/// systemd's socket activation, by systemd's own tool: `systemd-socket-activate`
/// binds the socket, waits for a client, then starts berthd (`-H fd://`) on
/// it; berthd reports READY=1 and STOPPING=1 on NOTIFY_SOCKET, and leaves the
/// socket, which is systemd's, in place.
#[test]
fn socket_activation_serves_the_passed_socket() {
    let dir = std::env::temp_dir().join(format!("berth-fd-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("activated.sock");
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let berthd = bare_berthd(&dir, &["-H", "fd://"]);
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.arg("-l")
        .arg(&path)
        .arg("-E")
        .arg(format!("NOTIFY_SOCKET={}", notify_path.display()))
        .arg(berthd.get_program())
        .args(berthd.get_args())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).expect("log"));
    let mut child = cmd
        .spawn()
        .expect("systemd-socket-activate (package systemd)");
    let socket = format!("unix://{}", path.display());
    // The first client starts berthd and is served once it is up.
    let mut answer = None;
    for _ in 0..200 {
        if path.exists() {
            let r = berth_plain(
                &[],
                &[
                    "-H",
                    &socket,
                    "version",
                    "--format",
                    "{{.Server.APIVersion}}",
                ],
            );
            answer = Some(r.out().to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut buf = [0u8; 64];
    let ready = notify
        .recv(&mut buf)
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let stopping = notify
        .recv(&mut buf)
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert_eq!(answer.as_deref(), Some("1.45"), "{log}");
    assert_eq!(ready.ok().as_deref(), Some("READY=1"), "{log}");
    assert_eq!(stopping.ok().as_deref(), Some("STOPPING=1"), "{log}");
    assert!(path.exists(), "systemd's socket is not berthd's to remove");
    // Without a passed socket, fd:// is an error that says so.
    let out = Run::from_output(
        bare_berthd(&dir, &["-H", "fd://"])
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .output()
            .expect("berthd"),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no sockets were passed"),
        "{}",
        out.stderr
    );
}

/// The shipped units load in systemd (`systemd-analyze verify`) and keep
/// dockerd's promises: socket activation, containers outliving a restart
/// (KillMode=process), cgroups left to berthd (Delegate=yes), readiness.
#[test]
fn systemd_units_verify() {
    let dir = std::env::temp_dir().join(format!("berth-units-{}", std::process::id()));
    let _scratch = Scratch(dir.clone());
    std::fs::create_dir_all(&dir).expect("dir");
    let units = common::workspace_root().join("contrib/systemd");
    let service = std::fs::read_to_string(units.join("berthd.service")).expect("service");
    for line in [
        "ExecStart=/usr/local/bin/berthd -H fd://",
        "Type=notify",
        "Delegate=yes",
        "KillMode=process",
        "Requires=berthd.socket",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "berthd.service lacks {line}"
        );
    }
    // As setup.sh installs it: ExecStart at the installed binary.
    std::fs::write(
        dir.join("berthd.service"),
        service.replace("/usr/local/bin/berthd", env!("CARGO_BIN_EXE_berthd")),
    )
    .expect("write");
    std::fs::copy(units.join("berthd.socket"), dir.join("berthd.socket")).expect("copy");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("berthd.socket"))
        .arg(dir.join("berthd.service"))
        .output()
        .expect("systemd-analyze (package systemd)");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}
