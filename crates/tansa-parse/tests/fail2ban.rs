//! Conformance against fail2ban's own filter test logs (`../shared/conformance/fail2ban/`).
//!
//! For every `# failJSON` annotated line of the authentication filters, Tansa's event must
//! have `event.outcome: failure` exactly when fail2ban says `match: true`, attributed to the
//! same host (`source.ip`, or `source.address` when the log names a host), the same user when
//! the annotation names one, and the same time.
//!
//! Modes: fail2ban filters have modes (`normal`, `ddos`, `extra`, `auth`, `fallback`), and in
//! every filter `aggressive` is the union of them. Tansa reports what `aggressive` reports:
//! protocol probes and pre-auth drops are failed attempts too (rules decide what to count).
//! So every `match: true` line is scored (aggressive matches it too); a `match: false` line is
//! scored when its filter has no modes, or when its section of the test file runs in the
//! aggressive mode. `match: false` lines tested only in another mode, and lines carrying a
//! `constraint`, depend on a mode and are not scored. fail2ban's harness runs in `Europe/Zurich` with "now" pinned to
//! 2005-08-14T10:00:00Z; times are compared there, to the second.
//!
//! Prints a per-filter table; the targets are sshd 100% and the whole set ≥ 98%.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tansa_event::{format_ts, Event, Origin, Outcome};
use tansa_parse::{Format, Parser, TimeCtx};

const FILTERS: &[&str] = &[
    "sshd",
    "sshd-journal",
    "dropbear",
    "pam-generic",
    "selinux-ssh",
    "apache-auth",
    "nginx-http-auth",
    "mysqld-auth",
    "dovecot",
    "vsftpd",
    "proftpd",
    "pure-ftpd",
    "sendmail-auth",
    "courier-auth",
    "haproxy-http-auth",
    "traefik-auth",
    "lighttpd-auth",
    "mongodb-auth",
    "roundcube-auth",
    "openvpn",
];

fn corpus() -> Option<PathBuf> {
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    let p = base.join("fail2ban/fail2ban/tests/files/logs");
    p.is_dir().then_some(p)
}

fn zurich() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("Europe/Zurich").expect("tzdata for Europe/Zurich")
}

/// Whether a `filterOptions` section runs in the aggressive mode.
fn section_aggressive(opts: &str) -> bool {
    let v: serde_json::Value = match serde_json::from_str(opts.trim()) {
        Ok(v) => v,
        Err(_) => return true,
    };
    let list = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    list.iter()
        .any(|o| o.get("mode").and_then(|m| m.as_str()) == Some("aggressive"))
}

struct Expect {
    matched: bool,
    host: Option<String>,
    user: Option<String>,
    time: Option<String>,
}

fn same_host(want: &str, ev: &Event) -> bool {
    let got = match ev.source_text() {
        Some(g) => g.into_owned(),
        None => return false,
    };
    if got == want {
        return true;
    }
    match (want.parse::<IpAddr>(), got.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a.to_canonical() == b.to_canonical(),
        _ => false,
    }
}

/// Scores one annotated line; returns the reason when it fails.
fn score(exp: &Expect, ev: &Event) -> Result<(), String> {
    let failed = ev.outcome == Outcome::Failure;
    if failed != exp.matched {
        return Err(format!(
            "outcome {:?}, expected match={}",
            ev.outcome, exp.matched
        ));
    }
    if !exp.matched {
        return Ok(());
    }
    if let Some(h) = &exp.host {
        if !same_host(h, ev) {
            return Err(format!("host {:?}, expected {h}", ev.source_text()));
        }
    }
    if let Some(u) = &exp.user {
        if ev.user_name().as_deref() != Some(u.as_str()) {
            return Err(format!("user {:?}, expected {u}", ev.user_name()));
        }
    }
    if let Some(t) = &exp.time {
        let got = jiff::Timestamp::from_nanosecond(ev.timestamp as i128)
            .map(|ts| ts.to_zoned(zurich()).datetime().to_string())
            .unwrap_or_else(|_| format_ts(ev.timestamp));
        if !got.starts_with(t.as_str()) {
            return Err(format!("time {got}, expected {t}"));
        }
    }
    Ok(())
}

