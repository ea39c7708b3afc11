//! `tansa hunt --intel FEED`: new indicators run over everything already stored (retro-hunt).
//!
//! The store does the grouping: each distinct address, URL, referrer, User-Agent, command line
//! and named text field comes back once with its first and last time, event count and hosts,
//! and the indicators are matched against those distinct values here (the same matcher as
//! live enrichment), so the cost follows the number of distinct values, not of events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;
use tansa_store::Param;

use super::store::{open_read_only, time_bounds};
use crate::cli::{HuntArgs, OutputFormat};
use crate::output::{cell, clean, io_error};

/// Where values are read: the name reported and the SQL expression.
const ADDRESS_COLUMNS: &[(&str, &str)] = &[
    ("source.ip", "source_ip"),
    ("destination.ip", "destination_ip"),
];
const TEXT_COLUMNS: &[(&str, &str)] = &[
    ("url.original", "url"),
    ("http.request.referrer", "referrer"),
    ("user_agent.original", "user_agent"),
    ("process.command_line", "command_line"),
    (
        "dns.question.name",
        "json_extract_string(fields, '$.\"dns.question.name\"')",
    ),
    (
        "url.domain",
        "json_extract_string(fields, '$.\"url.domain\"')",
    ),
    (
        "source.domain",
        "json_extract_string(fields, '$.\"source.domain\"')",
    ),
    (
        "destination.address",
        "json_extract_string(fields, '$.\"destination.address\"')",
    ),
];

#[derive(Default)]
struct Hit {
    first: i64,
    last: i64,
    events: u64,
    hosts: BTreeSet<String>,
    fields: BTreeSet<&'static str>,
}

pub fn run(
    a: &HuntArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let intel = super::load_intel(&a.intel)?;
    let store = open_read_only(data, cold)?;
    let (from, to) = time_bounds(&a.time)?;
    let mut bounds = String::new();
    let mut params = Vec::new();
    if let Some(f) = from {
        bounds.push_str(" AND ts >= CAST(? AS TIMESTAMP)");
        params.push(Param::Text(f));
    }
    if let Some(t) = to {
        bounds.push_str(" AND ts < CAST(? AS TIMESTAMP)");
        params.push(Param::Text(t));
    }
    let mut hits: BTreeMap<u32, Hit> = BTreeMap::new();
    let mut scratch = Vec::new();
    let groups: Vec<(&'static str, &str, bool)> = ADDRESS_COLUMNS
        .iter()
        .map(|(n, e)| (*n, *e, true))
        .chain(TEXT_COLUMNS.iter().map(|(n, e)| (*n, *e, false)))
        .collect();
    for (name, expr, is_addr) in groups {
        let sql = format!(
            "SELECT v, epoch_us(min(ts)), epoch_us(max(ts)), count(*), \
             list(DISTINCT host) FILTER (WHERE host IS NOT NULL) \
             FROM (SELECT {expr} AS v, ts, host FROM events WHERE {expr} IS NOT NULL{bounds}) \
             GROUP BY v"
        );
        let table = store
            .query(&sql, &params)
            .with_context(|| format!("reading {name}"))?;
        for row in &table.rows {
            let Some(v) = row[0].as_str() else { continue };
            scratch.clear();
            if is_addr {
                if let Ok(ip) = v.parse() {
                    intel.ip_hits(ip, &mut scratch);
                }
            } else {
                intel.text_hits(v, &mut scratch);
            }
            if scratch.is_empty() {
                continue;
            }
            let first = row[1].as_i64().unwrap_or(0) * 1000;
            let last = row[2].as_i64().unwrap_or(0) * 1000;
            scratch.sort_unstable();
            scratch.dedup();
            for &i in &scratch {
                // an indicator that expired before the value was first seen does not apply
                if intel.indicator(i).expires.is_some_and(|e| first > e) {
                    continue;
                }
                let h = hits.entry(i).or_insert_with(|| Hit {
                    first,
                    last,
                    ..Hit::default()
                });
                h.first = h.first.min(first);
                h.last = h.last.max(last);
                h.events += row[3].as_u64().unwrap_or(0);
                h.fields.insert(name);
                for host in row[4].as_array().into_iter().flatten() {
                    if let Some(s) = host.as_str() {
                        h.hosts.insert(s.to_owned());
                    }
                }
            }
        }
    }
    let mut rows: Vec<(u32, Hit)> = hits.into_iter().collect();
    rows.sort_by_key(|(_, h)| h.first);
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let written: std::io::Result<()> = (|| {
        match format {
            OutputFormat::Json => {
                for (i, h) in &rows {
                    let ind = intel.indicator(*i);
                    let feed = intel.feed_of(*i);
                    let v = serde_json::json!({
                        "threat": {
                            "indicator": {
                                "name": ind.ioc.value(),
                                "type": ind.ioc.kind(),
                                "confidence": ind.confidence,
                                "description": ind.description.as_deref(),
                            },
                            "feed": {"name": feed.name},
                        },
                        "tags": ind.tags.iter().map(|t| Value::from(&**t)).collect::<Vec<_>>(),
                        "first_seen": tansa_event::format_ts(h.first),
                        "last_seen": tansa_event::format_ts(h.last),
                        "events": h.events,
                        "hosts": h.hosts,
                        "fields": h.fields,
                    });
                    serde_json::to_writer(&mut out, &v).map_err(io_error)?;
                    writeln!(out)?;
                }
            }
            _ => {
                writeln!(
                    out,
                    "{} of {} indicators seen in the store",
                    rows.len(),
                    intel.indicators().len()
                )?;
                if !rows.is_empty() {
                    writeln!(
                        out,
                        "{:<14} {:<36} {:<20} {:<20} {:>8}  {:<16} FIELDS",
                        "FEED", "INDICATOR", "FIRST SEEN", "LAST SEEN", "EVENTS", "HOSTS"
                    )?;
                }
                for (i, h) in &rows {
                    let ind = intel.indicator(*i);
                    let hosts: Vec<&str> = h.hosts.iter().map(String::as_str).collect();
                    let fields: Vec<&str> = h.fields.iter().copied().collect();
                    writeln!(
                        out,
                        "{:<14} {:<36} {:<20} {:<20} {:>8}  {:<16} {}",
                        cell(&intel.feed_of(*i).name, 14),
                        cell(&ind.ioc.value(), 36),
                        short_ts(h.first),
                        short_ts(h.last),
                        h.events,
                        cell(&hosts.join(","), 16),
                        clean(&fields.join(","))
                    )?;
                }
            }
        }
        out.flush()
    })();
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC, seconds) for a table cell.
fn short_ts(ns: i64) -> String {
    tansa_event::format_ts(ns).chars().take(19).collect()
}
