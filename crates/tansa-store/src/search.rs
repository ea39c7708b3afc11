//! `tansa search`: a Lucene/Kibana-style query language compiled to a SQL `WHERE` clause
//! with bound parameters (user text never becomes SQL text).
//!
//! ```text
//! source.ip:203.0.113.9 AND event.outcome:failure
//! user.name:root -host.name:db01
//! url.original:*UNION*            wildcards * and ?
//! source.ip:45.141.87.0/24        CIDR blocks on address fields (IPv4 and IPv6:
//! source.ip:2001:db8:40::/48       source.ip:2001:db8:40::/48)
//! http.response.status_code:>=500 http.response.status_code:[400 TO 499]
//! "Accepted publickey"            free text: the raw line contains it (case-insensitive)
//! (user.name:admin OR user.name:oracle) AND NOT event.outcome:success
//! _exists_:url.original           user.name:*   (the field is present)
//! ```
//! Terms next to each other are joined with AND. Field names are the ECS names
//! (`source.ip`, `user.name`, …) or the column names; other names are looked up in the
//! event's `fields` JSON.

use crate::columns::{column, Kind};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Param {
    Text(String),
    Int(i64),
}

/// A compiled query: `WHERE` text with `?` placeholders, and their values in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
}

/// A query that does not parse or names something impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("search query, at character {at}: {msg}")]
pub struct SearchError {
    pub at: usize,
    pub msg: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// A term: optional field, value text, whether the value was quoted.
    Term {
        field: Option<String>,
        value: String,
        quoted: bool,
        at: usize,
    },
}

fn err<T>(at: usize, msg: impl Into<String>) -> Result<T, SearchError> {
    Err(SearchError {
        at,
        msg: msg.into(),
    })
}

fn lex(q: &str) -> Result<Vec<Tok>, SearchError> {
    let b: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push(Tok::LParen);
                i += 1;
                continue;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
                continue;
            }
            '-' | '!' if i + 1 < b.len() && !b[i + 1].is_whitespace() => {
                out.push(Tok::Not);
                i += 1;
                continue;
            }
            _ => {}
        }
        let start = i;
        // a word, or field:value, or field:"quoted", or "quoted", or field:[a TO b]
        let (field, value, quoted) = if c == '"' {
            let (v, next) = quoted_str(&b, i)?;
            i = next;
            (None, v, true)
        } else {
            let mut word = String::new();
            while i < b.len() && !b[i].is_whitespace() && !matches!(b[i], '(' | ')' | ':' | '"') {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                word.push(b[i]);
                i += 1;
            }
            if i < b.len() && b[i] == ':' && !word.is_empty() {
                i += 1;
                if i < b.len() && b[i] == '"' {
                    let (v, next) = quoted_str(&b, i)?;
                    i = next;
                    (Some(word), v, true)
                } else if i < b.len() && (b[i] == '[' || b[i] == '{') {
                    let close = if b[i] == '[' { ']' } else { '}' };
                    let mut v = String::new();
                    while i < b.len() && b[i] != close {
                        v.push(b[i]);
                        i += 1;
                    }
                    if i == b.len() {
                        return err(start, format!("range without closing `{close}`"));
                    }
                    v.push(close);
                    i += 1;
                    (Some(word), v, false)
                } else {
                    let mut v = String::new();
                    while i < b.len() && !b[i].is_whitespace() && !matches!(b[i], '(' | ')') {
                        if b[i] == '\\' && i + 1 < b.len() {
                            i += 1;
                        }
                        v.push(b[i]);
                        i += 1;
                    }
                    if v.is_empty() {
                        return err(start, format!("`{word}:` has no value"));
                    }
                    (Some(word), v, false)
                }
            } else {
                match word.as_str() {
                    "AND" | "&&" => {
                        out.push(Tok::And);
                        continue;
                    }
                    "OR" | "||" => {
                        out.push(Tok::Or);
                        continue;
                    }
                    "NOT" => {
                        out.push(Tok::Not);
                        continue;
                    }
                    _ => {}
                }
                if word.is_empty() {
                    return err(i, format!("unexpected `{}`", b[i]));
                }
                (None, word, false)
            }
        };
        out.push(Tok::Term {
            field,
            value,
            quoted,
            at: start,
        });
    }
    Ok(out)
}

fn quoted_str(b: &[char], mut i: usize) -> Result<(String, usize), SearchError> {
    let start = i;
    i += 1;
    let mut v = String::new();
    while i < b.len() && b[i] != '"' {
        if b[i] == '\\' && i + 1 < b.len() {
            i += 1;
        }
        v.push(b[i]);
        i += 1;
    }
    if i == b.len() {
        return err(start, "unclosed quote");
    }
    Ok((v, i + 1))
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    out: Compiled,
}

