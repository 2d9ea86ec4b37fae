//! berth's registry and registry client: push/pull with berth, the docker CLI,
//! skopeo, and against Debian's docker-registry (the reference server).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry process that is killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("registry on port {port} did not come up");
}

fn berth_registry(d: &Daemon, root: &Path, htpasswd: Option<&Path>) -> (Server, u16) {
    berth_registry_with(d, root, htpasswd, &[])
}

fn berth_registry_with(
    d: &Daemon,
    root: &Path,
    htpasswd: Option<&Path>,
    extra: &[&str],
) -> (Server, u16) {
    let port = free_port();
    let mut cmd = d.berth_cmd(&[
        "registry",
        "serve",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--root",
        root.to_str().unwrap(),
    ]);
    if let Some(h) = htpasswd {
        cmd.args(["--htpasswd", h.to_str().unwrap()]);
    }
    cmd.args(extra);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    (Server(child), port)
}

/// An image with two layers of its own on top of busybox.
fn make_image(d: &Daemon, name: &str) -> String {
    d.berth(&[
        "run",
        "--name",
        "src1",
        "busybox",
        "sh",
        "-c",
        "seq 1 1000 > /one",
    ])
    .ok();
    d.berth(&["commit", "src1", "stage1"]).ok();
    d.berth(&[
        "run",
        "--name",
        "src2",
        "stage1",
        "sh",
        "-c",
        "seq 1 2000 > /two",
    ])
    .ok();
    d.berth(&[
        "commit",
        "-c",
        "CMD [\"tail\", \"-n1\", \"/two\"]",
        "src2",
        name,
    ])
    .ok();
    d.berth(&["rm", "src1", "src2"]).ok();
    d.berth(&["rmi", "stage1"]).ok();
    d.berth(&["image", "inspect", "-f", "{{.Id}}", name])
        .ok()
        .out()
        .to_string()
}

