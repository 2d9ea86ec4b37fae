//! `/images/...`: import (`create?fromSrc=-`), list, inspect, tag, remove.

use berth_engine::{ImageRecord, ImportOptions, ProgressEvent, ProgressStream};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use crate::{engine_error, error, json, Ctx, Resp};

/// Feeds the async request body into a blocking `Read` (for the importer and the
/// loader, which run on a blocking thread). Abort the handle when done.
pub(crate) fn blocking_body(
    req: Request<Incoming>,
) -> (berth_engine::ChannelReader, tokio::task::JoinHandle<bool>) {
    berth_engine::ChannelReader::feed_with_idle_limit(
        req.into_body(),
        Some(crate::body_idle_limit()),
    )
}

/// Adapts the async request body into a blocking `Read` for the importer.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let Some(src) = ctx.q("fromSrc") else {
        if let Some(image) = ctx.q("fromImage").filter(|i| !i.is_empty()) {
            let name = match ctx.q("tag").filter(|t| !t.is_empty()) {
                Some(tag) if tag.starts_with("sha256:") => format!("{image}@{tag}"),
                Some(tag) => format!("{image}:{tag}"),
                None => image.to_string(),
            };
            let auth = registry_auth(&req);
            let rx = ctx.engine.pull(&name, auth);
            return stream_response(rx);
        }
        return error(StatusCode::BAD_REQUEST, "fromSrc or fromImage is required");
    };
    if src != "-" {
        return error(
            StatusCode::BAD_REQUEST,
            "only fromSrc=- (the request body) is supported",
        );
    }
    let reference = match (ctx.q("repo"), ctx.q("tag")) {
        (Some(r), Some(t)) if !r.is_empty() && !t.is_empty() => Some(format!("{r}:{t}")),
        (Some(r), _) if !r.is_empty() => Some(r.to_string()),
        _ => None,
    };
    let changes = ctx.all("changes");
    let opts = ImportOptions {
        reference,
        changes,
        message: ctx.q("message").unwrap_or("").to_string(),
    };

    let (reader, feeder) = blocking_body(req);
    let engine = ctx.engine.clone();
    let result = tokio::task::spawn_blocking(move || engine.import_image(reader, opts)).await;
    feeder.abort();
    match result {
        Ok(Ok(image)) => json(StatusCode::OK, &json!({ "status": image.id })),
        Ok(Err(e)) => engine_error(e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("import failed: {e}"),
        ),
    }
}

fn unix_seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn summary(i: &ImageRecord, containers: usize) -> serde_json::Value {
    json!({
        "Id": i.id,
        "ParentId": "",
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Created": unix_seconds(&i.created),
        "Size": i.size,
        "SharedSize": -1,
        "VirtualSize": i.size,
        "Labels": i.config.config.labels,
        "Containers": containers,
    })
}

pub fn list(ctx: &Ctx) -> Resp {
    let all = ctx
        .engine
        .containers(true, &Default::default())
        .unwrap_or_default();
    let show_all = ctx.flag("all");
    let filters = match crate::containers::parse_filters(ctx.q("filters")) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Some(key) = filters
        .keys()
        .find(|k| !["dangling", "label", "reference"].contains(&k.as_str()))
    {
        return error(StatusCode::BAD_REQUEST, &format!("invalid filter '{key}'"));
    }
    let images: Vec<_> = ctx
        .engine
        .images()
        .iter()
        .filter(|i| image_matches(i, &filters))
        .filter(|i| show_all || !ctx.engine.is_intermediate(&i.id))
        .map(|i| summary(i, all.iter().filter(|c| c.image_id == i.id).count()))
        .collect();
    json(StatusCode::OK, &images)
}

/// docker's image list filters: `dangling`, `label` (all must match) and
/// `reference` (a `*`/`?` pattern on `name:tag`, or on the name alone when it
/// has no tag).
fn image_matches(i: &ImageRecord, filters: &berth_engine::Filters) -> bool {
    filters.iter().all(|(key, values)| match key.as_str() {
        "label" => berth_engine::labels_match(values, |k| {
            i.config.config.labels.get(k).map(String::as_str)
        }),
        "dangling" => values
            .iter()
            .any(|v| matches!(v.as_str(), "true" | "1") == i.repo_tags.is_empty()),
        "reference" => values.iter().any(|pattern| {
            i.repo_tags.iter().any(|tag| {
                let name = tag.rsplit_once(':').map_or(tag.as_str(), |(n, _)| n);
                let subject = if pattern.contains(':') {
                    tag.as_str()
                } else {
                    name
                };
                berth_engine::path_match(pattern, subject)
            })
        }),
        _ => false,
    })
}

