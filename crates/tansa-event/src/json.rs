//! ECS JSON output of an [`Event`]: dotted field names become nested objects.

use serde_json::{Map, Value};

use crate::{format_ts, Event, Val};

/// Inserts `value` at the dotted `path`, creating objects on the way. A path that runs into
/// an existing non-object value (`a` set, then `a.b`) is kept flat under its dotted name
/// rather than dropped.
fn insert(root: &mut Map<String, Value>, path: &str, value: Value) {
    if !walkable(root, path) {
        root.insert(path.to_owned(), value);
        return;
    }
    let mut parts = path.split('.').peekable();
    let mut cur = root;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_owned(), value);
            return;
        }
        let entry = cur
            .entry(p.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(m) => cur = m,
            _ => return, // excluded by `walkable`
        }
    }
}

fn walkable(root: &Map<String, Value>, path: &str) -> bool {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            return !matches!(cur.get(p), Some(Value::Object(_)));
        }
        match cur.get(p) {
            None => return true,
            Some(Value::Object(m)) => cur = m,
            Some(_) => return false,
        }
    }
    true
}

pub(crate) fn to_json(ev: &Event) -> Value {
    let mut m = Map::new();
    m.insert("@timestamp".into(), Value::String(format_ts(ev.timestamp)));
    insert(&mut m, "event.kind", ev.kind.as_str().into());
    if let Some(c) = ev.category.as_str() {
        insert(&mut m, "event.category", c.into());
    }
    if let Some(t) = ev.event_type.as_str() {
        insert(&mut m, "event.type", t.into());
    }
    if let Some(a) = ev.action {
        insert(&mut m, "event.action", a.into());
    }
    if let Some(o) = ev.outcome.as_str() {
        insert(&mut m, "event.outcome", o.into());
    }
    if !ev.dataset.is_empty() {
        insert(&mut m, "event.dataset", ev.dataset.into());
    }
    insert(&mut m, "event.ingested", format_ts(ev.ingested).into());
    if let Some((s, e)) = ev.time_text {
        insert(&mut m, "event.created_text", ev.span(s, e).into());
    }
    if let Some(ip) = ev.source_ip {
        insert(&mut m, "source.ip", ip.to_string().into());
    }
    if let Some(p) = ev.source_port {
        insert(&mut m, "source.port", p.into());
    }
    if let Some(ip) = ev.destination_ip {
        insert(&mut m, "destination.ip", ip.to_string().into());
    }
    if let Some(p) = ev.destination_port {
        insert(&mut m, "destination.port", p.into());
    }
    for (prefix, info) in [
        ("source", &ev.source_info),
        ("destination", &ev.destination_info),
    ] {
        for (name, v) in info.iter().flat_map(|i| i.json_parts()) {
            insert(&mut m, &format!("{prefix}.{name}"), v);
        }
    }
    if let Some(h) = &ev.origin.host {
        insert(&mut m, "host.name", h.to_string().into());
    }
    insert(&mut m, "agent.id", ev.origin.agent_id.to_string().into());
    insert(&mut m, "log.file.path", ev.origin.path.to_string().into());
    insert(&mut m, "log.offset", ev.offset.into());
    for (f, v) in &ev.fields {
        let value = match v {
            Val::Int(i) => Value::from(*i),
            Val::Bool(b) => Value::from(*b),
            other => Value::String(ev.val_str(other).into_owned()),
        };
        insert(&mut m, f.name(), value);
    }
    insert(&mut m, "event.original", ev.raw_str().into());
    Value::Object(m)
}
