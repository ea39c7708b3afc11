//! Database server logs: MySQL/MariaDB error log (all generations of its timestamp), general
//! query log, slow query log header lines; PostgreSQL server log with the default and common
//! `log_line_prefix` settings.

use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::time::{self, Civil, TimeCtx};
use crate::util::{set, set_source, token};

fn db(ev: &mut Event, dataset: &'static str) {
    ev.dataset = dataset;
    ev.category = Category::Database;
}

/// MySQL timestamps: ISO (`2019-01-03T08:50:04.634875Z`, `2015-10-07  8:25:38`) and the
/// old `YYMMDD H:MM:SS` (`130324  0:04:00`). Returns (nanos, end).
fn mysql_time(s: &str, tc: &mut TimeCtx) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    if let Some((c, off, end)) = time::iso(b) {
        let ns = match off {
            Some(o) => TimeCtx::with_offset(c, o)?,
            None => tc.local(c)?,
        };
        return Some((ns, end));
    }
    // `YYYY-MM-DD  H:MM:SS` (space-padded hour) or `YYMMDD  H:MM:SS`
    let (year, month, day, mut i) = if b.len() > 10 && b[4] == b'-' && b[7] == b'-' {
        (
            s.get(..4)?.parse().ok()?,
            s.get(5..7)?.parse().ok()?,
            s.get(8..10)?.parse().ok()?,
            10,
        )
    } else if b.len() > 6 && b[..6].iter().all(u8::is_ascii_digit) {
        (
            2000 + s.get(..2)?.parse::<i32>().ok()?,
            s.get(2..4)?.parse().ok()?,
            s.get(4..6)?.parse().ok()?,
            6,
        )
    } else {
        return None;
    };
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let rest = &s[i..];
    let (hms, _) = token(rest);
    let mut it = hms.split(':');
    let hour: u8 = it.next()?.parse().ok()?;
    let minute: u8 = it.next()?.parse().ok()?;
    let sec_s = it.next()?;
    let second: u8 = sec_s.get(..2)?.parse().ok()?;
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos: 0,
    };
    Some((tc.local(c)?, i + hms.len()))
}

/// A MySQL/MariaDB error or general log line.
pub fn mysql(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    mysql_at(ev, line, 0, tc)
}

/// [`mysql`] on the part of `line` from `start` (spans stay relative to `line`).
fn mysql_at(ev: &mut Event, line: &str, start: usize, tc: &mut TimeCtx) -> bool {
    let s = &line[start..];
    if let Some(rest) = s.strip_prefix("# ") {
        return slow_header(ev, line, rest, tc);
    }
    let Some((ts, end)) = mysql_time(s, tc) else {
        return false;
    };
    let tt = Some((start as u32, (start + end) as u32));
    let rest = s[end..].trim_start();
    // `THREAD [Level] ...` or `[Level] ...`
    let (first, after) = token(rest);
    let (thread, rest) = if first.bytes().all(|c| c.is_ascii_digit()) && !first.is_empty() {
        (Some(first), after.trim_start())
    } else {
        (None, rest)
    };
    if !rest.starts_with('[') {
        // general log: `TIME THREAD Command\tArgument`
        let Some(th) = thread else { return false };
        let (cmd, arg) = rest
            .split_once('\t')
            .or_else(|| rest.split_once(' '))
            .unwrap_or((rest, ""));
        if !cmd.bytes().all(|c| c.is_ascii_alphabetic() || c == b' ') || cmd.is_empty() {
            return false;
        }
        ev.timestamp = ts;
        ev.time_text = tt;
        db(ev, "mysql.general");
        ev.set(Field::PROCESS_PID, Val::Int(th.parse().unwrap_or(0)));
        general(ev, line, cmd.trim(), arg.trim());
        return true;
    }
    // the first tag is MySQL's severity (`[Note]`, `[Warning]`, ...), not e.g. MongoDB's `[conn1]`
    let tag = rest[1..].split(']').next().unwrap_or("");
    if !matches!(
        tag,
        "Note" | "Warning" | "Error" | "ERROR" | "System" | "Server" | "InnoDB"
    ) {
        return false;
    }
    ev.timestamp = ts;
    ev.time_text = tt;
    db(ev, "mysql.error");
    if let Some(t) = thread {
        ev.set(Field::PROCESS_PID, Val::Int(t.parse().unwrap_or(0)));
    }
    let mut r = rest;
    while let Some(x) = r.strip_prefix('[') {
        let Some(c) = x.find("] ") else { break };
        let tag = &x[..c];
        if tag.starts_with("MY-") {
            set(ev, line, Field::EVENT_CODE, tag);
        } else if matches!(tag, "Note" | "Warning" | "ERROR" | "Error" | "System") {
            set(ev, line, Field::LOG_LEVEL, tag);
        }
        r = &x[c + 2..];
    }
    set(ev, line, Field::ERROR_MESSAGE, r);
    access_denied(ev, line, r);
    true
}

