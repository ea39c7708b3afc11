//! The embedded store: every event, alert and ingestion checkpoint in one DuckDB file in the
//! data directory, older days in Parquet files (the cold tier), all of it queried with SQL,
//! a Lucene-style search ([`search`]) and an overview ([`Backend::stats`]).
//!
//! Sixth box of the data path (`… → detect → store → respond / investigate`). The only crate
//! that links DuckDB. Other stores (ClickHouse for scale-out) implement [`Backend`]; callers
//! (the CLI now, the server's HTTP API later) speak [`Request`]/[`Response`] through
//! [`execute`], so a query runs the same in-process and over the wire.
//!
//! Invariants:
//! - A source (a file, identified by a fingerprint of its first bytes, so that a rotated copy
//!   is the same source) has a checkpoint: the byte offset up to which its lines are stored.
//! - Events and the checkpoints that cover them are committed in one transaction
//!   ([`Backend::write`]): after a crash the store holds whole batches and matching
//!   checkpoints, so a second run stores exactly the lines that are missing — every line once.
//! - Every event has a stable id ([`columns::event_id`]: source fingerprint × offset).
//! - Events are written as Arrow record batches through DuckDB's appender, never row by row.
//! - Hot events live in `events_hot`; days past the hot period move to
//!   `COLD/events/day=YYYY-MM-DD/*.parquet` ([`retention`]). The view `events` spans both.
//! - Alerts are keyed by their stable id and replaced when seen again; `alert_events` links
//!   them to the ids of their events. Both live in `alerts_hot`/`alert_events_hot` until the
//!   alert's last day passes the hot period, then in `COLD/alerts/` and `COLD/alert_events/`
//!   (Parquet, by the day of the alert's last event); the views `alerts` and `alert_events`
//!   span both.
//! - User SQL runs read-only ([`DuckStore::open_read_only`] plus a statement check).

pub mod cases;
pub mod columns;
mod decisions;
pub mod retention;
pub mod search;
pub mod synth;
mod writer;

use std::path::{Path, PathBuf};

use duckdb::vtab::arrow::{ArrowBatchRegistration, ArrowVTab};
use duckdb::{params, params_from_iter, Connection};
use serde::{Deserialize, Serialize};
use tansa_detect::Alert;
use tansa_event::Event;

pub use decisions::{ActionRow, ApprovalRow, DecisionRow};
pub use retention::{Policy, RetentionReport};
pub use search::Param;
pub use writer::ParallelWriter;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Open {
        path: PathBuf,
        source: duckdb::Error,
    },
    #[error("{path}: the store is in use by another tansa process (one writer at a time; while `tansa serve` runs, query through its API)")]
    Locked { path: PathBuf },
    #[error(transparent)]
    Db(#[from] duckdb::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: the store is read-only from here (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE, PRAGMA, FROM)")]
    NotReadOnly(String),
    #[error(transparent)]
    Search(#[from] search::SearchError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

const SCHEMA_VERSION: i32 = 11;

/// Rows in a DuckDB row group. Batches of this size (or a multiple) are written compressed
/// straight into the database file when their transaction commits.
pub const ROW_GROUP: usize = 122_880;

/// The hot events table (the view `events` adds the cold tier).
pub const HOT: &str = "events_hot";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
-- one row per source and committed batch (appends never conflict, so batches can be written
-- by parallel transactions); a source's checkpoint is its largest next_offset. Compacted to one
-- row per source when a writer opens the store.
CREATE TABLE IF NOT EXISTS source_marks (
    fingerprint UBIGINT,
    path VARCHAR,
    host VARCHAR,
    next_offset UBIGINT,
    lines UBIGINT,
    updated TIMESTAMP
);
CREATE TABLE IF NOT EXISTS source_numbers (fingerprint UBIGINT PRIMARY KEY, number UINTEGER UNIQUE);
CREATE OR REPLACE VIEW sources AS SELECT fingerprint, arg_max(path, next_offset) AS path,
    arg_max(host, next_offset) AS host, max(next_offset) AS next_offset,
    sum(lines)::UBIGINT AS lines, max(updated) AS updated
    FROM source_marks GROUP BY fingerprint;
CREATE TABLE IF NOT EXISTS alerts_hot (
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
    entity_field VARCHAR,
    entity VARCHAR,
    -- raised by a rule in simulation: stored and shown, no response
    simulated BOOLEAN DEFAULT false,
    -- an indicator match: what its feed says of the indicator (ECS threat.* as JSON)
    threat JSON
);
CREATE TABLE IF NOT EXISTS alert_events_hot (alert_id VARCHAR, event_id UBIGINT, log_path VARCHAR, log_offset UBIGINT);
-- decisions and the record of actions (decisions.rs)
{DECISIONS}
-- cases (cases.rs)
{CASES}
CREATE TABLE IF NOT EXISTS clustered (day DATE PRIMARY KEY, rows UBIGINT);
-- what enrichment knew of each address, one row per address and batch (appends only, like
-- source_marks; folded on open); the view `addresses` has one row per address
CREATE TABLE IF NOT EXISTS address_marks ({ADDRESS_COLUMNS});
CREATE OR REPLACE VIEW addresses AS SELECT ip, arg_max(scope, last_seen) AS scope,
    arg_max(continent, last_seen) AS continent, arg_max(country, last_seen) AS country,
    arg_max(country_name, last_seen) AS country_name, arg_max(region, last_seen) AS region,
    arg_max(city, last_seen) AS city, arg_max(lat, last_seen) AS lat,
    arg_max(lon, last_seen) AS lon, arg_max(asn, last_seen) AS asn,
    arg_max(as_org, last_seen) AS as_org, arg_max(flags, last_seen) AS flags,
    arg_max(scanner, last_seen) AS scanner, min(first_seen) AS first_seen,
    max(last_seen) AS last_seen, sum(events)::UBIGINT AS events
    FROM address_marks GROUP BY ip;
-- RDAP answers (tansa whois), one row per registry object, replaced when fetched again; the
-- bootstrap files (kind 'bootstrap', first = ipv4/ipv6/asn) are cached here too
CREATE TABLE IF NOT EXISTS rdap (
    fetched TIMESTAMP,
    kind VARCHAR,
    first VARCHAR,
    last VARCHAR,
    name VARCHAR,
    holder VARCHAR,
    country VARCHAR,
    abuse_email VARCHAR,
    cidrs VARCHAR[],
    url VARCHAR,
    body VARCHAR
);
-- files followed by `tansa serve`: one row per file instance (a rotated file is a new
-- instance), what identifies it after a restart; its offset is in `sources`
CREATE TABLE IF NOT EXISTS file_instances (
    fingerprint UBIGINT PRIMARY KEY,
    path VARCHAR,
    dev UBIGINT,
    ino UBIGINT,
    head_len UINTEGER,
    head_hash UBIGINT,
    updated TIMESTAMP
);
-- the files of the cold tier: what they hold (`kind`: events, alerts, alert_events) and of
-- which day
CREATE TABLE IF NOT EXISTS cold_parts (day DATE, file VARCHAR PRIMARY KEY, rows UBIGINT, created TIMESTAMP, ingested_max TIMESTAMP, kind VARCHAR DEFAULT 'events');
"#;

/// Rows with named columns: what every query returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    /// Row `i` as a JSON object.
    pub fn object(&self, i: usize) -> serde_json::Map<String, serde_json::Value> {
        self.columns
            .iter()
            .cloned()
            .zip(self.rows[i].iter().cloned())
            .collect()
    }
}

/// One titled part of the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub table: Table,
}

/// A search: query text (see [`search`]), optional UTC time bounds, a row limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    /// Inclusive lower bound of `@timestamp` (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
    pub from: Option<String>,
    /// Exclusive upper bound of `@timestamp`.
    pub to: Option<String>,
    pub limit: u64,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

/// What a client (the CLI, or the server's HTTP API) asks of the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Sql {
        sql: String,
    },
    /// A read-only statement with `?` placeholders and their values.
    Query {
        sql: String,
        params: Vec<search::Param>,
    },
    Search(SearchRequest),
    Stats,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Table(Table),
    Sections { sections: Vec<Section> },
}

/// Runs a request on a store.
pub fn execute(store: &dyn Backend, req: &Request) -> Result<Response> {
    Ok(match req {
        Request::Sql { sql } => Response::Table(store.sql(sql)?),
        Request::Query { sql, params } => Response::Table(store.query(sql, params)?),
        Request::Search(s) => Response::Table(store.search(s)?),
        Request::Stats => Response::Sections {
            sections: store.stats()?,
        },
    })
}

/// Where one source stands after a batch: the byte offset below which every line is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub fingerprint: u64,
    pub path: String,
    pub host: Option<String>,
    pub next_offset: u64,
    /// Lines of this source in the batch.
    pub lines: u64,
}

