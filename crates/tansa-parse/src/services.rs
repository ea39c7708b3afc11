//! Network services whose authentication failures matter on a rented server: FTP (vsftpd,
//! proftpd, pure-ftpd), mail (dovecot, postfix, sendmail, courier), dropbear, OpenVPN,
//! Roundcube, MongoDB.

use rustc_hash::FxHashMap;
use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::syslog::Header;
use crate::time::{self, TimeCtx};
use crate::util::{parse_ip, parse_port, set, set_source, token};
use crate::{host, Ctx};

fn fail(ev: &mut Event, dataset: &'static str, action: &'static str) {
    ev.dataset = dataset;
    ev.category = Category::Authentication;
    ev.event_type = EventType::Denied;
    ev.outcome = Outcome::Failure;
    ev.action = Some(action);
}

/// `HOST:PORT` (IPv4, `::ffff:v4`, or bracketless v6 with the port after the last colon).
fn host_colon_port(ev: &mut Event, line: &str, s: &str) -> bool {
    if set_source(ev, line, s) && ev.source_ip.is_some() {
        return true;
    }
    if let Some(i) = s.rfind(':') {
        if let Some(ip) = parse_ip(&s[..i]) {
            ev.source_ip = Some(ip);
            ev.source_port = parse_port(&s[i + 1..]);
            return true;
        }
    }
    false
}

/// Programs without a dedicated module; `prog` may be empty when the header had none.
pub(crate) fn dispatch(
    ev: &mut Event,
    line: &str,
    prog: &str,
    msg: &str,
    h: &Header,
    ctx: &mut Ctx,
) {
    match prog {
        "dropbear" => dropbear(ev, line, msg),
        "vsftpd" => vsftpd_msg(ev, line, msg),
        "proftpd" => proftpd(ev, line, msg),
        "pure-ftpd" => pureftpd(ev, line, msg),
        "roundcube" => roundcube_msg(ev, line, msg),
        "sm-mta" | "sendmail" | "sm-acceptingconnections" => sendmail(ev, line, msg),
        "imapd" | "pop3d" | "imapd-ssl" | "pop3d-ssl" | "courierpop3login" | "courier-imapd"
        | "courieresmtpd" | "authdaemond" => courier(ev, line, msg),
        "mongod" | "mongodb" => {
            mongodb_msg(ev, line, msg, &mut ctx.mongo);
        }
        "systemd" if msg.starts_with("pam_") => host::pam(ev, line, msg, prog),
        _ if prog.starts_with("dovecot")
            || prog.ends_with("-login")
            || prog.starts_with("auth-worker")
            || prog == "auth" =>
        {
            // the tag itself may carry `auth(user,ip,...)`
            let tag_start = h.program.map(|p| p.0).unwrap_or(h.msg);
            let tag = &line[tag_start..h.msg];
            if let Some(args) = tag.strip_prefix("auth(").and_then(|t| t.split(')').next()) {
                dovecot_backend(ev, line, args, msg);
            } else {
                dovecot(ev, line, msg)
            }
        }
        _ if prog.starts_with("postfix") => postfix(ev, line, msg),
        _ if prog.starts_with("ovpn") || prog.starts_with("openvpn") => openvpn(ev, line, msg),
        _ => {}
    }
}

fn dropbear(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "dropbear";
    // `[825] Jul 10 23:53:52 Bad password attempt ...` (dropbear's own stamp inside)
    let mut m = msg;
    if m.starts_with('[') {
        if let Some(i) = m.find("] ") {
            m = &m[i + 2..];
        }
    }
    if let Some((_, e)) = time::bsd(m.as_bytes()) {
        m = m[e..].trim_start();
    }
    let lower = m.to_ascii_lowercase();
    if lower.starts_with("bad password attempt for")
        || lower.starts_with("login attempt for nonexistent user")
        || lower.starts_with("exit before auth") && lower.contains("max auth tries")
        || lower.starts_with("bad pam password attempt")
    {
        fail(ev, "dropbear", "ssh_login");
        if let Some(i) = m.find('\'') {
            if let Some(j) = m[i + 1..].find('\'') {
                set(ev, line, Field::USER_NAME, &m[i + 1..i + 1 + j]);
            }
        }
        if let Some(i) = m.rfind(" from ") {
            let a = token(&m[i + 6..])
                .0
                .trim_end_matches(':')
                .trim_start_matches('<')
                .trim_end_matches('>');
            host_colon_port(ev, line, a);
        }
    } else if let Some(r) = m
        .strip_prefix("Password auth succeeded for '")
        .or_else(|| m.strip_prefix("Pubkey auth succeeded for '"))
    {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Start;
        ev.outcome = Outcome::Success;
        ev.action = Some("ssh_login");
        if let Some(j) = r.find('\'') {
            set(ev, line, Field::USER_NAME, &r[..j]);
        }
        if let Some(i) = m.rfind(" from ") {
            host_colon_port(ev, line, token(&m[i + 6..]).0);
        }
    }
}

