//! The `[response]` section of the server's configuration: which alerts ban what, for how
//! long, what is never banned, and which backend enforces it.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use tansa_detect::{Alert, Severity};

use crate::{parse_duration, RespondError, Result};

/// What a decision covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The alert's source address.
    Ip,
    /// The prefix around it (`prefix_v4`, `prefix_v6`).
    Prefix,
    /// Every prefix its AS announces (from the ASN database).
    As,
}

impl Scope {
    /// The stored name (`ip`, `range`, `as`, as CrowdSec calls them).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Prefix => "range",
            Scope::As => "as",
        }
    }
}

/// Which enforcement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Tansa's own nftables table (sets with timeouts; prefixes as intervals).
    #[default]
    Nftables,
    /// ipset `hash:net` sets with iptables/ip6tables rules.
    Ipset,
    /// A program run for each change (WAFs, cloud firewalls).
    Command,
    /// Decisions are stored and served to bouncers only.
    None,
}

/// One entry of the alert matrix: the first entry that matches an alert decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanRule {
    /// Rule ids (`tansa.ssh.brute_force`; a trailing `*` matches a prefix). None: any rule.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The least severity that bans (default: any).
    #[serde(default, deserialize_with = "severity")]
    pub severity: Option<Severity>,
    #[serde(default = "ip")]
    pub scope: Scope,
    pub prefix_v4: Option<u8>,
    pub prefix_v6: Option<u8>,
    /// Overrides `[response] ban_time` (escalation still applies).
    pub ban_time: Option<String>,
    /// Record what this entry would ban, enforce nothing.
    #[serde(default)]
    pub simulate: bool,
    /// Never ban for these alerts (an exception above a broader entry).
    #[serde(default)]
    pub skip: bool,
}

fn ip() -> Scope {
    Scope::Ip
}

pub(crate) fn severity<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Severity>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_severity(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// `informational`, `low`, `medium`, `high`, `critical`.
pub fn parse_severity(s: &str) -> std::result::Result<Severity, String> {
    Ok(match s {
        "informational" => Severity::Informational,
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => {
            return Err(format!(
                "severity {s:?}: informational, low, medium, high or critical"
            ))
        }
    })
}

/// Whether a rule id is one of `rules` (none: any; a trailing `*` matches a prefix).
pub(crate) fn rule_matches(rules: &[String], rule_id: &str) -> bool {
    rules.is_empty()
        || rules.iter().any(|r| match r.strip_suffix('*') {
            Some(p) => rule_id.starts_with(p),
            None => rule_id == r,
        })
}

impl BanRule {
    fn matches(&self, a: &Alert) -> bool {
        self.severity.is_none_or(|s| a.severity >= s) && rule_matches(&self.rules, a.rule_id)
    }
}

/// `[response]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub backend: BackendKind,
    /// Record every decision, enforce none.
    pub simulate: bool,
    /// First ban's length.
    pub ban_time: String,
    /// Repeat offenders get longer bans.
    pub increment: bool,
    pub factor: f64,
    pub max_time: String,
    /// How far back earlier decisions count as offences.
    pub remember: String,
    /// Never banned: addresses and prefixes.
    pub allow: Vec<String>,
    /// Never ban loopback, private (RFC 1918, ULA), link-local and shared (CGNAT) addresses.
    pub allow_private: bool,
    /// Never ban this machine's own addresses.
    pub allow_own: bool,
    /// The nftables table (family inet) or the ipset name prefix.
    pub table: String,
    /// `backend = "command"`: the program and arguments run to ban; `{value}` (address or
    /// prefix), `{seconds}` (0: until revoked), `{decision}`, `{reason}` are replaced in each
    /// argument (never run through a shell).
    pub command: Vec<String>,
    /// … and to lift a ban.
    pub unban_command: Vec<String>,
    /// The alert matrix (none: alerts of severity high or above ban their source address).
    pub ban: Vec<BanRule>,
    /// Where `nft`, `ipset`, `iptables` are looked up (default: PATH).
    pub bin_dir: Option<PathBuf>,
    /// Response hooks: notifications and programs, at once or after approval.
    pub hook: Vec<crate::hooks::HookConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::Nftables,
            simulate: false,
            ban_time: "1h".into(),
            increment: true,
            factor: 2.0,
            max_time: "7d".into(),
            remember: "7d".into(),
            allow: Vec::new(),
            allow_private: true,
            allow_own: true,
            table: "tansa".into(),
            command: Vec::new(),
            unban_command: Vec::new(),
            ban: Vec::new(),
            bin_dir: None,
            hook: Vec::new(),
        }
    }
}

