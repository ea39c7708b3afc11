//! `tansa report`: gathers what the store knows of an incident (traces of its entities,
//! alerts, enrichment, decisions and hook runs, evidence exports) into a
//! [`tansa_trace::report::Report`] and renders it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;
use tansa_store::{cases, Backend, Param};
use tansa_trace::report::{Action, Bundle, CaseBrief, Lang, Profile, Report};
use tansa_trace::{Entity, Options};

use crate::cli::{OutputFormat, ReportArgs, TimeArgs};

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

/// `?, ?, ?` for `n` parameters.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn texts(v: &[String]) -> Vec<Param> {
    v.iter().map(|s| Param::Text(s.clone())).collect()
}

/// Rows of (time, kind, target, outcome, detail) as actions.
fn action_rows(t: &tansa_store::Table) -> impl Iterator<Item = Action> + '_ {
    t.rows.iter().map(|r| {
        let c = |i: usize| text(&r[i]).unwrap_or_default();
        Action {
            time: c(0),
            kind: c(1),
            target: c(2),
            outcome: c(3),
            detail: c(4),
        }
    })
}

/// `columns` of the alerts with these ids whose `present` column is set.
fn of_alerts(
    store: &dyn Backend,
    columns: &str,
    present: &str,
    ids: &[String],
) -> Result<tansa_store::Table> {
    Ok(store.query(
        &format!(
            "SELECT {columns} FROM alerts WHERE id IN ({}) AND {present} IS NOT NULL",
            marks(ids.len())
        ),
        &texts(ids),
    )?)
}

/// Addresses alerted on since a time (most events first; at most 20).
fn alerted_since(store: &dyn Backend, since: &str) -> Result<Vec<String>> {
    let t = match super::store::parse_duration(since) {
        Ok(_) => TimeArgs {
            since: Some(since.to_owned()),
            from: None,
            to: None,
        },
        Err(_) => TimeArgs {
            since: None,
            from: Some(since.to_owned()),
            to: None,
        },
    };
    let (from, _) = super::store::time_bounds(&t)?;
    let from = from.context("--since")?;
    let rows = store.query(
        "SELECT source_ip FROM alerts WHERE last_seen >= ?::TIMESTAMP AND source_ip IS NOT NULL \
         GROUP BY source_ip ORDER BY sum(count) DESC LIMIT 20",
        &[Param::Text(from)],
    )?;
    Ok(rows.rows.iter().filter_map(|r| text(&r[0])).collect())
}