pub fn inspect(ctx: &Ctx, name: &str) -> Resp {
    let i = match ctx.engine.image(name) {
        Ok(i) => i,
        Err(e) => return engine_error(e),
    };
    let layers_dir = ctx.engine.store().root().join("layers");
    json(
        StatusCode::OK,
        &json!({
            "Id": i.id,
            "RepoTags": i.repo_tags,
            "RepoDigests": i.repo_digests,
            "Parent": "",
            "Comment": i.comment,
            "Created": i.created,
            "DockerVersion": "",
            "Author": i.config.author,
            "Config": i.config.config,
            "Architecture": i.config.architecture,
            "Os": i.config.os,
            "Size": i.size,
            "VirtualSize": i.size,
            "GraphDriver": { "Name": "overlay2", "Data": {
                "LowerDir": i.config.rootfs.diff_ids.iter().rev()
                    .map(|d| layers_dir.join(d.trim_start_matches("sha256:")).display().to_string())
                    .collect::<Vec<_>>().join(":") } },
            "RootFS": { "Type": "layers", "Layers": i.config.rootfs.diff_ids },
            "Metadata": { "LastTagTime": i.created },
        }),
    )
}

pub fn tag(ctx: &Ctx, name: &str) -> Resp {
    let Some(repo) = ctx.q("repo").filter(|r| !r.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "repository name is required");
    };
    let target = match ctx.q("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    match ctx.engine.tag_image(name, &target) {
        Ok(()) => crate::status_only(StatusCode::CREATED),
        Err(e) => engine_error(e),
    }
}

/// docker's `{"Untagged": ...}` / `{"Deleted": ...}` report entries.
pub(crate) fn deletions_json(report: &[berth_engine::ImageDeletion]) -> Vec<serde_json::Value> {
    report
        .iter()
        .map(|d| match d {
            berth_engine::ImageDeletion::Untagged(tag) => json!({ "Untagged": tag }),
            berth_engine::ImageDeletion::Deleted(id) => json!({ "Deleted": id }),
        })
        .collect()
}

pub fn remove(ctx: &Ctx, name: &str) -> Resp {
    match ctx.engine.remove_image(name, ctx.flag("force")) {
        Ok(report) => json(StatusCode::OK, &deletions_json(&report)),
        Err(e) => engine_error(e),
    }
}

pub fn history(ctx: &Ctx, name: &str) -> Resp {
    let history = match ctx.engine.image_history(name) {
        Ok(h) => h,
        Err(e) => return engine_error(e),
    };
    let body: Vec<serde_json::Value> = history
        .iter()
        .map(|h| {
            let (id, tags) = match &h.image {
                Some((id, tags)) => (id.as_str(), json!(tags)),
                None => ("<missing>", serde_json::Value::Null),
            };
            json!({
                "Id": id, "Created": h.created, "CreatedBy": h.created_by,
                "Tags": tags, "Size": h.size, "Comment": h.comment,
            })
        })
        .collect();
    json(StatusCode::OK, &body)
}

pub fn prune(ctx: &Ctx) -> Resp {
    // Docker: dangling images only, unless filters say dangling=false.
    let all = ctx
        .q("filters")
        .is_some_and(|f| f.contains("\"dangling\"") && f.contains("false"));
    match ctx.engine.prune_images(all) {
        Ok(report) => json(
            StatusCode::OK,
            &json!({ "ImagesDeleted": deletions_json(&report), "SpaceReclaimed": 0 }),
        ),
        Err(e) => engine_error(e),
    }
}

pub fn save(ctx: &Ctx, names: Vec<String>) -> Resp {
    if names.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no image names given");
    }
    match ctx.engine.save_images(&names) {
        Ok(rx) => hyper::Response::builder()
            .header("Content-Type", "application/x-tar")
            .body(crate::Body::Stream(rx))
            .unwrap_or_else(|_| hyper::Response::new(crate::Body::empty())),
        Err(e) => engine_error(e),
    }
}

pub async fn load(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let (reader, feeder) = blocking_body(req);
    let engine = ctx.engine.clone();
    let result = tokio::task::spawn_blocking(move || engine.load_images(reader)).await;
    feeder.abort();
    match result {
        Ok(Ok(loaded)) => {
            let mut out = Vec::new();
            for r in loaded {
                let what = if r.starts_with("sha256:") {
                    "Loaded image ID"
                } else {
                    "Loaded image"
                };
                out.extend(
                    serde_json::to_vec(&json!({ "stream": format!("{what}: {r}\n") }))
                        .unwrap_or_default(),
                );
                out.push(b'\n');
            }
            hyper::Response::builder()
                .header("Content-Type", "application/json")
                .body(crate::Body::full(out))
                .unwrap_or_else(|_| hyper::Response::new(crate::Body::empty()))
        }
        Ok(Err(e)) => engine_error(e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("load failed: {e}"),
        ),
    }
}

