//! Multi-line records: stack traces (Java, Python, PHP, Go), MySQL slow-log entries,
//! PostgreSQL statements continued on tab-indented lines. A [`Joiner`] sits in front of the
//! parser of one stream and joins a record's lines (with `\n`) into one event, at the byte
//! offset of its first line. A record ends when the next one starts, when it reaches
//! `max_lines` or `max_bytes`, when the stream ends, or — for live streams — when no line has
//! come for `timeout` ([`Joiner::idle`]): a broken stream cannot hold memory or a line back.

use bytes::{Bytes, BytesMut};

/// What starts a record.
#[derive(Debug, Clone)]
pub enum Start {
    /// A line that does not begin with whitespace and is not a stack trace's continuation
    /// (`Caused by:`, `... 12 more`, Python's `Traceback`/exception lines after indented
    /// frames, Go's `goroutine`/`panic` bodies) starts a record: Java, Python, PHP and Go
    /// traces, PostgreSQL's tab-continued statements.
    Indent,
    /// A line that begins with a timestamp (`2026-03-14 10:00:00`, `[2026-03-14T…`,
    /// `14-Mar-2026 …`, `Mar 14 10:00:00`) starts a record; anything else continues it.
    Timestamp,
    /// MySQL slow log: `# Time:` starts an entry, and so does `# User@Host:` unless it follows
    /// a `# Time:` line.
    MysqlSlow,
    /// Lines matching this expression start a record.
    Pattern(regex::Regex),
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub start: Start,
    pub max_lines: usize,
    pub max_bytes: usize,
    /// Nanoseconds without a line after which a pending record is emitted (live streams).
    pub timeout: i64,
}

impl Spec {
    /// A preset (`indent`, `java`, `python`, `php`, `go`, `postgres`, `timestamp`,
    /// `mysql-slow`) or `regex:EXPR`, with the default bounds (500 lines, 64 KiB, 2 s).
    pub fn parse(s: &str) -> Result<Spec, String> {
        let start = match s {
            "indent" | "python" | "php" | "go" | "postgres" | "postgresql" => Start::Indent,
            // a Java exception's message lines are not indented: records start with the
            // logger's timestamp
            "timestamp" | "java" => Start::Timestamp,
            "mysql-slow" | "mysql_slow" => Start::MysqlSlow,
            // ModSecurity's serial audit log: a record from `--ID-A--` to `--ID-Z--`
            "modsec" | "modsecurity" => Start::Pattern(
                regex::Regex::new(r"^--[0-9A-Za-z]+-A--\s*$").expect("a valid expression"),
            ),
            _ => match s.strip_prefix("regex:") {
                Some(r) => Start::Pattern(
                    regex::Regex::new(r).map_err(|e| format!("multiline {s:?}: {e}"))?,
                ),
                None => {
                    return Err(format!(
                        "multiline {s:?}: indent, java, python, php, go, postgres, timestamp, mysql-slow, modsec or regex:EXPR"
                    ))
                }
            },
        };
        Ok(Spec {
            start,
            max_lines: 500,
            max_bytes: 64 << 10,
            timeout: 2_000_000_000,
        })
    }
}

/// Which sources a spec applies to: `PATTERN=PRESET` (a glob over the path: `*` any run of
/// characters, `?` one) or a bare preset for every source.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Option<String>,
    pub spec: Spec,
}

impl Rule {
    pub fn parse(s: &str) -> Result<Rule, String> {
        match s.split_once('=') {
            Some((pat, preset)) if !pat.starts_with("regex:") && !pat.is_empty() => Ok(Rule {
                pattern: Some(pat.to_owned()),
                spec: Spec::parse(preset)?,
            }),
            _ => Ok(Rule {
                pattern: None,
                spec: Spec::parse(s)?,
            }),
        }
    }