pub fn run(
    a: &ReportArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let lang: Lang = a
        .lang
        .parse()
        .map_err(anyhow::Error::msg)
        .context("--lang")?;
    let store = super::store::open_read_only(data, cold)?;
    let mut case = None;
    let (scope, mut entities): (String, Vec<String>) = if let Some(n) = a.case {
        let c = cases::get(&*store, n)?.with_context(|| format!("no case {n}"))?;
        let mut ents: Vec<String> = c.linked("entity").iter().map(|s| s.to_string()).collect();
        let alerts: Vec<String> = c.linked("alert").iter().map(|s| s.to_string()).collect();
        if !alerts.is_empty() {
            let t = of_alerts(&*store, "DISTINCT source_ip", "source_ip", &alerts)?;
            ents.extend(t.rows.iter().filter_map(|r| text(&r[0])));
        }
        case = Some(CaseBrief {
            id: c.row.id,
            title: c.row.title.clone(),
            status: c.row.status.clone(),
            owner: c.row.owner.clone(),
            notes: c
                .notes
                .iter()
                .map(|n| (n.at.clone(), n.author.clone(), n.text.clone()))
                .collect(),
        });
        (format!("case {n}"), ents)
    } else if let Some(s) = &a.since {
        (format!("since {s}"), alerted_since(&*store, s)?)
    } else {
        (format!("entity {}", a.entity.join(", ")), a.entity.clone())
    };
    let mut seen = BTreeSet::new();
    entities.retain(|e| seen.insert(e.clone()));
    anyhow::ensure!(!entities.is_empty(), "nothing to report on ({scope})");

    let inventory = super::trace::inventory(a.hosts.as_deref(), data)?;
    let opts = Options {
        inventory,
        ..Options::default()
    };
    let mut traces = Vec::new();
    for e in &entities {
        let entity: Entity = e.parse()?;
        let mut t = tansa_trace::trace(&*store, &entity, &opts)?;
        t.look_up_registrations(&*store);
        if t.steps.is_empty() {
            eprintln!("tansa: nothing stored for {e}");
            continue;
        }
        traces.push(t);
    }
    anyhow::ensure!(!traces.is_empty(), "nothing stored for {scope}");

    // alerts' rule ids
    let alert_ids: Vec<String> = traces
        .iter()
        .flat_map(|t| t.alerts.iter().map(|a| a.id.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rule_ids = std::collections::BTreeMap::new();
    if !alert_ids.is_empty() {
        let t = of_alerts(&*store, "id, rule_id", "rule_id", &alert_ids)?;
        for r in &t.rows {
            if let (Some(id), Some(rule)) = (text(&r[0]), text(&r[1])) {
                rule_ids.insert(id, rule);
            }
        }
    }
    // the attacker's addresses as enrichment saw them
    let addresses: Vec<String> = traces
        .iter()
        .flat_map(|t| t.summary.addresses.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut profiles = Vec::new();
    for ip in &addresses {
        let t = store.query(
            "SELECT country, asn, as_org, flags, scanner, events, \
             strftime(first_seen, '%Y-%m-%dT%H:%M:%SZ'), strftime(last_seen, '%Y-%m-%dT%H:%M:%SZ') \
             FROM addresses WHERE ip = ?",
            &[Param::Text(ip.clone())],
        )?;
        let mut p = Profile {
            address: ip.clone(),
            ..Profile::default()
        };
        if let Some(r) = t.rows.first() {
            p.country = text(&r[0]);
            p.asn = r[1].as_u64();
            p.as_org = text(&r[2]);
            p.flags = text(&r[3])
                .unwrap_or_default()
                .split([',', ' '])
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(s) = text(&r[4]).filter(|s| !s.is_empty()) {
                p.flags.push(format!("scanner:{s}"));
            }
            p.events = r[5].as_u64().unwrap_or(0);
            p.first_seen = text(&r[6]);
            p.last_seen = text(&r[7]);
        }
        profiles.push(p);
    }
    // decisions on them and what was run for their alerts
    let mut actions = Vec::new();
    if !addresses.is_empty() {
        let t = store.query(
            &format!(
                "SELECT strftime(created, '%Y-%m-%dT%H:%M:%SZ'), action, value, \
                 CASE WHEN refused IS NOT NULL THEN 'refused: ' || refused WHEN simulated THEN 'simulated' \
                 WHEN revoked IS NOT NULL THEN 'revoked by ' || revoked_by ELSE 'in force' END, \
                 coalesce(reason, '') || CASE WHEN until IS NULL THEN ' (until revoked)' \
                 ELSE ' (until ' || strftime(until, '%Y-%m-%dT%H:%M:%SZ') || ')' END \
                 FROM decisions WHERE value IN ({}) ORDER BY created",
                marks(addresses.len())
            ),
            &texts(&addresses),
        )?;
        actions.extend(action_rows(&t));
    }
    for id in &alert_ids {
        let t = store.query(
            "SELECT strftime(time, '%Y-%m-%dT%H:%M:%SZ'), kind, target, outcome, detail FROM actions \
             WHERE kind IN ('hook', 'approval') AND detail LIKE ? ORDER BY time",
            &[Param::Text(format!("%alert {id} %"))],
        )?;
        actions.extend(action_rows(&t));
    }
    actions.sort_by(|x, y| x.time.cmp(&y.time));
    drop(store);

    // evidence: a bundle exported now, and earlier exports of the same scope
    let evidence = data.join("evidence");
    if let Some(out) = &a.bundle {
        let mut sel = tansa_evidence::bundle::Selection {
            kind: scope.split(' ').next().unwrap_or("entity").to_owned(),
            value: scope
                .split_once(' ')
                .map(|x| x.1.to_owned())
                .unwrap_or_default(),
            ..Default::default()
        };
        sel.tokens = addresses.clone();
        for e in &entities {
            if let Some(u) = e.strip_prefix("user:") {
                sel.tokens.push(u.to_owned());
            }
        }
        let who = tansa_evidence::bundle::Custodian::here(
            &format!("tansa {}", env!("CARGO_PKG_VERSION")),
            Some(format!("incident report: {scope}")),
        );
        let ex = tansa_evidence::bundle::export(&evidence, &sel, out, &who)
            .with_context(|| format!("exporting the evidence to {}", out.display()))?;
        eprintln!(
            "tansa: evidence bundle {}: {} lines, SHA-256 {}",
            out.display(),
            ex.lines,
            ex.bundle_sha256
        );
        if let Some(n) = a.case {
            super::case::link_bundle(data, cold, n, &ex)?;
        }
    }
    let wanted: BTreeSet<String> = entities.iter().chain(addresses.iter()).cloned().collect();
    let bundles = tansa_evidence::bundle::exports(&evidence)?
        .iter()
        .filter(|e| {
            let (k, v) = (
                e["selection"]["kind"].as_str().unwrap_or(""),
                e["selection"]["value"].as_str().unwrap_or(""),
            );
            match a.case {
                Some(n) => k == "case" && v == n.to_string(),
                None => v.split(", ").any(|x| wanted.contains(x)),
            }
        })
        .map(|e| Bundle {
            sha256: e["bundle_sha256"].as_str().unwrap_or("").to_owned(),
            dir: e["bundle"].as_str().unwrap_or("").to_owned(),
            exported_at: e["exported_at"].as_str().unwrap_or("").to_owned(),
            exported_by: e["exported_by"].as_str().unwrap_or("").to_owned(),
            lines: e["lines"].as_u64().unwrap_or(0),
        })
        .collect();
    let evidence_key = std::fs::read_to_string(evidence.join("key.pub"))
        .ok()
        .map(|k| k.trim().to_owned());

    let title = a.title.clone().unwrap_or_else(|| match (&case, lang) {
        (Some(c), _) => c.title.clone(),
        (None, Lang::En) => format!("Incident report: {}", entities.join(", ")),
        (None, Lang::Zh) => format!("安全事件报告：{}", entities.join("、")),
    });
    let mut report = Report {
        lang,
        title,
        scope,
        generated: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        generated_by: super::ban::actor(),
        case,
        traces,
        rule_ids,
        profiles,
        actions,
        bundles,
        evidence_key,
        iocs: Default::default(),
        recommendations: Vec::new(),
        complaints: Vec::new(),
        summary: String::new(),
    };
    report.derive();
    let body = match format {
        OutputFormat::Html => report.html(),
        OutputFormat::Json => serde_json::to_string(&report)? + "\n",
        OutputFormat::Text | OutputFormat::Md => report.markdown(),
    };
    match &a.output {
        Some(p) => std::fs::write(p, body).with_context(|| p.display().to_string())?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