/// Compiles a query. An empty query matches everything (`TRUE`).
pub fn compile(q: &str) -> Result<Compiled, SearchError> {
    let toks = lex(q)?;
    if toks.is_empty() {
        return Ok(Compiled {
            sql: "TRUE".into(),
            params: vec![],
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        out: Compiled::default(),
    };
    let sql = p.or()?;
    if p.pos < p.toks.len() {
        return err(p.pos, "unexpected `)`");
    }
    p.out.sql = sql;
    Ok(p.out)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<String, SearchError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            format!("({})", parts.join(" OR "))
        })
    }

    fn and(&mut self) -> Result<String, SearchError> {
        let mut parts = vec![self.not()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    parts.push(self.not()?);
                }
                Some(Tok::Or) | Some(Tok::RParen) | None => break,
                Some(_) => parts.push(self.not()?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            format!("({})", parts.join(" AND "))
        })
    }

    fn not(&mut self) -> Result<String, SearchError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            let inner = self.not()?;
            return Ok(format!("(NOT coalesce({inner}, FALSE))"));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<String, SearchError> {
        let at = self.pos;
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return err(at, "`(` without `)`");
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Tok::Term {
                field,
                value,
                quoted,
                at,
            }) => {
                self.pos += 1;
                self.term(field.as_deref(), &value, quoted, at)
            }
            Some(t) => err(at, format!("expected a term, found {t:?}")),
            None => err(at, "the query ends too early"),
        }
    }

    fn param(&mut self, p: Param) -> &'static str {
        self.out.params.push(p);
        "?"
    }

    fn term(
        &mut self,
        field: Option<&str>,
        value: &str,
        quoted: bool,
        at: usize,
    ) -> Result<String, SearchError> {
        let Some(field) = field else {
            // free text: the raw line contains it
            let pat = format!("%{}%", like_escape(value, !quoted));
            self.param(Param::Text(pat));
            return Ok("raw ILIKE ? ESCAPE '\\'".into());
        };
        if field == "_exists_" {
            let e = self.field_expr(value, at)?;
            return Ok(format!("({} IS NOT NULL)", e.0));
        }
        let (expr, kind) = self.field_expr(field, at)?;
        if value == "*" && !quoted {
            return Ok(format!("({expr} IS NOT NULL)"));
        }
        // ranges: [a TO b] inclusive, {a TO b} exclusive, >, >=, <, <=
        if !quoted {
            if let Some(r) = parse_range(value) {
                return self.range(&expr, kind, r, at);
            }
        }
        match kind {
            Kind::Int => {
                let n: i64 = value.parse().map_err(|_| SearchError {
                    at,
                    msg: format!("`{field}` is a number; `{value}` is not"),
                })?;
                self.param(Param::Int(n));
                Ok(format!("({expr} = ?)"))
            }
            Kind::Ip if !quoted && value.contains('/') => {
                if let Some((lo, hi)) = cidr6(value) {
                    // addresses are stored as text in their short form: compared as 32 hex
                    // digits, where a block is one range
                    self.param(Param::Text(lo));
                    self.param(Param::Text(hi));
                    return Ok(format!("(tansa_ip6({expr}) BETWEEN ? AND ?)"));
                }
                let (lo, hi) = cidr4(value).ok_or_else(|| SearchError {
                    at,
                    msg: format!("`{value}` is not a CIDR block (192.0.2.0/24, 2001:db8::/32)"),
                })?;
                self.param(Param::Int(lo as i64));
                self.param(Param::Int(hi as i64));
                Ok(format!("(tansa_ip4({expr}) BETWEEN ? AND ?)"))
            }
            _ if !quoted && (value.contains('*') || value.contains('?')) => {
                self.param(Param::Text(wildcard(value)));
                Ok(format!("({expr} LIKE ? ESCAPE '\\')"))
            }
            Kind::Time | Kind::Date => {
                self.param(Param::Text(value.to_owned()));
                Ok(format!("(CAST({expr} AS VARCHAR) LIKE ? || '%')"))
            }
            _ => {
                self.param(Param::Text(value.to_owned()));
                Ok(format!("({expr} = ?)"))
            }
        }
    }

    /// The SQL expression of a field, with how to compare it.
    fn field_expr(&mut self, field: &str, at: usize) -> Result<(String, Kind), SearchError> {
        if let Some(c) = column(field) {
            return Ok((c.name.to_owned(), c.kind));
        }
        if field.is_empty()
            || !field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return err(at, format!("`{field}` is not a field name"));
        }
        self.param(Param::Text(format!("$.\"{field}\"")));
        if field == "url.path" {
            // stored only when it is not the part of url.original before `?`
            return Ok((
                "coalesce(json_extract_string(fields, ?), split_part(url, '?', 1))".into(),
                Kind::Text,
            ));
        }
        Ok(("json_extract_string(fields, ?)".into(), Kind::Text))
    }

    fn range(
        &mut self,
        expr: &str,
        kind: Kind,
        r: Range<'_>,
        at: usize,
    ) -> Result<String, SearchError> {
        let mut conds = Vec::new();
        for (bound, op) in [(r.lo, r.lo_op), (r.hi, r.hi_op)] {
            let Some(b) = bound else { continue };
            if b == "*" {
                continue;
            }
            let p = match kind {
                Kind::Int => Param::Int(b.parse().map_err(|_| SearchError {
                    at,
                    msg: format!("`{b}` is not a number"),
                })?),
                _ => Param::Text(b.to_owned()),
            };
            self.param(p);
            let rhs = match kind {
                Kind::Time => "CAST(? AS TIMESTAMP)",
                Kind::Date => "CAST(? AS DATE)",
                _ => "?",
            };
            conds.push(format!("{expr} {op} {rhs}"));
        }
        if conds.is_empty() {
            return Ok(format!("({expr} IS NOT NULL)"));
        }
        Ok(format!("({})", conds.join(" AND ")))
    }
}