/// A batch to commit: events, the number of each event's source
/// ([`Backend::source_number`]), the checkpoints.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub sources: Vec<u32>,
    pub checkpoints: Vec<Checkpoint>,
    /// File instances first seen (or better identified) since the last batch.
    pub files: Vec<FileInstance>,
}

/// A followed file instance: what identifies it (device, inode, hash of its first
/// `head_len` bytes), so that a restarted server finds it again, rotated or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInstance {
    pub fingerprint: u64,
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub head_len: u32,
    pub head_hash: u64,
    /// Its checkpoint (filled when read back).
    pub next_offset: u64,
}

/// A batch converted for DuckDB ([`DuckStore::prepare`]).
pub struct Prepared {
    records: Option<duckdb::arrow::record_batch::RecordBatch>,
    addresses: Option<duckdb::arrow::record_batch::RecordBatch>,
    checkpoints: Vec<Checkpoint>,
    files: Vec<FileInstance>,
}

/// What a store does; the embedded DuckDB store is [`DuckStore`].
pub trait Backend: Send {
    /// The stored offset of a source (0 when new).
    fn checkpoint(&self, fingerprint: u64) -> Result<u64>;
    /// The store's number for a source (assigned on first sight): part of its event ids.
    fn source_number(&mut self, fingerprint: u64) -> Result<u32>;
    /// Commits events and their checkpoints together.
    fn write(&mut self, batch: &Batch) -> Result<()>;
    /// Stores alerts (replacing earlier versions) and their event links; `source` maps a
    /// source path to its number.
    fn write_alerts(
        &mut self,
        alerts: &[Alert],
        source: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<()>;
    /// A read-only SQL statement.
    fn sql(&self, sql: &str) -> Result<Table>;
    /// A read-only SQL statement with `?` placeholders bound to `params` (for callers such as
    /// the traceback that put log values, which attackers control, into queries).
    fn query(&self, sql: &str, params: &[search::Param]) -> Result<Table>;
    /// Events matching a search, in time order.
    fn search(&self, req: &SearchRequest) -> Result<Table>;
    /// The overview: events per source/host/day, top failing sources, alerts, disk use.
    fn stats(&self) -> Result<Vec<Section>>;
    /// Applies the retention policy as of `today` (`YYYY-MM-DD`; None: the current date).
    fn retention(&mut self, policy: &Policy, today: Option<&str>) -> Result<RetentionReport>;
}

/// The embedded store in a data directory: `DIR/tansa.duckdb` and `DIR/cold/` by default.
pub struct DuckStore {
    conn: Connection,
    path: PathBuf,
    cold: PathBuf,
    /// The cold tier the views of this connection were made for (see
    /// [`DuckStore::views_current`]).
    cold_seen: std::cell::RefCell<String>,
}

/// The error DuckDB gives when another process holds the database.
fn is_lock_error(e: &duckdb::Error) -> bool {
    let s = e.to_string();
    s.contains("Could not set lock") || s.contains("Conflicting lock")
}

/// What the cold tier holds, in a word: parts, rows and the newest part's time.
const COLD_STATE: &str = "SELECT count(*) || ' ' || coalesce(sum(rows), 0) || ' ' || \
     coalesce(CAST(max(created) AS VARCHAR), '') FROM cold_parts";

impl DuckStore {
    /// Opens (or creates) the store of `dir` for writing; cold files under `cold` (default
    /// `dir/cold`).
    pub fn open(dir: &Path, cold: Option<&Path>) -> Result<DuckStore> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("tansa.duckdb");
        let conn = Connection::open(&path).map_err(|source| open_error(&path, source))?;
        conn.register_table_function::<ArrowVTab>("arrow")?;
        // one transaction: a run killed while creating the store leaves all of it or none
        let schema = SCHEMA
            .replace("{ADDRESS_COLUMNS}", columns::ADDRESS_COLUMNS)
            .replace("{DECISIONS}", decisions::SCHEMA)
            .replace("{CASES}", cases::SCHEMA);
        conn.execute_batch(&format!(
            "BEGIN; {schema}; {}; INSERT INTO meta SELECT 'schema_version', '{SCHEMA_VERSION}' \
             WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'schema_version'); COMMIT;",
            columns::create_table(HOT)
        ))?;
        let version: String = conn.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        let mut version = version;
        if version == "4" {
            // version 5 added the enrichment columns (at the end, where ADD COLUMN puts them)
            let stored = columns::stored();
            let adds: Vec<String> = columns::ADDED_IN_5
                .iter()
                .map(|c| {
                    let ty = stored
                        .iter()
                        .find(|(n, _)| n == c)
                        .map_or("VARCHAR", |s| s.1);
                    format!("ALTER TABLE {HOT} ADD COLUMN IF NOT EXISTS {c} {ty};")
                })
                .collect();
            conn.execute_batch(&format!(
                "BEGIN; {} UPDATE meta SET value = '5' WHERE key = 'schema_version'; COMMIT;",
                adds.join(" ")
            ))?;
            version = "5".into();
        }
        if version == "5" {
            // version 6 gave decisions their final shape (version 5's table was a sketch no
            // release wrote to) and added the record of actions
            conn.execute_batch(&format!(
                "BEGIN; DROP TABLE IF EXISTS decisions; {} UPDATE meta SET value = '6' WHERE key = 'schema_version'; COMMIT;",
                decisions::SCHEMA
            ))?;
            version = "6".into();
        }
        if version == "6" {
            // version 7 added approvals (created above with the rest of the schema)
            conn.execute_batch("UPDATE meta SET value = '7' WHERE key = 'schema_version';")?;
            version = "7".into();
        }
        if version == "7" {
            // version 8 gave cases their shape (version 7's tables were a sketch nothing wrote
            // to): numbered cases, their links and notes
            conn.execute_batch(&format!(
                "BEGIN; DROP TABLE IF EXISTS case_alerts; DROP TABLE IF EXISTS cases; {} \
                 UPDATE meta SET value = '8' WHERE key = 'schema_version'; COMMIT;",
                cases::SCHEMA
            ))?;
            version = "8".into();
        }
        if version == "8" {
            // version 9 marks the alerts of rules in simulation
            conn.execute_batch(
                "BEGIN; ALTER TABLE alerts ADD COLUMN IF NOT EXISTS simulated BOOLEAN DEFAULT false; \
                 UPDATE meta SET value = '9' WHERE key = 'schema_version'; COMMIT;",
            )?;
            version = "9".into();
        }
        if version == "9" {
            // version 10 keeps what a feed says of an alert's indicator
            conn.execute_batch(
                "BEGIN; ALTER TABLE alerts ADD COLUMN IF NOT EXISTS threat JSON; \
                 UPDATE meta SET value = '10' WHERE key = 'schema_version'; COMMIT;",
            )?;
            version = "10".into();
        }
        if version == "10" {
            // version 11 tiers alerts: the tables become the hot part of the views `alerts`
            // and `alert_events` (the schema above has just created them empty), and cold
            // files say what they hold
            conn.execute_batch(
                "BEGIN; DROP TABLE alerts_hot; ALTER TABLE alerts RENAME TO alerts_hot; \
                 DROP TABLE alert_events_hot; ALTER TABLE alert_events RENAME TO alert_events_hot; \
                 ALTER TABLE cold_parts ADD COLUMN IF NOT EXISTS kind VARCHAR DEFAULT 'events'; \
                 UPDATE meta SET value = '11' WHERE key = 'schema_version'; COMMIT;",
            )?;
            version = "11".into();
        }
        if version != SCHEMA_VERSION.to_string() {
            return Err(StoreError::Invalid(format!(
                "{}: store schema version {version}, this tansa writes {SCHEMA_VERSION}; move the old store aside",
                path.display()
            )));
        }
        let cold = cold.map(Path::to_owned).unwrap_or_else(|| dir.join("cold"));
        let s = DuckStore {
            conn,
            path,
            cold,
            cold_seen: Default::default(),
        };
        s.compact_marks()?;
        retention::recover(&s)?;
        s.prepare_session()?;
        Ok(s)
    }

    /// Opens an existing store for reading only (DuckDB refuses every write).
    pub fn open_read_only(dir: &Path, cold: Option<&Path>) -> Result<DuckStore> {
        let path = dir.join("tansa.duckdb");
        if !path.exists() {
            return Err(StoreError::Invalid(format!(
                "no store in {} (run `tansa analyze` first, or give --data)",
                dir.display()
            )));
        }
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
        let conn = Connection::open_with_flags(&path, config)
            .map_err(|source| open_error(&path, source))?;
        let created: bool = conn.query_row(
            "SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = 'meta'",
            [],
            |r| r.get(0),
        )?;
        if !created {
            return Err(StoreError::Invalid(format!(
                "the store in {} holds nothing yet (the run that created it stopped before its first commit)",
                dir.display()
            )));
        }
        let cold = cold.map(Path::to_owned).unwrap_or_else(|| dir.join("cold"));
        let s = DuckStore {
            conn,
            path,
            cold,
            cold_seen: Default::default(),
        };
        s.prepare_session()?;
        Ok(s)
    }

