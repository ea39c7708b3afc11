//! The command line as a user runs it: the binary on the bundled example logs.

use std::process::Stdio;

mod common;
use common::{json_lines, root, succeed, tansa};

#[test]
fn analyze_the_bundled_day_finds_the_intrusion() {
    let out = succeed(tansa().args([
        "analyze",
        "--no-store",
        "--timezone",
        "Asia/Tokyo",
        "--format",
        "json",
        "examples/logs",
    ]));
    let lines = json_lines(&out.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"]["unparsed"], 0);
    assert_eq!(summary["summary"]["sources"].as_array().unwrap().len(), 7);
    let alerts: Vec<_> = lines.iter().filter(|l| l.get("rule").is_some()).collect();
    let has = |rule: &str, entity: &str| {
        alerts.iter().any(|a| {
            a["rule"]["id"] == rule
                && (a["source"]["ip"] == entity
                    || a["user"]["name"] == entity
                    || a["host"]["name"] == entity)
        })
    };
    assert!(
        has("tansa.auth.success_after_failures", "45.141.87.23"),
        "the login after the brute force"
    );
    assert!(has("tansa.ssh.brute_force", "45.141.87.12"));
    assert!(has("tansa.host.admin_group", "support"));
    assert!(
        has("tansa.host.download_execute", "db01"),
        "the hop to db01 is seen in auditd"
    );
    assert!(has("tansa.web.sql_injection", "198.51.100.23"));
    assert!(
        has("tansa.auth.service_brute_force", "192.0.2.50"),
        "MySQL root brute force"
    );
    // sorted by severity: the critical alert first
    assert_eq!(alerts[0]["severity"], "critical");
    for a in &alerts {
        for key in [
            "id",
            "rule",
            "severity",
            "tags",
            "first_seen",
            "last_seen",
            "count",
        ] {
            assert!(a.get(key).is_some(), "alert without {key}: {a}");
        }
    }
}

#[test]
fn parse_prints_ecs_events_with_file_and_offset() {
    let out = succeed(tansa().args([
        "parse",
        "--timezone",
        "Asia/Tokyo",
        "--format",
        "json",
        "examples/logs/web01/auth.log",
    ]));
    let evs = json_lines(&out.stdout);
    let text = std::fs::read_to_string(root().join("examples/logs/web01/auth.log")).unwrap();
    assert_eq!(evs.len(), text.lines().count());
    // offsets point at the lines they came from
    for e in evs.iter().take(50) {
        let off = e["log"]["offset"].as_u64().unwrap() as usize;
        let original = e["event"]["original"].as_str().unwrap();
        assert!(text[off..].starts_with(original));
        assert_eq!(e["log"]["file"]["path"], "examples/logs/web01/auth.log");
    }
    // local time (JST) is converted to UTC
    let first = &evs[0];
    assert!(first["event"]["created_text"]
        .as_str()
        .unwrap()
        .starts_with("Mar 14 09:00"));
    assert!(first["@timestamp"]
        .as_str()
        .unwrap()
        .starts_with("2026-03-14T00:00"));
}

#[test]
fn errors_and_usage_have_their_exit_codes() {
    let out = tansa()
        .args(["analyze", "--no-store", "no/such/path"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/path"));
    let out = tansa()
        .args(["analyze", "--timezone", "Mars/Olympus", "examples/logs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));
    let out = tansa()
        .args(["analyze", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = tansa()
        .args(["parse", "--log-format", "bogus", "examples/logs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let mut child = tansa()
        .args(["parse", "--format", "json", "examples/logs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away (like `| head -0`)
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn attacker_text_cannot_drive_the_terminal() {
    let dir = std::env::temp_dir().join(format!("tansa-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("auth.log");
    std::fs::write(
        &f,
        "Mar 14 10:00:00 h sshd[1]: Invalid user \x1b]0;pwned\x07\x1b[2J from 203.0.113.9 port 1\n",
    )
    .unwrap();
    let out = tansa()
        .args(["parse", "--timezone", "UTC"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !out.stdout.contains(&0x1b),
        "no escape byte reaches the terminal"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\x1b]0;pwned"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rules_check_reports_each_rule_and_analyze_runs_them() {
    let dir = std::env::temp_dir().join(format!("tansa-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("good.yml"),
        "title: Wget to a hidden file in /tmp\nid: 0c6e4a9a-0000-4000-8000-00000000a001\nlogsource: {product: linux, category: process_creation}\ndetection:\n  s:\n    CommandLine|contains|all: ['wget', '/tmp/.']\n  condition: s\nlevel: high\ntags: [attack.command_and_control, attack.t1105]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.yml"),
        "title: broken\nlogsource: {product: linux}\ndetection: [not, a, map\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("windows.yml"),
        "title: win\nlogsource: {product: windows}\ndetection:\n  s: {Image: x}\n  condition: s\n",
    )
    .unwrap();
    let out = tansa()
        .args(["rules", "check", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error in one file is reported with exit 1"
    );
    let reports = json_lines(&out.stdout);
    let status = |file: &str| {
        reports
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(file))
            .map(|r| r["status"].clone())
    };
    assert_eq!(status("good.yml").unwrap(), "loaded");
    assert_eq!(status("broken.yml").unwrap(), "error");
    assert_eq!(status("windows.yml").unwrap(), "unsupported");
    std::fs::remove_file(dir.join("broken.yml")).unwrap();
    let out = succeed(
        tansa()
            .args([
                "analyze",
                "--no-store",
                "--timezone",
                "Asia/Tokyo",
                "--format",
                "json",
                "--rules",
            ])
            .arg(&dir)
            .arg("examples/logs/web01"),
    );
    let alerts = json_lines(&out.stdout);
    let hit = alerts
        .iter()
        .find(|a| a["rule"]["id"] == "0c6e4a9a-0000-4000-8000-00000000a001");
    assert!(hit.is_some(), "the Sigma rule fires on the sudo wget line");
    assert_eq!(hit.unwrap()["severity"], "high");
    std::fs::remove_dir_all(&dir).unwrap();
}
