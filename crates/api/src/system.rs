//! `/_ping`, `/version`, `/info`, `/events`.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::{json, Body, Ctx, Resp, API_VERSION, MIN_API_VERSION};

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

pub fn version() -> Resp {
    json(
        StatusCode::OK,
        &json!({
            "Platform": { "Name": "berth" },
            "Components": [{ "Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                "Arch": berth_engine_arch(), "KernelVersion": kernel() } }],
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": berth_engine_arch(),
            "KernelVersion": kernel(),
            "BuildTime": "",
        }),
    )
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
    json(
        StatusCode::OK,
        &json!({
            "ID": "",
            "Containers": containers,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [],
            "Plugins": { "Volume": [], "Network": ["none", "host"], "Log": ["json-file"] },
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
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "KernelVersion": kernel(),
            "OperatingSystem": "linux",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": 0,
            "DockerRootDir": cfg.data_root,
            "Name": std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
            "Labels": [],
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": { "berth": { "path": "libcontainer" } },
            "DefaultRuntime": "berth",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": [],
        }),
    )
}

fn parse_time(v: Option<&str>) -> Option<f64> {
    let v = v.filter(|v| !v.is_empty())?;
    if let Ok(n) = v.parse::<f64>() {
        return Some(n);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
}

/// Docker's event filters: type, event (action), container (ID or name), image,
/// label (`k` or `k=v`).
fn event_matches(
    ev: &berth_engine::Event,
    filters: &std::collections::HashMap<String, Vec<String>>,
) -> bool {
    filters.iter().all(|(key, values)| {
        values.iter().any(|v| match key.as_str() {
            "type" => ev.kind == v,
            "event" | "status" => &ev.action == v,
            "container" => {
                ev.kind == "container"
                    && (ev.id.starts_with(v.as_str()) || ev.attributes.get("name") == Some(v))
            }
            "image" => ev.attributes.get("image") == Some(v) || ev.id == *v,
            "label" => match v.split_once('=') {
                Some((k, val)) => ev.attributes.get(k).is_some_and(|x| x == val),
                None => ev.attributes.contains_key(v),
            },
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
    let since = parse_time(ctx.q("since"));
    let until = parse_time(ctx.q("until"));
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

pub fn disk_usage(ctx: &Ctx) -> Resp {
    json(StatusCode::OK, &ctx.engine.disk_usage())
}