fn vsftpd_msg(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "vsftpd";
    if msg.starts_with("pam_")
        || msg.starts_with("(pam_unix)")
        || msg.starts_with("authentication failure;")
    {
        return host::pam(ev, line, msg, "vsftpd");
    }
    // `[user] FAIL LOGIN: Client "1.2.3.4"` / `[pid 1] [user] OK LOGIN: Client "..."`
    vsftpd_body(ev, line, msg);
}

fn vsftpd_body(ev: &mut Event, line: &str, msg: &str) {
    let Some(i) = msg.find(" LOGIN: Client \"") else {
        return;
    };
    let before = &msg[..i];
    let status = before.rsplit(' ').next().unwrap_or("");
    let client = &msg[i + 16..];
    let client = &client[..client.find('"').unwrap_or(client.len())];
    set_source(ev, line, client);
    if let Some(u) = before
        .rfind("] [")
        .map(|j| &before[j + 3..])
        .or_else(|| before.strip_prefix('['))
    {
        if let Some(e) = u.find(']') {
            set(ev, line, Field::USER_NAME, &u[..e]);
        }
    }
    ev.dataset = "vsftpd";
    ev.category = Category::Authentication;
    ev.action = Some("ftp_login");
    if status == "FAIL" {
        ev.event_type = EventType::Denied;
        ev.outcome = Outcome::Failure;
    } else if status == "OK" {
        ev.event_type = EventType::Start;
        ev.outcome = Outcome::Success;
    }
}

/// vsftpd's own log file: `Fri Jan 19 12:20:33 2007 [pid 27202] [anonymous] FAIL LOGIN: Client "1.2.3.4"`.
pub(crate) fn vsftpd_file(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    let Some((c, end)) = time::ctime(line.as_bytes()) else {
        return false;
    };
    if !line[end..].starts_with(" [pid ") {
        return false;
    }
    ev.time_text = Some((0, end as u32));
    if let Some(t) = tc.local(c) {
        ev.timestamp = t;
    }
    ev.dataset = "vsftpd";
    vsftpd_body(ev, line, &line[end..]);
    true
}

fn proftpd(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "proftpd";
    // `HOST (NAME[ADDR]): MESSAGE` or `HOST (NAME[ADDR]) - MESSAGE`; the real address is in
    // the first `(...[ADDR])`, which precedes anything the client typed.
    let Some(o) = msg.find(" (") else {
        if msg.starts_with("pam_") || msg.starts_with("(pam_unix)") {
            host::pam(ev, line, msg, "proftpd");
        }
        return;
    };
    let rest = &msg[o + 2..];
    let Some(close) = rest.find("]) ").or_else(|| rest.find("]):")) else {
        return;
    };
    let inner = &rest[..close];
    let addr = inner.rfind('[').map(|i| &inner[i + 1..]).unwrap_or("");
    set_source(ev, line, addr);
    let text = rest[close + 2..].trim_start_matches([':', ' ', '-']);
    if text.starts_with("USER ")
        && (text.contains("(Login failed)") || text.contains("no such user found"))
        || text.contains("SECURITY VIOLATION")
        || text.contains("Maximum login attempts")
        || text.contains("Login failed")
    {
        fail(ev, "proftpd", "ftp_login");
        if let Some(u) = text.strip_prefix("USER ") {
            let e = u.find([':', ' ']).unwrap_or(u.len());
            set(ev, line, Field::USER_NAME, &u[..e]);
        } else if let Some(i) = text.find(" login attempted") {
            // `SECURITY VIOLATION: Root login attempted`
            let head = &text[..i];
            set(
                ev,
                line,
                Field::USER_NAME,
                head.rsplit(' ').next().unwrap_or(head),
            );
        }
    } else if text.starts_with("USER ") && text.contains("Login successful") {
        ev.category = Category::Authentication;
        ev.outcome = Outcome::Success;
        ev.event_type = EventType::Start;
        ev.action = Some("ftp_login");
    }
}

