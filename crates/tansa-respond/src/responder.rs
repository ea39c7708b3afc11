//! The responder: decisions in memory (those in force and the history escalation counts),
//! written to the store before anything is enforced, and the firewall kept in step.

use std::net::IpAddr;

use ipnet::IpNet;
use tansa_detect::Alert;
use tansa_store::{ActionRow, DecisionRow, DuckStore};

use crate::firewall::{want_add, CommandBackend, Firewall, Ipset, Nftables, SyncReport, Want};
use crate::policy::{parse_net, BackendKind, Policy, Scope};
use crate::{format_duration, RespondError, Result, SECOND};

/// A decision and its prefixes, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub row: DecisionRow,
    pub nets: Vec<IpNet>,
}

impl Decision {
    fn new(row: DecisionRow) -> Decision {
        let nets = row.nets.iter().filter_map(|n| parse_net(n).ok()).collect();
        Decision { row, nets }
    }

    /// Enforced at `now`: not simulated, not refused, not revoked, not over.
    pub fn active(&self, now: i64) -> bool {
        !self.row.simulated
            && self.row.refused.is_none()
            && self.row.revoked.is_none()
            && self.row.until.is_none_or(|u| u > now)
    }

    /// When it stopped (or will stop) being enforced.
    pub fn ended_at(&self) -> Option<i64> {
        match (self.row.revoked, self.row.until) {
            (Some(r), Some(u)) => Some(r.min(u)),
            (r, u) => r.or(u),
        }
    }

    /// The decision as JSON (`tansa ban list --format json`, the API).
    pub fn to_json(&self, now: i64) -> serde_json::Value {
        let r = &self.row;
        let state = if r.refused.is_some() {
            "refused"
        } else if r.simulated {
            "simulated"
        } else if r.revoked.is_some() {
            "revoked"
        } else if self.active(now) {
            "active"
        } else {
            "expired"
        };
        serde_json::json!({
            "id": r.id,
            "created": tansa_event::format_ts(r.created),
            "until": r.until.map(tansa_event::format_ts),
            "duration": r.until.map(|u| format_duration(u - r.created)),
            "remaining": r.until.filter(|_| state == "active").map(|u| format_duration(u - now)),
            "state": state,
            "scope": r.scope,
            "value": r.value,
            "nets": r.nets,
            "action": r.action,
            "reason": r.reason,
            "rule_id": r.rule_id,
            "alert_id": r.alert_id,
            "origin": r.origin,
            "actor": r.actor,
            "offence": r.offence,
            "refused": r.refused,
            "revoked": r.revoked.map(tansa_event::format_ts),
            "revoked_by": r.revoked_by,
        })
    }
}

/// A decision asked for by hand (`tansa ban add`, the API).
#[derive(Debug, Clone, Default)]
pub struct Manual {
    /// An address, a prefix or `AS64500`.
    pub value: String,
    /// Length; `None`: the policy's ban time (escalated for repeat offenders).
    pub duration: Option<i64>,
    /// Until revoked.
    pub permanent: bool,
    pub reason: String,
    /// Who asks (user@host).
    pub actor: String,
    pub simulate: bool,
    /// `manual`, `api`, `agent:NAME`.
    pub origin: String,
}

impl Manual {
    fn origin(&self) -> String {
        if self.origin.is_empty() {
            "manual".into()
        } else {
            self.origin.clone()
        }
    }
}

/// How a prefix is named in a decision: `ip` and the bare address for a single address,
/// `range` and the prefix otherwise.
fn named(net: &IpNet) -> (&'static str, String) {
    if crate::firewall::is_host(net) {
        ("ip", net.addr().to_string())
    } else {
        ("range", net.to_string())
    }
}

/// The prefixes an AS announces, from the ASN database.
pub trait AsnSource: Send {
    fn asn_of(&self, ip: IpAddr) -> Option<u32>;
    fn prefixes(&self, asn: u32) -> Vec<IpNet>;
}

