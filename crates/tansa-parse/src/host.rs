//! Host programs that write to auth.log/secure: PAM modules, sudo, su, the shadow-utils
//! account tools (useradd, usermod, groupadd, userdel, passwd, chpasswd, gpasswd), cron and
//! crontab, systemd-logind.

use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::util::{kv, set, set_source, token};

/// A PAM module message (`pam_unix(svc:auth): ...`, legacy `(pam_unix) ...`).
pub fn pam(ev: &mut Event, line: &str, m: &str, default_service: &str) {
    let _ = default_service;
    // module and service: `pam_unix(sshd:auth):` / `pam_unix(auth):` / `pam_unix:` / `(pam_unix)`
    let (head, body) = if m.starts_with("authentication failure") || m.starts_with("check pass") {
        ("", m)
    } else {
        match crate::util::find(m, ": ").or_else(|| crate::util::find(m, ") ")) {
            Some(i) => (&m[..i], m[i + 1..].trim_start_matches([':', ' '])),
            None => (m, ""),
        }
    };
    // the PAM module (`pam_unix`, `pam_sss`, …) is the logger of the line
    let module = head
        .trim_start_matches('(')
        .split(['(', ')', ':'])
        .next()
        .unwrap_or("");
    if module.starts_with("pam") {
        set(ev, line, Field::LOG_LOGGER, module);
    }
    if let Some(o) = head.find('(') {
        let inner = head[o + 1..].trim_end_matches(')');
        if let Some((svc, kind)) = inner.split_once(':') {
            set(ev, line, Field::SERVICE_NAME, svc);
            if kind == "session" {
                return pam_session(ev, line, m);
            }
        }
    }
    let lower_fail = body.starts_with("authentication failure")
        || body.starts_with("auth could not identify")
        || body.contains("more authentication failures");
    if lower_fail {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Denied;
        ev.outcome = Outcome::Failure;
        ev.action = Some("pam_authentication_failure");
        let rest = &body[body.find(';').map(|i| i + 1).unwrap_or(0)..];
        pam_kv(ev, line, rest);
    } else if body.starts_with("check pass; user unknown") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Info;
        ev.action = Some("pam_user_unknown");
    } else if let Some(r) = body.strip_prefix("session opened for user ") {
        session_user(ev, line, r, true);
    } else if let Some(r) = body.strip_prefix("session closed for user ") {
        session_user(ev, line, r, false);
    } else if let Some(r) = body
        .strip_prefix("user ")
        .filter(|r| r.contains(" tally ") || r.contains("account temporarily locked"))
    {
        // pam_tally2 / pam_faillock: the account is locked after too many failures
        ev.category = Category::Authentication;
        ev.event_type = EventType::Denied;
        ev.outcome = Outcome::Failure;
        ev.action = Some("pam_account_locked");
        let (u, rest) = token(r);
        set(ev, line, Field::USER_NAME, u);
        if let Some(uid) = rest.strip_prefix('(').and_then(|x| x.split(')').next()) {
            set(ev, line, Field::USER_ID, uid);
        }
    }
}

