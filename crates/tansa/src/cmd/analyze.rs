//! `tansa analyze`: read, parse, detect; print the summary and the alerts.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tansa_detect::{builtin, Alert, Engine, Limits};
use tansa_event::format_ts;
use tansa_pipeline::{Progress, Summary};

use crate::cli::{AnalyzeArgs, OutputFormat};
use crate::output::{cell, clean};

pub fn run(a: &AnalyzeArgs, format: OutputFormat, data: &Path) -> Result<ExitCode> {
    let opts = super::options(&a.input)?;
    let engine = if a.rules.is_empty() {
        Engine::new(builtin::rules(), Limits::default())
    } else {
        let sigma = tansa_rules::SigmaRules::load(&a.rules);
        let bad = sigma
            .reports()
            .iter()
            .filter(|r| !matches!(r.status, tansa_rules::Status::Loaded))
            .count();
        if bad > 0 {
            eprintln!("tansa: {bad} Sigma rules not loaded (see `tansa rules check`)");
        }
        if sigma.loaded() == 0 {
            anyhow::bail!("--rules: no Sigma rule loaded from {:?}", a.rules);
        }
        Engine::with_sigma(builtin::rules(), sigma, Limits::default())
    };
    let progress = Progress::default();
    let total: u64 = tansa_parse::input::discover(&opts.paths)?
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let summary = std::thread::scope(|s| {
        let bar = s.spawn(|| show_progress(&progress, total, &done));
        let r = tansa_pipeline::analyze(&opts, engine, &progress, |_ev| {});
        done.store(true, Ordering::Relaxed);
        let _ = bar.join();
        r
    })?;
    let elapsed = started.elapsed();
    if !a.no_store {
        eprintln!(
            "tansa: note: the event store is not built yet; nothing was written to {} (use --no-store to silence this)",
            clean(&data.display().to_string())
        );
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match format {
        OutputFormat::Json => json(&mut out, &summary, elapsed)?,
        OutputFormat::Text => text(&mut out, &summary, elapsed, a.quiet)?,
    }
    out.flush()?;
    for s in &summary.sources {
        if let Some(e) = &s.error {
            eprintln!("tansa: {}", clean(e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr while the run lasts; hidden when stderr is not a terminal.
fn show_progress(p: &Progress, total: u64, done: &std::sync::atomic::AtomicBool) {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if bar.is_hidden() {
        return;
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    while !done.load(Ordering::Relaxed) {
        bar.set_position(p.bytes.load(Ordering::Relaxed));
        bar.set_message(format!("{} events", p.events.load(Ordering::Relaxed)));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

fn entity(a: &Alert) -> String {
    a.key.to_string()
}

fn text(out: &mut impl Write, s: &Summary, elapsed: Duration, quiet: bool) -> std::io::Result<()> {
    let lines: u64 = s.sources.iter().map(|x| x.stats.lines).sum();
    let unparsed: u64 = s.sources.iter().map(|x| x.stats.unparsed).sum();
    writeln!(out, "Sources")?;
    writeln!(
        out,
        "  {:<48} {:<12} {:<14} {:>10} {:>9}",
        "FILE", "HOST", "FORMAT", "LINES", "UNPARSED"
    )?;
    for src in &s.sources {
        let fmt = src.stats.main_format().map(|f| f.name()).unwrap_or("-");
        writeln!(
            out,
            "  {:<48} {:<12} {:<14} {:>10} {:>9}",
            cell(&src.path.display().to_string(), 48),
            cell(src.host.as_deref().unwrap_or("-"), 12),
            fmt,
            src.stats.lines,
            src.stats.unparsed
        )?;
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "\n{lines} lines ({unparsed} unparsed, {:.2}%), {} events, {:.2}s, {:.0} lines/s",
        100.0 * unparsed as f64 / lines.max(1) as f64,
        s.events,
        secs,
        lines as f64 / secs
    )?;
    let mut by_sev = [0u64; 5];
    for a in &s.alerts {
        by_sev[a.severity as usize] += 1;
    }
    writeln!(
        out,
        "{} alerts: {} critical, {} high, {} medium, {} low, {} informational",
        s.alerts.len(),
        by_sev[4],
        by_sev[3],
        by_sev[2],
        by_sev[1],
        by_sev[0]
    )?;
    if quiet || s.alerts.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{:<13} {:<21} {:<58} {:<22} {:>7}  HOST",
        "SEVERITY", "FIRST SEEN (UTC)", "RULE", "ENTITY", "COUNT"
    )?;
    for a in &s.alerts {
        let first = format_ts(a.first_seen);
        writeln!(
            out,
            "{:<13} {:<21} {:<58} {:<22} {:>7}  {}",
            a.severity.as_str(),
            cell(first.get(..19).unwrap_or(&first), 21),
            cell(a.rule_title, 58),
            cell(&entity(a), 22),
            a.count,
            cell(a.host.as_deref().unwrap_or("-"), 20)
        )?;
    }
    Ok(())
}

fn json(out: &mut impl Write, s: &Summary, elapsed: Duration) -> std::io::Result<()> {
    for a in &s.alerts {
        serde_json::to_writer(&mut *out, &a.to_json())?;
        out.write_all(b"\n")?;
    }
    let sources: Vec<_> = s
        .sources
        .iter()
        .map(|x| {
            serde_json::json!({
                "log.file.path": x.path.display().to_string(),
                "host.name": x.host,
                "format": x.stats.main_format().map(|f| f.name()),
                "lines": x.stats.lines,
                "unparsed": x.stats.unparsed,
                "error": x.error,
            })
        })
        .collect();
    let summary = serde_json::json!({"summary": {
        "sources": sources,
        "lines": s.sources.iter().map(|x| x.stats.lines).sum::<u64>(),
        "unparsed": s.sources.iter().map(|x| x.stats.unparsed).sum::<u64>(),
        "events": s.events,
        "alerts": s.alerts.len(),
        "elapsed_seconds": elapsed.as_secs_f64(),
    }});
    serde_json::to_writer(&mut *out, &summary)?;
    out.write_all(b"\n")
}
