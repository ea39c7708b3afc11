//! The sources beyond the OS, web and database logs, together: a SQL injection traced from
//! the access log through the WAF's audit log and the application's error (a multi-line Java
//! trace) to the slow queries that ran on the database host (examples/sqli).

mod common;

use common::{json_lines, succeed, tansa};

/// The steps of `tansa trace ENTITY` (JSON).
fn trace_steps(data: &std::path::Path, entity: &str) -> Vec<serde_json::Value> {
    let out = succeed(
        tansa()
            .arg("--data")
            .arg(data)
            .args(["--format", "json", "trace", entity]),
    );
    json_lines(&out.stdout)
        .into_iter()
        .filter(|v| v["type"] == "step")
        .collect()
}

#[test]
fn a_sql_injection_is_traced_from_the_access_log_to_the_data_it_reached() {
    let d = common::fresh_dir("sources", "sqli");
    let data = d.join("data");
    let ex = common::root().join("examples/sqli");
    for (host, extra, file) in [
        ("web01", vec![], "web01/nginx/access.log"),
        (
            "web01",
            vec!["--multiline", "modsec"],
            "web01/modsecurity/modsec_audit.log",
        ),
        (
            "web01",
            vec!["--multiline", "java", "--timezone", "UTC"],
            "web01/app/shop.log",
        ),
        ("db01", vec![], "db01/mysql/slow.log"),
    ] {
        succeed(
            tansa()
                .arg("--data")
                .arg(&data)
                .args(["analyze", "--quiet", "--host", host])
                .args(extra)
                .arg(ex.join(file)),
        );
    }
    let steps = trace_steps(&data, "203.0.113.5");
    let find = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        steps
            .iter()
            .find(|s| pred(s))
            .unwrap_or_else(|| panic!("no {what} step in {steps:#?}"))
            .clone()
    };
    // the entry point: the attacker's five requests (runs of alike requests are one step)
    let requests: u64 = steps
        .iter()
        .filter(|s| s["source"] == "http.access")
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 5);
    // the WAF blocked one of them
    let waf = find("WAF", &|s| s["source"] == "modsecurity.audit");
    assert_eq!(waf["host"], "web01");
    assert!(waf["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "Request blocked by the web application firewall"));
    // the one that got through broke the application's query: its whole Java trace
    let app = find("application error", &|s| {
        s["raw"]
            .as_str()
            .unwrap()
            .contains("SQLSyntaxErrorException")
    });
    assert!(app["link"]
        .as_str()
        .unwrap()
        .starts_with("application log +0.4 s after 203.0.113.5's request GET /search.php"));
    assert!(app["raw"]
        .as_str()
        .unwrap()
        .contains("\n\tat com.shop.SearchController.search"));
    // and on the database host, the queries it ran: a time-based probe, then the users' passwords
    let sleep = find("slow query", &|s| {
        s["host"] == "db01" && s["raw"].as_str().unwrap().contains("AND SLEEP(3)")
    });
    assert!(sleep["link"]
        .as_str()
        .unwrap()
        .starts_with("database query"));
    let dump = find("data", &|s| {
        s["host"] == "db01"
            && s["raw"]
                .as_str()
                .unwrap()
                .contains("UNION SELECT email,password FROM users")
    });
    assert_eq!(dump["phase"], "collection");
    // a benign visitor's search is not in the chain
    assert!(!steps
        .iter()
        .any(|s| s["raw"].as_str().unwrap().contains("198.51.100.10")));
    let _ = std::fs::remove_dir_all(&d);
}

/// The same in one run: the framing chosen per file by `--multiline GLOB=PRESET`, the hosts
/// from the directory names.
#[test]
fn one_run_frames_each_file_by_its_pattern() {
    let d = common::fresh_dir("sources", "one-run");
    let data = d.join("data");
    succeed(
        tansa()
            .arg("--data")
            .arg(&data)
            .args([
                "analyze",
                "--quiet",
                "--timezone",
                "UTC",
                "--multiline",
                "*/modsecurity/*=modsec",
                "--multiline",
                "*/app/*=java",
            ])
            .arg(common::root().join("examples/sqli")),
    );
    let steps = trace_steps(&data, "203.0.113.5");
    let has = |f: &dyn Fn(&serde_json::Value) -> bool| steps.iter().any(f);
    assert!(has(
        &|s| s["source"] == "modsecurity.audit" && s["host"] == "web01"
    ));
    assert!(has(&|s| s["raw"]
        .as_str()
        .unwrap()
        .contains("\n\tat com.shop.SearchController")));
    assert!(has(&|s| s["host"] == "db01"
        && s["raw"]
            .as_str()
            .unwrap()
            .contains("UNION SELECT email,password")));
    let _ = std::fs::remove_dir_all(&d);
}
