//! What each Sigma rule file costs on a log: parses up to 100 000 lines of LOG, then times
//! Sigma detection with each rule file loaded alone and prints the dearest, with the events
//! per second of detection with all of them. For rule authors and for finding what makes a
//! rule set slow.
//!
//! Usage: cargo run --release -p tansa-detect --example rule_cost -- LOG RULES...

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tansa_event::{Event, Origin};
use tansa_parse::{Format, Parser, TimeCtx};
use tansa_rules::SigmaRules;

fn collect(p: &std::path::Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            collect(&e.path(), out);
        }
    } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
        out.push(p.to_owned());
    }
}

fn time(rules: &SigmaRules, evs: &[Event]) -> (f64, usize) {
    // engines are built on first use: build them before timing
    for e in evs {
        rules.match_numbers(e);
    }
    let t = Instant::now();
    let hits: usize = evs.iter().map(|e| rules.match_numbers(e).len()).sum();
    (t.elapsed().as_secs_f64(), hits)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let log = args.first().ok_or("usage: rule_cost LOG RULES...")?;
    let text = std::fs::read(log)?;
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(Origin::file(log, "bench")),
        TimeCtx::new(jiff::tz::TimeZone::UTC, jiff::Timestamp::now()),
    );
    let mut evs = Vec::new();
    let mut off = 0u64;
    for line in text.split(|&b| b == b'\n').take(100_000) {
        p.parse_line(bytes::Bytes::copy_from_slice(line), off, &mut evs);
        off += line.len() as u64 + 1;
    }
    p.finish(&mut evs);
    let mut files = Vec::new();
    for a in &args[1..] {
        collect(std::path::Path::new(a), &mut files);
    }
    files.sort();
    let all = SigmaRules::load(&files);
    let (t, hits) = time(&all, &evs);
    println!(
        "{} events, {} rules: {:.3} s, {:.0} events/s, {hits} hits",
        evs.len(),
        all.loaded(),
        t,
        evs.len() as f64 / t
    );
    let mut costs = Vec::new();
    for f in &files {
        let r = SigmaRules::load(std::slice::from_ref(f));
        if r.loaded() == 0 {
            continue;
        }
        let (t, hits) = time(&r, &evs);
        costs.push((t, hits, f.clone()));
    }
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (t, hits, f) in costs.iter().take(15) {
        println!("{:8.3} s {hits:8} hits  {}", t, f.display());
    }
    Ok(())
}