/// The configured firewall (none for `backend = "none"`, or when everything is simulated:
/// a simulation leaves the machine's firewall as it is).
pub fn build_firewall(p: &Policy) -> Result<Option<Box<dyn Firewall>>> {
    if p.config.simulate {
        return Ok(None);
    }
    let allow: Vec<IpNet> = p.allow.nets().copied().collect();
    let dir = p.config.bin_dir.as_deref();
    Ok(match p.config.backend {
        BackendKind::Nftables => Some(Box::new(Nftables::new(dir, &p.config.table, allow)?)),
        BackendKind::Ipset => Some(Box::new(Ipset::new(dir, &p.config.table, allow)?)),
        BackendKind::Command => Some(Box::new(CommandBackend::new(
            p.config.command.clone(),
            p.config.unban_command.clone(),
        )?)),
        BackendKind::None => None,
    })
}

/// Seconds between retries of a firewall that failed.
const RETRY: i64 = 10 * SECOND;

pub struct Responder {
    pub policy: Policy,
    firewall: Option<Box<dyn Firewall>>,
    store: DuckStore,
    decisions: Vec<Decision>,
    next_id: u64,
    actor: String,
    asn: Option<Box<dyn AsnSource>>,
    dirty: bool,
    last_tick: i64,
    last_error: Option<(i64, String)>,
    last_sync: Option<std::result::Result<SyncReport, String>>,
    /// Prefixes of the decisions in force or simulated as in force (prefix → end), and
    /// their lengths: which addresses are banned already, without a scan of every decision
    /// per alert. Rebuilt after a change (`None`).
    covering: Option<(Want, std::collections::BTreeSet<u8>)>,
    /// Counts changes to the decisions (what agents are sent is looked at again only then).
    generation: u64,
}

impl Responder {
    /// Loads the decisions in force and those escalation counts from `store`.
    pub fn open(
        policy: Policy,
        store: DuckStore,
        firewall: Option<Box<dyn Firewall>>,
        actor: &str,
        now: i64,
    ) -> Result<Responder> {
        let rows = store.decisions_since(now - policy.remember, now)?;
        let next_id = store.last_decision_id()? + 1;
        Ok(Responder {
            policy,
            firewall,
            store,
            decisions: rows.into_iter().map(Decision::new).collect(),
            next_id,
            actor: actor.to_owned(),
            asn: None,
            dirty: true,
            last_tick: now,
            last_error: None,
            last_sync: None,
            covering: None,
            generation: 0,
        })
    }

    pub fn set_asn_source(&mut self, s: Box<dyn AsnSource>) {
        self.asn = Some(s);
    }

    pub fn firewall_name(&self) -> &str {
        self.firewall.as_ref().map_or("none", |f| f.name())
    }

    /// What should be enforced now.
    pub fn want(&self, now: i64) -> Want {
        let mut w = Want::new();
        for d in self.decisions.iter().filter(|d| d.active(now)) {
            want_add(&mut w, &d.nets, d.row.until);
        }
        w
    }

    /// Whether a decision in force (or simulated as in force) covers `net`.
    fn covered(&mut self, net: &IpNet, now: i64) -> bool {
        let (map, lens) = self.covering.get_or_insert_with(|| {
            let mut map = Want::new();
            for d in &self.decisions {
                let simulated_in_force = d.row.simulated
                    && d.row.refused.is_none()
                    && d.row.revoked.is_none()
                    && d.row.until.is_none_or(|u| u > now);
                if d.active(now) || simulated_in_force {
                    want_add(&mut map, &d.nets, d.row.until);
                }
            }
            let lens = map.keys().map(IpNet::prefix_len).collect();
            (map, lens)
        });
        lens.iter()
            .filter(|&&l| l <= net.prefix_len())
            .filter_map(|&l| IpNet::new(net.addr(), l).ok().map(|c| c.trunc()))
            .filter(|c| c.max_prefix_len() == net.max_prefix_len())
            .any(|c| map.get(&c).is_some_and(|u| u.is_none_or(|u| u > now)))
    }

