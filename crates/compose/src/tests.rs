//! Loading real projects from temporary directories: discovery, `.env`,
//! interpolation, merging, `extends`, `include`, profiles, normalisation,
//! validation and the error messages that point at a file, a key and a line.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::*;

/// A project directory named `app` (or a given name) inside a temporary
/// directory, holding the files a test writes.
struct Fixture {
    _root: tempfile::TempDir,
    dir: PathBuf,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Self {
        Self::named("app", files)
    }

    fn named(name: &str, files: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(name);
        fs::create_dir_all(&dir).expect("create project dir");
        let f = Fixture { _root: root, dir };
        for (path, text) in files {
            f.write(path, text);
        }
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// `rel` under the project directory, as the loader renders host paths.
    fn abs(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("create dirs");
        fs::write(p, text).expect("write file");
    }

    fn remove(&self, rel: &str) {
        fs::remove_file(self.path(rel)).expect("remove file");
    }

    /// Options for this directory as the project directory, files discovered.
    fn opts(&self) -> LoadOptions {
        LoadOptions {
            working_dir: Some(self.dir.clone()),
            ..LoadOptions::default()
        }
    }

    fn try_load_with(&self, edit: impl FnOnce(&mut LoadOptions)) -> Result<Project, ComposeError> {
        let mut opts = self.opts();
        edit(&mut opts);
        load(&opts)
    }

    fn load_with(&self, edit: impl FnOnce(&mut LoadOptions)) -> Project {
        self.try_load_with(edit)
            .unwrap_or_else(|e| panic!("the project should load: {e}"))
    }

    fn load(&self) -> Project {
        self.load_with(|_| {})
    }

    fn err_with(&self, edit: impl FnOnce(&mut LoadOptions)) -> ComposeError {
        match self.try_load_with(edit) {
            Ok(p) => panic!("the project should not load, got {p:#?}"),
            Err(e) => e,
        }
    }

    fn err(&self) -> String {
        self.err_with(|_| {}).to_string()
    }
}

/// A project of one `compose.yaml`.
fn compose(yaml: &str) -> Fixture {
    Fixture::new(&[("compose.yaml", yaml)])
}

/// The error text of loading a one-file project.
fn compose_err(yaml: &str) -> String {
    compose(yaml).err()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn names<V>(m: &BTreeMap<String, V>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

fn port(target: u16, published: Option<u16>, host_ip: Option<&str>, protocol: &str) -> Port {
    Port {
        target,
        published: published.map(|p| p.to_string()),
        host_ip: host_ip.map(String::from),
        protocol: protocol.into(),
    }
}

fn bind(source: &str, target: &str, read_only: bool) -> ServiceVolume {
    ServiceVolume {
        kind: VolumeKind::Bind,
        source: some(source),
        target: target.into(),
        read_only,
        tmpfs_size: None,
    }
}

fn dep(condition: Condition, restart: bool, required: bool) -> Dependency {
    Dependency {
        condition,
        restart,
        required,
    }
}

#[test]
fn anchors_merge_keys_and_extensions() {
    let f = compose(
        r#"x-common: &common
  image: busybox:1.36
  restart: always
  environment:
    SHARED: "yes"
x-labels: &labels
  team: core
x-anything:
  nested: {any: [1, 2, 3], keys: here}
services:
  web:
    <<: *common
    environment:
      OWN: "1"
    labels: *labels
    x-note: extensions inside a service are ignored
  worker:
    <<: [*common]
    command: ["sleep", "1"]
"#,
    );
    let p = f.load();
    assert_eq!(names(&p.services), ["web", "worker"]);

    let web = &p.services["web"];
    assert_eq!(web.image, some("busybox:1.36"));
    assert_eq!(web.restart, some("always"));
    // A merge key is shallow: the service's own `environment` replaces the anchor's.
    assert_eq!(web.environment, BTreeMap::from([("OWN".into(), some("1"))]));
    assert_eq!(web.labels, BTreeMap::from([("team".into(), "core".into())]));

    let worker = &p.services["worker"];
    assert_eq!(worker.image, some("busybox:1.36"));
    assert_eq!(
        worker.environment,
        BTreeMap::from([("SHARED".into(), some("yes"))])
    );
    assert_eq!(worker.command, Some(strings(&["sleep", "1"])));

    // A merge key that holds no mapping is a syntax error naming the file.
    let e = compose_err("services:\n  web:\n    <<: 5\n    image: x\n");
    assert!(e.starts_with("compose.yaml: invalid merge key (<<)"), "{e}");
}

#[test]
fn config_hash_is_stable_and_sensitive() {
    let hash_with = |yaml: &str, profiles: &[&str]| -> String {
        let f = compose(yaml);
        let p = f.load_with(|o| o.profiles = strings(profiles));
        p.config_hash("web")
    };
    let hash = |yaml: &str| hash_with(yaml, &[]);
    let base = "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n    \
                depends_on: [db]\n  db:\n    image: postgres\n";
    let h = hash(base);
    assert_eq!(h.len(), 64, "{h}");
    assert!(h.chars().all(|c| c.is_ascii_hexdigit()), "{h}");

    // Stable: the same config (in another directory, in another spelling).
    assert_eq!(hash(base), h);
    assert_eq!(
        hash(
            "services:\n  web:\n    image: nginx:1\n    environment: {B: '2', A: '1'}\n    \
             depends_on: {db: {condition: service_started}}\n  db:\n    image: postgres\n"
        ),
        h
    );

    // What does not change the container itself is left out.
    let unchanged = [
        "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n  db:\n    image: postgres\n",
        "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n    depends_on: [db]\n    \
         scale: 3\n  db:\n    image: postgres\n",
        "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n    depends_on: [db]\n    \
         build: ./somewhere\n  db:\n    image: postgres\n",
    ];
    for yaml in unchanged {
        assert_eq!(hash(yaml), h, "{yaml}");
    }
    assert_eq!(
        hash_with(
            "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n    depends_on: [db]\n    \
             profiles: [p]\n  db:\n    image: postgres\n",
            &["p"]
        ),
        h
    );

    // What does change it changes the hash.
    let changed = [
        "services:\n  web:\n    image: nginx:2\n    environment: [A=1, B=2]\n    depends_on: [db]\n  db:\n    image: postgres\n",
        "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=3]\n    depends_on: [db]\n  db:\n    image: postgres\n",
        "services:\n  web:\n    image: nginx:1\n    environment: [A=1, B=2]\n    depends_on: [db]\n    \
         ports: ['80:80']\n  db:\n    image: postgres\n",
    ];
    for yaml in changed {
        assert_ne!(hash(yaml), h, "{yaml}");
    }

    // An unknown service has no hash.
    assert_eq!(compose(base).load().config_hash("nope"), "");
}

#[test]
fn container_names_must_be_unique() {
    let e = compose_err(
        "services:
  a:
    image: busybox
    container_name: shared
  b:
    image: busybox
    container_name: shared
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.b.container_name: \"shared\" is already the container name \
         of service \"a\" (line 7)"
    );

    let p = compose(
        "services:\n  a:\n    image: busybox\n    container_name: one\n  b:\n    image: busybox\n    \
         container_name: two\n",
    )
    .load();
    assert_eq!(p.services["a"].container_name, some("one"));
    assert_eq!(p.services["b"].container_name, some("two"));

    let e = compose_err(
        "services:
  a:
    image: busybox
    container_name: solo
    deploy:
      replicas: 2
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.a.container_name: cannot be set with 2 replicas: container \
         names must be unique (line 4)"
    );
}

#[test]
fn dependency_cycle_is_named() {
    let f = compose(
        "services:
  a:
    image: busybox
    depends_on: [b]
  b:
    image: busybox
    depends_on: [c]
  c:
    image: busybox
    depends_on: [a]
  d:
    image: busybox
",
    );
    let e = f.err_with(|_| {});
    match &e {
        ComposeError::DependencyCycle { cycle, file, key } => {
            assert_eq!(cycle, &strings(&["a", "b", "c", "a"]));
            assert_eq!(file, "compose.yaml");
            assert_eq!(key, "services.a.depends_on");
        }
        other => panic!("expected a dependency cycle, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "compose.yaml: services.a.depends_on: dependency cycle detected: a -> b -> c -> a"
    );

    // `network_mode: service:x` is a dependency too.
    let e = compose_err(
        "services:
  app:
    image: busybox
    network_mode: service:proxy
  proxy:
    image: busybox
    depends_on: [app]
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.app.depends_on: dependency cycle detected: app -> proxy -> app"
    );
}

#[test]
fn depends_on_forms_and_start_order() {
    let p = compose(
        "services:
  web:
    image: nginx
    depends_on:
      api:
        condition: service_healthy
        restart: true
      cache:
        condition: service_started
  api:
    image: api
    depends_on: [db, migrate]
  migrate:
    image: migrate
    depends_on:
      db:
        condition: service_completed_successfully
        required: false
  db:
    image: postgres
  cache:
    image: redis
  sidecar:
    image: busybox
    network_mode: service:web
",
    )
    .load();
    let s = &p.services;
    assert_eq!(
        s["web"].depends_on,
        BTreeMap::from([
            ("api".into(), dep(Condition::ServiceHealthy, true, true)),
            ("cache".into(), dep(Condition::ServiceStarted, false, true)),
        ])
    );
    assert_eq!(
        s["api"].depends_on,
        BTreeMap::from([
            ("db".into(), dep(Condition::ServiceStarted, false, true)),
            (
                "migrate".into(),
                dep(Condition::ServiceStarted, false, true)
            ),
        ])
    );
    assert_eq!(
        s["migrate"].depends_on,
        BTreeMap::from([(
            "db".into(),
            dep(Condition::ServiceCompletedSuccessfully, false, false)
        )])
    );
    assert!(s["db"].depends_on.is_empty());
    // `network_mode: service:web` makes web a dependency.
    assert_eq!(
        s["sidecar"].depends_on,
        BTreeMap::from([("web".into(), dep(Condition::ServiceStarted, false, true))])
    );

    let order = p.start_order();
    assert_eq!(
        order,
        strings(&["cache", "db", "migrate", "api", "web", "sidecar"])
    );
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
    for (name, svc) in s {
        for d in svc.depends_on.keys() {
            assert!(pos(d) < pos(name), "{d} must start before {name}");
        }
    }
}

#[test]
fn disabled_services_are_validated_but_not_resolved() {
    let f = compose(
        "services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
    env_file: ./debug.env
    environment:
      - FROM_ENV
    secrets: [undeclared]
",
    );
    // Its env file is missing and its secret undeclared: no matter while it is off.
    let p = f.load();
    assert_eq!(names(&p.services), ["web"]);

    // Enabled, it is resolved: first its env file is read...
    let e = f.err_with(|o| o.profiles = strings(&["debug"])).to_string();
    assert!(
        e.starts_with("compose.yaml: services.debug.env_file[0]: env file "),
        "{e}"
    );
    assert!(e.contains(&f.abs("debug.env")), "{e}");
    // ...then its references are checked.
    f.write("debug.env", "X=1\n");
    let e = f.err_with(|o| o.profiles = strings(&["debug"])).to_string();
    assert!(
        e.contains("services.debug.secrets[0]: refers to undefined secret \"undeclared\""),
        "{e}"
    );

    // But a disabled service is still validated.
    let e = compose_err(
        "services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
    portz: [\"80\"]
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.debug.portz: key \"portz\" is not supported (line 7)"
    );
    let e = compose_err(
        "services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
    ports: [\"80:abc\"]
",
    );
    assert!(
        e.starts_with("compose.yaml: services.debug.ports[0]: invalid port \"80:abc\""),
        "{e}"
    );
}

#[test]
fn discovery() {
    let file = |name: &str| {
        (
            name.to_string(),
            format!("services:\n  web:\n    image: from-{name}\n"),
        )
    };
    let discover = |present: &[&str]| -> Project {
        let files: Vec<(String, String)> = present.iter().map(|n| file(n)).collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Fixture::new(&refs).load()
    };
    let chosen = |present: &[&str]| -> (Vec<String>, String) {
        let p = discover(present);
        let files = p
            .config_files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        (files, p.services["web"].image.clone().unwrap())
    };

    for (present, expected) in [
        (&["compose.yaml"][..], "compose.yaml"),
        (&["compose.yml"][..], "compose.yml"),
        (&["docker-compose.yaml"][..], "docker-compose.yaml"),
        (&["docker-compose.yml"][..], "docker-compose.yml"),
        (&["compose.yaml", "compose.yml"][..], "compose.yaml"),
        (&["compose.yml", "docker-compose.yaml"][..], "compose.yml"),
        (
            &["docker-compose.yaml", "docker-compose.yml"][..],
            "docker-compose.yml",
        ),
        (
            &[
                "compose.yaml",
                "compose.yml",
                "docker-compose.yml",
                "docker-compose.yaml",
            ][..],
            "compose.yaml",
        ),
    ] {
        let (files, image) = chosen(present);
        assert_eq!(files, [expected], "{present:?}");
        assert_eq!(image, format!("from-{expected}"), "{present:?}");
    }

    // An override file next to the one found is applied over it.
    let (files, image) = chosen(&["compose.yaml", "compose.override.yaml"]);
    assert_eq!(files, ["compose.yaml", "compose.override.yaml"]);
    assert_eq!(image, "from-compose.override.yaml");
    let (files, image) = chosen(&["docker-compose.yml", "docker-compose.override.yml"]);
    assert_eq!(files, ["docker-compose.yml", "docker-compose.override.yml"]);
    assert_eq!(image, "from-docker-compose.override.yml");
    let p = discover(&["compose.yml", "compose.override.yml"]);
    assert_eq!(p.config_files.len(), 2);
    assert!(p.config_files.iter().all(|f| f.is_absolute()));

    // None of the names: an error naming the directory.
    let f = Fixture::new(&[("other.yaml", "services: {}\n")]);
    let e = f.err_with(|_| {});
    assert!(matches!(e, ComposeError::NoConfigFile { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "no configuration file provided: none of compose.yaml, compose.yml, \
             docker-compose.yml, docker-compose.yaml found in {}",
            f.dir.display()
        )
    );
}

#[test]
fn dotenv_precedence() {
    let f = Fixture::new(&[
        (
            ".env",
            "TAG=dotenv\nPORT=8080\nONLY_DOTENV=dot\nDERIVED=${TAG}-derived\n\
             COMPOSE_PROJECT_NAME=fromdotenv\n",
        ),
        ("custom.env", "TAG=custom\nPORT=9090\n"),
        ("second.env", "PORT=7070\n"),
        (
            "compose.yaml",
            "services:
  web:
    image: nginx:${TAG}
    ports: [\"${PORT}:80\"]
    environment:
      - ONLY_DOTENV
      - DERIVED
      - TAG
",
        ),
    ]);

    // The process environment wins over .env, also inside .env's own values.
    let p = f.load_with(|o| o.environment = env(&[("TAG", "process")]));
    let web = &p.services["web"];
    assert_eq!(web.image, some("nginx:process"));
    assert_eq!(web.ports, [port(80, Some(8080), None, "tcp")]);
    assert_eq!(
        web.environment,
        BTreeMap::from([
            ("DERIVED".into(), some("process-derived")),
            ("ONLY_DOTENV".into(), some("dot")),
            ("TAG".into(), some("process")),
        ])
    );
    assert_eq!(p.name, "fromdotenv");

    // Without the process value, .env's is used.
    let p = f.load();
    assert_eq!(p.services["web"].image, some("nginx:dotenv"));
    assert_eq!(
        p.services["web"].environment["DERIVED"],
        some("dotenv-derived")
    );

    let p = f.load_with(|o| {
        o.environment = env(&[("COMPOSE_PROJECT_NAME", "fromprocess")]);
    });
    assert_eq!(p.name, "fromprocess");

    // --env-file replaces .env; later env files win over earlier ones.
    let p = f.load_with(|o| o.env_files = vec![f.path("custom.env")]);
    let web = &p.services["web"];
    assert_eq!(web.image, some("nginx:custom"));
    assert_eq!(web.ports[0].published.as_deref(), Some("9090"));
    assert_eq!(web.environment["ONLY_DOTENV"], None);
    assert_eq!(p.name, "app");
    let p = f.load_with(|o| o.env_files = vec![f.path("custom.env"), f.path("second.env")]);
    assert_eq!(
        p.services["web"].ports[0].published.as_deref(),
        Some("7070")
    );
    assert_eq!(p.services["web"].image, some("nginx:custom"));
    let p = f.load_with(|o| {
        o.env_files = vec![f.path("custom.env")];
        o.environment = env(&[("PORT", "1234")]);
    });
    assert_eq!(
        p.services["web"].ports[0].published.as_deref(),
        Some("1234")
    );
}

#[test]
fn extends_errors() {
    let e = compose_err(
        "services:
  web:
    image: nginx
    extends: nope
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.web.extends: cannot extend service \"nope\": no such service \
         (line 4)"
    );

    let f = compose(
        "services:
  web:
    extends:
      file: missing.yaml
      service: base
",
    );
    let e = f.err();
    assert!(
        e.starts_with(&format!(
            "compose.yaml: services.web.extends.file: cannot read extended file {}: ",
            f.abs("missing.yaml")
        )),
        "{e}"
    );

    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    extends:\n      file: common.yaml\n      service: base\n",
        ),
        ("common.yaml", "services:\n  other:\n    image: x\n"),
    ]);
    assert_eq!(
        f.err(),
        "compose.yaml: services.web.extends: cannot extend service \"base\": not found in \
         common.yaml (line 3)"
    );

    let e = compose_err(
        "services:
  a:
    image: x
    extends: b
  b:
    image: y
    extends: a
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.a.extends: extends cycle: a -> b -> a (line 4)"
    );

    let e = compose_err("services:\n  web:\n    image: x\n    extends: 42\n");
    assert_eq!(
        e,
        "compose.yaml: services.web.extends: must be a string or a mapping, not a number (line 4)"
    );
    let e = compose_err(
        "services:\n  b:\n    image: x\n  web:\n    extends:\n      service: b\n      files: x\n",
    );
    assert_eq!(
        e,
        "compose.yaml: services.web.extends.files: key \"files\" is not supported (line 7)"
    );

    // An error in the base service is reported in the file that holds it.
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    extends:\n      file: common.yaml\n      service: base\n",
        ),
        (
            "common.yaml",
            "services:\n  base:\n    image: x\n    ports:\n      - \"80:abc\"\n",
        ),
    ]);
    assert_eq!(
        f.err(),
        "common.yaml: services.base.ports[0]: invalid port \"80:abc\": \"abc\" is not a port \
         number (line 5)"
    );
}

#[test]
fn extends_same_file_and_other_file() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:
  base:
    image: busybox
    environment:
      A: \"1\"
    command: [\"sleep\", \"1\"]
  child:
    extends: base
    environment:
      B: \"2\"
  grandchild:
    extends:
      service: child
    command: echo hi
  remote:
    extends:
      file: common/common.yaml
      service: webapp
    ports: [\"8080:80\"]
    environment:
      D: \"4\"
",
        ),
        (
            "common/common.yaml",
            "services:
  webapp:
    build: .
    volumes:
      - ./static:/static
    environment:
      C: \"3\"
    ports: [\"9000:9000\"]
",
        ),
    ]);
    let p = f.load();
    // The base in the same file is a service of its own; the other file's is not.
    assert_eq!(
        names(&p.services),
        ["base", "child", "grandchild", "remote"]
    );

    let child = &p.services["child"];
    assert_eq!(child.image, some("busybox"));
    assert_eq!(child.command, Some(strings(&["sleep", "1"])));
    assert_eq!(
        child.environment,
        BTreeMap::from([("A".into(), some("1")), ("B".into(), some("2"))])
    );

    let grandchild = &p.services["grandchild"];
    assert_eq!(grandchild.image, some("busybox"));
    assert_eq!(grandchild.command, Some(strings(&["echo", "hi"])));
    assert_eq!(grandchild.environment.len(), 2);

    // Relative paths of the other file are relative to that file.
    let remote = &p.services["remote"];
    let build = remote.build.as_ref().expect("build from the base");
    assert_eq!(build.context, f.path("common"));
    assert_eq!(build.dockerfile, "Dockerfile");
    assert_eq!(
        remote.volumes,
        [bind(&f.abs("common/static"), "/static", false)]
    );
    assert_eq!(
        remote.environment,
        BTreeMap::from([("C".into(), some("3")), ("D".into(), some("4"))])
    );
    assert_eq!(
        remote.ports,
        [
            port(9000, Some(9000), None, "tcp"),
            port(80, Some(8080), None, "tcp")
        ]
    );
}

#[test]
fn include_adds_services_and_checks_conflicts() {
    let sub = "services:
  db:
    image: postgres:${PG_VERSION}
    volumes:
      - ./data:/var/lib/postgresql/data
    env_file: db.env
    networks: [shared]
networks:
  shared: {}
";
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "include:
  - sub/compose.yaml
services:
  web:
    image: nginx
    depends_on: [db]
    networks: [shared]
networks:
  shared: {}
",
        ),
        ("sub/compose.yaml", sub),
        ("sub/.env", "PG_VERSION=16\n"),
        ("sub/other.env", "PG_VERSION=17\n"),
        ("sub/db.env", "POSTGRES_DB=app\n"),
    ]);
    let p = f.load();
    assert_eq!(names(&p.services), ["db", "web"]);
    let db = &p.services["db"];
    // The included project's .env and directory are its own.
    assert_eq!(db.image, some("postgres:16"));
    assert_eq!(
        db.volumes,
        [bind(&f.abs("sub/data"), "/var/lib/postgresql/data", false)]
    );
    assert_eq!(
        db.environment,
        BTreeMap::from([("POSTGRES_DB".into(), some("app"))])
    );
    assert_eq!(names(&db.networks), ["shared"]);
    assert_eq!(p.networks["shared"].name, "app_shared");
    assert!(p.services["web"].depends_on.contains_key("db"));
    // The including project's environment wins over the included .env.
    let p = f.load_with(|o| o.environment = env(&[("PG_VERSION", "15")]));
    assert_eq!(p.services["db"].image, some("postgres:15"));

    // The long form, with its own env file.
    f.write(
        "compose.yaml",
        "include:
  - path: sub/compose.yaml
    env_file: sub/other.env
services:
  web:
    image: nginx
",
    );
    let p = f.load();
    assert_eq!(p.services["db"].image, some("postgres:17"));

    // A name defined differently on both sides is a conflict.
    f.write(
        "compose.yaml",
        "include:
  - sub/compose.yaml
services:
  db:
    image: mysql
",
    );
    assert_eq!(
        f.err(),
        "compose.yaml: include[0]: included file defines services.db, which conflicts with an \
         existing definition (line 2)"
    );
    f.write(
        "compose.yaml",
        "include:
  - sub/compose.yaml
networks:
  shared:
    internal: true
",
    );
    assert!(
        f.err()
            .contains("included file defines networks.shared, which conflicts"),
        "{}",
        f.err()
    );
}

