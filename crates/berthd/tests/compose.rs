//! `berth compose` against a real berthd: a multi-service project with a build,
//! health-gated start, a one-shot migration, two networks with DNS on each, a
//! named volume, scaling, recreation of what changed only, and `down -v`
//! leaving nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Daemon, Run};

const PROJECT: &str = r#"
name: shop
x-common: &common
  image: busybox
  labels:
    tier: ${TIER:-test}
services:
  db:
    <<: *common
    command: sh -c "echo db-up; sleep 1; touch /tmp/ready; exec sleep 300"
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 200ms
      retries: 20
    volumes:
      - data:/data
    networks: [back]
  migrate:
    image: busybox
    command: sh -c "echo migrated > /data/schema; echo migrate-done"
    volumes:
      - data:/data
    depends_on:
      db:
        condition: service_healthy
    networks: [back]
  web:
    build:
      context: ./web
    environment:
      GREETING: ${GREETING:-hello}
    command: sh -c "echo web-up; exec httpd -f -p 80 -h /www"
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
    networks: [front, back]
    ports:
      - "80"
  proxy:
    image: busybox
    command: sleep 300
    networks: [front]
  worker:
    image: busybox
    command: sleep 300
    network_mode: none
volumes:
  data: {}
networks:
  front: {}
  back: {}
"#;

struct Project<'a> {
    d: &'a Daemon,
    dir: std::path::PathBuf,
}

impl Project<'_> {
    fn compose(&self, args: &[&str]) -> Run {
        self.compose_env(args, &[])
    }

    fn compose_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut full = vec!["compose", "--project-directory"];
        let dir = self.dir.display().to_string();
        full.push(&dir);
        full.extend_from_slice(args);
        let child = self
            .d
            .berth_cmd(&full)
            .current_dir(&self.dir)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("berth compose");
        Run::from_output(common::wait_output(child, Duration::from_secs(120)))
    }

    fn id(&self, container: &str) -> String {
        self.d.container_id(container)
    }
}

fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("web")).expect("project dir");
    std::fs::write(dir.join("compose.yaml"), PROJECT).expect("compose file");
    std::fs::write(
        dir.join("web/Dockerfile"),
        "FROM busybox\nRUN mkdir -p /www && echo shop-page > /www/index.html\n",
    )
    .expect("Dockerfile");
}

