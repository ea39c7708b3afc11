//! `tansa sql`: read-only SQL on the store.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{OutputFormat, SqlArgs};
use crate::output::{cell, io_error};

pub fn run(a: &SqlArgs, format: OutputFormat, data: &Path) -> Result<ExitCode> {
    if !data.join("tansa.duckdb").exists() {
        anyhow::bail!(
            "no store in {} (run `tansa analyze` first, or give --data)",
            data.display()
        );
    }
    let store = tansa_store::Store::open(data).context("opening the store")?;
    let (cols, rows) = store.query(&a.query)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match format {
        OutputFormat::Json => {
            for r in &rows {
                let obj: serde_json::Map<String, serde_json::Value> =
                    cols.iter().cloned().zip(r.iter().cloned()).collect();
                serde_json::to_writer(&mut out, &obj).map_err(io_error)?;
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Text => {
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "NULL".into(),
                other => other.to_string(),
            };
            let widths: Vec<usize> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    rows.iter()
                        .map(|r| text(&r[i]).chars().count().min(60))
                        .max()
                        .unwrap_or(0)
                        .max(c.len())
                })
                .collect();
            let line: Vec<String> = cols
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{:<w$}", cell(c, *w)))
                .collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{:<w$}", cell(&text(v), *w)))
                    .collect();
                writeln!(out, "{}", line.join("  ").trim_end())?;
            }
            writeln!(out, "({} rows)", rows.len())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
