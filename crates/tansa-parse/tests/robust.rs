//! Hostile input: mutated and random lines through every parser.
//!
//! Seed lines of every format are mutated (byte flips, truncation at every length, random
//! insertions, separators doubled or removed, invalid UTF-8) and fed to an auto-detecting
//! parser and to each forced format. Nothing may panic, every line must yield exactly one
//! event of its own (plus, rarely, a derived one), and counters must add up. The same seeds
//! drive the cargo-fuzz targets in `fuzz/`; this test is the part that runs on stable in CI.

use std::sync::Arc;

use bytes::Bytes;
use tansa_event::{Kind, Origin};
use tansa_parse::{Format, Parser, TimeCtx};

const SEEDS: &[&str] = &[
    "Mar 14 00:00:01 web01 sshd[20211]: Failed password for invalid user admin from 181.44.12.9 port 51022 ssh2",
    "Mar 14 00:00:01 web01 sshd[20211]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=181.44.12.9  user=root",
    "Mar 14 00:00:05 web01 sshd[20250]: Accepted publickey for deploy from 10.0.0.5 port 40022 ssh2: ED25519 SHA256:Yk0Ukq7vQ2dY",
    "Mar 14 00:00:04 web01 sshd[20211]: Disconnected from invalid user admin 181.44.12.9 port 51022 [preauth]",
    "Mar 14 00:00:04 web01 sshd[20211]: Received disconnect from 2001:db8::1 port 51022:11: Bye Bye [preauth]",
    "Mar 14 00:00:07 web01 sudo:    alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su 77 ID47 [exampleSDID@32473 iut=\"3\"] 'su root' failed",
    "2026-03-14T10:00:00.123456+08:00 db1 useradd[9]: new user: name=bob, UID=1003, GID=1003, home=/home/bob",
    r#"203.0.113.9 - - [14/Mar/2026:00:00:01 +0000] "GET /search?q=%27%20OR%201=1 HTTP/1.1" 200 512 "-" "sqlmap/1.8""#,
    r#"shop.example.com:443 198.51.100.7 - bob [14/Mar/2026:10:00:01 +0000] "POST /login HTTP/2.0" 401 17 "https://x/\"y" "UA \"q\"" 0.002"#,
    r#"2014/04/03 22:20:40 [error] 30708#0: *3 user "test": password mismatch, client: 127.0.0.1, server: test, request: "GET / HTTP/1.1", host: "x""#,
    "[Sat Jul 20 22:11:44.147674 2013] [authz_owner:error] [pid 17540:tid 1] [client [2001:db8::80da:af6b:8b2c]:51548] AH01637: Authorization of user u to access /x failed",
    "Mar 14 10:00:00 fw kernel: [ 1234.567890] [UFW BLOCK] IN=eth0 OUT= MAC=00:16:3e:00:00:01 SRC=45.141.87.12 DST=10.0.0.5 LEN=40 PROTO=TCP SPT=43122 DPT=3389 SYN",
    "2019-01-03T08:50:04.634875Z 113 [Note] [MY-010926] [Server] Access denied for user 'root'@'192.0.2.1' (using password: NO)",
    "2026-03-14 10:00:00.123 UTC [1234] postgres@shop FATAL:  password authentication failed for user \"postgres\"",
    r#"type=SYSCALL msg=audit(1773446401.120:501): arch=c000003e syscall=59 success=yes exit=0 ppid=4100 pid=4242 auid=1001 uid=0 tty=pts0 ses=7 comm="wget" exe="/usr/bin/wget" key="exec""#,
    r#"type=EXECVE msg=audit(1773446401.120:501): argc=3 a0="wget" a1="-q" a2=687474703A2F2F6576696C2E6578616D706C652F782E7368"#,
    r#"{"timestamp":"2026-03-14T10:00:00.123456+0000","flow_id":1,"event_type":"alert","src_ip":"45.141.87.12","src_port":4444,"dest_ip":"10.0.0.5","alert":{"signature":"x"}}"#,
    r#"{"ts":1773482400.5,"id.orig_h":"203.0.113.9","id.orig_p":5555,"id.resp_h":"10.0.0.5","id.resp_p":80,"method":"GET","uri":"/?id=1'"}"#,
    "Jul 02 13:49:31 hostname dovecot[442]: pop3-login: Aborted login (auth failed, 1 attempts in 17 secs): user=<test>, method=PLAIN, rip=192.51.100.13, lip=203.0.113.17",
    "2016-11-20T00:04:00.111+0100 [conn1] end connection 192.0.2.35:53276 (0 connections now open)",
    "[22-Jan-2013 22:28:21 +0200]: FAILED login for user1 from 192.0.43.10",
    "@400000004c91b044077a9e94 imap-login: Info: Aborted login (auth failed, 1 attempts): user=<m>, rip=80.187.101.33",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.truncate(rng.below(v.len() + 1)),
            2 => {
                let i = rng.below(v.len() + 1);
                let set = b" :[]\"'=<>(),;/\\@#%\x00\xff\xc3";
                let b = set[rng.below(set.len())];
                v.insert(i, b);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            4 => {
                // a field repeated (injection-style)
                let a = rng.below(v.len() + 1);
                let b = (a + rng.below(40)).min(v.len());
                let piece = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, piece);
            }
            5 => {
                let n = rng.below(300);
                v.extend((0..n).map(|_| rng.next() as u8));
            }
            _ => {
                let i = rng.below(v.len() + 1);
                v.splice(i..i, std::iter::repeat_n(b'9', rng.below(30)));
            }
        }
    }
    v.retain(|&b| b != b'\n');
    v
}

