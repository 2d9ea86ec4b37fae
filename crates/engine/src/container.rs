//! Containers as records: create, find, list, remove.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{
    ContainerConfig, ContainerRecord, ContainerState, HostSettings, NetworkMode, RestartPolicy,
    Status,
};
use crate::{db, names, now_rfc3339, random_id, remove_dir_if_exists, Engine, EngineError, Result};

/// Docker's `ps --filter` keys berth understands, each with its accepted values.
pub type Filters = HashMap<String, Vec<String>>;

/// docker's `label` filters: every one must match (`key` present, or
/// `key=value` equal), unlike the other filter keys, where any value matches.
/// compose relies on it (project + service + oneoff in one query).
pub fn labels_match<'a>(wanted: &[String], label: impl Fn(&str) -> Option<&'a str>) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => label(k) == Some(v),
        None => label(w).is_some(),
    })
}

impl Engine {
    pub fn create_container(
        &self,
        name: Option<&str>,
        config: ContainerConfig,
        host_config: HostSettings,
    ) -> Result<ContainerRecord> {
        self.create_container_on(name, config, host_config, &Default::default())
    }

    /// `create` with docker's `NetworkingConfig.EndpointsConfig` (aliases, `--ip`,
    /// `--mac-address` per network).
    #[tracing::instrument(level = "info", skip_all, fields(name = name.unwrap_or_default(), image = %config.image))]
    pub fn create_container_on(
        &self,
        name: Option<&str>,
        mut config: ContainerConfig,
        mut host_config: HostSettings,
        endpoints: &std::collections::BTreeMap<String, crate::model::EndpointSettings>,
    ) -> Result<ContainerRecord> {
        if config.image.is_empty() {
            return Err(EngineError::InvalidArgument(
                "Config.Image is required".into(),
            ));
        }
        // Settings before the image, as dockerd orders its checks.
        crate::validate::resources(&host_config.resources)?;
        crate::validate::environment(&config.env)?;
        crate::validate::port_bindings(&host_config.port_bindings)?;
        crate::validate::devices(&host_config)?;
        let image = self.image(&config.image)?;
        if host_config.auto_remove && host_config.restart_policy != RestartPolicy::No {
            return Err(EngineError::InvalidArgument(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        check_limits(&mut host_config)?;
        // The daemon's log defaults, recorded with the container as dockerd
        // records them (inspect shows what the container logs with).
        let daemon_driver = match self.config().default_log_driver.as_str() {
            "" => "json-file",
            d => d,
        };
        crate::log_driver::merge_defaults(
            &mut host_config.log.driver,
            &mut host_config.log.options,
            daemon_driver,
            &self.config().default_log_opts,
        );
        crate::log_driver::validate(&host_config.log.driver, &host_config.log.options)
            .map_err(EngineError::InvalidArgument)?;
        let mode = &host_config.network_mode;
        if let NetworkMode::Container(other) = mode {
            self.container(other)?;
        }
        let networks = self.initial_endpoints(mode, endpoints)?;
        let mac_address = endpoints
            .values()
            .find_map(|e| (!e.mac_address.is_empty()).then(|| e.mac_address.clone()))
            .unwrap_or_default();
        if !host_config.port_bindings.is_empty()
            && networks.is_empty()
            && *mode != NetworkMode::Host
        {
            tracing::debug!("port bindings ignored: the container has no bridge network");
        }
        for opt in &host_config.security_opt {
            let known = opt == "no-new-privileges"
                || opt == "no-new-privileges:true"
                || opt == "no-new-privileges=true"
                || opt == "no-new-privileges:false"
                || opt == "seccomp=unconfined"
                || opt == "seccomp:unconfined";
            if !known {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid --security-opt: {opt:?}"
                )));
            }
        }
        self.runtime_binary(&host_config.runtime)?;
        for cap in host_config.cap_add.iter().chain(&host_config.cap_drop) {
            berth_runtime::caps::normalize(cap)
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        }

        // The image supplies what the request leaves out.
        let image_config = &image.config.config;
        // dockerd's merge: without an entrypoint of its own (absent or empty)
        // a container takes the image's command unless it names one, and the
        // image's entrypoint only if it said nothing of one.
        if config.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
            if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                config.cmd = image_config.cmd.clone();
            }
            if config.entrypoint.is_none() {
                config.entrypoint = image_config.entrypoint.clone();
            }
        }
        // `[""]` is how the docker CLI sends `--entrypoint ""`: no entrypoint.
        if config.entrypoint.as_deref() == Some(&[String::new()]) {
            config.entrypoint = None;
        }
        let mut env = image_config.env.clone();
        for e in &config.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        config.env = env;
        if config.working_dir.is_empty() {
            config.working_dir = image_config.working_dir.clone();
        }
        if config.user.is_empty() {
            config.user = image_config.user.clone();
        }
        for (k, v) in &image_config.labels {
            config.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if config.stop_signal.is_none() {
            config.stop_signal = image_config.stop_signal.clone();
        }
        crate::health::merge(&mut config.healthcheck, image_config.healthcheck.as_ref());
        crate::health::validate(config.healthcheck.as_ref())?;
        let no_argv = |v: &Option<Vec<String>>| v.as_ref().is_none_or(|v| v.is_empty());
        if no_argv(&config.entrypoint) && no_argv(&config.cmd) {
            return Err(EngineError::InvalidArgument("No command specified".into()));
        }

        let mounts = self.resolve_mounts(&config, &host_config, &image)?;
        let forget_volumes = |engine: &Engine| engine.remove_anonymous_volumes(&mounts);
        let id = random_id();
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let mut st = self.lock();
        let name = match name.map(|n| n.trim_start_matches('/')) {
            Some(n) if !n.is_empty() => {
                if let Err(e) = names::check_container_name(n) {
                    drop(st);
                    forget_volumes(self);
                    return Err(e);
                }
                if let Some(other) = st.containers.values().find(|c| c.name == n) {
                    let other = other.id.clone();
                    drop(st);
                    forget_volumes(self);
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        other
                    )));
                }
                n.to_string()
            }
            _ => (0..)
                .map(|i| names::generate(&id, i))
                .find(|candidate| !st.containers.values().any(|c| &c.name == candidate))
                .unwrap_or_else(|| id[..12].to_string()),
        };
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image_id: image.id.clone(),
            config,
            host_config,
            state: ContainerState::created(),
            restart_count: 0,
            manually_stopped: false,
            mounts: mounts.clone(),
            networks,
            ports: Default::default(),
            mac_address,
        };
        // Directory before record: a crash in between leaves a directory without a
        // record (removed at the next start), never a record without its directory.
        if let Err(e) = std::fs::create_dir_all(self.container_dir(&id)) {
            drop(st);
            forget_volumes(self);
            return Err(EngineError::at(
                "create container dir",
                &self.container_dir(&id),
                e,
            ));
        }
        self.db.put(db::CONTAINERS, &id, &record)?;
        st.containers.insert(id.clone(), record.clone());
        drop(st);
        self.emit_container("create", &record);
        Ok(record)
    }

    pub(crate) fn emit_container(&self, action: &str, c: &ContainerRecord) {
        let mut attrs = BTreeMap::from([
            ("name".to_string(), c.name.clone()),
            ("image".to_string(), c.config.image.clone()),
        ]);
        for (k, v) in &c.config.labels {
            attrs.insert(k.clone(), v.clone());
        }
        if action == "die" {
            attrs.insert("exitCode".into(), c.state.exit_code.to_string());
        }
        // One container's story in the daemon's log, filtered by its id; the
        // frequent ones (health probes run as execs) at debug level.
        if action.starts_with("exec_") || action.starts_with("health_status") {
            tracing::debug!(container = %c.id, name = %c.name, action, "container event");
        } else if action == "die" {
            tracing::info!(container = %c.id, name = %c.name, action, exit_code = c.state.exit_code, oom_killed = c.state.oom_killed, "container event");
        } else {
            tracing::info!(container = %c.id, name = %c.name, action, "container event");
        }
        self.events.emit("container", action, &c.id, attrs);
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix.
    pub fn container(&self, reference: &str) -> Result<ContainerRecord> {
        let st = self.lock();
        find(&st.containers, reference)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such container: {reference}")))
    }

    pub fn containers(&self, all: bool, filters: &Filters) -> Result<Vec<ContainerRecord>> {
        for key in filters.keys() {
            if ![
                "status", "name", "label", "id", "ancestor", "exited", "health",
            ]
            .contains(&key.as_str())
            {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{key}'"
                )));
            }
        }
        let st = self.lock();
        let mut v: Vec<ContainerRecord> = st
            .containers
            .values()
            .filter(|c| all || c.state.running() || filters.contains_key("status"))
            .filter(|c| matches_filters(c, filters))
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(v)
    }

    /// `rm`: a running container needs `force` (it is killed first).
    /// `remove_volumes` (`rm -v`) also deletes the container's anonymous volumes.
    #[tracing::instrument(level = "info", skip_all, fields(container = %reference, force = force))]
    pub async fn remove_container(
        self: &Arc<Self>,
        reference: &str,
        force: bool,
        remove_volumes: bool,
    ) -> Result<()> {
        let c = self.container(reference)?;
        if c.state.running() || c.state.restarting() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.set_manually_stopped(&c.id)?;
            self.kill_container(&c.id, "KILL").await.ok();
            self.wait_not_running(&c.id, None).await;
        }
        self.forget_container(&c.id, remove_volumes)
    }

    /// Deletes a stopped container's record and files, and with `remove_volumes`
    /// its anonymous volumes.
    pub(crate) fn forget_container(&self, id: &str, remove_volumes: bool) -> Result<()> {
        let record = {
            let st = self.lock();
            let Some(c) = st.containers.get(id) else {
                return Ok(());
            };
            if c.state.running() {
                return Err(EngineError::Conflict(format!("container {id} is running")));
            }
            c.clone()
        };
        // Files first, record last: a crash in between leaves a record whose `rm`
        // can simply be repeated, never files that no record points to.
        let dir = self.container_dir(id);
        // The monitor unmounts on exit; this covers a monitor that was killed, and
        // an export interrupted by a crash.
        berth_snapshot::unmount_all_under(&dir);
        remove_dir_if_exists(&dir)?;
        remove_dir_if_exists(&self.bundle_dir(id))?;
        {
            let mut st = self.lock();
            self.db.delete(db::CONTAINERS, id)?;
            st.containers.remove(id);
        }
        if remove_volumes {
            self.remove_anonymous_volumes(&record.mounts);
        }
        self.fs_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.emit_container("destroy", &record);
        Ok(())
    }

    /// Removes container directories that no record owns (left by a crash of an
    /// older berthd, or by hand).
    pub(crate) fn remove_orphan_dirs(&self) {
        let known: std::collections::HashSet<String> =
            self.lock().containers.keys().cloned().collect();
        for base in [
            self.config.data_root.join("containers"),
            self.config.exec_root.join("containers"),
        ] {
            let Ok(entries) = std::fs::read_dir(&base) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if known.contains(&name) {
                    continue;
                }
                berth_snapshot::unmount_all_under(&e.path());
                tracing::info!(path = %e.path().display(), "removing orphaned container directory");
                if let Err(err) = remove_dir_if_exists(&e.path()) {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove orphan");
                }
            }
        }
    }
}

