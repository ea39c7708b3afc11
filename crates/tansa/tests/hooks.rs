//! Response hooks against real receivers on loopback: an HTTP server that answers as Slack,
//! DingTalk, Feishu, WeCom and a plain webhook do, an SMTP server, and real scripts. `tansa
//! serve` reads a brute force and a new account from a log; the hooks fire once per alert,
//! programs get attacker text verbatim as arguments, the approval queue holds high-impact
//! actions until `tansa approvals approve|reject` (or its timeout policy), and every run and
//! approval is in the record of actions.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{collect, json_lines, succeed, wait_for};

#[derive(Debug, Clone)]
struct Request {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 server on loopback that records every request and answers as the chat
/// services do (`/broken`: 500 every time).
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let g = g.clone();
                std::thread::spawn(move || serve_http(s, &g));
            }
        });
        Receiver { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn to(&self, path: &str) -> Vec<Request> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve_http(s: TcpStream, got: &Mutex<Vec<Request>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split(' ').nth(1).unwrap_or("").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    got.lock().unwrap().push(Request {
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, answer) = match path {
        "/dingtalk" | "/wecom" => ("200 OK", r#"{"errcode":0,"errmsg":"ok"}"#),
        "/dingtalk-refuses" => ("200 OK", r#"{"errcode":310000,"errmsg":"sign not match"}"#),
        "/feishu" => ("200 OK", r#"{"code":0,"msg":"success"}"#),
        "/broken" => ("500 Internal Server Error", "down"),
        _ => ("200 OK", "ok"),
    };
    let mut w = s;
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// An SMTP server on loopback that accepts every mail and keeps its DATA.
fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let _ = w.write_all(b"220 localhost ESMTP test\r\n");
            let mut data: Option<String> = None;
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(d) = data.as_mut() {
                    if line == ".\r\n" {
                        m.lock().unwrap().push(data.take().unwrap());
                        let _ = w.write_all(b"250 2.0.0 queued\r\n");
                    } else {
                        d.push_str(&line);
                    }
                } else {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n");
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(answer);
                }
                line.clear();
            }
        }
    });
    (port, mails)
}

struct Server {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data: &Path, cfg: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tansa"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--config"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        let s = Server { child, stderr };
        wait_for("the server to start", Duration::from_secs(60), || {
            let l = s.log();
            assert!(!l.contains("rror:"), "server failed: {l}");
            l.contains("following")
        });
        s
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn stop(mut self) {
        succeed(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let t = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stamp() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%b %e %H:%M:%S")
        .to_string()
}

fn failures(ip: &str, n: usize, from: usize) -> Vec<String> {
    let t = stamp();
    (from..from + n)
        .map(|i| {
            format!(
                "{t} srv sshd[{}]: Failed password for root from {ip} port {} ssh2",
                4000 + i,
                40000 + i
            )
        })
        .collect()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// A script that appends its arguments and some of its environment to `out`, one line a run.
fn script(d: &Path, name: &str, out: &Path) -> PathBuf {
    let p = d.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf '%s|' \"$@\" \"$TANSA_RULE_ID\" \"$TANSA_APPROVAL\" \"$TANSA_APPROVED_BY\" >> '{}'\necho >> '{}'\n",
            out.display(),
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn tansa(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tansa"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn approvals(data: &Path, all: bool) -> Vec<serde_json::Value> {
    let mut a = vec!["--format", "json", "approvals", "list"];
    if all {
        a.push("--all");
    }
    let out = tansa(data, &a);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

const A: &str = "203.0.113.9";
const B: &str = "198.51.100.77";
const EVIL: &str = "x$(touch PWNED)`id`";

#[test]
fn hooks_notify_run_scripts_and_wait_for_approval() {
    let d = common::fresh_dir("hooks", "all");
    let data = d.join("data");
    let http = Receiver::start();
    let (smtp, mails) = smtp_server();
    let ran = d.join("ran.txt");
    let locked = d.join("locked.txt");
    let on_time = d.join("on-time.txt");
    let never = d.join("never.txt");
    let notify_script = script(&d, "notify.sh", &ran);
    let lock_script = script(&d, "lock-user.sh", &locked);
    let on_time_script = script(&d, "on-time.sh", &on_time);
    let never_script = script(&d, "never.sh", &never);
    let cfg = format!(
        r#"version = 1
[server]
collector = "srv"
timezone = "UTC"
http = "127.0.0.1:0"
commit_ms = 200
poll_ms = 100
[[file]]
path = "auth.log"
[response]
backend = "none"

[[response.hook]]
name = "chat"
notify = "slack"
url = "{slack}"
rules = ["tansa.ssh.*", "tansa.host.*"]

[[response.hook]]
name = "dingtalk"
notify = "dingtalk"
url = "{dingtalk}?access_token=TOKEN"
secret = "SECexample"
severity = "high"

[[response.hook]]
name = "dingtalk-refuses"
notify = "dingtalk"
url = "{dingtalk_refuses}"
rules = ["tansa.ssh.brute_force"]

[[response.hook]]
name = "feishu"
notify = "feishu"
url = "{feishu}"
secret = "feishu-secret"
severity = "high"

[[response.hook]]
name = "wecom"
notify = "wecom"
url = "{wecom}"
severity = "high"

[[response.hook]]
name = "siem"
notify = "webhook"
url = "{hook}"
headers = {{ Authorization = "Bearer s3cret" }}
severity = "high"

[[response.hook]]
name = "down"
notify = "webhook"
url = "{broken}"
rules = ["tansa.ssh.brute_force"]
timeout = "2s"

[[response.hook]]
name = "mail"
notify = "email"
smtp = "smtp://127.0.0.1:{smtp}"
from = "tansa@example.com"
to = ["ops@example.com", "oncall@example.com"]
severity = "high"

[[response.hook]]
name = "record-ban"
run = ["{notify_script}", "{{source_ip}}", "{{decision}}"]
rules = ["tansa.ssh.brute_force"]

[[response.hook]]
name = "lock-account"
run = ["{lock_script}", "--", "{{user}}", "{{host}}"]
rules = ["tansa.host.user_created"]
approve = true
ask = "chat"

[[response.hook]]
name = "isolate"
run = ["{on_time_script}", "{{source_ip}}"]
rules = ["tansa.ssh.brute_force"]
approve = true
approve_timeout = "3s"
on_timeout = "run"

[[response.hook]]
name = "kill-sessions"
run = ["{never_script}", "{{source_ip}}"]
rules = ["tansa.ssh.brute_force"]
approve = true
approve_timeout = "3s"
"#,
        slack = http.url("/slack"),
        dingtalk = http.url("/dingtalk"),
        dingtalk_refuses = http.url("/dingtalk-refuses"),
        feishu = http.url("/feishu"),
        wecom = http.url("/wecom"),
        hook = http.url("/hook"),
        broken = http.url("/broken"),
        notify_script = notify_script.display(),
        lock_script = lock_script.display(),
        on_time_script = on_time_script.display(),
        never_script = never_script.display(),
    );
    let cfgp = d.join("tansa.toml");
    std::fs::write(&cfgp, cfg).unwrap();
    let log = d.join("auth.log");
    std::fs::write(&log, "").unwrap();
    let out = succeed(
        Command::new(env!("CARGO_BIN_EXE_tansa"))
            .args(["hooks", "list", "--config"])
            .arg(&cfgp),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 12);

    let server = Server::start(&data, &cfgp);
    let started = Instant::now();
    append(&log, &failures(A, 12, 0));
    let t = stamp();
    append(
        &log,
        &[
            format!("{t} srv useradd[900]: new user: name={EVIL}, UID=0, GID=0, home=/root, shell=/bin/bash"),
        ],
    );

    // notifications, at once
    wait_for("the notifications", Duration::from_secs(20), || {
        ["/slack", "/dingtalk", "/feishu", "/wecom", "/hook"]
            .iter()
            .all(|p| !http.to(p).is_empty())
            && !mails.lock().unwrap().is_empty()
            && lines(&ran).len() == 1
    });
    eprintln!("notified within {:?}", started.elapsed());
    let slack = http.to("/slack");
    let brute = slack
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .find(|t| t.contains("tansa.ssh.brute_force"))
        .unwrap_or_else(|| panic!("{slack:?}"));
    assert!(
        brute.starts_with("[tansa] HIGH tansa.ssh.brute_force"),
        "{brute}"
    );
    assert!(brute.contains(&format!("source {A}")), "{brute}");
    // the alert's decision (backend none: stored, served to bouncers) is in the message
    assert!(
        brute.contains(&format!("decision: ban {A} for 1h0m0s")),
        "{brute}"
    );

    let ding = &http.to("/dingtalk")[0];
    assert_eq!(ding.json()["msgtype"], "text");
    assert!(ding.json()["text"]["content"].as_str().unwrap().contains(A));
    let q: Vec<(&str, &str)> = ding
        .query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| *n == k).map(|(_, v)| *v).unwrap();
    assert_eq!(get("access_token"), "TOKEN");
    let ms = get("timestamp");
    assert_eq!(
        percent_encoding::percent_decode_str(get("sign"))
            .decode_utf8()
            .unwrap(),
        openssl_hmac("SECexample", &format!("{ms}\nSECexample")),
    );

    let feishu = http.to("/feishu")[0].json();
    assert_eq!(feishu["msg_type"], "text");
    let ts = feishu["timestamp"].as_str().unwrap();
    assert_eq!(
        feishu["sign"].as_str().unwrap(),
        openssl_hmac(&format!("{ts}\nfeishu-secret"), "")
    );
    assert_eq!(http.to("/wecom")[0].json()["msgtype"], "text");
    let siem = &http.to("/hook")[0];
    assert_eq!(siem.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(siem.json()["hook"], "siem");
    assert_eq!(siem.json()["alert"]["rule"]["id"], "tansa.ssh.brute_force");
    assert_eq!(siem.json()["alert"]["source"]["ip"], A);

    let mail = mails.lock().unwrap()[0].clone();
    assert!(
        mail.contains("Subject: [tansa] HIGH tansa.ssh.brute_force"),
        "{mail}"
    );
    assert!(
        mail.contains("To: ops@example.com, oncall@example.com"),
        "{mail}"
    );
    assert!(mail.contains(A), "{mail}");

    assert_eq!(
        lines(&ran),
        vec![format!(
            "{A}|ban {A} for 1h0m0s (#1)|tansa.ssh.brute_force|||"
        )]
    );

    // the account hook waits: asked in the chat, not run
    wait_for("the approval to be asked", Duration::from_secs(10), || {
        http.to("/slack")
            .iter()
            .any(|r| r.body.contains("approval #"))
    });
    let pending = approvals(&data, false);
    let lock = pending
        .iter()
        .find(|a| a["hook"] == "lock-account")
        .unwrap_or_else(|| panic!("{pending:?}"));
    assert_eq!(lock["state"], "pending");
    assert_eq!(lock["user"], EVIL);
    let ask = http
        .to("/slack")
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .find(|t| t.contains("approval #"))
        .unwrap();
    let id = lock["id"].as_u64().unwrap();
    assert!(
        ask.contains(&format!("tansa approvals approve {id}")),
        "{ask}"
    );
    // Slack would read <…>: the user name is escaped in the chat, verbatim for the program
    assert!(ask.contains("user x$(touch PWNED)`id`"), "{ask}");
    assert!(lines(&locked).is_empty());

    // a second brute force; the first grows: hooks fire once per alert
    append(&log, &failures(B, 12, 100));
    append(&log, &failures(A, 5, 200));
    wait_for("the second alert's script", Duration::from_secs(15), || {
        lines(&ran).len() == 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lines(&ran).len(), 2, "{:?}", lines(&ran));
    assert!(lines(&ran)[1].starts_with(&format!("{B}|ban {B} for 1h0m0s")));

    // approved by a person: runs now, with the attacker's text as one argument
    let out = tansa(
        &data,
        &[
            "--format",
            "json",
            "approvals",
            "approve",
            &id.to_string(),
            "--note",
            "confirmed with the owner",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "ok", "{v}");
    assert_eq!(v["approval"]["state"], "approved");
    let got = lines(&locked);
    assert_eq!(got.len(), 1);
    let me = v["approval"]["decided_by"].as_str().unwrap().to_owned();
    assert_eq!(
        got[0],
        format!("--|{EVIL}|srv|tansa.host.user_created|{id}|{me}|")
    );
    assert!(!d.join("PWNED").exists() && !Path::new("PWNED").exists());
    // the first answer stands
    let again = tansa(&data, &["approvals", "reject", &id.to_string()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("approved already"));

    // nobody answers the others: "isolate" runs by its policy, "kill-sessions" is dropped
    wait_for("the timeouts", Duration::from_secs(15), || {
        lines(&on_time).len() == 2
    });
    wait_for("the expiry", Duration::from_secs(5), || {
        approvals(&data, true)
            .iter()
            .filter(|a| a["hook"] == "kill-sessions" && a["state"] == "expired")
            .count()
            == 2
    });
    assert!(lines(&never).is_empty());
    let all = approvals(&data, true);
    assert!(all.iter().all(|a| a["state"] != "pending"), "{all:?}");
    assert!(all
        .iter()
        .filter(|a| a["hook"] == "isolate")
        .all(|a| a["state"] == "approved" && a["decided_by"] == "timeout"));

    // the broken endpoint was tried three times per alert, then recorded as failed
    wait_for("the retries", Duration::from_secs(20), || {
        http.to("/broken").len() == 6
    });
    std::thread::sleep(Duration::from_secs(1));
    let log_text = server.log();
    server.stop();

    // the record
    let out = succeed(
        Command::new(env!("CARGO_BIN_EXE_tansa"))
            .arg("--data")
            .arg(&data)
            .args([
                "--format",
                "json",
                "sql",
                "SELECT kind, target, outcome, count(*) AS n FROM actions WHERE kind IN ('hook', 'approval') GROUP BY ALL ORDER BY ALL",
            ]),
    );
    let rows: Vec<(String, String, String, u64)> = json_lines(&out.stdout)
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["target"].as_str().unwrap().into(),
                r["outcome"].as_str().unwrap().into(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let n = |k: &str, t: &str, o: &str| {
        rows.iter()
            .find(|r| r.0 == k && r.1 == t && r.2 == o)
            .map_or(0, |r| r.3)
    };
    // slack: two brute forces, the new account, the approval asked
    assert_eq!(n("hook", "chat", "ok"), 4, "{rows:?}\n{log_text}");
    assert_eq!(n("hook", "record-ban", "ok"), 2, "{rows:?}");
    assert_eq!(n("hook", "mail", "ok"), 2, "{rows:?}");
    assert_eq!(n("hook", "down", "error"), 2, "{rows:?}");
    assert_eq!(n("hook", "dingtalk-refuses", "error"), 2, "{rows:?}");
    assert_eq!(n("approval", "lock-account", "pending"), 1, "{rows:?}");
    assert_eq!(n("approval", "lock-account", "approved"), 1, "{rows:?}");
    assert_eq!(n("hook", "lock-account", "ok"), 1, "{rows:?}");
    assert_eq!(n("approval", "isolate", "approved"), 2, "{rows:?}");
    assert_eq!(n("hook", "isolate", "ok"), 2, "{rows:?}");
    assert_eq!(n("approval", "kill-sessions", "expired"), 2, "{rows:?}");
    assert_eq!(n("hook", "kill-sessions", "ok"), 0, "{rows:?}");
    let out = succeed(
        Command::new(env!("CARGO_BIN_EXE_tansa"))
            .arg("--data")
            .arg(&data)
            .args([
                "--format",
                "json",
                "sql",
                "SELECT detail FROM actions WHERE target = 'dingtalk-refuses' LIMIT 1",
            ]),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("error 310000: sign not match"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The approval queue works without the server too: the command line runs the hook.
#[test]
fn approvals_are_kept_across_restarts_and_settled_without_the_server() {
    let d = common::fresh_dir("hooks", "offline");
    let data = d.join("data");
    let out_file = d.join("ran.txt");
    let s = script(&d, "act.sh", &out_file);
    let cfgp = d.join("tansa.toml");
    std::fs::write(
        &cfgp,
        format!(
            "version = 1\n[server]\ncollector = \"srv\"\ntimezone = \"UTC\"\nhttp = \"127.0.0.1:0\"\ncommit_ms = 200\npoll_ms = 100\n[[file]]\npath = \"auth.log\"\n[response]\nbackend = \"none\"\n[[response.hook]]\nname = \"act\"\nrun = [\"{}\", \"{{source_ip}}\"]\napprove = true\napprove_timeout = \"never\"\n",
            s.display()
        ),
    )
    .unwrap();
    let log = d.join("auth.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&data, &cfgp);
    append(&log, &failures(A, 12, 0));
    wait_for("the approval", Duration::from_secs(20), || {
        approvals(&data, false).len() == 1
    });
    server.stop();
    // every line the server read is in the evidence log, sealed at the stop
    let v: serde_json::Value = serde_json::from_slice(
        &succeed(
            Command::new(env!("CARGO_BIN_EXE_tansa"))
                .arg("--data")
                .arg(&data)
                .args(["--format", "json", "verify"]),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"], 12, "{v}");
    assert_eq!(v["open_segment"], serde_json::Value::Null, "{v}");
    // sealed segments are compressed: a plain file beside it (what verify reads first)
    // carries the change
    let packed = std::fs::read(data.join("evidence/seg-00000001.log.zst")).unwrap();
    let mut b = zstd::stream::decode_all(&packed[..]).unwrap();
    let seg = data.join("evidence/seg-00000001.log");
    let at = b.len() - 100;
    b[at] ^= 4;
    std::fs::write(&seg, &b).unwrap();
    let out = tansa(&data, &["verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TAMPERED segment 1 record 11"), "{text}");
    std::fs::remove_file(&seg).unwrap();
    // the server is gone: the store is read here
    let pending = approvals(&data, false);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["expires"], serde_json::Value::Null);
    let id = pending[0]["id"].as_u64().unwrap().to_string();
    let out = tansa(
        &data,
        &[
            "--format",
            "json",
            "approvals",
            "approve",
            &id,
            "--config",
            cfgp.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&out_file),
        vec![format!(
            "{A}|tansa.ssh.brute_force|{id}|{}|",
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["approval"]
                ["decided_by"]
                .as_str()
                .unwrap()
        )]
    );
    // an unknown id
    let out = tansa(
        &data,
        &[
            "approvals",
            "approve",
            "99",
            "--config",
            cfgp.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("approval #99"));
    let _ = std::fs::remove_dir_all(&d);
}

fn openssl_hmac(key: &str, msg: &str) -> String {
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    c.stdin.take().unwrap().write_all(msg.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    let mut b = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    b.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    String::from_utf8(b.wait_with_output().unwrap().stdout).unwrap()
}