#[test]
fn push_and_pull_through_berths_registry() {
    let d = Daemon::start();
    d.import_busybox();
    let (_server, port) = berth_registry(&d, &d.root.join("reg"), None);
    let name = format!("127.0.0.1:{port}/team/app:v1");
    let id = make_image(&d, &name);
    let layers = d
        .berth(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", &name])
        .ok()
        .out()
        .to_string();

    let r = d.berth(&["push", &name]).ok();
    assert!(r.stdout.contains("Pushed"), "{}", r.stdout);
    assert!(r.stdout.contains("v1: digest: sha256:"), "{}", r.stdout);
    // A second push sends nothing new.
    let r = d.berth(&["push", &name]).ok();
    assert!(!r.stdout.contains(": Pushed"), "{}", r.stdout);

    d.berth(&["rmi", &name]).ok();
    let r = d.berth(&["pull", &name]).ok();
    assert!(
        r.stdout.contains("Already exists"),
        "base layer is local: {}",
        r.stdout
    );
    assert!(r.stdout.contains("Downloaded newer image"), "{}", r.stdout);
    assert_eq!(
        d.berth(&["image", "inspect", "-f", "{{.Id}}", &name])
            .ok()
            .out(),
        id
    );
    assert_eq!(
        d.berth(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", &name])
            .ok()
            .out(),
        layers
    );
    assert_eq!(d.berth(&["run", "--rm", &name]).ok().stdout, "2000\n");
    let digests = d
        .berth(&["image", "inspect", "-f", "{{json .RepoDigests}}", &name])
        .ok();
    assert!(
        digests
            .stdout
            .contains(&format!("127.0.0.1:{port}/team/app@sha256:")),
        "{}",
        digests.stdout
    );
    let r = d.berth(&["pull", &name]).ok();
    assert!(r.stdout.contains("Image is up to date"), "{}", r.stdout);

    // Errors: unknown tag, unknown repository, a bad name.
    let r = d.berth(&["pull", &format!("127.0.0.1:{port}/team/app:nope")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    let r = d.berth(&["pull", &format!("127.0.0.1:{port}/Bad/../name")]);
    assert_ne!(r.code, 0);
    // A remote registry is only ever tried over TLS (and here, without a
    // network, fails cleanly).
    let r = d.berth(&["pull", "registry.example.com/x:1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("registry.example.com"), "{}", r.stderr);

    // The docker CLI against berthd, and skopeo against the registry directly.
    let docker = |args: &[&str]| {
        Command::new("/usr/local/bin/docker")
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .args(args)
            .output()
            .unwrap()
    };
    d.berth(&["rmi", &name]).ok();
    let out = docker(&["pull", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.berth(&["image", "inspect", "-f", "{{.Id}}", &name])
            .ok()
            .out(),
        id
    );
    let other = format!("127.0.0.1:{port}/team/copy:v2");
    d.berth(&["tag", &name, &other]).ok();
    let out = docker(&["push", &other]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oci = d.root.join("oci");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{other}"),
            &format!("oci:{}:v2", oci.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = std::fs::read_to_string(oci.join("index.json")).unwrap();
    let manifest_digest = index.split("sha256:").nth(1).unwrap()[..64].to_string();
    let manifest =
        std::fs::read_to_string(oci.join("blobs/sha256").join(&manifest_digest)).unwrap();
    assert!(
        manifest.contains(id.trim_start_matches("sha256:")),
        "config digest survives skopeo: {manifest}"
    );
}

#[test]
fn htpasswd_protected_registry_needs_login() {
    let d = Daemon::start();
    d.import_busybox();
    let htpasswd = d.root.join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbc", htpasswd.to_str().unwrap(), "ann", "s3cret"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_server, port) = berth_registry(&d, &d.root.join("reg"), Some(&htpasswd));
    let host = format!("127.0.0.1:{port}");
    let name = format!("{host}/private/app:1");
    d.berth(&["tag", "busybox", &name]).ok();
    let config_dir = d.root.join("dockercfg");
    let berth_env = |args: &[&str]| {
        let out = d
            .berth_cmd(args)
            .env("DOCKER_CONFIG", &config_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = berth_env(&["push", &name]);
    assert_ne!(code, 0);
    assert!(err.contains("authentication required"), "{err}");
    let (code, _, err) = berth_env(&["login", "-u", "ann", "-p", "wrong", &host]);
    assert_ne!(code, 0);
    assert!(err.contains("incorrect username or password"), "{err}");
    let (code, out, err) = berth_env(&["login", "-u", "ann", "-p", "s3cret", &host]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Login Succeeded\n");
    let cfg = std::fs::read_to_string(config_dir.join("config.json")).unwrap();
    assert!(cfg.contains(&host), "{cfg}");
    let (code, _, err) = berth_env(&["push", &name]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = berth_env(&["logout", &host]);
    assert_eq!(code, 0);
    d.berth(&["rmi", &name]).ok();
    let (code, _, err) = berth_env(&["pull", &name]);
    assert_ne!(code, 0, "pulled without credentials");
    assert!(err.contains("authentication required"), "{err}");
}

#[test]
fn push_to_and_pull_from_the_reference_registry() {
    let Ok(registry) = which("docker-registry") else {
        panic!("docker-registry missing: .ci/run installs Debian's docker-registry");
    };
    let d = Daemon::start();
    d.import_busybox();
    let port = free_port();
    let root = d.root.join("distribution");
    let config = d.root.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.display()
        ),
    )
    .unwrap();
    let child = Command::new(registry)
        .args(["serve", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    wait_listening(port);
    let name = format!("127.0.0.1:{port}/ref/app:1");
    let id = make_image(&d, &name);
    d.berth(&["push", &name]).ok();
    d.berth(&["rmi", &name]).ok();
    d.berth(&["rmi", "busybox"]).ok();
    let r = d.berth(&["pull", &name]).ok();
    assert!(!r.stdout.contains("Already exists"), "{}", r.stdout);
    assert_eq!(
        d.berth(&["image", "inspect", "-f", "{{.Id}}", &name])
            .ok()
            .out(),
        id
    );
    assert_eq!(d.berth(&["run", "--rm", &name]).ok().stdout, "2000\n");
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
        .ok_or(())
}

#[test]
fn token_auth_registry_with_berths_client() {
    let d = Daemon::start();
    d.import_busybox();
    let htpasswd = d.root.join("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbc", htpasswd.to_str().unwrap(), "bob", "pw"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (_server, port) = berth_registry_with(
        &d,
        &d.root.join("reg"),
        Some(&htpasswd),
        &["--auth", "token"],
    );
    let host = format!("127.0.0.1:{port}");
    let name = format!("{host}/tok/app:1");
    d.berth(&["tag", "busybox", &name]).ok();
    let config_dir = d.root.join("dockercfg");
    let run = |args: &[&str]| {
        let out = d
            .berth_cmd(args)
            .env("DOCKER_CONFIG", &config_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["push", &name]);
    assert_ne!(code, 0, "pushed without a token");
    assert!(
        err.contains("unauthorized") || err.contains("token"),
        "{err}"
    );
    let (code, err) = run(&["login", "-u", "bob", "-p", "pw", &host]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&["push", &name]);
    assert_eq!(code, 0, "{err}");
    d.berth(&["rmi", &name]).ok();
    let (code, err) = run(&["pull", &name]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.inspect(&name, "{{.Id}}"), d.inspect("busybox", "{{.Id}}"));
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tls_registry_needs_its_ca_in_the_certs_dir() {
    let d = Daemon::start();
    d.import_busybox();
    let pki = d.root.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    openssl(
        &pki,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ],
    );
    openssl(
        &pki,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(pki.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &pki,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let (_server, port) = berth_registry_with(
        &d,
        &d.root.join("reg"),
        None,
        &[
            "--tls-cert",
            pki.join("server.crt").to_str().unwrap(),
            "--tls-key",
            pki.join("server.key").to_str().unwrap(),
        ],
    );
    let host = format!("127.0.0.1:{port}");
    let name = format!("{host}/secure/app:1");
    d.berth(&["tag", "busybox", &name]).ok();
    // Loopback without a CA for it: plain HTTP, which the TLS port refuses.
    assert_ne!(d.berth(&["push", &name]).code, 0);
    // With the CA in <certs-dir>/<host>/ca.crt: HTTPS, verified.
    let certs = d.root.join("certs.d").join(&host);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(pki.join("ca.crt"), certs.join("ca.crt")).unwrap();
    let r = d.berth(&["push", &name]).ok();
    assert!(r.stdout.contains("digest: sha256:"), "{}", r.stdout);
    d.berth(&["rmi", &name]).ok();
    d.berth(&["pull", &name]).ok();
    // A CA that did not sign the server's certificate is refused.
    openssl(
        &pki,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.crt",
            "-days",
            "2",
            "-subj",
            "/CN=other CA",
        ],
    );
    std::fs::copy(pki.join("other.crt"), certs.join("ca.crt")).unwrap();
    let r = d.berth(&["pull", &name]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("TLS"), "{}", r.stderr);
}

#[test]
fn podman_pushes_to_and_pulls_from_berths_registry() {
    let d = Daemon::start();
    d.import_busybox();
    let (_server, port) = berth_registry(&d, &d.root.join("reg"), None);
    let name = format!("127.0.0.1:{port}/pod/app:1");
    let id = make_image(&d, &name);
    d.berth(&["push", &name]).ok();
    let pm = d.root.join("podman");
    let podman = |args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(pm.join("root"))
            .arg("--runroot")
            .arg(pm.join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "file",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman is installed by .ci/run");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    podman(&["pull", "--tls-verify=false", &name]);
    let podman_id = podman(&["images", "--no-trunc", "--format", "{{.ID}}", &name]);
    assert_eq!(
        podman_id.trim().trim_start_matches("sha256:"),
        id.trim_start_matches("sha256:")
    );
    let other = format!("127.0.0.1:{port}/pod/from-podman:2");
    podman(&["tag", &name, &other]);
    podman(&["push", "--tls-verify=false", &other]);
    d.berth(&["rmi", "-f", &id]).ok();
    let r = d.berth(&["pull", &other]).ok();
    assert!(r.stdout.contains("Downloaded newer image"), "{}", r.stdout);
    assert_eq!(d.berth(&["run", "--rm", &other]).ok().stdout, "2000\n");
    assert_eq!(
        d.inspect(&other, "{{.Id}}"),
        id,
        "the image ID survives podman"
    );
    podman(&["rmi", "-a", "-f"]);
    let _ = std::fs::remove_dir_all(&pm);
}

/// `--registry-mirror`: Docker Hub's images come from the mirror (Docker Hub
/// itself is unreachable here, so a pull that works came from it); other
/// registries are not mirrored.
#[test]
fn docker_hub_pulls_go_through_a_registry_mirror() {
    let d = Daemon::start();
    d.import_busybox();
    let (_server, port) = berth_registry(&d, &d.root.join("mirror"), None);
    let in_mirror = format!("127.0.0.1:{port}/library/busybox:latest");
    d.berth(&["tag", "busybox", &in_mirror]).ok();
    d.berth(&["push", &in_mirror]).ok();
    let mirror = format!("http://127.0.0.1:{port}");
    let m = Daemon::start_with(&["--registry-mirror", &mirror]);
    assert!(m
        .berth(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"])
        .ok()
        .out()
        .contains(&mirror));
    m.berth(&["pull", "busybox"]).ok();
    assert_eq!(
        m.berth(&["run", "--rm", "busybox", "echo", "mirrored"])
            .ok()
            .out(),
        "mirrored"
    );
    let digests = m
        .berth(&["image", "inspect", "-f", "{{json .RepoDigests}}", "busybox"])
        .ok();
    assert!(
        digests.out().contains("busybox@sha256:"),
        "{}",
        digests.out()
    );
    // A tag the mirror lacks: the mirror is passed over, and Docker Hub (out of
    // reach here) answers the error.
    assert_ne!(m.berth(&["pull", "busybox:nosuchtag"]).code, 0);
}