struct Range<'a> {
    lo: Option<&'a str>,
    lo_op: &'static str,
    hi: Option<&'a str>,
    hi_op: &'static str,
}

fn parse_range(v: &str) -> Option<Range<'_>> {
    for (p, op) in [(">=", ">="), ("<=", "<="), (">", ">"), ("<", "<")] {
        if let Some(rest) = v.strip_prefix(p) {
            return Some(if op.starts_with('>') {
                Range {
                    lo: Some(rest),
                    lo_op: op,
                    hi: None,
                    hi_op: "<=",
                }
            } else {
                Range {
                    lo: None,
                    lo_op: ">=",
                    hi: Some(rest),
                    hi_op: op,
                }
            });
        }
    }
    let open = v.chars().next()?;
    let close = v.chars().last()?;
    if !matches!(open, '[' | '{') || !matches!(close, ']' | '}') || v.len() < 2 {
        return None;
    }
    let inner = &v[1..v.len() - 1];
    let (lo, hi) = inner.split_once(" TO ")?;
    Some(Range {
        lo: Some(lo.trim()),
        lo_op: if open == '[' { ">=" } else { ">" },
        hi: Some(hi.trim()),
        hi_op: if close == ']' { "<=" } else { "<" },
    })
}

/// Escapes LIKE's special characters; with `wild`, `*`/`?` become `%`/`_`.
fn like_escape(v: &str, wild: bool) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '%' | '_' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            '*' if wild => s.push('%'),
            '?' if wild => s.push('_'),
            c => s.push(c),
        }
    }
    s
}

fn wildcard(v: &str) -> String {
    like_escape(v, true)
}

/// The inclusive numeric range of an IPv4 CIDR block.
fn cidr4(v: &str) -> Option<(u32, u32)> {
    let (ip, len) = v.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if len > 32 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let lo = u32::from(ip) & mask;
    Some((lo, lo | !mask))
}

/// The range of an IPv6 CIDR block as two 32-digit hex strings (see [`IP6_MACRO`]).
fn cidr6(v: &str) -> Option<(String, String)> {
    let (ip, len) = v.split_once('/')?;
    let ip: std::net::Ipv6Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if len > 128 {
        return None;
    }
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    let lo = u128::from(ip) & mask;
    Some((format!("{lo:032x}"), format!("{:032x}", lo | !mask)))
}

/// SQL for the `tansa_ip6` macro: an IPv6 text (any form but with an IPv4 tail) to its 32
/// lower-case hex digits, which order like the addresses; NULL for anything else.
pub const IP6_MACRO: &str = "CREATE OR REPLACE TEMP MACRO tansa_ip6_side(s) AS \
    CASE WHEN s = '' THEN []::VARCHAR[] ELSE string_split(s, ':') END; \
    CREATE OR REPLACE TEMP MACRO tansa_ip6_groups(s) AS \
    CASE WHEN contains(s, '::') THEN list_concat(list_concat( \
      tansa_ip6_side(split_part(s, '::', 1)), \
      list_transform(range(8 - len(tansa_ip6_side(split_part(s, '::', 1))) \
        - len(tansa_ip6_side(split_part(s, '::', 2)))), lambda x: '0')), \
      tansa_ip6_side(split_part(s, '::', 2))) \
    ELSE string_split(s, ':') END; \
    CREATE OR REPLACE TEMP MACRO tansa_ip6(s) AS \
    CASE WHEN contains(s, ':') AND NOT contains(s, '.') AND len(tansa_ip6_groups(s)) = 8 THEN \
    array_to_string(list_transform(tansa_ip6_groups(s), lambda g: lpad(lower(g), 4, '0')), '') END;";

