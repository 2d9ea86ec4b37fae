//! The iptables backend, for hosts without `nft`: the rules of the nftables
//! backend, kept in the daemon's own chains, named `<table>-<role>`:
//!
//! ```text
//! nat     PREROUTING  -m addrtype --dst-type LOCAL -j P-DNAT
//!         OUTPUT      -m addrtype --dst-type LOCAL -j P-DNAT
//!         POSTROUTING -j P-SNAT
//!   P-DNAT  [-d H] -p tcp|udp --dport P -j DNAT --to-destination C:CP    pub:<owner>
//!   P-SNAT  -s 127.0.0.0/8 -o <br> -j MASQUERADE                          net:<br>
//!           -s <subnet> ! -o <br> -j MASQUERADE  (not internal)
//!           -s <subnet> -o <br> --ctstate DNAT -j MASQUERADE  (hairpin)
//! filter  FORWARD (first rule) -j P-FWD
//!   P-FWD   -j P-FO; -j P-FI
//!   P-FO    traffic entering a bridge; every bridge's rules end in a verdict:
//!           -o <br> -i <br> ACCEPT; -o <br> --ctstate RELATED,ESTABLISHED ACCEPT;
//!           -o <br> -j P-ISO; -o <br> --ctstate DNAT ACCEPT; -o <br> DROP
//!           (internal: the first and the last only)
//!   P-ISO   -i <br> DROP, one per bridge: isolation between networks
//!   P-FI    traffic leaving a bridge: -i <br> ACCEPT (internal: DROP)
//! ```
//!
//! Every rule in those chains carries a comment naming what it belongs to
//! (`net:<bridge>`, `pub:<owner>`), so removing a network or a container's ports
//! deletes exactly its rules. Each change is one `iptables-restore --noflush`
//! batch, applied atomically per table.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::PortMapping;
use crate::error::{Error, Result};
use crate::validate::{validate_owner, validate_table_name};
use crate::NetworkSpec;

/// iptables refuses chain names longer than this.
const MAX_CHAIN_NAME: usize = 28;
/// The daemon's chains, by table: (table, role).
const CHAINS: [(&str, &str); 6] = [
    ("nat", "DNAT"),
    ("nat", "SNAT"),
    ("filter", "FWD"),
    ("filter", "FO"),
    ("filter", "FI"),
    ("filter", "ISO"),
];

/// The daemon's chains in iptables; see the module documentation.
#[derive(Debug)]
pub struct Iptables {
    prefix: String,
    lock: Mutex<()>,
}

/// A rule line of `iptables -S`, turned into the line that deletes it.
fn deletion(line: &str) -> Option<String> {
    line.strip_prefix("-A ").map(|rest| format!("-D {rest}"))
}

/// The value of the rule's comment, unquoted.
fn comment(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "--comment")?;
    words.next().map(|c| c.trim_matches('"'))
}

impl Iptables {
    /// A handle on chains `<table>-*`; nothing is changed until [`Iptables::init`].
    pub fn new(table: &str) -> Result<Iptables> {
        validate_table_name(table)?;
        let longest_role = CHAINS.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
        if table.len() + 1 + longest_role > MAX_CHAIN_NAME {
            return Err(Error::invalid(
                "iptables chain prefix",
                table,
                "too long for iptables chain names (28 characters)",
            ));
        }
        Ok(Iptables {
            prefix: table.to_string(),
            lock: Mutex::new(()),
        })
    }

    fn chain(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, op: &str, message: String) -> Error {
        Error::Iptables {
            op: op.to_string(),
            prefix: self.prefix.clone(),
            message,
        }
    }

