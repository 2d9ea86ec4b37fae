//! Docker's container shapes (`berth-api-types`) to the engine's types and
//! back: the one place where the Docker API's wire meets the engine's records.
//! Settings are checked by the engine; what is checked here is only what a
//! type cannot hold (a restart policy name berth does not know).

use std::collections::BTreeMap;

use berth_api_types as docker;
use berth_engine::{
    self as engine, EndpointIpam, EndpointSettings, HostSettings, LogSettings, NetworkMode,
    ResourceUpdate, Resources, RestartPolicy,
};

/// A create request's `Config`. An absent `Entrypoint` or `Cmd` (None) is
/// kept apart from an empty one: the engine merges them as dockerd does.
pub fn container_config(c: docker::ContainerConfig) -> engine::ContainerConfig {
    engine::ContainerConfig {
        hostname: c.hostname,
        domainname: c.domainname,
        user: c.user,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: c.exposed_ports.map(|ports| ports.into_keys().collect()),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: c.env,
        cmd: c.cmd,
        healthcheck: c.healthcheck.map(|h| engine::Healthcheck {
            test: h.test,
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        image: c.image,
        volumes: c.volumes.map(|paths| paths.into_keys().collect()),
        working_dir: c.working_dir,
        entrypoint: c.entrypoint,
        network_disabled: c.network_disabled,
        labels: c.labels,
        stop_signal: c.stop_signal,
        stop_timeout: c.stop_timeout,
        on_build: Vec::new(),
        shell: c.shell,
    }
}

/// A create request's `HostConfig`.
pub fn host_settings(h: docker::HostConfig) -> Result<HostSettings, engine::EngineError> {
    Ok(HostSettings {
        binds: h.binds,
        network_mode: NetworkMode::from(h.network_mode),
        restart_policy: RestartPolicy::parse(
            &h.restart_policy.name,
            h.restart_policy.maximum_retry_count,
        )?,
        auto_remove: h.auto_remove,
        log: LogSettings {
            driver: h.log_config.kind,
            options: h.log_config.config,
        },
        cap_add: h.cap_add,
        cap_drop: h.cap_drop,
        privileged: h.privileged,
        readonly_rootfs: h.readonly_rootfs,
        security_opt: h.security_opt,
        resources: Resources {
            memory: h.memory,
            memory_swap: h.memory_swap,
            memory_reservation: h.memory_reservation,
            cpuset_cpus: h.cpuset_cpus,
            cpuset_mems: h.cpuset_mems,
            nano_cpus: h.nano_cpus,
            cpu_shares: h.cpu_shares,
            cpu_period: h.cpu_period,
            cpu_quota: h.cpu_quota,
            pids_limit: h.pids_limit,
            oom_kill_disable: h.oom_kill_disable,
        },
        extra_hosts: h.extra_hosts,
        dns: h.dns,
        init: h.init,
        cgroup_parent: h.cgroup_parent,
        runtime: h.runtime,
        mounts: h.mounts.into_iter().map(mount_request).collect(),
        tmpfs: h.tmpfs,
        volumes_from: h.volumes_from,
        port_bindings: port_bindings(h.port_bindings)?,
        publish_all_ports: h.publish_all_ports,
        dns_search: h.dns_search,
        dns_options: h.dns_options,
        ulimits: h
            .ulimits
            .into_iter()
            .map(|u| engine::Ulimit {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        sysctls: h.sysctls,
        shm_size: h.shm_size,
        group_add: h.group_add,
        devices: h.devices.iter().map(device_text).collect(),
        device_cgroup_rules: h.device_cgroup_rules,
    })
}

/// A `Devices` entry as text, only so that the engine can name it when it
/// refuses it (berth does not pass devices through yet).
fn device_text(d: &serde_json::Value) -> String {
    match d.get("PathOnHost").and_then(|p| p.as_str()) {
        Some(path) => path.to_string(),
        None => d.to_string(),
    }
}

/// A container's `HostConfig` as inspect shows it. `NetworkMode` is shown as
/// docker shows it, which depends on the container's networks; the caller
/// sets it.
pub fn host_config(h: &HostSettings) -> docker::HostConfig {
    let r = &h.resources;
    docker::HostConfig {
        binds: h.binds.clone(),
        network_mode: h.network_mode.to_string(),
        restart_policy: docker::RestartPolicy {
            name: h.restart_policy.name().into(),
            maximum_retry_count: h.restart_policy.max_retries(),
        },
        auto_remove: h.auto_remove,
        log_config: docker::LogConfig {
            kind: match h.log.driver.as_str() {
                "" => "json-file".into(),
                d => d.into(),
            },
            config: h.log.options.clone(),
        },
        cap_add: h.cap_add.clone(),
        cap_drop: h.cap_drop.clone(),
        privileged: h.privileged,
        readonly_rootfs: h.readonly_rootfs,
        security_opt: h.security_opt.clone(),
        memory: r.memory,
        memory_swap: r.memory_swap,
        memory_reservation: r.memory_reservation,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        nano_cpus: r.nano_cpus,
        cpu_shares: r.cpu_shares,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        pids_limit: r.pids_limit,
        oom_kill_disable: r.oom_kill_disable,
        extra_hosts: h.extra_hosts.clone(),
        dns: h.dns.clone(),
        init: h.init,
        cgroup_parent: h.cgroup_parent.clone(),
        runtime: h.runtime.clone(),
        mounts: h.mounts.iter().cloned().map(mount).collect(),
        tmpfs: h.tmpfs.clone(),
        volumes_from: h.volumes_from.clone(),
        port_bindings: h
            .port_bindings
            .iter()
            .map(|(port, bindings)| {
                (
                    port.to_string(),
                    bindings.iter().map(port_binding).collect(),
                )
            })
            .collect(),
        publish_all_ports: h.publish_all_ports,
        dns_search: h.dns_search.clone(),
        dns_options: h.dns_options.clone(),
        ulimits: h
            .ulimits
            .iter()
            .map(|u| docker::Ulimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        sysctls: h.sysctls.clone(),
        shm_size: h.shm_size,
        group_add: h.group_add.clone(),
        devices: Vec::new(),
        device_cgroup_rules: h.device_cgroup_rules.clone(),
    }
}

/// `PortBindings` parsed with dockerd's rules and messages (a 400 when wrong).
fn port_bindings(
    bindings: BTreeMap<String, Vec<docker::PortBinding>>,
) -> Result<engine::PortMap, engine::EngineError> {
    let mut out = engine::PortMap::new();
    for (port, list) in bindings {
        let port: engine::ContainerPort = port.parse()?;
        let entry = out.entry(port).or_default();
        for b in list {
            entry.push(engine::HostBinding::parse(&b.host_ip, &b.host_port)?);
        }
    }
    Ok(out)
}

/// A host binding in docker's strings.
pub fn port_binding(b: &engine::HostBinding) -> docker::PortBinding {
    docker::PortBinding {
        host_ip: b.host_ip_text(),
        host_port: b.host_port.to_string(),
    }
}

fn mount_request(m: docker::Mount) -> engine::MountRequest {
    engine::MountRequest {
        kind: m.kind,
        source: m.source,
        target: m.target,
        read_only: m.read_only,
        bind_options: m.bind_options.map(|b| engine::BindOptions {
            propagation: b.propagation,
            create_mountpoint: b.create_mountpoint,
        }),
        volume_options: m.volume_options.map(|v| engine::VolumeOptions {
            no_copy: v.no_copy,
            labels: v.labels,
            driver_config: v.driver_config.map(|d| engine::DriverConfig {
                name: d.name,
                options: d.options,
            }),
        }),
        tmpfs_options: m.tmpfs_options.map(|t| engine::TmpfsOptions {
            size_bytes: t.size_bytes,
            mode: t.mode,
        }),
    }
}

fn mount(m: engine::MountRequest) -> docker::Mount {
    docker::Mount {
        kind: m.kind,
        source: m.source,
        target: m.target,
        read_only: m.read_only,
        bind_options: m.bind_options.map(|b| docker::BindOptions {
            propagation: b.propagation,
            create_mountpoint: b.create_mountpoint,
        }),
        volume_options: m.volume_options.map(|v| docker::VolumeOptions {
            no_copy: v.no_copy,
            labels: v.labels,
            driver_config: v.driver_config.map(|d| docker::DriverConfig {
                name: d.name,
                options: d.options,
            }),
        }),
        tmpfs_options: m.tmpfs_options.map(|t| docker::TmpfsOptions {
            size_bytes: t.size_bytes,
            mode: t.mode,
        }),
    }
}

/// `NetworkingConfig.EndpointsConfig`: what the container asks of each network.
pub fn endpoints(networking: docker::NetworkingConfig) -> BTreeMap<String, EndpointSettings> {
    networking
        .endpoints_config
        .into_iter()
        .map(|(network, e)| {
            let settings = EndpointSettings {
                ipam_config: e.ipam_config.map(|i| EndpointIpam {
                    ipv4_address: i.ipv4_address,
                }),
                aliases: e.aliases,
                mac_address: e.mac_address,
                ..Default::default()
            };
            (network, settings)
        })
        .collect()
}

/// `POST /containers/{id}/update`'s body.
pub fn resource_update(
    u: docker::ContainerUpdateRequest,
) -> Result<ResourceUpdate, engine::EngineError> {
    Ok(ResourceUpdate {
        memory: u.memory,
        memory_swap: u.memory_swap,
        nano_cpus: u.nano_cpus,
        cpu_shares: u.cpu_shares,
        cpu_quota: u.cpu_quota,
        cpu_period: u.cpu_period,
        pids_limit: u.pids_limit,
        restart_policy: u
            .restart_policy
            .map(|p| RestartPolicy::parse(&p.name, p.maximum_retry_count))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting survives docker → engine → docker.
    #[test]
    fn host_config_round_trips() {
        let body = r#"{"Binds":["/a:/b:ro"],"NetworkMode":"container:db",
          "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"AutoRemove":false,
          "LogConfig":{"Type":"local","Config":{"max-size":"1m"}},"CapAdd":["NET_ADMIN"],
          "CapDrop":["CHOWN"],"Privileged":true,"ReadonlyRootfs":true,
          "SecurityOpt":["no-new-privileges"],"Memory":10485760,"MemorySwap":20971520,
          "MemoryReservation":5242880,"CpusetCpus":"0","CpusetMems":"0","NanoCpus":0,
          "CpuShares":512,"CpuPeriod":100000,"CpuQuota":50000,"PidsLimit":64,
          "OomKillDisable":true,"ExtraHosts":["h:1.2.3.4"],"Dns":["9.9.9.9"],"Init":true,
          "CgroupParent":"cg","Runtime":"runc",
          "Mounts":[{"Type":"volume","Source":"v","Target":"/m","ReadOnly":true,
            "VolumeOptions":{"NoCopy":true,"Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"o":"p"}}}},
            {"Type":"bind","Source":"/s","Target":"/t","ReadOnly":false,"BindOptions":{"Propagation":"rshared","CreateMountpoint":true}},
            {"Type":"tmpfs","Source":"","Target":"/tm","ReadOnly":false,"TmpfsOptions":{"SizeBytes":1024,"Mode":448}}],
          "Tmpfs":{"/run":"size=1m"},"VolumesFrom":["other:ro"],
          "PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},
          "PublishAllPorts":true,"DnsSearch":["example"],"DnsOptions":["ndots:1"],
          "Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],"Sysctls":{"net.core.somaxconn":"1"},
          "ShmSize":67108864,"GroupAdd":["audio"],"Devices":[],"DeviceCgroupRules":[]}"#;
        let docker: docker::HostConfig = serde_json::from_str(body).unwrap();
        let engine = host_settings(docker.clone()).unwrap();
        assert_eq!(engine.network_mode, NetworkMode::Container("db".into()));
        assert_eq!(
            engine.restart_policy,
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(host_config(&engine), docker);
    }

    #[test]
    fn an_unknown_restart_policy_is_a_bad_request() {
        let h = docker::HostConfig {
            restart_policy: docker::RestartPolicy {
                name: "sometimes".into(),
                maximum_retry_count: 0,
            },
            ..Default::default()
        };
        let e = host_settings(h).unwrap_err();
        assert_eq!(e.kind(), engine::ErrorKind::InvalidArgument);
        let u = docker::ContainerUpdateRequest {
            restart_policy: Some(docker::RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 2,
            }),
            ..Default::default()
        };
        assert!(resource_update(u).is_err());
    }

    #[test]
    fn devices_are_named_so_that_they_can_be_refused() {
        let h = docker::HostConfig {
            devices: vec![
                serde_json::json!({"PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm"}),
            ],
            ..Default::default()
        };
        assert_eq!(host_settings(h).unwrap().devices, vec!["/dev/kvm"]);
    }
}
