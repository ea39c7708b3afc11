//! Framing and parsing: bytes → [`Event`].
//!
//! Second box of the data path (`sources → frame → parse → enrich → …`). [`input`] frames
//! files (plain, rotated, `.gz`, `.zst`) into lines with their byte offsets; [`Parser`] turns
//! each line into a normalised [`Event`]. Parsers are hand-written functions over one line's
//! text, allocation-light (fields are spans of the line), and never fail: a line no parser
//! understands becomes an event with `event.kind: unparsed`.
//!
//! Format detection is per stream and sticky: the parser that accepted the previous line is
//! tried first, the others after it, so a homogeneous file costs one attempt per line and a
//! mixed file (journal exports, concatenated logs) still parses. `--log-format` forces one.
//!
//! ```
//! use std::sync::Arc;
//! use tansa_event::{Field, Origin, Outcome};
//! use tansa_parse::{Format, Parser, time::TimeCtx};
//!
//! let origin = Arc::new(Origin::file("/var/log/auth.log", "web01"));
//! let mut p = Parser::new(Format::Auto, origin, TimeCtx::utc());
//! let mut out = Vec::new();
//! p.parse_line(bytes::Bytes::from_static(
//!     b"Mar 14 00:00:01 web01 sshd[1234]: Failed password for root from 203.0.113.9 port 4022 ssh2"),
//!     0, &mut out);
//! assert_eq!(out[0].outcome, Outcome::Failure);
//! assert_eq!(out[0].user_name().unwrap(), "root");
//! ```

mod audit;
pub mod cloud;
mod db;
mod firewall;
mod host;
pub mod input;
mod jsonl;
pub mod multiline;
mod services;
mod sshd;
pub mod syslog;
pub mod time;
mod util;
mod waf;
mod web;

use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use tansa_event::{Event, Kind, Nanos, Origin};

pub use time::TimeCtx;

/// A log format, as detected or forced with `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Detect per stream (sticky) and per line.
    Auto,
    Syslog,
    Access,
    NginxError,
    ApacheError,
    LighttpdError,
    Mysql,
    Postgres,
    Auditd,
    Json,
    Mongodb,
    Roundcube,
    Vsftpd,
    /// ModSecurity's native audit log (records joined by `--multiline modsec`).
    ModsecAudit,
}

/// The parsers tried in auto mode, in order.
const AUTO_ORDER: &[Format] = &[
    Format::Syslog,
    Format::Access,
    Format::Json,
    Format::Auditd,
    Format::NginxError,
    Format::ApacheError,
    Format::Mysql,
    Format::Postgres,
    Format::LighttpdError,
    Format::Mongodb,
    Format::Roundcube,
    Format::Vsftpd,
    Format::ModsecAudit,
];

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Syslog => "syslog",
            Format::Access => "access",
            Format::NginxError => "nginx-error",
            Format::ApacheError => "apache-error",
            Format::LighttpdError => "lighttpd-error",
            Format::Mysql => "mysql",
            Format::Postgres => "postgres",
            Format::Auditd => "auditd",
            Format::Json => "json",
            Format::Mongodb => "mongodb",
            Format::Roundcube => "roundcube",
            Format::Vsftpd => "vsftpd",
            Format::ModsecAudit => "modsec-audit",
        }
    }

    /// All format names accepted by `--log-format`.
    pub fn names() -> Vec<&'static str> {
        std::iter::once(Format::Auto)
            .chain(AUTO_ORDER.iter().copied())
            .map(Format::name)
            .collect()
    }
}

/// An unknown `--log-format` name.
#[derive(Debug, thiserror::Error)]
#[error("unknown log format `{0}` (known: {known})", known = Format::names().join(", "))]
pub struct UnknownFormat(String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        std::iter::once(Format::Auto)
            .chain(AUTO_ORDER.iter().copied())
            .find(|f| {
                f.name() == s
                    || (s == "nginx" && *f == Format::Access)
                    || (s == "apache" && *f == Format::Access)
            })
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// Counters of one stream, by outcome of parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    pub bytes: u64,
    pub unparsed: u64,
    /// Lines per format that parsed them, in [`Format`] order.
    pub by_format: Vec<(Format, u64)>,
}

