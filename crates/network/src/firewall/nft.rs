//! The nftables backend: NAT, network isolation and port publishing, all
//! inside one table owned by the daemon.
//!
//! Layout of `table ip <name>` (everything else on the host is untouched):
//!
//! ```text
//! set bridges   { type ifname }                       # every managed bridge
//! map fwd_out   { type ifname : verdict }             # bridge -> jump fwd-out-<bridge>
//! map fwd_in    { type ifname : verdict }             # bridge -> jump fwd-in-<bridge>
//! map masq      { type ipv4_addr : verdict; flags interval }  # subnet -> jump nat-<bridge>
//! chain prerouting  (nat, dstnat)   fib daddr type local jump ports
//! chain output      (nat, -100)     fib daddr type local jump ports
//! chain postrouting (nat, srcnat)   ip saddr 127.0.0.0/8 oifname @bridges masquerade
//!                                   ip saddr vmap @masq
//! chain forward     (filter, policy accept)  oifname vmap @fwd_out
//!                                            iifname vmap @fwd_in
//! chain ports                        jump pub-<owner>   (one rule per owner)
//! chain pub-<owner>                  [ip daddr H] tcp|udp dport P dnat to C:CP
//! chain fwd-out-<br>   traffic entering the bridge:
//!     iifname <br> accept; ct state established,related accept;
//!     iifname @bridges drop (isolation); ct status dnat accept (published);
//!     drop   (internal: only the first rule, then drop)
//! chain fwd-in-<br>    traffic leaving the bridge: accept (internal: drop)
//! chain nat-<br>       oifname != <br> masquerade; ct status dnat oifname <br> masquerade (hairpin)
//! ```
//!
//! Per-network objects are map elements and chains, so adding and removing a
//! network is exact without listing rule handles. Per-owner port rules live
//! in their own chain, reached through one `jump` rule whose handle is looked
//! up at removal time. Each change is a single atomic `nft -f -` transaction.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::PortMapping;
use crate::error::{Error, Result};
use crate::validate::{validate_owner, validate_table_name};
use crate::NetworkSpec;

/// The nftables table of one daemon; see the module documentation for the
/// layout. Methods are serialized per instance; different instances (tables)
/// are independent.
#[derive(Debug)]
pub struct Nftables {
    table: String,
    lock: Mutex<()>,
}

/// Owner chains and `ports` jump rules found in a listing.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listing {
    owner_chains: Vec<String>,
    /// (owner, rule handle) of `jump pub-<owner>` rules in chain `ports`.
    jumps: Vec<(String, u64)>,
}