#[test]
fn include_cycle_and_errors_in_included_files() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "include:\n  - b.yaml\nservices:\n  a:\n    image: x\n",
        ),
        (
            "b.yaml",
            "include:\n  - compose.yaml\nservices:\n  b:\n    image: x\n",
        ),
    ]);
    let (a, b) = (f.abs("compose.yaml"), f.abs("b.yaml"));
    assert_eq!(
        f.err(),
        format!("compose.yaml: include cycle: {a} -> {b} -> {a}")
    );

    // An error inside an included file names that file.
    let f = Fixture::new(&[
        ("compose.yaml", "include:\n  - sub/compose.yaml\n"),
        (
            "sub/compose.yaml",
            "services:\n  db:\n    image: postgres\n    ports:\n      - \"80:abc\"\n",
        ),
    ]);
    assert_eq!(
        f.err(),
        "sub/compose.yaml: services.db.ports[0]: invalid port \"80:abc\": \"abc\" is not a \
         port number (line 5)"
    );
    f.write(
        "sub/compose.yaml",
        "services:\n  db:\n    image: postgres\n    environment:\n      P: \"${NEED:?set NEED}\"\n",
    );
    assert_eq!(
        f.err(),
        "sub/compose.yaml: services.db.environment.P: required variable NEED is missing a \
         value: set NEED (line 5)"
    );

    // An included file that does not exist.
    let f = compose("include:\n  - nothere.yaml\nservices:\n  a:\n    image: x\n");
    let e = f.err();
    assert!(
        e.starts_with(&format!(
            "compose.yaml: include[0]: cannot read included file {}: ",
            f.abs("nothere.yaml")
        )),
        "{e}"
    );

    // An unknown key in an include entry.
    let e = compose_err("include:\n  - path: x.yaml\n    envfile: y\n");
    assert_eq!(
        e,
        "compose.yaml: include[0].envfile: key \"envfile\" is not supported (line 3)"
    );
}