impl Stats {
    fn count(&mut self, f: Format) {
        match self.by_format.iter_mut().find(|(x, _)| *x == f) {
            Some((_, n)) => *n += 1,
            None => self.by_format.push((f, 1)),
        }
    }

    /// The format that parsed most lines.
    pub fn main_format(&self) -> Option<Format> {
        self.by_format
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(f, _)| *f)
    }

    pub fn merge(&mut self, o: &Stats) {
        self.lines += o.lines;
        self.bytes += o.bytes;
        self.unparsed += o.unparsed;
        for (f, n) in &o.by_format {
            match self.by_format.iter_mut().find(|(x, _)| x == f) {
                Some((_, m)) => *m += n,
                None => self.by_format.push((*f, *n)),
            }
        }
    }
}

/// Per-stream state that parsers share.
pub(crate) struct Ctx {
    pub time: TimeCtx,
    pub sshd: sshd::State,
    pub audit: audit::Assembler,
    pub mongo: services::MongoState,
    /// Time of the last line that had one (for lines without).
    pub last_ts: Option<Nanos>,
    /// The stream is a MySQL slow query log (statement lines follow `# ...` headers).
    pub mysql_slow: bool,
}

/// Parses the lines of one stream (a file, a syslog connection, an agent's file).
pub struct Parser {
    forced: Option<Format>,
    preferred: Format,
    origin: Arc<Origin>,
    ctx: Ctx,
    ingested: Nanos,
    stats: Stats,
    /// Joins multi-line records before parsing (None: a line is a record).
    multiline: Option<multiline::Joiner>,
}

impl Parser {
    /// A parser for one stream. `Format::Auto` detects; any other format is forced.
    pub fn new(format: Format, origin: Arc<Origin>, time: TimeCtx) -> Self {
        Parser {
            forced: (format != Format::Auto).then_some(format),
            preferred: if format == Format::Auto {
                Format::Syslog
            } else {
                format
            },
            origin,
            ctx: Ctx {
                time,
                sshd: Default::default(),
                audit: Default::default(),
                mongo: Default::default(),
                last_ts: None,
                mysql_slow: false,
            },
            ingested: tansa_event::now_nanos(),
            stats: Stats::default(),
            multiline: None,
        }
    }

    /// Joins multi-line records (stack traces, slow-log entries) into one event each.
    pub fn set_multiline(&mut self, spec: multiline::Spec) {
        self.multiline = Some(multiline::Joiner::new(spec));
    }

    /// Parses a pending multi-line record no line has come for within its timeout (`now`:
    /// Unix ns). Live streams call this on their ticks.
    pub fn flush_idle(&mut self, now: Nanos, out: &mut Vec<Event>) {
        if let Some((r, o)) = self.multiline.as_mut().and_then(|j| j.idle(now)) {
            self.parse_record(r, o, out);
        }
    }

    /// The offset of a multi-line record still being joined: the stream's lines below it
    /// are parsed, the ones from it on are not yet.
    pub fn pending_offset(&self) -> Option<u64> {
        self.multiline.as_ref().and_then(|j| j.pending())
    }

    /// Sets the `event.ingested` time given to the following lines.
    pub fn set_ingested(&mut self, t: Nanos) {
        self.ingested = t;
    }

