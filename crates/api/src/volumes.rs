//! `/volumes`: create, list, inspect, remove, prune.

use berth_engine::{MountPoint, VolumeRecord};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use crate::containers::parse_filters;
use crate::{engine_error, json, read_json, status_only, Ctx, Resp};

/// A volume as the API shows it; `UsageData` only where docker shows it.
pub(crate) fn volume_json(v: &VolumeRecord, usage: Option<(u64, usize)>) -> serde_json::Value {
    let mut out = json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": v.mountpoint,
        "CreatedAt": v.created_at,
        "Labels": v.labels,
        "Options": if v.options.is_empty() { serde_json::Value::Null } else { json!(v.options) },
        "Scope": v.scope,
    });
    if let Some((size, refs)) = usage {
        out["UsageData"] = json!({ "Size": size, "RefCount": refs });
    }
    out
}

/// A container's mounts as inspect and `ps` show them; like docker, `--tmpfs`
/// mounts are not listed (`--mount type=tmpfs` ones are).
pub(crate) fn mounts_json(c: &berth_engine::ContainerRecord) -> Vec<serde_json::Value> {
    c.mounts
        .iter()
        .filter(|m| {
            !(m.kind == "tmpfs"
                && c.host_config
                    .tmpfs
                    .keys()
                    .any(|k| k.trim_end_matches('/') == m.destination))
        })
        .map(mount_json)
        .collect()
}

/// A container's mount as inspect and `ps` show it.
fn mount_json(m: &MountPoint) -> serde_json::Value {
    let mut out = json!({
        "Type": m.kind,
        "Source": m.source,
        "Destination": m.destination,
        "Mode": m.mode,
        "RW": m.rw,
        "Propagation": m.propagation,
    });
    if m.kind == "volume" {
        out["Name"] = json!(m.name);
        out["Driver"] = json!("local");
    }
    out
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::VolumeCreateRequest = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match ctx.engine.create_volume(
        Some(&body.name),
        &body.driver,
        body.labels,
        body.driver_opts,
    ) {
        Ok(v) => json(StatusCode::CREATED, &volume_json(&v, None)),
        Err(e) => engine_error(e),
    }
}

pub fn list(ctx: &Ctx) -> Resp {
    let filters = match parse_filters(ctx.q("filters")) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match ctx.engine.volumes(&filters) {
        Ok(vs) => json(
            StatusCode::OK,
            &json!({
                "Volumes": vs.iter().map(|v| volume_json(v, None)).collect::<Vec<_>>(),
                "Warnings": null,
            }),
        ),
        Err(e) => engine_error(e),
    }
}

pub fn inspect(ctx: &Ctx, name: &str) -> Resp {
    match ctx.engine.volume(name) {
        Ok(v) => json(StatusCode::OK, &volume_json(&v, None)),
        Err(e) => engine_error(e),
    }
}

pub fn remove(ctx: &Ctx, name: &str) -> Resp {
    match ctx.engine.remove_volume(name, ctx.flag("force")) {
        Ok(()) => status_only(StatusCode::NO_CONTENT),
        Err(e) => engine_error(e),
    }
}

pub fn prune(ctx: &Ctx) -> Resp {
    let filters = match parse_filters(ctx.q("filters")) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match ctx.engine.prune_volumes(&filters) {
        Ok((deleted, space)) => json(
            StatusCode::OK,
            &json!({ "VolumesDeleted": deleted, "SpaceReclaimed": space }),
        ),
        Err(e) => engine_error(e),
    }
}
