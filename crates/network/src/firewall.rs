//! iptables: the [`Firewall`] trait (a real implementation that runs the `iptables` binary that
//! works on this host, and a recording fake), berth's own chains, and the pure functions that
//! generate the rules for a network and for a published port.
//!
//! Chains (the prefix is configurable, `BERTH` by default):
//! - filter `BERTH-FORWARD` (jumped to first from `FORWARD`): starts with a jump to
//!   `BERTH-ISOLATION-1`, then per network: ACCEPT established traffic to the bridge,
//!   ACCEPT/DROP bridge-to-bridge (icc), ACCEPT bridge-to-outside (not internal), and per
//!   published port ACCEPT outside-to-container. Explicit ACCEPTs make it work with a
//!   `FORWARD` policy of DROP.
//! - filter `BERTH-ISOLATION-1`/`-2`: Docker's two-stage isolation: traffic leaving bridge A
//!   for another interface goes to stage 2, which drops it if that interface is a berth bridge;
//!   internal networks drop everything that crosses their bridge's boundary.
//! - nat `BERTH-DNAT` (from `PREROUTING` and `OUTPUT` for local destinations): DNAT per port.
//! - nat `BERTH-POSTROUTING` (from `POSTROUTING`): MASQUERADE of the subnet going out, of
//!   127.0.0.0/8-sourced traffic entering the bridge (127.0.0.1 publishing) and hairpin.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ipnet::Ipv4Net;
use crate::ports::PortBinding;
use crate::NetworkError;

/// One iptables rule: table, chain and the rule specification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// `filter` or `nat`.
    pub table: String,
    /// The chain.
    pub chain: String,
    /// The rule specification (everything after `-A CHAIN`).
    pub args: Vec<String>,
}