impl Nftables {
    /// A handle on table `ip <table>`; nothing is changed until [`Nftables::init`].
    /// `table` must match `[a-zA-Z][a-zA-Z0-9_]{0,63}`.
    pub fn new(table: &str) -> Result<Self> {
        validate_table_name(table)?;
        Ok(Nftables {
            table: table.to_string(),
            lock: Mutex::new(()),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_nft(&self, op: &str, args: &[&str], script: Option<&str>) -> Result<String> {
        let fail = |message: String| Error::Nft {
            op: op.to_string(),
            table: self.table.clone(),
            message,
        };
        let mut cmd = Command::new("nft");
        cmd.args(args)
            .stdin(if script.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NftMissing),
            Err(e) => return Err(fail(format!("spawning nft: {e}"))),
        };
        if let Some(script) = script {
            tracing::trace!(table = %self.table, op, "nft script:\n{script}");
            if let Some(mut stdin) = child.stdin.take() {
                if let Err(e) = stdin.write_all(script.as_bytes()) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("writing nft script: {e}")));
                }
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for nft: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(fail(if stderr.is_empty() {
                format!("nft exited with {}", out.status)
            } else {
                stderr
            }));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn apply(&self, op: &str, script: &str) -> Result<()> {
        self.run_nft(op, &["-f", "-"], Some(script)).map(|_| ())
    }

    /// Creates the table, sets and base chains if missing and (re)writes the
    /// dispatch rules of the base chains. Idempotent; keeps existing network
    /// and port state.
    pub fn init(&self) -> Result<()> {
        let _g = self.guard();
        self.apply("init", &self.init_script())?;
        tracing::debug!(table = %self.table, "nftables table initialized");
        Ok(())
    }

    /// Deletes the whole table (and nothing else). Idempotent.
    pub fn teardown(&self) -> Result<()> {
        let _g = self.guard();
        let t = &self.table;
        self.apply(
            "teardown",
            &format!("add table ip {t}\ndelete table ip {t}\n"),
        )?;
        super::forward_accept::remove(t, None)
    }

    /// Adds the NAT, isolation and filtering rules of a network. Idempotent
    /// for an unchanged spec; to change a network, remove it first.
    pub fn add_network(&self, spec: &NetworkSpec) -> Result<()> {
        spec.validate()?;
        let _g = self.guard();
        self.apply(
            &format!("add network {}", spec.bridge),
            &self.add_network_script(spec),
        )?;
        super::forward_accept::accept(&self.table, &spec.bridge)
    }

    /// Removes exactly the objects [`Nftables::add_network`] created for this
    /// network. Idempotent.
    pub fn remove_network(&self, spec: &NetworkSpec) -> Result<()> {
        spec.validate()?;
        let _g = self.guard();
        self.apply(
            &format!("remove network {}", spec.bridge),
            &self.remove_network_script(spec),
        )?;
        super::forward_accept::remove(&self.table, Some(&spec.bridge))
    }

    /// Publishes `mappings` for `owner` (a container id, hex), replacing
    /// whatever that owner had published before.
    pub fn publish(&self, owner: &str, mappings: &[PortMapping]) -> Result<()> {
        validate_owner(owner)?;
        for m in mappings {
            m.validate()?;
        }
        let owner = owner.to_ascii_lowercase();
        let _g = self.guard();
        let listing = self.listing("publish")?;
        let handles = listing.jumps_of(&owner);
        self.apply(
            &format!("publish {owner}"),
            &self.publish_script(&owner, mappings, &handles),
        )?;
        tracing::debug!(table = %self.table, owner, ports = mappings.len(), "published ports");
        Ok(())
    }

    /// Removes every port published by `owner`. Idempotent.
    pub fn unpublish(&self, owner: &str) -> Result<()> {
        validate_owner(owner)?;
        let owner = owner.to_ascii_lowercase();
        let _g = self.guard();
        let listing = self.listing("unpublish")?;
        let handles = listing.jumps_of(&owner);
        if handles.is_empty() && !listing.owner_chains.contains(&owner) {
            return Ok(());
        }
        self.apply(
            &format!("unpublish {owner}"),
            &self.unpublish_script(&owner, &handles),
        )
    }

    /// Owners that currently have published ports (lowercase).
    pub fn published_owners(&self) -> Result<Vec<String>> {
        let _g = self.guard();
        Ok(self.listing("list owners")?.owner_chains)
    }

    /// Removes the published ports of every owner not in `keep_owners`
    /// (compared case-insensitively), e.g. after a daemon restart. Returns the
    /// owners removed.
    pub fn reconcile(&self, keep_owners: &HashSet<String>) -> Result<Vec<String>> {
        let keep: HashSet<String> = keep_owners.iter().map(|o| o.to_ascii_lowercase()).collect();
        let _g = self.guard();
        let listing = self.listing("reconcile")?;
        let mut script = String::new();
        let mut removed = Vec::new();
        let mut stale: Vec<&String> = listing.owner_chains.iter().collect();
        for (o, _) in &listing.jumps {
            if !stale.contains(&o) {
                stale.push(o);
            }
        }
        for owner in stale {
            if keep.contains(owner) {
                continue;
            }
            let handles = listing.jumps_of(owner);
            script.push_str(&self.unpublish_script(owner, &handles));
            removed.push(owner.clone());
        }
        if !script.is_empty() {
            self.apply("reconcile", &script)?;
            tracing::info!(table = %self.table, ?removed, "removed stale published ports");
        }
        Ok(removed)
    }

    /// Lists the table with handles; an absent table yields an empty listing.
    fn listing(&self, op: &str) -> Result<Listing> {
        match self.run_nft(op, &["-a", "list", "table", "ip", &self.table], None) {
            Ok(text) => Ok(parse_listing(&text)),
            Err(Error::Nft { message, .. }) if message.contains("No such file or directory") => {
                Ok(Listing::default())
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn init_script(&self) -> String {
        let t = &self.table;
        format!(
            "add table ip {t}
add set ip {t} bridges {{ type ifname; }}
add map ip {t} fwd_out {{ type ifname : verdict; }}
add map ip {t} fwd_in {{ type ifname : verdict; }}
add map ip {t} masq {{ type ipv4_addr : verdict; flags interval; }}
add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain ip {t} output {{ type nat hook output priority -100; policy accept; }}
add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain ip {t} forward {{ type filter hook forward priority filter; policy accept; }}
add chain ip {t} ports
flush chain ip {t} prerouting
flush chain ip {t} output
flush chain ip {t} postrouting
flush chain ip {t} forward
add rule ip {t} prerouting fib daddr type local jump ports
add rule ip {t} output fib daddr type local jump ports
add rule ip {t} postrouting ip saddr 127.0.0.0/8 oifname @bridges masquerade
add rule ip {t} postrouting ip saddr vmap @masq
add rule ip {t} forward oifname vmap @fwd_out
add rule ip {t} forward iifname vmap @fwd_in
"
        )
    }

    pub(crate) fn add_network_script(&self, spec: &NetworkSpec) -> String {
        let t = &self.table;
        let br = &spec.bridge;
        let subnet = spec.subnet.trunc();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "add chain ip {t} fwd-out-{br}\nflush chain ip {t} fwd-out-{br}"
        );
        let _ = writeln!(s, "add rule ip {t} fwd-out-{br} iifname \"{br}\" accept");
        if !spec.internal {
            let _ = writeln!(
                s,
                "add rule ip {t} fwd-out-{br} ct state established,related accept"
            );
            let _ = writeln!(s, "add rule ip {t} fwd-out-{br} iifname @bridges drop");
            let _ = writeln!(s, "add rule ip {t} fwd-out-{br} ct status dnat accept");
        }
        let _ = writeln!(s, "add rule ip {t} fwd-out-{br} drop");
        let _ = writeln!(
            s,
            "add chain ip {t} fwd-in-{br}\nflush chain ip {t} fwd-in-{br}"
        );
        let _ = writeln!(
            s,
            "add rule ip {t} fwd-in-{br} {}",
            if spec.internal { "drop" } else { "accept" }
        );
        let _ = writeln!(s, "add element ip {t} bridges {{ \"{br}\" }}");
        let _ = writeln!(
            s,
            "add element ip {t} fwd_out {{ \"{br}\" : jump fwd-out-{br} }}"
        );
        let _ = writeln!(
            s,
            "add element ip {t} fwd_in {{ \"{br}\" : jump fwd-in-{br} }}"
        );
        if !spec.internal {
            let _ = writeln!(s, "add chain ip {t} nat-{br}\nflush chain ip {t} nat-{br}");
            let _ = writeln!(s, "add rule ip {t} nat-{br} oifname != \"{br}\" masquerade");
            let _ = writeln!(
                s,
                "add rule ip {t} nat-{br} ct status dnat oifname \"{br}\" masquerade"
            );
            let _ = writeln!(s, "add element ip {t} masq {{ {subnet} : jump nat-{br} }}");
        }
        s
    }

    pub(crate) fn remove_network_script(&self, spec: &NetworkSpec) -> String {
        let t = &self.table;
        let br = &spec.bridge;
        let subnet = spec.subnet.trunc();
        // "add" first so each "delete" has something to delete: idempotent in
        // one transaction without listing.
        format!(
            "add chain ip {t} fwd-out-{br}
add chain ip {t} fwd-in-{br}
add chain ip {t} nat-{br}
add element ip {t} bridges {{ \"{br}\" }}
add element ip {t} fwd_out {{ \"{br}\" : jump fwd-out-{br} }}
add element ip {t} fwd_in {{ \"{br}\" : jump fwd-in-{br} }}
add element ip {t} masq {{ {subnet} : jump nat-{br} }}
delete element ip {t} masq {{ {subnet} }}
delete element ip {t} fwd_out {{ \"{br}\" }}
delete element ip {t} fwd_in {{ \"{br}\" }}
delete element ip {t} bridges {{ \"{br}\" }}
flush chain ip {t} fwd-out-{br}
flush chain ip {t} fwd-in-{br}
flush chain ip {t} nat-{br}
delete chain ip {t} fwd-out-{br}
delete chain ip {t} fwd-in-{br}
delete chain ip {t} nat-{br}
"
        )
    }

    pub(crate) fn publish_script(
        &self,
        owner: &str,
        mappings: &[PortMapping],
        old_jumps: &[u64],
    ) -> String {
        let t = &self.table;
        let mut s = String::new();
        for h in old_jumps {
            let _ = writeln!(s, "delete rule ip {t} ports handle {h}");
        }
        let _ = writeln!(
            s,
            "add chain ip {t} pub-{owner}\nflush chain ip {t} pub-{owner}"
        );
        if mappings.is_empty() {
            let _ = writeln!(s, "delete chain ip {t} pub-{owner}");
            return s;
        }
        for m in mappings {
            let _ = writeln!(s, "add rule ip {t} pub-{owner} {}", nft_rule(m));
        }
        let _ = writeln!(s, "add rule ip {t} ports jump pub-{owner}");
        s
    }

    pub(crate) fn unpublish_script(&self, owner: &str, jumps: &[u64]) -> String {
        let t = &self.table;
        let mut s = String::new();
        for h in jumps {
            let _ = writeln!(s, "delete rule ip {t} ports handle {h}");
        }
        let _ = writeln!(
            s,
            "add chain ip {t} pub-{owner}\nflush chain ip {t} pub-{owner}\ndelete chain ip {t} pub-{owner}"
        );
        s
    }
}

/// A mapping as the body of an nft rule.
fn nft_rule(m: &PortMapping) -> String {
    let daddr = match m.host_ip {
        Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
        _ => String::new(),
    };
    format!(
        "{daddr}{} dport {} dnat to {}:{}",
        m.proto, m.host_port, m.container_ip, m.container_port
    )
}

impl Listing {
    /// Handles of the `ports` rules jumping to `owner`'s chain.
    fn jumps_of(&self, owner: &str) -> Vec<u64> {
        self.jumps
            .iter()
            .filter(|(o, _)| o == owner)
            .map(|(_, h)| *h)
            .collect()
    }
}

/// Extracts owner chains and `ports` jump rules (with handles) from
/// `nft -a list table` output.
fn parse_listing(text: &str) -> Listing {
    let mut listing = Listing::default();
    let mut chain: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("chain ") {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            if let Some(owner) = name.strip_prefix("pub-") {
                if validate_owner(owner).is_ok() {
                    listing.owner_chains.push(owner.to_string());
                }
            }
            chain = Some(name);
            continue;
        }
        if line == "}" {
            chain = None;
            continue;
        }
        if chain.as_deref() != Some("ports") {
            continue;
        }
        let Some(target) = line.strip_prefix("jump pub-") else {
            continue;
        };
        let owner = target.split_whitespace().next().unwrap_or("");
        let handle = line
            .rsplit_once("# handle ")
            .and_then(|(_, h)| h.trim().parse::<u64>().ok());
        if let (true, Some(h)) = (validate_owner(owner).is_ok(), handle) {
            listing.jumps.push((owner.to_string(), h));
        }
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Proto;
    use std::net::Ipv4Addr;

    use crate::firewall::test_spec as spec;

    #[test]
    fn new_validates_table() {
        assert!(Nftables::new("berth").is_ok());
        assert!(Nftables::new("berth; flush ruleset").is_err());
        assert!(Nftables::new("").is_err());
    }

    #[test]
    fn proto_parse() {
        assert_eq!("TCP".parse::<Proto>().unwrap(), Proto::Tcp);
        assert_eq!("udp".parse::<Proto>().unwrap(), Proto::Udp);
        assert!("sctp".parse::<Proto>().is_err());
        assert_eq!(Proto::Udp.to_string(), "udp");
    }

    #[test]
    fn network_scripts() {
        let fw = Nftables::new("bt").unwrap();
        let s = fw.add_network_script(&spec(false));
        assert!(s.contains("add rule ip bt nat-br-abc.1 oifname != \"br-abc.1\" masquerade\n"));
        assert!(s.contains("add element ip bt masq { 10.77.0.0/16 : jump nat-br-abc.1 }\n"));
        assert!(s.contains("add rule ip bt fwd-out-br-abc.1 iifname @bridges drop\n"));
        assert!(s.contains("add rule ip bt fwd-in-br-abc.1 accept\n"));
        let s = fw.add_network_script(&spec(true));
        assert!(!s.contains("masquerade"));
        assert!(s.contains("add rule ip bt fwd-in-br-abc.1 drop\n"));
        assert!(!s.contains("ct status dnat accept"));
        let s = fw.remove_network_script(&spec(true));
        assert!(s.contains("delete chain ip bt nat-br-abc.1\n"));
        assert!(s.contains("delete element ip bt bridges { \"br-abc.1\" }\n"));
    }

    #[test]
    fn bad_spec_rejected_before_nft() {
        let fw = Nftables::new("bt").unwrap();
        let mut s = spec(false);
        s.bridge = "br\" accept; flush ruleset".into();
        assert!(matches!(fw.add_network(&s), Err(Error::Invalid { .. })));
        let mut s = spec(false);
        s.gateway = Ipv4Addr::new(10, 78, 0, 1);
        assert!(matches!(fw.remove_network(&s), Err(Error::Invalid { .. })));
        assert!(matches!(fw.publish("zz", &[]), Err(Error::Invalid { .. })));
        assert!(matches!(fw.unpublish("ab cd"), Err(Error::Invalid { .. })));
        let m = PortMapping {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 0,
            container_ip: Ipv4Addr::new(10, 77, 0, 2),
            container_port: 80,
        };
        assert!(matches!(fw.publish("ab", &[m]), Err(Error::Invalid { .. })));
    }

    #[test]
    fn publish_script_text() {
        let fw = Nftables::new("bt").unwrap();
        let maps = [
            PortMapping {
                proto: Proto::Tcp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                container_ip: Ipv4Addr::new(10, 77, 0, 2),
                container_port: 80,
            },
            PortMapping {
                proto: Proto::Udp,
                host_ip: Some(Ipv4Addr::UNSPECIFIED),
                host_port: 5353,
                container_ip: Ipv4Addr::new(10, 77, 0, 2),
                container_port: 53,
            },
        ];
        let s = fw.publish_script("ab12", &maps, &[7]);
        assert_eq!(
            s,
            "delete rule ip bt ports handle 7\n\
add chain ip bt pub-ab12\nflush chain ip bt pub-ab12\n\
add rule ip bt pub-ab12 ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.77.0.2:80\n\
add rule ip bt pub-ab12 udp dport 5353 dnat to 10.77.0.2:53\n\
add rule ip bt ports jump pub-ab12\n"
        );
        let s = fw.unpublish_script("ab12", &[3, 4]);
        assert!(
            s.starts_with("delete rule ip bt ports handle 3\ndelete rule ip bt ports handle 4\n")
        );
        assert!(s.ends_with("delete chain ip bt pub-ab12\n"));
    }

    #[test]
    fn listing_parser() {
        let text = "table ip bt { # handle 3
\tchain ports { # handle 9
\t\tjump pub-abc123 # handle 36
\t\tjump pub-def # handle 47
\t\tjump pub-not_hex # handle 48
\t\tjump pub-fff
\t}

\tchain pub-abc123 { # handle 33
\t\tip daddr 127.0.0.1 tcp dport 8080 dnat to 10.99.0.2:80 # handle 34
\t}
\tchain fwd-out-br { # handle 22
\t\tjump pub-999 # handle 50
\t}
}
";
        let l = parse_listing(text);
        assert_eq!(l.owner_chains, vec!["abc123".to_string()]);
        assert_eq!(
            l.jumps,
            vec![("abc123".to_string(), 36), ("def".to_string(), 47)]
        );
        assert_eq!(parse_listing(""), Listing::default());
        assert_eq!(
            parse_listing("garbage {{{ chain\n}}} jump pub-"),
            Listing::default()
        );
    }
}