/// `logname= uid=0 euid=0 tty=ssh ruser=R rhost=H  user=U`. PAM writes `user=` last, so
/// attacker text in `ruser` or `user` cannot move the real `rhost`: the user part starts at
/// the first ` user=` after the first `rhost=`, and the address is the last `rhost=` before it.
fn pam_kv(ev: &mut Event, line: &str, rest: &str) {
    let first_rhost = crate::util::find(rest, "rhost=");
    let split = first_rhost
        .and_then(|f| crate::util::find(&rest[f..], " user=").map(|i| f + i))
        .unwrap_or(rest.len());
    let head = &rest[..split];
    let last_rhost = crate::util::rfind(head, "rhost=");
    if let Some(r) = last_rhost {
        let v = &head[r + 6..];
        let end = v.find(' ').unwrap_or(v.len());
        set_source(ev, line, &v[..end]);
    }
    let user = rest
        .get(split + 6..)
        .map(str::trim)
        .filter(|u| !u.is_empty());
    match user {
        Some(u) => set(ev, line, Field::USER_NAME, u),
        None => {
            // `ruser=` runs to the real `rhost=`
            if let Some(i) = crate::util::find(head, "ruser=") {
                let end = last_rhost.filter(|&r| r > i).unwrap_or(head.len());
                let r = head[i + 6..end].trim();
                if !r.is_empty() {
                    set(ev, line, Field::USER_NAME, r);
                }
            }
        }
    }
    if let Some(t) = kv(rest, "tty").filter(|t| !t.is_empty()) {
        set(ev, line, Field::PROCESS_TTY, t);
    }
    // the uid of the process asking PAM (sshd runs as 0), not the user authenticating
    if let Some(u) = kv(rest, "uid").filter(|u| !u.is_empty()) {
        set(ev, line, Field::PROCESS_REAL_USER_ID, u);
    }
}

/// `pam_unix(x:session): session opened for user U(uid=N) by V(uid=M)` / `session closed`.
pub fn pam_session(ev: &mut Event, line: &str, m: &str) {
    if let Some(i) = crate::util::find(m, "session opened for user ") {
        session_user(ev, line, &m[i + 24..], true);
    } else if let Some(i) = crate::util::find(m, "session closed for user ") {
        session_user(ev, line, &m[i + 24..], false);
    }
}

fn session_user(ev: &mut Event, line: &str, r: &str, open: bool) {
    ev.category = Category::Session;
    ev.event_type = if open {
        EventType::Start
    } else {
        EventType::End
    };
    ev.action = Some(if open {
        "session_opened"
    } else {
        "session_closed"
    });
    let (user, rest) = token(r.trim_end());
    let (name, uid) = match crate::util::find(user, "(uid=") {
        Some(i) => (&user[..i], Some(user[i + 5..].trim_end_matches(')'))),
        None => (user, None),
    };
    set(ev, line, Field::USER_NAME, name);
    if let Some(uid) = uid {
        set(ev, line, Field::USER_ID, uid);
    }
    if let Some(by) = rest.strip_prefix("by ") {
        let by = by.trim();
        let n = by.split('(').next().unwrap_or("");
        if !n.is_empty() {
            set(ev, line, Field::USER_EFFECTIVE_NAME, n);
        }
    }
}

/// sudo: `USER : TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls -l` and its failures.
pub fn sudo(ev: &mut Event, line: &str, m: &str) {
    ev.dataset = "sudo";
    let m = m.trim_start();
    if m.starts_with("pam_") {
        return pam(ev, line, m, "sudo");
    }
    let Some((user, rest)) = m.split_once(" : ") else {
        return;
    };
    let user = user.trim();
    set(ev, line, Field::USER_NAME, user);
    ev.category = Category::Process;
    ev.event_type = EventType::Start;
    ev.action = Some("sudo");
    ev.outcome = Outcome::Success;
    let mut parts = rest.split(" ; ");
    let mut first = true;
    for p in parts.by_ref() {
        if let Some(v) = p.strip_prefix("TTY=") {
            set(ev, line, Field::PROCESS_TTY, v);
        } else if let Some(v) = p.strip_prefix("PWD=") {
            set(ev, line, Field::PROCESS_WORKING_DIRECTORY, v);
        } else if let Some(v) = p.strip_prefix("USER=") {
            set(ev, line, Field::USER_TARGET_NAME, v);
        } else if let Some(v) = p.strip_prefix("GROUP=") {
            set(ev, line, Field::GROUP_NAME, v);
        } else if let Some(v) = p.strip_prefix("COMMAND=") {
            // the command runs to the end of the line (it may contain ` ; `)
            let (s, _) = crate::util::span(line, v);
            let cmd = &line[s..].trim_end();
            set(ev, line, Field::PROCESS_COMMAND_LINE, cmd);
            let exe = cmd.split(' ').next().unwrap_or("");
            set(ev, line, Field::PROCESS_EXECUTABLE, exe);
            break;
        } else if first {
            // `3 incorrect password attempts`, `user NOT in sudoers`, `command not allowed`
            set(ev, line, Field::EVENT_REASON, p);
            ev.outcome = Outcome::Failure;
            ev.event_type = EventType::Denied;
            if p.contains("incorrect password") || p.contains("authentication failure") {
                ev.category = Category::Authentication;
                ev.action = Some("sudo_authentication_failure");
            } else {
                ev.action = Some("sudo_denied");
            }
        }
        first = false;
    }
}

