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
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use berth_dockerfile::{Command, Dockerfile, IgnoreMatcher, Instruction};
use sha2::{Digest as _, Sha256};

use crate::model::{HistoryStep, ImageConfigBlob, RootFs};
use crate::progress::{Progress, ProgressEvent, ProgressStream};
use crate::{Engine, EngineError, Result};

mod cache;
mod copy;
mod layer_tar;
mod metadata;
mod plan;
mod run;
mod step;

use copy::*;
use layer_tar::*;
use plan::*;

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
    ) -> ProgressStream {
        let (progress, rx) = Progress::channel(opts.quiet);
        let engine = self.clone();
        tokio::spawn(async move {
            let workdir = engine
                .config
                .data_root
                .join("build")
                .join(&crate::random_id()[..16]);
            let result = engine.build_in(&workdir, context, &opts, &progress).await;
            let _ = std::fs::remove_dir_all(&workdir);
            match result {
                Ok(id) => {
                    progress.send(ProgressEvent::Built { id: id.clone() }).await;
                    if opts.quiet {
                        // docker -q prints the ID alone, as output.
                        progress
                            .send(ProgressEvent::Output(format!("{id}\n")))
                            .await;
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
        std::fs::create_dir_all(&ctx_dir).map_err(|e| EngineError::at("create", &ctx_dir, e))?;
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
        .map_err(|e| EngineError::task("unpack build context", e))?
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
                    HistoryStep::created_by("FROM scratch"),
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
                HistoryStep::created_by("LABEL (build --label)"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