    /// Changes so far to the decisions (made, revoked, ended).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The decisions kept in memory (in force, and made within `remember`), oldest first.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// A new or grown alert: the decision the matrix makes of it (none: it bans nothing, or its source
    /// is banned already — or would be, in simulation).
    pub fn on_alert(&mut self, a: &Alert, now: i64) -> Result<Option<Decision>> {
        let Some(v) = self.policy.verdict(a) else {
            return Ok(None);
        };
        let ip = v.net.addr();
        let asn = match v.scope {
            Scope::As => self
                .asn
                .as_ref()
                .and_then(|s| s.asn_of(ip).map(|n| (n, s.prefixes(n))))
                .filter(|(_, p)| !p.is_empty()),
            _ => None,
        };
        let (scope, value, nets) = match asn {
            Some((n, p)) => ("as", format!("AS{n}"), p),
            // an address or prefix; an AS without ASN data: the address alone
            None => {
                let (scope, value) = named(&v.net);
                (scope, value, vec![v.net])
            }
        };
        // already banned (another alert of the same attack, or its prefix is banned) — or
        // would be, in simulation
        if nets.iter().all(|n| self.covered(n, now)) {
            return Ok(None);
        }
        let reason = format!("{} ({})", a.rule_title, a.rule_id);
        let d = self.decide(Proposal {
            scope,
            value,
            nets,
            base: Some(v.base),
            escalate: true,
            reason,
            rule_id: Some(a.rule_id.to_owned()),
            alert_id: Some(a.id.clone()),
            origin: "tansa".into(),
            actor: self.actor.clone(),
            simulated: v.simulated,
            now,
        })?;
        Ok(Some(d))
    }

