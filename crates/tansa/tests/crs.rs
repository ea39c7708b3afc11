//! ModSecurity rules over access logs, through `tansa analyze --crs DIR` and
//! `tansa rules check --crs DIR`.

mod common;

use common::{fresh_dir, json_lines, succeed, tansa};

const RULES: &str = r#"# written for this test in the CRS's style
SecRule ARGS|ARGS_NAMES|REQUEST_HEADERS:User-Agent "@detectSQLi" \
    "id:990100,phase:2,block,t:none,t:urlDecodeUni,msg:'SQL injection (libinjection)',\
    tag:'attack-sqli',tag:'paranoia-level/1',severity:'CRITICAL'"
SecRule REQUEST_FILENAME "@pmFromFile words.data" \
    "id:990110,phase:1,block,t:none,t:lowercase,msg:'Sensitive file',severity:'ERROR'"
SecRule ARGS "@rx (?i)<script" \
    "id:990120,phase:2,block,t:none,t:htmlEntityDecode,msg:'XSS',severity:'CRITICAL',tag:'paranoia-level/2'"
SecRule REQUEST_COOKIES "@rx x" "id:990130,phase:1,block,msg:'cookie',severity:'CRITICAL'"
SecRule ARGS "@nosuchop x" "id:990140,phase:2,block,msg:'bad',severity:'CRITICAL'"
"#;

fn line(ip: &str, target: &str, ua: &str) -> String {
    format!(
        "{ip} - - [14/Mar/2026:10:00:00 +0000] \"GET {target} HTTP/1.1\" 200 512 \"-\" \"{ua}\"\n"
    )
}

#[test]
fn modsecurity_rules_alert_on_access_log_requests_and_report_what_does_not_load() {
    let d = fresh_dir("crs", "cli");
    let rules = d.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("custom.conf"), RULES).unwrap();
    std::fs::write(rules.join("words.data"), "# files\n/.env\n/.git/config\n").unwrap();
    let log = d.join("access.log");
    let text = [
        line(
            "203.0.113.7",
            "/item?id=1%27%20OR%20%271%27%3D%271",
            "Mozilla/5.0",
        ),
        line("203.0.113.8", "/.ENV", "curl/8.0"),
        line(
            "203.0.113.9",
            "/s?q=%3Cscript%3Ealert(1)%3C/script%3E",
            "Mozilla/5.0",
        ),
        line(
            "198.51.100.1",
            "/item?id=42&q=hello+world",
            "Mozilla/5.0 (X11; Linux x86_64)",
        ),
    ]
    .concat();
    std::fs::write(&log, text).unwrap();
    let run = |pl: &str| {
        let out = succeed(
            tansa()
                .args(["--format", "json", "analyze", "--no-store", "--crs"])
                .arg(&rules)
                .args(["--paranoia", pl])
                .arg(&log),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut alerts: Vec<(String, String, String)> = json_lines(&out.stdout)
            .into_iter()
            .filter(|a| {
                a["rule"]["id"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("crs:"))
            })
            .map(|a| {
                (
                    a["rule"]["id"].as_str().unwrap().to_string(),
                    a["source"]["ip"].as_str().unwrap().to_string(),
                    a["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        alerts.sort();
        (alerts, stderr)
    };
    let (pl1, stderr) = run("1");
    assert!(
        stderr.contains("1 ModSecurity rules not loaded"),
        "{stderr}"
    );
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        pl1,
        vec![
            s("crs:990100", "203.0.113.7", "high"),
            s("crs:990110", "203.0.113.8", "medium"),
        ]
    );
    // the XSS rule is paranoia level 2
    let (pl2, _) = run("2");
    assert!(
        pl2.contains(&s("crs:990120", "203.0.113.9", "high")),
        "{pl2:?}"
    );
    assert!(pl2.iter().all(|a| a.1 != "198.51.100.1"), "{pl2:?}");

    // every rule reported with its file and line; the broken one makes the exit status 1
    let out = tansa()
        .args(["--format", "json", "rules", "check", "--crs"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let reports = json_lines(&out.stdout);
    let by_id = |id: &str| {
        reports
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not reported: {reports:?}"))
            .clone()
    };
    assert_eq!(by_id("crs:990100")["status"], "loaded");
    assert_eq!(by_id("crs:990120")["reason"], "paranoia level 2");
    assert!(by_id("crs:990130")["reason"]
        .as_str()
        .unwrap()
        .contains("REQUEST_COOKIES"));
    let bad = by_id("crs:990140");
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["line"], 10);
    assert!(bad["path"].as_str().unwrap().ends_with("custom.conf"));
    assert!(bad["reason"].as_str().unwrap().contains("@nosuchop"));
    // no Sigma paths needed; a missing directory is an error, not an empty report
    let missing = tansa()
        .args(["rules", "check", "--crs"])
        .arg(d.join("nope"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
}
