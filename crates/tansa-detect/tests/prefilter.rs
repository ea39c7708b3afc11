//! The literal prefilter changes no result: with all SigmaHQ linux+web rules loaded, every
//! event of a corpus built to make rules fire matches the same rules whether the prefilter
//! selects them or every rule of the event's logsource is evaluated.
//!
//! The corpus: the bundled example logs, and every string value of every rule's detection
//! embedded in sshd, sudo, kernel, auditd (plain and hex-encoded, so decoded fields are
//! covered) and web server lines (path, query, User-Agent, Referer), each as written, in
//! upper case, and with Unicode characters that fold to ASCII (`K` Kelvin sign, `ſ`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tansa_event::{Event, Origin};
use tansa_parse::{Format, Parser, TimeCtx};
use tansa_rules::SigmaRules;

fn files(p: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            files(&e.path(), ext, out);
        }
    } else if p.extension().is_some_and(|x| ext.iter().any(|e| x == *e)) {
        out.push(p.to_owned());
    }
}

/// The quoted or plain scalar values under `detection:` of a rule file, wildcards removed.
fn detection_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("detection:") {
            inside = true;
            continue;
        }
        if inside && !line.starts_with(' ') && !line.is_empty() {
            inside = false;
        }
        if !inside || line.trim_start().starts_with("condition") {
            continue;
        }
        let t = line.trim();
        let v = t
            .strip_prefix("- ")
            .or_else(|| t.split_once(": ").map(|(_, v)| v));
        let Some(v) = v else { continue };
        let v = v.trim();
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .map(|v| v.replace("''", "'"))
            .or_else(|| {
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map(|v| v.replace("\\\\", "\\"))
            })
            .unwrap_or_else(|| v.to_string());
        let v = v.replace('*', " ");
        if !v.trim().is_empty() {
            out.push(v.trim().to_string());
        }
    }
    out
}

fn variants(v: &str) -> Vec<String> {
    vec![
        v.to_string(),
        v.to_uppercase(),
        v.replace('k', "\u{212A}").replace('s', "ſ"),
    ]
}

fn pct(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.=&?".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn lines_for(v: &str, n: usize) -> Vec<String> {
    let q = v.replace('"', "\\x22");
    let hex: String = v.bytes().map(|b| format!("{b:02X}")).collect();
    let id = 5000 + n;
    vec![
        format!("Nov 23 10:00:00 host sshd[123]: Failed password for {v} from 192.0.2.7 port 2222 ssh2"),
        format!("Nov 23 10:00:00 host sshd[123]: {v}"),
        format!("Nov 23 10:00:00 host sudo:    alice : TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND={v}"),
        format!("Nov 23 10:00:00 host kernel: {v}"),
        format!("Nov 23 10:00:00 host CRON[99]: (root) CMD ({v})"),
        format!("type=SYSCALL msg=audit(1773479948.468:{id}): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 auid=1001 uid=0 comm=\"sh\" exe=\"/usr/bin/sh\" key=\"exec\""),
        format!("type=EXECVE msg=audit(1773479948.468:{id}): argc=3 a0=\"sh\" a1=\"-c\" a2={hex}"),
        format!("type=PROCTITLE msg=audit(1773479948.468:{id}): proctitle={hex}"),
        format!("type=EOE msg=audit(1773479948.468:{id}): "),
        format!("type=SYSCALL msg=audit(1773479949.468:{id}): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 auid=1001 uid=0 comm=\"sh\" exe=\"/usr/bin/sh\" key=\"exec\""),
        format!("type=EXECVE msg=audit(1773479949.468:{id}): argc=2 a0=\"sh\" a1=\"{q}\""),
        format!("type=EOE msg=audit(1773479949.468:{id}): "),
        format!("type=SYSCALL msg=audit(1773479950.468:{id}): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 auid=1001 uid=0 comm=\"{q}\" exe=\"{q}\" key=\"{q}\""),
        format!("type=EXECVE msg=audit(1773479950.468:{id}): argc=2 a0=\"{q}\" a1=\"{q}\""),
        format!("type=PATH msg=audit(1773479950.468:{id}): item=0 name=\"{q}\" nametype=NORMAL"),
        format!("type=EOE msg=audit(1773479950.468:{id}): "),
        format!("192.0.2.9 - - [23/Nov/2026:10:00:00 +0000] \"GET /a?q={} HTTP/1.1\" 200 12 \"-\" \"Mozilla/5.0\"", pct(v)),
        format!("192.0.2.9 - - [23/Nov/2026:10:00:00 +0000] \"GET {} HTTP/1.1\" 404 12 \"-\" \"Mozilla/5.0\"", v.replace(' ', "%20")),
        format!("192.0.2.9 - - [23/Nov/2026:10:00:00 +0000] \"POST /login HTTP/1.1\" 200 12 \"{q}\" \"{q}\""),
    ]
}

