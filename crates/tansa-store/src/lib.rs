//! The embedded store: every event, alert and ingestion checkpoint in one DuckDB file in the
//! data directory, queried with SQL.
//!
//! Sixth box of the data path (`… → detect → store → respond / investigate`). The only crate
//! that links DuckDB.
//!
//! Invariants:
//! - A source (a file, identified by a fingerprint of its first bytes, so that a rotated copy
//!   is the same source) has a checkpoint: the byte offset up to which its lines are stored.
//! - Events and the checkpoints that cover them are committed in one transaction
//!   ([`Store::write`]): after a crash the store holds whole batches and matching checkpoints,
//!   so a second run stores exactly the lines that are missing — every line once.
//! - Alerts are keyed by their stable id and replaced when seen again.
//! - User SQL runs read-only statements only ([`Store::query`]).

use std::path::{Path, PathBuf};

use duckdb::{params, Connection};
use tansa_detect::Alert;
use tansa_event::{format_ts, Event, Field, Val};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: duckdb::Error,
    },
    #[error(transparent)]
    Db(#[from] duckdb::Error),
    #[error("{0}: the store is read-only from here (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE, PRAGMA)")]
    NotReadOnly(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS sources (
    fingerprint VARCHAR PRIMARY KEY,
    path VARCHAR,
    host VARCHAR,
    next_offset UBIGINT,
    lines UBIGINT,
    updated TIMESTAMP
);
CREATE TABLE IF NOT EXISTS events (
    day DATE,
    ts TIMESTAMP,
    ingested TIMESTAMP,
    time_text VARCHAR,
    kind VARCHAR,
    dataset VARCHAR,
    category VARCHAR,
    type VARCHAR,
    action VARCHAR,
    outcome VARCHAR,
    host VARCHAR,
    source_ip VARCHAR,
    source_port USMALLINT,
    destination_ip VARCHAR,
    destination_port USMALLINT,
    user_name VARCHAR,
    process_name VARCHAR,
    process_pid BIGINT,
    command_line VARCHAR,
    url VARCHAR,
    http_method VARCHAR,
    http_status SMALLINT,
    user_agent VARCHAR,
    log_path VARCHAR,
    log_offset UBIGINT,
    agent_id VARCHAR,
    fields JSON,
    raw VARCHAR
);
CREATE TABLE IF NOT EXISTS alerts (
    id VARCHAR PRIMARY KEY,
    rule_id VARCHAR,
    rule_title VARCHAR,
    severity VARCHAR,
    tags VARCHAR[],
    first_seen TIMESTAMP,
    last_seen TIMESTAMP,
    count UBIGINT,
    host VARCHAR,
    source_ip VARCHAR,
    user_name VARCHAR,
    entity VARCHAR,
    events JSON
);
"#;

/// The store in a data directory.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Where one source stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub fingerprint: String,
    pub next_offset: u64,
}

fn ts(ns: i64) -> String {
    // DuckDB reads `YYYY-MM-DD HH:MM:SS.ffffff` as TIMESTAMP
    let s = format_ts(ns);
    s.trim_end_matches('Z').replacen('T', " ", 1)
}

impl Store {
    /// Opens (or creates) `dir/tansa.duckdb`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_owned(),
            source: duckdb::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        let path = dir.join("tansa.duckdb");
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
            params![SCHEMA_VERSION.to_string()],
        )?;
        Ok(Store { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint of a source (0 when new).
    pub fn checkpoint(&self, fingerprint: &str) -> Result<u64> {
        let mut st = self
            .conn
            .prepare("SELECT next_offset FROM sources WHERE fingerprint = ?")?;
        let mut rows = st.query(params![fingerprint])?;
        Ok(match rows.next()? {
            Some(r) => r.get::<_, u64>(0)?,
            None => 0,
        })
    }

    /// Stores events and the checkpoints they complete, in one transaction.
    pub fn write(
        &mut self,
        events: &[Event],
        checkpoints: &[(Checkpoint, String, Option<String>, u64)],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut app = tx.appender("events")?;
            for ev in events {
                append(&mut app, ev)?;
            }
            app.flush()?;
        }
        for (cp, path, host, lines) in checkpoints {
            tx.execute(
                "INSERT INTO sources VALUES (?, ?, ?, ?, ?, now()) ON CONFLICT (fingerprint) DO UPDATE SET \
                 path = excluded.path, host = excluded.host, next_offset = excluded.next_offset, \
                 lines = sources.lines + excluded.lines, updated = excluded.updated",
                params![cp.fingerprint, path, host, cp.next_offset, lines],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores alerts, replacing earlier versions (same id).
    pub fn write_alerts(&mut self, alerts: &[Alert]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for a in alerts {
            let tags = format!(
                "[{}]",
                a.tags
                    .iter()
                    .map(|t| format!("'{}'", t.replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let events = serde_json::Value::Array(
                a.events
                    .iter()
                    .map(|r| serde_json::json!({"log.file.path": &*r.path, "log.offset": r.offset}))
                    .collect(),
            )
            .to_string();
            tx.execute(
                &format!(
                    "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, {tags}::VARCHAR[], ?::TIMESTAMP, ?::TIMESTAMP, ?, ?, ?, ?, ?, ?)"
                ),
                params![
                    a.id,
                    a.rule_id,
                    a.rule_title,
                    a.severity.as_str(),
                    ts(a.first_seen),
                    ts(a.last_seen),
                    a.count,
                    a.host,
                    a.source_ip.map(|i| i.to_string()),
                    a.user,
                    a.key.to_string(),
                    events
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs a read-only SQL statement; returns column names and rows as JSON values.
    pub fn query(&self, sql: &str) -> Result<(Vec<String>, Vec<Vec<serde_json::Value>>)> {
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if !matches!(
            first.as_str(),
            "SELECT" | "WITH" | "DESCRIBE" | "SHOW" | "EXPLAIN" | "SUMMARIZE" | "PRAGMA" | "FROM"
        ) {
            return Err(StoreError::NotReadOnly(first));
        }
        let mut st = self.conn.prepare(sql)?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        let mut names: Vec<String> = Vec::new();
        while let Some(r) = rows.next()? {
            if names.is_empty() {
                names = r.as_ref().column_names();
            }
            let mut row = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                row.push(value(r.get_ref(i)?));
            }
            out.push(row);
        }
        if names.is_empty() {
            names = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        }
        Ok((names, out))
    }

    /// Number of stored events.
    pub fn event_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
    }
}

fn value(v: duckdb::types::ValueRef<'_>) -> serde_json::Value {
    use duckdb::types::ValueRef as V;
    match v {
        V::Null => serde_json::Value::Null,
        V::Boolean(b) => b.into(),
        V::TinyInt(i) => i.into(),
        V::SmallInt(i) => i.into(),
        V::Int(i) => i.into(),
        V::BigInt(i) => i.into(),
        V::UTinyInt(i) => i.into(),
        V::USmallInt(i) => i.into(),
        V::UInt(i) => i.into(),
        V::UBigInt(i) => i.into(),
        V::Float(f) => f.into(),
        V::Double(f) => f.into(),
        V::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        other => {
            let owned: duckdb::types::Value = other.to_owned();
            match owned {
                duckdb::types::Value::Timestamp(_, _) | duckdb::types::Value::Date32(_) => {
                    format!("{owned:?}").into()
                }
                o => format!("{o:?}").into(),
            }
        }
    }
}

fn opt(ev: &Event, f: Field) -> Option<String> {
    ev.get_str(f).map(|v| v.into_owned())
}

/// Fields that have their own column.
const COLUMNS: &[Field] = &[
    Field::USER_NAME,
    Field::PROCESS_NAME,
    Field::PROCESS_PID,
    Field::PROCESS_COMMAND_LINE,
    Field::URL_ORIGINAL,
    Field::HTTP_METHOD,
    Field::HTTP_STATUS,
    Field::USER_AGENT,
    Field::HOST_NAME,
];

fn append(app: &mut duckdb::Appender<'_>, ev: &Event) -> duckdb::Result<()> {
    let t = ts(ev.timestamp);
    let day = t.get(..10).unwrap_or("1970-01-01").to_owned();
    let mut rest = serde_json::Map::new();
    for (f, v) in &ev.fields {
        if COLUMNS.contains(f) || *f == Field::MESSAGE {
            continue;
        }
        let j = match v {
            Val::Int(i) => serde_json::Value::from(*i),
            Val::Bool(b) => serde_json::Value::from(*b),
            other => serde_json::Value::from(ev.val_str(other).into_owned()),
        };
        rest.insert(f.name().to_owned(), j);
    }
    let pid = match ev.get(Field::PROCESS_PID) {
        Some(Val::Int(i)) => Some(*i),
        _ => None,
    };
    let status = match ev.get(Field::HTTP_STATUS) {
        Some(Val::Int(i)) => i16::try_from(*i).ok(),
        _ => None,
    };
    app.append_row(params![
        day,
        t,
        ts(ev.ingested),
        ev.time_text.map(|(s, e)| ev.span(s, e).to_owned()),
        ev.kind.as_str(),
        ev.dataset,
        ev.category.as_str(),
        ev.event_type.as_str(),
        ev.action,
        ev.outcome.as_str(),
        ev.host_name().map(|h| h.into_owned()),
        ev.source_ip.map(|i| i.to_string()),
        ev.source_port,
        ev.destination_ip.map(|i| i.to_string()),
        ev.destination_port,
        opt(ev, Field::USER_NAME),
        opt(ev, Field::PROCESS_NAME),
        pid,
        opt(ev, Field::PROCESS_COMMAND_LINE),
        opt(ev, Field::URL_ORIGINAL),
        opt(ev, Field::HTTP_METHOD),
        status,
        opt(ev, Field::USER_AGENT),
        &*ev.origin.path,
        ev.offset,
        &*ev.origin.agent_id,
        serde_json::Value::Object(rest).to_string(),
        ev.raw_str(),
    ])
}

/// A fingerprint of a stream from its first bytes (FNV-1a 64 over at most 1 KiB): the same
/// for a file and its rotated copy, different for unrelated files.
pub fn fingerprint(head: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in &head[..head.len().min(1024)] {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::{Category, Origin, Outcome};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tansa-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn ev(i: u64) -> Event {
        let line = format!(
            "Mar 14 10:00:{:02} h sshd[1]: Failed password for root from 203.0.113.{} port 22 ssh2",
            i % 60,
            i % 250
        );
        let mut e = Event::new(
            bytes::Bytes::from(line),
            Arc::new(Origin::file("/var/log/auth.log", "web01")),
            0,
        );
        e.timestamp = 1_773_482_400_000_000_000 + i as i64 * 1_000_000_000;
        e.offset = i * 100;
        e.category = Category::Authentication;
        e.outcome = Outcome::Failure;
        e.dataset = "sshd";
        e.source_ip = Some(format!("203.0.113.{}", i % 250).parse().unwrap());
        e.set_str(Field::USER_NAME, "root");
        e
    }

    #[test]
    fn events_and_checkpoints_commit_together_and_survive_reopening() {
        let d = dir("commit");
        let mut s = Store::open(&d).unwrap();
        assert_eq!(s.checkpoint("fp").unwrap(), 0);
        let evs: Vec<Event> = (0..1000).map(ev).collect();
        let cp = Checkpoint {
            fingerprint: "fp".into(),
            next_offset: 100_000,
        };
        s.write(
            &evs,
            &[(cp, "/var/log/auth.log".into(), Some("web01".into()), 1000)],
        )
        .unwrap();
        drop(s);
        let s = Store::open(&d).unwrap();
        assert_eq!(s.checkpoint("fp").unwrap(), 100_000);
        assert_eq!(s.event_count().unwrap(), 1000);
        let (cols, rows) = s
            .query("SELECT source_ip, count(*) AS n FROM events WHERE outcome = 'failure' GROUP BY 1 ORDER BY n DESC, 1 LIMIT 3")
            .unwrap();
        assert_eq!(cols, vec!["source_ip", "n"]);
        assert_eq!(rows[0][1], serde_json::json!(4));
        let (_, rows) = s
            .query("SELECT day, user_name, fields->>'$.\"user.name\"' FROM events LIMIT 1")
            .unwrap();
        assert_eq!(rows[0][1], "root");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn user_sql_is_read_only() {
        let d = dir("ro");
        let s = Store::open(&d).unwrap();
        for bad in [
            "DELETE FROM events",
            "drop table events",
            "INSERT INTO events VALUES (1)",
            "ATTACH 'x'",
        ] {
            assert!(
                matches!(s.query(bad), Err(StoreError::NotReadOnly(_))),
                "{bad}"
            );
        }
        assert!(s.query("SELECT 1").is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn fingerprints_follow_the_head() {
        assert_eq!(fingerprint(b"same start"), fingerprint(b"same start"));
        assert_ne!(fingerprint(b"one"), fingerprint(b"two"));
        let long: Vec<u8> = (0..3000).map(|i| i as u8).collect();
        let mut longer = long.clone();
        longer.extend_from_slice(b"appended later");
        assert_eq!(
            fingerprint(&long),
            fingerprint(&longer),
            "growth after 1 KiB keeps the identity"
        );
    }
}
