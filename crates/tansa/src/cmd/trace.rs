//! `tansa trace ENTITY`: the attacker's chain as a terminal view, JSON lines or an HTML page.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tansa_trace::{query, Entity, Inventory, Options, Phase, Trace};

use super::store::{open_read_only, time_bounds};
use crate::cli::{OutputFormat, TraceArgs};
use crate::output::{clean, io_error};

/// The host inventory: the file given, else DATA/hosts.toml when it exists.
pub(crate) fn inventory(hosts: Option<&Path>, data: &Path) -> Result<Inventory> {
    let default = data.join("hosts.toml");
    Ok(match hosts {
        Some(p) => Inventory::load(p)?,
        None if default.exists() => Inventory::load(&default)?,
        None => Inventory::default(),
    })
}

pub fn run(
    a: &TraceArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let entity: Entity = a.entity.parse()?;
    let (from, to) = time_bounds(&a.time)?;
    let inventory = inventory(a.hosts.as_deref(), data)?;
    let opts = Options {
        from: from.as_deref().and_then(query::parse_ts),
        to: to.as_deref().and_then(query::parse_ts),
        depth: a.depth,
        idle: a.idle_minutes.max(1) * query::MINUTE,
        inventory,
        ..Options::default()
    };
    let mut store = open_read_only(data, cold)?;
    let mut trace = tansa_trace::trace(&*store, &entity, &opts)?;
    if a.whois {
        let unknown = trace.look_up_registrations(&*store);
        if !unknown.is_empty() {
            // the cache is written by a writer: the read-only handle goes first
            drop(store);
            let queries: Vec<tansa_intel::rdap::Query> =
                unknown.iter().filter_map(|u| u.parse().ok()).collect();
            let args = crate::cli::WhoisArgs {
                targets: unknown,
                offline: false,
                refresh: false,
                max_age: "7d".into(),
                bootstrap: a.bootstrap.clone(),
                timeout: 15,
            };
            for (q, answer) in queries
                .iter()
                .zip(super::whois::look_up(&args, &queries, data, cold)?)
            {
                if let Err(e) = answer {
                    eprintln!("tansa: whois {q}: {}", clean(&format!("{e:#}")));
                }
            }
            store = open_read_only(data, cold)?;
            trace.look_up_registrations(&*store);
        }
    }
    let (sink, colour): (Box<dyn Write>, bool) = match &a.output {
        Some(p) => (
            Box::new(std::fs::File::create(p).with_context(|| format!("{}", p.display()))?),
            false,
        ),
        None => {
            let tty = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            (Box::new(std::io::stdout().lock()), tty)
        }
    };
    let mut out = BufWriter::new(sink);
    match format {
        OutputFormat::Html => out.write_all(tansa_trace::html::render(&trace).as_bytes())?,
        OutputFormat::Json => json(&mut out, &trace)?,
        OutputFormat::Text | OutputFormat::Md => text(&mut out, &trace, colour)?,
    }
    out.flush()?;
    Ok(if trace.steps.is_empty() {
        eprintln!("nothing found for {entity}");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The summary (and the lists around it) as the first line, then one step per line.
fn json(out: &mut impl Write, t: &Trace) -> std::io::Result<()> {
    let mut head = serde_json::to_value(t).map_err(std::io::Error::other)?;
    if let Some(o) = head.as_object_mut() {
        o.remove("steps");
        o.insert("type".into(), "summary".into());
    }
    serde_json::to_writer(&mut *out, &head).map_err(io_error)?;
    out.write_all(b"\n")?;
    for s in &t.steps {
        let mut v = serde_json::to_value(s).map_err(std::io::Error::other)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("type".into(), "step".into());
        }
        serde_json::to_writer(&mut *out, &v).map_err(io_error)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn ansi(p: Phase) -> &'static str {
    match p {
        Phase::Reconnaissance | Phase::Discovery => "\x1b[2m",
        Phase::InitialAccess | Phase::Exfiltration => "\x1b[1;31m",
        Phase::Execution | Phase::CommandAndControl => "\x1b[33m",
        Phase::Persistence | Phase::PrivilegeEscalation => "\x1b[35m",
        Phase::DefenseEvasion | Phase::Impact => "\x1b[1;36m",
        Phase::CredentialAccess => "\x1b[31m",
        Phase::LateralMovement | Phase::Collection => "\x1b[1;34m",
    }
}

fn text(out: &mut impl Write, t: &Trace, colour: bool) -> std::io::Result<()> {
    let s = &t.summary;
    let (b, r) = if colour {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    writeln!(out, "{b}Trace of {}{r}", clean(&s.entity))?;
    let line = |out: &mut dyn Write, k: &str, v: &str| -> std::io::Result<()> {
        if v.is_empty() {
            return Ok(());
        }
        writeln!(out, "  {k:<20} {}", clean(v))
    };
    line(
        out,
        "first / last seen",
        &format!(
            "{} — {} (UTC)",
            s.first_seen.as_deref().unwrap_or("-"),
            s.last_seen.as_deref().unwrap_or("-")
        ),
    )?;
    line(out, "hosts reached", &s.hosts_reached.join(", "))?;
    line(out, "hosts touched", &s.hosts_touched.join(", "))?;
    line(out, "accounts used", &s.accounts.join(", "))?;
    line(out, "addresses", &s.addresses.join(", "))?;
    line(out, "origin", &s.origin.join(", "))?;
    line(
        out,
        "phases",
        &s.phases
            .iter()
            .map(|p| p.label())
            .collect::<Vec<_>>()
            .join(" → "),
    )?;
    line(out, "events", &s.events.to_string())?;
    let list = |out: &mut dyn Write, title: &str, items: &[String]| -> std::io::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        writeln!(out, "\n{b}{title}{r}")?;
        for i in items {
            writeln!(out, "  - {}", clean(i))?;
        }
        Ok(())
    };
    list(out, "How access was gained", &s.access)?;
    list(out, "What was changed", &s.changes)?;
    if let Some(nb) = &t.netblock {
        writeln!(out, "\n{b}Netblock {}{r}: {}", nb.block, nb.totals())?;
        for m in &nb.members {
            writeln!(
                out,
                "  {:<16} {:>6} events  {} — {}  {}",
                m.ip,
                m.events,
                m.first_seen,
                m.last_seen,
                clean(&m.roles.join(", "))
            )?;
        }
    }
    let regs: Vec<String> = t
        .registrations
        .iter()
        .map(|r| format!("{:<16} {} (RDAP, {})", r.address, r.describe(), r.fetched))
        .collect();
    list(out, "Who holds the addresses", &regs)?;
    let inds: Vec<String> = t
        .indicators
        .iter()
        .map(|i| {
            format!(
                "{} {} (first on {} at {}, {} events)",
                i.kind,
                i.value,
                i.host.as_deref().unwrap_or("?"),
                i.first_seen,
                i.events
            )
        })
        .collect();
    list(out, "Indicators", &inds)?;
    let nbs: Vec<String> = t
        .neighbours
        .iter()
        .map(|n| {
            format!(
                "{} {} events {} — {} {}",
                n.ip,
                n.events,
                n.first_seen,
                n.last_seen,
                n.roles.join(", ")
            )
        })
        .collect();
    list(out, "Neighbours in the same /24 at the same time", &nbs)?;
    let alerts: Vec<String> = t
        .alerts
        .iter()
        .map(|a| {
            format!(
                "{:<8} {} {} ({}, {}×)",
                a.severity, a.first_seen, a.rule, a.entity, a.count
            )
        })
        .collect();
    list(out, "Related alerts", &alerts)?;
    writeln!(out, "\n{b}Timeline{r}")?;
    for st in &t.steps {
        let (c, z) = if colour {
            (ansi(st.phase), "\x1b[0m")
        } else {
            ("", "")
        };
        writeln!(
            out,
            "{}  {:<8} {c}{:<20}{z} {}",
            st.time,
            clean(st.host.as_deref().unwrap_or("-")),
            st.phase.label(),
            clean(&st.summary)
        )?;
        let local = st
            .local
            .as_deref()
            .map(|l| format!("local {l}  "))
            .unwrap_or_default();
        writeln!(
            out,
            "      {local}{} · {}",
            clean(&st.source),
            clean(&st.link)
        )?;
        writeln!(out, "      │ {}", clean(&st.raw))?;
    }
    list(out, "Notes", &t.notes)?;
    Ok(())
}