#[test]
fn interpolation_forms() {
    let f = compose(
        r#"services:
  web:
    image: busybox
    labels:
      braced: "${SET}"
      plain: "$SET/x"
      unset: "a${UNSET}b"
      soft_default_unset: "${UNSET:-d}"
      soft_default_empty: "${EMPTY:-d}"
      soft_default_set: "${SET:-d}"
      hard_default_unset: "${UNSET-d}"
      hard_default_empty: "${EMPTY-d}"
      required_set: "${SET:?e}"
      required_unset_ok_when_set_empty: "${EMPTY?e}"
      alt_set: "${SET:+a}"
      alt_empty: "${EMPTY:+a}"
      alt_unset: "${UNSET:+a}"
      plus_empty: "${EMPTY+a}"
      plus_unset: "${UNSET+a}"
      escaped: "$$SET and $${SET}"
      nested: "${UNSET:-${SET}-nested}"
"#,
    );
    let p = f.load_with(|o| o.environment = env(&[("SET", "value"), ("EMPTY", "")]));
    let labels = &p.services["web"].labels;
    let expected = [
        ("braced", "value"),
        ("plain", "value/x"),
        ("unset", "ab"),
        ("soft_default_unset", "d"),
        ("soft_default_empty", "d"),
        ("soft_default_set", "value"),
        ("hard_default_unset", "d"),
        ("hard_default_empty", ""),
        ("required_set", "value"),
        ("required_unset_ok_when_set_empty", ""),
        ("alt_set", "a"),
        ("alt_empty", ""),
        ("alt_unset", ""),
        ("plus_empty", "a"),
        ("plus_unset", ""),
        ("escaped", "$SET and ${SET}"),
        ("nested", "value-nested"),
    ];
    assert_eq!(labels.len(), expected.len());
    for (k, v) in expected {
        assert_eq!(labels[k], v, "label {k}");
    }

    // ${V:?e} fails on an empty value, ${V?e} only on a missing one.
    let e = compose("services:\n  web:\n    image: \"x${EMPTY:?must not be empty}\"\n")
        .err_with(|o| o.environment = env(&[("EMPTY", "")]));
    match e {
        ComposeError::MissingVariable {
            variable, message, ..
        } => {
            assert_eq!(variable, "EMPTY");
            assert_eq!(message, "must not be empty");
        }
        other => panic!("expected a missing variable, got {other:?}"),
    }
    let e = compose("services:\n  web:\n    image: \"x${UNSET?needs a value}\"\n").err();
    assert_eq!(
        e,
        "compose.yaml: services.web.image: required variable UNSET is missing a value: needs \
         a value (line 3)"
    );
}

#[test]
fn interpolation_keys_untouched_and_typed_after() {
    let f = compose(
        r#"services:
  web:
    image: busybox
    environment:
      "${KEY}": value
      "$$LITERAL": x
    ports:
      - "${PORT}:80"
    privileged: ${PRIV}
    deploy:
      replicas: ${N}
    healthcheck:
      interval: ${IV}
      retries: ${R}
    cpus: ${CPUS}
"#,
    );
    let vars = [
        ("KEY", "interpolated"),
        ("PORT", "8080"),
        ("PRIV", "true"),
        ("N", "3"),
        ("IV", "10s"),
        ("R", "5"),
        ("CPUS", "1.5"),
    ];
    let p = f.load_with(|o| o.environment = env(&vars));
    let web = &p.services["web"];
    // Keys are never interpolated.
    assert_eq!(
        web.environment,
        BTreeMap::from([
            ("$$LITERAL".into(), some("x")),
            ("${KEY}".into(), some("value")),
        ])
    );
    // Values are typed after interpolation.
    assert_eq!(web.ports, [port(80, Some(8080), None, "tcp")]);
    assert!(web.privileged);
    assert_eq!(web.replicas, 3);
    let hc = web.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, 10_000_000_000);
    assert_eq!(hc.retries, 5);
    assert_eq!(web.cpus, Some(1.5));

    // A value that does not read as its type after interpolation is an error.
    let mut bad = env(&vars);
    bad.insert("N".into(), "many".into());
    let e = f.err_with(|o| o.environment = bad).to_string();
    assert_eq!(
        e,
        "compose.yaml: services.web.deploy.replicas: must be an integer, not \"many\" (line 11)"
    );
    let mut bad = env(&vars);
    bad.insert("PRIV".into(), "perhaps".into());
    let e = f.err_with(|o| o.environment = bad).to_string();
    assert_eq!(
        e,
        "compose.yaml: services.web.privileged: invalid boolean \"perhaps\" (line 9)"
    );
}

