//! Error type of the crate.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `berth-network`, with enough context
/// (interface, path, nft operation) to be shown to a user as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied value (interface name, owner id, prefix, ...) is invalid.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What kind of value it is ("interface name", "owner", ...).
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The requested address is taken (docker's exact wording).
    #[error("Address already in use")]
    AddressInUse {
        /// The address that was requested.
        ip: Ipv4Addr,
    },
    /// The requested address does not belong to the network's subnet.
    #[error("no configured subnet or ip-range contain the IP address {ip}")]
    AddressOutOfRange {
        /// The address that was requested.
        ip: Ipv4Addr,
    },
    /// Every host address of the subnet is in use (docker's exact wording).
    #[error("no available IPv4 addresses on this network's address pools")]
    PoolExhausted,
    /// A netlink request failed.
    #[error("netlink: {op} {target}: {source}")]
    Netlink {
        /// The operation, e.g. "create veth".
        op: &'static str,
        /// The interface / address / route concerned.
        target: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A network interface that must exist does not.
    #[error("network interface {0:?} not found")]
    LinkNotFound(String),
    /// A file-system or sysctl operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation, e.g. "bind-mount netns".
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The network namespace file already holds a namespace.
    #[error("network namespace {} already exists", .0.display())]
    NetnsExists(PathBuf),
    /// The `nft` binary is not installed.
    #[error("nft (nftables) binary not found in PATH: install the nftables package")]
    NftMissing,
    /// An `nft` invocation failed.
    #[error("nftables {op} (table {table}): {message}")]
    Nft {
        /// The firewall operation, e.g. "publish".
        op: String,
        /// The nftables table concerned.
        table: String,
        /// nft's stderr or the spawn error.
        message: String,
    },
    /// The `iptables` tools are not installed.
    #[error("iptables binaries not found in PATH: install the iptables package")]
    IptablesMissing,
    /// An `iptables` or `iptables-restore` invocation failed.
    #[error("iptables {op} (chains {prefix}-*): {message}")]
    Iptables {
        /// The firewall operation, e.g. "publish".
        op: String,
        /// The chain name prefix of the daemon.
        prefix: String,
        /// The tool's stderr or the spawn error.
        message: String,
    },
    /// No free host port was found in the ephemeral range.
    #[error("no free {proto} port in range {low}-{high}")]
    NoFreePort {
        /// "tcp" or "udp".
        proto: &'static str,
        /// Lower bound of the range searched.
        low: u16,
        /// Upper bound of the range searched.
        high: u16,
    },
    /// The thread that switches into a new namespace panicked. The panic's own
    /// message went to stderr through the panic hook, under the thread's name
    /// (`berth-netns`).
    #[error("the helper thread creating network namespace {} panicked", .path.display())]
    HelperPanicked {
        /// The namespace being created.
        path: PathBuf,
    },
}

impl Error {
    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn netlink(op: &'static str, target: impl Into<String>, source: io::Error) -> Self {
        Error::Netlink {
            op,
            target: target.into(),
            source,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