    /// Moves the reference "now" of year inference (a long-running stream crosses new year).
    pub fn set_now(&mut self, now: jiff::Timestamp) {
        self.ctx.time = TimeCtx::new(self.ctx.time.tz().clone(), now);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Replaces the counters (used after replaying context lines that belong to another
    /// worker's chunk, so that they are not counted twice).
    pub fn set_stats(&mut self, stats: Stats) {
        self.stats = stats;
    }

    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    /// Parses one line (without its newline) found at byte `offset`, appending the events
    /// it completes to `out` (usually one; auditd records are held until their group ends).
    pub fn parse_line(&mut self, raw: Bytes, offset: u64, out: &mut Vec<Event>) {
        self.stats.lines += 1;
        self.stats.bytes += raw.len() as u64 + 1;
        if let Some(mut j) = self.multiline.take() {
            let mut done = Vec::new();
            j.push(raw, offset, self.ingested, &mut done);
            self.multiline = Some(j);
            for (r, o) in done {
                self.parse_record(r, o, out);
            }
            return;
        }
        self.parse_record(raw, offset, out);
    }

    /// One record (a line, or joined lines).
    fn parse_record(&mut self, raw: Bytes, offset: u64, out: &mut Vec<Event>) {
        // a cloud provider's export: one event per record, each at its own offset
        if matches!(self.forced, None | Some(Format::Json))
            && matches!(raw.first(), Some(b'{' | b'['))
            && raw.len() > 12
            && (raw[0] == b'[' || raw[..12].eq_ignore_ascii_case(b"{\"records\":["))
        {
            if let Some(ranges) = cloud::records(&raw) {
                let n = ranges.len();
                for (i, (s, e)) in ranges.into_iter().enumerate() {
                    let at = out.len();
                    self.parse_one(raw.slice(s..e), offset + s as u64, out);
                    // the last record keeps the line's end (`]}`): a checkpoint taken after
                    // it is the line's end, not a point inside it
                    if i + 1 == n && out.len() == at + 1 {
                        out[at].raw = tansa_event::Text::new(raw.slice(s..));
                    }
                }
                return;
            }
        }
        self.parse_one(raw, offset, out);
    }

    fn parse_one(&mut self, raw: Bytes, offset: u64, out: &mut Vec<Event>) {
        let text = tansa_event::Text::new(raw);
        let line = text.as_str();
        let line = line.strip_suffix('\r').unwrap_or(line);
        // the event is built in place at the end of `out` (events are large: no moves)
        let idx = out.len();
        out.push(fresh(&text, &self.origin, self.ingested, offset));
        let mut parsed = None;
        if let Some(f) = self.forced {
            if self.try_format(f, &mut out[idx], line) {
                parsed = Some(f);
            }
        } else if self.try_format(self.preferred, &mut out[idx], line) {
            parsed = Some(self.preferred);
        } else {
            for &f in AUTO_ORDER {
                if f == self.preferred {
                    continue;
                }
                // a failed attempt may have set fields: start from a clean event
                out[idx] = fresh(&text, &self.origin, self.ingested, offset);
                if self.try_format(f, &mut out[idx], line) {
                    parsed = Some(f);
                    self.preferred = f;
                    break;
                }
            }
        }
        match parsed {
            Some(f) => {
                self.stats.count(f);
                self.ctx.last_ts = Some(out[idx].timestamp);
            }
            None => {
                let ev = &mut out[idx];
                *ev = fresh(&text, &self.origin, self.ingested, offset);
                ev.kind = Kind::Unparsed;
                // keep file order in time: an unparsed line sorts after the previous line
                if let Some(t) = self.ctx.last_ts {
                    ev.timestamp = t;
                }
                self.stats.unparsed += 1;
            }
        }
        if let Some(users) = self.ctx.sshd.deferred.take() {
            let d = derived_failure(&out[idx], users);
            out.insert(idx, d);
        }
        if parsed == Some(Format::Auditd) {
            if let Some(ev) = out.pop() {
                self.ctx.audit.push(ev, out);
            }
        }
    }

    /// Flushes events held for grouping (end of stream).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if let Some((r, o)) = self.multiline.as_mut().and_then(|j| j.take()) {
            self.parse_record(r, o, out);
        }
        self.ctx.audit.flush(out);
    }

    fn try_format(&mut self, f: Format, ev: &mut Event, line: &str) -> bool {
        if line.is_empty() {
            return false;
        }
        let ctx = &mut self.ctx;
        match f {
            Format::Auto => false,
            Format::Syslog => parse_syslog(ev, line, ctx),
            Format::Access => web::access(ev, line, &mut ctx.time),
            Format::NginxError => web::nginx_error(ev, line, 0, &mut ctx.time),
            Format::ApacheError => web::apache_error(ev, line, &mut ctx.time),
            Format::LighttpdError => web::lighttpd_error(ev, line, 0, &mut ctx.time),
            Format::Mysql => {
                let t = ctx.last_ts;
                db::mysql_stream(ev, line, &mut ctx.time, &mut ctx.mysql_slow, t)
            }
            Format::Postgres => db::postgres(ev, line, &mut ctx.time),
            Format::Auditd => audit::record(ev, line),
            Format::Json => jsonl::parse(ev, line, &mut ctx.time),
            Format::Mongodb => services::mongodb(ev, line, ctx),
            Format::Roundcube => services::roundcube_file(ev, line, &mut ctx.time),
            Format::Vsftpd => services::vsftpd_file(ev, line, &mut ctx.time),
            Format::ModsecAudit => waf::native(ev, line, &mut ctx.time),
        }
    }
}