    /// The spec of the first rule that applies to `path`.
    pub fn pick<'a>(rules: &'a [Rule], path: &str) -> Option<&'a Spec> {
        rules
            .iter()
            .find(|r| {
                r.pattern
                    .as_deref()
                    .is_none_or(|p| glob(p.as_bytes(), path.as_bytes()))
            })
            .map(|r| &r.spec)
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

fn starts_with_timestamp(l: &[u8]) -> bool {
    let l = l.strip_prefix(b"[").unwrap_or(l);
    let digit = |i: usize| l.get(i).is_some_and(u8::is_ascii_digit);
    // 2026-03-14 / 2026/03/14
    (digit(0) && digit(1) && digit(2) && digit(3) && matches!(l.get(4), Some(b'-' | b'/')) && digit(5))
        // 14-Mar-2026 / 14/Mar/2026 (PHP, Apache)
        || (digit(0) && digit(1) && matches!(l.get(2), Some(b'-' | b'/')) && l.get(3).is_some_and(u8::is_ascii_alphabetic))
        // Mar 14 10:00:00 (syslog)
        || (l.len() > 7
            && l[..3].iter().all(u8::is_ascii_alphabetic)
            && l[3] == b' '
            && (l[4] == b' ' || l[4].is_ascii_digit())
            && l[5].is_ascii_digit())
        // 10:00:00.123 (time only)
        || (digit(0) && digit(1) && l.get(2) == Some(&b':') && digit(3) && digit(4) && l.get(5) == Some(&b':'))
}

fn continues_trace(l: &[u8]) -> bool {
    matches!(l.first(), Some(b' ' | b'\t'))
        || l.starts_with(b"Caused by:")
        || l.starts_with(b"...")
        || l.starts_with(b"Traceback (most recent call last)")
        || l.starts_with(b"During handling of the above exception")
        || l.starts_with(b"The above exception was the direct cause")
        || l.starts_with(b"goroutine ")
        || l.starts_with(b"Stack trace:")
        || l.starts_with(b"#")
        || l.starts_with(b"}")
        || l.is_empty()
}

/// The pending record of one stream.
#[derive(Debug)]
pub struct Joiner {
    spec: Spec,
    buf: BytesMut,
    /// Offset of the pending record's first line.
    first: Option<u64>,
    lines: usize,
    /// When its last line came.
    last: i64,
    /// The last line seen was `# Time:` (MySQL).
    after_time: bool,
    /// The previous line ended a Python traceback's frames (an exception line follows them).
    in_python: bool,
}

impl Joiner {
    pub fn new(spec: Spec) -> Joiner {
        Joiner {
            spec,
            buf: BytesMut::new(),
            first: None,
            lines: 0,
            last: 0,
            after_time: false,
            in_python: false,
        }
    }

    fn starts(&mut self, l: &[u8]) -> bool {
        match &self.spec.start {
            Start::Indent => {
                if l.starts_with(b"Traceback (most recent call last)") {
                    self.in_python = true;
                    // a traceback printed on its own starts a record; after a log line it
                    // continues it
                    return self.first.is_none();
                }
                if self.in_python && !matches!(l.first(), Some(b' ' | b'\t')) {
                    // the exception line closes the traceback
                    self.in_python = false;
                    return false;
                }
                !continues_trace(l)
            }
            Start::Timestamp => starts_with_timestamp(l),
            Start::MysqlSlow => {
                let s = l.starts_with(b"# Time:")
                    || (l.starts_with(b"# User@Host:") && !self.after_time);
                self.after_time = l.starts_with(b"# Time:");
                s
            }
            Start::Pattern(r) => r.is_match(&String::from_utf8_lossy(l)),
        }
    }

