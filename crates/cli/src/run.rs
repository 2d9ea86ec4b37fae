//! `run`, `create` and attached `start`: the client side of docker's run flow
//! (create → attach → wait → start → pump streams → exit with the container's code).

use std::io::{self, Read, Write};
use std::net::Shutdown;

use std::collections::BTreeMap;

use berth_api_types::{
    BindOptions, ContainerConfig, ContainerCreateRequest, ContainerUpdateRequest, DriverConfig,
    Empty, EndpointConfig, EndpointIpamRequest, ExecCreateRequest, ExecStartRequest, Healthcheck,
    HostConfig, LogConfig, Mount, NetworkingConfig, PortBinding, RestartPolicy, TmpfsOptions,
    Ulimit, VolumeOptions,
};

use crate::client::{demux, encode_query, Client, ClientError, RequestBody};
use crate::{term, ContainerOpts, Failure};

/// docker's exit code when the daemon (not the container) failed.
const DAEMON_ERROR: i32 = 125;

/// docker's `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; -1 is unlimited).
fn parse_ulimit(spec: &str) -> Result<Ulimit, Failure> {
    let invalid = || {
        bad(&format!(
            "invalid ulimit {spec:?}: expected NAME=SOFT[:HARD]"
        ))
    };
    let (name, limits) = spec.split_once('=').ok_or_else(invalid)?;
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (s, h),
        None => (limits, limits),
    };
    let soft: i64 = soft.parse().map_err(|_| invalid())?;
    let hard: i64 = hard.parse().map_err(|_| invalid())?;
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--expose` (and compose's `expose`): `80`, `53/udp`, or a range
/// `8000-8002[/proto]`, which the docker CLI expands into each of its ports.
pub(crate) fn expose_ports(spec: &str) -> Result<Vec<String>, String> {
    if spec.contains(':') {
        return Err(format!("invalid port format for --expose: {spec}"));
    }
    let (numbers, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    // The protocol is kept as given, as the docker CLI keeps it; berthd reads it
    // in any case.
    let (low, high) = numbers.split_once('-').unwrap_or((numbers, numbers));
    match (low.parse::<u16>(), high.parse::<u16>()) {
        (Ok(low), Ok(high)) if low <= high => {
            Ok((low..=high).map(|p| format!("{p}/{protocol}")).collect())
        }
        _ => Err(format!(
            "invalid range format for --expose: {spec}, error: invalid port range: {numbers}"
        )),
    }
}

fn bad(message: &str) -> Failure {
    Failure {
        message: message.to_string(),
        code: DAEMON_ERROR,
    }
}

pub(crate) fn parse_bytes(s: &str) -> Result<i64, Failure> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as i64)
        .map_err(|_| Failure {
            message: format!("invalid size: '{s}'"),
            code: DAEMON_ERROR,
        })
}

fn env_list(opts: &ContainerOpts) -> Result<Vec<String>, Failure> {
    let mut env = Vec::new();
    let mut push = |entry: &str| {
        if entry.contains('=') {
            env.push(entry.to_string());
        } else if let Ok(v) = std::env::var(entry) {
            env.push(format!("{entry}={v}"));
        }
    };
    for file in &opts.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| Failure {
            message: format!("open {file}: {e}"),
            code: DAEMON_ERROR,
        })?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            push(line);
        }
    }
    for e in &opts.env {
        push(e);
    }
    Ok(env)
}

fn key_values(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `--restart NAME[:N]`.
fn restart_policy(spec: &str) -> Result<RestartPolicy, Failure> {
    let (name, count) = spec.split_once(':').unwrap_or((spec, "0"));
    let count: i64 = count
        .parse()
        .map_err(|_| bad(&format!("invalid restart policy format: {spec}")))?;
    Ok(RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: count,
    })
}

/// Builds docker's create body from the flags.
pub fn create_body(opts: &ContainerOpts, detach: bool) -> Result<ContainerCreateRequest, Failure> {
    let restart = match opts.restart.as_deref() {
        None => RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        },
        Some(r) => restart_policy(r)?,
    };
    let attach_all = opts.attach.is_empty();
    let attach =
        |s: &str| !detach && (attach_all || opts.attach.iter().any(|a| a.eq_ignore_ascii_case(s)));
    let mut exposed = BTreeMap::new();
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for e in &opts.expose {
        for key in expose_ports(e).map_err(|m| bad(&m))? {
            exposed.insert(key, Empty);
        }
    }
    for p in &opts.publish {
        for (key, binding) in parse_publish(p)? {
            exposed.insert(key.clone(), Empty);
            bindings.entry(key).or_default().push(binding);
        }
    }
    let config = ContainerConfig {
        image: opts.image().to_string(),
        cmd: (!opts.command().is_empty()).then(|| opts.command().to_vec()),
        env: env_list(opts)?,
        tty: opts.tty,
        open_stdin: opts.interactive,
        stdin_once: opts.interactive && !detach,
        attach_stdin: opts.interactive && !detach,
        attach_stdout: attach("stdout"),
        attach_stderr: attach("stderr"),
        labels: key_values(&opts.label),
        working_dir: opts.workdir.clone().unwrap_or_default(),
        user: opts.user.clone().unwrap_or_default(),
        hostname: opts.hostname.clone().unwrap_or_default(),
        // `--entrypoint ""` clears the image's; sent as the docker CLI sends it.
        entrypoint: opts.entrypoint.as_ref().map(|e| vec![e.clone()]),
        healthcheck: healthcheck(opts)?,
        stop_signal: opts.stop_signal.clone(),
        stop_timeout: opts.stop_timeout,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        ..Default::default()
    };
    let sysctls = opts
        .sysctl
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| bad(&format!("invalid sysctl {kv:?}: expected KEY=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    let bytes = |flag: &Option<String>| flag.as_deref().map(parse_bytes).transpose();
    let host_config = HostConfig {
        auto_remove: opts.rm,
        restart_policy: restart,
        privileged: opts.privileged,
        cap_add: opts.cap_add.clone(),
        cap_drop: opts.cap_drop.clone(),
        readonly_rootfs: opts.read_only,
        security_opt: opts.security_opt.clone(),
        network_mode: opts.network.clone().unwrap_or_else(|| "default".into()),
        extra_hosts: opts.add_host.clone(),
        // No driver given: the daemon's (daemon.json `log-driver`).
        log_config: LogConfig {
            kind: opts.log_driver.clone().unwrap_or_default(),
            config: key_values(&opts.log_opt),
        },
        memory: bytes(&opts.memory)?.unwrap_or(0),
        nano_cpus: opts.cpus.map_or(0, |c| (c * 1e9) as i64),
        cpu_shares: opts.cpu_shares.unwrap_or(0),
        pids_limit: opts.pids_limit.unwrap_or(0),
        memory_reservation: bytes(&opts.memory_reservation)?.unwrap_or(0),
        cpuset_cpus: opts.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: opts.cpuset_mems.clone().unwrap_or_default(),
        ulimits: opts
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_, _>>()?,
        sysctls,
        shm_size: bytes(&opts.shm_size)?.unwrap_or(0),
        group_add: opts.group_add.clone(),
        cgroup_parent: opts.cgroup_parent.clone().unwrap_or_default(),
        runtime: opts.runtime.clone().unwrap_or_default(),
        binds: opts.volume.clone(),
        port_bindings: bindings,
        publish_all_ports: opts.publish_all,
        dns: opts.dns.clone(),
        dns_search: opts.dns_search.clone(),
        dns_options: opts.dns_option.clone(),
        volumes_from: opts.volumes_from.clone(),
        mounts: opts
            .mount
            .iter()
            .map(|m| parse_mount_flag(m))
            .collect::<Result<_, _>>()?,
        tmpfs: opts
            .tmpfs
            .iter()
            .map(|t| {
                let (dest, o) = t.split_once(':').unwrap_or((t, ""));
                (dest.to_string(), o.to_string())
            })
            .collect(),
        ..Default::default()
    };
    let mut networking_config = NetworkingConfig::default();
    if opts.ip.is_some() || opts.mac_address.is_some() || !opts.network_alias.is_empty() {
        let name = match host_config.network_mode.as_str() {
            "default" => "bridge".to_string(),
            other => other.to_string(),
        };
        let endpoint = EndpointConfig {
            aliases: opts.network_alias.clone(),
            ipam_config: opts
                .ip
                .clone()
                .map(|ip| EndpointIpamRequest { ipv4_address: ip }),
            mac_address: opts.mac_address.clone().unwrap_or_default(),
        };
        networking_config.endpoints_config.insert(name, endpoint);
    }
    Ok(ContainerCreateRequest {
        config,
        host_config,
        networking_config,
    })
}

pub fn create(client: &Client, opts: &ContainerOpts) -> Result<String, Failure> {
    create_with(client, opts, false)
}

fn create_with(client: &Client, opts: &ContainerOpts, detach: bool) -> Result<String, Failure> {
    let body = create_body(opts, detach)?;
    let mut query = Vec::new();
    if let Some(n) = &opts.name {
        query.push(("name", n.clone()));
    }
    let path = format!("/containers/create{}", encode_query(&query));
    match client.post_json(&path, &body) {
        Ok(v) => v["Id"].as_str().map(String::from).ok_or_else(|| Failure {
            message: "daemon returned no container ID".into(),
            code: DAEMON_ERROR,
        }),
        Err(ClientError::Api {
            status: 404,
            message,
        }) if message.starts_with("No such image") => Err(Failure {
            message: format!(
                "Unable to find image '{}' locally\nberth: Error response from daemon: {message}",
                opts.image()
            ),
            code: DAEMON_ERROR,
        }),
        Err(e) => Err(Failure {
            message: format!("berth: {e}"),
            code: DAEMON_ERROR,
        }),
    }
}

/// Maps a start failure to docker's exit codes: 127 command not found, 126 not
/// executable, 125 anything else.
fn start_failure(e: ClientError) -> Failure {
    let message = e.to_string();
    let lower = message.to_lowercase();
    let code = if lower.contains("no such file") || lower.contains("not found") {
        127
    } else if lower.contains("permission denied") {
        126
    } else {
        DAEMON_ERROR
    };
    Failure {
        message: format!("berth: {message}"),
        code,
    }
}

pub fn run(client: &Client, opts: &ContainerOpts, detach: bool) -> crate::CmdResult {
    if detach && opts.rm && opts.restart.as_deref().is_some_and(|r| r != "no") {
        return Err(Failure {
            message: "berth: Conflicting options: --restart and --rm".into(),
            code: DAEMON_ERROR,
        });
    }
    let id = create_with(client, opts, detach)?;
    if detach {
        client
            .call(
                "POST",
                &format!("/containers/{id}/start"),
                RequestBody::None,
            )
            .map_err(start_failure)?;
        println!("{id}");
        return Ok(0);
    }
    attach_start_wait(client, &id, opts.tty, opts.interactive, opts.rm)
}

/// Attaches, starts and waits for one container; returns its exit code.
pub fn attach_start_wait(
    client: &Client,
    id: &str,
    tty: bool,
    stdin: bool,
    auto_remove: bool,
) -> crate::CmdResult {
    let signals = term::block_forwarded_signals();
    let attach_path = format!(
        "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}",
        if stdin { 1 } else { 0 }
    );
    let hijacked = client
        .hijack(&attach_path, RequestBody::None)
        .map_err(|e| Failure {
            message: format!("berth: {e}"),
            code: DAEMON_ERROR,
        })?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let wait = client
        .call(
            "POST",
            &format!("/containers/{id}/wait?condition={condition}"),
            RequestBody::None,
        )
        .map_err(|e| Failure {
            message: format!("berth: {e}"),
            code: DAEMON_ERROR,
        })?;

    let raw = if tty && stdin && term::is_terminal(0) {
        term::RawMode::enter()
    } else {
        None
    };
    if let Err(e) = client.call(
        "POST",
        &format!("/containers/{id}/start"),
        RequestBody::None,
    ) {
        drop(raw);
        return Err(start_failure(e));
    }
    if tty {
        if let Some((h, w)) = term::window_size() {
            let _ = client.call(
                "POST",
                &format!("/containers/{id}/resize?h={h}&w={w}"),
                RequestBody::None,
            );
        }
    }
    spawn_signal_forwarder(client, id, signals, tty);

    pump(hijacked, tty, stdin)?;
    drop(raw);
    let status = wait.json().map_err(|e| Failure {
        message: format!("berth: {e}"),
        code: DAEMON_ERROR,
    })?;
    Ok(status["StatusCode"].as_i64().unwrap_or(DAEMON_ERROR as i64) as i32)
}

/// Forwards SIGINT/SIGTERM/... to the container (docker's --sig-proxy) and window
/// size changes to its terminal.
fn spawn_signal_forwarder(client: &Client, id: &str, signals: nix::sys::signal::SigSet, tty: bool) {
    let id = id.to_string();
    let client = client.clone();
    std::thread::spawn(move || loop {
        let Ok(sig) = signals.wait() else { return };
        if sig == nix::sys::signal::Signal::SIGWINCH {
            if let (true, Some((h, w))) = (tty, term::window_size()) {
                let _ = client.call(
                    "POST",
                    &format!("/containers/{id}/resize?h={h}&w={w}"),
                    RequestBody::None,
                );
            }
            continue;
        }
        let _ = client.call(
            "POST",
            &format!("/containers/{id}/kill?signal={}", sig as i32),
            RequestBody::None,
        );
    });
}

/// `attach`: joins a running container's stdio; exits with its exit code once it
/// stops (or 0 if the stream ends while it keeps running).
pub fn attach(client: &Client, name: &str, no_stdin: bool, sig_proxy: bool) -> crate::CmdResult {
    let c = client.get_json(&format!("/containers/{name}/json"))?;
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    if !c["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(crate::fail(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if c["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(crate::fail(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !no_stdin && c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let signals = term::block_forwarded_signals();
    let hijacked = client
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}",
                stdin as u8
            ),
            RequestBody::None,
        )
        .map_err(|e| Failure {
            message: format!("berth: {e}"),
            code: DAEMON_ERROR,
        })?;
    let raw = if tty && stdin && term::is_terminal(0) {
        term::RawMode::enter()
    } else {
        None
    };
    if sig_proxy {
        spawn_signal_forwarder(client, &id, signals, tty);
    }
    pump(hijacked, tty, stdin)?;
    drop(raw);
    // The stream ends when the process does, a moment before berthd records the
    // exit; a container still running after that grace was detached from.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let after = client.get_json(&format!("/containers/{id}/json"))?;
        if !after["State"]["Running"].as_bool().unwrap_or(false) {
            return Ok(after["State"]["ExitCode"].as_i64().unwrap_or(0) as i32);
        }
        if std::time::Instant::now() > deadline {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Copies stdin to a hijacked stream (half-closing it at EOF) and the stream's output
/// to stdout/stderr (raw with a TTY, demultiplexed without) until it ends.
pub fn pump(hijacked: crate::client::Hijacked, tty: bool, stdin: bool) -> Result<(), Failure> {
    let writer = hijacked.writer;
    if stdin {
        let mut w = writer.try_clone()?;
        std::thread::spawn(move || {
            let mut input = io::stdin().lock();
            let mut buf = [0u8; 32 * 1024];
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if w.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = w.shutdown(Shutdown::Write);
        });
    } else {
        let _ = writer.shutdown(Shutdown::Write);
    }
    let mut reader = hijacked.reader;
    let stdout = io::stdout();
    let stderr = io::stderr();
    if tty {
        let mut out = stdout.lock();
        let mut buf = [0u8; 32 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let _ = out.flush();
                }
            }
        }
    } else {
        let _ = demux(&mut reader, &mut stdout.lock(), &mut stderr.lock());
    }
    Ok(())
}

pub struct ExecOpts<'a> {
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub env: &'a [String],
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
    pub privileged: bool,
}

/// `exec`: create the exec instance, start it attached (or detached), and exit with
/// the process's exit code.
pub fn exec(
    client: &Client,
    container: &str,
    command: &[String],
    opts: ExecOpts<'_>,
) -> crate::CmdResult {
    let body = ExecCreateRequest {
        attach_stdin: opts.interactive && !opts.detach,
        attach_stdout: !opts.detach,
        attach_stderr: !opts.detach,
        tty: opts.tty,
        cmd: Some(command.to_vec()),
        env: opts.env.to_vec(),
        working_dir: opts.workdir.unwrap_or("").to_string(),
        user: opts.user.unwrap_or("").to_string(),
        privileged: opts.privileged,
        detach_keys: String::new(),
    };
    let created = client
        .post_json(&format!("/containers/{container}/exec"), &body)
        .map_err(|e| Failure {
            message: e.to_string(),
            code: 1,
        })?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    if opts.detach {
        client
            .call(
                "POST",
                &format!("/exec/{id}/start"),
                RequestBody::json(&ExecStartRequest {
                    detach: true,
                    tty: opts.tty,
                })
                .map_err(start_failure)?,
            )
            .map_err(start_failure)?;
        return Ok(0);
    }
    let hijacked = client
        .hijack(
            &format!("/exec/{id}/start"),
            RequestBody::json(&ExecStartRequest {
                detach: false,
                tty: opts.tty,
            })
            .map_err(start_failure)?,
        )
        .map_err(start_failure)?;
    let raw = if opts.tty && opts.interactive && term::is_terminal(0) {
        term::RawMode::enter()
    } else {
        None
    };
    if opts.tty {
        if let Some((h, w)) = term::window_size() {
            let _ = client.call(
                "POST",
                &format!("/exec/{id}/resize?h={h}&w={w}"),
                RequestBody::None,
            );
        }
        let signals = term::block(&[nix::sys::signal::Signal::SIGWINCH]);
        let client = client.clone();
        let exec_id = id.clone();
        std::thread::spawn(move || {
            while let Ok(sig) = signals.wait() {
                if sig == nix::sys::signal::Signal::SIGWINCH {
                    if let Some((h, w)) = term::window_size() {
                        let _ = client.call(
                            "POST",
                            &format!("/exec/{exec_id}/resize?h={h}&w={w}"),
                            RequestBody::None,
                        );
                    }
                }
            }
        });
    }
    pump(hijacked, opts.tty, opts.interactive)?;
    drop(raw);
    let inspect = client.get_json(&format!("/exec/{id}/json"))?;
    Ok(inspect["ExitCode"].as_i64().unwrap_or(126) as i32)
}

/// `update`: new limits for running or stopped containers.
pub fn update(
    client: &Client,
    names: &[String],
    memory: Option<&str>,
    cpus: Option<f64>,
    cpu_shares: Option<i64>,
    pids_limit: Option<i64>,
    restart: Option<&str>,
) -> crate::CmdResult {
    let update = ContainerUpdateRequest {
        memory: memory.map(parse_bytes).transpose()?,
        nano_cpus: cpus.map(|c| (c * 1e9) as i64),
        cpu_shares,
        pids_limit,
        restart_policy: restart
            .map(restart_policy)
            .transpose()
            .map_err(|f| crate::fail(f.message))?,
        ..Default::default()
    };
    let mut code = 0;
    for n in names {
        match client.post_json(&format!("/containers/{n}/update"), &update) {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `--mount type=...,source=...,target=...` into docker's `Mount` object.
fn parse_mount_flag(spec: &str) -> Result<Mount, Failure> {
    let bad = |why: &str| Failure {
        message: format!("invalid argument \"{spec}\" for \"--mount\" flag: {why}"),
        code: DAEMON_ERROR,
    };
    let truthy = |v: Option<&str>| -> Result<bool, Failure> {
        match v {
            None | Some("1") | Some("true") => Ok(true),
            Some("0") | Some("false") => Ok(false),
            Some(other) => Err(bad(&format!("invalid value {other:?}"))),
        }
    };
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let mut bind: Option<BindOptions> = None;
    let mut volume: Option<VolumeOptions> = None;
    let mut tmpfs: Option<TmpfsOptions> = None;
    let mut driver: Option<String> = None;
    let mut driver_opts = BTreeMap::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        let need = || {
            value.ok_or_else(|| bad(&format!("invalid field '{field}' must be a key=value pair")))
        };
        let pair = || need().map(|v| v.split_once('=').unwrap_or((v, "")));
        match key.to_ascii_lowercase().as_str() {
            "type" => m.kind = need()?.to_string(),
            "source" | "src" => m.source = need()?.to_string(),
            "target" | "destination" | "dst" => m.target = need()?.to_string(),
            "readonly" | "ro" => m.read_only = truthy(value)?,
            "bind-propagation" => {
                bind.get_or_insert_with(Default::default).propagation = need()?.to_string()
            }
            "bind-create-mountpoint" => {
                bind.get_or_insert_with(Default::default).create_mountpoint = truthy(value)?
            }
            "volume-nocopy" => volume.get_or_insert_with(Default::default).no_copy = truthy(value)?,
            "volume-driver" => driver = Some(need()?.to_string()),
            "volume-opt" => {
                let (k, v) = pair()?;
                driver_opts.insert(k.to_string(), v.to_string());
            }
            "volume-label" => {
                let (k, v) = pair()?;
                let labels = &mut volume.get_or_insert_with(Default::default).labels;
                labels.insert(k.to_string(), v.to_string());
            }
            "tmpfs-size" => {
                tmpfs.get_or_insert_with(Default::default).size_bytes = parse_bytes(need()?)?
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(need()?, 8)
                    .map_err(|_| bad(&format!("invalid tmpfs-mode {:?}", value.unwrap_or(""))))?;
                tmpfs.get_or_insert_with(Default::default).mode = mode;
            }
            "consistency" => {}
            _ => return Err(bad(&format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if driver.is_some() || !driver_opts.is_empty() {
        volume.get_or_insert_with(Default::default).driver_config = Some(DriverConfig {
            name: driver.unwrap_or_else(|| "local".into()),
            options: driver_opts,
        });
    }
    m.bind_options = bind;
    m.volume_options = volume;
    m.tmpfs_options = tmpfs;
    Ok(m)
}

/// `-p [IP:][HOST_PORT:]PORT[/PROTO]` (ports may be ranges `8000-8002:80-82`)
/// into ("PORT/proto", binding) pairs.
pub(crate) fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>, Failure> {
    let bad = || Failure {
        message: format!(
            "invalid argument \"{spec}\" for \"-p, --publish\" flag: invalid port format"
        ),
        code: DAEMON_ERROR,
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) if matches!(p, "tcp" | "udp" | "sctp") => (r, p),
        Some(_) => return Err(bad()),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (container, host_port, host_ip) = match parts.as_slice() {
        [c] => (*c, "", ""),
        [c, h] => (*c, *h, ""),
        [c, h, ip] => (*c, *h, ip.trim_start_matches('[').trim_end_matches(']')),
        _ => return Err(bad()),
    };
    let range = |s: &str| -> Result<(u16, u16), Failure> {
        match s.split_once('-') {
            Some((a, b)) => Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)),
            None => {
                let p = s.parse().map_err(|_| bad())?;
                Ok((p, p))
            }
        }
    };
    let (c0, c1) = range(container)?;
    if c0 == 0 || c1 < c0 {
        return Err(bad());
    }
    let host = if host_port.is_empty() {
        None
    } else {
        Some(range(host_port)?)
    };
    let mut out = Vec::new();
    for (i, port) in (c0..=c1).enumerate() {
        let hp = match host {
            None => String::new(),
            Some((h0, h1)) if h1 - h0 == c1 - c0 => (h0 + i as u16).to_string(),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            // One container port, a host range: berthd picks a free one of it.
            Some((h0, h1)) if c0 == c1 && h0 < h1 => format!("{h0}-{h1}"),
            Some(_) => return Err(bad()),
        };
        out.push((
            format!("{port}/{proto}"),
            PortBinding {
                host_ip: host_ip.to_string(),
                host_port: hp,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod publish_tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let one = parse_publish("8080:80").unwrap();
        assert_eq!(one[0].0, "80/tcp");
        assert_eq!(one[0].1.host_port, "8080");
        let ip = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(ip[0].0, "80/udp");
        assert_eq!(ip[0].1.host_ip, "127.0.0.1");
        let random = parse_publish("80").unwrap();
        assert_eq!(random[0].1.host_port, "");
        let ranged = parse_publish("9000-9001:80-81").unwrap();
        assert_eq!(ranged[1].0, "81/tcp");
        assert_eq!(ranged[1].1.host_port, "9001");
        let any_of = parse_publish("9000-9009:80").unwrap();
        assert_eq!(
            (any_of.len(), any_of[0].1.host_port.as_str()),
            (1, "9000-9009")
        );
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("80/icmp").is_err());
    }
}

/// `--health-*` and `--no-healthcheck` as docker's CLI turns them into
/// `Config.Healthcheck` (durations in nanoseconds, 0 = inherit from the image).
fn healthcheck(opts: &ContainerOpts) -> Result<Option<Healthcheck>, Failure> {
    let tuned = opts.health_cmd.is_some()
        || opts.health_interval.is_some()
        || opts.health_timeout.is_some()
        || opts.health_retries.is_some()
        || opts.health_start_period.is_some()
        || opts.health_start_interval.is_some();
    if opts.no_healthcheck {
        if tuned {
            return Err(crate::fail(
                "--no-healthcheck conflicts with --health-* options".to_string(),
            ));
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !tuned {
        return Ok(None);
    }
    let duration = |flag: &str, v: &Option<String>| -> Result<i64, Failure> {
        match v {
            None => Ok(0),
            Some(v) => go_duration_ns(v).filter(|n| *n >= 0).ok_or_else(|| {
                crate::fail(format!(
                    "invalid argument {v:?} for \"--{flag}\" flag: time: invalid duration {v:?}"
                ))
            }),
        }
    };
    let test = match &opts.health_cmd {
        Some(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
        None => Vec::new(),
    };
    Ok(Some(Healthcheck {
        test,
        interval: duration("health-interval", &opts.health_interval)?,
        timeout: duration("health-timeout", &opts.health_timeout)?,
        start_period: duration("health-start-period", &opts.health_start_period)?,
        start_interval: duration("health-start-interval", &opts.health_start_interval)?,
        retries: opts.health_retries.unwrap_or(0),
    }))
}

/// Go's duration syntax (`1m30s`, `500ms`, `2h`), in nanoseconds.
fn go_duration_ns(v: &str) -> Option<i64> {
    berth_dockerfile::parse_go_duration(v).and_then(|n| i64::try_from(n).ok())
}

#[cfg(test)]
mod health_flag_tests {
    use super::go_duration_ns;

    #[test]
    fn durations_as_go_reads_them() {
        assert_eq!(go_duration_ns("1s"), Some(1_000_000_000));
        assert_eq!(go_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_ns("250ms"), Some(250_000_000));
        assert_eq!(go_duration_ns("0"), Some(0));
        assert_eq!(go_duration_ns("5"), None);
        assert_eq!(go_duration_ns("x"), None);
    }
}
