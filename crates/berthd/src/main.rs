//! berthd: the berth daemon. Serves the Docker Engine API on unix sockets, and on
//! TCP with TLS client certificates (see `listen`).

use std::path::{Path, PathBuf};

use berth_engine::{Engine, EngineConfig};
use clap::{CommandFactory, FromArgMatches, Parser};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod config;
mod listen;
mod systemd;

/// Flags follow dockerd's names.
#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "berth container engine daemon")]
struct Args {
    /// Where to serve the API (repeatable): unix:///path, tcp://HOST:PORT
    /// (TLS with client certificates unless on loopback), fd:// (systemd)
    #[arg(
        id = "host",
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    hosts: Vec<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    tls: bool,
    /// Use TLS and require client certificates signed by --tlscacert
    #[arg(long)]
    tlsverify: bool,
    /// Trust certs signed only by this CA
    #[arg(long, default_value = "/etc/berth/ca.pem")]
    tlscacert: PathBuf,
    /// Path to TLS certificate file
    #[arg(long, default_value = "/etc/berth/cert.pem")]
    tlscert: PathBuf,
    /// Path to TLS key file
    #[arg(long, default_value = "/etc/berth/key.pem")]
    tlskey: PathBuf,
    /// Root of persistent state.
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state (bundles, sockets).
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Pid file.
    #[arg(short = 'p', long, default_value = "/run/berth/berthd.pid")]
    pidfile: PathBuf,
    /// Parent cgroup of every container.
    #[arg(long, default_value = "berth")]
    cgroup_parent: String,
    /// The default bridge's interface name; `none` turns bridge networking off
    #[arg(short = 'b', long, default_value = "berth0")]
    bridge: String,
    /// The default bridge's gateway address and prefix, e.g. 172.30.0.1/16
    #[arg(long)]
    bip: Option<String>,
    /// Pools for network subnets: base=CIDR,size=PREFIX (repeatable)
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// What programs the firewall: nftables or iptables (default: nftables
    /// where `nft` is installed, else iptables)
    #[arg(long = "firewall-backend", value_name = "nftables|iptables")]
    firewall_backend: Option<String>,
    /// Per-registry CA and client certificates: DIR/HOST:PORT/{ca.crt,client.cert,client.key}
    #[arg(long = "certs-dir", default_value = "/etc/berth/certs.d")]
    certs_dir: PathBuf,
    /// Registries reached over plain HTTP (loopback ones always are)
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,
    /// Register an external OCI runtime (NAME=PATH), usable with `--runtime NAME`.
    /// `runc` is registered by default when it is on PATH.
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    add_runtime: Vec<String>,
    /// Debug logging.
    #[arg(short = 'D', long)]
    debug: bool,
    /// Log level (debug, info, warn, error).
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Default ulimits for containers (NAME=SOFT[:HARD], repeatable)
    #[arg(long = "default-ulimit", value_name = "NAME=SOFT[:HARD]")]
    default_ulimit: Vec<String>,
    /// Preferred Docker registry mirror (repeatable)
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirror: Vec<String>,
    /// Daemon configuration file (dockerd's daemon.json keys)
    #[arg(long = "config-file", default_value = config::DEFAULT_CONFIG_FILE)]
    config_file: PathBuf,
}

/// Changes the log filter of the running subscriber (SIGHUP).
type LogFilterHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The settings daemon.json gives where no flag was given.
fn apply_file(args: &mut Args, file: config::FileConfig) {
    if !file.hosts.is_empty() {
        args.hosts = file.hosts;
    }
    macro_rules! take {
        ($field:ident) => {
            if let Some(v) = file.$field {
                args.$field = v;
            }
        };
    }
    take!(data_root);
    take!(exec_root);
    take!(pidfile);
    take!(cgroup_parent);
    take!(bridge);
    take!(log_level);
    take!(debug);
    take!(tls);
    take!(tlsverify);
    take!(tlscacert);
    take!(tlscert);
    take!(tlskey);
    if file.bip.is_some() {
        args.bip = file.bip;
    }
    if file.firewall_backend.is_some() {
        args.firewall_backend = file.firewall_backend;
    }
    if !file.default_address_pools.is_empty() {
        args.default_address_pool = file.default_address_pools;
    }
    if !file.insecure_registries.is_empty() {
        args.insecure_registry = file.insecure_registries;
    }
    if !file.runtimes.is_empty() {
        args.add_runtime = file.runtimes;
    }
    if !file.default_ulimits.is_empty() {
        args.default_ulimit = file.default_ulimits;
    }
    if !file.registry_mirrors.is_empty() {
        args.registry_mirror = file.registry_mirrors;
    }
}

/// Container log defaults from daemon.json (`log-driver`, `log-opts`).
#[derive(Debug, Default)]
struct LogDefaults {
    driver: String,
    options: std::collections::BTreeMap<String, String>,
}

