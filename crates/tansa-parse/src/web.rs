//! Web server logs: access logs (NCSA common, combined, Apache `vhost_combined`, nginx with
//! trailing extras, Traefik, HAProxy HTTP lines) and error logs (nginx, Apache 2.2/2.4,
//! lighttpd), including basic-auth failures and ModSecurity messages.

use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::syslog;
use crate::time::{self, TimeCtx};
use crate::util::{parse_ip, parse_port, set, set_source, token};

/// Reads a `"..."` field at the start of `s` (backslash escapes kept verbatim); returns the
/// inner text and the rest after the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => {
                // nginx escapes `"` as `\x22`; Apache as `\"`. A quote followed by a space,
                // end of line, or another field starts the next field.
                return Some((&s[1..i], &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    None
}

/// Splits a request line `METHOD URL PROTOCOL` into the event's HTTP fields.
pub(crate) fn request(ev: &mut Event, line: &str, req: &str) {
    let (method, rest) = token(req);
    if rest.is_empty() {
        // `"-"` or a raw garbage request (scanners send TLS handshakes to port 80)
        if !req.is_empty() && req != "-" {
            set(ev, line, Field::URL_ORIGINAL, req);
        }
        return;
    }
    if method
        .bytes()
        .all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_')
    {
        set(ev, line, Field::HTTP_METHOD, method);
    }
    let (url, proto) = match rest.rfind(" HTTP/") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    set(ev, line, Field::URL_ORIGINAL, url);
    match url.find('?') {
        Some(q) => {
            set(ev, line, Field::URL_PATH, &url[..q]);
            set(ev, line, Field::URL_QUERY, &url[q + 1..]);
        }
        None => set(ev, line, Field::URL_PATH, url),
    }
    if let Some(v) = proto.strip_prefix("HTTP/") {
        set(ev, line, Field::HTTP_VERSION, v);
    }
}

/// `event.outcome` of an HTTP request: a rejected authentication (401, 407) is a failed
/// attempt; 1xx–3xx succeeded; other errors (a 404 probe, a 500) are neither — rules look at
/// `http.response.status_code` for those.
pub fn http_outcome(status: i64) -> Outcome {
    match status {
        401 | 407 => Outcome::Failure,
        100..=399 => Outcome::Success,
        _ => Outcome::Unknown,
    }
}

/// An access log line. Returns false if the line is not one.
pub fn access(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    let mut s = line;
    let (mut first, mut rest) = token(s);
    // vhost_combined: `vhost:port client ...`; nginx `$host $remote_addr ...`
    let (second, after2) = token(rest);
    if parse_ip(first).is_none()
        && (parse_ip(second).is_some() || first.contains(':'))
        && after2.starts_with('-') | after2.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        if let Some((vh, port)) = first.rsplit_once(':') {
            set(ev, line, Field::URL_DOMAIN, vh);
            ev.destination_port = parse_port(port);
        } else {
            set(ev, line, Field::URL_DOMAIN, first);
        }
        s = rest;
        (first, rest) = token(s);
    }
    // client ident user [time] "request" status bytes
    let client = first;
    // `client ident user [time]`; some servers write only one of ident and user
    let (ident, mut r) = token(rest);
    let mut user = ident;
    if !r.starts_with('[') {
        let (u, rr) = token(r);
        user = u;
        r = rr;
    }
    let Some(r) = r.strip_prefix('[') else {
        return false;
    };
    let Some((c, off, tend)) = time::clf(r.as_bytes()) else {
        return false;
    };
    if r.as_bytes().get(tend) != Some(&b']') {
        return false;
    }
    let tstart = crate::util::span(line, r).0;
    ev.time_text = Some((tstart as u32, (tstart + tend) as u32));
    let ts = match off {
        Some(o) => TimeCtx::with_offset(c, o),
        None => tc.local(c),
    };
    let Some(ts) = ts else { return false };
    ev.timestamp = ts;
    let r = r[tend + 1..].trim_start();
    let Some((req, r)) = quoted(r) else {
        return false;
    };
    let (status, r) = token(r.trim_start());
    let (bytes, r) = token(r);
    let Ok(status_n) = status.parse::<i64>() else {
        return false;
    };
    // the line is an access log line: fill in the event
    ev.dataset = "http.access";
    ev.category = Category::Web;
    ev.event_type = EventType::Access;
    ev.action = Some("http_request");
    if !set_source(ev, line, client) {
        set(ev, line, Field::SOURCE_ADDRESS, client);
    }
    if user != "-" && !user.is_empty() {
        set(ev, line, Field::USER_NAME, user);
    }
    request(ev, line, req);
    ev.set(Field::HTTP_STATUS, Val::Int(status_n));
    ev.outcome = http_outcome(status_n);
    if let Ok(b) = bytes.parse::<i64>() {
        ev.set(Field::HTTP_BYTES, Val::Int(b));
    }
    let r = r.trim_start();
    if let Some((referrer, r)) = quoted(r) {
        if referrer != "-" && !referrer.is_empty() {
            set(ev, line, Field::HTTP_REFERRER, referrer);
        }
        if let Some((ua, _extras)) = quoted(r.trim_start()) {
            if ua != "-" && !ua.is_empty() {
                set(ev, line, Field::USER_AGENT, ua);
            }
        }
    }
    if status_n == 401 || status_n == 407 {
        // a rejected basic-auth request (Traefik/HAProxy/nginx access logs)
        ev.category = Category::Authentication;
        ev.event_type = EventType::Denied;
        ev.action = Some("http_authentication");
    }
    true
}

