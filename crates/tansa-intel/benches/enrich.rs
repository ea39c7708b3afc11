//! What enrichment costs per event, against parsing the same lines (`Throughput::Elements`):
//! `enrich/LOG/parse` parses 4 096 lines; the other cases parse them and enrich the events
//! (address scopes and shipped ASN lists; + GeoIP City and ASN; + 17 000 indicators), so the
//! ratios to `parse` are the overhead enrichment adds on the parser threads. Criterion runs the
//! cases one after the other, so a machine whose speed drifts skews their ratios; the bench
//! then also times the cases in turns (one batch each, 400 rounds) and prints the overhead
//! from the medians.
//!
//! Lines are made distinct the way real logs are (addresses from a pool of 5 000, every URL
//! different, User-Agents and referrers from small sets), so the per-thread caches see what
//! they see in `tansa analyze`. GeoIP uses MaxMind's test databases from the conformance corpus
//! (`TANSA_CONFORMANCE`, default `../shared/conformance`); without them those cases are left
//! out.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tansa_event::Origin;
use tansa_intel::{Cache, Enricher, FeedSpec, GeoIp, Intel};
use tansa_parse::{Format, Parser, TimeCtx};

const N: usize = 4096;

/// A small deterministic generator (no dependency for it).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }

    fn ip(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            1 + self.next(223),
            self.next(256),
            self.next(256),
            1 + self.next(254)
        )
    }
}

const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
    "sqlmap/1.8.2#stable (https://sqlmap.org)",
    "curl/8.5.0",
];

fn lines(log: &str, n: usize) -> Vec<Bytes> {
    let mut r = Lcg(7);
    let pool: Vec<String> = (0..5000).map(|_| r.ip()).collect();
    (0..n)
        .map(|i| {
            let ip = &pool[r.next(pool.len() as u64) as usize];
            let (m, s) = ((i / 60) % 60, i % 60);
            let l = if log == "access.log" {
                format!(
                    r#"{ip} - - [14/Mar/2026:00:{m:02}:{s:02} +0000] "GET /products/{}?ref={}&page={} HTTP/1.1" 200 {} "https://shop.example.com/c/{}" "{}""#,
                    r.next(100_000),
                    r.next(1_000_000),
                    r.next(50),
                    r.next(90_000),
                    r.next(40),
                    UAS[r.next(UAS.len() as u64) as usize]
                )
            } else {
                format!(
                    "Mar 14 00:{m:02}:{s:02} web01 sshd[{}]: Failed password for invalid user u{} from {ip} port {} ssh2",
                    20000 + i,
                    r.next(500),
                    30000 + r.next(30000)
                )
            };
            Bytes::from(l)
        })
        .collect()
}

/// The indicator set of `scripts/bench-enrich`: 12 000 addresses, 2 000 /24 networks,
/// 2 000 domains, 1 000 URLs.
fn feed(dir: &std::path::Path) -> PathBuf {
    let mut r = Lcg(11);
    let mut s = String::new();
    for _ in 0..12_000 {
        s += &r.ip();
        s.push('\n');
    }
    for _ in 0..2000 {
        let (a, b, c) = (1 + r.next(223), r.next(256), r.next(256));
        s += &format!("{a}.{b}.{c}.0/24\n");
    }
    for i in 0..2000 {
        s += &format!("bad{i:05}.example\n");
    }
    for i in 0..1000 {
        s += &format!("http://drop{i:04}.example/p/{i}.sh\n");
    }
    let p = dir.join("feed.txt");
    std::fs::write(&p, s).unwrap();
    p
}

fn geoip() -> Option<GeoIp> {
    let root = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    let d = root.join("maxmind-test-db/test-data");
    GeoIp::open(&[
        d.join("GeoIP2-City-Test.mmdb"),
        d.join("GeoLite2-ASN-Test.mmdb"),
    ])
    .ok()
}

fn parser() -> Parser {
    Parser::new(
        Format::Auto,
        Arc::new(Origin::file("/var/log/x", "web01")),
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        ),
    )
}