fn pureftpd(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "pure-ftpd";
    if msg.starts_with("(pam_unix)") || msg.starts_with("pam_") {
        return host::pam(ev, line, msg, "pure-ftpd");
    }
    // `(?@24.79.92.194) [WARNING] Authentication failed for user [Administrator]`
    if let Some(r) = msg.strip_prefix('(') {
        if let Some(close) = r.find(')') {
            let who = &r[..close];
            let addr = who.rsplit('@').next().unwrap_or("");
            set_source(ev, line, addr);
            let text = &r[close + 1..];
            if text.contains("Authentication failed for user") {
                fail(ev, "pure-ftpd", "ftp_login");
                if let Some(i) = text.find('[').and_then(|_| text.rfind('[')) {
                    set(
                        ev,
                        line,
                        Field::USER_NAME,
                        text[i + 1..].trim_end_matches(']'),
                    );
                }
            }
        }
    }
}

fn dovecot(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "dovecot";
    let mut m = msg;
    // strip `imap-login: `, `auth: `, `auth-worker(1): `, `Info: ` prefixes
    while let Some(i) = m.find(": ") {
        let head = &m[..i];
        if head.len() < 40 && !head.contains([' ', '=', ',']) || head.starts_with("conn unix:") {
            m = &m[i + 2..];
        } else {
            break;
        }
    }
    if m.starts_with("pam_") {
        return host::pam(ev, line, m, "dovecot");
    }
    if let Some(r) = find_kv(m, "rip=") {
        set_source(ev, line, r);
    }
    if let Some(u) = m.find("user=<").map(|i| &m[i + 6..]) {
        if let Some(e) = u.find('>') {
            set(ev, line, Field::USER_NAME, &u[..e]);
        }
    }
    if m.contains("(auth failed")
        || m.contains("(tried to use disabled")
        || m.contains("(tried to use disallowed")
        || m.contains("(proxy dest auth failed)")
        || m.contains("(no auth attempts")
        || m.contains("(disconnected before auth was ready")
        || m.contains("(client didn't finish SASL auth")
        || m.contains("(disconnected during TLS handshake)")
        || m.contains("(tls_handshake_not_finished)")
    {
        fail(ev, "dovecot", "mail_login");
        return;
    }
    // `pam(user,1.2.3.4): ...`, `sql(user,ip,<session>): unknown user`
    for backend in [
        "pam(",
        "sql(",
        "ldap(",
        "passwd-file(",
        "passwd(",
        "checkpassword(",
        "shadow(",
    ] {
        if let Some(i) = m.find(backend) {
            let r = &m[i + backend.len()..];
            let Some(close) = r.find("): ") else { continue };
            let args = &r[..close];
            let text = &r[close + 3..];
            let mut parts = args.split(',');
            let user = parts.next().unwrap_or("");
            let ip = parts.next().unwrap_or("");
            if dovecot_failure(text) {
                fail(ev, "dovecot", "mail_login");
                set(ev, line, Field::USER_NAME, user);
                set_source(ev, line, ip);
                return;
            }
        }
    }
    if m.starts_with("Login: ") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Start;
        ev.outcome = Outcome::Success;
        ev.action = Some("mail_login");
    }
}

fn dovecot_failure(text: &str) -> bool {
    let t = text.trim_start_matches("Info: ");
    let t = t
        .split_once(": ")
        .filter(|(b, _)| !b.contains(' '))
        .map(|x| x.1)
        .unwrap_or(t);
    t.starts_with("unknown user")
        || t.starts_with("Password mismatch")
        || t.starts_with("pam_authenticate() failed")
        || t.starts_with("invalid credentials")
        || t.contains("password mismatch")
}

