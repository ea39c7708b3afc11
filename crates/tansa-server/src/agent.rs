//! `tansa agent --config agent.toml`: ships the files of one host to a server over mutual TLS.
//!
//! ```text
//!  files ─ tail threads ─► disk spool (segments) ─► sender ─ mTLS ─► server (commits, answers)
//!          resume state: tail.json                   cursor: sent.json
//! ```
//!
//! Every line read is appended to the spool first (and the tail offsets saved after it; a new
//! file instance is saved before its first line, see [`spool_polled`]), so
//! the agent keeps reading while the server is unreachable and replays the spool in order when
//! it returns; a full spool pauses reading (the files wait, nothing is dropped). The sender
//! forgets a batch only once the server answers that it is committed; a batch sent again
//! after a crash or a lost answer is de-duplicated by offset on the server: every line stored
//! once.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tansa_collect::tail::{Identity, Resume, TailEvent, Tailer};

use crate::config::{ConfigError, Start};
use crate::spool::{read_batch, segment_path, segments, spooled_bytes, Cursor, SpoolWriter};
use crate::wire;
use crate::ServeError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub version: u32,
    pub agent: AgentSection,
    #[serde(default, rename = "file")]
    pub files: Vec<AgentFile>,
    /// The systemd journal (as `[[journal]]` of the server).
    #[serde(default)]
    pub journal: Vec<crate::journal::JournalSource>,
    /// Ban sharing: the server's decisions enforced here, with this backend and allow list
    /// (its alert matrix and hooks are not used: the server decides).
    pub response: Option<tansa_respond::Config>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The server's agents listener (`[agents] listen` of its configuration).
    pub server: String,
    /// The name in the server's certificate (default: the host part of `server`).
    pub server_name: Option<String>,
    /// The CA of `tansa ca`, this agent's certificate and key (`tansa ca issue NAME`).
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Directory of the spool and the agent's state.
    pub spool: PathBuf,
    /// Reading pauses while the spool holds this many MiB not yet acknowledged.
    #[serde(default = "spool_max_mb")]
    pub spool_max_mb: u64,
    /// Lines per batch at most.
    #[serde(default = "batch_lines")]
    pub batch_lines: usize,
    #[serde(default = "poll_ms")]
    pub poll_ms: u64,
    /// `host.name` of the lines (default: this machine's name).
    pub host: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub path: PathBuf,
    pub host: Option<String>,
    #[serde(default)]
    pub start: Start,
}

fn spool_max_mb() -> u64 {
    1024
}
fn batch_lines() -> usize {
    20_000
}
fn poll_ms() -> u64 {
    250
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let mut c: AgentConfig = crate::config::read_toml(path)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        if c.version != crate::config::VERSION {
            return Err(invalid(format!(
                "version = {}: this tansa reads version {}",
                c.version,
                crate::config::VERSION
            )));
        }
        if c.files.is_empty() && c.journal.is_empty() && c.response.is_none() {
            return Err(invalid(
                "nothing to do: add a [[file]], a [[journal]] or a [response] (ban sharing)".into(),
            ));
        }
        if let Some(r) = &mut c.response {
            if let Some(d) = &mut r.bin_dir {
                if d.is_relative() {
                    *d = crate::config::base_dir(path).join(&*d);
                }
            }
            tansa_respond::policy::Policy::new(r.clone())
                .map_err(|e| invalid(format!("[response] {e}")))?;
        }
        if c.agent.batch_lines == 0 || c.agent.poll_ms == 0 {
            return Err(invalid("batch_lines and poll_ms must be above 0".into()));
        }
        let base = crate::config::base_dir(path);
        let rel = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let a = &mut c.agent;
        for p in [&mut a.ca, &mut a.cert, &mut a.key, &mut a.spool] {
            rel(p);
        }
        for f in &mut c.files {
            rel(&mut f.path);
        }
        for j in &mut c.journal {
            if let Some(d) = &mut j.directory {
                rel(d);
            }
        }
        Ok(c)
    }
}

/// A tail instance as saved in `tail.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    fingerprint: u64,
    path: PathBuf,
    dev: u64,
    ino: u64,
    head_len: u32,
    head_hash: u64,
    /// Lines before this offset are in the spool.
    offset: u64,
}

