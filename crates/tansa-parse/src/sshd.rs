//! OpenSSH `sshd` (and `sshd-session`, `dropbear`) messages.
//!
//! Every message of an sshd connection becomes an event; the ones that report a failed or
//! refused attempt get `event.outcome: failure`, successful logins `success`. A connection's
//! lines share the sshd pid, which [`State`] uses to attribute lines that name no address
//! (`Disconnecting: Too many authentication failures`, PAM failures) to the address the same
//! connection announced, and to avoid counting one attempt twice (PAM's line and sshd's own
//! `Failed password` line describe the same attempt: only the latter counts).

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::util::{kv, parse_port, set, set_source, token};

/// Per-stream sshd connection state, keyed by pid.
#[derive(Debug, Default)]
pub struct State {
    conns: FxHashMap<u32, Conn>,
    /// Failed attempts that became certain on the current line although the line itself
    /// reports a success (see [`accepted`]): the users, for a derived failure event.
    pub deferred: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Conn {
    ip: Option<IpAddr>,
    /// A PAM failure was seen that sshd has not (yet) reported itself.
    pam_pending: Option<Box<str>>,
    /// Distinct users that PAM failures named.
    pam_users: Vec<Box<str>>,
    /// Of those, the ones whose failure was counted (by PAM's second user, or sshd's report).
    pam_counted: Vec<Box<str>>,
    /// A failure without an address was seen; the next line with one completes it.
    hostless_failure: bool,
    failed: bool,
}

const MAX_CONNS: usize = 65_536;

impl State {
    fn conn(&mut self, pid: Option<u32>) -> Option<&mut Conn> {
        let pid = pid?;
        if self.conns.len() >= MAX_CONNS && !self.conns.contains_key(&pid) {
            // Bounded: a stream that never closes connections cannot grow this without end.
            self.conns.clear();
        }
        Some(self.conns.entry(pid).or_default())
    }
}

fn auth(ev: &mut Event, action: &'static str, outcome: Outcome) {
    ev.category = Category::Authentication;
    ev.event_type = match outcome {
        Outcome::Success => EventType::Start,
        Outcome::Failure => EventType::Denied,
        Outcome::Unknown => EventType::Info,
    };
    ev.outcome = outcome;
    ev.action = Some(action);
}

fn strip_preauth(s: &str) -> &str {
    let s = s.trim_end();
    s.strip_suffix("[preauth]").map(str::trim_end).unwrap_or(s)
}

/// After `from HOST`: optional `port N`, `on X`, `ssh2`, `[preauth]`, `via X`.
/// Returns (port, rest after these) — rest is "" for a clean end.
fn host_tail(s: &str) -> (Option<u16>, &str) {
    let mut rest = s;
    let mut port = None;
    loop {
        let r = rest.trim_start_matches(' ');
        if let Some(x) = r.strip_prefix("port ") {
            let (p, after) = token(x);
            let (p, colon_rest) = match p.find(':') {
                Some(i) => (&p[..i], Some(&x[i..])),
                None => (p, None),
            };
            port = parse_port(p);
            if let Some(c) = colon_rest {
                return (port, c);
            }
            rest = if after.is_empty() { "" } else { &x[p.len()..] };
        } else if let Some(x) = r.strip_prefix("on ") {
            let (_, after) = token(x);
            rest = if after.is_empty() {
                ""
            } else {
                &x[x.len() - after.len() - 1..]
            };
        } else if r.starts_with("ssh2") || r.starts_with("ssh1") {
            rest = &r[4..];
        } else if let Some(x) = r.strip_prefix("via ") {
            let (_, after) = token(x);
            rest = if after.is_empty() {
                ""
            } else {
                &x[x.len() - after.len() - 1..]
            };
        } else if let Some(x) = r.strip_prefix("[preauth]") {
            rest = x;
        } else {
            return (port, r);
        }
        if rest.is_empty() {
            return (port, "");
        }
    }
}

/// Finds `from HOST` in `s` (the text after the user) as sshd writes it, resisting user names
/// that contain ` from `: the first occurrence whose tail is clean (end of message, or `: info`
/// when the user is a single word). Returns (user, host, port, info).
fn user_from_host(s: &str) -> Option<(&str, &str, Option<u16>, &str)> {
    let mut from = 0;
    let mut fallback = None;
    while let Some(i) = crate::util::find(&s[from..], " from ") {
        let at = from + i;
        let user = &s[..at];
        let after = &s[at + 6..];
        let (host, rest) = token(after);
        let rest_full = &after[host.len()..];
        let (port, tail) = host_tail(rest_full);
        let single = !user.contains(' ');
        if tail.is_empty() {
            return Some((user, host, port, ""));
        }
        if let Some(info) = tail.strip_prefix(':') {
            if single || user.is_empty() {
                return Some((user, host, port, info.trim_start()));
            }
            fallback.get_or_insert((user, host, port, info.trim_start()));
        }
        let _ = rest;
        from = at + 6;
    }
    fallback
}

/// Host (and port) of `... HOST port N ...` where HOST is the first token of `s`.
fn host_port(ev: &mut Event, line: &str, s: &str) -> bool {
    let (host, rest) = token(s);
    if !set_source(ev, line, host) {
        return false;
    }
    let (port, _) = host_tail(&s[host.len()..]);
    let _ = rest;
    ev.source_port = port;
    true
}

/// Parses an sshd message; `msg` is a subslice of `line`.
pub fn parse(ev: &mut Event, line: &str, msg: &str, pid: Option<u32>, st: &mut State) {
    ev.dataset = "sshd";
    let mut m = msg.trim_end();
    // `error: PAM: ...`, `fatal: ...`
    for p in ["error: ", "fatal: "] {
        if let Some(x) = m.strip_prefix(p) {
            m = x;
            ev.set_str(Field::LOG_LEVEL, p.trim_end_matches([':', ' ']));
        }
    }
    if let Some(x) = m.strip_prefix("PAM: ") {
        m = x;
    }
    let first = m.split(' ').next().unwrap_or("");
    match first {
        "Accepted" => accepted(ev, line, m, pid, st),
        "Failed" => failed(ev, line, m, pid, st),
        "Invalid" | "Illegal" | "invalid" | "illegal" => {
            let rest = &m[first.len()..];
            if let Some(r) = rest.strip_prefix(" user ") {
                auth(ev, "ssh_invalid_user", Outcome::Failure);
                userhost(ev, line, r, pid, st);
            }
        }
        "User" if m.starts_with("User not known to the underlying authentication module for ") => {
            let r = &m[60..];
            auth(ev, "ssh_login", Outcome::Failure);
            let r = r
                .strip_prefix("illegal user ")
                .or_else(|| r.strip_prefix("invalid user "))
                .unwrap_or(r);
            if let Some((u, h, port, _)) = user_from_host(r).or_else(|| bare_host(r)) {
                set(ev, line, Field::USER_NAME, u);
                set_source(ev, line, h);
                ev.source_port = port;
            }
            mark_failed(st, pid, ev);
        }
        "User" => user_not_allowed(ev, line, m, pid, st),
        "ROOT" => {
            if let Some(h) = m.strip_prefix("ROOT LOGIN REFUSED FROM ") {
                auth(ev, "ssh_root_refused", Outcome::Failure);
                ev.set_str(Field::USER_NAME, "root");
                host_port(ev, line, h);
            }
        }
        "refused" => {
            // tcp wrappers: `refused connect from NAME (ADDR)`
            if let Some(r) = m.strip_prefix("refused connect from ") {
                auth(ev, "ssh_refused_connect", Outcome::Failure);
                let addr = r
                    .rfind('(')
                    .map(|i| r[i + 1..].trim_end_matches(')'))
                    .unwrap_or(r);
                set_source(ev, line, addr);
            }
        }
        "Authentication" | "authentication" => {
            // `Authentication failure for USER from HOST [via X]`
            let r = &m[first.len() + 1..];
            for p in ["failure for ", "error for ", "failed for "] {
                if let Some(x) = r.strip_prefix(p) {
                    auth(ev, "ssh_login", Outcome::Failure);
                    if let Some((u, h, port, _)) = user_from_host(x).or_else(|| bare_host(x)) {
                        set(ev, line, Field::USER_NAME, u);
                        set_source(ev, line, h);
                        ev.source_port = port;
                    }
                    mark_failed(st, pid, ev);
                }
            }
        }
        "Received" => received(ev, line, m, pid, st),
        "Disconnecting:" | "Disconnecting" | "Disconnected" => disconnect(ev, line, m, pid, st),
        "Connection" => connection(ev, line, m, pid, st),
        "maximum" => {
            if let Some(r) = m.strip_prefix("maximum authentication attempts exceeded for ") {
                auth(ev, "ssh_max_attempts", Outcome::Failure);
                let r = r.strip_prefix("invalid user ").unwrap_or(r);
                userhost(ev, line, r, pid, st);
            }
        }
        "Unable"
        | "no"
        | "banner"
        | "ssh_dispatch_run_fatal:"
        | "kex_exchange_identification:"
        | "Did"
        | "Timeout"
        | "Bad"
        | "Read"
        | "SSH:"
        | "Magic" => recon(ev, line, m, pid, st),
        "(pam_unix)" => crate::host::pam(ev, line, m, "sshd"),
        "pam_unix(sshd:auth):" | "pam_unix(sshd-session:auth):" | "pam_sss(sshd:auth):" => {
            pam_auth(ev, line, m, pid, st)
        }
        "pam_unix(sshd:session):" => crate::host::pam_session(ev, line, m),
        "Server" => {
            ev.category = Category::Host;
            ev.event_type = EventType::Start;
            ev.action = Some("ssh_server_listening");
        }
        "Address" => {
            // `Address 1.2.3.4 maps to x, but this does not map back ... POSSIBLE BREAK-IN ATTEMPT`
            let (_, r) = token(m);
            let (a, _) = token(r);
            set_source(ev, line, a);
            ev.category = Category::Network;
            ev.event_type = EventType::Info;
            ev.action = Some("ssh_reverse_mapping_mismatch");
        }
        "input_userauth_request:" => {
            if let Some(u) = m.strip_prefix("input_userauth_request: invalid user ") {
                auth(ev, "ssh_invalid_user", Outcome::Unknown);
                set(ev, line, Field::USER_NAME, strip_preauth(u));
            }
        }
        _ => {
            if m.starts_with("pam_") {
                crate::host::pam(ev, line, m, "sshd");
            } else if m.starts_with("Too many authentication failures") {
                auth(ev, "ssh_max_attempts", Outcome::Failure);
                hostless_or_failure(ev, pid, st, false, Outcome::Failure);
            }
        }
    }
}

/// `USER HOST` or `USER from HOST`, with an optional port tail.
fn bare_host(s: &str) -> Option<(&str, &str, Option<u16>, &str)> {
    let s = strip_preauth(s);
    let i = s.rfind(' ')?;
    let (user, host) = (&s[..i], &s[i + 1..]);
    Some((user, host, None, ""))
}

fn userhost(ev: &mut Event, line: &str, r: &str, pid: Option<u32>, st: &mut State) {
    let r = strip_preauth(r);
    let parsed = user_from_host(r).or_else(|| {
        // `USER HOST port N` (no `from`)
        let (user, rest) = r.split_once(' ')?;
        let (host, _) = token(rest);
        let (port, _) = host_tail(&rest[host.len()..]);
        Some((user, host, port, ""))
    });
    if let Some((u, h, port, _)) = parsed {
        if u.is_empty() {
            ev.set(Field::USER_NAME, Val::Str("".into()));
        } else {
            set(ev, line, Field::USER_NAME, u);
        }
        set_source(ev, line, h);
        ev.source_port = port;
    }
    remember(st, pid, ev);
}

fn remember(st: &mut State, pid: Option<u32>, ev: &Event) {
    if let (Some(c), Some(ip)) = (st.conn(pid), ev.source_ip) {
        c.ip = Some(ip);
    }
}

fn mark_failed(st: &mut State, pid: Option<u32>, ev: &Event) {
    remember(st, pid, ev);
    if let Some(c) = st.conn(pid) {
        c.failed = true;
        c.pam_pending = None;
    }
}

/// Gives an address-less event the connection's address, if known.
fn attribute(ev: &mut Event, pid: Option<u32>, st: &mut State) {
    if ev.source_ip.is_none() {
        if let Some(c) = st.conn(pid) {
            ev.source_ip = c.ip;
        }
    }
}

fn accepted(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    // Accepted METHOD for USER from HOST port N ssh2[: KEYTYPE FINGERPRINT]
    let r = &m["Accepted ".len().min(m.len())..];
    let (method, r) = token(r);
    auth(ev, "ssh_login", Outcome::Success);
    set(ev, line, Field::SSH_METHOD, method);
    if let Some(r) = r.strip_prefix("for ") {
        if let Some((u, h, port, info)) = user_from_host(r) {
            set(ev, line, Field::USER_NAME, u);
            set_source(ev, line, h);
            ev.source_port = port;
            if !info.is_empty() {
                set(ev, line, Field::SSH_SIGNATURE, info);
            }
        }
    }
    remember(st, pid, ev);
    // PAM failures for *other* users on this connection that sshd never reported: they are
    // failed attempts, certain now (the attacker switched accounts and got in).
    let user = ev.user_name().map(|u| u.into_owned()).unwrap_or_default();
    let mut deferred = Vec::new();
    if let Some(c) = st.conn(pid) {
        for u in &c.pam_users {
            if **u != *user && !c.pam_counted.contains(u) {
                deferred.push(u.to_string());
            }
        }
        c.pam_pending = None;
        c.pam_users.clear();
        c.pam_counted.clear();
    }
    if !deferred.is_empty() {
        st.deferred = Some(deferred.join(","));
    }
}

fn failed(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    // Failed METHOD for [invalid user ]USER from HOST port N ssh2[: info]
    let r = &m["Failed ".len().min(m.len())..];
    let (method, r) = token(r);
    set(ev, line, Field::SSH_METHOD, method);
    let Some(r) = r.strip_prefix("for ") else {
        return;
    };
    let (invalid, r) = match r.strip_prefix("invalid user ") {
        Some(x) => (true, x),
        None => (false, r),
    };
    let Some((u, h, port, info)) = user_from_host(r) else {
        auth(ev, "ssh_login", Outcome::Failure);
        return;
    };
    // A client offering several keys produces `Failed publickey` for a valid user before
    // the accepted one: not an attack signal on its own.
    let outcome = if method == "publickey" && !invalid {
        Outcome::Unknown
    } else {
        Outcome::Failure
    };
    auth(ev, "ssh_login", outcome);
    if invalid {
        ev.set(Field::EVENT_REASON, Val::Str("invalid user".into()));
    }
    set(ev, line, Field::USER_NAME, u);
    set_source(ev, line, h);
    ev.source_port = port;
    if !info.is_empty() {
        set(ev, line, Field::SSH_SIGNATURE, info);
    }
    if outcome == Outcome::Failure {
        mark_failed(st, pid, ev);
        let u: Box<str> = u.into();
        if let Some(c) = st.conn(pid) {
            if !c.pam_counted.contains(&u) {
                c.pam_counted.push(u);
            }
        }
    } else {
        remember(st, pid, ev);
    }
}

fn user_not_allowed(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    // User USER [from HOST] not allowed because REASON
    let Some(r) = m.strip_prefix("User ") else {
        return;
    };
    let Some(i) = crate::util::find(r, " not allowed because ") else {
        return;
    };
    let head = &r[..i];
    let reason = strip_preauth(&r[i + 21..]);
    auth(ev, "ssh_user_not_allowed", Outcome::Failure);
    set(ev, line, Field::EVENT_REASON, reason);
    match crate::util::rfind(head, " from ") {
        Some(j) => {
            set(ev, line, Field::USER_NAME, &head[..j]);
            set_source(ev, line, &head[j + 6..]);
        }
        None => {
            if let Some((u, h)) = head.rsplit_once(' ') {
                if set_source(ev, line, h) {
                    set(ev, line, Field::USER_NAME, u);
                } else {
                    set(ev, line, Field::USER_NAME, head);
                }
            } else {
                set(ev, line, Field::USER_NAME, head);
            }
        }
    }
    if ev.source_ip.is_none() && ev.get(Field::SOURCE_ADDRESS).is_none() {
        // `account is locked` names no address: the connection's later lines will.
        ev.outcome = Outcome::Unknown;
        ev.event_type = EventType::Info;
        if let Some(c) = st.conn(pid) {
            c.hostless_failure = true;
        }
        attribute(ev, pid, st);
        return;
    }
    mark_failed(st, pid, ev);
}

fn received(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    // Received disconnect from HOST[ port N]:CODE: TEXT [preauth]
    let Some(r) = m.strip_prefix("Received disconnect from ") else {
        return;
    };
    ev.category = Category::Network;
    ev.event_type = EventType::End;
    ev.action = Some("ssh_disconnect");
    let tok = token(r).0;
    let mut host_s = tok.trim_end_matches(':');
    if crate::util::parse_ip(host_s).is_none() && host_s.contains(':') {
        // `HOST:11:` or an IPv6 address followed by `:code`: the longest prefix that parses
        for (i, _) in tok.match_indices(':') {
            if crate::util::parse_ip(&tok[..i]).is_some() {
                host_s = &tok[..i];
            }
        }
    }
    set_source(ev, line, host_s);
    let after = &r[host_s.len()..];
    let (port, tail) = host_tail(after);
    ev.source_port = port;
    let tail = tail.trim_start_matches(':').trim_start();
    let (code, text) = tail.split_once(':').unwrap_or((tail, ""));
    let code = code.trim();
    set(ev, line, Field::EVENT_CODE, code);
    let text = strip_preauth(text.trim());
    if !text.is_empty() {
        set(ev, line, Field::EVENT_REASON, text);
    }
    let c = st.conn(pid).cloned().unwrap_or_default();
    if code == "3" && text.contains("Auth fail") || code == "14" {
        auth(ev, "ssh_disconnect", Outcome::Failure);
        ev.category = Category::Authentication;
    } else if c.hostless_failure || (m.trim_end().ends_with("[preauth]") && line_has_error(line)) {
        // The connection failed earlier without naming its address; this line completes it.
        auth(ev, "ssh_disconnect", Outcome::Failure);
        if let Some(c) = st.conn(pid) {
            c.hostless_failure = false;
        }
    }
    remember(st, pid, ev);
}

fn line_has_error(line: &str) -> bool {
    line.contains("]: error: Received disconnect")
}

/// `[invalid user |authenticating user |user ]USER HOST[ port N][: reason]`, read from the
/// end (the user name is attacker-controlled and may contain anything).
fn user_host_tail(s: &str) -> (&'static str, Option<&str>, &str, Option<u16>, Option<&str>) {
    let (kind, r) = if let Some(x) = s.strip_prefix("invalid user ") {
        ("invalid", x)
    } else if let Some(x) = s.strip_prefix("authenticating user ") {
        ("authenticating", x)
    } else if let Some(x) = s.strip_prefix("user ") {
        ("user", x)
    } else {
        ("", s)
    };
    // the last ` port N` (optionally `N:` followed by a reason)
    let mut port = None;
    let mut reason = None;
    let mut body = r;
    if let Some(i) = crate::util::rfind(r, " port ") {
        let after = &r[i + 6..];
        let (p, rest) = token(after);
        let (p, colon) = match p.strip_suffix(':') {
            Some(x) => (x, true),
            None => (p, false),
        };
        if let Some(n) = parse_port(p) {
            port = Some(n);
            body = &r[..i];
            if colon {
                reason = Some(rest.trim());
            }
        }
    }
    if port.is_none() {
        if let Some(i) = crate::util::find(body, ": ") {
            reason = Some(&body[i + 2..]);
            body = &body[..i];
        }
    }
    let body = body.trim_end();
    let (user, host) = match body.rsplit_once(' ') {
        Some((u, h)) if !kind.is_empty() => (Some(u.trim_start()), h),
        None if !kind.is_empty() => (Some(""), body.trim_start()),
        _ => (None, body),
    };
    (kind, user, host, port, reason)
}

/// `Disconnecting`/`Disconnected` and `Connection closed|reset by`: the end of a connection.
/// Within the pre-authentication phase (`[preauth]`) it is a failed attempt.
fn closed(
    ev: &mut Event,
    line: &str,
    body: &str,
    preauth: bool,
    action: &'static str,
    pid: Option<u32>,
    st: &mut State,
) {
    ev.category = Category::Network;
    ev.event_type = EventType::End;
    ev.action = Some(action);
    let (kind, user, host, port, reason) = user_host_tail(body);
    set_source(ev, line, host);
    ev.source_port = port;
    if let Some(u) = user {
        if u.is_empty() {
            ev.set(Field::USER_NAME, Val::Str("".into()));
        } else {
            set(ev, line, Field::USER_NAME, u);
        }
        ev.category = Category::Authentication;
    }
    if kind == "invalid" {
        ev.set(Field::EVENT_REASON, Val::Str("invalid user".into()));
    }
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        set(ev, line, Field::EVENT_REASON, r);
    }
    let change_user =
        reason.is_some_and(|r| r.starts_with("Change of username or service not allowed"));
    let pending = st.conn(pid).is_some_and(|c| c.hostless_failure);
    if (preauth || change_user || pending) && ev.source_ip.is_some() {
        ev.outcome = Outcome::Failure;
        ev.event_type = EventType::Denied;
        if let Some(c) = st.conn(pid) {
            c.hostless_failure = false;
        }
    }
    remember(st, pid, ev);
}