/// `POST /build`: a tar context in, docker's JSON progress stream out.
pub async fn build(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let json_map = |key: &str| -> Result<std::collections::BTreeMap<String, Option<String>>, Resp> {
        match ctx.q(key).filter(|v| !v.is_empty()) {
            None => Ok(Default::default()),
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid {key}: {e}"))),
        }
    };
    let build_args = match json_map("buildargs") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let labels = match json_map("labels") {
        Ok(m) => m
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        Err(r) => return r,
    };
    let int = |key: &str| ctx.q(key).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let opts = berth_engine::BuildOptions {
        tags: ctx.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: ctx.q("dockerfile").unwrap_or("Dockerfile").to_string(),
        build_args,
        target: ctx.q("target").map(String::from),
        no_cache: ctx.flag("nocache"),
        labels,
        network_mode: ctx.q("networkmode").unwrap_or("default").to_string(),
        quiet: ctx.flag("q"),
        memory: int("memory"),
        cpu_shares: int("cpushares"),
    };
    let (reader, _feeder) = blocking_body(req);
    stream_response(ctx.engine.build(reader, opts))
}

/// `POST /build/prune`
pub fn build_prune(ctx: &Ctx) -> Resp {
    match ctx.engine.prune_build_cache(ctx.flag("all")) {
        Ok((deleted, space)) => json(
            StatusCode::OK,
            &json!({ "CachesDeleted": deleted, "SpaceReclaimed": space }),
        ),
        Err(e) => engine_error(e),
    }
}

/// Docker's `X-Registry-Auth`: base64url JSON credentials (absent or `{}` = none).
fn registry_auth(req: &Request<Incoming>) -> Option<berth_engine::RegistryAuth> {
    let raw = req.headers().get("X-Registry-Auth")?.to_str().ok()?;
    let auth = berth_api_types::AuthConfig::from_header(raw)?;
    Some(berth_engine::RegistryAuth {
        username: auth.username,
        password: auth.password,
        identity_token: auth.identitytoken,
    })
}

/// One progress event as a line of docker's JSON stream.
fn progress_json(event: &ProgressEvent) -> serde_json::Value {
    match event {
        ProgressEvent::Status {
            id: Some(id),
            status,
        } => json!({ "status": status, "id": id }),
        ProgressEvent::Status { id: None, status } => json!({ "status": status }),
        ProgressEvent::Output(text) => json!({ "stream": text }),
        ProgressEvent::Built { id } => json!({ "aux": { "ID": id } }),
        ProgressEvent::Pushed { tag, digest, size } => json!({
            "progressDetail": {},
            "aux": { "Tag": tag, "Digest": digest, "Size": size },
        }),
        ProgressEvent::Error(message) => {
            json!({ "errorDetail": { "message": message }, "error": message })
        }
    }
}

/// A pull's, push's or build's progress as docker's JSON stream.
fn stream_response(mut events: ProgressStream) -> Resp {
    let (tx, body) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let mut line = serde_json::to_vec(&progress_json(&event)).unwrap_or_default();
            line.push(b'\n');
            if tx.send(bytes::Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    hyper::Response::builder()
        .header("Content-Type", "application/json")
        .body(crate::Body::Stream(body))
        .unwrap_or_else(|_| hyper::Response::new(crate::Body::empty()))
}

/// `POST /images/{name}/push?tag=`
pub fn push(ctx: &Ctx, name: &str, req: &Request<Incoming>) -> Resp {
    let name = match ctx.q("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name.to_string(),
    };
    if let Err(e) = ctx.engine.image(&name) {
        return engine_error(e);
    }
    let rx = ctx.engine.push(&name, registry_auth(req));
    stream_response(rx)
}

/// `POST /auth`
pub async fn auth(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::AuthConfig = match crate::read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let auth = berth_engine::RegistryAuth {
        username: body.username,
        password: body.password,
        identity_token: body.identitytoken,
    };
    match ctx.engine.login(&body.serveraddress, auth).await {
        Ok(status) => json(
            StatusCode::OK,
            &json!({ "Status": status, "IdentityToken": "" }),
        ),
        Err(e) => engine_error(e),
    }
}
