//! berth on a pure cgroup v2 host.
//!
//! The machines berth is developed and tested on mount the cgroup v1 controllers
//! (the hybrid layout), and the layout is a boot-time choice of the kernel, so this
//! test boots one: Debian's cloud kernel under qemu (KVM when the host offers it,
//! software emulation otherwise) with `cgroup_no_v1=all`, from an initramfs holding
//! the freshly built berthd, berth and berth-monitor, busybox and the busybox image.
//! `tests/vm/init.sh` runs as the VM's PID 1: it starts berthd, runs containers with
//! limits and prints what the kernel shows; this side asserts on those lines.
//!
//! The kernel package is fetched once with `apt-get download` (Debian's mirror, as
//! for every other package the tests use) and kept under target/vm-kernel.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INIT_SCRIPT: &str = include_str!("vm/init.sh");
const KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";
const BOOT_LIMIT: Duration = Duration::from_secs(600);

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The kernel image and its overlay module, from Debian's cloud kernel package.
fn vm_kernel() -> (PathBuf, PathBuf) {
    let dir = common::workspace_root().join("target/vm-kernel");
    let find = |dir: &Path| -> Option<(PathBuf, PathBuf)> {
        let boot = std::fs::read_dir(dir.join("boot")).ok()?;
        let vmlinuz = boot.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })?;
        let version = vmlinuz
            .file_name()?
            .to_str()?
            .strip_prefix("vmlinuz-")?
            .to_string();
        let overlay = dir
            .join("lib/modules")
            .join(version)
            .join("kernel/fs/overlayfs/overlay.ko");
        overlay.exists().then_some((vmlinuz, overlay))
    };
    if let Some(found) = find(&dir) {
        return found;
    }
    // The metapackage names the current kernel package; download that one and
    // unpack it without installing (no boot loader or initramfs hooks run).
    let depends = run(Command::new("apt-cache").args(["depends", "--important", KERNEL_PACKAGE]));
    let image = depends
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no kernel package behind {KERNEL_PACKAGE}: {depends}"))
        .to_string();
    let download = dir.with_extension("download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download).expect("create download dir");
    run(Command::new("apt-get")
        .args(["download", "-q", &image])
        .current_dir(&download));
    let deb = std::fs::read_dir(&download)
        .expect("download dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("downloaded kernel .deb");
    let unpacked = dir.with_extension("unpack");
    let _ = std::fs::remove_dir_all(&unpacked);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&unpacked, &dir).expect("keep the unpacked kernel");
    let _ = std::fs::remove_dir_all(&download);
    find(&dir).expect("kernel image and overlay.ko in the package")
}

/// The shared libraries a dynamically linked binary loads, as ldd names them.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    run(Command::new("ldd").arg(binary))
        .lines()
        .filter_map(|l| {
            let path = l.split_whitespace().find(|w| w.starts_with('/'))?;
            Some(PathBuf::from(path))
        })
        .collect()
}

/// An initramfs in the kernel's "newc" cpio format, uncompressed: directories,
/// regular files and symlinks from `entries` (path inside, source on the host).
struct Cpio {
    out: BufWriter<File>,
    inode: u32,
}

