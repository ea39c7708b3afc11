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
    /// Directory of the cold tier (Parquet files of days past the hot period; may be another
    /// disk). Default: DATA/cold.
    #[arg(long, global = true, env = "TANSA_COLD")]
    pub cold: Option<PathBuf>,
    /// Output format: a readable table, one JSON object per line, or (for `trace`) one
    /// self-contained HTML page.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Html,
    /// Markdown (`tansa report`).
    Md,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read log files or directories, detect attacks, print a summary and the alerts.
    Analyze(AnalyzeArgs),
    /// Print the normalised events of log files (for debugging and conformance).
    Parse(ParseArgs),
    /// Run a read-only SQL query on the store (views/tables: events, alerts, alert_events,
    /// sources, decisions, cases, addresses, rdap).
    Sql(SqlArgs),
    /// Search stored events: `source.ip:203.0.113.9 AND event.outcome:failure`, `url.original:*UNION*`,
    /// `source.ip:45.141.87.0/24`, `"free text"`, `-user.name:root`, `(a OR b)`.
    Search(SearchArgs),
    /// The overview of the store: sources, events per host and day, top failing source IPs,
    /// alerts by severity, disk use per event.
    Stats,
    /// Hot/cold tiers and deletion.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Follow an attacker through the store: `tansa trace 45.141.87.23`, `45.141.87.0/24`,
    /// `AS12345`, `user:deploy`, `host:web01` or an alert id. One timeline across every log
    /// and host it reached, each step with its phase, and a summary above it.
    Trace(TraceArgs),
    /// Retro-hunt: run indicator feeds over everything already stored and list the hits with
    /// their first and last time, event count, hosts and fields.
    Hunt(HuntArgs),
    /// Who holds an address or AS, and its abuse contact (RDAP: IANA's bootstrap, then the
    /// registry). Answers are cached in the store with their time; traces show them.
    Whois(WhoisArgs),
    /// Sigma rules: check that they load.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run the server: follow files (through rotation, resumed after restarts), receive
    /// syslog, detect as lines arrive, store every line once; `/health`, `/metrics` and the
    /// API on `[server] http`. Stops cleanly on SIGTERM or Ctrl-C. See examples/tansa.toml.
    Serve(ServeArgs),
    /// Ship this host's files to a server over mutual TLS (disk spool while the server is
    /// unreachable; every line stored once). See examples/agent.toml.
    Agent(AgentArgs),
    /// The small CA of Tansa's TLS: `init`, `issue NAME` (agents, syslog clients; `--server`
    /// for listeners), `revoke NAME` (the server refuses it from its next start), `list`.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Decisions (bans): `add VALUE`, `del VALUE|ID`, `list`, `import FILE`, `apply` (bring
    /// the firewall to the stored decisions, e.g. after a reboot), `uninstall` (remove
    /// Tansa's firewall table/sets). Through the server's API while `tansa serve` runs.
    #[command(subcommand)]
    Ban(BanCommand),
    /// API keys of CrowdSec bouncers that pull Tansa's decisions (`add NAME` prints the key
    /// once), as `cscli bouncers` does.
    #[command(subcommand)]
    Bouncers(BouncersCommand),
    /// Response hooks waiting for a person: `list` (`--all`: settled ones too), `approve ID`
    /// (the hook runs now), `reject ID`. Through the server's API while `tansa serve` runs.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Prepares a data directory: the store, and the evidence log's signing key (Ed25519;
    /// private key mode 0600); prints the public key others verify seals and bundles with.
    Init,
    /// Checks the evidence log: every record's chain link, every segment's signed seal
    /// (Merkle root, file SHA-256, count); reports the segment and record of any change,
    /// deletion, insertion, reordering or truncation. Exit code 1 when anything is wrong.
    Verify(VerifyArgs),
    /// Response hooks: `list`, `test NAME` (runs the hook with a sample alert: a webhook or
    /// mail check).
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Evidence bundles for others: `export --entity IP|--alert ID|--case N --out DIR` (the
    /// lines with their Merkle inclusion proofs, the signed seals, the public key, a manifest
    /// and a signed chain-of-custody record), `verify DIR` (offline, no data directory
    /// needed), `exports` (the custody record of every export).
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Cases (investigation tickets): `open TITLE [--entity IP] [--alert ID]`, `list`, `show
    /// N`, `note N TEXT`, `link N --entity|--alert|--bundle`, `assign N OWNER`, `close N`,
    /// `reopen N`. Through the server's API while `tansa serve` runs.
    #[command(subcommand)]
    Case(CaseCommand),
    /// File integrity monitoring: `baseline [PATH...]` records SHA-256, size, mode, owner and
    /// mtime of key files (default: accounts, sudoers, SSH, cron, systemd units, loader and
    /// PAM configuration, /usr/bin, /usr/sbin, authorized_keys, `--web-root`); `check` reports
    /// every change since (exit code 1 when there is one) and runs the new ones through
    /// detection into the store. `tansa serve` does it every `fim_interval_s` with `[server]
    /// fim = true`.
    #[command(subcommand)]
    Fim(FimCommand),
    /// The incident report of an address (or user), a case, or every attacker alerted on
    /// since a time: summary, timeline, affected hosts/accounts/data, attacker profile,
    /// indicators, actions taken, evidence, recommendations, abuse complaint. `--format md`
    /// (default), `html` (one self-contained file) or `json`; `--lang en|zh`.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Addresses, prefixes, `AS…`, `user:NAME` (repeatable).
    #[arg(long, group = "scope", required = true)]
    pub entity: Vec<String>,
    #[arg(long, group = "scope")]
    pub case: Option<u64>,
    /// Every address alerted on since (`2026-03-14`, RFC 3339, or a duration like `24h`).
    #[arg(long, group = "scope")]
    pub since: Option<String>,
    /// en or zh (zh-CN).
    #[arg(long, default_value = "en")]
    pub lang: String,
    #[arg(long)]
    pub title: Option<String>,
    /// Host inventory (default DATA/hosts.toml when it exists).
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// Export an evidence bundle of the report's lines to this directory and cite it.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Write to a file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum FimCommand {
    Baseline {
        /// Files or directories (default: the key files of this host).
        paths: Vec<PathBuf>,
        /// The web root (watched for web shells).
        #[arg(long)]
        web_root: Option<PathBuf>,
        /// Write the FIM logs only; store nothing.
        #[arg(long)]
        no_store: bool,
    },
    Check {
        #[arg(long)]
        no_store: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    Open {
        title: String,
        /// low, medium, high, critical.
        #[arg(long, default_value = "medium")]
        severity: String,
        #[arg(long)]
        owner: Option<String>,
        /// Addresses, prefixes, `AS…`, `user:NAME` (repeatable).
        #[arg(long)]
        entity: Vec<String>,
        /// Alert ids (repeatable).
        #[arg(long)]
        alert: Vec<String>,
    },
    List {
        /// Closed cases too.
        #[arg(long)]
        all: bool,
    },
    Show {
        id: u64,
    },
    Note {
        id: u64,
        text: String,
    },
    Link {
        id: u64,
        #[arg(long)]
        entity: Vec<String>,
        #[arg(long)]
        alert: Vec<String>,
        /// An evidence bundle's directory (its custody record's hash is linked).
        #[arg(long)]
        bundle: Vec<PathBuf>,
    },
    Assign {
        id: u64,
        owner: String,
    },
    Close {
        id: u64,
        #[arg(long, default_value = "resolved")]
        resolution: String,
    },
    Reopen {
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    Export {
        /// An address (or a user name): every line naming it.
        #[arg(long, group = "what", required = true)]
        entity: Option<String>,
        /// An alert id: the lines of its events.
        #[arg(long, group = "what")]
        alert: Option<String>,
        /// A case number: its entities' and alerts' lines.
        #[arg(long, group = "what")]
        case: Option<u64>,
        /// The bundle directory (new or empty).
        #[arg(long)]
        out: PathBuf,
        /// Why it is exported (kept in the custody record).
        #[arg(long)]
        note: Option<String>,
        /// The evidence directory (default DATA/evidence).
        #[arg(long)]
        evidence: Option<PathBuf>,
    },
    Verify {
        bundle: PathBuf,
        /// The public key (hex) you trust, kept apart from the bundle.
        #[arg(long)]
        key: Option<String>,
    },
    Exports {
        #[arg(long)]
        evidence: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The evidence directory (default DATA/evidence).
    #[arg(long)]
    pub evidence: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        response: ResponseArgs,
    },
    Approve {
        id: u64,
        /// Why (kept in the record).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        response: ResponseArgs,
    },
    Reject {
        id: u64,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        response: ResponseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    List {
        #[command(flatten)]
        response: ResponseArgs,
    },
    Test {
        name: String,
        #[command(flatten)]
        response: ResponseArgs,
    },
}

/// The `[response]` settings (backend, allow list, ban time) come from the server's
/// configuration file when one is given.
#[derive(Debug, Args)]
pub struct ResponseArgs {
    /// The server's configuration file (its `[response]` and `[server] data`).
    #[arg(long, short, env = "TANSA_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// Ban an address, a prefix (`203.0.113.0/24`, `2001:db8::/48`) or an AS (`AS64500`, with
    /// an ASN database).
    Add {
        value: String,
        /// How long (`90s`, `4h`, `7d`); default: the ban time, escalated for repeat offenders.
        #[arg(long = "for", conflicts_with = "permanent")]
        duration: Option<String>,
        /// Until revoked.
        #[arg(long)]
        permanent: bool,
        #[arg(long, default_value = "")]
        reason: String,
        /// Record it without enforcing it.
        #[arg(long)]
        simulate: bool,
        #[command(flatten)]
        response: ResponseArgs,
    },
    /// Lift the bans in force on a value (as it was banned) or with a decision id.
    Del {
        target: String,
        #[command(flatten)]
        response: ResponseArgs,
    },
    /// The decisions in force (`--all`: also ended, revoked, refused and simulated ones of
    /// the remembered period).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        response: ResponseArgs,
    },
    /// Ban every address or prefix of a file (one per line, `#` comments): a block list.
    Import {
        file: PathBuf,
        #[arg(long = "for", conflicts_with = "permanent")]
        duration: Option<String>,
        #[arg(long)]
        permanent: bool,
        #[arg(long, default_value = "import")]
        reason: String,
        #[command(flatten)]
        response: ResponseArgs,
    },
    /// Bring the firewall to the decisions in force.
    Apply {
        #[command(flatten)]
        response: ResponseArgs,
    },
    /// Remove Tansa's firewall state (the decisions stay in the store).
    Uninstall {
        #[command(flatten)]
        response: ResponseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BouncersCommand {
    Add { name: String },
    List,
    Del { name: String },
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's configuration file (TOML, `version = 1`).
    #[arg(long, short, env = "TANSA_AGENT_CONFIG")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the authority (ca.pem, ca.key, crl.pem) in the CA directory.
    Init {
        #[command(flatten)]
        dir: CaDir,
        /// Its name (the subject of ca.pem).
        #[arg(long, default_value = "Tansa CA")]
        name: String,
    },
    /// Issue a certificate: issued/NAME.pem and issued/NAME.key.
    Issue {
        #[command(flatten)]
        dir: CaDir,
        /// The agent's or listener's name (its certificate's subject; agents' `agent.id`).
        name: String,
        /// A listener's certificate (server authentication) instead of a client's.
        #[arg(long)]
        server: bool,
        /// DNS names and addresses of a listener (repeatable; default localhost, 127.0.0.1,
        /// ::1).
        #[arg(long)]
        san: Vec<String>,
        /// Days of validity.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Revoke the certificate of NAME (crl.pem is rewritten).
    Revoke {
        #[command(flatten)]
        dir: CaDir,
        name: String,
    },
    /// The certificates issued.
    List {
        #[command(flatten)]
        dir: CaDir,
    },
}

#[derive(Debug, Args)]
pub struct CaDir {
    /// The CA directory (default DATA/ca).
    #[arg(long = "ca-dir")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML, `version = 1`).
    #[arg(long, short, env = "TANSA_CONFIG")]
    pub config: PathBuf,
    /// Check the configuration and the rules, print what would run, and exit.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT source_ip, count(*) FROM events WHERE outcome = 'failure' GROUP BY 1 ORDER BY 2 DESC LIMIT 10".
    pub query: String,
}

/// The time bounds of `search` and `trace`.
#[derive(Debug, Args)]
pub struct TimeArgs {
    /// Only events of the last DURATION (e.g. 30m, 2h, 7d, 1w).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events at or after this time (RFC 3339, or YYYY-MM-DD[ HH:MM:SS] in UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Only events before this time.
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// What to trace: an address, a netblock (IPv4 CIDR), an ASN, user:NAME, host:NAME, or an
    /// alert id.
    pub entity: String,
    #[command(flatten)]
    pub time: TimeArgs,
    /// Hops followed from host to host.
    #[arg(long, default_value_t = 3)]
    pub depth: u32,
    /// Host inventory (`[hosts.NAME] addresses = [...]`, `timezone = "..."`); default
    /// DATA/hosts.toml when it exists.
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// Minutes without activity after which a session with no logged end is over.
    #[arg(long, default_value_t = 30)]
    pub idle_minutes: i64,
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Ask RDAP who holds the attacker's addresses that the cache has no answer for (see
    /// `tansa whois`), so that the trace names their abuse contacts.
    #[arg(long)]
    pub whois: bool,
    /// Where RDAP bootstrap files come from (as for `tansa whois --bootstrap`).
    #[arg(long, env = "TANSA_RDAP_BOOTSTRAP", default_value = tansa_intel::rdap::IANA_BOOTSTRAP)]
    pub bootstrap: String,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    /// Indicator feeds, as for `analyze --intel` (PATH or PATH#name=N,column=C,…).
    #[arg(long, required = true)]
    pub intel: Vec<String>,
    #[command(flatten)]
    pub time: TimeArgs,
}

#[derive(Debug, Args)]
pub struct WhoisArgs {
    /// Addresses (IPv4, IPv6) and AS numbers (AS64500).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Answer from the cache only, however old; never use the network.
    #[arg(long, conflicts_with = "refresh")]
    pub offline: bool,
    /// Ask the registry even when the cache has a fresh answer.
    #[arg(long)]
    pub refresh: bool,
    /// Cached answers older than this are fetched again (30m, 12h, 7d, 2w).
    #[arg(long, default_value = "7d")]
    pub max_age: String,
    /// Where the RDAP bootstrap files (ipv4.json, ipv6.json, asn.json) come from: a URL (cached
    /// in the store for 30 days) or a directory. Without them, the address blocks built into
    /// Tansa name the registry.
    #[arg(long, env = "TANSA_RDAP_BOOTSTRAP", default_value = tansa_intel::rdap::IANA_BOOTSTRAP)]
    pub bootstrap: String,
    /// Seconds to wait for each registry.
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query (Lucene/Kibana syntax; field names are ECS names such as source.ip, user.name,
    /// url.original, event.outcome, host.name).
    #[arg(default_value = "")]
    pub query: String,
    #[command(flatten)]
    pub time: TimeArgs,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Newest first.
    #[arg(long)]
    pub newest: bool,
}

/// How long events stay hot, and when they are deleted.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Days in the database before a day moves to Parquet in the cold directory.
    #[arg(long, default_value_t = 30, env = "TANSA_HOT_DAYS")]
    pub hot_days: u32,
    /// Days after which events are deleted (counted from the event and from its arrival).
    #[arg(long, default_value_t = 365, env = "TANSA_DELETE_DAYS")]
    pub delete_days: u32,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Move days past the hot period to the cold tier and delete days past the deletion age
    /// (`analyze` does this after storing).
    Run {
        #[command(flatten)]
        retention: RetentionArgs,
        /// The date to apply the policy as of (YYYY-MM-DD, UTC); default today.
        #[arg(long)]
        today: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load Sigma rules and report each one: loaded, unsupported (why), or error (where).
    Check(RulesCheckArgs),
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// Rule files or directories (searched recursively for .yml/.yaml).
    #[arg(required_unless_present = "crs")]
    pub paths: Vec<PathBuf>,
    /// Also (or only) check a directory of ModSecurity rule files.
    #[command(flatten)]
    pub crs: CrsArgs,
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
    /// Join multi-line records into one event: `java`/`timestamp` (a record starts with a
    /// timestamp), `python`, `php`, `go`, `postgres` (continuation lines indented),
    /// `mysql-slow`, `modsec`, or `regex:EXPR` (lines matching EXPR start a record); for some
    /// files only as `GLOB=PRESET` (`'*/app/*.log=java'`). Repeatable: the first that
    /// applies to a file is used.
    #[arg(long)]
    pub multiline: Vec<String>,
    /// Reference time for yearless timestamps (RFC 3339); default: now.
    #[arg(long, hide = true)]
    pub now: Option<String>,
    #[command(flatten)]
    pub enrich: EnrichArgs,
}

/// GeoIP databases and threat-intelligence feeds.
#[derive(Debug, Args)]
pub struct EnrichArgs {
    /// MaxMind DB files or directories (GeoLite2/GeoIP2 City, Country, ASN, Anonymous-IP;
    /// DB-IP). Default: the .mmdb files in /usr/share/GeoIP, /var/lib/GeoIP,
    /// /usr/local/share/GeoIP.
    #[arg(long, env = "TANSA_GEOIP", value_delimiter = ':')]
    pub geoip: Vec<PathBuf>,
    /// Do not look for GeoIP databases in the usual places.
    #[arg(long)]
    pub no_geoip: bool,
    /// Indicator feeds: files or directories (plain lists, CSV, Spamhaus DROP, TOR exit list,
    /// STIX 2.1, MISP, OTX), each as PATH or PATH#name=N,column=C,confidence=0-100,flag=F.
    #[arg(long)]
    pub intel: Vec<String>,
    /// No enrichment at all (to measure its cost).
    #[arg(long, hide = true)]
    pub no_enrich: bool,
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
    /// Store the events but keep no evidence log of the lines (DATA/evidence; `tansa verify`).
    #[arg(long)]
    pub no_evidence: bool,
    /// Parse and detect only; store nothing.
    #[arg(long)]
    pub no_store: bool,
    /// Print only the summary, not the alert table.
    #[arg(long)]
    pub quiet: bool,
    /// Sigma rule files or directories to run beside the built-in rules (repeatable).
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// Suppressions, allow lists and rules in simulation (TOML; repeatable): events a
    /// suppression matches are not counted for its rules.
    #[arg(long, value_name = "FILE")]
    pub suppress: Vec<PathBuf>,
    #[command(flatten)]
    pub crs: CrsArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// ModSecurity rules (the OWASP Core Rule Set) run over access-log requests.
#[derive(Debug, Args, Clone, Default)]
pub struct CrsArgs {
    /// A directory of ModSecurity rule files (`*.conf` and their `.data` files), e.g. the
    /// OWASP CRS `rules/` directory: each rule that matches a request is an alert `crs:ID`.
    #[arg(long, value_name = "DIR")]
    pub crs: Option<PathBuf>,
    /// The CRS paranoia level (1–4): rules tagged with a higher level do not run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub paranoia: u8,
}
