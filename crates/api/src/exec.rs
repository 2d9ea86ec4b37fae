//! `/containers/{id}/exec` and `/exec/{id}/...`.

use berth_engine::ExecConfig;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::containers::{hijack_response, spawn_pump};
use crate::{engine_error, error, json, read_json, status_only, Body, Ctx, Resp};

pub async fn create(ctx: &Ctx, container: &str, req: Request<Incoming>) -> Resp {
    let config: ExecConfig = match read_json(req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match ctx.engine.create_exec(container, config) {
        Ok(e) => json(StatusCode::CREATED, &json!({ "Id": e.id })),
        Err(e) => engine_error(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
}

pub async fn start(ctx: &Ctx, id: &str, mut req: Request<Incoming>) -> Resp {
    let upgrade = req.headers().get(hyper::header::UPGRADE).is_some();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body: StartBody = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let exec = match ctx.engine.exec(id) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    if body.detach {
        return match ctx.engine.start_exec(id, None).await {
            Ok(_) => Response::builder()
                .status(StatusCode::OK)
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty())),
            Err(e) => engine_error(e),
        };
    }
    let c = &exec.config;
    let (tty, stream) = match ctx
        .engine
        .start_exec(id, Some((c.attach_stdin, c.attach_stdout, c.attach_stderr)))
        .await
    {
        Ok((tty, Some(stream))) => (tty, stream),
        Ok((_, None)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exec started without a stream",
            )
        }
        Err(e) => return engine_error(e),
    };
    spawn_pump(upgrade, on_upgrade, stream, tty).unwrap_or_else(|| hijack_response(tty))
}

pub fn inspect(ctx: &Ctx, id: &str) -> Resp {
    let e = match ctx.engine.exec(id) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    json(
        StatusCode::OK,
        &json!({
            "ID": e.id,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "ProcessConfig": {
                "tty": e.config.tty,
                "entrypoint": e.config.cmd.first(),
                "arguments": e.config.cmd.iter().skip(1).collect::<Vec<_>>(),
                "privileged": e.config.privileged,
                "user": e.config.user,
            },
            "OpenStdin": e.config.attach_stdin,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.config.detach_keys,
            "Pid": e.pid,
        }),
    )
}

pub async fn resize(ctx: &Ctx, id: &str) -> Resp {
    let (h, w) = match (ctx.int("h"), ctx.int("w")) {
        (Ok(Some(h)), Ok(Some(w))) => (h, w),
        _ => return error(StatusCode::BAD_REQUEST, "h and w are required integers"),
    };
    match ctx
        .engine
        .resize_exec(
            id,
            h.clamp(0, u16::MAX as i64) as u16,
            w.clamp(0, u16::MAX as i64) as u16,
        )
        .await
    {
        Ok(()) => status_only(StatusCode::OK),
        Err(e) => engine_error(e),
    }
}
