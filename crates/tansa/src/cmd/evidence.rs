//! `tansa evidence`: export bundles (an entity's, an alert's or a case's lines with their
//! inclusion proofs and the signed seals), check them offline, list the exports made.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tansa_evidence::bundle::{self, Custodian, Selection};
use tansa_store::cases;
use tansa_store::Param;

use crate::cli::{EvidenceCommand, OutputFormat};
use crate::output::clean as cell;

/// The lines of an alert's events, by log path and offset.
fn alert_lines(store: &dyn tansa_store::Backend, id: &str, sel: &mut Selection) -> Result<()> {
    let t = store.query(
        "SELECT log_path, log_offset FROM alert_events WHERE alert_id = ?",
        &[Param::Text(id.to_owned())],
    )?;
    anyhow::ensure!(
        !t.rows.is_empty(),
        "no alert {id:?} with events in the store"
    );
    for r in &t.rows {
        if let (Some(p), Some(o)) = (r[0].as_str(), r[1].as_u64()) {
            sel.lines.insert((p.to_owned(), o));
        }
    }
    Ok(())
}

fn entity_token(e: &str) -> Result<String> {
    let t = e.strip_prefix("user:").unwrap_or(e).trim();
    anyhow::ensure!(
        !t.is_empty() && !t.contains('/') && !t.to_ascii_uppercase().starts_with("AS"),
        "{e:?}: export an address or user:NAME (a prefix's or AS's addresses one by one)"
    );
    Ok(t.to_owned())
}

/// Seals the open segment when no other process writes the log, so that the newest lines
/// can be exported; while a server writes it, its last seal is what there is.
fn seal_now(dir: &Path) -> Result<Option<String>> {
    let now = tansa_event::now_nanos();
    match tansa_evidence::EvidenceLog::open(dir, tansa_evidence::Limits {
                    compress: true,
                    ..tansa_evidence::Limits::default()
                }, now) {
        Ok((mut log, rec)) => {
            for n in rec.notes {
                eprintln!("evidence log: {n}");
            }
            log.seal(now)?;
            Ok(None)
        }
        Err(tansa_evidence::EvidenceError::Busy(_)) => Ok(Some(
            "the evidence log is being written (tansa serve): lines since its last seal are not exported; seals come every evidence_seal_s".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub fn run(
    c: EvidenceCommand,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    match c {
        EvidenceCommand::Export {
            entity,
            alert,
            case,
            out,
            note,
            evidence,
        } => {
            let dir = evidence.unwrap_or_else(|| data.join("evidence"));
            anyhow::ensure!(
                dir.join("key.pk8").exists(),
                "{}: no evidence log here (tansa init, then serve or analyze)",
                dir.display()
            );
            let mut sel = Selection::default();
            if let Some(e) = &entity {
                sel.kind = "entity".into();
                sel.value = e.clone();
                sel.tokens.push(entity_token(e)?);
            } else if let Some(a) = &alert {
                sel.kind = "alert".into();
                sel.value = a.clone();
                let store = super::store::open_read_only(data, cold)?;
                alert_lines(&*store, a, &mut sel)?;
            } else if let Some(n) = case {
                sel.kind = "case".into();
                sel.value = n.to_string();
                let store = super::store::open_read_only(data, cold)?;
                let c = cases::get(&*store, n)?.with_context(|| format!("no case {n}"))?;
                for e in c.linked("entity") {
                    if let Ok(t) = entity_token(e) {
                        sel.tokens.push(t);
                    } else {
                        eprintln!("tansa: case {n}: entity {e} left out (not an address or user)");
                    }
                }
                for a in c.linked("alert") {
                    alert_lines(&*store, a, &mut sel)?;
                }
                anyhow::ensure!(
                    !sel.tokens.is_empty() || !sel.lines.is_empty(),
                    "case {n} links no address, user or alert"
                );
            }
            let busy = seal_now(&dir)?;
            let who = Custodian::here(&format!("tansa {}", env!("CARGO_PKG_VERSION")), note);
            let ex = bundle::export(&dir, &sel, &out, &who)
                .with_context(|| format!("exporting to {}", out.display()))?;
            if let Some(n) = case {
                super::case::link_bundle(data, cold, n, &ex)?;
            }
            if format == OutputFormat::Json {
                println!("{}", ex.custody);
            } else {
                println!(
                    "{}: {} lines from {} sealed segments; bundle SHA-256 {}",
                    out.display(),
                    ex.lines,
                    ex.segments,
                    ex.bundle_sha256
                );
                if ex.unsealed > 0 {
                    println!(
                        "note: {} matching lines are in the open segment, not yet sealed: not exported",
                        ex.unsealed
                    );
                }
                if let Some(b) = busy {
                    println!("note: {b}");
                }
                println!(
                    "check it anywhere: tansa evidence verify {} --key {}",
                    out.display(),
                    ex.custody["key"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Verify { bundle: b, key } => {
            let r = bundle::verify_bundle(&b, key.as_deref())?;
            if format == OutputFormat::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "bundle": b, "ok": r.problems.is_empty(), "lines": r.lines,
                        "seals": r.seals, "key": r.key, "bundle_sha256": r.bundle_sha256,
                        "custody": r.custody, "problems": r.problems,
                    })
                );
            } else {
                for p in &r.problems {
                    println!("TAMPERED {}", cell(p));
                }
                let c = &r.custody;
                println!(
                    "{}: {} lines, {} seals, key {}; exported {} by {} on {} ({} {}); bundle SHA-256 {}: {}",
                    b.display(),
                    r.lines,
                    r.seals,
                    r.key,
                    cell(c["exported_at"].as_str().unwrap_or("?")),
                    cell(c["exported_by"].as_str().unwrap_or("?")),
                    cell(c["host"].as_str().unwrap_or("?")),
                    cell(c["selection"]["kind"].as_str().unwrap_or("?")),
                    cell(c["selection"]["value"].as_str().unwrap_or("?")),
                    r.bundle_sha256,
                    if r.problems.is_empty() {
                        "intact"
                    } else {
                        "NOT intact"
                    }
                );
                if key.is_none() && r.problems.is_empty() {
                    println!("note: compare the key with the one its owner gave you apart from the bundle (--key HEX)");
                }
            }
            Ok(if r.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        EvidenceCommand::Exports { evidence } => {
            let dir = evidence.unwrap_or_else(|| data.join("evidence"));
            for e in bundle::exports(&dir)? {
                if format == OutputFormat::Json {
                    println!("{e}");
                } else {
                    println!(
                        "{}  {:<10} {:<6} {:<24} {:>7} lines  {}  {}",
                        cell(e["exported_at"].as_str().unwrap_or("")),
                        cell(e["exported_by"].as_str().unwrap_or("")),
                        cell(e["selection"]["kind"].as_str().unwrap_or("")),
                        cell(e["selection"]["value"].as_str().unwrap_or("")),
                        e["lines"],
                        e["bundle_sha256"].as_str().unwrap_or(""),
                        cell(e["bundle"].as_str().unwrap_or(""))
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
