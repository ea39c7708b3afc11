//! JSON lines: ECS documents, Suricata EVE (alert, http, dns, flow, ssh, tls), Zeek JSON logs
//! (conn, http, dns, ssh, notice), and any other JSON object, whose keys become fields.
//!
//! JSON is the one format where values do not sit verbatim in the line (escapes), so fields
//! are owned strings here.

use serde_json::{Map, Value};
use tansa_event::{Category, Event, EventType, Field, Outcome, Val};

use crate::time::{self, TimeCtx};
use crate::util::parse_ip;

/// Parses one JSON object line.
pub fn parse(ev: &mut Event, line: &str, tc: &mut TimeCtx) -> bool {
    let t = line.trim_start();
    if !t.starts_with('{') {
        return false;
    }
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(t) else {
        return false;
    };
    ev.dataset = "json";
    let mut flat = Vec::new();
    flatten("", &Value::Object(obj.clone()), &mut flat);
    let get = |k: &str| flat.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    // time
    for key in [
        "@timestamp",
        "timestamp",
        "time",
        "ts",
        "date",
        "eventTime",
        "t.$date",
    ] {
        if let Some(v) = get(key) {
            if let Some(ns) = json_time(v, tc) {
                ev.timestamp = ns;
                break;
            }
        }
    }
    if let Some(p) = crate::cloud::detect(&obj) {
        crate::cloud::parse(ev, &obj, p);
    } else if obj.contains_key("transaction") && crate::waf::json(ev, &obj, tc) {
        // ModSecurity 3 JSON audit log
    } else if obj.contains_key("event_type")
        && (obj.contains_key("src_ip") || obj.contains_key("flow_id"))
    {
        suricata(ev, &obj);
    } else if obj.contains_key("id.orig_h") || obj.get("id").and_then(|i| i.get("orig_h")).is_some()
    {
        zeek(ev, &flat);
    } else {
        generic(ev, &flat);
        if let Some(Val::Str(m)) = get("event.module") {
            if &**m == "fim" {
                fim(ev, get("event.action"));
            }
        }
    }
    // every key is kept (dynamic fields) unless already mapped to a typed member
    for (k, v) in &flat {
        let f = Field::intern(k);
        if ev.get(f).is_some()
            || matches!(
                f,
                Field::SOURCE_IP
                    | Field::DESTINATION_IP
                    | Field::SOURCE_PORT
                    | Field::DESTINATION_PORT
                    | Field::TIMESTAMP
            )
        {
            continue;
        }
        if ev.fields.len() >= 64 {
            break;
        }
        ev.set(f, v.clone());
    }
    true
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Val)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), Val::Str(s.as_str().into()))),
        Value::Number(n) => out.push((
            prefix.to_owned(),
            n.as_i64()
                .map(Val::Int)
                .unwrap_or_else(|| Val::Str(n.to_string().into())),
        )),
        Value::Bool(b) => out.push((prefix.to_owned(), Val::Bool(*b))),
        Value::Array(a) => {
            // arrays of scalars are joined; arrays of objects are kept as JSON text
            let s = a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",");
            out.push((prefix.to_owned(), Val::Str(s.into())));
        }
        Value::Null => {}
    }
}

