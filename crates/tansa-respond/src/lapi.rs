//! The subset of CrowdSec's local API that bouncers use, shaped from the decisions in force:
//! `GET /v1/decisions/stream` (all decisions at `startup=true`, then what is new and what
//! ended since the bouncer's last pull) and `GET /v1/decisions?ip=…`. The HTTP side (API
//! keys, routes) is the server's.
//!
//! Each enforced prefix is one CrowdSec decision: scope `Ip` for an address, `Range` for a
//! prefix (an AS decision becomes one `Range` per announced prefix). Ids are the decision's
//! id × 65,536 + the prefix's index.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::firewall::is_host;
use crate::responder::Decision;
use crate::{format_duration, SECOND};

/// Where a bouncer's last pull left it: the last decision id it was sent and when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub id: u64,
    pub time: i64,
}

/// The stream's filters (`scopes`, `origins`, `scenarios_containing`,
/// `scenarios_not_containing`), comma-separated as CrowdSec takes them.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub scopes: Vec<String>,
    pub origins: Vec<String>,
    pub containing: Vec<String>,
    pub not_containing: Vec<String>,
}

fn list(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_lowercase())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

impl Filter {
    pub fn new(
        scopes: Option<&str>,
        origins: Option<&str>,
        containing: Option<&str>,
        not_containing: Option<&str>,
    ) -> Filter {
        Filter {
            scopes: list(scopes),
            origins: list(origins),
            containing: list(containing),
            not_containing: list(not_containing),
        }
    }

    fn keeps(&self, scope: &str, d: &Decision) -> bool {
        let scenario = scenario(d).to_ascii_lowercase();
        (self.scopes.is_empty() || self.scopes.iter().any(|s| s == &scope.to_ascii_lowercase()))
            && (self.origins.is_empty()
                || self
                    .origins
                    .iter()
                    .any(|o| *o == d.row.origin.to_ascii_lowercase()))
            && (self.containing.is_empty() || self.containing.iter().any(|c| scenario.contains(c)))
            && !self.not_containing.iter().any(|c| scenario.contains(c))
    }
}

fn scenario(d: &Decision) -> String {
    d.row
        .rule_id
        .clone()
        .unwrap_or_else(|| format!("tansa/{}", d.row.origin))
}

/// The CrowdSec decisions of one of ours.
fn entries(d: &Decision, now: i64, filter: &Filter, out: &mut Vec<Value>) {
    entries_of(d, d.nets.iter().enumerate(), now, filter, out)
}

fn entries_of<'a>(
    d: &Decision,
    nets: impl Iterator<Item = (usize, &'a IpNet)>,
    now: i64,
    filter: &Filter,
    out: &mut Vec<Value>,
) {
    for (i, n) in nets.take_while(|(i, _)| *i < 65_536) {
        let (scope, value) = if is_host(n) {
            ("Ip", n.addr().to_string())
        } else {
            ("Range", n.to_string())
        };
        if !filter.keeps(scope, d) {
            continue;
        }
        // CrowdSec has no "forever": ten years
        let until = d.row.until.unwrap_or(now + 10 * 365 * 86_400 * SECOND);
        let until = d.row.revoked.map_or(until, |r| r.min(until));
        out.push(json!({
            "id": d.row.id * 65_536 + i as u64,
            "uuid": format!("tansa-{}-{i}", d.row.id),
            "origin": d.row.origin,
            "type": d.row.action,
            "scope": scope,
            "value": value,
            "duration": format_duration(until - now),
            "until": tansa_event::format_ts(until),
            "scenario": scenario(d),
            "simulated": false,
        }));
    }
}

fn or_null(v: Vec<Value>) -> Value {
    // CrowdSec answers null, not [], when there is nothing
    if v.is_empty() {
        Value::Null
    } else {
        Value::Array(v)
    }
}

/// `GET /v1/decisions/stream`: the answer and the bouncer's new cursor.
pub fn stream(
    decisions: &[Decision],
    cursor: Option<Cursor>,
    startup: bool,
    filter: &Filter,
    now: i64,
) -> (Value, Cursor) {
    let mut new = Vec::new();
    let mut deleted = Vec::new();
    let top = decisions.iter().map(|d| d.row.id).max().unwrap_or(0);
    let cur = match (startup, cursor) {
        (false, Some(c)) => Some(c),
        _ => None,
    };
    for d in decisions {
        if d.row.simulated || d.row.refused.is_some() {
            continue;
        }
        let active = d.active(now);
        match cur {
            None => {
                if active {
                    entries(d, now, filter, &mut new);
                }
            }
            Some(c) => {
                if d.row.id > c.id {
                    if active {
                        entries(d, now, filter, &mut new);
                    }
                } else if !active && d.ended_at().is_some_and(|e| e > c.time && e <= now) {
                    entries(d, now, filter, &mut deleted);
                }
            }
        }
    }
    (
        json!({"new": or_null(new), "deleted": or_null(deleted)}),
        Cursor {
            id: top.max(cursor.map_or(0, |c| c.id)),
            time: now,
        },
    )
}

/// `GET /v1/decisions?ip=…|range=…|scope=…&value=…|type=…`: the decisions in force that
/// cover the address (or range), `null` when none.
pub fn query(
    decisions: &[Decision],
    ip: Option<IpAddr>,
    range: Option<IpNet>,
    kind: Option<&str>,
    now: i64,
) -> Value {
    let mut out = Vec::new();
    for d in decisions.iter().filter(|d| d.active(now)) {
        if kind.is_some_and(|k| !k.eq_ignore_ascii_case(&d.row.action)) {
            continue;
        }
        let covers = d
            .nets
            .iter()
            .enumerate()
            .filter(|(_, n)| match (ip, range) {
                (Some(ip), _) => n.contains(&ip),
                (None, Some(r)) => n.contains(&r),
                (None, None) => true,
            });
        entries_of(d, covers, now, &Filter::default(), &mut out);
    }
    or_null(out)
}
