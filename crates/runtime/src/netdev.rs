//! Network devices inside a container's namespace.
//!
//! libcontainer creates the network namespace but leaves `lo` down; programs expect
//! 127.0.0.1 to work, so the monitor brings it up before the container starts.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::sched::{setns, CloneFlags};

use crate::{Result, RuntimeError};

/// Brings `lo` up in the network namespace of `pid`. The calling thread enters the
/// namespace and returns to its own; callers must be single-threaded or accept that.
pub fn loopback_up(pid: i32) -> Result<()> {
    let own = File::open("/proc/self/ns/net")
        .map_err(|e| RuntimeError::io("open /proc/self/ns/net", e))?;
    let target_path = format!("/proc/{pid}/ns/net");
    let target =
        File::open(&target_path).map_err(|e| RuntimeError::io(format!("open {target_path}"), e))?;
    setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(|e| RuntimeError::io(format!("setns {target_path}"), e.into()))?;
    let result = set_up("lo");
    setns(&own, CloneFlags::CLONE_NEWNET)
        .map_err(|e| RuntimeError::io("setns back to own netns", e.into()))?;
    result
}

fn set_up(name: &str) -> Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed, correctly sized ifreq; the
    // interface name is shorter than IFNAMSIZ.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(RuntimeError::io(
                "socket for ioctl",
                std::io::Error::last_os_error(),
            ));
        }
        let sock = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(RuntimeError::io(
                format!("SIOCGIFFLAGS {name}"),
                std::io::Error::last_os_error(),
            ));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(RuntimeError::io(
                format!("SIOCSIFFLAGS {name}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}