/// `Access denied for user 'root'@'192.0.2.1' (using password: YES)`: the whole message must
/// be this sentence (text after it would be something a user wrote into the log).
fn access_denied(ev: &mut Event, line: &str, r: &str) {
    let Some(u) = r.strip_prefix("Access denied for user '") else {
        return;
    };
    let Some(at) = u.find("'@'") else { return };
    let user = &u[..at];
    let host_rest = &u[at + 3..];
    let Some(q) = host_rest.find('\'') else {
        return;
    };
    let host = &host_rest[..q];
    let tail = host_rest[q + 1..].trim();
    if !(tail.is_empty()
        || tail.starts_with("(using password: ") && tail.ends_with(')') && tail.len() <= 22)
    {
        return;
    }
    ev.category = Category::Authentication;
    ev.event_type = EventType::Denied;
    ev.outcome = Outcome::Failure;
    ev.action = Some("db_authentication");
    set(ev, line, Field::USER_NAME, user);
    set(ev, line, Field::DB_USER, user);
    set_source(ev, line, host);
}

fn general(ev: &mut Event, line: &str, cmd: &str, arg: &str) {
    match cmd {
        "Connect" => {
            ev.event_type = EventType::Start;
            ev.action = Some("db_connection");
            // `root@localhost on shop using TCP/IP` / `Access denied for user ...`
            if arg.starts_with("Access denied") {
                access_denied(ev, line, arg);
                return;
            }
            let (who, rest) = token(arg);
            if let Some((u, h)) = who.split_once('@') {
                set(ev, line, Field::USER_NAME, u);
                set(ev, line, Field::DB_USER, u);
                set_source(ev, line, h);
            }
            if let Some(d) = rest.strip_prefix("on ") {
                let d = token(d).0;
                if !d.is_empty() {
                    set(ev, line, Field::DB_NAME, d);
                }
            }
        }
        "Quit" => {
            ev.event_type = EventType::End;
            ev.action = Some("db_disconnect");
        }
        "Init DB" => {
            ev.action = Some("db_use");
            set(ev, line, Field::DB_NAME, arg);
        }
        _ => {
            ev.event_type = EventType::Access;
            ev.action = Some("db_query");
            if !arg.is_empty() {
                set(ev, line, Field::DB_STATEMENT, arg);
            }
        }
    }
}