/// The command line with daemon.json folded in, and the container log
/// defaults the file gives.
fn load_args() -> Result<(Args, LogDefaults), String> {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let required =
        matches.value_source("config_file") == Some(clap::parser::ValueSource::CommandLine);
    let Some((file, raw)) = config::read(&args.config_file, required).map_err(|e| e.to_string())?
    else {
        return Ok((args, LogDefaults::default()));
    };
    config::conflicts(&raw, &matches).map_err(|m| {
        format!(
            "unable to configure the berth daemon with file {}: {m}",
            args.config_file.display()
        )
    })?;
    let log_defaults = LogDefaults {
        driver: file.log_driver.clone().unwrap_or_default(),
        options: file.log_opts.clone(),
    };
    apply_file(&mut args, file);
    Ok((args, log_defaults))
}

fn log_filter(debug: bool, level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if debug { "debug" } else { level }))
}

fn main() {
    let (args, log_defaults) = match load_args() {
        Ok(loaded) => loaded,
        Err(e) => fail(&e),
    };
    let (filter, filter_handle) =
        tracing_subscriber::reload::Layer::new(log_filter(args.debug, &args.log_level));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_ansi(false))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => fail(&format!("start runtime: {e}")),
    };
    if let Err(e) = runtime.block_on(run(args, log_defaults, filter_handle)) {
        fail(e.as_str());
    }
}

fn fail(message: &str) -> ! {
    eprintln!("berthd: {message}");
    std::process::exit(1);
}

fn monitor_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_MONITOR") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("berth-monitor")))
        .unwrap_or_else(|| PathBuf::from("berth-monitor"))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Writes our pid into `path` and holds an exclusive `flock` on it for the life of
/// the process. The lock, not the pid, says whether a berthd runs: the kernel
/// drops it the moment a berthd dies (before it is even reaped), so neither a
/// zombie nor a recycled pid blocks a restart, and two daemons can never both win.
/// How long a starting berthd waits for the pid file lock of one that is exiting.
const PREDECESSOR_EXIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

fn write_pidfile(path: &Path) -> Result<std::fs::File, String> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    // A berthd killed a moment ago holds the lock until the kernel has torn it
    // down (its memory first, its files last), which takes milliseconds to a
    // second for a large process; a restart right after `kill -9` waits for
    // that rather than failing. A berthd that really runs holds it for good.
    let deadline = std::time::Instant::now() + PREDECESSOR_EXIT_LIMIT;
    let locked = loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) || std::time::Instant::now() >= deadline {
            break Err(err);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    if let Err(err) = locked {
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(format!(
                "pid file {} names a running berthd ({})",
                path.display(),
                holder.trim()
            ));
        }
        return Err(format!("lock {}: {err}", path.display()));
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(file)
}

async fn run(
    args: Args,
    log_defaults: LogDefaults,
    filter_handle: LogFilterHandle,
) -> Result<(), String> {
    let tls = listen::TlsOptions {
        tls: args.tls,
        verify: args.tlsverify,
        ca: args.tlscacert.clone(),
        cert: args.tlscert.clone(),
        key: args.tlskey.clone(),
    };
    let hosts = args
        .hosts
        .iter()
        .map(|h| listen::parse_host(h, args.tls || args.tlsverify))
        .collect::<Result<Vec<_>, _>>()?;
    let network = network_config(&args)?;
    // Handlers first: from the moment the sockets listen, a SIGTERM or SIGHUP
    // waits for the loop below instead of killing berthd half-way through
    // opening the engine (which would leave its firewall table behind).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("install SIGTERM handler: {e}"))?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("install SIGHUP handler: {e}"))?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("install SIGINT handler: {e}"))?;
    let _pidfile_lock = write_pidfile(&args.pidfile)?;
    // Bound before the engine opens (a refused host changes nothing on the
    // machine); connections wait in the backlog until the engine is ready.
    let listeners = listen::bind_all(&hosts, &tls)?;
    let owned_sockets: Vec<PathBuf> = listeners
        .iter()
        .filter_map(|l| l.owned_path().map(Path::to_path_buf))
        .collect();
    let mut runtimes = std::collections::HashMap::new();
    if let Some(runc) = find_in_path("runc") {
        runtimes.insert("runc".to_string(), runc);
    }
    for entry in &args.add_runtime {
        let (name, path) = entry
            .split_once('=')
            .ok_or_else(|| format!("--add-runtime {entry:?}: expected NAME=PATH"))?;
        runtimes.insert(name.to_string(), PathBuf::from(path));
    }
    let engine = Engine::open(EngineConfig {
        data_root: args.data_root.clone(),
        exec_root: args.exec_root.clone(),
        cgroup_parent: args.cgroup_parent.clone(),
        monitor_bin: monitor_binary(),
        runtimes,
        insecure_registries: args.insecure_registry.clone(),
        certs_dir: args.certs_dir.clone(),
        network,
        default_log_driver: log_defaults.driver,
        default_log_opts: log_defaults.options,
        default_ulimits: args
            .default_ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_, _>>()?,
        registry_mirrors: args.registry_mirror.clone(),
    })
    .await
    .map_err(|e| {
        for socket in &owned_sockets {
            let _ = std::fs::remove_file(socket);
        }
        e.to_string()
    })?;

    tracing::info!(hosts = ?args.hosts, data_root = %args.data_root.display(), "berthd listening");
    berth_api::set_read_timeouts(read_timeouts()?);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        servers.spawn(listen::serve(engine.clone(), listener));
    }
    systemd::notify("READY=1");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
            _ = servers.join_next() => break,
            _ = hangup.recv() => reload(&args, &engine, &filter_handle),
        }
    }
    // Containers keep running under their monitors; the next berthd adopts them.
    tracing::info!("berthd shutting down; containers keep running");
    systemd::notify("STOPPING=1");
    engine.release_firewall_if_idle();
    for socket in &owned_sockets {
        let _ = std::fs::remove_file(socket);
    }
    let _ = std::fs::remove_file(&args.pidfile);
    Ok(())
}