/// HAProxy HTTP log in syslog: `CLIENT:PORT [date] frontend backend/server timers STATUS ...`.
pub fn haproxy(ev: &mut Event, line: &str, m: &str) -> bool {
    let (client, rest) = token(m);
    let Some(colon) = client.rfind(':') else {
        return false;
    };
    let Some(ip) = parse_ip(&client[..colon]) else {
        return false;
    };
    ev.dataset = "haproxy";
    ev.source_ip = Some(ip);
    ev.source_port = parse_port(&client[colon + 1..]);
    ev.category = Category::Web;
    ev.event_type = EventType::Access;
    ev.action = Some("http_request");
    // skip `[date] frontend backend timers`, then status
    let mut it = rest.split(' ');
    let _date = it.next();
    let _fe = it.next();
    if let Some(be) = it.next() {
        set(ev, line, Field::SERVICE_NAME, be);
    }
    let _timers = it.next();
    if let Some(status) = it.next().and_then(|s| s.parse::<i64>().ok()) {
        ev.set(Field::HTTP_STATUS, Val::Int(status));
        ev.outcome = http_outcome(status);
        if status == 401 || status == 407 {
            ev.category = Category::Authentication;
            ev.event_type = EventType::Denied;
            ev.action = Some("http_authentication");
        }
    }
    if let Some(q) = m.find(" \"") {
        if let Some((req, _)) = quoted(&m[q + 1..]) {
            request(ev, line, req);
        }
    }
    true
}

fn auth_fail(ev: &mut Event, action: &'static str) {
    ev.category = Category::Authentication;
    ev.event_type = EventType::Denied;
    ev.outcome = Outcome::Failure;
    ev.action = Some(action);
}

/// Sets the event's time from a stamp at the start of the line (zone as written, else the
/// source's).
fn stamp(ev: &mut Event, c: time::Civil, off: Option<i64>, end: usize, tc: &mut TimeCtx) {
    let t = match off {
        Some(o) => TimeCtx::with_offset(c, o),
        None => tc.local(c),
    };
    ev.timestamp = t.unwrap_or(ev.timestamp);
    ev.time_text = Some((0, end as u32));
}

