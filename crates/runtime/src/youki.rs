//! The in-process runtime: youki's libcontainer.
//!
//! Only the single-threaded `berth-monitor` calls this. libcontainer forks with raw
//! clone3, blocks until the container process is set up, marks its caller
//! non-dumpable and writes the caller's oom_score_adj: none of that is safe inside
//! the multi-threaded daemon.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use caps::{CapSet, Capability};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::{LinuxSeccomp, Spec};
use serde_json::Value;

use crate::cgroupfs;
use crate::seccomp_bpf::{self, CompiledFilter};
use crate::{Result, RuntimeError};

/// Where libcontainer finds the spec berth derives for it (see [`derive_bundle`]).
const DERIVED_BUNDLE: &str = "youki";
/// What loading a filter without no_new_privs takes (CAP_SYS_ADMIN), and what
/// dropping a capability from the bounding set takes (CAP_SETPCAP, so last). The
/// container holds them only between libcontainer's capability setup and its
/// `execve`.
const LENT_CAPABILITIES: [Capability; 2] = [Capability::CAP_SYS_ADMIN, Capability::CAP_SETPCAP];

/// The container process's last step: load the precompiled seccomp filter, give
/// back the capabilities lent for it, then exec the payload as libcontainer would.
#[derive(Clone, Default)]
struct BerthExecutor {
    late_seccomp: Option<Arc<LateSeccomp>>,
}

struct LateSeccomp {
    filter: CompiledFilter,
    /// Capabilities added to each set only so the filter could be loaded, in
    /// the order they can be given back.
    lent: Vec<(CapSet, Capability)>,
}

impl BerthExecutor {
    fn late(filter: CompiledFilter, lent: Vec<(CapSet, Capability)>) -> BerthExecutor {
        BerthExecutor {
            late_seccomp: Some(Arc::new(LateSeccomp { filter, lent })),
        }
    }
}