/// Parses a batch, enriches it with `e` (none: parsing only); the time taken.
fn batch(
    lines: &[Bytes],
    e: Option<&Enricher>,
    cache: &mut Cache,
    out: &mut Vec<tansa_event::Event>,
) -> std::time::Duration {
    let t = std::time::Instant::now();
    let mut p = parser();
    out.clear();
    for (i, l) in lines.iter().enumerate() {
        p.parse_line(l.clone(), i as u64 * 100, out);
    }
    if let Some(e) = e {
        e.enrich_all(out, cache);
    }
    t.elapsed()
}

/// The cases timed in turns; the overhead of each over parsing, from the medians.
fn in_turns(log: &str, all: &[Bytes], cases: &[(&str, Option<Enricher>)]) {
    let mut caches: Vec<Cache> = cases.iter().map(|_| Cache::default()).collect();
    let mut times: Vec<Vec<f64>> = cases.iter().map(|_| Vec::new()).collect();
    let mut out = Vec::with_capacity(N + 8);
    for round in 0..400 {
        let from = (round % 16) * N;
        for (i, (_, e)) in cases.iter().enumerate() {
            let d = batch(&all[from..from + N], e.as_ref(), &mut caches[i], &mut out);
            times[i].push(d.as_secs_f64());
        }
    }
    let med: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    let line: Vec<String> = cases
        .iter()
        .zip(&med)
        .skip(1)
        .map(|((name, _), m)| format!("{name} {:+.1}%", (m / med[0] - 1.0) * 100.0))
        .collect();
    println!(
        "enrich/{log} in turns: parse {:.0} ns/line; {}",
        med[0] * 1e9 / N as f64,
        line.join(", ")
    );
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tansa-bench-enrich-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = feed(&dir);
    let spec: FeedSpec = path.display().to_string().parse().unwrap();
    let intel = Arc::new(Intel::load(&[spec]).unwrap());
    // the same indicators split: addresses and networks only, names (domains, URLs) only
    let text = std::fs::read_to_string(&path).unwrap();
    let part = |name: &str, keep: fn(&str) -> bool| {
        let p = dir.join(name);
        let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
        std::fs::write(&p, lines.join("\n")).unwrap();
        let spec: FeedSpec = p.display().to_string().parse().unwrap();
        Some(Arc::new(Intel::load(&[spec]).unwrap()))
    };
    let addresses = part("addresses.txt", |l| {
        l.starts_with(|c: char| c.is_ascii_digit())
    });
    let names = part("names.txt", |l| {
        !l.starts_with(|c: char| c.is_ascii_digit())
    });
    let mut cases: Vec<(&str, Option<Enricher>)> = vec![
        ("parse", None),
        ("parse+default", Some(Enricher::new(None, None))),
        ("parse+addresses", Some(Enricher::new(None, addresses))),
        ("parse+names", Some(Enricher::new(None, names))),
    ];
    if geoip().is_some() {
        cases.push(("parse+geoip", Some(Enricher::new(geoip(), None))));
        cases.push((
            "parse+geoip+intel",
            Some(Enricher::new(geoip(), Some(intel.clone()))),
        ));
    } else {
        eprintln!("MaxMind test databases not found (TANSA_CONFORMANCE): GeoIP cases left out");
        cases.push((
            "parse+intel",
            Some(Enricher::new(None, Some(intel.clone()))),
        ));
    }
    for log in ["auth.log", "access.log"] {
        // more lines than one iteration uses: URLs do not come round again too soon
        let all = lines(log, N * 16);
        let mut g = c.benchmark_group(format!("enrich/{log}"));
        g.throughput(Throughput::Elements(N as u64));
        for (name, enricher) in &cases {
            let mut cache = Cache::default();
            let mut round = 0usize;
            let mut out = Vec::with_capacity(N + 8);
            g.bench_function(*name, |b| {
                b.iter(|| {
                    let from = (round % 16) * N;
                    round += 1;
                    batch(
                        &all[from..from + N],
                        enricher.as_ref(),
                        &mut cache,
                        &mut out,
                    )
                })
            });
        }
        g.finish();
        // (TANSA_BENCH_TURNS=0 leaves them out, e.g. to profile one criterion case)
        if std::env::var_os("TANSA_BENCH_TURNS").is_none_or(|v| v != "0") {
            in_turns(log, &all, &cases);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