/// nginx error log: `2026/03/14 10:00:00 [error] 123#123: *5 MESSAGE, client: IP, server: S,
/// request: "GET / HTTP/1.1", host: "h"`. Also after a syslog/journal header.
pub fn nginx_error(ev: &mut Event, line: &str, start: usize, tc: &mut TimeCtx) -> bool {
    let s = &line[start..];
    // nginx writes `yyyy/mm/dd HH:MM:SS [level]`
    if s.as_bytes().get(4) != Some(&b'/') {
        return false;
    }
    let Some((c, off, tend)) = time::iso(s.as_bytes()) else {
        return false;
    };
    let r = &s[tend..];
    let Some(r) = r.strip_prefix(" [") else {
        return false;
    };
    let Some((level, r)) = r.split_once("] ") else {
        return false;
    };
    if level.is_empty() || !level.bytes().all(|c| c.is_ascii_lowercase()) {
        return false;
    }
    if start == 0 {
        stamp(ev, c, off, tend, tc);
    }
    ev.dataset = "nginx.error";
    set(ev, line, Field::LOG_LEVEL, level);
    // `pid#tid: *conn ` prefix
    let (pidtid, msg) = token(r);
    if let Some(pid) = pidtid.split('#').next().and_then(|p| p.parse::<i64>().ok()) {
        ev.set(Field::PROCESS_PID, Val::Int(pid));
    }
    let msg = match msg.strip_prefix('*') {
        Some(m) => token(m).1,
        None => msg,
    };
    // the trailing `, client: X, server: Y, request: "..."` context; attacker text (the user
    // name, the request) comes before it, so take the *last* `, client: `.
    let (text, ctx) = match msg.rfind(", client: ") {
        Some(i) => (&msg[..i], &msg[i + 2..]),
        None => (msg, ""),
    };
    set(ev, line, Field::ERROR_MESSAGE, text);
    if let Some(c) = ctx.strip_prefix("client: ") {
        let client = c.split(',').next().unwrap_or("");
        set_source(ev, line, client);
        if let Some(i) = ctx.find(", request: \"") {
            if let Some((req, _)) = quoted(&ctx[i + 11..]) {
                request(ev, line, req);
            }
        }
        if let Some(i) = ctx.find(", server: ") {
            let v = ctx[i + 10..].split(',').next().unwrap_or("");
            if !v.is_empty() {
                set(ev, line, Field::URL_DOMAIN, v);
            }
        }
    }
    ev.category = Category::Web;
    ev.event_type = EventType::Error;
    if let Some(u) = text.strip_prefix("user \"") {
        if let Some(i) = u
            .rfind("\": password mismatch")
            .or_else(|| u.rfind("\" was not found in"))
        {
            set(ev, line, Field::USER_NAME, &u[..i]);
            auth_fail(ev, "http_basic_auth");
        }
    } else if text.starts_with("no user/password was provided for basic authentication") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Info;
        ev.action = Some("http_basic_auth");
    } else if let Some(u) = text.strip_prefix("PAM: user '") {
        if let Some(i) = u.find("' - not authenticated") {
            set(ev, line, Field::USER_NAME, &u[..i]);
            auth_fail(ev, "http_pam_auth");
        }
    } else if text.starts_with("limiting requests") || text.starts_with("limiting connections") {
        ev.event_type = EventType::Denied;
        ev.action = Some("http_rate_limited");
        ev.outcome = Outcome::Failure;
    } else if text.contains("ModSecurity: ") {
        modsecurity(ev, line, text);
    } else if text.starts_with("SSL_do_handshake() failed") || text.starts_with("SSL_read() failed")
    {
        ev.category = Category::Network;
        ev.action = Some("tls_handshake_failed");
        ev.outcome = Outcome::Failure;
    } else if text.contains("access forbidden by rule") {
        ev.event_type = EventType::Denied;
        ev.action = Some("http_forbidden");
        ev.outcome = Outcome::Failure;
    }
    true
}

