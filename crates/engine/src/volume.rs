//! Volumes (the `local` driver) and a container's mounts: `-v`, `--mount`,
//! `--tmpfs`, `--volumes-from`, and the image's VOLUME entries.
//!
//! Mounts are resolved once, when the container is created, into
//! [`MountPoint`]s kept in its record (volumes it needs are created then, as docker
//! does). Each start turns them into OCI mounts and asks the monitor to copy the
//! image's files into volumes that are still empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_monitor::CopyUp;
use berth_runtime::MountSpec;

use crate::model::{ContainerConfig, HostSettings, ImageRecord, MountPoint, VolumeRecord};
use crate::{db, random_id, Engine, EngineError, Result};

/// Label docker puts on volumes made for one container (`-v /path`, VOLUME).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// `volume ls --filter` / `volume prune --filter` keys.
pub type VolumeFilters = std::collections::HashMap<String, Vec<String>>;

/// Volume names follow the rule container names do.
fn valid_volume_name(name: &str) -> bool {
    crate::names::valid(name)
}

fn volume_error(e: berth_volume::VolumeError) -> EngineError {
    match e {
        berth_volume::VolumeError::Io { .. } => EngineError::Volume(e),
        other => EngineError::InvalidArgument(other.to_string()),
    }
}

impl Engine {
    pub(crate) fn volumes_root(&self) -> PathBuf {
        self.config.data_root.join("volumes")
    }