/// The failed attempts a success line makes certain (PAM failures for other accounts on the
/// same sshd connection, which sshd itself never reported): one more event for the same line,
/// tagged `derived`, so that failures are counted without calling a success a failure.
fn derived_failure(ev: &Event, users: String) -> Event {
    use tansa_event::{EventType, Field, Outcome, Val};
    let mut d = ev.clone();
    d.outcome = Outcome::Failure;
    d.event_type = EventType::Denied;
    d.fields
        .retain(|(f, _)| *f != Field::USER_NAME && *f != Field::SSH_SIGNATURE);
    d.set(Field::USER_NAME, Val::Str(users.into()));
    d.set(
        Field::EVENT_REASON,
        Val::Str("failed attempts for other users on this connection, reported only by PAM".into()),
    );
    d.set(Field::TAGS, Val::Str("derived".into()));
    d
}

/// Programs accepted in syslog lines without a time.
const KNOWN_PROGRAMS: &[&str] = &[
    "sshd",
    "sshd-session",
    "sudo",
    "su",
    "dropbear",
    "CRON",
    "cron",
    "systemd-logind",
    "login",
    "useradd",
    "usermod",
    "userdel",
    "groupadd",
    "passwd",
    "kernel",
    "nginx",
    "mysqld",
    "dovecot",
    "postfix/smtpd",
    "vsftpd",
    "proftpd",
    "haproxy",
    "roundcube",
    "openvpn",
];

/// A clean event for a line already validated.
fn fresh(text: &tansa_event::Text, origin: &Arc<Origin>, ingested: Nanos, offset: u64) -> Event {
    let mut ev = Event::new(Bytes::new(), origin.clone(), ingested);
    ev.raw = text.clone();
    ev.offset = offset;
    ev
}

/// A syslog line: header, then the program's parser.
/// Log levels an application writes after its timestamp.
const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "SEVERE", "FATAL", "CRITICAL",
];

