//! Evidence log throughput in lines/s (`Throughput::Elements`): appending auth.log-sized
//! lines (encode, leaf hash, chain link, buffered write; sealing as segments fill) and
//! verifying them.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tansa_evidence::{verify, EvidenceLog, Limits, Line};

const N: usize = 100_000;

fn lines() -> Vec<String> {
    (0..N)
        .map(|i| {
            format!(
                "Mar 15 10:{:02}:{:02} web01 sshd[{}]: Failed password for invalid user admin{} from 203.0.113.{} port {} ssh2",
                i / 60 % 60,
                i % 60,
                1000 + i,
                i % 97,
                i % 250,
                40000 + i % 20000
            )
        })
        .collect()
}

fn write(dir: &std::path::Path, lines: &[String]) {
    let _ = std::fs::remove_dir_all(dir);
    let (mut log, _) = EvidenceLog::open(dir, Limits::default(), 0).unwrap();
    for (i, l) in lines.iter().enumerate() {
        log.append(
            &Line {
                source: "/var/log/auth.log",
                host: Some("web01"),
                offset: i as u64 * 120,
                time: i as i64,
                received: i as i64,
                raw: l.as_bytes(),
            },
            0,
        )
        .unwrap();
    }
    log.seal(0).unwrap();
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let dir = std::env::temp_dir().join(format!("tansa-ev-bench-{}", std::process::id()));
    let mut g = c.benchmark_group("evidence");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("append+seal 100k auth lines", |b| {
        b.iter(|| write(&dir, &lines))
    });
    write(&dir, &lines);
    g.bench_function("verify 100k records", |b| {
        b.iter(|| assert!(verify(&dir).unwrap().problems.is_empty()))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