/// The configuration checked and turned into numbers.
#[derive(Debug, Clone)]
pub struct Policy {
    pub config: Config,
    pub ban_time: i64,
    pub max_time: i64,
    pub remember: i64,
    pub allow: Allow,
    rules: Vec<(BanRule, Option<i64>)>,
    /// `[[response.hook]]`, checked.
    pub hooks: std::sync::Arc<crate::hooks::Hooks>,
}

/// What the matrix says about an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub scope: Scope,
    pub net: IpNet,
    pub base: i64,
    pub simulated: bool,
}

impl Policy {
    pub fn new(config: Config) -> Result<Policy> {
        let ban_time = parse_duration(&config.ban_time)?;
        let max_time = parse_duration(&config.max_time)?;
        let remember = parse_duration(&config.remember)?;
        if !(config.factor >= 1.0 && config.factor.is_finite()) {
            return Err(RespondError::Invalid(format!(
                "[response] factor = {}: at least 1",
                config.factor
            )));
        }
        if config.backend == BackendKind::Command && config.command.is_empty() {
            return Err(RespondError::Invalid(
                "[response] backend = \"command\" needs command = [\"program\", \"arg\", …]".into(),
            ));
        }
        let hooks = std::sync::Arc::new(crate::hooks::Hooks::new(&config.hook)?);
        let mut allow = Allow::default();
        for a in &config.allow {
            allow.add(a)?;
        }
        if config.allow_private {
            allow.add_private();
        }
        if config.allow_own {
            allow.add_own();
        }
        let mut rules = Vec::new();
        for r in &config.ban {
            for (len, max) in [(r.prefix_v4, 32), (r.prefix_v6, 128)] {
                if len.is_some_and(|l| l > max) {
                    return Err(RespondError::Invalid(format!(
                        "[[response.ban]] prefix length {} is longer than {max}",
                        len.unwrap_or(0)
                    )));
                }
            }
            let t = r.ban_time.as_deref().map(parse_duration).transpose()?;
            rules.push((r.clone(), t));
        }
        if rules.is_empty() {
            rules.push((
                BanRule {
                    rules: Vec::new(),
                    severity: Some(Severity::High),
                    scope: Scope::Ip,
                    prefix_v4: None,
                    prefix_v6: None,
                    ban_time: None,
                    simulate: false,
                    skip: false,
                },
                None,
            ));
        }
        Ok(Policy {
            config,
            ban_time,
            max_time,
            remember,
            allow,
            rules,
            hooks,
        })
    }

    /// The matrix's answer for an alert (none: no source address, or no entry bans it).
    pub fn verdict(&self, a: &Alert) -> Option<Verdict> {
        let ip = a.source_ip?;
        let (r, t) = self.rules.iter().find(|(r, _)| r.matches(a))?;
        if r.skip {
            return None;
        }
        let net = match r.scope {
            Scope::Ip | Scope::As => IpNet::from(ip),
            Scope::Prefix => {
                let len = match ip {
                    IpAddr::V4(_) => r.prefix_v4.unwrap_or(24),
                    IpAddr::V6(_) => r.prefix_v6.unwrap_or(64),
                };
                IpNet::new(ip, len).ok()?.trunc()
            }
        };
        Some(Verdict {
            scope: r.scope,
            net,
            base: t.unwrap_or(self.ban_time),
            simulated: self.config.simulate || r.simulate || a.simulated,
        })
    }

    /// The length of the `offence`-th ban (1 = first) whose first length is `base`.
    pub fn escalate(&self, base: i64, offence: u32) -> i64 {
        if !self.config.increment || offence <= 1 {
            return base;
        }
        let f = self.config.factor.powi((offence - 1).min(62) as i32);
        let t = (base as f64 * f).min(self.max_time.max(base) as f64);
        t as i64
    }
}

