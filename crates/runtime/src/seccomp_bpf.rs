//! Seccomp filters compiled once, loaded many times.
//!
//! libcontainer compiles the OCI seccomp profile with libseccomp inside every new
//! container process. For Docker's default profile (three architectures, some 350
//! rules) that compilation is about 7 ms of every `run` and every `exec`, more than
//! everything else libcontainer does together. The compiled program depends only on
//! the profile, so berth compiles each distinct profile once into a cache of raw BPF
//! programs, and the container's last step before `execve` (see
//! [`crate::youki`]) loads the cached program with `seccomp(2)`.
//!
//! The cache lives in the daemon's exec root (root-only tmpfs): it is trusted the
//! way the daemon's own binaries are, and rebuilt after every reboot.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};

use crate::{Result, RuntimeError};

/// The kernel's limit on one filter program (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;
const INSTRUCTION_SIZE: usize = std::mem::size_of::<libc::sock_filter>();

/// A compiled filter and the `seccomp(2)` flags the profile asks for.
#[derive(Clone, Debug)]
pub struct CompiledFilter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

/// Whether berth can compile `profile` ahead of time. Notify actions cannot be: the
/// listener fd has to travel from the container process to a supervisor, which only
/// libcontainer's own path does.
pub fn can_precompile(profile: &LinuxSeccomp) -> bool {
    profile.default_action() != LinuxSeccompAction::ScmpActNotify
        && profile.listener_path().is_none()
        && !profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// The compiled program for `profile`, from `cache_dir` when an earlier container
/// used the same profile, compiled (and cached) otherwise.
pub fn load_or_compile(cache_dir: &Path, profile: &LinuxSeccomp) -> Result<CompiledFilter> {
    let flags = filter_flags(profile);
    let path = cache_path(cache_dir, profile)?;
    match std::fs::read(&path) {
        Ok(bytes) => {
            if let Some(program) = program_from_bytes(&bytes) {
                return Ok(CompiledFilter { program, flags });
            }
            tracing::warn!(path = %path.display(), "discarding malformed cached seccomp filter");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(RuntimeError::io(format!("read {}", path.display()), e)),
    }
    let bytes = compile(profile)?;
    let program = program_from_bytes(&bytes)
        .ok_or_else(|| RuntimeError::Seccomp("libseccomp produced no usable program".into()))?;
    store(cache_dir, &path, &bytes)?;
    Ok(CompiledFilter { program, flags })
}

impl CompiledFilter {
    /// Installs the filter on the calling thread. Without no_new_privs this needs
    /// CAP_SYS_ADMIN, so callers load it before giving that capability up.
    pub fn install(&self) -> std::io::Result<()> {
        let prog = libc::sock_fprog {
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at a live, correctly sized instruction array; the
        // kernel copies it before returning.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn instructions(&self) -> usize {
        self.program.len()
    }
}

/// The cache file for `profile`: named by the digest of the profile and of the
/// libseccomp that compiles it, so a library upgrade never reuses an old program.
fn cache_path(cache_dir: &Path, profile: &LinuxSeccomp) -> Result<PathBuf> {
    let canonical = serde_json::to_vec(profile)
        .map_err(|e| RuntimeError::Seccomp(format!("serialize profile: {e}")))?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut digest = Sha256::new();
    digest.update(version.as_bytes());
    digest.update([0]);
    digest.update(&canonical);
    Ok(cache_dir.join(format!("{}.bpf", hex::encode(digest.finalize()))))
}

fn store(cache_dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache_dir)
        .map_err(|e| RuntimeError::io(format!("create {}", cache_dir.display()), e))?;
    // Unique per process: several monitors may compile the same profile at once;
    // the rename makes whichever finishes last the cache entry, always whole.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(RuntimeError::io(format!("write {}", path.display()), e));
    }
    Ok(())
}

fn program_from_bytes(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(INSTRUCTION_SIZE)
        || bytes.len() / INSTRUCTION_SIZE > MAX_INSTRUCTIONS
    {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSTRUCTION_SIZE)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

fn filter_flags(profile: &LinuxSeccomp) -> libc::c_ulong {
    profile.flags().iter().flatten().fold(0, |acc, flag| {
        acc | match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Only meaningful with a notify listener, which is never precompiled.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        }
    })
}

fn seccomp_err(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Seccomp(format!("{what}: {e}"))
}

/// Compiles `profile` with libseccomp into a raw BPF program, with the same meaning
/// libcontainer and runc give the OCI fields: rules whose action equals the default
/// are dropped, names the library does not know are skipped (the kernel lacks the
/// call), and several conditions on one argument become separate rules.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    let default_action = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx =
        ScmpFilterContext::new(default_action).map_err(|e| seccomp_err("new filter", e))?;
    // The caller decides about no_new_privs; libseccomp must not set it.
    ctx.set_ctl_nnp(false)
        .map_err(|e| seccomp_err("clear NNP attribute", e))?;
    for &arch in profile.architectures().iter().flatten() {
        ctx.add_arch(architecture(arch))
            .map_err(|e| seccomp_err(&format!("add architecture {arch:?}"), e))?;
    }
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default_action {
            continue;
        }
        let comparisons: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                // For SCMP_CMP_MASKED_EQ the OCI `value` is the mask and `valueTwo`
                // the value the masked argument must equal (runc and libseccomp
                // read them so); every other operator compares against `value`.
                let (op, datum) = match a.op() {
                    LinuxSeccompOperator::ScmpCmpMaskedEq => (
                        ScmpCompareOp::MaskedEqual(a.value()),
                        a.value_two().unwrap_or(0),
                    ),
                    other => (operator(other), a.value()),
                };
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        let mut indexes: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
        indexes.sort_unstable();
        let repeated_index = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let added = if comparisons.is_empty() {
                ctx.add_rule(act, syscall).map(drop)
            } else if repeated_index {
                comparisons.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(act, syscall, std::slice::from_ref(c))
                        .map(drop)
                })
            } else {
                ctx.add_rule_conditional(act, syscall, &comparisons)
                    .map(drop)
            };
            added.map_err(|e| seccomp_err(&format!("rule for {name}"), e))?;
        }
    }
    let mut out = tempfile_in_memory()?;
    ctx.export_bpf(&out)
        .map_err(|e| seccomp_err("export BPF", e))?;
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    out.rewind()
        .and_then(|()| out.read_to_end(&mut bytes))
        .map_err(|e| RuntimeError::io("read compiled seccomp filter", e))?;
    Ok(bytes)
}

