//! `berth compose`: runs a Compose project (read by `berth-compose`) against
//! berthd through the Docker API, with docker compose v2's names and labels, so
//! that `berth compose` and docker compose see the same projects.
//!
//! `up` is idempotent: a service whose containers carry its current config hash
//! is left alone; a changed one is recreated. Services start as soon as what
//! they depend on satisfies its condition (started, healthy, completed
//! successfully), independent ones in parallel; `down` goes in reverse order.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use berth_api_types::{
    ContainerConfig, ContainerCreateRequest, Empty, EndpointConfig, EndpointIpamRequest, Filters,
    Healthcheck, HostConfig, LogConfig, Mount, NetworkConnectRequest, NetworkingConfig,
    PortBinding, RestartPolicy, TmpfsOptions, Ulimit,
};
use berth_compose::{Condition, FileObject, Project, Service, VolumeKind};
use serde_json::Value;

use crate::client::{encode_query, Client, RequestBody};
use crate::{fail, CmdResult, Failure};

mod copy;
mod events;
mod images;
mod wait;

pub use copy::cp;
pub use events::events;
pub use images::{pull, push, PullOptions, RemoveImages};
pub use wait::wait;

const PROJECT_LABEL: &str = "com.docker.compose.project";
const SERVICE_LABEL: &str = "com.docker.compose.service";
const NUMBER_LABEL: &str = "com.docker.compose.container-number";
const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
const HASH_LABEL: &str = "com.docker.compose.config-hash";
const NETWORK_LABEL: &str = "com.docker.compose.network";
const VOLUME_LABEL: &str = "com.docker.compose.volume";

/// Options every compose command shares.
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
}

pub fn load(opts: &ProjectOptions) -> Result<Project, Failure> {
    let load = berth_compose::LoadOptions {
        files: opts.files.clone(),
        working_dir: opts.project_directory.clone(),
        project_name: opts.project_name.clone(),
        env_files: opts.env_files.clone(),
        profiles: opts.profiles.clone(),
        environment: std::env::vars().collect(),
    };
    berth_compose::load(&load).map_err(|e| fail(e.to_string()))
}

fn progress(kind: &str, name: &str, state: &str) {
    eprintln!(" \u{2714} {kind} {name}  {state}");
}

/// The project's containers (`all`: stopped ones too), one-off containers left out.
fn project_containers(client: &Client, project: &str, all: bool) -> Result<Vec<Value>, Failure> {
    list_containers(client, project, all, false)
}

/// The project's containers, with `run`'s one-off containers when `oneoffs`.
fn list_containers(
    client: &Client,
    project: &str,
    all: bool,
    oneoffs: bool,
) -> Result<Vec<Value>, Failure> {
    let mut filters = Filters::new().with("label", format!("{PROJECT_LABEL}={project}"));
    if !oneoffs {
        filters.add("label", format!("{ONEOFF_LABEL}=False"));
    }
    let q = encode_query(&[
        ("all", if all { "1" } else { "0" }.to_string()),
        ("filters", filters.to_query()),
    ]);
    let v = client.get_json(&format!("/containers/json{q}"))?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn label<'a>(c: &'a Value, key: &str) -> &'a str {
    c["Labels"][key].as_str().unwrap_or_default()
}

fn container_name(c: &Value) -> String {
    c["Names"][0]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string()
}

/// Creates what the services need: networks and volumes (external ones must exist).
fn ensure_networks_and_volumes(client: &Client, project: &Project) -> Result<(), Failure> {
    for (key, n) in &project.networks {
        let exists = client.request("GET", &format!("/networks/{}", n.name), RequestBody::None)?;
        if exists.status == 200 {
            continue;
        }
        if n.external {
            return Err(fail(format!(
                "network {} declared as external, but could not be found",
                n.name
            )));
        }
        let mut labels: std::collections::BTreeMap<String, String> = n
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(PROJECT_LABEL.into(), project.name.clone());
        labels.insert(NETWORK_LABEL.into(), key.clone());
        let body = berth_api_types::NetworkCreateRequest {
            name: n.name.clone(),
            driver: n.driver.clone().unwrap_or_else(|| "bridge".into()),
            internal: n.internal,
            labels,
            ipam: berth_api_types::Ipam {
                driver: "default".into(),
                config: n
                    .subnets
                    .iter()
                    .map(|(subnet, gateway)| berth_api_types::IpamPool {
                        subnet: subnet.clone(),
                        gateway: gateway.clone().unwrap_or_default(),
                    })
                    .collect(),
            },
            ..Default::default()
        };
        client.post_json("/networks/create", &body)?;
        progress("Network", &n.name, "Created");
    }
    for (key, v) in &project.volumes {
        let exists = client.request("GET", &format!("/volumes/{}", v.name), RequestBody::None)?;
        if exists.status == 200 {
            continue;
        }
        if v.external {
            return Err(fail(format!("external volume \"{}\" not found", v.name)));
        }
        let mut labels: std::collections::BTreeMap<String, String> = v
            .labels
            .iter()
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect();
        labels.insert(PROJECT_LABEL.into(), project.name.clone());
        labels.insert(VOLUME_LABEL.into(), key.clone());
        let body = berth_api_types::VolumeCreateRequest {
            name: v.name.clone(),
            driver: v.driver.clone().unwrap_or_else(|| "local".into()),
            driver_opts: v
                .driver_opts
                .iter()
                .map(|(k, val)| (k.clone(), val.clone()))
                .collect(),
            labels,
        };
        client.post_json("/volumes/create", &body)?;
        progress("Volume", &v.name, "Created");
    }
    Ok(())
}