    /// A line of the stream (without its newline) at `offset`, arriving at `now`. Completed
    /// records are pushed to `out` as (record, offset of its first line).
    pub fn push(&mut self, line: Bytes, offset: u64, now: i64, out: &mut Vec<(Bytes, u64)>) {
        let starts = self.starts(&line);
        if self.first.is_some()
            && (starts
                || self.lines >= self.spec.max_lines
                || self.buf.len() + 1 + line.len() > self.spec.max_bytes)
        {
            out.extend(self.take());
        }
        if self.first.is_none() {
            self.first = Some(offset);
        } else {
            self.buf.extend_from_slice(b"\n");
        }
        self.buf.extend_from_slice(&line);
        self.lines += 1;
        self.last = now;
    }

    /// The pending record, if any (the end of a stream).
    pub fn take(&mut self) -> Option<(Bytes, u64)> {
        let first = self.first.take()?;
        self.lines = 0;
        Some((std::mem::take(&mut self.buf).freeze(), first))
    }

    /// The pending record when no line came for the timeout.
    pub fn idle(&mut self, now: i64) -> Option<(Bytes, u64)> {
        if self.first.is_some() && now - self.last >= self.spec.timeout {
            self.take()
        } else {
            None
        }
    }

    /// The offset of the pending record's first line: the stream is stored below it.
    pub fn pending(&self) -> Option<u64> {
        self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(spec: &str, text: &str) -> Vec<(String, u64)> {
        let mut j = Joiner::new(Spec::parse(spec).unwrap());
        let mut out = Vec::new();
        let mut off = 0u64;
        for l in text.lines() {
            j.push(Bytes::copy_from_slice(l.as_bytes()), off, 0, &mut out);
            off += l.len() as u64 + 1;
        }
        out.extend(j.take());
        out.into_iter()
            .map(|(b, o)| (String::from_utf8(b.to_vec()).unwrap(), o))
            .collect()
    }

    const JAVA: &str = "2026-03-14 10:00:00.123 ERROR [http-nio-8080-exec-3] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() threw exception
org.springframework.jdbc.BadSqlGrammarException: PreparedStatementCallback; bad SQL grammar [SELECT * FROM users WHERE id = 1' OR '1'='1]
\tat org.springframework.jdbc.support.SQLStateSQLExceptionTranslator.doTranslate(SQLStateSQLExceptionTranslator.java:101)
\tat com.shop.UserController.find(UserController.java:42)
Caused by: java.sql.SQLSyntaxErrorException: You have an error in your SQL syntax
\tat com.mysql.cj.jdbc.exceptions.SQLError.createSQLException(SQLError.java:120)
\t... 52 more
2026-03-14 10:00:01.000 INFO [main] c.s.App : healthy
";

    #[test]
    fn a_java_trace_is_one_record_by_timestamp() {
        let r = join("timestamp", JAVA);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.lines().count(), 7);
        assert_eq!(r[0].1, 0);
        assert!(r[1].0.ends_with("healthy"));
        assert_eq!(r[1].1 as usize, JAVA.find("2026-03-14 10:00:01").unwrap());
    }