/// ModSecurity message: `ModSecurity: Access denied with code 403 (phase 2). ... [id "942100"] [msg "..."]`.
fn modsecurity(ev: &mut Event, line: &str, text: &str) {
    ev.category = Category::IntrusionDetection;
    ev.event_type = if text.contains("Access denied") {
        EventType::Denied
    } else {
        EventType::Info
    };
    ev.action = Some("waf_rule_match");
    for (key, field) in [("[id \"", Field::RULE_ID), ("[msg \"", Field::RULE_NAME)] {
        if let Some(i) = text.find(key) {
            let v = &text[i + key.len()..];
            if let Some(e) = v.find("\"]") {
                set(ev, line, field, &v[..e]);
            }
        }
    }
    if let Some(i) = text.find("[uri \"") {
        let v = &text[i + 6..];
        if let Some(e) = v.find("\"]") {
            set(ev, line, Field::URL_ORIGINAL, &v[..e]);
        }
    }
    if ev.source_ip.is_none() {
        if let Some(i) = text.find("[client ") {
            let v = &text[i + 8..];
            let e = v.find(']').unwrap_or(v.len());
            set_source(ev, line, &v[..e]);
        }
    }
}

/// Apache error log: `[Sat Jul 20 21:34:49.453232 2013] [module:level] [pid N:tid M]
/// [client IP:PORT] AHnnnnn: MESSAGE` (2.4) or `[date] [level] [client IP] MESSAGE` (2.2).
pub fn apache_error(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    let Some(r) = line.strip_prefix('[') else {
        return false;
    };
    // old/relayed lines without a time: `[error] [client 1.2.3.4] msg`
    if let Some((level, _)) = r.split_once("] ") {
        if matches!(
            level,
            "emerg" | "alert" | "crit" | "error" | "warn" | "notice" | "info" | "debug"
        ) {
            apache_body(ev, line, line);
            return true;
        }
    }
    let Some((c, tend)) = time::ctime(r.as_bytes()) else {
        return false;
    };
    if r.as_bytes().get(tend) != Some(&b']') {
        return false;
    }
    ev.time_text = Some((1, (1 + tend) as u32));
    if let Some(ts) = tc.local(c) {
        ev.timestamp = ts;
    }
    apache_body(ev, line, r[tend + 1..].trim_start());
    true
}

/// The part of an Apache error line after its time: `[module:level] [pid N] [client A] msg`.
pub fn apache_body(ev: &mut Event, line: &str, r: &str) {
    ev.dataset = "apache.error";
    ev.category = Category::Web;
    ev.event_type = EventType::Error;
    let mut r = r;
    let mut module = "";
    let mut remote = None;
    // bracketed fields until the message; `[client ...]` holds the remote address
    while let Some(x) = r.strip_prefix('[') {
        let Some(close) = x.find(']') else { break };
        let inner = &x[..close];
        if let Some(cl) = inner.strip_prefix("client ") {
            // `1.2.3.4:5678`, `[2001:db8::1]:51548`, `2001:db8::1` (2.2 has no port)
            let addr = if let Some(v6) = cl.strip_prefix('[') {
                // `[v6]:port` → the `]` closing the v6 is inside: re-read up to `]:`
                let full = &x[7..];
                let e = full
                    .find("]:")
                    .or_else(|| full.find(']'))
                    .unwrap_or(full.len());
                let _ = v6;
                let a = &full[1..e];
                let after = &full[e + 1..];
                r = &after[after.find(']').map(|i| i + 1).unwrap_or(after.len())..];
                r = r.trim_start();
                set_source(ev, line, a);
                continue;
            } else if parse_ip(cl).is_some() {
                cl
            } else {
                match cl.rfind(':') {
                    Some(i) => {
                        ev.source_port = parse_port(&cl[i + 1..]);
                        &cl[..i]
                    }
                    None => cl,
                }
            };
            set_source(ev, line, addr);
        } else if let Some(p) = inner.strip_prefix("pid ") {
            if let Ok(pid) = p.split(':').next().unwrap_or("").parse::<i64>() {
                ev.set(Field::PROCESS_PID, Val::Int(pid));
            }
        } else if let Some(rm) = inner.strip_prefix("remote ") {
            remote = Some(rm);
        } else {
            let level = inner.rsplit(':').next().unwrap_or(inner);
            module = inner.split(':').next().unwrap_or("");
            set(ev, line, Field::LOG_LEVEL, level);
        }
        r = x[close + 1..].trim_start();
    }
    if ev.source_ip.is_none() {
        // `(70014)End of file found: [client A:P] AH02006: ...` (an APR error before the client)
        if let Some(i) = r.find("[client ") {
            let cl = &r[i + 8..];
            let cl = &cl[..cl.find(']').unwrap_or(cl.len())];
            let addr = match cl.rfind(':') {
                Some(j) if parse_ip(cl).is_none() => {
                    ev.source_port = parse_port(&cl[j + 1..]);
                    &cl[..j]
                }
                _ => cl,
            };
            set_source(ev, line, addr);
            r = r.get(i + 8 + cl.len() + 1..).unwrap_or("").trim_start();
        }
    }
    if ev.source_ip.is_none() {
        // `[remote A]` is the peer (a proxy) when no `[client A]` is given
        if let Some(rm) = remote {
            let a = rm
                .rsplit_once(':')
                .filter(|(h, _)| parse_ip(h).is_some())
                .map(|x| x.0)
                .unwrap_or(rm);
            set_source(ev, line, a);
        }
    }
    // `AH01618: ` error code
    let msg = match r.find(": ") {
        Some(i) if r.starts_with("AH") && r[2..i].bytes().all(|c| c.is_ascii_digit()) => {
            set(ev, line, Field::EVENT_CODE, &r[..i]);
            &r[i + 2..]
        }
        _ => r,
    };
    set(ev, line, Field::ERROR_MESSAGE, msg);
    if module.starts_with("evasive") {
        // mod_evasive: rate limiting (a denial all the same)
        ev.set(Field::SERVICE_NAME, Val::Str(module.into()));
    }
    apache_message(ev, line, msg);
}

