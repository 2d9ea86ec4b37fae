//! Raw (interpolated, merged) YAML to the typed model, validating as it goes:
//! unknown keys, wrong types and malformed values are errors naming the key
//! path. Cross-references between services and top-level objects are checked
//! later, on the whole project (see `load`).
//!
//! Values are typed leniently where interpolation makes that necessary:
//! `"8080"` is a valid port and `"true"` a valid boolean, because
//! `${PORT:-8080}` can only ever produce a string.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde_norway::{Mapping, Value};

use crate::envfile::{self, Env};
use crate::error::{KeyPath, Result, Source};
use crate::interpolate::key_string;
use crate::model::*;
use crate::{merge, parse, paths};

pub(crate) const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include",
];

pub(crate) const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "deploy",
    "scale",
    "labels",
    "container_name",
    "hostname",
    "user",
    "working_dir",
    "init",
    "privileged",
    "cap_add",
    "cap_drop",
    "security_opt",
    "ulimits",
    "sysctls",
    "shm_size",
    "stop_signal",
    "stop_grace_period",
    "tty",
    "stdin_open",
    "extra_hosts",
    "dns",
    "logging",
    "read_only",
    "mem_limit",
    "cpus",
    "secrets",
    "configs",
    "profiles",
    "extends",
];

static EMPTY: LazyLock<Mapping> = LazyLock::new(Mapping::new);

/// What conversion needs beyond the value itself.
pub(crate) struct Ctx<'a> {
    pub(crate) working_dir: &'a Path,
    pub(crate) project: &'a str,
    pub(crate) env: &'a Env,
    /// Per-file validation before merging: check shapes, read no files and
    /// resolve no variables (an override file's fragment is not a project).
    pub(crate) check_only: bool,
}

/// A converter for values from one source file.
pub(crate) struct Conv<'a> {
    pub(crate) src: &'a Source,
    pub(crate) ctx: &'a Ctx<'a>,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum ObjectKind {
    Secret,
    Config,
}

