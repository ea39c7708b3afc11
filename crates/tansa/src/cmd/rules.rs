//! `tansa rules check`: every rule's status.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::Result;
use tansa_rules::{SigmaRules, Status};

use crate::cli::{OutputFormat, RulesCheckArgs};
use crate::output::clean;

/// Exit 0 when every rule loaded or is unsupported for a stated reason; 1 when a rule or file
/// is an error (the others are still checked and reported).
pub fn check(a: &RulesCheckArgs, format: OutputFormat) -> Result<ExitCode> {
    for p in &a.paths {
        if !p.exists() {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let rules = SigmaRules::load(&a.paths);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut loaded, mut unsupported, mut errors) = (0, 0, 0);
    if let Some(crs) = super::load_crs_reports(&a.crs)? {
        for r in crs.reports() {
            use tansa_detect::crs::CrsStatus as S;
            let (st, why) = match &r.status {
                S::Loaded => ("loaded", String::new()),
                S::Partial(w) => ("loaded", w.clone()),
                S::Paranoia(p) => ("unsupported", format!("paranoia level {p}")),
                S::Skipped(w) => ("unsupported", w.clone()),
                S::Error(e) => ("error", e.clone()),
            };
            match st {
                "loaded" => loaded += 1,
                "error" => errors += 1,
                _ => unsupported += 1,
            }
            let id = r.id.map(|i| format!("crs:{i}")).unwrap_or_default();
            match format {
                OutputFormat::Json => {
                    let j = serde_json::json!({"path": r.file, "line": r.line, "id": id,
                        "kind": "modsecurity", "status": st, "reason": why});
                    serde_json::to_writer(&mut out, &j).map_err(crate::output::io_error)?;
                    out.write_all(b"\n")?;
                }
                _ => {
                    let sep = if why.is_empty() { "" } else { ": " };
                    writeln!(
                        out,
                        "{st:<12} {:<11} {}:{}  {}{sep}{}",
                        "modsecurity",
                        clean(&r.file),
                        r.line,
                        id,
                        clean(&why)
                    )?;
                }
            }
        }
    }
    for r in rules.reports() {
        match &r.status {
            Status::Loaded => loaded += 1,
            Status::Unsupported(_) => unsupported += 1,
            Status::Error(_) => errors += 1,
        }
        match format {
            OutputFormat::Json => {
                serde_json::to_writer(&mut out, &r.to_json()).map_err(crate::output::io_error)?;
                out.write_all(b"\n")?;
            }
            OutputFormat::Text | OutputFormat::Html | OutputFormat::Md => {
                let (st, why) = match &r.status {
                    Status::Loaded => ("loaded", ""),
                    Status::Unsupported(w) => ("unsupported", w.as_str()),
                    Status::Error(e) => ("error", e.as_str()),
                };
                let sep = if why.is_empty() { "" } else { ": " };
                writeln!(
                    out,
                    "{st:<12} {:<11} {}  {}{sep}{}",
                    r.kind,
                    clean(&r.path.display().to_string()),
                    clean(&r.title),
                    clean(why)
                )?;
            }
        }
    }
    if format == OutputFormat::Text {
        writeln!(
            out,
            "\n{loaded} loaded, {unsupported} unsupported, {errors} errors"
        )?;
    }
    out.flush()?;
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