    /// `volume create`: creating a name that exists returns the existing volume,
    /// as docker does.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<VolumeRecord> {
        if !driver.is_empty() && driver != "local" {
            return Err(EngineError::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !valid_volume_name(n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                    )));
                }
                n.to_string()
            }
            None => random_id(),
        };
        let opts: Vec<(String, String)> = options.clone().into_iter().collect();
        berth_volume::validate_options(&opts).map_err(volume_error)?;
        let mut st = self.lock();
        if let Some(v) = st.volumes.get(&name) {
            return Ok(v.clone());
        }
        let data = berth_volume::create_dir(&self.volumes_root(), &name).map_err(volume_error)?;
        let record = VolumeRecord {
            name: name.clone(),
            driver: "local".into(),
            mountpoint: data.display().to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
            scope: "local".into(),
        };
        // Directory first, record second: a crash in between leaves a directory
        // without a record, which the next start removes.
        self.db.put(db::VOLUMES, &name, &record)?;
        st.volumes.insert(name.clone(), record.clone());
        drop(st);
        self.events.emit(
            "volume",
            "create",
            &name,
            BTreeMap::from([("driver".to_string(), "local".to_string())]),
        );
        Ok(record)
    }

    pub fn volume(&self, name: &str) -> Result<VolumeRecord> {
        self.lock()
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("get {name}: no such volume")))
    }

    /// IDs of the containers (in any state) that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        let st = self.lock();
        let mut users: Vec<String> = st
            .containers
            .values()
            .filter(|c| {
                c.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect();
        users.sort();
        users
    }

    pub fn volumes(&self, filters: &VolumeFilters) -> Result<Vec<VolumeRecord>> {
        for key in filters.keys() {
            if !["name", "label", "dangling", "driver"].contains(&key.as_str()) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{key}'"
                )));
            }
        }
        let all: Vec<VolumeRecord> = self.lock().volumes.values().cloned().collect();
        let mut out: Vec<VolumeRecord> = all
            .into_iter()
            .filter(|v| {
                filters.iter().all(|(key, values)| {
                    if key == "label" {
                        return crate::labels_match(values, |k| {
                            v.labels.get(k).map(String::as_str)
                        });
                    }
                    values.iter().any(|val| match key.as_str() {
                        "name" => v.name.contains(val.as_str()),
                        "driver" => &v.driver == val,
                        "dangling" => {
                            let dangling = self.volume_users(&v.name).is_empty();
                            matches!(val.as_str(), "true" | "1") == dangling
                        }
                        _ => false,
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `volume rm`: a volume in use by any container (even a stopped one) stays.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let record = match self.volume(name) {
            Ok(r) => r,
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        {
            let mut st = self.lock();
            // Record first: a crash before the directory is gone leaves an orphan
            // directory, which the next start removes; never a record without data.
            self.db.delete(db::VOLUMES, name)?;
            st.volumes.remove(name);
        }
        berth_volume::remove_dir(&self.volumes_root(), &record.name).map_err(volume_error)?;
        self.events.emit(
            "volume",
            "destroy",
            name,
            BTreeMap::from([("driver".to_string(), "local".to_string())]),
        );
        Ok(())
    }

    /// `volume prune`: unused anonymous volumes, or with `all=true` every unused one.
    pub fn prune_volumes(&self, filters: &VolumeFilters) -> Result<(Vec<String>, u64)> {
        let all = filters
            .get("all")
            .is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "true" | "1")));
        let labels = filters.get("label").cloned().unwrap_or_default();
        let candidates: Vec<VolumeRecord> = self.lock().volumes.values().cloned().collect();
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for v in candidates {
            if !all && !v.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !crate::labels_match(&labels, |k| v.labels.get(k).map(String::as_str)) {
                continue;
            }
            if !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let size = berth_volume::dir_size(Path::new(&v.mountpoint));
            if self.remove_volume(&v.name, false).is_ok() {
                reclaimed += size;
                removed.push(v.name);
            }
        }
        Ok((removed, reclaimed))
    }

    /// Removes volume directories no record owns (a create or rm cut short).
    pub(crate) fn remove_orphan_volumes(&self) {
        let root = self.volumes_root();
        let known: std::collections::HashSet<String> =
            self.lock().volumes.keys().cloned().collect();
        for name in berth_volume::list_dirs(&root) {
            if known.contains(&name) {
                continue;
            }
            tracing::info!(volume = %name, "removing orphaned volume directory");
            if let Err(e) = berth_volume::remove_dir(&root, &name) {
                tracing::warn!(volume = %name, error = %e, "cannot remove orphaned volume");
            }
        }
    }

    /// Resolves a new container's mounts, creating the volumes it names. On error
    /// the volumes made here are removed again.
    pub(crate) fn resolve_mounts(
        &self,
        config: &ContainerConfig,
        host: &HostSettings,
        image: &ImageRecord,
    ) -> Result<Vec<MountPoint>> {
        let mut created = Vec::new();
        let result = self.resolve_mounts_inner(config, host, image, &mut created);
        if result.is_err() {
            for name in created {
                let _ = self.remove_volume(&name, true);
            }
        }
        result
    }

    fn resolve_mounts_inner(
        &self,
        config: &ContainerConfig,
        host: &HostSettings,
        image: &ImageRecord,
        created: &mut Vec<String>,
    ) -> Result<Vec<MountPoint>> {
        let mut by_dest: BTreeMap<String, MountPoint> = BTreeMap::new();

        for spec in &host.volumes_from {
            let (reference, mode) = match spec.rsplit_once(':') {
                Some((r, m)) if m == "ro" || m == "rw" => (r, Some(m)),
                _ => (spec.as_str(), None),
            };
            let source = self.container(reference)?;
            for m in &source.mounts {
                let mut m = m.clone();
                m.anonymous = false;
                m.copy_data = false;
                if let Some(mode) = mode {
                    m.rw = mode == "rw";
                    m.mode = mode.to_string();
                }
                by_dest.insert(m.destination.clone(), m);
            }
        }

        let mut explicit: Vec<MountPoint> = Vec::new();
        for bind in &host.binds {
            explicit.push(self.parse_bind(bind, created)?);
        }
        for m in &host.mounts {
            explicit.push(self.parse_mount(m, created)?);
        }
        for (dest, opts) in &host.tmpfs {
            explicit.push(tmpfs_mount(dest, opts, &[])?);
        }
        let mut seen = std::collections::HashSet::new();
        for m in &explicit {
            if !seen.insert(m.destination.clone()) {
                return Err(EngineError::InvalidArgument(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
        }

        // VOLUME entries of the image and the request: anonymous volumes, unless
        // something else is mounted there.
        let declared = image
            .config
            .config
            .volumes
            .iter()
            .chain(config.volumes.iter())
            .flat_map(|v| v.iter().cloned())
            .collect::<std::collections::BTreeSet<String>>();
        for dest in declared {
            let dest = clean_destination(&dest)?;
            if by_dest.contains_key(&dest) || seen.contains(&dest) {
                continue;
            }
            let v = self.create_anonymous(created)?;
            by_dest.insert(
                dest.clone(),
                MountPoint {
                    kind: "volume".into(),
                    name: v.name,
                    source: v.mountpoint,
                    destination: dest,
                    rw: true,
                    copy_data: true,
                    anonymous: true,
                    ..Default::default()
                },
            );
        }
        for m in explicit {
            by_dest.insert(m.destination.clone(), m);
        }
        Ok(by_dest.into_values().collect())
    }

    fn create_anonymous(&self, created: &mut Vec<String>) -> Result<VolumeRecord> {
        let v = self.create_volume(
            None,
            "local",
            BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]),
            BTreeMap::new(),
        )?;
        created.push(v.name.clone());
        Ok(v)
    }

    fn named_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        created: &mut Vec<String>,
    ) -> Result<VolumeRecord> {
        if let Ok(v) = self.volume(name) {
            return Ok(v);
        }
        let v = self.create_volume(Some(name), "local", labels, options)?;
        created.push(v.name.clone());
        Ok(v)
    }

    /// `-v SRC:DEST[:MODE]`, `-v DEST` (anonymous volume).
    fn parse_bind(&self, spec: &str, created: &mut Vec<String>) -> Result<MountPoint> {
        let invalid =
            || EngineError::InvalidArgument(format!("invalid volume specification: '{spec}'"));
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, dest, mode) = match parts.as_slice() {
            [dest] => ("", *dest, ""),
            [src, dest] => (*src, *dest, ""),
            [src, dest, mode] => (*src, *dest, *mode),
            _ => return Err(invalid()),
        };
        // `:/x` names a source, an empty one: not an anonymous volume.
        if dest.is_empty() || (parts.len() > 1 && source.is_empty()) {
            return Err(invalid());
        }
        crate::validate::bind_mode(mode, PROPAGATIONS)?;
        let destination = clean_destination(dest)?;
        let mut rw = true;
        let mut propagation = String::new();
        let mut copy = true;
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => rw = false,
                "rw" | "z" | "Z" | "consistent" | "cached" | "delegated" => {}
                "nocopy" => copy = false,
                p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid mode: {mode}"
                    )))
                }
            }
        }
        if source.is_empty() {
            let v = self.create_anonymous(created)?;
            return Ok(MountPoint {
                kind: "volume".into(),
                name: v.name,
                source: v.mountpoint,
                destination,
                mode: mode.into(),
                rw,
                copy_data: copy,
                anonymous: true,
                ..Default::default()
            });
        }
        if source.starts_with('/') {
            // docker's -v creates a missing host directory; --mount does not.
            if !Path::new(source).exists() {
                std::fs::create_dir_all(source)
                    .map_err(|e| EngineError::at("create bind source", Path::new(source), e))?;
            }
            return Ok(MountPoint {
                kind: "bind".into(),
                source: source.into(),
                destination,
                mode: mode.into(),
                rw,
                propagation: if propagation.is_empty() {
                    "rprivate".into()
                } else {
                    propagation
                },
                ..Default::default()
            });
        }
        if !propagation.is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "invalid mode: {mode}: propagation applies to bind mounts only"
            )));
        }
        let v = self.named_volume(source, BTreeMap::new(), BTreeMap::new(), created)?;
        Ok(MountPoint {
            kind: "volume".into(),
            name: v.name,
            source: v.mountpoint,
            destination,
            mode: if mode.is_empty() {
                "z".into()
            } else {
                mode.into()
            },
            rw,
            copy_data: copy,
            ..Default::default()
        })
    }

    /// `--mount type=...` (HostConfig.Mounts).
    fn parse_mount(
        &self,
        m: &crate::model::MountRequest,
        created: &mut Vec<String>,
    ) -> Result<MountPoint> {
        let invalid = |why: String| {
            EngineError::InvalidArgument(format!(
                "invalid mount config for type \"{}\": {why}",
                m.kind
            ))
        };
        if m.target.is_empty() {
            return Err(invalid("field Target must not be empty".into()));
        }
        let destination = clean_destination(&m.target).map_err(|e| invalid(e.to_string()))?;
        match m.kind.as_str() {
            "bind" => {
                if m.source.is_empty() {
                    return Err(invalid("field Source must not be empty".into()));
                }
                if !m.source.starts_with('/') {
                    return Err(invalid(format!(
                        "invalid mount path: '{}' mount path must be absolute",
                        m.source
                    )));
                }
                if m.volume_options.is_some() || m.tmpfs_options.is_some() {
                    return Err(invalid(
                        "field VolumeOptions/TmpfsOptions must not be specified".into(),
                    ));
                }
                let opts = m.bind_options.clone().unwrap_or_default();
                if !Path::new(&m.source).exists() {
                    if !opts.create_mountpoint {
                        return Err(invalid(format!(
                            "bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    std::fs::create_dir_all(&m.source).map_err(|e| {
                        EngineError::at("create bind source", Path::new(&m.source), e)
                    })?;
                }
                let propagation = if opts.propagation.is_empty() {
                    "rprivate".to_string()
                } else if PROPAGATIONS.contains(&opts.propagation.as_str()) {
                    opts.propagation
                } else {
                    return Err(invalid(format!(
                        "invalid propagation mode: {}",
                        opts.propagation
                    )));
                };
                Ok(MountPoint {
                    kind: "bind".into(),
                    source: m.source.clone(),
                    destination,
                    rw: !m.read_only,
                    propagation,
                    ..Default::default()
                })
            }
            "volume" => {
                if m.bind_options.is_some() || m.tmpfs_options.is_some() {
                    return Err(invalid(
                        "field BindOptions/TmpfsOptions must not be specified".into(),
                    ));
                }
                let opts = m.volume_options.clone().unwrap_or_default();
                let driver_opts = opts.driver_config.map(|d| d.options).unwrap_or_default();
                let (v, anonymous) = if m.source.is_empty() {
                    (self.create_anonymous(created)?, true)
                } else {
                    (
                        self.named_volume(&m.source, opts.labels, driver_opts, created)?,
                        false,
                    )
                };
                Ok(MountPoint {
                    kind: "volume".into(),
                    name: v.name,
                    source: v.mountpoint,
                    destination,
                    rw: !m.read_only,
                    copy_data: !opts.no_copy,
                    anonymous,
                    ..Default::default()
                })
            }
            "tmpfs" => {
                if !m.source.is_empty() {
                    return Err(invalid("field Source must not be specified".into()));
                }
                let mut extra = Vec::new();
                if let Some(t) = &m.tmpfs_options {
                    if t.size_bytes < 0 {
                        return Err(invalid("tmpfs size must not be negative".into()));
                    }
                    if t.size_bytes > 0 {
                        extra.push(format!("size={}", t.size_bytes));
                    }
                    if t.mode != 0 {
                        extra.push(format!("mode={:o}", t.mode & 0o7777));
                    }
                }
                let mut mp = tmpfs_mount(&m.target, "", &extra)?;
                mp.rw = !m.read_only;
                Ok(mp)
            }
            other => Err(EngineError::InvalidArgument(format!(
                "mount type unknown: \"{other}\""
            ))),
        }
    }

    /// The OCI mounts of a container about to start, and the volumes the monitor
    /// should fill from the image. Device-backed volumes are mounted here.
    pub(crate) fn mount_specs(
        &self,
        mounts: &[MountPoint],
    ) -> Result<(Vec<MountSpec>, Vec<CopyUp>)> {
        let mut sorted: Vec<&MountPoint> = mounts.iter().collect();
        // Parents before children: /data before /data/sub.
        sorted.sort_by_key(|m| m.destination.matches('/').count());
        let mut specs = Vec::new();
        let mut copies = Vec::new();
        for m in sorted {
            let mut options = Vec::new();
            match m.kind.as_str() {
                "volume" => {
                    let v = self.volume(&m.name)?;
                    let opts: Vec<(String, String)> = v.options.clone().into_iter().collect();
                    berth_volume::ensure_mounted(Path::new(&v.mountpoint), &opts)
                        .map_err(volume_error)?;
                    options.extend(["rbind".to_string(), "rprivate".to_string()]);
                    if m.copy_data {
                        copies.push(CopyUp {
                            destination: m.destination.clone(),
                            volume_dir: PathBuf::from(&v.mountpoint),
                        });
                    }
                    if !m.rw {
                        options.push("ro".into());
                    }
                    specs.push(MountSpec {
                        destination: m.destination.clone(),
                        source: v.mountpoint,
                        kind: "bind".into(),
                        options,
                    });
                }
                "bind" => {
                    if !Path::new(&m.source).exists() {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    options.push("rbind".into());
                    options.push(if m.propagation.is_empty() {
                        "rprivate".into()
                    } else {
                        m.propagation.clone()
                    });
                    if !m.rw {
                        options.push("ro".into());
                    }
                    specs.push(MountSpec {
                        destination: m.destination.clone(),
                        source: m.source.clone(),
                        kind: "bind".into(),
                        options,
                    });
                }
                _ => {
                    options.extend(m.tmpfs_options.iter().cloned());
                    if !m.rw {
                        options.push("ro".into());
                    }
                    specs.push(MountSpec {
                        destination: m.destination.clone(),
                        source: "tmpfs".into(),
                        kind: "tmpfs".into(),
                        options,
                    });
                }
            }
        }
        Ok((specs, copies))
    }

    /// `rm -v`: the container's anonymous volumes go with it (unless another
    /// container still uses one through `--volumes-from`).
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.anonymous && m.kind == "volume") {
            if let Err(e) = self.remove_volume(&m.name, true) {
                tracing::info!(volume = %m.name, error = %e, "anonymous volume kept");
            }
        }
    }
}

