//! `/_ping`, `/version`, `/info`, `/events`.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::{error, json, Body, Ctx, Resp, API_VERSION, MIN_API_VERSION};

pub fn ping() -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Builder-Version", "1")
        .body(Body::full("OK"))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The version a runtime binary prints for `--version` (`runc version 1.1.5`),
/// asked once per binary: docker-py asks `/version` for every client it makes.
fn runtime_version(path: &std::path::Path) -> String {
    static SEEN: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
        std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, v)) = seen.iter().find(|(p, _)| p == path) {
        return v.clone();
    }
    let version = ask_runtime_version(path);
    seen.push((path.to_path_buf(), version.clone()));
    version
}

fn ask_runtime_version(path: &std::path::Path) -> String {
    std::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.rsplit(' ').next().unwrap_or(l).to_string())
        })
        .unwrap_or_default()
}

pub fn version(ctx: &Ctx) -> Resp {
    let engine_details = json!({
        "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": env!("BERTH_GIT_COMMIT"), "RustVersion": env!("BERTH_RUSTC_VERSION"),
        "Os": "linux", "Arch": berth_engine_arch(), "KernelVersion": kernel(),
        "BuildTime": env!("BERTH_BUILD_TIME"),
    });
    let mut components = vec![
        json!({ "Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": engine_details }),
        json!({ "Name": "berth-monitor", "Version": env!("CARGO_PKG_VERSION"),
                "Details": { "GitCommit": env!("BERTH_GIT_COMMIT") } }),
        json!({ "Name": "libcontainer", "Version": "0.7.0",
                "Details": { "Runtime": "built in (default)" } }),
    ];
    let mut runtimes: Vec<_> = ctx.engine.config().runtimes.iter().collect();
    runtimes.sort();
    for (name, path) in runtimes {
        components.push(json!({ "Name": name, "Version": runtime_version(path),
                                "Details": { "Path": path } }));
    }
    json(
        StatusCode::OK,
        &json!({
            "Platform": { "Name": "berth" },
            "Components": components,
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": env!("BERTH_GIT_COMMIT"),
            "GoVersion": "",
            "Os": "linux",
            "Arch": berth_engine_arch(),
            "KernelVersion": kernel(),
            "BuildTime": env!("BERTH_BUILD_TIME"),
        }),
    )
}

/// `PRETTY_NAME` of /etc/os-release, as dockerd reports the operating system.
fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "linux".into())
}

fn berth_engine_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn info(ctx: &Ctx) -> Resp {
    let (containers, running, paused, images) = ctx.engine.counts();
    let cfg = ctx.engine.config();
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let mut runtimes = serde_json::Map::new();
    runtimes.insert("berth".into(), json!({ "path": "libcontainer (built in)" }));
    for (name, path) in &cfg.runtimes {
        runtimes.insert(name.clone(), json!({ "path": path }));
    }
    // docker's names: a default seccomp profile, and rootless when berthd is
    // not root (it always is today: it needs CAP_SYS_ADMIN for mounts).
    let mut security_options = vec!["name=seccomp,profile=builtin".to_string()];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        security_options.push("name=rootless".into());
    }
    let mut info = json!({
            "ID": "",
            "Containers": containers,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [],
            "Plugins": { "Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": berth_engine::log_driver::DRIVERS },
            "MemoryLimit": true,
            "SwapLimit": false,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "PidsLimit": true,
            "OomKillDisable": false,
            "IPv4Forwarding": false,
            "Debug": false,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "LoggingDriver": if cfg.default_log_driver.is_empty() { "json-file" } else { cfg.default_log_driver.as_str() },
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "KernelVersion": kernel(),
            "OperatingSystem": operating_system(),
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": berth_engine::host_memory().unwrap_or(0),
            "DockerRootDir": cfg.data_root,
            "Name": std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
            "Labels": [],
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": runtimes,
            "DefaultRuntime": "berth",
            "SecurityOptions": security_options,

            "Warnings": [],
    });
    info["LiveRestoreEnabled"] = json!(true);
    info["ExecRoot"] = json!(cfg.exec_root);
    info["RegistryConfig"] = json!({
        "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        "Mirrors": ctx.engine.registry_mirrors(),
        "IndexConfigs": {},
    });
    json(StatusCode::OK, &info)
}

/// An event window's bound: seconds since the epoch (a fraction allowed), as
/// dockerd reads it; also RFC 3339, and a duration (`10m`, `1h30m`, `1.5s`)
/// meaning that long ago, as the docker CLI reads what it is given. Anything
/// else is the client's mistake, answered 400 rather than streamed forever.
fn parse_time(key: &str, v: Option<&str>) -> Result<Option<f64>, Resp> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parsed = v.parse::<f64>().ok().filter(|n| n.is_finite()).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
    });
    let parsed = parsed.or_else(|| {
        let ago = parse_duration(v)?;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9;
        Some(now - ago)
    });
    match parsed {
        Some(t) => Ok(Some(t)),
        None => Err(error(
            StatusCode::BAD_REQUEST,
            &format!(
                "invalid value for {key}: {v:?} is not a timestamp, an RFC 3339 time or a duration"
            ),
        )),
    }
}

/// Go's duration syntax (what `docker events --since 10m` accepts), in seconds.
fn parse_duration(v: &str) -> Option<f64> {
    berth_dockerfile::parse_go_duration(v).map(|ns| ns as f64 / 1e9)
}