impl Cpio {
    fn create(path: &Path) -> Cpio {
        Cpio {
            out: BufWriter::new(File::create(path).expect("create initramfs")),
            inode: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.inode += 1;
        let w = &mut self.out;
        w.write_all(header.as_bytes()).expect("write initramfs");
        w.write_all(name.as_bytes()).expect("write initramfs");
        w.write_all(&[0]).expect("write initramfs");
        let pad = |n: usize| (4 - n % 4) % 4;
        w.write_all(&[0; 3][..pad(110 + name.len() + 1)])
            .expect("write initramfs");
        w.write_all(data).expect("write initramfs");
        w.write_all(&[0; 3][..pad(data.len())])
            .expect("write initramfs");
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    fn file(&mut self, name: &str, source: &Path) {
        let data = std::fs::read(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        let mode = std::fs::metadata(source)
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777;
        self.entry(name, 0o100000 | mode, &data);
    }

    fn bytes(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }

    fn finish(mut self) {
        self.entry("TRAILER!!!", 0, &[]);
        self.out.flush().expect("flush initramfs");
    }
}

fn build_initramfs(path: &Path, overlay_module: &Path, work: &Path) {
    let bins = common::bin_dir();
    let binaries = ["berthd", "berth", "berth-monitor"].map(|b| bins.join(b));
    let mut libraries: Vec<PathBuf> = binaries.iter().flat_map(|b| shared_libraries(b)).collect();
    libraries.sort();
    libraries.dedup();
    let busybox = Path::new("/bin/busybox");
    assert!(
        std::fs::metadata(busybox).is_ok_and(|m| m.size() > 0),
        "busybox-static is needed"
    );
    let image = work.join("busybox.tar");
    std::fs::copy(common::busybox_tar(), &image).expect("copy busybox image");

    let mut cpio = Cpio::create(path);
    for dir in [
        "bin",
        "etc",
        "lib",
        "lib64",
        "usr",
        "usr/local",
        "usr/local/bin",
        "payload",
    ] {
        cpio.dir(dir);
    }
    cpio.bytes("init", 0o755, INIT_SCRIPT.as_bytes());
    cpio.file("bin/busybox", busybox);
    cpio.file("lib/overlay.ko", overlay_module);
    for b in &binaries {
        let name = b.file_name().and_then(|n| n.to_str()).expect("binary name");
        cpio.file(&format!("usr/local/bin/{name}"), b);
    }
    let mut made = std::collections::BTreeSet::new();
    for lib in &libraries {
        let inside = lib.to_str().expect("library path").trim_start_matches('/');
        // Parent directories first; cpio entries do not create them.
        let mut prefix = String::new();
        for part in Path::new(inside)
            .parent()
            .into_iter()
            .flat_map(|p| p.iter())
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part.to_str().expect("utf-8 path"));
            if made.insert(prefix.clone()) && !["lib", "lib64", "usr"].contains(&prefix.as_str()) {
                cpio.dir(&prefix);
            }
        }
        cpio.file(
            inside,
            &std::fs::canonicalize(lib).expect("resolve library"),
        );
    }
    cpio.file("payload/busybox.tar", &image);
    cpio.finish();
}

/// Boots the VM and returns everything it printed on its serial console.
fn boot(kernel: &Path, initramfs: &Path) -> String {
    let mut cmd = Command::new("qemu-system-x86_64");
    // Software emulation: nested KVM on the cloud VMs berth is tested on fails
    // in the guest's early boot (an instruction KVM cannot emulate), and TCG
    // gives the same result everywhere.
    cmd.args(["-accel", "tcg,thread=multi"])
        .args(["-cpu", "max", "-smp", "2", "-m", "2048"])
        .args(["-nodefaults", "-no-reboot", "-display", "none", "-nic", "none"])
        .args(["-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args([
            "-append",
            "console=ttyS0 panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 rdinit=/init",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("start qemu-system-x86_64 (Debian's qemu-system-x86)");
    let mut stdout = child.stdout.take().expect("qemu stdout");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait for qemu").is_some() {
            break;
        }
        if started.elapsed() > BOOT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let console = reader.join().expect("console reader");
    format!("{console}\n---- qemu stderr\n{stderr}")
}

#[test]
fn pure_cgroup_v2_host_runs_and_limits_containers() {
    let (kernel, overlay) = vm_kernel();
    let work = tempfile::tempdir().expect("work dir");
    let initramfs = work.path().join("initramfs.cpio");
    build_initramfs(&initramfs, &overlay, work.path());
    let console = boot(&kernel, &initramfs);
    assert!(
        console.contains("BERTH-VM-DONE"),
        "the VM did not finish its checks:\n{console}"
    );
    let checks: HashMap<&str, &str> = console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("CHECK "))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    let expect = |key: &str, want: &str| {
        assert_eq!(
            checks.get(key).copied(),
            Some(want),
            "{key} in the cgroup v2 VM:\n{console}"
        );
    };
    // The layout really is pure v2.
    expect("fs-magic", "63677270"); // CGROUP2_SUPER_MAGIC
    expect("v1-hierarchies", "0");
    expect("imported", "0");
    // Life cycle.
    expect("hello", "hello");
    expect("exit-code", "3");
    expect("own-cgroup", "0::/");
    // Limits, as the v2 files spell them. Shares become a weight on the curve
    // crun and runc 1.3 use (1024 -> 100, 512 -> 59), not the old linear one.
    expect("memory.max", "33554432");
    expect("cpu.max", "50000 100000");
    expect("cpu.weight", "59");
    expect("pids.max", "32");
    expect("cgroupfs-writes", "none");
    expect("pids.max-after", "32");
    expect("init-in-cgroup", "1");
    let short_id = checks.get("short-id").copied().unwrap_or("?");
    expect("exec", &format!("{short_id}-sleep 300 "));
    expect("paused-status", "paused");
    expect("frozen", "1");
    expect("thawed", "0");
    expect("top", "1");
    let stats = checks.get("stats").copied().unwrap_or_default();
    assert!(
        stats.contains("32MiB") && !stats.contains(" 0B /"),
        "stats read memory.current and memory.max: {stats}"
    );
    expect("stopped-exit", "137");
    expect("cgroup-removed", "gone");
    // OOM kill and fork bomb.
    expect("oom-exit", "137");
    expect("oom-killed", "true");
    expect("bomb-hit-limit", "yes");
    expect("bomb-within-limit", "yes");
    expect("after-bomb", "alive");
    // kill -9 of berthd, adoption, and nothing left behind.
    expect("adopted", "running");
    expect("leftover-cgroups", "0");
}