/// SQL for the `tansa_ip4` macro (an IPv4 text to its number; NULL for anything else).
pub const IP4_MACRO: &str = "CREATE OR REPLACE TEMP MACRO tansa_ip4(s) AS \
    CASE WHEN regexp_full_match(s, '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}') THEN \
    TRY_CAST(split_part(s, '.', 1) AS UBIGINT) * 16777216 + TRY_CAST(split_part(s, '.', 2) AS UBIGINT) * 65536 \
    + TRY_CAST(split_part(s, '.', 3) AS UBIGINT) * 256 + TRY_CAST(split_part(s, '.', 4) AS UBIGINT) END";

#[cfg(test)]
mod tests {
    use super::*;

    fn c(q: &str) -> Compiled {
        compile(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    #[test]
    fn fields_and_boolean_operators() {
        let q = c("source.ip:203.0.113.9 AND event.outcome:failure");
        assert_eq!(q.sql, "((source_ip = ?) AND (outcome = ?))");
        assert_eq!(
            q.params,
            vec![
                Param::Text("203.0.113.9".into()),
                Param::Text("failure".into())
            ]
        );
        // implicit AND, NOT, OR, parentheses
        let q = c("(user.name:admin OR user.name:oracle) -host.name:db01");
        assert_eq!(
            q.sql,
            "(((user_name = ?) OR (user_name = ?)) AND (NOT coalesce((host = ?), FALSE)))"
        );
    }

    #[test]
    fn user_text_is_never_sql() {
        let q = c("user.name:\"x' OR 1=1 --\" url.original:*';DROP*");
        assert!(!q.sql.contains("OR 1=1") && !q.sql.contains("DROP"));
        assert_eq!(q.params[0], Param::Text("x' OR 1=1 --".into()));
        assert_eq!(q.params[1], Param::Text("%';DROP%".into()));
        assert!(compile("us'er:x").is_err());
    }

    #[test]
    fn wildcards_free_text_cidr_ranges() {
        assert_eq!(
            c("url.original:*UNION*").params,
            vec![Param::Text("%UNION%".into())]
        );
        let q = c("\"Failed password\" 50%_off");
        assert_eq!(
            q.sql,
            "(raw ILIKE ? ESCAPE '\\' AND raw ILIKE ? ESCAPE '\\')"
        );
        assert_eq!(
            q.params,
            vec![
                Param::Text("%Failed password%".into()),
                Param::Text("%50\\%\\_off%".into())
            ]
        );
        let q = c("source.ip:45.141.87.0/24");
        assert_eq!(q.sql, "(tansa_ip4(source_ip) BETWEEN ? AND ?)");
        assert_eq!(
            q.params,
            vec![Param::Int(0x2d8d5700), Param::Int(0x2d8d57ff)]
        );
        let q = c("source.ip:2001:db8:40::/42");
        assert_eq!(q.sql, "(tansa_ip6(source_ip) BETWEEN ? AND ?)");
        assert_eq!(
            q.params,
            vec![
                Param::Text("20010db8004000000000000000000000".into()),
                Param::Text("20010db8007fffffffffffffffffffff".into())
            ]
        );
        assert!(compile("source.ip:2001:db8::/129").is_err());
        assert!(compile("source.ip:10.0.0.0/33").is_err());
        let q = c("http.response.status_code:[400 TO 499] process.pid:>=100");
        assert_eq!(
            q.sql,
            "((http_status >= ? AND http_status <= ?) AND (process_pid >= ?))"
        );
        assert!(compile("http.response.status_code:abc").is_err());
        let q = c("@timestamp:[2026-03-14T10:00:00 TO *]");
        assert_eq!(q.sql, "(ts >= CAST(? AS TIMESTAMP))");
    }

    #[test]
    fn other_fields_come_from_the_json() {
        let q = c("ssh.method:publickey _exists_:url.original user.name:*");
        assert_eq!(
            q.sql,
            "((json_extract_string(fields, ?) = ?) AND (url IS NOT NULL) AND (user_name IS NOT NULL))"
        );
        assert_eq!(q.params[0], Param::Text("$.\"ssh.method\"".into()));
    }

    #[test]
    fn errors_say_where() {
        for bad in ["(a", "a)", "user.name:", "\"open", "x:[1 TO 2", "AND"] {
            assert!(compile(bad).is_err(), "{bad}");
        }
        assert_eq!(c("").sql, "TRUE");
    }
}