    /// Session objects: the `tansa_ip4`/`tansa_ip6` macros and the `events` view over hot
    /// and cold data.
    fn prepare_session(&self) -> Result<()> {
        self.conn.execute_batch(search::IP4_MACRO)?;
        self.conn.execute_batch(search::IP6_MACRO)?;
        self.refresh_view()
    }

    /// Makes the views again when another connection (the server's writer, a `tansa
    /// retention run`) has changed the cold tier since they were made: a reading connection
    /// sees the days and alerts that moved.
    fn views_current(&self) -> Result<()> {
        let now: String = self.conn.query_row(COLD_STATE, [], |r| r.get(0))?;
        if *self.cold_seen.borrow() != now {
            self.refresh_view()?;
        }
        Ok(())
    }

    /// (Re)creates the temporary views `events`, `alerts` and `alert_events` = hot table ∪
    /// cold Parquet files.
    pub(crate) fn refresh_view(&self) -> Result<()> {
        if let Ok(now) = self
            .conn
            .query_row(COLD_STATE, [], |r| r.get::<_, String>(0))
        {
            *self.cold_seen.borrow_mut() = now;
        }
        let cold = |kind: &str| -> Option<String> {
            retention::cold_files(&self.cold, kind).next()?;
            Some(format!(
                "read_parquet({}, union_by_name = true, hive_partitioning = false, filename = true)",
                sql_str(&retention::cold_glob(&self.cold, kind))
            ))
        };
        let select = columns::view_select();
        let sql = match cold("events") {
            Some(c) => format!(
                "CREATE OR REPLACE TEMP VIEW events AS SELECT {select} FROM (SELECT * FROM {HOT} \
                 UNION ALL BY NAME SELECT * EXCLUDE (filename) FROM {c})"
            ),
            None => format!("CREATE OR REPLACE TEMP VIEW events AS SELECT {select} FROM {HOT}"),
        };
        self.conn.execute_batch(&sql)?;
        // a store of an older schema opened read-only still has its plain `alerts` tables
        let tiered: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = 'alerts_hot'",
            [],
            |r| r.get(0),
        )?;
        if !tiered {
            return Ok(());
        }
        // An alert raised again after an earlier version went cold (old logs analysed again)
        // is the hot one, or the one of the newest cold part (the hex stamp of the part's
        // name); its links are in the part of the same day and name under alert_events/
        const PART: &str = "regexp_extract(filename, 'day=[^/]+/[^/]+$')";
        const STAMP: &str = "regexp_extract(filename, '-([0-9a-f]+)\\.parquet$', 1)";
        let mut alerts = "SELECT * FROM alerts_hot".to_string();
        let mut links = "SELECT * FROM alert_events_hot".to_string();
        if let Some(a) = cold("alerts") {
            alerts.push_str(&format!(
                " UNION ALL BY NAME SELECT * EXCLUDE (filename) FROM {a} \
                 WHERE id NOT IN (SELECT id FROM alerts_hot) \
                 QUALIFY row_number() OVER (PARTITION BY id ORDER BY {STAMP} DESC) = 1"
            ));
            if let Some(l) = cold("alert_events") {
                links.push_str(&format!(
                    " UNION ALL BY NAME SELECT l.* EXCLUDE (filename) FROM {l} l \
                     JOIN (SELECT id, arg_max({PART}, {STAMP}) AS part FROM {a} GROUP BY id) c \
                     ON c.id = l.alert_id AND c.part = {} \
                     WHERE l.alert_id NOT IN (SELECT id FROM alerts_hot)",
                    PART.replace("filename", "l.filename")
                ));
            }
        }
        self.conn.execute_batch(&format!(
            "CREATE OR REPLACE TEMP VIEW alerts AS {alerts}; \
             CREATE OR REPLACE TEMP VIEW alert_events AS {links};"
        ))?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn cold_dir(&self) -> &Path {
        &self.cold
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Number of stored events (hot and cold).
    pub fn event_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
    }

    /// Runs SQL with bound parameters and collects the rows.
    fn table(&self, sql: &str, params: &[search::Param]) -> Result<Table> {
        let mut st = self.conn.prepare(sql)?;
        let bound: Vec<Box<dyn duckdb::ToSql>> = params
            .iter()
            .map(|p| -> Box<dyn duckdb::ToSql> {
                match p {
                    search::Param::Text(s) => Box::new(s.clone()),
                    search::Param::Int(i) => Box::new(*i),
                }
            })
            .collect();
        let mut rows = st.query(params_from_iter(bound.iter().map(|b| b.as_ref())))?;
        let mut out = Table::default();
        while let Some(r) = rows.next()? {
            if out.columns.is_empty() {
                out.columns = r.as_ref().column_names();
            }
            let mut row = Vec::with_capacity(out.columns.len());
            for i in 0..out.columns.len() {
                row.push(value(r.get_ref(i)?));
            }
            out.rows.push(row);
        }
        if out.columns.is_empty() {
            out.columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        }
        Ok(out)
    }

    /// Turns a batch into what [`DuckStore::write_prepared`] commits (an Arrow record batch);
    /// CPU work that a caller may run on another thread than the writer.
    pub fn prepare(batch: &Batch) -> Prepared {
        Prepared {
            records: (!batch.events.is_empty())
                .then(|| columns::record_batch(&batch.events, &batch.sources)),
            addresses: columns::address_batch(&batch.events),
            checkpoints: batch.checkpoints.clone(),
            files: batch.files.clone(),
        }
    }

    /// Commits a prepared batch: its events and checkpoints in one transaction.
    pub fn write_prepared(&mut self, p: Prepared) -> Result<()> {
        let tx = self.conn.transaction()?;
        append(&tx, p)?;
        tx.commit()?;
        Ok(())
    }

    /// Folds the checkpoint rows of each source into one, and the rows of each address.
    fn compact_marks(&self) -> Result<()> {
        self.fold("source_marks", "fingerprint", "sources")?;
        self.fold("address_marks", "ip", "addresses")
    }

