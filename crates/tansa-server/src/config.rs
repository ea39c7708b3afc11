//! The server's configuration file (`tansa serve --config tansa.toml`): strict (an unknown
//! key is an error with its line), versioned (`version = 1`), paths relative to the file.
//! `examples/tansa.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The only version this build reads.
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file (1).
    pub version: u32,
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub detection: Detection,
    /// Files to follow.
    #[serde(default, rename = "file")]
    pub files: Vec<FileSource>,
    /// Syslog listeners.
    #[serde(default)]
    pub syslog: Vec<SyslogSource>,
    /// The listener of `tansa agent` connections (mutual TLS).
    pub agents: Option<Agents>,
    /// The systemd journal (through `journalctl`).
    #[serde(default)]
    pub journal: Vec<crate::journal::JournalSource>,
    /// Active response: bans from alerts (none: no decisions are made).
    pub response: Option<tansa_respond::Config>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    pub listen: SocketAddr,
    /// The server's certificate and key (PEM; `tansa ca issue --server NAME`).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Agents must show a certificate of this CA (`tansa ca init`); its name is the agent's id.
    pub client_ca: PathBuf,
    /// Revoked agents (`tansa ca revoke NAME` rewrites it; read at start).
    pub crl: Option<PathBuf>,
    #[serde(default = "max_connections")]
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Data directory (the store); default: the `--data` of the command line.
    pub data: Option<PathBuf>,
    /// Directory of the cold tier; default DATA/cold.
    pub cold: Option<PathBuf>,
    /// `agent.id` of the lines this server reads itself (default: the machine's host name).
    pub collector: Option<String>,
    /// Zone of timestamps written without one (default: the system's).
    pub timezone: Option<String>,
    /// Address of `/health`, `/metrics` and the API (none: no HTTP).
    pub http: Option<SocketAddr>,
    /// The API over TLS: the server's certificate and key (PEM), and the CA that issued it
    /// (given to the command line through DATA/serve.json).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    /// File holding the API token (created with a random token when missing); default
    /// DATA/api-token. `/health` and `/metrics` need none.
    pub token_file: Option<PathBuf>,
    /// Milliseconds between commits to the store (events and checkpoints together).
    pub commit_ms: u64,
    /// Milliseconds between polls of followed files (changes reported by inotify wake the
    /// poll earlier).
    pub poll_ms: u64,
    /// Batches of lines queued between the sources and the parser (back-pressure beyond).
    pub queue: usize,
    /// UDP syslog datagrams that find the queue full wait in a disk spool of at most this
    /// many MiB per listener (DATA/spool); beyond, they are dropped, counted and alerted.
    pub udp_spool_mb: u64,
    /// A stream (file instance, agent file, UDP sender) without a line for this many
    /// seconds is let go (its parser freed); it goes on from its offset when lines come.
    pub stream_idle_s: u64,
    /// Alerts whose last event is older than this many seconds (in event time) and that no
    /// entity holds open are dropped from memory (they are in the store).
    pub keep_alerts_s: u64,
    /// A host whose clock is off by more than this many seconds (its event times against
    /// the times its lines arrive) raises an alert; 0: not watched.
    pub clock_skew_s: u64,
    /// Memory the store (DuckDB) may use for its caches, MiB.
    pub store_memory_mb: u64,
    /// Keep every line in the evidence log (hash-chained, signed segments; `tansa verify`).
    pub evidence: bool,
    /// Where the evidence log lives (default DATA/evidence).
    pub evidence_dir: Option<PathBuf>,
    /// Sealed segments are copied here too (another disk, a WORM or append-only mount).
    pub evidence_copy: Option<PathBuf>,
    /// A segment is sealed at this size (MiB) or age (seconds), whichever comes first.
    pub evidence_segment_mb: u64,
    pub evidence_seal_s: u64,
    /// Compress segments with zstd once sealed (`zstd -d` gives the sealed bytes back).
    pub evidence_compress: bool,
    /// File integrity monitoring: a baseline at the first start (unless one exists), then a
    /// check every `fim_interval_s`; changes go through detection (DATA/fim/*.log are
    /// followed like any log).
    pub fim: bool,
    /// What FIM watches (default: accounts, sudoers, SSH, cron, systemd units, loader and PAM
    /// configuration, /usr/bin, /usr/sbin, every authorized_keys, and `web_root`).
    pub fim_paths: Vec<PathBuf>,
    pub fim_interval_s: u64,
    /// The web root (FIM watches it for web shells).
    pub web_root: Option<PathBuf>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            data: None,
            cold: None,
            collector: None,
            timezone: None,
            http: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            token_file: None,
            commit_ms: 1000,
            poll_ms: 250,
            queue: 64,
            udp_spool_mb: 256,
            stream_idle_s: 600,
            keep_alerts_s: 3600,
            clock_skew_s: 120,
            store_memory_mb: 512,
            evidence: true,
            evidence_dir: None,
            evidence_copy: None,
            evidence_segment_mb: 64,
            evidence_seal_s: 3600,
            evidence_compress: true,
            fim: false,
            fim_paths: Vec::new(),
            fim_interval_s: 300,
            web_root: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Detection {
    /// Sigma rule files or directories, loaded beside the built-in rules.
    pub rules: Vec<PathBuf>,
    /// Suppression files (allow lists, suppressions, rules in simulation; see
    /// `tansa_detect::suppress`).
    pub suppress: Vec<PathBuf>,
    /// A directory of ModSecurity rule files (the OWASP CRS `rules/`), run over access-log
    /// requests (`tansa_detect::crs`).
    pub crs: Option<PathBuf>,
    /// The CRS paranoia level, 1–4 (0: 1).
    pub crs_paranoia: u8,
    /// Indicator feeds (`PATH` or `PATH#name=N,…`, as for `tansa analyze --intel`).
    pub intel: Vec<String>,
    /// GeoIP/ASN databases (MaxMind format); none: the usual places are searched.
    pub geoip: Vec<PathBuf>,
    /// No GeoIP lookups at all.
    pub no_geoip: bool,
}

