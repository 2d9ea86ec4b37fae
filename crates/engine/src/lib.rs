//! berth-engine: the domain. Containers, images, their life cycles and events, over
//! one metadata store ([`db`]), the content store (`berth-store`) and one monitor
//! process per running container (`berth-monitor`).
//!
//! Concurrency model: records live in memory behind one mutex (`State`), and every
//! change is written through to redb before the lock is released, so memory and
//! disk never disagree for longer than one call. Long work (unpacking, waiting for a
//! container) happens outside the lock.

mod adopt;
mod archive;
mod build;
mod bundle;
mod commit;
mod control;
pub mod db;
mod distribution;
mod error;
mod events;
mod exec;
mod export;
mod health;
mod restart_policy;

mod container;
mod copy;
mod image;
mod kill;
mod lifecycle;
pub mod log_driver;
mod logs;
pub mod model;
mod names;
mod network;
mod ops;
mod pause;
pub mod port;
mod progress;
mod prune;
mod state;
mod stats;
mod stream;
mod update;
mod user;
mod validate;
mod volume;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_store::Store;

pub use berth_distribution::{RegistryAuth, RemoteRef};
pub use build::BuildOptions;
pub use commit::CommitOptions;
pub use container::{labels_match, Filters};
pub use error::{EngineError, ErrorKind};
pub use events::Event;
pub use exec::{ExecConfig, ExecRecord};
pub use image::{normalize_reference, HistoryEntry, ImageDeletion, ImportOptions};
pub use logs::{AttachStream, LogOptions};
pub use model::*;
pub use network::NetworkConfig;
pub use ops::{Change, ChangeKind, ContainerUsage, DiskUsage, ImageUsage, ProcessRow, VolumeUsage};
pub use port::{ContainerPort, HostBinding, HostPorts, PortMap, Protocol};
pub use progress::{ProgressEvent, ProgressStream};
pub use state::Refusal;
pub use stats::{host_memory, StatsSample};
pub use stream::ChannelReader;
pub use volume::{VolumeFilters, ANONYMOUS_LABEL};

pub type Result<T> = std::result::Result<T, EngineError>;

/// Where berthd keeps things and how it names what it creates on the host.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state: metadata store, images, container layers and logs.
    pub data_root: PathBuf,
    /// Runtime state that dies with a reboot: bundles, runtime state, sockets.
    pub exec_root: PathBuf,
    /// Parent of every container's cgroup, relative to each hierarchy's root.
    pub cgroup_parent: String,
    /// The `berth-monitor` binary.
    pub monitor_bin: PathBuf,
    /// External OCI runtimes by name (`--runtime NAME`), besides the built-in one.
    pub runtimes: HashMap<String, PathBuf>,
    /// Registries spoken to over plain HTTP besides loopback ones (`host:port`).
    pub insecure_registries: Vec<String>,
    /// Per-registry TLS material, docker's layout: `<dir>/<host:port>/{ca.crt,
    /// client.cert, client.key}` (`/etc/docker/certs.d` is read too).
    pub certs_dir: PathBuf,
    pub network: NetworkConfig,
    /// The daemon's log driver (daemon.json `log-driver`; empty: json-file).
    pub default_log_driver: String,
    /// The daemon's container log options (daemon.json `log-opts`), merged
    /// into a container on the daemon's driver (`log_driver::merge_defaults`).
    pub default_log_opts: std::collections::BTreeMap<String, String>,
    /// Limits every container gets for the names it sets no `--ulimit` of
    /// (daemon.json `default-ulimits`, `--default-ulimit`).
    pub default_ulimits: Vec<model::Ulimit>,
    /// Registries tried before Docker Hub for its images (`registry-mirrors`).
    pub registry_mirrors: Vec<String>,
}

/// What a SIGHUP can change while containers run (dockerd's reloadable subset
/// that berth has).
#[derive(Debug, Clone, Default)]
pub struct ReloadableConfig {
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
}

/// The name of the built-in runtime (libcontainer inside the monitor).
pub const DEFAULT_RUNTIME: &str = "berth";

