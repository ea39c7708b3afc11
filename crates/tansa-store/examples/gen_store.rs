//! Generates a store of N auth.log-like events (default 100M, 30 days, 20 hosts, 200k source
//! addresses with a heavy-tailed distribution, 5% successful logins) directly in DuckDB, then
//! sorts the finished days by source address (as `tansa retention run` does), times the queries
//! the storage issue names and prints the disk use per event.
//!
//! Usage: gen_store DIR [N] [--from YYYY-MM-DD] [--cold] (`scripts/gen-store` builds and runs
//! it; the 30 days start at 2026-10-01 unless `--from` says otherwise). With --cold, every day is then moved to the Parquet tier and
//! the queries are timed again through the `events` view.

use std::path::PathBuf;
use std::time::Instant;

use tansa_store::{Backend, DuckStore, Policy, SearchRequest};

const CHUNK: u64 = 10_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: gen_store DIR [N] [--from YYYY-MM-DD] [--cold]")?,
    );
    let n: u64 = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000_000);
    let cold = args.iter().any(|a| a == "--cold");
    let from = args
        .iter()
        .position(|a| a == "--from")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("2026-10-01");
    let is_day = from.len() == 10
        && from.bytes().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !is_day {
        return Err(format!("--from {from}: not a YYYY-MM-DD date").into());
    }
    let mut store = DuckStore::open(&dir, None)?;
    let have = store.event_count()?;
    if have < n {
        let t = Instant::now();
        let mut start = have;
        while start < n {
            let end = (start + CHUNK).min(n);
            store.generate(start, end, n, from)?;
            eprintln!(
                "generated {end}/{n} events, {:.0} s",
                t.elapsed().as_secs_f64()
            );
            start = end;
        }
        store.sql("SELECT 1")?; // keep the connection warm
        eprintln!(
            "generation: {:.0} s ({:.0} events/s)",
            t.elapsed().as_secs_f64(),
            (n - have) as f64 / t.elapsed().as_secs_f64()
        );
    }
    println!(
        "as generated: {:.1} bytes/event",
        store.disk_bytes().0 as f64 / n as f64
    );
    // what `tansa retention run` (and serve's maintenance) does to finished hot days
    let t = Instant::now();
    let r = store.retention(
        &Policy {
            hot_days: 100_000,
            delete_days: 100_000,
            cluster: true,
        },
        Some("2099-01-01"),
    )?;
    if !r.clustered.is_empty() {
        eprintln!(
            "sorted {} hot days by source address in {:.0} s",
            r.clustered.len(),
            t.elapsed().as_secs_f64()
        );
    }
    report(&store, n, from)?;
    if cold {
        let t = Instant::now();
        let r = store.retention(
            &Policy {
                hot_days: 0,
                delete_days: 100_000,
                cluster: false,
            },
            Some("2099-01-01"),
        )?;
        eprintln!(
            "moved {} days to Parquet in {:.0} s",
            r.moved.len(),
            t.elapsed().as_secs_f64()
        );
        report(&store, n, from)?;
    }
    Ok(())
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    println!("{what}: {:.3} s", t.elapsed().as_secs_f64());
    r
}

fn report(store: &DuckStore, n: u64, from: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (hot, cold) = store.disk_bytes();
    println!(
        "store: {n} events; hot {hot} bytes, cold {cold} bytes; {:.1} bytes/event",
        (hot + cold) as f64 / n as f64
    );
    // a middling attacker (rank ~1000 of 200k) and the heaviest one
    for ip in ["11.5.0.1", "11.0.0.1"] {
        let t = timed(
            &format!("all events of source.ip:{ip} in time order"),
            || {
                store.search(&SearchRequest {
                    query: format!("source.ip:{ip}"),
                    limit: 10_000_000,
                    ..Default::default()
                })
            },
        )?;
        println!("  ({} events)", t.rows.len());
    }
    let t = timed("top 10 source IPs by failures over 30 days", || {
        // `from` is a checked YYYY-MM-DD date
        store.sql(&format!(
            "SELECT source_ip, count(*) AS failures FROM events WHERE outcome = 'failure' \
             AND ts >= TIMESTAMP '{from}' AND ts < TIMESTAMP '{from}' + INTERVAL 30 DAY \
             GROUP BY source_ip ORDER BY failures DESC LIMIT 10",
        ))
    })?;
    println!("  (first: {:?})", t.rows.first());
    Ok(())
}
