//! `tansa serve`: a real server process following files and receiving syslog (util-linux
//! `logger`) on loopback; detection as lines arrive; the CLI through its API while it holds
//! the store; rotation; clean stops; and kill -9 in the middle of a steady write, twenty
//! times, with every line stored exactly once.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{collect, json_lines, succeed, tansa, wait_for};

fn dir(name: &str) -> PathBuf {
    common::fresh_dir("serve", name)
}

/// A running `tansa serve`, its output collected line by line.
struct Server {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(config: &Path, data: &Path) -> Server {
        let mut child = tansa()
            .arg("--data")
            .arg(data)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let s = Server {
            child,
            stdout,
            stderr,
        };
        wait_for("the server to start", Duration::from_secs(60), || {
            s.ready().is_some()
        });
        s
    }

    /// The start line (`tansa serve: following …`), once written.
    fn ready(&self) -> Option<String> {
        let err = self.stderr.lock().unwrap();
        if let Some(l) = err
            .iter()
            .find(|l| l.contains("Error") || l.contains("error"))
        {
            panic!("server failed: {l}\n{}", err.join("\n"));
        }
        err.iter().find(|l| l.contains("following")).cloned()
    }

    /// An address from the start line: `API on http://A` or `syslog+tcp://A`.
    fn addr(&self, prefix: &str) -> String {
        let line = self.ready().unwrap();
        let at = line
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {line}"))
            + prefix.len();
        line[at..]
            .split([',', ' '])
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_owned()
    }

    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        succeed(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        (status, err)
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A failing test leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn write_config(d: &Path, files: &str, syslog: bool) -> PathBuf {
    let mut c = format!(
        "version = 1\n[server]\ncollector = \"test-collector\"\ntimezone = \"UTC\"\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\npoll_ms = 100\n{files}"
    );
    if syslog {
        c += "[[syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n[[syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"udp\"\n";
    }
    let p = d.join("tansa.toml");
    std::fs::write(&p, c).unwrap();
    p
}

fn sql(data: &Path, q: &str) -> Vec<serde_json::Value> {
    json_lines(
        &succeed(
            tansa()
                .arg("--data")
                .arg(data)
                .args(["--format", "json", "sql", q]),
        )
        .stdout,
    )
}

fn count(data: &Path, q: &str) -> u64 {
    sql(data, q)[0]["n"].as_u64().unwrap()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// `Mmm dd HH:MM:SS` of now (UTC), as sshd writes it.
fn stamp() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%b %e %H:%M:%S")
        .to_string()
}

fn failures(ip: &str, n: usize, from: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            format!(
                "{} web01 sshd[{}]: Failed password for invalid user admin{i} from {ip} port {} ssh2",
                stamp(),
                4000 + i,
                40000 + i
            )
        })
        .collect()
}

