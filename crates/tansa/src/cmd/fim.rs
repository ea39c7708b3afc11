//! `tansa fim`: the file integrity baseline and its checks. The FIM logs (DATA/fim/*.log)
//! are then stored and run through detection as `tansa analyze` does (a running server
//! follows them itself when `[server] fim = true`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use tansa_evidence::fim::{default_paths, Fim};

use crate::cli::{AnalyzeArgs, FimCommand, OutputFormat};
use crate::output::clean;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    a: AnalyzeArgs,
}

/// Stores the FIM logs and runs them through detection (only lines not stored yet are added).
fn ingest(fim: &Fim, format: OutputFormat, data: &Path, cold: Option<&Path>) -> Result<()> {
    if super::remote::Remote::find(data)?.is_some() {
        eprintln!(
            "tansa: a server holds the store: it ingests {} with [server] fim = true",
            fim.changes_log().display()
        );
        return Ok(());
    }
    let mut args = vec!["analyze".to_owned(), "--log-format".into(), "json".into()];
    args.push("--no-geoip".into());
    if format == OutputFormat::Json {
        args.push("--quiet".into());
    }
    for p in [fim.baseline_log(), fim.changes_log()] {
        if p.exists() {
            args.push(p.to_string_lossy().into_owned());
        }
    }
    let w = Wrap::try_parse_from(args).context("the FIM logs")?;
    super::analyze::run(&w.a, format, data, cold)?;
    Ok(())
}

fn host() -> String {
    tansa_server::files::hostname().unwrap_or_else(|| "localhost".into())
}

pub fn run(
    c: FimCommand,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let fim = Fim::new(data);
    match c {
        FimCommand::Baseline {
            paths,
            web_root,
            no_store,
        } => {
            let web_root = web_root.map(|w| std::path::absolute(&w).unwrap_or(w));
            let paths = if paths.is_empty() {
                default_paths(web_root.as_deref())
            } else {
                let mut p: Vec<_> = paths
                    .iter()
                    .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                    .collect();
                p.extend(web_root.clone().filter(|w| !p.contains(w)));
                p
            };
            let (b, errors) = fim.take(
                &paths,
                web_root.as_deref(),
                &host(),
                tansa_event::now_nanos(),
            )?;
            for e in &errors {
                eprintln!("tansa: fim: {}", clean(e));
            }
            if format == OutputFormat::Json {
                println!(
                    "{}",
                    serde_json::json!({"files": b.entries.len(), "taken": b.taken,
                        "baseline": fim.baseline_path(), "unreadable": errors})
                );
            } else {
                println!(
                    "baseline of {} files taken ({}); recorded in {}",
                    b.entries.len(),
                    b.taken,
                    fim.baseline_log().display()
                );
            }
            if !no_store {
                ingest(&fim, OutputFormat::Json, data, cold)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        FimCommand::Check { no_store } => {
            let c = fim
                .check(&host(), tansa_event::now_nanos())?
                .context("no baseline yet: tansa fim baseline")?;
            for e in &c.errors {
                eprintln!("tansa: fim: {}", clean(e));
            }
            if c.baseline_altered {
                println!(
                    "ALTERED {}: not the baseline recorded when it was taken",
                    fim.baseline_path().display()
                );
            }
            for ch in &c.changes {
                if format == OutputFormat::Json {
                    println!("{}", serde_json::to_string(ch)?);
                } else {
                    println!(
                        "{:<24} {}{}",
                        ch.action,
                        clean(&ch.path),
                        if ch.changed.is_empty() {
                            String::new()
                        } else {
                            format!("  ({})", ch.changed.join(", "))
                        }
                    );
                }
            }
            if format != OutputFormat::Json {
                println!(
                    "{} files checked: {} changes since the baseline ({} new)",
                    c.files,
                    c.changes.len(),
                    c.new
                );
            }
            if !no_store && (c.new > 0 || c.baseline_altered) {
                ingest(&fim, format, data, cold)?;
            }
            Ok(if c.changes.is_empty() && !c.baseline_altered {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
