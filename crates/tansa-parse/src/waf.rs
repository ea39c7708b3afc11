//! ModSecurity audit logs: the native serial format (a record of `--ID-A--` … `--ID-Z--`
//! sections, joined into one record by the `modsec` multi-line preset) and the JSON format of
//! ModSecurity 3 (one transaction per line). Each record becomes one event with the client,
//! the request line, the response status, the matched rule ids and messages and the highest
//! severity: `event.action` is `waf_blocked` when the transaction was intercepted, else
//! `waf_rule_match`. (ModSecurity lines in nginx/Apache error logs are parsed in `web`.)

use serde_json::{Map, Value};
use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::time::{self, TimeCtx};
use crate::util::{parse_ip, set};

/// CRS severities, most severe first.
const SEVERITIES: &[&str] = &[
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
];

fn severity_rank(s: &str) -> usize {
    // ModSecurity 3 JSON gives numbers (0 = emergency … 7 = debug)
    s.parse::<usize>()
        .ok()
        .filter(|n| *n < SEVERITIES.len())
        .or_else(|| SEVERITIES.iter().position(|x| x.eq_ignore_ascii_case(s)))
        .unwrap_or(SEVERITIES.len())
}

/// What the rules said: ids, messages, the most severe level, intercepted or not.
#[derive(Default)]
struct Matches {
    ids: Vec<String>,
    msgs: Vec<String>,
    severity: usize,
    blocked: bool,
}

impl Matches {
    fn new() -> Matches {
        Matches {
            severity: SEVERITIES.len(),
            ..Matches::default()
        }
    }

    fn add(&mut self, id: Option<&str>, msg: Option<&str>, severity: Option<&str>) {
        if let Some(id) = id.filter(|i| !self.ids.iter().any(|x| x == i)) {
            self.ids.push(id.to_owned());
        }
        if let Some(m) = msg.filter(|m| !m.is_empty() && !self.msgs.iter().any(|x| x == m)) {
            self.msgs.push(m.to_owned());
        }
        if let Some(s) = severity {
            self.severity = self.severity.min(severity_rank(s));
        }
    }

    fn apply(self, ev: &mut Event) {
        ev.dataset = "modsecurity.audit";
        ev.category = Category::IntrusionDetection;
        ev.event_type = if self.blocked {
            EventType::Denied
        } else {
            EventType::Info
        };
        ev.action = Some(if self.blocked {
            "waf_blocked"
        } else {
            "waf_rule_match"
        });
        ev.outcome = Outcome::Success;
        if !self.ids.is_empty() {
            ev.set_str(Field::RULE_ID, &self.ids.join(","));
        }
        if !self.msgs.is_empty() {
            ev.set_str(Field::RULE_NAME, &self.msgs.join("; "));
        }
        if let Some(s) = SEVERITIES.get(self.severity) {
            ev.set_str(
                Field::intern("event.severity_name"),
                &s.to_ascii_lowercase(),
            );
            ev.set(Field::EVENT_SEVERITY, Val::Int(self.severity as i64));
        }
    }
}

/// `[key "value"]` values of a ModSecurity message.
fn bracket<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let k = format!("[{key} \"");
    let i = text.find(&k)? + k.len();
    let v = &text[i..];
    Some(&v[..v.find("\"]")?])
}

