//! Cloud platform audit logs, one record per JSON object: AWS CloudTrail, Alibaba Cloud
//! ActionTrail, Tencent Cloud CloudAudit, Google Cloud audit logs. Normalised to ECS
//! (`cloud.provider`, `cloud.region`, `cloud.account.id`, `cloud.service.name`,
//! `user.name`, `source.ip`, `user_agent.original`, `event.outcome`, `event.reason`), the
//! provider's API name kept as `cloud.operation`, and the typed `event.action` set to one of
//! Tansa's verbs when the call matters to detection:
//!
//! - `cloud_console_login` — a console (web) sign-in;
//! - `cloud_access_key_created` — a long-lived credential made (access key, service-account key);
//! - `cloud_firewall_changed` — a security group or firewall rule added, changed or removed;
//! - `cloud_audit_disabled` — audit logging stopped, deleted or redirected;
//! - `cloud_api_call` — anything else.
//!
//! A provider's export file (`{"Records": [...]}` on one line, as CloudTrail writes to S3, or
//! a JSON array) is split by [`records`] into one event per record, each at its own byte
//! offset in the line.

use serde_json::{Map, Value};
use tansa_event::{Category, Event, EventType, Field, Outcome};

use crate::util::parse_ip;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Alibaba,
    Tencent,
    Gcp,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Alibaba => "alibaba_cloud",
            Provider::Tencent => "tencent_cloud",
            Provider::Gcp => "gcp",
        }
    }
}

