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

/// `/events`: live events as a JSON stream (`since`/`until` history is not kept yet).
pub fn events(ctx: &Ctx) -> Resp {
    let mut rx = ctx.engine.subscribe();
    let (tx, body) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            if ev.action == "remove-failed" {
                continue;
            }
            let line = json!({
                "status": ev.action, "id": ev.id, "from": ev.attributes.get("image"),
                "Type": ev.kind, "Action": ev.action,
                "Actor": { "ID": ev.id, "Attributes": ev.attributes },
                "scope": "local",
                "time": ev.time_nano / 1_000_000_000, "timeNano": ev.time_nano,
            });
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            if tx.send(Bytes::from(bytes)).await.is_err() {
                return;
            }
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