/// A native audit record (sections joined with newlines).
pub fn native(ev: &mut Event, rec: &str, tc: &mut TimeCtx) -> bool {
    let Some(first) = rec.lines().next() else {
        return false;
    };
    let Some(id) = first
        .strip_prefix("--")
        .and_then(|r| r.trim_end().strip_suffix("-A--"))
    else {
        return false;
    };
    let mut section = ' ';
    let mut m = Matches::new();
    let mut request_done = false;
    for l in rec.lines() {
        if let Some(s) = l
            .strip_prefix("--")
            .and_then(|r| r.trim_end().strip_suffix("--"))
            .and_then(|r| r.strip_prefix(id))
            .and_then(|r| r.strip_prefix('-'))
        {
            section = s.chars().next().unwrap_or(' ');
            continue;
        }
        match section {
            // [14/Mar/2026:10:00:00.123456 +0000] UNIQUE_ID CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT
            'A' if l.starts_with('[') => {
                if let Some(e) = l.find(']') {
                    let stamp = &l[1..e];
                    if let Some((c, off, _)) = time::clf(stamp.as_bytes()) {
                        ev.timestamp = match off {
                            Some(o) => TimeCtx::with_offset(c, o).unwrap_or(ev.timestamp),
                            None => tc.local(c).unwrap_or(ev.timestamp),
                        };
                    }
                    let f: Vec<&str> = l[e + 1..].split_whitespace().collect();
                    if let Some(u) = f.first() {
                        set(ev, rec, Field::intern("transaction.id"), u);
                    }
                    ev.source_ip = f.get(1).and_then(|s| parse_ip(s));
                    ev.source_port = f.get(2).and_then(|p| p.parse().ok());
                    ev.destination_ip = f.get(3).and_then(|s| parse_ip(s));
                    ev.destination_port = f.get(4).and_then(|p| p.parse().ok());
                }
            }
            'B' if !request_done && !l.is_empty() => {
                crate::web::request(ev, rec, l);
                request_done = true;
            }
            'B' => {
                if let Some(v) = l.strip_prefix("User-Agent: ") {
                    set(ev, rec, Field::USER_AGENT, v);
                } else if let Some(v) = l.strip_prefix("Host: ") {
                    set(ev, rec, Field::intern("url.domain"), v);
                }
            }
            'F' if l.starts_with("HTTP/") => {
                if let Some(code) = l.split_whitespace().nth(1).and_then(|c| c.parse().ok()) {
                    ev.set(Field::HTTP_STATUS, Val::Int(code));
                }
            }
            'H' => {
                if let Some(msg) = l.strip_prefix("Message: ") {
                    // the anomaly-score verdict names no attack of its own
                    m.add(
                        bracket(msg, "id"),
                        bracket(msg, "msg"),
                        bracket(msg, "severity"),
                    );
                    if msg.contains("Access denied") {
                        m.blocked = true;
                    }
                } else if l.starts_with("Action: Intercepted") {
                    m.blocked = true;
                }
            }
            _ => {}
        }
    }
    if ev.source_ip.is_none() {
        return false;
    }
    m.apply(ev);
    true
}

fn s<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