fn save_json(path: &Path, v: &impl Serialize) -> std::io::Result<()> {
    crate::files::write_atomic(path, serde_json::to_string(v)?.as_bytes(), 0o644)
}

fn load_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> T {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// How often an agent sends its counters to the server (and at each connection).
const REPORT: Duration = Duration::from_secs(10);

/// Counters of a running agent.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub read: AtomicU64,
    pub sent: AtomicU64,
    pub batches: AtomicU64,
    pub reconnects: AtomicU64,
    /// Bytes in the spool not yet acknowledged.
    pub spooled: AtomicU64,
}

impl AgentStats {
    /// The counters as the server shows them.
    pub fn report(&self) -> crate::live::AgentReport {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        crate::live::AgentReport {
            read: n(&self.read),
            sent: n(&self.sent),
            batches: n(&self.batches),
            reconnects: n(&self.reconnects),
            spooled: n(&self.spooled),
        }
    }
}

/// Where the tail threads put what they read (a trait so that a test can look at the
/// recorded state at each append).
trait Spool {
    fn append(
        &mut self,
        id: u64,
        path: &str,
        host: &str,
        lines: &[(Bytes, u64)],
        read: i64,
    ) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Spool for SpoolWriter {
    fn append(
        &mut self,
        id: u64,
        path: &str,
        host: &str,
        lines: &[(Bytes, u64)],
        read: i64,
    ) -> std::io::Result<()> {
        SpoolWriter::append(self, id, path, host, lines, read)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        SpoolWriter::sync(self)
    }
}

/// Saves the tail state: the lines spooled so far are on disk before the offsets that say so.
fn record(w: &mut dyn Spool, sv: &mut Vec<Saved>, state: &Path) -> std::io::Result<()> {
    w.sync()?;
    // instances no longer followed (rotated away and read) are kept a while
    let keep = sv.len().saturating_sub(64);
    sv.drain(..keep);
    save_json(state, &*sv)
}

/// Spools one poll's events of the file `origin` (path, host) and records the offsets;
/// returns the lines and spool bytes added.
///
/// An instance seen for the first time is recorded in `state` before any of its lines reach
/// the spool. Its fingerprint is new (a restart cannot derive it again), so lines spooled
/// under it by a run killed before recording it would be read again after the restart under
/// another fingerprint, and the server, which de-duplicates by fingerprint and offset, would
/// store them twice.
fn spool_polled(
    events: &mut Vec<TailEvent>,
    w: &mut dyn Spool,
    sv: &mut Vec<Saved>,
    state: &Path,
    origin: (&str, &str),
    read: i64,
) -> std::io::Result<(u64, u64)> {
    let (mut lines_n, mut bytes_n) = (0u64, 0u64);
    let mut done = 0;
    let r = events.iter().try_for_each(|ev| {
        match ev {
            TailEvent::Opened {
                fingerprint,
                path,
                identity,
            } => {
                let known = sv.iter().position(|s| s.fingerprint == *fingerprint);
                let entry = Saved {
                    fingerprint: *fingerprint,
                    path: path.clone(),
                    dev: identity.dev,
                    ino: identity.ino,
                    head_len: identity.head_len,
                    head_hash: identity.head_hash,
                    offset: known.map_or(0, |i| sv[i].offset),
                };
                if let Some(i) = known {
                    sv.remove(i);
                }
                sv.push(entry);
                if known.is_none() {
                    record(w, sv, state)?;
                }
            }
            TailEvent::Lines {
                fingerprint,
                lines,
                next,
            } => {
                w.append(*fingerprint, origin.0, origin.1, lines, read)?;
                lines_n += lines.len() as u64;
                bytes_n += lines.iter().map(|(l, _)| spooled_bytes(l)).sum::<u64>();
                if let Some(s) = sv.iter_mut().find(|s| s.fingerprint == *fingerprint) {
                    s.offset = *next;
                }
            }
        }
        done += 1;
        std::io::Result::Ok(())
    });
    // what failed stays for the next try (the tailer has moved past it)
    events.drain(..done);
    r?;
    record(w, sv, state)?;
    Ok((lines_n, bytes_n))
}

/// Where an agent's journal source stands: the cursor of the last entry spooled and the
/// offset the next entry gets (offsets count the bytes of the lines, like a file's, so that
/// the server de-duplicates a re-read entry: after a crash the entries after the saved cursor
/// get the same offsets again).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JournalState {
    cursor: Option<String>,
    offset: u64,
}

