//! `build`: Dockerfiles to images, the classic builder's way.
//!
//! The context tar is unpacked into a private directory; the Dockerfile is parsed
//! by `berth-dockerfile`; only the stages the target needs are built. Every step
//! yields an image (an intermediate one, hidden from `images` unless `-a`) whose
//! `parent` is the previous step's and whose `build_key` hashes what the step did:
//! the instruction after expansion, the build args it saw, and for COPY/ADD the
//! names, modes and contents of the files it read (never their mtimes). A step
//! whose key already exists as a child of the same parent is taken from cache.
//!
//! RUN runs in a real container (same isolation and limits as any other, with the
//! build's network mode) whose writable layer is then committed. COPY and ADD
//! never start a container: their layer tar is written straight from the sources.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::{Command, CommandLine, CopyFiles, Dockerfile, IgnoreMatcher, Instruction};
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::model::{ContainerConfig, HostConfig, ImageConfigBlob, ImageRecord, RootFs};
use crate::{Engine, EngineError, Result};

/// Build cache kept by default (intermediate images no tagged image needs).
pub const DEFAULT_CACHE_LIMIT: u64 = 4 << 30;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub tags: Vec<String>,
    /// Path of the Dockerfile inside the context.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: BTreeMap<String, String>,
    /// none | host | bridge | default
    pub network_mode: String,
    /// Only the final image ID is reported.
    pub quiet: bool,
    pub memory: i64,
    pub cpu_shares: i64,
}

/// Progress messages in docker's JSON stream shape.
struct Progress {
    tx: mpsc::Sender<Bytes>,
    quiet: bool,
}

impl Progress {
    async fn send(&self, value: serde_json::Value) {
        let mut line = serde_json::to_vec(&value).unwrap_or_default();
        line.push(b'\n');
        let _ = self.tx.send(Bytes::from(line)).await;
    }

    async fn stream(&self, text: impl Into<String>) {
        if !self.quiet {
            self.send(json!({ "stream": text.into() })).await;
        }
    }

    async fn error(&self, message: &str) {
        self.send(json!({ "errorDetail": { "message": message }, "error": message }))
            .await;
    }
}

/// A build failure, with the Dockerfile line it happened on when there is one.
struct BuildError {
    line: Option<usize>,
    message: String,
}

impl BuildError {
    fn at(line: usize, message: impl Into<String>) -> BuildError {
        BuildError {
            line: Some(line),
            message: message.into(),
        }
    }