fn json_time(v: &Val, tc: &mut TimeCtx) -> Option<i64> {
    match v {
        Val::Str(s) => {
            let b = s.as_bytes();
            if let Some((c, off, _)) = time::iso(b) {
                return match off {
                    Some(o) => TimeCtx::with_offset(c, o),
                    None => tc.local(c),
                };
            }
            time::epoch(b).map(|(n, _)| n)
        }
        Val::Int(i) => {
            // seconds or milliseconds since the epoch
            let i = *i;
            Some(if i > 100_000_000_000 {
                i * 1_000_000
            } else {
                i * 1_000_000_000
            })
        }
        _ => None,
    }
    .or_else(|| match v {
        Val::Str(s) => s.parse::<f64>().ok().map(|f| (f * 1e9) as i64),
        _ => None,
    })
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn suricata(ev: &mut Event, o: &Map<String, Value>) {
    ev.dataset = "suricata";
    ev.source_ip = s(o, "src_ip").and_then(parse_ip);
    ev.destination_ip = s(o, "dest_ip").and_then(parse_ip);
    ev.source_port = o.get("src_port").and_then(Value::as_u64).map(|p| p as u16);
    ev.destination_port = o.get("dest_port").and_then(Value::as_u64).map(|p| p as u16);
    if let Some(p) = s(o, "proto") {
        ev.set(
            Field::NETWORK_TRANSPORT,
            Val::Str(p.to_ascii_lowercase().into()),
        );
    }
    if let Some(c) = s(o, "community_id") {
        ev.set_str(Field::NETWORK_COMMUNITY_ID, c);
    }
    let et = s(o, "event_type").unwrap_or("");
    match et {
        "alert" => {
            ev.category = Category::IntrusionDetection;
            ev.event_type = EventType::Info;
            ev.action = Some("ids_alert");
            if let Some(a) = o.get("alert").and_then(Value::as_object) {
                if let Some(sig) = s(a, "signature") {
                    ev.set_str(Field::RULE_NAME, sig);
                }
                if let Some(id) = a.get("signature_id").and_then(Value::as_i64) {
                    ev.set(Field::RULE_ID, Val::Str(id.to_string().into()));
                }
                if let Some(sev) = a.get("severity").and_then(Value::as_i64) {
                    ev.set(Field::EVENT_SEVERITY, Val::Int(sev));
                }
                if s(a, "action") == Some("blocked") {
                    ev.event_type = EventType::Denied;
                }
            }
        }
        "http" => {
            ev.category = Category::Web;
            ev.event_type = EventType::Access;
            ev.action = Some("http_request");
        }
        "dns" => {
            ev.category = Category::Network;
            ev.event_type = EventType::Protocol;
            ev.action = Some("dns_query");
        }
        "flow" | "netflow" => {
            ev.category = Category::Network;
            ev.event_type = EventType::Connection;
            ev.action = Some("flow");
        }
        "ssh" | "tls" => {
            ev.category = Category::Network;
            ev.event_type = EventType::Protocol;
            ev.action = Some(if et == "ssh" {
                "ssh_handshake"
            } else {
                "tls_handshake"
            });
        }
        _ => ev.category = Category::Network,
    }
    if let Some(h) = o.get("http").and_then(Value::as_object) {
        if let Some(u) = s(h, "url") {
            ev.set_str(Field::URL_ORIGINAL, u);
            let (p, q) = u.split_once('?').unwrap_or((u, ""));
            ev.set_str(Field::URL_PATH, p);
            if !q.is_empty() {
                ev.set_str(Field::URL_QUERY, q);
            }
        }
        if let Some(v) = s(h, "hostname") {
            ev.set_str(Field::URL_DOMAIN, v);
        }
        if let Some(v) = s(h, "http_user_agent") {
            ev.set_str(Field::USER_AGENT, v);
        }
        if let Some(v) = s(h, "http_method") {
            ev.set_str(Field::HTTP_METHOD, v);
        }
        if let Some(v) = h.get("status").and_then(Value::as_i64) {
            ev.set(Field::HTTP_STATUS, Val::Int(v));
        }
        if let Some(v) = s(h, "http_refer") {
            ev.set_str(Field::HTTP_REFERRER, v);
        }
    }
    if let Some(d) = o.get("dns").and_then(Value::as_object) {
        let q = s(d, "rrname").or_else(|| {
            d.get("queries")
                .and_then(|q| q.get(0))
                .and_then(|q| q.get("rrname"))
                .and_then(Value::as_str)
        });
        if let Some(q) = q {
            ev.set_str(Field::DNS_QUESTION_NAME, q);
        }
        if let Some(t) = s(d, "rrtype") {
            ev.set_str(Field::DNS_QUESTION_TYPE, t);
        }
    }
}

fn zeek(ev: &mut Event, flat: &[(String, Val)]) {
    ev.dataset = "zeek";
    let get = |k: &str| flat.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let text = |k: &str| match get(k) {
        Some(Val::Str(s)) => Some(s.to_string()),
        Some(Val::Int(i)) => Some(i.to_string()),
        _ => None,
    };
    ev.source_ip = text("id.orig_h").as_deref().and_then(parse_ip);
    ev.destination_ip = text("id.resp_h").as_deref().and_then(parse_ip);
    ev.source_port = text("id.orig_p").and_then(|p| p.parse().ok());
    ev.destination_port = text("id.resp_p").and_then(|p| p.parse().ok());
    ev.category = Category::Network;
    if let Some(m) = text("method") {
        ev.category = Category::Web;
        ev.event_type = EventType::Access;
        ev.action = Some("http_request");
        ev.set_str(Field::HTTP_METHOD, &m);
        if let Some(u) = text("uri") {
            ev.set_str(Field::URL_ORIGINAL, &u);
            let (p, q) = u.split_once('?').unwrap_or((&u, ""));
            ev.set_str(Field::URL_PATH, p);
            if !q.is_empty() {
                ev.set_str(Field::URL_QUERY, q);
            }
        }
        if let Some(v) = text("user_agent") {
            ev.set_str(Field::USER_AGENT, &v);
        }
        if let Some(v) = text("host") {
            ev.set_str(Field::URL_DOMAIN, &v);
        }
        if let Some(Val::Int(c)) = get("status_code") {
            ev.set(Field::HTTP_STATUS, Val::Int(*c));
        }
    } else if let Some(q) = text("query") {
        ev.event_type = EventType::Protocol;
        ev.action = Some("dns_query");
        ev.set_str(Field::DNS_QUESTION_NAME, &q);
    } else if let Some(v) = get("auth_success") {
        ev.category = Category::Authentication;
        ev.action = Some("ssh_login");
        ev.outcome = match v {
            Val::Bool(true) => Outcome::Success,
            Val::Bool(false) => Outcome::Failure,
            _ => Outcome::Unknown,
        };
        ev.event_type = if ev.outcome == Outcome::Failure {
            EventType::Denied
        } else {
            EventType::Info
        };
    } else if let Some(n) = text("note") {
        ev.category = Category::IntrusionDetection;
        ev.action = Some("ids_notice");
        ev.set_str(Field::RULE_NAME, &n);
    } else if get("conn_state").is_some() || get("proto").is_some() {
        ev.event_type = EventType::Connection;
        ev.action = Some("flow");
    }
    if let Some(p) = text("proto") {
        ev.set_str(Field::NETWORK_TRANSPORT, &p);
    }
}

/// ECS and other JSON: map the common names.
/// File integrity monitoring lines (`tansa fim`, DATA/fim/*.log).
fn fim(ev: &mut Event, action: Option<&Val>) {
    ev.dataset = "fim";
    ev.category = Category::File;
    ev.outcome = Outcome::Success;
    ev.action = match action {
        Some(Val::Str(a)) => match &**a {
            "file_created" => Some("file_created"),
            "file_deleted" => Some("file_deleted"),
            "file_modified" => Some("file_modified"),
            "file_attributes_changed" => Some("file_attributes_changed"),
            "file_baseline" => Some("file_baseline"),
            "baseline_taken" => Some("baseline_taken"),
            "baseline_altered" => Some("baseline_altered"),
            _ => None,
        },
        _ => None,
    };
    ev.event_type = match ev.action {
        Some("file_created") => EventType::Creation,
        Some("file_deleted") => EventType::Deletion,
        Some("file_baseline" | "baseline_taken") => EventType::Info,
        _ => EventType::Change,
    };
}

fn generic(ev: &mut Event, flat: &[(String, Val)]) {
    let get = |k: &str| flat.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let text = |k: &str| match get(k) {
        Some(Val::Str(s)) => Some(s.to_string()),
        Some(Val::Int(i)) => Some(i.to_string()),
        _ => None,
    };
    for k in [
        "source.ip",
        "client.ip",
        "src_ip",
        "remote_addr",
        "client_ip",
        "ip",
        "sourceIPAddress",
    ] {
        if let Some(ip) = text(k).as_deref().and_then(parse_ip) {
            ev.source_ip = Some(ip);
            break;
        }
    }
    for k in ["destination.ip", "dest_ip", "server.ip"] {
        if let Some(ip) = text(k).as_deref().and_then(parse_ip) {
            ev.destination_ip = Some(ip);
            break;
        }
    }
    ev.source_port = text("source.port").and_then(|p| p.parse().ok());
    ev.destination_port = text("destination.port").and_then(|p| p.parse().ok());
    if let Some(o) = text("event.outcome") {
        ev.outcome = match o.as_str() {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            _ => Outcome::Unknown,
        };
    }
    // nginx/apache JSON access logs
    let request = text("request");
    let status = text("status").or_else(|| text("http.response.status_code"));
    if let Some(st) = status.as_deref().and_then(|s| s.parse::<i64>().ok()) {
        ev.category = Category::Web;
        ev.event_type = EventType::Access;
        ev.action = Some("http_request");
        ev.set(Field::HTTP_STATUS, Val::Int(st));
        ev.outcome = if st >= 400 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
    }
    if let Some(r) = request {
        let mut it = r.split(' ');
        if let (Some(m), Some(u)) = (it.next(), it.next()) {
            ev.set_str(Field::HTTP_METHOD, m);
            ev.set_str(Field::URL_ORIGINAL, u);
            let (p, q) = u.split_once('?').unwrap_or((u, ""));
            ev.set_str(Field::URL_PATH, p);
            if !q.is_empty() {
                ev.set_str(Field::URL_QUERY, q);
            }
        }
    }
    for (k, f) in [
        ("http_user_agent", Field::USER_AGENT),
        ("user_agent", Field::USER_AGENT),
        ("http_referer", Field::HTTP_REFERRER),
        ("remote_user", Field::USER_NAME),
    ] {
        if let Some(v) = text(k).filter(|v| v != "-" && !v.is_empty()) {
            ev.set_str(f, &v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::Origin;

    fn run(l: &str) -> Event {
        let mut ev = Event::new(
            bytes::Bytes::copy_from_slice(l.as_bytes()),
            Arc::new(Origin::default()),
            0,
        );
        let raw = ev.raw.clone();
        assert!(parse(&mut ev, raw.as_str(), &mut TimeCtx::utc()));
        ev
    }

    #[test]
    fn suricata_alert() {
        let e = run(
            r#"{"timestamp":"2026-03-14T10:00:00.123456+0000","flow_id":1,"event_type":"alert","src_ip":"45.141.87.12","src_port":4444,"dest_ip":"10.0.0.5","dest_port":22,"proto":"TCP","alert":{"action":"allowed","signature_id":2001219,"signature":"ET SCAN Potential SSH Scan","severity":2}}"#,
        );
        assert_eq!(e.dataset, "suricata");
        assert_eq!(e.source_ip.unwrap().to_string(), "45.141.87.12");
        assert_eq!(
            e.get_str(Field::RULE_NAME).unwrap(),
            "ET SCAN Potential SSH Scan"
        );
        assert_eq!(
            tansa_event::format_ts(e.timestamp),
            "2026-03-14T10:00:00.123456Z"
        );
    }

    #[test]
    fn zeek_http_and_ssh() {
        let e = run(
            r#"{"ts":1773482400.5,"uid":"C1","id.orig_h":"203.0.113.9","id.orig_p":5555,"id.resp_h":"10.0.0.5","id.resp_p":80,"method":"GET","host":"shop","uri":"/?id=1'","user_agent":"sqlmap","status_code":200}"#,
        );
        assert_eq!(e.dataset, "zeek");
        assert_eq!(e.get_str(Field::URL_QUERY).unwrap(), "id=1'");
        let e = run(
            r#"{"ts":"2026-03-14T10:00:00Z","id":{"orig_h":"203.0.113.9","orig_p":1,"resp_h":"10.0.0.5","resp_p":22},"auth_success":false,"auth_attempts":3}"#,
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.get_str(Field::intern("auth_attempts")).unwrap(), "3");
    }

    #[test]
    fn not_json() {
        let mut ev = Event::new(
            bytes::Bytes::from_static(b"{broken"),
            Arc::new(Origin::default()),
            0,
        );
        assert!(!parse(&mut ev, "{broken", &mut TimeCtx::utc()));
    }
}