/// The create body of container `number` of `service`.
fn create_body(
    project: &Project,
    name: &str,
    service: &Service,
    number: u32,
    network_mode: Option<String>,
) -> Result<ContainerCreateRequest, Failure> {
    let s = service;
    let image = image_of(project, name, s);
    let env: Vec<String> = s
        .environment
        .iter()
        .filter_map(|(k, v)| match v {
            Some(v) => Some(format!("{k}={v}")),
            None => std::env::var(k).ok().map(|v| format!("{k}={v}")),
        })
        .collect();
    let mut labels = s.labels.clone();
    labels.insert(PROJECT_LABEL.into(), project.name.clone());
    labels.insert(SERVICE_LABEL.into(), name.into());
    labels.insert(NUMBER_LABEL.into(), number.to_string());
    labels.insert(ONEOFF_LABEL.into(), "False".into());
    labels.insert(HASH_LABEL.into(), project.config_hash(name));
    labels.insert(
        "com.docker.compose.project.working_dir".into(),
        project.working_dir.display().to_string(),
    );
    labels.insert(
        "com.docker.compose.project.config_files".into(),
        project
            .config_files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    labels.insert(
        "com.docker.compose.depends_on".into(),
        s.depends_on
            .iter()
            .map(|(dep, d)| {
                format!(
                    "{dep}:{}:{}",
                    match d.condition {
                        Condition::ServiceStarted => "service_started",
                        Condition::ServiceHealthy => "service_healthy",
                        Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
                    },
                    d.restart
                )
            })
            .collect::<Vec<_>>()
            .join(","),
    );
    labels.insert(
        "com.docker.compose.version".into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    let mut exposed = BTreeMap::new();
    for e in &s.expose {
        let keys = crate::run::expose_ports(e).map_err(|m| Failure {
            message: format!("service {name}: {m}"),
            code: 1,
        })?;
        for key in keys {
            exposed.insert(key, Empty);
        }
    }
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for p in &s.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        exposed.insert(key.clone(), Empty);
        bindings.entry(key).or_default().push(PortBinding {
            host_ip: p.host_ip.clone().unwrap_or_default(),
            host_port: p.published.clone().unwrap_or_default(),
        });
    }
    let mut mounts = Vec::new();
    for v in &s.volumes {
        let mut m = Mount {
            target: v.target.clone(),
            read_only: v.read_only,
            ..Default::default()
        };
        match v.kind {
            VolumeKind::Bind => {
                m.kind = "bind".into();
                m.source = v.source.clone().unwrap_or_default();
            }
            VolumeKind::Volume => {
                m.kind = "volume".into();
                if let Some(src) = &v.source {
                    m.source = project
                        .volumes
                        .get(src)
                        .map(|vol| vol.name.clone())
                        .unwrap_or_else(|| src.clone());
                }
            }
            VolumeKind::Tmpfs => {
                m.kind = "tmpfs".into();
                m.tmpfs_options = v.tmpfs_size.map(|size| TmpfsOptions {
                    size_bytes: size,
                    mode: 0,
                });
            }
        }
        mounts.push(m);
    }
    let file_objects = s
        .secrets
        .iter()
        .filter_map(|r| Some((project.secrets.get(&r.source)?, &r.target)))
        .chain(
            s.configs
                .iter()
                .filter_map(|r| Some((project.configs.get(&r.source)?, &r.target))),
        );
    for (object, target) in file_objects {
        if let FileObject::File(path) = object {
            mounts.push(Mount {
                kind: "bind".into(),
                source: path.display().to_string(),
                target: target.clone(),
                read_only: true,
                ..Default::default()
            });
        }
    }
    let tmpfs = s
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), opts.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();
    let restart = s.restart.clone().unwrap_or_else(|| "no".into());
    let (policy, retries) = match restart.split_once(':') {
        Some((p, n)) => (p.to_string(), n.parse::<i64>().unwrap_or(0)),
        None => (restart.clone(), 0),
    };
    let mut host_config = HostConfig {
        mounts,
        tmpfs,
        port_bindings: bindings,
        restart_policy: RestartPolicy {
            name: if policy == "no" {
                String::new()
            } else {
                policy
            },
            maximum_retry_count: retries,
        },
        privileged: s.privileged,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        security_opt: s.security_opt.clone(),
        ulimits: s
            .ulimits
            .iter()
            .map(|(n, u)| Ulimit {
                name: n.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        sysctls: s.sysctls.clone(),
        extra_hosts: s.extra_hosts.clone(),
        dns: s.dns.clone(),
        readonly_rootfs: s.read_only,
        network_mode: network_mode.clone().unwrap_or_else(|| "default".into()),
        shm_size: s.shm_size.unwrap_or(0),
        memory: s.mem_limit.unwrap_or(0),
        nano_cpus: s.cpus.map_or(0, |c| (c * 1e9) as i64),
        init: s.init,
        log_config: s
            .logging
            .as_ref()
            .map(|l| LogConfig {
                kind: l.driver.clone().unwrap_or_default(),
                config: l.options.clone(),
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    // The first network at create (with the service's name as an alias, as
    // compose gives it); the others are connected before the start.
    let mut networking_config = NetworkingConfig::default();
    if network_mode.is_none() {
        if let Some((key, settings)) = s.networks.iter().next() {
            let engine_name = network_name(project, key);
            host_config.network_mode = engine_name.clone();
            networking_config
                .endpoints_config
                .insert(engine_name, endpoint(name, settings));
        }
    }
    let config = ContainerConfig {
        image,
        env,
        labels,
        exposed_ports: Some(exposed),
        tty: s.tty,
        open_stdin: s.stdin_open,
        cmd: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        hostname: s.hostname.clone().unwrap_or_default(),
        user: s.user.clone().unwrap_or_default(),
        working_dir: s.working_dir.clone().unwrap_or_default(),
        stop_signal: s.stop_signal.clone(),
        stop_timeout: s.stop_grace_period,
        healthcheck: s.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        ..Default::default()
    };
    Ok(ContainerCreateRequest {
        config,
        host_config,
        networking_config,
    })
}

/// A container joins its service's first network at create; the others here,
/// before it starts.
fn connect_other_networks(
    client: &Client,
    project: &Project,
    name: &str,
    service: &Service,
    id: &str,
) -> Result<(), Failure> {
    for (key, settings) in service.networks.iter().skip(1) {
        client.post_json(
            &format!("/networks/{}/connect", network_name(project, key)),
            &NetworkConnectRequest {
                container: id.to_string(),
                endpoint_config: Some(endpoint(name, settings)),
                force: false,
            },
        )?;
    }
    Ok(())
}

/// The image a service runs: its `image`, or the one `build` tags for it.
fn image_of(project: &Project, name: &str, service: &Service) -> String {
    service
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}", project.name))
}

fn network_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .map(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

fn endpoint(service: &str, settings: &berth_compose::ServiceNetwork) -> EndpointConfig {
    let mut aliases = vec![service.to_string()];
    aliases.extend(settings.aliases.iter().cloned());
    EndpointConfig {
        aliases,
        ipam_config: settings
            .ipv4_address
            .clone()
            .map(|ip| EndpointIpamRequest { ipv4_address: ip }),
        mac_address: String::new(),
    }
}

/// Where the services stand while `up` runs: each thread waits on this for
/// what its service depends on.
#[derive(Default)]
struct Board {
    /// Per finished service: whether its containers were (re)created, or why
    /// it failed.
    state: Mutex<HashMap<String, Result<bool, String>>>,
    changed: Condvar,
}

impl Board {
    fn finish(&self, service: &str, outcome: Result<bool, String>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.insert(service.to_string(), outcome);
        self.changed.notify_all();
    }

    fn wait_for(&self, service: &str) -> Result<bool, String> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(outcome) = st.get(service) {
                return outcome.clone();
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub detach: bool,
    pub build: bool,
    pub no_build: bool,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    pub wait: bool,
    pub wait_timeout: Option<u64>,
    pub timeout: Option<i64>,
    pub scale: Vec<String>,
    pub services: Vec<String>,
    pub abort_on_container_exit: bool,
    pub exit_code_from: Option<String>,
    /// Only the named services, not what they depend on.
    pub no_deps: bool,
    /// Create the containers without starting them (`compose create`).
    pub no_start: bool,
}

/// Waits until `container` satisfies `condition`.
fn wait_condition(client: &Client, container: &str, condition: Condition) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let c = client
            .get_json(&format!("/containers/{container}/json"))
            .map_err(|e| e.to_string())?;
        let name = c["Name"]
            .as_str()
            .unwrap_or(container)
            .trim_start_matches('/');
        let state = &c["State"];
        match condition {
            Condition::ServiceStarted => return Ok(()),
            Condition::ServiceHealthy => {
                if state["Health"].is_null() {
                    return Err(format!("container {name} has no healthcheck configured"));
                }
                match state["Health"]["Status"].as_str() {
                    Some("healthy") => return Ok(()),
                    Some("unhealthy") => return Err(format!("container {name} is unhealthy")),
                    _ => {}
                }
                if state["Running"] == false {
                    return Err(format!("container {name} exited ({})", state["ExitCode"]));
                }
            }
            Condition::ServiceCompletedSuccessfully => {
                if state["Running"] == false && state["Status"] != "created" {
                    return match state["ExitCode"].as_i64() {
                        Some(0) => Ok(()),
                        code => Err(format!(
                            "service \"{}\" didn't complete successfully: exit {}",
                            label(&c["Config"], SERVICE_LABEL),
                            code.unwrap_or(-1)
                        )),
                    };
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {name}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn replicas_of(project: &Project, service: &str, scale: &[String]) -> u32 {
    scale
        .iter()
        .find_map(|s| {
            let (name, n) = s.split_once('=')?;
            (name == service).then(|| n.parse().ok()).flatten()
        })
        .unwrap_or_else(|| project.services.get(service).map_or(1, |s| s.replicas))
}

/// Brings one service to its desired containers; returns whether any was
/// (re)created.
fn converge_service(
    client: &Client,
    project: &Project,
    name: &str,
    existing: &[Value],
    opts: &UpOptions,
    recreate: bool,
) -> Result<bool, String> {
    let service = project
        .services
        .get(name)
        .ok_or_else(|| format!("no such service: {name}"))?;
    let hash = project.config_hash(name);
    let want = replicas_of(project, name, &opts.scale);
    let network_mode = match service.network_mode.as_deref() {
        None => None,
        Some(mode) => match mode.strip_prefix("service:") {
            Some(other) => {
                // Stopped ones count too: `compose create` makes both before
                // either runs.
                let c = project_containers(client, &project.name, true)
                    .map_err(|e| e.message)?
                    .into_iter()
                    .find(|c| label(c, SERVICE_LABEL) == other)
                    .ok_or_else(|| format!("service {other} has no container"))?;
                Some(format!(
                    "container:{}",
                    c["Id"].as_str().unwrap_or_default()
                ))
            }
            None => Some(mode.to_string()),
        },
    };
    let mut changed = false;
    let mut mine: Vec<&Value> = existing
        .iter()
        .filter(|c| label(c, SERVICE_LABEL) == name)
        .collect();
    mine.sort_by_key(|c| label(c, NUMBER_LABEL).parse::<u32>().unwrap_or(0));
    // Scale down: the highest numbers go.
    for c in mine
        .iter()
        .filter(|c| label(c, NUMBER_LABEL).parse::<u32>().unwrap_or(0) > want)
    {
        let id = c["Id"].as_str().unwrap_or_default();
        remove_container(client, id, opts.timeout)?;
        progress("Container", &container_name(c), "Removed");
    }
    for number in 1..=want {
        let current = mine
            .iter()
            .find(|c| label(c, NUMBER_LABEL).parse::<u32>().ok() == Some(number));
        let cname = match &service.container_name {
            Some(n) if want == 1 => n.clone(),
            _ => format!("{}-{name}-{number}", project.name),
        };
        if let Some(c) = current {
            let id = c["Id"].as_str().unwrap_or_default().to_string();
            let same = label(c, HASH_LABEL) == hash;
            if (same && !opts.force_recreate && !recreate) || opts.no_recreate {
                if opts.no_start {
                    progress("Container", &cname, "Created");
                } else if c["State"] != "running" {
                    client
                        .call(
                            "POST",
                            &format!("/containers/{id}/start"),
                            RequestBody::None,
                        )
                        .map_err(|e| e.to_string())?;
                    progress("Container", &cname, "Started");
                } else {
                    progress("Container", &cname, "Running");
                }
                continue;
            }
            remove_container(client, &id, opts.timeout)?;
            progress("Container", &cname, "Recreate");
        }
        let body = create_body(project, name, service, number, network_mode.clone())
            .map_err(|e| e.message)?;
        let created = client
            .post_json(
                &format!(
                    "/containers/create{}",
                    encode_query(&[("name", cname.clone())])
                ),
                &body,
            )
            .map_err(|e| format!("service {name}: {e}"))?;
        let id = created["Id"].as_str().unwrap_or_default().to_string();
        progress("Container", &cname, "Created");
        connect_other_networks(client, project, name, service, &id)
            .map_err(|e| format!("service {name}: {}", e.message))?;
        copy_content_files(client, project, service, &id)?;
        changed = true;
        if opts.no_start {
            continue;
        }
        client
            .call(
                "POST",
                &format!("/containers/{id}/start"),
                RequestBody::None,
            )
            .map_err(|e| format!("service {name}: {e}"))?;
        progress("Container", &cname, "Started");
    }
    Ok(changed)
}

/// Secrets and configs whose content comes from the environment: written into
/// the container (as a tar through the archive endpoint) before it starts.
fn copy_content_files(
    client: &Client,
    project: &Project,
    service: &Service,
    id: &str,
) -> Result<(), String> {
    let mounts = service
        .secrets
        .iter()
        .map(|m| (m, project.secrets.get(&m.source)))
        .chain(
            service
                .configs
                .iter()
                .map(|m| (m, project.configs.get(&m.source))),
        );
    for (mount, object) in mounts {
        let Some(FileObject::Content(content)) = object else {
            continue;
        };
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o444);
        header.set_mtime(0);
        let target = mount.target.trim_start_matches('/');
        builder
            .append_data(&mut header, target, content.as_bytes())
            .map_err(|e| e.to_string())?;
        let bytes = builder.into_inner().map_err(|e| e.to_string())?;
        let mut reader: &[u8] = &bytes;
        client
            .call(
                "PUT",
                &format!(
                    "/containers/{id}/archive{}",
                    encode_query(&[("path", "/".to_string())])
                ),
                RequestBody::Stream(&mut reader, "application/x-tar"),
            )
            .map_err(|e| format!("write {} into the container: {e}", mount.target))?;
    }
    Ok(())
}

/// Restarts the containers of `service` (a dependency of it was recreated).
fn restart_service(
    client: &Client,
    project: &Project,
    service: &str,
    timeout: Option<i64>,
) -> Result<(), String> {
    let q = timeout
        .map(|t| encode_query(&[("t", t.to_string())]))
        .unwrap_or_default();
    for (id, name) in
        service_containers(client, project, &[service.to_string()], false).map_err(|e| e.message)?
    {
        client
            .call(
                "POST",
                &format!("/containers/{id}/restart{q}"),
                RequestBody::None,
            )
            .map_err(|e| format!("restart {name}: {e}"))?;
        progress("Container", &name, "Restarted");
    }
    Ok(())
}

/// Stops a container with the stop timeout asked for (the container's own
/// otherwise). An already stopped one is fine.
fn stop_container(client: &Client, id: &str, timeout: Option<i64>) {
    let q = timeout
        .map(|t| encode_query(&[("t", t.to_string())]))
        .unwrap_or_default();
    let _ = client.request(
        "POST",
        &format!("/containers/{id}/stop{q}"),
        RequestBody::None,
    );
}

fn remove_container(client: &Client, id: &str, timeout: Option<i64>) -> Result<(), String> {
    stop_container(client, id, timeout);
    client
        .call(
            "DELETE",
            &format!("/containers/{id}?force=1"),
            RequestBody::None,
        )
        .map(drop)
        .map_err(|e| e.to_string())
}

fn build_if_needed(client: &Client, project: &Project, opts: &UpOptions) -> Result<(), Failure> {
    for (name, s) in &project.services {
        let Some(build) = &s.build else { continue };
        if !opts.services.is_empty() && !opts.services.contains(name) {
            continue;
        }
        let tag = image_of(project, name, s);
        let present = client.request("GET", &format!("/images/{tag}/json"), RequestBody::None)?;
        if opts.no_build || (present.status == 200 && !opts.build) {
            continue;
        }
        let args = crate::build::BuildArgs {
            tags: vec![tag.clone()],
            file: Some(build.context.join(&build.dockerfile).display().to_string()),
            build_args: build
                .args
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect(),
            target: build.target.clone(),
            no_cache: false,
            labels: build
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            network: String::new(),
            quiet: true,
            memory: None,
            context: build.context.display().to_string(),
        };
        crate::build::build(client, &args)?;
        progress("Image", &tag, "Built");
    }
    Ok(())
}

/// `compose up`.
pub fn up(client: &Client, popts: &ProjectOptions, opts: &UpOptions) -> CmdResult {
    let project = load(popts)?;
    let wanted: Vec<String> = if opts.services.is_empty() {
        project.start_order()
    } else if opts.no_deps {
        for s in &opts.services {
            if !project.services.contains_key(s) {
                return Err(fail(format!("no such service: {s}")));
            }
        }
        project
            .start_order()
            .into_iter()
            .filter(|s| opts.services.contains(s))
            .collect()
    } else {
        // The named services and what they depend on.
        let mut keep = std::collections::BTreeSet::new();
        let mut stack = opts.services.clone();
        while let Some(s) = stack.pop() {
            let svc = project
                .services
                .get(&s)
                .ok_or_else(|| fail(format!("no such service: {s}")))?;
            if keep.insert(s.clone()) {
                stack.extend(svc.depends_on.keys().cloned());
            }
        }
        project
            .start_order()
            .into_iter()
            .filter(|s| keep.contains(s))
            .collect()
    };
    build_if_needed(client, &project, opts)?;
    ensure_networks_and_volumes(client, &project)?;
    let existing = project_containers(client, &project.name, true)?;
    if opts.remove_orphans {
        for c in &existing {
            if !project.services.contains_key(label(c, SERVICE_LABEL)) {
                remove_container(client, c["Id"].as_str().unwrap_or_default(), opts.timeout)
                    .map_err(fail)?;
                progress("Container", &container_name(c), "Removed");
            }
        }
    }
    let board = Arc::new(Board::default());
    let project = Arc::new(project);
    let existing = Arc::new(existing);
    let wanted = Arc::new(wanted);
    let mut threads = Vec::new();
    for name in wanted.iter() {
        let name = name.clone();
        let wanted = wanted.clone();
        let board = board.clone();
        let project = project.clone();
        let existing = existing.clone();
        let opts = opts.clone();
        let client = client.clone();
        threads.push(std::thread::spawn(move || {
            let service = &project.services[&name];
            let outcome = (|| -> Result<bool, String> {
                // A dependency that was recreated takes down a container that
                // shares its network namespace (recreated with it) and, with
                // `restart: true`, restarts this service (as compose does).
                let mut recreate = false;
                let mut restart = false;
                for (dep, d) in &service.depends_on {
                    if !wanted.contains(dep) {
                        // `--no-deps`: what it depends on is left as it is.
                        continue;
                    }
                    if !project.services.contains_key(dep) {
                        if d.required {
                            return Err(format!(
                                "service {name} depends on undefined service {dep}"
                            ));
                        }
                        continue;
                    }
                    let dep_recreated = board
                        .wait_for(dep)
                        .map_err(|_| format!("dependency {dep} of {name} failed to start"))?;
                    if dep_recreated {
                        recreate |=
                            service.network_mode.as_deref() == Some(&format!("service:{dep}"));
                        restart |= d.restart;
                    }
                    if opts.no_start {
                        continue;
                    }
                    let containers =
                        project_containers(&client, &project.name, true).map_err(|e| e.message)?;
                    for c in containers.iter().filter(|c| label(c, SERVICE_LABEL) == dep) {
                        let id = c["Id"].as_str().unwrap_or_default();
                        wait_condition(&client, id, d.condition)
                            .map_err(|e| format!("dependency failed to start: {e}"))?;
                    }
                }
                let recreated =
                    converge_service(&client, &project, &name, &existing, &opts, recreate)?;
                if restart && !recreated && !opts.no_start {
                    restart_service(&client, &project, &name, opts.timeout)?;
                }
                Ok(recreated)
            })();
            if let Err(e) = &outcome {
                eprintln!(" \u{2718} Service {name}  {e}");
            }
            board.finish(&name, outcome);
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    let failed: Vec<String> = wanted
        .iter()
        .filter_map(|s| board.wait_for(s).err().map(|e| format!("{s}: {e}")))
        .collect();
    if !failed.is_empty() {
        return Err(fail(failed.join("\n")));
    }
    if opts.no_start {
        return Ok(0);
    }
    if opts.wait {
        let deadline = opts
            .wait_timeout
            .map(|t| Instant::now() + Duration::from_secs(t));
        for c in project_containers(client, &project.name, true)? {
            let id = c["Id"].as_str().unwrap_or_default();
            loop {
                let state = client.get_json(&format!("/containers/{id}/json"))?["State"].clone();
                let healthy = match state["Health"]["Status"].as_str() {
                    Some("healthy") | None => state["Running"] == true,
                    Some("unhealthy") => {
                        return Err(fail(format!(
                            "container {} is unhealthy",
                            container_name(&c)
                        )))
                    }
                    _ => false,
                };
                if healthy {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() > d) {
                    return Err(fail(
                        "timeout waiting for the project to be healthy".to_string(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    if opts.detach {
        return Ok(0);
    }
    follow_until_stopped(client, &project, opts)
}

/// Attached `up`: every container's output, prefixed with its name, until all
/// have stopped; Ctrl-C stops the project.
/// With `--abort-on-container-exit` (or `--exit-code-from`), the first
/// container to stop stops the project, and the exit code is its (or the named
/// service's).
fn follow_until_stopped(client: &Client, project: &Project, opts: &UpOptions) -> CmdResult {
    let timeout = opts.timeout;
    let abort = opts.abort_on_container_exit || opts.exit_code_from.is_some();
    // Blocked before the log threads exist, so that they inherit the mask and
    // Ctrl-C stays pending for this loop to see.
    crate::term::block(&[
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ]);
    let containers = project_containers(client, &project.name, true)?;
    let _followers = spawn_log_followers(
        client,
        &containers,
        &LogsOptions {
            follow: true,
            ..Default::default()
        },
    );
    let were_running: Vec<String> = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .filter_map(|c| c["Id"].as_str().map(String::from))
        .collect();
    loop {
        if interrupt_pending() {
            break;
        }
        let running = project_containers(client, &project.name, false)?;
        if running.is_empty() && !abort {
            // Let the log threads print the last lines.
            std::thread::sleep(Duration::from_millis(200));
            return Ok(0);
        }
        if abort {
            let still: Vec<&str> = running.iter().filter_map(|c| c["Id"].as_str()).collect();
            if let Some(gone) = were_running.iter().find(|id| !still.contains(&id.as_str())) {
                let first = client.get_json(&format!("/containers/{gone}/json"))?;
                eprintln!(
                    "{} exited with code {}",
                    first["Name"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches('/'),
                    first["State"]["ExitCode"]
                );
                eprintln!("Aborting on container exit...");
                stop_all(client, project, timeout)?;
                std::thread::sleep(Duration::from_millis(200));
                let code = match &opts.exit_code_from {
                    Some(service) => {
                        let c = project_containers(client, &project.name, true)?
                            .into_iter()
                            .find(|c| label(c, SERVICE_LABEL) == service)
                            .ok_or_else(|| fail(format!("no such service: {service}")))?;
                        let id = c["Id"].as_str().unwrap_or_default().to_string();
                        client.get_json(&format!("/containers/{id}/json"))?["State"]["ExitCode"]
                            .as_i64()
                            .unwrap_or(0)
                    }
                    None => first["State"]["ExitCode"].as_i64().unwrap_or(0),
                };
                return Ok(i32::try_from(code).unwrap_or(1));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
    stop_all(client, project, timeout)?;
    Ok(130)
}

/// Whether Ctrl-C (or SIGTERM) arrived while blocked.
fn interrupt_pending() -> bool {
    // SAFETY: sigpending fills a zeroed set we own; sigismember reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigpending(&mut set) == 0
            && (libc::sigismember(&set, libc::SIGINT) == 1
                || libc::sigismember(&set, libc::SIGTERM) == 1)
    }
}

/// One thread per container streaming its log with the container's name as a
/// prefix (padded to the longest, coloured on a terminal), all into one stdout.
fn spawn_log_followers(
    client: &Client,
    containers: &[Value],
    opts: &LogsOptions,
) -> Vec<std::thread::JoinHandle<Result<(), Failure>>> {
    let width = containers
        .iter()
        .map(|c| container_name(c).len())
        .max()
        .unwrap_or(0);
    let colour = crate::term::is_terminal(1);
    let out = Arc::new(Mutex::new(io::stdout()));
    containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = c["Id"].as_str().unwrap_or_default().to_string();
            let prefix = if opts.no_log_prefix {
                String::new()
            } else {
                log_prefix(&container_name(c), width, colour, i)
            };
            let client = client.clone();
            let out = out.clone();
            let opts = opts.clone();
            std::thread::spawn(move || stream_logs(&client, &id, &prefix, &opts, &out))
        })
        .collect()
}

fn log_prefix(name: &str, width: usize, colour: bool, index: usize) -> String {
    const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];
    if colour {
        format!(
            "\x1b[{}m{name:<width$} | \x1b[0m",
            COLOURS[index % COLOURS.len()]
        )
    } else {
        format!("{name:<width$} | ")
    }
}

/// One container's log, line by line with `prefix`.
fn stream_logs(
    client: &Client,
    id: &str,
    prefix: &str,
    opts: &LogsOptions,
    out: &Mutex<io::Stdout>,
) -> Result<(), Failure> {
    let mut q = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("follow", if opts.follow { "1" } else { "0" }.to_string()),
    ];
    if let Some(t) = &opts.tail {
        q.push(("tail", t.clone()));
    }
    if opts.timestamps {
        q.push(("timestamps", "1".to_string()));
    }
    if let Some(since) = &opts.since {
        q.push(("since", crate::containers::timestamp(since)?));
    }
    if let Some(until) = &opts.until {
        q.push(("until", crate::containers::timestamp(until)?));
    }
    let tty = client.get_json(&format!("/containers/{id}/json"))?["Config"]["Tty"] == true;
    let mut resp = client.call(
        "GET",
        &format!("/containers/{id}/logs{}", encode_query(&q)),
        RequestBody::None,
    )?;
    let (reader, mut writer) = std::os::unix::net::UnixStream::pair()?;
    let copier = std::thread::spawn(move || {
        if tty {
            let _ = io::copy(&mut resp.body, &mut writer);
        } else {
            let mut err = writer.try_clone().ok();
            let mut sink = io::sink();
            let stderr: &mut dyn Write = match err.as_mut() {
                Some(e) => e,
                None => &mut sink,
            };
            let _ = crate::client::demux(&mut resp.body, &mut writer, stderr);
        }
    });
    for line in io::BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(o, "{prefix}{line}");
    }
    let _ = copier.join();
    Ok(())
}

fn stop_all(client: &Client, project: &Project, timeout: Option<i64>) -> Result<(), Failure> {
    let mut order = project.start_order();
    order.reverse();
    let containers = project_containers(client, &project.name, true)?;
    for service in order {
        for c in containers
            .iter()
            .filter(|c| label(c, SERVICE_LABEL) == service)
        {
            stop_container(client, c["Id"].as_str().unwrap_or_default(), timeout);
            progress("Container", &container_name(c), "Stopped");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub remove_orphans: bool,
    pub timeout: Option<i64>,
    /// `--rmi`: the services' images too (`all`), or only the ones named after
    /// the project because the service has no `image` (`local`).
    pub rmi: Option<RemoveImages>,
}

/// `compose down`: containers in reverse dependency order, then networks, and
/// with `-v` the project's named volumes and the containers' anonymous ones.
pub fn down(client: &Client, popts: &ProjectOptions, opts: &DownOptions) -> CmdResult {
    let project = load(popts)?;
    let containers = list_containers(client, &project.name, true, true)?;
    let one_off = |c: &&Value| label(c, ONEOFF_LABEL) == "True";
    let mut order = project.start_order();
    order.reverse();
    // One-off (`run`) containers first: compose removes them too.
    let mut doomed: Vec<&Value> = containers.iter().filter(one_off).collect();
    for service in &order {
        doomed.extend(
            containers
                .iter()
                .filter(|c| !one_off(c) && label(c, SERVICE_LABEL) == service),
        );
    }
    if opts.remove_orphans {
        doomed.extend(
            containers
                .iter()
                .filter(|c| !one_off(c) && !project.services.contains_key(label(c, SERVICE_LABEL))),
        );
    }
    for c in doomed {
        let id = c["Id"].as_str().unwrap_or_default();
        stop_container(client, id, opts.timeout);
        progress("Container", &container_name(c), "Stopped");
        let v = if opts.volumes { "&v=1" } else { "" };
        client.call(
            "DELETE",
            &format!("/containers/{id}?force=1{v}"),
            RequestBody::None,
        )?;
        progress("Container", &container_name(c), "Removed");
    }
    for n in project.networks.values().filter(|n| !n.external) {
        let r = client.request(
            "DELETE",
            &format!("/networks/{}", n.name),
            RequestBody::None,
        )?;
        if r.status < 300 {
            progress("Network", &n.name, "Removed");
        }
    }
    if opts.volumes {
        for v in project.volumes.values().filter(|v| !v.external) {
            let r = client.request("DELETE", &format!("/volumes/{}", v.name), RequestBody::None)?;
            if r.status < 300 {
                progress("Volume", &v.name, "Removed");
            }
        }
    }
    if let Some(which) = opts.rmi {
        images::remove(client, &project, which)?;
    }
    Ok(0)
}

#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    pub all: bool,
    pub quiet: bool,
    pub services: bool,
    pub format: Option<String>,
}

pub fn ps(client: &Client, popts: &ProjectOptions, opts: &PsOptions) -> CmdResult {
    let project = load(popts)?;
    if opts.services {
        for s in project.services.keys() {
            println!("{s}");
        }
        return Ok(0);
    }
    let mut containers = project_containers(client, &project.name, opts.all)?;
    containers.sort_by_key(container_name);
    if opts.quiet {
        for c in &containers {
            println!("{}", c["Id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    if opts.format.as_deref() == Some("json") {
        let rows: Vec<Value> = containers
            .iter()
            .map(|c| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                let status = text(&c["Status"]);
                ComposePsRow {
                    id: text(&c["Id"]),
                    name: container_name(c),
                    image: text(&c["Image"]),
                    command: text(&c["Command"]),
                    project: project.name.clone(),
                    service: label(c, SERVICE_LABEL).to_string(),
                    state: text(&c["State"]),
                    health: status
                        .rsplit_once('(')
                        .map(|(_, h)| {
                            h.trim_end_matches(')')
                                .trim_start_matches("health: ")
                                .to_string()
                        })
                        .unwrap_or_default(),
                    status,
                    publishers: c["Ports"].clone(),
                }
            })
            .map(|row| serde_json::to_value(row).unwrap_or_default())
            .collect();
        println!("{}", Value::Array(rows));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            let ports: Vec<String> = c["Ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| match p["PublicPort"].as_u64() {
                    Some(public) => format!(
                        "{}:{}->{}/{}",
                        p["IP"].as_str().unwrap_or("0.0.0.0"),
                        public,
                        p["PrivatePort"],
                        p["Type"].as_str().unwrap_or("tcp")
                    ),
                    None => format!(
                        "{}/{}",
                        p["PrivatePort"],
                        p["Type"].as_str().unwrap_or("tcp")
                    ),
                })
                .collect();
            vec![
                container_name(c),
                c["Image"].as_str().unwrap_or_default().to_string(),
                format!("\"{}\"", c["Command"].as_str().unwrap_or_default()),
                label(c, SERVICE_LABEL).to_string(),
                crate::format::ago(c["Created"].as_i64().unwrap_or(0)),
                c["Status"].as_str().unwrap_or_default().to_string(),
                ports.join(", "),
            ]
        })
        .collect();
    crate::format::table(
        &[
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
        ],
        &rows,
    );
    Ok(0)
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub tail: Option<String>,
    pub timestamps: bool,
    /// Docker CLI times: unix seconds, RFC 3339, or a duration ago (`10m`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub no_log_prefix: bool,
    pub services: Vec<String>,
}

pub fn logs(client: &Client, popts: &ProjectOptions, opts: &LogsOptions) -> CmdResult {
    let project = load(popts)?;
    let mut containers = project_containers(client, &project.name, true)?;
    containers.retain(|c| {
        opts.services.is_empty() || opts.services.iter().any(|s| s == label(c, SERVICE_LABEL))
    });
    containers.sort_by_key(container_name);
    let threads = spawn_log_followers(client, &containers, opts);
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            return Err(e);
        }
    }
    Ok(0)
}

pub fn config(popts: &ProjectOptions, quiet: bool, services: bool) -> CmdResult {
    let project = load(popts)?;
    if quiet {
        return Ok(0);
    }
    if services {
        for s in project.services.keys() {
            println!("{s}");
        }
        return Ok(0);
    }
    print!("{}", project.to_yaml());
    Ok(0)
}

/// The ids of `services`' containers (every service when empty), in start order
/// (`reverse`: stop order).
fn service_containers(
    client: &Client,
    project: &Project,
    services: &[String],
    reverse: bool,
) -> Result<Vec<(String, String)>, Failure> {
    for s in services {
        if !project.services.contains_key(s) {
            return Err(fail(format!("no such service: {s}")));
        }
    }
    let containers = project_containers(client, &project.name, true)?;
    let mut order = project.start_order();
    if reverse {
        order.reverse();
    }
    let mut out = Vec::new();
    for service in order {
        if !services.is_empty() && !services.contains(&service) {
            continue;
        }
        let mut mine: Vec<&Value> = containers
            .iter()
            .filter(|c| label(c, SERVICE_LABEL) == service)
            .collect();
        mine.sort_by_key(|c| label(c, NUMBER_LABEL).parse::<u32>().unwrap_or(0));
        out.extend(mine.into_iter().map(|c| {
            (
                c["Id"].as_str().unwrap_or_default().to_string(),
                container_name(c),
            )
        }));
    }
    Ok(out)
}

/// `stop`, `start`, `restart`, `kill`, `pause`, `unpause`, `rm`: the verb on
/// each of the services' containers, in dependency order (reverse for the ones
/// that take containers down).
pub fn lifecycle(
    client: &Client,
    popts: &ProjectOptions,
    verb: &str,
    services: &[String],
    query: &[(&str, String)],
) -> CmdResult {
    let project = load(popts)?;
    let reverse = matches!(verb, "stop" | "kill" | "pause" | "rm");
    for (id, name) in service_containers(client, &project, services, reverse)? {
        let (method, path) = match verb {
            "rm" => ("DELETE", format!("/containers/{id}{}", encode_query(query))),
            _ => (
                "POST",
                format!("/containers/{id}/{verb}{}", encode_query(query)),
            ),
        };
        let resp = client.request(method, &path, RequestBody::None)?;
        // Already in the state asked for (304) is fine, as compose sees it; `rm`
        // leaves running containers alone (409), as compose's does.
        if verb == "rm" && resp.status == 409 {
            continue;
        }
        if resp.status >= 400 {
            let mut body = String::new();
            let mut reader = resp.body;
            let _ = reader.read_to_string(&mut body);
            return Err(fail(format!("{name}: {}", body.trim())));
        }
        let done = match verb {
            "stop" => "Stopped",
            "start" => "Started",
            "restart" => "Restarted",
            "kill" => "Killed",
            "pause" => "Paused",
            "unpause" => "Unpaused",
            _ => "Removed",
        };
        progress("Container", &name, done);
    }
    Ok(0)
}

/// `compose exec SERVICE CMD...`: in the service's container `index` (1 by default).
pub fn exec(
    client: &Client,
    popts: &ProjectOptions,
    service: &str,
    index: u32,
    command: &[String],
    opts: crate::run::ExecOpts<'_>,
) -> CmdResult {
    let project = load(popts)?;
    let containers = service_containers(client, &project, &[service.to_string()], false)?;
    let (id, _) = containers
        .get(index.saturating_sub(1) as usize)
        .ok_or_else(|| {
            fail(format!(
                "service \"{service}\" is not running container #{index}"
            ))
        })?;
    crate::run::exec(client, id, command, opts)
}

/// `compose ls`: the projects berthd has containers of, with their states.
pub fn ls(client: &Client, all: bool) -> CmdResult {
    let q = encode_query(&[
        ("all", if all { "1" } else { "0" }.to_string()),
        (
            "filters",
            Filters::new().with("label", PROJECT_LABEL).to_query(),
        ),
    ]);
    let containers = client.get_json(&format!("/containers/json{q}"))?;
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in containers.as_array().into_iter().flatten() {
        let entry = projects
            .entry(label(c, PROJECT_LABEL).to_string())
            .or_default();
        *entry
            .0
            .entry(c["State"].as_str().unwrap_or("unknown").to_string())
            .or_default() += 1;
        entry.1 = label(c, "com.docker.compose.project.config_files").to_string();
    }
    let rows: Vec<Vec<String>> = projects
        .into_iter()
        .map(|(name, (states, files))| {
            let status: Vec<String> = states.iter().map(|(s, n)| format!("{s}({n})")).collect();
            vec![name, status.join(", "), files]
        })
        .collect();
    crate::format::table(&["NAME", "STATUS", "CONFIG FILES"], &rows);
    Ok(0)
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub detach: bool,
    pub rm: bool,
    pub no_deps: bool,
    pub service_ports: bool,
    pub no_tty: bool,
    pub env: Vec<String>,
    pub entrypoint: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub name: Option<String>,
    /// `-v`: docker-style binds added to the service's volumes (a relative
    /// source is the project directory's).
    pub volumes: Vec<String>,
    /// `-p`: docker-style published ports added to the service's.
    pub publish: Vec<String>,
    pub service: String,
    pub command: Vec<String>,
}

/// `compose run SERVICE [CMD...]`: a one-off container of the service
/// (`<project>-<service>-run-<id>`, labelled oneoff), its dependencies brought
/// up first unless `--no-deps`, attached unless `-d`.
pub fn run(client: &Client, popts: &ProjectOptions, opts: &RunOptions) -> CmdResult {
    let project = load(popts)?;
    let mut service = project
        .services
        .get(&opts.service)
        .cloned()
        .ok_or_else(|| fail(format!("no such service: {}", opts.service)))?;
    if !opts.no_deps && !service.depends_on.is_empty() {
        up(
            client,
            popts,
            &UpOptions {
                detach: true,
                services: service.depends_on.keys().cloned().collect(),
                ..Default::default()
            },
        )?;
    }
    if !opts.command.is_empty() {
        service.command = Some(opts.command.clone());
    }
    if let Some(ep) = &opts.entrypoint {
        service.entrypoint = Some(vec![ep.clone()]);
    }
    if let Some(u) = &opts.user {
        service.user = Some(u.clone());
    }
    if let Some(w) = &opts.workdir {
        service.working_dir = Some(w.clone());
    }
    for e in &opts.env {
        let (k, v) = e
            .split_once('=')
            .map_or((e.as_str(), None), |(k, v)| (k, Some(v.to_string())));
        service
            .environment
            .insert(k.to_string(), v.or_else(|| std::env::var(k).ok()));
    }
    // As compose: no published ports unless asked, no restart policy, and a
    // TTY when run from one.
    if !opts.service_ports {
        service.ports.clear();
    }
    service.restart = None;
    service.tty = !opts.no_tty && !opts.detach && crate::term::is_terminal(0);
    service.stdin_open = !opts.detach;
    let mut body = create_body(&project, &opts.service, &service, 1, None)?;
    let labels = &mut body.config.labels;
    labels.insert(ONEOFF_LABEL.into(), "True".into());
    labels.insert("com.docker.compose.slug".into(), random_slug());
    body.host_config.auto_remove = opts.rm;
    let binds: Vec<String> = opts
        .volumes
        .iter()
        .map(|v| {
            match v
                .strip_prefix("./")
                .or(if v == "." { Some("") } else { None })
            {
                Some(rel) => project.working_dir.join(rel).display().to_string(),
                None => v.clone(),
            }
        })
        .collect();
    body.host_config.binds = binds;
    for spec in &opts.publish {
        for (port, binding) in crate::run::parse_publish(spec)? {
            let exposed = body
                .config
                .exposed_ports
                .get_or_insert_with(Default::default);
            exposed.insert(port.clone(), Empty);
            let bindings = &mut body.host_config.port_bindings;
            bindings.entry(port).or_default().push(binding);
        }
    }
    let config = &mut body.config;
    config.attach_stdin = !opts.detach;
    config.attach_stdout = !opts.detach;
    config.attach_stderr = !opts.detach;
    config.stdin_once = !opts.detach;
    let name = opts.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-run-{}",
            project.name,
            opts.service,
            &random_slug()[..12]
        )
    });
    let created = client.post_json(
        &format!(
            "/containers/create{}",
            encode_query(&[("name", name.clone())])
        ),
        &body,
    )?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    connect_other_networks(client, &project, &opts.service, &service, &id)?;
    copy_content_files(client, &project, &service, &id).map_err(fail)?;
    if opts.detach {
        client.call(
            "POST",
            &format!("/containers/{id}/start"),
            RequestBody::None,
        )?;
        println!("{name}");
        return Ok(0);
    }
    crate::run::attach_start_wait(client, &id, service.tty, true, opts.rm)
}

fn random_slug() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `compose build [SERVICE...]`: builds every service that has a `build`.
pub fn build(client: &Client, popts: &ProjectOptions, services: &[String]) -> CmdResult {
    let project = load(popts)?;
    for s in services {
        if !project.services.contains_key(s) {
            return Err(fail(format!("no such service: {s}")));
        }
    }
    build_if_needed(
        client,
        &project,
        &UpOptions {
            build: true,
            services: services.to_vec(),
            ..Default::default()
        },
    )?;
    Ok(0)
}

/// `compose port SERVICE PRIVATE_PORT`: the host address the port is published on.
pub fn port(
    client: &Client,
    popts: &ProjectOptions,
    service: &str,
    private_port: &str,
    protocol: &str,
    index: u32,
) -> CmdResult {
    let project = load(popts)?;
    let containers = service_containers(client, &project, &[service.to_string()], false)?;
    let (id, _) = containers
        .get(index.saturating_sub(1) as usize)
        .ok_or_else(|| fail(format!("service \"{service}\" has no container #{index}")))?;
    let c = client.get_json(&format!("/containers/{id}/json"))?;
    let key = format!("{private_port}/{protocol}");
    let binding = c["NetworkSettings"]["Ports"][&key]
        .as_array()
        .and_then(|b| b.first().cloned())
        .ok_or_else(|| {
            fail(format!(
                "no port {key} for container {}",
                container_name_of(&c)
            ))
        })?;
    println!(
        "{}:{}",
        binding["HostIp"].as_str().unwrap_or("0.0.0.0"),
        binding["HostPort"].as_str().unwrap_or_default()
    );
    Ok(0)
}

fn container_name_of(inspect: &Value) -> String {
    inspect["Name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string()
}

/// `compose top [SERVICE...]`: each container's processes.
pub fn top(client: &Client, popts: &ProjectOptions, services: &[String]) -> CmdResult {
    let project = load(popts)?;
    for (id, name) in service_containers(client, &project, services, false)? {
        let running =
            client.get_json(&format!("/containers/{id}/json"))?["State"]["Running"] == true;
        if !running {
            continue;
        }
        println!("{name}");
        crate::containers::top(client, &id)?;
        println!();
    }
    Ok(0)
}

/// `compose images [SERVICE...]`: the image each container runs.
pub fn images(client: &Client, popts: &ProjectOptions, services: &[String]) -> CmdResult {
    let project = load(popts)?;
    let mut rows = Vec::new();
    for (id, name) in service_containers(client, &project, services, false)? {
        let c = client.get_json(&format!("/containers/{id}/json"))?;
        let image_id = c["Image"].as_str().unwrap_or_default().to_string();
        let image = client.get_json(&format!("/images/{image_id}/json"))?;
        let reference = image["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
        let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, ""));
        rows.push(vec![
            name,
            repo.to_string(),
            tag.to_string(),
            image_id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect(),
            crate::format::human_size(image["Size"].as_f64().unwrap_or(0.0)),
        ]);
    }
    crate::format::table(
        &["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"],
        &rows,
    );
    Ok(0)
}

/// A container in `compose ps --format json`, with docker compose v2's names.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ComposePsRow {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    image: String,
    command: String,
    project: String,
    service: String,
    state: String,
    status: String,
    health: String,
    /// The API's `Ports` of the container, as docker compose shows them.
    publishers: Value,
}