impl Executor for BerthExecutor {
    fn exec(&self, spec: &Spec) -> std::result::Result<(), ExecutorError> {
        if let Some(late) = &self.late_seccomp {
            late.filter
                .install()
                .map_err(|e| ExecutorError::Other(format!("load seccomp filter: {e}")))?;
            // In the order lend_capabilities recorded them: the bounding set
            // first (dropping from it needs CAP_SETPCAP still effective),
            // CAP_SETPCAP last within each set, permitted after effective.
            for (set, cap) in &late.lent {
                caps::drop(None, *set, *cap).map_err(|e| {
                    ExecutorError::Other(format!("drop lent {cap} from {set:?}: {e}"))
                })?;
            }
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> std::result::Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn setup_envs(
        &self,
        envs: HashMap<String, String>,
    ) -> std::result::Result<(), ExecutorSetEnvsError> {
        DefaultExecutor {}.setup_envs(envs)
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes =
        std::fs::read(path).map_err(|e| RuntimeError::io(format!("read {}", path.display()), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| RuntimeError::Runtime(format!("parse {}: {e}", path.display())))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| RuntimeError::Runtime(format!("serialize {}: {e}", path.display())))?;
    std::fs::write(path, bytes)
        .map_err(|e| RuntimeError::io(format!("write {}", path.display()), e))
}

/// The precompiled filter for the profile in `config`, if it has one berth can
/// precompile.
fn precompiled_filter(config: &Value, cache: &Path) -> Result<Option<CompiledFilter>> {
    let Some(profile) = config.pointer("/linux/seccomp").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let profile: LinuxSeccomp = serde_json::from_value(profile.clone())
        .map_err(|e| RuntimeError::Seccomp(e.to_string()))?;
    if !seccomp_bpf::can_precompile(&profile) {
        return Ok(None);
    }
    seccomp_bpf::load_or_compile(cache, &profile).map(Some)
}

/// Adds the lent capabilities to an OCI process object's capability sets, and says
/// which it added where, bounding set first. None when the process has no
/// capability object.
fn lend_capabilities(process: &mut Value) -> Option<Vec<(CapSet, Capability)>> {
    let sets = process.get_mut("capabilities")?.as_object_mut()?;
    let mut lent = Vec::new();
    for (key, set) in [
        ("bounding", CapSet::Bounding),
        ("effective", CapSet::Effective),
        ("permitted", CapSet::Permitted),
    ] {
        let list = sets
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()?;
        for cap in LENT_CAPABILITIES {
            let name = cap.to_string();
            if !list.iter().any(|v| v.as_str() == Some(name.as_str())) {
                list.push(Value::String(name));
                lent.push((set, cap));
            }
        }
    }
    Some(lent)
}

/// The bundle libcontainer runs: `bundle` itself, or, when its seccomp profile can
/// be precompiled, a derived bundle without the profile (so libcontainer does not
/// compile it again) and with the lent capabilities, plus the executor that loads
/// the cached filter and gives the capabilities back.
fn derive_bundle(
    bundle: &Path,
    mut config: Value,
    cache: Option<&Path>,
) -> Result<(PathBuf, BerthExecutor)> {
    let Some(cache) = cache else {
        return Ok((bundle.to_path_buf(), BerthExecutor::default()));
    };
    let Some(filter) = precompiled_filter(&config, cache)? else {
        return Ok((bundle.to_path_buf(), BerthExecutor::default()));
    };
    let Some(lent) = config.get_mut("process").and_then(lend_capabilities) else {
        return Ok((bundle.to_path_buf(), BerthExecutor::default()));
    };
    if let Some(linux) = config.get_mut("linux").and_then(Value::as_object_mut) {
        linux.remove("seccomp");
    }
    // The derived bundle is one level down: keep a relative root pointing where
    // the original did.
    if let Some(root) = config.pointer_mut("/root/path") {
        if let Some(relative) = root.as_str().filter(|p| !p.starts_with('/')) {
            *root = Value::String(bundle.join(relative).to_string_lossy().into_owned());
        }
    }
    let derived = bundle.join(DERIVED_BUNDLE);
    std::fs::create_dir_all(&derived)
        .map_err(|e| RuntimeError::io(format!("create {}", derived.display()), e))?;
    write_json(&derived.join("config.json"), &config)?;
    Ok((derived, BerthExecutor::late(filter, lent)))
}

/// For `exec` in a container started from a derived bundle: the process file with
/// the lent capabilities, and the executor that loads the container's filter.
/// Containers started without one keep libcontainer's own seccomp path.
fn derive_process(
    bundle: &Path,
    process_json: &Path,
    cache: Option<&Path>,
) -> Result<(Option<PathBuf>, BerthExecutor)> {
    let none = || Ok((None, BerthExecutor::default()));
    let Some(cache) = cache else {
        return none();
    };
    if !bundle.join(DERIVED_BUNDLE).join("config.json").exists() {
        return none();
    }
    let config = read_json(&bundle.join("config.json"))?;
    let Some(filter) = precompiled_filter(&config, cache)? else {
        return none();
    };
    let mut process = read_json(process_json)?;
    let Some(lent) = lend_capabilities(&mut process) else {
        return none();
    };
    let derived = process_json.with_extension("youki.json");
    write_json(&derived, &process)?;
    Ok((Some(derived), BerthExecutor::late(filter, lent)))
}

/// The three standard streams handed to the container's first process.
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

fn runtime_err(what: &str, id: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Runtime(format!("{what} {id}: {e}"))
}

fn base_builder(
    id: &str,
    state_root: &Path,
    stdio: Stdio,
    console_socket: Option<&Path>,
    executor: BerthExecutor,
) -> Result<ContainerBuilder> {
    let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_executor(executor)
        .with_root_path(state_root)
        .map_err(|e| runtime_err("state root for", id, e))?
        .with_console_socket(console_socket.map(Path::to_path_buf));
    if let Some(fd) = stdio.stdin {
        builder = builder.with_stdin(fd);
    }
    if let Some(fd) = stdio.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = stdio.stderr {
        builder = builder.with_stderr(fd);
    }
    Ok(builder)
}

/// Creates the container described by `bundle/config.json`, runs `before_start` with
/// the init pid while the process still waits (namespaces exist, user code has not
/// run), then starts it. Returns the pid of the container's init process. With a
/// `seccomp_cache` directory, the seccomp profile is compiled once per distinct
/// profile rather than in every container.
pub fn create_and_start(
    id: &str,
    state_root: &Path,
    bundle: &Path,
    seccomp_cache: Option<&Path>,
    stdio: Stdio,
    console_socket: Option<&Path>,
    before_start: impl FnOnce(i32) -> Result<()>,
) -> Result<i32> {
    let config = read_json(&bundle.join("config.json"))?;
    let seal_cgroupfs = cgroupfs::spec_wants_readonly(&config);
    let (bundle, executor) = derive_bundle(bundle, config, seccomp_cache)?;
    let mut container = base_builder(id, state_root, stdio, console_socket, executor)?
        .as_init(&bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| runtime_err("create", id, e))?;
    let pid = container
        .pid()
        .ok_or_else(|| runtime_err("create", id, "no init pid"))?
        .as_raw();
    let prepared = if seal_cgroupfs {
        cgroupfs::seal_readonly(pid)
    } else {
        Ok(())
    };
    if let Err(e) = prepared.and_then(|()| before_start(pid)) {
        let _ = container.delete(true);
        return Err(e);
    }
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(runtime_err("start", id, e));
    }
    Ok(pid)
}

/// Starts a further process inside a running container (`exec`), described by an OCI
/// `process.json`. Returns its pid; it is a child of the caller.
pub fn exec(
    id: &str,
    state_root: &Path,
    bundle: &Path,
    process_json: &Path,
    seccomp_cache: Option<&Path>,
    stdio: Stdio,
    console_socket: Option<&Path>,
) -> Result<i32> {
    let (derived, executor) = derive_process(bundle, process_json, seccomp_cache)?;
    let built = base_builder(id, state_root, stdio, console_socket, executor)?
        .as_tenant()
        .with_detach(true)
        .with_process(Some(derived.as_deref().unwrap_or(process_json)))
        .build();
    if let Some(derived) = &derived {
        let _ = std::fs::remove_file(derived);
    }
    Ok(built.map_err(|e| runtime_err("exec in", id, e))?.as_raw())
}

/// Removes the runtime's record of a container and its cgroup, killing what is left.
pub fn delete(id: &str, state_root: &Path) -> Result<()> {
    let dir: PathBuf = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    let mut container = Container::load(dir).map_err(|e| runtime_err("load", id, e))?;
    container
        .delete(true)
        .map_err(|e| runtime_err("delete", id, e))
}
