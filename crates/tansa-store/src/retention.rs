//! Hot and cold tiers: days older than the hot period move from the database to Parquet
//! files (`COLD/events/day=YYYY-MM-DD/part-*.parquet`, written by DuckDB itself, zstd,
//! sorted by source address then time so that lookups of one address skip most row groups);
//! days older than the deletion age — counted from the event's day and from its arrival, so
//! that last year's logs analysed today are kept for the full period — are removed from both
//! tiers. Alerts follow the day of their last event: `COLD/alerts/day=…` with their links to
//! events in `COLD/alert_events/day=…`, deleted with the events of that age.
//!
//! Crash safety: a day is first written to `part-….parquet.tmp`; then, in one transaction,
//! its rows leave the hot table and the part is recorded in `cold_parts`; then the file is
//! renamed. [`recover`] (run on every open) finishes or undoes a move that a crash cut short:
//! a recorded temporary file is renamed, an unrecorded one is deleted. A day is therefore
//! always in exactly one tier.

use std::path::{Path, PathBuf};

use duckdb::params;
use serde::{Deserialize, Serialize};

use crate::{sql_str, DuckStore, Result, StoreError, HOT};

/// How long events stay in each tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Days kept in the database (default 30).
    pub hot_days: u32,
    /// Days after which events are deleted everywhere (default 365).
    pub delete_days: u32,
    /// Rewrite each finished hot day (two days back or older) sorted by source address and
    /// time, so that queries for one address read a few row groups per day instead of all
    /// of them (default on; `analyze` leaves it to `tansa retention run` and `serve`).
    #[serde(default = "yes")]
    pub cluster: bool,
}

fn yes() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            hot_days: 30,
            delete_days: 365,
            cluster: true,
        }
    }
}

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Days moved to the cold tier: (day, events, file).
    pub moved: Vec<(String, u64, String)>,
    /// Days deleted (from either tier).
    pub deleted: Vec<String>,
    /// Events deleted.
    pub deleted_events: u64,
    /// Hot days rewritten in address order: (day, events).
    #[serde(default)]
    pub clustered: Vec<(String, u64)>,
    /// Alerts moved to the cold tier, by the day of their last event: (day, alerts, file).
    #[serde(default)]
    pub moved_alerts: Vec<(String, u64, String)>,
    /// Alerts deleted (from either tier).
    #[serde(default)]
    pub deleted_alerts: u64,
}

/// What the cold tier holds, each under `COLD/KIND/day=YYYY-MM-DD/`.
pub const KINDS: &[&str] = &["events", "alerts", "alert_events"];

/// The glob of every cold file of a kind.
pub fn cold_glob(cold: &Path, kind: &str) -> String {
    cold.join(kind)
        .join("day=*")
        .join("*.parquet")
        .to_string_lossy()
        .into_owned()
}

/// Day directories of the cold tier of a kind: (day, path).
fn cold_days(cold: &Path, kind: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(cold.join(kind)) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(day) = name.strip_prefix("day=") {
                if is_day(day) {
                    out.push((day.to_owned(), e.path()));
                }
            }
        }
    }
    out.sort();
    out
}

/// Every finished cold file of a kind.
pub fn cold_files(cold: &Path, kind: &str) -> impl Iterator<Item = PathBuf> {
    cold_days(cold, kind).into_iter().flat_map(|(_, dir)| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
    })
}

fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A new part file of `kind` for `day`: its final path and the temporary one it is written
/// to first.
fn new_part(cold: &Path, kind: &str, day: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = cold.join(kind).join(format!("day={day}"));
    let seq = std::fs::read_dir(&dir).map(|r| r.count()).unwrap_or(0);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    part_named(cold, kind, day, &format!("part-{seq:04}-{stamp:x}.parquet"))
}

/// The part `name` of `kind` for `day` (its directory made), and its temporary path.
fn part_named(cold: &Path, kind: &str, day: &str, name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = cold.join(kind).join(format!("day={day}"));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let file = dir.join(name);
    let tmp = PathBuf::from(format!("{}.tmp", file.display()));
    Ok((file, tmp))
}