fn disconnect(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    if let Some(r) = m.strip_prefix("Disconnecting: Too many authentication failures") {
        auth(ev, "ssh_max_attempts", Outcome::Failure);
        if let Some(u) = r.trim().strip_prefix("for ") {
            set(ev, line, Field::USER_NAME, strip_preauth(u));
        }
        hostless_or_failure(ev, pid, st, false, Outcome::Failure);
        return;
    }
    let preauth = m.trim_end().ends_with("[preauth]");
    let r = m.split_once(' ').map(|x| x.1).unwrap_or("");
    let r = r.strip_prefix("from ").unwrap_or(r);
    closed(
        ev,
        line,
        strip_preauth(r),
        preauth,
        "ssh_disconnect",
        pid,
        st,
    );
    if let Some(pid) = pid {
        if ev.outcome != Outcome::Failure {
            st.conns.remove(&pid);
        }
    }
}

fn connection(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    ev.category = Category::Network;
    if let Some(r) = m.strip_prefix("Connection from ") {
        // Connection from HOST port N on ADDR port M [rdomain X]
        ev.event_type = EventType::Start;
        ev.action = Some("ssh_connection");
        let (host, rest) = token(r);
        set_source(ev, line, host);
        let mut it = rest.split(' ');
        while let Some(w) = it.next() {
            match w {
                "port" => {
                    let p = it.next().and_then(parse_port);
                    if ev.destination_ip.is_none() {
                        ev.source_port = p;
                    } else {
                        ev.destination_port = p;
                    }
                }
                "on" => ev.destination_ip = it.next().and_then(crate::util::parse_ip),
                _ => {}
            }
        }
        remember(st, pid, ev);
        return;
    }
    for p in ["Connection closed by ", "Connection reset by "] {
        if let Some(r) = m.strip_prefix(p) {
            let preauth = r.trim_end().ends_with("[preauth]");
            closed(
                ev,
                line,
                strip_preauth(r),
                preauth,
                "ssh_connection_closed",
                pid,
                st,
            );
            return;
        }
    }
}