/// SIGHUP: re-reads the configuration file and applies what can change live
/// (log level, debug, insecure registries), as dockerd does; a bad file is
/// reported and changes nothing.
fn reload(args: &Args, engine: &Engine, filter_handle: &LogFilterHandle) {
    let file = match config::read(&args.config_file, false) {
        Ok(Some((file, _))) => file,
        Ok(None) => config::FileConfig::default(),
        Err(e) => {
            tracing::error!(error = %e, "configuration not reloaded");
            return;
        }
    };
    let debug_logging = file.debug.unwrap_or(args.debug);
    let level = file
        .log_level
        .clone()
        .unwrap_or_else(|| args.log_level.clone());
    if let Err(e) = filter_handle.reload(log_filter(debug_logging, &level)) {
        tracing::error!(error = %e, "log level not reloaded");
    }
    let insecure_registries = if file.insecure_registries.is_empty() {
        args.insecure_registry.clone()
    } else {
        file.insecure_registries
    };
    let registry_mirrors = if file.registry_mirrors.is_empty() {
        args.registry_mirror.clone()
    } else {
        file.registry_mirrors
    };
    engine.reload(berth_engine::ReloadableConfig {
        insecure_registries: insecure_registries.clone(),
        registry_mirrors: registry_mirrors.clone(),
    });
    tracing::info!(
        file = %args.config_file.display(),
        debug = debug_logging,
        log_level = %level,
        ?insecure_registries,
        ?registry_mirrors,
        "Reloaded configuration"
    );
}

/// `--default-ulimit NAME=SOFT[:HARD]` (dockerd's form; -1 is unlimited).
fn parse_ulimit(value: &str) -> Result<berth_engine::model::Ulimit, String> {
    let bad = || format!("--default-ulimit {value:?}: expected NAME=SOFT[:HARD]");
    let (name, limits) = value.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    Ok(berth_engine::model::Ulimit {
        name: name.to_string(),
        soft: soft.parse().map_err(|_| bad())?,
        hard: hard.parse().map_err(|_| bad())?,
    })
}

/// The API's request read timeouts; `BERTH_API_READ_TIMEOUT` (seconds) shortens
/// both, for tests of clients that stall.
fn read_timeouts() -> Result<berth_api::ReadTimeouts, String> {
    let mut timeouts = berth_api::ReadTimeouts::default();
    if let Ok(v) = std::env::var("BERTH_API_READ_TIMEOUT") {
        let secs: u64 = v
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("BERTH_API_READ_TIMEOUT={v:?}: expected whole seconds"))?;
        timeouts.headers = std::time::Duration::from_secs(secs);
        timeouts.body_idle = std::time::Duration::from_secs(secs);
    }
    Ok(timeouts)
}

fn network_config(args: &Args) -> Result<berth_engine::NetworkConfig, String> {
    let mut config = berth_engine::NetworkConfig {
        bridge: args.bridge.clone(),
        bip: args.bip.clone(),
        disabled: args.bridge == "none",
        ..Default::default()
    };
    if let Some(backend) = &args.firewall_backend {
        config.firewall_backend = Some(
            backend
                .parse()
                .map_err(|e| format!("--firewall-backend: {e}"))?,
        );
    }
    if !args.default_address_pool.is_empty() {
        config.pools.clear();
        for pool in &args.default_address_pool {
            let mut base = None;
            let mut size = None;
            for part in pool.split(',') {
                match part.split_once('=') {
                    Some(("base", v)) => {
                        base = Some(
                            v.parse()
                                .map_err(|e| format!("--default-address-pool {pool}: {e}"))?,
                        )
                    }
                    Some(("size", v)) => {
                        size = Some(
                            v.parse::<u8>()
                                .map_err(|e| format!("--default-address-pool {pool}: {e}"))?,
                        )
                    }
                    _ => {
                        return Err(format!(
                            "--default-address-pool {pool}: expected base=CIDR,size=N"
                        ))
                    }
                }
            }
            match (base, size) {
                (Some(b), Some(s)) => config.pools.push((b, s)),
                _ => {
                    return Err(format!(
                        "--default-address-pool {pool}: expected base=CIDR,size=N"
                    ))
                }
            }
        }
    }
    Ok(config)
}
