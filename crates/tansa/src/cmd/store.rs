//! The store commands: `tansa sql`, `tansa search`, `tansa stats`, `tansa retention run`.
//! Each builds a [`tansa_store::Request`] and runs it through [`tansa_store::execute`], the
//! same entry point the server's API uses.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tansa_store::{Backend, DuckStore, Request, Response, SearchRequest, Section, Table};

use crate::cli::{OutputFormat, RetentionArgs, SearchArgs};
use crate::output::{cell, io_error};

/// The store for reading: the database itself, or, while `tansa serve` holds it, the
/// server's API.
pub(crate) fn open_read_only(data: &Path, cold: Option<&Path>) -> Result<Box<dyn Backend>> {
    match DuckStore::open_read_only(data, cold) {
        Ok(s) => Ok(Box::new(s)),
        Err(e @ tansa_store::StoreError::Locked { .. }) => match super::remote::Remote::find(data)?
        {
            Some(r) => Ok(Box::new(r)),
            None => Err(e).context("opening the store"),
        },
        Err(e) => Err(e).context("opening the store"),
    }
}

fn run_request(
    data: &Path,
    cold: Option<&Path>,
    req: &Request,
    format: OutputFormat,
) -> Result<ExitCode> {
    let store = open_read_only(data, cold)?;
    let resp = tansa_store::execute(&*store, req)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match resp {
        Response::Table(t) => print_table(&mut out, &t, format)?,
        Response::Sections { sections } => print_sections(&mut out, &sections, format)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn sql(
    query: &str,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    run_request(
        data,
        cold,
        &Request::Sql {
            sql: query.to_owned(),
        },
        format,
    )
}

pub fn search(
    a: &SearchArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let (from, to) = time_bounds(&a.time)?;
    let req = Request::Search(SearchRequest {
        query: a.query.clone(),
        from,
        to,
        limit: a.limit,
        newest_first: a.newest,
    });
    if format == OutputFormat::Json {
        return run_request(data, cold, &req, format);
    }
    // text: the columns a person reads first
    let store = open_read_only(data, cold)?;
    let Response::Table(t) = tansa_store::execute(&*store, &req)? else {
        anyhow::bail!("search returned no table");
    };
    let keep = [
        "ts",
        "host",
        "dataset",
        "outcome",
        "source_ip",
        "user_name",
        "raw",
    ];
    let idx: Vec<usize> = keep
        .iter()
        .filter_map(|k| t.columns.iter().position(|c| c == k))
        .collect();
    let short = Table {
        columns: idx.iter().map(|&i| t.columns[i].clone()).collect(),
        rows: t
            .rows
            .iter()
            .map(|r| idx.iter().map(|&i| r[i].clone()).collect())
            .collect(),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    print_table(&mut out, &short, format)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn stats(format: OutputFormat, data: &Path, cold: Option<&Path>) -> Result<ExitCode> {
    run_request(data, cold, &Request::Stats, format)
}

pub fn policy(r: &RetentionArgs) -> tansa_store::Policy {
    tansa_store::Policy {
        hot_days: r.hot_days,
        delete_days: r.delete_days,
        cluster: true,
    }
}

pub fn retention(
    r: &RetentionArgs,
    today: Option<&str>,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let mut store = DuckStore::open(data, cold).context("opening the store")?;
    let rep = store.retention(&policy(r), today)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match format {
        OutputFormat::Json => {
            serde_json::to_writer(&mut out, &rep).map_err(io_error)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Text | OutputFormat::Html | OutputFormat::Md => {
            for (day, n, file) in &rep.moved {
                writeln!(out, "moved   {day}  {n:>10} events  → {}", cell(file, 200))?;
            }
            for day in &rep.deleted {
                writeln!(out, "deleted {day}")?;
            }
            for (day, n) in &rep.clustered {
                writeln!(out, "sorted  {day}  {n:>10} events by source address")?;
            }
            writeln!(out, "{}", retention_summary(&rep))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One line on what a retention run did.
pub fn retention_summary(r: &tansa_store::RetentionReport) -> String {
    format!(
        "{} days moved to the cold tier, {} days deleted ({} events), {} hot days sorted by source address",
        r.moved.len(),
        r.deleted.len(),
        r.deleted_events,
        r.clustered.len()
    )
}

/// `--since`, `--from`, `--to` as the store's UTC text (lower bound, upper bound).
pub(crate) fn time_bounds(t: &crate::cli::TimeArgs) -> Result<(Option<String>, Option<String>)> {
    let mut lower = t
        .from
        .as_deref()
        .map(utc_time)
        .transpose()
        .context("--from")?;
    if let Some(since) = &t.since {
        let span: jiff::Span = parse_duration(since)
            .with_context(|| format!("--since: `{since}` is not a duration like 30m, 2h, 7d"))?;
        let t = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(span)?)
            .context("--since")?;
        lower = Some(sql_time(t));
    }
    let upper = t.to.as_deref().map(utc_time).transpose().context("--to")?;
    Ok((lower, upper))
}

/// `30m`, `2h`, `7d`, `1w`, or anything jiff's friendly format reads (`2h30m`).
pub(crate) fn parse_duration(s: &str) -> Result<jiff::Span> {
    let s = s.trim();
    if let Some(n) = s.strip_suffix('w').and_then(|n| n.parse::<i64>().ok()) {
        return Ok(jiff::Span::new().try_hours(n * 7 * 24)?);
    }
    if let Some(n) = s.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        return Ok(jiff::Span::new().try_hours(n * 24)?);
    }
    Ok(s.parse::<jiff::Span>()?)
}

fn sql_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// An RFC 3339 time, or a UTC `YYYY-MM-DD[ HH:MM[:SS]]`, as the store's UTC text.
fn utc_time(s: &str) -> Result<String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(sql_time(t));
    }
    let civil: jiff::civil::DateTime = s
        .parse()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .with_context(|| format!("`{s}` is not a time (RFC 3339 or YYYY-MM-DD HH:MM:SS, UTC)"))?;
    Ok(sql_time(
        civil.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp(),
    ))
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// A table: aligned text (cells escaped, cut at 60 characters; the last column whole), or
/// one JSON object per row.
pub fn print_table(out: &mut impl Write, t: &Table, format: OutputFormat) -> std::io::Result<()> {
    if format == OutputFormat::Json {
        for i in 0..t.rows.len() {
            serde_json::to_writer(&mut *out, &t.object(i)).map_err(io_error)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let last = t.columns.len().saturating_sub(1);
    let widths: Vec<usize> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            t.rows
                .iter()
                .map(|r| text(&r[i]).chars().count().min(60))
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == last {
                    cell(c, 400)
                } else {
                    format!("{:<w$}", cell(c, *w))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(t.columns.clone()))?;
    for r in &t.rows {
        writeln!(out, "{}", line(r.iter().map(text).collect()))?;
    }
    writeln!(out, "({} rows)", t.rows.len())
}

fn print_sections(
    out: &mut impl Write,
    s: &[Section],
    format: OutputFormat,
) -> std::io::Result<()> {
    for (i, sec) in s.iter().enumerate() {
        if format == OutputFormat::Json {
            for r in 0..sec.table.rows.len() {
                let mut o = sec.table.object(r);
                o.insert("section".into(), sec.title.clone().into());
                serde_json::to_writer(&mut *out, &o).map_err(io_error)?;
                out.write_all(b"\n")?;
            }
            continue;
        }
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", sec.title)?;
        print_table(out, &sec.table, format)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(utc_time("2026-03-14").unwrap(), "2026-03-14 00:00:00");
        assert_eq!(utc_time("2026-03-14 10:05").unwrap(), "2026-03-14 10:05:00");
        assert_eq!(
            utc_time("2026-03-14T19:05:00+09:00").unwrap(),
            "2026-03-14 10:05:00"
        );
        assert!(utc_time("yesterday").is_err());
        assert_eq!(parse_duration("2h").unwrap().get_hours(), 2);
        assert_eq!(parse_duration("7d").unwrap().get_hours(), 168);
        assert_eq!(parse_duration("30m").unwrap().get_minutes(), 30);
        assert!(parse_duration("soon").is_err());
    }
}