    /// A decision by hand.
    pub fn add(&mut self, m: &Manual, now: i64) -> Result<Decision> {
        let v = m.value.trim();
        let (scope, value, nets) = if let Some(n) = v
            .strip_prefix("AS")
            .or_else(|| v.strip_prefix("as"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            let nets = self.asn.as_ref().map(|s| s.prefixes(n)).unwrap_or_default();
            if nets.is_empty() {
                return Err(RespondError::Invalid(format!(
                    "AS{n}: no announced prefixes known (an ASN database is needed: [detection] geoip)"
                )));
            }
            ("as", format!("AS{n}"), nets)
        } else {
            let net = parse_net(v)?;
            let (scope, value) = named(&net);
            (scope, value, vec![net])
        };
        self.decide(Proposal {
            scope,
            value,
            nets,
            base: if m.permanent {
                None
            } else {
                Some(m.duration.unwrap_or(self.policy.ban_time))
            },
            escalate: m.duration.is_none() && !m.permanent,
            reason: if m.reason.is_empty() {
                "manual".into()
            } else {
                m.reason.clone()
            },
            rule_id: None,
            alert_id: None,
            origin: m.origin(),
            actor: m.actor.clone(),
            simulated: m.simulate || self.policy.config.simulate,
            now,
        })
    }

    fn decide(&mut self, p: Proposal) -> Result<Decision> {
        let now = p.now;
        let refused = p.nets.iter().find_map(|n| {
            self.policy
                .allow
                .refuses(n)
                .map(|why| format!("{n} touches the {why}"))
        });
        let offence = 1 + self
            .decisions
            .iter()
            .filter(|d| {
                d.row.value == p.value
                    && d.row.refused.is_none()
                    && d.row.created >= now - self.policy.remember
            })
            .count() as u32;
        let until = p.base.map(|b| {
            now + if p.escalate {
                self.policy.escalate(b, offence)
            } else {
                b
            }
        });
        let row = DecisionRow {
            id: self.next_id,
            created: now,
            until,
            scope: p.scope.into(),
            value: p.value,
            nets: p.nets.iter().map(|n| n.to_string()).collect(),
            action: "ban".into(),
            reason: p.reason,
            rule_id: p.rule_id,
            alert_id: p.alert_id,
            origin: p.origin,
            actor: p.actor.clone(),
            offence: if refused.is_some() { 0 } else { offence },
            simulated: p.simulated,
            refused: refused.clone(),
            revoked: None,
            revoked_by: None,
        };
        self.store.put_decisions(std::slice::from_ref(&row))?;
        self.next_id += 1;
        let (kind, outcome, detail) = match (&refused, p.simulated) {
            (Some(why), _) => ("refused", "refused", why.clone()),
            (None, true) => ("decision", "simulated", describe(&row)),
            (None, false) => ("decision", "ok", describe(&row)),
        };
        self.record(kind, Some(row.id), &p.actor, outcome, detail, now);
        let d = Decision::new(row);
        let enforce = d.active(now);
        self.decisions.push(d.clone());
        self.covering = None;
        self.generation += 1;
        if enforce {
            self.dirty = true;
            self.sync(now);
        }
        Ok(d)
    }

    /// Revokes the decisions in force on `target` (an id, or the value they were made on).
    pub fn revoke(&mut self, target: &str, by: &str, now: i64) -> Result<Vec<Decision>> {
        let t = target.trim();
        let id: Option<u64> = t.parse().ok();
        let value = if id.is_some() {
            None
        } else if let Some(n) = t.strip_prefix("AS").or_else(|| t.strip_prefix("as")) {
            Some(format!("AS{n}"))
        } else {
            Some(named(&parse_net(t)?).1)
        };
        let hits: Vec<usize> = self
            .decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                d.row.revoked.is_none()
                    && d.row.refused.is_none()
                    && d.row.until.is_none_or(|u| u > now)
                    && (Some(d.row.id) == id || value.as_deref() == Some(d.row.value.as_str()))
            })
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            return Err(RespondError::NotFound(t.to_owned()));
        }
        let mut out = Vec::new();
        for i in hits {
            let d = &mut self.decisions[i];
            self.store.revoke_decision(d.row.id, now, by)?;
            // the store keeps microseconds
            d.row.revoked = Some(now / 1000 * 1000);
            d.row.revoked_by = Some(by.to_owned());
            out.push(d.clone());
        }
        self.covering = None;
        self.generation += 1;
        for d in &out {
            self.record("revoked", Some(d.row.id), by, "ok", describe(&d.row), now);
        }
        self.dirty = true;
        self.sync(now);
        Ok(out)
    }

    /// Called about once a second: records decisions that ended, forgets old ones, and syncs
    /// the firewall when something changed (or a failed sync is due for a retry).
    pub fn tick(&mut self, now: i64) {
        let last = self.last_tick;
        let ended: Vec<u64> = self
            .decisions
            .iter()
            .filter(|d| {
                !d.row.simulated
                    && d.row.refused.is_none()
                    && d.row.revoked.is_none()
                    && d.row.until.is_some_and(|u| u > last && u <= now)
            })
            .map(|d| d.row.id)
            .collect();
        for id in &ended {
            self.record(
                "expired",
                Some(*id),
                &self.actor.clone(),
                "ok",
                String::new(),
                now,
            );
        }
        if !ended.is_empty() {
            self.dirty = true;
            self.covering = None;
            self.generation += 1;
        }
        let horizon = now - self.policy.remember;
        self.decisions
            .retain(|d| d.row.created >= horizon || d.ended_at().is_none_or(|e| e > horizon));
        self.last_tick = now;
        let retry_due = self
            .last_error
            .as_ref()
            .is_none_or(|(t, _)| now - t >= RETRY);
        if self.dirty && retry_due {
            self.sync(now);
        }
    }

    /// What the last firewall sync did (none yet, or no firewall).
    pub fn last_sync(&self) -> Option<&std::result::Result<SyncReport, String>> {
        self.last_sync.as_ref()
    }

    /// Brings the firewall to the decisions in force (what `tansa ban apply` runs).
    pub fn sync(&mut self, now: i64) -> Option<std::result::Result<SyncReport, String>> {
        let out = self.sync_inner(now);
        self.last_sync.clone_from(&out);
        out
    }

    fn sync_inner(&mut self, now: i64) -> Option<std::result::Result<SyncReport, String>> {
        let want = self.want(now);
        let fw = self.firewall.as_mut()?;
        if let Some(labels) = fw.labels() {
            labels.clear();
            for d in self.decisions.iter().filter(|d| d.active(now)) {
                for n in &d.nets {
                    labels.insert(*n, (d.row.id, d.row.reason.clone()));
                }
            }
        }
        let name = fw.name().to_owned();
        let res = fw.sync(&want, now);
        let out = match res {
            Ok(r) => {
                self.dirty = false;
                self.last_error = None;
                if !r.is_empty() {
                    let detail = format!(
                        "{} added, {} removed{}, {} in force",
                        r.added,
                        r.removed,
                        if r.full { " (written whole)" } else { "" },
                        want.len()
                    );
                    self.record("firewall", None, &name, "ok", detail, now);
                }
                Ok(r)
            }
            Err(e) => {
                let msg = e.to_string();
                // one record per distinct failure, not one per retry
                if self.last_error.as_ref().is_none_or(|(_, m)| *m != msg) {
                    self.record("firewall", None, &name, "error", msg.clone(), now);
                }
                self.last_error = Some((now, msg.clone()));
                Err(msg)
            }
        };
        Some(out)
    }

    /// Removes the firewall state (table, sets, rules).
    pub fn uninstall(&mut self, now: i64) -> Result<()> {
        if let Some(fw) = self.firewall.as_mut() {
            let name = fw.name().to_owned();
            fw.uninstall()?;
            self.record("firewall", None, &name, "ok", "uninstalled".into(), now);
        }
        Ok(())
    }

    fn record(
        &mut self,
        kind: &str,
        id: Option<u64>,
        target: &str,
        outcome: &str,
        detail: String,
        now: i64,
    ) {
        let row = ActionRow {
            time: now,
            kind: kind.into(),
            decision_id: id,
            target: target.into(),
            outcome: outcome.into(),
            detail,
        };
        // the record of actions must not stop enforcement; a store error shows in the log
        if let Err(e) = self.store.put_actions(&[row]) {
            eprintln!("tansa: recording a {kind} action: {e}");
        }
    }

    /// Writes many decisions at once (bulk imports and the benchmark): one store transaction,
    /// one firewall sync. Refused entries are kept as refused.
    pub fn add_many(&mut self, items: &[Manual], now: i64) -> Result<(usize, usize)> {
        let mut rows = Vec::with_capacity(items.len());
        let mut refused = 0;
        for m in items {
            let net = parse_net(&m.value)?;
            let why = self
                .policy
                .allow
                .refuses(&net)
                .map(|w| format!("{net} touches the {w}"));
            refused += usize::from(why.is_some());
            let (scope, value) = named(&net);
            rows.push(DecisionRow {
                id: self.next_id + rows.len() as u64,
                created: now,
                until: if m.permanent {
                    None
                } else {
                    Some(now + m.duration.unwrap_or(self.policy.ban_time))
                },
                scope: scope.into(),
                value,
                nets: vec![net.to_string()],
                action: "ban".into(),
                reason: m.reason.clone(),
                rule_id: None,
                alert_id: None,
                origin: m.origin(),
                actor: m.actor.clone(),
                offence: 1,
                simulated: m.simulate || self.policy.config.simulate,
                refused: why,
                revoked: None,
                revoked_by: None,
            });
        }
        self.store.put_decisions(&rows)?;
        self.next_id += rows.len() as u64;
        let n = rows.len();
        self.record(
            "decision",
            None,
            &items.first().map(|m| m.actor.clone()).unwrap_or_default(),
            "ok",
            format!("{n} decisions at once, {refused} refused"),
            now,
        );
        self.decisions.extend(rows.into_iter().map(Decision::new));
        self.dirty = true;
        self.covering = None;
        self.generation += 1;
        Ok((n, refused))
    }
}

