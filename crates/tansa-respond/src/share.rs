//! Ban sharing: the server sends each connected agent the decisions in force, as they change;
//! the agent enforces them with its own backend and its own allow list (an agent never bans
//! its own addresses or its office because the server said so). An attacker seen on one host
//! is blocked on all.
//!
//! The server keeps, per agent connection, the ids it has sent ([`ShareCursor`]); a new
//! connection starts with the whole set (`full`), then only what was added or lifted. The
//! agent ([`SharedBans`]) holds what it was sent and brings its firewall to it; on a
//! reconnection the whole set replaces what it held (bans lifted meanwhile go).

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::firewall::{want_add, Firewall, SyncReport, Want};
use crate::policy::{parse_net, Policy};
use crate::{Responder, Result};

/// One decision as an agent receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    pub id: u64,
    pub value: String,
    pub nets: Vec<String>,
    /// Unix ns; none: until revoked.
    pub until: Option<i64>,
    pub reason: String,
}

/// What changed since the last update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The whole set: what the agent held before goes.
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub set: Vec<Shared>,
    #[serde(default)]
    pub unset: Vec<u64>,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        !self.full && self.set.is_empty() && self.unset.is_empty()
    }
}

/// The server's side of one agent connection.
#[derive(Debug, Default)]
pub struct ShareCursor {
    sent: HashSet<u64>,
    generation: Option<u64>,
}

impl ShareCursor {
    /// What to send now (empty when nothing changed since the last call).
    pub fn update(&mut self, r: &Responder, now: i64) -> Update {
        let full = self.generation.is_none();
        if self.generation == Some(r.generation()) {
            return Update::default();
        }
        self.generation = Some(r.generation());
        let mut set = Vec::new();
        let mut live = HashSet::new();
        for d in r.decisions().iter().filter(|d| d.active(now)) {
            live.insert(d.row.id);
            if !self.sent.contains(&d.row.id) {
                set.push(Shared {
                    id: d.row.id,
                    value: d.row.value.clone(),
                    nets: d.row.nets.clone(),
                    until: d.row.until,
                    reason: d.row.reason.clone(),
                });
            }
        }
        let mut unset: Vec<u64> = self.sent.difference(&live).copied().collect();
        unset.sort_unstable();
        self.sent = live;
        Update { full, set, unset }
    }
}

/// What an agent did with an update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub added: usize,
    pub removed: usize,
    /// Decisions this agent's allow list refuses (value and why).
    pub refused: Vec<String>,
    pub in_force: usize,
    /// The firewall's answer (none: no firewall).
    pub sync: Option<std::result::Result<SyncReport, String>>,
}

/// The agent's side: decisions received and enforced.
pub struct SharedBans {
    policy: Policy,
    firewall: Option<Box<dyn Firewall>>,
    held: HashMap<u64, (Vec<IpNet>, Option<i64>)>,
}

impl SharedBans {
    pub fn new(policy: Policy, firewall: Option<Box<dyn Firewall>>) -> SharedBans {
        SharedBans {
            policy,
            firewall,
            held: HashMap::new(),
        }
    }

    pub fn firewall_name(&self) -> &str {
        self.firewall.as_ref().map_or("none", |f| f.name())
    }

    /// Takes an update in and brings the firewall to what is held.
    pub fn apply(&mut self, u: Update, now: i64) -> Applied {
        let mut out = Applied::default();
        if u.full {
            out.removed += self.held.len();
            self.held.clear();
        }
        for id in &u.unset {
            out.removed += usize::from(self.held.remove(id).is_some());
        }
        for s in u.set {
            let nets: Vec<IpNet> = s.nets.iter().filter_map(|n| parse_net(n).ok()).collect();
            if let Some(why) = nets.iter().find_map(|n| self.policy.allow.refuses(n)) {
                out.refused
                    .push(format!("{} (#{}): touches the {why}", s.value, s.id));
                continue;
            }
            if !nets.is_empty() && self.held.insert(s.id, (nets, s.until)).is_none() {
                out.added += 1;
            }
        }
        self.held.retain(|_, (_, u)| u.is_none_or(|u| u > now));
        out.in_force = self.held.len();
        out.sync = self.sync(now);
        out
    }

    /// What is enforced.
    pub fn want(&self, now: i64) -> Want {
        let mut w = Want::new();
        for (nets, until) in self
            .held
            .values()
            .filter(|(_, u)| u.is_none_or(|u| u > now))
        {
            want_add(&mut w, nets, *until);
        }
        w
    }

    /// Brings the firewall to what is held (also after a failure, on the next update).
    pub fn sync(&mut self, now: i64) -> Option<std::result::Result<SyncReport, String>> {
        let want = self.want(now);
        let fw = self.firewall.as_mut()?;
        Some(fw.sync(&want, now).map_err(|e| e.to_string()))
    }

    /// Removes the firewall state (the agent stops sharing).
    pub fn uninstall(&mut self) -> Result<()> {
        match self.firewall.as_mut() {
            Some(f) => f.uninstall(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Config;

    fn policy(allow: &[&str]) -> Policy {
        Policy::new(Config {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            allow_own: false,
            ..Config::default()
        })
        .unwrap()
    }

    fn shared(id: u64, net: &str, until: Option<i64>) -> Shared {
        Shared {
            id,
            value: net.into(),
            nets: vec![net.into()],
            until,
            reason: "r".into(),
        }
    }

    #[test]
    fn agents_hold_what_they_are_sent_and_refuse_their_allow_list() {
        let mut b = SharedBans::new(policy(&["192.0.2.0/24"]), None);
        let a = b.apply(
            Update {
                full: true,
                set: vec![
                    shared(1, "203.0.113.9/32", Some(100)),
                    shared(2, "198.51.100.0/24", None),
                    shared(3, "192.0.2.10/32", None),
                ],
                unset: vec![],
            },
            10,
        );
        assert_eq!((a.added, a.in_force), (2, 2));
        assert_eq!(a.refused.len(), 1);
        assert!(
            a.refused[0].contains("192.0.2.10/32 (#3)"),
            "{:?}",
            a.refused
        );
        assert_eq!(b.want(10).len(), 2);
        // expired by itself; lifted by the server
        assert_eq!(b.want(100).len(), 1);
        let a = b.apply(
            Update {
                unset: vec![2],
                ..Update::default()
            },
            10,
        );
        assert_eq!((a.removed, a.in_force), (1, 1));
        // a reconnection: the whole set replaces what was held
        let a = b.apply(
            Update {
                full: true,
                set: vec![shared(4, "203.0.113.0/24", None)],
                unset: vec![],
            },
            20,
        );
        assert_eq!((a.added, a.removed, a.in_force), (1, 1, 1));
        assert_eq!(
            b.want(20).keys().map(|n| n.to_string()).collect::<Vec<_>>(),
            vec!["203.0.113.0/24"]
        );
    }
}