/// A line of a MySQL log stream: error/general lines, slow log headers, and — once a slow log
/// header was seen — the statements that follow them (`SET timestamp=…;`, `use db;`, the query).
pub fn mysql_stream(
    ev: &mut Event,
    line: &str,
    tc: &mut TimeCtx,
    slow: &mut bool,
    last: Option<i64>,
) -> bool {
    if mysql(ev, line, tc) {
        if ev.dataset == "mysql.slow" {
            *slow = true;
        }
        return true;
    }
    if !*slow || line.starts_with('#') {
        return false;
    }
    db(ev, "mysql.slow");
    if let Some(t) = last {
        ev.timestamp = t;
    }
    let stmt = line.trim_end();
    if let Some(ts) = stmt
        .strip_prefix("SET timestamp=")
        .and_then(|v| v.trim_end_matches(';').parse::<i64>().ok())
    {
        ev.timestamp = ts * 1_000_000_000;
        ev.action = Some("db_slow_query");
        return true;
    }
    if let Some(d) = stmt.strip_prefix("use ").map(|d| d.trim_end_matches(';')) {
        set(ev, line, Field::DB_NAME, d);
        ev.action = Some("db_use");
        return true;
    }
    ev.event_type = EventType::Access;
    ev.action = Some("db_query");
    set(ev, line, Field::DB_STATEMENT, stmt);
    true
}

/// Slow log header lines: `# Time:`, `# User@Host: u[u] @ host [1.2.3.4]  Id: 9`, `# Query_time: 2.5 ...`.
fn slow_header(ev: &mut Event, line: &str, rest: &str, tc: &mut TimeCtx) -> bool {
    db(ev, "mysql.slow");
    if let Some(t) = rest.strip_prefix("Time: ") {
        let t = t.trim();
        if let Some((ns, _)) = mysql_time(t, tc) {
            ev.timestamp = ns;
            let (s, e) = crate::util::span(line, t);
            ev.time_text = Some((s as u32, e as u32));
        }
        ev.event_type = EventType::Info;
        return true;
    }
    if let Some(u) = rest.strip_prefix("User@Host: ") {
        let user = u.split('[').next().unwrap_or("").trim();
        if !user.is_empty() {
            set(ev, line, Field::USER_NAME, user);
            set(ev, line, Field::DB_USER, user);
        }
        if let Some(i) = u.rfind('[') {
            let ip = &u[i + 1..];
            let ip = &ip[..ip.find(']').unwrap_or(ip.len())];
            if !ip.is_empty() {
                set_source(ev, line, ip);
            }
        }
        ev.action = Some("db_slow_query");
        return true;
    }
    if let Some(q) = rest.strip_prefix("Query_time: ") {
        let v = token(q).0;
        set(ev, line, Field::DB_QUERY_TIME, v);
        ev.action = Some("db_slow_query");
        return true;
    }
    false
}

/// A MySQL message written through syslog (`mysqld: 130916 21:30:26 [Warning] ...`); the
/// syslog header's time stays the time of record.
pub fn mysql_in_syslog(ev: &mut Event, line: &str, start: usize, tc: &mut TimeCtx) {
    let (ts, tt) = (ev.timestamp, ev.time_text);
    if !mysql_at(ev, line, start, tc) {
        db(ev, "mysql.error");
        access_denied(ev, line, &line[start..]);
    }
    ev.timestamp = ts;
    ev.time_text = tt;
}

