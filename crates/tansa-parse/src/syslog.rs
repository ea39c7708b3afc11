//! Syslog framing of one line: RFC 3164 (`Mmm dd HH:MM:SS host prog[pid]: msg`, no year, no
//! zone), RFC 3339-stamped files (rsyslog's default on Debian 12), RFC 5424, an optional
//! `<PRI>`, and the variants seen in the wild (no host, `[prog]`, Solaris `[ID n fac.level]`,
//! kernel `[ 12.345]` uptimes). The message is then handed to the program's parser.

use tansa_event::{Event, Field, Val};

use crate::time::{self, TimeCtx};
use crate::util::{set, span};

/// The parsed header of a syslog line; offsets are into the line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub pri: Option<u8>,
    pub ts: i64,
    pub time: (usize, usize),
    pub host: Option<(usize, usize)>,
    pub program: Option<(usize, usize)>,
    /// `sshd(pam_unix)[pid]`: the module in parentheses after the program name.
    pub module: Option<(usize, usize)>,
    pub pid: Option<u32>,
    /// Start of the message text for the program's parser (after a kernel uptime).
    pub msg: usize,
    /// Start of the message as written (`message`).
    pub msg_full: usize,
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') || b.get(i) == Some(&b'\t') {
        i += 1;
    }
    i
}

fn token_end(b: &[u8], i: usize) -> usize {
    memchr::memchr2(b' ', b'\t', &b[i..]).map_or(b.len(), |j| i + j)
}

/// Parses a `<PRI>` prefix; returns the value and the offset after it.
fn pri(b: &[u8]) -> Option<(u8, usize)> {
    if b.first() != Some(&b'<') {
        return None;
    }
    let mut v: u32 = 0;
    let mut i = 1;
    while i < 5 {
        let c = *b.get(i)?;
        if c == b'>' {
            return (i > 1 && v < 192).then_some((v as u8, i + 1));
        }
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
        i += 1;
    }
    None
}

/// A timestamp at `i`: BSD or ISO. Returns (UTC nanos, end).
pub fn timestamp(b: &[u8], i: usize, tc: &mut TimeCtx) -> Option<(i64, usize)> {
    let rest = &b[i..];
    let first = *rest.first()?;
    if first.is_ascii_alphabetic() {
        let (mut c, end) = time::bsd(rest)?;
        if c.year == 0 {
            c.year = tc.infer_year(c.month, c.day);
        }
        return Some((tc.local(c)?, i + end));
    }
    if first == b'@' && rest.len() >= 25 && rest[1..25].iter().all(u8::is_ascii_hexdigit) {
        // daemontools/s6 TAI64N label: `@4000000000000000` + seconds, then nanoseconds
        let hex = std::str::from_utf8(&rest[1..25]).ok()?;
        let secs = u64::from_str_radix(&hex[..16], 16)
            .ok()?
            .checked_sub(1 << 62)?;
        let nanos = u64::from_str_radix(&hex[16..], 16).ok()?;
        return Some((secs as i64 * 1_000_000_000 + nanos as i64, i + 25));
    }
    if first.is_ascii_digit() {
        // syslog writes ISO dates with `-` (a `/` date is nginx's error log)
        if rest.get(4) != Some(&b'-') {
            return None;
        }
        let (c, off, end) = time::iso(rest)?;
        let ns = match off {
            Some(o) => TimeCtx::with_offset(c, o)?,
            None => tc.local(c)?,
        };
        return Some((ns, i + end));
    }
    None
}

/// A program tag: name range, pid, end of the token, module range.
type Tag = ((usize, usize), Option<u32>, usize, Option<(usize, usize)>);