fn find<'a>(
    containers: &'a HashMap<String, ContainerRecord>,
    reference: &str,
) -> Option<&'a ContainerRecord> {
    if let Some(c) = containers.get(reference) {
        return Some(c);
    }
    let name = reference.trim_start_matches('/');
    if let Some(c) = containers.values().find(|c| c.name == name) {
        return Some(c);
    }
    if reference.is_empty() || !reference.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut matches = containers.values().filter(|c| c.id.starts_with(reference));
    let first = matches.next()?;
    if matches.next().is_some() {
        return None;
    }
    Some(first)
}

fn matches_filters(c: &ContainerRecord, filters: &Filters) -> bool {
    filters.iter().all(|(key, values)| {
        if key == "label" {
            return labels_match(values, |k| c.config.labels.get(k).map(String::as_str));
        }
        values.iter().any(|v| match key.as_str() {
            "status" => c.state.status.as_str() == v,
            "name" => c.name.contains(v.trim_start_matches('/')),
            "id" => c.id.starts_with(v.as_str()),
            "health" => {
                let status = c
                    .state
                    .health
                    .as_ref()
                    .map_or("none", |h| h.status.as_str());
                c.state.running() && status == v
            }
            "ancestor" => &c.config.image == v || c.image_id.contains(v.as_str()),
            "exited" => c.state.status == Status::Exited && c.state.exit_code.to_string() == *v,
            _ => false,
        })
    })
}