#[test]
fn invalid_port_message() {
    let e = compose_err(
        "services:
  web:
    image: nginx
    ports:
      - \"8080:80\"
      - \"80:abc\"
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.web.ports[1]: invalid port \"80:abc\": \"abc\" is not a port \
         number (line 6)"
    );
    let e = compose_err("services:\n  web:\n    image: nginx\n    ports:\n      - \"70000\"\n");
    assert_eq!(
        e,
        "compose.yaml: services.web.ports[0]: invalid port \"70000\": \"70000\" is not a port \
         number (line 5)"
    );
    let e = compose_err(
        "services:
  web:
    image: nginx
    ports:
      - target: 80
        published: x
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.web.ports[0].published: invalid port: \"x\" is not a port \
         number (line 6)"
    );
}

#[test]
fn missing_env_file_is_an_error() {
    let f = compose(
        "services:
  web:
    image: nginx
    env_file:
      - ./web.env
",
    );
    assert_eq!(
        f.err(),
        format!(
            "compose.yaml: services.web.env_file[0]: env file {}: No such file or directory \
             (os error 2) (line 5)",
            f.abs("web.env")
        )
    );
    f.write("web.env", "A=1\n");
    assert_eq!(
        f.load().services["web"].environment,
        BTreeMap::from([("A".into(), some("1"))])
    );

    // `required: false` makes a missing file no error.
    let p = compose(
        "services:
  web:
    image: nginx
    env_file:
      - path: ./optional.env
        required: false
",
    )
    .load();
    assert!(p.services["web"].environment.is_empty());

    // --env-file that does not exist.
    let f = compose("services:\n  web:\n    image: nginx\n");
    let e = f.err_with(|o| o.env_files = vec![f.path("nope.env")]);
    match &e {
        ComposeError::Io { path, .. } => assert_eq!(path, &f.path("nope.env")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", f.abs("nope.env"))),
        "{e}"
    );

    // A malformed line names the env file and the line.
    let f = compose("services:\n  web:\n    image: nginx\n    env_file: web.env\n");
    f.write("web.env", "A=1\nB C=2\n");
    assert_eq!(
        f.err(),
        format!("{}:2: invalid variable name \"B C\"", f.abs("web.env"))
    );
}

#[test]
fn missing_required_variable_is_an_error() {
    let f = compose(
        "services:
  db:
    image: postgres
    environment:
      POSTGRES_PASSWORD: \"${DB_PASSWORD:?set DB_PASSWORD in .env}\"
",
    );
    let e = f.err_with(|_| {});
    match &e {
        ComposeError::MissingVariable {
            file,
            key,
            variable,
            message,
            line,
        } => {
            assert_eq!(file, "compose.yaml");
            assert_eq!(key, "services.db.environment.POSTGRES_PASSWORD");
            assert_eq!(variable, "DB_PASSWORD");
            assert_eq!(message, "set DB_PASSWORD in .env");
            assert_eq!(*line, Some(5));
        }
        other => panic!("expected a missing variable, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "compose.yaml: services.db.environment.POSTGRES_PASSWORD: required variable \
         DB_PASSWORD is missing a value: set DB_PASSWORD in .env (line 5)"
    );
    // Empty counts as missing for `:?`.
    assert!(f
        .err_with(|o| o.environment = env(&[("DB_PASSWORD", "")]))
        .to_string()
        .contains("required variable DB_PASSWORD is missing a value"));

    let p = f.load_with(|o| o.environment = env(&[("DB_PASSWORD", "s3cret")]));
    assert_eq!(
        p.services["db"].environment["POSTGRES_PASSWORD"],
        some("s3cret")
    );
    f.write(".env", "DB_PASSWORD=fromdotenv\n");
    assert_eq!(
        f.load().services["db"].environment["POSTGRES_PASSWORD"],
        some("fromdotenv")
    );
}

#[test]
fn networks_and_default_network() {
    let f = compose(
        "services:
  web:
    image: nginx
    networks:
      front:
        aliases: [www]
        ipv4_address: 172.28.0.10
      back:
  db:
    image: postgres
    networks: [back]
  tool:
    image: busybox
  host:
    image: busybox
    network_mode: host
  plain:
    image: busybox
    network_mode: bridge
networks:
  front:
    driver: bridge
    labels: [tier=front]
    ipam:
      config:
        - subnet: 172.28.0.0/16
          gateway: 172.28.0.1
  back:
    internal: true
    name: custom-back
  ext:
    external: true
",
    );
    let p = f.load_with(|o| o.project_name = some("myapp"));
    let s = &p.services;
    assert_eq!(
        s["web"].networks,
        BTreeMap::from([
            ("back".into(), ServiceNetwork::default()),
            (
                "front".into(),
                ServiceNetwork {
                    aliases: strings(&["www"]),
                    ipv4_address: some("172.28.0.10"),
                }
            ),
        ])
    );
    assert_eq!(names(&s["db"].networks), ["back"]);
    // A service that names no network is on the default one.
    assert_eq!(
        s["tool"].networks,
        BTreeMap::from([("default".into(), ServiceNetwork::default())])
    );
    assert!(s["host"].networks.is_empty());
    assert_eq!(s["host"].network_mode, some("host"));
    assert!(s["plain"].networks.is_empty());
    assert_eq!(s["plain"].network_mode, some("bridge"));

    assert_eq!(names(&p.networks), ["back", "default", "ext", "front"]);
    assert_eq!(
        p.networks["front"],
        Network {
            name: "myapp_front".into(),
            external: false,
            internal: false,
            driver: some("bridge"),
            labels: BTreeMap::from([("tier".into(), "front".into())]),
            subnets: vec![("172.28.0.0/16".into(), some("172.28.0.1"))],
        }
    );
    assert_eq!(p.networks["back"].name, "custom-back");
    assert!(p.networks["back"].internal);
    assert_eq!(p.networks["ext"].name, "ext");
    assert!(p.networks["ext"].external);
    assert_eq!(p.networks["default"].name, "myapp_default");

    // No service on the default network: none is made.
    let p = compose(
        "services:\n  web:\n    image: nginx\n    networks: [front]\nnetworks:\n  front: {}\n",
    )
    .load();
    assert_eq!(names(&p.networks), ["front"]);
    assert_eq!(p.networks["front"].name, "app_front");

    // The default network can be configured.
    let p = compose(
        "services:\n  web:\n    image: nginx\nnetworks:\n  default:\n    name: shared-net\n",
    )
    .load();
    assert_eq!(p.networks["default"].name, "shared-net");
    assert_eq!(names(&p.services["web"].networks), ["default"]);
}

#[test]
fn override_file_errors_name_that_file() {
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  web:\n    image: nginx\n"),
        (
            "compose.override.yaml",
            "services:\n  web:\n    ports:\n      - \"80:abc\"\n",
        ),
    ]);
    assert_eq!(
        f.err(),
        "compose.override.yaml: services.web.ports[0]: invalid port \"80:abc\": \"abc\" is not \
         a port number (line 4)"
    );
    f.write(
        "compose.override.yaml",
        "services:\n  web:\n    imagee: nginx:2\n",
    );
    assert_eq!(
        f.err(),
        "compose.override.yaml: services.web.imagee: key \"imagee\" is not supported (line 3)"
    );

    // With -f files too, the file in error is the one named.
    f.remove("compose.override.yaml");
    f.write("prod.yaml", "services:\n  web:\n    restart: sometimes\n");
    let e = f
        .err_with(|o| o.files = vec![f.path("compose.yaml"), f.path("prod.yaml")])
        .to_string();
    assert_eq!(
        e,
        "prod.yaml: services.web.restart: invalid restart policy \"sometimes\" (no, always, \
         on-failure[:N] or unless-stopped) (line 3)"
    );
    // A fragment that is not a whole service (no image) is fine in an override.
    f.write("prod.yaml", "services:\n  web:\n    restart: always\n");
    let p = f.load_with(|o| o.files = vec![f.path("compose.yaml"), f.path("prod.yaml")]);
    assert_eq!(p.services["web"].restart, some("always"));
}

