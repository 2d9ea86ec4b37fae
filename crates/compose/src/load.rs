//! Loading a project: finding the files and the environment, reading each
//! file (YAML, merge keys, interpolation, relative paths, `extends`,
//! `include`), merging the files, converting to the model and checking the
//! references between its parts.
//!
//! Each file is validated on its own before merging, so an error names the
//! file it is in; what can only be checked on the merged project (a service
//! without an image, an undefined network, a dependency cycle) names the file
//! that defined the service or object first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_norway::{Mapping, Value};

use crate::convert::{self, Conv, Ctx, ObjectKind};
use crate::envfile::{self, Env};
use crate::error::{ComposeError, KeyPath, Result, Source};
use crate::interpolate::{interpolate_value, key_string};
use crate::model::*;
use crate::{merge, parse, paths, LoadOptions};

/// In docker compose's order of preference (compose-go's DefaultFileNames):
/// `docker-compose.yml` comes before `docker-compose.yaml`.
const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];
/// The top-level sections holding named objects.
const SECTIONS: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

/// Which file first defined each object ("services.web" → file), for the
/// errors found after merging.
type Origins = BTreeMap<String, Source>;

struct Loaded {
    model: Mapping,
    origins: Origins,
}

pub(crate) fn load(opts: &LoadOptions) -> Result<Project> {
    let cwd = std::env::current_dir().map_err(|source| ComposeError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let given: Vec<PathBuf> = opts
        .files
        .iter()
        .map(|f| paths::absolutize(f, &cwd))
        .collect();
    let working_dir = match (&opts.working_dir, given.first()) {
        (Some(dir), _) => paths::absolutize(dir, &cwd),
        (None, Some(first)) => first
            .parent()
            .map_or_else(|| cwd.clone(), Path::to_path_buf),
        // As docker compose: the nearest directory upwards that holds a
        // compose file is the project's.
        (None, None) => cwd
            .ancestors()
            .find(|dir| has_default_file(dir))
            .map_or_else(|| cwd.clone(), Path::to_path_buf),
    };
    let files = if given.is_empty() {
        discover(&working_dir)?
    } else {
        given
    };

    // The process environment wins over every env file; later env files
    // win over earlier ones, and each may use what came before it.
    let process = Env::new(opts.environment.clone());
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        Some(working_dir.join(".env"))
            .filter(|p| p.is_file())
            .into_iter()
            .collect()
    } else {
        opts.env_files
            .iter()
            .map(|f| paths::absolutize(f, &cwd))
            .collect()
    };
    let env = read_env_files(&process, &env_files)?;

    let loader = Loader {
        opts,
        working_dir: working_dir.clone(),
    };
    let mut merged = Mapping::new();
    let mut origins = Origins::new();
    let mut first = None;
    for f in &files {
        let loaded = loader.load_file(f, &working_dir, &env, &mut Vec::new())?;
        if first.is_none() {
            first = loaded.origins.get("").cloned();
        }
        for (k, src) in loaded.origins {
            if k == "name" {
                // The last file's `name` wins the merge.
                origins.insert(k, src);
            } else {
                origins.entry(k).or_insert(src);
            }
        }
        merge::merge_top(&mut merged, loaded.model);
    }
    merge::strip_mapping(&mut merged);
    let first = first.ok_or_else(|| ComposeError::NoConfigFile {
        dir: working_dir.clone(),
    })?;
    loader.assemble(merged, &origins, &first, &env, files)
}

fn has_default_file(dir: &Path) -> bool {
    DEFAULT_FILES.iter().any(|n| dir.join(n).is_file())
}

fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    let find = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let main = find(DEFAULT_FILES).ok_or_else(|| ComposeError::NoConfigFile {
        dir: dir.to_path_buf(),
    })?;
    // As docker compose does, an override file next to the default one is
    // applied over it.
    Ok(std::iter::once(main).chain(find(OVERRIDE_FILES)).collect())
}

fn read_env_files(process: &Env, files: &[PathBuf]) -> Result<Env> {
    let mut from_files: Vec<(String, String)> = Vec::new();
    for f in files {
        let so_far = process.over(from_files.clone());
        from_files.extend(envfile::read(f, &|k| so_far.get(k))?);
    }
    Ok(process.over(from_files))
}

