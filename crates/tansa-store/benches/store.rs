//! Store write throughput in events/s (`Throughput::Elements`): turning parsed auth.log and
//! access.log events into Arrow record batches, and committing batches to a DuckDB file.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tansa_event::{Event, Origin};
use tansa_parse::{Format, Parser, TimeCtx};
use tansa_store::{Backend, Batch, Checkpoint, DuckStore};

fn events(path: &str, n: usize) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (generate with gen-bench-logs.py --lines 1000000 --outdir DIR, set TANSA_BENCH_LOGS=DIR)")
    });
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(Origin::file(path, "web01")),
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        ),
    );
    let mut out = Vec::with_capacity(n);
    let mut off = 0u64;
    for l in text.lines().take(n) {
        p.parse_line(Bytes::copy_from_slice(l.as_bytes()), off, &mut out);
        off += l.len() as u64 + 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = std::env::var("TANSA_BENCH_LOGS").unwrap_or_else(|_| "/tmp/bench".into());
    const N: usize = tansa_store::ROW_GROUP;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for name in ["auth.log", "access.log"] {
        let evs = events(&format!("{dir}/{name}"), N);
        let fps = vec![1u32; evs.len()];
        g.bench_function(format!("arrow {name}"), |b| {
            b.iter(|| tansa_store::columns::record_batch(&evs, &fps))
        });
        let tmp = std::env::temp_dir().join(format!("tansa-bench-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut store = DuckStore::open(&tmp, None).unwrap();
        let mut off = 0u64;
        g.bench_function(format!("write {name}"), |b| {
            b.iter(|| {
                off += 1;
                store
                    .write(&Batch {
                        events: evs.clone(),
                        sources: fps.clone(),
                        checkpoints: vec![Checkpoint {
                            fingerprint: 1,
                            path: name.into(),
                            host: None,
                            next_offset: off,
                            lines: N as u64,
                        }],
                        files: Vec::new(),
                    })
                    .unwrap()
            })
        });
        drop(store);
        let _ = std::fs::remove_dir_all(&tmp);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
