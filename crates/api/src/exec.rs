//! `/containers/{id}/exec` and `/exec/{id}/...`.

use berth_engine::ExecConfig;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::containers::{hijack_response, pump, resolve, spawn_pump};
use crate::{engine_error, error, json, read_json, status_only, Body, Ctx, Resp};

pub async fn create(ctx: &Ctx, container: &str, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::ExecCreateRequest = match read_json(req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let config = ExecConfig {
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        tty: body.tty,
        cmd: body.cmd.unwrap_or_default(),
        env: body.env,
        working_dir: body.working_dir,
        user: body.user,
        privileged: body.privileged,
        detach_keys: body.detach_keys,
    };
    match ctx.engine.create_exec(container, config) {
        Ok(e) => json(StatusCode::CREATED, &json!({ "Id": e.id })),
        Err(e) => engine_error(e),
    }
}

const EXEC_START_GRACE: std::time::Duration = std::time::Duration::from_millis(20);

pub async fn start(ctx: &Ctx, id: &str, mut req: Request<Incoming>) -> Resp {
    let upgrade = req.headers().get(hyper::header::UPGRADE).is_some();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body: berth_api_types::ExecStartRequest = match read_json(req).await {
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
    let c = exec.config.clone();
    if upgrade {
        // Like docker: answer 101 first and start the process only once the
        // connection is ours, so that no output can arrive ahead of (and be
        // buffered away with) the 101 response in the client's HTTP reader.
        if let Err(e) = ctx.engine.check_exec_startable(id) {
            return engine_error(e);
        }
        let engine = ctx.engine.clone();
        let id = id.to_string();
        let tty = c.tty;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut client = TokioIo::new(upgraded);
            // Clients such as docker-py read the 101 through a buffered reader and
            // then switch to the raw socket; output that lands in that buffer is
            // lost to them. A short pause lets them switch first (this is the exec
            // path, not the container start path).
            tokio::time::sleep(EXEC_START_GRACE).await;
            let attach = Some((c.attach_stdin, c.attach_stdout, c.attach_stderr));
            match engine.start_exec(&id, attach).await {
                Ok((tty, Some(stream))) => {
                    if let Some(monitor) = resolve(stream).await {
                        pump(client, monitor, tty).await;
                    }
                }
                Ok((_, None)) => {}
                Err(e) => {
                    // The error goes into the stream (stdout frame without a TTY), as
                    // docker does; the exit code is in the exec's inspect.
                    let text = format!("{e}\r\n");
                    let mut bytes = Vec::new();
                    if !tty {
                        bytes.extend_from_slice(&berth_monitor::frame_header(
                            berth_monitor::STDOUT,
                            text.len(),
                        ));
                    }
                    bytes.extend_from_slice(text.as_bytes());
                    let _ = client.write_all(&bytes).await;
                    let _ = client.shutdown().await;
                }
            }
        });
        return hijack_response(tty);
    }
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
    spawn_pump(false, on_upgrade, stream, tty).unwrap_or_else(|| hijack_response(tty))
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