impl Conv<'_> {
    // ---- generic readers -------------------------------------------------

    fn err(&self, p: &KeyPath, message: impl Into<String>) -> crate::ComposeError {
        self.src.invalid(p, message)
    }

    /// A mapping whose keys must all be in `allowed` (or `x-*`, ignored).
    /// `null` reads as an empty mapping (`networks: {front: }`).
    pub(crate) fn fields<'v>(
        &self,
        v: &'v Value,
        p: &KeyPath,
        allowed: &[&str],
    ) -> Result<&'v Mapping> {
        let m = match v {
            Value::Mapping(m) => m,
            Value::Null => &*EMPTY,
            other => return Err(self.err(p, format!("must be a mapping, not {}", kind(other)))),
        };
        for k in m.keys() {
            let Some(name) = k.as_str() else {
                return Err(self.err(p, format!("key {} must be a string", key_string(k))));
            };
            if !name.starts_with("x-") && !allowed.contains(&name) {
                return Err(self.src.unsupported(&p.key(name)));
            }
        }
        Ok(m)
    }

    /// The non-null, non-extension entries of a `fields` mapping.
    fn entries<'v>(&self, m: &'v Mapping) -> impl Iterator<Item = (&'v str, &'v Value)> {
        m.iter().filter_map(|(k, v)| {
            let k = k.as_str()?;
            (!k.starts_with("x-") && !v.is_null()).then_some((k, v))
        })
    }

    fn string(&self, v: &Value, p: &KeyPath) -> Result<String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(self.err(p, format!("must be a string, not {}", kind(other)))),
        }
    }

    /// Any scalar as a string (environment values, labels, options).
    fn scalar(&self, v: &Value, p: &KeyPath) -> Result<String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.err(
                p,
                format!(
                    "must be a string, a number or a boolean, not {}",
                    kind(other)
                ),
            )),
        }
    }

    fn bool(&self, v: &Value, p: &KeyPath) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Ok(true),
                "false" | "no" | "n" | "off" | "0" | "" => Ok(false),
                _ => Err(self.err(p, format!("invalid boolean {s:?}"))),
            },
            other => Err(self.err(p, format!("must be a boolean, not {}", kind(other)))),
        }
    }

    fn int(&self, v: &Value, p: &KeyPath) -> Result<i64> {
        let parsed = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| self.err(p, format!("must be an integer, not {}", show(v))))
    }

    fn non_negative<T: TryFrom<i64>>(&self, v: &Value, p: &KeyPath) -> Result<T> {
        let n = self.int(v, p)?;
        T::try_from(n).map_err(|_| self.err(p, format!("{n} is out of range")))
    }

    fn float(&self, v: &Value, p: &KeyPath) -> Result<f64> {
        let parsed = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match parsed {
            Some(f) if f.is_finite() && f >= 0.0 => Ok(f),
            _ => Err(self.err(p, format!("must be a non-negative number, not {}", show(v)))),
        }
    }

    fn seq<'v>(&self, v: &'v Value, p: &KeyPath) -> Result<&'v [Value]> {
        match v {
            Value::Sequence(s) => Ok(s),
            other => Err(self.err(p, format!("must be a list, not {}", kind(other)))),
        }
    }

    fn string_list(&self, v: &Value, p: &KeyPath) -> Result<Vec<String>> {
        self.seq(v, p)?
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(item, &p.idx(i)))
            .collect()
    }

    /// A single string is a list of one (`dns: 8.8.8.8`).
    fn string_or_list(&self, v: &Value, p: &KeyPath) -> Result<Vec<String>> {
        match v {
            Value::String(_) | Value::Number(_) => Ok(vec![self.string(v, p)?]),
            _ => self.string_list(v, p),
        }
    }

    /// A dictionary in mapping form or list form (`KEY=VALUE` or `KEY`).
    fn dict(&self, v: &Value, p: &KeyPath) -> Result<BTreeMap<String, Option<String>>> {
        let mut out = BTreeMap::new();
        match v {
            Value::Mapping(m) => {
                for (k, val) in m {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(
                                self.err(p, format!("key {} must be a string", key_string(other)))
                            )
                        }
                    };
                    let kp = p.key(&key);
                    let val = match val {
                        Value::Null => None,
                        other => Some(self.scalar(other, &kp)?),
                    };
                    out.insert(key, val);
                }
            }
            Value::Sequence(s) => {
                for (i, item) in s.iter().enumerate() {
                    let entry = self.string(item, &p.idx(i))?;
                    let (k, val) = match entry.split_once('=') {
                        Some((k, val)) => (k.to_string(), Some(val.to_string())),
                        None => (entry, None),
                    };
                    if k.is_empty() {
                        return Err(self.err(&p.idx(i), "empty key"));
                    }
                    out.insert(k, val);
                }
            }
            Value::Null => {}
            other => {
                return Err(self.err(
                    p,
                    format!("must be a mapping or a list, not {}", kind(other)),
                ))
            }
        }
        Ok(out)
    }

    /// A dictionary whose values must be strings (a missing value is "").
    fn string_dict(&self, v: &Value, p: &KeyPath) -> Result<BTreeMap<String, String>> {
        Ok(self
            .dict(v, p)?
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    fn duration(&self, v: &Value, p: &KeyPath) -> Result<i64> {
        let s = self.string(v, p)?;
        parse::duration_ns(&s).map_err(|m| self.err(p, m))
    }

    fn size(&self, v: &Value, p: &KeyPath) -> Result<i64> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .filter(|n| *n >= 0)
                .ok_or_else(|| self.err(p, format!("invalid size {n}"))),
            _ => {
                let s = self.string(v, p)?;
                parse::size_bytes(&s).map_err(|m| self.err(p, m))
            }
        }
    }

    /// Exec form: a string is split into words as a shell would.
    fn command(&self, v: &Value, p: &KeyPath) -> Result<Vec<String>> {
        match v {
            Value::String(s) => parse::shell_split(s).map_err(|m| self.err(p, m)),
            _ => self.string_list(v, p),
        }
    }

    fn host_path(&self, s: &str, p: &KeyPath) -> Result<String> {
        paths::host_path(s, self.ctx.working_dir, self.ctx.env).map_err(|m| self.err(p, m))
    }

    // ---- services --------------------------------------------------------

    pub(crate) fn service(&self, name: &str, v: &Value) -> Result<Service> {
        let p = KeyPath::root().key("services").key(name);
        if !v.is_mapping() {
            return Err(self.err(&p, format!("a service must be a mapping, not {}", kind(v))));
        }
        let m = self.fields(v, &p, SERVICE_KEYS)?;
        let mut s = Service::default();
        let mut env_files = Vec::new();
        let mut environment = BTreeMap::new();
        let mut scale = None;
        let mut deploy = Deploy::default();
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "image" => s.image = Some(self.string(val, &kp)?),
                "build" => s.build = Some(self.build(val, &kp)?),
                "command" => s.command = Some(self.command(val, &kp)?),
                "entrypoint" => s.entrypoint = Some(self.command(val, &kp)?),
                "environment" => environment = self.dict(val, &kp)?,
                "env_file" => env_files = self.env_files(val, &kp)?,
                "ports" => s.ports = self.ports(val, &kp)?,
                "expose" => s.expose = self.expose(val, &kp)?,
                "volumes" => s.volumes = self.service_volumes(val, &kp)?,
                "tmpfs" => s.tmpfs = self.string_or_list(val, &kp)?,
                "networks" => s.networks = self.service_networks(val, &kp)?,
                "network_mode" => s.network_mode = Some(self.network_mode(val, &kp)?),
                "depends_on" => s.depends_on = self.depends_on(val, &kp)?,
                "healthcheck" => s.healthcheck = Some(self.healthcheck(val, &kp)?),
                "restart" => s.restart = Some(self.restart(val, &kp)?),
                "deploy" => deploy = self.deploy(val, &kp)?,
                "scale" => scale = Some(self.non_negative::<u32>(val, &kp)?),
                "labels" => s.labels = self.string_dict(val, &kp)?,
                "container_name" => s.container_name = Some(self.string(val, &kp)?),
                "hostname" => s.hostname = Some(self.string(val, &kp)?),
                "user" => s.user = Some(self.string(val, &kp)?),
                "working_dir" => s.working_dir = Some(self.string(val, &kp)?),
                "init" => s.init = Some(self.bool(val, &kp)?),
                "privileged" => s.privileged = self.bool(val, &kp)?,
                "cap_add" => s.cap_add = self.string_list(val, &kp)?,
                "cap_drop" => s.cap_drop = self.string_list(val, &kp)?,
                "security_opt" => s.security_opt = self.string_list(val, &kp)?,
                "ulimits" => s.ulimits = self.ulimits(val, &kp)?,
                "sysctls" => s.sysctls = self.sysctls(val, &kp)?,
                "shm_size" => s.shm_size = Some(self.size(val, &kp)?),
                "stop_signal" => s.stop_signal = Some(self.string(val, &kp)?),
                // Whole seconds, as the engine's stop timeout takes them.
                "stop_grace_period" => {
                    s.stop_grace_period = Some(self.duration(val, &kp)? / 1_000_000_000)
                }
                "tty" => s.tty = self.bool(val, &kp)?,
                "stdin_open" => s.stdin_open = self.bool(val, &kp)?,
                "extra_hosts" => s.extra_hosts = self.extra_hosts(val, &kp)?,
                "dns" => s.dns = self.string_or_list(val, &kp)?,
                "logging" => s.logging = Some(self.logging(val, &kp)?),
                "read_only" => s.read_only = self.bool(val, &kp)?,
                "mem_limit" => s.mem_limit = Some(self.size(val, &kp)?),
                "cpus" => s.cpus = Some(self.float(val, &kp)?),
                "secrets" => s.secrets = self.file_mounts(val, &kp, ObjectKind::Secret)?,
                "configs" => s.configs = self.file_mounts(val, &kp, ObjectKind::Config)?,
                "profiles" => s.profiles = self.string_list(val, &kp)?,
                "extends" => {} // resolved before conversion; its shape checked there
                _ => return Err(self.src.unsupported(&kp)),
            }
        }

        // docker compose refuses two different counts (on the merged,
        // enabled service, hence not in the per-file check).
        if let (Some(replicas), Some(scale), false) = (deploy.replicas, scale, self.ctx.check_only)
        {
            if replicas != scale {
                return Err(self.err(
                    &p.key("scale"),
                    format!(
                        "can't set distinct values on 'scale' ({scale}) and \
                         'deploy.replicas' ({replicas})"
                    ),
                ));
            }
        }
        s.replicas = deploy.replicas.or(scale).unwrap_or(1);
        s.restart = s.restart.or(deploy.restart);
        s.mem_limit = s.mem_limit.or(deploy.memory);
        s.cpus = s.cpus.or(deploy.cpus);

        // env_file contents first, `environment` over them; a name without a
        // value takes the value the CLI's environment has for it, if any.
        let mut env = BTreeMap::new();
        if !self.ctx.check_only {
            let lookup = |k: &str| self.ctx.env.get(k);
            for (i, (path, required)) in env_files.iter().enumerate() {
                if !required && !path.exists() {
                    continue;
                }
                let pairs = envfile::read(path, &lookup).map_err(|e| match e {
                    crate::ComposeError::Io { source, .. } => self.err(
                        &p.key("env_file").idx(i),
                        format!("env file {}: {source}", path.display()),
                    ),
                    other => other,
                })?;
                env.extend(pairs.into_iter().map(|(k, v)| (k, Some(v))));
            }
        }
        for (k, v) in environment {
            let v = if v.is_none() && !self.ctx.check_only {
                self.ctx.env.get(&k)
            } else {
                v
            };
            env.insert(k, v);
        }
        s.environment = env;
        Ok(s)
    }

    fn build(&self, v: &Value, p: &KeyPath) -> Result<Build> {
        let mut b = Build {
            context: self.ctx.working_dir.to_path_buf(),
            dockerfile: "Dockerfile".into(),
            ..Build::default()
        };
        let context = |s: String, kp: &KeyPath| -> Result<PathBuf> {
            if paths::is_remote_context(&s) {
                Ok(PathBuf::from(s))
            } else {
                Ok(PathBuf::from(self.host_path(&s, kp)?))
            }
        };
        if let Value::String(s) = v {
            b.context = context(s.clone(), p)?;
            return Ok(b);
        }
        let m = self.fields(v, p, &["context", "dockerfile", "args", "target", "labels"])?;
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "context" => b.context = context(self.string(val, &kp)?, &kp)?,
                "dockerfile" => b.dockerfile = self.string(val, &kp)?,
                "args" => {
                    b.args = self.dict(val, &kp)?;
                    if !self.ctx.check_only {
                        for (name, value) in b.args.iter_mut() {
                            if value.is_none() {
                                *value = self.ctx.env.get(name);
                            }
                        }
                    }
                }
                "target" => b.target = Some(self.string(val, &kp)?),
                "labels" => b.labels = self.string_dict(val, &kp)?,
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        Ok(b)
    }

    /// `env_file`: a path, or a list of paths / `{path, required}`.
    fn env_files(&self, v: &Value, p: &KeyPath) -> Result<Vec<(PathBuf, bool)>> {
        let items: Vec<(KeyPath, &Value)> = match v {
            Value::Sequence(s) => s.iter().enumerate().map(|(i, x)| (p.idx(i), x)).collect(),
            other => vec![(p.clone(), other)],
        };
        let mut out = Vec::new();
        for (ip, item) in items {
            let (path, required) = match item {
                Value::Mapping(_) => {
                    let m = self.fields(item, &ip, &["path", "required"])?;
                    let path = m
                        .get("path")
                        .ok_or_else(|| self.err(&ip, "`path` is required"))?;
                    let required = match m.get("required") {
                        Some(r) => self.bool(r, &ip.key("required"))?,
                        None => true,
                    };
                    (self.string(path, &ip.key("path"))?, required)
                }
                other => (self.string(other, &ip)?, true),
            };
            out.push((PathBuf::from(self.host_path(&path, &ip)?), required));
        }
        Ok(out)
    }

    fn ports(&self, v: &Value, p: &KeyPath) -> Result<Vec<Port>> {
        let mut out = Vec::new();
        for (i, item) in self.seq(v, p)?.iter().enumerate() {
            let ip = p.idx(i);
            match item {
                Value::String(s) => out.extend(parse::port_spec(s).map_err(|m| self.err(&ip, m))?),
                Value::Number(n) => {
                    out.extend(parse::port_spec(&n.to_string()).map_err(|m| self.err(&ip, m))?)
                }
                Value::Mapping(_) => out.push(self.long_port(item, &ip)?),
                other => {
                    return Err(self.err(
                        &ip,
                        format!(
                            "invalid port {}: must be a string, a number or a mapping",
                            show(other)
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn long_port(&self, v: &Value, p: &KeyPath) -> Result<Port> {
        // `mode` (host / ingress) makes no difference on a single engine.
        let m = self.fields(
            v,
            p,
            &["target", "published", "host_ip", "protocol", "mode"],
        )?;
        let number = |val: &Value, kp: &KeyPath| -> Result<Option<u16>> {
            let s = self.string(val, kp)?;
            if s.is_empty() {
                return Ok(None);
            }
            match parse::port_range(&s).map_err(|m| self.err(kp, format!("invalid port: {m}")))?[..]
            {
                [one] => Ok(Some(one)),
                _ => Err(self.err(kp, format!("a target port cannot be a range ({s:?})"))),
            }
        };
        // `published` may be a range: the engine picks a free port of it.
        let published = |val: &Value, kp: &KeyPath| -> Result<Option<String>> {
            let s = self.string(val, kp)?;
            if s.is_empty() {
                return Ok(None);
            }
            let ports =
                parse::port_range(&s).map_err(|m| self.err(kp, format!("invalid port: {m}")))?;
            Ok(Some(match ports[..] {
                [one] => one.to_string(),
                _ => format!("{}-{}", ports[0], ports[ports.len() - 1]),
            }))
        };
        let target = match m.get("target") {
            Some(t) if !t.is_null() => number(t, &p.key("target"))?,
            _ => None,
        }
        .ok_or_else(|| self.err(p, "`target` is required"))?;
        let mut port = Port {
            target,
            published: None,
            host_ip: None,
            protocol: "tcp".into(),
        };
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "target" => {}
                "published" => port.published = published(val, &kp)?,
                "host_ip" => {
                    let ip = self.string(val, &kp)?;
                    if ip.parse::<std::net::IpAddr>().is_err() {
                        return Err(self.err(&kp, format!("invalid IP address {ip:?}")));
                    }
                    port.host_ip = Some(ip);
                }
                "protocol" => {
                    port.protocol =
                        parse::protocol(&self.string(val, &kp)?).map_err(|m| self.err(&kp, m))?
                }
                "mode" => match self.string(val, &kp)?.as_str() {
                    "host" | "ingress" => {}
                    other => return Err(self.err(&kp, format!("invalid port mode {other:?}"))),
                },
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        Ok(port)
    }

    fn expose(&self, v: &Value, p: &KeyPath) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (i, item) in self.seq(v, p)?.iter().enumerate() {
            let ip = p.idx(i);
            let s = self.string(item, &ip)?;
            let (ports, proto) = match s.split_once('/') {
                Some((ports, proto)) => (ports, Some(proto)),
                None => (s.as_str(), None),
            };
            parse::port_range(ports)
                .map_err(|m| self.err(&ip, format!("invalid port {s:?}: {m}")))?;
            if let Some(proto) = proto {
                parse::protocol(proto).map_err(|m| self.err(&ip, m))?;
            }
            out.push(s);
        }
        Ok(out)
    }

    fn service_volumes(&self, v: &Value, p: &KeyPath) -> Result<Vec<ServiceVolume>> {
        let mut out = Vec::new();
        for (i, item) in self.seq(v, p)?.iter().enumerate() {
            let ip = p.idx(i);
            out.push(match item {
                Value::String(s) => self.short_volume(s, &ip)?,
                Value::Mapping(_) => self.long_volume(item, &ip)?,
                other => {
                    return Err(self.err(
                        &ip,
                        format!(
                            "a volume must be a string or a mapping, not {}",
                            kind(other)
                        ),
                    ))
                }
            });
        }
        Ok(out)
    }

    fn short_volume(&self, spec: &str, p: &KeyPath) -> Result<ServiceVolume> {
        let sv = parse::volume_short(spec).map_err(|m| self.err(p, m))?;
        let mut read_only = false;
        for opt in sv
            .mode
            .unwrap_or_default()
            .split(',')
            .filter(|o| !o.is_empty())
        {
            match opt {
                "ro" => read_only = true,
                "rw" => read_only = false,
                // SELinux relabelling, macOS consistency and propagation
                // flags: accepted, nothing to do for them here.
                "z" | "Z" | "cached" | "delegated" | "consistent" | "nocopy" | "shared"
                | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {}
                other => {
                    return Err(self.err(
                        p,
                        format!("invalid volume {spec:?}: unknown option {other:?}"),
                    ))
                }
            }
        }
        let (kind, source) = match sv.source {
            None => (VolumeKind::Volume, None),
            Some(s) if parse::is_host_path(s) => (VolumeKind::Bind, Some(self.host_path(s, p)?)),
            Some(name) => {
                self.volume_name(name, p)?;
                (VolumeKind::Volume, Some(name.to_string()))
            }
        };
        Ok(ServiceVolume {
            kind,
            source,
            target: sv.target.to_string(),
            read_only,
            tmpfs_size: None,
        })
    }

    fn volume_name(&self, name: &str, p: &KeyPath) -> Result<()> {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(())
        } else {
            Err(self.err(p, format!("invalid volume name {name:?}")))
        }
    }

    fn long_volume(&self, v: &Value, p: &KeyPath) -> Result<ServiceVolume> {
        let m = self.fields(
            v,
            p,
            &[
                "type",
                "source",
                "target",
                "read_only",
                "consistency",
                "bind",
                "tmpfs",
            ],
        )?;
        let get_str = |k: &str| -> Result<Option<String>> {
            match m.get(k) {
                Some(val) if !val.is_null() => Ok(Some(self.string(val, &p.key(k))?)),
                _ => Ok(None),
            }
        };
        let source = get_str("source")?.filter(|s| !s.is_empty());
        let target = get_str("target")?.ok_or_else(|| self.err(p, "`target` is required"))?;
        if !target.starts_with('/') {
            return Err(self.err(
                &p.key("target"),
                format!("the container path {target:?} must be absolute"),
            ));
        }
        let kind = match get_str("type")?.as_deref() {
            Some("bind") => VolumeKind::Bind,
            Some("volume") => VolumeKind::Volume,
            Some("tmpfs") => VolumeKind::Tmpfs,
            Some(other) => {
                return Err(self.err(
                    &p.key("type"),
                    format!("volume type {other:?} is not supported (bind, volume or tmpfs)"),
                ))
            }
            None => match &source {
                Some(s) if parse::is_host_path(s) => VolumeKind::Bind,
                _ => VolumeKind::Volume,
            },
        };
        let mut vol = ServiceVolume {
            kind: kind.clone(),
            source: None,
            target,
            read_only: false,
            tmpfs_size: None,
        };
        vol.source = match (&kind, source) {
            (VolumeKind::Bind, Some(s)) => Some(self.host_path(&s, &p.key("source"))?),
            (VolumeKind::Bind, None) => return Err(self.err(p, "a bind mount needs a `source`")),
            (VolumeKind::Volume, Some(s)) => {
                self.volume_name(&s, &p.key("source"))?;
                Some(s)
            }
            (VolumeKind::Volume, None) => None,
            (VolumeKind::Tmpfs, Some(_)) => {
                return Err(self.err(&p.key("source"), "a tmpfs mount takes no `source`"))
            }
            (VolumeKind::Tmpfs, None) => None,
        };
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "read_only" => vol.read_only = self.bool(val, &kp)?,
                "consistency" => {
                    self.string(val, &kp)?;
                }
                "bind" => {
                    if kind != VolumeKind::Bind {
                        return Err(self.err(&kp, "only valid for type bind"));
                    }
                    // Binds always create a missing host path here, as the short form does.
                    let b = self.fields(val, &kp, &["create_host_path"])?;
                    if let Some(c) = b.get("create_host_path") {
                        self.bool(c, &kp.key("create_host_path"))?;
                    }
                }
                "tmpfs" => {
                    if kind != VolumeKind::Tmpfs {
                        return Err(self.err(&kp, "only valid for type tmpfs"));
                    }
                    let t = self.fields(val, &kp, &["size"])?;
                    if let Some(size) = t.get("size").filter(|s| !s.is_null()) {
                        vol.tmpfs_size = Some(self.size(size, &kp.key("size"))?);
                    }
                }
                _ => {}
            }
        }
        Ok(vol)
    }

    fn service_networks(&self, v: &Value, p: &KeyPath) -> Result<BTreeMap<String, ServiceNetwork>> {
        let mut out = BTreeMap::new();
        match v {
            Value::Sequence(_) => {
                for name in self.string_list(v, p)? {
                    out.insert(name, ServiceNetwork::default());
                }
            }
            Value::Mapping(m) => {
                for (k, val) in m {
                    let name = key_string(k);
                    let np = p.key(&name);
                    let f = self.fields(val, &np, &["aliases", "ipv4_address"])?;
                    let mut n = ServiceNetwork::default();
                    for (fk, fv) in self.entries(f) {
                        match fk {
                            "aliases" => n.aliases = self.string_list(fv, &np.key(fk))?,
                            "ipv4_address" => {
                                let ip = self.string(fv, &np.key(fk))?;
                                if ip.parse::<std::net::Ipv4Addr>().is_err() {
                                    return Err(self
                                        .err(&np.key(fk), format!("invalid IPv4 address {ip:?}")));
                                }
                                n.ipv4_address = Some(ip);
                            }
                            _ => return Err(self.src.unsupported(&np.key(fk))),
                        }
                    }
                    out.insert(name, n);
                }
            }
            other => {
                return Err(self.err(
                    p,
                    format!("must be a list or a mapping, not {}", kind(other)),
                ))
            }
        }
        Ok(out)
    }

    fn network_mode(&self, v: &Value, p: &KeyPath) -> Result<String> {
        let mode = self.string(v, p)?;
        // `bridge`: the engine's default network, as docker compose allows.
        let ok = matches!(mode.as_str(), "host" | "none" | "bridge")
            || mode.strip_prefix("service:").is_some_and(|s| !s.is_empty())
            || mode
                .strip_prefix("container:")
                .is_some_and(|s| !s.is_empty());
        if !ok {
            return Err(self.err(
                p,
                format!(
                    "invalid network_mode {mode:?} (bridge, host, none, service:<name> or container:<id>)"
                ),
            ));
        }
        Ok(mode)
    }

    fn depends_on(&self, v: &Value, p: &KeyPath) -> Result<BTreeMap<String, Dependency>> {
        let default = Dependency {
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        };
        let mut out = BTreeMap::new();
        match v {
            Value::Sequence(_) => {
                for name in self.string_list(v, p)? {
                    out.insert(name, default.clone());
                }
            }
            Value::Mapping(m) => {
                for (k, val) in m {
                    let name = key_string(k);
                    let dp = p.key(&name);
                    let f = self.fields(val, &dp, &["condition", "restart", "required"])?;
                    let mut d = default.clone();
                    for (fk, fv) in self.entries(f) {
                        let fp = dp.key(fk);
                        match fk {
                            "condition" => {
                                let c = self.string(fv, &fp)?;
                                d.condition = condition(&c).ok_or_else(|| {
                                    self.err(
                                        &fp,
                                        format!(
                                            "invalid condition {c:?} (service_started, \
                                             service_healthy or service_completed_successfully)"
                                        ),
                                    )
                                })?;
                            }
                            "restart" => d.restart = self.bool(fv, &fp)?,
                            "required" => d.required = self.bool(fv, &fp)?,
                            _ => return Err(self.src.unsupported(&fp)),
                        }
                    }
                    out.insert(name, d);
                }
            }
            other => {
                return Err(self.err(
                    p,
                    format!("must be a list or a mapping, not {}", kind(other)),
                ))
            }
        }
        Ok(out)
    }

    fn healthcheck(&self, v: &Value, p: &KeyPath) -> Result<Healthcheck> {
        let m = self.fields(
            v,
            p,
            &[
                "test",
                "interval",
                "timeout",
                "start_period",
                "start_interval",
                "retries",
                "disable",
            ],
        )?;
        let mut h = Healthcheck::default();
        let mut disable = false;
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "test" => {
                    h.test = match val {
                        Value::String(s) => vec!["CMD-SHELL".into(), s.clone()],
                        _ => self.string_list(val, &kp)?,
                    };
                    match h.test.first().map(String::as_str) {
                        Some("CMD" | "CMD-SHELL" | "NONE") => {}
                        _ => {
                            return Err(self.err(
                                &kp,
                                "a test list must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"",
                            ))
                        }
                    }
                }
                "interval" => h.interval = self.duration(val, &kp)?,
                "timeout" => h.timeout = self.duration(val, &kp)?,
                "start_period" => h.start_period = self.duration(val, &kp)?,
                "start_interval" => h.start_interval = self.duration(val, &kp)?,
                "retries" => h.retries = self.non_negative::<i64>(val, &kp)?,
                "disable" => disable = self.bool(val, &kp)?,
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        if disable {
            h.test = vec!["NONE".into()];
        }
        Ok(h)
    }

    fn restart(&self, v: &Value, p: &KeyPath) -> Result<String> {
        // `restart: no` is the string "no" in YAML 1.2, but a `false` means the same.
        let r = match v {
            Value::Bool(false) => "no".to_string(),
            _ => self.string(v, p)?,
        };
        let ok = match r.as_str() {
            "no" | "always" | "unless-stopped" | "on-failure" => true,
            other => other
                .strip_prefix("on-failure:")
                .is_some_and(|n| n.parse::<u32>().is_ok()),
        };
        if !ok {
            return Err(self.err(
                p,
                format!(
                    "invalid restart policy {r:?} (no, always, on-failure[:N] or unless-stopped)"
                ),
            ));
        }
        Ok(r)
    }

    fn deploy(&self, v: &Value, p: &KeyPath) -> Result<Deploy> {
        let m = self.fields(v, p, &["replicas", "resources", "restart_policy"])?;
        let mut d = Deploy::default();
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "replicas" => d.replicas = Some(self.non_negative::<u32>(val, &kp)?),
                "resources" => {
                    let r = self.fields(val, &kp, &["limits", "reservations"])?;
                    // Reservations are a scheduler hint with nothing to enforce
                    // on one engine: accepted as long as they are a mapping.
                    if let Some(res) = r.get("reservations") {
                        if !res.is_null() && !res.is_mapping() {
                            return Err(self.err(&kp.key("reservations"), "must be a mapping"));
                        }
                    }
                    if let Some(limits) = r.get("limits") {
                        let lp = kp.key("limits");
                        let l = self.fields(limits, &lp, &["memory", "cpus"])?;
                        for (lk, lv) in self.entries(l) {
                            match lk {
                                "memory" => d.memory = Some(self.size(lv, &lp.key(lk))?),
                                "cpus" => d.cpus = Some(self.float(lv, &lp.key(lk))?),
                                _ => return Err(self.src.unsupported(&lp.key(lk))),
                            }
                        }
                    }
                }
                "restart_policy" => {
                    let r = self.fields(val, &kp, &["condition", "max_attempts"])?;
                    let condition = match r.get("condition").filter(|c| !c.is_null()) {
                        Some(c) => self.string(c, &kp.key("condition"))?,
                        None => "any".into(),
                    };
                    let max = match r.get("max_attempts").filter(|c| !c.is_null()) {
                        Some(n) => Some(self.non_negative::<u32>(n, &kp.key("max_attempts"))?),
                        None => None,
                    };
                    d.restart = Some(match (condition.as_str(), max) {
                        ("none", _) => "no".into(),
                        ("any", _) => "always".into(),
                        ("on-failure", Some(n)) if n > 0 => format!("on-failure:{n}"),
                        ("on-failure", _) => "on-failure".into(),
                        (other, _) => {
                            return Err(self.err(
                                &kp.key("condition"),
                                format!(
                                    "invalid restart condition {other:?} (none, on-failure or any)"
                                ),
                            ))
                        }
                    });
                }
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        Ok(d)
    }

    fn ulimits(&self, v: &Value, p: &KeyPath) -> Result<BTreeMap<String, Ulimit>> {
        let m = match v {
            Value::Mapping(m) => m,
            other => return Err(self.err(p, format!("must be a mapping, not {}", kind(other)))),
        };
        let mut out = BTreeMap::new();
        for (k, val) in m {
            let name = key_string(k);
            let up = p.key(&name);
            let limit = match val {
                Value::Mapping(_) => {
                    let f = self.fields(val, &up, &["soft", "hard"])?;
                    let get = |k: &str| -> Result<i64> {
                        let v = f
                            .get(k)
                            .ok_or_else(|| self.err(&up, format!("`{k}` is required")))?;
                        self.int(v, &up.key(k))
                    };
                    Ulimit {
                        soft: get("soft")?,
                        hard: get("hard")?,
                    }
                }
                _ => {
                    let n = self.int(val, &up)?;
                    Ulimit { soft: n, hard: n }
                }
            };
            out.insert(name, limit);
        }
        Ok(out)
    }

    fn sysctls(&self, v: &Value, p: &KeyPath) -> Result<BTreeMap<String, String>> {
        self.dict(v, p)?
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => Ok((k, v)),
                None => Err(self.err(&p.key(&k), "a sysctl needs a value")),
            })
            .collect()
    }

    fn extra_hosts(&self, v: &Value, p: &KeyPath) -> Result<Vec<String>> {
        let list = match v {
            Value::Mapping(m) => merge::extra_hosts_list(m),
            Value::Sequence(s) => s.clone(),
            other => {
                return Err(self.err(
                    p,
                    format!("must be a list or a mapping, not {}", kind(other)),
                ))
            }
        };
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let ip = p.idx(i);
            let s = self.string(item, &ip)?;
            // "host=ip" is the newer spelling (it reads better with IPv6).
            let entry = match (s.split_once('='), s.split_once(':')) {
                (Some((h, a)), _) if !h.is_empty() && !a.is_empty() => format!("{h}:{a}"),
                (None, Some((h, a))) if !h.is_empty() && !a.is_empty() => s.clone(),
                _ => return Err(self.err(&ip, format!("invalid extra host {s:?} (host:ip)"))),
            };
            out.push(entry);
        }
        Ok(out)
    }

    fn logging(&self, v: &Value, p: &KeyPath) -> Result<Logging> {
        let m = self.fields(v, p, &["driver", "options"])?;
        let mut l = Logging::default();
        for (k, val) in self.entries(m) {
            match k {
                "driver" => l.driver = Some(self.string(val, &p.key(k))?),
                "options" => l.options = self.string_dict(val, &p.key(k))?,
                _ => return Err(self.src.unsupported(&p.key(k))),
            }
        }
        Ok(l)
    }

    fn file_mounts(&self, v: &Value, p: &KeyPath, kind_: ObjectKind) -> Result<Vec<FileMount>> {
        let dir = match kind_ {
            ObjectKind::Secret => "/run/secrets/",
            ObjectKind::Config => "/",
        };
        let mut out = Vec::new();
        for (i, item) in self.seq(v, p)?.iter().enumerate() {
            let ip = p.idx(i);
            let (source, target) = match item {
                Value::Mapping(_) => {
                    let m = self.fields(item, &ip, &["source", "target"])?;
                    let source = m
                        .get("source")
                        .filter(|s| !s.is_null())
                        .ok_or_else(|| self.err(&ip, "`source` is required"))?;
                    let source = self.string(source, &ip.key("source"))?;
                    let target = match m.get("target").filter(|t| !t.is_null()) {
                        Some(t) => Some(self.string(t, &ip.key("target"))?),
                        None => None,
                    };
                    (source, target)
                }
                other => (self.string(other, &ip)?, None),
            };
            let target = match target {
                Some(t) if t.starts_with('/') => t,
                Some(t) => format!("{dir}{t}"),
                None => format!("{dir}{source}"),
            };
            out.push(FileMount { source, target });
        }
        Ok(out)
    }

    // ---- top-level objects ----------------------------------------------

    pub(crate) fn network(&self, key: &str, v: &Value) -> Result<Network> {
        let p = KeyPath::root().key("networks").key(key);
        let m = self.fields(
            v,
            &p,
            &["external", "name", "internal", "driver", "labels", "ipam"],
        )?;
        let mut n = Network::default();
        let mut name = None;
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "external" => n.external = self.bool(val, &kp)?,
                "name" => name = Some(self.string(val, &kp)?),
                "internal" => n.internal = self.bool(val, &kp)?,
                "driver" => n.driver = Some(self.string(val, &kp)?),
                "labels" => n.labels = self.string_dict(val, &kp)?,
                "ipam" => n.subnets = self.ipam(val, &kp)?,
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        n.name = self.object_name(key, name, n.external);
        Ok(n)
    }

    fn ipam(&self, v: &Value, p: &KeyPath) -> Result<Vec<(String, Option<String>)>> {
        let m = self.fields(v, p, &["driver", "config"])?;
        let mut out = Vec::new();
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "driver" => {
                    let d = self.string(val, &kp)?;
                    if d != "default" {
                        return Err(self.err(
                            &kp,
                            format!("IPAM driver {d:?} is not supported (only \"default\")"),
                        ));
                    }
                }
                "config" => {
                    for (i, item) in self.seq(val, &kp)?.iter().enumerate() {
                        let cp = kp.idx(i);
                        let c = self.fields(item, &cp, &["subnet", "gateway"])?;
                        let subnet = c
                            .get("subnet")
                            .filter(|s| !s.is_null())
                            .ok_or_else(|| self.err(&cp, "`subnet` is required"))?;
                        let subnet = self.string(subnet, &cp.key("subnet"))?;
                        let gateway = match c.get("gateway").filter(|g| !g.is_null()) {
                            Some(g) => Some(self.string(g, &cp.key("gateway"))?),
                            None => None,
                        };
                        out.push((subnet, gateway));
                    }
                }
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        Ok(out)
    }

    pub(crate) fn volume(&self, key: &str, v: &Value) -> Result<Volume> {
        let p = KeyPath::root().key("volumes").key(key);
        let m = self.fields(
            v,
            &p,
            &["external", "name", "driver", "driver_opts", "labels"],
        )?;
        let mut vol = Volume::default();
        let mut name = None;
        for (k, val) in self.entries(m) {
            let kp = p.key(k);
            match k {
                "external" => vol.external = self.bool(val, &kp)?,
                "name" => name = Some(self.string(val, &kp)?),
                "driver" => vol.driver = Some(self.string(val, &kp)?),
                "driver_opts" => vol.driver_opts = self.string_dict(val, &kp)?,
                "labels" => vol.labels = self.string_dict(val, &kp)?,
                _ => return Err(self.src.unsupported(&kp)),
            }
        }
        vol.name = self.object_name(key, name, vol.external);
        Ok(vol)
    }

    /// `name:` if given; an external object is otherwise named by its key
    /// (it exists outside the project), anything else is `<project>_<key>`.
    fn object_name(&self, key: &str, name: Option<String>, external: bool) -> String {
        match name {
            Some(n) => n,
            None if external => key.to_string(),
            None => format!("{}_{key}", self.ctx.project),
        }
    }

    pub(crate) fn file_object(
        &self,
        kind_: ObjectKind,
        key: &str,
        v: &Value,
    ) -> Result<FileObject> {
        let section = match kind_ {
            ObjectKind::Secret => "secrets",
            ObjectKind::Config => "configs",
        };
        let p = KeyPath::root().key(section).key(key);
        let allowed: &[&str] = match kind_ {
            ObjectKind::Secret => &["file", "environment"],
            ObjectKind::Config => &["file", "environment", "content"],
        };
        let m = self.fields(v, &p, allowed)?;
        let given: Vec<(&str, &Value)> = self.entries(m).collect();
        let [(k, val)] = given[..] else {
            return Err(self.err(
                &p,
                format!("exactly one of {} must be set", allowed.join(", ")),
            ));
        };
        let kp = p.key(k);
        let s = self.string(val, &kp)?;
        Ok(match k {
            "file" => FileObject::File(PathBuf::from(self.host_path(&s, &kp)?)),
            "content" => FileObject::Content(s),
            _ if self.ctx.check_only => FileObject::Content(String::new()),
            _ => FileObject::Content(
                self.ctx
                    .env
                    .get(&s)
                    .ok_or_else(|| self.err(&kp, format!("environment variable {s} is not set")))?,
            ),
        })
    }
}

/// What `deploy` contributes; applied where the service itself says nothing.
#[derive(Default)]
struct Deploy {
    replicas: Option<u32>,
    restart: Option<String>,
    memory: Option<i64>,
    cpus: Option<f64>,
}

fn condition(c: &str) -> Option<Condition> {
    match c {
        "service_started" => Some(Condition::ServiceStarted),
        "service_healthy" => Some(Condition::ServiceHealthy),
        "service_completed_successfully" => Some(Condition::ServiceCompletedSuccessfully),
        _ => None,
    }
}

/// A value's YAML kind, for type errors.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A scalar quoted for an error message, else its kind.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind(other).to_string(),
    }
}
