//! `tansa analyze`: read, parse, detect; print the summary and the alerts.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tansa_detect::Alert;
use tansa_event::format_ts;
use tansa_pipeline::{Progress, Summary};
use tansa_store::{Backend, DuckStore};

use crate::cli::{AnalyzeArgs, OutputFormat};
use crate::output::{cell, clean};

pub fn run(
    a: &AnalyzeArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let opts = super::options(&a.input)?;
    let engine = super::engine(&a.rules, &a.suppress, &a.crs, opts.enrich.intel())?;
    // discovered once: the store's checkpoints, the progress total and the run see the same files
    let inputs = tansa_parse::input::discover(&opts.paths)?;
    let mut store = if a.no_store {
        None
    } else {
        super::store::policy(&a.retention).check()?;
        Some(StoreSink::open(data, cold, &opts, &inputs, !a.no_evidence)?)
    };
    let progress = Progress::default();
    let total: u64 = inputs
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    let started = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let summary = std::thread::scope(|s| {
        let bar = s.spawn(|| show_progress(&progress, total, &done));
        let r = tansa_pipeline::analyze_sources(&opts, &inputs, engine, &progress, |ev| {
            if let Some(st) = store.as_mut() {
                st.push(ev);
            }
        });
        done.store(true, Ordering::Relaxed);
        let _ = bar.join();
        r
    })?;
    let elapsed = started.elapsed();
    let stored = match store {
        Some(st) => {
            // sorting finished days by address is left to `tansa retention run` and `serve`:
            // a one-shot analysis stays at ingest speed
            let policy = tansa_store::Policy {
                cluster: false,
                ..super::store::policy(&a.retention)
            };
            Some(st.finish(&summary.alerts, &policy)?)
        }
        None => None,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match format {
        OutputFormat::Json => json(&mut out, &summary, elapsed)?,
        OutputFormat::Text | OutputFormat::Html | OutputFormat::Md => {
            text(&mut out, &summary, elapsed, a.quiet)?
        }
    }
    if let (Some(st), OutputFormat::Text) = (&stored, format) {
        writeln!(
            out,
            "\nstored {} events ({} were already stored) and {} alerts in {}",
            st.new,
            st.old,
            summary.alerts.len(),
            clean(&st.path.display().to_string())
        )?;
        let r = &st.retention;
        if !r.moved.is_empty() || !r.deleted.is_empty() {
            writeln!(out, "retention: {}", super::store::retention_summary(r))?;
        }
    }
    out.flush()?;
    for s in &summary.sources {
        if let Some(e) = &s.error {
            eprintln!("tansa: {}", clean(e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Events per committed batch: DuckDB's row group size. A transaction that appends whole row
/// groups has them compressed and written straight into the database file (no second copy
/// through the write-ahead log): 2.2× the write rate of 50k-event batches.
const STORE_BATCH: usize = tansa_store::ROW_GROUP;

/// Connections committing batches at once (DuckDB compresses each batch on its own thread).
const STORE_WRITERS: usize = 2;

/// A source's place in the store.
struct SourceState {
    fingerprint: u64,
    /// The store's number for the source (in event ids).
    number: u32,
    /// Lines before this offset were stored by an earlier run.
    stored_below: u64,
    next_offset: u64,
    host: Option<String>,
    lines: u64,
}

/// What storing a run did.
struct Stored {
    new: u64,
    old: u64,
    path: std::path::PathBuf,
    retention: tansa_store::RetentionReport,
}

/// Stores what a run reads: the detection thread hands over copies of new events; a writer
/// thread turns them into Arrow batches and commits each with the checkpoints it completes
/// (crash-safe).
struct StoreSink {
    sources: std::collections::HashMap<String, SourceState>,
    batch: tansa_store::Batch,
    tx: Option<crossbeam_channel::Sender<tansa_store::Batch>>,
    writer: Option<std::thread::JoinHandle<Result<DuckStore>>>,
    new: u64,
    old: u64,
}

fn new_batch() -> tansa_store::Batch {
    tansa_store::Batch {
        events: Vec::with_capacity(STORE_BATCH),
        sources: Vec::with_capacity(STORE_BATCH),
        checkpoints: Vec::new(),
        files: Vec::new(),
    }
}

impl StoreSink {
    fn open(
        data: &Path,
        cold: Option<&Path>,
        opts: &tansa_pipeline::Options,
        inputs: &[tansa_parse::input::Source],
        evidence: bool,
    ) -> Result<Self> {
        let mut store = DuckStore::open(data, cold)
            .with_context(|| format!("opening the store in {}", data.display()))?;
        let mut sources = std::collections::HashMap::new();
        for src in inputs {
            let mut head = Vec::with_capacity(1024);
            if let Ok(r) = tansa_parse::input::open(&src.path) {
                use std::io::Read;
                let _ = r.take(1024).read_to_end(&mut head);
            }
            let fingerprint = tansa_store::fingerprint(&head);
            let stored_below = store.checkpoint(fingerprint)?;
            let number = store.source_number(fingerprint)?;
            sources.insert(
                src.path.to_string_lossy().into_owned(),
                SourceState {
                    fingerprint,
                    number,
                    stored_below,
                    next_offset: stored_below,
                    host: opts.host.clone().or(src.host.clone()),
                    lines: 0,
                },
            );
        }
        // the evidence log: every line stored is in it first (sealed at the end of the run)
        let mut evidence = if evidence {
            let (log, rec) = tansa_evidence::EvidenceLog::open(
                &data.join("evidence"),
                tansa_evidence::Limits {
                    compress: true,
                    ..tansa_evidence::Limits::default()
                },
                tansa_event::now_nanos(),
            )
            .context("the evidence log")?;
            for n in rec.notes {
                eprintln!("evidence log: {n}");
            }
            Some(log)
        } else {
            None
        };
        // detection → (events) → evidence and Arrow conversion thread → (record batches) →
        // writer thread
        let (tx, rx) = crossbeam_channel::bounded::<tansa_store::Batch>(2);
        let (ptx, prx) = crossbeam_channel::bounded::<tansa_store::Prepared>(1);
        let converter = std::thread::spawn(move || -> Result<()> {
            for batch in rx.iter() {
                if let Some(log) = evidence.as_mut() {
                    log.append_events(&batch.events, tansa_event::now_nanos())
                        .context("the evidence log")?;
                }
                if ptx.send(DuckStore::prepare(&batch)).is_err() {
                    break;
                }
            }
            if let Some(log) = evidence.as_mut() {
                log.seal(tansa_event::now_nanos())
                    .context("the evidence log")?;
            }
            Ok(())
        });
        let writer = std::thread::spawn(move || -> Result<DuckStore> {
            let mut w = store.parallel_writer(STORE_WRITERS)?;
            for p in prx.iter() {
                w.write(p)?;
            }
            let st = w.finish()?;
            match converter.join() {
                Ok(r) => r?,
                Err(_) => anyhow::bail!("the evidence thread stopped"),
            }
            Ok(st)
        });
        Ok(StoreSink {
            sources,
            batch: new_batch(),
            tx: Some(tx),
            writer: Some(writer),
            new: 0,
            old: 0,
        })
    }

    fn push(&mut self, ev: &tansa_event::Event) {
        // every event comes from one of the inputs the sink was opened with (one discovery)
        let Some(s) = self.sources.get_mut(&*ev.origin.path) else {
            return;
        };
        if ev.offset < s.stored_below {
            self.old += 1;
            return;
        }
        s.next_offset = s.next_offset.max(ev.offset + ev.raw.len() as u64 + 1);
        s.lines += 1;
        self.new += 1;
        self.batch.sources.push(s.number);
        self.batch.events.push(ev.clone());
        if self.batch.events.len() >= STORE_BATCH {
            self.send();
        }
    }

    /// Hands the buffered events and the checkpoints they reach to the writer.
    fn send(&mut self) {
        let mut batch = std::mem::replace(&mut self.batch, new_batch());
        batch.checkpoints = self
            .sources
            .iter_mut()
            .filter(|(_, s)| s.lines > 0)
            .map(|(path, s)| tansa_store::Checkpoint {
                fingerprint: s.fingerprint,
                path: path.clone(),
                host: s.host.clone(),
                next_offset: s.next_offset,
                lines: std::mem::take(&mut s.lines),
            })
            .collect();
        if let Some(tx) = &self.tx {
            let _ = tx.send(batch);
        }
    }

    /// Writes what is left and the alerts, then applies the retention policy.
    fn finish(mut self, alerts: &[Alert], policy: &tansa_store::Policy) -> Result<Stored> {
        self.send();
        drop(self.tx.take());
        let mut store = match self.writer.take().map(|w| w.join()) {
            Some(Ok(r)) => r?,
            _ => anyhow::bail!("the store writer stopped"),
        };
        let fps: std::collections::HashMap<&str, u32> = self
            .sources
            .iter()
            .map(|(p, s)| (p.as_str(), s.number))
            .collect();
        store.write_alerts(alerts, &|p: &str| fps.get(p).copied())?;
        let retention = store.retention(policy, None)?;
        Ok(Stored {
            new: self.new,
            old: self.old,
            path: store.path().to_owned(),
            retention,
        })
    }
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
    for (at, reason, n) in &s.suppressed {
        writeln!(
            out,
            "suppressed by {}{}: {n} matches",
            cell(at, 60),
            reason
                .as_deref()
                .map(|r| format!(" ({})", cell(r, 60)))
                .unwrap_or_default()
        )?;
    }
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
            if a.simulated {
                format!("{} (sim)", a.severity.as_str())
            } else {
                a.severity.as_str().to_owned()
            },
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
        "suppressed": s.suppressed.iter().map(|(at, reason, n)| serde_json::json!({"at": at, "reason": reason, "matches": n})).collect::<Vec<_>>(),
        "elapsed_seconds": elapsed.as_secs_f64(),
    }});
    serde_json::to_writer(&mut *out, &summary)?;
    out.write_all(b"\n")
}