fn http_get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (method, body) = if path.starts_with("/api") {
        ("POST", r#"{"request":"stats"}"#)
    } else {
        ("GET", "")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_detects_as_lines_arrive_answers_through_its_api_and_stores_each_line_once() {
    if Command::new("logger").arg("--version").output().is_err() {
        panic!("util-linux `logger` is needed (scripts/test installs bsdutils)");
    }
    let d = dir("live");
    let data = d.join("data");
    let log = d.join("auth.log");
    append(&log, &failures("198.51.100.7", 2, 0));
    let cfg = write_config(
        &d,
        &format!(
            "[[file]]\npath = {:?}\nhost = \"web01\"\n",
            log.to_str().unwrap()
        ),
        true,
    );
    let s = Server::start(&cfg, &data);
    let api = s.addr("API on http://");
    let tcp = s.addr("syslog+tcp://");
    let udp = s.addr("syslog+udp://");

    // a brute force written now is an alert within a second or two
    let written = Instant::now();
    append(&log, &failures("203.0.113.50", 12, 2));
    wait_for("the brute-force alert", Duration::from_secs(10), || {
        s.stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("SSH brute force") && l.contains("203.0.113.50"))
    });
    let latency = written.elapsed();
    println!("write → alert on stdout: {latency:?}");
    assert!(latency < Duration::from_secs(5), "{latency:?}");

    // syslog over TCP (octet counting) and UDP from util-linux logger
    let (th, tp) = tcp.rsplit_once(':').unwrap();
    let (uh, up) = udp.rsplit_once(':').unwrap();
    for i in 0..5 {
        succeed(Command::new("logger").args([
            "--tcp",
            "--octet-count",
            "-n",
            th,
            "-P",
            tp,
            "-t",
            "sshd",
            &format!("Failed password for root from 192.0.2.{i} port 22 ssh2"),
        ]));
    }
    for i in 0..3 {
        succeed(Command::new("logger").args([
            "--udp",
            "-n",
            uh,
            "-P",
            up,
            "-t",
            "app",
            &format!("udp message {i}"),
        ]));
    }
    // while the server holds the store, the CLI goes through its API
    wait_for("22 events through the API", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") == 22
    });
    assert_eq!(
        count(
            &data,
            "SELECT count(*) AS n FROM events WHERE log_path LIKE 'syslog+tcp://%' AND source_ip LIKE '192.0.2.%' AND outcome = 'failure'"
        ),
        5
    );
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE agent_id = 'test-collector' AND ingested IS NOT NULL"),
        22
    );
    let found = succeed(tansa().arg("--data").arg(&data).args([
        "--format",
        "json",
        "search",
        "source.ip:203.0.113.50",
    ]));
    assert_eq!(json_lines(&found.stdout).len(), 12);

    // health and metrics need no token; the API does
    let h = http_get(&api, "/health", None);
    assert!(
        h.starts_with("HTTP/1.1 200") && h.contains("\"status\":\"ok\""),
        "{h}"
    );
    let m = http_get(&api, "/metrics", None);
    assert!(m.contains("tansa_lines_received_total 22"), "{m}");
    assert!(
        m.contains("tansa_detection_latency_seconds_bucket{le=\"+Inf\"} 22"),
        "{m}"
    );
    assert!(
        m.contains("tansa_syslog_messages_total{listener=\"syslog+tcp://"),
        "{m}"
    );
    let denied = http_get(&api, "/api/v1/query", Some("wrong"));
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    let token = std::fs::read_to_string(data.join("api-token")).unwrap();
    let ok = http_get(&api, "/api/v1/query", Some(token.trim()));
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("sections"),
        "{ok}"
    );

    // rename-and-create rotation while running: the old file's last lines and the new file's
    append(&log, &failures("198.51.100.8", 3, 100));
    std::fs::rename(&log, d.join("auth.log.1")).unwrap();
    append(&d.join("auth.log.1"), &failures("198.51.100.8", 2, 103));
    append(&log, &failures("198.51.100.9", 4, 200));
    wait_for("the rotated lines", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") == 31
    });

    let (status, err) = s.terminate();
    assert!(status.success(), "{status}: {err:?}");
    assert!(
        err.iter().any(|l| l.contains("stopped; 31 lines")),
        "{err:?}"
    );
    assert!(
        !data.join("serve.json").exists(),
        "the API address is withdrawn"
    );

    // the store itself: every line once, the alert stored with links to its events
    let once = |data: &Path| {
        count(
            data,
            "SELECT count(*) AS n FROM (SELECT log_path, log_offset, raw, count(*) c FROM events GROUP BY ALL HAVING c > 1)",
        )
    };
    assert_eq!(count(&data, "SELECT count(*) AS n FROM events"), 31);
    assert_eq!(once(&data), 0);
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM alerts a JOIN alert_events l ON l.alert_id = a.id JOIN events e ON e.id = l.event_id WHERE a.rule_id = 'tansa.ssh.brute_force' AND e.source_ip = '203.0.113.50'"),
        3,
        "the alert's events (the tenth failure that raised it, the two it absorbed) are linked by id"
    );

    // lines written while it is down are read at the next start; nothing read twice
    append(&log, &failures("198.51.100.10", 3, 300));
    let s = Server::start(&cfg, &data);
    assert!(s.ready().unwrap().contains("1 resumed"), "{:?}", s.ready());
    wait_for(
        "the lines written while down",
        Duration::from_secs(20),
        || count(&data, "SELECT count(*) AS n FROM events") == 34,
    );
    std::thread::sleep(Duration::from_millis(600));
    let (status, _) = s.terminate();
    assert!(status.success());
    assert_eq!(count(&data, "SELECT count(*) AS n FROM events"), 34);
    assert_eq!(once(&data), 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn serve_killed_twenty_times_during_a_steady_write_stores_every_line_once() {
    let d = dir("kill9");
    let data = d.join("data");
    let log = d.join("app.log");
    let cfg = write_config(
        &d,
        &format!("[[file]]\npath = {:?}\n", log.to_str().unwrap()),
        false,
    );
    // the writer: numbered lines, ~2000/s, the file renamed away every 3000 lines
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (st, lg, dd) = (stop.clone(), log.clone(), d.clone());
    let writer = std::thread::spawn(move || {
        let (mut n, mut rotations) = (0u64, 0u64);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&lg)
            .unwrap();
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..20 {
                writeln!(f, "Nov 23 10:00:00 web01 app[1]: seq={n:08}").unwrap();
                n += 1;
                if n % 3000 == 0 {
                    rotations += 1;
                    std::fs::rename(&lg, dd.join(format!("app.log.{rotations}"))).unwrap();
                    f = std::fs::OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(&lg)
                        .unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (n, rotations)
    });
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20 {
        let s = Server::start(&cfg, &data);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(200 + seed % 1000));
        s.kill9();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (total, rotations) = writer.join().unwrap();
    let s = Server::start(&cfg, &data);
    let api_count = || count(&data, "SELECT count(*) AS n FROM events");
    wait_for("every line", Duration::from_secs(60), || {
        api_count() >= total
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, err) = s.terminate();
    assert!(status.success(), "{err:?}");
    let r = &sql(
        &data,
        "SELECT count(*) AS n, count(DISTINCT raw) AS d, min(regexp_extract(raw, 'seq=(\\d+)', 1)::BIGINT) AS lo, \
         max(regexp_extract(raw, 'seq=(\\d+)', 1)::BIGINT) AS hi FROM events",
    )[0];
    println!(
        "kill -9 cycles: 20, lines written: {total}, rotations: {rotations}, stored: {}, distinct: {}",
        r["n"], r["d"]
    );
    assert_eq!(r["n"].as_u64(), Some(total), "{r}");
    assert_eq!(r["d"].as_u64(), Some(total), "{r}");
    assert_eq!(r["lo"].as_u64(), Some(0));
    assert_eq!(r["hi"].as_u64(), Some(total - 1));
    let _ = std::fs::remove_dir_all(&d);
}

/// `openssl s_client` sending `msg` with a client certificate; returns its exit status
/// (the server may refuse it at or right after the handshake).
fn openssl_send(addr: &str, ca: &Path, cert: &Path, key: &Path, msg: &str) {
    let mut c = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", addr, "-CAfile"])
        .arg(ca)
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is needed");
    let _ = c
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{} {msg}", msg.len()).as_bytes());
    let start = Instant::now();
    while c.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn syslog_over_mutual_tls_from_rsyslog_while_bad_clients_are_refused() {
    if Command::new("rsyslogd").arg("-v").output().is_err() {
        panic!("rsyslog with its OpenSSL driver is needed (scripts/test installs rsyslog and rsyslog-openssl)");
    }
    let d = dir("tls");
    let data = d.join("data");
    let ca = d.join("ca");
    let ca_cmd = |args: &[&str]| {
        succeed(tansa().arg("--data").arg(&data).args(args));
    };
    let cad = ca.to_str().unwrap();
    ca_cmd(&["ca", "init", "--ca-dir", cad]);
    ca_cmd(&["ca", "issue", "--ca-dir", cad, "--server", "server"]);
    ca_cmd(&["ca", "issue", "--ca-dir", cad, "web01"]);
    ca_cmd(&["ca", "issue", "--ca-dir", cad, "stolen"]);
    ca_cmd(&["ca", "revoke", "--ca-dir", cad, "stolen"]);
    // a certificate of another authority
    let other = d.join("other");
    ca_cmd(&["ca", "init", "--ca-dir", other.to_str().unwrap()]);
    ca_cmd(&[
        "ca",
        "issue",
        "--ca-dir",
        other.to_str().unwrap(),
        "intruder",
    ]);

    let cfg = d.join("tansa.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[server]\ntimezone = \"UTC\"\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\n\
             [[syslog]]\nlisten = \"127.0.0.1:0\"\nprotocol = \"tls\"\ncert = \"ca/issued/server.pem\"\n\
             key = \"ca/issued/server.key\"\nclient_ca = \"ca/ca.pem\"\ncrl = \"ca/crl.pem\"\n",
    )
    .unwrap();
    let s = Server::start(&cfg, &data);
    let tls = s.addr("syslog+tls://");
    let api = s.addr("API on http://");
    let (host, port) = tls.rsplit_once(':').unwrap();

    // bad clients first, and one that connects and says nothing: none stops the others
    let mut slow = std::net::TcpStream::connect(&tls).unwrap();
    let mut garbage = std::net::TcpStream::connect(&tls).unwrap();
    garbage
        .write_all(b"<13>Nov 23 10:00:00 h app: not TLS at all\n")
        .unwrap();
    openssl_send(
        &tls,
        &ca.join("ca.pem"),
        &ca.join("issued/stolen.pem"),
        &ca.join("issued/stolen.key"),
        "<13>Nov 23 10:00:00 h app: from a revoked certificate",
    );
    openssl_send(
        &tls,
        &ca.join("ca.pem"),
        &other.join("issued/intruder.pem"),
        &other.join("issued/intruder.key"),
        "<13>Nov 23 10:00:00 h app: from another CA",
    );

    // rsyslog reads a file and forwards it over TLS with its certificate (RFC 5425 framing)
    let work = d.join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let input = work.join("in.log");
    std::fs::write(&input, "").unwrap();
    let conf = work.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{w}" DefaultNetstreamDriver="ossl"
  DefaultNetstreamDriverCAFile="{ca}/ca.pem" DefaultNetstreamDriverCertFile="{ca}/issued/web01.pem"
  DefaultNetstreamDriverKeyFile="{ca}/issued/web01.key")
module(load="imfile")
input(type="imfile" File="{input}" Tag="sshd[77]:" Facility="auth")
action(type="omfwd" Target="{host}" Port="{port}" Protocol="tcp" TCP_Framing="octet-counted"
  StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid"
  Template="RSYSLOG_SyslogProtocol23Format")
"#,
            w = work.display(),
            ca = ca.display(),
            input = input.display()
        ),
    )
    .unwrap();
    let mut rsyslog = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(work.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = (0..20)
        .map(|i| format!("Failed password for root from 203.0.113.{i} port 22 ssh2"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    append(&input, &lines);
    let tls_rows = "SELECT count(*) AS n FROM events WHERE log_path LIKE 'syslog+tls://%'";
    let waited = Instant::now();
    while count(&data, tls_rows) < 20 && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = rsyslog.kill();
    let out = rsyslog.wait_with_output().unwrap();
    assert_eq!(
        count(&data, tls_rows),
        20,
        "rsyslog's lines over TLS; rsyslogd said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the client certificate names the sender; nothing of the refused clients is stored
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE agent_id = 'web01' AND raw LIKE '%Failed password for root from 203.0.113.%'"),
        20
    );
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE raw LIKE '%revoked%' OR raw LIKE '%another CA%' OR raw LIKE '%not TLS%'"),
        0
    );
    let m = http_get(&api, "/metrics", None);
    let refused: u64 = m
        .lines()
        .find(|l| l.starts_with("tansa_syslog_tls_refused_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(refused >= 3, "revoked, unknown CA and garbage refused: {m}");
    // the silent client was held open throughout
    slow.write_all(b"").unwrap();
    let (status, err) = s.terminate();
    assert!(status.success(), "{err:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A raw HTTP/1.1 request; returns the status code and the body.
fn http_post(addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (code, body.to_owned())
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn shippers_bulk_bodies_and_plain_lines_are_ingested_over_http() {
    let d = dir("ingest");
    let data = d.join("data");
    let cfg = d.join("tansa.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[server]\ntimezone = \"UTC\"\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\n",
    )
    .unwrap();
    let s = Server::start(&cfg, &data);
    let api = s.addr("API on http://");
    let token = std::fs::read_to_string(data.join("api-token")).unwrap();
    let token = token.trim();
    let bearer = format!("Bearer {token}");
    // Basic with the token as password, as Fluent Bit's HTTP_User/HTTP_Passwd send it
    let basic = {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("elastic:{token}"));
        format!("Basic {b}")
    };
    let data_dir = common::root().join("crates/tansa/tests/data/ingest");
    let body = |f: &str| std::fs::read(data_dir.join(f)).unwrap();
    let nd = ("Content-Type", "application/x-ndjson");

    // what Elasticsearch clients check first
    let info = http_get(&api, "/", None);
    assert!(info.contains("\"number\":\"8.11.0\""), "{info}");
    // no token, no ingest
    let (code, _) = http_post(&api, "/_bulk", &[nd], &body("filebeat-bulk.ndjson"));
    assert_eq!(code, 401);

    // Filebeat: gzip, Basic auth; the answer comes once the lines are stored
    let (code, r) = http_post(
        &api,
        "/_bulk",
        &[nd, ("Content-Encoding", "gzip"), ("Authorization", &basic)],
        &gzip(&body("filebeat-bulk.ndjson")),
    );
    assert_eq!(code, 200, "{r}");
    let r: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["errors"], false);
    assert_eq!(r["items"].as_array().unwrap().len(), 13);
    assert_eq!(r["items"][0]["create"]["status"], 201);
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE host = 'web02' AND log_path = '/var/log/auth.log' AND dataset = 'sshd' AND outcome = 'failure' AND source_ip = '203.0.113.66'"),
        12,
        "stored before the answer, parsed as sshd lines of web02's auth.log"
    );
    wait_for("the brute-force alert", Duration::from_secs(10), || {
        s.stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("SSH brute force") && l.contains("203.0.113.66"))
    });

    // Fluent Bit into an index path, Bearer token
    let (code, r) = http_post(
        &api,
        "/fluent-bit/_bulk",
        &[nd, ("Authorization", &bearer)],
        &body("fluent-bit-bulk.ndjson"),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE host = 'web03' AND log_path = '/var/log/nginx/access.log' AND http_status = 200"),
        2
    );
    // Vector, with one malformed pair: refused alone
    let (code, r) = http_post(
        &api,
        "/_bulk",
        &[nd, ("Authorization", &bearer)],
        &body("vector-bulk.ndjson"),
    );
    assert_eq!(code, 200, "{r}");
    let r: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["errors"], true);
    let statuses: Vec<u64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 201]);
    assert_eq!(
        count(
            &data,
            "SELECT count(*) AS n FROM events WHERE host = 'db02' AND source_ip = '203.0.113.80'"
        ),
        2
    );
    // plain lines with the host and file given
    let (code, r) = http_post(
        &api,
        "/api/v1/ingest?host=db01&path=/var/log/app.log",
        &[("Authorization", &bearer)],
        b"first line\nsecond line\n\n{\"message\":\"json line\",\"level\":\"warn\"}\n",
    );
    assert_eq!((code, r.as_str()), (200, "{\"accepted\":3}"));
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE host = 'db01' AND log_path = '/var/log/app.log'"),
        3
    );
    let (status, err) = s.terminate();
    assert!(status.success(), "{err:?}");
    assert_eq!(count(&data, "SELECT count(*) AS n FROM events"), 20);
    let _ = std::fs::remove_dir_all(&d);
}