/// A ModSecurity 3 JSON transaction (`{"transaction": {...}}`).
pub fn json(ev: &mut Event, o: &Map<String, Value>, tc: &mut TimeCtx) -> bool {
    let Some(t) = o.get("transaction") else {
        return false;
    };
    let text = |keys: &[&str]| match s(t, keys) {
        Some(Value::String(x)) => Some(x.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let Some(ip) = text(&["client_ip"]).as_deref().and_then(parse_ip) else {
        return false;
    };
    ev.source_ip = Some(ip);
    ev.source_port = text(&["client_port"]).and_then(|p| p.parse().ok());
    ev.destination_ip = text(&["host_ip"]).as_deref().and_then(parse_ip);
    ev.destination_port = text(&["host_port"]).and_then(|p| p.parse().ok());
    // "Sat Mar 14 10:00:00 2026" (local) in ModSecurity 3
    if let Some(ts) = text(&["time_stamp"]) {
        if let Ok(c) = jiff::civil::DateTime::strptime("%a %b %e %H:%M:%S %Y", &ts) {
            let civil = time::Civil {
                year: c.year() as i32,
                month: c.month() as u8,
                day: c.day() as u8,
                hour: c.hour() as u8,
                minute: c.minute() as u8,
                second: c.second() as u8,
                nanos: 0,
            };
            if let Some(n) = tc.local(civil) {
                ev.timestamp = n;
            }
        }
    }
    if let Some(u) = text(&["unique_id"]) {
        ev.set_str(Field::intern("transaction.id"), &u);
    }
    if let Some(meth) = text(&["request", "method"]) {
        ev.set_str(Field::HTTP_METHOD, &meth);
    }
    if let Some(uri) = text(&["request", "uri"]) {
        ev.set_str(Field::URL_ORIGINAL, &uri);
        let (p, q) = uri.split_once('?').unwrap_or((&uri, ""));
        ev.set_str(Field::URL_PATH, p);
        if !q.is_empty() {
            ev.set_str(Field::URL_QUERY, q);
        }
    }
    if let Some(ua) = text(&["request", "headers", "User-Agent"])
        .or_else(|| text(&["request", "headers", "user-agent"]))
    {
        ev.set_str(Field::USER_AGENT, &ua);
    }
    if let Some(code) = text(&["response", "http_code"]).and_then(|c| c.parse().ok()) {
        ev.set(Field::HTTP_STATUS, Val::Int(code));
    }
    let mut m = Matches::new();
    for msg in s(t, &["messages"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let d = msg.get("details");
        let g = |k: &str| d.and_then(|d| d.get(k)).and_then(Value::as_str);
        m.add(
            g("ruleId"),
            msg.get("message").and_then(Value::as_str),
            g("severity"),
        );
    }
    // ModSecurity 3 marks an intercepted transaction by the response it forced
    m.blocked = s(t, &["response", "http_code"])
        .and_then(Value::as_i64)
        .is_some_and(|c| c == 403 || c == 406 || c == 501)
        && !m.ids.is_empty();
    m.apply(ev);
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tansa_event::{Field, Origin};

    use crate::{multiline, Format, Parser, TimeCtx};

    fn file(name: &str, ml: bool) -> Vec<tansa_event::Event> {
        let path = format!("{}/../../examples/waf/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut p = Parser::new(
            Format::Auto,
            Arc::new(Origin::file(&path, "web01")),
            TimeCtx::utc(),
        );
        if ml {
            p.set_multiline(multiline::Spec::parse("modsec").unwrap());
        }
        let mut evs = Vec::new();
        let mut off = 0u64;
        for l in text.lines() {
            p.parse_line(bytes::Bytes::copy_from_slice(l.as_bytes()), off, &mut evs);
            off += l.len() as u64 + 1;
        }
        p.finish(&mut evs);
        if ml || name.ends_with(".json") {
            assert_eq!(p.stats().unparsed, 0, "{name}");
        }
        evs
    }

    fn f(ev: &tansa_event::Event, k: Field) -> String {
        ev.get_str(k).map(|c| c.into_owned()).unwrap_or_default()
    }

    #[test]
    fn native_audit_records_one_event_each() {
        let evs = file("modsec_audit.log", true);
        assert_eq!(evs.len(), 2);
        let b = &evs[0];
        assert_eq!(b.offset, 0);
        assert_eq!(b.action, Some("waf_blocked"));
        assert_eq!(b.source_ip.unwrap().to_string(), "203.0.113.5");
        assert_eq!(b.source_port, Some(51234));
        assert_eq!(f(b, Field::HTTP_METHOD), "GET");
        assert_eq!(f(b, Field::URL_PATH), "/search.php");
        assert_eq!(f(b, Field::HTTP_STATUS), "403");
        assert_eq!(f(b, Field::RULE_ID), "942100,913100,949110");
        assert!(
            f(b, Field::RULE_NAME).starts_with("SQL Injection Attack Detected via libinjection")
        );
        assert!(f(b, Field::USER_AGENT).starts_with("sqlmap/1.7.2"));
        assert_eq!(f(b, Field::intern("event.severity_name")), "critical");
        assert_eq!(
            tansa_event::format_ts(b.timestamp),
            "2026-03-14T10:00:05.184201Z"
        );
        let d = &evs[1];
        assert_eq!(d.action, Some("waf_rule_match"));
        assert_eq!(f(d, Field::RULE_ID), "941100");
        // without joining, the sections are not mistaken for requests
        assert!(file("modsec_audit.log", false).len() > 2);
    }

    #[test]
    fn modsecurity_3_json() {
        let evs = file("modsec_audit.json", false);
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e.dataset, "modsecurity.audit");
        assert_eq!(e.action, Some("waf_blocked"));
        assert_eq!(f(e, Field::RULE_ID), "942100,949110");
        assert_eq!(f(e, Field::URL_QUERY), "q=1%27%20AND%20SLEEP(5)--%20-");
        assert_eq!(tansa_event::format_ts(e.timestamp), "2026-03-14T10:00:05Z");
    }
}