/// PostgreSQL: `2026-03-14 10:00:00.123 UTC [1234] user@db FATAL:  password authentication
/// failed for user "postgres"` and `LOG:  connection received: host=1.2.3.4 port=5432`.
pub fn postgres(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    let b = line.as_bytes();
    let Some((c, off, mut end)) = time::iso(b) else {
        return false;
    };
    let mut offset = off;
    // zone abbreviation: `UTC`, `GMT`, `CET`, `JST`, ...
    if offset.is_none() && b.get(end) == Some(&b' ') {
        let (z, _) = token(&line[end + 1..]);
        if (2..=5).contains(&z.len()) && z.bytes().all(|c| c.is_ascii_uppercase()) {
            if z == "UTC" || z == "GMT" {
                offset = Some(0);
            }
            end += 1 + z.len();
        }
    }
    let rest = line[end..].trim_start();
    // the message marker `LEVEL:  `
    let Some(mi) = [
        "LOG:  ",
        "FATAL:  ",
        "ERROR:  ",
        "WARNING:  ",
        "STATEMENT:  ",
        "DETAIL:  ",
        "HINT:  ",
        "PANIC:  ",
        "NOTICE:  ",
        "INFO:  ",
        "DEBUG:  ",
        "CONTEXT:  ",
    ]
    .iter()
    .filter_map(|m| rest.find(m).map(|i| (i, m.len())))
    .min() else {
        return false;
    };
    ev.timestamp = match offset {
        Some(o) => TimeCtx::with_offset(c, o),
        None => tc.local(c),
    }
    .unwrap_or(ev.timestamp);
    ev.time_text = Some((0, end as u32));
    let prefix = &rest[..mi.0];
    // `[pid]` and `user@db` in the prefix
    for t in prefix.split_whitespace() {
        if let Some(p) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            let p = p.split('-').next().unwrap_or(p);
            if let Ok(pid) = p.parse::<i64>() {
                ev.set(Field::PROCESS_PID, Val::Int(pid));
            }
        } else if let Some((u, d)) = t.split_once('@') {
            if !u.is_empty() && !u.starts_with('[') {
                set(ev, line, Field::DB_USER, u);
                if !d.is_empty() && d != "[unknown]" {
                    set(ev, line, Field::DB_NAME, d);
                }
            }
        } else if let Some(ip) = t.split('(').next().and_then(crate::util::parse_ip) {
            ev.source_ip = Some(ip);
        }
    }
    let level = rest[mi.0..mi.0 + mi.1].trim_end().trim_end_matches(':');
    set(ev, line, Field::LOG_LEVEL, level);
    postgres_msg(ev, line, &rest[mi.0 + mi.1..]);
    true
}