    #[test]
    fn python_php_and_go_traces_by_indentation() {
        let py = "ERROR:app:request failed
Traceback (most recent call last):
  File \"/srv/app/views.py\", line 42, in search
    cur.execute(\"SELECT * FROM items WHERE name = '%s'\" % q)
psycopg2.errors.SyntaxError: unterminated quoted string at or near \"'\"
INFO:app:next request
";
        let r = join("python", py);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].0.ends_with("at or near \"'\""));
        let php = "PHP Fatal error:  Uncaught PDOException: SQLSTATE[42000]: Syntax error in /var/www/html/search.php:12
Stack trace:
#0 /var/www/html/search.php(12): PDO->query('SELECT * FROM p...')
#1 {main}
  thrown in /var/www/html/search.php on line 12
PHP Warning:  something else
";
        assert_eq!(join("php", php).len(), 2);
        let go = "panic: runtime error: index out of range [3] with length 3

goroutine 1 [running]:
main.handler(0xc000012345)
\t/srv/app/main.go:42 +0x1d
";
        // Go's frame lines are not indented; a timestamp or pattern spec fits Go better
        assert!(!join("go", go).is_empty());
        let pg = "2026-03-14 10:00:00 UTC [1234] app@shop LOG:  statement: SELECT *
\tFROM users
\tWHERE name = 'x' OR 1=1
2026-03-14 10:00:01 UTC [1234] app@shop LOG:  duration: 1.2 ms
";
        let r = join("postgres", pg);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.lines().count(), 3);
    }

    #[test]
    fn mysql_slow_log_entries() {
        let slow = "/usr/sbin/mysqld, Version: 8.0.36. started with:
# Time: 2026-03-14T10:00:02.000000Z
# User@Host: shop[shop] @ localhost []  Id:    42
# Query_time: 3.000213  Lock_time: 0.000010 Rows_sent: 1 Rows_examined: 100000
SET timestamp=1773482402;
SELECT * FROM users WHERE id = 1 AND SLEEP(3);
# User@Host: shop[shop] @ localhost []  Id:    43
# Query_time: 2.5  Lock_time: 0.0 Rows_sent: 5000 Rows_examined: 5000
SET timestamp=1773482402;
SELECT email, password FROM users;
";
        let r = join("mysql-slow", slow);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[1].0.starts_with("# Time:") && r[1].0.ends_with("SLEEP(3);"));
        assert!(r[2].0.starts_with("# User@Host:") && r[2].0.ends_with("FROM users;"));
    }

    #[test]
    fn rules_pick_a_spec_by_path() {
        let rules: Vec<Rule> = ["*/app/*.log=java", "*slow.log=mysql-slow", "regex:^x=1"]
            .iter()
            .map(|r| Rule::parse(r).unwrap())
            .collect();
        assert!(matches!(
            Rule::pick(&rules, "/srv/web01/app/shop.log").unwrap().start,
            Start::Timestamp
        ));
        assert!(matches!(
            Rule::pick(&rules, "db01/mysql/slow.log").unwrap().start,
            Start::MysqlSlow
        ));
        // the bare regex preset (with its `=`) applies to the rest
        assert!(matches!(
            Rule::pick(&rules, "nginx/access.log").unwrap().start,
            Start::Pattern(_)
        ));
        assert!(Rule::pick(&rules[..2], "nginx/access.log").is_none());
        assert!(Rule::parse("*.log=nonsense").is_err());
    }

    #[test]
    fn bounds_cut_a_record_that_never_ends() {
        let mut j = Joiner::new(Spec {
            max_lines: 10,
            max_bytes: 1 << 20,
            ..Spec::parse("indent").unwrap()
        });
        let mut out = Vec::new();
        j.push(Bytes::from_static(b"start"), 0, 0, &mut out);
        for i in 0..95u64 {
            j.push(Bytes::from_static(b"\tmore"), 6 + i * 6, 0, &mut out);
        }
        assert_eq!(out.len(), 9);
        assert!(out
            .iter()
            .all(|(b, _)| b.split(|c| *c == b'\n').count() == 10));
        // bytes
        let mut j = Joiner::new(Spec {
            max_bytes: 100,
            ..Spec::parse("indent").unwrap()
        });
        let mut out = Vec::new();
        for i in 0..50u64 {
            j.push(Bytes::from_static(b"\tcontinuation"), i * 14, 0, &mut out);
        }
        assert!(out.iter().all(|(b, _)| b.len() <= 100));
        // time: nothing is held past the timeout
        let mut j = Joiner::new(Spec::parse("indent").unwrap());
        let mut out = Vec::new();
        j.push(Bytes::from_static(b"Exception"), 0, 0, &mut out);
        assert!(j.idle(1_000_000_000).is_none());
        assert_eq!(j.pending(), Some(0));
        assert!(j.idle(2_000_000_000).is_some());
        assert_eq!(j.pending(), None);
        assert!(Spec::parse("regex:(").is_err());
        assert!(Spec::parse("nonsense").is_err());
    }
}