#[test]
fn override_files_merge() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "name: base-name
services:
  web:
    image: nginx:1
    command: [\"a\", \"b\"]
    ports: [\"80:80\"]
    environment:
      A: \"1\"
      B: \"2\"
    volumes:
      - ./a:/data
      - /cache
    labels: [l1=x]
    dns: 1.1.1.1
    depends_on: [db]
    healthcheck:
      test: [\"CMD\", \"true\"]
      interval: 5s
  db:
    image: postgres
",
        ),
        (
            "override.yaml",
            "name: override-name
services:
  web:
    image: nginx:2
    command: c
    ports: [\"80:80\", \"443:443\"]
    environment: [B=3, C=4]
    volumes:
      - ./b:/data
    labels: {l2: y}
    dns: [8.8.8.8]
    depends_on:
      cache:
        condition: service_healthy
    healthcheck:
      test: [\"CMD\", \"false\"]
  cache:
    image: redis
",
        ),
    ]);
    let p = f.load_with(|o| o.files = vec![f.path("compose.yaml"), f.path("override.yaml")]);
    assert_eq!(
        p.config_files,
        [f.path("compose.yaml"), f.path("override.yaml")]
    );
    // The last file's name wins.
    assert_eq!(p.name, "override-name");
    assert_eq!(names(&p.services), ["cache", "db", "web"]);
    let web = &p.services["web"];
    assert_eq!(web.image, some("nginx:2"));
    assert_eq!(web.command, Some(strings(&["c"])));
    assert_eq!(
        web.ports,
        [
            port(80, Some(80), None, "tcp"),
            port(443, Some(443), None, "tcp")
        ]
    );
    assert_eq!(
        web.environment,
        BTreeMap::from([
            ("A".into(), some("1")),
            ("B".into(), some("3")),
            ("C".into(), some("4")),
        ])
    );
    // Volumes merge by target, in place.
    assert_eq!(
        web.volumes,
        [
            bind(&f.abs("b"), "/data", false),
            ServiceVolume {
                kind: VolumeKind::Volume,
                source: None,
                target: "/cache".into(),
                read_only: false,
                tmpfs_size: None,
            }
        ]
    );
    assert_eq!(
        web.labels,
        BTreeMap::from([("l1".into(), "x".into()), ("l2".into(), "y".into())])
    );
    assert_eq!(web.dns, strings(&["1.1.1.1", "8.8.8.8"]));
    assert_eq!(names(&web.depends_on), ["cache", "db"]);
    assert_eq!(web.depends_on["cache"].condition, Condition::ServiceHealthy);
    let hc = web.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, strings(&["CMD", "false"]));
    assert_eq!(hc.interval, 5_000_000_000);

    // In the other order, the base's values win.
    let p = f.load_with(|o| o.files = vec![f.path("override.yaml"), f.path("compose.yaml")]);
    assert_eq!(p.services["web"].image, some("nginx:1"));
    assert_eq!(p.name, "base-name");
    // The project directory is still the first file's.
    assert_eq!(p.working_dir, f.dir);
}

#[test]
fn port_forms() {
    let p = compose(
        r#"services:
  web:
    image: nginx
    ports:
      - "80"
      - "8080:81"
      - "127.0.0.1:8082:82/udp"
      - "127.0.0.1::83"
      - "9000-9001:90-91"
      - 84
      - "[::1]:8085:85"
      - "86-87"
      - target: 88
        published: "8088"
        host_ip: 0.0.0.0
        protocol: udp
        mode: host
      - target: 89
"#,
    )
    .load();
    assert_eq!(
        p.services["web"].ports,
        [
            port(80, None, None, "tcp"),
            port(81, Some(8080), None, "tcp"),
            port(82, Some(8082), Some("127.0.0.1"), "udp"),
            port(83, None, Some("127.0.0.1"), "tcp"),
            port(90, Some(9000), None, "tcp"),
            port(91, Some(9001), None, "tcp"),
            port(84, None, None, "tcp"),
            port(85, Some(8085), Some("::1"), "tcp"),
            port(86, None, None, "tcp"),
            port(87, None, None, "tcp"),
            port(88, Some(8088), Some("0.0.0.0"), "udp"),
            port(89, None, None, "tcp"),
        ]
    );

    for (spec, message) in [
        ("\"80/sctp\"", "unsupported protocol \"sctp\""),
        ("\"8000-8002:80-81\"", "the host port range must be as long"),
        ("\"not-an-ip:80:80\"", "the host IP is not an IP address"),
        ("{published: 80}", "`target` is required"),
    ] {
        let e = compose_err(&format!(
            "services:\n  web:\n    image: nginx\n    ports:\n      - {spec}\n"
        ));
        assert!(e.starts_with("compose.yaml: services.web.ports[0]"), "{e}");
        assert!(e.contains(message), "{spec}: {e}");
    }
}

#[test]
fn profiles_filter_services() {
    let f = compose(
        "services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
  tools:
    image: busybox
    profiles: [tools, debug]
  other:
    image: busybox
    profiles: [other]
",
    );
    let enabled = |edit: &dyn Fn(&mut LoadOptions)| -> Vec<String> {
        let p = f.load_with(edit);
        p.services.keys().cloned().collect()
    };
    assert_eq!(enabled(&|_| {}), ["web"]);
    assert_eq!(
        enabled(&|o| o.profiles = strings(&["debug"])),
        ["debug", "tools", "web"]
    );
    assert_eq!(
        enabled(&|o| o.profiles = strings(&["tools"])),
        ["tools", "web"]
    );
    assert_eq!(
        enabled(&|o| o.environment = env(&[("COMPOSE_PROFILES", "other, tools")])),
        ["other", "tools", "web"]
    );
    assert_eq!(
        enabled(&|o| o.profiles = strings(&["*"])),
        ["debug", "other", "tools", "web"]
    );
    // As in docker compose, --profile replaces COMPOSE_PROFILES.
    assert_eq!(
        enabled(&|o| {
            o.profiles = strings(&["debug"]);
            o.environment = env(&[("COMPOSE_PROFILES", "other")]);
        }),
        ["debug", "tools", "web"]
    );
    // COMPOSE_PROFILES from .env.
    f.write(".env", "COMPOSE_PROFILES=other\n");
    assert_eq!(enabled(&|_| {}), ["other", "web"]);
    // The model keeps the service's profiles.
    let p = f.load();
    assert_eq!(p.services["other"].profiles, strings(&["other"]));
}

#[test]
fn project_name_precedence() {
    let f = compose("name: from-file\nservices:\n  web:\n    image: nginx\n");
    assert_eq!(f.load().name, "from-file");
    assert_eq!(
        f.load_with(|o| o.environment = env(&[("COMPOSE_PROJECT_NAME", "from-env")]))
            .name,
        "from-env"
    );
    // An empty COMPOSE_PROJECT_NAME is no name.
    assert_eq!(
        f.load_with(|o| o.environment = env(&[("COMPOSE_PROJECT_NAME", "")]))
            .name,
        "from-file"
    );
    assert_eq!(
        f.load_with(|o| {
            o.project_name = some("from-flag");
            o.environment = env(&[("COMPOSE_PROJECT_NAME", "from-env")]);
        })
        .name,
        "from-flag"
    );
    f.write(".env", "COMPOSE_PROJECT_NAME=from-dotenv\n");
    assert_eq!(f.load().name, "from-dotenv");

    // Without any: the directory's name, normalised.
    let f = Fixture::named(
        "My App_2.0",
        &[("compose.yaml", "services:\n  web:\n    image: nginx\n")],
    );
    let p = f.load();
    assert_eq!(p.name, "myapp_20");
    assert_eq!(p.networks["default"].name, "myapp_20_default");

    // `name:` is interpolated.
    let f = compose("name: ${PROJ:-interp}\nservices:\n  web:\n    image: nginx\n");
    assert_eq!(f.load().name, "interp");
    assert_eq!(
        f.load_with(|o| o.environment = env(&[("PROJ", "given")]))
            .name,
        "given"
    );

    // Unusable names are errors saying where they came from.
    let e = f.err_with(|o| o.project_name = some("Bad Name"));
    assert!(matches!(e, ComposeError::ProjectName { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "invalid project name \"Bad Name\" (from -p): it must contain only lower-case letters, \
         digits, '-' and '_', and start with a letter or a digit"
    );
    let e = compose_err("name: Upper\nservices:\n  web:\n    image: nginx\n");
    assert!(
        e.starts_with("invalid project name \"Upper\" (from compose.yaml: name)"),
        "{e}"
    );
    let e = f
        .err_with(|o| o.environment = env(&[("COMPOSE_PROJECT_NAME", "-dash")]))
        .to_string();
    assert!(e.contains("(from COMPOSE_PROJECT_NAME)"), "{e}");
    let f = Fixture::named(
        "___",
        &[("compose.yaml", "services:\n  web:\n    image: nginx\n")],
    );
    assert!(
        f.err()
            .starts_with("invalid project name \"___\" (from the project directory's name)"),
        "{}",
        f.err()
    );
}

#[test]
fn required_dependency_on_disabled_service_is_an_error() {
    let f = compose(
        "services:
  web:
    image: nginx
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
        required: false
  db:
    image: postgres
    profiles: [db]
  cache:
    image: redis
    profiles: [cache]
",
    );
    assert_eq!(
        f.err(),
        "compose.yaml: services.web.depends_on.db: depends on service \"db\", which is \
         disabled by the active profiles (enable one of its profiles, or mark the dependency \
         `required: false`) (line 5)"
    );
    // The optional dependency is dropped while its service is off...
    let p = f.load_with(|o| o.profiles = strings(&["db"]));
    assert_eq!(names(&p.services), ["db", "web"]);
    assert_eq!(names(&p.services["web"].depends_on), ["db"]);
    // ...and kept when it is on.
    let p = f.load_with(|o| o.profiles = strings(&["db", "cache"]));
    assert_eq!(names(&p.services["web"].depends_on), ["cache", "db"]);

    // network_mode: service:<disabled> cannot work either.
    let e = compose_err(
        "services:
  web:
    image: nginx
    network_mode: service:vpn
  vpn:
    image: vpn
    profiles: [vpn]
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.web.network_mode: service \"vpn\" is disabled by the active \
         profiles (line 4)"
    );
}

#[test]
fn reset_tag_in_override() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:
  web:
    image: nginx
    ports: [\"80:80\"]
    environment:
      A: \"1\"
      B: \"2\"
    labels:
      keep: \"no\"
    volumes:
      - ./a:/a
  tool:
    image: busybox
",
        ),
        (
            "compose.override.yaml",
            "services:
  web:
    ports: !reset []
    environment:
      B: !reset
    labels: !override
      only: \"yes\"
    volumes: !override
      - ./b:/b
  tool: !reset
",
        ),
    ]);
    let p = f.load();
    assert_eq!(names(&p.services), ["web"]);
    let web = &p.services["web"];
    assert!(web.ports.is_empty());
    assert_eq!(web.environment, BTreeMap::from([("A".into(), some("1"))]));
    assert_eq!(web.labels, BTreeMap::from([("only".into(), "yes".into())]));
    assert_eq!(web.volumes, [bind(&f.abs("b"), "/b", false)]);

    // Without the tags, the same values merge.
    f.write(
        "compose.override.yaml",
        "services:\n  web:\n    labels:\n      only: \"yes\"\n    volumes:\n      - ./b:/b\n",
    );
    let web = f.load().services.remove("web").unwrap();
    assert_eq!(web.labels.len(), 2);
    assert_eq!(web.volumes.len(), 2);
    assert_eq!(web.ports.len(), 1);
}