/// Scanners and protocol-level probes (no authentication attempted): failed connection
/// attempts. Lines that name no address take the connection's, or wait for it.
fn recon(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    ev.category = Category::Network;
    ev.event_type = EventType::Denied;
    ev.action = Some("ssh_protocol_failure");
    if let Some(r) = m.strip_prefix("SSH: Server;Ltype: ") {
        // libssh's informational trace: `Remote: 127.0.0.1-1780;` names the connection
        ev.event_type = EventType::Info;
        ev.action = Some("ssh_protocol_info");
        if let Some(i) = crate::util::find(r, "Remote: ") {
            let a = &r[i + 8..];
            let a = a.split(';').next().unwrap_or(a);
            let a = a.rsplit_once('-').map(|x| x.0).unwrap_or(a);
            set_source(ev, line, a);
        }
        remember(st, pid, ev);
        return;
    }
    // the address follows the last ` from ` / `Unable to negotiate with ` / `Connection from `
    let mut found = false;
    let keys = [" from ", "Unable to negotiate with ", "authentication for "];
    let mut best: Option<&str> = None;
    for key in keys {
        if let Some(i) = m.rfind(key) {
            let r = &m[i + key.len()..];
            let r = r.strip_prefix("connection from ").unwrap_or(r);
            if best.is_none_or(|b| r.len() < b.len()) {
                best = Some(r);
            }
        }
    }
    if let Some(r) = best {
        let (host, _) = token(r);
        let host = host.trim_end_matches([':', ',']);
        if set_source(ev, line, host) && ev.source_ip.is_some() {
            let (port, _) = host_tail(&r[token(r).0.len()..]);
            ev.source_port = port;
            found = true;
        } else {
            ev.fields
                .retain(|(f, _)| *f != Field::SOURCE_ADDRESS && *f != Field::SOURCE_DOMAIN);
        }
    }
    hostless_or_failure(ev, pid, st, found, Outcome::Failure);
}

