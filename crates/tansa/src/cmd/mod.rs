//! One module per subcommand; each takes its own arguments and returns an exit code.

mod analyze;
mod parse;
mod rules;
mod store;
mod trace;

use std::process::ExitCode;

use anyhow::{Context, Result};
use tansa_pipeline::Options;

use crate::cli::{Cli, Command, InputArgs};

pub fn run(cli: Cli) -> Result<ExitCode> {
    if cli.format == crate::cli::OutputFormat::Html && !matches!(cli.command, Command::Trace(_)) {
        anyhow::bail!("--format html is for `tansa trace`; use text or json here");
    }
    match cli.command {
        Command::Analyze(a) => analyze::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Parse(a) => parse::run(&a, cli.format),
        Command::Sql(a) => store::sql(&a.query, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Search(a) => store::search(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Trace(a) => trace::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Stats => store::stats(cli.format, &cli.data, cli.cold.as_deref()),
        Command::Retention(crate::cli::RetentionCommand::Run { retention, today }) => {
            store::retention(
                &retention,
                today.as_deref(),
                cli.format,
                &cli.data,
                cli.cold.as_deref(),
            )
        }
        Command::Rules(crate::cli::RulesCommand::Check(a)) => rules::check(&a, cli.format),
    }
}

/// Pipeline options from the input arguments.
pub fn options(a: &InputArgs) -> Result<Options> {
    let mut o = Options::new(a.paths.clone());
    o.format = a.log_format.parse().context("--log-format")?;
    if let Some(tz) = &a.timezone {
        o.timezone = jiff::tz::TimeZone::get(tz)
            .with_context(|| format!("--timezone: unknown time zone `{tz}`"))?;
    }
    if let Some(now) = &a.now {
        o.now = now
            .parse()
            .with_context(|| format!("--now: `{now}` is not an RFC 3339 time"))?;
    }
    o.host = a.host.clone();
    Ok(o)
}