/// Docker's event filters: type, event (action), container (ID or name), image,
/// label (`k` or `k=v`).
fn event_matches(
    ev: &berth_engine::Event,
    filters: &std::collections::HashMap<String, Vec<String>>,
) -> bool {
    filters.iter().all(|(key, values)| {
        if key == "label" {
            return berth_engine::labels_match(values, |k| {
                ev.attributes.get(k).map(String::as_str)
            });
        }
        values.iter().any(|v| match key.as_str() {
            "type" => ev.kind == v,
            "event" | "status" => &ev.action == v,
            "container" => {
                ev.kind == "container"
                    && (ev.id.starts_with(v.as_str()) || ev.attributes.get("name") == Some(v))
            }
            "image" => ev.attributes.get("image") == Some(v) || ev.id == *v,
            _ => false,
        })
    })
}

fn event_line(ev: &berth_engine::Event) -> Bytes {
    let line = json!({
        "status": ev.action, "id": ev.id, "from": ev.attributes.get("image"),
        "Type": ev.kind, "Action": ev.action,
        "Actor": { "ID": ev.id, "Attributes": ev.attributes },
        "scope": "local",
        "time": ev.time_nano / 1_000_000_000, "timeNano": ev.time_nano,
    });
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// `/events`: kept events since `since`, then live ones until `until` (or forever),
/// filtered as docker filters them.
pub fn events(ctx: &Ctx) -> Resp {
    let since = match parse_time("since", ctx.q("since")) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let until = match parse_time("until", ctx.q("until")) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let filters = match crate::containers::parse_filters(ctx.q("filters")) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (history, mut rx) = ctx.engine.subscribe_with_history();
    let (tx, body) = mpsc::channel(64);
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9;
    tokio::spawn(async move {
        let in_window = |ev: &berth_engine::Event| {
            let t = ev.time_nano as f64 / 1e9;
            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
        };
        let wanted =
            |ev: &berth_engine::Event| ev.action != "remove-failed" && event_matches(ev, &filters);
        if since.is_some() {
            for ev in history.iter().filter(|e| in_window(e) && wanted(e)) {
                if tx.send(event_line(ev)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| std::time::Duration::from_secs_f64((u - now).max(0.0)));
        let live = async {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                if wanted(&ev) && in_window(&ev) && tx.send(event_line(&ev)).await.is_err() {
                    return;
                }
            }
        };
        match deadline {
            Some(d) => {
                let _ = tokio::time::timeout(d, live).await;
            }
            None => live.await,
        }
    });
    Response::builder()
        .header("Content-Type", "application/json")
        .body(Body::Stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `system df` in docker's shape.
pub fn disk_usage(ctx: &Ctx) -> Resp {
    let usage = ctx.engine.disk_usage();
    let unix_time = |rfc3339: &str| {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| t.timestamp())
            .unwrap_or(0)
    };
    let images: Vec<serde_json::Value> = usage
        .images
        .iter()
        .map(|u| {
            let i = &u.image;
            json!({
                "Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": [],
                "Created": unix_time(&i.created),
                "Size": i.size, "SharedSize": u.shared_size, "VirtualSize": i.size,
                "Labels": i.config.config.labels, "Containers": u.containers,
            })
        })
        .collect();
    let containers: Vec<serde_json::Value> = usage
        .containers
        .iter()
        .map(|u| {
            let c = &u.container;
            json!({
                "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.config.image,
                "ImageID": c.image_id, "Command": c.argv().join(" "),
                "Created": unix_time(&c.created),
                "SizeRw": u.size_rw, "SizeRootFs": u.size_root_fs, "Labels": c.config.labels,
                "State": c.state.status.as_str(), "Status": c.state.status.as_str(), "Mounts": [],
            })
        })
        .collect();
    let volumes: Vec<serde_json::Value> = usage
        .volumes
        .iter()
        .map(|u| {
            let v = &u.volume;
            json!({
                "Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint,
                "CreatedAt": v.created_at, "Labels": v.labels, "Scope": v.scope,
                "Options": v.options,
                "UsageData": { "Size": u.size, "RefCount": u.ref_count },
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "LayersSize": usage.layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_as_docker_and_its_cli_give_them() {
        assert_eq!(
            parse_time("until", Some("1700000000.5")).ok(),
            Some(Some(1_700_000_000.5))
        );
        assert_eq!(
            parse_time("until", Some("2023-11-14T22:13:20Z")).ok(),
            Some(Some(1_700_000_000.0))
        );
        assert_eq!(parse_time("since", None).ok(), Some(None));
        let now = chrono::Utc::now().timestamp() as f64;
        let ten_minutes_ago = parse_time("until", Some("10m"))
            .ok()
            .flatten()
            .expect("a duration is a time");
        assert!(
            (now - 600.0 - ten_minutes_ago).abs() < 5.0,
            "{ten_minutes_ago}"
        );
        for garbage in ["garbage", "now", "10x", "1e400", "m", "-"] {
            let resp = parse_time("until", Some(garbage)).expect_err(garbage);
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{garbage}");
        }
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("1.5s"), Some(1.5));
        assert_eq!(parse_duration("250ms"), Some(0.25));
        assert_eq!(parse_duration(""), None);
    }
}
