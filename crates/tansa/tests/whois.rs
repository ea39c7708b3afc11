//! `tansa whois` against an RDAP server the test starts on loopback (bootstrap files, a
//! redirecting registry, the answers of `tests/data/rdap`), the cache in the store (answers
//! reused, offline use, stale answers when the registry is gone), clear errors for every
//! failure, and traces naming the abuse contact.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{json_lines, succeed, tansa};

/// A small HTTP/1.1 server of RDAP answers; every request path is recorded.
struct Rdap {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn fixture(name: &str, base: &str) -> String {
    let p = common::root()
        .join("crates/tansa/tests/data/rdap")
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .replace("{base}", base)
}

/// Status, extra header and body for a path.
fn route(path: &str, base: &str) -> (u16, String, String) {
    let rdap = |name: &str| (200, String::new(), fixture(name, base));
    if let Some(f) = path.strip_prefix("/iana/") {
        return match f {
            "ipv4.json" | "ipv6.json" | "asn.json" => rdap(f),
            _ => (404, String::new(), String::new()),
        };
    }
    if let Some(ip) = path.strip_prefix("/arin/ip/45.141.87.") {
        // space ARIN holds in IANA's file but RIPE registers: ARIN redirects
        return (
            301,
            format!("Location: {base}/ripe/ip/45.141.87.{ip}\r\n"),
            String::new(),
        );
    }
    match path {
        p if p.starts_with("/ripe/ip/45.141.87.") => rdap("ripe-45.141.87.0.json"),
        p if p.starts_with("/ripe/ip/2a0e:97c") => rdap("ripe-2a0e-97c0.json"),
        "/ripe/autnum/200000" => rdap("ripe-AS200000.json"),
        p if p.starts_with("/apnic/ip/103.77.") => rdap("apnic-103.77.0.0.json"),
        p if p.starts_with("/arin/ip/23.94.") || p.starts_with("/arin/ip/23.95.") => {
            rdap("arin-23.94.0.0.json")
        }
        p if p.starts_with("/down/") => (503, String::new(), "Service Unavailable".into()),
        p if p.starts_with("/garbage/") => (200, String::new(), "<html>a portal</html>".into()),
        _ => (404, String::new(), fixture("not-found.json", base)),
    }
}

fn serve(mut s: TcpStream, base: &str, requests: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
    requests.lock().unwrap().push(path.clone());
    let (status, header, body) = route(&path, base);
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/rdap+json\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Rdap {
    fn start() -> Rdap {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, r, st) = (base.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for s in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = s {
                    serve(s, &b, &r);
                }
            }
        });
        Rdap {
            base,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn bootstrap(&self) -> String {
        format!("{}/iana/", self.base)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Closes the port: later connections are refused.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Rdap {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("whois", name)
}

/// `tansa --data DATA whois --format json ARGS…`: exit status and one object per target.
fn whois(data: &PathBuf, args: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let out = tansa()
        .arg("--data")
        .arg(data)
        .args(["whois", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn whois_asks_the_registry_the_bootstrap_names_and_caches_the_answer() {
    let mut srv = Rdap::start();
    let data = tmp("lookup");
    let bs = srv.bootstrap();
    let (ok, v, err) = whois(
        &data,
        &[
            "--bootstrap",
            &bs,
            "45.141.87.23",
            "103.77.1.9",
            "23.94.10.1",
            "2a0e:97c0:1::5",
            "AS200000",
            "10.0.0.7",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(v.len(), 6);
    // redirected from the registry IANA names to the one that registers the block
    let ripe = &v[0]["record"];
    assert_eq!(ripe["first"], "45.141.87.0");
    assert_eq!(ripe["last"], "45.141.87.255");
    assert_eq!(ripe["cidrs"][0], "45.141.87.0/24");
    assert_eq!(ripe["holder"], "Fixture Hosting B.V.");
    assert_eq!(ripe["country"], "NL");
    assert_eq!(
        ripe["abuse"][0]["emails"][0],
        "abuse@fixture-hosting.example"
    );
    assert_eq!(ripe["registered"], "2020-03-02T09:41:12Z");
    assert!(
        ripe["url"]
            .as_str()
            .unwrap()
            .ends_with("/ripe/ip/45.141.87.23"),
        "{ripe}"
    );
    assert_eq!(v[0]["cached"], false);
    // APNIC: abuse IRT beside the holder, two addresses
    let apnic = &v[1]["record"];
    assert_eq!(apnic["country"], "HK");
    assert_eq!(apnic["cidrs"][0], "103.77.0.0/22");
    assert_eq!(
        apnic["abuse"][0]["emails"],
        serde_json::json!(["abuse@fixture.example.hk", "security@fixture.example.hk"])
    );
    // ARIN: the abuse contact nested under the holder; the first server is down, the second answers
    let arin = &v[2]["record"];
    assert_eq!(arin["holder"], "Fixture Cloud Inc.");
    assert_eq!(arin["abuse"][0]["emails"][0], "abuse@fixture-cloud.example");
    assert_eq!(arin["abuse"][0]["phones"][0], "+1-716-555-0100");
    assert_eq!(arin["last"], "23.95.255.255");
    assert_eq!(arin["type"], "DIRECT ALLOCATION");
    let v6 = &v[3]["record"];
    assert_eq!(v6["first"], "2a0e:97c0::");
    assert_eq!(v6["cidrs"][0], "2a0e:97c0::/29");
    assert_eq!(v6["abuse"][0]["emails"][0], "abuse@fixture-six.example");
    let asn = &v[4]["record"];
    assert_eq!(
        (asn["kind"].as_str(), asn["first"].as_str()),
        (Some("autnum"), Some("200000"))
    );
    assert_eq!(asn["holder"], "Fixture Hosting B.V.");
    // private space is labelled, never asked about
    assert_eq!(v[5]["scope"], "private");
    let asked = srv.requests();
    for p in [
        "/iana/ipv4.json",
        "/iana/ipv6.json",
        "/iana/asn.json",
        "/arin/ip/45.141.87.23",
        "/ripe/ip/45.141.87.23",
        "/down/ip/23.94.10.1",
        "/arin/ip/23.94.10.1",
    ] {
        assert_eq!(
            asked.iter().filter(|a| *a == p).count(),
            1,
            "{p} in {asked:?}"
        );
    }
    assert!(!asked.iter().any(|a| a.contains("10.0.0.7")), "{asked:?}");

    // another address of a cached network: from the cache, no request
    let (ok, v, err) = whois(&data, &["--bootstrap", &bs, "45.141.87.99", "AS200000"]);
    assert!(ok, "{err}");
    assert_eq!(v[0]["cached"], true);
    assert_eq!(
        v[0]["record"]["abuse"][0]["emails"][0],
        "abuse@fixture-hosting.example"
    );
    assert_eq!(v[1]["cached"], true);
    assert_eq!(srv.requests().len(), asked.len(), "{:?}", srv.requests());
    // --refresh asks again (the bootstrap files come from the cache)
    let (ok, v, _) = whois(&data, &["--bootstrap", &bs, "--refresh", "103.77.3.1"]);
    assert!(ok);
    assert_eq!(v[0]["cached"], false);
    let now = srv.requests();
    assert_eq!(now.len(), asked.len() + 1, "{now:?}");
    assert_eq!(now.last().unwrap(), "/apnic/ip/103.77.3.1");
    // the cache is a table of the store
    let sql = succeed(tansa().arg("--data").arg(&data).args([
        "sql",
        "--format",
        "json",
        "SELECT kind, first, abuse_email FROM rdap WHERE kind <> 'bootstrap' ORDER BY first",
    ]));
    let rows = json_lines(&sql.stdout);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r["first"] == "23.94.0.0" && r["abuse_email"] == "abuse@fixture-cloud.example"));

    // the registry is gone: cached answers still come, offline or stale, never a crash
    srv.stop();
    let (ok, v, err) = whois(&data, &["--bootstrap", &bs, "--offline", "45.141.87.5"]);
    assert!(ok, "{err}");
    assert_eq!(v[0]["cached"], true);
    let (ok, v, err) = whois(&data, &["--bootstrap", &bs, "--refresh", "23.94.0.1"]);
    assert!(ok, "{err}");
    assert_eq!(v[0]["record"]["holder"], "Fixture Cloud Inc.");
    assert!(
        v[0]["stale"].as_str().unwrap().contains("23.94.0.1"),
        "{}",
        v[0]
    );
    let (ok, v, err) = whois(&data, &["--bootstrap", &bs, "5.1.2.3"]);
    assert!(!ok);
    assert!(v[0]["error"].as_str().unwrap().contains("5.1.2.3"), "{err}");
    let (ok, v, _) = whois(&data, &["--offline", "8.8.8.8"]);
    assert!(!ok);
    assert!(
        v[0]["error"]
            .as_str()
            .unwrap()
            .contains("no cached RDAP answer"),
        "{}",
        v[0]
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn registry_failures_are_reported_per_target() {
    let srv = Rdap::start();
    let data = tmp("errors");
    let bs = srv.bootstrap();
    // text output: one good answer among failures, each failure named on stderr
    let out = tansa()
        .arg("--data")
        .arg(&data)
        .args(["whois", "--bootstrap", &bs])
        .args(["5.1.2.3", "104.16.0.1", "AS1", "103.77.1.9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("5.1.2.3") && stderr.contains("HTTP 404 (no record)"),
        "{stderr}"
    );
    assert!(stderr.contains("not RDAP JSON"), "{stderr}");
    assert!(stderr.contains("no RDAP service known for AS1"), "{stderr}");
    assert!(stdout.contains("abuse@fixture.example.hk"), "{stdout}");
    // the holder's name carries terminal escapes: shown escaped, never sent raw
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains("Fixture Hong Kong Limited\\x1b[2J"),
        "{stdout}"
    );
    // not a target at all: usage error before any request
    let out = tansa()
        .arg("--data")
        .arg(&data)
        .args(["whois", "--bootstrap", &bs, "example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IP address or AS number"));
    // bootstrap files missing from a directory: reported, AS numbers cannot be placed
    let empty = data.join("no-bootstrap");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, v, err) = whois(&data, &["--bootstrap", empty.to_str().unwrap(), "AS200000"]);
    assert!(!ok);
    assert!(err.contains("asn.json"), "{err}");
    assert!(v[0]["error"]
        .as_str()
        .unwrap()
        .contains("no RDAP service known"));
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn traces_name_the_abuse_contact() {
    let srv = Rdap::start();
    let data = tmp("trace");
    succeed(tansa().arg("--data").arg(&data).args([
        "analyze",
        "--quiet",
        "--no-geoip",
        "--timezone",
        "UTC",
        "--now",
        "2026-03-20T00:00:00Z",
        "examples/logs",
    ]));
    let trace = |extra: &[&str]| {
        let out = succeed(
            tansa()
                .arg("--data")
                .arg(&data)
                .args(["trace", "45.141.87.23", "--format", "json"])
                .args(extra),
        );
        json_lines(&out.stdout).remove(0)
    };
    let before = trace(&[]);
    assert_eq!(before["registrations"], serde_json::json!([]));
    assert!(
        before["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("no registry answer cached")),
        "{}",
        before["notes"]
    );
    let bs = srv.bootstrap();
    let after = trace(&["--whois", "--bootstrap", &bs]);
    let regs = after["registrations"].as_array().unwrap();
    assert!(!regs.is_empty(), "{after}");
    assert!(regs
        .iter()
        .all(|r| r["abuse_email"] == "abuse@fixture-hosting.example"
            && r["network"] == "45.141.87.0/24"));
    assert!(!after["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("no registry answer cached")));
    // the text view and the HTML report name it too (from the cache: no more requests)
    let asked = srv.requests().len();
    let text = succeed(
        tansa()
            .arg("--data")
            .arg(&data)
            .args(["trace", "45.141.87.23"]),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Who holds the addresses"), "{text}");
    assert!(
        text.contains("abuse: abuse@fixture-hosting.example"),
        "{text}"
    );
    let html = succeed(tansa().arg("--data").arg(&data).args([
        "trace",
        "45.141.87.23",
        "--format",
        "html",
    ]));
    assert!(String::from_utf8_lossy(&html.stdout).contains("abuse@fixture-hosting.example"));
    assert_eq!(srv.requests().len(), asked);
    let _ = std::fs::remove_dir_all(&data);
}
