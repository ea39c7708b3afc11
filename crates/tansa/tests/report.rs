//! `tansa report` and `tansa case` on the sample logs: both languages, the three formats,
//! the HTML rendered by Chromium with every log string as text, the evidence cited.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{chromium_dom, json_lines, succeed};

fn tansa_in(data: &Path) -> Command {
    let mut c = common::tansa();
    c.arg("--data").arg(data);
    c
}

fn sample_store(name: &str) -> (PathBuf, PathBuf) {
    let d = common::fresh_dir("report", name);
    let data = d.join("data");
    succeed(
        tansa_in(&data)
            .arg("analyze")
            .arg(common::root().join("examples/logs")),
    );
    std::fs::copy(
        common::root().join("examples/hosts.toml"),
        data.join("hosts.toml"),
    )
    .unwrap();
    (d, data)
}

fn report(data: &Path, format: &str, args: &[&str]) -> String {
    let out = succeed(
        tansa_in(data)
            .args(["--format", format, "report"])
            .args(args),
    );
    String::from_utf8(out.stdout).unwrap()
}

const SECTIONS: &[&str] = &[
    "summary",
    "timeline",
    "affected",
    "attacker",
    "iocs",
    "actions",
    "evidence",
    "recommendations",
    "abuse",
];

#[test]
fn the_report_of_an_attacker_in_english_and_chinese() {
    let (d, data) = sample_store("entity");
    let json: serde_json::Value =
        serde_json::from_str(&report(&data, "json", &["--entity", "45.141.87.23"])).unwrap();
    // derived from what happened: the password login, the brute force, the session, the
    // changes, the download, the data sent out
    let recs: Vec<&str> = json["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    for want in [
        "PasswordAuthentication no",
        "Ban repeated login failures",
        "Treat these hosts as compromised",
        "Undo the attacker's changes",
        "Remove downloaded payloads",
        "Assess which data left",
    ] {
        assert!(
            recs.iter().any(|r| r.contains(want)),
            "{want} not in {recs:?}"
        );
    }
    assert!(
        !recs.iter().any(|r| r.contains("FILE privilege")),
        "{recs:?}"
    );
    let iocs = &json["iocs"];
    assert!(iocs["ips"]
        .as_array()
        .unwrap()
        .contains(&"45.141.87.23".into()));
    assert!(iocs["urls"]
        .as_array()
        .unwrap()
        .contains(&"http://203.0.113.200/x.sh".into()));
    assert!(iocs["users"]
        .as_array()
        .unwrap()
        .contains(&"support".into()));
    assert_eq!(json["complaints"][0]["address"], "45.141.87.23");
    assert!(json["summary"].as_str().unwrap().contains("web01"));

    // every address alerted on since a time: one trace each
    let since: serde_json::Value =
        serde_json::from_str(&report(&data, "json", &["--since", "2026-03-14"])).unwrap();
    let traced: Vec<&str> = since["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["summary"]["entity"].as_str().unwrap())
        .collect();
    assert!(
        traced.len() >= 3 && traced.contains(&"45.141.87.23"),
        "{traced:?}"
    );

    let en = report(&data, "md", &["--entity", "45.141.87.23"]);
    for h in [
        "## Summary",
        "## Timeline",
        "## Affected hosts, accounts and data",
        "## Attacker profile",
        "## Indicators of compromise",
        "## Actions taken",
        "## Evidence",
        "## Recommendations",
        "## Abuse complaint",
    ] {
        assert!(en.contains(h), "{h} missing");
    }
    // a log line in a table cell cannot break out of its code span or the table
    assert!(en.contains("zgrab/0.x <script>alert(1)</script>"));
    for line in en.lines().filter(|l| l.starts_with("| 2026-")) {
        assert_eq!(line.matches(" | ").count(), 4, "{line}");
    }
    let zh = report(&data, "md", &["--entity", "45.141.87.23", "--lang", "zh"]);
    for h in [
        "## 概要",
        "## 时间线",
        "## 攻击者画像",
        "## 建议",
        "## 滥用投诉",
        "关闭 SSH 密码登录",
        "初始访问",
    ] {
        assert!(zh.contains(h), "{h} missing");
    }

    // the HTML in Chromium, both languages
    assert!(
        Command::new("fc-list")
            .arg(":lang=zh")
            .output()
            .is_ok_and(|o| !o.stdout.is_empty()),
        "a CJK font is needed (scripts/test installs fonts-wqy-zenhei)"
    );
    let steps: usize = json["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["steps"].as_array().unwrap().len())
        .sum();
    for lang in ["en", "zh"] {
        let page = d.join(format!("report-{lang}.html"));
        succeed(
            tansa_in(&data)
                .args([
                    "--format",
                    "html",
                    "report",
                    "--entity",
                    "45.141.87.23",
                    "--lang",
                    lang,
                    "-o",
                ])
                .arg(&page),
        );
        let dom = chromium_dom(&page);
        assert_eq!(dom.matches("<tr class=\"step\"").count(), steps, "{lang}");
        for s in SECTIONS {
            assert!(dom.contains(&format!("<h2 id=\"{s}\">")), "{lang}: {s}");
        }
        assert!(dom.contains("zgrab/0.x &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!dom.contains("<script"), "log text became markup");
        if lang == "zh" {
            assert!(dom.contains("lang=\"zh-CN\""));
            assert!(dom.contains("<h2 id=\"recommendations\">建议</h2>"));
        }
        let shot = d.join(format!("report-{lang}.png"));
        let chromium = if Command::new("chromium").arg("--version").output().is_ok() {
            "chromium"
        } else {
            "google-chrome"
        };
        succeed(
            Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1280,1600",
                ])
                .arg(format!("--screenshot={}", shot.display()))
                .arg(format!("file://{}", page.display())),
        );
        assert!(std::fs::metadata(&shot).unwrap().len() > 20_000);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_case_groups_the_incident_and_its_report_cites_the_verified_evidence() {
    let (d, data) = sample_store("case");
    let alert = json_lines(
        &succeed(tansa_in(&data).args([
            "--format",
            "json",
            "sql",
            "SELECT id FROM alerts WHERE rule_id = 'tansa.auth.success_after_failures' LIMIT 1",
        ]))
        .stdout,
    )[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // attacker-controlled text can reach a case title; it stays text
    let opened = succeed(tansa_in(&data).args([
        "--format",
        "json",
        "case",
        "open",
        "Breach of web01 <img src=x onerror=alert(1)>",
        "--severity",
        "critical",
        "--alert",
        &alert,
    ]));
    let id = json_lines(&opened.stdout)[0]["id"].as_u64().unwrap();
    succeed(tansa_in(&data).args([
        "case",
        "note",
        &id.to_string(),
        "deploy's password was 'deploy123'",
    ]));
    succeed(tansa_in(&data).args(["case", "assign", &id.to_string(), "alice"]));
    let list = String::from_utf8(succeed(tansa_in(&data).args(["case", "list"])).stdout).unwrap();
    assert!(list.contains("Breach of web01"), "{list}");

    let bundle = d.join("bundle");
    let page = d.join("case.html");
    succeed(
        tansa_in(&data)
            .args([
                "--format",
                "html",
                "report",
                "--case",
                &id.to_string(),
                "--bundle",
            ])
            .arg(&bundle)
            .arg("-o")
            .arg(&page),
    );
    // the bundle verifies and the report cites it with the command that checks it
    succeed(common::tansa().args(["evidence", "verify"]).arg(&bundle));
    let custody: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("custody.json")).unwrap())
            .unwrap();
    let hash = custody["bundle_sha256"].as_str().unwrap();
    let dom = chromium_dom(&page);
    assert!(dom.contains(hash));
    assert!(dom.contains("tansa evidence verify"));
    assert!(dom.contains("Breach of web01 &lt;img src=x onerror=alert(1)&gt;"));
    assert!(!dom.contains("<img"));
    // the case links the bundle; closing it keeps the history
    succeed(tansa_in(&data).args([
        "case",
        "close",
        &id.to_string(),
        "--resolution",
        "contained",
    ]));
    let show: serde_json::Value = serde_json::from_slice(
        &succeed(tansa_in(&data).args(["--format", "json", "case", "show", &id.to_string()]))
            .stdout,
    )
    .unwrap();
    assert_eq!(show["status"], "closed");
    assert_eq!(show["owner"], "alice");
    assert!(show["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["kind"] == "bundle" && l["value"].as_str().unwrap().starts_with(hash)));
    assert_eq!(show["notes"].as_array().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&d);
}

/// The attacker's profile comes from enrichment (MaxMind's test databases): country, AS, and
/// a brute force without a login gives no "compromised host" advice.
#[test]
fn the_attacker_profile_carries_country_and_as() {
    let d = common::fresh_dir("report", "profile");
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("../shared/conformance"));
    let db = |n: &str| base.join("maxmind-test-db/test-data").join(n);
    assert!(
        db("GeoIP2-City-Test.mmdb").is_file(),
        "set TANSA_CONFORMANCE"
    );
    let log = d.join("auth.log");
    let lines: String = (0..15)
        .map(|i| format!("Mar 14 09:00:{i:02} web01 sshd[{}]: Failed password for root from 89.160.20.130 port {} ssh2\n", 100 + i, 50000 + i))
        .collect();
    std::fs::write(&log, lines).unwrap();
    let data = d.join("data");
    succeed(
        tansa_in(&data)
            .args([
                "analyze",
                "--quiet",
                "--now",
                "2026-06-01T00:00:00Z",
                "--geoip",
            ])
            .arg(db("GeoIP2-City-Test.mmdb"))
            .arg("--geoip")
            .arg(db("GeoLite2-ASN-Test.mmdb"))
            .arg(&log),
    );
    let r: serde_json::Value = serde_json::from_str(&report(
        &data,
        "json",
        &["--entity", "89.160.20.130", "--lang", "zh"],
    ))
    .unwrap();
    let p = &r["profiles"][0];
    assert_eq!(p["address"], "89.160.20.130");
    assert_eq!(p["country"], "SE");
    assert_eq!(p["asn"], 29518);
    assert_eq!(p["events"], 15);
    let recs: Vec<&str> = r["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["what"].as_str().unwrap())
        .collect();
    assert!(recs.iter().any(|x| x.contains("自动封禁")), "{recs:?}");
    assert!(!recs.iter().any(|x| x.contains("失陷")), "{recs:?}");
    let md = report(&data, "md", &["--entity", "89.160.20.130"]);
    assert!(
        md.contains("**89.160.20.130**: country SE, AS29518"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