/// A free loopback port (the agents' listener keeps one across server restarts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA with a server certificate and the named agents' certificates, a server
/// configuration with an agents listener on `port`, and an agent configuration per name.
fn agent_setup(d: &Path, port: u16, agents: &[&str], files: &[&Path]) -> PathBuf {
    let data = d.join("data");
    let ca = d.join("ca");
    let cad = ca.to_str().unwrap();
    let run = |args: &[&str]| {
        succeed(tansa().arg("--data").arg(&data).args(args));
    };
    run(&["ca", "init", "--ca-dir", cad]);
    run(&["ca", "issue", "--ca-dir", cad, "--server", "server"]);
    for a in agents {
        run(&["ca", "issue", "--ca-dir", cad, a]);
        let mut c = format!(
            "version = 1\n[agent]\nserver = \"127.0.0.1:{port}\"\nserver_name = \"localhost\"\n\
             ca = \"ca/ca.pem\"\ncert = \"ca/issued/{a}.pem\"\nkey = \"ca/issued/{a}.key\"\n\
             spool = \"spool-{a}\"\npoll_ms = 100\n"
        );
        for f in files {
            c += &format!("[[file]]\npath = {:?}\n", f.to_str().unwrap());
        }
        std::fs::write(d.join(format!("agent-{a}.toml")), c).unwrap();
    }
    let cfg = d.join("tansa.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[server]\ntimezone = \"UTC\"\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\n\
             [agents]\nlisten = \"127.0.0.1:{port}\"\ncert = \"ca/issued/server.pem\"\n\
             key = \"ca/issued/server.key\"\nclient_ca = \"ca/ca.pem\"\ncrl = \"ca/crl.pem\"\n"
        ),
    )
    .unwrap();
    cfg
}