#[test]
fn scale_and_replicas() {
    let p = compose(
        "services:
  a:
    image: x
    scale: 3
  b:
    image: x
    deploy:
      replicas: 2
  c:
    image: x
  d:
    image: x
    scale: 0
  e:
    image: x
    scale: \"2\"
    deploy:
      replicas: 2
",
    )
    .load();
    let replicas: Vec<(&str, u32)> = p
        .services
        .iter()
        .map(|(n, s)| (n.as_str(), s.replicas))
        .collect();
    assert_eq!(replicas, [("a", 3), ("b", 2), ("c", 1), ("d", 0), ("e", 2)]);

    // Two different counts: docker compose refuses them.
    let e = compose_err(
        "services:
  web:
    image: x
    scale: 2
    deploy:
      replicas: 3
",
    );
    assert_eq!(
        e,
        "compose.yaml: services.web.scale: can't set distinct values on 'scale' (2) and \
         'deploy.replicas' (3) (line 4)"
    );
    // Also when they come from different files.
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: x\n    deploy:\n      replicas: 3\n",
        ),
        ("compose.override.yaml", "services:\n  web:\n    scale: 2\n"),
    ]);
    assert!(
        f.err()
            .contains("can't set distinct values on 'scale' (2) and 'deploy.replicas' (3)"),
        "{}",
        f.err()
    );
    // An override of the same key just replaces it.
    f.write(
        "compose.override.yaml",
        "services:\n  web:\n    deploy:\n      replicas: 5\n",
    );
    assert_eq!(f.load().services["web"].replicas, 5);
    // A disabled service is not checked for it.
    let p = compose(
        "services:
  web:
    image: x
  off:
    image: x
    profiles: [off]
    scale: 2
    deploy:
      replicas: 3
",
    )
    .load();
    assert_eq!(names(&p.services), ["web"]);

    let e = compose_err("services:\n  web:\n    image: x\n    scale: -1\n");
    assert_eq!(
        e,
        "compose.yaml: services.web.scale: -1 is out of range (line 4)"
    );
}

#[test]
fn secret_from_missing_variable_is_an_error() {
    let f = compose(
        "services:
  web:
    image: nginx
    secrets: [token]
secrets:
  token:
    environment: API_TOKEN
",
    );
    assert_eq!(
        f.err(),
        "compose.yaml: secrets.token.environment: environment variable API_TOKEN is not set \
         (line 7)"
    );
    let p = f.load_with(|o| o.environment = env(&[("API_TOKEN", "t0k3n")]));
    assert_eq!(p.secrets["token"], FileObject::Content("t0k3n".into()));
    assert_eq!(
        p.services["web"].secrets,
        [FileMount {
            source: "token".into(),
            target: "/run/secrets/token".into()
        }]
    );
    // From .env too.
    f.write(".env", "API_TOKEN=dot\n");
    assert_eq!(f.load().secrets["token"], FileObject::Content("dot".into()));

    let e = compose_err(
        "services:\n  web:\n    image: nginx\nconfigs:\n  cfg:\n    environment: CFG_VALUE\n",
    );
    assert_eq!(
        e,
        "compose.yaml: configs.cfg.environment: environment variable CFG_VALUE is not set \
         (line 6)"
    );
}

#[test]
fn service_options_are_normalised() {
    let f = Fixture::new(&[
        ("web.env", "A=from-file\nD=4\n"),
        ("cert.pem", "---\n"),
        (
            "compose.yaml",
            r#"services:
  web:
    image: nginx
    build:
      context: ./app
      dockerfile: Dockerfile.dev
      target: prod
      args:
        - VERSION=1
        - FROM_ENV
    command: sh -c "echo 'hello world'"
    entrypoint: /entry.sh --flag
    environment:
      - A=1
      - B
      - C=x=y
      - NOT_SET
    env_file: ./web.env
    expose: ["80", 81/udp]
    tmpfs: /run
    healthcheck:
      test: curl -f http://localhost
      interval: 1m30s
      timeout: 10s
      retries: 3
      start_period: 500ms
    deploy:
      restart_policy:
        condition: on-failure
        max_attempts: 5
      resources:
        limits:
          memory: 512m
          cpus: "0.5"
    stop_grace_period: 1m
    shm_size: 64m
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
      nproc: 65535
    sysctls: [net.core.somaxconn=1024]
    extra_hosts:
      - "host1:10.0.0.1"
      - "host2=10.0.0.2"
    dns: 8.8.8.8
    labels: [com.example=1]
    logging:
      driver: json-file
      options:
        max-size: 10m
    secrets:
      - token
      - source: cert
        target: server.crt
    configs:
      - app_cfg
      - source: app_cfg
        target: /etc/app.conf
    init: "true"
    tty: true
    user: "1000:1000"
  worker:
    image: busybox
    restart: unless-stopped
    environment:
      PORT: 8080
      DEBUG: true
    healthcheck:
      disable: true
    deploy:
      restart_policy:
        condition: none
    extra_hosts:
      db: 10.0.0.3
  always:
    image: busybox
    deploy:
      restart_policy: {}
secrets:
  token:
    environment: TOKEN
  cert:
    file: ./cert.pem
configs:
  app_cfg:
    content: debug=true
"#,
        ),
    ]);
    let p = f.load_with(|o| {
        o.environment = env(&[("B", "bee"), ("FROM_ENV", "argval"), ("TOKEN", "s3cret")])
    });
    let web = &p.services["web"];
    assert_eq!(
        web.build,
        Some(Build {
            context: f.path("app"),
            dockerfile: "Dockerfile.dev".into(),
            args: BTreeMap::from([
                ("FROM_ENV".into(), some("argval")),
                ("VERSION".into(), some("1")),
            ]),
            target: some("prod"),
            labels: BTreeMap::new(),
        })
    );
    assert_eq!(
        web.command,
        Some(strings(&["sh", "-c", "echo 'hello world'"]))
    );
    assert_eq!(web.entrypoint, Some(strings(&["/entry.sh", "--flag"])));
    // env_file first, `environment` over it; a bare name takes the CLI's value.
    assert_eq!(
        web.environment,
        BTreeMap::from([
            ("A".into(), some("1")),
            ("B".into(), some("bee")),
            ("C".into(), some("x=y")),
            ("D".into(), some("4")),
            ("NOT_SET".into(), None),
        ])
    );
    assert_eq!(web.expose, strings(&["80", "81/udp"]));
    assert_eq!(web.tmpfs, strings(&["/run"]));
    assert_eq!(
        web.healthcheck,
        Some(Healthcheck {
            test: strings(&["CMD-SHELL", "curl -f http://localhost"]),
            interval: 90_000_000_000,
            timeout: 10_000_000_000,
            start_period: 500_000_000,
            start_interval: 0,
            retries: 3,
        })
    );
    assert_eq!(web.restart, some("on-failure:5"));
    assert_eq!(web.mem_limit, Some(512 * 1024 * 1024));
    assert_eq!(web.cpus, Some(0.5));
    assert_eq!(web.stop_grace_period, Some(60));
    assert_eq!(web.shm_size, Some(64 * 1024 * 1024));
    assert_eq!(
        web.ulimits,
        BTreeMap::from([
            (
                "nofile".into(),
                Ulimit {
                    soft: 1024,
                    hard: 2048
                }
            ),
            (
                "nproc".into(),
                Ulimit {
                    soft: 65535,
                    hard: 65535
                }
            ),
        ])
    );
    assert_eq!(
        web.sysctls,
        BTreeMap::from([("net.core.somaxconn".into(), "1024".into())])
    );
    assert_eq!(
        web.extra_hosts,
        strings(&["host1:10.0.0.1", "host2:10.0.0.2"])
    );
    assert_eq!(web.dns, strings(&["8.8.8.8"]));
    assert_eq!(
        web.labels,
        BTreeMap::from([("com.example".into(), "1".into())])
    );
    assert_eq!(
        web.logging,
        Some(Logging {
            driver: some("json-file"),
            options: BTreeMap::from([("max-size".into(), "10m".into())]),
        })
    );
    let mount = |source: &str, target: &str| FileMount {
        source: source.into(),
        target: target.into(),
    };
    assert_eq!(
        web.secrets,
        [
            mount("token", "/run/secrets/token"),
            mount("cert", "/run/secrets/server.crt")
        ]
    );
    assert_eq!(
        web.configs,
        [
            mount("app_cfg", "/app_cfg"),
            mount("app_cfg", "/etc/app.conf")
        ]
    );
    assert_eq!(web.init, Some(true));
    assert!(web.tty);
    assert!(!web.privileged);
    assert_eq!(web.user, some("1000:1000"));
    assert_eq!(web.replicas, 1);

    let worker = &p.services["worker"];
    // An explicit `restart` wins over deploy.restart_policy.
    assert_eq!(worker.restart, some("unless-stopped"));
    assert_eq!(
        worker.environment,
        BTreeMap::from([
            ("DEBUG".into(), some("true")),
            ("PORT".into(), some("8080")),
        ])
    );
    assert_eq!(
        worker.healthcheck.as_ref().unwrap().test,
        strings(&["NONE"])
    );
    assert_eq!(worker.extra_hosts, strings(&["db:10.0.0.3"]));
    assert_eq!(p.services["always"].restart, some("always"));

    assert_eq!(p.secrets["token"], FileObject::Content("s3cret".into()));
    assert_eq!(p.secrets["cert"], FileObject::File(f.path("cert.pem")));
    assert_eq!(
        p.configs["app_cfg"],
        FileObject::Content("debug=true".into())
    );
}

