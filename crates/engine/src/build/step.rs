//! One Dockerfile instruction of a stage: what it changes in the image
//! config, the layer it adds, and the cache key it leaves.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use berth_dockerfile::{Command, CommandLine, Dockerfile, IgnoreMatcher, Instruction};

use super::*;
use crate::model::HistoryStep;
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
        // Metadata steps: a new config, no layer.
        let meta = super::metadata::apply(&ins, state, &opts.build_args).at(line)?;
        if let Some(created_by) = meta {
            let history = HistoryStep::created_by(created_by);
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
                    HistoryStep::created_by(shown),
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
                let history = HistoryStep::created_by(format!(
                    "/bin/sh -c #(nop) {what} {}",
                    files.sources.join(" ")
                ));
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