/// docker's 64 MiB /dev/shm, recorded in HostConfig.ShmSize when none is asked.
const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// `--ulimit`, `--sysctl`, `--shm-size` and `--group-add`, checked at create so
/// that a bad value is a 400 now rather than a failed start later.
fn check_limits(host_config: &mut HostSettings) -> Result<()> {
    for u in &host_config.ulimits {
        berth_runtime::limits::rlimit(&u.name, u.soft, u.hard)
            .map_err(EngineError::InvalidArgument)?;
    }
    let host_network = host_config.network_mode == NetworkMode::Host;
    for key in host_config.sysctls.keys() {
        berth_runtime::limits::check_sysctl(key, host_network)
            .map_err(EngineError::InvalidArgument)?;
    }
    if host_config.shm_size < 0 {
        return Err(EngineError::InvalidArgument(
            "SHM size can not be less than 0".into(),
        ));
    }
    if host_config.shm_size == 0 {
        host_config.shm_size = DEFAULT_SHM_SIZE;
    }
    if let Some(g) = host_config
        .group_add
        .iter()
        .find(|g| g.is_empty() || g.contains(':'))
    {
        return Err(EngineError::InvalidArgument(format!(
            "invalid group {g:?} in --group-add"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Health;

    fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: name.into(),
            created: String::new(),
            image_id: "sha256:0123abcd".into(),
            config: ContainerConfig {
                image: "busybox:latest".into(),
                ..Default::default()
            },
            host_config: HostSettings::default(),
            state: ContainerState::created(),
            restart_count: 0,
            manually_stopped: false,
            mounts: Vec::new(),
            networks: BTreeMap::new(),
            ports: BTreeMap::new(),
            mac_address: String::new(),
        }
    }

    fn filters(pairs: &[(&str, &[&str])]) -> Filters {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    #[test]
    fn every_label_filter_must_match() {
        let labels: BTreeMap<&str, &str> = [("project", "shop"), ("oneoff", "False")].into();
        let get = |k: &str| labels.get(k).copied();
        assert!(labels_match(&["project=shop".into(), "oneoff".into()], get));
        assert!(!labels_match(
            &["project=shop".into(), "oneoff=True".into()],
            get
        ));
        assert!(!labels_match(&["service".into()], get));
        assert!(labels_match(&[], get), "no label filter keeps everything");
    }

    #[test]
    fn filter_keys_as_docker_reads_them() {
        let mut c = record("abcdef0123", "web-1");
        c.config.labels.insert("tier".into(), "front".into());
        c.state.exited(3, false, crate::model::ZERO_TIME.into());
        let keep = |pairs: &[(&str, &[&str])]| matches_filters(&c, &filters(pairs));
        assert!(keep(&[]));
        assert!(
            keep(&[("status", &["running", "exited"])]),
            "any value of one key"
        );
        assert!(!keep(&[("status", &["running"])]));
        assert!(keep(&[("name", &["/web"])]), "names match by substring");
        assert!(
            keep(&[("id", &["abc"])]) && !keep(&[("id", &["bcd"])]),
            "ids by prefix"
        );
        assert!(keep(&[("exited", &["3"])]) && !keep(&[("exited", &["0"])]));
        assert!(keep(&[("ancestor", &["busybox:latest"])]) && keep(&[("ancestor", &["0123"])]));
        assert!(keep(&[("label", &["tier=front"]), ("status", &["exited"])]));
        assert!(!keep(&[("label", &["tier=front", "other"])]));
        assert!(
            !keep(&[("bogus", &["x"])]),
            "an unknown key matches nothing"
        );
    }

    #[test]
    fn the_health_filter_sees_only_running_containers() {
        let mut c = record("abc", "db");
        let health =
            |f: &[&str], c: &ContainerRecord| matches_filters(c, &filters(&[("health", f)]));
        assert!(!health(&["none"], &c), "not running");
        c.state.started(1, crate::model::ZERO_TIME.into());
        assert!(health(&["none"], &c), "no health check");
        c.state.health = Some(Health {
            status: "healthy".into(),
            ..Default::default()
        });
        assert!(health(&["healthy"], &c) && !health(&["unhealthy"], &c));
    }

    #[test]
    fn references_are_ids_names_or_unique_prefixes() {
        let containers: HashMap<String, ContainerRecord> = [
            record("abc111", "first"),
            record("abc222", "second"),
            record("def333", "abc"),
        ]
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
        let id_of = |r: &str| find(&containers, r).map(|c| c.id.clone());
        assert_eq!(id_of("abc111").as_deref(), Some("abc111"));
        assert_eq!(
            id_of("/second").as_deref(),
            Some("abc222"),
            "docker's leading slash"
        );
        assert_eq!(
            id_of("abc").as_deref(),
            Some("def333"),
            "a name before a prefix"
        );
        assert_eq!(id_of("abc1").as_deref(), Some("abc111"));
        assert_eq!(id_of("ab"), None, "an ambiguous prefix");
        assert_eq!(id_of(""), None);
        assert_eq!(id_of("xyz"), None, "not hex, not a name");
    }

    #[test]
    fn limits_are_checked_and_shm_defaults_to_64m() {
        let mut h = HostSettings::default();
        assert!(check_limits(&mut h).is_ok());
        assert_eq!(h.shm_size, 64 << 20);
        let mut negative = HostSettings {
            shm_size: -1,
            ..Default::default()
        };
        assert!(check_limits(&mut negative).is_err());
        for bad in ["", "a:b"] {
            let mut groups = HostSettings {
                group_add: vec![bad.into()],
                ..Default::default()
            };
            assert!(check_limits(&mut groups).is_err(), "{bad:?}");
        }
    }
}
