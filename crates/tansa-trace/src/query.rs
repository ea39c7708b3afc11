//! Events as the traceback reads them from the store, the queries it asks (bound parameters
//! only: user names, URLs and commands come from attackers), and UTC times in microseconds.

use serde_json::{Map, Value};
use tansa_store::{Backend, Param, Table};

use crate::TraceError;

/// Microseconds since the epoch, UTC.
pub type Micros = i64;

pub const SECOND: Micros = 1_000_000;
pub const MINUTE: Micros = 60 * SECOND;
pub const HOUR: Micros = 60 * MINUTE;
pub const DAY: Micros = 24 * HOUR;

/// The store's UTC text (`YYYY-MM-DD HH:MM:SS[.ffffff]`) as microseconds.
pub fn parse_ts(s: &str) -> Option<Micros> {
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    let z = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(z.timestamp().as_microsecond())
}

/// Microseconds as the store's UTC text (what a TIMESTAMP parameter is cast from).
pub fn sql_ts(t: Micros) -> String {
    jiff::Timestamp::from_microsecond(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S%.f").to_string())
        .unwrap_or_else(|_| "1970-01-01 00:00:00".into())
}

/// Microseconds as RFC 3339 UTC (`2026-03-14T09:14:48Z`, fraction when there is one).
pub fn rfc3339(t: Micros) -> String {
    jiff::Timestamp::from_microsecond(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn sql_day(t: Micros) -> String {
    sql_ts(t)[..10].to_string()
}

/// One stored event, with the columns the traceback reads.
#[derive(Debug, Clone, Default)]
pub struct Ev {
    pub id: u64,
    pub t: Micros,
    pub time_text: Option<String>,
    pub host: Option<String>,
    pub dataset: Option<String>,
    pub category: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub source_ip: Option<String>,
    pub destination_ip: Option<String>,
    pub destination_port: Option<i64>,
    pub user: Option<String>,
    pub process_name: Option<String>,
    pub pid: Option<i64>,
    pub command_line: Option<String>,
    pub url: Option<String>,
    pub http_method: Option<String>,
    pub http_status: Option<i64>,
    pub log_path: Option<String>,
    pub log_offset: Option<u64>,
    pub fields: Map<String, Value>,
    pub raw: String,
}

pub const COLS: &str = "id, ts, time_text, host, dataset, category, action, outcome, source_ip, \
    destination_ip, destination_port, user_name, process_name, process_pid, command_line, url, \
    http_method, http_status, log_path, log_offset, fields, raw";

impl Ev {
    pub fn from_row(row: &[Value]) -> Option<Ev> {
        let s = |i: usize| row[i].as_str().map(str::to_owned);
        let n = |i: usize| row[i].as_i64();
        Some(Ev {
            id: row[0].as_u64()?,
            t: parse_ts(row[1].as_str()?)?,
            time_text: s(2),
            host: s(3),
            dataset: s(4),
            category: s(5),
            action: s(6),
            outcome: s(7),
            source_ip: s(8),
            destination_ip: s(9),
            destination_port: n(10),
            user: s(11),
            process_name: s(12),
            pid: n(13),
            command_line: s(14),
            url: s(15),
            http_method: s(16),
            http_status: n(17),
            log_path: s(18),
            log_offset: row[19].as_u64(),
            fields: row[20]
                .as_str()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            raw: s(21).unwrap_or_default(),
        })
    }

    /// A field of the JSON column as text (numbers too).
    pub fn field(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }

    pub fn is(&self, category: &str) -> bool {
        self.category.as_deref() == Some(category)
    }

    pub fn action_is(&self, a: &str) -> bool {
        self.action.as_deref() == Some(a)
    }

    pub fn failed(&self) -> bool {
        self.outcome.as_deref() == Some("failure")
    }

    /// A successful login (ssh, su, FTP, mail, database…) on a named host.
    pub fn is_login(&self) -> bool {
        self.is("authentication")
            && self.outcome.as_deref() == Some("success")
            && self.host.is_some()
            && self.source_ip.is_some()
    }
}

/// A `WHERE` clause under construction: text with `?` and the values in order.
#[derive(Debug, Clone, Default)]
pub struct Q {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Q {
    pub fn new(clause: &str, params: Vec<Param>) -> Q {
        Q {
            sql: format!("({clause})"),
            params,
        }
    }

    pub fn and(mut self, clause: &str, params: Vec<Param>) -> Q {
        self.sql = format!("{} AND ({clause})", self.sql);
        self.params.extend(params);
        self
    }

    /// `from <= ts < to`, with the day bounds that let the store skip whole days (row groups
    /// of hot days, Parquet files of cold ones).
    pub fn between(self, from: Micros, to: Micros) -> Q {
        self.and(
            "day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) AND ts >= CAST(? AS TIMESTAMP) AND ts < CAST(? AS TIMESTAMP)",
            vec![
                Param::Text(sql_day(from)),
                Param::Text(sql_day(to)),
                Param::Text(sql_ts(from)),
                Param::Text(sql_ts(to)),
            ],
        )
    }
}

/// `?, ?, ?` for a list, with its parameters.
pub fn list(values: impl IntoIterator<Item = String>) -> (String, Vec<Param>) {
    let params: Vec<Param> = values.into_iter().map(Param::Text).collect();
    let marks = vec!["?"; params.len()].join(", ");
    (marks, params)
}

/// Most events one query returns; a trace that reaches it says so.
pub const CAP: usize = 200_000;

/// Events matching a clause, in time order. Auditd's secondary records (EXECVE, CWD, …; their
/// content is on the grouped process event) are left out. For clauses DuckDB applies in its
/// scan (comparisons, `IN`, ranges); see [`fetch_sparse`] for the others.
pub fn fetch(store: &dyn Backend, q: &Q) -> Result<Vec<Ev>, TraceError> {
    let sql = format!(
        "SELECT {COLS} FROM events WHERE {} AND NOT (dataset = 'auditd' AND category IS NULL) \
         ORDER BY ts, id LIMIT {CAP}",
        q.sql
    );
    let t = table(store, &sql, &q.params)?;
    let mut evs: Vec<Ev> = t.rows.iter().filter_map(|r| Ev::from_row(r)).collect();
    evs.sort_by_key(|e| (e.t, e.id));
    Ok(evs)
}

/// [`fetch`] for clauses with functions (`contains`): the keys of the matching events first
/// (reading only the filtered columns), then their rows.
pub fn fetch_sparse(store: &dyn Backend, q: &Q) -> Result<Vec<Ev>, TraceError> {
    let sql = format!(
        "SELECT id, log_offset, CAST(day AS VARCHAR) FROM events WHERE {} \
         AND NOT (dataset = 'auditd' AND category IS NULL) LIMIT {CAP}",
        q.sql
    );
    let keys = table(store, &sql, &q.params)?;
    let keys: Vec<Key> = keys.rows.iter().filter_map(|r| Key::from_row(r)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut evs: Vec<Ev> = by_keys(store, &keys)?.into_values().collect();
    evs.sort_by_key(|e| (e.t, e.id));
    Ok(evs)
}

// How DuckDB runs these (measured on the 100M-event store): `ORDER BY ts, id LIMIT n` is a
// top-N with late materialization — the filter and ordering columns first, whole rows only for
// the winners — which makes [`fetch`] of one address 0.4 s instead of 14 s without it; but for
// the `contains` filters of [`fetch_sparse`] the same plan reads the ordering columns of every
// row (8.5 s), so that one selects keys without ordering (2 s) and sorts here.

/// Where an event is: what a first query returns so that the second reads whole rows only
/// for the events that matched. (A filter DuckDB cannot push into its scan — a function, an
/// OR, a join — is applied after the scan has produced every selected column of every row;
/// selecting the raw line there decompresses all of them.)
#[derive(Debug, Clone)]
pub struct Key {
    pub id: u64,
    pub offset: u64,
    pub day: String,
}

impl Key {
    pub fn from_row(r: &[Value]) -> Option<Key> {
        Some(Key {
            id: r[0].as_u64()?,
            offset: r[1].as_u64()?,
            day: r[2].as_str()?.to_owned(),
        })
    }
}

/// Whole events by key: filters on the stored day and offset (pushed into the scan), then the
/// id. Keys go by day, in offset order: the range of a chunk's offsets is a filter DuckDB
/// applies in its scan (its `IN` list only prunes row groups), so the raw lines it
/// decompresses are those of the range, not of the whole day.
pub fn by_keys(
    store: &dyn Backend,
    keys: &[Key],
) -> Result<std::collections::HashMap<u64, Ev>, TraceError> {
    let mut out = std::collections::HashMap::with_capacity(keys.len());
    let mut keys: Vec<&Key> = keys.iter().collect();
    keys.sort_by(|a, b| (&a.day, a.offset).cmp(&(&b.day, b.offset)));
    for day in keys.chunk_by(|a, b| a.day == b.day) {
        for chunk in day.chunks(1024) {
            let offsets: std::collections::BTreeSet<u64> = chunk.iter().map(|k| k.offset).collect();
            let ids: Vec<String> = chunk.iter().map(|k| k.id.to_string()).collect();
            let (lo, hi) = (chunk[0].offset, chunk[chunk.len() - 1].offset);
            let sql = format!(
                "SELECT {COLS} FROM events WHERE day = CAST(? AS DATE) \
                 AND log_offset BETWEEN {lo} AND {hi} AND log_offset IN ({}) AND id IN ({})",
                offsets
                    .iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                ids.join(", ")
            );
            for r in &table(store, &sql, &[Param::Text(chunk[0].day.clone())])?.rows {
                if let Some(ev) = Ev::from_row(r) {
                    out.insert(ev.id, ev);
                }
            }
        }
    }
    Ok(out)
}

/// A query returning a table (for aggregates).
pub fn table(store: &dyn Backend, sql: &str, params: &[Param]) -> Result<Table, TraceError> {
    let t0 = std::time::Instant::now();
    let t = store.query(sql, params)?;
    if std::env::var_os("TANSA_TRACE_TIMES").is_some() {
        eprintln!(
            "{:>8.3} s {:>7} rows  {}",
            t0.elapsed().as_secs_f64(),
            t.rows.len(),
            sql.chars()
                .rev()
                .take(220)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        );
    }
    Ok(t)
}

/// Whether `needle` (an address) occurs in `hay` as a whole address, not inside a longer one
/// (`45.141.87.2` is not in `45.141.87.23`).
pub fn mentions(hay: &str, needle: &str) -> bool {
    let b = hay.as_bytes();
    let addr_char = |c: u8| c.is_ascii_hexdigit() || c == b'.' || c == b':';
    hay.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + needle.len()).copied();
        let before_ok = before.is_none_or(|c| !addr_char(c));
        // a trailing dot is a sentence's end, not a longer address
        let after_ok = match after {
            None => true,
            Some(b'.') => b
                .get(i + needle.len() + 1)
                .is_none_or(|c| !c.is_ascii_digit()),
            Some(c) => !addr_char(c),
        };
        before_ok && after_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_addresses_match_whole() {
        let t = parse_ts("2026-03-14 09:19:08.468").unwrap();
        assert_eq!(rfc3339(t), "2026-03-14T09:19:08.468Z");
        assert_eq!(sql_ts(t), "2026-03-14 09:19:08.468");
        assert_eq!(parse_ts(&sql_ts(t)), Some(t));
        assert!(mentions("from 45.141.87.2 port", "45.141.87.2"));
        assert!(mentions("http://45.141.87.2/x", "45.141.87.2"));
        assert!(mentions("ends with 45.141.87.2.", "45.141.87.2"));
        assert!(!mentions("from 45.141.87.23 port", "45.141.87.2"));
        assert!(!mentions("from 145.141.87.2 port", "45.141.87.2"));
        assert!(!mentions("45.141.87.2.9", "45.141.87.2"));
    }
}