struct Loader<'a> {
    opts: &'a LoadOptions,
    working_dir: PathBuf,
}

impl Loader<'_> {
    fn read_source(&self, path: &Path) -> Result<Source> {
        let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Errors name files as the user sees them: relative to the project.
        let display = path
            .strip_prefix(&self.working_dir)
            .map_or_else(|_| path.display().to_string(), |p| p.display().to_string());
        Ok(Source {
            display,
            path: path.to_path_buf(),
            text: Arc::from(text),
        })
    }

    /// One file with its `extends` and `include`s resolved, validated.
    fn load_file(
        &self,
        path: &Path,
        base_dir: &Path,
        env: &Env,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Loaded> {
        let src = self.read_source(path)?;
        if stack.iter().any(|p| p == path) {
            let chain: Vec<String> = stack
                .iter()
                .chain(std::iter::once(&path.to_path_buf()))
                .map(|p| p.display().to_string())
                .collect();
            return Err(src.invalid(
                &KeyPath::root(),
                format!("include cycle: {}", chain.join(" -> ")),
            ));
        }
        let mut top = self.parse_raw(&src, base_dir, env)?;
        self.apply_extends(&src, &mut top, env)?;
        self.check_file(&src, &top)?;

        let mut origins = Origins::new();
        origins.insert(String::new(), src.clone());
        if top.contains_key("name") {
            origins.insert("name".into(), src.clone());
        }
        for section in SECTIONS {
            if let Some(Value::Mapping(m)) = top.get(*section) {
                for k in m.keys() {
                    origins.insert(format!("{section}.{}", key_string(k)), src.clone());
                }
            }
        }

        if let Some(include) = top.shift_remove("include") {
            let p = KeyPath::root().key("include");
            let entries = match include {
                Value::Sequence(s) => s,
                Value::Null => Vec::new(),
                other => {
                    return Err(
                        src.invalid(&p, format!("must be a list, not {}", convert::kind(&other)))
                    )
                }
            };
            stack.push(path.to_path_buf());
            for (i, entry) in entries.iter().enumerate() {
                let sub = self.load_include(&src, &p.idx(i), entry, env, stack)?;
                add_included(&src, &p.idx(i), &mut top, sub.model)?;
                for (k, s) in sub.origins {
                    if !k.is_empty() && k != "name" {
                        origins.entry(k).or_insert(s);
                    }
                }
            }
            stack.pop();
        }
        Ok(Loaded {
            model: top,
            origins,
        })
    }

    /// Parse, apply merge keys, check the top-level keys, interpolate and
    /// make relative paths absolute against `base_dir`.
    fn parse_raw(&self, src: &Source, base_dir: &Path, env: &Env) -> Result<Mapping> {
        let mut value: Value =
            serde_norway::from_str(&src.text).map_err(|e| ComposeError::Syntax {
                file: src.display.clone(),
                line: e.location().map(|l| l.line()),
                message: e.to_string(),
            })?;
        value.apply_merge().map_err(|e| ComposeError::Syntax {
            file: src.display.clone(),
            line: None,
            message: format!("invalid merge key (<<): {e}"),
        })?;
        let mut top = match value {
            Value::Mapping(m) => m,
            // An empty file is an empty project fragment.
            Value::Null => Mapping::new(),
            other => {
                return Err(src.invalid(
                    &KeyPath::root(),
                    format!(
                        "the top level must be a mapping, not {}",
                        convert::kind(&other)
                    ),
                ))
            }
        };
        let root = KeyPath::root();
        for k in top.keys() {
            let Some(name) = k.as_str() else {
                return Err(src.invalid(&root, format!("key {} must be a string", key_string(k))));
            };
            if !name.starts_with("x-") && !convert::TOP_KEYS.contains(&name) {
                return Err(src.unsupported(&root.key(name)));
            }
        }
        // Extensions are only anchors' homes and `version` is obsolete:
        // neither is interpolated, so an `x-` block may hold anything.
        top.retain(|k, _| {
            k.as_str()
                .is_some_and(|k| !k.starts_with("x-") && k != "version")
        });
        for section in SECTIONS {
            if let Some(Value::Mapping(objects)) = top.get_mut(*section) {
                for (_, obj) in objects.iter_mut() {
                    if let Value::Mapping(fields) = obj {
                        fields.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
                    }
                }
            }
        }

        for (k, item) in top.iter_mut() {
            interpolate_value(item, &root.key(&key_string(k)), &|k| env.get(k), src)?;
        }
        self.resolve_paths(src, &mut top, base_dir, env)?;
        Ok(top)
    }

    /// Relative host paths are relative to the directory of the project
    /// (for included and extended files: their own), so they are made
    /// absolute per file, before files with different bases are merged.
    fn resolve_paths(&self, src: &Source, top: &mut Mapping, base: &Path, env: &Env) -> Result<()> {
        let abs = |s: &str, p: &KeyPath| -> Result<String> {
            paths::host_path(s, base, env).map_err(|m| src.invalid(p, m))
        };
        let abs_value = |v: &mut Value, p: &KeyPath| -> Result<()> {
            if let Value::String(s) = v {
                *s = abs(s, p)?;
            }
            Ok(())
        };
        // A fragment from another directory must not inherit this
        // project's directory as its default build context.
        let own_base = base != self.working_dir;

        if let Some(Value::Mapping(services)) = top.get_mut("services") {
            for (name, svc) in services.iter_mut() {
                let Value::Mapping(svc) = svc else { continue };
                let sp = KeyPath::root().key("services").key(&key_string(name));
                match svc.get_mut("build") {
                    Some(Value::String(ctx)) if !paths::is_remote_context(ctx) => {
                        *ctx = abs(ctx, &sp.key("build"))?;
                    }
                    Some(Value::Mapping(b)) => match b.get_mut("context") {
                        Some(Value::String(ctx)) if !paths::is_remote_context(ctx) => {
                            *ctx = abs(ctx, &sp.key("build").key("context"))?;
                        }
                        None if own_base => {
                            b.insert("context".into(), base.to_string_lossy().into_owned().into());
                        }
                        _ => {}
                    },
                    _ => {}
                }
                if let Some(ef) = svc.get_mut("env_file") {
                    let ep = sp.key("env_file");
                    match ef {
                        Value::String(_) => abs_value(ef, &ep)?,
                        Value::Sequence(items) => {
                            for (i, item) in items.iter_mut().enumerate() {
                                match item {
                                    Value::Mapping(m) => {
                                        if let Some(path) = m.get_mut("path") {
                                            abs_value(path, &ep.idx(i).key("path"))?;
                                        }
                                    }
                                    other => abs_value(other, &ep.idx(i))?,
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
                    for (i, vol) in vols.iter_mut().enumerate() {
                        let vp = sp.key("volumes").idx(i);
                        match vol {
                            Value::String(spec) => {
                                if let Ok(short) = parse::volume_short(spec) {
                                    if let Some(source) =
                                        short.source.filter(|s| parse::is_host_path(s))
                                    {
                                        let mut rebuilt =
                                            format!("{}:{}", abs(source, &vp)?, short.target);
                                        if let Some(mode) = short.mode {
                                            rebuilt = format!("{rebuilt}:{mode}");
                                        }
                                        *spec = rebuilt;
                                    }
                                }
                            }
                            Value::Mapping(m) => {
                                let bind = match m.get("type") {
                                    Some(t) => t.as_str() == Some("bind"),
                                    None => m
                                        .get("source")
                                        .and_then(Value::as_str)
                                        .is_some_and(parse::is_host_path),
                                };
                                if bind {
                                    if let Some(source) = m.get_mut("source") {
                                        abs_value(source, &vp.key("source"))?;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                if let Some(Value::Mapping(ext)) = svc.get_mut("extends") {
                    if let Some(file) = ext.get_mut("file") {
                        abs_value(file, &sp.key("extends").key("file"))?;
                    }
                }
            }
        }
        for section in ["secrets", "configs"] {
            if let Some(Value::Mapping(objects)) = top.get_mut(section) {
                for (name, obj) in objects.iter_mut() {
                    if let Some(file) = obj.as_mapping_mut().and_then(|m| m.get_mut("file")) {
                        let p = KeyPath::root()
                            .key(section)
                            .key(&key_string(name))
                            .key("file");
                        abs_value(file, &p)?;
                    }
                }
            }
        }
        if let Some(Value::Sequence(entries)) = top.get_mut("include") {
            let ip = KeyPath::root().key("include");
            for (i, entry) in entries.iter_mut().enumerate() {
                match entry {
                    Value::String(_) => abs_value(entry, &ip.idx(i))?,
                    Value::Mapping(m) => {
                        for key in ["path", "project_directory", "env_file"] {
                            let kp = ip.idx(i).key(key);
                            match m.get_mut(key) {
                                Some(v @ Value::String(_)) => abs_value(v, &kp)?,
                                Some(Value::Sequence(items)) => {
                                    for (j, item) in items.iter_mut().enumerate() {
                                        abs_value(item, &kp.idx(j))?;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Replace every service that `extends` another by the base merged with it.
    fn apply_extends(&self, src: &Source, top: &mut Mapping, env: &Env) -> Result<()> {
        let Some(Value::Mapping(services)) = top.get("services") else {
            return Ok(());
        };
        let snapshot = services.clone();
        let mut resolved = Vec::new();
        for (name, svc) in &snapshot {
            if svc.as_mapping().is_some_and(|m| m.contains_key("extends")) {
                let name = key_string(name);
                let merged = self.extended(src, &snapshot, &name, env, &mut Vec::new())?;
                resolved.push((name, merged));
            }
        }
        if let Some(Value::Mapping(services)) = top.get_mut("services") {
            for (name, svc) in resolved {
                services.insert(name.into(), Value::Mapping(svc));
            }
        }
        Ok(())
    }

    /// Service `name` of `services` (from `src`) with its `extends` chain applied.
    fn extended(
        &self,
        src: &Source,
        services: &Mapping,
        name: &str,
        env: &Env,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Result<Mapping> {
        let sp = KeyPath::root().key("services").key(name);
        let svc = match services.get(name) {
            Some(Value::Mapping(m)) => m.clone(),
            Some(other) => {
                return Err(src.invalid(
                    &sp,
                    format!("a service must be a mapping, not {}", convert::kind(other)),
                ))
            }
            None => return Err(src.invalid(&sp, "no such service")),
        };
        let Some(ext) = svc.get("extends") else {
            return Ok(svc);
        };
        let ep = sp.key("extends");
        let (file, base_name) = match ext {
            Value::String(s) => (None, s.clone()),
            Value::Mapping(m) => {
                for k in m.keys() {
                    let k = key_string(k);
                    if k != "service" && k != "file" {
                        return Err(src.unsupported(&ep.key(&k)));
                    }
                }
                let base = match m.get("service") {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(src.invalid(&ep.key("service"), "must name a service")),
                };
                let file = match m.get("file") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(f)) => Some(paths::absolutize(
                        Path::new(f),
                        src.path.parent().unwrap_or(Path::new("/")),
                    )),
                    Some(other) => {
                        return Err(src.invalid(
                            &ep.key("file"),
                            format!("must be a string, not {}", convert::kind(other)),
                        ))
                    }
                };
                (file, base)
            }
            other => {
                return Err(src.invalid(
                    &ep,
                    format!(
                        "must be a string or a mapping, not {}",
                        convert::kind(other)
                    ),
                ))
            }
        };
        let link = (src.path.clone(), name.to_string());
        if chain.contains(&link) {
            let mut names: Vec<&str> = chain.iter().map(|(_, n)| n.as_str()).collect();
            names.push(name);
            return Err(src.invalid(&ep, format!("extends cycle: {}", names.join(" -> "))));
        }
        chain.push(link);
        let base = match file {
            None => {
                if !services.contains_key(base_name.as_str()) {
                    return Err(src.invalid(
                        &ep,
                        format!("cannot extend service {base_name:?}: no such service"),
                    ));
                }
                self.extended(src, services, &base_name, env, chain)?
            }
            Some(path) => {
                let other = self
                    .read_source(&path)
                    .map_err(|e| unreadable(src, &ep.key("file"), &path, "extended", e))?;
                let other_dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
                let other_top = self.parse_raw(&other, &other_dir, env)?;
                let other_services = match other_top.get("services") {
                    Some(Value::Mapping(m)) if m.contains_key(base_name.as_str()) => m,
                    _ => {
                        return Err(src.invalid(
                            &ep,
                            format!(
                                "cannot extend service {base_name:?}: not found in {}",
                                other.display
                            ),
                        ))
                    }
                };
                let base = self.extended(&other, other_services, &base_name, env, chain)?;
                // The base is checked against its own file, where its errors are.
                self.check_service(&other, &base_name, &base)?;
                base
            }
        };
        chain.pop();
        let mut local = svc;
        local.shift_remove("extends");
        Ok(merge::merge_service(base, local))
    }

    fn check_ctx<'a>(&'a self, env: &'a Env) -> Ctx<'a> {
        Ctx {
            working_dir: &self.working_dir,
            project: "project",
            env,
            check_only: true,
        }
    }

    fn check_service(&self, src: &Source, name: &str, svc: &Mapping) -> Result<()> {
        let env = Env::default();
        let ctx = self.check_ctx(&env);
        let mut v = Value::Mapping(svc.clone());
        merge::strip_directives(&mut v);
        Conv { src, ctx: &ctx }.service(name, &v).map(|_| ())
    }

    /// Validate one file's content on its own (shapes, types, keys).
    fn check_file(&self, src: &Source, top: &Mapping) -> Result<()> {
        let env = Env::default();
        let ctx = self.check_ctx(&env);
        let conv = Conv { src, ctx: &ctx };
        let mut v = Value::Mapping(top.clone());
        merge::strip_directives(&mut v);
        let root = KeyPath::root();
        if let Some(name) = v.get("name") {
            if !name.is_string() {
                return Err(src.invalid(&root.key("name"), "must be a string"));
            }
        }
        for section in SECTIONS {
            let Some(objects) = v.get(*section) else {
                continue;
            };
            let objects = match objects {
                Value::Mapping(m) => m,
                Value::Null => continue,
                other => {
                    return Err(src.invalid(
                        &root.key(section),
                        format!("must be a mapping, not {}", convert::kind(other)),
                    ))
                }
            };
            for (k, obj) in objects {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(src.invalid(
                            &root.key(section),
                            format!("name {} must be a string", key_string(other)),
                        ))
                    }
                };
                match *section {
                    "services" => conv.service(&key, obj).map(|_| ())?,
                    "networks" => conv.network(&key, obj).map(|_| ())?,
                    "volumes" => conv.volume(&key, obj).map(|_| ())?,
                    "secrets" => conv
                        .file_object(ObjectKind::Secret, &key, obj)
                        .map(|_| ())?,
                    _ => conv
                        .file_object(ObjectKind::Config, &key, obj)
                        .map(|_| ())?,
                }
            }
        }
        Ok(())
    }

    /// An `include` entry: `path`, or `{path, project_directory, env_file}`.
    fn load_include(
        &self,
        src: &Source,
        p: &KeyPath,
        entry: &Value,
        env: &Env,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Loaded> {
        let strings = |v: &Value, kp: &KeyPath| -> Result<Vec<PathBuf>> {
            match v {
                Value::String(s) => Ok(vec![PathBuf::from(s)]),
                Value::Sequence(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(s) => Ok(PathBuf::from(s)),
                        other => Err(src.invalid(
                            &kp.idx(i),
                            format!("must be a string, not {}", convert::kind(other)),
                        )),
                    })
                    .collect(),
                other => Err(src.invalid(
                    kp,
                    format!("must be a string or a list, not {}", convert::kind(other)),
                )),
            }
        };
        let (files, project_dir, env_files) = match entry {
            Value::String(_) => (strings(entry, p)?, None, None),
            Value::Mapping(m) => {
                let mut files = Vec::new();
                let mut dir = None;
                let mut env_files = None;
                for (k, v) in m {
                    let k = key_string(k);
                    let kp = p.key(&k);
                    match k.as_str() {
                        "path" => files = strings(v, &kp)?,
                        "project_directory" => match v {
                            Value::String(s) => dir = Some(PathBuf::from(s)),
                            other => {
                                return Err(src.invalid(
                                    &kp,
                                    format!("must be a string, not {}", convert::kind(other)),
                                ))
                            }
                        },
                        "env_file" => env_files = Some(strings(v, &kp)?),
                        _ => return Err(src.unsupported(&kp)),
                    }
                }
                (files, dir, env_files)
            }
            other => {
                return Err(src.invalid(
                    p,
                    format!(
                        "must be a string or a mapping, not {}",
                        convert::kind(other)
                    ),
                ))
            }
        };
        let Some(first) = files.first() else {
            return Err(src.invalid(p, "`path` is required"));
        };
        // The included project's own directory anchors its relative paths.
        let project_dir = project_dir
            .or_else(|| first.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| self.working_dir.clone());
        let env_files = env_files.unwrap_or_else(|| {
            Some(project_dir.join(".env"))
                .filter(|f| f.is_file())
                .into_iter()
                .collect()
        });
        // The including project's environment wins over the included one's env files.
        let mut sub_env = env.clone();
        for f in &env_files {
            let pairs = envfile::read(f, &|k| sub_env.get(k))?;
            sub_env = sub_env.over(pairs);
        }

        let mut merged = Mapping::new();
        let mut origins = Origins::new();
        for f in &files {
            let loaded = self
                .load_file(f, &project_dir, &sub_env, stack)
                .map_err(|e| unreadable(src, p, f, "included", e))?;
            for (k, s) in loaded.origins {
                origins.entry(k).or_insert(s);
            }
            merge::merge_top(&mut merged, loaded.model);
        }
        // An included project's name is its own business.
        merged.shift_remove("name");
        merge::strip_mapping(&mut merged);
        Ok(Loaded {
            model: merged,
            origins,
        })
    }

    /// Build the project from the merged model and check its references.
    fn assemble(
        &self,
        merged: Mapping,
        origins: &Origins,
        first: &Source,
        env: &Env,
        config_files: Vec<PathBuf>,
    ) -> Result<Project> {
        let src_of = |key: &str| origins.get(key).unwrap_or(first);
        let name = self.project_name(&merged, env, src_of("name"))?;
        let ctx = Ctx {
            working_dir: &self.working_dir,
            project: &name,
            env,
            check_only: false,
        };
        let conv = |key: &str| Conv {
            src: src_of(key),
            ctx: &ctx,
        };
        let section = |s: &str| -> Vec<(String, Value)> {
            match merged.get(s) {
                Some(Value::Mapping(m)) => {
                    m.iter().map(|(k, v)| (key_string(k), v.clone())).collect()
                }
                _ => Vec::new(),
            }
        };

        let mut project = Project {
            name: name.clone(),
            working_dir: self.working_dir.clone(),
            config_files,
            ..Project::default()
        };
        for (k, v) in section("networks") {
            let n = conv(&format!("networks.{k}")).network(&k, &v)?;
            project.networks.insert(k, n);
        }
        for (k, v) in section("volumes") {
            let vol = conv(&format!("volumes.{k}")).volume(&k, &v)?;
            project.volumes.insert(k, vol);
        }
        for (k, v) in section("secrets") {
            let s = conv(&format!("secrets.{k}")).file_object(ObjectKind::Secret, &k, &v)?;
            project.secrets.insert(k, s);
        }
        for (k, v) in section("configs") {
            let c = conv(&format!("configs.{k}")).file_object(ObjectKind::Config, &k, &v)?;
            project.configs.insert(k, c);
        }

        // Every service is validated, but only the enabled ones are resolved
        // (env files read, variables looked up): a disabled service's
        // missing env file is no reason to fail.
        let services = section("services");
        let check_env = Env::default();
        let check = self.check_ctx(&check_env);
        let active = self.active_profiles(env);
        let mut all = BTreeSet::new();
        let mut disabled = BTreeSet::new();
        for (k, v) in &services {
            let src = src_of(&format!("services.{k}"));
            let checked = Conv { src, ctx: &check }.service(k, v)?;
            let enabled = checked.profiles.is_empty()
                || active.contains("*")
                || checked.profiles.iter().any(|p| active.contains(p));
            if !enabled {
                disabled.insert(k.clone());
            }
            all.insert(k.clone());
        }

        let mut uses_default = false;
        let mut container_names = BTreeMap::new();
        for (name, v) in &services {
            if disabled.contains(name) {
                continue;
            }
            let name = name.clone();
            let mut s = conv(&format!("services.{name}")).service(&name, v)?;
            let src = src_of(&format!("services.{name}"));
            let p = KeyPath::root().key("services").key(&name);
            if s.image.is_none() && s.build.is_none() {
                return Err(src.invalid(&p, "the service has neither an image nor a build context"));
            }

            // `network_mode: service:x` needs x running first.
            if let Some(other) = s
                .network_mode
                .as_deref()
                .and_then(|m| m.strip_prefix("service:"))
            {
                let np = p.key("network_mode");
                if !all.contains(other) {
                    return Err(src.invalid(&np, format!("service {other:?} is not defined")));
                }
                if disabled.contains(other) {
                    return Err(src.invalid(
                        &np,
                        format!("service {other:?} is disabled by the active profiles"),
                    ));
                }
                s.depends_on.entry(other.to_string()).or_insert(Dependency {
                    condition: Condition::ServiceStarted,
                    restart: false,
                    required: true,
                });
            }
            let mut deps = BTreeMap::new();
            for (dep, d) in std::mem::take(&mut s.depends_on) {
                let dp = p.key("depends_on").key(&dep);
                if !all.contains(&dep) {
                    return Err(src.invalid(&dp, format!("depends on undefined service {dep:?}")));
                }
                if disabled.contains(&dep) {
                    if d.required {
                        return Err(src.invalid(
                            &dp,
                            format!(
                                "depends on service {dep:?}, which is disabled by the active \
                                 profiles (enable one of its profiles, or mark the dependency \
                                 `required: false`)"
                            ),
                        ));
                    }
                    continue; // an optional dependency that is not there
                }
                deps.insert(dep, d);
            }
            s.depends_on = deps;

            if s.network_mode.is_some() {
                if !s.networks.is_empty() {
                    return Err(
                        src.invalid(&p.key("networks"), "cannot be combined with network_mode")
                    );
                }
            } else if s.networks.is_empty() {
                s.networks
                    .insert("default".into(), ServiceNetwork::default());
            }
            for net in s.networks.keys() {
                if net == "default" {
                    uses_default = true;
                } else if !project.networks.contains_key(net) {
                    return Err(src.invalid(
                        &p.key("networks").key(net),
                        format!("refers to undefined network {net:?}"),
                    ));
                }
            }
            for (i, v) in s.volumes.iter().enumerate() {
                if let (VolumeKind::Volume, Some(vol)) = (&v.kind, &v.source) {
                    if !project.volumes.contains_key(vol) {
                        return Err(src.invalid(
                            &p.key("volumes").idx(i),
                            format!("refers to undefined volume {vol:?}"),
                        ));
                    }
                }
            }
            for (kind, mounts, defined) in [
                ("secrets", &s.secrets, &project.secrets),
                ("configs", &s.configs, &project.configs),
            ] {
                for (i, m) in mounts.iter().enumerate() {
                    if !defined.contains_key(&m.source) {
                        let what = &kind[..kind.len() - 1];
                        return Err(src.invalid(
                            &p.key(kind).idx(i),
                            format!("refers to undefined {what} {:?}", m.source),
                        ));
                    }
                }
            }
            if let Some(cname) = &s.container_name {
                let cp = p.key("container_name");
                if s.replicas > 1 {
                    return Err(src.invalid(
                        &cp,
                        format!(
                            "cannot be set with {} replicas: container names must be unique",
                            s.replicas
                        ),
                    ));
                }
                if let Some(other) = container_names.insert(cname.clone(), name.clone()) {
                    return Err(src.invalid(
                        &cp,
                        format!("{cname:?} is already the container name of service {other:?}"),
                    ));
                }
            }
            project.services.insert(name, s);
        }
        if uses_default && !project.networks.contains_key("default") {
            project.networks.insert(
                "default".into(),
                Network {
                    name: format!("{name}_default"),
                    ..Network::default()
                },
            );
        }
        if let Some(cycle) = find_cycle(&project.services) {
            let src = src_of(&format!("services.{}", cycle[0]));
            return Err(ComposeError::DependencyCycle {
                file: src.display.clone(),
                key: format!("services.{}.depends_on", cycle[0]),
                cycle,
            });
        }
        Ok(project)
    }

    /// `-p`, COMPOSE_PROJECT_NAME, the top-level `name`, or the directory's name.
    fn project_name(&self, merged: &Mapping, env: &Env, name_src: &Source) -> Result<String> {
        let explicit = if let Some(n) = &self.opts.project_name {
            Some((n.clone(), "-p".to_string()))
        } else if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
            Some((n, "COMPOSE_PROJECT_NAME".to_string()))
        } else {
            merged
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(|n| (n.to_string(), format!("{}: name", name_src.display)))
        };
        if let Some((name, origin)) = explicit {
            if !valid_project_name(&name) {
                return Err(ComposeError::ProjectName { name, origin });
            }
            return Ok(name);
        }
        let base = self
            .working_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let normalized: String = base
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
            .collect();
        let normalized = normalized.trim_start_matches(['_', '-']).to_string();
        if !valid_project_name(&normalized) {
            return Err(ComposeError::ProjectName {
                name: base,
                origin: "the project directory's name".into(),
            });
        }
        Ok(normalized)
    }

    /// `--profile` when given, else COMPOSE_PROFILES: as in docker compose,
    /// the flag replaces the variable rather than adding to it.
    fn active_profiles(&self, env: &Env) -> BTreeSet<String> {
        let given: BTreeSet<String> = self
            .opts
            .profiles
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if !given.is_empty() {
            return given;
        }
        env.get("COMPOSE_PROFILES")
            .unwrap_or_default()
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// A file named by `include` / `extends` that cannot be read: say where it was named.
fn unreadable(src: &Source, p: &KeyPath, path: &Path, what: &str, e: ComposeError) -> ComposeError {
    match e {
        ComposeError::Io {
            path: failed,
            source,
        } if failed == path => src.invalid(
            p,
            format!("cannot read {what} file {}: {source}", path.display()),
        ),
        other => other,
    }
}

fn valid_project_name(n: &str) -> bool {
    n.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// Add an included project's objects; a name defined differently on both
/// sides is a conflict (the same definition twice, e.g. a shared network
/// included by two files, is fine).
fn add_included(src: &Source, p: &KeyPath, top: &mut Mapping, sub: Mapping) -> Result<()> {
    for (section, objects) in sub {
        let Value::Mapping(objects) = objects else {
            continue;
        };
        let section_name = key_string(&section);
        if !top.get(&section).is_some_and(Value::is_mapping) {
            top.insert(section.clone(), Value::Mapping(Mapping::new()));
        }
        let Some(Value::Mapping(target)) = top.get_mut(&section) else {
            continue;
        };
        for (k, v) in objects {
            match target.get(&k) {
                Some(existing) if *existing != v => {
                    return Err(src.invalid(
                        p,
                        format!(
                            "included file defines {section_name}.{}, which conflicts \
                             with an existing definition",
                            key_string(&k)
                        ),
                    ))
                }
                _ => {
                    target.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

/// A dependency cycle among the services, as `[a, b, a]`.
fn find_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        services: &'a BTreeMap<String, Service>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        if let Some(s) = services.get(name) {
            for dep in s.depends_on.keys() {
                if let Some(c) = visit(dep, services, marks, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in services.keys() {
        if let Some(c) = visit(name, services, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}