/// `auth(user,ip,mech)<session>: Info: sql: Password mismatch`.
fn dovecot_backend(ev: &mut Event, line: &str, args: &str, msg: &str) {
    ev.dataset = "dovecot";
    let mut parts = args.split(',');
    let user = parts.next().unwrap_or("");
    let ip = parts.next().unwrap_or("");
    if dovecot_failure(msg) {
        fail(ev, "dovecot", "mail_login");
        set(ev, line, Field::USER_NAME, user);
        set_source(ev, line, ip);
    }
}

fn find_kv<'a>(m: &'a str, key: &str) -> Option<&'a str> {
    let i = m.find(key)?;
    let v = &m[i + key.len()..];
    Some(&v[..v.find([',', ' ']).unwrap_or(v.len())])
}

fn postfix(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "postfix";
    ev.category = Category::Email;
    // `warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: ...`
    // `NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 ...`
    let client = msg.find("]: ").and_then(|e| {
        let head = &msg[..e];
        head.rfind('[').map(|s| &head[s + 1..])
    });
    if let Some(c) = client {
        set_source(ev, line, c);
    }
    if msg.contains("SASL") && msg.contains("authentication failed") {
        fail(ev, "postfix", "smtp_auth");
        if let Some(u) = find_kv(msg, "sasl_username=") {
            set(ev, line, Field::USER_NAME, u);
        }
    } else if msg.contains(": reject: ") || msg.contains("NOQUEUE: reject") {
        ev.event_type = EventType::Denied;
        ev.outcome = Outcome::Failure;
        ev.action = Some("smtp_reject");
    } else if let Some(r) = msg.strip_prefix("connect from ") {
        ev.event_type = EventType::Connection;
        ev.action = Some("smtp_connect");
        if let Some(s) = r.find('[') {
            set_source(ev, line, r[s + 1..].trim_end_matches(']'));
        }
    }
}

fn sendmail(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "sendmail";
    ev.category = Category::Email;
    if msg.contains("possible SMTP attack: command=AUTH") || msg.contains("AUTH failure") {
        fail(ev, "sendmail", "smtp_auth");
        // the relay address is the last `[ip]` before the message text
        let head = msg.find(": possible").map(|i| &msg[..i]).unwrap_or(msg);
        let mut addr = None;
        for part in head.split('[').skip(1) {
            if let Some(e) = part.find(']') {
                if parse_ip(&part[..e]).is_some() {
                    addr = Some(&part[..e]);
                }
            }
        }
        if let Some(a) = addr {
            set_source(ev, line, a);
        }
        if let Some(u) = msg.find("user=").map(|i| &msg[i + 5..]) {
            set(
                ev,
                line,
                Field::USER_NAME,
                &u[..u.find(',').unwrap_or(u.len())],
            );
        }
    }
}

fn courier(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "courier";
    if let Some(r) = msg.strip_prefix("LOGIN FAILED, ") {
        fail(ev, "courier", "mail_login");
        for part in r.split(", ") {
            if let Some(u) = part.strip_prefix("user=") {
                set(ev, line, Field::USER_NAME, u);
            } else if let Some(ip) = part.strip_prefix("ip=[") {
                set_source(ev, line, ip.trim_end_matches(']'));
            }
        }
    }
}

fn openvpn(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "openvpn";
    ev.category = Category::Network;
    let (first, rest) = token(msg);
    let mut peer = first;
    if let Some(p) = peer.split('/').nth(1) {
        peer = p; // `cn/1.2.3.4:1194`
    }
    host_colon_port(ev, line, peer);
    if let Some(a) = msg.strip_prefix("TCP connection established with [AF_INET]") {
        host_colon_port(ev, line, a);
        ev.event_type = EventType::Connection;
        ev.action = Some("vpn_connection");
    } else if let Some((_, a)) =
        msg.split_once("TLS Error: cannot locate HMAC in incoming packet from [AF_INET]")
    {
        host_colon_port(ev, line, token(a).0);
        fail(ev, "openvpn", "vpn_authentication");
    } else if rest.starts_with("TLS Error: TLS handshake failed")
        || rest.starts_with("TLS Auth Error")
        || rest.starts_with("VERIFY ERROR")
        || rest.starts_with("SIGUSR1[soft,connection-reset] received")
        || rest.contains("AUTH_FAILED")
    {
        // the session restarts after a protocol error: a failed attempt by this peer
        fail(ev, "openvpn", "vpn_authentication");
    }
}

