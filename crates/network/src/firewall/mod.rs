//! The daemon's firewall: NAT, isolation between networks and published ports.
//!
//! Two backends keep the same rules: [`nft::Nftables`] (one nftables table per
//! daemon, the default) and [`iptables::Iptables`] (chains named after that table,
//! for hosts without `nft`). Both touch nothing they did not create and change
//! state in atomic batches.

use std::fmt;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::NetworkSpec;

mod forward_accept;
pub mod iptables;
pub mod nft;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `"tcp"` or `"udp"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = Error;

    /// Parses `tcp` / `udp` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(Error::invalid("protocol", s, "expected tcp or udp")),
        }
    }
}

/// One published port (`-p [host_ip:]host_port:container_port[/proto]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// Transport protocol.
    pub proto: Proto,
    /// Host address to publish on; `None` (or `0.0.0.0`) means every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port (non-zero; resolve `-p 80` with [`crate::ephemeral_port`] first).
    pub host_port: u16,
    /// The container's address on the network carrying the traffic.
    pub container_ip: Ipv4Addr,
    /// Port inside the container (non-zero).
    pub container_port: u16,
}

impl PortMapping {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.host_port == 0 {
            return Err(Error::invalid("host port", "0", "must be non-zero"));
        }
        if self.container_port == 0 {
            return Err(Error::invalid("container port", "0", "must be non-zero"));
        }
        if self.container_ip.is_unspecified()
            || self.container_ip.is_broadcast()
            || self.container_ip.is_multicast()
        {
            return Err(Error::invalid(
                "container address",
                self.container_ip.to_string(),
                "must be a unicast address",
            ));
        }
        Ok(())
    }
}

/// Which tool programs the kernel's packet filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `nft`, one table per daemon.
    Nftables,
    /// `iptables` / `iptables-restore`, chains prefixed with the table name.
    Iptables,
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nftables" | "nft" => Ok(Backend::Nftables),
            "iptables" => Ok(Backend::Iptables),
            _ => Err(Error::invalid(
                "firewall backend",
                s,
                "expected nftables or iptables",
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        })
    }
}

/// Whether `binary --version` runs.
fn runs(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Backend {
    /// nftables where `nft` is installed, iptables where only `iptables` is,
    /// None where neither is.
    pub fn detect() -> Option<Backend> {
        if runs("nft") {
            Some(Backend::Nftables)
        } else if runs("iptables") {
            Some(Backend::Iptables)
        } else {
            None
        }
    }

    /// Whether this backend's tool can be run here.
    pub fn available(&self) -> bool {
        match self {
            Backend::Nftables => runs("nft"),
            Backend::Iptables => runs("iptables") && runs("iptables-restore"),
        }
    }

    /// This backend's tool can be run here, or the error that says which
    /// package to install.
    pub fn require(&self) -> crate::Result<()> {
        match self {
            _ if self.available() => Ok(()),
            Backend::Nftables => Err(crate::Error::NftMissing),
            Backend::Iptables => Err(crate::Error::IptablesMissing),
        }
    }
}

/// The firewall of one daemon, named by `table` (`berth`, `berth_<bridge>`).
#[derive(Debug)]
pub enum Firewall {
    /// Rules in nftables table `ip <table>`.
    Nftables(nft::Nftables),
    /// Rules in iptables chains `<table>-*`.
    Iptables(iptables::Iptables),
}

macro_rules! each_backend {
    ($self:ident, $fw:ident => $call:expr) => {
        match $self {
            Firewall::Nftables($fw) => $call,
            Firewall::Iptables($fw) => $call,
        }
    };
}

impl Firewall {
    /// A handle on the daemon's rules; nothing changes until [`Firewall::init`].
    /// `table` must match `[a-zA-Z][a-zA-Z0-9_]{0,63}` (shorter for iptables, whose
    /// chain names are limited to 28 characters).
    pub fn new(table: &str, backend: Backend) -> Result<Firewall> {
        Ok(match backend {
            Backend::Nftables => Firewall::Nftables(nft::Nftables::new(table)?),
            Backend::Iptables => Firewall::Iptables(iptables::Iptables::new(table)?),
        })
    }

    /// Which backend holds the rules.
    pub fn backend(&self) -> Backend {
        match self {
            Firewall::Nftables(_) => Backend::Nftables,
            Firewall::Iptables(_) => Backend::Iptables,
        }
    }

    /// Creates the daemon's base objects if missing and rewrites their dispatch
    /// rules; keeps network and port state. Idempotent.
    pub fn init(&self) -> Result<()> {
        each_backend!(self, fw => fw.init())
    }

    /// Removes everything this daemon's firewall holds, and nothing else.
    pub fn teardown(&self) -> Result<()> {
        each_backend!(self, fw => fw.teardown())
    }

    /// NAT, isolation and filtering rules of a network. Idempotent.
    pub fn add_network(&self, spec: &NetworkSpec) -> Result<()> {
        each_backend!(self, fw => fw.add_network(spec))
    }

    /// Removes exactly what [`Firewall::add_network`] created. Idempotent.
    pub fn remove_network(&self, spec: &NetworkSpec) -> Result<()> {
        each_backend!(self, fw => fw.remove_network(spec))
    }

    /// Publishes `mappings` for `owner` (a container id, hex), replacing what
    /// that owner had published before.
    pub fn publish(&self, owner: &str, mappings: &[PortMapping]) -> Result<()> {
        each_backend!(self, fw => fw.publish(owner, mappings))
    }

    /// Removes every port published by `owner`. Idempotent.
    pub fn unpublish(&self, owner: &str) -> Result<()> {
        each_backend!(self, fw => fw.unpublish(owner))
    }

    /// Owners that currently have published ports (lowercase).
    pub fn published_owners(&self) -> Result<Vec<String>> {
        each_backend!(self, fw => fw.published_owners())
    }

    /// Removes the published ports of every owner not in `keep_owners`; returns
    /// the owners removed.
    pub fn reconcile(
        &self,
        keep_owners: &std::collections::HashSet<String>,
    ) -> Result<Vec<String>> {
        each_backend!(self, fw => fw.reconcile(keep_owners))
    }
}

/// The network the backends' unit tests write rules for.
#[cfg(test)]
pub(crate) fn test_spec(internal: bool) -> NetworkSpec {
    NetworkSpec {
        id: "abc".into(),
        name: "net1".into(),
        bridge: "br-abc.1".into(),
        subnet: "10.77.0.0/16".parse().expect("test subnet"),
        gateway: Ipv4Addr::new(10, 77, 0, 1),
        internal,
    }
}
