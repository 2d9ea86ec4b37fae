//! The OCI bundle of a container's start: `/etc/hostname|hosts|resolv.conf`,
//! the runtime spec (`config.json`) from the record, and what the monitor logs.

use crate::model::ContainerRecord;
use crate::user::{resolve_groups, resolve_user};
use crate::{Engine, EngineError, Result};
use berth_monitor::{LogConfig, Snapshot};
use berth_runtime::{MountSpec, NetworkMode, SpecOptions};
use std::path::Path;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Engine {
    /// Writes config.json and the per-container /etc files; returns the log config.
    pub(crate) fn write_bundle(
        &self,
        c: &ContainerRecord,
        snapshot: &Snapshot,
        network: &NetworkMode,
    ) -> Result<(Option<LogConfig>, Vec<berth_monitor::CopyUp>)> {
        let dir = self.container_dir(&c.id);
        let io = |p: &Path, e: std::io::Error| EngineError::at("write", p, e);
        let hostname_path = dir.join("hostname");
        std::fs::write(&hostname_path, format!("{}\n", c.config.hostname))
            .map_err(|e| io(&hostname_path, e))?;
        let hosts_path = dir.join("hosts");
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for ep in c.networks.values().filter(|e| !e.ip_address.is_empty()) {
            hosts.push_str(&format!("{}\t{}\n", ep.ip_address, c.config.hostname));
        }
        for h in &c.host_config.extra_hosts {
            if let Some((name, ip)) = h.split_once(':') {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        std::fs::write(&hosts_path, hosts).map_err(|e| io(&hosts_path, e))?;
        let resolv_path = dir.join("resolv.conf");
        let resolv = self.resolv_conf(c);
        std::fs::write(&resolv_path, resolv).map_err(|e| io(&resolv_path, e))?;

        let (uid, gid, mut additional_gids) = resolve_user(&c.config.user, snapshot)?;
        additional_gids.extend(resolve_groups(&c.host_config.group_add, snapshot)?);
        // The daemon's defaults for the names the container leaves unset,
        // merged at start as dockerd merges them.
        let defaults = self
            .config
            .default_ulimits
            .iter()
            .filter(|d| !c.host_config.ulimits.iter().any(|u| u.name == d.name));
        let rlimits = c
            .host_config
            .ulimits
            .iter()
            .chain(defaults)
            .map(|u| berth_runtime::limits::rlimit(&u.name, u.soft, u.hard))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(EngineError::InvalidArgument)?;
        let mut env = c.config.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
        env.insert(1.min(env.len()), format!("HOSTNAME={}", c.config.hostname));
        if c.config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let bind = |dest: &str, src: &Path| MountSpec {
            destination: dest.into(),
            source: src.display().to_string(),
            kind: "bind".into(),
            options: vec!["rbind".into(), "rprivate".into()],
        };
        let (user_mounts, copy_up) = self.mount_specs(&c.mounts)?;
        let mut mounts = vec![
            bind("/etc/hostname", &hostname_path),
            bind("/etc/hosts", &hosts_path),
            bind("/etc/resolv.conf", &resolv_path),
        ];
        mounts.retain(|m| !user_mounts.iter().any(|u| u.destination == m.destination));
        mounts.extend(user_mounts);
        let opts = SpecOptions {
            rootfs: snapshot.target.clone(),
            args: c.argv(),
            env,
            cwd: if c.config.working_dir.is_empty() {
                "/".into()
            } else {
                c.config.working_dir.clone()
            },
            uid,
            gid,
            additional_gids,
            terminal: c.config.tty,
            hostname: c.config.hostname.clone(),
            readonly_rootfs: c.host_config.readonly_rootfs,
            privileged: c.host_config.privileged,
            cap_add: c.host_config.cap_add.clone(),
            cap_drop: c.host_config.cap_drop.clone(),
            no_new_privileges: c.host_config.security_opt.iter().any(|o| {
                o == "no-new-privileges"
                    || o.ends_with("no-new-privileges:true")
                    || o.ends_with("no-new-privileges=true")
            }),
            seccomp_unconfined: c
                .host_config
                .security_opt
                .iter()
                .any(|o| o.contains("unconfined")),
            network: network.clone(),
            memory: c.host_config.resources.memory,
            memory_reservation: c.host_config.resources.memory_reservation,
            cpuset_cpus: c.host_config.resources.cpuset_cpus.clone(),
            cpuset_mems: c.host_config.resources.cpuset_mems.clone(),
            nano_cpus: c.host_config.resources.nano_cpus,
            cpu_shares: c.host_config.resources.cpu_shares.max(0) as u64,
            cpu_quota: c.host_config.resources.cpu_quota,
            cpu_period: c.host_config.resources.cpu_period.max(0) as u64,
            pids_limit: c.host_config.resources.pids_limit,
            cgroups_path: self.cgroups_path(c),
            mounts,
            rlimits,
            sysctls: c.host_config.sysctls.clone(),
            shm_size: c.host_config.shm_size.max(0) as u64,
        };
        let spec = berth_runtime::build_spec(&opts)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let config_path = self.bundle_dir(&c.id).join("config.json");
        let bytes =
            serde_json::to_vec(&spec).map_err(|e| EngineError::json("encode OCI spec", e))?;
        std::fs::write(&config_path, bytes).map_err(|e| io(&config_path, e))?;

        let log = crate::log_driver::monitor_config(
            &c.host_config.log.driver,
            &c.host_config.log.options,
            &dir,
        );
        Ok((log, copy_up))
    }
}
