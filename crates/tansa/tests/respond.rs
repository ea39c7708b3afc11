//! Active response with real firewalls: network namespaces made by the test, an "attacker"
//! and an "office" namespace joined to a "server" namespace by veth pairs; `tansa serve`
//! runs in the server namespace, reads a brute force from a log and bans with nftables (or
//! serves the decision to the real `crowdsec-firewall-bouncer`). Needs root (namespaces,
//! nftables); scripts/test installs nftables and fetches the bouncer.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{collect, json_lines, wait_for};

const SERVER_A: &str = "198.51.100.1";
const ATTACKER: &str = "198.51.100.2";
const SERVER_O: &str = "203.0.113.1";
const OFFICE: &str = "203.0.113.2";
const PORT: u16 = 18514;

fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Three namespaces and two veth pairs; removed when dropped.
struct Lab {
    server: String,
    attacker: String,
    office: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            server: format!("tsrv{tag}{id}"),
            attacker: format!("tatk{tag}{id}"),
            office: format!("toff{tag}{id}"),
        };
        for ns in [&lab.server, &lab.attacker, &lab.office] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        for (peer, ns, mine, theirs) in [
            ("a", &lab.attacker, SERVER_A, ATTACKER),
            ("o", &lab.office, SERVER_O, OFFICE),
        ] {
            let (s, p) = (format!("s{peer}{tag}{id}"), format!("p{peer}{tag}{id}"));
            run(&[
                "ip",
                "link",
                "add",
                &s,
                "netns",
                &lab.server,
                "type",
                "veth",
                "peer",
                "name",
                &p,
                "netns",
                ns,
            ]);
            run(&[
                "ip",
                "-n",
                &lab.server,
                "addr",
                "add",
                &format!("{mine}/24"),
                "dev",
                &s,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{theirs}/24"),
                "dev",
                &p,
            ]);
            run(&["ip", "-n", &lab.server, "link", "set", &s, "up"]);
            run(&["ip", "-n", ns, "link", "set", &p, "up"]);
        }
        lab
    }

    /// Whether `from` gets a TCP connection to the server's API port.
    fn connects(&self, from: &str, to: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", from, "timeout", "1", "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{to}/{PORT}"))
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// `tansa` in the server namespace.
    fn tansa(&self, data: &Path, args: &[&str]) -> std::process::Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.server, env!("CARGO_BIN_EXE_tansa")])
            .arg("--data")
            .arg(data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tansa {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn nft(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "netns", "exec", &self.server, "nft"];
        a.extend(args);
        String::from_utf8_lossy(&run(&a).stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.server, &self.attacker, &self.office] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn dir(name: &str) -> PathBuf {
    common::fresh_dir("respond", name)
}

/// A process in a namespace, killed when dropped.
struct Proc {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn start(ns: &str, program: &str, args: &[&str]) -> Proc {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        Proc { child, stderr }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn failures(ip: &str, n: usize, from: usize) -> Vec<String> {
    let stamp = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%b %e %H:%M:%S")
        .to_string();
    (from..from + n)
        .map(|i| {
            format!(
                "{stamp} srv sshd[{}]: Failed password for root from {ip} port {} ssh2",
                4000 + i,
                40000 + i
            )
        })
        .collect()
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

fn config(d: &Path, response: &str) -> PathBuf {
    let c = format!(
        "version = 1\n[server]\ncollector = \"srv\"\ntimezone = \"UTC\"\nhttp = \"0.0.0.0:{PORT}\"\ncommit_ms = 200\npoll_ms = 100\n[[file]]\npath = \"auth.log\"\n[response]\n{response}"
    );
    std::fs::write(d.join("auth.log"), "").unwrap();
    let p = d.join("tansa.toml");
    std::fs::write(&p, c).unwrap();
    p
}

fn start_server(lab: &Lab, cfg: &Path, data: &Path) -> Proc {
    let s = Proc::start(
        &lab.server,
        env!("CARGO_BIN_EXE_tansa"),
        &[
            "--data",
            data.to_str().unwrap(),
            "serve",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    wait_for("the server to start", Duration::from_secs(60), || {
        let l = s.log();
        assert!(!l.contains("rror"), "server failed: {l}");
        l.contains("following")
    });
    s
}

fn decisions(lab: &Lab, data: &Path, all: bool) -> Vec<serde_json::Value> {
    let mut a = vec!["--format", "json", "ban", "list"];
    if all {
        a.push("--all");
    }
    json_lines(&lab.tansa(data, &a).stdout)
}

#[test]
fn nftables_bans_the_attacker_until_expiry_escalates_and_never_touches_the_allow_list() {
    let lab = Lab::new("n");
    let d = dir("nft");
    let data = d.join("data");
    let cfg = config(
        &d,
        &format!("backend = \"nftables\"\nban_time = \"5s\"\nmax_time = \"1h\"\nallow = [\"{OFFICE}\"]\n"),
    );
    let server = start_server(&lab, &cfg, &data);
    assert!(lab.connects(&lab.attacker, SERVER_A), "before any ban");
    assert!(lab.connects(&lab.office, SERVER_O));

    // a brute force: banned within moments
    let log = d.join("auth.log");
    let t = Instant::now();
    append(&log, &failures(ATTACKER, 12, 0));
    let banned = wait_for("the attacker's ban", Duration::from_secs(15), || {
        !lab.connects(&lab.attacker, SERVER_A)
    });
    assert!(
        lab.nft(&["list", "set", "inet", "tansa", "addr4"])
            .contains(ATTACKER),
        "{}",
        lab.nft(&["list", "ruleset"])
    );
    assert!(
        lab.connects(&lab.office, SERVER_O),
        "the office is not banned"
    );
    // the ban ends by itself (5 s)
    let lifted = wait_for("the ban to end", Duration::from_secs(20), || {
        lab.connects(&lab.attacker, SERVER_A)
    });
    let first = t.elapsed();

    // again: the second ban lasts twice as long
    append(&log, &failures(ATTACKER, 12, 100));
    wait_for("the second ban", Duration::from_secs(15), || {
        !lab.connects(&lab.attacker, SERVER_A)
    });
    let active = decisions(&lab, &data, false);
    let second = active
        .iter()
        .find(|v| v["value"] == ATTACKER)
        .unwrap_or_else(|| panic!("{active:?}"));
    assert_eq!(second["offence"], 2, "{second}");
    assert_eq!(second["duration"], "10s", "{second}");
    assert_eq!(second["rule_id"], "tansa.ssh.brute_force");

    // the office brute-forces too: refused, recorded, never enforced
    append(&log, &failures(OFFICE, 12, 200));
    wait_for("the refused decision", Duration::from_secs(15), || {
        decisions(&lab, &data, true)
            .iter()
            .any(|v| v["value"] == OFFICE && v["state"] == "refused")
    });
    assert!(
        lab.connects(&lab.office, SERVER_O),
        "allow-listed office keeps access"
    );
    assert!(!lab
        .nft(&["list", "table", "inet", "tansa"])
        .contains(&format!("{OFFICE} timeout")));
    // the server's own address is never banned either
    let own = json_lines(
        &lab.tansa(&data, &["--format", "json", "ban", "add", SERVER_A])
            .stdout,
    );
    assert_eq!(own[0]["state"], "refused", "{own:?}");

    // a prefix by hand, through the running server: a real interval, then lifted
    lab.tansa(&data, &["ban", "add", "198.51.100.128/25", "--for", "1h"]);
    assert!(lab
        .nft(&["list", "set", "inet", "tansa", "net4"])
        .contains("198.51.100.128/25"));
    lab.tansa(&data, &["ban", "del", "198.51.100.128/25"]);
    assert!(!lab
        .nft(&["list", "set", "inet", "tansa", "net4"])
        .contains("198.51.100.128/25"));
    wait_for("the second ban to end", Duration::from_secs(30), || {
        lab.connects(&lab.attacker, SERVER_A)
    });

    // everything on record: decisions, refusals, expiries, firewall changes
    drop(server);
    let acts = json_lines(
        &lab.tansa(
            &data,
            &[
                "--format",
                "json",
                "sql",
                "SELECT kind, outcome, count(*) AS n FROM actions GROUP BY ALL ORDER BY ALL",
            ],
        )
        .stdout,
    );
    let has = |k: &str, o: &str| acts.iter().any(|a| a["kind"] == k && a["outcome"] == o);
    for (k, o) in [
        ("decision", "ok"),
        ("refused", "refused"),
        ("expired", "ok"),
        ("revoked", "ok"),
        ("firewall", "ok"),
    ] {
        assert!(has(k, o), "{k}:{o} not recorded: {acts:?}");
    }
    // uninstall leaves no table
    lab.tansa(&data, &["ban", "uninstall"]);
    assert!(!lab.nft(&["list", "tables"]).contains("tansa"));
    println!(
        "nftables bans: attacker cut off {:.1} s after the brute force was written, let back {:.1} s later (ban 5 s), second ban 10 s, office never cut off; first cycle {:.1} s",
        banned.as_secs_f64(),
        lifted.as_secs_f64(),
        first.as_secs_f64()
    );
}

/// Where `crowdsec-firewall-bouncer` is: `TANSA_CROWDSEC_BOUNCER`, PATH, or the copy
/// scripts/test unpacks from the Debian package.
fn bouncer_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSA_CROWDSEC_BOUNCER") {
        return p.into();
    }
    for p in [
        "/usr/bin/crowdsec-firewall-bouncer".into(),
        PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/tansa/debs/root/usr/bin/crowdsec-firewall-bouncer"),
    ] {
        if p.exists() {
            return p;
        }
    }
    panic!("crowdsec-firewall-bouncer not found: run scripts/test (it fetches it) or set TANSA_CROWDSEC_BOUNCER");
}

fn curl(lab: &Lab, path: &str, key: Option<&str>) -> (u16, String) {
    let mut a = vec![
        "ip".to_owned(),
        "netns".into(),
        "exec".into(),
        lab.server.clone(),
        "curl".into(),
        "-s".into(),
        "-w".into(),
        "\n%{http_code}".into(),
    ];
    if let Some(k) = key {
        a.push("-H".into());
        a.push(format!("X-Api-Key: {k}"));
    }
    a.push(format!("http://127.0.0.1:{PORT}{path}"));
    let out = Command::new(&a[0]).args(&a[1..]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

#[test]
fn the_crowdsec_firewall_bouncer_enforces_tansa_decisions() {
    let bouncer = bouncer_binary();
    let lab = Lab::new("c");
    let d = dir("bouncer");
    let data = d.join("data");
    let key = json_lines(
        &lab.tansa(&data, &["--format", "json", "bouncers", "add", "fw"])
            .stdout,
    )[0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let cfg = config(&d, "backend = \"none\"\n");
    let _server = start_server(&lab, &cfg, &data);

    // the API's shapes, as CrowdSec answers them
    assert_eq!(curl(&lab, "/v1/decisions/stream?startup=true", None).0, 403);
    assert_eq!(
        curl(&lab, "/v1/decisions/stream?startup=true", Some("wrong")).0,
        403
    );
    let (code, body) = curl(&lab, "/v1/decisions/stream?startup=true", Some(&key));
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"deleted":null,"new":null}"#)
    );
    assert_eq!(
        curl(&lab, &format!("/v1/decisions?ip={ATTACKER}"), Some(&key)).1,
        "null"
    );

    let yaml = d.join("bouncer.yaml");
    std::fs::write(
        &yaml,
        format!(
            "mode: nftables\npid_dir: {dir}\nupdate_frequency: 1s\ndaemonize: false\nlog_mode: stdout\nlog_dir: {dir}\nlog_level: info\napi_url: http://127.0.0.1:{PORT}/\napi_key: {key}\ninsecure_skip_verify: false\ndisable_ipv6: false\ndeny_action: DROP\ndeny_log: false\nsupported_decisions_types:\n  - ban\nblacklists_ipv4: crowdsec-blacklists\nblacklists_ipv6: crowdsec6-blacklists\nipset_type: nethash\niptables_chains:\n  - INPUT\nnftables:\n  ipv4:\n    enabled: true\n    set-only: false\n    table: crowdsec\n    chain: crowdsec-chain\n  ipv6:\n    enabled: true\n    set-only: false\n    table: crowdsec6\n    chain: crowdsec6-chain\nprometheus:\n  enabled: false\n  listen_addr: 127.0.0.1\n  listen_port: 60601\n",
            dir = d.display()
        ),
    )
    .unwrap();
    let b = Proc::start(
        &lab.server,
        bouncer.to_str().unwrap(),
        &["-c", yaml.to_str().unwrap()],
    );
    assert!(lab.connects(&lab.attacker, SERVER_A));

    // a brute force: Tansa decides, the bouncer enforces
    append(&d.join("auth.log"), &failures(ATTACKER, 12, 0));
    let banned = wait_for("the bouncer's ban", Duration::from_secs(20), || {
        !lab.connects(&lab.attacker, SERVER_A)
    });
    let (_, q) = curl(&lab, &format!("/v1/decisions?ip={ATTACKER}"), Some(&key));
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q[0]["value"], ATTACKER, "{q}");
    assert_eq!(q[0]["scope"], "Ip");
    assert_eq!(q[0]["type"], "ban");
    assert_eq!(q[0]["scenario"], "tansa.ssh.brute_force");
    assert!(lab.connects(&lab.office, SERVER_O));

    // lifted by hand: the bouncer learns it from the stream's deleted list
    lab.tansa(&data, &["ban", "del", ATTACKER]);
    let lifted = wait_for(
        "the bouncer to lift the ban",
        Duration::from_secs(20),
        || lab.connects(&lab.attacker, SERVER_A),
    );
    let log = b.log();
    assert!(
        !log.to_lowercase().contains("level=error"),
        "bouncer errors:\n{log}"
    );
    println!(
        "crowdsec-firewall-bouncer: banned {:.1} s after the brute force was written, lifted {:.1} s after `tansa ban del`",
        banned.as_secs_f64(),
        lifted.as_secs_f64()
    );
}

/// The fallback: ipset `hash:net` sets with iptables rules, driven by hand (no server).
#[test]
fn ipset_and_iptables_ban_a_prefix_and_an_address_and_lift_them() {
    let lab = Lab::new("i");
    let d = dir("ipset");
    let data = d.join("data");
    let cfg = config(
        &d,
        &format!("backend = \"ipset\"\nallow = [\"{OFFICE}\"]\n"),
    );
    let c = cfg.to_str().unwrap();
    // something to connect to (no server runs here)
    let _listener = Proc::start(
        &lab.server,
        "python3",
        &["-m", "http.server", &PORT.to_string(), "--bind", "0.0.0.0"],
    );
    wait_for("the listener", Duration::from_secs(10), || {
        lab.connects(&lab.attacker, SERVER_A)
    });
    // a prefix holding the attacker (not the server: .0/25 would hold it)
    lab.tansa(
        &data,
        &["ban", "add", "198.51.100.2", "--for", "1h", "--config", c],
    );
    assert!(!lab.connects(&lab.attacker, SERVER_A), "banned address");
    let sets = |lab: &Lab| {
        let out = run(&[
            "ip",
            "netns",
            "exec",
            &lab.server,
            "ipset",
            "list",
            "tansa-ban4",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        sets(&lab).contains("198.51.100.2 timeout"),
        "{}",
        sets(&lab)
    );
    lab.tansa(&data, &["ban", "del", ATTACKER, "--config", c]);
    assert!(lab.connects(&lab.attacker, SERVER_A), "lifted");
    lab.tansa(
        &data,
        &[
            "ban",
            "add",
            "198.51.100.0/30",
            "--for",
            "1h",
            "--config",
            c,
        ],
    );
    // the server's own .1 is in it: refused as a whole
    assert!(
        lab.connects(&lab.attacker, SERVER_A),
        "a prefix with the server's address"
    );
    lab.tansa(
        &data,
        &[
            "ban",
            "add",
            "198.51.100.2/31",
            "--for",
            "1h",
            "--config",
            c,
        ],
    );
    assert!(!lab.connects(&lab.attacker, SERVER_A), "banned prefix");
    assert!(lab.connects(&lab.office, SERVER_O));
    let refused = json_lines(
        &lab.tansa(
            &data,
            &["--format", "json", "ban", "add", OFFICE, "--config", c],
        )
        .stdout,
    );
    assert_eq!(refused[0]["state"], "refused");
    assert!(lab.connects(&lab.office, SERVER_O));
    // a reboot loses the sets; `ban apply` brings them back from the store
    lab.tansa(&data, &["ban", "uninstall", "--config", c]);
    assert!(lab.connects(&lab.attacker, SERVER_A), "after uninstall");
    lab.tansa(&data, &["ban", "apply", "--config", c]);
    assert!(!lab.connects(&lab.attacker, SERVER_A), "after apply");
    lab.tansa(&data, &["ban", "uninstall", "--config", c]);
    let rules = run(&["ip", "netns", "exec", &lab.server, "iptables", "-S"]);
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("tansa"));
}

/// Ban sharing: the attack is seen in the server's logs; an agent on another host (the
/// "office" namespace, joined to the attacker by a link of its own) receives the decision
/// over its mutual-TLS link and enforces it in its own nftables, with its own allow list;
/// a ban lifted on the server is lifted on the agent.
#[test]
fn agents_enforce_the_servers_decisions() {
    const WEB: &str = "192.0.2.1";
    const ATTACKER_W: &str = "192.0.2.2";
    const AGENT_PORT: u16 = 18515;
    let lab = Lab::new("s");
    let id = std::process::id() % 100_000;
    let (w, a) = (format!("swW{id}"), format!("swA{id}"));
    run(&[
        "ip",
        "link",
        "add",
        &w,
        "netns",
        &lab.office,
        "type",
        "veth",
        "peer",
        "name",
        &a,
        "netns",
        &lab.attacker,
    ]);
    run(&[
        "ip",
        "-n",
        &lab.office,
        "addr",
        "add",
        &format!("{WEB}/24"),
        "dev",
        &w,
    ]);
    run(&[
        "ip",
        "-n",
        &lab.attacker,
        "addr",
        "add",
        &format!("{ATTACKER_W}/24"),
        "dev",
        &a,
    ]);
    run(&["ip", "-n", &lab.office, "link", "set", &w, "up"]);
    run(&["ip", "-n", &lab.attacker, "link", "set", &a, "up"]);

    let d = dir("share");
    let data = d.join("data");
    let cad = d.join("ca");
    let cad = cad.to_str().unwrap();
    lab.tansa(&data, &["ca", "init", "--ca-dir", cad]);
    lab.tansa(
        &data,
        &["ca", "issue", "--ca-dir", cad, "--server", "server"],
    );
    lab.tansa(&data, &["ca", "issue", "--ca-dir", cad, "web"]);
    let cfg = config(&d, "backend = \"none\"\n");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = text.replace(
        "[response]",
        &format!(
            "[agents]\nlisten = \"{SERVER_O}:{AGENT_PORT}\"\ncert = \"ca/issued/server.pem\"\nkey = \"ca/issued/server.key\"\nclient_ca = \"ca/ca.pem\"\n[response]"
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    let agent_cfg = d.join("agent.toml");
    std::fs::write(
        &agent_cfg,
        format!(
            "version = 1\n[agent]\nserver = \"{SERVER_O}:{AGENT_PORT}\"\nserver_name = \"localhost\"\nca = \"ca/ca.pem\"\ncert = \"ca/issued/web.pem\"\nkey = \"ca/issued/web.key\"\nspool = \"spool\"\n[response]\nbackend = \"nftables\"\nallow = [\"{ATTACKER}\"]\n"
        ),
    )
    .unwrap();
    let server = start_server(&lab, &cfg, &data);
    let _web = Proc::start(
        &lab.office,
        "python3",
        &["-m", "http.server", &PORT.to_string(), "--bind", WEB],
    );
    wait_for("the web host's listener", Duration::from_secs(10), || {
        lab.connects(&lab.attacker, WEB)
    });
    let agent = Proc::start(
        &lab.office,
        env!("CARGO_BIN_EXE_tansa"),
        &["agent", "--config", agent_cfg.to_str().unwrap()],
    );
    wait_for("the agent's decision link", Duration::from_secs(20), || {
        agent.log().contains("ban sharing: following")
    });

    // seen by the server, blocked on the web host
    append(&d.join("auth.log"), &failures(ATTACKER_W, 12, 0));
    let blocked = wait_for(
        "the web host to block the attacker",
        Duration::from_secs(20),
        || !lab.connects(&lab.attacker, WEB),
    );
    let shown = lab_nft(&lab.office, &["list", "set", "inet", "tansa", "addr4"]);
    assert!(shown.contains(ATTACKER_W), "{shown}");
    // the server enforces nothing itself (backend none)
    assert!(!lab.nft(&["list", "tables"]).contains("tansa"));

    // the agent's allow list wins over the server's decision
    lab.tansa(&data, &["ban", "add", ATTACKER, "--for", "1h"]);
    wait_for("the agent's refusal", Duration::from_secs(10), || {
        agent.log().contains(&format!("refused {ATTACKER}"))
    });
    assert!(!lab_nft(&lab.office, &["list", "set", "inet", "tansa", "addr4"]).contains(ATTACKER));

    // lifted on the server: lifted on the agent
    lab.tansa(&data, &["ban", "del", ATTACKER_W]);
    let lifted = wait_for(
        "the ban to be lifted on the web host",
        Duration::from_secs(10),
        || lab.connects(&lab.attacker, WEB),
    );

    // a new connection brings the whole set: bans made while the agent was away arrive
    drop(agent);
    lab.tansa(&data, &["ban", "add", ATTACKER_W, "--for", "1h"]);
    let agent = Proc::start(
        &lab.office,
        env!("CARGO_BIN_EXE_tansa"),
        &["agent", "--config", agent_cfg.to_str().unwrap()],
    );
    wait_for(
        "the ban made while the agent was away",
        Duration::from_secs(20),
        || !lab.connects(&lab.attacker, WEB),
    );
    assert!(server.log().contains("decision"), "{}", server.log());
    drop(agent);
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.office,
            "nft",
            "delete",
            "table",
            "inet",
            "tansa",
        ])
        .output();
    println!(
        "ban sharing: the web host blocked the attacker {:.1} s after the brute force was written to the server's log, let it back {:.1} s after `ban del` on the server",
        blocked.as_secs_f64(),
        lifted.as_secs_f64()
    );
}

fn lab_nft(ns: &str, args: &[&str]) -> String {
    let mut a = vec!["ip", "netns", "exec", ns, "nft"];
    a.extend(args);
    String::from_utf8_lossy(&run(&a).stdout).into_owned()
}