    fn text(&self) -> String {
        match self.line {
            Some(l) => format!("Dockerfile line {l}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

impl From<EngineError> for BuildError {
    fn from(e: EngineError) -> Self {
        BuildError {
            line: None,
            message: e.to_string(),
        }
    }
}

trait AtLine<T> {
    fn at(self, line: usize) -> std::result::Result<T, BuildError>;
}

impl<T, E: std::fmt::Display> AtLine<T> for std::result::Result<T, E> {
    fn at(self, line: usize) -> std::result::Result<T, BuildError> {
        self.map_err(|e| BuildError::at(line, e.to_string()))
    }
}

/// Where one stage stands: the image the next step builds on.
struct StageState {
    /// `""` for `scratch` before any step.
    parent: String,
    blob: ImageConfigBlob,
    size: u64,
    /// ARGs in scope (name → value).
    args: Vec<(String, String)>,
}

impl StageState {
    /// What instructions expand against: ARGs, overridden by ENV.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.args.clone();
        for e in &self.blob.config.env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            env.push((k.to_string(), v.to_string()));
        }
        env
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

impl Engine {
    /// Starts a build; the returned stream carries docker's progress messages and
    /// ends with the image ID (`aux`) or an error message.
    pub fn build(
        self: &Arc<Self>,
        context: impl Read + Send + 'static,
        opts: BuildOptions,
    ) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(64);
        let engine = self.clone();
        tokio::spawn(async move {
            let progress = Progress {
                tx,
                quiet: opts.quiet,
            };
            let workdir = engine
                .config
                .data_root
                .join("build")
                .join(&crate::random_id()[..16]);
            let result = engine.build_in(&workdir, context, &opts, &progress).await;
            let _ = std::fs::remove_dir_all(&workdir);
            match result {
                Ok(id) => {
                    progress.send(json!({ "aux": { "ID": id } })).await;
                    if opts.quiet {
                        progress.send(json!({ "stream": format!("{id}\n") })).await;
                    } else {
                        progress
                            .stream(format!("Successfully built {}\n", short(&id)))
                            .await;
                        for t in &opts.tags {
                            progress
                                .stream(format!(
                                    "Successfully tagged {}\n",
                                    crate::normalize_reference(t)
                                ))
                                .await;
                        }
                    }
                    if let Err(e) = engine.enforce_build_cache_limit(DEFAULT_CACHE_LIMIT) {
                        tracing::warn!(error = %e, "build cache clean-up");
                    }
                }
                Err(e) => progress.error(&e.text()).await,
            }
        });
        rx
    }

    async fn build_in(
        self: &Arc<Self>,
        workdir: &Path,
        context: impl Read + Send + 'static,
        opts: &BuildOptions,
        progress: &Progress,
    ) -> std::result::Result<String, BuildError> {
        for t in &opts.tags {
            let n = crate::normalize_reference(t);
            if !crate::image::valid_reference(&n) {
                return Err(
                    EngineError::InvalidArgument(format!("invalid reference format: {t}")).into(),
                );
            }
        }
        let ctx_dir = workdir.join("context");
        std::fs::create_dir_all(&ctx_dir)
            .map_err(|e| EngineError::Internal(format!("create {}: {e}", ctx_dir.display())))?;
        let dest = ctx_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut buffered = std::io::BufReader::new(context);
            let unpacked = {
                let stream = berth_store::decompressed(&mut buffered)?;
                berth_store::unpack_plain(stream, &dest)
            };
            let _ = std::io::copy(&mut buffered, &mut std::io::sink());
            unpacked
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| EngineError::InvalidArgument(format!("read build context: {e}")))?;

        let dockerfile_name = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            &opts.dockerfile
        };
        let rel = clean_relative(dockerfile_name).ok_or_else(|| BuildError {
            line: None,
            message: format!("invalid Dockerfile path {dockerfile_name:?}"),
        })?;
        let text = berth_volume::scoped_path(&ctx_dir, &rel.display().to_string())
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .ok_or_else(|| BuildError {
                line: None,
                message: format!("Cannot locate specified Dockerfile: {dockerfile_name}"),
            })?;
        let dockerfile = berth_dockerfile::parse(&text).map_err(|e| BuildError {
            line: None,
            message: e.to_string(),
        })?;
        let ignore = match std::fs::read_to_string(ctx_dir.join(".dockerignore")) {
            Ok(t) => IgnoreMatcher::new(&t).map_err(|e| BuildError {
                line: None,
                message: format!(".dockerignore: {e}"),
            })?,
            Err(_) => IgnoreMatcher::new("").map_err(|e| BuildError {
                line: None,
                message: e.to_string(),
            })?,
        };

        let order = needed_stages(&dockerfile, opts.target.as_deref())?;
        let total: usize = order
            .iter()
            .map(|&i| dockerfile.stages[i].instructions.len() + 1)
            .sum();
        let mut step = 0;
        let mut built: HashMap<usize, String> = HashMap::new();
        let mut used_args: BTreeSet<String> = BTreeSet::new();
        let escape = dockerfile.escape();

        // Global ARGs: FROM lines see them.
        let mut global: Vec<(String, String)> = Vec::new();
        for ins in &dockerfile.global_args {
            if let Command::Arg(defs) = &ins.command {
                for d in defs {
                    let default = d
                        .default
                        .as_deref()
                        .map(|v| berth_dockerfile::expand(v, &global, escape))
                        .transpose()
                        .at(ins.line)?;
                    let value = opts.build_args.get(&d.name).cloned().flatten().or(default);
                    used_args.insert(d.name.clone());
                    if let Some(v) = value {
                        global.push((d.name.clone(), v));
                    }
                }
            }
        }

        let mut final_id = String::new();
        for &index in &order {
            let stage = &dockerfile.stages[index];
            step += 1;
            progress
                .stream(format!(
                    "Step {step}/{total} : FROM {}{}\n",
                    stage.base,
                    stage
                        .name
                        .as_ref()
                        .map(|n| format!(" AS {n}"))
                        .unwrap_or_default()
                ))
                .await;
            let (base, _platform) = stage.expand_from(&global, escape).at(stage.line)?;
            let mut state = self.stage_base(&dockerfile, &built, &base).at(stage.line)?;
            if !state.parent.is_empty() {
                progress
                    .stream(format!(" ---> {}\n", short(&state.parent)))
                    .await;
            }
            // ONBUILD triggers of the base run first.
            let triggers = std::mem::take(&mut state.blob.config.on_build);
            let mut instructions: Vec<Instruction> = Vec::new();
            for t in &triggers {
                let parsed =
                    berth_dockerfile::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                        BuildError::at(stage.line, format!("ONBUILD trigger {t:?}: {e}"))
                    })?;
                if let Some(s) = parsed.stages.first() {
                    instructions.extend(s.instructions.iter().cloned().map(|mut i| {
                        i.line = stage.line;
                        i
                    }));
                }
            }
            if !triggers.is_empty() {
                progress
                    .stream(format!("# Executing {} build trigger(s)\n", triggers.len()))
                    .await;
            }
            instructions.extend(stage.instructions.iter().cloned());
            let trigger_count = triggers.len();
            for (n, ins) in instructions.iter().enumerate() {
                if n >= trigger_count {
                    step += 1;
                    progress
                        .stream(format!("Step {step}/{total} : {}\n", ins.original.trim()))
                        .await;
                }
                if let Command::Arg(defs) = &ins.command {
                    for d in defs {
                        used_args.insert(d.name.clone());
                    }
                }
                self.build_step(
                    &dockerfile,
                    &built,
                    &ctx_dir,
                    &ignore,
                    ins,
                    &mut state,
                    opts,
                    progress,
                )
                .await?;
            }
            if state.parent.is_empty() {
                // `FROM scratch` with only metadata steps still makes an image.
                let record = self.record_image(
                    state.blob.clone(),
                    None,
                    json!({"created_by": "FROM scratch"}),
                    0,
                    "",
                    "",
                    "",
                )?;
                state.parent = record.id;
            }
            built.insert(index, state.parent.clone());
            final_id = state.parent.clone();
        }