fn run_filter(dir: &std::path::Path, name: &str, failures: &mut Vec<String>) -> (usize, usize) {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    // fail2ban's harness pins "now" to 2005-08-14T10:00:00, and reads the logs in UTC
    let now: jiff::Timestamp = "2005-08-14T10:00:00Z".parse().unwrap();
    let mut parser = Parser::new(
        Format::Auto,
        Arc::new(Origin::file(name, "")),
        TimeCtx::new(zurich(), now),
    );
    let (mut pass, mut total) = (0, 0);
    let mut pending: Option<Option<Expect>> = None;
    // filters with modes (`mode = ...` in their .conf): only aggressive sections score negatives
    let conf = dir
        .join("../../../../config/filter.d")
        .join(format!("{}.conf", name.trim_end_matches("-journal")));
    let has_modes = std::fs::read_to_string(conf)
        .map(|c| c.contains("aggressive"))
        .unwrap_or(false);
    let mut scored_section = !has_modes;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(j) = t.strip_prefix('#') {
            let j = j.trim_start();
            if let Some(opts) = j.strip_prefix("filterOptions:") {
                scored_section = !has_modes || section_aggressive(opts);
                continue;
            }
            if let Some(json) = j.strip_prefix("failJSON:") {
                let v: serde_json::Value = match serde_json::from_str(json.trim()) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                let constrained = v.get("constraint").is_some();
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
                let matched = v.get("match").and_then(|m| m.as_bool()).unwrap_or(false);
                pending = Some(
                    (!constrained && (matched || scored_section)).then(|| Expect {
                        matched,
                        host: s("host"),
                        user: s("user"),
                        time: s("time"),
                    }),
                );
            }
            continue;
        }
        if t.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        parser.parse_line(Bytes::copy_from_slice(line.as_bytes()), 0, &mut out);
        if let Some(exp) = pending.take() {
            let Some(exp) = exp else { continue };
            // auditd records are held until their group ends; score the line's own event
            parser.finish(&mut out);
            // a line may yield a derived failure beside its own event: the line reports a
            // failure when any of its events does
            let Some(ev) = out
                .iter()
                .find(|e| e.outcome == Outcome::Failure)
                .or(out.last())
            else {
                continue;
            };
            total += 1;
            match score(&exp, ev) {
                Ok(()) => pass += 1,
                Err(why) => failures.push(format!("{name}:{}: {why}\n    {line}", i + 1)),
            }
        }
    }
    (pass, total)
}

#[test]
fn fail2ban_authentication_filters() {
    let Some(dir) = corpus() else {
        panic!(
            "fail2ban corpus not found: set TANSA_CONFORMANCE to the shared/conformance directory"
        );
    };
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let (mut pass, mut total) = (0, 0);
    for f in FILTERS {
        let (p, t) = run_filter(&dir, f, &mut failures);
        rows.push((f, p, t));
        pass += p;
        total += t;
    }
    println!("\nfail2ban conformance (authentication filters)");
    println!(
        "{:<20} {:>7} {:>7} {:>8}",
        "filter", "pass", "total", "rate"
    );
    for (f, p, t) in &rows {
        println!(
            "{f:<20} {p:>7} {t:>7} {:>7.1}%",
            100.0 * *p as f64 / (*t).max(1) as f64
        );
    }
    let rate = 100.0 * pass as f64 / total.max(1) as f64;
    println!("{:<20} {pass:>7} {total:>7} {rate:>7.1}%", "ALL");
    for f in failures.iter().take(60) {
        println!("FAIL {f}");
    }
    let sshd = rows.iter().find(|r| *r.0 == "sshd").unwrap();
    assert!(total > 500, "corpus too small: {total}");
    assert_eq!(sshd.1, sshd.2, "sshd must be 100%");
    assert!(rate >= 98.0, "overall {rate:.1}% < 98%");
}