/// Parses a program token `name[pid]:`, `name:`, `[name]:`, `name(x)[pid]:`. Returns `None`
/// if the token is not a program tag.
fn program(b: &[u8], i: usize, end: usize) -> Option<Tag> {
    let tok = &b[i..end];
    if tok.is_empty() {
        return None;
    }
    // `[sshd]:` or `[sshd]`
    if tok[0] == b'[' {
        let close = memchr::memchr(b']', tok)?;
        if close < 2 || close + 1 < tok.len() && tok[close + 1] != b':' {
            return None;
        }
        return Some(((i + 1, i + close), None, end, None));
    }
    let name_end = tok
        .iter()
        .position(|&c| c == b'[' || c == b':' || c == b'(')
        .unwrap_or(tok.len());
    if name_end == 0 {
        return None;
    }
    let mut j = name_end;
    let mut module = None;
    // `sshd(pam_unix)`, dovecot's `auth(user,ip,x)<session>`
    if tok.get(j) == Some(&b'(') {
        let close = j + memchr::memchr(b')', &tok[j..])?;
        module = Some((i + j + 1, i + close));
        j = close + 1;
        if tok.get(j) == Some(&b'<') {
            j += memchr::memchr(b'>', &tok[j..])? + 1;
        }
    }
    let mut pid = None;
    let mut bracketed = false;
    if tok.get(j) == Some(&b'[') {
        let close = j + memchr::memchr(b']', &tok[j..])?;
        let digits = &tok[j + 1..close];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 10 {
            return None;
        }
        pid = std::str::from_utf8(digits).ok()?.parse().ok();
        j = close + 1;
        bracketed = true;
    }
    let colon = tok.get(j) == Some(&b':');
    if colon {
        j += 1;
    }
    if j != tok.len() || !(colon || bracketed) {
        return None;
    }
    Some(((i, i + name_end), pid, end, module))
}

/// Parses the header of a syslog line. `None` when the line does not start like syslog.
pub fn header(line: &str, tc: &mut TimeCtx) -> Option<Header> {
    let b = line.as_bytes();
    let mut h = Header::default();
    let mut i = 0;
    if let Some((p, e)) = pri(b) {
        h.pri = Some(p);
        i = e;
        if b.get(i) == Some(&b'1') && b.get(i + 1) == Some(&b' ') {
            return rfc5424(line, i + 2, h, tc);
        }
    }
    i = skip_spaces(b, i);
    let (ts, tend) = timestamp(b, i, tc)?;
    // the stamp is a field of its own (lighttpd writes `2011-12-25 17:09:20: (...)`)
    if !matches!(b.get(tend), None | Some(b' ') | Some(b'\t')) {
        return None;
    }
    h.ts = ts;
    h.time = (i, tend);
    let bsd = b[i].is_ascii_alphabetic();
    i = skip_spaces(b, tend);
    rest_of_header(line, i, h, bsd)
}

/// A line as `journalctl -o cat`-like exports and some relays write it, without a time:
/// `HOST PROG[PID]: msg` or `PROG[PID]: msg`. The caller gives it a time.
pub fn header_untimed(line: &str) -> Option<Header> {
    let h = rest_of_header(line, 0, Header::default(), false)?;
    h.program?;
    Some(h)
}