/// su: `(to root) alice on pts/0`, `Successful su for root by alice`, `FAILED SU (to root) alice on pts/0`.
pub fn su(ev: &mut Event, line: &str, m: &str) {
    ev.dataset = "su";
    if m.starts_with("pam_") {
        return pam(ev, line, m, "su");
    }
    ev.category = Category::Authentication;
    ev.action = Some("su");
    let (failed, r) = if let Some(r) = m.strip_prefix("BAD SU ") {
        // `BAD SU alice to root on /dev/ttyp0`
        let (u, rest) = token(r);
        set(ev, line, Field::USER_NAME, u);
        if let Some(t) = rest.strip_prefix("to ") {
            let (t, rest) = token(t);
            set(ev, line, Field::USER_TARGET_NAME, t);
            if let Some(tty) = rest.strip_prefix("on ") {
                set(ev, line, Field::PROCESS_TTY, tty.trim());
            }
        }
        ev.outcome = Outcome::Failure;
        ev.event_type = EventType::Denied;
        return;
    } else if let Some(r) = m.strip_prefix("failed: ") {
        // `failed: ttyq4 changing from ldap to root`
        let (tty, rest) = token(r);
        set(ev, line, Field::PROCESS_TTY, tty);
        if let Some(t) = rest.rsplit(" to ").next().filter(|_| rest.contains(" to ")) {
            set(ev, line, Field::USER_TARGET_NAME, t.trim());
        }
        ev.outcome = Outcome::Failure;
        ev.event_type = EventType::Denied;
        return;
    } else if let Some(r) = m.strip_prefix("FAILED SU ") {
        (true, r)
    } else if let Some(r) = m.strip_prefix("FAILED su ") {
        (true, r)
    } else {
        (false, m)
    };
    if let Some(r) = r.strip_prefix("(to ") {
        if let Some((target, rest)) = r.split_once(") ") {
            set(ev, line, Field::USER_TARGET_NAME, target);
            let (user, rest) = token(rest);
            set(ev, line, Field::USER_NAME, user);
            if let Some(tty) = rest.strip_prefix("on ") {
                set(ev, line, Field::PROCESS_TTY, tty.trim());
            }
        }
    } else if let Some((u, rest)) = r.split_once(" to ").filter(|(u, _)| !u.contains(' ')) {
        // `dcid to root on /dev/ttyp1`
        set(ev, line, Field::USER_NAME, u);
        let (t, rest) = token(rest);
        set(ev, line, Field::USER_TARGET_NAME, t);
        if let Some(tty) = rest.strip_prefix("on ") {
            set(ev, line, Field::PROCESS_TTY, tty.trim());
        }
    } else if let Some(r) = r.strip_prefix("Successful su for ") {
        if let Some((target, by)) = r.split_once(" by ") {
            set(ev, line, Field::USER_TARGET_NAME, target);
            set(ev, line, Field::USER_NAME, by.trim());
        }
    } else if let Some(r) = r.strip_prefix("+ ").or_else(|| r.strip_prefix("- ")) {
        // `+ pts/0 alice:root`
        let (tty, who) = token(r);
        set(ev, line, Field::PROCESS_TTY, tty);
        if let Some((u, t)) = who.trim().split_once(':') {
            set(ev, line, Field::USER_NAME, u);
            set(ev, line, Field::USER_TARGET_NAME, t);
        }
        if m.starts_with("- ") {
            ev.outcome = Outcome::Failure;
        }
    } else {
        ev.action = None;
        ev.category = Category::None;
        return;
    }
    ev.outcome = if failed || ev.outcome == Outcome::Failure {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    ev.event_type = if failed {
        EventType::Denied
    } else {
        EventType::Start
    };
}

/// shadow-utils: useradd, usermod, userdel, groupadd, groupdel, groupmod, gpasswd, passwd,
/// chpasswd, chage, chsh, chfn.
pub fn account(ev: &mut Event, line: &str, prog: &str, m: &str) {
    ev.dataset = "shadow-utils";
    if m.starts_with("pam_") {
        return pam(ev, line, m, prog);
    }
    ev.category = Category::Iam;
    let (etype, action) = match prog {
        "useradd" | "adduser" => (EventType::Creation, "user_created"),
        "userdel" | "deluser" => (EventType::Deletion, "user_deleted"),
        "groupadd" | "addgroup" => (EventType::Creation, "group_created"),
        "groupdel" | "delgroup" => (EventType::Deletion, "group_deleted"),
        "passwd" | "chpasswd" | "chage" => (EventType::Change, "password_changed"),
        _ => (EventType::Change, "user_modified"),
    };
    ev.event_type = etype;
    ev.action = Some(action);
    ev.outcome = Outcome::Success;
    // `new user: name=bob, UID=1003, GID=1003, home=/home/bob, shell=/bin/bash, from=/dev/pts/0`
    // `new group: name=bob, GID=1003` / `add 'bob' to group 'sudo'` / `delete user 'bob'`
    // `password for 'bob' changed by 'root'` / `change user 'bob' shell`
    if m.starts_with("new group") {
        ev.action = Some("group_created");
        ev.event_type = EventType::Creation;
    }
    let mut pick = |key: &str, field: Field| {
        if let Some(v) = kv_comma(m, key) {
            set(ev, line, field, v);
        }
    };
    if m.starts_with("new group") {
        pick("name", Field::GROUP_NAME);
        pick("GID", Field::GROUP_ID);
    } else {
        pick("name", Field::USER_NAME);
        pick("UID", Field::USER_ID);
        pick("GID", Field::GROUP_ID);
    }
    let quoted: Vec<&str> = m.split('\'').skip(1).step_by(2).collect();
    if m.starts_with("add ") || m.contains(" to group ") || m.contains(" to shadow group ") {
        // `add 'bob' to group 'sudo'`
        if let [u, g, ..] = quoted.as_slice() {
            set(ev, line, Field::USER_NAME, u);
            set(ev, line, Field::GROUP_NAME, g);
        }
        ev.action = Some("user_added_to_group");
        ev.event_type = EventType::Change;
    } else if m.starts_with("delete user")
        || m.starts_with("removed group")
        || m.starts_with("group '")
    {
        if let Some(u) = quoted.first() {
            set(
                ev,
                line,
                if prog.starts_with("group") {
                    Field::GROUP_NAME
                } else {
                    Field::USER_NAME
                },
                u,
            );
        }
    } else if m.starts_with("password for") || m.starts_with("password changed for") {
        if let Some(u) = quoted.first() {
            set(ev, line, Field::USER_NAME, u);
        } else if let Some(u) = m.strip_prefix("password changed for ") {
            set(ev, line, Field::USER_NAME, u.trim());
        }
        if let Some(by) = quoted.get(1) {
            set(ev, line, Field::USER_EFFECTIVE_NAME, by);
        }
    } else if m.starts_with("change user")
        || m.starts_with("lock user")
        || m.starts_with("unlock user")
    {
        if let Some(u) = quoted.first() {
            set(ev, line, Field::USER_NAME, u);
        }
    } else if m.starts_with("failed adding") || m.contains("failed") {
        ev.outcome = Outcome::Failure;
    }
}

/// `key=value` in a comma-separated list.
fn kv_comma<'a>(m: &'a str, key: &str) -> Option<&'a str> {
    m.split([',', ':'])
        .map(str::trim)
        .find_map(|p| p.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// cron: `(root) CMD (command)`, `(user) REPLACE (user)`, PAM sessions; crontab edits.
pub fn cron(ev: &mut Event, line: &str, prog: &str, m: &str) {
    ev.dataset = "cron";
    if m.starts_with("pam_") {
        return pam(ev, line, m, "cron");
    }
    let Some(r) = m.strip_prefix('(') else { return };
    let Some((user, rest)) = r.split_once(") ") else {
        return;
    };
    set(ev, line, Field::USER_NAME, user);
    let (verb, arg) = token(rest);
    let arg = arg.trim().trim_start_matches('(').trim_end_matches(')');
    match verb {
        "CMD" => {
            ev.category = Category::Process;
            ev.event_type = EventType::Start;
            ev.action = Some("cron_command");
            set(ev, line, Field::PROCESS_COMMAND_LINE, arg);
        }
        "REPLACE" | "BEGIN" | "END" | "LIST" | "DELETE" | "RELOAD" => {
            ev.category = Category::Configuration;
            ev.event_type = EventType::Change;
            ev.action = Some(match verb {
                "REPLACE" => "crontab_replaced",
                "DELETE" => "crontab_deleted",
                "RELOAD" => "crontab_reloaded",
                "LIST" => "crontab_listed",
                _ => "crontab_edit",
            });
            if verb == "LIST" {
                ev.event_type = EventType::Access;
            }
        }
        _ => {}
    }
    let _ = prog;
}

/// systemd-logind: `New session 12 of user alice.`, `Removed session 12.`,
/// `Session 12 logged out. Waiting for processes to exit.`
pub fn logind(ev: &mut Event, line: &str, m: &str) {
    ev.dataset = "systemd-logind";
    ev.category = Category::Session;
    if let Some(r) = m.strip_prefix("New session ") {
        let (id, rest) = token(r);
        set(ev, line, Field::SESSION_ID, id.trim_end_matches('.'));
        if let Some(u) = rest.strip_prefix("of user ") {
            set(ev, line, Field::USER_NAME, u.trim_end_matches('.'));
        }
        ev.event_type = EventType::Start;
        ev.action = Some("logind_session_new");
    } else if let Some(r) = m.strip_prefix("Removed session ") {
        set(ev, line, Field::SESSION_ID, r.trim_end_matches('.'));
        ev.event_type = EventType::End;
        ev.action = Some("logind_session_removed");
    } else if let Some(r) = m.strip_prefix("Session ") {
        let (id, _) = token(r);
        set(ev, line, Field::SESSION_ID, id);
        ev.event_type = EventType::End;
        ev.action = Some("logind_session_logout");
    } else {
        ev.category = Category::None;
    }
}

/// `login`: `FAILED LOGIN (1) on '/dev/tty1' FOR 'root', Authentication failure`,
/// `ROOT LOGIN  on '/dev/tty1'`.
pub fn login(ev: &mut Event, line: &str, m: &str) {
    ev.dataset = "login";
    if m.starts_with("pam_") {
        return pam(ev, line, m, "login");
    }
    let quoted: Vec<&str> = m.split('\'').skip(1).step_by(2).collect();
    if m.starts_with("FAILED LOGIN") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Denied;
        ev.outcome = Outcome::Failure;
        ev.action = Some("login");
        if let Some(u) = quoted.get(1) {
            set(ev, line, Field::USER_NAME, u);
        }
        if let Some(i) = crate::util::find(m, " FROM ") {
            let (h, _) = token(&m[i + 6..]);
            set_source(ev, line, h.trim_matches('\''));
        }
    } else if m.starts_with("ROOT LOGIN") || m.starts_with("LOGIN ON") {
        ev.category = Category::Authentication;
        ev.event_type = EventType::Start;
        ev.outcome = Outcome::Success;
        ev.action = Some("login");
        if m.starts_with("ROOT") {
            ev.set(Field::USER_NAME, Val::Str("root".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn with(m: &str, f: impl Fn(&mut Event, &str)) -> Event {
        let mut ev = Event::new(
            bytes::Bytes::copy_from_slice(m.as_bytes()),
            Arc::new(Origin::default()),
            0,
        );
        let raw = ev.raw.clone();
        let line = raw.as_str();
        f(&mut ev, line);
        ev
    }

    #[test]
    fn pam_failure_with_injection() {
        let e = with(
            "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser= rhost=192.0.2.2 user=test rhost=192.0.2.152",
            |e, l| pam(e, l, l, "x"),
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.source_ip.unwrap().to_string(), "192.0.2.2");
        assert_eq!(e.user_name().unwrap(), "test rhost=192.0.2.152");
        let e = with(
            "pam_unix(auth): authentication failure; logname= uid=0 euid=0 tty=xxx ruser=test rhost=192.0.2.151 rhost=192.0.2.1",
            |e, l| pam(e, l, l, "x"),
        );
        assert_eq!(e.source_ip.unwrap().to_string(), "192.0.2.1");
        assert_eq!(e.user_name().unwrap(), "test rhost=192.0.2.151");
    }

    #[test]
    fn sudo_command() {
        let e = with(
            "   alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx ; echo x",
            |e, l| sudo(e, l, l),
        );
        assert_eq!(e.user_name().unwrap(), "alice");
        assert_eq!(e.get_str(Field::USER_TARGET_NAME).unwrap(), "root");
        assert_eq!(
            e.get_str(Field::PROCESS_COMMAND_LINE).unwrap(),
            "/usr/bin/systemctl restart nginx ; echo x"
        );
        assert_eq!(
            e.get_str(Field::PROCESS_EXECUTABLE).unwrap(),
            "/usr/bin/systemctl"
        );
        let e = with(
            "bob : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
            |e, l| sudo(e, l, l),
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.action, Some("sudo_authentication_failure"));
    }

    #[test]
    fn useradd_and_group() {
        let e = with("new user: name=bob, UID=1003, GID=1003, home=/home/bob, shell=/bin/bash, from=/dev/pts/0", |e, l| account(e, l, "useradd", l));
        assert_eq!(
            (e.action, e.user_name().unwrap().as_ref()),
            (Some("user_created"), "bob")
        );
        let e = with("add 'bob' to group 'sudo'", |e, l| {
            account(e, l, "usermod", l)
        });
        assert_eq!(e.action, Some("user_added_to_group"));
        assert_eq!(e.get_str(Field::GROUP_NAME).unwrap(), "sudo");
    }

    #[test]
    fn su_and_cron_and_logind() {
        let e = with("(to root) alice on pts/0", |e, l| su(e, l, l));
        assert_eq!(
            (
                e.outcome,
                e.get_str(Field::USER_TARGET_NAME).unwrap().as_ref()
            ),
            (Outcome::Success, "root")
        );
        let e = with("FAILED SU (to root) bob on pts/1", |e, l| su(e, l, l));
        assert_eq!(e.outcome, Outcome::Failure);
        let e = with(
            "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
            |e, l| cron(e, l, "CRON", l),
        );
        assert_eq!(e.action, Some("cron_command"));
        let e = with("New session 42 of user alice.", |e, l| logind(e, l, l));
        assert_eq!(e.get_str(Field::SESSION_ID).unwrap(), "42");
        assert_eq!(e.user_name().unwrap(), "alice");
    }
}