fn parse(text: &str, name: &str, out: &mut Vec<Event>) {
    let mut p = Parser::new(
        Format::Auto,
        Arc::new(Origin::file(name, "test")),
        TimeCtx::new(jiff::tz::TimeZone::UTC, jiff::Timestamp::now()),
    );
    let mut off = 0u64;
    for line in text.split('\n') {
        p.parse_line(bytes::Bytes::copy_from_slice(line.as_bytes()), off, out);
        off += line.len() as u64 + 1;
    }
    p.finish(out);
}

#[test]
fn prefilter_agrees_with_evaluating_every_rule() {
    let base = common::corpus("sigma");
    let dirs = [base.join("sigma/rules/linux"), base.join("sigma/rules/web")];
    let rules = SigmaRules::load(&dirs);
    let mut rule_files = Vec::new();
    for d in &dirs {
        files(d, &["yml"], &mut rule_files);
    }
    rule_files.sort();
    let mut events = Vec::new();
    let mut logs = Vec::new();
    files(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/logs"),
        &["log"],
        &mut logs,
    );
    for l in &logs {
        parse(
            &std::fs::read_to_string(l).unwrap(),
            &l.display().to_string(),
            &mut events,
        );
    }
    let mut n = 0;
    for f in &rule_files {
        let mut values = detection_values(&std::fs::read_to_string(f).unwrap());
        // all of a rule's values at once, for rules that need several
        values.push(values.join(" "));
        for v in values {
            for v in variants(&v) {
                n += 1;
                let ls = lines_for(&v, n);
                // each kind of line alone, so formats are detected line by line
                for l in ls {
                    parse(&l, "synthetic", &mut events);
                }
            }
        }
    }
    let (mut fast, mut every) = (Vec::new(), Vec::new());
    let mut hits = 0;
    let mut fired = std::collections::BTreeSet::new();
    let mut disagree = Vec::new();
    for ev in &events {
        rules.matches(ev, &mut fast);
        rules.matches_exhaustive(ev, &mut every);
        let mut a: Vec<_> = fast.iter().map(|h| h.rule).collect();
        let mut b: Vec<_> = every.iter().map(|h| h.rule).collect();
        a.sort_unstable();
        b.sort_unstable();
        hits += b.len();
        fired.extend(b.iter().copied());
        if a != b {
            disagree.push(format!(
                "{:?}: prefilter {:?}, every rule {:?}",
                ev.raw_str(),
                a.iter()
                    .map(|&i| &rules.rules()[i].title)
                    .collect::<Vec<_>>(),
                b.iter()
                    .map(|&i| &rules.rules()[i].title)
                    .collect::<Vec<_>>()
            ));
        }
    }
    println!(
        "\nprefilter vs every rule: {} events, {hits} hits, {} of {} rules fired, {} disagreements",
        events.len(),
        fired.len(),
        rules.loaded(),
        disagree.len()
    );
    for d in disagree.iter().take(20) {
        println!("  {d}");
    }
    if std::env::var_os("TANSA_SHOW_SILENT").is_some() {
        for (i, r) in rules.rules().iter().enumerate() {
            if !fired.contains(&i) {
                println!("  silent: {:?} {}", r.logsource, r.title);
            }
        }
    }
    assert!(disagree.is_empty(), "{} disagreements", disagree.len());
    // the corpus exercises the rules: most of them fire somewhere
    assert!(
        fired.len() * 2 > rules.loaded(),
        "only {} rules fired",
        fired.len()
    );
}