/// After the time: host and program. `bracketed_ok` allows the hostless `[prog]` form, which
/// only old BSD-stamped logs write (MongoDB writes `ISO-time [conn1] ...`).
fn rest_of_header(line: &str, mut i: usize, mut h: Header, bracketed_ok: bool) -> Option<Header> {
    let b = line.as_bytes();
    // `<auth.info>` BSD verbose priority
    if b.get(i) == Some(&b'<') {
        let e = token_end(b, i);
        if b[e - 1] == b'>' {
            i = skip_spaces(b, e);
        }
    }
    let e1 = token_end(b, i);
    if b.get(i) == Some(&b'[') && !bracketed_ok {
        return None;
    }
    if let Some((name, pid, e, module)) = program(b, i, e1) {
        // A host name never ends with ':' or has `[pid]`, so this is a program without host.
        h.program = Some(name);
        h.pid = pid;
        h.module = module;
        i = e;
    } else {
        if e1 > i {
            // a host name is neither a number (MySQL's thread id) nor bracketed
            let tok = &b[i..e1];
            if tok.iter().all(u8::is_ascii_digit) || tok[0] == b'[' {
                return None;
            }
            h.host = Some((i, e1));
        }
        i = skip_spaces(b, e1);
        let e2 = token_end(b, i);
        if let Some((name, pid, e, module)) = program(b, i, e2) {
            h.program = Some(name);
            h.pid = pid;
            h.module = module;
            i = e;
        }
    }
    i = skip_spaces(b, i);
    h.msg_full = i.min(b.len());
    // a relayed kernel prefix inside the message: `kernel:[  970.699396]:` / `kernel: [ 1.2] `
    if line[i..].starts_with("kernel:") {
        let j = skip_spaces(b, i + 7);
        if b.get(j) == Some(&b'[') {
            i = j;
        }
    }
    // kernel uptime `[ 1234.567890]`
    if b.get(i) == Some(&b'[') {
        if let Some(close) = memchr::memchr(b']', &b[i..]) {
            let inner = &b[i + 1..i + close];
            let trimmed: Vec<u8> = inner.iter().copied().filter(|c| *c != b' ').collect();
            if !trimmed.is_empty() && trimmed.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
                i += close + 1;
                if b.get(i) == Some(&b':') {
                    i += 1;
                }
                i = skip_spaces(b, i);
            } else if inner.starts_with(b"ID ") {
                // Solaris `[ID 800047 auth.info]`
                i = skip_spaces(b, i + close + 1);
            }
        }
    }
    h.msg = i.min(b.len());
    Some(h)
}