impl Rule {
    /// Builds a rule from a space-separated specification (no quoting needed for our rules).
    pub fn new(table: &str, chain: &str, spec: &str) -> Rule {
        Rule {
            table: table.to_string(),
            chain: chain.to_string(),
            args: spec.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// What berth needs from iptables.
pub trait Firewall: Send + Sync {
    /// Creates the chain if it does not exist.
    fn ensure_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError>;
    /// Flushes and deletes the chain; no error if it does not exist.
    fn delete_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError>;
    /// Removes every rule of the chain; no error if it does not exist.
    fn flush_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError>;
    /// Whether the rule exists (`-C`).
    fn exists(&self, rule: &Rule) -> Result<bool, NetworkError>;
    /// Appends the rule (`-A`).
    fn append(&self, rule: &Rule) -> Result<(), NetworkError>;
    /// Inserts the rule at the top of its chain (`-I CHAIN 1`).
    fn insert(&self, rule: &Rule) -> Result<(), NetworkError>;
    /// Deletes the rule (`-D`); no error if it does not exist.
    fn delete(&self, rule: &Rule) -> Result<(), NetworkError>;
}

/// The real firewall: runs `iptables -w` (the variant that works on this host).
#[derive(Debug, Clone)]
pub struct IptablesCmd {
    bin: String,
}

impl IptablesCmd {
    /// Uses the given binary (`iptables`, `iptables-nft`, `iptables-legacy`).
    pub fn with_binary(bin: &str) -> Self {
        IptablesCmd {
            bin: bin.to_string(),
        }
    }

    /// Picks the first of `iptables`, `iptables-nft`, `iptables-legacy` that can list the
    /// filter table.
    pub fn detect() -> Result<Self, NetworkError> {
        for bin in ["iptables", "iptables-nft", "iptables-legacy"] {
            let ok = Command::new(bin)
                .args(["-w", "-t", "filter", "-S", "FORWARD"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return Ok(Self::with_binary(bin));
            }
        }
        Err(NetworkError::Command {
            cmd: "iptables -S FORWARD".into(),
            stderr: "no working iptables binary (tried iptables, iptables-nft, iptables-legacy)"
                .into(),
        })
    }

    /// The binary in use.
    pub fn binary(&self) -> &str {
        &self.bin
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output, NetworkError> {
        Command::new(&self.bin)
            .arg("-w")
            .args(args)
            .output()
            .map_err(|e| NetworkError::Command {
                cmd: format!("{} {}", self.bin, args.join(" ")),
                stderr: e.to_string(),
            })
    }

    fn run_ok(&self, args: &[&str]) -> Result<(), NetworkError> {
        let out = self.run(args)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NetworkError::Command {
                cmd: format!("{} {}", self.bin, args.join(" ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn chain_exists(&self, table: &str, chain: &str) -> Result<bool, NetworkError> {
        Ok(self
            .run(&["-t", table, "-n", "-L", chain])?
            .status
            .success())
    }

    fn rule_args<'a>(op: &'a str, rule: &'a Rule, pos: Option<&'a str>) -> Vec<&'a str> {
        let mut v = vec!["-t", rule.table.as_str(), op, rule.chain.as_str()];
        v.extend(pos);
        v.extend(rule.args.iter().map(String::as_str));
        v
    }
}

impl Firewall for IptablesCmd {
    fn ensure_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError> {
        if self.chain_exists(table, chain)? {
            return Ok(());
        }
        self.run_ok(&["-t", table, "-N", chain])
    }

    fn delete_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError> {
        if !self.chain_exists(table, chain)? {
            return Ok(());
        }
        self.run_ok(&["-t", table, "-F", chain])?;
        self.run_ok(&["-t", table, "-X", chain])
    }

    fn flush_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError> {
        if !self.chain_exists(table, chain)? {
            return Ok(());
        }
        self.run_ok(&["-t", table, "-F", chain])
    }

    fn exists(&self, rule: &Rule) -> Result<bool, NetworkError> {
        Ok(self
            .run(&Self::rule_args("-C", rule, None))?
            .status
            .success())
    }

    fn append(&self, rule: &Rule) -> Result<(), NetworkError> {
        self.run_ok(&Self::rule_args("-A", rule, None))
    }

    fn insert(&self, rule: &Rule) -> Result<(), NetworkError> {
        self.run_ok(&Self::rule_args("-I", rule, Some("1")))
    }

    fn delete(&self, rule: &Rule) -> Result<(), NetworkError> {
        if !self.exists(rule)? {
            return Ok(());
        }
        self.run_ok(&Self::rule_args("-D", rule, None))
    }
}

/// `(table, chain)` → rules (each a list of arguments), in order.
pub type FakeTables = BTreeMap<(String, String), Vec<Vec<String>>>;

/// A recording fake: keeps the tables in memory so tests can assert on the exact rules.
#[derive(Debug, Default)]
pub struct FakeFirewall {
    /// `(table, chain)` → rules in order.
    pub chains: Mutex<FakeTables>,
    /// When set, `append`/`insert` of a rule whose specification contains this string fails.
    pub fail_on: Mutex<Option<String>>,
}

impl FakeFirewall {
    /// The rules of a chain (empty if missing).
    pub fn rules(&self, table: &str, chain: &str) -> Vec<String> {
        self.chains
            .lock()
            .unwrap()
            .get(&(table.to_string(), chain.to_string()))
            .map(|v| v.iter().map(|a| a.join(" ")).collect())
            .unwrap_or_default()
    }

    /// Total number of rules in every chain.
    pub fn rule_count(&self) -> usize {
        self.chains.lock().unwrap().values().map(Vec::len).sum()
    }

    fn key(rule: &Rule) -> (String, String) {
        (rule.table.clone(), rule.chain.clone())
    }

    fn check_fail(&self, rule: &Rule) -> Result<(), NetworkError> {
        if let Some(f) = self.fail_on.lock().unwrap().as_ref() {
            if rule.args.join(" ").contains(f.as_str()) {
                return Err(NetworkError::Command {
                    cmd: format!("iptables -A {} {}", rule.chain, rule.args.join(" ")),
                    stderr: "injected failure".into(),
                });
            }
        }
        Ok(())
    }
}

fn is_builtin(chain: &str) -> bool {
    matches!(
        chain,
        "INPUT" | "OUTPUT" | "FORWARD" | "PREROUTING" | "POSTROUTING"
    )
}

impl Firewall for FakeFirewall {
    fn ensure_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError> {
        self.chains
            .lock()
            .unwrap()
            .entry((table.into(), chain.into()))
            .or_default();
        Ok(())
    }

    fn delete_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError> {
        self.chains
            .lock()
            .unwrap()
            .remove(&(table.into(), chain.into()));
        Ok(())
    }

    fn flush_chain(&self, table: &str, chain: &str) -> Result<(), NetworkError> {
        if let Some(v) = self
            .chains
            .lock()
            .unwrap()
            .get_mut(&(table.into(), chain.into()))
        {
            v.clear();
        }
        Ok(())
    }

    fn exists(&self, rule: &Rule) -> Result<bool, NetworkError> {
        Ok(self
            .chains
            .lock()
            .unwrap()
            .get(&Self::key(rule))
            .is_some_and(|v| v.contains(&rule.args)))
    }

    fn append(&self, rule: &Rule) -> Result<(), NetworkError> {
        self.check_fail(rule)?;
        let mut c = self.chains.lock().unwrap();
        match c.get_mut(&Self::key(rule)) {
            Some(v) => v.push(rule.args.clone()),
            None if is_builtin(&rule.chain) => {
                c.insert(Self::key(rule), vec![rule.args.clone()]);
            }
            None => {
                return Err(NetworkError::Command {
                    cmd: format!("iptables -A {}", rule.chain),
                    stderr: "No chain/target/match by that name.".into(),
                })
            }
        }
        Ok(())
    }

    fn insert(&self, rule: &Rule) -> Result<(), NetworkError> {
        self.check_fail(rule)?;
        let mut c = self.chains.lock().unwrap();
        if !c.contains_key(&Self::key(rule)) && !is_builtin(&rule.chain) {
            return Err(NetworkError::Command {
                cmd: format!("iptables -I {}", rule.chain),
                stderr: "No chain/target/match by that name.".into(),
            });
        }
        c.entry(Self::key(rule))
            .or_default()
            .insert(0, rule.args.clone());
        Ok(())
    }

    fn delete(&self, rule: &Rule) -> Result<(), NetworkError> {
        if let Some(v) = self.chains.lock().unwrap().get_mut(&Self::key(rule)) {
            if let Some(i) = v.iter().position(|a| a == &rule.args) {
                v.remove(i);
            }
        }
        Ok(())
    }
}

/// The names of berth's chains for a given prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chains {
    /// filter: per-network forwarding policy.
    pub forward: String,
    /// filter: isolation stage 1.
    pub isolation1: String,
    /// filter: isolation stage 2.
    pub isolation2: String,
    /// nat: DNAT of published ports.
    pub dnat: String,
    /// nat: MASQUERADE rules.
    pub postrouting: String,
}

impl Chains {
    /// Chains named `<prefix>-FORWARD`, `<prefix>-ISOLATION-1`, ...
    pub fn new(prefix: &str) -> Chains {
        Chains {
            forward: format!("{prefix}-FORWARD"),
            isolation1: format!("{prefix}-ISOLATION-1"),
            isolation2: format!("{prefix}-ISOLATION-2"),
            dnat: format!("{prefix}-DNAT"),
            postrouting: format!("{prefix}-POSTROUTING"),
        }
    }

    /// `(table, chain)` of every berth chain.
    pub fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("filter", self.forward.as_str()),
            ("filter", self.isolation1.as_str()),
            ("filter", self.isolation2.as_str()),
            ("nat", self.dnat.as_str()),
            ("nat", self.postrouting.as_str()),
        ]
    }

    /// The jumps from the built-in chains into berth's chains (inserted at the top).
    pub fn jumps(&self) -> Vec<Rule> {
        vec![
            Rule::new("filter", "FORWARD", &format!("-j {}", self.forward)),
            Rule::new(
                "nat",
                "PREROUTING",
                &format!("-m addrtype --dst-type LOCAL -j {}", self.dnat),
            ),
            Rule::new(
                "nat",
                "OUTPUT",
                &format!("-m addrtype --dst-type LOCAL -j {}", self.dnat),
            ),
            Rule::new("nat", "POSTROUTING", &format!("-j {}", self.postrouting)),
        ]
    }

    /// The first rule of the forward chain: into isolation.
    pub fn isolation_jump(&self) -> Rule {
        Rule::new("filter", &self.forward, &format!("-j {}", self.isolation1))
    }
}

/// The rules of one bridge network (appended in this order).
pub fn network_rules(
    chains: &Chains,
    bridge: &str,
    subnet: Ipv4Net,
    internal: bool,
    icc: bool,
) -> Vec<Rule> {
    let b = bridge;
    let mut v = Vec::new();
    if internal {
        v.push(Rule::new(
            "filter",
            &chains.isolation1,
            &format!("-i {b} ! -o {b} -j DROP"),
        ));
        v.push(Rule::new(
            "filter",
            &chains.isolation1,
            &format!("! -i {b} -o {b} -j DROP"),
        ));
    }
    v.push(Rule::new(
        "filter",
        &chains.isolation1,
        &format!("-i {b} ! -o {b} -j {}", chains.isolation2),
    ));
    v.push(Rule::new(
        "filter",
        &chains.isolation2,
        &format!("-o {b} -j DROP"),
    ));
    v.push(Rule::new(
        "filter",
        &chains.forward,
        &format!("-o {b} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
    ));
    let icc_target = if icc { "ACCEPT" } else { "DROP" };
    v.push(Rule::new(
        "filter",
        &chains.forward,
        &format!("-i {b} -o {b} -j {icc_target}"),
    ));
    if !internal {
        v.push(Rule::new(
            "filter",
            &chains.forward,
            &format!("-i {b} ! -o {b} -j ACCEPT"),
        ));
        v.push(Rule::new(
            "nat",
            &chains.postrouting,
            &format!("-s {} ! -o {b} -j MASQUERADE", subnet.trunc()),
        ));
        v.push(Rule::new(
            "nat",
            &chains.postrouting,
            &format!("-s 127.0.0.0/8 -o {b} -j MASQUERADE"),
        ));
    }
    v
}

/// The rules publishing one port of the container at `ip` on `bridge`.
pub fn port_rules(chains: &Chains, bridge: &str, ip: Ipv4Addr, p: &PortBinding) -> Vec<Rule> {
    let proto = p.proto.as_str();
    let dst = match p.host_ip {
        Some(h) if !h.is_unspecified() => format!("-d {h}/32 "),
        _ => String::new(),
    };
    vec![
        Rule::new(
            "nat",
            &chains.dnat,
            &format!(
                "{dst}-p {proto} -m {proto} --dport {} -j DNAT --to-destination {ip}:{}",
                p.host_port, p.container_port
            ),
        ),
        Rule::new(
            "filter",
            &chains.forward,
            &format!(
                "-d {ip}/32 ! -i {bridge} -o {bridge} -p {proto} -m {proto} --dport {} -j ACCEPT",
                p.container_port
            ),
        ),
        Rule::new(
            "nat",
            &chains.postrouting,
            &format!(
                "-s {ip}/32 -d {ip}/32 -p {proto} -m {proto} --dport {} -j MASQUERADE",
                p.container_port
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Proto;

    #[test]
    fn network_rule_generation() {
        let c = Chains::new("BERTH");
        let n: Ipv4Net = "172.18.0.0/16".parse().unwrap();
        let r = network_rules(&c, "br-x", n, false, true);
        let s: Vec<String> = r
            .iter()
            .map(|r| format!("{} {}", r.chain, r.args.join(" ")))
            .collect();
        assert!(
            s.contains(&"BERTH-POSTROUTING -s 172.18.0.0/16 ! -o br-x -j MASQUERADE".to_string())
        );
        assert!(s.contains(&"BERTH-FORWARD -i br-x ! -o br-x -j ACCEPT".to_string()));
        assert!(s.contains(&"BERTH-FORWARD -i br-x -o br-x -j ACCEPT".to_string()));
        assert!(s.contains(&"BERTH-ISOLATION-2 -o br-x -j DROP".to_string()));
        let r = network_rules(&c, "br-x", n, true, false);
        let s: Vec<String> = r
            .iter()
            .map(|r| format!("{} {}", r.chain, r.args.join(" ")))
            .collect();
        assert!(!s.iter().any(|x| x.contains("MASQUERADE")));
        assert!(s.contains(&"BERTH-ISOLATION-1 -i br-x ! -o br-x -j DROP".to_string()));
        assert!(s.contains(&"BERTH-FORWARD -i br-x -o br-x -j DROP".to_string()));
    }

    #[test]
    fn port_rule_generation() {
        let c = Chains::new("BERTH");
        let p = PortBinding {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let r = port_rules(&c, "berth0", Ipv4Addr::new(172, 17, 0, 2), &p);
        assert_eq!(
            r[0].args.join(" "),
            "-d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
        );
        assert_eq!(r[0].table, "nat");
        assert_eq!(r[1].chain, "BERTH-FORWARD");
        let p = PortBinding {
            host_ip: None,
            proto: Proto::Udp,
            ..p
        };
        let r = port_rules(&c, "berth0", Ipv4Addr::new(172, 17, 0, 2), &p);
        assert!(r[0]
            .args
            .join(" ")
            .starts_with("-p udp -m udp --dport 8080"));
    }

    #[test]
    fn fake_firewall_semantics() {
        let f = FakeFirewall::default();
        let r = Rule::new("filter", "X", "-j ACCEPT");
        assert!(f.append(&r).is_err());
        f.ensure_chain("filter", "X").unwrap();
        f.append(&r).unwrap();
        assert!(f.exists(&r).unwrap());
        f.delete(&r).unwrap();
        assert!(!f.exists(&r).unwrap());
        f.insert(&Rule::new("filter", "FORWARD", "-j X")).unwrap();
        assert_eq!(f.rules("filter", "FORWARD"), ["-j X"]);
    }
}
