//! What each ModSecurity rule costs on an access log: parses up to 50 000 lines of LOG, then
//! times every rule of DIR (at paranoia level PL, default 1) on their requests and prints the
//! dearest and the requests per second of all of them.
//!
//! Usage: cargo run --release -p tansa-detect --example crs_cost -- LOG DIR [PL]

use std::sync::Arc;

use tansa_detect::crs::{CrsRules, Request};
use tansa_event::{Event, Origin};
use tansa_parse::{Format, Parser, TimeCtx};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(log), Some(dir)) = (args.first(), args.get(1)) else {
        return Err("usage: crs_cost LOG DIR [PL]".into());
    };
    let pl: u8 = args.get(2).map(|p| p.parse()).transpose()?.unwrap_or(1);
    let rules = CrsRules::load(dir.as_ref(), pl)?;
    let text = std::fs::read(log)?;
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(Origin::file(log, "cost")),
        TimeCtx::new(jiff::tz::TimeZone::UTC, jiff::Timestamp::now()),
    );
    let mut evs: Vec<Event> = Vec::new();
    let mut off = 0u64;
    for line in text.split(|&b| b == b'\n').take(50_000) {
        p.parse_line(bytes::Bytes::copy_from_slice(line), off, &mut evs);
        off += line.len() as u64 + 1;
    }
    p.finish(&mut evs);
    let reqs: Vec<Request> = evs.iter().filter_map(Request::of).collect();
    let costs = rules.rule_costs(&reqs);
    let total: f64 = costs.iter().map(|c| c.1).sum();
    println!(
        "{} rules, {} requests: {:.0} requests/s with all of them",
        rules.rules().len(),
        reqs.len(),
        reqs.len() as f64 / total
    );
    for (id, s) in costs.iter().take(15) {
        println!("  {id}: {:.3} s ({:.1}%)", s, 100.0 * s / total);
    }
    Ok(())
}