/// Where to start a file seen for the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Its first line (history is analysed too).
    #[default]
    Beginning,
    /// Its end (only lines written from now on).
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub path: PathBuf,
    /// A format name of `tansa parse --log-format` (default auto).
    #[serde(default = "auto")]
    pub format: String,
    /// `host.name` of its lines (default: the host named in each line, else this server).
    pub host: Option<String>,
    /// Zone of its timestamps written without one (default: the server's).
    pub timezone: Option<String>,
    #[serde(default)]
    pub start: Start,
    /// Join multi-line records: `java`, `python`, `php`, `go`, `postgres` (continuations
    /// indented), `timestamp` (records start with a timestamp), `mysql-slow`, `regex:EXPR`.
    pub multiline: Option<String>,
    /// Bounds of a record: lines, bytes, and milliseconds without a line before a pending
    /// record is emitted (default 500, 65536, 2000).
    pub multiline_max_lines: Option<usize>,
    pub multiline_max_bytes: Option<usize>,
    pub multiline_timeout_ms: Option<u64>,
}

impl FileSource {
    /// The multi-line settings, checked.
    pub fn multiline_spec(&self) -> Result<Option<tansa_parse::multiline::Spec>, String> {
        let Some(m) = &self.multiline else {
            return Ok(None);
        };
        let mut spec = tansa_parse::multiline::Spec::parse(m)?;
        if let Some(n) = self.multiline_max_lines {
            spec.max_lines = n.max(1);
        }
        if let Some(n) = self.multiline_max_bytes {
            spec.max_bytes = n.max(1);
        }
        if let Some(ms) = self.multiline_timeout_ms {
            spec.timeout = ms as i64 * 1_000_000;
        }
        Ok(Some(spec))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Udp,
    Tcp,
    /// RFC 5425: syslog over TLS (needs `cert` and `key`).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSource {
    pub listen: SocketAddr,
    pub protocol: Protocol,
    #[serde(default = "auto")]
    pub format: String,
    /// Connections served at once (TCP); more are refused.
    #[serde(default = "max_connections")]
    pub max_connections: usize,
    /// TLS: the server's certificate chain and key (PEM).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// TLS: clients must show a certificate of this CA (mutual TLS; `tansa ca`).
    pub client_ca: Option<PathBuf>,
    /// TLS: certificates this revocation list names are refused.
    pub crl: Option<PathBuf>,
}

fn auto() -> String {
    "auto".into()
}

fn max_connections() -> usize {
    1000
}

/// Reads a TOML file into `T` (unknown keys are errors with their line).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text, path)
}

fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

impl Config {
    /// Reads and checks a file; relative paths in it are taken from its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path, &base_dir(path))
    }

    /// Parses `text` (named `path` in errors); relative paths are joined to `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = parse_toml(text, path)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if c.version != VERSION {
            return Err(invalid(format!(
                "version = {}: this tansa reads version {VERSION}",
                c.version
            )));
        }
        if c.files.is_empty()
            && c.journal.is_empty()
            && c.syslog.is_empty()
            && c.server.http.is_none()
            && c.agents.is_none()
            && !c.server.fim
        {
            return Err(invalid(
                "no sources: add a [[file]] or a [[syslog]] section, or [server] http for HTTP ingest".into(),
            ));
        }
        let rel = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = lexical(&base.join(&*p));
            }
        };
        for p in [
            &mut c.server.data,
            &mut c.server.cold,
            &mut c.server.token_file,
            &mut c.server.evidence_dir,
            &mut c.server.evidence_copy,
            &mut c.server.tls_cert,
            &mut c.server.tls_key,
            &mut c.server.tls_ca,
        ]
        .into_iter()
        .flatten()
        {
            rel(p);
        }
        c.detection.rules.iter_mut().for_each(rel);
        c.detection.suppress.iter_mut().for_each(rel);
        c.detection.crs.iter_mut().for_each(rel);
        c.detection.geoip.iter_mut().for_each(rel);
        for f in &mut c.files {
            rel(&mut f.path);
        }
        if let Some(r) = &mut c.response {
            if let Some(d) = &mut r.bin_dir {
                rel(d);
            }
            tansa_respond::policy::Policy::new(r.clone()).map_err(|e| invalid(e.to_string()))?;
        }
        if c.server.tls_cert.is_some() != c.server.tls_key.is_some() {
            return Err(invalid("[server] tls_cert and tls_key go together".into()));
        }
        if let Some(a) = &mut c.agents {
            for p in [&mut a.cert, &mut a.key, &mut a.client_ca] {
                rel(p);
            }
            if let Some(p) = &mut a.crl {
                rel(p);
            }
        }
        for j in &mut c.journal {
            if let Some(d) = &mut j.directory {
                rel(d);
            }
        }
        for s in &mut c.syslog {
            for p in [&mut s.cert, &mut s.key, &mut s.client_ca, &mut s.crl]
                .into_iter()
                .flatten()
            {
                rel(p);
            }
            let tls = s.protocol == Protocol::Tls;
            if tls && (s.cert.is_none() || s.key.is_none()) {
                return Err(invalid(format!(
                    "[[syslog]] {}: protocol = \"tls\" needs cert and key",
                    s.listen
                )));
            }
            if !tls && (s.cert.is_some() || s.key.is_some() || s.client_ca.is_some()) {
                return Err(invalid(format!(
                    "[[syslog]] {}: cert, key and client_ca are for protocol = \"tls\"",
                    s.listen
                )));
            }
            if s.crl.is_some() && s.client_ca.is_none() {
                return Err(invalid(format!(
                    "[[syslog]] {}: crl needs client_ca",
                    s.listen
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &c.files {
            if !seen.insert(&f.path) {
                return Err(invalid(format!(
                    "[[file]] {} is listed twice",
                    f.path.display()
                )));
            }
        }
        for (i, s) in c.syslog.iter().enumerate() {
            if c.syslog[..i]
                .iter()
                .any(|o| o.listen == s.listen && o.protocol == s.protocol && s.listen.port() != 0)
            {
                return Err(invalid(format!("[[syslog]] {} is listed twice", s.listen)));
            }
        }
        for fmt in c
            .files
            .iter()
            .map(|f| &f.format)
            .chain(c.syslog.iter().map(|s| &s.format))
        {
            fmt.parse::<tansa_parse::Format>()
                .map_err(|e| invalid(format!("format = {fmt:?}: {e}")))?;
        }
        for tz in c
            .files
            .iter()
            .filter_map(|f| f.timezone.as_ref())
            .chain(c.server.timezone.as_ref())
        {
            jiff::tz::TimeZone::get(tz)
                .map_err(|_| invalid(format!("timezone = {tz:?}: unknown time zone")))?;
        }
        if c.server.commit_ms == 0 || c.server.poll_ms == 0 || c.server.queue == 0 {
            return Err(invalid(
                "[server] commit_ms, poll_ms and queue must be above 0".into(),
            ));
        }
        Ok(c)
    }
}

/// The absolute directory of a configuration file: its relative paths start there, whatever
/// directory the program was started from.
pub fn base_dir(file: &Path) -> PathBuf {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    lexical(&std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()))
}

/// `a/b/../c` as `a/c` (without asking the file system: followed files may not exist yet).
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(t, Path::new("tansa.toml"), Path::new("/etc/tansa"))
    }

    #[test]
    fn the_example_parses_and_paths_are_taken_from_the_file() {
        let text = include_str!("../../../examples/tansa.toml");
        let c = Config::parse(text, Path::new("tansa.toml"), Path::new("/etc/tansa")).unwrap();
        assert_eq!(c.version, 1);
        assert!(!c.files.is_empty() && !c.syslog.is_empty());
        let c = parse("version = 1\n[server]\ndata = \"../data\"\n[[file]]\npath = \"./logs/auth.log\"\nstart = \"end\"\n").unwrap();
        assert_eq!(c.files[0].path, Path::new("/etc/tansa/logs/auth.log"));
        assert_eq!(c.server.data.as_deref(), Some(Path::new("/etc/data")));
        assert_eq!(c.files[0].start, Start::End);
        assert_eq!(c.files[0].format, "auto");
        assert_eq!(c.server.commit_ms, 1000);
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let e = parse("version = 1\n[[file]]\npath = \"a\"\nfromat = \"nginx\"\n").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("tansa.toml") && m.contains("line 4") && m.contains("fromat"),
            "{m}"
        );
        let e = parse("version = 2\n[[file]]\npath = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("reads version 1"), "{e}");
        let e = parse("[[file]]\npath = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = parse("version = 1\n").unwrap_err();
        assert!(e.to_string().contains("no sources"), "{e}");
        let e = parse("version = 1\n[[file]]\npath = \"a\"\nformat = \"nginxx\"\n").unwrap_err();
        assert!(e.to_string().contains("nginxx"), "{e}");
        let e = parse("version = 1\n[[syslog]]\nlisten = \"127.0.0.1:514\"\nprotocol = \"tls\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("needs cert and key"), "{e}");
        let e = parse("version = 1\n[[syslog]]\nlisten = \"127.0.0.1:514\"\nprotocol = \"tcp\"\ncert = \"a\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("are for protocol"), "{e}");
        let e = parse("version = 1\n[[syslog]]\nlisten = \"127.0.0.1:514\"\nprotocol = \"ssl\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("ssl"), "{e}");
        let e = parse("version = 1\n[server]\ntimezone = \"Mars/Base\"\n[[file]]\npath = \"a\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("Mars/Base"), "{e}");
        let e = parse("version = 1\n[[file]]\npath = \"a\"\n[[file]]\npath = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
