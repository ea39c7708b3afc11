//! The store as a user sees it: `analyze` stores every line once, even when run twice or
//! killed in the middle; `tansa sql` reads it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn tansa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tansa"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tansa-clistore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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
    let out = tansa()
        .arg("--data")
        .arg(data)
        .args(["--format", "json", "sql", q])
        .output()
        .unwrap();
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

fn analyze(data: &Path, log: &Path) -> std::process::Output {
    tansa()
        .arg("--data")
        .arg(data)
        .args([
            "analyze",
            "--quiet",
            "--timezone",
            "UTC",
            "--now",
            "2026-03-15T00:00:00Z",
        ])
        .arg(log)
        .output()
        .unwrap()
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
    // kill at growing delays until a run dies with part of the file stored
    let mut partial = None;
    for ms in [150u64, 300, 500, 800, 1200, 2000, 3000] {
        let _ = std::fs::remove_dir_all(&data);
        let mut child = tansa()
            .arg("--data")
            .arg(&data)
            .args([
                "analyze",
                "--quiet",
                "--timezone",
                "UTC",
                "--now",
                "2026-03-15T00:00:00Z",
            ])
            .arg(&log)
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
