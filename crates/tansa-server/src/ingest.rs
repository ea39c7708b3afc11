//! HTTP ingest: what shippers send, turned into lines of streams.
//!
//! - `POST /api/v1/ingest?host=H&path=P&format=F`: a body of lines (plain log lines or JSON
//!   objects), one stream per (host, path).
//! - The Elasticsearch `_bulk` subset that Filebeat, Fluent Bit, Vector and Logstash use
//!   (`POST /_bulk`, `POST /INDEX/_bulk`; `index` and `create` actions with their document;
//!   gzip bodies): each document's log line (`message`, Fluent Bit's `log`, or
//!   `event.original`) is parsed like a line of a file, in the stream of the host and file the
//!   document names (`host.name`, `log.file.path`…), so that an sshd line shipped by Filebeat
//!   becomes the same event as when Tansa reads the file. A document without a log line is
//!   kept whole as a JSON line (ECS documents are read field by field).

use serde_json::Value;

/// A document's line and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub line: String,
    pub host: Option<String>,
    pub path: Option<String>,
    /// The shipper's name for itself (`agent.name`, `agent.id`).
    pub agent: Option<String>,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The first of `keys` (dotted: nested objects or a flat key with dots) that holds a string.
fn first(doc: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        text(doc.get(*k)).or_else(|| {
            let mut v = doc;
            for part in k.split('.') {
                v = v.get(part)?;
            }
            text(Some(v))
        })
    })
}

/// Reads a shipped document.
pub fn doc(v: &Value) -> Doc {
    let line = first(v, &["message", "log", "event.original"])
        // one line per event: a multi-line message keeps its lines joined
        .map(|m| m.trim_end_matches(['\n', '\r']).replace(['\n', '\r'], " "))
        .unwrap_or_else(|| v.to_string());
    Doc {
        line,
        host: first(v, &["host.name", "host.hostname", "hostname", "host"]),
        path: first(v, &["log.file.path", "file", "path", "filename"]),
        agent: first(v, &["agent.name", "agent.id"]),
    }
}

/// One action of a bulk body.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `index` or `create` with its document.
    Doc {
        action: String,
        index: Option<String>,
        id: Option<String>,
        doc: Doc,
    },
    /// An action that is not taken (`delete`, `update`, or a malformed pair): answered with
    /// this status and reason, the other items are still taken.
    Refused {
        action: String,
        status: u16,
        reason: String,
    },
}

/// Splits an NDJSON bulk body into its items.
pub fn bulk(body: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    while let Some(action_line) = lines.next() {
        let meta: Value = match serde_json::from_str(action_line) {
            Ok(Value::Object(m)) if m.len() == 1 => Value::Object(m),
            _ => {
                out.push(Item::Refused {
                    action: "index".into(),
                    status: 400,
                    reason: "malformed action line".into(),
                });
                continue;
            }
        };
        let Some((action, params)) = meta.as_object().and_then(|m| m.iter().next()) else {
            continue;
        };
        let index = text(params.get("_index"));
        let id = text(params.get("_id"));
        match action.as_str() {
            "index" | "create" => {
                let Some(src) = lines.next() else {
                    out.push(Item::Refused {
                        action: action.clone(),
                        status: 400,
                        reason: "the action has no document".into(),
                    });
                    break;
                };
                match serde_json::from_str::<Value>(src) {
                    Ok(v @ Value::Object(_)) => out.push(Item::Doc {
                        action: action.clone(),
                        index,
                        id,
                        doc: doc(&v),
                    }),
                    _ => out.push(Item::Refused {
                        action: action.clone(),
                        status: 400,
                        reason: "the document is not a JSON object".into(),
                    }),
                }
            }
            "update" => {
                lines.next();
                out.push(Item::Refused {
                    action: action.clone(),
                    status: 400,
                    reason: "stored events are not updated".into(),
                });
            }
            other => out.push(Item::Refused {
                action: other.to_owned(),
                status: 400,
                reason: "stored events are not deleted through ingest".into(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipper_documents_give_their_line_host_and_file() {
        // Filebeat (ECS)
        let d = doc(&serde_json::json!({"@timestamp":"2026-11-23T10:00:00.000Z",
            "message":"Nov 23 10:00:00 web01 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
            "host":{"name":"web01"},"log":{"file":{"path":"/var/log/auth.log"},"offset":120},
            "agent":{"type":"filebeat","name":"web01-beat"}}));
        assert!(d.line.starts_with("Nov 23 10:00:00 web01 sshd[1]"));
        assert_eq!(d.host.as_deref(), Some("web01"));
        assert_eq!(d.path.as_deref(), Some("/var/log/auth.log"));
        assert_eq!(d.agent.as_deref(), Some("web01-beat"));
        // Fluent Bit tail input: `log` and a flat path key
        let d = doc(
            &serde_json::json!({"@timestamp":"2026-11-23T10:00:00Z","log":"a line\n","file":"/var/log/app.log","hostname":"db01"}),
        );
        assert_eq!(d.line, "a line");
        assert_eq!(
            (d.host.as_deref(), d.path.as_deref()),
            (Some("db01"), Some("/var/log/app.log"))
        );
        // no log line: the document itself
        let v = serde_json::json!({"source":{"ip":"192.0.2.1"},"event":{"action":"x"}});
        assert_eq!(doc(&v).line, v.to_string());
    }

    #[test]
    fn bulk_bodies_are_split_into_items_and_bad_pairs_are_refused_alone() {
        let body = concat!(
            "{\"create\":{\"_index\":\"logs-tansa\"}}\n{\"message\":\"one\"}\n",
            "{\"index\":{\"_index\":\"x\",\"_id\":\"7\"}}\n{\"log\":\"two\"}\n",
            "{\"delete\":{\"_index\":\"x\",\"_id\":\"7\"}}\n",
            "{\"index\":{}}\nnot json\n",
            "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{}}\n",
            "{\"index\":{}}\n{\"message\":\"three\"}\n"
        );
        let items = bulk(body);
        let lines: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                Item::Doc { doc, .. } => Some(doc.line.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(lines, ["one", "two", "three"]);
        assert_eq!(items.len(), 6);
        assert!(matches!(&items[1], Item::Doc { id: Some(i), .. } if i == "7"));
        assert!(matches!(&items[2], Item::Refused { action, .. } if action == "delete"));
        assert!(matches!(&items[3], Item::Refused { status: 400, .. }));
    }
}