/// Prefixes that are never banned.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    nets: Vec<(IpNet, String)>,
}

impl Allow {
    /// Adds an address or prefix (`why` is what a refusal names).
    pub fn add(&mut self, s: &str) -> Result<()> {
        let net = parse_net(s)?;
        self.nets.push((net, format!("allow list {s}")));
        Ok(())
    }

    fn add_private(&mut self) {
        for n in [
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
            "100.64.0.0/10",
            "0.0.0.0/8",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
            "::/128",
        ] {
            self.nets
                .push((n.parse().expect("constant"), format!("private range {n}")));
        }
    }

    fn add_own(&mut self) {
        for i in if_addrs::get_if_addrs().unwrap_or_default() {
            let ip = i.ip();
            self.nets.push((
                IpNet::from(ip),
                format!("this machine's address {ip} ({})", i.name),
            ));
        }
    }

    /// Why `net` may not be banned (an allowed prefix overlaps it), if it may not.
    pub fn refuses(&self, net: &IpNet) -> Option<&str> {
        self.nets
            .iter()
            .find(|(a, _)| a.contains(net) || net.contains(a))
            .map(|(_, why)| why.as_str())
    }

    /// The allowed prefixes (firewalls let them through first).
    pub fn nets(&self) -> impl Iterator<Item = &IpNet> {
        self.nets.iter().map(|(n, _)| n)
    }
}

/// An address or a prefix (host bits are cleared: `10.1.2.3/24` is `10.1.2.0/24`).
pub fn parse_net(s: &str) -> Result<IpNet> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| RespondError::Invalid(format!("{s:?}: not an address or prefix")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        let c: Config = toml_like(text);
        Policy::new(c).unwrap()
    }

    fn toml_like(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn allow_list_refuses_overlaps_both_ways() {
        let p = policy(r#"{"allow": ["203.0.113.7", "198.51.100.0/24"], "allow_own": false}"#);
        let a = &p.allow;
        assert!(a.refuses(&parse_net("203.0.113.7").unwrap()).is_some());
        // a prefix holding an allowed address
        assert!(a.refuses(&parse_net("203.0.113.0/24").unwrap()).is_some());
        // an address inside an allowed prefix
        assert!(a.refuses(&parse_net("198.51.100.99").unwrap()).is_some());
        assert!(
            a.refuses(&parse_net("10.1.2.3").unwrap()).is_some(),
            "private"
        );
        assert!(
            a.refuses(&parse_net("fe80::1").unwrap()).is_some(),
            "link-local"
        );
        assert!(a.refuses(&parse_net("203.0.113.8").unwrap()).is_none());
        assert!(a.refuses(&parse_net("2001:db8::1").unwrap()).is_none());
        let q = policy(r#"{"allow_private": false, "allow_own": false}"#);
        assert!(q.allow.refuses(&parse_net("10.1.2.3").unwrap()).is_none());
    }

    #[test]
    fn own_addresses_are_allowed() {
        let p = policy(r#"{"allow_private": false}"#);
        // loopback is an interface address of every machine
        assert!(p.allow.refuses(&parse_net("127.0.0.1").unwrap()).is_some());
    }

    #[test]
    fn escalation_doubles_up_to_the_cap() {
        let p = policy(r#"{"ban_time": "1h", "max_time": "5h"}"#);
        let h = 3600 * crate::SECOND;
        let got: Vec<i64> = (1..=5).map(|n| p.escalate(h, n) / h).collect();
        assert_eq!(got, vec![1, 2, 4, 5, 5]);
        let flat = policy(r#"{"increment": false}"#);
        assert_eq!(flat.escalate(h, 9), h);
        assert!(Policy::new(toml_like(r#"{"factor": 0.5}"#)).is_err());
        assert!(Policy::new(toml_like(r#"{"ban_time": "soon"}"#)).is_err());
    }

    #[test]
    fn parse_net_truncates_and_refuses_text() {
        assert_eq!(parse_net("10.1.2.3/24").unwrap().to_string(), "10.1.2.0/24");
        assert_eq!(
            parse_net("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert!(parse_net("1.2.3.4; rm -rf /").is_err());
    }
}
