//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "tansa", version, about = "Watch server logs, detect attacks, trace attackers, keep the evidence", long_about = None)]
pub struct Cli {
    /// Data directory (store, evidence, keys).
    #[arg(
        long,
        global = true,
        env = "TANSA_DATA",
        default_value = "./tansa-data"
    )]
    pub data: PathBuf,
    /// Output format: a readable table, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read log files or directories, detect attacks, print a summary and the alerts.
    Analyze(AnalyzeArgs),
    /// Print the normalised events of log files (for debugging and conformance).
    Parse(ParseArgs),
    /// Run a read-only SQL query on the store (tables: events, alerts, sources).
    Sql(SqlArgs),
    /// Sigma rules: check that they load.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT source_ip, count(*) FROM events WHERE outcome = 'failure' GROUP BY 1 ORDER BY 2 DESC LIMIT 10".
    pub query: String,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load Sigma rules and report each one: loaded, unsupported (why), or error (where).
    Check(RulesCheckArgs),
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// Rule files or directories (searched recursively for .yml/.yaml).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// How inputs are read: shared by `parse` and `analyze`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Log files or directories (a directory of per-host subdirectories names the hosts).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Zone of timestamps that carry none (IANA name, e.g. Asia/Tokyo). Default: this machine's.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Host name of the inputs (overrides names taken from directories).
    #[arg(long)]
    pub host: Option<String>,
    /// Force a log format instead of detecting it.
    #[arg(long, default_value = "auto")]
    pub log_format: String,
    /// Reference time for yearless timestamps (RFC 3339); default: now.
    #[arg(long, hide = true)]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Parse and detect only; store nothing.
    #[arg(long)]
    pub no_store: bool,
    /// Print only the summary, not the alert table.
    #[arg(long)]
    pub quiet: bool,
    /// Sigma rule files or directories to run beside the built-in rules (repeatable).
    #[arg(long)]
    pub rules: Vec<PathBuf>,
}