        if !opts.labels.is_empty() {
            let mut image = self.image(&final_id)?;
            let mut blob = image.config.clone();
            for (k, v) in &opts.labels {
                blob.config.labels.insert(k.clone(), v.clone());
            }
            let key = format!("labels {:?}", opts.labels);
            image = self.record_image(
                blob,
                None,
                json!({"created_by": "LABEL (build --label)"}),
                image.size,
                "",
                &image.id,
                &sha256_hex(key.as_bytes()),
            )?;
            final_id = image.id;
        }
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            progress
                .stream(format!(
                    "[Warning] One or more build-args [{}] were not consumed\n",
                    unused
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ))
                .await;
        }
        for t in &opts.tags {
            self.tag_image(&final_id, t)?;
        }
        self.events
            .emit("image", "build", &final_id, BTreeMap::new());
        Ok(final_id)
    }

    /// The state a stage starts from: scratch, an earlier stage, or a local image.
    fn stage_base(
        &self,
        dockerfile: &Dockerfile,
        built: &HashMap<usize, String>,
        base: &str,
    ) -> Result<StageState> {
        if base == "scratch" {
            return Ok(StageState {
                parent: String::new(),
                blob: ImageConfigBlob {
                    architecture: crate::image::go_arch().into(),
                    os: "linux".into(),
                    rootfs: RootFs {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                size: 0,
                args: Vec::new(),
            });
        }
        let lowered = base.to_ascii_lowercase();
        let from_stage = dockerfile
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lowered.as_str()))
            .and_then(|i| built.get(&i));
        let image = match from_stage {
            Some(id) => self.image(id)?,
            None => self.image(base).map_err(|_| {
                EngineError::NotFound(format!(
                    "pull access denied for {base}: the image is not present locally and no registry is configured"
                ))
            })?,
        };
        Ok(StageState {
            parent: image.id.clone(),
            blob: image.config.clone(),
            size: image.size,
            args: Vec::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_step(
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
                crate::lifecycle::parse_signal(sig).at(line)?;
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

    async fn adopt(&self, state: &mut StageState, record: ImageRecord, progress: &Progress) {
        progress
            .stream(format!(" ---> {}\n", short(&record.id)))
            .await;
        state.parent = record.id;
        state.size = record.size;
        let args = std::mem::take(&mut state.args);
        state.blob = record.config;
        state.args = args;
    }

    /// A step's earlier result: the child of `parent` with the same key.
    fn cached_step(&self, parent: &str, key: &str, opts: &BuildOptions) -> Option<ImageRecord> {
        if opts.no_cache {
            return None;
        }
        let st = self.lock();
        st.images
            .values()
            .find(|i| i.parent == parent && i.build_key == key)
            .cloned()
    }

    fn lowers_of(&self, blob: &ImageConfigBlob) -> Result<Vec<PathBuf>> {
        let mut lowers = Vec::new();
        for d in blob.rootfs.diff_ids.iter().rev() {
            lowers.push(self.store.unpack_layer(&berth_store::Digest::parse(d)?)?);
        }
        Ok(lowers)
    }

    /// `COPY --from=`: a stage built earlier (by name or index) or a local image.
    fn copy_from_lowers(
        &self,
        dockerfile: &Dockerfile,
        built: &HashMap<usize, String>,
        from: &str,
    ) -> Result<Vec<PathBuf>> {
        let stage_index = dockerfile
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(from.to_ascii_lowercase().as_str()))
            .or_else(|| from.parse::<usize>().ok());
        let image = match stage_index.and_then(|i| built.get(&i)) {
            Some(id) => self.image(id)?,
            None => self.image(from)?,
        };
        self.lowers_of(&image.config)
    }

    /// Runs one RUN step in a container and returns its committed layer; the error
    /// is docker's message with the command's last output lines.
    async fn run_step(
        self: &Arc<Self>,
        state: &StageState,
        argv: &[String],
        args_env: &[String],
        opts: &BuildOptions,
        progress: &Progress,
    ) -> std::result::Result<berth_store::StoredLayer, String> {
        let mut config = ContainerConfig {
            image: state.parent.clone(),
            entrypoint: argv[..1].to_vec(),
            cmd: argv[1..].to_vec(),
            env: args_env.to_vec(),
            user: state.blob.config.user.clone(),
            working_dir: state.blob.config.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        config.labels.clear();
        let host = HostConfig {
            network_mode: match opts.network_mode.as_str() {
                "" | "default" => "default".into(),
                other => other.into(),
            },
            memory: opts.memory,
            cpu_shares: opts.cpu_shares,
            ..Default::default()
        };
        let c = self
            .create_container(None, config, host)
            .map_err(|e| e.to_string())?;
        progress
            .stream(format!(" ---> Running in {}\n", short(&c.id)))
            .await;
        let result = self.run_and_capture(&c.id, progress).await;
        let layer = match result {
            Ok(()) => self
                .capture_layer(&self.container(&c.id).map_err(|e| e.to_string())?, false)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = self.forget_container(&c.id, true) {
            tracing::warn!(id = %c.id, error = %e, "build container not removed");
        } else {
            progress
                .stream(format!(
                    "Removing intermediate container {}\n",
                    short(&c.id)
                ))
                .await;
        }
        layer
    }

    async fn run_and_capture(
        self: &Arc<Self>,
        id: &str,
        progress: &Progress,
    ) -> std::result::Result<(), String> {
        self.start_container(id).await.map_err(|e| e.to_string())?;
        let (_, mut rx) = self
            .logs(
                id,
                crate::LogOptions {
                    stdout: true,
                    stderr: true,
                    follow: true,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
        let mut frames = Vec::new();
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        while let Some(chunk) = rx.recv().await {
            frames.extend_from_slice(&chunk);
            // stdcopy frames: 8-byte header, then the payload.
            while frames.len() >= 8 {
                let len = u32::from_be_bytes([frames[4], frames[5], frames[6], frames[7]]) as usize;
                if frames.len() < 8 + len {
                    break;
                }
                let text = String::from_utf8_lossy(&frames[8..8 + len]).into_owned();
                frames.drain(..8 + len);
                for l in text.lines() {
                    tail.push_back(l.to_string());
                    if tail.len() > 5 {
                        tail.pop_front();
                    }
                }
                progress.stream(text).await;
            }
        }
        self.wait_not_running(id, None).await;
        let c = self.container(id).map_err(|e| e.to_string())?;
        if c.state.exit_code != 0 {
            let last: Vec<String> = tail.into_iter().collect();
            return Err(format!(
                "The command '{}' returned a non-zero code: {}{}",
                c.argv().join(" "),
                c.state.exit_code,
                if last.is_empty() {
                    String::new()
                } else {
                    format!("; last output:\n{}", last.join("\n"))
                }
            ));
        }
        Ok(())
    }

    /// Removes build cache: intermediate images that no tagged image descends
    /// from and no container uses. With `all`, every cache key is dropped too.
    pub fn prune_build_cache(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let victims = self.cache_only_images();
        let blobs = self.store.root().join("blobs").join("sha256");
        let before = berth_volume::dir_size(&blobs);
        let mut removed = Vec::new();
        for id in victims {
            if self.remove_image(&id, false).is_ok() {
                removed.push(id);
            }
        }
        let reclaimed = before.saturating_sub(berth_volume::dir_size(&blobs));
        if all {
            let mut st = self.lock();
            let ids: Vec<String> = st.images.keys().cloned().collect();
            for id in ids {
                if let Some(img) = st.images.get_mut(&id) {
                    if !img.build_key.is_empty() {
                        img.build_key.clear();
                        self.db.put(crate::db::IMAGES, &id, &*img)?;
                    }
                }
            }
        }
        Ok((removed, reclaimed))
    }

    /// Keeps the cache-only images under `limit` bytes, oldest removed first.
    pub(crate) fn enforce_build_cache_limit(&self, limit: u64) -> Result<()> {
        let ids = self.cache_only_images();
        let mut images: Vec<ImageRecord> =
            ids.iter().filter_map(|id| self.image(id).ok()).collect();
        let mut total: u64 = images.iter().map(|i| i.size).sum();
        images.sort_by(|a, b| a.created.cmp(&b.created));
        for i in images {
            if total <= limit {
                break;
            }
            total = total.saturating_sub(i.size);
            let _ = self.remove_image(&i.id, false);
        }
        Ok(())
    }

    /// Untagged build results that no tagged image or container depends on,
    /// leaves first.
    fn cache_only_images(&self) -> Vec<String> {
        let st = self.lock();
        let mut needed: BTreeSet<String> = BTreeSet::new();
        let roots: Vec<String> = st
            .images
            .values()
            .filter(|i| !i.repo_tags.is_empty())
            .map(|i| i.id.clone())
            .chain(st.containers.values().map(|c| c.image_id.clone()))
            .collect();
        for mut id in roots {
            while needed.insert(id.clone()) {
                match st.images.get(&id) {
                    Some(i) if !i.parent.is_empty() => id = i.parent.clone(),
                    _ => break,
                }
            }
        }
        let mut out: Vec<(usize, String)> = st
            .images
            .values()
            .filter(|i| !i.build_key.is_empty() && !needed.contains(&i.id))
            .map(|i| {
                let mut depth = 0;
                let mut p = i.parent.clone();
                while let Some(parent) = st.images.get(&p) {
                    depth += 1;
                    p = parent.parent.clone();
                    if depth > 10_000 {
                        break;
                    }
                }
                (depth, i.id.clone())
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.0));
        out.into_iter().map(|(_, id)| id).collect()
    }
}

/// Build args every builder accepts without an ARG (proxies).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn shell_of(shell: &[String]) -> Vec<String> {
    if shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.to_vec()
    }
}

fn command_argv(cl: &CommandLine, shell: &[String]) -> Vec<String> {
    match cl {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut argv = shell_of(shell);
            argv.push(s.clone());
            argv
        }
    }
}

fn healthcheck_of(h: &berth_dockerfile::Healthcheck) -> crate::model::Healthcheck {
    match h {
        berth_dockerfile::Healthcheck::None => crate::model::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        berth_dockerfile::Healthcheck::Cmd(c) => {
            let test = match &c.test {
                CommandLine::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
                CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            };
            let ns = |d: Option<std::time::Duration>| {
                d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                    .unwrap_or(0)
            };
            crate::model::Healthcheck {
                test,
                interval: ns(c.interval),
                timeout: ns(c.timeout),
                start_period: ns(c.start_period),
                start_interval: ns(c.start_interval),
                retries: i64::from(c.retries.unwrap_or(0)),
            }
        }
    }
}

/// The stages to build for `target` (default: the last), dependencies first.
fn needed_stages(
    dockerfile: &Dockerfile,
    target: Option<&str>,
) -> std::result::Result<Vec<usize>, BuildError> {
    let last = dockerfile
        .stages
        .len()
        .checked_sub(1)
        .ok_or_else(|| BuildError {
            line: None,
            message: "Dockerfile has no stages".into(),
        })?;
    let target_index = match target.filter(|t| !t.is_empty()) {
        Some(t) => dockerfile
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError {
                line: None,
                message: format!("failed to reach build target {t} in Dockerfile"),
            })?,
        None => last,
    };
    let find = |name: &str, before: usize| -> Option<usize> {
        let lowered = name.to_ascii_lowercase();
        dockerfile.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lowered.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    };
    let mut needed = BTreeSet::new();
    let mut stack = vec![target_index];
    while let Some(i) = stack.pop() {
        if !needed.insert(i) {
            continue;
        }
        let stage = &dockerfile.stages[i];
        if let Some(dep) = find(&stage.base, i) {
            stack.push(dep);
        }
        for ins in &stage.instructions {
            if let Command::Copy(CopyFiles {
                from: Some(from), ..
            })
            | Command::Add(CopyFiles {
                from: Some(from), ..
            }) = &ins.command
            {
                if let Some(dep) = find(from, i) {
                    stack.push(dep);
                }
            }
        }
    }
    Ok(needed.into_iter().collect())
}

/// A relative path with no `..`, or `None`.
fn clean_relative(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

// ---------------------------------------------------------------- COPY / ADD

struct CopyInput {
    files: CopyFiles,
    is_add: bool,
    ctx_dir: PathBuf,
    workdir: String,
    /// The image being built on (top layer first): for `--chown` names and for
    /// whether the destination is an existing directory.
    lowers: Vec<PathBuf>,
    /// `--from`: the source image's layers (top first), or `None` for the context.
    from_lowers: Option<Vec<PathBuf>>,
    /// `.dockerignore` patterns (context sources only).
    ignore: Option<Vec<String>>,
}

/// One file or directory to put into the layer.
struct CopyItem {
    source: PathBuf,
    /// Absolute path in the image.
    dest: String,
    /// Copy a directory's contents (not the directory itself) to `dest`.
    contents: bool,
    /// ADD of a local archive: its entries go under `dest`.
    extract: bool,
}

struct PlannedCopy {
    items: Vec<CopyItem>,
    heredocs: Vec<(String, Vec<u8>)>,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    content_hash: String,
    ignore: Option<IgnoreMatcher>,
    ctx_dir: PathBuf,
    /// Mount point of `--from` layers, unmounted after the layer is written.
    from_mount: Option<PathBuf>,
}

impl Drop for PlannedCopy {
    fn drop(&mut self) {
        if let Some(m) = self.from_mount.take() {
            let _ = berth_snapshot::unmount(&m);
            let _ = std::fs::remove_dir(&m);
        }
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(pattern),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: both are NUL-terminated strings.
    unsafe { libc::fnmatch(p.as_ptr(), n.as_ptr(), libc::FNM_PATHNAME) == 0 }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Engine {
    fn plan_copy(&self, input: CopyInput) -> std::result::Result<PlannedCopy, String> {
        let what = if input.is_add { "ADD" } else { "COPY" };
        let (root, from_mount) = match &input.from_lowers {
            Some(lowers) => {
                let target = self
                    .config
                    .data_root
                    .join("build")
                    .join(format!("from-{}", &crate::random_id()[..12]));
                std::fs::create_dir_all(&target)
                    .map_err(|e| format!("create {}: {e}", target.display()))?;
                let existing: Vec<PathBuf> =
                    lowers.iter().filter(|p| p.exists()).cloned().collect();
                if existing.is_empty() {
                    (target.clone(), Some(target))
                } else {
                    berth_snapshot::mount_readonly(&existing, &target).map_err(|e| {
                        let _ = std::fs::remove_dir(&target);
                        e.to_string()
                    })?;
                    (target.clone(), Some(target))
                }
            }
            None => (input.ctx_dir.clone(), None),
        };
        let ignore = match &input.ignore {
            Some(patterns) => {
                Some(IgnoreMatcher::from_patterns(patterns.iter()).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let mut planned = PlannedCopy {
            items: Vec::new(),
            heredocs: Vec::new(),
            owner: None,
            mode: None,
            content_hash: String::new(),
            ignore,
            ctx_dir: root.clone(),
            from_mount,
        };
        let files = &input.files;
        // Destination, relative to WORKDIR.
        let workdir = if input.workdir.is_empty() {
            "/".to_string()
        } else {
            input.workdir.clone()
        };
        let dest_is_dir_syntax =
            files.dest.ends_with('/') || files.dest.ends_with("/.") || files.dest == ".";
        let dest = if files.dest.starts_with('/') {
            files.dest.clone()
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), files.dest)
        };
        let dest = normalize_abs(&dest);

        let snapshot =
            berth_snapshot::Snapshot::new(Path::new("/nonexistent-upper"), input.lowers.clone());
        if let Some(chown) = &files.chown {
            let (u, g, _) =
                crate::lifecycle::resolve_user(chown, &snapshot).map_err(|e| e.to_string())?;
            planned.owner = Some((u, g));
        }
        if let Some(chmod) = &files.chmod {
            planned.mode = Some(
                u32::from_str_radix(chmod, 8)
                    .map_err(|_| format!("invalid --chmod {chmod:?}: octal mode expected"))?
                    & 0o7777,
            );
        }

        for h in &files.heredocs {
            let target = if dest_is_dir_syntax {
                format!("{}/{}", dest.trim_end_matches('/'), h.name)
            } else {
                dest.clone()
            };
            planned
                .heredocs
                .push((target, h.data().into_owned().into_bytes()));
        }

        // Expand sources (globs, context-relative).
        let mut sources: Vec<PathBuf> = Vec::new();
        for s in files.sources.iter().filter(|s| !s.starts_with("<<")) {
            if s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@") {
                if input.is_add {
                    return Err(format!("ADD {s}: fetching URLs is not possible here: this host has no network access to it"));
                }
                return Err(format!("COPY {s}: source can't be a URL for COPY"));
            }
            let rel = s.trim_start_matches('/');
            if has_glob(rel) {
                let matched = glob_in(&root, rel, planned.ignore.as_ref());
                if matched.is_empty() {
                    return Err(format!(
                        "{what} failed: no source files were specified matching {s}"
                    ));
                }
                sources.extend(matched);
            } else {
                let path = berth_volume::scoped_path(&root, rel).map_err(|e| e.to_string())?;
                let rel_clean = path
                    .strip_prefix(&root)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let excluded = planned
                    .ignore
                    .as_ref()
                    .is_some_and(|m| !rel_clean.is_empty() && m.is_excluded(&rel_clean));
                if excluded || std::fs::symlink_metadata(&path).is_err() {
                    return Err(format!(
                        "{what} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
                    ));
                }
                sources.push(path);
            }
        }
        let many = sources.len() + planned.heredocs.len() > 1;
        if many && !dest_is_dir_syntax {
            return Err(format!("When using {what} with more than one source file, the destination must be a directory and end with a /"));
        }
        let dest_dir_exists = input.lowers.iter().any(|l| {
            berth_volume::scoped_path(l, &dest)
                .map(|p| p.is_dir())
                .unwrap_or(false)
        });
        for source in sources {
            let meta = std::fs::metadata(&source)
                .map_err(|e| format!("stat {}: {e}", source.display()))?;
            let name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if meta.is_dir() {
                planned.items.push(CopyItem {
                    source,
                    dest: dest.clone(),
                    contents: true,
                    extract: false,
                });
            } else if input.is_add && is_archive(&source) {
                planned.items.push(CopyItem {
                    source,
                    dest: dest.clone(),
                    contents: false,
                    extract: true,
                });
            } else {
                let target = if dest_is_dir_syntax || many || dest_dir_exists {
                    format!("{}/{}", dest.trim_end_matches('/'), name)
                } else {
                    dest.clone()
                };
                planned.items.push(CopyItem {
                    source,
                    dest: target,
                    contents: false,
                    extract: false,
                });
            }
        }
        // The cache key: names, modes and contents, never mtimes.
        let mut hasher = Sha256::new();
        hasher.update(format!("{:?}{:?}{dest}", planned.owner, planned.mode));
        for (target, data) in &planned.heredocs {
            hasher.update(target.as_bytes());
            hasher.update(data);
        }
        for item in &planned.items {
            hasher.update(item.dest.as_bytes());
            hash_tree(
                &mut hasher,
                &item.source,
                &planned.ctx_dir,
                planned.ignore.as_ref(),
            )
            .map_err(|e| format!("read {}: {e}", item.source.display()))?;
        }
        planned.content_hash = hex::encode(hasher.finalize());
        Ok(planned)
    }

    fn write_copy_layer(
        &self,
        planned: PlannedCopy,
    ) -> std::result::Result<berth_store::StoredLayer, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let thread = std::thread::spawn(move || -> std::io::Result<()> {
            let mut tar = tar::Builder::new(writer);
            tar.follow_symlinks(false);
            let mut dirs_done = BTreeSet::new();
            for (target, data) in &planned.heredocs {
                add_parents(&mut tar, target, &mut dirs_done)?;
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(planned.mode.unwrap_or(0o644));
                let (u, g) = planned.owner.unwrap_or((0, 0));
                h.set_uid(u.into());
                h.set_gid(g.into());
                h.set_mtime(0);
                tar.append_data(&mut h, target.trim_start_matches('/'), data.as_slice())?;
            }
            for item in &planned.items {
                if item.extract {
                    add_parents(
                        &mut tar,
                        &format!("{}/x", item.dest.trim_end_matches('/')),
                        &mut dirs_done,
                    )?;
                    append_archive(&mut tar, &item.source, &item.dest)?;
                } else if item.contents {
                    add_parents(
                        &mut tar,
                        &format!("{}/x", item.dest.trim_end_matches('/')),
                        &mut dirs_done,
                    )?;
                    add_tree(&mut tar, &item.source, &item.dest, &planned, true)?;
                } else {
                    add_parents(&mut tar, &item.dest, &mut dirs_done)?;
                    add_tree(&mut tar, &item.source, &item.dest, &planned, false)?;
                }
            }
            tar.into_inner()?.flush()
        });
        let stored = self.store.import_layer(reader);
        let written = thread
            .join()
            .map_err(|_| "layer writer panicked".to_string())?;
        written.map_err(|e| format!("write layer: {e}"))?;
        stored.map_err(|e| e.to_string())
    }
}

fn normalize_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Matches a glob relative to `root`, component by component.
fn glob_in(root: &Path, pattern: &str, ignore: Option<&IgnoreMatcher>) -> Vec<PathBuf> {
    let mut current = vec![root.to_path_buf()];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for dir in &current {
            if has_glob(comp) {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if glob_match(comp, &n) {
                        next.push(dir.join(n));
                    }
                }
            } else {
                let p = dir.join(comp);
                if std::fs::symlink_metadata(&p).is_ok() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter(|p| p.starts_with(root) && p != root)
        .filter(|p| {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            !ignore.is_some_and(|m| m.is_excluded(&rel))
        })
        .collect()
}

fn hash_tree(
    hasher: &mut Sha256,
    path: &Path,
    ctx: &Path,
    ignore: Option<&IgnoreMatcher>,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let rel = path
        .strip_prefix(ctx)
        .map(|r| r.display().to_string())
        .unwrap_or_default();
    if !rel.is_empty() && ignore.is_some_and(|m| m.is_excluded(&rel)) {
        return Ok(());
    }
    hasher.update(format!("\0{rel}\0{:o}\0", meta.mode()));
    if meta.file_type().is_symlink() {
        hasher.update(std::fs::read_link(path)?.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        let mut f = std::fs::File::open(path)?;
        std::io::copy(&mut f, hasher)?;
    } else if meta.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for n in names {
            hash_tree(hasher, &n, ctx, ignore)?;
        }
    }
    Ok(())
}

fn add_parents<W: Write>(
    tar: &mut tar::Builder<W>,
    target: &str,
    done: &mut BTreeSet<String>,
) -> std::io::Result<()> {
    let parts: Vec<&str> = target.trim_start_matches('/').split('/').collect();
    let mut path = String::new();
    for p in &parts[..parts.len().saturating_sub(1)] {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(p);
        if done.insert(path.clone()) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, format!("{path}/"), std::io::empty())?;
        }
    }
    Ok(())
}

/// Adds `source` at `dest` (or, with `contents`, what is inside it), applying
/// `--chown`/`--chmod` and `.dockerignore`.
fn add_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    source: &Path,
    dest: &str,
    planned: &PlannedCopy,
    contents: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let rel = source
        .strip_prefix(&planned.ctx_dir)
        .map(|r| r.display().to_string())
        .unwrap_or_default();
    if !rel.is_empty() && planned.ignore.as_ref().is_some_and(|m| m.is_excluded(&rel)) {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(source)?;
    let name = dest.trim_start_matches('/').to_string();
    let (uid, gid) = planned.owner.unwrap_or((0, 0));
    let mut h = tar::Header::new_gnu();
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mtime(meta.mtime().max(0) as u64);
    let mode = planned.mode.unwrap_or(meta.mode() & 0o7777);
    h.set_mode(mode);
    if meta.file_type().is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        let target = std::fs::read_link(source)?;
        tar.append_link(&mut h, &name, target)?;
    } else if meta.is_dir() {
        if !contents {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        } else if !name.is_empty() {
            // The destination directory itself gets the source directory's mode.
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(source)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for e in entries {
            let child_dest = format!("{}/{}", dest.trim_end_matches('/'), e.to_string_lossy());
            add_tree(tar, &source.join(&e), &child_dest, planned, false)?;
        }
    } else if meta.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        let f = std::fs::File::open(source)?;
        tar.append_data(&mut h, &name, f.take(meta.len()))?;
    }
    Ok(())
}

/// Whether a local ADD source is a tar archive (plain or gzip) to unpack.
fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buffered = std::io::BufReader::new(f);
    let Ok(mut stream) = berth_store::decompressed(&mut buffered) else {
        return false;
    };
    let mut block = [0u8; 512];
    if stream.read_exact(&mut block).is_err() {
        return false;
    }
    let header = tar::Header::from_byte_slice(&block);
    header.cksum().ok().is_some_and(|sum| {
        let computed: u32 = block[..148]
            .iter()
            .chain(&[b' '; 8])
            .chain(&block[156..])
            .map(|b| u32::from(*b))
            .sum();
        sum == computed
    })
}

/// Re-emits an archive's entries under `dest` (ADD of a local tar).
fn append_archive<W: Write>(
    tar: &mut tar::Builder<W>,
    source: &Path,
    dest: &str,
) -> std::io::Result<()> {
    let f = std::fs::File::open(source)?;
    let mut buffered = std::io::BufReader::new(f);
    let stream = berth_store::decompressed(&mut buffered).map_err(std::io::Error::other)?;
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Some(rel) = clean_relative(&path.to_string_lossy()) else {
            if path.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(std::io::Error::other(format!(
                    "archive entry {} leaves the destination",
                    path.display()
                )));
            }
            continue;
        };
        let name = format!(
            "{}/{}",
            dest.trim_start_matches('/').trim_end_matches('/'),
            rel.display()
        );
        let name = name.trim_start_matches('/').to_string();
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let target = if header.entry_type() == tar::EntryType::Link {
                    let Some(t) = clean_relative(&target.to_string_lossy()) else {
                        continue;
                    };
                    PathBuf::from(format!(
                        "{}/{}",
                        dest.trim_start_matches('/').trim_end_matches('/'),
                        t.display()
                    ))
                } else {
                    target
                };
                tar.append_link(&mut header, &name, target)?;
            }
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Directory
            | tar::EntryType::Fifo => {
                let size = header.size()?;
                tar.append_data(&mut header, &name, (&mut entry).take(size))?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_needed_for_a_target() {
        let df = berth_dockerfile::parse(
            "FROM busybox AS a\nRUN true\nFROM busybox AS unused\nRUN false\nFROM busybox AS b\nCOPY --from=a /x /x\nFROM b AS final\n",
        )
        .unwrap();
        assert_eq!(needed_stages(&df, None).ok().unwrap(), vec![0, 2, 3]);
        assert_eq!(needed_stages(&df, Some("a")).ok().unwrap(), vec![0]);
        assert!(needed_stages(&df, Some("nope")).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_abs("/a/./b/../c/"), "/a/c");
        assert_eq!(clean_relative("../x"), None);
        assert_eq!(
            clean_relative("./sub/Dockerfile"),
            Some(PathBuf::from("sub/Dockerfile"))
        );
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "dir/a.txt"));
    }
}