fn parse_syslog(ev: &mut Event, line: &str, ctx: &mut Ctx) -> bool {
    let h = match syslog::header(line, &mut ctx.time) {
        Some(h) => h,
        None => {
            // no time: accepted only for the programs this module knows, so that free text
            // does not pass for syslog
            let Some(h) = syslog::header_untimed(line) else {
                return false;
            };
            let Some((s, e)) = h.program else {
                return false;
            };
            if !KNOWN_PROGRAMS.contains(&&line[s..e]) {
                return false;
            }
            let mut h = h;
            h.ts = ctx.last_ts.unwrap_or(ev.ingested);
            h
        }
    };
    // `2026-03-14 10:00:20.412 ERROR [thread] logger : message`: an application's log (Java,
    // Python, Go loggers), whose level stands where syslog has the host
    if let Some((s, e)) = h.host {
        let word = &line[s..e];
        if LEVELS.iter().any(|l| word.eq_ignore_ascii_case(l)) {
            ev.timestamp = h.ts;
            ev.time_text = Some((h.time.0 as u32, h.time.1 as u32));
            ev.set_span(tansa_event::Field::LOG_LEVEL, s, e);
            let rest = line[e..].trim_start();
            if !rest.is_empty() {
                util::set(ev, line, tansa_event::Field::MESSAGE, rest);
            }
            ev.dataset = "app";
            return true;
        }
    }
    syslog::apply(ev, line, &h);
    if h.time.1 == 0 {
        ev.time_text = None;
    }
    ev.dataset = "syslog";
    let msg = &line[h.msg..];
    let prog = h.program.map(|(s, e)| &line[s..e]).unwrap_or("");
    // `su(pam_unix)[123]: ...`: the PAM module wrote the message (legacy Linux-PAM)
    if let Some((s, e)) = h.module.filter(|(s, e)| line[*s..*e].starts_with("pam")) {
        ev.set_span(tansa_event::Field::LOG_LOGGER, s, e);
        let (c, o) = (ev.category, ev.outcome);
        host::pam(ev, line, msg, prog);
        if ev.category != c || ev.outcome != o {
            return true;
        }
    }
    match prog {
        "sshd" | "sshd-session" => sshd::parse(ev, line, msg, h.pid, &mut ctx.sshd),
        "sudo" => host::sudo(ev, line, msg),
        "su" => host::su(ev, line, msg),
        "useradd" | "usermod" | "userdel" | "groupadd" | "groupdel" | "groupmod" | "gpasswd"
        | "passwd" | "chpasswd" | "chage" | "chsh" | "chfn" | "adduser" | "deluser"
        | "addgroup" | "delgroup" => host::account(ev, line, prog, msg),
        "CRON" | "cron" | "crond" | "crontab" | "anacron" => host::cron(ev, line, prog, msg),
        "systemd-logind" => host::logind(ev, line, msg),
        "login" => host::login(ev, line, msg),
        "kernel" => firewall::kernel(ev, line, msg),
        "mysqld" | "mariadbd" | "mysqld_safe" | "mariadb" | "mysql" => {
            db::mysql_in_syslog(ev, line, h.msg, &mut ctx.time)
        }
        "postgres" | "postgresql" => db::postgres_msg(ev, line, msg),
        "haproxy" => {
            web::haproxy(ev, line, msg);
        }
        "nginx" | "lighttpd" => {
            web::error_in_syslog(ev, line, &h, &mut ctx.time);
        }
        _ if prog == "apache2" || prog.starts_with("httpd") => {
            web::apache_body(ev, line, msg);
        }
        "audit" | "audispd" | "auditd" => {
            if audit::record(ev, line) {
                ev.dataset = "auditd";
            }
        }
        "firewalld" => firewall::firewalld(ev, line, msg),
        _ => services::dispatch(ev, line, prog, msg, &h, ctx),
    }
    if ev.category == tansa_event::Category::None
        && (msg.starts_with("pam_") || msg.starts_with("(pam_unix)"))
    {
        host::pam(ev, line, msg, prog);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use tansa_event::{Field, Outcome};

    fn parse_all(lines: &[&str]) -> (Vec<Event>, Stats) {
        let mut p = Parser::new(
            Format::Auto,
            Arc::new(Origin::file("/x", "h")),
            TimeCtx::new(
                jiff::tz::TimeZone::UTC,
                "2026-03-15T00:00:00Z".parse().unwrap(),
            ),
        );
        let mut out = vec![];
        for (i, l) in lines.iter().enumerate() {
            p.parse_line(
                Bytes::copy_from_slice(l.as_bytes()),
                i as u64 * 100,
                &mut out,
            );
        }
        p.finish(&mut out);
        (out, p.stats().clone())
    }

    #[test]
    fn mixed_stream_and_unparsed_lines_are_kept() {
        let (ev, st) = parse_all(&[
            "Mar 14 00:00:01 web01 sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2",
            "this is not a log line",
            r#"203.0.113.9 - - [14/Mar/2026:00:00:02 +0000] "GET / HTTP/1.1" 200 1 "-" "x""#,
            "",
        ]);
        assert_eq!(ev.len(), 4);
        assert_eq!(st.lines, 4);
        assert_eq!(st.unparsed, 2);
        assert_eq!(ev[0].outcome, Outcome::Failure);
        assert_eq!(ev[1].kind, Kind::Unparsed);
        assert_eq!(ev[1].timestamp, ev[0].timestamp);
        assert_eq!(ev[1].offset, 100);
        assert_eq!(ev[2].get_str(Field::URL_ORIGINAL).unwrap(), "/");
        assert_eq!(ev[3].kind, Kind::Unparsed);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let mut p = Parser::new(Format::Auto, Arc::new(Origin::default()), TimeCtx::utc());
        let mut out = vec![];
        p.parse_line(
            Bytes::from_static(b"Mar 14 00:00:01 h sshd[1]: Invalid user \xff\xfe from 192.0.2.1"),
            0,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].source_ip.unwrap().to_string(), "192.0.2.1");
        assert!(out[0].user_name().unwrap().contains('\u{fffd}'));
    }

    #[test]
    fn format_names_round_trip() {
        for n in Format::names() {
            assert_eq!(n.parse::<Format>().unwrap().name(), n);
        }
        assert!("bogus".parse::<Format>().is_err());
    }
}