fn roundcube_msg(ev: &mut Event, line: &str, msg: &str) {
    ev.dataset = "roundcube";
    let mut m = msg;
    if m.starts_with('<') {
        if let Some(i) = m.find("> ") {
            m = &m[i + 2..];
        }
    }
    let lower_start = [
        "IMAP Error: Login failed for ",
        "FAILED login for ",
        "Failed login for ",
        "IMAP Error: Login failed ",
    ];
    if !lower_start.iter().any(|p| m.starts_with(p)) {
        return;
    }
    fail(ev, "roundcube", "webmail_login");
    // user text is attacker-controlled and may contain ` from `: the real address is the
    // last ` from ADDR` that precedes `. AUTHENTICATE`, ` in `, or the end
    let stop = ["AUTHENTICATE ", " in session ", " in /"]
        .iter()
        .filter_map(|s| m.find(s))
        .min()
        .unwrap_or(m.len());
    let head = &m[..stop];
    if let Some(i) = head.rfind(" from ") {
        let a = &head[i + 6..];
        let a = a
            .split(['(', ' '])
            .next()
            .unwrap_or(a)
            .trim_end_matches('.');
        set_source(ev, line, a);
        let u = head[..i].split(" for ").nth(1).unwrap_or("");
        let u = u.split(" against ").next().unwrap_or(u);
        if !u.is_empty() {
            set(ev, line, Field::USER_NAME, u);
        }
    }
}

/// Roundcube's own `errors`/`userlogins` log: `[22-Jan-2013 22:28:21 +0200]: MESSAGE`.
pub(crate) fn roundcube_file(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    let Some(r) = line.strip_prefix('[') else {
        return false;
    };
    let b = r.as_bytes();
    // `dd-Mon-yyyy HH:MM:SS [+zzzz|Zone]`
    if b.len() < 20 || b[2] != b'-' || b[6] != b'-' {
        return false;
    }
    let Some(month) = time::month_abbr(&b[3..]) else {
        return false;
    };
    let (Ok(day), Ok(year)) = (
        r.get(..2).unwrap_or("").parse::<u8>(),
        r.get(7..11).unwrap_or("").parse::<i32>(),
    ) else {
        return false;
    };
    let Some((h, mi, s, ns, end)) = time::hms(b, 12) else {
        return false;
    };
    let close = match r.find("]") {
        Some(c) => c,
        None => return false,
    };
    let c = time::Civil {
        year,
        month,
        day,
        hour: h,
        minute: mi,
        second: s,
        nanos: ns,
    };
    let zone = r[end..close].trim();
    ev.timestamp = match time::zone(zone.as_bytes(), 0) {
        Some((o, _)) => TimeCtx::with_offset(c, o),
        None => tc.local(c),
    }
    .unwrap_or(ev.timestamp);
    ev.time_text = Some((1, (1 + close) as u32));
    let msg = r[close + 1..].trim_start_matches(':').trim_start();
    ev.dataset = "roundcube";
    roundcube_msg(ev, line, msg);
    true
}

/// Per-stream MongoDB state: connections that failed to authenticate, by `[connN]`.
#[derive(Debug, Default)]
pub struct MongoState {
    failed: FxHashMap<Box<str>, ()>,
}

