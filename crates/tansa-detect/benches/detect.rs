//! Detection throughput in events/s (`Throughput::Elements`): the built-in rules over parsed
//! auth.log and access.log events, the cost as the rule count grows, and the OWASP CRS rules
//! of the conformance corpus over access.log requests at paranoia levels 1 and 4.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tansa_detect::{builtin, Engine, Limits};
use tansa_event::{Event, Origin};
use tansa_parse::{Format, Parser, TimeCtx};

fn events(template: &[&str], n: usize) -> Vec<Event> {
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(Origin::file("/var/log/x", "web01")),
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        ),
    );
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // vary the source address so that keys churn like real traffic
        let l = template[i % template.len()].replace(
            "IP",
            &format!(
                "{}.{}.{}.{}",
                11 + i % 200,
                (i / 200) % 250,
                i % 7,
                1 + i % 250
            ),
        );
        p.parse_line(Bytes::from(l), i as u64, &mut out);
    }
    for (i, e) in out.iter_mut().enumerate() {
        e.timestamp += i as i64 * 50_000_000; // 20 events per second of log time
    }
    out
}

const AUTH: &[&str] = &[
    "Mar 14 00:00:01 web01 sshd[20211]: Invalid user admin from IP port 51022",
    "Mar 14 00:00:01 web01 sshd[20211]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=IP ",
    "Mar 14 00:00:03 web01 sshd[20211]: Failed password for invalid user admin from IP port 51022 ssh2",
    "Mar 14 00:00:04 web01 sshd[20211]: Disconnected from invalid user admin IP port 51022 [preauth]",
    "Mar 14 00:00:05 web01 sshd[20250]: Accepted publickey for deploy from IP port 40022 ssh2: ED25519 SHA256:Yk0Ukq7vQ2dY",
    "Mar 14 00:00:06 web01 CRON[20260]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
];

const ACCESS: &[&str] = &[
    r#"IP - - [14/Mar/2026:00:00:01 +0000] "GET /products/42 HTTP/1.1" 200 5123 "https://shop.example.com/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/133.0.0.0 Safari/537.36""#,
    r#"IP - - [14/Mar/2026:00:00:01 +0000] "GET /static/js/app.8b21e0.js HTTP/2.0" 200 88211 "-" "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0""#,
    r#"IP - - [14/Mar/2026:00:00:02 +0000] "GET /search?q=%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1" 200 311 "-" "sqlmap/1.8.2#stable""#,
    r#"IP - - [14/Mar/2026:00:00:03 +0000] "GET /search?q=red+dress&page=2 HTTP/1.1" 200 64 "-" "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X)""#,
];

fn bench(c: &mut Criterion) {
    let n = 20_000;
    for (name, tpl) in [("auth.log", AUTH), ("access.log", ACCESS)] {
        let evs = events(tpl, n);
        let all = builtin::rules();
        let mut g = c.benchmark_group(format!("detect/{name}"));
        g.throughput(Throughput::Elements(n as u64));
        for k in [1, 10, all.len()] {
            let rules: Vec<_> = all.iter().take(k).cloned().collect();
            g.bench_function(format!("{k} rules"), |b| {
                b.iter_batched(
                    || Engine::new(rules.clone(), Limits::default()),
                    |mut e| {
                        for ev in &evs {
                            e.process(ev);
                        }
                        e.finish().len()
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

/// SigmaHQ rule files under `rules/linux` and `rules/web` of the conformance data.
fn sigmahq_files() -> Vec<std::path::PathBuf> {
    let Some(root) = std::env::var_os("TANSA_CONFORMANCE") else {
        eprintln!("TANSA_CONFORMANCE is not set: the Sigma rule-count benches are skipped");
        return Vec::new();
    };
    let mut files = Vec::new();
    let mut dirs: Vec<std::path::PathBuf> = ["sigma/rules/linux", "sigma/rules/web"]
        .iter()
        .map(|d| std::path::Path::new(&root).join(d))
        .collect();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Sigma detection (the stateless part, as the parser threads run it) as the rule count
/// grows: the per-logsource engines and the literal prefilter keep the cost nearly flat.
fn bench_sigma(c: &mut Criterion) {
    let files = sigmahq_files();
    if files.is_empty() {
        return;
    }
    let n = 20_000;
    for (name, tpl) in [("auth.log", AUTH), ("access.log", ACCESS)] {
        let evs = events(tpl, n);
        let mut g = c.benchmark_group(format!("sigma/{name}"));
        g.throughput(Throughput::Elements(n as u64));
        for k in [10, 100, files.len()] {
            // spread the subset over both directories
            let step = files.len().div_ceil(k).max(1);
            let subset: Vec<_> = files.iter().step_by(step).take(k).cloned().collect();
            let rules = tansa_rules::SigmaRules::load(&subset);
            let loaded = rules.loaded();
            g.bench_function(format!("{loaded} rules"), |b| {
                b.iter(|| {
                    evs.iter()
                        .map(|e| rules.match_numbers(e).len())
                        .sum::<usize>()
                })
            });
        }
        g.finish();
    }
}

/// ModSecurity/OWASP CRS rules (`coreruleset/rules` of the conformance data) over access-log
/// requests, as the parser threads run them (`CrsRules::matches` per request).
fn bench_crs(c: &mut Criterion) {
    let Some(root) = std::env::var_os("TANSA_CONFORMANCE") else {
        eprintln!("TANSA_CONFORMANCE is not set: the CRS benches are skipped");
        return;
    };
    let dir = std::path::Path::new(&root).join("coreruleset/rules");
    let n = 2_000;
    let evs = events(ACCESS, n);
    let reqs: Vec<_> = evs
        .iter()
        .filter_map(tansa_detect::crs::Request::of)
        .collect();
    let mut g = c.benchmark_group("crs/access.log");
    g.throughput(Throughput::Elements(reqs.len() as u64));
    for pl in [1u8, 4] {
        let Ok(rules) = tansa_detect::crs::CrsRules::load(&dir, pl) else {
            eprintln!("{}: no CRS rules: skipped", dir.display());
            return;
        };
        g.bench_function(format!("PL{pl} ({} rules)", rules.rules().len()), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                let mut hits = 0;
                for r in &reqs {
                    out.clear();
                    rules.matches(r, &mut out);
                    hits += out.len();
                }
                hits
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_sigma, bench_crs);
criterion_main!(benches);