fn rfc5424(line: &str, mut i: usize, mut h: Header, tc: &mut TimeCtx) -> Option<Header> {
    let b = line.as_bytes();
    let tend = token_end(b, i);
    if &b[i..tend] != b"-" {
        let (ts, _) = timestamp(b, i, tc)?;
        h.ts = ts;
        h.time = (i, tend);
    }
    let mut fields = [(0usize, 0usize); 4];
    i = skip_spaces(b, tend);
    for f in fields.iter_mut() {
        let e = token_end(b, i);
        *f = (i, e);
        i = skip_spaces(b, e);
    }
    let nil = |r: (usize, usize)| &b[r.0..r.1] == b"-" || r.0 == r.1;
    if !nil(fields[0]) {
        h.host = Some(fields[0]);
    }
    if !nil(fields[1]) {
        h.program = Some(fields[1]);
    }
    if !nil(fields[2]) {
        h.pid = line[fields[2].0..fields[2].1].parse().ok();
    }
    // structured data: `-` or one or more `[...]` blocks (quoted values may contain `]`)
    if b.get(i) == Some(&b'-') {
        i += 1;
    } else {
        while b.get(i) == Some(&b'[') {
            let mut j = i + 1;
            let mut quoted = false;
            while let Some(&c) = b.get(j) {
                match c {
                    b'\\' => j += 1,
                    b'"' => quoted = !quoted,
                    b']' if !quoted => break,
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
        }
    }
    i = skip_spaces(b, i.min(b.len()));
    // UTF-8 BOM
    if line[i..].starts_with('\u{feff}') {
        i += 3;
    }
    h.msg = i;
    h.msg_full = i;
    Some(h)
}

/// Writes the header's fields onto the event.
pub fn apply(ev: &mut Event, line: &str, h: &Header) {
    ev.timestamp = h.ts;
    ev.time_text = Some((h.time.0 as u32, h.time.1 as u32));
    if let Some((s, e)) = h.host {
        ev.set_span(Field::HOST_NAME, s, e);
    }
    if let Some((s, e)) = h.program {
        ev.set_span(Field::PROCESS_NAME, s, e);
        ev.set_span(Field::LOG_SYSLOG_APPNAME, s, e);
    }
    if let Some(pid) = h.pid {
        ev.set(Field::PROCESS_PID, Val::Int(pid as i64));
    }
    if let Some(p) = h.pri {
        ev.set(Field::LOG_SYSLOG_PRIORITY, Val::Int(p as i64));
    }
    let msg = &line[h.msg_full.min(line.len())..];
    let msg = if h.msg_full == 0 && h.msg > 0 {
        &line[h.msg..]
    } else {
        msg
    };
    if !msg.is_empty() {
        set(ev, line, Field::MESSAGE, msg);
    }
    let _ = span;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc() -> TimeCtx {
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        )
    }

    fn parts(line: &str) -> (Option<&str>, Option<&str>, Option<u32>, &str) {
        let h = header(line, &mut tc()).unwrap();
        (
            h.host.map(|(s, e)| &line[s..e]),
            h.program.map(|(s, e)| &line[s..e]),
            h.pid,
            &line[h.msg..],
        )
    }

    #[test]
    fn classic_line() {
        let l = "Mar 14 00:00:01 web01 sshd[1234]: Failed password for root";
        assert_eq!(
            parts(l),
            (
                Some("web01"),
                Some("sshd"),
                Some(1234),
                "Failed password for root"
            )
        );
        let h = header(l, &mut tc()).unwrap();
        assert_eq!(h.ts, 1_773_446_401_000_000_000);
    }

    #[test]
    fn variants() {
        assert_eq!(
            parts("Mar  3 00:17:22 [sshd]: User root from 1.2.3.4 not allowed"),
            (
                None,
                Some("sshd"),
                None,
                "User root from 1.2.3.4 not allowed"
            )
        );
        assert_eq!(
            parts("Jun 25 23:53:34 [sshd] User root"),
            (None, Some("sshd"), None, "User root")
        );
        assert_eq!(
            parts("Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed x"),
            (Some("dusky"), Some("sshd"), Some(20878), "Failed x")
        );
        assert_eq!(
            parts("Feb  7 15:10:42 example pure-ftpd: (pam_unix) authentication failure"),
            (
                Some("example"),
                Some("pure-ftpd"),
                None,
                "(pam_unix) authentication failure"
            )
        );
        assert_eq!(
            parts("Mar 14 10:00:00 fw kernel: [ 1234.567890] [UFW BLOCK] IN=eth0"),
            (Some("fw"), Some("kernel"), None, "[UFW BLOCK] IN=eth0")
        );
        assert_eq!(
            parts("2026-03-14T10:00:00.123456+08:00 db1 sudo: alice : TTY=pts/0"),
            (Some("db1"), Some("sudo"), None, "alice : TTY=pts/0")
        );
        assert_eq!(
            parts("Nov 25 17:12:13 webmail pop(pam_unix)[4920]: authentication failure"),
            (
                Some("webmail"),
                Some("pop"),
                Some(4920),
                "authentication failure"
            )
        );
    }

    #[test]
    fn rfc5424_line() {
        let l = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su 77 ID47 [exampleSDID@32473 iut=\"3\" x=\"a]b\"] 'su root' failed";
        let h = header(l, &mut tc()).unwrap();
        assert_eq!(h.pri, Some(34));
        assert_eq!(
            &l[h.host.unwrap().0..h.host.unwrap().1],
            "mymachine.example.com"
        );
        assert_eq!(h.pid, Some(77));
        assert_eq!(&l[h.msg..], "'su root' failed");
        let l = "<13>1 - - - - - - hello";
        assert_eq!(&l[header(l, &mut tc()).unwrap().msg..], "hello");
    }

    #[test]
    fn not_syslog() {
        assert!(header(
            "192.0.2.1 - - [14/Mar/2026:00:00:01 +0000] \"GET /\"",
            &mut tc()
        )
        .is_none());
        assert!(header("hello world", &mut tc()).is_none());
    }
}
