//! One Dockerfile instruction of a stage: what it changes in the image
//! config, the layer it adds, and the cache key it leaves.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use berth_dockerfile::{Command, CommandLine, Dockerfile, IgnoreMatcher, Instruction};
use serde_json::json;

use super::*;
use crate::Engine;

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn build_step(
        self: &Arc<Self>,
        dockerfile: &Dockerfile,
        built: &HashMap<usize, String>,
        ctx_dir: &Path,
        ignore: &IgnoreMatcher,
        ins: &Instruction,
        state: &mut StageState,
        opts: &BuildOptions,
        progress: &Progress,
    ) -> std::result::Result<(), BuildError> {
        let escape = dockerfile.escape();
        let line = ins.line;
        let ins = ins.expand(&state.env(), escape).at(line)?;
        let cfg = &mut state.blob.config;
        let nop = |text: String| json!({ "created_by": format!("/bin/sh -c #(nop) {text}") });
        // Metadata steps: a new config, no layer.
        let meta: Option<serde_json::Value> = match &ins.command {
            Command::Env(kvs) => {
                for kv in kvs {
                    cfg.env
                        .retain(|e| e.split('=').next() != Some(kv.key.as_str()));
                    cfg.env.push(format!("{}={}", kv.key, kv.value));
                }
                Some(nop(ins.original.trim().to_string()))
            }
            Command::Label(kvs) => {
                for kv in kvs {
                    cfg.labels.insert(kv.key.clone(), kv.value.clone());
                }
                Some(nop(ins.original.trim().to_string()))
            }
            Command::Workdir(dir) => {
                cfg.working_dir = if dir.starts_with('/') {
                    dir.clone()
                } else {
                    Path::new(if cfg.working_dir.is_empty() {
                        "/"
                    } else {
                        &cfg.working_dir
                    })
                    .join(dir)
                    .display()
                    .to_string()
                };
                Some(nop(format!("WORKDIR {}", cfg.working_dir)))
            }
            Command::User(u) => {
                cfg.user = u.clone();
                Some(nop(format!("USER {u}")))
            }
            Command::Expose(ports) => {
                let map = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports {
                    let key = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    map.insert(key, json!({}));
                }
                Some(nop(format!("EXPOSE {}", ports.join(" "))))
            }
            Command::Volume(paths) => {
                let map = cfg.volumes.get_or_insert_with(BTreeMap::new);
                for p in paths {
                    map.insert(p.clone(), json!({}));
                }
                Some(nop(format!("VOLUME {paths:?}")))
            }
            Command::Cmd(cl) => {
                cfg.cmd = command_argv(cl, &cfg.shell);
                Some(nop(format!("CMD {:?}", cfg.cmd)))
            }
            Command::Entrypoint(cl) => {
                cfg.entrypoint = command_argv(cl, &cfg.shell);
                // Docker: a new ENTRYPOINT resets a CMD inherited from the base.
                Some(nop(format!("ENTRYPOINT {:?}", cfg.entrypoint)))
            }
            Command::Shell(shell) => {
                cfg.shell = shell.clone();
                Some(nop(format!("SHELL {shell:?}")))
            }
            Command::StopSignal(sig) => {
                crate::kill::parse_signal(sig).at(line)?;
                cfg.stop_signal = Some(sig.clone());
                Some(nop(format!("STOPSIGNAL {sig}")))
            }
            Command::Maintainer(m) => {
                state.blob.author = m.clone();
                Some(nop(format!("MAINTAINER {m}")))
            }
            Command::Onbuild(trigger) => {
                cfg.on_build.push(trigger.original.trim().to_string());
                Some(nop(format!("ONBUILD {}", trigger.original.trim())))
            }
            Command::Healthcheck(h) => {
                cfg.healthcheck = Some(healthcheck_of(h));
                Some(nop(ins.original.trim().to_string()))
            }
            Command::Arg(defs) => {
                for d in defs {
                    let value = opts
                        .build_args
                        .get(&d.name)
                        .cloned()
                        .flatten()
                        .or_else(|| d.default.clone());
                    state.args.retain(|(k, _)| k != &d.name);
                    if let Some(v) = value {
                        state.args.push((d.name.clone(), v));
                    }
                }
                Some(nop(ins.original.trim().to_string()))
            }
            Command::Run(_) | Command::Copy(_) | Command::Add(_) => None,
        };
        if let Some(history) = meta {
            let key = sha256_hex(format!("{}\0{:?}", ins.original, state.blob.config).as_bytes());
            if let Some(hit) = self.cached_step(&state.parent, &key, opts) {
                progress.stream(" ---> Using cache\n").await;
                self.adopt(state, hit, progress).await;
                return Ok(());
            }
            let record = self.record_image(
                state.blob.clone(),
                None,
                history,
                state.size,
                "",
                &state.parent,
                &key,
            )?;
            self.adopt(state, record, progress).await;
            return Ok(());
        }

        match &ins.command {
            Command::Run(run) => {
                let argv = match run.script() {
                    Some(script) => {
                        let mut argv = shell_of(&state.blob.config.shell);
                        argv.push(script);
                        argv
                    }
                    None => match &run.command {
                        CommandLine::Exec(v) => v.clone(),
                        CommandLine::Shell(s) => {
                            let mut argv = shell_of(&state.blob.config.shell);
                            argv.push(s.clone());
                            argv
                        }
                    },
                };
                if argv.is_empty() {
                    return Err(BuildError::at(line, "RUN needs a command"));
                }
                let args_env: Vec<String> =
                    state.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let shown = if args_env.is_empty() {
                    argv.join(" ")
                } else {
                    format!(
                        "|{} {} {}",
                        args_env.len(),
                        args_env.join(" "),
                        argv.join(" ")
                    )
                };
                let key = sha256_hex(
                    format!("RUN\0{argv:?}\0{args_env:?}\0{:?}", state.blob.config).as_bytes(),
                );
                if let Some(hit) = self.cached_step(&state.parent, &key, opts) {
                    progress.stream(" ---> Using cache\n").await;
                    self.adopt(state, hit, progress).await;
                    return Ok(());
                }
                if state.parent.is_empty() {
                    return Err(BuildError::at(
                        line,
                        "RUN on an empty (scratch) image: no command can run",
                    ));
                }
                let layer = self
                    .run_step(state, &argv, &args_env, opts, progress)
                    .await
                    .map_err(|m| BuildError::at(line, m))?;
                let record = self.record_image(
                    state.blob.clone(),
                    Some(&layer),
                    json!({ "created_by": shown }),
                    state.size,
                    "",
                    &state.parent,
                    &key,
                )?;
                self.adopt(state, record, progress).await;
                Ok(())
            }
            Command::Copy(files) | Command::Add(files) => {
                let is_add = matches!(ins.command, Command::Add(_));
                let engine = self.clone();
                let plan_input = CopyInput {
                    files: files.clone(),
                    is_add,
                    ctx_dir: ctx_dir.to_path_buf(),
                    workdir: state.blob.config.working_dir.clone(),
                    lowers: self.lowers_of(&state.blob)?,
                    from_lowers: match &files.from {
                        Some(from) => Some(self.copy_from_lowers(dockerfile, built, from)?),
                        None => None,
                    },
                    ignore: files.from.is_none().then(|| ignore.patterns()),
                };
                let planned = tokio::task::spawn_blocking(move || engine.plan_copy(plan_input))
                    .await
                    .map_err(|e| BuildError::at(line, e.to_string()))?
                    .map_err(|e| BuildError::at(line, e))?;
                let key = sha256_hex(
                    format!(
                        "{}\0{}\0{}",
                        ins.original, planned.content_hash, state.parent
                    )
                    .as_bytes(),
                );
                if let Some(hit) = self.cached_step(&state.parent, &key, opts) {
                    progress.stream(" ---> Using cache\n").await;
                    self.adopt(state, hit, progress).await;
                    return Ok(());
                }
                let engine = self.clone();
                let layer = tokio::task::spawn_blocking(move || engine.write_copy_layer(planned))
                    .await
                    .map_err(|e| BuildError::at(line, e.to_string()))?
                    .map_err(|e| BuildError::at(line, e))?;
                let what = if is_add { "ADD" } else { "COPY" };
                let history = json!({ "created_by": format!("/bin/sh -c #(nop) {what} {}", files.sources.join(" ")) });
                let record = self.record_image(
                    state.blob.clone(),
                    Some(&layer),
                    history,
                    state.size,
                    "",
                    &state.parent,
                    &key,
                )?;
                self.adopt(state, record, progress).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
