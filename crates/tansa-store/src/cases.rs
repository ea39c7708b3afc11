//! Cases (the seeds' 溯源工单, an investigation ticket): a title, a status, an owner, the
//! alerts, entities and evidence bundles linked to it, and dated notes. Every change is a
//! [`CaseOp`], applied by [`DuckStore::case_op`] — by the command line on the store, or by the
//! server's API (`POST /api/v1/cases`) while `tansa serve` holds it. Reads go through any
//! [`Backend`] (so through the API too).
//!
//! - `cases`: one row per case, updated in place (status, owner, times).
//! - `case_links`: append-only; `kind` is `alert`, `entity` (an address, prefix, `AS…`,
//!   `user:NAME`) or `bundle` (an export's SHA-256 and directory).
//! - `case_notes`: append-only; status changes are noted too, so the notes are the case's
//!   history.

use duckdb::params;
use serde::{Deserialize, Serialize};

use crate::search::Param;
use crate::{ts_text, Backend, DuckStore, Result, StoreError, Table};

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS cases (
    id UBIGINT PRIMARY KEY,
    opened TIMESTAMP,
    updated TIMESTAMP,
    closed TIMESTAMP,
    title VARCHAR,
    status VARCHAR,
    severity VARCHAR,
    owner VARCHAR,
    resolution VARCHAR
);
CREATE TABLE IF NOT EXISTS case_links (case_id UBIGINT, kind VARCHAR, value VARCHAR, added TIMESTAMP, added_by VARCHAR);
CREATE TABLE IF NOT EXISTS case_notes (case_id UBIGINT, time TIMESTAMP, author VARCHAR, text VARCHAR);
"#;

/// Link kinds.
pub const LINK_KINDS: &[&str] = &["alert", "entity", "bundle"];

/// A change to the cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CaseOp {
    Open {
        title: String,
        severity: Option<String>,
        owner: Option<String>,
        by: String,
        /// (kind, value) linked from the start.
        #[serde(default)]
        links: Vec<(String, String)>,
    },
    Link {
        id: u64,
        kind: String,
        value: String,
        by: String,
    },
    Note {
        id: u64,
        author: String,
        text: String,
    },
    Assign {
        id: u64,
        owner: String,
        by: String,
    },
    Close {
        id: u64,
        resolution: String,
        by: String,
    },
    Reopen {
        id: u64,
        by: String,
    },
}

/// A case as listed. Times are RFC 3339 text as the store gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    pub id: u64,
    pub opened: String,
    pub updated: String,
    pub closed: Option<String>,
    pub title: String,
    pub status: String,
    pub severity: String,
    pub owner: String,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseLink {
    pub kind: String,
    pub value: String,
    pub added: String,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseNote {
    pub at: String,
    pub author: String,
    pub text: String,
}

/// A case with its links and notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    #[serde(flatten)]
    pub row: CaseRow,
    pub links: Vec<CaseLink>,
    pub notes: Vec<CaseNote>,
}

impl Case {
    /// The linked values of one kind.
    pub fn linked(&self, kind: &str) -> Vec<&str> {
        self.links
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.value.as_str())
            .collect()
    }
}

fn check_link(kind: &str, value: &str) -> Result<()> {
    if !LINK_KINDS.contains(&kind) {
        return Err(StoreError::Invalid(format!(
            "{kind:?}: a case links an alert, an entity or a bundle"
        )));
    }
    if value.trim().is_empty() {
        return Err(StoreError::Invalid(format!("an empty {kind} value")));
    }
    Ok(())
}

