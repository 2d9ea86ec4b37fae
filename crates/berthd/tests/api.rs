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