    /// Replaces the append-only rows of `table` by its folding `view` (one row per `key`)
    /// when some key has several.
    fn fold(&self, table: &str, key: &str, view: &str) -> Result<()> {
        let (rows, keys): (u64, u64) = self.conn.query_row(
            &format!("SELECT count(*), count(DISTINCT {key}) FROM {table}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if rows > keys {
            self.conn.execute_batch(&format!(
                "BEGIN; CREATE TEMP TABLE folded AS SELECT * FROM {view}; DELETE FROM {table}; \
                 INSERT INTO {table} SELECT * FROM folded; DROP TABLE folded; COMMIT;"
            ))?;
        }
        Ok(())
    }

    /// A writer that commits batches from `threads` connections at once, in the order they
    /// were given (so that a source's checkpoint never passes a batch that is not yet
    /// committed). Converting, compressing and writing row groups runs in parallel; only the
    /// commits take turns.
    pub fn parallel_writer(self, threads: usize) -> Result<ParallelWriter> {
        ParallelWriter::new(self, threads)
    }

    /// Caps DuckDB's memory (its buffer pool keeps the blocks it wrote or read up to this
    /// limit; the default is most of the machine's memory). A long-running server sets it.
    pub fn set_memory_limit(&self, mib: u64) -> Result<()> {
        self.conn
            .execute_batch(&format!("SET memory_limit = '{mib}MiB'"))?;
        Ok(())
    }

    /// A second connection to the same database (a server's readers: they see committed data
    /// while the writer goes on).
    pub fn try_clone(&self) -> Result<DuckStore> {
        let conn = self.conn.try_clone()?;
        conn.register_table_function::<ArrowVTab>("arrow")?;
        let s = DuckStore {
            conn,
            path: self.path.clone(),
            cold: self.cold.clone(),
            cold_seen: Default::default(),
        };
        // temporary views and macros belong to a connection
        s.prepare_session()?;
        Ok(s)
    }

    /// The file instances `tansa serve` followed, with their checkpoints (most recent first).
    pub fn file_instances(&self) -> Result<Vec<FileInstance>> {
        let mut st = self.conn.prepare(
            "SELECT f.fingerprint, f.path, f.dev, f.ino, f.head_len, f.head_hash, \
             coalesce(s.next_offset, 0) FROM file_instances f \
             LEFT JOIN sources s USING (fingerprint) ORDER BY f.updated DESC",
        )?;
        let rows = st.query_map([], |r| {
            Ok(FileInstance {
                fingerprint: r.get(0)?,
                path: r.get(1)?,
                dev: r.get(2)?,
                ino: r.get(3)?,
                head_len: r.get(4)?,
                head_hash: r.get(5)?,
                next_offset: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Bytes on disk: the database file and the cold files.
    /// Bytes of the hot database in use (blocks that hold data: a day moved to the cold tier
    /// frees its blocks for new data, though DuckDB keeps the file at its size) and of the
    /// cold files.
    pub fn disk_bytes(&self) -> (u64, u64) {
        let used: Option<u64> = self
            .conn
            .query_row(
                "SELECT CAST(used_blocks * block_size AS UBIGINT) FROM pragma_database_size() \
                 WHERE database_name = current_database()",
                [],
                |r| r.get(0),
            )
            .ok();
        let file = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let hot = used.map_or(file, |u| u.min(file))
            + std::fs::metadata(self.path.with_extension("duckdb.wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        let cold = retention::KINDS
            .iter()
            .flat_map(|k| retention::cold_files(&self.cold, k))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        (hot, cold)
    }
}

/// A cached RDAP answer (`tansa whois`): the registry object's range and what was read from
/// it, and the answer as received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RdapRow {
    /// When it was fetched, UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub fetched: String,
    /// `ip`, `autnum` or `bootstrap`.
    pub kind: String,
    /// First and last address or AS number (for `bootstrap`: the registry, and nothing).
    pub first: String,
    pub last: String,
    pub name: Option<String>,
    pub holder: Option<String>,
    pub country: Option<String>,
    pub abuse_email: Option<String>,
    pub cidrs: Vec<String>,
    pub url: String,
    pub body: String,
}

const RDAP_SELECT: &str = "SELECT strftime(fetched, '%Y-%m-%dT%H:%M:%SZ'), kind, first, last, \
    name, holder, country, abuse_email, array_to_string(cidrs, ' '), url, body FROM rdap";

impl DuckStore {
    /// Caches an RDAP answer, replacing an earlier one for the same object.
    pub fn put_rdap(&mut self, r: &RdapRow) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM rdap WHERE kind = ? AND first = ? AND last = ?",
            params![r.kind, r.first, r.last],
        )?;
        tx.execute(
            "INSERT INTO rdap VALUES (strptime(?, '%Y-%m-%dT%H:%M:%SZ'), ?, ?, ?, ?, ?, ?, ?, \
             list_filter(string_split(?, ' '), lambda c: c <> ''), ?, ?)",
            params![
                r.fetched,
                r.kind,
                r.first,
                r.last,
                r.name,
                r.holder,
                r.country,
                r.abuse_email,
                r.cidrs.join(" "),
                r.url,
                r.body
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The cached RDAP answers of a kind (none from a store older than the cache).
    pub fn rdap_rows(&self, kind: &str) -> Result<Vec<RdapRow>> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM duckdb_tables() WHERE table_name = 'rdap'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare(&format!("{RDAP_SELECT} WHERE kind = ? ORDER BY fetched"))?;
        let rows = st.query_map([kind], |r| {
            let cidrs: Option<String> = r.get(8)?;
            Ok(RdapRow {
                fetched: r.get(0)?,
                kind: r.get(1)?,
                first: r.get(2)?,
                last: r.get(3)?,
                name: r.get(4)?,
                holder: r.get(5)?,
                country: r.get(6)?,
                abuse_email: r.get(7)?,
                cidrs: cidrs
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                url: r.get(9)?,
                body: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

/// Adds a prepared batch to a transaction: its events and its checkpoint rows.
fn append(tx: &duckdb::Transaction<'_>, p: Prepared) -> Result<()> {
    if let Some(rb) = p.records {
        // DuckDB scans the batch through the `arrow` table function: one INSERT per batch.
        let reg = ArrowBatchRegistration::new(rb);
        tx.execute(&format!("INSERT INTO {HOT} SELECT * FROM arrow(?)"), [&reg])?;
    }
    if let Some(rb) = p.addresses {
        let reg = ArrowBatchRegistration::new(rb);
        tx.execute("INSERT INTO address_marks SELECT * FROM arrow(?)", [&reg])?;
    }
    for f in &p.files {
        tx.execute(
            "INSERT OR REPLACE INTO file_instances VALUES (?, ?, ?, ?, ?, ?, now())",
            params![f.fingerprint, f.path, f.dev, f.ino, f.head_len, f.head_hash],
        )?;
    }
    for cp in &p.checkpoints {
        tx.execute(
            "INSERT INTO source_marks VALUES (?, ?, ?, ?, ?, now())",
            params![cp.fingerprint, cp.path, cp.host, cp.next_offset, cp.lines],
        )?;
    }
    Ok(())
}

fn open_error(path: &Path, source: duckdb::Error) -> StoreError {
    if is_lock_error(&source) {
        StoreError::Locked {
            path: path.to_owned(),
        }
    } else {
        StoreError::Open {
            path: path.to_owned(),
            source,
        }
    }
}

/// A string as a SQL literal (for paths Tansa itself chooses; user input is always bound).
pub(crate) fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ts_text(ns: i64) -> String {
    // DuckDB reads `YYYY-MM-DD HH:MM:SS.ffffff` as TIMESTAMP
    let s = tansa_event::format_ts(ns);
    s.trim_end_matches('Z').replacen('T', " ", 1)
}

impl Backend for DuckStore {
    fn source_number(&mut self, fingerprint: u64) -> Result<u32> {
        let tx = self.conn.transaction()?;
        let have: Option<u32> = tx
            .query_row(
                "SELECT number FROM source_numbers WHERE fingerprint = ?",
                params![fingerprint],
                |r| r.get(0),
            )
            .ok();
        let n = match have {
            Some(n) => n,
            None => {
                let n: u32 = tx.query_row(
                    "INSERT INTO source_numbers SELECT ?, coalesce(max(number), 0) + 1 \
                     FROM source_numbers RETURNING number",
                    params![fingerprint],
                    |r| r.get(0),
                )?;
                if u64::from(n) >= 1 << (64 - columns::OFFSET_BITS) {
                    return Err(StoreError::Invalid(
                        "more sources than event ids can number".into(),
                    ));
                }
                n
            }
        };
        tx.commit()?;
        Ok(n)
    }

    fn checkpoint(&self, fingerprint: u64) -> Result<u64> {
        let mut st = self
            .conn
            .prepare("SELECT next_offset FROM sources WHERE fingerprint = ?")?;
        let mut rows = st.query(params![fingerprint])?;
        Ok(match rows.next()? {
            Some(r) => r.get::<_, u64>(0)?,
            None => 0,
        })
    }

    fn write(&mut self, batch: &Batch) -> Result<()> {
        let p = DuckStore::prepare(batch);
        self.write_prepared(p)
    }

    fn write_alerts(
        &mut self,
        alerts: &[Alert],
        source: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE OR REPLACE TEMP TABLE alerts_in (id VARCHAR, rule_id VARCHAR, rule_title VARCHAR, \
             severity VARCHAR, tags VARCHAR, first_seen VARCHAR, last_seen VARCHAR, count UBIGINT, \
             host VARCHAR, source_ip VARCHAR, user_name VARCHAR, entity_field VARCHAR, entity VARCHAR, \
             simulated BOOLEAN, threat VARCHAR); \
             CREATE OR REPLACE TEMP TABLE links_in (alert_id VARCHAR, event_id UBIGINT, log_path VARCHAR, log_offset UBIGINT);",
        )?;
        {
            let mut app = tx.appender("alerts_in")?;
            let mut links = tx.appender("links_in")?;
            for a in alerts {
                app.append_row(params![
                    a.id,
                    a.rule_id,
                    a.rule_title,
                    a.severity.as_str(),
                    a.tags.join("\u{1f}"),
                    ts_text(a.first_seen),
                    ts_text(a.last_seen),
                    a.count,
                    a.host,
                    a.source_ip.map(|i| i.to_string()),
                    a.user,
                    a.key_field,
                    a.key.to_string(),
                    a.simulated,
                    a.threat.as_ref().map(|t| t.to_json().to_string()),
                ])?;
                for r in &a.events {
                    let id = source(&r.path).map(|n| columns::event_id(n, r.offset));
                    links.append_row(params![a.id, id, &*r.path, r.offset])?;
                }
            }
            app.flush()?;
            links.flush()?;
        }
        tx.execute_batch(
            "DELETE FROM alert_events_hot WHERE alert_id IN (SELECT id FROM alerts_in); \
             INSERT INTO alert_events_hot SELECT * FROM links_in; \
             INSERT OR REPLACE INTO alerts_hot SELECT id, rule_id, rule_title, severity, \
               CASE WHEN tags = '' THEN []::VARCHAR[] ELSE string_split(tags, chr(31)) END, \
               first_seen::TIMESTAMP, last_seen::TIMESTAMP, count, host, source_ip, user_name, entity_field, entity, \
               simulated, threat::JSON \
             FROM alerts_in; \
             DROP TABLE alerts_in; DROP TABLE links_in;",
        )?;
        tx.commit()?;
        Ok(())
    }

    fn sql(&self, sql: &str) -> Result<Table> {
        self.query(sql, &[])
    }

    fn query(&self, sql: &str, params: &[search::Param]) -> Result<Table> {
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_start_matches('(')
            .to_ascii_uppercase();
        if !matches!(
            first.as_str(),
            "SELECT" | "WITH" | "DESCRIBE" | "SHOW" | "EXPLAIN" | "SUMMARIZE" | "PRAGMA" | "FROM"
        ) {
            return Err(StoreError::NotReadOnly(first));
        }
        self.views_current()?;
        self.table(sql, params)
    }

    fn search(&self, req: &SearchRequest) -> Result<Table> {
        self.views_current()?;
        let mut c = search::compile(&req.query)?;
        if let Some(from) = &req.from {
            c.sql = format!("{} AND ts >= CAST(? AS TIMESTAMP)", c.sql);
            c.params.push(search::Param::Text(from.clone()));
        }
        if let Some(to) = &req.to {
            c.sql = format!("{} AND ts < CAST(? AS TIMESTAMP)", c.sql);
            c.params.push(search::Param::Text(to.clone()));
        }
        let limit = if req.limit == 0 { 100 } else { req.limit };
        let order = if req.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT * EXCLUDE (day) FROM events WHERE {} ORDER BY ts {order}, log_offset {order} LIMIT {limit}",
            c.sql
        );
        self.table(&sql, &c.params)
    }

    fn stats(&self) -> Result<Vec<Section>> {
        self.views_current()?;
        let q = |title: &str, sql: &str| -> Result<Section> {
            Ok(Section {
                title: title.into(),
                table: self.table(sql, &[])?,
            })
        };
        let mut out = vec![
            q(
                "Sources",
                "SELECT host, path, lines, next_offset AS bytes, updated FROM sources ORDER BY host, path",
            )?,
            q(
                "Events per host and day",
                "SELECT host, day, count(*) AS events, count(*) FILTER (outcome = 'failure') AS failures, \
                 count(*) FILTER (kind = 'unparsed') AS unparsed FROM events GROUP BY ALL ORDER BY day DESC, host LIMIT 60",
            )?,
            q(
                "Events per dataset",
                "SELECT dataset, count(*) AS events FROM events GROUP BY ALL ORDER BY events DESC",
            )?,
            q(
                "Top source IPs by failures",
                "SELECT source_ip, count(*) AS failures, count(DISTINCT user_name) AS users, \
                 count(DISTINCT host) AS hosts, min(ts) AS first_seen, max(ts) AS last_seen \
                 FROM events WHERE outcome = 'failure' AND source_ip IS NOT NULL \
                 GROUP BY ALL ORDER BY failures DESC, source_ip LIMIT 10",
            )?,
        ];
        let geo = q(
            "Top countries and ASNs",
            "SELECT fields->>'$.\"source.geo.country_iso_code\"' AS country, \
             fields->>'$.\"source.as.organization.name\"' AS asn, count(*) AS events, \
             count(DISTINCT source_ip) AS ips FROM events \
             WHERE fields->>'$.\"source.geo.country_iso_code\"' IS NOT NULL \
             GROUP BY ALL ORDER BY events DESC LIMIT 10",
        )?;
        if !geo.table.rows.is_empty() {
            out.push(geo);
        }
        out.push(q(
            "Alerts by severity",
            "SELECT severity, count(*) AS alerts, sum(count) AS events, max(last_seen) AS latest \
             FROM alerts GROUP BY severity ORDER BY list_position(['critical','high','medium','low','informational'], severity)",
        )?);
        let n = self.event_count()?;
        let (hot, cold) = self.disk_bytes();
        let cold_events: u64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(rows), 0) FROM cold_parts WHERE kind = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        let per = |bytes: u64, events: u64| -> serde_json::Value {
            if events == 0 {
                serde_json::Value::Null
            } else {
                ((bytes as f64 / events as f64 * 10.0).round() / 10.0).into()
            }
        };
        out.push(Section {
            title: "Disk".into(),
            table: Table {
                columns: vec![
                    "tier".into(),
                    "events".into(),
                    "bytes".into(),
                    "bytes_per_event".into(),
                ],
                rows: vec![
                    vec![
                        "hot".into(),
                        (n - cold_events.min(n)).into(),
                        hot.into(),
                        per(hot, n - cold_events.min(n)),
                    ],
                    vec![
                        "cold".into(),
                        cold_events.into(),
                        cold.into(),
                        per(cold, cold_events),
                    ],
                    vec![
                        "all".into(),
                        n.into(),
                        (hot + cold).into(),
                        per(hot + cold, n),
                    ],
                ],
            },
        });
        Ok(out)
    }

    fn retention(&mut self, policy: &Policy, today: Option<&str>) -> Result<RetentionReport> {
        retention::run(self, policy, today)
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
        V::HugeInt(i) => i64::try_from(i)
            .map(Into::into)
            .unwrap_or_else(|_| i.to_string().into()),
        V::UTinyInt(i) => i.into(),
        V::USmallInt(i) => i.into(),
        V::UInt(i) => i.into(),
        V::UBigInt(i) => i.into(),
        V::Float(f) => f.into(),
        V::Double(f) => f.into(),
        V::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        V::Timestamp(unit, t) => {
            let micros = unit.to_micros(t);
            ts_text(micros.saturating_mul(1000)).into()
        }
        V::Date32(d) => jiff_free_date(d).into(),
        other => {
            let owned: duckdb::types::Value = other.to_owned();
            match owned {
                duckdb::types::Value::List(items) => serde_json::Value::Array(
                    items
                        .into_iter()
                        .map(|i| match i {
                            duckdb::types::Value::Text(s) => s.into(),
                            o => format!("{o:?}").into(),
                        })
                        .collect(),
                ),
                o => format!("{o:?}").into(),
            }
        }
    }
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01), proleptic Gregorian.
pub(crate) fn jiff_free_date(days: i32) -> String {
    // Howard Hinnant's civil_from_days
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// A fingerprint of a stream from its first bytes (FNV-1a 64 over at most 1 KiB): the same
/// for a file and its rotated copy, different for unrelated files.
pub fn fingerprint(head: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in &head[..head.len().min(1024)] {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tansa_event::{Category, Field, Origin, Outcome};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tansa-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Event i: a failed root login from 203.0.113.(i % 250), one per second from
    /// 2026-03-14 10:00 UTC, or per `day_step` days apart when given.
    fn ev(i: u64, day_step: i64) -> Event {
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
        e.timestamp = 1_773_482_400_000_000_000
            + i as i64 * 1_000_000_000
            + i as i64 * day_step * 86_400_000_000_000;
        e.offset = i * 100;
        e.category = Category::Authentication;
        e.outcome = Outcome::Failure;
        e.dataset = "sshd";
        e.source_ip = Some(format!("203.0.113.{}", i % 250).parse().unwrap());
        e.set_str(Field::USER_NAME, "root");
        e.set_str(Field::SSH_METHOD, "password");
        e
    }

    fn batch(evs: Vec<Event>, next_offset: u64) -> Batch {
        let n = evs.len() as u64;
        Batch {
            sources: vec![7; evs.len()],
            events: evs,
            checkpoints: vec![Checkpoint {
                fingerprint: 7,
                path: "/var/log/auth.log".into(),
                host: Some("web01".into()),
                next_offset,
                lines: n,
            }],
            files: Vec::new(),
        }
    }

    #[test]
    fn events_and_checkpoints_commit_together_and_survive_reopening() {
        let d = dir("commit");
        let mut s = DuckStore::open(&d, None).unwrap();
        assert_eq!(s.checkpoint(7).unwrap(), 0);
        s.write(&batch((0..1000).map(|i| ev(i, 0)).collect(), 100_000))
            .unwrap();
        drop(s);
        let s = DuckStore::open(&d, None).unwrap();
        assert_eq!(s.checkpoint(7).unwrap(), 100_000);
        assert_eq!(s.event_count().unwrap(), 1000);
        let t = s
            .sql("SELECT source_ip, count(*) AS n FROM events WHERE outcome = 'failure' GROUP BY 1 ORDER BY n DESC, 1 LIMIT 3")
            .unwrap();
        assert_eq!(t.columns, vec!["source_ip", "n"]);
        assert_eq!(t.rows[0][1], serde_json::json!(4));
        let t = s
            .sql("SELECT day, ts, user_name, id FROM events ORDER BY ts LIMIT 1")
            .unwrap();
        assert_eq!(t.rows[0][0], "2026-03-14");
        assert_eq!(t.rows[0][1], "2026-03-14 10:00:00");
        assert_eq!(t.rows[0][2], "root");
        assert_eq!(t.rows[0][3], serde_json::json!(columns::event_id(7, 0)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_instances_are_committed_with_batches_and_read_back_with_their_offsets() {
        let d = dir("instances");
        let mut s = DuckStore::open(&d, None).unwrap();
        let inst = |head_len, head_hash| FileInstance {
            fingerprint: 7,
            path: "/var/log/auth.log".into(),
            dev: 2049,
            ino: 131,
            head_len,
            head_hash,
            next_offset: 0,
        };
        let mut b = batch(vec![ev(0, 0)], 100);
        b.files.push(inst(40, 1));
        s.write(&b).unwrap();
        // the identity grows as the file fills: replaced, not duplicated
        let mut b = batch(vec![ev(1, 0)], 200);
        b.files.push(inst(1024, 2));
        s.write(&b).unwrap();
        drop(s);
        let s = DuckStore::open(&d, None).unwrap();
        let got = s.file_instances().unwrap();
        assert_eq!(
            got,
            vec![FileInstance {
                next_offset: 200,
                ..inst(1024, 2)
            }]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_store_killed_before_its_first_commit_is_reported_not_half_opened() {
        let d = dir("uncommitted");
        std::fs::create_dir_all(&d).unwrap();
        // a database file without Tansa's tables, as a run killed while creating it leaves
        drop(Connection::open(d.join("tansa.duckdb")).unwrap());
        let e = DuckStore::open_read_only(&d, None).err().expect("refused");
        assert!(e.to_string().contains("holds nothing yet"), "{e}");
        // the next writer creates the schema in one transaction and works
        let mut s = DuckStore::open(&d, None).unwrap();
        s.write(&batch(vec![ev(0, 0)], 100)).unwrap();
        drop(s);
        assert_eq!(
            DuckStore::open_read_only(&d, None)
                .unwrap()
                .event_count()
                .unwrap(),
            1
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn time_text_and_ids_are_derived_the_same_in_hot_and_cold_days() {
        let d = dir("derived");
        let mut s = DuckStore::open(&d, None).unwrap();
        let mut a = ev(0, 0);
        a.time_text = Some((0, 15));
        // a slice after a non-ASCII character is kept as text (substr counts characters)
        let mut b = Event::new(
            bytes::Bytes::from("é - [14/Mar/2026:10:00:01 +0000] \"GET / HTTP/1.1\" 200 1"),
            Arc::new(Origin::file("/var/log/auth.log", "web01")),
            0,
        );
        b.timestamp = a.timestamp + 1_000_000_000;
        b.offset = 100;
        b.time_text = Some((6, 32));
        s.write(&batch(vec![a, b], 200)).unwrap();
        let q = "SELECT time_text, id FROM events ORDER BY ts";
        let want = vec![
            vec![
                serde_json::json!("Mar 14 10:00:00"),
                serde_json::json!(columns::event_id(7, 0)),
            ],
            vec![
                serde_json::json!("14/Mar/2026:10:00:01 +0000"),
                serde_json::json!(columns::event_id(7, 100)),
            ],
        ];
        assert_eq!(s.sql(q).unwrap().rows, want);
        let stored = s
            .sql("SELECT time_text IS NULL, time_at, time_len FROM events_hot ORDER BY ts")
            .unwrap();
        assert_eq!(
            stored.rows[0],
            vec![serde_json::json!(true), 0.into(), 15.into()]
        );
        assert_eq!(stored.rows[1][0], serde_json::json!(false));
        let policy = Policy {
            hot_days: 0,
            delete_days: 100_000,
            cluster: false,
        };
        s.retention(&policy, Some("2099-01-01")).unwrap();
        assert_eq!(
            s.sql("SELECT count(*) FROM events_hot").unwrap().rows[0][0],
            0
        );
        assert_eq!(s.sql(q).unwrap().rows, want);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn finished_hot_days_are_sorted_by_address_and_resorted_after_late_events() {
        let d = dir("cluster");
        let mut s = DuckStore::open(&d, None).unwrap();
        // two days (2026-03-14/15) of 1500 events, addresses cycling in arrival order
        let evs = (0..3000)
            .map(|i| {
                let mut e = ev(i, 0);
                e.timestamp += (i as i64 / 1500) * 86_400_000_000_000;
                e
            })
            .collect();
        s.write(&batch(evs, 300_000)).unwrap();
        // rows that follow (in storage order) a row of the same day with a greater address
        let inversions = |s: &DuckStore| -> u64 {
            s.sql(
                "SELECT count(*) FROM (SELECT source_ip, lag(source_ip) OVER \
                 (PARTITION BY day ORDER BY rowid) AS pip FROM events_hot) WHERE source_ip < pip",
            )
            .unwrap()
            .rows[0][0]
                .as_u64()
                .unwrap()
        };
        assert!(inversions(&s) > 0);
        let keep = Policy {
            hot_days: 1000,
            delete_days: 2000,
            cluster: true,
        };
        // on 2026-03-16 only the 14th is finished
        let r = s.retention(&keep, Some("2026-03-16")).unwrap();
        assert_eq!(r.clustered, vec![("2026-03-14".to_owned(), 1500)]);
        assert!(inversions(&s) > 0, "the 15th is not sorted yet");
        let r = s.retention(&keep, Some("2026-03-17")).unwrap();
        assert_eq!(r.clustered, vec![("2026-03-15".to_owned(), 1500)]);
        assert_eq!(inversions(&s), 0);
        assert_eq!(s.event_count().unwrap(), 3000);
        // a late event for the 14th: the day is sorted again
        let mut late = ev(5000, 0);
        late.offset = 400_000;
        s.write(&batch(vec![late], 400_100)).unwrap();
        assert!(inversions(&s) > 0);
        let r = s.retention(&keep, Some("2026-03-17")).unwrap();
        assert_eq!(r.clustered, vec![("2026-03-14".to_owned(), 1501)]);
        assert_eq!(inversions(&s), 0);
        assert_eq!(s.event_count().unwrap(), 3001);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn source_numbers_are_assigned_once_and_kept() {
        let d = dir("numbers");
        let mut s = DuckStore::open(&d, None).unwrap();
        let a = s.source_number(0xaaaa).unwrap();
        let b = s.source_number(0xbbbb).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.source_number(0xaaaa).unwrap(), a);
        drop(s);
        let mut s = DuckStore::open(&d, None).unwrap();
        assert_eq!(s.source_number(0xbbbb).unwrap(), b);
        assert_eq!(s.source_number(0xaaaa).unwrap(), a);
        let c = s.source_number(0xcccc).unwrap();
        assert!(c != a && c != b);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn parallel_writer_commits_every_batch_and_compacts_checkpoints() {
        let d = dir("parallel");
        let s = DuckStore::open(&d, None).unwrap();
        let mut w = s.parallel_writer(3).unwrap();
        for b in 0..12u64 {
            let evs = (b * 500..(b + 1) * 500).map(|i| ev(i, 0)).collect();
            w.write(DuckStore::prepare(&batch(evs, (b + 1) * 50_000)))
                .unwrap();
        }
        let s = w.finish().unwrap();
        assert_eq!(s.event_count().unwrap(), 6000);
        assert_eq!(s.checkpoint(7).unwrap(), 12 * 50_000);
        let marks = |s: &DuckStore| s.sql("SELECT count(*) AS n FROM source_marks").unwrap();
        assert_eq!(marks(&s).rows[0][0], serde_json::json!(12));
        let t = s.sql("SELECT lines, path FROM sources").unwrap();
        assert_eq!(t.rows[0][0], serde_json::json!(6000));
        drop(s);
        // a writer folds the rows of each source into one
        let s = DuckStore::open(&d, None).unwrap();
        assert_eq!(marks(&s).rows[0][0], serde_json::json!(1));
        assert_eq!(s.checkpoint(7).unwrap(), 12 * 50_000);
        assert_eq!(
            s.sql("SELECT lines FROM sources").unwrap().rows[0][0],
            serde_json::json!(6000)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_batch_stops_later_batches_from_committing() {
        use duckdb::arrow::array::Int32Array;
        use duckdb::arrow::datatypes::{DataType, Field as AField, Schema};
        let d = dir("failed");
        let s = DuckStore::open(&d, None).unwrap();
        let mut w = s.parallel_writer(2).unwrap();
        let good = |b: u64| {
            let evs = (b * 100..(b + 1) * 100).map(|i| ev(i, 0)).collect();
            DuckStore::prepare(&batch(evs, (b + 1) * 10_000))
        };
        w.write(good(0)).unwrap();
        // batch 2: a record batch the events table does not take
        let bad = duckdb::arrow::record_batch::RecordBatch::try_new(
            Arc::new(Schema::new(vec![AField::new("x", DataType::Int32, false)])),
            vec![Arc::new(Int32Array::from(vec![1]))],
        )
        .unwrap();
        let mut failed = w
            .write(Prepared {
                records: Some(bad),
                addresses: None,
                checkpoints: batch(Vec::new(), 20_000).checkpoints,
                files: Vec::new(),
            })
            .is_err();
        for b in 2..6 {
            failed |= w.write(good(b)).is_err();
        }
        let r = w.finish();
        assert!(failed || r.is_err(), "the failure is reported");
        let s = DuckStore::open(&d, None).unwrap();
        // only the batch before the failed one is stored, and the checkpoint stays with it
        assert_eq!(s.event_count().unwrap(), 100);
        assert_eq!(s.checkpoint(7).unwrap(), 10_000);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn user_sql_is_read_only() {
        let d = dir("ro");
        drop(DuckStore::open(&d, None).unwrap());
        let s = DuckStore::open_read_only(&d, None).unwrap();
        for bad in [
            "DELETE FROM events_hot",
            "drop table events_hot",
            "INSERT INTO events_hot VALUES (1)",
            "ATTACH 'x'",
        ] {
            assert!(
                matches!(s.sql(bad), Err(StoreError::NotReadOnly(_))),
                "{bad}"
            );
        }
        // DuckDB itself refuses writes hidden behind an allowed first word
        assert!(s
            .sql("WITH x AS (SELECT 1) DELETE FROM events_hot")
            .is_err());
        assert!(s.sql("SELECT 1").is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_second_writer_is_told_the_store_is_in_use() {
        let d = dir("lock");
        let _s = DuckStore::open(&d, None).unwrap();
        // DuckDB locks per process; a child process is the honest second writer, but within
        // one process a second open of the same file shares the instance. Check the message
        // mapping instead.
        let e = duckdb::Error::DuckDBFailure(
            duckdb::ffi::Error::new(1),
            Some("IO Error: Could not set lock on file \"x\": Conflicting lock is held".into()),
        );
        assert!(matches!(open_error(&d, e), StoreError::Locked { .. }));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn search_runs_compiled_queries_with_bound_values() {
        let d = dir("search");
        let mut s = DuckStore::open(&d, None).unwrap();
        let mut evs: Vec<Event> = (0..1000).map(|i| ev(i, 0)).collect();
        // url.path is kept in `fields` only when it is not url.original up to `?`
        for (i, url) in [(0, "/a/b?x=1"), (1, "http://h/a/b")] {
            evs[i].set_str(Field::URL_ORIGINAL, url);
            evs[i].set_str(Field::URL_PATH, "/a/b");
        }
        // IPv6 sources in their short text form
        let v6 = [
            "2001:db8::1",
            "2001:db8:0:1::5",
            "2001:db8:40::7",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::1",
            "::1",
            "fe80::1:2",
        ];
        for (i, a) in v6.iter().enumerate() {
            evs[900 + i].source_ip = Some(a.parse().unwrap());
        }
        s.write(&batch(evs, 100_000)).unwrap();
        let hex = s
            .sql("SELECT tansa_ip6('2001:db8:0:1::5') AS a, tansa_ip6('::1') AS b, tansa_ip6('1.2.3.4') AS c, tansa_ip6('2001:DB8::') AS d")
            .unwrap();
        assert_eq!(
            hex.rows[0],
            vec![
                serde_json::json!("20010db8000000010000000000000005"),
                serde_json::json!("00000000000000000000000000000001"),
                serde_json::Value::Null,
                serde_json::json!("20010db8000000000000000000000000"),
            ]
        );
        let paths = s
            .sql("SELECT count(*) FROM events WHERE fields LIKE '%url.path%'")
            .unwrap();
        assert_eq!(paths.rows[0][0], serde_json::json!(1));
        let n = |q: &str| {
            s.search(&SearchRequest {
                query: q.into(),
                limit: 10_000,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .rows
            .len()
        };
        assert_eq!(n("source.ip:203.0.113.9"), 4);
        assert_eq!(n("url.path:\"/a/b\""), 2);
        assert_eq!(n("source.ip:203.0.113.9 AND event.outcome:failure"), 4);
        assert_eq!(n("source.ip:203.0.113.9 AND event.outcome:success"), 0);
        assert_eq!(n("source.ip:203.0.113.0/28"), 16 * 4);
        assert_eq!(n("source.ip:203.0.113.0/24"), 1000 - 7);
        assert_eq!(n("source.ip:203.0.113.1*"), (1 + 10 + 100) * 4 - 7);
        assert_eq!(n("\"from 203.0.113.249 port\""), 4);
        assert_eq!(n("ssh.method:password"), 1000);
        assert_eq!(n("user.name:\"root' OR '1'='1\""), 0);
        assert_eq!(n("-source.ip:203.0.113.0/25"), 1000 - 128 * 4);
        assert_eq!(n("source.ip:2001:db8::/32"), 4);
        assert_eq!(n("source.ip:2001:db8::/48"), 2);
        assert_eq!(n("source.ip:2001:db8:40::/42"), 1);
        assert_eq!(n("source.ip:2001:db8::/31"), 5);
        assert_eq!(n("source.ip:::1/128"), 1);
        assert_eq!(n("source.ip:fe80::/10"), 1);
        assert_eq!(n("source.ip:::/0"), 7);
        let t = s
            .search(&SearchRequest {
                query: "user.name:root".into(),
                from: Some("2026-03-14 10:05:00".into()),
                to: Some("2026-03-14 10:06:00".into()),
                limit: 1000,
                newest_first: true,
            })
            .unwrap();
        assert_eq!(t.rows.len(), 60);
        let ts = t.columns.iter().position(|c| c == "ts").unwrap();
        assert_eq!(t.rows[0][ts], "2026-03-14 10:05:59");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn retention_moves_old_days_to_parquet_and_deletes_older_ones() {
        let d = dir("retention");
        let cold = dir("retention-cold");
        let mut s = DuckStore::open(&d, Some(&cold)).unwrap();
        // 400 events, one per day from 2026-03-14 on
        s.write(&batch((0..400).map(|i| ev(i, 1)).collect(), 40_000))
            .unwrap();
        let today = "2027-04-18"; // day 400 after 2026-03-14
        let r = s
            .retention(
                &Policy {
                    hot_days: 30,
                    delete_days: 365,
                    cluster: true,
                },
                Some(today),
            )
            .unwrap();
        // days 0..35 are older than 365 days; days 35..370 go cold; 370..400 stay hot
        assert_eq!(r.deleted.len(), 35, "{r:?}");
        assert_eq!(r.deleted_events, 35);
        assert_eq!(r.moved.len(), 335);
        // hot days up to two days back are sorted by address: days 370..=398
        assert_eq!(r.clustered.len(), 29, "{r:?}");
        assert_eq!(s.event_count().unwrap(), 365);
        let hot: u64 = s.sql("SELECT count(*) FROM events_hot").unwrap().rows[0][0]
            .as_u64()
            .unwrap();
        assert_eq!(hot, 30);
        // cold data answers through the same view, searches included
        assert_eq!(
            s.search(&SearchRequest {
                query: "source.ip:203.0.113.40".into(),
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .rows
            .len(),
            2 // events 40 and 290; 40 is cold, 290 is cold
        );
        let disk = s.stats().unwrap();
        let disk = &disk.iter().find(|x| x.title == "Disk").unwrap().table;
        assert_eq!(disk.rows[1][1], serde_json::json!(335));
        // running again changes nothing; a later day deletes and moves one more each
        let again = s.retention(&Policy::default(), Some(today)).unwrap();
        assert!(again.moved.is_empty() && again.deleted.is_empty() && again.clustered.is_empty());
        let next = s.retention(&Policy::default(), Some("2027-04-19")).unwrap();
        assert_eq!((next.moved.len(), next.deleted.len()), (1, 1));
        assert_eq!(s.event_count().unwrap(), 364);
        drop(s);
        // a move cut short: an unrecorded temporary file is removed on open
        let stray = cold.join("events/day=2026-12-01/part-9999-0.parquet.tmp");
        std::fs::write(&stray, b"partial").unwrap();
        let mut s = DuckStore::open(&d, Some(&cold)).unwrap();
        assert!(!stray.exists());
        assert_eq!(s.event_count().unwrap(), 364);
        // last year's log analysed "today" is kept (moved cold, not deleted) until it has
        // also been here for the deletion age
        let mut late = ev(1000, 0);
        late.timestamp = 1_577_836_800_000_000_000; // 2020-01-01
        late.ingested = 1_807_920_000_000_000_000; // 2027-04-18
        late.offset = 1_000_000;
        s.write(&batch(vec![late], 1_000_100)).unwrap();
        let r = s.retention(&Policy::default(), Some("2027-04-19")).unwrap();
        assert_eq!((r.moved.len(), r.deleted.len()), (1, 0), "{r:?}");
        assert_eq!(s.event_count().unwrap(), 365);
        let r = s.retention(&Policy::default(), Some("2028-04-18")).unwrap();
        assert!(r.deleted.contains(&"2020-01-01".to_owned()), "{r:?}");
        assert!(s
            .retention(
                &Policy {
                    hot_days: 10,
                    delete_days: 5,
                    cluster: true,
                },
                None
            )
            .is_err());
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&cold).unwrap();
    }

    #[test]
    fn alerts_are_replaced_and_linked_to_their_events() {
        use tansa_detect::{builtin, Engine, Limits};
        let d = dir("alerts");
        let mut s = DuckStore::open(&d, None).unwrap();
        let mut engine = Engine::new(builtin::rules(), Limits::default());
        let mut evs: Vec<Event> = (0..200).map(|i| ev(i % 5 * 250, 0)).collect();
        for (i, e) in evs.iter_mut().enumerate() {
            e.offset = i as u64 * 100;
            e.timestamp += i as i64 * 1_000_000_000;
            engine.process(e);
        }
        let alerts = engine.finish();
        assert!(!alerts.is_empty());
        let fp = |p: &str| (p == "/var/log/auth.log").then_some(7u32);
        s.write_alerts(&alerts, &fp).unwrap();
        s.write_alerts(&alerts, &fp).unwrap();
        let n = s.sql("SELECT count(*) FROM alerts").unwrap().rows[0][0].clone();
        assert_eq!(n, serde_json::json!(alerts.len()));
        let links = s
            .sql("SELECT count(*), count(DISTINCT event_id) FROM alert_events")
            .unwrap();
        let want: usize = alerts.iter().map(|a| a.events.len()).sum();
        assert_eq!(links.rows[0][0], serde_json::json!(want));
        let t = s.sql("SELECT tags FROM alerts LIMIT 1").unwrap();
        assert!(t.rows[0][0].as_array().is_some_and(|a| !a.is_empty()));
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Alerts go cold with the day of their last event, still answer through `alerts` and
    /// `alert_events` (joined to cold events), are hot again when raised again, and are
    /// deleted once their day's events are.
    #[test]
    fn alerts_move_to_the_cold_tier_with_their_day_and_go_with_its_events() {
        use tansa_detect::{builtin, Engine, Limits};
        let d = dir("alerts-cold");
        let cold = dir("alerts-cold-cold");
        let mut s = DuckStore::open(&d, Some(&cold)).unwrap();
        let mut engine = Engine::new(builtin::rules(), Limits::default());
        // 2026-03-14: a brute force from five addresses
        let evs: Vec<Event> = (0..200).map(|i| ev(i % 5 * 250 + i, 0)).collect();
        for e in &evs {
            engine.process(e);
        }
        let alerts = engine.finish();
        assert!(!alerts.is_empty());
        s.write(&batch(evs, 1_000_000)).unwrap();
        let fp = |p: &str| (p == "/var/log/auth.log").then_some(7u32);
        s.write_alerts(&alerts, &fp).unwrap();
        let count = |s: &DuckStore, sql: &str| s.sql(sql).unwrap().rows[0][0].as_u64().unwrap();
        let linked = "SELECT count(*) FROM alerts a JOIN alert_events l ON l.alert_id = a.id \
                      JOIN events e ON e.id = l.event_id";
        let links = count(&s, linked);
        assert!(links > 0);
        // a reading connection made before the move (the server's) sees it after
        let reader = s.try_clone().unwrap();
        let r = s.retention(&Policy::default(), Some("2026-05-01")).unwrap();
        assert_eq!(count(&reader, linked), links);
        assert_eq!(count(&reader, "SELECT count(*) FROM events"), 200);
        drop(reader);
        assert_eq!(r.moved_alerts.len(), 1, "{r:?}");
        assert_eq!(r.moved_alerts[0].0, "2026-03-14");
        assert_eq!(count(&s, "SELECT count(*) FROM alerts_hot"), 0);
        assert_eq!(count(&s, "SELECT count(*) FROM alert_events_hot"), 0);
        assert_eq!(
            count(&s, "SELECT count(*) FROM alerts"),
            alerts.len() as u64
        );
        assert_eq!(count(&s, linked), links, "links reach the cold events");
        assert!(cold.join("alerts/day=2026-03-14").is_dir());
        // raised again (the same logs analysed again): hot, and not twice in the view
        s.write_alerts(&alerts, &fp).unwrap();
        assert_eq!(
            count(&s, "SELECT count(*) FROM alerts"),
            alerts.len() as u64
        );
        assert_eq!(count(&s, linked), links);
        let r = s.retention(&Policy::default(), Some("2026-05-01")).unwrap();
        assert_eq!(r.moved_alerts.len(), 1, "{r:?}");
        assert_eq!(
            count(&s, "SELECT count(*) FROM alerts"),
            alerts.len() as u64,
            "the second cold part replaces nothing twice"
        );
        drop(s);
        // a move cut short: an unrecorded temporary alerts file is removed on open
        let stray = cold.join("alerts/day=2026-03-14/part-9999-0.parquet.tmp");
        std::fs::write(&stray, b"partial").unwrap();
        let mut s = DuckStore::open(&d, Some(&cold)).unwrap();
        assert!(!stray.exists());
        // past the deletion age the day's events go, and its alerts with them
        let r = s.retention(&Policy::default(), Some("2027-04-01")).unwrap();
        assert_eq!(r.deleted, vec!["2026-03-14".to_string()], "{r:?}");
        assert_eq!(r.deleted_alerts, 2 * alerts.len() as u64, "{r:?}");
        assert_eq!(count(&s, "SELECT count(*) FROM alerts"), 0);
        assert_eq!(count(&s, "SELECT count(*) FROM alert_events"), 0);
        assert!(!cold.join("alerts/day=2026-03-14").exists());
        drop(s);
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&cold).unwrap();
    }

    /// A version-10 store (plain `alerts` and `alert_events` tables) opens as version 11
    /// with its alerts kept.
    #[test]
    fn a_version_10_store_keeps_its_alerts_when_tiered() {
        use tansa_detect::{builtin, Engine, Limits};
        let d = dir("v10");
        let mut s = DuckStore::open(&d, None).unwrap();
        let mut engine = Engine::new(builtin::rules(), Limits::default());
        for i in 0..200 {
            engine.process(&ev(i, 0));
        }
        let alerts = engine.finish();
        assert!(!alerts.is_empty());
        s.write_alerts(&alerts, &|_| Some(7)).unwrap();
        // back to version 10's shape
        s.conn
            .execute_batch(
                "ALTER TABLE alerts_hot RENAME TO alerts; \
                 ALTER TABLE alert_events_hot RENAME TO alert_events; \
                 ALTER TABLE cold_parts DROP COLUMN kind; \
                 UPDATE meta SET value = '10' WHERE key = 'schema_version';",
            )
            .unwrap();
        drop(s);
        let s = DuckStore::open(&d, None).unwrap();
        let one = |sql: &str| s.sql(sql).unwrap().rows[0][0].clone();
        assert_eq!(
            one("SELECT value FROM meta WHERE key = 'schema_version'"),
            "11"
        );
        assert_eq!(
            one("SELECT count(*) FROM alerts_hot"),
            serde_json::json!(alerts.len())
        );
        assert_eq!(
            one("SELECT count(*) FROM alert_events"),
            serde_json::json!(alerts.iter().map(|a| a.events.len()).sum::<usize>())
        );
        assert_eq!(
            one("SELECT count(*) FROM cold_parts WHERE kind = 'events'"),
            0
        );
        drop(s);
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

    #[test]
    fn day_numbers_become_dates() {
        assert_eq!(jiff_free_date(0), "1970-01-01");
        assert_eq!(jiff_free_date(20_526), "2026-03-14");
        assert_eq!(jiff_free_date(-1), "1969-12-31");
        assert_eq!(jiff_free_date(11_016), "2000-02-29");
    }
}