impl DuckStore {
    /// Applies a change; returns the case's id (the new one for `Open`).
    pub fn case_op(&mut self, op: &CaseOp, now: i64) -> Result<u64> {
        let t = ts_text(now);
        let exists = |tx: &duckdb::Transaction, id: u64| -> Result<String> {
            tx.query_row("SELECT status FROM cases WHERE id = ?", params![id], |r| {
                r.get::<_, String>(0)
            })
            .map_err(|_| StoreError::Invalid(format!("no case {id}")))
        };
        let tx = self.conn.transaction()?;
        let id = match op {
            CaseOp::Open {
                title,
                severity,
                owner,
                by,
                links,
            } => {
                if title.trim().is_empty() {
                    return Err(StoreError::Invalid("a case needs a title".into()));
                }
                for (k, v) in links {
                    check_link(k, v)?;
                }
                let id: u64 =
                    tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM cases", [], |r| {
                        r.get(0)
                    })?;
                tx.execute(
                    "INSERT INTO cases VALUES (?, ?::TIMESTAMP, ?::TIMESTAMP, NULL, ?, 'open', ?, ?, NULL)",
                    params![
                        id,
                        t,
                        t,
                        title,
                        severity.as_deref().unwrap_or("medium"),
                        owner.as_deref().unwrap_or("")
                    ],
                )?;
                for (k, v) in links {
                    tx.execute(
                        "INSERT INTO case_links VALUES (?, ?, ?, ?::TIMESTAMP, ?)",
                        params![id, k, v, t, by],
                    )?;
                }
                tx.execute(
                    "INSERT INTO case_notes VALUES (?, ?::TIMESTAMP, ?, ?)",
                    params![id, t, by, format!("opened: {title}")],
                )?;
                id
            }
            CaseOp::Link {
                id,
                kind,
                value,
                by,
            } => {
                exists(&tx, *id)?;
                check_link(kind, value)?;
                let dup: u64 = tx.query_row(
                    "SELECT count(*) FROM case_links WHERE case_id = ? AND kind = ? AND value = ?",
                    params![id, kind, value],
                    |r| r.get(0),
                )?;
                if dup == 0 {
                    tx.execute(
                        "INSERT INTO case_links VALUES (?, ?, ?, ?::TIMESTAMP, ?)",
                        params![id, kind, value, t, by],
                    )?;
                }
                *id
            }
            CaseOp::Note { id, author, text } => {
                exists(&tx, *id)?;
                if text.trim().is_empty() {
                    return Err(StoreError::Invalid("an empty note".into()));
                }
                tx.execute(
                    "INSERT INTO case_notes VALUES (?, ?::TIMESTAMP, ?, ?)",
                    params![id, t, author, text],
                )?;
                *id
            }
            CaseOp::Assign { id, owner, by } => {
                exists(&tx, *id)?;
                tx.execute(
                    "UPDATE cases SET owner = ? WHERE id = ?",
                    params![owner, id],
                )?;
                tx.execute(
                    "INSERT INTO case_notes VALUES (?, ?::TIMESTAMP, ?, ?)",
                    params![id, t, by, format!("assigned to {owner}")],
                )?;
                *id
            }
            CaseOp::Close { id, resolution, by } => {
                if exists(&tx, *id)? == "closed" {
                    return Err(StoreError::Invalid(format!("case {id} is closed already")));
                }
                tx.execute(
                    "UPDATE cases SET status = 'closed', closed = ?::TIMESTAMP, resolution = ? WHERE id = ?",
                    params![t, resolution, id],
                )?;
                tx.execute(
                    "INSERT INTO case_notes VALUES (?, ?::TIMESTAMP, ?, ?)",
                    params![id, t, by, format!("closed: {resolution}")],
                )?;
                *id
            }
            CaseOp::Reopen { id, by } => {
                exists(&tx, *id)?;
                tx.execute(
                    "UPDATE cases SET status = 'open', closed = NULL WHERE id = ?",
                    params![id],
                )?;
                tx.execute(
                    "INSERT INTO case_notes VALUES (?, ?::TIMESTAMP, ?, 'reopened')",
                    params![id, t, by],
                )?;
                *id
            }
        };
        tx.execute(
            "UPDATE cases SET updated = ?::TIMESTAMP WHERE id = ?",
            params![t, id],
        )?;
        tx.commit()?;
        Ok(id)
    }
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn opt(v: &serde_json::Value) -> Option<String> {
    (!v.is_null()).then(|| text(v))
}

const SELECT: &str = "SELECT id, strftime(opened, '%Y-%m-%dT%H:%M:%SZ') AS opened, \
    strftime(updated, '%Y-%m-%dT%H:%M:%SZ') AS updated, \
    strftime(closed, '%Y-%m-%dT%H:%M:%SZ') AS closed, title, status, severity, owner, resolution \
    FROM cases";

fn rows(t: &Table) -> Vec<CaseRow> {
    t.rows
        .iter()
        .map(|r| CaseRow {
            id: r[0].as_u64().unwrap_or(0),
            opened: text(&r[1]),
            updated: text(&r[2]),
            closed: opt(&r[3]),
            title: text(&r[4]),
            status: text(&r[5]),
            severity: text(&r[6]),
            owner: text(&r[7]),
            resolution: opt(&r[8]),
        })
        .collect()
}