fn apache_message(ev: &mut Event, line: &str, msg: &str) {
    let msg = msg.strip_prefix("Digest: ").unwrap_or(msg);
    // `user X not found: /path`, `... failed, reason: ...`: the request path ends the message
    if let Some(i) = msg.rfind(": /") {
        let p = &msg[i + 2..];
        if !p.contains(' ') {
            set(ev, line, Field::URL_PATH, p);
        }
    }
    if let Some(u) = msg.strip_prefix("user ") {
        if let Some(i) = u.find(" not found") {
            set(ev, line, Field::USER_NAME, &u[..i]);
            auth_fail(ev, "http_basic_auth");
        } else if let Some(i) = u
            .find(": authentication failure for")
            .or_else(|| u.find(": authorization failure for"))
            .or_else(|| u.find(": password mismatch"))
        {
            set(ev, line, Field::USER_NAME, &u[..i]);
            auth_fail(ev, "http_basic_auth");
        } else if let Some(i) = u.find(" in realm ") {
            // `user `X' in realm `R' not found`
            set(
                ev,
                line,
                Field::USER_NAME,
                u[..i].trim_matches(['"', '`', '\'']),
            );
            auth_fail(ev, "http_basic_auth");
        }
    } else if msg.starts_with("client denied by server configuration")
        || msg.starts_with("client used wrong authentication scheme")
        || (msg.starts_with("Authorization of user ") && msg.contains(" failed"))
    {
        if let Some(u) = msg.strip_prefix("Authorization of user ") {
            if let Some(i) = u.find(" to access ") {
                set(ev, line, Field::USER_NAME, &u[..i]);
            }
        }
        auth_fail(ev, "http_access_denied");
    } else if let Some(d) = msg.strip_prefix("Digest: ").or(Some(msg)).filter(|d| {
        d.starts_with("invalid qop `")
            || d.starts_with("realm mismatch - got `")
            || d.starts_with("unknown algorithm `")
            || d.starts_with("invalid nonce ")
                && (d.contains("received - user attempted time travel")
                    || d.contains("received - length is not"))
    }) {
        // digest authentication failures (a forged or replayed `Authorization` header)
        let _ = d;
        auth_fail(ev, "http_digest_auth");
    } else if msg.contains("provided via SNI")
        && (msg.contains("no hostname provided") || msg.contains("no compatible SSL setup"))
        || msg.starts_with("No hostname was provided via SNI")
    {
        // TLS name mismatches: clients that probe by address (scanners)
        auth_fail(ev, "tls_sni_mismatch");
    } else if msg.contains("ModSecurity: ") {
        modsecurity(ev, line, msg);
    } else if msg.starts_with("File does not exist")
        || msg.starts_with("script not found")
        || msg.starts_with("Got error 'Primary script unknown")
    {
        ev.action = Some("http_not_found");
    } else if msg.starts_with("request failed: URI too long")
        || msg.starts_with("request failed: erroneous characters")
    {
        ev.action = Some("http_bad_request");
        ev.outcome = Outcome::Failure;
    }
}