fn clean_destination(dest: &str) -> Result<String> {
    if !dest.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid mount path: '{dest}' mount path must be absolute"
        )));
    }
    let mut parts = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(EngineError::InvalidArgument(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `--tmpfs DEST[:OPTS]`: docker's defaults are noexec, nosuid, nodev.
fn tmpfs_mount(dest: &str, opts: &str, extra: &[String]) -> Result<MountPoint> {
    let destination = clean_destination(dest)?;
    let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into()];
    let user: Vec<&str> = opts.split(',').filter(|o| !o.is_empty()).collect();
    if !user.contains(&"exec") {
        options.push("noexec".into());
    }
    let mut rw = true;
    for o in user {
        match o {
            "ro" => rw = false,
            "rw" | "exec" | "noexec" | "nosuid" | "nodev" | "suid" | "dev" => {
                if o != "exec" && !options.iter().any(|x| x == o) {
                    options.push(o.into());
                }
            }
            _ if o.starts_with("size=")
                || o.starts_with("mode=")
                || o.starts_with("uid=")
                || o.starts_with("gid=")
                || o.starts_with("nr_inodes=") =>
            {
                options.push(o.into())
            }
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid tmpfs option {o:?}"
                )))
            }
        }
    }
    options.extend(extra.iter().cloned());
    Ok(MountPoint {
        kind: "tmpfs".into(),
        destination,
        rw,
        tmpfs_options: options,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_cleaned() {
        assert_eq!(clean_destination("/a//b/./c/").unwrap(), "/a/b/c");
        assert_eq!(clean_destination("/a/../b").unwrap(), "/b");
        assert!(clean_destination("rel").is_err());
        assert!(clean_destination("/").is_err());
        assert!(clean_destination("/..").is_err());
    }

    #[test]
    fn volume_names() {
        assert!(valid_volume_name("data_1.x-y"));
        assert!(!valid_volume_name("a"));
        assert!(!valid_volume_name("-x"));
        assert!(!valid_volume_name("a/b"));
    }

    #[test]
    fn tmpfs_options() {
        let m = tmpfs_mount("/run", "size=1m,exec,mode=700", &[]).unwrap();
        assert!(!m.tmpfs_options.contains(&"noexec".to_string()));
        assert!(m.tmpfs_options.contains(&"size=1m".to_string()));
        assert!(tmpfs_mount("/run", "bogus", &[]).is_err());
        assert!(!tmpfs_mount("/run", "ro", &[]).unwrap().rw);
    }
}
