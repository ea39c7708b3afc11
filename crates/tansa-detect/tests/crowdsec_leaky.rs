//! The engine's leaky buckets against CrowdSec's own engine cases
//! (`crowdsec-engine-testdata/pkg/leakybucket/testdata/`): each case whose scenario maps onto
//! a Tansa rule (`type: leaky` → `Condition::Leaky`, `type: trigger` → `Condition::Each`,
//! grouped by `evt.Meta.source_ip`) is replayed in event time, and the overflows — which
//! address, how many events — must be CrowdSec's, in order. Cases using what Tansa rules do
//! not express are listed with the reason. Prints the figure.

mod common;

use std::sync::Arc;

use tansa_detect::{Condition, Engine, KeyBy, Limits, Rule, Severity};
use tansa_event::{Event, Origin};

/// A Go duration (`10s`, `0.5s`, `1m`, `1h30m`) in ns.
fn go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
    }
    num.is_empty().then_some(total as i64)
}

/// Why a bucket does not map onto a Tansa rule (None: it maps).
fn unmapped(b: &serde_json::Value) -> Option<String> {
    let kind = b["type"].as_str().unwrap_or("");
    if !matches!(kind, "leaky" | "trigger") {
        return Some(format!(
            "type {kind}: counters, conditional and bayesian buckets have no Tansa condition"
        ));
    }
    for (key, why) in [
        ("distinct", "distinct: values poured once each (Tansa counts distinct values in sliding windows, not buckets)"),
        ("blackhole", "blackhole: Tansa keeps one alert open while the activity goes on instead"),
        ("cancel_on", "cancel_on: expressions over parsed fields"),
        ("overflow_filter", "overflow_filter: expressions over the queue"),
        ("condition", "condition: expressions over the queue"),
        ("scope", "scope expressions (ranges)"),
        ("reprocess", "reprocess: overflows fed back as events"),
        ("data", "external data files"),
    ] {
        if !b[key].is_null() {
            return Some(why.into());
        }
    }
    if b["groupby"] != "evt.Meta.source_ip" {
        return Some(format!("groupby {}", b["groupby"]));
    }
    None
}

#[test]
fn leaky_buckets_overflow_where_crowdsecs_do() {
    let dir = common::corpus("crowdsec-engine-testdata")
        .join("crowdsec-engine-testdata/pkg/leakybucket/testdata");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("bucket.yaml").is_file() && p.join("test.json").is_file())
        .collect();
    cases.sort();
    let (mut agree, mut skipped) = (Vec::new(), Vec::new());
    let mut disagree = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(case.join("bucket.yaml")).unwrap();
        let docs: Vec<&str> = text
            .split("\n---")
            .filter(|d| d.lines().any(|l| l.starts_with("type:")))
            .collect();
        if docs.len() != 1 {
            skipped.push(format!("{name}: {} scenarios in one file", docs.len()));
            continue;
        }
        let b: serde_json::Value = yaml_serde::from_str(docs[0]).unwrap();
        if let Some(why) = unmapped(&b) {
            skipped.push(format!("{name}: {why}"));
            continue;
        }
        let condition = if b["type"] == "trigger" {
            Condition::Each
        } else {
            Condition::Leaky {
                capacity: b["capacity"].as_u64().unwrap() as u32,
                leak: go_duration(b["leakspeed"].as_str().unwrap()).unwrap(),
            }
        };
        let rule = Rule {
            id: "crowdsec",
            title: "crowdsec",
            severity: Severity::Medium,
            tags: &[],
            key: KeyBy::SourceIp,
            // every overflow its own alert, as CrowdSec's bucket dies with it
            window: 1,
            condition,
            matches: |_, _| true,
        };
        let test: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("test.json")).unwrap())
                .unwrap();
        let mut engine = Engine::new(vec![rule], Limits::default());
        let origin = Arc::new(Origin::file("/testlog", "h"));
        let mut seen = std::collections::HashSet::new();
        let mut ours = Vec::new();
        for (i, l) in test["lines"].as_array().unwrap().iter().enumerate() {
            // the scenario's filter: evt.Line.Labels.type == 'testlog'
            if l["Line"]["Labels"]["type"] != "testlog" {
                continue;
            }
            let mut ev = Event::new(
                bytes::Bytes::from(l["Line"]["Raw"].as_str().unwrap_or("").to_owned()),
                origin.clone(),
                0,
            );
            ev.offset = i as u64;
            let t: jiff::Timestamp = l["MarshaledTime"].as_str().unwrap().parse().unwrap();
            ev.timestamp = t.as_nanosecond() as i64;
            ev.source_ip = l["Meta"]["source_ip"].as_str().and_then(|s| s.parse().ok());
            engine.process(&ev);
            for a in engine.take_changed() {
                if seen.insert(a.id.clone()) {
                    ours.push((a.key.to_string(), a.count));
                }
            }
        }
        let theirs: Vec<(String, u64)> = test["results"]
            .as_array()
            .map(|r| r.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                let a = &r["Alert"];
                let ip = a["sources"].as_object()?.keys().next()?.clone();
                Some((ip, a["Alert"]["events_count"].as_u64()?))
            })
            .collect();
        if ours == theirs {
            agree.push(name);
        } else {
            disagree.push(format!("{name}: tansa {ours:?}, crowdsec {theirs:?}"));
        }
    }
    println!(
        "crowdsec leakybucket: {}/{} mapped cases agree ({}); {} not mapped:",
        agree.len(),
        agree.len() + disagree.len(),
        agree.join(", "),
        skipped.len()
    );
    for s in &skipped {
        println!("  {s}");
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
    assert!(agree.len() >= 4, "mapped cases: {agree:?}");
}

#[test]
fn go_durations() {
    assert_eq!(go_duration("10s"), Some(10_000_000_000));
    assert_eq!(go_duration("0.5s"), Some(500_000_000));
    assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
    assert_eq!(go_duration("250ms"), Some(250_000_000));
    assert_eq!(go_duration("10"), None);
}