struct Proposal {
    scope: &'static str,
    value: String,
    nets: Vec<IpNet>,
    /// `None`: until revoked.
    base: Option<i64>,
    escalate: bool,
    reason: String,
    rule_id: Option<String>,
    alert_id: Option<String>,
    origin: String,
    actor: String,
    simulated: bool,
    now: i64,
}

fn describe(r: &DecisionRow) -> String {
    format!(
        "ban {} {} for {} (offence {})",
        r.scope,
        r.value,
        r.until
            .map_or("ever".to_owned(), |u| format_duration(u - r.created)),
        r.offence
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lapi;
    use crate::policy::Config;

    const H: i64 = 3600 * SECOND;

    pub(crate) fn store(name: &str) -> (std::path::PathBuf, DuckStore) {
        let dir = std::env::temp_dir().join(format!("tansa-resp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = DuckStore::open(&dir, None).unwrap();
        (dir, s)
    }

    fn config(json: &str) -> Policy {
        let c: Config = serde_json::from_str(json).unwrap();
        Policy::new(c).unwrap()
    }

    pub(crate) fn alert(ip: &str, rule: &'static str, sev: tansa_detect::Severity) -> Alert {
        Alert {
            id: format!("a-{ip}-{rule}"),
            rule_id: rule,
            rule_title: "SSH brute force",
            severity: sev,
            tags: &[],
            first_seen: 0,
            last_seen: 0,
            count: 10,
            key_field: "source.ip",
            key: tansa_detect::Key::Ip(ip.parse().unwrap()),
            host: Some("web01".into()),
            source_ip: Some(ip.parse().unwrap()),
            user: None,
            events: Vec::new(),
            simulated: false,
            threat: None,
        }
    }

    /// A script that appends its arguments to a file: the command backend, for real.
    fn script(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let log = dir.join("calls.log");
        let sh = dir.join("fw.sh");
        std::fs::write(
            &sh,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
        (sh, log)
    }

    #[test]
    fn alerts_ban_escalate_refuse_and_persist() {
        use tansa_detect::Severity::*;
        let (dir, s) = store("main");
        let (sh, log) = script(&dir);
        let p = config(&format!(
            r#"{{"backend": "command", "command": ["{0}", "ban", "{{value}}", "{{seconds}}", "{{reason}}"],
                "unban_command": ["{0}", "unban", "{{value}}"], "ban_time": "1h", "max_time": "3h",
                "allow": ["203.0.113.7"], "allow_own": false,
                "ban": [{{"rules": ["tansa.web.*"], "scope": "prefix", "prefix_v4": 24}},
                        {{"rules": ["tansa.sim.*"], "simulate": true}},
                        {{"severity": "high"}}]}}"#,
            sh.display()
        ));
        let fw = build_firewall(&p).unwrap();
        let t0 = 1_800_000_000 * SECOND;
        let mut r = Responder::open(p, s, fw, "web01", t0).unwrap();
        // medium severity: no entry matches
        assert!(r
            .on_alert(&alert("198.51.100.9", "tansa.x", Medium), t0)
            .unwrap()
            .is_none());
        let d1 = r
            .on_alert(&alert("198.51.100.9", "tansa.ssh.brute_force", High), t0)
            .unwrap()
            .unwrap();
        assert_eq!((d1.row.offence, d1.row.until), (1, Some(t0 + H)));
        // the same attack seen again while banned: nothing new
        assert!(r
            .on_alert(
                &alert("198.51.100.9", "tansa.ssh.password_spray", High),
                t0 + SECOND
            )
            .unwrap()
            .is_none());
        // after expiry it comes back: 2h, then 3h (capped), then 3h
        let mut t = t0 + H + SECOND;
        let mut lens = Vec::new();
        for _ in 0..3 {
            r.tick(t);
            let d = r
                .on_alert(&alert("198.51.100.9", "tansa.ssh.brute_force", High), t)
                .unwrap()
                .unwrap();
            lens.push((d.row.offence, (d.row.until.unwrap() - t) / H));
            t = d.row.until.unwrap() + SECOND;
        }
        assert_eq!(lens, vec![(2, 2), (3, 3), (4, 3)]);
        r.tick(t);
        // the allow list: refused, recorded, never enforced
        let d = r
            .on_alert(&alert("203.0.113.7", "tansa.ssh.brute_force", High), t)
            .unwrap()
            .unwrap();
        assert!(
            d.row
                .refused
                .as_deref()
                .unwrap()
                .contains("allow list 203.0.113.7"),
            "{:?}",
            d.row.refused
        );
        assert!(!d.active(t));
        // a prefix holding the allowed address is refused too
        let d = r
            .on_alert(&alert("203.0.113.99", "tansa.web.sqli", High), t)
            .unwrap()
            .unwrap();
        assert_eq!(d.row.value, "203.0.113.0/24");
        assert!(d.row.refused.is_some());
        // a prefix elsewhere is banned as a range
        let d = r
            .on_alert(&alert("192.0.2.77", "tansa.web.sqli", Critical), t)
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.row.scope.as_str(), d.row.value.as_str()),
            ("range", "192.0.2.0/24")
        );
        // an address inside the banned prefix is banned already
        assert!(r
            .on_alert(&alert("192.0.2.99", "tansa.ssh.brute_force", High), t)
            .unwrap()
            .is_none());
        // simulated: stored, not enforced
        let sim = r
            .on_alert(&alert("198.18.0.5", "tansa.sim.x", High), t)
            .unwrap()
            .unwrap();
        assert!(sim.row.simulated && !sim.active(t));
        // an alert of a rule in simulation (detection side): a simulated decision too
        let mut trial = alert("198.18.0.6", "tansa.ssh.brute_force", High);
        trial.simulated = true;
        let d = r.on_alert(&trial, t).unwrap().unwrap();
        assert!(d.row.simulated && !d.active(t));
        let want = r.want(t);
        let keys: Vec<String> = want.keys().map(|n| n.to_string()).collect();
        assert_eq!(keys, vec!["192.0.2.0/24"]);
        // the script saw bans and the unbans of expiry are not calls (the firewall expires
        // them), but a revoke is
        r.revoke("192.0.2.0/24", "ops@test", t + SECOND).unwrap();
        assert!(r.want(t + SECOND).is_empty());
        let calls = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = calls.lines().collect();
        assert!(
            lines[0].starts_with("ban 198.51.100.9 3600 SSH brute force (tansa.ssh.brute_force)"),
            "{calls}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("ban 192.0.2.0/24 ")),
            "{calls}"
        );
        assert_eq!(lines.last().copied(), Some("unban 192.0.2.0/24"), "{calls}");
        assert!(
            !calls.contains("203.0.113"),
            "allowed addresses never reach the firewall: {calls}"
        );
        assert!(matches!(
            r.revoke("192.0.2.0/24", "x", t + 2 * SECOND),
            Err(RespondError::NotFound(_))
        ));
        // a restart reads the same decisions and counts the same offences
        drop(r);
        let s = DuckStore::open(&dir, None).unwrap();
        let mut r = Responder::open(
            config(
                r#"{"backend": "none", "ban_time": "1h", "max_time": "3h", "allow_own": false}"#,
            ),
            s,
            None,
            "web01",
            t,
        )
        .unwrap();
        let d = r
            .on_alert(
                &alert("198.51.100.9", "tansa.ssh.brute_force", High),
                t + 2 * SECOND,
            )
            .unwrap()
            .unwrap();
        assert_eq!(d.row.offence, 5);
        drop(r);
        let s = DuckStore::open(&dir, None).unwrap();
        let kinds: Vec<String> = s
            .actions(None)
            .unwrap()
            .into_iter()
            .map(|a| format!("{}:{}", a.kind, a.outcome))
            .collect();
        for k in [
            "decision:ok",
            "refused:refused",
            "decision:simulated",
            "revoked:ok",
            "expired:ok",
            "firewall:ok",
        ] {
            assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn manual_decisions_and_the_bouncer_stream() {
        let (dir, s) = store("lapi");
        let p = config(r#"{"backend": "none", "allow_own": false}"#);
        let t0 = 1_800_000_000 * SECOND;
        let mut r = Responder::open(p, s, None, "web01", t0).unwrap();
        let m = |v: &str, d: Option<i64>| Manual {
            value: v.into(),
            duration: d,
            actor: "ops@test".into(),
            ..Manual::default()
        };
        let a = r.add(&m("198.51.100.9", Some(60 * SECOND)), t0).unwrap();
        let b = r.add(&m("2001:db8:1::/48", None), t0).unwrap();
        assert!(r
            .add(&m("10.0.0.1", None), t0)
            .unwrap()
            .row
            .refused
            .is_some());
        assert!(r.add(&m("not an address", None), t0).is_err());
        assert!(r.add(&m("AS64500", None), t0).is_err(), "no ASN data");
        let f = lapi::Filter::default();
        let (v, c) = lapi::stream(r.decisions(), None, true, &f, t0);
        let new = v["new"].as_array().unwrap();
        assert_eq!(new.len(), 2);
        assert_eq!(new[0]["scope"], "Ip");
        assert_eq!(new[0]["value"], "198.51.100.9");
        assert_eq!(new[0]["duration"], "1m0s");
        assert_eq!(new[1]["scope"], "Range");
        assert!(v["deleted"].is_null());
        // nothing changed: both null
        let (v, c) = lapi::stream(r.decisions(), Some(c), false, &f, t0 + SECOND);
        assert!(v["new"].is_null() && v["deleted"].is_null(), "{v}");
        // a's ban ends, a new one starts
        let d = r.add(&m("192.0.2.1", None), t0 + 61 * SECOND).unwrap();
        let (v, c) = lapi::stream(r.decisions(), Some(c), false, &f, t0 + 61 * SECOND);
        assert_eq!(v["new"][0]["value"], "192.0.2.1");
        assert_eq!(v["deleted"][0]["value"], "198.51.100.9", "{v}");
        r.revoke(&b.row.id.to_string(), "ops", t0 + 62 * SECOND)
            .unwrap();
        let (v, _) = lapi::stream(r.decisions(), Some(c), false, &f, t0 + 62 * SECOND);
        assert_eq!(v["deleted"][0]["value"], "2001:db8:1::/48", "{v}");
        // filters
        let only_range = lapi::Filter::new(Some("range"), None, None, None);
        let (v, _) = lapi::stream(r.decisions(), None, true, &only_range, t0 + 62 * SECOND);
        assert!(v["new"].is_null(), "{v}");
        // the query by address
        let q = lapi::query(
            r.decisions(),
            Some("192.0.2.1".parse().unwrap()),
            None,
            None,
            t0 + 62 * SECOND,
        );
        assert_eq!(q[0]["id"], d.row.id * 65_536);
        assert!(lapi::query(
            r.decisions(),
            Some(a.row.value.parse().unwrap()),
            None,
            None,
            t0 + 62 * SECOND
        )
        .is_null());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