    fn run(&self, op: &str, program: &str, args: &[&str], input: Option<&str>) -> Result<String> {
        let mut child = match Command::new(program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::IptablesMissing),
            Err(e) => return Err(self.fail(op, format!("spawning {program}: {e}"))),
        };
        if let Some(input) = input {
            tracing::trace!(prefix = %self.prefix, op, "iptables-restore input:\n{input}");
            if let Some(mut stdin) = child.stdin.take() {
                if let Err(e) = stdin.write_all(input.as_bytes()) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.fail(op, format!("writing to {program}: {e}")));
                }
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.fail(op, format!("waiting for {program}: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(self.fail(
                op,
                if stderr.is_empty() {
                    format!("{program} exited with {}", out.status)
                } else {
                    stderr
                },
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn iptables(&self, op: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["-w"];
        all.extend_from_slice(args);
        self.run(op, "iptables", &all, None)
    }

    /// Applies a batch of `-A`/`-D` lines per table, each table atomically.
    fn restore(&self, op: &str, nat: &str, filter: &str) -> Result<()> {
        let mut script = String::new();
        for (table, lines) in [("nat", nat), ("filter", filter)] {
            if !lines.is_empty() {
                let _ = write!(script, "*{table}\n{lines}COMMIT\n");
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        self.run(op, "iptables-restore", &["-w", "--noflush"], Some(&script))
            .map(|_| ())
    }

    /// `iptables -S` of one of the daemon's chains; none when it does not exist.
    fn rules(&self, op: &str, table: &str, role: &str) -> Result<Vec<String>> {
        let chain = self.chain(role);
        match self.iptables(op, &["-t", table, "-S", &chain]) {
            Ok(text) => Ok(text
                .lines()
                .filter(|l| l.starts_with("-A "))
                .map(str::to_string)
                .collect()),
            Err(Error::Iptables { message, .. })
                if message.contains("No chain") || message.contains("does not exist") =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Deletion lines for every rule tagged `tag` in the chains of `table`.
    fn tagged_deletions(&self, op: &str, table: &str, tag: &str) -> Result<String> {
        let mut out = String::new();
        for (t, role) in CHAINS {
            if t != table {
                continue;
            }
            for line in self.rules(op, table, role)? {
                if comment(&line) == Some(tag) {
                    if let Some(d) = deletion(&line) {
                        out.push_str(&d);
                        out.push('\n');
                    }
                }
            }
        }
        Ok(out)
    }

    /// The jumps from the kernel's chains into the daemon's: (table, chain, rule).
    fn dispatch(&self) -> Vec<(&'static str, &'static str, Vec<String>)> {
        let local = |target: String| {
            ["-m", "addrtype", "--dst-type", "LOCAL", "-j"]
                .iter()
                .map(|s| s.to_string())
                .chain([target])
                .collect::<Vec<_>>()
        };
        vec![
            ("nat", "PREROUTING", local(self.chain("DNAT"))),
            ("nat", "OUTPUT", local(self.chain("DNAT"))),
            ("nat", "POSTROUTING", vec!["-j".into(), self.chain("SNAT")]),
            ("filter", "FORWARD", vec!["-j".into(), self.chain("FWD")]),
        ]
    }

    /// Creates the chains and the jumps into them if missing and rewrites the
    /// dispatch chain; keeps network and port rules. Idempotent.
    pub fn init(&self) -> Result<()> {
        let _g = self.guard();
        for (table, role) in CHAINS {
            let chain = self.chain(role);
            match self.iptables("init", &["-t", table, "-N", &chain]) {
                Ok(_) => {}
                Err(Error::Iptables { message, .. }) if message.contains("already exists") => {}
                Err(e) => return Err(e),
            }
        }
        for (table, builtin, rule) in self.dispatch() {
            let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
            let mut check = vec!["-t", table, "-C", builtin];
            check.extend_from_slice(&rule);
            if self.iptables("init", &check).is_err() {
                let mut insert = vec!["-t", table, "-I", builtin, "1"];
                insert.extend_from_slice(&rule);
                self.iptables("init", &insert)?;
            }
        }
        let (fwd, out, inbound) = (self.chain("FWD"), self.chain("FO"), self.chain("FI"));
        self.run(
            "init",
            "iptables-restore",
            &["-w", "--noflush"],
            Some(&format!(
                "*filter\n:{fwd} - [0:0]\n-A {fwd} -j {out}\n-A {fwd} -j {inbound}\nCOMMIT\n"
            )),
        )?;
        tracing::debug!(prefix = %self.prefix, "iptables chains initialized");
        Ok(())
    }

    /// Removes the jumps and every chain of the daemon. Idempotent.
    pub fn teardown(&self) -> Result<()> {
        let _g = self.guard();
        for (table, builtin, rule) in self.dispatch() {
            let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
            let mut delete = vec!["-t", table, "-D", builtin];
            delete.extend_from_slice(&rule);
            // Twice inserted by racing inits at worst; a bound, not a loop forever.
            for _ in 0..8 {
                if self.iptables("teardown", &delete).is_err() {
                    break;
                }
            }
        }
        // Flush all before deleting any: the chains jump to one another.
        for (table, role) in CHAINS {
            let _ = self.iptables("teardown", &["-t", table, "-F", &self.chain(role)]);
        }
        for (table, role) in CHAINS {
            let _ = self.iptables("teardown", &["-t", table, "-X", &self.chain(role)]);
        }
        let left: Vec<String> = CHAINS
            .iter()
            .filter(|(table, role)| {
                self.iptables("teardown", &["-t", table, "-S", &self.chain(role)])
                    .is_ok()
            })
            .map(|(_, role)| self.chain(role))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(self.fail("teardown", format!("chains left: {}", left.join(", "))))
        }
    }

    pub(crate) fn network_rules(&self, spec: &NetworkSpec) -> (String, String) {
        let br = &spec.bridge;
        let subnet = spec.subnet.trunc();
        let tag = format!("-m comment --comment net:{br}");
        let (fo, fi, iso, snat) = (
            self.chain("FO"),
            self.chain("FI"),
            self.chain("ISO"),
            self.chain("SNAT"),
        );
        let mut filter = String::new();
        let _ = writeln!(filter, "-A {fo} -i {br} -o {br} {tag} -j ACCEPT");
        if !spec.internal {
            let _ = writeln!(
                filter,
                "-A {fo} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT"
            );
            let _ = writeln!(filter, "-A {fo} -o {br} {tag} -j {iso}");
            let _ = writeln!(
                filter,
                "-A {fo} -o {br} -m conntrack --ctstate DNAT {tag} -j ACCEPT"
            );
        }
        let _ = writeln!(filter, "-A {fo} -o {br} {tag} -j DROP");
        let _ = writeln!(
            filter,
            "-A {fi} -i {br} {tag} -j {}",
            if spec.internal { "DROP" } else { "ACCEPT" }
        );
        let _ = writeln!(filter, "-A {iso} -i {br} {tag} -j DROP");
        let mut nat = String::new();
        let _ = writeln!(nat, "-A {snat} -s 127.0.0.0/8 -o {br} {tag} -j MASQUERADE");
        if !spec.internal {
            let _ = writeln!(nat, "-A {snat} -s {subnet} ! -o {br} {tag} -j MASQUERADE");
            let _ = writeln!(
                nat,
                "-A {snat} -s {subnet} -o {br} -m conntrack --ctstate DNAT {tag} -j MASQUERADE"
            );
        }
        (nat, filter)
    }

    /// Adds the rules of a network, replacing any it had. Idempotent.
    pub fn add_network(&self, spec: &NetworkSpec) -> Result<()> {
        spec.validate()?;
        let _g = self.guard();
        let op = format!("add network {}", spec.bridge);
        let tag = format!("net:{}", spec.bridge);
        let (nat, filter) = self.network_rules(spec);
        let nat = self.tagged_deletions(&op, "nat", &tag)? + &nat;
        let filter = self.tagged_deletions(&op, "filter", &tag)? + &filter;
        self.restore(&op, &nat, &filter)
    }

    /// Removes the rules [`Iptables::add_network`] made for this network.
    pub fn remove_network(&self, spec: &NetworkSpec) -> Result<()> {
        spec.validate()?;
        let _g = self.guard();
        let op = format!("remove network {}", spec.bridge);
        let tag = format!("net:{}", spec.bridge);
        let nat = self.tagged_deletions(&op, "nat", &tag)?;
        let filter = self.tagged_deletions(&op, "filter", &tag)?;
        self.restore(&op, &nat, &filter)
    }

    pub(crate) fn port_rule(&self, owner: &str, m: &PortMapping) -> String {
        let daddr = match m.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("-d {ip}/32 "),
            _ => String::new(),
        };
        format!(
            "-A {} {daddr}-p {proto} -m {proto} --dport {} -m comment --comment pub:{owner} -j DNAT --to-destination {}:{}\n",
            self.chain("DNAT"),
            m.host_port,
            m.container_ip,
            m.container_port,
            proto = m.proto,
        )
    }

    /// Publishes `mappings` for `owner`, replacing what it had published.
    pub fn publish(&self, owner: &str, mappings: &[PortMapping]) -> Result<()> {
        validate_owner(owner)?;
        for m in mappings {
            m.validate()?;
        }
        let owner = owner.to_ascii_lowercase();
        let _g = self.guard();
        let op = format!("publish {owner}");
        let mut nat = self.tagged_deletions(&op, "nat", &format!("pub:{owner}"))?;
        for m in mappings {
            nat.push_str(&self.port_rule(&owner, m));
        }
        self.restore(&op, &nat, "")?;
        tracing::debug!(prefix = %self.prefix, owner, ports = mappings.len(), "published ports");
        Ok(())
    }

    /// Removes every port published by `owner`. Idempotent.
    pub fn unpublish(&self, owner: &str) -> Result<()> {
        validate_owner(owner)?;
        let owner = owner.to_ascii_lowercase();
        let _g = self.guard();
        let op = format!("unpublish {owner}");
        let nat = self.tagged_deletions(&op, "nat", &format!("pub:{owner}"))?;
        self.restore(&op, &nat, "")
    }

    fn owners(&self, op: &str) -> Result<Vec<String>> {
        let mut owners: Vec<String> = Vec::new();
        for line in self.rules(op, "nat", "DNAT")? {
            if let Some(owner) = comment(&line).and_then(|c| c.strip_prefix("pub:")) {
                if validate_owner(owner).is_ok() && !owners.iter().any(|o| o == owner) {
                    owners.push(owner.to_string());
                }
            }
        }
        Ok(owners)
    }

    /// Owners that currently have published ports (lowercase).
    pub fn published_owners(&self) -> Result<Vec<String>> {
        let _g = self.guard();
        self.owners("list owners")
    }

    /// Removes the ports of every owner not in `keep_owners`; returns them.
    pub fn reconcile(&self, keep_owners: &HashSet<String>) -> Result<Vec<String>> {
        let keep: HashSet<String> = keep_owners.iter().map(|o| o.to_ascii_lowercase()).collect();
        let _g = self.guard();
        let mut removed = Vec::new();
        let mut nat = String::new();
        for owner in self.owners("reconcile")? {
            if keep.contains(&owner) {
                continue;
            }
            nat.push_str(&self.tagged_deletions("reconcile", "nat", &format!("pub:{owner}"))?);
            removed.push(owner);
        }
        if !nat.is_empty() {
            self.restore("reconcile", &nat, "")?;
            tracing::info!(prefix = %self.prefix, ?removed, "removed stale published ports");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Proto;
    use std::net::Ipv4Addr;

    use crate::firewall::test_spec as spec;

    #[test]
    fn chain_names_fit_iptables() {
        assert!(Iptables::new("berth").is_ok());
        assert!(Iptables::new("berth_bt123456x12").is_ok());
        assert!(Iptables::new("berth_a_very_long_bridge_name").is_err());
        assert!(Iptables::new("berth; -F").is_err());
    }

    #[test]
    fn network_rules_text() {
        let fw = Iptables::new("bt").unwrap();
        let (nat, filter) = fw.network_rules(&spec(false));
        assert!(nat.contains(
            "-A bt-SNAT -s 10.77.0.0/16 ! -o br-abc.1 -m comment --comment net:br-abc.1 -j MASQUERADE\n"
        ));
        assert!(
            filter.contains("-A bt-FO -o br-abc.1 -m comment --comment net:br-abc.1 -j bt-ISO\n")
        );
        assert!(
            filter.ends_with("-A bt-ISO -i br-abc.1 -m comment --comment net:br-abc.1 -j DROP\n")
        );
        let (nat, filter) = fw.network_rules(&spec(true));
        assert!(!nat.contains("10.77.0.0/16"), "{nat}");
        assert!(!filter.contains("ctstate"), "{filter}");
        assert!(filter.contains("-A bt-FI -i br-abc.1 -m comment --comment net:br-abc.1 -j DROP\n"));
    }

    #[test]
    fn port_rules_and_listing() {
        let fw = Iptables::new("bt").unwrap();
        let m = PortMapping {
            proto: Proto::Udp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 5353,
            container_ip: Ipv4Addr::new(10, 77, 0, 2),
            container_port: 53,
        };
        let rule = fw.port_rule("ab12", &m);
        assert_eq!(
            rule,
            "-A bt-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -m comment --comment pub:ab12 -j DNAT --to-destination 10.77.0.2:53\n"
        );
        assert_eq!(comment(&rule), Some("pub:ab12"));
        assert_eq!(
            comment("-A x -m comment --comment \"net:br0\" -j DROP"),
            Some("net:br0")
        );
        assert_eq!(comment("-A x -j DROP"), None);
        assert_eq!(deletion("-A x -j DROP").as_deref(), Some("-D x -j DROP"));
        assert_eq!(deletion("-N x"), None);
    }
}
