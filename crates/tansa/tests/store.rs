//! The store as a user sees it: `analyze` stores every line once, even when run twice or
//! killed in the middle; `tansa sql` reads it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{json_lines, succeed, tansa};

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("clistore", name)
}

/// A numbered auth.log: line i says `port i`, so lost or doubled lines are visible in SQL.
fn numbered_log(path: &Path, lines: usize) {
    let mut s = String::with_capacity(lines * 100);
    for i in 0..lines {
        s += &format!(
            "Mar 14 {:02}:{:02}:{:02} web01 sshd[{}]: Failed password for root from 203.0.113.{} port {i} ssh2\n",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            1000 + i % 5000,
            i % 250
        );
    }
    std::fs::write(path, s).unwrap();
}

fn sql(data: &Path, q: &str) -> Vec<serde_json::Value> {
    let out = run(data, &["--format", "json", "sql", q]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `tansa --data DATA analyze --quiet` on `log` (year and zone fixed), with `extra` options.
fn analyze_cmd(data: &Path, log: &Path, extra: &[&str]) -> Command {
    let mut c = tansa();
    c.arg("--data")
        .arg(data)
        .args([
            "analyze",
            "--quiet",
            "--timezone",
            "UTC",
            "--now",
            "2026-03-15T00:00:00Z",
        ])
        .args(extra)
        .arg(log);
    c
}

fn analyze(data: &Path, log: &Path) -> std::process::Output {
    analyze_cmd(data, log, &[]).output().unwrap()
}

fn counts(data: &Path) -> (u64, u64) {
    let r = sql(
        data,
        "SELECT count(*) AS n, count(DISTINCT log_offset) AS d FROM events",
    );
    (r[0]["n"].as_u64().unwrap(), r[0]["d"].as_u64().unwrap())
}

#[test]
fn analyzing_twice_stores_every_line_once() {
    let d = tmp("twice");
    let log = d.join("auth.log");
    numbered_log(&log, 5_000);
    let data = d.join("data");
    assert!(analyze(&data, &log).status.success());
    assert_eq!(counts(&data), (5_000, 5_000));
    let out = analyze(&data, &log);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stored 0 events (5000 were already stored)")
    );
    assert_eq!(counts(&data), (5_000, 5_000));
    // alerts are stored and replaced by id, not duplicated
    let a = sql(
        &data,
        "SELECT count(*) AS n, count(DISTINCT id) AS d FROM alerts",
    );
    assert!(a[0]["n"].as_u64().unwrap() > 0);
    assert_eq!(a[0]["n"], a[0]["d"]);
    // appended lines are stored on the next run
    let mut more = std::fs::read_to_string(&log).unwrap();
    more += "Mar 14 23:59:59 web01 sshd[9]: Accepted password for alice from 10.0.0.5 port 99999 ssh2\n";
    std::fs::write(&log, more).unwrap();
    assert!(analyze(&data, &log).status.success());
    assert_eq!(counts(&data), (5_001, 5_001));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn kill_9_in_the_middle_then_rerun_stores_every_line_exactly_once() {
    let d = tmp("kill");
    let log = d.join("auth.log");
    let total = 400_000u64;
    numbered_log(&log, total as usize);
    let data = d.join("data");
    // kill at growing delays until a run dies with part of the file stored (batches are
    // DuckDB row groups, so the window between the first and the last commit is narrow)
    let mut partial = None;
    for ms in (1..=60u64).map(|i| i * 80) {
        let _ = std::fs::remove_dir_all(&data);
        let mut child = analyze_cmd(&data, &log, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !data.join("tansa.duckdb").exists() {
            continue;
        }
        let probe = run(&data, &["sql", "SELECT 1"]);
        if String::from_utf8_lossy(&probe.stderr).contains("holds nothing yet") {
            continue; // killed while creating the store: nothing committed, said so clearly
        }
        let (n, distinct) = counts(&data);
        assert_eq!(n, distinct, "no line stored twice, even when killed");
        if n > 0 && n < total {
            partial = Some(n);
            break;
        }
    }
    let partial = partial.expect("some run was killed with part of the file stored");
    let out = analyze(&data, &log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        counts(&data),
        (total, total),
        "after the rerun every line is stored exactly once"
    );
    println!("killed with {partial}/{total} lines stored; the rerun completed the store");
    std::fs::remove_dir_all(&d).unwrap();
}

/// `tansa --data DATA ARGS…`, its output.
fn run(data: &Path, args: &[&str]) -> std::process::Output {
    tansa().arg("--data").arg(data).args(args).output().unwrap()
}

fn run_ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn search_stats_and_retention_from_the_command_line() {
    let d = tmp("search");
    let log = d.join("auth.log");
    numbered_log(&log, 3_000);
    // an attacker-controlled user name with a terminal escape and SQL in it
    let mut text = std::fs::read_to_string(&log).unwrap();
    text += "Mar 14 23:59:58 web01 sshd[7]: Invalid user x'\u{1b}[31m;DROP TABLE events_hot from 198.51.100.7 port 4444\n";
    std::fs::write(&log, text).unwrap();
    let data = d.join("data");
    // keep everything hot for the first part
    succeed(&mut analyze_cmd(
        &data,
        &log,
        &["--hot-days", "100000", "--delete-days", "100000"],
    ));

    let n = |q: &[&str]| {
        let mut args = vec!["--format", "json", "search"];
        args.extend_from_slice(q);
        json_lines(run_ok(&data, &args).as_bytes()).len()
    };
    assert_eq!(n(&["source.ip:203.0.113.9", "--limit", "100000"]), 12);
    assert_eq!(
        n(&[
            "source.ip:203.0.113.0/28 AND event.outcome:failure",
            "--limit",
            "100000"
        ]),
        16 * 12
    );
    assert_eq!(n(&["\"port 2999 \""]), 1);
    assert_eq!(
        n(&[
            "user.name:root",
            "--from",
            "2026-03-14 00:10:00",
            "--to",
            "2026-03-14T00:11:00Z",
            "--limit",
            "1000"
        ]),
        60
    );
    assert_eq!(n(&["user.name:*DROP*"]), 1);
    assert_eq!(
        n(&["--since", "1h"]),
        0,
        "nothing in the last hour of real time"
    );
    // text output: escaped, oldest first
    let text = run_ok(&data, &["search", "source.ip:198.51.100.7"]);
    assert!(
        text.contains("\\x1b[31m") && !text.contains('\u{1b}'),
        "{text}"
    );
    // a bad query is an error that says where
    let out = run(&data, &["search", "user.name:(root"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("search query"));

    // stats: sections as JSON lines
    let stats = json_lines(run_ok(&data, &["--format", "json", "stats"]).as_bytes());
    let top = stats
        .iter()
        .find(|r| r["section"] == "Top source IPs by failures")
        .expect("top failing sources");
    assert_eq!(top["failures"], 12);
    let disk = stats
        .iter()
        .find(|r| r["section"] == "Disk" && r["tier"] == "all")
        .unwrap();
    assert_eq!(disk["events"], 3_001);
    assert!(disk["bytes_per_event"].as_f64().unwrap() > 0.0);
    assert!(run_ok(&data, &["stats"]).contains("Alerts by severity"));

    // retention with an explicit date: the day goes cold, stays searchable, then is deleted
    let moved = run_ok(&data, &["retention", "run", "--today", "2026-05-01"]);
    assert!(moved.contains("1 days moved to the cold tier"), "{moved}");
    assert_eq!(counts(&data), (3_001, 3_001));
    assert_eq!(
        sql(&data, "SELECT count(*) AS n FROM events_hot")[0]["n"],
        0
    );
    assert_eq!(n(&["source.ip:203.0.113.9", "--limit", "100000"]), 12);
    let gone = run_ok(
        &data,
        &[
            "--format",
            "json",
            "retention",
            "run",
            "--today",
            "2099-01-01",
            "--delete-days",
            "400",
        ],
    );
    let rep: serde_json::Value = serde_json::from_str(gone.trim()).unwrap();
    assert_eq!(rep["deleted"], serde_json::json!(["2026-03-14"]), "{gone}");
    assert_eq!(counts(&data), (0, 0));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sql_is_read_only_and_needs_a_store() {
    let d = tmp("ro");
    let data = d.join("data");
    let out = run(&data, &["sql", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store"));
    let log = d.join("auth.log");
    numbered_log(&log, 10);
    assert!(analyze(&data, &log).status.success());
    for bad in [
        "DELETE FROM events_hot",
        "WITH x AS (SELECT 1) DELETE FROM events_hot",
    ] {
        let out = run(&data, &["sql", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
    }
    assert_eq!(counts(&data), (10, 10));
    std::fs::remove_dir_all(&d).unwrap();
}