/// Removes from `cold_parts` the parts matching `filter` (its `?` are all `cut`, `n` of
/// them) and returns them: (day, file, rows, kind). Their files are deleted once the
/// transaction commits.
fn take_parts(
    tx: &duckdb::Transaction<'_>,
    filter: &str,
    cut: &str,
    n: usize,
) -> Result<Vec<(String, String, u64, String)>> {
    let cuts = vec![cut; n];
    let parts: Vec<(String, String, u64, String)> = {
        let mut st = tx.prepare(&format!(
            "SELECT strftime(day, '%Y-%m-%d'), file, rows, kind FROM cold_parts \
             WHERE {filter} ORDER BY day, file"
        ))?;
        let rows = st.query_map(duckdb::params_from_iter(&cuts), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    tx.execute(
        &format!("DELETE FROM cold_parts WHERE {filter}"),
        duckdb::params_from_iter(&cuts),
    )?;
    Ok(parts)
}

/// Writes the rows of `select` to a Parquet file (zstd, DuckDB's row groups).
fn copy_to(s: &DuckStore, select: &str, path: &Path) -> Result<()> {
    s.conn().execute_batch(&format!(
        "COPY ({select}) TO {} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
        sql_str(&path.to_string_lossy())
    ))?;
    Ok(())
}

/// Records a part file of the cold tier (in the transaction that removes its rows from the
/// hot tables).
fn record_part(
    tx: &duckdb::Transaction<'_>,
    day: &str,
    file: &Path,
    rows: u64,
    newest: &str,
    kind: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO cold_parts (day, file, rows, created, ingested_max, kind) \
         VALUES (CAST(? AS DATE), ?, ?, now(), CAST(? AS TIMESTAMP), ?)",
        params![day, file.to_string_lossy(), rows, newest, kind],
    )?;
    Ok(())
}

/// Finishes or undoes moves cut short by a crash (see the module docs).
pub(crate) fn recover(s: &DuckStore) -> Result<()> {
    for (_, dir) in KINDS.iter().flat_map(|k| cold_days(s.cold_dir(), k)) {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let tmp = e.path();
            let Some(name) = tmp.to_str().and_then(|p| p.strip_suffix(".tmp")) else {
                continue;
            };
            let final_path = PathBuf::from(name);
            let recorded: u64 = s.conn().query_row(
                "SELECT count(*) FROM cold_parts WHERE file = ?",
                params![final_path.to_string_lossy()],
                |r| r.get(0),
            )?;
            if recorded > 0 {
                std::fs::rename(&tmp, &final_path).map_err(io(&tmp))?;
            } else {
                std::fs::remove_file(&tmp).map_err(io(&tmp))?;
            }
        }
    }
    Ok(())
}

impl Policy {
    /// Refuses a policy that deletes events before they leave the hot tier.
    pub fn check(&self) -> Result<()> {
        if self.delete_days < self.hot_days {
            return Err(StoreError::Invalid(format!(
                "retention: events would be deleted ({} days) before they leave the hot tier ({} days); \
                 raise --delete-days or lower --hot-days",
                self.delete_days, self.hot_days
            )));
        }
        Ok(())
    }
}