/// Spools the journal's entries until `stop`.
fn ship_journal(
    j: &crate::journal::JournalSource,
    host: &str,
    state_path: &Path,
    writer: &std::sync::Mutex<SpoolWriter>,
    stop: &AtomicBool,
    stats: &AgentStats,
    max_spool: u64,
) {
    let name = crate::journal::name(j);
    let cursor = || load_json::<JournalState>(state_path).cursor;
    crate::journal::follow_entries(j, stop, &cursor, &mut |batch| {
        let Some(entries) = batch else {
            return true;
        };
        while stats.spooled.load(Ordering::Relaxed) >= max_spool {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        // the offsets continue from what the state file says (entries after its cursor)
        let mut st: JournalState = load_json(state_path);
        let read = tansa_event::now_nanos();
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        for (seqid, lines, cursor) in crate::journal::group(entries, |e| {
            let o = st.offset;
            st.offset += e.line.len() as u64 + 1;
            o
        }) {
            let id = tansa_collect::fnv(&[name.as_bytes(), seqid.as_bytes()]);
            if w.append(id, &name, host, &lines, read).is_err() {
                return false;
            }
            stats.read.fetch_add(lines.len() as u64, Ordering::Relaxed);
            let bytes: u64 = lines.iter().map(|(l, _)| spooled_bytes(l)).sum();
            stats.spooled.fetch_add(bytes, Ordering::Relaxed);
            st.cursor = Some(cursor);
        }
        // the entries are on disk before the cursor that says so
        w.sync().is_ok() && save_json(state_path, &st).is_ok()
    });
}

/// A TLS connection to the server.
type Link = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client_config(a: &AgentSection) -> Result<Arc<rustls::ClientConfig>, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad =
        |p: &Path, e: &dyn std::fmt::Display| ServeError::Config(format!("{}: {e}", p.display()));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&a.ca).map_err(|e| bad(&a.ca, &e))? {
        roots
            .add(c.map_err(|e| bad(&a.ca, &e))?)
            .map_err(|e| bad(&a.ca, &e))?;
    }
    let chain = CertificateDer::pem_file_iter(&a.cert)
        .map_err(|e| bad(&a.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&a.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&a.key).map_err(|e| bad(&a.key, &e))?;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServeError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| bad(&a.cert, &e))?;
    Ok(Arc::new(cfg))
}

