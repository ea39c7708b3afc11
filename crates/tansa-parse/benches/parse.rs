//! Parser throughput per format, in lines/s (`Throughput::Elements`).
//!
//! Inputs are realistic lines of each format (the shapes `gen-bench-logs.py` and real servers
//! write), cycled; the parser is a fresh stream per iteration batch, as for a file.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tansa_event::Origin;
use tansa_parse::{Format, Parser, TimeCtx};

const AUTH: &[&str] = &[
    "Mar 14 00:00:01 web01 sshd[20211]: Invalid user admin from 181.44.12.9 port 51022",
    "Mar 14 00:00:01 web01 sshd[20211]: pam_unix(sshd:auth): check pass; user unknown",
    "Mar 14 00:00:01 web01 sshd[20211]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=181.44.12.9 ",
    "Mar 14 00:00:03 web01 sshd[20211]: Failed password for invalid user admin from 181.44.12.9 port 51022 ssh2",
    "Mar 14 00:00:04 web01 sshd[20211]: Received disconnect from 181.44.12.9 port 51022:11: Bye Bye [preauth]",
    "Mar 14 00:00:04 web01 sshd[20211]: Disconnected from invalid user admin 181.44.12.9 port 51022 [preauth]",
    "Mar 14 00:00:05 web01 sshd[20250]: Accepted publickey for deploy from 10.0.0.5 port 40022 ssh2: ED25519 SHA256:Yk0Ukq7vQ2dYQ9yq1Qm3Yy0n0s2r1iZkz2bP0mX4d8c",
    "Mar 14 00:00:05 web01 sshd[20250]: pam_unix(sshd:session): session opened for user deploy(uid=1001) by (uid=0)",
    "Mar 14 00:00:05 web01 systemd-logind[612]: New session 101 of user deploy.",
    "Mar 14 00:00:06 web01 CRON[20260]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    "Mar 14 00:00:07 web01 sudo:    alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
    "Mar 14 00:00:08 web01 sshd[20299]: Failed password for root from 45.141.87.12 port 33122 ssh2",
];

const ACCESS: &[&str] = &[
    r#"203.0.113.9 - - [14/Mar/2026:00:00:01 +0000] "GET /products/42 HTTP/1.1" 200 5123 "https://shop.example.com/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36""#,
    r#"198.51.100.7 - - [14/Mar/2026:00:00:01 +0000] "GET /static/js/app.8b21e0.js HTTP/2.0" 200 88211 "-" "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0""#,
    r#"45.141.87.12 - - [14/Mar/2026:00:00:02 +0000] "GET /search?q=%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1" 200 311 "-" "sqlmap/1.8.2#stable (https://sqlmap.org)""#,
    r#"192.0.2.44 - - [14/Mar/2026:00:00:03 +0000] "POST /api/v1/cart HTTP/1.1" 201 64 "https://shop.example.com/cart" "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1""#,
];

const OTHER: &[(&str, &[&str])] = &[
    ("nginx-error", &[r#"2026/03/14 10:00:00 [error] 2865#0: *66647 user "xyz" was not found in "/var/www/.htpasswd", client: 192.0.43.10, server: www.myhost.com, request: "GET / HTTP/1.1", host: "www.myhost.com""#]),
    ("firewall", &["Mar 14 10:00:00 fw kernel: [ 1234.567890] [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:00:00:01 SRC=45.141.87.12 DST=10.0.0.5 LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=54321 PROTO=TCP SPT=43122 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0"]),
    ("mysql", &["2019-01-03T08:50:04.634875Z 113 [Note] [MY-010926] [Server] Access denied for user 'root'@'192.0.2.1' (using password: NO)"]),
    ("auditd", &[r#"type=SYSCALL msg=audit(1773446401.120:501): arch=c000003e syscall=59 success=yes exit=0 a0=55 a1=55 a2=55 a3=0 items=2 ppid=4100 pid=4242 auid=1001 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=7 comm="wget" exe="/usr/bin/wget" key="exec""#]),
    ("json-eve", &[r#"{"timestamp":"2026-03-14T10:00:00.123456+0000","flow_id":1,"event_type":"alert","src_ip":"45.141.87.12","src_port":4444,"dest_ip":"10.0.0.5","dest_port":22,"proto":"TCP","alert":{"action":"allowed","signature_id":2001219,"signature":"ET SCAN Potential SSH Scan","severity":2}}"#]),
];

fn run(c: &mut Criterion, name: &str, lines: &[&str]) {
    let lines: Vec<Bytes> = lines
        .iter()
        .map(|l| Bytes::copy_from_slice(l.as_bytes()))
        .collect();
    let n = 4096usize;
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                Parser::new(
                    Format::Auto,
                    Arc::new(Origin::file("/var/log/x", "web01")),
                    TimeCtx::new(
                        jiff::tz::TimeZone::UTC,
                        "2026-03-15T00:00:00Z".parse().unwrap(),
                    ),
                )
            },
            |mut p| {
                let mut out = Vec::with_capacity(n + 8);
                for i in 0..n {
                    p.parse_line(lines[i % lines.len()].clone(), i as u64 * 100, &mut out);
                }
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    run(c, "auth.log", AUTH);
    run(c, "access.log", ACCESS);
    for (name, lines) in OTHER {
        run(c, name, lines);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
