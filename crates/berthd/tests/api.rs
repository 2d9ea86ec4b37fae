//! The Docker Engine API as raw HTTP: versioned paths, negotiation headers, and
//! docker-style errors for bad input.

mod common;

use common::Daemon;

#[test]
fn ping_and_version_negotiation() {
    let d = Daemon::start();
    for path in ["/_ping", "/v1.24/_ping", "/v1.45/_ping"] {
        let (status, head, body) = d.http("GET", path, None);
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, "OK");
        assert!(
            head.to_ascii_lowercase().contains("api-version: 1.45"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("ostype: linux"),
            "{head}"
        );
    }
    let (status, head, body) = d.http("HEAD", "/_ping", None);
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(head.to_ascii_lowercase().contains("api-version"));
    let (status, _, body) = d.http("GET", "/v1.45/version", None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("version JSON");
    assert_eq!(v["ApiVersion"], "1.45");
    assert_eq!(v["Os"], "linux");
    let (status, _, body) = d.http("GET", "/v1.12/version", None);
    assert_eq!(status, 400);
    assert!(body.contains("too old"), "{body}");
}

fn message(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    v["message"].as_str().expect("message field").to_string()
}

#[test]
fn errors_are_docker_json_with_the_right_status() {
    let d = Daemon::start();
    d.import_busybox();
    let (s, _, b) = d.http("GET", "/containers/nope/json", None);
    assert_eq!((s, message(&b).as_str()), (404, "No such container: nope"));
    let (s, _, b) = d.http("GET", "/images/nope:1/json", None);
    assert_eq!((s, message(&b).as_str()), (404, "No such image: nope:1"));
    let (s, _, b) = d.http("GET", "/no/such/endpoint", None);
    assert_eq!(s, 404);
    message(&b);
    let (s, _, b) = d.http("POST", "/containers/create", Some("{not json"));
    assert_eq!(s, 400);
    assert!(message(&b).contains("invalid JSON"));
    let (s, _, b) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","Tty":"yes"}"#),
    );
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#),
    );
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = d.http("POST", "/containers/create", Some(r#"{"Image":"nope"}"#));
    assert_eq!((s, message(&b).as_str()), (404, "No such image: nope"));
    let (s, _, b) = d.http(
        "POST",
        "/containers/create?name=bad%20name",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = d.http(
        "POST",
        "/containers/create?name=twin",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(s, 201, "{b}");
    let (s, _, b) = d.http(
        "POST",
        "/containers/create?name=twin",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(s, 409, "{b}");
    let (s, _, b) = d.http("POST", "/containers/twin/kill", None);
    assert_eq!(s, 409, "killing a stopped container: {b}");
    let (s, _, _) = d.http("POST", "/containers/twin/stop", None);
    assert_eq!(s, 304, "stopping a stopped container is not modified");
    let (s, _, b) = d.http("GET", "/containers/twin/logs", None);
    assert_eq!(s, 400, "no stream chosen: {b}");
    let (s, _, b) = d.http("GET", "/containers/json?filters=%7Bbad", None);
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = d.http("POST", "/containers/create", Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#));
    assert_eq!(s, 400, "{b}");
    // A huge header is refused, and the daemon keeps serving.
    let huge = format!("/_ping?x={}", "a".repeat(2 * 1024 * 1024));
    let _ = std::panic::catch_unwind(|| d.http("GET", &huge, None));
    let (s, _, _) = d.http("GET", "/_ping", None);
    assert_eq!(s, 200);
}

#[test]
fn create_inspect_and_list_shapes() {
    let d = Daemon::start();
    d.import_busybox();
    let (s, _, b) = d.http(
        "POST",
        "/v1.45/containers/create?name=shape",
        Some(r#"{"Image":"busybox","Cmd":["sh","-c","exit 2"],"Labels":{"k":"v"},"Env":["A=B"]}"#),
    );
    assert_eq!(s, 201, "{b}");
    let created: serde_json::Value = serde_json::from_str(&b).expect("JSON");
    let id = created["Id"].as_str().expect("Id").to_string();
    assert!(created["Warnings"].is_array());
    let (s, _, _) = d.http("POST", &format!("/containers/{}/start", &id[..12]), None);
    assert_eq!(s, 204);
    let (s, _, b) = d.http("POST", &format!("/containers/{id}/wait"), None);
    assert_eq!(s, 200);
    let waited: serde_json::Value = serde_json::from_str(b.trim()).expect("wait JSON");
    assert_eq!(waited["StatusCode"], 2);
    let (_, _, b) = d.http("GET", "/containers/shape/json", None);
    let c: serde_json::Value = serde_json::from_str(&b).expect("inspect JSON");
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/shape");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 2);
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["OOMKilled"], false);
    assert_eq!(c["Config"]["Labels"]["k"], "v");
    assert_eq!(c["Config"]["Image"], "busybox");
    assert_eq!(c["Path"], "sh");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert!(c["Config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .any(|e| e == "A=B"));
    let (_, _, b) = d.http(
        "GET",
        "/containers/json?all=1&filters=%7B%22label%22%3A%7B%22k%3Dv%22%3Atrue%7D%7D",
        None,
    );
    let list: serde_json::Value = serde_json::from_str(&b).expect("list JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["Names"][0], "/shape");
    assert_eq!(list[0]["State"], "exited");
    assert!(list[0]["Status"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Exited (2)"));
    let (s, _, _) = d.http("DELETE", "/containers/shape", None);
    assert_eq!(s, 204);
    let (s, _, _) = d.http("DELETE", "/containers/shape", None);
    assert_eq!(s, 404);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn many_followers_and_abrupt_disconnects_leak_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "while true; do echo line; sleep 0.02; done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let baseline = open_fds(d.pid());
    let mut followers = Vec::new();
    for i in 0..20 {
        let args: &[&str] = if i % 2 == 0 {
            &["logs", "-f", "chatty"]
        } else {
            &["events"]
        };
        followers.push(
            d.berth_cmd(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("follower"),
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // berthd keeps serving everyone else while 20 streams are open.
    assert_eq!(d.berth(&["ps", "-q"]).ok().stdout.lines().count(), 1);
    d.berth(&["run", "--rm", "busybox", "true"]).ok();
    // Clients that vanish mid-stream (SIGKILL) release their connections.
    for mut f in followers {
        let _ = f.kill();
        let _ = f.wait();
    }
    // A request body cut off halfway: the handler gives up, no record is made.
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
        let _ = s.write_all(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"Image\":");
    }
    assert!(
        d.eventually(std::time::Duration::from_secs(10), || open_fds(d.pid())
            <= baseline + 2),
        "berthd holds {} fds, {} before the followers",
        open_fds(d.pid()),
        baseline
    );
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.lines().count(), 1);
}

/// What the two daemons must agree on: dockerd refuses and berth refuses with
/// the same message (dockerd 20.10 answers some of these 500; berth answers
/// every refusal of client input 400, as later dockerds do)...
const REFUSED_BY_BOTH: &[&str] = &[
    r#""HostConfig":{"Memory":1048576}"#,
    r#""HostConfig":{"Memory":-5}"#,
    r#""HostConfig":{"NanoCpus":-1}"#,
    r#""HostConfig":{"CpusetCpus":"0-4095"}"#,
    r#""HostConfig":{"CpusetCpus":"garbage"}"#,
    r#""HostConfig":{"NanoCpus":1000000000,"CpuQuota":50000}"#,
    r#""HostConfig":{"MemorySwap":1000,"Memory":10000000}"#,
    r#""HostConfig":{"MemoryReservation":100000000,"Memory":10000000}"#,
    r#""HostConfig":{"Binds":[":/x"]}"#,
    r#""HostConfig":{"Binds":["/tmp:/x:rw,ro"]}"#,
    r#""HostConfig":{"Binds":["/tmp:/x:ro,ro"]}"#,
    r#""HostConfig":{"Binds":["/tmp:/x:bogus"]}"#,
    r#""Env":["=x"]"#,
    r#""HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}"#,
    r#""HostConfig":{"PortBindings":{"abc/tcp":[{"HostPort":"80"}]}}"#,
    r#""HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"80-70"}]}}"#,
    // Restart policies are parsed by the API into the engine's enum.
    r#""HostConfig":{"RestartPolicy":{"Name":"sometimes"}}"#,
    r#""HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":2}}"#,
    r#""HostConfig":{"RestartPolicy":{"Name":"no","MaximumRetryCount":1}}"#,
    r#""HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}"#,
    r#""HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}"#,
];

/// ...and what dockerd accepts at create only to fail at start (or, for
/// devices, what berth cannot do yet): berth refuses at create.
const REFUSED_EARLIER_BY_BERTH: &[(&str, &str)] = &[
    (r#""HostConfig":{"CpuShares":-1}"#, "CPU shares"),
    (r#""Env":["A\u0000B=1"]"#, "invalid environment variable"),
    (r#""Env":["A=x\u0000y"]"#, "invalid environment variable"),
    (
        r#""HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"bad","HostPort":"80"}]}}"#,
        "invalid IP address: bad",
    ),
    (
        r#""HostConfig":{"PortBindings":{"80/bogus":[{"HostPort":"80"}]}}"#,
        "invalid proto: bogus",
    ),
    (
        r#""HostConfig":{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rwm"}]}"#,
        "not supported",
    ),
];

/// A dockerd (Debian's docker.io) next to berthd `d`, both with busybox;
/// `tag` tells its bridge apart from other tests'.
fn dockerd_beside(d: &Daemon, tag: &str) -> common::Dockerd {
    d.import_busybox();
    let docker = common::Dockerd::start(&d.root.join("dk"), &format!("{tag}{}", &d.name[2..]));
    let tar = common::busybox_tar();
    let (code, _, err) =
        docker.docker(&["import", tar.to_str().unwrap_or_default(), "busybox:latest"]);
    assert_eq!(code, 0, "{err}");
    docker
}

/// The create refusals side by side with a real dockerd (Debian's docker.io).
#[test]
fn create_refusals_match_dockerd() {
    let d = Daemon::start();
    let docker = dockerd_beside(&d, "dv");
    let create = |socket: &std::path::Path, fields: &str| {
        let body = format!(r#"{{"Image":"busybox","Cmd":["true"],{fields}}}"#);
        let (status, _, reply) =
            common::http_on(socket, "POST", "/v1.41/containers/create", Some(&body));
        (status, reply)
    };
    let mut table = String::new();
    for fields in REFUSED_BY_BOTH {
        let (docker_status, docker_reply) = create(&docker.socket, fields);
        let (status, reply) = create(&d.socket, fields);
        table.push_str(&format!(
            "{fields}\n  dockerd {docker_status} {docker_reply}\n  berth   {status} {reply}\n"
        ));
        assert!(
            docker_status >= 400,
            "dockerd accepted {fields}: {docker_reply}"
        );
        assert_eq!(status, 400, "{fields}: {reply}");
        assert_eq!(message(&reply), message(&docker_reply), "{fields}");
    }
    for (fields, why) in REFUSED_EARLIER_BY_BERTH {
        let (docker_status, docker_reply) = create(&docker.socket, fields);
        let (status, reply) = create(&d.socket, fields);
        table.push_str(&format!(
            "{fields}\n  dockerd {docker_status} {docker_reply}\n  berth   {status} {reply}\n"
        ));
        assert_eq!(status, 400, "{fields}: {reply}");
        assert!(message(&reply).contains(why), "{fields}: {reply}");
    }
    eprintln!("{table}");
    // Valid settings still create, and reach the kernel.
    let (status, reply) = create(
        &d.socket,
        r#""HostConfig":{"Memory":6291456,"MemoryReservation":6291456,"CpusetCpus":"0","NanoCpus":5000000}"#,
    );
    assert_eq!(status, 201, "{reply}");
    // Nothing refused was left behind.
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.lines().count(), 1);
    let r = d.berth(&[
        "run",
        "--rm",
        "--cpuset-cpus",
        "0",
        "busybox",
        "cat",
        "/sys/fs/cgroup/cpuset/cpuset.cpus",
    ]);
    if std::path::Path::new("/sys/fs/cgroup/cpuset").is_dir() {
        assert_eq!(r.ok().out(), "0");
    }
    // update is held to the same rules as create.
    let r = d
        .berth(&["run", "-d", "--name", "upd", "busybox", "sleep", "60"])
        .ok();
    let _ = r;
    let (status, _, body) = d.http(
        "POST",
        "/containers/upd/update",
        Some(r#"{"Memory":1048576}"#),
    );
    assert_eq!(
        (status, message(&body).as_str()),
        (400, "Minimum memory limit allowed is 6MB")
    );
    let (status, _, body) = d.http(
        "POST",
        "/containers/upd/update",
        Some(r#"{"CpuShares":-1}"#),
    );
    assert_eq!(status, 400, "{body}");
}

/// `/events?until=`: a past time ends the stream at once, a relative duration
/// is read as the docker CLI reads it, garbage is a 400; none streams forever.
#[test]
fn events_until_returns() {
    let d = Daemon::start();
    let started = std::time::Instant::now();
    for until in ["1", "10m", "2020-01-01T00:00:00Z"] {
        let (status, _, body) = d.http("GET", &format!("/events?until={until}"), None);
        assert_eq!(status, 200, "{until}: {body}");
    }
    for garbage in ["now", "garbage", "10x"] {
        let (status, _, body) = d.http("GET", &format!("/events?until={garbage}"), None);
        assert_eq!(status, 400, "{garbage}");
        assert!(message(&body).contains("until"), "{body}");
        let (status, _, _) = d.http("GET", &format!("/events?since={garbage}"), None);
        assert_eq!(status, 400, "{garbage}");
    }
    // since in the past with until a moment ahead: the window's events, then the end.
    d.berth(&["network", "create", "evnet"]).ok();
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs() + 1)
        .unwrap_or(0);
    let (status, _, body) = d.http("GET", &format!("/events?since=1m&until={soon}"), None);
    assert_eq!(status, 200);
    assert!(body.contains("evnet"), "{body}");
    d.berth(&["network", "rm", "evnet"]).ok();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// A client that announces a body and never sends it, or never finishes its
/// headers, is cut off after the read timeout instead of holding a connection.
#[test]
fn stalled_requests_are_cut_off() {
    use std::io::{Read, Write};
    let d = Daemon::start_env(&[], &[("BERTH_API_READ_TIMEOUT", "2")]);
    let started = std::time::Instant::now();
    let mut body_stall = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
    body_stall
        .write_all(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .expect("write");
    let mut header_stall = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
    header_stall
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    for s in [&mut body_stall, &mut header_stall] {
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 400"),
            "{text}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "stalled connections held for {:?}",
        started.elapsed()
    );
    // The daemon still serves.
    assert_eq!(d.http("GET", "/_ping", None).0, 200);
}

/// `update` racing the container's exit (its cgroup vanishing under the write)
/// answers as for a stopped container, never 500.
#[test]
fn update_racing_the_exit_is_not_a_server_error() {
    let d = Daemon::start();
    d.import_busybox();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..30 {
        let name = format!("brief{i}");
        d.berth(&[
            "run",
            "-d",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "usleep 20000",
        ])
        .ok();
        for _ in 0..20 {
            let (status, _, body) = d.http(
                "POST",
                &format!("/containers/{name}/update"),
                Some(r#"{"Memory":67108864,"PidsLimit":50}"#),
            );
            assert_eq!(status, 200, "update of {name}: {body}");
            *statuses.entry(status).or_insert(0) += 1;
        }
        assert_eq!(d.inspect(&name, "{{.HostConfig.Memory}}"), "67108864");
        d.berth(&["rm", "-f", &name]).ok();
    }
    eprintln!("{statuses:?}");
}

/// A container between an exit and its restart is shown as dockerd shows it:
/// `Restarting`, and `Running` too (dockerd counts it as running for rm, stop
/// and the like).
#[test]
fn a_restarting_container_is_shown_as_dockerd_shows_it() {
    let d = Daemon::start();
    let docker = dockerd_beside(&d, "dr");
    let run = [
        "run",
        "-d",
        "--network",
        "none",
        "--restart",
        "always",
        "--name",
        "flap",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ];
    let (code, _, err) = docker.docker(&run);
    assert_eq!(code, 0, "{err}");
    d.berth(&run).ok();
    // The first state that shows `Restarting`, on each daemon.
    let restarting = |socket: &std::path::Path| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (status, _, body) = common::http_on(socket, "GET", "/containers/flap/json", None);
            assert_eq!(status, 200, "{body}");
            let c: serde_json::Value = serde_json::from_str(&body).expect("inspect JSON");
            if c["State"]["Restarting"] == true {
                return c["State"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never restarting: {body}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    let theirs = restarting(&docker.socket);
    let ours = restarting(&d.socket);
    for field in [
        "Status",
        "Running",
        "Paused",
        "Restarting",
        "Dead",
        "ExitCode",
    ] {
        assert_eq!(
            ours[field], theirs[field],
            "{field}: berth {ours} dockerd {theirs}"
        );
    }
    assert_eq!(ours["Running"], true);
    docker.docker(&["rm", "-f", "flap"]);
    d.berth(&["rm", "-f", "flap"]).ok();
}

/// What inspect shows of container `id`'s command, which is then removed.
fn command_of(socket: &std::path::Path, id: &str) -> String {
    let (_, _, c) = common::http_on(socket, "GET", &format!("/containers/{id}/json"), None);
    let c: serde_json::Value = serde_json::from_str(&c).expect("inspect JSON");
    common::http_on(socket, "DELETE", &format!("/containers/{id}"), None);
    format!(
        "Path {} Args {} Entrypoint {} Cmd {}",
        c["Path"], c["Args"], c["Config"]["Entrypoint"], c["Config"]["Cmd"]
    )
}

/// What a create's `Entrypoint` and `Cmd` make of an image's (absent, empty,
/// `[""]` as the docker CLI sends `--entrypoint ""`), side by side with dockerd.
#[test]
fn entrypoint_and_cmd_merge_as_dockerd_merges_them() {
    let d = Daemon::start();
    let docker = dockerd_beside(&d, "de");
    let image = [
        vec!["create", "--name", "base", "busybox", "true"],
        vec![
            "commit",
            "-c",
            r#"ENTRYPOINT ["echo","ep"]"#,
            "-c",
            r#"CMD ["cmd"]"#,
            "base",
            "ep:1",
        ],
    ];
    for args in &image {
        let (code, _, err) = docker.docker(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        d.berth(args).ok();
    }
    let bodies = [
        r#"{"Image":"ep:1"}"#,
        r#"{"Image":"ep:1","Entrypoint":null,"Cmd":null}"#,
        r#"{"Image":"ep:1","Entrypoint":[]}"#,
        r#"{"Image":"ep:1","Entrypoint":[""]}"#,
        r#"{"Image":"ep:1","Entrypoint":[""],"Cmd":["x"]}"#,
        r#"{"Image":"ep:1","Entrypoint":[],"Cmd":["x"]}"#,
        r#"{"Image":"ep:1","Cmd":["x"]}"#,
        r#"{"Image":"ep:1","Cmd":[]}"#,
        r#"{"Image":"ep:1","Entrypoint":"sh"}"#,
        r#"{"Image":"ep:1","Entrypoint":["sh","-c"],"Cmd":"echo"}"#,
    ];
    let shown = |socket: &std::path::Path, body: &str| {
        let (status, _, reply) =
            common::http_on(socket, "POST", "/v1.41/containers/create", Some(body));
        if status != 201 {
            return format!("{status} {}", message(&reply));
        }
        let id: serde_json::Value = serde_json::from_str(&reply).expect("create JSON");
        let id = id["Id"].as_str().unwrap_or_default().to_string();
        command_of(socket, &id)
    };
    let mut table = String::new();
    let mut differ = Vec::new();
    for body in bodies {
        let (theirs, ours) = (shown(&docker.socket, body), shown(&d.socket, body));
        table.push_str(&format!("{body}\n  dockerd {theirs}\n  berth   {ours}\n"));
        if theirs != ours {
            differ.push(body);
        }
    }
    // The same through the CLIs: docker's against dockerd is the reference for
    // docker's against berthd and for berth's.
    let cli = |binary: &str, socket: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new(binary)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["create"])
            .args(args)
            .output()
            .expect("run a CLI");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || id.is_empty() {
            let err = String::from_utf8_lossy(&out.stderr);
            return format!("failed: {}", err.lines().last().unwrap_or_default());
        }
        command_of(socket, &id)
    };
    let berth_cli = common::bin_dir().join("berth");
    let berth_cli = berth_cli.to_str().unwrap_or_default();
    for args in [
        &["--entrypoint", "", "ep:1", "x"][..],
        &["--entrypoint", "sh", "ep:1"],
        &["ep:1", "x", "y"],
    ] {
        let reference = cli("/usr/local/bin/docker", &docker.socket, args);
        let docker_on_berth = cli("/usr/local/bin/docker", &d.socket, args);
        let berth = cli(berth_cli, &d.socket, args);
        table.push_str(&format!(
            "{args:?}\n  docker on dockerd {reference}\n  docker on berthd  {docker_on_berth}\n  berth on berthd   {berth}\n"
        ));
        if docker_on_berth != reference || berth != reference {
            differ.push("a CLI run");
        }
    }
    eprintln!("{table}");
    assert!(
        differ.is_empty(),
        "berth differs from dockerd on {differ:?}"
    );
}

/// Exposed port ranges, side by side with dockerd: `--expose` as the docker CLI
/// and berth's CLI send it, and `EXPOSE` in a Dockerfile built by each daemon,
/// must come out as the same single ports.
#[test]
fn exposed_port_ranges_match_dockerd() {
    let d = Daemon::start();
    let docker = dockerd_beside(&d, "ex");
    let exposed = |socket: &std::path::Path, path: &str| -> serde_json::Value {
        let (status, _, body) = common::http_on(socket, "GET", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("inspect JSON");
        v["Config"]["ExposedPorts"].clone()
    };
    let flags = [
        "--expose",
        "8000-8002/udp",
        "--expose",
        "80",
        "--expose",
        "53/SCTP",
        "busybox",
        "true",
    ];

    let (code, _, err) = docker.docker(&[&["create", "--name", "ex0"][..], &flags].concat());
    assert_eq!(code, 0, "{err}");
    let reference = exposed(&docker.socket, "/containers/ex0/json");
    assert_eq!(
        reference,
        serde_json::json!({"53/SCTP": {}, "80/tcp": {}, "8000/udp": {}, "8001/udp": {}, "8002/udp": {}})
    );
    let via_docker_cli = std::process::Command::new("/usr/local/bin/docker")
        .arg("-H")
        .arg(format!("unix://{}", d.socket.display()))
        .args([&["create", "--name", "ex1"][..], &flags].concat())
        .output()
        .expect("docker CLI");
    assert!(via_docker_cli.status.success());
    assert_eq!(exposed(&d.socket, "/containers/ex1/json"), reference);
    d.berth(&[&["create", "--name", "ex2"][..], &flags].concat())
        .ok();
    assert_eq!(exposed(&d.socket, "/containers/ex2/json"), reference);

    let context = d.root.join("expose-context");
    std::fs::create_dir_all(&context).expect("context dir");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nEXPOSE 7000-7001 53/UDP\n",
    )
    .expect("Dockerfile");
    let context = context.to_str().unwrap_or_default();
    let (code, _, err) = docker.docker(&["build", "-q", "-t", "exposing", context]);
    assert_eq!(code, 0, "{err}");
    d.berth(&["build", "-q", "-t", "exposing", context]).ok();
    let built = exposed(&docker.socket, "/images/exposing/json");
    assert_eq!(
        built,
        serde_json::json!({"53/udp": {}, "7000/tcp": {}, "7001/tcp": {}})
    );
    assert_eq!(exposed(&d.socket, "/images/exposing/json"), built);
}
