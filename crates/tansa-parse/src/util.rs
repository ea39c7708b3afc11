//! Small helpers shared by the format modules: spans, tokens, addresses.

use std::net::IpAddr;

use tansa_event::{Event, Field};

/// `haystack.find(needle)` with memchr's SIMD searcher (the hot paths search short literals).
#[inline]
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(haystack.as_bytes(), needle.as_bytes())
}

/// `haystack.rfind(needle)`, SIMD.
#[inline]
pub fn rfind(haystack: &str, needle: &str) -> Option<usize> {
    memchr::memmem::rfind(haystack.as_bytes(), needle.as_bytes())
}

/// Byte range of `sub` inside `line`; `sub` must be a subslice of `line`.
#[inline]
pub fn span(line: &str, sub: &str) -> (usize, usize) {
    let start = sub.as_ptr() as usize - line.as_ptr() as usize;
    (start, start + sub.len())
}

/// Stores `sub` (a subslice of the event's raw line `line`) as `field`.
#[inline]
pub fn set(ev: &mut Event, line: &str, field: Field, sub: &str) {
    let (s, e) = span(line, sub);
    ev.set_span(field, s, e);
}

/// The first whitespace-delimited token of `s` and the rest after one separator.
#[inline]
pub fn token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Parses an address as logs write it: plain v4/v6, `[v6]`, `::ffff:v4` (mapped to v4),
/// with a trailing `,`/`;`/`.`/`:` or `)` stripped. Zero-padded v4 octets are rejected.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim_end_matches([',', ';', ')', '.']);
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    if s.is_empty() || s.len() > 45 {
        return None;
    }
    let b = s.as_bytes()[0];
    if !(b.is_ascii_hexdigit() || b == b':') {
        return None;
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Some(ip.to_canonical()),
        Err(_) => {
            // `1.2.3.4:` and `host:port` forms
            let t = s.trim_end_matches(':');
            if t.len() != s.len() {
                return t.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
            }
            None
        }
    }
}

/// Whether `s` can be a host name (letters, digits, `-`, `.`, `_`), as logs with reverse DNS
/// write the remote party.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
        && s.bytes().any(|c| c.is_ascii_alphanumeric())
}

/// Records the remote party: `source.ip` when it is an address, else `source.address` (and
/// `source.domain` when it looks like a host name). Returns false when `s` is neither.
pub fn set_source(ev: &mut Event, line: &str, s: &str) -> bool {
    let s = s.trim_end_matches([',', ';', ')']);
    if let Some(ip) = parse_ip(s) {
        ev.source_ip = Some(ip);
        return true;
    }
    let s = s.trim_end_matches(['.', ':']);
    if s.is_empty() || s == "?" || s == "-" || s == "UNKNOWN" || s == "unknown" {
        return false;
    }
    if !s.bytes().all(|c| c.is_ascii_graphic()) {
        return false;
    }
    set(ev, line, Field::SOURCE_ADDRESS, s);
    if is_hostname(s) && s.contains('.') && !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        set(ev, line, Field::SOURCE_DOMAIN, s);
    }
    true
}

/// Parses a port number.
#[inline]
pub fn parse_port(s: &str) -> Option<u16> {
    let s = s.trim_end_matches([':', ',', ';']);
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The value of `key=` in a `k=v k=v` message, up to the next space (or a quoted value).
pub fn kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = s[from..].find(key) {
        let at = from + i;
        let before_ok = at == 0
            || matches!(
                s.as_bytes()[at - 1],
                b' ' | b'\t' | b';' | b'\'' | b'(' | b','
            );
        let after = at + key.len();
        if before_ok && s.as_bytes().get(after) == Some(&b'=') {
            let v = &s[after + 1..];
            if let Some(q) = v.strip_prefix('"') {
                return Some(q.split('"').next().unwrap_or(""));
            }
            let end = v.find([' ', '\t', '\'']).unwrap_or(v.len());
            return Some(&v[..end]);
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_ip("192.0.2.1").unwrap().to_string(), "192.0.2.1");
        assert_eq!(parse_ip("::ffff:1.2.3.4").unwrap().to_string(), "1.2.3.4");
        assert_eq!(
            parse_ip("[2001:db8::1]").unwrap().to_string(),
            "2001:db8::1"
        );
        assert_eq!(parse_ip("192.0.2.1,").unwrap().to_string(), "192.0.2.1");
        assert!(parse_ip("192.030.0.6").is_none());
        assert!(parse_ip("example.com").is_none());
        assert!(parse_ip("").is_none());
    }

    #[test]
    fn kv_values() {
        let s = "logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root";
        assert_eq!(kv(s, "rhost"), Some("192.0.2.1"));
        assert_eq!(kv(s, "ruser"), Some(""));
        assert_eq!(kv(s, "user"), Some("root"));
        assert_eq!(kv(s, "uid"), Some("0"));
        assert_eq!(kv("acct=\"root\" exe=x", "acct"), Some("root"));
        assert_eq!(kv(s, "nothere"), None);
    }
}
