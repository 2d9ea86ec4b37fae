//! `/containers/...`: create, list, inspect, start, stop, restart, kill, wait,
//! remove, logs, attach, resize.

use berth_engine::{
    AttachStream, ChangeKind, ContainerRecord, EngineError, Filters, LogOptions, NetworkMode,
    StatsSample, Status,
};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::{engine_error, error, json, read_json, status_only, Body, Ctx, Resp};

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::ContainerCreateRequest = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let endpoints = crate::convert::endpoints(body.networking_config);
    let config = crate::convert::container_config(body.config);
    let created = crate::convert::host_settings(body.host_config).and_then(|host| {
        ctx.engine
            .create_container_on(ctx.q("name"), config, host, &endpoints)
    });
    match created {
        Ok(c) => json(
            StatusCode::CREATED,
            &berth_api_types::ContainerCreateResponse {
                id: c.id,
                warnings: Vec::new(),
            },
        ),
        Err(e) => engine_error(e),
    }
}

pub(crate) fn parse_filters(raw: Option<&str>) -> Result<Filters, Resp> {
    let filters = berth_api_types::Filters::parse(raw.unwrap_or_default())
        .map_err(|message| error(StatusCode::BAD_REQUEST, &message))?;
    Ok(filters.into_inner().into_iter().collect())
}