/// An anonymous memory file for libseccomp's fd-based export (the in-memory export
/// needs libseccomp 2.6; Debian 12 has 2.5).
fn tempfile_in_memory() -> Result<File> {
    let fd = nix::sys::memfd::memfd_create(
        c"berth-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| RuntimeError::io("memfd_create", e.into()))?;
    Ok(File::from(fd))
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(u16::try_from(errno).map_err(|_| seccomp_err("trace value", errno))?)
        }
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(RuntimeError::Seccomp(
                "notify actions cannot be precompiled".into(),
            ))
        }
    })
}

/// The comparison for every operator but SCMP_CMP_MASKED_EQ, whose mask
/// travels in the operator (see [`compile`]).
fn operator(op: LinuxSeccompOperator) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // Handled by the caller; an all-ones mask keeps the meaning if one slips by.
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(u64::MAX),
    }
}

fn architecture(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker_default() -> LinuxSeccomp {
        let caps: Vec<String> = crate::caps::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect();
        let value = crate::seccomp::docker_default(&caps).expect("profile");
        serde_json::from_value(value).expect("OCI seccomp object")
    }

    #[test]
    fn docker_profile_compiles_to_a_cached_program() {
        let dir = std::env::temp_dir().join(format!("berth-bpf-{}", std::process::id()));
        let profile = docker_default();
        assert!(can_precompile(&profile));
        let first = load_or_compile(&dir, &profile).expect("compile");
        assert!(first.instructions() > 100, "{}", first.instructions());
        let entries: Vec<_> = std::fs::read_dir(&dir).expect("cache dir").collect();
        assert_eq!(entries.len(), 1, "one cache file, no temp left");
        let again = load_or_compile(&dir, &profile).expect("from cache");
        assert_eq!(first.instructions(), again.instructions());
        // A damaged entry is recompiled, not loaded.
        let path = cache_path(&dir, &profile).expect("path");
        std::fs::write(&path, b"garbage").expect("damage");
        let repaired = load_or_compile(&dir, &profile).expect("recompiled");
        assert_eq!(first.instructions(), repaired.instructions());
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn notify_profiles_are_left_to_libcontainer() {
        let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .expect("profile");
        assert!(!can_precompile(&profile));
    }

    #[test]
    fn malformed_programs_are_refused() {
        assert!(program_from_bytes(b"").is_none());
        assert!(program_from_bytes(&[0u8; 7]).is_none());
        assert!(program_from_bytes(&vec![0u8; 8 * (MAX_INSTRUCTIONS + 1)]).is_none());
        assert_eq!(program_from_bytes(&[0u8; 16]).map(|p| p.len()), Some(2));
    }
}
