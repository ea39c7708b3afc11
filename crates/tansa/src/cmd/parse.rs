//! `tansa parse`: the normalised events, one per line.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::Result;
use tansa_event::{format_ts, Event, Field};

use crate::cli::{OutputFormat, ParseArgs};
use crate::output::clean;

pub fn run(a: &ParseArgs, format: OutputFormat) -> Result<ExitCode> {
    let opts = super::options(&a.input)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut err: Option<std::io::Error> = None;
    let summaries = tansa_pipeline::parse(&opts, |ev| {
        let r = match format {
            OutputFormat::Json => serde_json::to_writer(&mut out, &ev.to_json())
                .map_err(crate::output::io_error)
                .and_then(|_| out.write_all(b"\n")),
            OutputFormat::Text | OutputFormat::Html | OutputFormat::Md => {
                writeln!(out, "{}", text_line(ev))
            }
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    out.flush()?;
    for s in &summaries {
        if let Some(e) = &s.error {
            eprintln!("tansa: {}", clean(e));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn text_line(ev: &Event) -> String {
    let dash = || std::borrow::Cow::Borrowed("-");
    format!(
        "{} {} {} {} {} src={} user={} | {}",
        format_ts(ev.timestamp),
        clean(&ev.host_name().unwrap_or_else(dash)),
        if ev.dataset.is_empty() {
            ev.kind.as_str()
        } else {
            ev.dataset
        },
        ev.action.unwrap_or("-"),
        ev.outcome.as_str().unwrap_or("-"),
        clean(&ev.source_text().unwrap_or_else(dash)),
        clean(&ev.user_name().unwrap_or_else(dash)),
        clean(&ev.get_str(Field::MESSAGE).unwrap_or_default()),
    )
}