fn connect(a: &AgentSection, tls: &Arc<rustls::ClientConfig>) -> Result<Link, String> {
    use std::net::ToSocketAddrs;
    let addr = a
        .server
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let name = a.server_name.clone().unwrap_or_else(|| {
        a.server
            .rsplit_once(':')
            .map_or(a.server.clone(), |x| x.0.to_owned())
    });
    let name = rustls::pki_types::ServerName::try_from(name.trim_matches(['[', ']']).to_owned())
        .map_err(|e| e.to_string())?;
    let mut sock =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    sock.set_write_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let _ = sock.set_nodelay(true);
    let mut conn = rustls::ClientConnection::new(tls.clone(), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| format!("TLS: {e}"))?;
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// Batches sent before the first answer is awaited: the server parses one while it commits
/// another.
pub const IN_FLIGHT: usize = 4;

/// Reads the server's next answer: the sequence number it acknowledges.
fn answer(link: &mut Link) -> Result<u64, String> {
    let answer = wire::read_frame(link)
        .map_err(|e| e.to_string())?
        .ok_or("the server closed the connection")?;
    let v: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
    if let Some(e) = v["error"].as_str() {
        return Err(format!("the server: {e}"));
    }
    v["seq"]
        .as_u64()
        .ok_or_else(|| format!("unexpected answer {v}"))
}

/// Ban sharing: a link of its own to the server, the decisions it sends enforced here. The
/// bans stay in force (with their timeouts) while the server is unreachable; a reconnection
/// brings the whole set again.
fn follow_decisions(
    a: &AgentSection,
    tls: &Arc<rustls::ClientConfig>,
    mut bans: tansa_respond::share::SharedBans,
    stop: &AtomicBool,
    on_event: &(dyn Fn(&str) + Send + Sync),
) {
    let mut backoff = Duration::from_millis(200);
    let mut last_error = String::new();
    while !stop.load(Ordering::Relaxed) {
        let res = (|| -> Result<(), String> {
            let mut link = connect(a, tls)?;
            wire::write_frame(&mut link, br#"{"subscribe":"decisions"}"#)
                .map_err(|e| e.to_string())?;
            on_event(&format!(
                "ban sharing: following the decisions of {} ({})",
                a.server,
                bans.firewall_name()
            ));
            while !stop.load(Ordering::Relaxed) {
                // an update or a heartbeat every 30 s; silence past the read timeout
                // (120 s) is a dead link
                let frame = wire::read_frame(&mut link)
                    .map_err(|e| e.to_string())?
                    .ok_or("the server closed the connection")?;
                let v: serde_json::Value =
                    serde_json::from_slice(&frame).map_err(|e| e.to_string())?;
                if let Some(e) = v["error"].as_str() {
                    return Err(format!("the server: {e}"));
                }
                let u: tansa_respond::share::Update =
                    serde_json::from_value(v["decisions"].clone()).map_err(|e| e.to_string())?;
                if u.is_empty() {
                    continue;
                }
                let applied = bans.apply(u, tansa_event::now_nanos());
                for r in &applied.refused {
                    on_event(&format!("ban sharing: refused {r}"));
                }
                let fw = match &applied.sync {
                    None => String::new(),
                    Some(Ok(_)) => format!(", {} in step", bans.firewall_name()),
                    Some(Err(e)) => format!(", {} NOT APPLIED: {e}", bans.firewall_name()),
                };
                on_event(&format!(
                    "ban sharing: {} added, {} lifted, {} in force{fw}",
                    applied.added, applied.removed, applied.in_force
                ));
            }
            Ok(())
        })();
        match res {
            Ok(()) => break,
            Err(e) => {
                // one report per distinct failure, not one per retry
                if e != last_error {
                    on_event(&format!("ban sharing: {}: {e}; retrying", a.server));
                    last_error = e;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A batch sent and not yet acknowledged.
struct Sent {
    seq: u64,
    after: Cursor,
    lines: u64,
    bytes: u64,
}

/// Runs until `stop`; `on_event` hears of connections and their failures.
pub fn run(
    c: AgentConfig,
    stop: Arc<AtomicBool>,
    stats: Arc<AgentStats>,
    on_event: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<(), ServeError> {
    let a = c.agent.clone();
    let tls = client_config(&a)?;
    let spool_dir = a.spool.join("spool");
    let state = a.spool.join("tail.json");
    let sent_path = a.spool.join("sent.json");
    let writer = SpoolWriter::open(&spool_dir).map_err(|e| ServeError::Io {
        path: spool_dir.clone(),
        source: e,
    })?;
    let writer = Arc::new(std::sync::Mutex::new(writer));
    let saved: Vec<Saved> = load_json(&state);
    let saved = Arc::new(std::sync::Mutex::new(saved));
    let host = a
        .host
        .clone()
        .or_else(crate::files::hostname)
        .unwrap_or_else(|| "localhost".into());
    let max_spool = a.spool_max_mb << 20;
    let mut cursor: Cursor = load_json(&sent_path);
    if cursor.segment == 0 {
        cursor.segment = segments(&spool_dir).first().copied().unwrap_or(1);
    }
    // what the spool still holds from an earlier run
    let held: u64 = segments(&spool_dir)
        .into_iter()
        .filter(|&s| s >= cursor.segment)
        .filter_map(|s| std::fs::metadata(segment_path(&spool_dir, s)).ok())
        .map(|m| m.len())
        .sum();
    stats
        .spooled
        .store(held.saturating_sub(cursor.pos), Ordering::Relaxed);
    let mut threads = Vec::new();
    for f in &c.files {
        let resume: Vec<Resume> = saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.path == f.path)
            .map(|s| Resume {
                fingerprint: s.fingerprint,
                identity: Identity {
                    dev: s.dev,
                    ino: s.ino,
                    head_len: s.head_len,
                    head_hash: s.head_hash,
                },
                offset: s.offset,
            })
            .collect();
        let mut tailer = Tailer::new(f.path.clone(), resume, f.start == Start::End);
        let (writer, saved, stop, stats, state) = (
            writer.clone(),
            saved.clone(),
            stop.clone(),
            stats.clone(),
            state.clone(),
        );
        let host = f.host.clone().unwrap_or_else(|| host.clone());
        let path = f.path.to_string_lossy().into_owned();
        let poll = Duration::from_millis(a.poll_ms);
        let on_event = on_event.clone();
        threads.push(std::thread::spawn(move || {
            let mut out = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if stats.spooled.load(Ordering::Relaxed) >= max_spool {
                    // the spool is full: the file is the buffer until the server catches up
                    std::thread::sleep(poll);
                    continue;
                }
                if let Err(e) = tailer.poll(&mut out) {
                    on_event(&format!("{path}: {e}"));
                }
                if out.is_empty() {
                    std::thread::sleep(poll);
                    continue;
                }
                let read = tansa_event::now_nanos();
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                let mut sv = saved.lock().unwrap_or_else(|e| e.into_inner());
                let r = spool_polled(&mut out, &mut *w, &mut sv, &state, (&path, &host), read);
                drop(sv);
                drop(w);
                match r {
                    Ok(lines) => {
                        stats.read.fetch_add(lines.0, Ordering::Relaxed);
                        stats.spooled.fetch_add(lines.1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // kept in `out`: spooled at the next try, before anything read later
                        on_event(&format!("spool: {e}"));
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        }));
    }

    for j in &c.journal {
        let (writer, stop, stats) = (writer.clone(), stop.clone(), stats.clone());
        let (j, host, state) = (
            j.clone(),
            host.clone(),
            a.spool.join(format!(
                "journal-{:016x}.json",
                tansa_collect::fnv(&[
                    crate::journal::name(j).as_bytes(),
                    j.units.join(",").as_bytes()
                ])
            )),
        );
        threads.push(std::thread::spawn(move || {
            ship_journal(&j, &host, &state, &writer, &stop, &stats, max_spool)
        }));
    }

    if let Some(rc) = &c.response {
        let policy = tansa_respond::policy::Policy::new(rc.clone())
            .map_err(|e| ServeError::Config(format!("[response] {e}")))?;
        let fw = tansa_respond::build_firewall(&policy)
            .map_err(|e| ServeError::Config(format!("[response] {e}")))?;
        let bans = tansa_respond::share::SharedBans::new(policy, fw);
        let (a, tls, stop, on_event) = (a.clone(), tls.clone(), stop.clone(), on_event.clone());
        // not joined: a link waiting for the next update must not hold up a stop
        std::thread::Builder::new()
            .name("tansa-bans".into())
            .spawn(move || follow_decisions(&a, &tls, bans, &stop, &*on_event))
            .map_err(|source| ServeError::Io {
                path: PathBuf::from("ban sharing"),
                source,
            })?;
    }

    // the sender: up to IN_FLIGHT batches ahead of the answers; the cursor saved is the end
    // of the last acknowledged batch (after a failure everything after it is sent again)
    let mut link: Option<Link> = None;
    let mut backoff = Duration::from_millis(200);
    let mut seq = 0u64;
    let mut stopping_since: Option<std::time::Instant> = None;
    let mut inflight: std::collections::VecDeque<Sent> = Default::default();
    let mut reported: Option<std::time::Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            // a clean stop sends what is spooled for a few seconds more
            let since = *stopping_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        let mut failed = None;
        while inflight.len() < IN_FLIGHT {
            let from = inflight.back().map_or(cursor, |s| s.after);
            let next = read_batch(&spool_dir, from, a.batch_lines).map_err(|e| ServeError::Io {
                path: spool_dir.clone(),
                source: e,
            })?;
            let Some((mut batch, after)) = next else {
                break;
            };
            if link.is_none() {
                match connect(&a, &tls) {
                    Ok(l) => {
                        on_event(&format!("connected to {}", a.server));
                        link = Some(l);
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        failed = Some(format!("{e}; retrying in {backoff:?}"));
                        break;
                    }
                }
            }
            let Some(l) = link.as_mut() else { break };
            // the agent's counters, at each connection and then every REPORT
            if reported.is_none_or(|t| t.elapsed() >= REPORT) {
                reported = Some(std::time::Instant::now());
                let status = serde_json::json!({ "status": stats.report() });
                if let Err(e) = wire::write_frame(l, status.to_string().as_bytes()) {
                    failed = Some(e.to_string());
                    break;
                }
            }
            seq += 1;
            batch.seq = seq;
            if let Err(e) = wire::write_frame(l, &wire::encode(&batch)) {
                failed = Some(e.to_string());
                break;
            }
            inflight.push_back(Sent {
                seq,
                after,
                lines: batch.lines() as u64,
                bytes: batch
                    .streams
                    .iter()
                    .flat_map(|s| s.lines.iter())
                    .map(|l| spooled_bytes(&l.text))
                    .sum(),
            });
        }
        if failed.is_none() {
            if inflight.is_empty() {
                if stopping_since.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let Some(l) = link.as_mut() else { continue };
            match answer(l) {
                Ok(n) if inflight.front().is_some_and(|s| s.seq == n) => {
                    let Some(done) = inflight.pop_front() else {
                        continue;
                    };
                    stats.sent.fetch_add(done.lines, Ordering::Relaxed);
                    stats.batches.fetch_add(1, Ordering::Relaxed);
                    let _ = stats
                        .spooled
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                            Some(v.saturating_sub(done.bytes))
                        });
                    cursor = done.after;
                    let _ = save_json(&sent_path, &cursor);
                    crate::spool::release(&spool_dir, cursor);
                }
                Ok(n) => failed = Some(format!("answer for batch {n} out of order")),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            on_event(&format!("{}: {e}", a.server));
            link = None;
            reported = None;
            inflight.clear();
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_example_agent_configuration_loads() {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/agent.toml"
        ));
        let c = AgentConfig::load(p).unwrap();
        assert_eq!(c.files.len(), 2);
        assert!(c.agent.spool.is_absolute());
        assert!(c.files[0].path.ends_with("examples/logs/web01/auth.log"));
    }

    /// A spool that checks, at each append, that the state on disk already records the
    /// instance whose lines it receives (what a restart after a kill there would find).
    struct Checked {
        state: PathBuf,
        appended: Vec<(u64, usize)>,
        fail_next: bool,
    }

    impl Spool for Checked {
        fn append(
            &mut self,
            id: u64,
            _path: &str,
            _host: &str,
            lines: &[(Bytes, u64)],
            _read: i64,
        ) -> std::io::Result<()> {
            if std::mem::take(&mut self.fail_next) {
                return Err(std::io::Error::other("disk full"));
            }
            let sv: Vec<Saved> = load_json(&self.state);
            assert!(
                sv.iter().any(|s| s.fingerprint == id),
                "lines of instance {id:x} spooled before it was recorded: {sv:?}"
            );
            self.appended.push((id, lines.len()));
            Ok(())
        }

        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_new_instance_is_recorded_before_its_lines_are_spooled_and_failed_lines_are_kept() {
        let d = std::env::temp_dir().join(format!("tansa-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("app.log");
        let state = d.join("tail.json");
        let write = |n: std::ops::Range<u32>| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            for i in n {
                writeln!(f, "line {i}").unwrap();
            }
        };
        let mut spool = Checked {
            state: state.clone(),
            appended: Vec::new(),
            fail_next: false,
        };
        let mut sv = Vec::new();
        let mut tailer = Tailer::new(log.clone(), Vec::new(), false);
        let mut out = Vec::new();
        write(0..10);
        tailer.poll(&mut out).unwrap();
        spool_polled(&mut out, &mut spool, &mut sv, &state, ("app", "h"), 0).unwrap();
        // rotated: the new instance's announcement and first lines arrive in one poll
        std::fs::rename(&log, d.join("app.log.1")).unwrap();
        write(10..15);
        tailer.poll(&mut out).unwrap();
        tailer.poll(&mut out).unwrap();
        // the spool refuses the first append: those lines stay for the next try
        spool.fail_next = true;
        assert!(spool_polled(&mut out, &mut spool, &mut sv, &state, ("app", "h"), 0).is_err());
        assert!(!out.is_empty());
        write(15..18);
        tailer.poll(&mut out).unwrap();
        let (n, _) = spool_polled(&mut out, &mut spool, &mut sv, &state, ("app", "h"), 0).unwrap();
        assert!(out.is_empty());
        let ids: std::collections::BTreeSet<u64> = spool.appended.iter().map(|a| a.0).collect();
        assert_eq!(ids.len(), 2, "two instances: {:?}", spool.appended);
        assert_eq!(spool.appended.iter().map(|a| a.1).sum::<usize>(), 18);
        assert_eq!(n, 8);
        let _ = std::fs::remove_dir_all(&d);
    }
}
