//! `tansa case`: investigation tickets in the store. Changes go to the store itself, or to
//! the server's API (`POST /api/v1/cases`) while `tansa serve` holds it; reads go through
//! either.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tansa_store::cases::{self, CaseOp};

use crate::cli::{CaseCommand, OutputFormat};
use crate::output::clean as cell;

/// Applies a change where the store is.
pub(crate) fn apply(data: &Path, cold: Option<&Path>, op: &CaseOp) -> Result<u64> {
    match tansa_store::DuckStore::open(data, cold) {
        Ok(mut s) => Ok(s.case_op(op, tansa_event::now_nanos())?),
        Err(e @ tansa_store::StoreError::Locked { .. }) => {
            let Some(r) = super::remote::Remote::find(data)? else {
                return Err(e).context("opening the store");
            };
            let v = r.json("POST", "/api/v1/cases", Some(&serde_json::to_value(op)?))?;
            v["id"]
                .as_u64()
                .context("the server's answer has no case id")
        }
        Err(e) => Err(e).context("opening the store"),
    }
}

/// Links an exported bundle (its hash and directory) to a case.
pub(crate) fn link_bundle(
    data: &Path,
    cold: Option<&Path>,
    id: u64,
    ex: &tansa_evidence::bundle::Exported,
) -> Result<()> {
    let dir = ex.dir.canonicalize().unwrap_or_else(|_| ex.dir.clone());
    apply(
        data,
        cold,
        &CaseOp::Link {
            id,
            kind: "bundle".into(),
            value: format!("{} {}", ex.bundle_sha256, dir.display()),
            by: super::ban::actor(),
        },
    )?;
    Ok(())
}

/// `(kind, value)` links from the arguments; a bundle is linked by its hash and directory.
fn links(
    entity: &[String],
    alert: &[String],
    bundle: &[std::path::PathBuf],
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = entity
        .iter()
        .map(|e| ("entity".to_owned(), e.clone()))
        .chain(alert.iter().map(|a| ("alert".to_owned(), a.clone())))
        .collect();
    for b in bundle {
        let p = b.join("custody.json");
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&p).with_context(|| p.display().to_string())?,
        )
        .with_context(|| format!("{}: not a bundle's custody record", p.display()))?;
        let hash = v["bundle_sha256"]
            .as_str()
            .with_context(|| format!("{}: no bundle_sha256", p.display()))?;
        let dir = b.canonicalize().unwrap_or_else(|_| b.clone());
        out.push(("bundle".into(), format!("{hash} {}", dir.display())));
    }
    Ok(out)
}

pub fn run(
    c: CaseCommand,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let by = super::ban::actor();
    let id = match c {
        CaseCommand::List { all } => {
            let store = super::store::open_read_only(data, cold)?;
            for r in cases::list(&*store, all)? {
                if format == OutputFormat::Json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "#{:<4} {:<7} {:<8} {:<20} {:<16} {}",
                        r.id,
                        r.status,
                        r.severity,
                        r.opened,
                        cell(if r.owner.is_empty() { "-" } else { &r.owner }),
                        cell(&r.title)
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        CaseCommand::Show { id } => {
            let store = super::store::open_read_only(data, cold)?;
            let c = cases::get(&*store, id)?.with_context(|| format!("no case {id}"))?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                let r = &c.row;
                println!("case #{} — {}", r.id, cell(&r.title));
                println!(
                    "  status {}{}, severity {}, owner {}",
                    r.status,
                    r.resolution
                        .as_deref()
                        .map(|x| format!(" ({})", cell(x)))
                        .unwrap_or_default(),
                    r.severity,
                    cell(if r.owner.is_empty() { "-" } else { &r.owner })
                );
                println!("  opened {}, updated {}", r.opened, r.updated);
                for l in &c.links {
                    println!(
                        "  {:<7} {}  (by {}, {})",
                        l.kind,
                        cell(&l.value),
                        cell(&l.by),
                        l.added
                    );
                }
                for n in &c.notes {
                    println!("  {} {}: {}", n.at, cell(&n.author), cell(&n.text));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        CaseCommand::Open {
            title,
            severity,
            owner,
            entity,
            alert,
        } => apply(
            data,
            cold,
            &CaseOp::Open {
                title,
                severity: Some(severity),
                owner,
                by,
                links: links(&entity, &alert, &[])?,
            },
        )?,
        CaseCommand::Note { id, text } => apply(
            data,
            cold,
            &CaseOp::Note {
                id,
                author: by,
                text,
            },
        )?,
        CaseCommand::Link {
            id,
            entity,
            alert,
            bundle,
        } => {
            let all = links(&entity, &alert, &bundle)?;
            anyhow::ensure!(
                !all.is_empty(),
                "nothing to link: --entity, --alert or --bundle"
            );
            for (kind, value) in all {
                apply(
                    data,
                    cold,
                    &CaseOp::Link {
                        id,
                        kind,
                        value,
                        by: by.clone(),
                    },
                )?;
            }
            id
        }
        CaseCommand::Assign { id, owner } => apply(data, cold, &CaseOp::Assign { id, owner, by })?,
        CaseCommand::Close { id, resolution } => {
            apply(data, cold, &CaseOp::Close { id, resolution, by })?
        }
        CaseCommand::Reopen { id } => apply(data, cold, &CaseOp::Reopen { id, by })?,
    };
    if format == OutputFormat::Json {
        println!("{}", serde_json::json!({ "id": id }));
    } else {
        println!("case #{id}");
    }
    Ok(ExitCode::SUCCESS)
}
