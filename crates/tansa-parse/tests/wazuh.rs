//! Conformance against Wazuh's rule tests (`../shared/conformance/wazuh-ruleset/tools/rules-testing/tests/`).
//!
//! Each case gives raw lines and the Wazuh decoder that must read them (`decoder = sshd`).
//! For the families of the foundation issue (sshd, pam, su, sudo, syslog, apache, nginx),
//! every `pass` line must become an event of the same kind in Tansa: the decoder name is
//! checked as a predicate on the event (sshd → `event.dataset: sshd`, pam → a PAM module
//! wrote it (`log.logger: pam_*`), apache-errorlog → `apache.error`, …). `fail` lines are
//! lines on which a Wazuh *rule* must stay quiet; their decoder lines are not expectations
//! (the same line is listed under two decoders in two files), so they are only checked to
//! parse. Target: every `pass` line.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tansa_event::{Event, Field, Kind};
use tansa_parse::{Format, Parser, TimeCtx};

const FILES: &[&str] = &["sshd", "pam", "su", "sudo", "syslog", "apache", "nginx"];

fn corpus() -> Option<PathBuf> {
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    let p = base.join("wazuh-ruleset/tools/rules-testing/tests");
    p.is_dir().then_some(p)
}

fn kind_matches(decoder: &str, ev: &Event) -> bool {
    let logger = ev.get_str(Field::LOG_LOGGER).unwrap_or_default();
    match decoder {
        "sshd" => ev.dataset == "sshd",
        "pam" => logger.starts_with("pam"),
        "su" => ev.dataset == "su",
        "sudo" => ev.dataset == "sudo",
        "apache-errorlog" => ev.dataset == "apache.error",
        "nginx-errorlog" => ev.dataset == "nginx.error",
        // a plain syslog line of a program Tansa has no parser for
        "" => ev.kind == Kind::Event && ev.get(Field::LOG_SYSLOG_APPNAME).is_some(),
        other => ev.get_str(Field::PROCESS_NAME).as_deref() == Some(other),
    }
}

#[test]
fn wazuh_decoders() {
    let Some(dir) = corpus() else {
        panic!("Wazuh corpus not found: set TANSA_CONFORMANCE to the shared/conformance directory");
    };
    let (mut pass, mut total, mut parsed_fail, mut total_fail) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    println!("\nWazuh decoder cases");
    println!("{:<10} {:>6} {:>6}", "file", "pass", "total");
    for f in FILES {
        let text = std::fs::read_to_string(dir.join(format!("{f}.ini"))).unwrap_or_default();
        // a case: its lines, then its `decoder = ` line
        let mut lines: Vec<(bool, String)> = Vec::new();
        let (mut p, mut n) = (0, 0);
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("log ") {
                if let Some((head, raw)) = rest.split_once(" = ") {
                    lines.push((head.ends_with("pass"), raw.to_owned()));
                }
            } else if let Some(dec) = l.strip_prefix("decoder =") {
                let dec = dec.trim();
                for (must, raw) in lines.drain(..) {
                    let mut parser = Parser::new(
                        Format::Auto,
                        Arc::new(tansa_event::Origin::file("wazuh", "")),
                        TimeCtx::new(
                            jiff::tz::TimeZone::UTC,
                            "2026-12-31T00:00:00Z".parse().unwrap(),
                        ),
                    );
                    let mut out = Vec::new();
                    parser.parse_line(Bytes::copy_from_slice(raw.as_bytes()), 0, &mut out);
                    parser.finish(&mut out);
                    let ev = out.last().expect("every line yields an event");
                    if must {
                        n += 1;
                        if kind_matches(dec, ev) {
                            p += 1;
                        } else {
                            failures.push(format!(
                                "{f}: decoder {dec:?}, got dataset {:?} ({:?}): {raw}",
                                ev.dataset, ev.kind
                            ));
                        }
                    } else {
                        total_fail += 1;
                        if ev.kind == Kind::Event {
                            parsed_fail += 1;
                        }
                    }
                }
            }
        }
        println!("{f:<10} {p:>6} {n:>6}");
        pass += p;
        total += n;
    }
    println!("{:<10} {pass:>6} {total:>6}", "ALL");
    println!("`fail` lines (rule must stay quiet) parsed: {parsed_fail}/{total_fail}");
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(total >= 50, "too few cases: {total}");
    assert_eq!(
        pass, total,
        "every pass line decodes to the right kind of event"
    );
}