/// Applies `policy` as of `today` (`YYYY-MM-DD`, default the current UTC date).
pub(crate) fn run(
    s: &mut DuckStore,
    policy: &Policy,
    today: Option<&str>,
) -> Result<RetentionReport> {
    policy.check()?;
    let today: String = match today {
        Some(t) if is_day(t) => t.to_owned(),
        Some(t) => {
            return Err(StoreError::Invalid(format!(
                "retention: `{t}` is not a YYYY-MM-DD date"
            )))
        }
        // the UTC date, computed here: DuckDB's current_date would need its ICU extension
        None => crate::jiff_free_date(
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                / 86_400) as i32,
        ),
    };
    let (hot_cut, del_cut): (String, String) = s.conn().query_row(
        "SELECT strftime(CAST(? AS DATE) - CAST(? AS INTEGER), '%Y-%m-%d'), \
                strftime(CAST(? AS DATE) - CAST(? AS INTEGER), '%Y-%m-%d')",
        params![today, policy.hot_days, today, policy.delete_days],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut report = RetentionReport::default();

    // 1. delete what is past the deletion age, from both tiers. Age counts from the event's
    //    day *and* from its arrival: old logs analysed today are kept for the full period.
    let tx = s.conn.transaction()?;
    let old_hot: Vec<(String, u64)> = {
        let mut st = tx.prepare(&format!(
            "SELECT strftime(day, '%Y-%m-%d'), count(*) FROM {HOT} WHERE day < CAST(? AS DATE) \
             GROUP BY day HAVING max(ingested) < CAST(? AS DATE) ORDER BY day"
        ))?;
        let rows = st.query_map(params![del_cut, del_cut], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    for (day, n) in &old_hot {
        tx.execute(
            &format!("DELETE FROM {HOT} WHERE day = CAST(? AS DATE)"),
            params![day],
        )?;
        report.deleted_events += n;
        report.deleted.push(day.clone());
    }
    let mut old_cold = take_parts(
        &tx,
        "kind = 'events' AND day < CAST(? AS DATE) AND ingested_max < CAST(? AS DATE)",
        &del_cut,
        2,
    )?;
    // alerts go with the last of their day's events: a day older than the deletion age with
    // no events left in either tier
    let no_events = format!(
        "< CAST(? AS DATE) AND {{d}} NOT IN (SELECT DISTINCT day FROM {HOT}) \
         AND {{d}} NOT IN (SELECT day FROM cold_parts WHERE kind = 'events')"
    );
    let hot_gone = no_events.replace("{d}", "CAST(last_seen AS DATE)");
    report.deleted_alerts += tx.query_row(
        &format!("SELECT count(*) FROM alerts_hot WHERE CAST(last_seen AS DATE) {hot_gone}"),
        params![del_cut],
        |r| r.get::<_, u64>(0),
    )?;
    tx.execute(
        &format!(
            "DELETE FROM alert_events_hot WHERE alert_id IN \
             (SELECT id FROM alerts_hot WHERE CAST(last_seen AS DATE) {hot_gone})"
        ),
        params![del_cut],
    )?;
    tx.execute(
        &format!("DELETE FROM alerts_hot WHERE CAST(last_seen AS DATE) {hot_gone}"),
        params![del_cut],
    )?;
    old_cold.extend(take_parts(
        &tx,
        &format!(
            "kind IN ('alerts', 'alert_events') AND day {}",
            no_events.replace("{d}", "day")
        ),
        &del_cut,
        1,
    )?);
    tx.commit()?;
    for (day, file, n, kind) in old_cold {
        let p = PathBuf::from(&file);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&p)(e)),
        }
        if let Some(dir) = p.parent() {
            // the day's directory goes when its last part does
            let _ = std::fs::remove_dir(dir);
        }
        match kind.as_str() {
            "events" => {
                report.deleted_events += n;
                if !report.deleted.contains(&day) {
                    report.deleted.push(day);
                }
            }
            "alerts" => report.deleted_alerts += n,
            _ => {}
        }
    }
    report.deleted.sort();

    // 2. move days past the hot period to Parquet
    let days: Vec<(String, u64, String)> = {
        let mut st = s.conn().prepare(&format!(
            "SELECT strftime(day, '%Y-%m-%d'), count(*), CAST(max(ingested) AS VARCHAR) FROM {HOT} \
             WHERE day < CAST(? AS DATE) GROUP BY day ORDER BY day"
        ))?;
        let rows = st.query_map(params![hot_cut], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    for (day, n, ingested_max) in days {
        // `day` comes from the database as YYYY-MM-DD (checked), never from the user
        if !is_day(&day) {
            continue;
        }
        let (file, tmp) = new_part(s.cold_dir(), "events", &day)?;
        copy_to(
            s,
            &format!("SELECT * FROM {HOT} WHERE day = DATE '{day}' ORDER BY source_ip, ts"),
            &tmp,
        )?;
        let tx = s.conn.transaction()?;
        tx.execute(
            &format!("DELETE FROM {HOT} WHERE day = CAST(? AS DATE)"),
            params![day],
        )?;
        record_part(&tx, &day, &file, n, &ingested_max, "events")?;
        tx.commit()?;
        std::fs::rename(&tmp, &file).map_err(io(&tmp))?;
        report
            .moved
            .push((day, n, file.to_string_lossy().into_owned()));
    }
    // alerts whose last event is past the hot period, with their links to events
    let days: Vec<(String, u64, String)> = {
        let mut st = s.conn().prepare(
            "SELECT strftime(CAST(last_seen AS DATE), '%Y-%m-%d'), count(*), CAST(max(last_seen) AS VARCHAR) \
             FROM alerts_hot WHERE CAST(last_seen AS DATE) < CAST(? AS DATE) GROUP BY 1 ORDER BY 1",
        )?;
        let rows = st.query_map(params![hot_cut], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    for (day, n, last) in days {
        if !is_day(&day) {
            continue;
        }
        let of_day = format!("CAST(last_seen AS DATE) = DATE '{day}'");
        let (file, tmp) = new_part(s.cold_dir(), "alerts", &day)?;
        copy_to(
            s,
            &format!("SELECT * FROM alerts_hot WHERE {of_day} ORDER BY last_seen, id"),
            &tmp,
        )?;
        // the links' part has the alerts' part's name: the views pair them by it
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let (lfile, ltmp) = part_named(s.cold_dir(), "alert_events", &day, &name)?;
        copy_to(
            s,
            &format!(
                "SELECT * FROM alert_events_hot WHERE alert_id IN (SELECT id FROM alerts_hot WHERE {of_day}) \
                 ORDER BY alert_id, event_id"
            ),
            &ltmp,
        )?;
        let tx = s.conn.transaction()?;
        let links: u64 = tx.query_row(
            &format!(
                "SELECT count(*) FROM alert_events_hot WHERE alert_id IN \
                 (SELECT id FROM alerts_hot WHERE {of_day})"
            ),
            [],
            |r| r.get(0),
        )?;
        tx.execute_batch(&format!(
            "DELETE FROM alert_events_hot WHERE alert_id IN (SELECT id FROM alerts_hot WHERE {of_day}); \
             DELETE FROM alerts_hot WHERE {of_day};"
        ))?;
        record_part(&tx, &day, &file, n, &last, "alerts")?;
        record_part(&tx, &day, &lfile, links, &last, "alert_events")?;
        tx.commit()?;
        std::fs::rename(&tmp, &file).map_err(io(&tmp))?;
        std::fs::rename(&ltmp, &lfile).map_err(io(&ltmp))?;
        report
            .moved_alerts
            .push((day, n, file.to_string_lossy().into_owned()));
    }
    // 3. cluster finished hot days by address (again when late events arrived)
    if policy.cluster {
        let days: Vec<(String, u64)> = {
            let mut st = s.conn().prepare(&format!(
                "SELECT strftime(h.day, '%Y-%m-%d'), h.n FROM \
                   (SELECT day, count(*) AS n FROM {HOT} WHERE day <= CAST(? AS DATE) - 2 GROUP BY day) h \
                 LEFT JOIN clustered c ON c.day = h.day WHERE c.rows IS DISTINCT FROM h.n ORDER BY h.day"
            ))?;
            let rows = st.query_map(params![today], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        for (day, n) in days {
            if !is_day(&day) {
                continue;
            }
            // one transaction: a crash leaves the day as it was
            s.conn().execute_batch(&format!(
                "BEGIN; \
                 CREATE OR REPLACE TEMP TABLE cluster_day AS \
                   SELECT * FROM {HOT} WHERE day = DATE '{day}' ORDER BY source_ip, ts; \
                 DELETE FROM {HOT} WHERE day = DATE '{day}'; \
                 INSERT INTO {HOT} SELECT * FROM cluster_day; \
                 INSERT OR REPLACE INTO clustered VALUES (DATE '{day}', {n}); \
                 DROP TABLE cluster_day; \
                 COMMIT; \
                 CHECKPOINT;"
            ))?;
            // (the checkpoint frees the day's old blocks for the next day's rewrite, so the
            // file grows by about one day, not by the whole hot tier)
            report.clustered.push((day, n));
        }
    }
    if !report.moved.is_empty()
        || !report.deleted.is_empty()
        || !report.clustered.is_empty()
        || !report.moved_alerts.is_empty()
        || report.deleted_alerts > 0
    {
        // reclaim the space of deleted rows
        s.conn().execute_batch("CHECKPOINT")?;
    }
    s.refresh_view()?;
    Ok(report)
}
