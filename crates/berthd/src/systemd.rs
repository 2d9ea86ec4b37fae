//! What berthd does for systemd: serve the sockets `berthd.socket` passes
//! (`-H fd://`, the `LISTEN_PID`/`LISTEN_FDS` protocol) and report readiness
//! and shutdown on `NOTIFY_SOCKET` (`Type=notify`), as dockerd does.

use std::os::fd::{FromRawFd, RawFd};

use crate::listen::Listener;

/// systemd's first passed descriptor (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: RawFd = 3;

/// Sends `state` (`READY=1`, `STOPPING=1`) to the service manager, when one
/// asked for it; a path or an abstract (`@name`) datagram socket.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let target = target.to_string_lossy();
        if let Some(name) = target.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), &*target)?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "could not notify the service manager");
    }
}

/// The sockets systemd passed (`LISTEN_PID`, `LISTEN_FDS`), as listeners. The
/// variables are removed so that nothing berthd starts inherits them.
pub fn listeners(which: Option<RawFd>) -> Result<Vec<Listener>, String> {
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: RawFd = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !pid_matches || count <= 0 {
        return Err(
            "fd://: no sockets were passed (LISTEN_PID/LISTEN_FDS unset: start berthd from \
             berthd.socket)"
                .into(),
        );
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let fds: Vec<RawFd> = (LISTEN_FDS_START..LISTEN_FDS_START + count).collect();
    let chosen: Vec<RawFd> = match which {
        None => fds,
        Some(fd) if fds.contains(&fd) => vec![fd],
        Some(fd) => return Err(format!("fd://{fd}: systemd passed descriptors {fds:?}")),
    };
    chosen.into_iter().map(adopt_fd).collect()
}

fn adopt_fd(fd: RawFd) -> Result<Listener, String> {
    // SAFETY: getsockname and fcntl on a descriptor number; a descriptor that is
    // not a socket fails getsockname and is refused before anything owns it.
    let family = unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            return Err(format!(
                "fd://{fd}: not a socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        addr.ss_family as libc::c_int
    };
    let nonblocking = |e: std::io::Error| format!("fd://{fd}: {e}");
    match family {
        libc::AF_UNIX => {
            // SAFETY: systemd handed this listening socket to us alone.
            let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
            std_listener.set_nonblocking(true).map_err(nonblocking)?;
            Ok(Listener::Unix {
                listener: tokio::net::UnixListener::from_std(std_listener).map_err(nonblocking)?,
                owned_path: None,
            })
        }
        libc::AF_INET | libc::AF_INET6 => {
            // SAFETY: as above.
            let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            std_listener.set_nonblocking(true).map_err(nonblocking)?;
            Ok(Listener::Tcp {
                listener: tokio::net::TcpListener::from_std(std_listener).map_err(nonblocking)?,
                tls: None,
            })
        }
        other => Err(format!("fd://{fd}: unsupported socket family {other}")),
    }
}