/// lighttpd error log: `2011-12-25 17:09:20: (http_auth.c.875) MESSAGE, IP: 4.4.4.4`.
pub fn lighttpd_error(ev: &mut Event, line: &str, start: usize, tc: &mut TimeCtx) -> bool {
    let s = &line[start..];
    let Some((c, off, tend)) = time::iso(s.as_bytes()) else {
        return false;
    };
    let Some(r) = s[tend..].strip_prefix(": ") else {
        return false;
    };
    let r = r.trim_start_matches('(');
    let (src, msg) = match r.split_once(") ") {
        Some(x) => x,
        None => return false,
    };
    if !src.contains(".c.") {
        return false;
    }
    if start == 0 {
        stamp(ev, c, off, tend, tc);
    }
    lighttpd_msg(ev, line, msg);
    true
}

fn lighttpd_msg(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "lighttpd.error";
    ev.category = Category::Web;
    ev.event_type = EventType::Error;
    set(ev, line, Field::ERROR_MESSAGE, msg);
    if let Some(i) = msg.rfind("IP: ") {
        set_source(ev, line, token(&msg[i + 4..]).0);
    }
    if msg.contains("password doesn't match")
        || msg.contains("auth failed")
        || msg.contains("get_password failed")
        || msg.contains("wrong password")
    {
        auth_fail(ev, "http_basic_auth");
        if let Some(i) = msg.find("username: ") {
            let u = &msg[i + 10..];
            let e = u.find([',', ' ']).unwrap_or(u.len());
            set(ev, line, Field::USER_NAME, &u[..e]);
        } else if let Some(i) = msg.find("auth failed for  ") {
            let u = &msg[i + 17..];
            let e = u.find(" :").unwrap_or(u.len());
            set(ev, line, Field::USER_NAME, &u[..e]);
        }
    }
}