/// The message part of a PostgreSQL log line.
pub fn postgres_msg(ev: &mut Event, line: &str, m: &str) {
    db(ev, "postgresql");
    if let Some(r) = m.strip_prefix("connection received: ") {
        ev.event_type = EventType::Start;
        ev.action = Some("db_connection");
        for kvp in r.split(' ') {
            if let Some(h) = kvp.strip_prefix("host=") {
                set_source(ev, line, h);
            } else if let Some(p) = kvp.strip_prefix("port=") {
                ev.source_port = p.parse().ok();
            }
        }
    } else if m.starts_with("password authentication failed for user")
        || m.starts_with("authentication failed for user")
        || m.starts_with("no pg_hba.conf entry for host")
        || m.starts_with("role \"") && m.contains("does not exist")
        || m.starts_with("Ident authentication failed")
        || m.starts_with("pam authentication failed")
    {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Denied;
        ev.outcome = Outcome::Failure;
        ev.action = Some("db_authentication");
        if let Some(i) = m.find("user \"").or_else(|| m.find("role \"")) {
            let u = &m[i + 6..];
            if let Some(e) = u.find('"') {
                set(ev, line, Field::USER_NAME, &u[..e]);
                set(ev, line, Field::DB_USER, &u[..e]);
            }
        }
        if let Some(i) = m.find("host \"") {
            let h = &m[i + 6..];
            if let Some(e) = h.find('"') {
                set_source(ev, line, &h[..e]);
            }
        }
    } else if let Some(r) = m.strip_prefix("connection authorized: ") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Start;
        ev.outcome = Outcome::Success;
        ev.action = Some("db_authentication");
        for kvp in r.split(' ') {
            if let Some(u) = kvp.strip_prefix("user=") {
                set(ev, line, Field::USER_NAME, u);
            } else if let Some(d) = kvp.strip_prefix("database=") {
                set(ev, line, Field::DB_NAME, d);
            }
        }
    } else if let Some(s) = m
        .strip_prefix("statement: ")
        .or_else(|| m.strip_prefix("execute "))
    {
        ev.event_type = EventType::Access;
        ev.action = Some("db_query");
        set(ev, line, Field::DB_STATEMENT, s);
    } else if let Some(d) = m.strip_prefix("duration: ") {
        ev.action = Some("db_query");
        set(ev, line, Field::DB_QUERY_TIME, token(d).0);
        if let Some(i) = d.find("statement: ") {
            set(ev, line, Field::DB_STATEMENT, &d[i + 11..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn tc() -> TimeCtx {
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        )
    }

    fn run(f: fn(&mut Event, &str, &mut TimeCtx) -> bool, l: &str) -> Option<Event> {
        let mut ev = Event::new(
            bytes::Bytes::copy_from_slice(l.as_bytes()),
            Arc::new(Origin::default()),
            0,
        );
        let raw = ev.raw.clone();
        f(&mut ev, raw.as_str(), &mut tc()).then_some(ev)
    }

    #[test]
    fn mysql_access_denied_all_stamps() {
        for l in [
            "130324  0:04:00 [Warning] Access denied for user 'root'@'192.168.1.35' (using password: NO)",
            "2015-10-07  8:25:38 139845235329792 [Warning] Access denied for user 'root'@'192.168.1.35' (using password: YES)",
            "2019-01-03T08:50:04.634875Z 113 [Note] [MY-010926] [Server] Access denied for user 'root'@'192.168.1.35' (using password: NO)",
        ] {
            let e = run(mysql, l).unwrap();
            assert_eq!(e.outcome, Outcome::Failure, "{l}");
            assert_eq!(e.source_ip.unwrap().to_string(), "192.168.1.35");
            assert_eq!(e.user_name().unwrap(), "root");
        }
        let e = run(mysql, "2016-02-24T15:26:18.237955 6 [Note] Access denied for user 'root'@'localhost' (using password: YES) condition lead to a hypothetical failure").unwrap();
        assert_eq!(e.outcome, Outcome::Unknown);
    }

    #[test]
    fn mysql_general_query() {
        let e = run(mysql, "2026-03-14T10:00:00.123456Z\t   12 Query\tSELECT * FROM users WHERE id=1 UNION SELECT 1,2").unwrap();
        assert_eq!(e.action, Some("db_query"));
        assert!(e.get_str(Field::DB_STATEMENT).unwrap().contains("UNION"));
    }

    #[test]
    fn slow_log_statements() {
        let mut p = crate::Parser::new(crate::Format::Auto, Arc::new(Origin::default()), tc());
        let mut out = vec![];
        for l in [
            "# Time: 2026-03-14T10:00:05.123456Z",
            "# User@Host: app[app] @  [10.0.0.5]  Id:    12",
            "# Query_time: 12.500000  Lock_time: 0.000100 Rows_sent: 50000  Rows_examined: 50000",
            "SET timestamp=1773482405;",
            "SELECT * FROM customers INTO OUTFILE '/tmp/c.csv';",
        ] {
            p.parse_line(bytes::Bytes::copy_from_slice(l.as_bytes()), 0, &mut out);
        }
        assert_eq!(p.stats().unparsed, 0);
        assert_eq!(out[1].source_ip.unwrap().to_string(), "10.0.0.5");
        assert_eq!(
            out[4].get_str(Field::DB_STATEMENT).unwrap(),
            "SELECT * FROM customers INTO OUTFILE '/tmp/c.csv';"
        );
        assert_eq!(out[4].dataset, "mysql.slow");
    }

    #[test]
    fn postgres_auth_failure() {
        let e = run(postgres, "2026-03-14 10:00:00.123 UTC [1234] postgres@shop FATAL:  password authentication failed for user \"postgres\"").unwrap();
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user_name().unwrap(), "postgres");
        assert_eq!(e.get(Field::PROCESS_PID), Some(&Val::Int(1234)));
        let e = run(postgres, "2026-03-14 10:00:00.123 UTC [1234] LOG:  connection received: host=203.0.113.5 port=51000").unwrap();
        assert_eq!(e.source_ip.unwrap().to_string(), "203.0.113.5");
    }
}