/// Which provider's audit record this is, if any.
pub fn detect(o: &Map<String, Value>) -> Option<Provider> {
    let has = |k: &str| o.contains_key(k);
    if has("eventName") && has("awsRegion") && has("eventSource") {
        Some(Provider::Aws)
    } else if has("eventName") && has("acsRegion") {
        Some(Provider::Alibaba)
    } else if has("eventName") && has("eventRegion") && (has("userIdentity") || has("eventSource"))
    {
        Some(Provider::Tencent)
    } else if o
        .get("protoPayload")
        .and_then(|p| p.get("@type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("google.cloud.audit.AuditLog"))
    {
        Some(Provider::Gcp)
    } else {
        None
    }
}

fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Tansa's verb for a provider's API name.
pub fn verb(operation: &str) -> &'static str {
    let op = operation
        .rsplit(['.', ':', '/'])
        .next()
        .unwrap_or(operation);
    let l = op.to_ascii_lowercase();
    if matches!(l.as_str(), "consolelogin" | "consolesignin" | "login") {
        "cloud_console_login"
    } else if l == "createaccesskey"
        || l == "createserviceaccountkey"
        || l == "createapikey"
        || l == "createkey"
    {
        "cloud_access_key_created"
    } else if l.contains("securitygroup")
        || l.starts_with("authorizesecuritygroup")
        || l.starts_with("revokesecuritygroup")
        || (operation.contains("compute.firewalls.") && !l.ends_with("get") && !l.ends_with("list"))
        || l.contains("firewallrule")
        || l.contains("networkacl")
    {
        if l.starts_with("describe") || l.starts_with("get") || l.starts_with("list") {
            "cloud_api_call"
        } else {
            "cloud_firewall_changed"
        }
    } else if matches!(
        l.as_str(),
        "stoplogging"
            | "deletetrail"
            | "updatetrail"
            | "stopaudittrack"
            | "deleteaudit"
            | "deleteaudittrack"
            | "stopaudit"
            | "deletesink"
            | "updatesink"
            | "deletelog"
            | "putbucketlogging"
            | "deleteflowlogs"
    ) {
        "cloud_audit_disabled"
    } else {
        "cloud_api_call"
    }
}

/// Fills `ev` from a provider's record.
pub fn parse(ev: &mut Event, o: &Map<String, Value>, p: Provider) {
    let v = Value::Object(o.clone());
    let g = |keys: &[&str]| text(path(&v, keys));
    let (region, account, service, operation, user, ip, agent, error, message) = match p {
        Provider::Aws => {
            let user = g(&["userIdentity", "userName"])
                .or_else(|| {
                    (g(&["userIdentity", "type"]).as_deref() == Some("Root")).then(|| "root".into())
                })
                .or_else(|| {
                    g(&["userIdentity", "arn"])
                        .map(|a| a.rsplit('/').next().unwrap_or(&a).to_owned())
                })
                .or_else(|| g(&["userIdentity", "principalId"]));
            (
                g(&["awsRegion"]),
                g(&["recipientAccountId"]).or_else(|| g(&["userIdentity", "accountId"])),
                g(&["eventSource"]),
                g(&["eventName"]),
                user,
                g(&["sourceIPAddress"]),
                g(&["userAgent"]),
                g(&["errorCode"]).or_else(|| {
                    (g(&["responseElements", "ConsoleLogin"]).as_deref() == Some("Failure"))
                        .then(|| "Failure".into())
                }),
                g(&["errorMessage"]),
            )
        }
        Provider::Alibaba => (
            g(&["acsRegion"]),
            g(&["userIdentity", "accountId"]).or_else(|| g(&["recipientAccountId"])),
            g(&["serviceName"]).or_else(|| g(&["eventSource"])),
            g(&["eventName"]),
            g(&["userIdentity", "userName"]).or_else(|| g(&["userIdentity", "principalId"])),
            g(&["sourceIpAddress"]),
            g(&["userAgent"]),
            g(&["errorCode"]).or_else(|| {
                g(&["additionalEventData", "loginResult"])
                    .filter(|r| !r.eq_ignore_ascii_case("success"))
            }),
            g(&["errorMessage"]),
        ),
        Provider::Tencent => (
            g(&["eventRegion"]),
            g(&["userIdentity", "accountId"]),
            g(&["eventSource"]),
            g(&["eventName"]),
            g(&["userIdentity", "userName"]).or_else(|| g(&["userIdentity", "principalId"])),
            g(&["sourceIPAddress"]),
            g(&["userAgent"]),
            // 0 is success; signature/authentication errors, then the API's own
            g(&["errorCode"])
                .filter(|c| c != "0")
                .or_else(|| g(&["apiErrorCode"]).filter(|c| c != "0")),
            g(&["errorMessage"]).or_else(|| g(&["apiErrorMessage"])),
        ),
        Provider::Gcp => (
            g(&["resource", "labels", "location"])
                .or_else(|| g(&["resource", "labels", "zone"]))
                .or_else(|| {
                    text(
                        path(
                            &v,
                            &["protoPayload", "resourceLocation", "currentLocations"],
                        )
                        .and_then(|l| l.get(0)),
                    )
                }),
            g(&["resource", "labels", "project_id"]),
            g(&["protoPayload", "serviceName"]),
            g(&["protoPayload", "methodName"]),
            g(&["protoPayload", "authenticationInfo", "principalEmail"]),
            g(&["protoPayload", "requestMetadata", "callerIp"]),
            g(&["protoPayload", "requestMetadata", "callerSuppliedUserAgent"]),
            path(&v, &["protoPayload", "status", "code"])
                .and_then(Value::as_i64)
                .filter(|c| *c != 0)
                .map(|c| c.to_string()),
            g(&["protoPayload", "status", "message"]),
        ),
    };
    ev.dataset = "cloud.audit";
    ev.set_str(Field::intern("cloud.provider"), p.name());
    for (k, val) in [
        ("cloud.region", &region),
        ("cloud.account.id", &account),
        ("cloud.service.name", &service),
        ("cloud.operation", &operation),
    ] {
        if let Some(x) = val {
            ev.set_str(Field::intern(k), x);
        }
    }
    if let Some(u) = &user {
        ev.set_str(Field::USER_NAME, u);
    }
    if let Some(a) = &agent {
        ev.set_str(Field::USER_AGENT, a);
    }
    match ip.as_deref().and_then(parse_ip) {
        Some(ip) => ev.source_ip = Some(ip),
        // AWS names the service that acted for the caller ("ec2.amazonaws.com")
        None => {
            if let Some(d) = &ip {
                ev.set_str(Field::SOURCE_DOMAIN, d);
            }
        }
    }
    let action = operation.as_deref().map(verb).unwrap_or("cloud_api_call");
    ev.action = Some(action);
    ev.category = match action {
        "cloud_console_login" => Category::Authentication,
        "cloud_access_key_created" => Category::Iam,
        "cloud_firewall_changed" | "cloud_audit_disabled" => Category::Configuration,
        _ => Category::None,
    };
    ev.event_type = match action {
        "cloud_console_login" => EventType::Start,
        "cloud_access_key_created" => EventType::Creation,
        "cloud_firewall_changed" | "cloud_audit_disabled" => EventType::Change,
        _ => EventType::Access,
    };
    ev.outcome = if error.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    if let Some(e) = &error {
        ev.set_str(
            Field::EVENT_REASON,
            &match &message {
                Some(m) => format!("{e}: {m}"),
                None => e.clone(),
            },
        );
    }
}

/// The byte ranges of the records of a provider export line: `{"Records": [ {...}, ... ]}`
/// (any key case) or a top-level array of objects. None when the line is not one.
pub fn records(line: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut i = skip_ws(line, 0);
    let start_array = match line.get(i)? {
        b'[' => i,
        b'{' => {
            i = skip_ws(line, i + 1);
            let key = br#""Records""#;
            let lower = br#""records""#;
            let k = line.get(i..i + key.len())?;
            if k != key && k != lower {
                return None;
            }
            i = skip_ws(line, i + key.len());
            if line.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(line, i + 1);
            if line.get(i) != Some(&b'[') {
                return None;
            }
            i
        }
        _ => return None,
    };
    let mut out = Vec::new();
    let mut p = start_array + 1;
    loop {
        p = skip_ws(line, p);
        match line.get(p)? {
            b']' => break,
            b',' => p += 1,
            b'{' => {
                let end = object_end(line, p)?;
                out.push((p, end));
                p = end;
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the object starting at `start`, strings and escapes respected.
fn object_end(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tansa_event::{Field, Origin, Outcome};

    use crate::{Format, Parser, TimeCtx};

    fn parse_file(name: &str, tz: &str) -> (Vec<tansa_event::Event>, String) {
        let path = format!("{}/../../examples/cloud/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut p = Parser::new(
            Format::Auto,
            Arc::new(Origin::file(&path, "h")),
            TimeCtx::new(
                jiff::tz::TimeZone::get(tz).unwrap(),
                "2026-03-15T00:00:00Z".parse().unwrap(),
            ),
        );
        let mut evs = Vec::new();
        let mut off = 0u64;
        for l in text.lines() {
            p.parse_line(bytes::Bytes::copy_from_slice(l.as_bytes()), off, &mut evs);
            off += l.len() as u64 + 1;
        }
        assert_eq!(p.stats().unparsed, 0, "{name}");
        (evs, text)
    }

    fn f(ev: &tansa_event::Event, k: &str) -> String {
        ev.get_str(Field::intern(k))
            .map(|c| c.into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_cloudtrail_export_is_one_event_per_record_at_its_offset() {
        let (evs, text) = parse_file("cloudtrail.json", "UTC");
        assert_eq!(evs.len(), 23);
        for ev in &evs {
            // each record's own text, found at its offset in the file
            let o = ev.offset as usize;
            assert_eq!(&text[o..o + ev.raw.len()], ev.raw.as_str());
            assert!(ev.raw.as_str().starts_with("{\"eventVersion\""));
            assert_eq!(f(ev, "cloud.provider"), "aws");
            assert_eq!(f(ev, "cloud.region"), "ap-northeast-1");
            assert_eq!(f(ev, "cloud.account.id"), "111122223333");
            assert_eq!(ev.user_name().as_deref(), Some("alice"));
        }
        let login = &evs[0];
        assert_eq!(login.action, Some("cloud_console_login"));
        assert_eq!(login.outcome, Outcome::Failure);
        assert_eq!(login.source_ip.unwrap().to_string(), "198.51.100.77");
        assert!(f(login, "user_agent.original").starts_with("Mozilla/5.0"));
        assert_eq!(evs[6].outcome, Outcome::Success);
        let denied = &evs[7];
        assert_eq!(
            f(denied, "event.reason").split(':').next(),
            Some("AccessDenied")
        );
        let key = evs
            .iter()
            .find(|e| f(e, "cloud.operation") == "CreateAccessKey")
            .unwrap();
        assert_eq!(key.action, Some("cloud_access_key_created"));
        // a call made by an AWS service for the user: no address, the service's name; the
        // last record reaches to the line's end (where a checkpoint after it must be)
        let by_service = evs.last().unwrap();
        assert_eq!(
            by_service.offset as usize + by_service.raw.len(),
            text.trim_end().len()
        );
        assert!(by_service.raw.as_str().ends_with("}]}"));
        assert!(by_service.source_ip.is_none());
        assert_eq!(f(by_service, "source.domain"), "ec2.amazonaws.com");
    }

    #[test]
    fn actiontrail_cloudaudit_and_gcp_records() {
        let (a, _) = parse_file("actiontrail.jsonl", "UTC");
        assert!(a
            .iter()
            .all(|e| f(e, "cloud.provider") == "alibaba_cloud"
                && f(e, "cloud.region") == "cn-hangzhou"));
        assert_eq!(a.iter().filter(|e| e.action == Some("cloud_console_login") && e.outcome == Outcome::Failure).count(), 5);
        assert_eq!(a[6].action, Some("cloud_access_key_created"));
        assert_eq!(a[7].action, Some("cloud_firewall_changed"));
        assert_eq!(a[8].action, Some("cloud_audit_disabled"));

        // CloudAudit writes China Standard Time without a zone
        let (t, _) = parse_file("cloudaudit.jsonl", "Asia/Shanghai");
        assert!(t.iter().all(|e| f(e, "cloud.provider") == "tencent_cloud"
            && f(e, "cloud.account.id") == "100012345678"));
        assert_eq!(
            tansa_event::format_ts(t[0].timestamp),
            "2026-03-14T12:00:01Z"
        );
        assert_eq!(t[2].action, Some("cloud_firewall_changed"));
        assert_eq!(t[4].outcome, Outcome::Failure);
        assert!(f(&t[4], "event.reason").starts_with("4102: UnauthorizedOperation"));

        let (g, _) = parse_file("gcp-audit.jsonl", "UTC");
        assert!(g.iter().all(
            |e| f(e, "cloud.provider") == "gcp" && f(e, "cloud.account.id") == "shop-prod-4711"
        ));
        assert_eq!(g[0].outcome, Outcome::Failure);
        assert_eq!(g[0].user_name().as_deref(), Some("mallory@example.com"));
        assert_eq!(g[1].action, Some("cloud_access_key_created"));
        assert_eq!(g[2].action, Some("cloud_firewall_changed"));
        assert_eq!(g[3].action, Some("cloud_audit_disabled"));
    }

    #[test]
    fn record_ranges_respect_strings_and_refuse_other_lines() {
        let l = br#"{"Records":[{"a":"}]{"},{"b":[1,{"c":"\"}"}]}]}"#;
        let r = super::records(l).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(&l[r[0].0..r[0].1], br#"{"a":"}]{"}"#);
        assert_eq!(&l[r[1].0..r[1].1], br#"{"b":[1,{"c":"\"}"}]}"#);
        assert!(super::records(br#"{"Records":[{"a":1}"#).is_none());
        assert!(super::records(br#"{"event":"x"}"#).is_none());
        assert!(super::records(b"[1,2]").is_none());
    }
}