#[test]
fn start_order_is_alphabetical_among_peers() {
    let p = compose(
        "services:
  zeta:
    image: x
  beta:
    image: x
    depends_on: [zeta]
  alpha:
    image: x
  mid:
    image: x
",
    )
    .load();
    assert_eq!(p.start_order(), strings(&["alpha", "mid", "zeta", "beta"]));

    // Peers at each level are taken alphabetically, whatever the file order.
    let p = compose(
        "services:
  web:
    image: x
    depends_on: [db, cache]
  db:
    image: x
  cache:
    image: x
  admin:
    image: x
    depends_on: [db]
",
    )
    .load();
    assert_eq!(p.start_order(), strings(&["cache", "db", "admin", "web"]));

    // A hand-built project with a cycle: its services go last, alphabetically;
    // a dependency that is not in the project is ignored.
    let svc = |deps: &[&str]| Service {
        depends_on: deps
            .iter()
            .map(|d| (d.to_string(), dep(Condition::ServiceStarted, false, true)))
            .collect(),
        ..Service::default()
    };
    let p = Project {
        services: BTreeMap::from([
            ("x".into(), svc(&["y"])),
            ("y".into(), svc(&["x"])),
            ("z".into(), svc(&["missing"])),
        ]),
        ..Project::default()
    };
    assert_eq!(p.start_order(), strings(&["z", "x", "y"]));
}

