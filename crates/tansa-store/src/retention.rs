//! Hot and cold tiers: days older than the hot period move from the database to Parquet
//! files (`COLD/events/day=YYYY-MM-DD/part-*.parquet`, written by DuckDB itself, zstd,
//! sorted by source address then time so that lookups of one address skip most row groups);
//! days older than the deletion age — counted from the event's day and from its arrival, so
//! that last year's logs analysed today are kept for the full period — are removed from both
//! tiers.
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
}

/// The glob of every cold events file.
pub fn cold_glob(cold: &Path) -> String {
    cold.join("events")
        .join("day=*")
        .join("*.parquet")
        .to_string_lossy()
        .into_owned()
}

/// Day directories of the cold tier: (day, path).
fn cold_days(cold: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(cold.join("events")) {
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

/// Every finished cold file.
pub fn cold_files(cold: &Path) -> impl Iterator<Item = PathBuf> {
    cold_days(cold).into_iter().flat_map(|(_, dir)| {
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

/// Finishes or undoes moves cut short by a crash (see the module docs).
pub(crate) fn recover(s: &DuckStore) -> Result<()> {
    for (_, dir) in cold_days(s.cold_dir()) {
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
    let old_cold: Vec<(String, String, u64)> = {
        let mut st = tx.prepare(
            "SELECT strftime(day, '%Y-%m-%d'), file, rows FROM cold_parts \
             WHERE day < CAST(? AS DATE) AND ingested_max < CAST(? AS DATE) ORDER BY day, file",
        )?;
        let rows = st.query_map(params![del_cut, del_cut], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    tx.execute(
        "DELETE FROM cold_parts WHERE day < CAST(? AS DATE) AND ingested_max < CAST(? AS DATE)",
        params![del_cut, del_cut],
    )?;
    tx.commit()?;
    for (day, file, n) in old_cold {
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
        report.deleted_events += n;
        if !report.deleted.contains(&day) {
            report.deleted.push(day);
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
        let dir = s.cold_dir().join("events").join(format!("day={day}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let seq = std::fs::read_dir(&dir).map(|r| r.count()).unwrap_or(0);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let file = dir.join(format!("part-{seq:04}-{stamp:x}.parquet"));
        let tmp = PathBuf::from(format!("{}.tmp", file.display()));
        s.conn().execute_batch(&format!(
            "COPY (SELECT * FROM {HOT} WHERE day = DATE '{day}' ORDER BY source_ip, ts) TO {} \
             (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
            sql_str(&tmp.to_string_lossy())
        ))?;
        let tx = s.conn.transaction()?;
        tx.execute(
            &format!("DELETE FROM {HOT} WHERE day = CAST(? AS DATE)"),
            params![day],
        )?;
        tx.execute(
            "INSERT INTO cold_parts VALUES (CAST(? AS DATE), ?, ?, now(), CAST(? AS TIMESTAMP))",
            params![day, file.to_string_lossy(), n, ingested_max],
        )?;
        tx.commit()?;
        std::fs::rename(&tmp, &file).map_err(io(&tmp))?;
        report
            .moved
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
    if !report.moved.is_empty() || !report.deleted.is_empty() || !report.clustered.is_empty() {
        // reclaim the space of deleted rows
        s.conn().execute_batch("CHECKPOINT")?;
    }
    s.refresh_view()?;
    Ok(report)
}