/// A failure that may name no address: counted now if the connection's address is known,
/// else held until a later line of the connection names it.
fn hostless_or_failure(
    ev: &mut Event,
    pid: Option<u32>,
    st: &mut State,
    has_addr: bool,
    outcome: Outcome,
) {
    if has_addr {
        ev.outcome = outcome;
        remember(st, pid, ev);
        return;
    }
    attribute(ev, pid, st);
    if ev.source_ip.is_some() {
        ev.outcome = outcome;
    } else {
        ev.outcome = Outcome::Unknown;
        ev.event_type = EventType::Info;
        if let Some(c) = st.conn(pid) {
            c.hostless_failure = true;
        }
    }
}

fn pam_auth(ev: &mut Event, line: &str, m: &str, pid: Option<u32>, st: &mut State) {
    // pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=H [user=U]
    crate::host::pam(ev, line, m, "sshd");
    if ev.outcome != Outcome::Failure {
        return;
    }
    // PAM's failure and sshd's `Failed password` describe one attempt: count sshd's. A PAM
    // failure counts by itself only when it names a second distinct user on the connection
    // (sshd reports one user per connection).
    let user: Box<str> = ev
        .get_str(Field::USER_NAME)
        .or_else(|| {
            let r = &m[m.find(';').unwrap_or(0)..];
            kv(r, "ruser").filter(|u| !u.is_empty()).map(Into::into)
        })
        .map(|u| u.into_owned().into_boxed_str())
        .unwrap_or_default();
    ev.outcome = Outcome::Unknown;
    ev.event_type = EventType::Info;
    if let Some(c) = st.conn(pid) {
        if ev.source_ip.is_some() {
            c.ip = ev.source_ip;
        }
        if !user.is_empty() && !c.pam_users.contains(&user) {
            c.pam_users.push(user.clone());
            if c.pam_users.len() >= 2 {
                c.pam_counted.push(user.clone());
                ev.outcome = Outcome::Failure;
                ev.event_type = EventType::Denied;
            }
        }
        c.pam_pending = Some(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn run(msgs: &[&str]) -> Vec<Event> {
        let mut st = State::default();
        msgs.iter()
            .map(|m| {
                let mut ev = Event::new(
                    bytes::Bytes::copy_from_slice(m.as_bytes()),
                    Arc::new(Origin::default()),
                    0,
                );
                let raw = ev.raw.clone();
                let line = raw.as_str();
                parse(&mut ev, line, line, Some(7), &mut st);
                ev
            })
            .collect()
    }

    fn one(m: &str) -> Event {
        run(&[m]).pop().unwrap()
    }

    #[test]
    fn failed_password_variants() {
        let e = one("Failed password for invalid user admin from 203.0.113.9 port 51000 ssh2");
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user_name().unwrap(), "admin");
        assert_eq!(e.source_ip.unwrap().to_string(), "203.0.113.9");
        assert_eq!(e.source_port, Some(51000));
        let e = one("Failed password for root from 2001:db8::1 port 22 ssh2");
        assert_eq!(e.source_ip.unwrap().to_string(), "2001:db8::1");
        let e = one("Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2");
        assert_eq!(e.source_ip.unwrap().to_string(), "127.0.0.1");
        let e = one("Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2");
        assert_eq!(e.source_ip.unwrap().to_string(), "127.0.0.1");
    }

    #[test]
    fn accepted_login() {
        let e =
            one("Accepted publickey for deploy from 10.0.0.5 port 40000 ssh2: ED25519 SHA256:abc");
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user_name().unwrap(), "deploy");
        assert_eq!(e.get_str(Field::SSH_METHOD).unwrap(), "publickey");
        assert_eq!(
            e.get_str(Field::SSH_SIGNATURE).unwrap(),
            "ED25519 SHA256:abc"
        );
    }

    #[test]
    fn invalid_user_and_not_allowed() {
        let e = one("Invalid user ftp from 192.0.2.2 port 37220");
        assert_eq!(
            (e.outcome, e.user_name().unwrap().as_ref()),
            (Outcome::Failure, "ftp")
        );
        let e = one("User root from example.com not allowed because not listed in AllowUsers");
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.source_text().unwrap(), "example.com");
    }

    #[test]
    fn hostless_failure_is_completed_by_the_connection() {
        let ev = run(&[
            "User root not allowed because account is locked",
            "input_userauth_request: invalid user root [preauth]",
            "Received disconnect from 198.51.100.76 port 58846:11: Bye Bye [preauth]",
        ]);
        assert_eq!(ev[0].outcome, Outcome::Unknown);
        assert_eq!(ev[2].outcome, Outcome::Failure);
        assert_eq!(ev[2].source_ip.unwrap().to_string(), "198.51.100.76");
    }

    #[test]
    fn pam_failure_is_not_counted_twice() {
        let ev = run(&[
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=root",
            "Failed password for root from 192.0.2.1 port 5000 ssh2",
        ]);
        assert_eq!(ev[0].outcome, Outcome::Unknown);
        assert_eq!(ev[0].user_name().unwrap(), "root");
        assert_eq!(ev[1].outcome, Outcome::Failure);
    }

    #[test]
    fn scanners() {
        let e = one("Unable to negotiate with 198.51.100.3 port 4444: no matching key exchange method found.");
        assert_eq!(e.action, Some("ssh_protocol_failure"));
        assert_eq!(e.source_ip.unwrap().to_string(), "198.51.100.3");
    }
}