#[test]
fn to_yaml_renders_the_model() {
    let f = Fixture::new(&[
        ("cert.pem", "x\n"),
        (
            "compose.yaml",
            "name: demo
services:
  web:
    image: nginx
    environment:
      - UNSET_VAR
      - SET=1
    ports: [\"8080:80\"]
    secrets: [token, cert]
  db:
    image: postgres
secrets:
  token:
    environment: TOKEN
  cert:
    file: ./cert.pem
",
        ),
    ]);
    let p = f.load_with(|o| o.environment = env(&[("TOKEN", "very-secret-value")]));
    let text = p.to_yaml();
    assert!(!text.contains("very-secret-value"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");

    let v: serde_norway::Value = serde_norway::from_str(&text).expect("to_yaml is YAML");
    assert_eq!(v["name"].as_str(), Some("demo"));
    assert_eq!(
        v["working_dir"].as_str(),
        Some(f.dir.to_string_lossy().as_ref())
    );
    let services = v["services"].as_mapping().unwrap();
    let keys: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(keys, ["db", "web"]);
    let web = &v["services"]["web"];
    assert_eq!(web["image"].as_str(), Some("nginx"));
    assert_eq!(web["replicas"].as_u64(), Some(1));
    assert_eq!(web["ports"][0]["target"].as_u64(), Some(80));
    assert_eq!(web["ports"][0]["published"].as_str(), Some("8080"));
    assert_eq!(web["ports"][0]["protocol"].as_str(), Some("tcp"));
    // Unset options are left out...
    let web_map = web.as_mapping().unwrap();
    for absent in [
        "hostname",
        "build",
        "command",
        "healthcheck",
        "cap_add",
        "ulimits",
    ] {
        assert!(!web_map.contains_key(absent), "{absent} in {text}");
    }
    // ...but entries of name maps are kept, even empty or null.
    assert!(web["environment"]["UNSET_VAR"].is_null());
    assert!(web["environment"]
        .as_mapping()
        .unwrap()
        .contains_key("UNSET_VAR"));
    assert_eq!(web["environment"]["SET"].as_str(), Some("1"));
    assert!(web["networks"]["default"].is_mapping());
    assert_eq!(
        v["networks"]["default"]["name"].as_str(),
        Some("demo_default")
    );
    // Secrets render as file: / content: mappings, the content redacted.
    assert_eq!(
        v["secrets"]["token"]["content"].as_str(),
        Some("<redacted>")
    );
    assert_eq!(
        v["secrets"]["cert"]["file"].as_str(),
        Some(f.abs("cert.pem").as_str())
    );
    // The model itself keeps the value.
    assert_eq!(
        p.secrets["token"],
        FileObject::Content("very-secret-value".into())
    );
}

#[test]
fn undefined_references_are_errors() {
    let cases = [
        (
            "services:\n  web:\n    image: x\n    depends_on: [ghost]\n",
            "compose.yaml: services.web.depends_on.ghost: depends on undefined service \"ghost\" \
             (line 4)",
        ),
        (
            "services:\n  web:\n    image: x\n    networks: [ghostnet]\n",
            "compose.yaml: services.web.networks.ghostnet: refers to undefined network \
             \"ghostnet\" (line 4)",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes:\n      - data:/data\n",
            "compose.yaml: services.web.volumes[0]: refers to undefined volume \"data\" (line 5)",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes:\n      - type: volume\n        \
             source: data\n        target: /data\n",
            "compose.yaml: services.web.volumes[0]: refers to undefined volume \"data\" (line 5)",
        ),
        (
            "services:\n  web:\n    image: x\n    secrets:\n      - s\n",
            "compose.yaml: services.web.secrets[0]: refers to undefined secret \"s\" (line 5)",
        ),
        (
            "services:\n  web:\n    image: x\n    configs:\n      - c\n",
            "compose.yaml: services.web.configs[0]: refers to undefined config \"c\" (line 5)",
        ),
        (
            "services:\n  web:\n    image: x\n    network_mode: service:ghost\n",
            "compose.yaml: services.web.network_mode: service \"ghost\" is not defined (line 4)",
        ),
        (
            "services:\n  web:\n    command: x\n",
            "compose.yaml: services.web: the service has neither an image nor a build context \
             (line 2)",
        ),
        (
            "services:\n  web:\n    image: x\n    network_mode: host\n    networks: [front]\n\
             networks:\n  front: {}\n",
            "compose.yaml: services.web.networks: cannot be combined with network_mode (line 5)",
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(compose_err(yaml), expected, "{yaml}");
    }
    // Defined, the same references load.
    let p = compose(
        "services:
  web:
    image: x
    depends_on: [db]
    networks: [front]
    volumes: [data:/data]
  db:
    image: y
networks:
  front: {}
volumes:
  data: {}
",
    )
    .load();
    assert_eq!(p.volumes["data"].name, "app_data");
}

#[test]
fn unescaped_dollar_is_an_error() {
    let e = compose_err("services:\n  web:\n    image: busybox\n    command: echo costs $5\n");
    assert_eq!(
        e,
        "compose.yaml: services.web.command: invalid interpolation format \"echo costs $5\"; \
         you may need to escape any $ with another $ (line 4)"
    );
    for bad in ["\"price$\"", "\"${\"", "\"${}\"", "\"${1A}\"", "\"${A B}\""] {
        let e = compose_err(&format!(
            "services:\n  web:\n    image: busybox\n    command: {bad}\n"
        ));
        assert!(e.contains("invalid interpolation format"), "{bad}: {e}");
        assert!(e.starts_with("compose.yaml: services.web.command: "), "{e}");
    }
    // Escaped, the dollar is kept.
    let p = compose("services:\n  web:\n    image: busybox\n    command: echo costs $$5\n").load();
    assert_eq!(
        p.services["web"].command,
        Some(strings(&["echo", "costs", "$5"]))
    );
}

#[test]
fn unknown_keys_name_their_path() {
    let cases = [
        (
            "services:\n  web:\n    imagee: nginx\n",
            "compose.yaml: services.web.imagee: key \"imagee\" is not supported (line 3)",
        ),
        (
            "service:\n  web:\n    image: nginx\n",
            "compose.yaml: service: key \"service\" is not supported (line 1)",
        ),
        (
            "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [CMD, x]\n      \
             intervall: 5s\n",
            "compose.yaml: services.web.healthcheck.intervall: key \"intervall\" is not \
             supported (line 6)",
        ),
        (
            "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        limits:\n          \
             gpus: 1\n",
            "compose.yaml: services.web.deploy.resources.limits.gpus: key \"gpus\" is not \
             supported (line 7)",
        ),
        (
            "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        \
             publish: 80\n",
            "compose.yaml: services.web.ports[0].publish: key \"publish\" is not supported \
             (line 6)",
        ),
        (
            "services:\n  web:\n    image: nginx\nnetworks:\n  front:\n    drivr: bridge\n",
            "compose.yaml: networks.front.drivr: key \"drivr\" is not supported (line 6)",
        ),
        (
            "services:\n  web:\n    image: nginx\n    depends_on:\n      db:\n        \
             condition: service_started\n        wait: true\n  db:\n    image: x\n",
            "compose.yaml: services.web.depends_on.db.wait: key \"wait\" is not supported \
             (line 7)",
        ),
    ];
    for (yaml, expected) in cases {
        let e = compose(yaml).err_with(|_| {});
        assert!(
            matches!(e, ComposeError::UnsupportedKey { .. }),
            "{yaml}: {e:?}"
        );
        assert_eq!(e.to_string(), expected, "{yaml}");
    }
    // `x-` keys are extensions, not unknown keys; `version` is obsolete but accepted.
    let p = compose(
        "version: \"3.8\"\nx-top: 1\nservices:\n  web:\n    image: nginx\n    x-mine: 1\n    \
         healthcheck:\n      test: [CMD, x]\n      x-hc: 2\n",
    )
    .load();
    assert_eq!(names(&p.services), ["web"]);
}

#[test]
fn volume_forms() {
    let f = compose(
        "services:
  web:
    image: busybox
    volumes:
      - ./data:/data:ro
      - /abs/path:/abs
      - named:/named
      - /anon
      - ../up:/up:rw,z
      - ~/cache:/cache
      - type: bind
        source: ./cfg
        target: /cfg
        read_only: true
      - type: volume
        source: named
        target: /named2
      - type: volume
        target: /anon2
      - type: tmpfs
        target: /tmp
        tmpfs:
          size: 64m
volumes:
  named:
    driver_opts:
      type: none
  outside:
    external: true
",
    );
    let p = f.load_with(|o| o.environment = env(&[("HOME", "/home/tester")]));
    let volume = |source: Option<&str>, target: &str| ServiceVolume {
        kind: VolumeKind::Volume,
        source: source.map(String::from),
        target: target.into(),
        read_only: false,
        tmpfs_size: None,
    };
    let up = f.dir.parent().unwrap().join("up");
    assert_eq!(
        p.services["web"].volumes,
        [
            bind(&f.abs("data"), "/data", true),
            bind("/abs/path", "/abs", false),
            volume(Some("named"), "/named"),
            volume(None, "/anon"),
            bind(&up.to_string_lossy(), "/up", false),
            bind("/home/tester/cache", "/cache", false),
            bind(&f.abs("cfg"), "/cfg", true),
            volume(Some("named"), "/named2"),
            volume(None, "/anon2"),
            ServiceVolume {
                kind: VolumeKind::Tmpfs,
                source: None,
                target: "/tmp".into(),
                read_only: false,
                tmpfs_size: Some(64 * 1024 * 1024),
            },
        ]
    );
    assert_eq!(
        p.volumes["named"],
        Volume {
            name: "app_named".into(),
            external: false,
            driver: None,
            driver_opts: BTreeMap::from([("type".into(), "none".into())]),
            labels: BTreeMap::new(),
        }
    );
    assert_eq!(p.volumes["outside"].name, "outside");
    assert!(p.volumes["outside"].external);

    for (spec, message) in [
        ("./x:/y:bogus", "unknown option \"bogus\""),
        ("./x:relative", "the container path must be absolute"),
        ("a:b:c:d", "too many colons"),
        ("bad$$name:/x", "invalid volume name \"bad$name\""),
        (
            "{type: tmpfs, source: x, target: /t}",
            "a tmpfs mount takes no `source`",
        ),
        ("{type: bind, target: /t}", "a bind mount needs a `source`"),
        (
            "{type: npipe, source: x, target: /t}",
            "volume type \"npipe\" is not supported",
        ),
    ] {
        let e = compose_err(&format!(
            "services:\n  web:\n    image: busybox\n    volumes:\n      - {spec}\n"
        ));
        assert!(
            e.starts_with("compose.yaml: services.web.volumes[0]"),
            "{e}"
        );
        assert!(e.contains(message), "{spec}: {e}");
    }
    // `~` needs HOME.
    let e = compose_err("services:\n  web:\n    image: busybox\n    volumes:\n      - ~/c:/c\n");
    assert!(e.contains("HOME is not set"), "{e}");
}

#[test]
fn working_dir_defaults_to_first_file_dir() {
    let root = tempfile::tempdir().unwrap();
    let sub = root.path().join("sub");
    let other = root.path().join("other");
    fs::create_dir_all(&sub).unwrap();
    fs::create_dir_all(&other).unwrap();
    fs::write(
        sub.join("compose.yaml"),
        "services:\n  web:\n    image: nginx:${TAG}\n    build: .\n    volumes:\n      - ./data:/data\n",
    )
    .unwrap();
    fs::write(sub.join(".env"), "TAG=fromsub\n").unwrap();
    fs::write(
        other.join("override.yaml"),
        "services:\n  web:\n    volumes:\n      - ./logs:/logs\n",
    )
    .unwrap();

    let files = vec![sub.join("compose.yaml"), other.join("override.yaml")];
    let p = load(&LoadOptions {
        files: files.clone(),
        ..LoadOptions::default()
    })
    .expect("loads");
    assert_eq!(p.working_dir, sub);
    assert_eq!(p.name, "sub");
    assert_eq!(p.config_files, files);
    let web = &p.services["web"];
    // .env comes from the project directory.
    assert_eq!(web.image, some("nginx:fromsub"));
    assert_eq!(web.build.as_ref().unwrap().context, sub);
    // Relative paths of every file resolve against the project directory.
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    assert_eq!(
        web.volumes,
        [
            bind(&s(sub.join("data")), "/data", false),
            bind(&s(sub.join("logs")), "/logs", false),
        ]
    );

    // An explicit project directory wins.
    let p = load(&LoadOptions {
        files,
        working_dir: Some(root.path().to_path_buf()),
        environment: env(&[("TAG", "given")]),
        ..LoadOptions::default()
    })
    .expect("loads");
    assert_eq!(p.working_dir, root.path());
    assert_eq!(p.services["web"].image, some("nginx:given"));
    assert_eq!(
        p.services["web"].volumes[0].source,
        Some(s(root.path().join("data")))
    );
    assert_eq!(
        p.services["web"].build.as_ref().unwrap().context,
        root.path()
    );
}

#[test]
fn wrong_types_and_values() {
    let service = |body: &str| format!("services:\n  web:\n    image: nginx\n{body}");
    let cases: Vec<(String, &str)> = vec![
        (
            service("    privileged: maybe\n"),
            "services.web.privileged: invalid boolean \"maybe\" (line 4)",
        ),
        (
            service("    ports: 80\n"),
            "services.web.ports: must be a list, not a number (line 4)",
        ),
        (
            service("    restart: sometimes\n"),
            "services.web.restart: invalid restart policy \"sometimes\"",
        ),
        (
            service("    depends_on:\n      db:\n        condition: service_ready\n"),
            "services.web.depends_on.db.condition: invalid condition \"service_ready\"",
        ),
        (
            service("    depends_on: db\n"),
            "services.web.depends_on: must be a list or a mapping, not a string",
        ),
        (
            service("    mem_limit: lots\n"),
            "services.web.mem_limit: invalid size \"lots\" (line 4)",
        ),
        (
            service("    healthcheck:\n      interval: 10x\n"),
            "services.web.healthcheck.interval: invalid duration \"10x\" (line 5)",
        ),
        (
            service("    healthcheck:\n      test: [curl, x]\n"),
            "services.web.healthcheck.test: a test list must start with \"CMD\", \"CMD-SHELL\" \
             or \"NONE\"",
        ),
        (
            service("    environment: 42\n"),
            "services.web.environment: must be a mapping or a list, not a number",
        ),
        (
            service("    cpus: -1\n"),
            "services.web.cpus: must be a non-negative number, not -1",
        ),
        (
            service("    volumes: [42]\n"),
            "services.web.volumes[0]: a volume must be a string or a mapping, not a number",
        ),
        (
            service("    command: {a: b}\n"),
            "services.web.command: must be a list, not a mapping",
        ),
        (
            service("    network_mode: \"service:\"\n"),
            "services.web.network_mode: invalid network_mode \"service:\"",
        ),
        (
            service("    sysctls: [net.ipv4.ip_forward]\n"),
            "services.web.sysctls.net.ipv4.ip_forward: a sysctl needs a value",
        ),
        (
            service("    extra_hosts: [nohost]\n"),
            "services.web.extra_hosts[0]: invalid extra host \"nohost\" (host:ip)",
        ),
        (
            service("    deploy:\n      restart_policy:\n        condition: sometimes\n"),
            "services.web.deploy.restart_policy.condition: invalid restart condition \"sometimes\"",
        ),
        (
            "services:\n  web: nginx\n".to_string(),
            "services.web: a service must be a mapping, not a string (line 2)",
        ),
        (
            "services: [web]\n".to_string(),
            "services: must be a mapping, not a list (line 1)",
        ),
        (
            "name: [x]\nservices:\n  web:\n    image: x\n".to_string(),
            "name: must be a string (line 1)",
        ),
        (
            "- services\n".to_string(),
            "the top level must be a mapping, not a list",
        ),
        (
            "services:\n  web:\n    image: x\nsecrets:\n  s:\n    file: a\n    environment: B\n"
                .to_string(),
            "secrets.s: exactly one of file, environment must be set (line 5)",
        ),
        (
            "services:\n  web:\n    image: x\nnetworks:\n  n:\n    ipam:\n      driver: other\n"
                .to_string(),
            "networks.n.ipam.driver: IPAM driver \"other\" is not supported",
        ),
    ];
    for (yaml, expected) in cases {
        let e = compose_err(&yaml);
        let expected = format!("compose.yaml: {expected}");
        assert!(
            e.starts_with(&expected),
            "{yaml}\n got: {e}\nwant: {expected}"
        );
    }
}

#[test]
fn yaml_syntax_error_names_file() {
    let f = compose("services:\n  web:\n    image: nginx\n    ports: [\"80:80\"\n  db:\n");
    let e = f.err_with(|_| {});
    match &e {
        ComposeError::Syntax { file, line, .. } => {
            assert_eq!(file, "compose.yaml");
            assert!(line.is_some_and(|l| l >= 4), "{line:?}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(e.to_string().starts_with("compose.yaml: "), "{e}");
    assert!(e.to_string().contains("line"), "{e}");

    // In an override file, that file is named.
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  web:\n    image: nginx\n"),
        ("compose.override.yaml", "services:\n  web:\n   image: [\n"),
    ]);
    let e = f.err_with(|_| {});
    assert!(
        matches!(&e, ComposeError::Syntax { file, .. } if file == "compose.override.yaml"),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("compose.override.yaml: "), "{e}");
    // A file outside the project directory is named by its full path.
    let elsewhere = tempfile::tempdir().unwrap();
    let bad = elsewhere.path().join("bad.yaml");
    fs::write(&bad, "services: {web: [}\n").unwrap();
    let e = f.err_with(|o| o.files = vec![f.path("compose.yaml"), bad.clone()]);
    assert!(
        e.to_string().starts_with(&format!("{}: ", bad.display())),
        "{e}"
    );
}