/// A web server's error log written through syslog/journald (`nginx[123]: 2023/12/09 ...`).
pub fn error_in_syslog(ev: &mut Event, line: &str, h: &syslog::Header, tc: &mut TimeCtx) -> bool {
    let mut start = h.msg;
    // `host nginx: 2025/...` (journal's duplicated identifier)
    let m = &line[start..];
    if let Some(i) = m.find(": ") {
        if i < 40 && !m[..i].contains('[') && time::iso(&m.as_bytes()[i + 2..]).is_some() {
            start += i + 2;
        }
    }
    nginx_error(ev, line, start, tc) || lighttpd_error(ev, line, start, tc) || {
        if line[start..].starts_with('(') {
            let msg = &line[start..];
            if let Some((_, m)) = msg.split_once(") ") {
                lighttpd_msg(ev, line, m);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn ev(l: &str) -> Event {
        Event::new(
            bytes::Bytes::copy_from_slice(l.as_bytes()),
            Arc::new(Origin::default()),
            0,
        )
    }

    fn tc() -> TimeCtx {
        TimeCtx::new(
            jiff::tz::TimeZone::UTC,
            "2026-03-15T00:00:00Z".parse().unwrap(),
        )
    }

    #[test]
    fn combined_line() {
        let l = r#"203.0.113.9 - - [14/Mar/2026:10:00:01 +0900] "GET /search?q=%27%20OR%201=1 HTTP/1.1" 200 512 "-" "sqlmap/1.8""#;
        let mut e = ev(l);
        let raw = e.raw.clone();
        assert!(access(&mut e, raw.as_str(), &mut tc()));
        assert_eq!(e.source_ip.unwrap().to_string(), "203.0.113.9");
        assert_eq!(e.get_str(Field::HTTP_METHOD).unwrap(), "GET");
        assert_eq!(e.get_str(Field::URL_PATH).unwrap(), "/search");
        assert_eq!(e.get_str(Field::URL_QUERY).unwrap(), "q=%27%20OR%201=1");
        assert_eq!(e.get(Field::HTTP_STATUS), Some(&Val::Int(200)));
        assert_eq!(e.get_str(Field::USER_AGENT).unwrap(), "sqlmap/1.8");
        assert!(e.get(Field::HTTP_REFERRER).is_none());
        assert_eq!(tansa_event::format_ts(e.timestamp), "2026-03-14T01:00:01Z");
    }

    #[test]
    fn vhost_common_and_escaped_quotes() {
        let l = r#"shop.example.com:443 198.51.100.7 - bob [14/Mar/2026:10:00:01 +0000] "POST /login HTTP/2.0" 401 17 "https://x/\"y" "UA \"quoted\"" 0.002"#;
        let mut e = ev(l);
        let raw = e.raw.clone();
        assert!(access(&mut e, raw.as_str(), &mut tc()));
        assert_eq!(e.get_str(Field::URL_DOMAIN).unwrap(), "shop.example.com");
        assert_eq!(e.destination_port, Some(443));
        assert_eq!(e.user_name().unwrap(), "bob");
        assert_eq!(e.get_str(Field::USER_AGENT).unwrap(), r#"UA \"quoted\""#);
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.category, Category::Authentication);
        let l = r#"10.0.0.1 - - [14/Mar/2026:10:00:01 +0000] "\x16\x03\x01" 400 157"#;
        let mut e = ev(l);
        let raw = e.raw.clone();
        assert!(access(&mut e, raw.as_str(), &mut tc()));
        assert_eq!(e.get(Field::HTTP_STATUS), Some(&Val::Int(400)));
    }

    #[test]
    fn nginx_error_auth_with_injection() {
        let l = r#"2014/04/03 22:20:40 [error] 30708#0: *3 user "test": password mismatch, client: 127.0.0.1, server: test, request: "GET / HTTP/1.1", host: "localhost:8443"": was not found in "/etc/nginx/.htpasswd", client: 192.0.2.2, server: , request: "GET / HTTP/1.1", host: "#;
        let mut e = ev(l);
        let raw = e.raw.clone();
        assert!(nginx_error(&mut e, raw.as_str(), 0, &mut tc()));
        assert_eq!(e.source_ip.unwrap().to_string(), "192.0.2.2");
        assert_eq!(e.outcome, Outcome::Failure);
    }

    #[test]
    fn apache_error_v24_and_v6() {
        let l = "[Sat Jul 20 22:11:44.147674 2013] [authz_owner:error] [pid 17540:tid 1] [client [2001:db8::80da:af6b:8b2c]:51548] AH01637: Authorization of user test-ipv6 to access /x failed, reason: y";
        let mut e = ev(l);
        let raw = e.raw.clone();
        assert!(apache_error(&mut e, raw.as_str(), &mut tc()));
        assert_eq!(e.source_ip.unwrap().to_string(), "2001:db8::80da:af6b:8b2c");
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user_name().unwrap(), "test-ipv6");
        let l =
            "[Thu Jul 11 01:21:43 2013] [error] [client 194.228.20.113] user dsfasdf not found: /";
        let mut e = ev(l);
        let raw = e.raw.clone();
        assert!(apache_error(&mut e, raw.as_str(), &mut tc()));
        assert_eq!(e.source_ip.unwrap().to_string(), "194.228.20.113");
        assert_eq!(e.user_name().unwrap(), "dsfasdf");
    }
}