fn unix_seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn human_duration(since: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(since) else {
        return String::new();
    };
    let secs = chrono::Utc::now()
        .signed_duration_since(t)
        .num_seconds()
        .max(0);
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 172800 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

fn status_text(c: &ContainerRecord) -> String {
    let s = &c.state;
    match s.status {
        Status::Running => match s.health.as_ref().map(|h| h.status.as_str()) {
            // docker's wording: "(health: starting)", "(healthy)", "(unhealthy)".
            Some("starting") => format!("Up {} (health: starting)", human_duration(&s.started_at)),
            Some(status) => format!("Up {} ({status})", human_duration(&s.started_at)),
            None => format!("Up {}", human_duration(&s.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", human_duration(&s.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(&s.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(&s.finished_at)
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// docker's `State` object: the flags follow from the engine's one status.
fn state_json(s: &berth_engine::ContainerState) -> serde_json::Value {
    let mut state = json!({
        "Status": s.status.as_str(),
        // dockerd counts a container waiting to restart as running (so that
        // rm, stop and the like treat it as one) and shows it so.
        "Running": s.running() || s.restarting(),
        "Paused": s.paused(),
        "Restarting": s.restarting(),
        "OOMKilled": s.oom_killed,
        "Dead": s.dead(),
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    });
    if let Some(health) = &s.health {
        state["Health"] = json!(health);
    }
    state
}

fn shell_join(argv: &[String]) -> String {
    argv.join(" ")
}

pub fn list(ctx: &Ctx) -> Resp {
    let filters = match parse_filters(ctx.q("filters")) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut list = match ctx.engine.containers(ctx.flag("all"), &filters) {
        Ok(l) => l,
        Err(e) => return engine_error(e),
    };
    if let Ok(Some(limit)) = ctx.int("limit") {
        if limit > 0 {
            list.truncate(limit as usize);
        }
    }
    let out: Vec<_> = list
        .iter()
        .map(|c| {
            json!({
                "Id": c.id,
                "Names": [format!("/{}", c.name)],
                "Image": c.config.image,
                "ImageID": c.image_id,
                "Command": shell_join(&c.argv()),
                "Created": unix_seconds(&c.created),
                "Ports": crate::networks::ports_list(c),
                "Labels": c.config.labels,
                "State": c.state.status,
                "Status": status_text(c),
                "HostConfig": { "NetworkMode": network_mode(c) },
                "NetworkSettings": { "Networks": crate::networks::settings_json(ctx, c)["Networks"] },
                "Mounts": crate::volumes::mounts_json(c),
            })
        })
        .collect();
    json(StatusCode::OK, &out)
}

/// docker shows a container of the default mode that has no network (the
/// daemon runs without bridges) as `none`.
fn network_mode(c: &ContainerRecord) -> String {
    match &c.host_config.network_mode {
        NetworkMode::Default if c.networks.is_empty() => "none".into(),
        mode => mode.to_string(),
    }
}

pub fn inspect(ctx: &Ctx, id: &str) -> Resp {
    let c = match ctx.engine.container(id) {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let dir = ctx.engine.config().data_root.join("containers").join(&c.id);
    let argv = c.argv();
    let host_config = berth_api_types::HostConfig {
        network_mode: network_mode(&c),
        ..crate::convert::host_config(&c.host_config)
    };
    json(
        StatusCode::OK,
        &json!({
            "Id": c.id,
            "Created": c.created,
            "Path": argv.first().cloned().unwrap_or_default(),
            "Args": argv.iter().skip(1).collect::<Vec<_>>(),
            "State": state_json(&c.state),
            "Image": c.image_id,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": dir.join("container.log"),
            "Name": format!("/{}", c.name),
            "RestartCount": c.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": host_config,
            "GraphDriver": { "Name": "overlay2", "Data": {
                "UpperDir": dir.join("upper"), "WorkDir": dir.join("work"), "MergedDir": dir.join("rootfs") } },
            "Mounts": crate::volumes::mounts_json(&c),
            "Config": c.config,
            "NetworkSettings": crate::networks::settings_json(ctx, &c),
        }),
    )
}

fn done(result: Result<(), EngineError>) -> Resp {
    match result {
        Ok(()) => status_only(StatusCode::NO_CONTENT),
        Err(e) => engine_error(e),
    }
}

pub async fn start(ctx: &Ctx, id: &str) -> Resp {
    done(ctx.engine.start_container(id).await)
}

pub async fn stop(ctx: &Ctx, id: &str) -> Resp {
    let t = match ctx.int("t") {
        Ok(t) => t,
        Err(r) => return r,
    };
    done(
        ctx.engine
            .stop_container(id, t, ctx.q("signal").filter(|s| !s.is_empty()))
            .await,
    )
}

pub async fn restart(ctx: &Ctx, id: &str) -> Resp {
    let t = match ctx.int("t") {
        Ok(t) => t,
        Err(r) => return r,
    };
    done(ctx.engine.restart_container(id, t).await)
}

pub async fn kill(ctx: &Ctx, id: &str) -> Resp {
    done(
        ctx.engine
            .kill_container(
                id,
                ctx.q("signal").filter(|s| !s.is_empty()).unwrap_or("KILL"),
            )
            .await,
    )
}

pub async fn remove(ctx: &Ctx, id: &str) -> Resp {
    done(
        ctx.engine
            .remove_container(id, ctx.flag("force"), ctx.flag("v"))
            .await,
    )
}

/// `wait?condition=not-running|next-exit|removed`. Subscribes before answering, so
/// a client that waits and then starts cannot miss the exit.
pub async fn wait(ctx: &Ctx, id: &str) -> Resp {
    let c = match ctx.engine.container(id) {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let condition = ctx.q("condition").unwrap_or("not-running").to_string();
    if !["not-running", "next-exit", "removed", ""].contains(&condition.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("invalid condition: {condition:?}"),
        );
    }
    let mut events = ctx.engine.subscribe();
    if (condition == "not-running" || condition.is_empty())
        && !c.state.running()
        && !c.state.restarting()
    {
        return json(
            StatusCode::OK,
            &json!({ "StatusCode": c.state.exit_code, "Error": null }),
        );
    }
    let (tx, body) = mpsc::channel(1);
    let engine = ctx.engine.clone();
    let id = c.id.clone();
    tokio::spawn(async move {
        let mut code = c.state.exit_code;
        let mut error = serde_json::Value::Null;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Events were missed: fall back to the record.
                    match engine.container(&id) {
                        Err(_) => break,
                        Ok(c) if !c.state.running() && condition != "removed" => {
                            code = c.state.exit_code;
                            break;
                        }
                        Ok(_) => continue,
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if ev.id != id || ev.kind != "container" {
                continue;
            }
            match ev.action.as_str() {
                "die" => {
                    code = ev
                        .attributes
                        .get("exitCode")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(code);
                    if condition != "removed" {
                        break;
                    }
                }
                "destroy" => break,
                "remove-failed" => {
                    error = json!({ "Message": ev.attributes.get("error") });
                    break;
                }
                _ => {}
            }
        }
        let mut line =
            serde_json::to_vec(&json!({ "StatusCode": code, "Error": error })).unwrap_or_default();
        line.push(b'\n');
        let _ = tx.send(Bytes::from(line)).await;
    });
    Response::builder()
        .header("Content-Type", "application/json")
        .body(Body::Stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn parse_time(v: Option<&str>) -> Option<f64> {
    let v = v.filter(|v| !v.is_empty() && *v != "0")?;
    if let Ok(n) = v.parse::<f64>() {
        return Some(n);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
}

pub fn logs(ctx: &Ctx, id: &str) -> Resp {
    let tail = match ctx.q("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid tail value {t:?}"),
                )
            }
        },
    };
    let opts = LogOptions {
        stdout: ctx.flag("stdout"),
        stderr: ctx.flag("stderr"),
        follow: ctx.flag("follow"),
        tail,
        timestamps: ctx.flag("timestamps"),
        since: parse_time(ctx.q("since")),
        // docker reads until=0 as "no limit" (bollard always sends it).
        until: parse_time(ctx.q("until")).filter(|t| *t > 0.0),
    };
    if !opts.stdout && !opts.stderr {
        return error(
            StatusCode::BAD_REQUEST,
            "you must choose at least one stream",
        );
    }
    match ctx.engine.logs(id, opts) {
        Ok((tty, rx)) => Response::builder()
            .header(
                "Content-Type",
                if tty {
                    "application/vnd.docker.raw-stream"
                } else {
                    "application/vnd.docker.multiplexed-stream"
                },
            )
            .body(Body::Stream(rx))
            .unwrap_or_else(|_| Response::new(Body::empty())),
        Err(e) => engine_error(e),
    }
}

pub async fn resize(ctx: &Ctx, id: &str) -> Resp {
    let (h, w) = match (ctx.int("h"), ctx.int("w")) {
        (Ok(Some(h)), Ok(Some(w))) => (h, w),
        _ => return error(StatusCode::BAD_REQUEST, "h and w are required integers"),
    };
    done(
        ctx.engine
            .resize(
                id,
                h.clamp(0, u16::MAX as i64) as u16,
                w.clamp(0, u16::MAX as i64) as u16,
            )
            .await,
    )
}

/// Attach: `101 UPGRADED` and a raw bidirectional stream. Without a TTY the output
/// is in stdcopy frames, exactly as the monitor sends it.
pub async fn attach(ctx: &Ctx, id: &str, mut req: Request<Incoming>) -> Resp {
    let stdin = ctx.flag("stdin");
    let stdout = ctx.flag("stdout");
    let stderr = ctx.flag("stderr");
    let (tty, stream) = match ctx.engine.attach(id, stdin, stdout, stderr).await {
        Ok(v) => v,
        Err(e) => return engine_error(e),
    };
    let upgrade = req.headers().get(hyper::header::UPGRADE).is_some();
    let on_upgrade = hyper::upgrade::on(&mut req);
    spawn_pump(upgrade, on_upgrade, stream, tty).unwrap_or_else(|| hijack_response(tty))
}

fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// The `101 UPGRADED` answer to a hijack request.
pub(crate) fn hijack_response(tty: bool) -> Resp {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Content-Type", content_type(tty))
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Connects a monitor stream to the client: through the upgraded connection when the
/// client asked for one (returns `None`: answer with [`hijack_response`]), otherwise
/// as a streamed response body carrying the output only.
pub(crate) fn spawn_pump(
    upgrade: bool,
    on_upgrade: hyper::upgrade::OnUpgrade,
    stream: AttachStream,
    tty: bool,
) -> Option<Resp> {
    if !upgrade {
        let (tx, body) = mpsc::channel(16);
        tokio::spawn(async move {
            let Some(mut monitor) = resolve(stream).await else {
                return;
            };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match monitor.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        return Some(
            Response::builder()
                .header("Content-Type", content_type(tty))
                .body(Body::Stream(body))
                .unwrap_or_else(|_| Response::new(Body::empty())),
        );
    }
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let Some(monitor) = resolve(stream).await else {
            return;
        };
        pump(TokioIo::new(upgraded), monitor, tty).await;
    });
    None
}

pub(crate) async fn resolve(stream: AttachStream) -> Option<tokio::net::UnixStream> {
    match stream {
        AttachStream::Ready(s) => Some(s),
        AttachStream::Pending(rx) => rx.await.ok(),
    }
}

/// Copies client → monitor (stdin, half-close on EOF) and monitor → client (output,
/// framing stripped for a TTY) until the monitor closes.
pub(crate) async fn pump<C>(client: C, monitor: tokio::net::UnixStream, tty: bool)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut mon_r, mut mon_w) = monitor.into_split();
    let stdin_task = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_r, &mut mon_w).await;
        let _ = mon_w.shutdown().await;
    });
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if tty {
            if mon_r.read_exact(&mut header).await.is_err() {
                break;
            }
            let mut len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            while len > 0 {
                let n = len.min(buf.len());
                if mon_r.read_exact(&mut buf[..n]).await.is_err()
                    || client_w.write_all(&buf[..n]).await.is_err()
                {
                    len = 0;
                    break;
                }
                len -= n;
            }
            if len != 0 {
                break;
            }
        } else {
            match mon_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if client_w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = client_w.flush().await;
    }
    let _ = client_w.shutdown().await;
    stdin_task.abort();
}

pub fn export(ctx: &Ctx, id: &str) -> Resp {
    match ctx.engine.export_container(id) {
        Ok(rx) => Response::builder()
            .header("Content-Type", "application/x-tar")
            .body(Body::Stream(rx))
            .unwrap_or_else(|_| Response::new(Body::empty())),
        Err(e) => engine_error(e),
    }
}

pub async fn pause(ctx: &Ctx, id: &str) -> Resp {
    done(ctx.engine.pause_container(id).await)
}

pub async fn unpause(ctx: &Ctx, id: &str) -> Resp {
    done(ctx.engine.unpause_container(id).await)
}

pub fn rename(ctx: &Ctx, id: &str) -> Resp {
    match ctx.q("name").filter(|n| !n.is_empty()) {
        Some(name) => done(ctx.engine.rename_container(id, name)),
        None => error(StatusCode::BAD_REQUEST, "name is required"),
    }
}

/// `top`: docker's `ps -ef` table.
pub fn top(ctx: &Ctx, id: &str) -> Resp {
    let rows = match ctx.engine.top(id) {
        Ok(rows) => rows,
        Err(e) => return engine_error(e),
    };
    let processes: Vec<[&str; 8]> = rows
        .iter()
        .map(|p| {
            [
                &p.user,
                &p.pid,
                &p.ppid,
                "0",
                &p.start_time,
                "?",
                &p.cpu_time,
                &p.command,
            ]
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "Processes": processes,
        }),
    )
}

/// `diff`: docker's `Kind` is 0 modified, 1 added, 2 deleted.
pub fn changes(ctx: &Ctx, id: &str) -> Resp {
    let changes = match ctx.engine.changes(id) {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let body: Vec<serde_json::Value> = changes
        .iter()
        .map(|c| {
            let kind = match c.kind {
                ChangeKind::Modified => 0,
                ChangeKind::Added => 1,
                ChangeKind::Deleted => 2,
            };
            json!({ "Path": c.path, "Kind": kind })
        })
        .collect();
    json(StatusCode::OK, &body)
}

/// docker's `cpu_stats` of a sample.
fn cpu_stats_json(s: &StatsSample) -> serde_json::Value {
    json!({
        "cpu_usage": {
            "total_usage": s.usage.cpu_total_ns,
            "usage_in_kernelmode": s.usage.cpu_system_ns,
            "usage_in_usermode": s.usage.cpu_user_ns,
        },
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

/// One sample as docker's stats JSON; `previous` fills `precpu_stats`.
fn stats_json(s: &StatsSample, previous: Option<&StatsSample>) -> serde_json::Value {
    let memory_stat: serde_json::Map<String, serde_json::Value> = s
        .usage
        .memory_stat
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "read": s.read,
        "preread": previous.map_or(berth_engine::ZERO_TIME, |p| p.read.as_str()),
        "pids_stats": { "current": s.usage.pids, "limit": s.usage.pids_limit },
        "blkio_stats": {
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats_json(s),
        "precpu_stats": previous.map(cpu_stats_json).unwrap_or_else(|| json!({
            "cpu_usage": { "total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
            "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
        })),
        "memory_stats": if s.running {
            json!({ "usage": s.usage.memory_usage, "limit": s.memory_limit, "stats": memory_stat })
        } else {
            json!({})
        },
        "name": format!("/{}", s.name),
        "id": s.id,
    })
}

/// `stats`: a JSON stream, one sample a second; with `stream=false` one sample
/// whose `precpu_stats` come from a sample taken just before (docker's behaviour),
/// or with `one-shot=true` a single sample without them.
pub fn stats(ctx: &Ctx, id: &str) -> Resp {
    let c = match ctx.engine.container(id) {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let stream = !matches!(ctx.q("stream"), Some("0") | Some("false") | Some("False"));
    let one_shot = ctx.flag("one-shot");
    let (tx, body) = mpsc::channel(2);
    let engine = ctx.engine.clone();
    tokio::spawn(async move {
        let mut previous: Option<StatsSample> = None;
        if !stream && !one_shot && c.state.running() {
            previous = engine.stats_sample(&c.id).await.ok();
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        loop {
            let Ok(sample) = engine.stats_sample(&c.id).await else {
                return;
            };
            let mut line =
                serde_json::to_vec(&stats_json(&sample, previous.as_ref())).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() || !stream {
                return;
            }
            let running = engine
                .container(&c.id)
                .map(|c| c.state.running())
                .unwrap_or(false);
            if !running {
                return;
            }
            previous = Some(sample);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    Response::builder()
        .header("Content-Type", "application/json")
        .body(Body::Stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn label_filters(ctx: &Ctx) -> Result<Vec<String>, Resp> {
    let filters = parse_filters(ctx.q("filters"))?;
    for key in filters.keys() {
        if key != "label" {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("invalid filter '{key}'"),
            ));
        }
    }
    Ok(filters.get("label").cloned().unwrap_or_default())
}

pub async fn prune(ctx: &Ctx) -> Resp {
    let labels = match label_filters(ctx) {
        Ok(l) => l,
        Err(r) => return r,
    };
    match ctx.engine.prune_containers(&labels).await {
        Ok(ids) => json(
            StatusCode::OK,
            &json!({ "ContainersDeleted": ids, "SpaceReclaimed": 0 }),
        ),
        Err(e) => engine_error(e),
    }
}

pub async fn update(ctx: &Ctx, id: &str, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::ContainerUpdateRequest = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let update = match crate::convert::resource_update(body) {
        Ok(u) => u,
        Err(e) => return engine_error(e),
    };
    match ctx.engine.update_container(id, update).await {
        Ok(()) => json(StatusCode::OK, &json!({ "Warnings": [] })),
        Err(e) => engine_error(e),
    }
}

/// Docker's `X-Docker-Container-Path-Stat`: base64 of the stat as JSON.
fn path_stat_header(stat: &berth_store::PathStat) -> String {
    berth_api_types::PathStat {
        name: stat.name.clone(),
        size: stat.size,
        mode: stat.mode,
        mtime: chrono::DateTime::from_timestamp(stat.mtime, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        link_target: stat.link_target.clone(),
    }
    .to_header()
}

fn archive_path(ctx: &Ctx) -> Result<String, Resp> {
    match ctx.q("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(error(StatusCode::BAD_REQUEST, "path is required")),
    }
}

pub async fn archive_head(ctx: &Ctx, id: &str) -> Resp {
    let path = match archive_path(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match ctx.engine.archive_stat(id, &path).await {
        Ok(stat) => hyper::Response::builder()
            .status(StatusCode::OK)
            .header("X-Docker-Container-Path-Stat", path_stat_header(&stat))
            .body(Body::empty())
            .unwrap_or_else(|_| hyper::Response::new(Body::empty())),
        Err(e) => engine_error(e),
    }
}

pub async fn archive_get(ctx: &Ctx, id: &str) -> Resp {
    let path = match archive_path(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match ctx.engine.archive_get(id, &path).await {
        Ok((stat, rx)) => hyper::Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/x-tar")
            .header("X-Docker-Container-Path-Stat", path_stat_header(&stat))
            .body(Body::Stream(rx))
            .unwrap_or_else(|_| hyper::Response::new(Body::empty())),
        Err(e) => engine_error(e),
    }
}

pub async fn archive_put(ctx: &Ctx, id: &str, req: Request<Incoming>) -> Resp {
    let path = match archive_path(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (reader, feeder) = crate::images::blocking_body(req);
    let result = ctx.engine.archive_put(id, &path, reader).await;
    feeder.abort();
    match result {
        Ok(()) => status_only(StatusCode::OK),
        Err(e) => engine_error(e),
    }
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`
pub async fn commit(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let Some(container) = ctx.q("container").filter(|c| !c.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "container is required");
    };
    let config: Option<berth_engine::ContainerConfig> =
        match read_json::<serde_json::Value>(req).await {
            Ok(v) if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) => None,
            Ok(v) => match serde_json::from_value(v) {
                Ok(c) => Some(c),
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")),
            },
            Err(r) => return r,
        };
    let reference = match (ctx.q("repo").filter(|r| !r.is_empty()), ctx.q("tag")) {
        (Some(repo), Some(tag)) if !tag.is_empty() => Some(format!("{repo}:{tag}")),
        (Some(repo), _) => Some(repo.to_string()),
        (None, _) => None,
    };
    let opts = berth_engine::CommitOptions {
        reference,
        comment: ctx.q("comment").unwrap_or_default().to_string(),
        author: ctx.q("author").unwrap_or_default().to_string(),
        pause: ctx
            .q("pause")
            .is_none_or(|p| !matches!(p, "0" | "false" | "False")),
        changes: ctx.all("changes"),
        config,
    };
    match ctx.engine.commit_container(container, opts).await {
        Ok(image) => json(StatusCode::CREATED, &json!({ "Id": image.id })),
        Err(e) => engine_error(e),
    }
}