/// A running `tansa agent`.
struct Agent {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(config: &Path) -> Agent {
        let mut child = tansa()
            .args(["agent", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        Agent { child, stderr }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) -> Vec<String> {
        succeed(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "{err:?}");
        err
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Numbered lines at ~2000/s, the file renamed away every `rotate` lines, until `stop`.
fn steady_writer(
    log: PathBuf,
    rotate: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let dir = log.parent().unwrap().to_owned();
        let (mut n, mut rotations) = (0u64, 0u64);
        let open = || {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&log)
                .unwrap()
        };
        let mut f = open();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..20 {
                writeln!(f, "Nov 23 10:00:00 web01 app[1]: seq={n:08}").unwrap();
                n += 1;
                if n % rotate == 0 {
                    rotations += 1;
                    let name =
                        format!("{}.{rotations}", log.file_name().unwrap().to_str().unwrap());
                    std::fs::rename(&log, dir.join(name)).unwrap();
                    f = open();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (n, rotations)
    })
}

/// Every number below `total` stored once.
fn assert_each_once(data: &Path, total: u64) -> String {
    let r = &sql(
        data,
        "SELECT count(*) AS n, count(DISTINCT raw) AS d, min(regexp_extract(raw, 'seq=(\\d+)', 1)::BIGINT) AS lo, \
         max(regexp_extract(raw, 'seq=(\\d+)', 1)::BIGINT) AS hi FROM events",
    )[0];
    assert_eq!(r["n"].as_u64(), Some(total), "{r}");
    assert_eq!(r["d"].as_u64(), Some(total), "{r}");
    assert_eq!(r["lo"].as_u64(), Some(0));
    assert_eq!(r["hi"].as_u64(), Some(total - 1));
    format!("stored {}, distinct {}", r["n"], r["d"])
}

#[test]
fn agents_over_mutual_tls_killed_twenty_times_with_the_server_store_every_line_once() {
    let d = dir("agent-kill9");
    let log = d.join("app.log");
    let port = free_port();
    let cfg = agent_setup(&d, port, &["web01", "stolen"], &[&log]);
    let data = d.join("data");
    succeed(tansa().arg("--data").arg(&data).args([
        "ca",
        "revoke",
        "--ca-dir",
        d.join("ca").to_str().unwrap(),
        "stolen",
    ]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = steady_writer(log.clone(), 3000, stop.clone());
    let mut server = Some(Server::start(&cfg, &data));
    // a revoked agent is refused: its lines never arrive
    let revoked = Agent::start(&d.join("agent-stolen.toml"));
    let mut agent = Some(Agent::start(&d.join("agent-web01.toml")));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = (0, 0);
    for cycle in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(300 + seed % 900));
        // alternately the agent, the server, and every fifth cycle both
        if cycle % 2 == 0 || cycle % 5 == 4 {
            agent.take().unwrap().kill9();
            kills.0 += 1;
        }
        if cycle % 2 == 1 || cycle % 5 == 4 {
            server.take().unwrap().kill9();
            kills.1 += 1;
        }
        std::thread::sleep(Duration::from_millis(100 + seed % 400));
        if server.is_none() {
            server = Some(Server::start(&cfg, &data));
        }
        if agent.is_none() {
            agent = Some(Agent::start(&d.join("agent-web01.toml")));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (total, rotations) = writer.join().unwrap();
    wait_for(
        "every line through the agent",
        Duration::from_secs(90),
        || count(&data, "SELECT count(*) AS n FROM events") >= total,
    );
    std::thread::sleep(Duration::from_millis(500));
    let refused = revoked.stderr.lock().unwrap().clone();
    revoked.kill9();
    agent.take().unwrap().terminate();
    let (status, err) = server.take().unwrap().terminate();
    assert!(status.success(), "{err:?}");
    let figure = assert_each_once(&data, total);
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE agent_id = 'web01' AND host IS NOT NULL AND ingested IS NOT NULL"),
        total
    );
    // the revoked agent's lines never arrived (every event above is web01's), and it was
    // told so each time it tried
    assert!(
        refused
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{port}: "))),
        "the revoked agent's failures: {refused:?}"
    );
    println!(
        "agent + server kill -9: {} agent kills, {} server kills, {total} lines written, {rotations} rotations, {figure}",
        kills.0, kills.1
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_agent_keeps_reading_while_the_server_is_down_and_delivers_everything_when_it_returns() {
    let down: u64 = std::env::var("TANSA_TEST_SERVER_DOWN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let d = dir("agent-down");
    let log = d.join("app.log");
    let port = free_port();
    let cfg = agent_setup(&d, port, &["web01"], &[&log]);
    let data = d.join("data");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // a rotation every 2000 lines: many while the server is down
    let writer = steady_writer(log.clone(), 2000, stop.clone());
    let server = Server::start(&cfg, &data);
    let agent = Agent::start(&d.join("agent-web01.toml"));
    wait_for("the first lines", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") > 500
    });
    let (status, _) = server.terminate();
    assert!(status.success());
    let stopped = Instant::now();
    let spool = d.join("spool-web01/spool");
    let spooled = |p: &Path| -> u64 {
        std::fs::read_dir(p)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let before = spooled(&spool);
    std::thread::sleep(Duration::from_secs(down));
    let grown = spooled(&spool) - before;
    assert!(
        grown > 100_000,
        "the agent kept reading into its spool: {grown} bytes"
    );
    let server = Server::start(&cfg, &data);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (total, rotations) = writer.join().unwrap();
    let returned = Instant::now();
    wait_for("the spooled lines", Duration::from_secs(120), || {
        count(&data, "SELECT count(*) AS n FROM events") >= total
    });
    let caught_up = returned.elapsed();
    // the agent's own counters, reported at its reconnection: it read while the server was
    // down, and failed to connect meanwhile
    let http = server.addr("http://");
    wait_for("the agent's report", Duration::from_secs(30), || {
        metric(&http, "tansa_agent_reconnects_total") > 0
    });
    assert!(
        http_get(&http, "/metrics", None).contains("tansa_agent_lines_read_total{agent=\"web01\"}"),
        "the agent reports under its certificate's name"
    );
    assert!(metric(&http, "tansa_agent_lines_read_total") > 500);
    std::thread::sleep(Duration::from_millis(300));
    agent.terminate();
    let (status, _) = server.terminate();
    assert!(status.success());
    let figure = assert_each_once(&data, total);
    println!(
        "server down {:?} while the agent read: spool grew {grown} bytes, {total} lines, {rotations} rotations; delivered {caught_up:?} after the server returned; {figure}",
        returned - stopped
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Appends entries to a journal file with systemd-journal-remote (export format on stdin).
fn journal_append(dir: &Path, entries: &[(&str, &str, &str)]) {
    let now = jiff::Timestamp::now().as_microsecond();
    let mut export = String::new();
    for (i, (host, ident, msg)) in entries.iter().enumerate() {
        export += &format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _HOSTNAME={host}\nSYSLOG_IDENTIFIER={ident}\n_PID={}\nMESSAGE={msg}\n\n",
            now + i as i64,
            now + i as i64,
            100 + i
        );
    }
    let mut c = Command::new("/lib/systemd/systemd-journal-remote")
        .arg("-o")
        .arg(dir.join("remote.journal"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("systemd-journal-remote is needed (scripts/test installs it)");
    c.stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success());
}

#[test]
fn the_journal_is_followed_from_its_cursor_and_each_entry_stored_once() {
    let d = dir("journal");
    let data = d.join("data");
    let jdir = d.join("journal");
    std::fs::create_dir_all(&jdir).unwrap();
    let fails: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "Failed password for root from 203.0.113.99 port {} ssh2",
                40000 + i
            )
        })
        .collect();
    let entries: Vec<(&str, &str, &str)> = fails
        .iter()
        .map(|m| ("web05", "sshd", m.as_str()))
        .collect();
    journal_append(&jdir, &entries);
    let cfg = d.join("tansa.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[server]\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\n[[journal]]\ndirectory = \"journal\"\n",
    )
    .unwrap();
    let s = Server::start(&cfg, &data);
    wait_for(
        "the brute force from the journal",
        Duration::from_secs(20),
        || {
            s.stdout
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("SSH brute force") && l.contains("203.0.113.99"))
        },
    );
    journal_append(
        &jdir,
        &[(
            "web05",
            "sudo",
            "deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/id",
        )],
    );
    wait_for(
        "the entry written while following",
        Duration::from_secs(20),
        || count(&data, "SELECT count(*) AS n FROM events") == 13,
    );
    let (status, _) = s.terminate();
    assert!(status.success());
    // written while the server is down: read after the saved cursor, nothing twice
    journal_append(
        &jdir,
        &[(
            "web05",
            "sshd",
            "Accepted publickey for deploy from 198.51.100.4 port 50000 ssh2",
        )],
    );
    let s = Server::start(&cfg, &data);
    wait_for(
        "the entry written while down",
        Duration::from_secs(20),
        || count(&data, "SELECT count(*) AS n FROM events") >= 14,
    );
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = s.terminate();
    assert!(status.success());
    assert_eq!(count(&data, "SELECT count(*) AS n FROM events"), 14);
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE host = 'web05' AND log_path = 'journal://' || (SELECT min(log_path)[11:] FROM events) AND dataset = 'sshd'"),
        13
    );
    assert_eq!(
        count(&data, "SELECT count(DISTINCT log_offset) AS n FROM events"),
        14,
        "offsets are the journal's sequence numbers"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_api_over_tls_answers_the_command_line() {
    let d = dir("api-tls");
    let data = d.join("data");
    let ca = d.join("ca");
    let cad = ca.to_str().unwrap();
    for args in [
        vec!["ca", "init", "--ca-dir", cad],
        vec!["ca", "issue", "--ca-dir", cad, "--server", "api"],
    ] {
        succeed(tansa().arg("--data").arg(&data).args(&args));
    }
    let log = d.join("auth.log");
    append(&log, &failures("203.0.113.77", 3, 0));
    let cfg = write_config(
        &d,
        &format!(
            "tls_cert = \"ca/issued/api.pem\"\ntls_key = \"ca/issued/api.key\"\ntls_ca = \"ca/ca.pem\"\n\
             [[file]]\npath = {:?}\n",
            log.to_str().unwrap()
        ),
        false,
    );
    let s = Server::start(&cfg, &data);
    let api = s.addr("API on https://");
    assert!(std::fs::read_to_string(data.join("serve.json"))
        .unwrap()
        .contains("\"url\":\"https://"));
    // the command line trusts the CA named in serve.json
    wait_for("3 events over https", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") == 3
    });
    let port = api.rsplit_once(':').unwrap().1;
    let health = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca.join("ca.pem"))
        .arg(format!("https://localhost:{port}/health"))
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("\"status\":\"ok\""),
        "{health:?}"
    );
    // plain HTTP gets no answer from a TLS port
    let mut plain = String::new();
    if let Ok(mut c) = std::net::TcpStream::connect(&api) {
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let _ = c.read_to_string(&mut plain);
    }
    assert!(!plain.contains("\"status\""), "{plain}");
    let (status, err) = s.terminate();
    assert!(status.success(), "{err:?}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn an_agent_ships_the_journal_of_its_host_once() {
    let d = dir("agent-journal");
    let data = d.join("data");
    let jdir = d.join("journal");
    std::fs::create_dir_all(&jdir).unwrap();
    let port = free_port();
    let cfg = agent_setup(&d, port, &["web06"], &[]);
    let acfg = d.join("agent-web06.toml");
    let mut text = std::fs::read_to_string(&acfg).unwrap();
    text += "[[journal]]\ndirectory = \"journal\"\n";
    std::fs::write(&acfg, text).unwrap();
    let fails: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "Failed password for root from 203.0.113.111 port {} ssh2",
                41000 + i
            )
        })
        .collect();
    let entries: Vec<(&str, &str, &str)> = fails
        .iter()
        .map(|m| ("web06", "sshd", m.as_str()))
        .collect();
    journal_append(&jdir, &entries);
    let s = Server::start(&cfg, &data);
    let agent = Agent::start(&acfg);
    wait_for("the journal's brute force", Duration::from_secs(30), || {
        s.stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("SSH brute force") && l.contains("203.0.113.111"))
    });
    agent.terminate();
    // entries written while the agent is stopped are shipped after its saved cursor
    journal_append(
        &jdir,
        &[(
            "web06",
            "sshd",
            "Accepted password for deploy from 198.51.100.9 port 50001 ssh2",
        )],
    );
    let agent = Agent::start(&acfg);
    wait_for("13 entries", Duration::from_secs(30), || {
        count(&data, "SELECT count(*) AS n FROM events") >= 13
    });
    std::thread::sleep(Duration::from_millis(500));
    agent.terminate();
    let (status, _) = s.terminate();
    assert!(status.success());
    assert_eq!(
        count(&data, "SELECT count(*) AS n FROM events WHERE agent_id = 'web06' AND host = 'web06' AND dataset = 'sshd'"),
        13
    );
    assert_eq!(
        count(&data, "SELECT count(DISTINCT raw) AS n FROM events"),
        13
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `[server] fim = true`: a baseline at the start, then a change found by the next check and
/// alerted through the server's own data path.
#[test]
fn serve_watches_file_integrity() {
    let d = dir("fim");
    let data = d.join("data");
    let root = d.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/bash\n").unwrap();
    let cfg = write_config(
        &d,
        &format!(
            "fim = true\nfim_interval_s = 1\nfim_paths = [\"{}\"]\n",
            root.display()
        ),
        false,
    );
    let s = Server::start(&cfg, &data);
    wait_for("the baseline stored", Duration::from_secs(30), || {
        count(
            &data,
            "SELECT count(*) AS n FROM events WHERE dataset = 'fim'",
        ) >= 3
    });
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/bash\nevil:x:0:0::/:/bin/sh\n",
    )
    .unwrap();
    let took = wait_for("the FIM alert", Duration::from_secs(30), || {
        count(
            &data,
            "SELECT count(*) AS n FROM alerts WHERE rule_id = 'tansa.fim.account_files_changed'",
        ) == 1
    });
    println!("fim: change alerted by the server in {took:?}");
    let (status, _) = s.terminate();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&d);
}