#[test]
fn a_project_comes_up_in_order_and_goes_away_completely() {
    let d = Daemon::start();
    d.import_busybox();
    let p = Project {
        d: &d,
        dir: d.root.join("shop"),
    };
    write_project(&p.dir);
    let networks_before = d
        .berth(&["network", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .count();

    let up = p.compose(&["up", "-d"]);
    assert_eq!(up.code, 0, "up: {} {}", up.stdout, up.stderr);
    // Names and states as docker compose gives them.
    assert_eq!(
        d.inspect("shop-db-1", "{{.State.Health.Status}}"),
        "healthy"
    );
    assert_eq!(
        d.inspect("shop-migrate-1", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert_eq!(d.inspect("shop-web-1", "{{.State.Status}}"), "running");
    assert_eq!(
        d.inspect("shop-db-1", "{{index .Config.Labels \"tier\"}}"),
        "test"
    );
    assert_eq!(
        d.inspect(
            "shop-web-1",
            "{{index .Config.Labels \"com.docker.compose.project\"}}"
        ),
        "shop"
    );
    // web started only after the migration finished.
    let migrated = d.inspect("shop-migrate-1", "{{.State.FinishedAt}}");
    let web_started = d.inspect("shop-web-1", "{{.State.StartedAt}}");
    assert!(
        web_started > migrated,
        "web {web_started} before migrate ended {migrated}"
    );
    // DNS on each network, and isolation between them.
    let page = d
        .berth(&["exec", "shop-proxy-1", "wget", "-qO-", "http://web/"])
        .ok()
        .stdout;
    assert_eq!(page.trim(), "shop-page");
    let db_from_web = d.berth(&["exec", "shop-web-1", "ping", "-c1", "-W2", "db"]);
    assert_eq!(
        db_from_web.code, 0,
        "web reaches db on back: {}",
        db_from_web.stderr
    );
    let db_from_proxy = d.berth(&["exec", "shop-proxy-1", "nslookup", "db"]);
    assert_ne!(
        db_from_proxy.code, 0,
        "proxy (front only) must not resolve db"
    );
    assert_eq!(
        d.berth(&["exec", "shop-db-1", "cat", "/data/schema"])
            .ok()
            .out(),
        "migrated"
    );
    // ps and logs of several services.
    let ps = p.compose(&["ps"]).ok().stdout;
    for name in ["shop-db-1", "shop-web-1", "shop-proxy-1", "shop-worker-1"] {
        assert_eq!(ps.matches(name).count(), 1, "{ps}");
    }
    assert!(
        !ps.contains("shop-migrate-1"),
        "exited one-shots only with -a: {ps}"
    );
    let logs = p
        .compose(&["logs", "--no-log-prefix", "db", "web"])
        .ok()
        .stdout;
    assert!(logs.contains("db-up") && logs.contains("web-up"), "{logs}");
    let prefixed = p.compose(&["logs", "migrate"]).ok().stdout;
    assert!(
        prefixed.contains("shop-migrate-1 | migrate-done"),
        "{prefixed}"
    );

    // A second up changes nothing; a changed variable recreates web only.
    let ids = |names: &[&str]| names.iter().map(|n| p.id(n)).collect::<Vec<_>>();
    let before = ids(&["shop-db-1", "shop-web-1", "shop-proxy-1"]);
    p.compose(&["up", "-d"]).ok();
    assert_eq!(ids(&["shop-db-1", "shop-web-1", "shop-proxy-1"]), before);
    p.compose_env(&["up", "-d", "-t", "1"], &[("GREETING", "bonjour")])
        .ok();
    let after = ids(&["shop-db-1", "shop-web-1", "shop-proxy-1"]);
    assert_eq!(after[0], before[0], "db unchanged");
    assert_ne!(after[1], before[1], "web recreated");
    assert_eq!(after[2], before[2], "proxy unchanged");

    // port, images, top, build.
    let published = p.compose(&["port", "web", "80"]).ok().out().to_string();
    let port = published.rsplit(':').next().unwrap_or_default().to_string();
    assert!(port.parse::<u16>().is_ok(), "{published}");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap_or(0)))
        .expect("published port");
    std::io::Write::write_all(&mut conn, b"GET / HTTP/1.0\r\n\r\n").expect("request");
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut conn, &mut reply).expect("reply");
    assert!(reply.ends_with("shop-page\n"), "{reply}");
    let images = p.compose(&["images", "web"]).ok().stdout;
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("shop-web-1") && l.contains("shop-web")),
        "{images}"
    );
    assert!(p.compose(&["top", "db"]).ok().stdout.contains("sleep 300"));
    p.compose(&["build", "web"]).ok();

    // run: one-off containers, removed with --rm, or by down.
    let one_off = p.compose(&[
        "run",
        "--rm",
        "-T",
        "migrate",
        "sh",
        "-c",
        "cat /data/schema; exit 3",
    ]);
    assert_eq!(
        (one_off.code, one_off.out()),
        (3, "migrated"),
        "{}",
        one_off.stderr
    );
    let all_before = d.berth(&["ps", "-aq"]).ok().stdout.lines().count();
    let detached = p.compose(&["run", "-d", "proxy", "sleep", "300"]).ok();
    assert!(
        detached.out().starts_with("shop-proxy-run-"),
        "{}",
        detached.stdout
    );
    assert_eq!(
        d.berth(&["ps", "-aq"]).ok().stdout.lines().count(),
        all_before + 1
    );
    assert!(
        !p.compose(&["ps"]).ok().stdout.contains("-run-"),
        "ps leaves one-offs out"
    );

    // exec, stop/start, ls.
    assert_eq!(
        p.compose(&["exec", "-T", "web", "cat", "/www/index.html"])
            .ok()
            .out(),
        "shop-page"
    );
    p.compose(&["stop", "-t", "1", "proxy"]).ok();
    assert_eq!(d.inspect("shop-proxy-1", "{{.State.Status}}"), "exited");
    p.compose(&["start", "proxy"]).ok();
    assert_eq!(d.inspect("shop-proxy-1", "{{.State.Status}}"), "running");
    let ls = p.compose(&["ls"]).ok().stdout;
    assert!(
        ls.lines()
            .any(|l| l.starts_with("shop ") && l.contains("running(")),
        "{ls}"
    );

    // Scale up and down.
    p.compose(&["up", "-d", "--scale", "worker=3"]).ok();
    assert_eq!(d.inspect("shop-worker-3", "{{.State.Status}}"), "running");
    p.compose(&["up", "-d", "-t", "1", "--scale", "worker=1"])
        .ok();
    assert_ne!(d.berth(&["inspect", "shop-worker-2"]).code, 0);

    // The named volume survives down/up; down -v takes everything.
    p.compose(&["down", "-t", "1"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    p.compose(&["up", "-d"]).ok();
    assert_eq!(
        d.berth(&["exec", "shop-db-1", "cat", "/data/schema"])
            .ok()
            .out(),
        "migrated"
    );
    p.compose(&["down", "-v", "-t", "1"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().out(), "");
    assert_eq!(
        d.berth(&["network", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .count(),
        networks_before
    );
}

#[test]
fn bad_files_are_refused_before_anything_is_made() {
    let d = Daemon::start();
    d.import_busybox();
    let p = Project {
        d: &d,
        dir: d.root.join("bad"),
    };
    std::fs::create_dir_all(&p.dir).expect("dir");
    let cases = [
        (
            "services:\n  a:\n    image: busybox\n    bogus: 1\n",
            "bogus",
        ),
        (
            "services:\n  a:\n    image: ${IMAGE:?set IMAGE}\n",
            "IMAGE",
        ),
        (
            "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
            "cycle",
        ),
        (
            "services:\n  a:\n    image: busybox\n    networks: [nowhere]\n",
            "nowhere",
        ),
    ];
    for (file, why) in cases {
        std::fs::write(p.dir.join("compose.yaml"), file).expect("compose file");
        let r = p.compose(&["up", "-d"]);
        assert_ne!(r.code, 0, "{file} was accepted");
        assert!(r.stderr.contains(why), "{file}: {}", r.stderr);
        assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    }
    let before = d
        .berth(&["network", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .count();
    assert_eq!(before, 3, "only the built-in networks");
}

/// Attached `up`: every service's output with its name prefixed; with
/// `--abort-on-container-exit` the first exit stops the project and gives the
/// exit code, with `--exit-code-from` the named service's.
#[test]
fn attached_up_streams_logs_and_aborts_on_exit() {
    let d = Daemon::start();
    d.import_busybox();
    let p = Project {
        d: &d,
        dir: d.root.join("job"),
    };
    std::fs::create_dir_all(&p.dir).expect("dir");
    std::fs::write(
        p.dir.join("compose.yaml"),
        "services:\n  server:\n    image: busybox\n    command: sh -c \"echo serving; exec sleep 300\"\n  job:\n    image: busybox\n    command: sh -c \"sleep 1; echo job-done; exit 4\"\n",
    )
    .expect("compose file");
    let r = p.compose(&["up", "-t", "1", "--abort-on-container-exit"]);
    assert_eq!(r.code, 4, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("job-1    | job-done"), "{}", r.stdout);
    assert!(r.stdout.contains("server-1 | serving"), "{}", r.stdout);
    assert_eq!(d.berth(&["ps", "-q"]).ok().out(), "", "everything stopped");
    let r = p.compose(&["up", "-t", "1", "--exit-code-from", "server"]);
    assert_eq!(
        r.code, 137,
        "server was killed after the grace period: {}",
        r.stderr
    );
    p.compose(&["down", "-t", "1"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}

/// A berth registry on a loopback port, killed when dropped.
struct Registry(std::process::Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_registry(d: &Daemon) -> (Registry, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let root = d.root.join("registry");
    let child = d
        .berth_cmd(&[
            "registry",
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--root",
            &root.display().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("berth registry");
    let server = Registry(child);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("registry on port {port} did not come up");
}

/// The verbs around `up`: create without start, `--no-deps`, a recreated
/// dependency restarting what depends on it with `restart: true` (and
/// recreating what shares its network namespace), `events --json`, `cp` both
/// ways, `scale`, `wait` with its exit code, `push`/`pull` through berth's
/// registry, and `down --rmi local` taking the built images only.
#[test]
fn create_scale_wait_cp_events_push_pull_and_rmi() {
    let d = Daemon::start();
    d.import_busybox();
    let (_registry, port) = start_registry(&d);
    let p = Project {
        d: &d,
        dir: d.root.join("ops"),
    };
    std::fs::create_dir_all(p.dir.join("app")).expect("project dir");
    std::fs::write(
        p.dir.join("app/Dockerfile"),
        "FROM busybox\nRUN echo app-build > /built\n",
    )
    .expect("Dockerfile");
    std::fs::write(
        p.dir.join("compose.yaml"),
        format!(
            r#"
services:
  db:
    image: busybox
    command: sleep 300
    environment:
      V: ${{V:-1}}
  sidecar:
    image: busybox
    command: sleep 300
    network_mode: service:db
  app:
    build: ./app
    image: 127.0.0.1:{port}/ops/app:1
    command: sleep 300
    depends_on:
      db:
        condition: service_started
        restart: true
  tool:
    build: ./app
    command: sleep 300
    stop_grace_period: 1s
    ports:
      - "127.0.0.1:47100-47109:80"
  job:
    image: busybox
    command: sh -c "echo job-ran; sleep 1; exit 7"
"#
        ),
    )
    .expect("compose file");

    // create: every container made, none started.
    p.compose(&["create"]).ok();
    for name in [
        "ops-db-1",
        "ops-sidecar-1",
        "ops-app-1",
        "ops-tool-1",
        "ops-job-1",
    ] {
        assert_eq!(d.inspect(name, "{{.State.Status}}"), "created", "{name}");
    }
    // From a subdirectory, the project is found upwards.
    let below = d
        .berth_cmd(&["compose", "ps", "-a"])
        .current_dir(p.dir.join("app"))
        .output()
        .expect("compose ps");
    let listed = String::from_utf8_lossy(&below.stdout);
    assert!(listed.contains("ops-db-1"), "{listed} {below:?}");
    p.compose(&["up", "-d"]).ok();
    assert_eq!(d.inspect("ops-app-1", "{{.State.Status}}"), "running");

    // wait: the job's exit code.
    let waited = p.compose(&["wait", "job"]);
    assert_eq!(waited.code, 7, "{}", waited.stderr);

    // events --json while db changes: db and its network-sharing sidecar are
    // recreated, app (restart: true) restarted in place, tool left alone.
    let mut events = d
        .berth_cmd(&[
            "compose",
            "--project-directory",
            &p.dir.display().to_string(),
            "events",
            "--json",
        ])
        .current_dir(&p.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("compose events");
    std::thread::sleep(Duration::from_millis(300));
    let ids = |names: &[&str]| names.iter().map(|n| p.id(n)).collect::<Vec<_>>();
    let before = ids(&["ops-db-1", "ops-sidecar-1", "ops-app-1", "ops-tool-1"]);
    let app_started = d.inspect("ops-app-1", "{{.State.StartedAt}}");
    p.compose_env(&["up", "-d", "-t", "1"], &[("V", "2")]).ok();
    let after = ids(&["ops-db-1", "ops-sidecar-1", "ops-app-1", "ops-tool-1"]);
    assert_ne!(after[0], before[0], "db recreated");
    assert_ne!(after[1], before[1], "sidecar follows db's namespace");
    assert_eq!(after[2], before[2], "app restarted, not recreated");
    assert_ne!(
        d.inspect("ops-app-1", "{{.State.StartedAt}}"),
        app_started,
        "app restarted"
    );
    assert_eq!(after[3], before[3], "tool untouched");
    assert_eq!(
        d.inspect("ops-sidecar-1", "{{.HostConfig.NetworkMode}}"),
        format!("container:{}", after[0])
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = events.kill();
    let out = events.wait_with_output().expect("events output");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let db_created = lines
        .iter()
        .find(|e| e["service"] == "db" && e["action"] == "create")
        .unwrap_or_else(|| panic!("no create event for db: {lines:?}"));
    assert_eq!(db_created["type"], "container");
    assert_eq!(db_created["id"], after[0].as_str());
    assert_eq!(db_created["attributes"]["name"], "ops-db-1");
    assert!(db_created["time"].as_str().is_some_and(|t| t.contains('T')));
    assert!(
        lines.iter().all(|e| e["attributes"]
            .as_object()
            .is_some_and(|a| a.keys().all(|k| !k.starts_with("com.docker.compose.")))),
        "compose's labels stay out of the attributes: {lines:?}"
    );
    assert!(lines
        .iter()
        .any(|e| e["service"] == "app" && e["action"] == "start"));
    assert!(!lines.iter().any(|e| e["service"] == "tool"), "{lines:?}");

    // --no-deps: a stopped dependency stays stopped.
    p.compose(&["stop", "-t", "1", "db"]).ok();
    p.compose(&[
        "up",
        "-d",
        "--no-deps",
        "--force-recreate",
        "-t",
        "1",
        "app",
    ])
    .ok();
    assert_eq!(d.inspect("ops-db-1", "{{.State.Status}}"), "exited");
    assert_eq!(d.inspect("ops-app-1", "{{.State.Status}}"), "running");

    // cp both ways; into a scaled service it reaches every container.
    p.compose(&["scale", "tool=2"]).ok();
    assert_eq!(d.inspect("ops-tool-2", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect("ops-tool-1", "{{.Id}}"), before[3], "tool-1 kept");
    // Each replica took its own port of the host range.
    let ports: Vec<u16> = ["ops-tool-1", "ops-tool-2"]
        .iter()
        .map(|n| {
            let bound = d.berth(&["port", n, "80"]).ok().out().to_string();
            bound
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(
        ports[0] != ports[1] && ports.iter().all(|p| (47100..=47109).contains(p)),
        "{ports:?}"
    );
    std::fs::write(p.dir.join("note.txt"), "carried\n").expect("note");
    p.compose(&["cp", "note.txt", "tool:/tmp/note.txt"]).ok();
    for n in ["ops-tool-1", "ops-tool-2"] {
        assert_eq!(
            d.berth(&["exec", n, "cat", "/tmp/note.txt"]).ok().out(),
            "carried"
        );
    }
    p.compose(&["cp", "--index", "2", "tool:/built", "./built"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(p.dir.join("built")).expect("copied out"),
        "app-build\n"
    );
    p.compose(&["scale", "tool=1"]).ok();

    // run -v (relative to the project) and -p; logs --since/--until.
    let r = p.compose(&[
        "run",
        "--rm",
        "-T",
        "--no-deps",
        "-v",
        "./app:/mnt:ro",
        "tool",
        "cat",
        "/mnt/Dockerfile",
    ]);
    let r = r.ok();
    assert!(r.stdout.starts_with("FROM busybox"), "{}", r.stdout);
    let one_off = p
        .compose(&["run", "-d", "--no-deps", "-p", "127.0.0.1::8080", "tool"])
        .ok()
        .out()
        .to_string();
    let bound = d.berth(&["port", &one_off, "8080"]).ok().out().to_string();
    assert!(bound.starts_with("127.0.0.1:"), "{bound}");
    d.berth(&["rm", "-f", &one_off]).ok();
    let old = p
        .compose(&["logs", "--until", "2000-01-01T00:00:00Z", "job"])
        .ok();
    assert_eq!(old.out(), "", "nothing before 2000");
    let recent = p
        .compose(&["logs", "--no-log-prefix", "--since", "1h", "job"])
        .ok();
    assert!(recent.stdout.contains("job-ran"), "{}", recent.stdout);
    assert_ne!(d.berth(&["inspect", "ops-tool-2"]).code, 0, "scaled down");

    // push the built image, drop it, pull it back.
    let image = format!("127.0.0.1:{port}/ops/app:1");
    let pushed = p.compose(&["push"]).ok();
    assert!(pushed.stderr.contains("Pushed"), "{}", pushed.stderr);
    p.compose(&["down", "-t", "1"]).ok();
    d.berth(&["rmi", &image]).ok();
    let pulled = p.compose(&["pull", "app"]).ok();
    assert!(pulled.stderr.contains("app  Pulled"), "{}", pulled.stderr);
    // busybox has no registry here: a failure naming the service, unless ignored.
    let unreachable = p.compose(&["pull", "db"]);
    assert_ne!(unreachable.code, 0);
    assert!(unreachable.stderr.contains("db"), "{}", unreachable.stderr);
    p.compose(&["pull", "--ignore-pull-failures", "db"]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", &image, "cat", "/built"])
            .ok()
            .out(),
        "app-build"
    );

    // down --rmi local: the image named after the project goes, busybox and
    // the service's own image name stay.
    p.compose(&["up", "-d"]).ok();
    p.compose(&["down", "-t", "1", "--rmi", "local"]).ok();
    assert_ne!(d.berth(&["image", "inspect", "ops-tool"]).code, 0);
    d.berth(&["image", "inspect", &image]).ok();
    d.berth(&["image", "inspect", "busybox"]).ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}

/// The shop project under Debian's docker-compose 1.29 against berthd (the
/// `name` key is newer than 1.29, so the name comes from `-p`): the same
/// health-gated order, DNS and isolation, one line per container in its `ps`,
/// and `berth compose` sees the same project through the shared labels.
#[test]
fn docker_compose_1_29_runs_the_same_project() {
    let d = Daemon::start();
    d.import_busybox();
    let p = Project {
        d: &d,
        dir: d.root.join("shop29"),
    };
    write_project(&p.dir);
    std::fs::remove_file(p.dir.join("compose.yaml")).expect("rm compose.yaml");
    std::fs::write(
        p.dir.join("docker-compose.yml"),
        PROJECT.replace("name: shop\n", ""),
    )
    .expect("compose file");
    let compose = |args: &[&str]| {
        Run::from_output(d.docker_compose(&p.dir, "shop", args, Duration::from_secs(180)))
    };
    let up = compose(&["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(
        d.inspect("shop_db_1", "{{.State.Health.Status}}"),
        "healthy"
    );
    assert_eq!(
        d.inspect("shop_migrate_1", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert!(
        d.inspect("shop_web_1", "{{.State.StartedAt}}")
            > d.inspect("shop_migrate_1", "{{.State.FinishedAt}}"),
        "web waited for the migration"
    );
    let page = d
        .berth(&["exec", "shop_proxy_1", "wget", "-qO-", "http://web/"])
        .ok()
        .stdout;
    assert_eq!(page.trim(), "shop-page");
    assert_ne!(
        d.berth(&["exec", "shop_proxy_1", "nslookup", "db"]).code,
        0,
        "proxy (front only) must not resolve db"
    );
    // A second up finds nothing to change (1.29 compares networks' options
    // and would refuse one it had to recreate).
    let web = p.id("shop_web_1");
    let again = compose(&["up", "-d"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(p.id("shop_web_1"), web);
    let ps = compose(&["ps"]).ok().stdout;
    for name in [
        "shop_db_1",
        "shop_migrate_1",
        "shop_web_1",
        "shop_proxy_1",
        "shop_worker_1",
    ] {
        assert_eq!(ps.matches(name).count(), 1, "{ps}");
    }
    assert!(ps.contains("(healthy)"), "{ps}");
    // berth compose reads 1.29's project from the labels both write.
    let ours = p
        .compose(&["-p", "shop", "ps", "--format", "json"])
        .ok()
        .stdout;
    for name in ["shop_db_1", "shop_web_1", "shop_proxy_1", "shop_worker_1"] {
        assert!(ours.contains(name), "{name} missing from {ours}");
    }
    let down = compose(&["down", "-v", "-t", "1"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().out(), "");
    assert_eq!(
        d.berth(&["network", "ls", "-q"])
            .ok()
            .stdout
            .lines()
            .count(),
        3,
        "only the built-in networks"
    );
}

/// Secrets (from a file) and configs (from the environment) inside the
/// containers, two `-f` files merged, a profile switching a service on,
/// `logs -f` following two services live, and `down -v` leaving no
/// published-port rule behind.
#[test]
fn secrets_profiles_merged_files_and_followed_logs() {
    let d = Daemon::start();
    d.import_busybox();
    let p = Project {
        d: &d,
        dir: d.root.join("conf"),
    };
    std::fs::create_dir_all(&p.dir).expect("dir");
    std::fs::write(p.dir.join("token.txt"), "s3cret\n").expect("secret");
    // The config's content comes from the environment, here through `.env`.
    std::fs::write(p.dir.join(".env"), "CONF_TEXT=from-env\n").expect(".env");
    std::fs::write(
        p.dir.join("compose.yaml"),
        r#"
services:
  app:
    image: busybox
    command: sh -c "cat /run/secrets/token /etc/app.conf; echo app-$$MODE; exec sleep 300"
    stop_signal: SIGKILL
    environment:
      MODE: base
    secrets: [token]
    configs:
      - source: conf
        target: /etc/app.conf
    ports: ["127.0.0.1::80"]
  debug:
    image: busybox
    command: sleep 300
    profiles: [debug]
secrets:
  token:
    file: ./token.txt
configs:
  conf:
    environment: CONF_TEXT
"#,
    )
    .expect("compose file");
    std::fs::write(
        p.dir.join("prod.yaml"),
        "services:\n  app:\n    environment:\n      MODE: prod\n  extra:\n    image: busybox\n    command: sh -c \"echo extra-up; exec sleep 300\"\n    stop_signal: SIGKILL\n",
    )
    .expect("second file");
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        ["-f", "compose.yaml", "-f", "prod.yaml"]
            .into_iter()
            .chain(args.iter().copied())
            .collect()
    }
    p.compose(&with(&["up", "-d"])).ok();
    let logs = p
        .compose(&with(&["logs", "--no-log-prefix", "app"]))
        .ok()
        .stdout;
    // The config holds exactly the variable's value: no newline added.
    assert_eq!(logs.trim(), "s3cret\nfrom-envapp-prod", "{logs}");
    let write = d.berth(&[
        "exec",
        "conf-app-1",
        "sh",
        "-c",
        "echo x > /run/secrets/token",
    ]);
    assert_ne!(write.code, 0, "secrets are read-only");
    assert_ne!(d.berth(&["inspect", "conf-debug-1"]).code, 0, "profile off");
    p.compose(&with(&["--profile", "debug", "up", "-d"])).ok();
    assert_eq!(d.inspect("conf-debug-1", "{{.State.Status}}"), "running");

    // logs -f: both services, prefixed, and what they print later.
    let mut follow = d
        .berth_cmd(&[
            "compose",
            "--project-directory",
            &p.dir.display().to_string(),
            "-f",
            "compose.yaml",
            "-f",
            "prod.yaml",
            "logs",
            "-f",
            "app",
            "extra",
        ])
        .current_dir(&p.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("logs -f");
    std::thread::sleep(Duration::from_millis(500));
    for c in ["conf-app-1", "conf-extra-1"] {
        d.berth(&[
            "exec",
            c,
            "sh",
            "-c",
            &format!("echo live-{c} > /proc/1/fd/1"),
        ])
        .ok();
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = follow.kill();
    let streamed =
        String::from_utf8_lossy(&follow.wait_with_output().expect("output").stdout).into_owned();
    for line in [
        "conf-app-1   | from-envapp-prod",
        "conf-extra-1 | extra-up",
        "conf-app-1   | live-conf-app-1",
        "conf-extra-1 | live-conf-extra-1",
    ] {
        assert!(streamed.contains(line), "{line:?} in {streamed}");
    }

    // The published port has a rule while up, none after down -v.
    let published = p
        .compose(&with(&["port", "app", "80"]))
        .ok()
        .out()
        .to_string();
    let port = published.rsplit(':').next().unwrap_or_default().to_string();
    let rules = || {
        let out = std::process::Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        rules().contains(&format!("dport {port} ")),
        "rule for {port}"
    );
    p.compose(&with(&["--profile", "debug", "down", "-v", "-t", "1"]))
        .ok();
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
    assert!(
        !rules().contains(&format!("dport {port} ")),
        "rule for {port} left"
    );
}

/// Every form compose files give `entrypoint` and `command` in (empty string,
/// empty list, shell string with quotes, list, absent), created by Debian's
/// docker-compose 1.29 and by `berth compose` against the same berthd, on an
/// image that has an entrypoint of its own: each container must end up with
/// the same `Entrypoint` and `Cmd`.
#[test]
fn entrypoint_and_command_forms_match_docker_compose() {
    const FORMS: &str = r#"
services:
  epempty:
    image: withep
    entrypoint: ""
    command: ["echo", "a"]
  epemptylist:
    image: withep
    entrypoint: []
    command: echo b
  epstring:
    image: withep
    entrypoint: sh -c
    command: "'echo c d'"
  eplist:
    image: withep
    entrypoint: ["sh", "-c"]
    command: ["echo e"]
  cmdquoted:
    image: withep
    command: echo 'f g' "h i" j
  cmdempty:
    image: withep
    command: ""
  cmdemptylist:
    image: withep
    command: []
  nothing:
    image: withep
"#;
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&["create", "--name", "base", "busybox"]).ok();
    d.berth(&[
        "commit",
        "--change",
        r#"ENTRYPOINT ["echo", "from-image"]"#,
        "--change",
        r#"CMD ["image-cmd"]"#,
        "base",
        "withep",
    ])
    .ok();
    d.berth(&["rm", "base"]).ok();
    let dir = d.root.join("forms");
    std::fs::create_dir_all(&dir).expect("project dir");
    std::fs::write(dir.join("docker-compose.yml"), FORMS).expect("compose file");

    let p = Project { d: &d, dir };
    let theirs = |args: &[&str]| {
        Run::from_output(d.docker_compose(&p.dir, "theirs", args, Duration::from_secs(120)))
    };
    let created = theirs(&["up", "--no-start"]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    p.compose(&["-p", "ours", "up", "--no-start"]).ok();

    let command_of = |name: &str| -> serde_json::Value {
        let (status, _, body) = d.http("GET", &format!("/containers/{name}/json"), None);
        assert_eq!(status, 200, "{name}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("inspect JSON");
        serde_json::json!({"Entrypoint": v["Config"]["Entrypoint"], "Cmd": v["Config"]["Cmd"]})
    };
    let mut differences = Vec::new();
    for service in [
        "epempty",
        "epemptylist",
        "epstring",
        "eplist",
        "cmdquoted",
        "cmdempty",
        "cmdemptylist",
        "nothing",
    ] {
        let reference = command_of(&format!("theirs_{service}_1"));
        let ours = command_of(&format!("ours-{service}-1"));
        if reference != ours {
            differences.push(format!(
                "{service}: docker-compose {reference}, berth compose {ours}"
            ));
        }
    }
    // What the reference did is pinned too, so a change of docker-compose
    // cannot make both agree on something wrong unnoticed.
    assert_eq!(
        command_of("theirs_cmdquoted_1")["Cmd"],
        serde_json::json!(["echo", "f g", "h i", "j"])
    );
    assert_eq!(
        command_of("theirs_nothing_1"),
        serde_json::json!({"Entrypoint": ["echo", "from-image"], "Cmd": ["image-cmd"]}),
        "the image's own entrypoint, which the empty forms clear"
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    p.compose(&["-p", "ours", "down"]).ok();
    let down = theirs(&["down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(d.berth(&["ps", "-aq"]).ok().out(), "");
}
