//! Enforcement backends. Each one is told the whole wanted state ([`Want`]: prefix → end of
//! its ban) and brings the firewall to it, changing only what differs from what it applied
//! last; the first call (and the call after a failure) replaces its whole state atomically.
//!
//! - [`Nftables`]: table `inet tansa` with hash sets of addresses and interval sets of
//!   prefixes (IPv4 and IPv6), each with per-element timeouts, dropped in the `input` and
//!   `forward` hooks after an accept of the allow list. Every change is one `nft -f -`
//!   transaction. Addresses live in hash sets (an element changes in microseconds); prefixes
//!   live in interval sets (real ranges), rewritten whole when one leaves, because nft deletes
//!   interval elements one by one in time linear in the set.
//! - [`Ipset`]: `hash:net` sets with timeouts, fed through `ipset restore -exist`, and a
//!   chain of Tansa's own (allow list: RETURN, bans: DROP) jumped to from INPUT and FORWARD
//!   by iptables/ip6tables.
//! - [`CommandBackend`]: a program run with arguments for every ban and unban.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::{RespondError, Result, SECOND};

/// What should be enforced: each prefix and when its ban ends (`None`: until revoked).
pub type Want = BTreeMap<IpNet, Option<i64>>;

/// Adds prefixes banned until `until` to `w`; a prefix banned twice ends with the later ban
/// (until revoked when either is).
pub fn want_add<'a>(w: &mut Want, nets: impl IntoIterator<Item = &'a IpNet>, until: Option<i64>) {
    for n in nets {
        let e = w.entry(*n).or_insert(until);
        *e = e.zip(until).map(|(a, b)| a.max(b));
    }
}

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub added: usize,
    pub removed: usize,
    /// The whole state was written anew.
    pub full: bool,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0 && !self.full
    }
}

pub trait Firewall: Send {
    fn name(&self) -> &str;
    /// Brings enforcement to `want` at time `now` (Unix ns).
    fn sync(&mut self, want: &Want, now: i64) -> Result<SyncReport>;
    /// Removes everything this backend created.
    fn uninstall(&mut self) -> Result<()>;
    /// Where a backend that passes decision ids and reasons on wants them (prefix → id,
    /// reason); none for the others.
    fn labels(&mut self) -> Option<&mut BTreeMap<IpNet, (u64, String)>> {
        None
    }
}

/// Elements that end within this margin are left to expire rather than deleted (a delete
/// of an element the kernel has just expired would fail the transaction).
const MARGIN: i64 = 2 * SECOND;

fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let err = |message: String| RespondError::Firewall {
        program: program.display().to_string(),
        message,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(text) = stdin {
        let mut w = child.stdin.take().expect("piped");
        // the child may die early; its stderr says why
        let _ = w.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let e = String::from_utf8_lossy(&out.stderr);
        let first: String = e.lines().take(3).collect::<Vec<_>>().join(" | ");
        return Err(err(format!("{} ({})", first.trim(), out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn program(dir: Option<&Path>, name: &str) -> PathBuf {
    match dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    }
}

/// Whether `n` is a single address.
pub(crate) fn is_host(n: &IpNet) -> bool {
    n.prefix_len() == n.max_prefix_len()
}

/// Wanted prefixes without those inside another wanted prefix (interval sets refuse
/// overlaps). A nested prefix that outlives its container comes back at the first sync
/// after the container ends.
fn cover(want: &Want, now: i64) -> Want {
    let mut nets: Vec<(&IpNet, &Option<i64>)> = want
        .iter()
        .filter(|(n, until)| !is_host(n) && until.is_none_or(|u| u > now + MARGIN))
        .collect();
    // by first address, the shorter prefix first: a container comes before what it holds,
    // and the kept prefixes do not overlap, so only the last kept one can hold the next
    nets.sort_by_key(|(n, _)| (matches!(n, IpNet::V6(_)), n.network(), n.prefix_len()));
    let mut last: Option<IpNet> = None;
    let mut out = Want::new();
    for (n, until) in nets {
        if last.is_some_and(|k| k.contains(n)) {
            continue;
        }
        last = Some(*n);
        out.insert(*n, *until);
    }
    out
}

fn live_hosts(want: &Want, now: i64) -> Want {
    want.iter()
        .filter(|(n, until)| is_host(n) && until.is_none_or(|u| u > now + MARGIN))
        .map(|(n, u)| (*n, *u))
        .collect()
}

fn drop_ended(applied: &mut Want, now: i64) {
    applied.retain(|_, u| u.is_none_or(|u| u > now));
}

/// The nftables backend.
pub struct Nftables {
    nft: PathBuf,
    table: String,
    allow: Vec<IpNet>,
    hosts: Want,
    nets: Want,
    /// The table is known to be as `hosts`/`nets` say.
    in_sync: bool,
}

impl Nftables {
    pub fn new(bin_dir: Option<&Path>, table: &str, allow: Vec<IpNet>) -> Result<Nftables> {
        if table.is_empty()
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(RespondError::Invalid(format!(
                "[response] table = {table:?}: letters, digits and _ only"
            )));
        }
        Ok(Nftables {
            nft: program(bin_dir, "nft"),
            table: table.to_owned(),
            allow,
            hosts: Want::new(),
            nets: Want::new(),
            in_sync: false,
        })
    }

    fn set(&self, n: &IpNet, host: bool) -> String {
        let v = if matches!(n, IpNet::V4(_)) { 4 } else { 6 };
        format!(
            "inet {} {}{v}",
            self.table,
            if host { "addr" } else { "net" }
        )
    }

    fn element(n: &IpNet, until: Option<i64>, now: i64) -> String {
        let text = if is_host(n) {
            n.addr().to_string()
        } else {
            n.to_string()
        };
        match until {
            Some(u) => format!("{text} timeout {}ms", ((u - now) / 1_000_000).max(1000)),
            None => text,
        }
    }

    /// `add element SET { a, b, … }` for each set (nothing for an empty list).
    fn add_elements(&self, out: &mut String, elems: &Want, now: i64) {
        let mut by_set: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (n, u) in elems {
            by_set
                .entry(self.set(n, is_host(n)))
                .or_default()
                .push(Self::element(n, *u, now));
        }
        for (set, list) in by_set {
            for chunk in list.chunks(20_000) {
                out.push_str(&format!("add element {set} {{ {} }}\n", chunk.join(", ")));
            }
        }
    }

    fn table_text(&self) -> String {
        let t = &self.table;
        let (a4, a6): (Vec<&IpNet>, Vec<&IpNet>) =
            self.allow.iter().partition(|n| matches!(n, IpNet::V4(_)));
        let list = |v: &[&IpNet]| {
            if v.is_empty() {
                String::new()
            } else {
                // overlapping allowed prefixes are merged by auto-merge
                format!(
                    " elements = {{ {} }};",
                    v.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        let mut s = format!("table inet {t} {{\n");
        for v in ["4", "6"] {
            let ty = if v == "4" { "ipv4_addr" } else { "ipv6_addr" };
            s.push_str(&format!(
                "  set addr{v} {{ type {ty}; flags timeout; size 4194304; }}\n  set net{v} {{ type {ty}; flags interval, timeout; size 4194304; }}\n"
            ));
        }
        s.push_str(&format!(
            "  set allow4 {{ type ipv4_addr; flags interval; auto-merge;{} }}\n  set allow6 {{ type ipv6_addr; flags interval; auto-merge;{} }}\n",
            list(&a4),
            list(&a6)
        ));
        for (chain, hook) in [("input", "input"), ("forward", "forward")] {
            s.push_str(&format!(
                "  chain {chain} {{\n    type filter hook {hook} priority filter - 10; policy accept;\n    ip saddr @allow4 accept\n    ip6 saddr @allow6 accept\n    ip saddr @addr4 counter drop\n    ip saddr @net4 counter drop\n    ip6 saddr @addr6 counter drop\n    ip6 saddr @net6 counter drop\n  }}\n"
            ));
        }
        s.push_str("}\n");
        s
    }

    fn apply(&self, script: &str) -> Result<()> {
        run(&self.nft, &["-f", "-"], Some(script)).map(|_| ())
    }
}

impl Firewall for Nftables {
    fn name(&self) -> &str {
        "nftables"
    }

    fn sync(&mut self, want: &Want, now: i64) -> Result<SyncReport> {
        let hosts = live_hosts(want, now);
        let nets = cover(want, now);
        drop_ended(&mut self.hosts, now);
        drop_ended(&mut self.nets, now);
        if !self.in_sync {
            // one transaction: the old table (if any) goes and the new one comes, no gap
            let t = &self.table;
            let mut s = format!("add table inet {t}\ndelete table inet {t}\n");
            s.push_str(&self.table_text());
            self.add_elements(&mut s, &hosts, now);
            self.add_elements(&mut s, &nets, now);
            self.apply(&s)?;
            let report = SyncReport {
                added: hosts.len() + nets.len(),
                removed: 0,
                full: true,
            };
            self.hosts = hosts;
            self.nets = nets;
            self.in_sync = true;
            return Ok(report);
        }
        let mut s = String::new();
        let mut report = SyncReport::default();
        // addresses: new ones added; changed ones replaced; gone ones deleted (an add first
        // makes the delete safe whatever the kernel holds)
        let mut fresh = Want::new();
        for (n, u) in &hosts {
            match self.hosts.get(n) {
                Some(old) if old == u => {}
                Some(_) => {
                    let set = self.set(n, true);
                    let a = n.addr();
                    s.push_str(&format!(
                        "add element {set} {{ {a} }}\ndelete element {set} {{ {a} }}\n"
                    ));
                    fresh.insert(*n, *u);
                }
                None => {
                    fresh.insert(*n, *u);
                }
            }
        }
        for (n, u) in &self.hosts {
            if !hosts.contains_key(n) && u.is_none_or(|u| u > now + MARGIN) {
                let set = self.set(n, true);
                let a = n.addr();
                s.push_str(&format!(
                    "add element {set} {{ {a} }}\ndelete element {set} {{ {a} }}\n"
                ));
                report.removed += 1;
            }
        }
        report.added += fresh.len();
        self.add_elements(&mut s, &fresh, now);
        // prefixes: added when nothing left or changed, else the sets rewritten
        let only_added = self
            .nets
            .iter()
            .all(|(n, u)| nets.get(n) == Some(u) || u.is_some_and(|u| u <= now + MARGIN));
        if only_added {
            let new: Want = nets
                .iter()
                .filter(|(n, _)| !self.nets.contains_key(n))
                .map(|(n, u)| (*n, *u))
                .collect();
            report.added += new.len();
            self.add_elements(&mut s, &new, now);
        } else {
            for v in ["4", "6"] {
                s.push_str(&format!("flush set inet {} net{v}\n", self.table));
            }
            report.removed += self.nets.keys().filter(|n| !nets.contains_key(n)).count();
            report.added += nets.keys().filter(|n| !self.nets.contains_key(n)).count();
            self.add_elements(&mut s, &nets, now);
        }
        if s.is_empty() {
            self.hosts = hosts;
            self.nets = nets;
            return Ok(report);
        }
        if let Err(e) = self.apply(&s) {
            // the next sync writes everything anew
            self.in_sync = false;
            return Err(e);
        }
        self.hosts = hosts;
        self.nets = nets;
        Ok(report)
    }

    fn uninstall(&mut self) -> Result<()> {
        let t = &self.table;
        self.apply(&format!("add table inet {t}\ndelete table inet {t}\n"))?;
        self.in_sync = false;
        self.hosts.clear();
        self.nets.clear();
        Ok(())
    }
}

/// The ipset + iptables backend.
pub struct Ipset {
    ipset: PathBuf,
    iptables: [PathBuf; 2],
    prefix: String,
    allow: Vec<IpNet>,
    applied: Want,
    in_sync: bool,
}

impl Ipset {
    pub fn new(bin_dir: Option<&Path>, prefix: &str, allow: Vec<IpNet>) -> Result<Ipset> {
        if prefix.is_empty()
            || prefix.len() > 20
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(RespondError::Invalid(format!(
                "[response] table = {prefix:?}: up to 20 letters, digits and _"
            )));
        }
        Ok(Ipset {
            ipset: program(bin_dir, "ipset"),
            iptables: [program(bin_dir, "iptables"), program(bin_dir, "ip6tables")],
            prefix: prefix.to_owned(),
            allow,
            applied: Want::new(),
            in_sync: false,
        })
    }

    fn name_of(&self, v6: bool, allow: bool) -> String {
        format!(
            "{}-{}{}",
            self.prefix,
            if allow { "allow" } else { "ban" },
            if v6 { "6" } else { "4" }
        )
    }

    fn entry(n: &IpNet, until: Option<i64>, now: i64) -> String {
        // ipset: timeout 0 is "never"
        let secs = until.map_or(0, |u| ((u - now) / SECOND).max(1));
        format!("{n} timeout {secs}")
    }

    /// Tansa's chain (allowed sources return to the caller, banned ones are dropped) and
    /// one jump to it from INPUT and FORWARD; `add = false` removes them. The allow list
    /// returns rather than accepts, so the host's own rules still apply to those sources.
    fn rules(&self, add: bool) -> Result<()> {
        let chain = self.prefix.as_str();
        for (i, ipt) in self.iptables.iter().enumerate() {
            let v6 = i == 1;
            let has = |args: &[&str]| run(ipt, args, None).is_ok();
            if add {
                if !has(&["-w", "-n", "-L", chain]) {
                    run(ipt, &["-w", "-N", chain], None)?;
                }
                run(ipt, &["-w", "-F", chain], None)?;
                for (set, target) in [
                    (self.name_of(v6, true), "RETURN"),
                    (self.name_of(v6, false), "DROP"),
                ] {
                    run(
                        ipt,
                        &[
                            "-w",
                            "-A",
                            chain,
                            "-m",
                            "set",
                            "--match-set",
                            &set,
                            "src",
                            "-j",
                            target,
                        ],
                        None,
                    )?;
                }
            }
            for hook in ["INPUT", "FORWARD"] {
                let present = has(&["-w", "-C", hook, "-j", chain]);
                if add && !present {
                    run(ipt, &["-w", "-I", hook, "1", "-j", chain], None)?;
                } else if !add && present {
                    run(ipt, &["-w", "-D", hook, "-j", chain], None)?;
                }
            }
            if !add && has(&["-w", "-n", "-L", chain]) {
                run(ipt, &["-w", "-F", chain], None)?;
                run(ipt, &["-w", "-X", chain], None)?;
            }
        }
        Ok(())
    }
}

impl Firewall for Ipset {
    fn name(&self) -> &str {
        "ipset"
    }

    fn sync(&mut self, want: &Want, now: i64) -> Result<SyncReport> {
        let live: Want = want
            .iter()
            .filter(|(_, u)| u.is_none_or(|u| u > now + MARGIN))
            .map(|(n, u)| (*n, *u))
            .collect();
        drop_ended(&mut self.applied, now);
        let mut s = String::new();
        let mut report = SyncReport::default();
        if !self.in_sync {
            for v6 in [false, true] {
                let fam = if v6 { "inet6" } else { "inet" };
                let ban = self.name_of(v6, false);
                let allow = self.name_of(v6, true);
                s.push_str(&format!(
                    "create {ban} hash:net family {fam} timeout 0 maxelem 4194304\nflush {ban}\ncreate {allow} hash:net family {fam}\nflush {allow}\n"
                ));
            }
            for n in &self.allow {
                let set = self.name_of(matches!(n, IpNet::V6(_)), true);
                s.push_str(&format!("add {set} {n}\n"));
            }
            self.applied.clear();
            report.full = true;
        }
        for (n, u) in &live {
            if self.applied.get(n) != Some(u) {
                let set = self.name_of(matches!(n, IpNet::V6(_)), false);
                s.push_str(&format!("add {set} {}\n", Self::entry(n, *u, now)));
                report.added += 1;
            }
        }
        for n in self.applied.keys() {
            if !live.contains_key(n) {
                let set = self.name_of(matches!(n, IpNet::V6(_)), false);
                s.push_str(&format!("del {set} {n}\n"));
                report.removed += 1;
            }
        }
        if !s.is_empty() {
            if let Err(e) = run(&self.ipset, &["restore", "-exist"], Some(&s)) {
                self.in_sync = false;
                return Err(e);
            }
        }
        if !self.in_sync {
            self.rules(true)?;
            self.in_sync = true;
        }
        self.applied = live;
        Ok(report)
    }

    fn uninstall(&mut self) -> Result<()> {
        self.rules(false)?;
        // a set that is not there is not an error
        for v6 in [false, true] {
            for allow in [false, true] {
                let _ = run(&self.ipset, &["destroy", &self.name_of(v6, allow)], None);
            }
        }
        self.in_sync = false;
        self.applied.clear();
        Ok(())
    }
}

/// A program run for each ban and unban.
pub struct CommandBackend {
    ban: Vec<String>,
    unban: Vec<String>,
    applied: Want,
    /// Decision ids and reasons for the placeholders.
    labels: BTreeMap<IpNet, (u64, String)>,
}

impl CommandBackend {
    pub fn new(ban: Vec<String>, unban: Vec<String>) -> Result<CommandBackend> {
        if ban.is_empty() {
            return Err(RespondError::Invalid("[response] command is empty".into()));
        }
        Ok(CommandBackend {
            ban,
            unban,
            applied: Want::new(),
            labels: BTreeMap::new(),
        })
    }

    fn call(&self, argv: &[String], n: &IpNet, until: Option<i64>, now: i64) -> Result<()> {
        let value = if is_host(n) {
            n.addr().to_string()
        } else {
            n.to_string()
        };
        let secs = until.map_or(0, |u| ((u - now) / SECOND).max(1)).to_string();
        let (id, reason) = self
            .labels
            .get(n)
            .map(|(i, r)| (i.to_string(), r.clone()))
            .unwrap_or_default();
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| {
                a.replace("{value}", &value)
                    .replace("{seconds}", &secs)
                    .replace("{decision}", &id)
                    .replace("{reason}", &reason)
            })
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(Path::new(&argv[0]), &refs, None).map(|_| ())
    }
}

impl Firewall for CommandBackend {
    fn name(&self) -> &str {
        "command"
    }

    fn labels(&mut self) -> Option<&mut BTreeMap<IpNet, (u64, String)>> {
        Some(&mut self.labels)
    }

    fn sync(&mut self, want: &Want, now: i64) -> Result<SyncReport> {
        drop_ended(&mut self.applied, now);
        let mut report = SyncReport::default();
        let mut first_error = None;
        for (n, u) in want {
            if u.is_none_or(|u| u > now + MARGIN) && self.applied.get(n) != Some(u) {
                match self.call(&self.ban, n, *u, now) {
                    Ok(()) => {
                        self.applied.insert(*n, *u);
                        report.added += 1;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        let gone: Vec<IpNet> = self
            .applied
            .keys()
            .filter(|n| !want.contains_key(n))
            .copied()
            .collect();
        for n in gone {
            if !self.unban.is_empty() {
                if let Err(e) = self.call(&self.unban, &n, None, now) {
                    first_error.get_or_insert(e);
                    continue;
                }
            }
            self.applied.remove(&n);
            report.removed += 1;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn uninstall(&mut self) -> Result<()> {
        let now = tansa_event::now_nanos();
        let all: Vec<IpNet> = self.applied.keys().copied().collect();
        for n in all {
            if !self.unban.is_empty() {
                self.call(&self.unban, &n, None, now)?;
            }
            self.applied.remove(&n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::policy::parse_net(s).unwrap()
    }

    #[test]
    fn cover_drops_nested_prefixes_and_ended_ones() {
        let now = 1_000 * SECOND;
        let mut w = Want::new();
        w.insert(net("10.0.0.0/16"), Some(now + 100 * SECOND));
        w.insert(net("10.0.5.0/24"), Some(now + 50 * SECOND));
        w.insert(net("10.1.0.0/24"), None);
        w.insert(net("10.2.0.0/24"), Some(now + SECOND));
        w.insert(net("10.3.0.1"), Some(now + 100 * SECOND));
        let c = cover(&w, now);
        let keys: Vec<String> = c.keys().map(|n| n.to_string()).collect();
        assert_eq!(keys, vec!["10.0.0.0/16", "10.1.0.0/24"]);
        let h = live_hosts(&w, now);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn table_names_are_checked() {
        assert!(Nftables::new(None, "tansa; flush ruleset", vec![]).is_err());
        assert!(Ipset::new(None, "a b", vec![]).is_err());
        assert!(Nftables::new(None, "tansa_test", vec![]).is_ok());
    }
}