/// Multi-line records in a followed file: a stack trace is one event; a record torn by a
/// rotation loses no line; a record that never ends is cut at its bounds; nothing is held
/// past the timeout.
#[test]
fn serve_joins_multi_line_records_within_bounds_and_across_rotation() {
    let d = dir("multiline");
    let data = d.join("data");
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = write_config(
        &d,
        &format!(
            "[[file]]\npath = \"{}\"\nmultiline = \"timestamp\"\nmultiline_timeout_ms = 500\nmultiline_max_lines = 100\n",
            log.display()
        ),
        false,
    );
    let s = Server::start(&cfg, &data);
    let trace = "2026-03-14 10:00:00.123 ERROR [exec-3] c.s.UserController : lookup failed for id=1' OR '1'='1
org.springframework.jdbc.BadSqlGrammarException: bad SQL grammar [SELECT * FROM users WHERE id = 1' OR '1'='1]
\tat com.shop.UserController.find(UserController.java:42)
Caused by: java.sql.SQLSyntaxErrorException: You have an error in your SQL syntax
\t... 52 more
2026-03-14 10:00:01.000 INFO [main] c.s.App : healthy
";
    append(&log, &trace.lines().map(str::to_owned).collect::<Vec<_>>());
    let lines_in = |data: &Path| {
        count(
            data,
            "SELECT coalesce(sum(len(string_split(raw, chr(10)))), 0)::BIGINT AS n FROM events",
        )
    };
    // the last record is emitted by the timeout, not held
    let took = wait_for("both records", Duration::from_secs(20), || {
        lines_in(&data) == 6
    });
    println!("multiline: last record emitted {took:?} after the write");
    assert_eq!(count(&data, "SELECT count(*) AS n FROM events"), 2);
    let first = &sql(&data, "SELECT raw FROM events ORDER BY log_offset LIMIT 1")[0];
    assert!(first["raw"]
        .as_str()
        .unwrap()
        .contains("\n\tat com.shop.UserController"));

    // a record torn by a rotation: its two halves are stored, no line lost
    append(
        &log,
        &[
            "2026-03-14 10:00:02.000 ERROR [exec-4] c.s.Search : failed".to_owned(),
            "java.lang.IllegalStateException: boom".to_owned(),
        ],
    );
    std::thread::sleep(Duration::from_millis(100));
    std::fs::rename(&log, d.join("app.log.1")).unwrap();
    std::fs::write(
        &log,
        "\tat com.shop.Search.run(Search.java:7)\n\tat java.lang.Thread.run(Thread.java:840)\n2026-03-14 10:00:03.000 INFO [main] c.s.App : after rotation\n",
    )
    .unwrap();
    wait_for(
        "the rotated record's lines",
        Duration::from_secs(20),
        || lines_in(&data) == 11,
    );

    // a record that never ends: cut every 100 lines
    let mut flood = vec!["2026-03-14 10:00:04.000 ERROR [exec-5] c.s.Loop : runaway".to_owned()];
    flood.extend((0..249).map(|i| format!("\tat com.shop.Loop.step(Loop.java:{i})")));
    append(&log, &flood);
    wait_for("the runaway record", Duration::from_secs(20), || {
        lines_in(&data) == 261
    });
    let sizes = sql(
        &data,
        "SELECT len(string_split(raw, chr(10)))::BIGINT AS n FROM events WHERE raw LIKE '%Loop%' ORDER BY log_offset",
    );
    let sizes: Vec<u64> = sizes.iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let (status, _) = s.terminate();
    assert!(status.success());
    // a restart stores nothing twice
    let s = Server::start(&cfg, &data);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lines_in(&data), 261);
    let _ = s.terminate();
    let _ = std::fs::remove_dir_all(&d);
}