fn parser(format: Format) -> Parser {
    Parser::new(
        format,
        Arc::new(Origin::file("/fuzz", "h")),
        TimeCtx::new(
            jiff::tz::TimeZone::get("Asia/Tokyo").unwrap(),
            "2026-03-15T00:00:00Z".parse().unwrap(),
        ),
    )
}

#[test]
fn mutated_lines_never_panic_and_are_never_lost() {
    let mut rng = Rng(0x7a5a_2026);
    let mut formats = vec![Format::Auto];
    formats.extend(
        Format::names()
            .iter()
            .skip(1)
            .map(|n| n.parse::<Format>().unwrap()),
    );
    let mut total = 0u64;
    for format in formats {
        let mut p = parser(format);
        let mut out = Vec::new();
        let mut lines = 0u64;
        for i in 0..20_000 {
            let seed = SEEDS[i % SEEDS.len()].as_bytes();
            let line = if i % 10 == 0 {
                (0..rng.below(200)).map(|_| rng.next() as u8).collect()
            } else {
                mutate(seed, &mut rng)
            };
            p.parse_line(Bytes::from(line), i as u64, &mut out);
            lines += 1;
        }
        p.finish(&mut out);
        let st = p.stats();
        assert_eq!(st.lines, lines);
        let own = out
            .iter()
            .filter(|e| e.get_str(tansa_event::Field::TAGS).as_deref() != Some("derived"))
            .count() as u64;
        assert_eq!(own, lines, "{format:?}: every line yields its event");
        let unparsed = out.iter().filter(|e| e.kind == Kind::Unparsed).count() as u64;
        assert_eq!(
            unparsed, st.unparsed,
            "{format:?}: the unparsed counter matches"
        );
        let parsed: u64 = st.by_format.iter().map(|(_, n)| n).sum();
        assert_eq!(parsed + st.unparsed, lines, "{format:?}: counters add up");
        for e in &out {
            // every event can be serialised (no invalid spans)
            let j = e.to_json();
            assert!(j["event"]["original"].is_string());
        }
        total += lines;
    }
    println!(
        "robustness: {total} mutated lines through {} parser configurations, no panic, none lost",
        Format::names().len()
    );
}