/// MongoDB text log: `2016-11-20T00:04:00.110+0100 [conn1] MESSAGE`, and JSON logs (4.4+).
pub(crate) fn mongodb(ev: &mut Event, line: &str, ctx: &mut Ctx) -> bool {
    let Some((c, off, end)) = time::iso(line.as_bytes()) else {
        return false;
    };
    let rest = &line[end..];
    // 2.x/3.x: ` [conn1] msg`; 3.x+: ` I ACCESS   [conn1] msg`
    let Some(o) = rest.find(" [") else {
        return false;
    };
    if o > 20 {
        return false;
    }
    ev.timestamp = match off {
        Some(o) => TimeCtx::with_offset(c, o),
        None => ctx.time.local(c),
    }
    .unwrap_or(ev.timestamp);
    ev.time_text = Some((0, end as u32));
    mongodb_msg(ev, line, &rest[o + 1..], &mut ctx.mongo)
}

fn mongodb_msg(ev: &mut Event, line: &str, m: &str, st: &mut MongoState) -> bool {
    let Some(close) = m.find("] ") else {
        return false;
    };
    let conn = &m[1..close];
    let text = &m[close + 2..];
    ev.dataset = "mongodb";
    ev.category = Category::Database;
    if text.starts_with("Failed to authenticate") || text.contains("Authentication failed") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Info;
        ev.action = Some("db_authentication");
        if let Some(u) = text.strip_prefix("Failed to authenticate ") {
            set(ev, line, Field::USER_NAME, token(u).0);
        }
        // the address comes with the connection's end: the attempt counts there
        st.failed.insert(conn.into(), ());
    } else if let Some(r) = text.strip_prefix("end connection ") {
        ev.event_type = EventType::End;
        ev.action = Some("db_connection_closed");
        host_colon_port(ev, line, token(r).0);
        if st.failed.remove(conn).is_some() {
            fail(ev, "mongodb", "db_authentication");
        }
    } else if let Some(r) = text.strip_prefix("connection accepted from ") {
        ev.event_type = EventType::Start;
        ev.action = Some("db_connection");
        host_colon_port(ev, line, token(r).0);
    }
    let _ = Val::Bool;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn run(f: impl Fn(&mut Event, &str), l: &str) -> Event {
        let mut ev = Event::new(
            bytes::Bytes::copy_from_slice(l.as_bytes()),
            Arc::new(Origin::default()),
            0,
        );
        let raw = ev.raw.clone();
        f(&mut ev, raw.as_str());
        ev
    }

    #[test]
    fn roundcube_injection_takes_the_real_address() {
        let e = run(|e, l| roundcube_msg(e, l, l), "IMAP Error: Login failed for admin from 127.0.0.1 from 1.2.3.4. AUTHENTICATE PLAIN: A0002 NO Login failed. user=admin from 127.0.0.1 in /x.php on line 205");
        assert_eq!(e.source_ip.unwrap().to_string(), "1.2.3.4");
        assert_eq!(e.outcome, Outcome::Failure);
    }

    #[test]
    fn dovecot_and_courier() {
        let e = run(|e, l| dovecot(e, l, l), "imap-login: Disconnected (auth failed, 2 attempts): user=<bob>, method=PLAIN, rip=49.176.98.87, lip=1.2.3.4, TLS");
        assert_eq!(
            (e.outcome, e.source_ip.unwrap().to_string()),
            (Outcome::Failure, "49.176.98.87".into())
        );
        assert_eq!(e.user_name().unwrap(), "bob");
        let e = run(|e, l| dovecot(e, l, l), "auth-worker(304): pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)");
        assert_eq!(e.source_ip.unwrap().to_string(), "1.2.3.4");
        let e = run(
            |e, l| courier(e, l, l),
            "LOGIN FAILED, user=tester, ip=[::ffff:192.0.2.5], port=[255]",
        );
        assert_eq!(e.source_ip.unwrap().to_string(), "192.0.2.5");
    }

    #[test]
    fn dropbear_lines() {
        let e = run(
            |e, l| dropbear(e, l, l),
            "Bad password attempt for 'root' from 1.2.3.4:60588",
        );
        assert_eq!((e.outcome, e.source_port), (Outcome::Failure, Some(60588)));
        assert_eq!(e.user_name().unwrap(), "root");
        let e = run(
            |e, l| dropbear(e, l, l),
            "login attempt for nonexistent user from ::ffff:198.51.100.215:60495",
        );
        assert_eq!(e.source_ip.unwrap().to_string(), "198.51.100.215");
    }
}