/// A server killed while a multi-line record is being joined stores it whole, once, after
/// its restart: the checkpoint stays at the record's first line.
#[test]
fn serve_killed_while_joining_a_record_stores_it_whole_after_restart() {
    let d = dir("multiline-kill");
    let data = d.join("data");
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let config = |timeout_ms: u64| {
        write_config(
            &d,
            &format!(
                "[[file]]\npath = \"{}\"\nmultiline = \"java\"\nmultiline_timeout_ms = {timeout_ms}\n",
                log.display()
            ),
            false,
        )
    };
    let s = Server::start(&config(60_000), &data);
    append(
        &log,
        &[
            "2026-03-14 10:00:00.000 INFO [main] c.s.App : started".to_owned(),
            "2026-03-14 10:00:05.000 ERROR [exec-1] c.s.Search : failed".to_owned(),
            "java.lang.IllegalStateException: boom".to_owned(),
        ],
    );
    // the first record is stored (the second one started it); the second is pending
    wait_for("the first record", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") == 1
    });
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9();
    append(
        &log,
        &[
            "\tat com.shop.Search.run(Search.java:7)".to_owned(),
            "2026-03-14 10:00:06.000 INFO [main] c.s.App : next".to_owned(),
        ],
    );
    let s = Server::start(&config(500), &data);
    wait_for("all records", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") == 3
    });
    let raws: Vec<String> = sql(&data, "SELECT raw FROM events ORDER BY log_offset")
        .iter()
        .map(|r| r["raw"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(raws[1].lines().count(), 3, "{raws:?}");
    assert!(raws[1].ends_with("\tat com.shop.Search.run(Search.java:7)"));
    let _ = s.terminate();
    let _ = std::fs::remove_dir_all(&d);
}

/// A metric from `/metrics`, summed over its labels.
fn metric(http: &str, name: &str) -> u64 {
    http_get(http, "/metrics", None)
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn udp_config(d: &Path, listen: &str, spool_mb: u64) -> PathBuf {
    let p = d.join("tansa.toml");
    std::fs::write(
        &p,
        format!(
            "version = 1\n[server]\ncollector = \"test-collector\"\ntimezone = \"UTC\"\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\nqueue = 1\nudp_spool_mb = {spool_mb}\n[[syslog]]\nlisten = \"{listen}\"\nprotocol = \"udp\"\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn udp_datagrams_behind_a_full_queue_wait_in_a_disk_spool_and_beyond_it_are_counted_and_alerted() {
    const N: u64 = 60_000;
    for spool_mb in [64, 0] {
        let d = dir(&format!("udp-spool-{spool_mb}"));
        let data = d.join("data");
        let s = Server::start(&udp_config(&d, "127.0.0.1:0", spool_mb), &data);
        let (udp, http) = (s.addr("syslog+udp://"), s.addr("http://"));
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..N {
            let m = format!("<13>Nov 23 10:00:00 web01 app[1]: udp seq={i:08}");
            sock.send_to(m.as_bytes(), &udp).unwrap();
            // paced a little, so that the kernel's buffer is not the bottleneck
            if i % 500 == 499 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // every datagram stored, dropped by Tansa, or dropped by the kernel (counted once a
        // second): none unaccounted for
        let account = || {
            (
                metric(&http, "tansa_events_stored_total"),
                metric(&http, "tansa_lines_dropped_total"),
                metric(&http, "tansa_syslog_kernel_drops_total"),
            )
        };
        wait_for(
            "every datagram accounted for",
            Duration::from_secs(60),
            || {
                let (a, b, c) = account();
                a + b + c >= N
            },
        );
        std::thread::sleep(Duration::from_millis(1500));
        let (stored, dropped, kernel) = account();
        let spooled = metric(&http, "tansa_syslog_spooled_total");
        assert_eq!(stored + dropped + kernel, N, "{:?}", account());
        let r = &sql(
            &data,
            "SELECT count(*) AS n, count(DISTINCT raw) AS d FROM events",
        )[0];
        assert_eq!(r["n"].as_u64(), Some(stored), "{r}");
        assert_eq!(r["d"].as_u64(), Some(stored), "{r}");
        if spool_mb > 0 {
            // the queue (one batch) was full again and again: nothing lost to it
            assert!(spooled > 0, "the spool was used");
            assert_eq!(dropped, 0);
        } else {
            assert!(dropped > 0, "no spool: the full queue drops");
            let a = &sql(
                &data,
                "SELECT count(*) AS n, max(count) AS c FROM alerts WHERE rule_id = 'tansa.collect.dropped'",
            )[0];
            assert_eq!(a["n"].as_u64(), Some(1), "{a}");
            assert_eq!(a["c"].as_u64(), Some(dropped), "{a}");
        }
        let (status, _) = s.terminate();
        assert!(status.success());
        println!(
            "udp spool {spool_mb} MiB, {N} datagrams: stored {stored}, spooled {spooled}, dropped {dropped}, kernel drops {kernel}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn a_udp_spool_left_by_an_earlier_run_is_fed_at_start_and_nothing_is_stored_twice() {
    let d = dir("udp-spool-left");
    let data = d.join("data");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spool = data.join(format!("spool/udp-127.0.0.1-{port}"));
    // what a run stopped behind a full queue leaves: records of one sender, never fed
    {
        let mut w = tansa_server::spool::SpoolWriter::open(&spool).unwrap();
        let mut off = 0;
        let lines: Vec<(bytes::Bytes, u64)> = (0..3000)
            .map(|i| {
                let m = format!("<13>Nov 23 10:00:00 web01 app[1]: left seq={i:08}");
                let at = off;
                off += m.len() as u64 + 1;
                (bytes::Bytes::from(m), at)
            })
            .collect();
        w.append(
            0x5eed,
            &format!("syslog+udp://127.0.0.1:{port}"),
            "192.0.2.7",
            &lines,
            tansa_event::now_nanos(),
        )
        .unwrap();
    }
    let cfg = udp_config(&d, &format!("127.0.0.1:{port}"), 64);
    for run in 0..2 {
        let s = Server::start(&cfg, &data);
        wait_for("the spooled datagrams", Duration::from_secs(30), || {
            count(&data, "SELECT count(*) AS n FROM events") >= 3000
        });
        std::thread::sleep(Duration::from_millis(500));
        let (status, _) = s.terminate();
        assert!(status.success());
        assert_eq!(assert_each_once(&data, 3000), "stored 3000, distinct 3000");
        assert_eq!(
            count(
                &data,
                "SELECT count(*) AS n FROM events WHERE host = 'web01' AND log_path LIKE '%/192.0.2.7'"
            ),
            3000
        );
        // the crash case: the cursor never saved, the spool fed again; the stream's
        // checkpoint drops what was stored
        if run == 0 {
            std::fs::remove_file(spool.join("sent.json")).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn idle_streams_are_let_go_and_go_on_from_their_offset_when_lines_come_again() {
    let d = dir("idle-streams");
    let data = d.join("data");
    let log = d.join("app.log");
    let cfg = write_config(
        &d,
        &format!(
            "stream_idle_s = 1\n[[file]]\npath = {:?}\n",
            log.to_str().unwrap()
        ),
        false,
    );
    let lines = |r: std::ops::Range<u64>| -> Vec<String> {
        r.map(|i| format!("Nov 23 10:00:00 web01 app[1]: seq={i:08}"))
            .collect()
    };
    append(&log, &lines(0..100));
    let s = Server::start(&cfg, &data);
    let http = s.addr("http://");
    wait_for("the first lines", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") >= 100
    });
    // rotated: the old instance is read to its end, then nothing comes for either
    std::fs::rename(&log, d.join("app.log.1")).unwrap();
    append(&log, &lines(100..150));
    wait_for("the new instance", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") >= 150
    });
    wait_for("both streams let go", Duration::from_secs(20), || {
        metric(&http, "tansa_streams") == 0
    });
    // lines again: the instance goes on from its offset, nothing read twice
    append(&log, &lines(150..200));
    wait_for("the lines after", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") >= 200
    });
    assert_eq!(metric(&http, "tansa_streams"), 1);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = s.terminate();
    assert!(status.success());
    assert_eq!(assert_each_once(&data, 200), "stored 200, distinct 200");
    // and after a restart (the checkpoint of the stream let go was stored)
    append(&log, &lines(200..210));
    let s = Server::start(&cfg, &data);
    wait_for(
        "the lines after the restart",
        Duration::from_secs(20),
        || count(&data, "SELECT count(*) AS n FROM events") >= 210,
    );
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = s.terminate();
    assert!(status.success());
    assert_eq!(assert_each_once(&data, 210), "stored 210, distinct 210");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_host_whose_clock_is_off_is_alerted_after_a_minute_of_live_lines() {
    let d = dir("clock-live");
    let data = d.join("data");
    let log = d.join("app.log");
    let cfg = write_config(
        &d,
        &format!(
            "clock_skew_s = 120\n[[file]]\npath = {:?}\n",
            log.to_str().unwrap()
        ),
        false,
    );
    std::fs::write(&log, "").unwrap();
    let s = Server::start(&cfg, &data);
    let started = Instant::now();
    // two hosts write as lines happen: one with a clock ten minutes behind, one right
    let at = |behind: i64| {
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(behind))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%b %e %H:%M:%S")
            .to_string()
    };
    let mut i = 0;
    let alerted = || {
        count(
            &data,
            "SELECT count(*) AS n FROM alerts WHERE rule_id = 'tansa.clock.behind' AND host = 'slow01'",
        ) > 0
    };
    while started.elapsed() < Duration::from_secs(90) {
        append(
            &log,
            &[
                format!("{} slow01 app[1]: tick {i}", at(600)),
                format!("{} good01 app[1]: tick {i}", at(0)),
            ],
        );
        i += 1;
        std::thread::sleep(Duration::from_millis(250));
        if started.elapsed() > Duration::from_secs(60) && i % 8 == 0 && alerted() {
            break;
        }
    }
    let after = started.elapsed();
    assert!(alerted(), "no skew alert after {after:?}");
    // a minute of arrivals is needed before a clock is judged (history read at once is not
    // skew); the right clock is not alerted
    assert!(after >= Duration::from_secs(60));
    let r = &sql(
        &data,
        "SELECT host, count AS seconds FROM alerts WHERE rule_id LIKE 'tansa.clock.%'",
    );
    assert_eq!(r.len(), 1, "{r:?}");
    let secs = r[0]["seconds"].as_u64().unwrap();
    assert!((598..=602).contains(&secs), "offset {secs} s");
    let (status, _) = s.terminate();
    assert!(status.success());
    println!("clock 600 s behind: alerted after {after:?} of live lines (offset {secs} s)");
    let _ = std::fs::remove_dir_all(&d);
}

/// Intel alerts in the store, by indicator: (count, threat JSON).
fn intel_alerts(data: &Path) -> Vec<(String, u64, serde_json::Value)> {
    sql(
        data,
        "SELECT entity, count, threat FROM alerts WHERE rule_id = 'intel:blocklist' ORDER BY entity",
    )
    .into_iter()
    .map(|r| {
        let threat = match &r["threat"] {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        };
        (
            r["entity"].as_str().unwrap().to_owned(),
            r["count"].as_u64().unwrap(),
            threat,
        )
    })
    .collect()
}

/// Feeds named in the configuration are loaded again when their files change: an address
/// added to a feed while the server runs is alerted from its next line on, with what the feed
/// says of it; a feed broken while the server runs is reported and the indicators loaded
/// before stay in use.
#[test]
fn feeds_changed_while_serving_are_reloaded_and_a_broken_one_keeps_the_last_good() {
    let d = dir("intel-reload");
    let data = d.join("data");
    let log = d.join("auth.log");
    let feed = d.join("blocklist.csv");
    append(&log, &failures("198.51.100.7", 1, 0));
    std::fs::write(&feed, "ip,confidence,tags\n198.51.100.7,80,botnet\n").unwrap();
    let cfg = write_config(
        &d,
        &format!(
            "[[file]]\npath = {:?}\nhost = \"web01\"\n[detection]\nintel = [{:?}]\n",
            log.to_str().unwrap(),
            feed.to_str().unwrap()
        ),
        false,
    );
    let s = Server::start(&cfg, &data);
    let api = s.addr("API on http://");
    assert_eq!(metric(&api, "tansa_intel_indicators"), 1);
    wait_for("the first intel alert", Duration::from_secs(20), || {
        intel_alerts(&data).len() == 1
    });
    let a = intel_alerts(&data);
    assert_eq!(a[0].0, "198.51.100.7");
    assert_eq!(a[0].2["indicator"]["confidence"], 80);
    assert_eq!(a[0].2["tags"], serde_json::json!(["botnet"]));
    assert_eq!(a[0].2["feed"]["name"], "blocklist");

    // an address the feed does not list yet: no alert
    append(&log, &failures("203.0.113.50", 1, 1));
    wait_for("the line stored", Duration::from_secs(20), || {
        count(
            &data,
            "SELECT count(*) AS n FROM events WHERE source_ip = '203.0.113.50'",
        ) == 1
    });
    assert_eq!(intel_alerts(&data).len(), 1);

    // the feed gains it: the next line from it is alerted
    std::fs::write(
        &feed,
        "ip,confidence,tags\n198.51.100.7,80,botnet\n203.0.113.50,95,scanner\n",
    )
    .unwrap();
    let took = wait_for("the reload", Duration::from_secs(20), || {
        metric(&api, "tansa_intel_reloads_total") == 1
    });
    println!("feed change → reloaded in {took:?}");
    assert_eq!(metric(&api, "tansa_intel_indicators"), 2);
    append(&log, &failures("203.0.113.50", 1, 2));
    wait_for(
        "the alert from the reloaded feed",
        Duration::from_secs(20),
        || intel_alerts(&data).len() == 2,
    );
    let a = intel_alerts(&data);
    assert_eq!(a[1].0, "203.0.113.50");
    assert_eq!(a[1].1, 1, "only the line after the reload");
    assert_eq!(a[1].2["indicator"]["confidence"], 95);

    // a broken feed is reported; the indicators loaded before stay
    std::fs::write(&feed, "nothing,here\nat,all\n").unwrap();
    wait_for("the failed reload", Duration::from_secs(20), || {
        metric(&api, "tansa_intel_reload_errors_total") == 1
    });
    append(&log, &failures("203.0.113.50", 1, 3));
    wait_for("the alert grown", Duration::from_secs(20), || {
        intel_alerts(&data)[1].1 == 2
    });
    let (status, err) = s.terminate();
    assert!(status.success());
    assert!(
        err.iter()
            .any(|l| l.contains("intel feeds not reloaded") && l.contains("blocklist.csv")),
        "{err:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `[detection] crs` in the server's configuration: ModSecurity rules run over the access log
/// lines as they arrive (the same engine as `tansa analyze --crs`), at the paranoia level set.
#[test]
fn serve_runs_modsecurity_rules_from_its_configuration() {
    let d = dir("crs");
    let data = d.join("data");
    let rules = d.join("crs");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("rules.conf"),
        "SecRule ARGS \"@detectSQLi\" \"id:990200,phase:2,block,t:none,t:urlDecodeUni,\
         msg:'SQL injection',tag:'paranoia-level/1',severity:'CRITICAL'\"\n\
         SecRule REQUEST_FILENAME \"@endsWith .bak\" \"id:990210,phase:1,block,t:none,\
         msg:'Backup file',tag:'paranoia-level/2',severity:'ERROR'\"\n",
    )
    .unwrap();
    let log = d.join("access.log");
    append(&log, &[]);
    let cfg = write_config(
        &d,
        &format!(
            "[[file]]\npath = {:?}\nhost = \"web01\"\n[detection]\ncrs = {:?}\ncrs_paranoia = 1\n",
            log.to_str().unwrap(),
            rules.to_str().unwrap()
        ),
        false,
    );
    let s = Server::start(&cfg, &data);
    let now = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%d/%b/%Y:%H:%M:%S +0000")
        .to_string();
    let req = |ip: &str, target: &str| {
        format!("{ip} - - [{now}] \"GET {target} HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"")
    };
    append(
        &log,
        &[
            req("203.0.113.7", "/item?id=1%27%20OR%20%271%27%3D%271"),
            req("203.0.113.8", "/site.tar.bak"),
            req("198.51.100.1", "/item?id=42&q=hello+world"),
        ],
    );
    wait_for("the SQL injection alert", Duration::from_secs(20), || {
        count(
            &data,
            "SELECT count(*) AS n FROM alerts WHERE rule_id = 'crs:990200' AND source_ip = '203.0.113.7'",
        ) == 1
    });
    wait_for("all three lines stored", Duration::from_secs(20), || {
        count(&data, "SELECT count(*) AS n FROM events") == 3
    });
    // the paranoia-level-2 rule stays quiet at level 1; the benign request raises nothing
    assert_eq!(
        count(
            &data,
            "SELECT count(*) AS n FROM alerts WHERE rule_id LIKE 'crs:%' AND rule_id <> 'crs:990200'"
        ),
        0
    );
    assert!(s
        .stdout
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("203.0.113.7")));
    let (status, _) = s.terminate();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&d);
}
