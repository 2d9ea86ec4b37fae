//! berthd: the berth daemon. Serves the Docker Engine API on a unix socket.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_engine::{Engine, EngineConfig};
use clap::Parser;

/// Flags follow dockerd's names.
#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "berth container engine daemon")]
struct Args {
    /// Socket to listen on (unix:///path).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    host: String,
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
}

fn main() {
    let args = Args::parse();
    let level = if args.debug {
        "debug".to_string()
    } else {
        args.log_level.clone()
    };
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => fail(&format!("start runtime: {e}")),
    };
    if let Err(e) = runtime.block_on(run(args)) {
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

fn write_pidfile(path: &Path) -> Result<(), String> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if let Ok(pid) = old.trim().parse::<i32>() {
            // SAFETY: signal 0 only checks for existence.
            if pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) } == 0 {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "berthd" {
                    return Err(format!(
                        "pid file {} names a running berthd ({pid})",
                        path.display()
                    ));
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .map_err(|e| format!("write {}: {e}", path.display()))
}

async fn run(args: Args) -> Result<(), String> {
    let socket = args.host.strip_prefix("unix://").ok_or_else(|| {
        format!(
            "unsupported host {:?}: only unix:// sockets are served",
            args.host
        )
    })?;
    let socket = PathBuf::from(socket);
    write_pidfile(&args.pidfile)?;
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
        network: network_config(&args)?,
    })
    .await
    .map_err(|e| e.to_string())?;

    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .map_err(|e| format!("listen on {}: {e}", socket.display()))?;
    // Root-only, like docker.sock (group root).
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", socket.display()))?;
    tracing::info!(socket = %socket.display(), data_root = %args.data_root.display(), "berthd listening");

    let server = tokio::spawn(berth_api::serve(engine, listener));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("install SIGTERM handler: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = server => {}
    }
    // Containers keep running under their monitors; the next berthd adopts them.
    tracing::info!("berthd shutting down; containers keep running");
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&args.pidfile);
    Ok(())
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
