//! `tansa serve --config FILE`: the long-running server (crate `tansa-server`). Alerts are
//! printed as they are raised (a line each, or JSON with `--format json`); the sources and
//! the API address go to stderr.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use tansa_detect::Alert;
use tansa_event::format_ts;
use tansa_server::{Config, Ready, Setup};

use crate::cli::{AgentArgs, EnrichArgs, OutputFormat, ServeArgs};
use crate::output::{cell, clean};

pub fn run(
    a: &ServeArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let config = Config::load(&a.config)?;
    let d = &config.detection;
    // the feeds' files as they are before they are read: a change from now on reloads them
    let feeds = (!d.intel.is_empty())
        .then(|| super::feed_specs(&d.intel).map(tansa_intel::FeedWatch::new))
        .transpose()
        .context("[detection] intel")?;
    let enrich = super::enricher(&EnrichArgs {
        geoip: d.geoip.clone(),
        no_geoip: d.no_geoip,
        intel: d.intel.clone(),
        no_enrich: false,
    })
    .context("[detection]")?;
    let engine = super::engine(
        &d.rules,
        &d.suppress,
        &crate::cli::CrsArgs {
            crs: d.crs.clone(),
            paranoia: d.crs_paranoia.max(1),
        },
        enrich.intel(),
    )
    .context("[detection] rules")?;
    if a.check {
        let data = config.server.data.as_deref().unwrap_or(data);
        println!(
            "configuration {} is valid",
            clean(&a.config.display().to_string())
        );
        println!("  store: {}", clean(&data.display().to_string()));
        for f in &config.files {
            println!(
                "  file {} (format {}, host {}, from the {})",
                clean(&f.path.display().to_string()),
                f.format,
                clean(f.host.as_deref().unwrap_or("-")),
                if f.start == tansa_server::config::Start::End {
                    "end"
                } else {
                    "beginning"
                }
            );
        }
        for s in &config.syslog {
            println!(
                "  syslog {:?} on {} (format {})",
                s.protocol, s.listen, s.format
            );
        }
        println!("  detection: {} rules", engine.rule_count());
        match &config.response {
            None => println!("  response: off (no [response] section)"),
            Some(r) => {
                let p = tansa_respond::policy::Policy::new(r.clone())?;
                println!(
                    "  response: {:?}{}, ban {} (escalating: {}), {} matrix entries, {} allowed prefixes",
                    r.backend,
                    if r.simulate { ", simulated" } else { "" },
                    r.ban_time,
                    r.increment,
                    r.ban.len(),
                    p.allow.nets().count()
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    tansa_server::stop_on_signals(stop.clone())?;
    let setup = Setup {
        config,
        data: data.to_owned(),
        cold: cold.map(Path::to_owned),
        engine,
        feeds,
        enrich: Arc::new(enrich),
        on_alert: Box::new(move |al: &Alert| {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let _ = match format {
                OutputFormat::Json => writeln!(out, "{}", al.to_json()),
                _ => writeln!(out, "{}", alert_line(al)),
            };
            let _ = out.flush();
        }),
        on_ready: Box::new(|r: &Ready| {
            eprintln!(
                "tansa serve: following {} files ({} resumed from checkpoints){}{}",
                r.files,
                r.resumed,
                if r.listeners.is_empty() {
                    String::new()
                } else {
                    format!(", listening on {}", r.listeners.join(", "))
                },
                r.http
                    .map(|h| format!(", API on {}://{h}", if r.https { "https" } else { "http" }))
                    .unwrap_or_default()
            );
        }),
    };
    let report = tansa_server::run(setup, stop)?;
    eprintln!(
        "tansa serve: stopped; {} lines, {} events stored, {} alerts",
        report.lines, report.stored, report.alerts
    );
    Ok(ExitCode::SUCCESS)
}

/// One line per new alert: time, severity, rule, entity, host.
fn alert_line(a: &Alert) -> String {
    let first = format_ts(a.first_seen);
    format!(
        "{}  {:<8} {}  {}  {}  {}",
        first.get(..19).unwrap_or(&first),
        a.severity.as_str(),
        cell(a.rule_title, 60),
        cell(&a.key.to_string(), 40),
        cell(a.host.as_deref().unwrap_or("-"), 20),
        a.id
    )
}

/// `tansa agent --config FILE`.
pub fn agent(a: &AgentArgs) -> Result<ExitCode> {
    let config = tansa_server::agent::AgentConfig::load(&a.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    tansa_server::stop_on_signals(stop.clone())?;
    eprintln!(
        "tansa agent: following {} files, sending to {} (spool {})",
        config.files.len(),
        clean(&config.agent.server),
        clean(&config.agent.spool.display().to_string())
    );
    let stats = Arc::new(tansa_server::agent::AgentStats::default());
    let say: Arc<dyn Fn(&str) + Send + Sync> =
        Arc::new(|m: &str| eprintln!("tansa agent: {}", clean(m)));
    tansa_server::agent::run(config, stop, stats.clone(), say)?;
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!(
        "tansa agent: stopped; {} lines read, {} sent in {} batches",
        stats.read.load(Relaxed),
        stats.sent.load(Relaxed),
        stats.batches.load(Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}