pub struct Engine {
    config: EngineConfig,
    db: db::Db,
    store: Store,
    state: Mutex<State>,
    /// Exec instances, kept in memory only, as docker does.
    execs: Mutex<exec::Execs>,
    events: events::EventBus,
    /// Per-container lock over its root filesystem mount: a start and a `cp` into a
    /// stopped container (which mounts the same overlay) never overlap.
    fs_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    networking: network::Networking,
    /// Starts as the config's values; `reload` replaces it.
    reloadable: std::sync::RwLock<ReloadableConfig>,
}

#[derive(Default)]
struct State {
    containers: HashMap<String, ContainerRecord>,
    images: HashMap<String, ImageRecord>,
    volumes: HashMap<String, VolumeRecord>,
    networks: HashMap<String, NetworkRecord>,
    /// Attach requests made before the container started; the next start connects
    /// them before the process runs.
    pending_attach: HashMap<String, Vec<logs::PendingAttach>>,
}

impl Engine {
    /// Opens (or creates) the engine's state and adopts containers whose monitors
    /// survived a previous berthd.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        // Settings first: a bad one changes nothing on the machine.
        for u in &config.default_ulimits {
            berth_runtime::limits::rlimit(&u.name, u.soft, u.hard)
                .map_err(|e| EngineError::InvalidArgument(format!("default-ulimits: {e}")))?;
        }
        for dir in [
            config.data_root.clone(),
            config.data_root.join("containers"),
            config.data_root.join("volumes"),
            config.exec_root.clone(),
            config.exec_root.join("containers"),
            config.exec_root.join("s"),
            config.exec_root.join("r"),
            config.exec_root.join("netns"),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::at("create", &dir, e))?;
        }
        // Contexts and mounts of builds a crash cut short.
        let build_dir = config.data_root.join("build");
        berth_snapshot::unmount_all_under(&build_dir);
        let _ = std::fs::remove_dir_all(&build_dir);
        let db = db::Db::open(&config.data_root.join("berth.redb"))?;
        let store = Store::open(config.data_root.join("image"))?;
        let mut state = State::default();
        for c in db.all::<ContainerRecord>(db::CONTAINERS)? {
            state.containers.insert(c.id.clone(), c);
        }
        for i in db.all::<ImageRecord>(db::IMAGES)? {
            state.images.insert(i.id.clone(), i);
        }
        for v in db.all::<VolumeRecord>(db::VOLUMES)? {
            state.volumes.insert(v.name.clone(), v);
        }
        for n in db.all::<NetworkRecord>(db::NETWORKS)? {
            state.networks.insert(n.id.clone(), n);
        }
        let networking = network::Networking::new(&config.network);
        let reloadable = std::sync::RwLock::new(ReloadableConfig {
            insecure_registries: config.insecure_registries.clone(),
            registry_mirrors: config.registry_mirrors.clone(),
        });
        let engine = Arc::new(Engine {
            reloadable,
            config,
            db,
            store,
            state: Mutex::new(state),
            execs: Mutex::new(exec::Execs::default()),
            events: events::EventBus::new(),
            fs_locks: Mutex::new(HashMap::new()),
            networking,
        });
        // Before adoption: containers found dead while berthd was away are
        // disconnected through the firewall this sets up.
        engine.setup_networking()?;
        engine.remove_orphan_dirs();
        engine.remove_orphan_volumes();
        engine.collect_garbage();
        engine.adopt_containers().await;
        // After adoption, which decides which containers run.
        engine.reconcile_port_rules();
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Applies a re-read configuration (SIGHUP); the next registry
    /// connection sees it.
    pub fn reload(&self, config: ReloadableConfig) {
        let mut current = self.reloadable.write().unwrap_or_else(|p| p.into_inner());
        *current = config;
    }

    /// The mirrors tried before Docker Hub, as configured now (SIGHUP included).
    pub fn registry_mirrors(&self) -> Vec<String> {
        self.reloadable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .registry_mirrors
            .clone()
    }

    fn insecure_registry(&self, host: &str) -> bool {
        self.reloadable
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .insecure_registries
            .iter()
            .any(|r| r == host)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes blobs and layers no image record names (left by a crash).
    fn collect_garbage(&self) {
        let keep: std::collections::HashSet<String> = {
            let st = self.lock();
            st.images
                .values()
                .flat_map(|i| {
                    std::iter::once(i.id.clone()).chain(i.config.rootfs.diff_ids.iter().cloned())
                })
                .collect()
        };
        let removed = self.store.collect_garbage(&keep);
        if removed > 0 {
            tracing::info!(removed, "removed unreferenced blobs and layers");
        }
    }

    pub(crate) fn fs_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.fs_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }

    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.exec_root.join("containers").join(id)
    }

    /// The external runtime binary a container uses, or `None` for the built-in one.
    pub(crate) fn runtime_binary(&self, name: &str) -> Result<Option<PathBuf>> {
        if name.is_empty() || name == DEFAULT_RUNTIME {
            return Ok(None);
        }
        self.config
            .runtimes
            .get(name)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!("Unknown runtime specified {name}"))
            })
    }

    /// The runtime a container runs under. libcontainer 0.7 clones bind mounts
    /// with `open_tree`, which leaves them private whatever propagation was asked
    /// for; a container with a shared or slave bind therefore runs under runc when
    /// the built-in runtime was chosen and runc is registered.
    pub(crate) fn container_runtime(&self, c: &ContainerRecord) -> Result<Option<PathBuf>> {
        let chosen = self.runtime_binary(&c.host_config.runtime)?;
        if chosen.is_some() {
            return Ok(chosen);
        }
        let propagating = c.mounts.iter().any(|m| {
            m.kind == "bind" && !m.propagation.is_empty() && !m.propagation.ends_with("private")
        });
        match (propagating, self.config.runtimes.get("runc")) {
            (true, Some(runc)) => Ok(Some(runc.clone())),
            (true, None) => {
                tracing::warn!(id = %c.id, "bind propagation needs runc, which is not registered; the bind stays private");
                Ok(None)
            }
            (false, _) => Ok(None),
        }
    }

    fn runtime_root(&self) -> PathBuf {
        self.config.exec_root.join("r")
    }

    /// Compiled seccomp filters, shared by every container with the same profile.
    fn seccomp_cache_dir(&self) -> PathBuf {
        self.config.exec_root.join("seccomp")
    }

    /// Unix socket of the monitor of a container or exec; short, as sun_path is.
    fn monitor_socket(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("s")
            .join(format!("{}.sock", &id[..id.len().min(24)]))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Recent events (for `--since`) and the live stream that follows them.
    pub fn subscribe_with_history(&self) -> (Vec<Event>, tokio::sync::broadcast::Receiver<Event>) {
        self.events.subscribe_with_history()
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let st = self.lock();
        let running = st.containers.values().filter(|c| c.state.running()).count();
        let paused = st.containers.values().filter(|c| c.state.paused()).count();
        (st.containers.len(), running, paused, st.images.len())
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    hex::encode(bytes)
}

fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::at("remove", path, e)),
    }
}

/// Go's `path.Match`, as docker reads COPY sources and reference filters: `*`
/// and `?` stop at `/`, `[...]` classes. fnmatch(3) with FNM_PATHNAME is the
/// same grammar.
pub fn path_match(pattern: &str, name: &str) -> bool {
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(pattern),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: both are NUL-terminated strings.
    unsafe { libc::fnmatch(p.as_ptr(), n.as_ptr(), libc::FNM_PATHNAME) == 0 }
}

#[cfg(test)]
mod path_match_tests {
    use super::path_match;

    #[test]
    fn reference_patterns_as_go_path_match() {
        assert!(path_match("busy*", "busybox"));
        assert!(path_match("busybox:?atest", "busybox:latest"));
        assert!(!path_match("busy*", "library/busybox"));
        assert!(path_match("*/busybox", "library/busybox"));
        assert!(!path_match("busybox", "busybox2"));
        assert!(path_match("busybox:[0-9]*", "busybox:1.36"));
        assert!(!path_match("a", "a\0b"));
    }
}