/// Every case (`all`: closed ones too), newest first.
pub fn list(store: &dyn Backend, all: bool) -> Result<Vec<CaseRow>> {
    let sql = format!("{SELECT} WHERE ? OR status <> 'closed' ORDER BY id DESC");
    Ok(rows(&store.query(&sql, &[Param::Int(all as i64)])?))
}

/// One case with its links and notes.
pub fn get(store: &dyn Backend, id: u64) -> Result<Option<Case>> {
    let Some(row) =
        rows(&store.query(&format!("{SELECT} WHERE id = ?"), &[Param::Int(id as i64)])?).pop()
    else {
        return Ok(None);
    };
    let links = store
        .query(
            "SELECT kind, value, strftime(added, '%Y-%m-%dT%H:%M:%SZ'), added_by FROM case_links \
             WHERE case_id = ? ORDER BY added, rowid",
            &[Param::Int(id as i64)],
        )?
        .rows
        .iter()
        .map(|r| CaseLink {
            kind: text(&r[0]),
            value: text(&r[1]),
            added: text(&r[2]),
            by: text(&r[3]),
        })
        .collect();
    let notes = store
        .query(
            "SELECT strftime(time, '%Y-%m-%dT%H:%M:%SZ'), author, text FROM case_notes \
             WHERE case_id = ? ORDER BY time, rowid",
            &[Param::Int(id as i64)],
        )?
        .rows
        .iter()
        .map(|r| CaseNote {
            at: text(&r[0]),
            author: text(&r[1]),
            text: text(&r[2]),
        })
        .collect();
    Ok(Some(Case { row, links, notes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_opened_linked_noted_closed_and_read_back() {
        let dir = std::env::temp_dir().join(format!("tansa-cases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = DuckStore::open(&dir, None).unwrap();
        let t0 = 1_763_900_000_000_000_000i64;
        let id = s
            .case_op(
                &CaseOp::Open {
                    title: "SSH brute force then login from 45.141.87.23".into(),
                    severity: Some("high".into()),
                    owner: None,
                    by: "alice".into(),
                    links: vec![("entity".into(), "45.141.87.23".into())],
                },
                t0,
            )
            .unwrap();
        assert_eq!(id, 1);
        let op = |op: CaseOp, s: &mut DuckStore| s.case_op(&op, t0 + 1_000_000_000);
        op(
            CaseOp::Link {
                id,
                kind: "alert".into(),
                value: "a-1".into(),
                by: "alice".into(),
            },
            &mut s,
        )
        .unwrap();
        // a link twice is one link; an unknown kind or case is refused
        op(
            CaseOp::Link {
                id,
                kind: "alert".into(),
                value: "a-1".into(),
                by: "bob".into(),
            },
            &mut s,
        )
        .unwrap();
        assert!(op(
            CaseOp::Link {
                id,
                kind: "file".into(),
                value: "x".into(),
                by: "bob".into(),
            },
            &mut s
        )
        .is_err());
        assert!(op(
            CaseOp::Note {
                id: 9,
                author: "bob".into(),
                text: "x".into(),
            },
            &mut s
        )
        .is_err());
        op(
            CaseOp::Note {
                id,
                author: "bob".into(),
                text: "password login was enabled on web01".into(),
            },
            &mut s,
        )
        .unwrap();
        op(
            CaseOp::Assign {
                id,
                owner: "bob".into(),
                by: "alice".into(),
            },
            &mut s,
        )
        .unwrap();
        op(
            CaseOp::Close {
                id,
                resolution: "contained".into(),
                by: "bob".into(),
            },
            &mut s,
        )
        .unwrap();
        assert!(list(&s, false).unwrap().is_empty());
        let c = get(&s, id).unwrap().unwrap();
        assert_eq!(c.row.status, "closed");
        assert_eq!(c.row.owner, "bob");
        assert_eq!(c.row.resolution.as_deref(), Some("contained"));
        assert_eq!(c.linked("alert"), vec!["a-1"]);
        assert_eq!(c.linked("entity"), vec!["45.141.87.23"]);
        let notes: Vec<&str> = c.notes.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            notes,
            vec![
                "opened: SSH brute force then login from 45.141.87.23",
                "password login was enabled on web01",
                "assigned to bob",
                "closed: contained"
            ]
        );
        assert!(get(&s, 2).unwrap().is_none());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
