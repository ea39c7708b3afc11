//! The live pipeline: sources → one processor thread (parse, enrich, classify, detect) → one
//! writer thread (the store).
//!
//! ```text
//!  tail thread per [[file]] ─┐
//!  syslog TCP connections  ──┼─ bounded queue ─► processor ─ bounded ─► writer ─► DuckDB
//!  syslog UDP listeners    ──┘  (back-pressure)  parse/enrich/detect    events + checkpoints
//!                                                 alerts as they change  + file instances
//! ```
//!
//! Each commit holds the events of one interval (`commit_ms`) with the checkpoints of the
//! streams they came from and the file instances first seen, in one transaction: after a
//! crash each file resumes from the offset its stored lines end at — every line once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use tansa_collect::syslog::{self, Delivery};
use tansa_collect::tail::{Identity, Resume, TailEvent, Tailer};
use tansa_detect::{Alert, Classifier, Engine};
use tansa_event::{now_nanos, Event, Kind, Origin};
use tansa_parse::{Format, Parser, TimeCtx};
use tansa_store::{Backend, Batch, Checkpoint, DuckStore, FileInstance};

use crate::config::{Config, Protocol, Start};
use crate::ServeError;

/// Events per commit at most (DuckDB's row group: whole groups go straight to the file).
const MAX_BATCH: usize = tansa_store::ROW_GROUP;
/// Upper bounds (ms) of the detection-latency histogram buckets.
pub const LATENCY_BUCKETS_MS: [u64; 9] = [1, 5, 10, 50, 100, 250, 500, 1000, 2500];

/// Counters of a running server (`/metrics`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// When the server started (ns).
    pub started: i64,
    /// Lines received from all sources.
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
    /// Events through detection.
    pub events: AtomicU64,
    pub unparsed: AtomicU64,
    /// Events committed to the store.
    pub stored: AtomicU64,
    pub commits: AtomicU64,
    pub commit_errors: AtomicU64,
    /// Time of the last commit (ns), 0 before the first.
    pub last_commit: AtomicI64,
    /// Alerts raised (each once, however often it grows).
    pub alerts: AtomicU64,
    /// Alerts dropped from memory once stored (no entity held them open).
    pub alerts_retired: AtomicU64,
    /// Streams being parsed (file instances, syslog connections and senders).
    pub streams: AtomicU64,
    /// Line batches waiting for the processor.
    pub queued: AtomicU64,
    /// Lines received again and dropped (already stored).
    pub duplicates: AtomicU64,
    /// Lines lost: UDP datagrams that found the queue and the disk spool full.
    pub dropped: AtomicU64,
    /// The disk spools of the UDP listeners (`/metrics` shows what waits in them).
    pub(crate) spools: Mutex<Vec<Arc<crate::udp::UdpSpool>>>,
    /// Polls of a followed file that failed (unreadable, permission).
    pub tail_errors: AtomicU64,
    /// Indicator feeds loaded again after they changed, and loads that failed (the
    /// indicators before them stay); the indicators in use.
    pub intel_reloads: AtomicU64,
    pub intel_reload_errors: AtomicU64,
    pub intel_indicators: AtomicU64,
    /// Time from receiving a line to its detection, by bucket ([`LATENCY_BUCKETS_MS`], then
    /// the rest), and the sum in µs.
    pub latency: [AtomicU64; 10],
    pub latency_sum_us: AtomicU64,
    /// Syslog listeners: name and counters.
    pub listeners: Mutex<Vec<(String, Arc<syslog::Counters>)>>,
    /// The last counters each agent reported, and when (ns).
    pub agents: Mutex<std::collections::BTreeMap<String, (AgentReport, i64)>>,
}

/// An agent's own counters, sent to the server now and then (`{"status": …}`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AgentReport {
    /// Lines read from its files and journal.
    pub read: u64,
    /// Lines the server acknowledged.
    pub sent: u64,
    pub batches: u64,
    /// Failed connection attempts.
    pub reconnects: u64,
    /// Bytes in its spool not yet acknowledged.
    pub spooled: u64,
}

impl Metrics {
    pub(crate) fn agent_report(&self, agent: &str, r: AgentReport) {
        self.agents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(agent.to_owned(), (r, now_nanos()));
    }

    fn observe_latency(&self, ns: i64, n: u64) {
        let ms = (ns.max(0) / 1_000_000) as u64;
        let b = LATENCY_BUCKETS_MS
            .iter()
            .position(|&u| ms < u)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency[b].fetch_add(n, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(n * (ns.max(0) as u64 / 1000), Ordering::Relaxed);
    }
}

/// Lines a shipper sent over HTTP (`/api/v1/ingest`, `_bulk`).
pub(crate) struct Shipped {
    /// The stream (one per host and file of the sender).
    pub stream: u64,
    pub path: String,
    pub host: Option<String>,
    pub agent: Option<String>,
    pub format: Option<Format>,
    pub lines: Vec<(Bytes, u64)>,
    /// The stream's offset after these lines, when offsets are not byte positions (the
    /// journal's sequence numbers).
    pub next: Option<u64>,
    pub received: i64,
    /// Told once the lines are committed (the HTTP answer waits for it).
    pub done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A commit to wait for (its sender is dropped when the lines could not be stored).
pub(crate) type Committed = tokio::sync::oneshot::Receiver<()>;

impl Shipped {
    /// Queues the lines for the processor (waiting while the queue is full); what is
    /// returned tells when they are committed. None when the server is stopping.
    pub(crate) fn send(mut self, tx: &Sender<Input>, metrics: &Metrics) -> Option<Committed> {
        let (done, committed) = tokio::sync::oneshot::channel();
        self.done = Some(done);
        metrics.queued.fetch_add(1, Ordering::Relaxed);
        tx.send(Input::Shipped(self)).ok()?;
        Some(committed)
    }
}

/// What the sources hand to the processor.
pub(crate) enum Input {
    File {
        source: usize,
        event: TailEvent,
        received: i64,
    },
    Net {
        source: usize,
        delivery: Delivery,
        /// Told once the lines are committed (UDP datagrams fed from the spool).
        done: Option<tokio::sync::oneshot::Sender<()>>,
    },
    Shipped(Shipped),
}

/// One commit for the writer.
struct Commit {
    batch: Batch,
    alerts: Vec<Alert>,
    /// Streams first seen since the last commit: their path (the `Arc` their events share)
    /// and store number, so that alert links get event ids.
    origins: Vec<(Arc<str>, u32)>,
    /// Senders waiting for these lines to be stored.
    acks: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// How the lines of a configured source are read.
struct SourceDef {
    /// The configured path of a file source (empty for listeners).
    path: String,
    format: Format,
    tz: jiff::tz::TimeZone,
    host: Option<String>,
    multiline: Option<tansa_parse::multiline::Spec>,
}

/// A stream being parsed: a file instance, a syslog connection or UDP sender.
struct Stream {
    parser: Parser,
    number: u32,
    fingerprint: u64,
    path: String,
    host: Option<String>,
    next_offset: u64,
    /// Where the stream has been read to (above `next_offset` while a multi-line record is
    /// being joined: the checkpoint stays at its first line).
    read_end: u64,
    /// `next_offset` moved without new lines (a pending record emitted).
    moved: bool,
    /// Lines since the last checkpoint.
    lines: u64,
    closed: bool,
    /// When its last line came (idle streams are let go).
    last_line: Instant,
    /// Closed for being idle (lines may come again).
    let_go: bool,
}

/// Stream keys: file instances and network streams are numbered apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    File(u64),
    Net(u64),
}

/// What `run` needs besides the configuration.
pub struct Setup {
    pub config: Config,
    /// Data directory (the store).
    pub data: PathBuf,
    pub cold: Option<PathBuf>,
    /// Detection (built-in and Sigma rules, indicators).
    pub engine: Engine,
    pub enrich: Arc<tansa_intel::Enricher>,
    /// The indicator feeds' files, watched: changed feeds are loaded again and replace the
    /// indicators of enrichment and detection.
    pub feeds: Option<tansa_intel::FeedWatch>,
    /// Called for each new alert (on the processor thread).
    pub on_alert: Box<dyn FnMut(&Alert) + Send>,
    /// Called once the sources listen, with the HTTP address when there is one.
    pub on_ready: Box<dyn FnOnce(&Ready) + Send>,
}

/// The server is up.
#[derive(Debug, Clone)]
pub struct Ready {
    pub http: Option<std::net::SocketAddr>,
    /// The API is served over TLS.
    pub https: bool,
    pub files: usize,
    pub listeners: Vec<String>,
    /// Files resumed from checkpoints (instances known to the store).
    pub resumed: usize,
}

/// What a run did (printed when it stops).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: u64,
    pub events: u64,
    pub stored: u64,
    pub alerts: u64,
}

/// Runs until `stop` is set (by a signal or the caller); then stops the sources, commits what
/// they delivered and returns.
pub fn run(setup: Setup, stop: Arc<AtomicBool>) -> Result<Report, ServeError> {
    let Setup {
        mut config,
        data,
        cold,
        engine,
        enrich,
        feeds,
        on_alert,
        on_ready,
    } = setup;
    let data = config.server.data.clone().unwrap_or(data);
    let cold = config.server.cold.clone().or(cold);
    let metrics = Arc::new(Metrics {
        started: now_nanos(),
        ..Default::default()
    });
    if let Some(i) = enrich.intel() {
        metrics
            .intel_indicators
            .store(i.indicators().len() as u64, Ordering::Relaxed);
    }
    let store = DuckStore::open(&data, cold.as_deref())?;
    store.set_memory_limit(config.server.store_memory_mb)?;
    let reader = store.try_clone()?;
    let known = store.file_instances()?;
    let store = Arc::new(Mutex::new(store));
    // the evidence log: every line, before the store commits it
    let evidence = if config.server.evidence {
        let dir = config
            .server
            .evidence_dir
            .clone()
            .unwrap_or_else(|| data.join("evidence"));
        let limits = tansa_evidence::Limits {
            max_bytes: config.server.evidence_segment_mb.max(1) << 20,
            max_age: config.server.evidence_seal_s.max(1) as i64 * 1_000_000_000,
            compress: config.server.evidence_compress,
        };
        let (mut log, rec) = tansa_evidence::EvidenceLog::open(&dir, limits, now_nanos())?;
        if let Some(c) = &config.server.evidence_copy {
            log.copy_sealed_to(c)?;
        }
        for n in rec.notes {
            eprintln!("tansa: evidence log: {n}");
        }
        Some(log)
    } else {
        None
    };
    let collector = config
        .server
        .collector
        .clone()
        .or_else(crate::files::hostname)
        .unwrap_or_else(|| "local".into());
    let server_tz = match &config.server.timezone {
        Some(z) => jiff::tz::TimeZone::get(z).map_err(|e| ServeError::Config(e.to_string()))?,
        None => jiff::tz::TimeZone::system(),
    };
    let fim = if config.server.fim {
        Some(crate::fim::start(
            &config.server,
            &data,
            &collector,
            &mut config.files,
        )?)
    } else {
        None
    };
    let mut defs = Vec::new();
    for f in &config.files {
        defs.push(SourceDef {
            path: f.path.to_string_lossy().into_owned(),
            format: parse_format(&f.format)?,
            tz: match &f.timezone {
                Some(z) => {
                    jiff::tz::TimeZone::get(z).map_err(|e| ServeError::Config(e.to_string()))?
                }
                None => server_tz.clone(),
            },
            // lines of a local file are this machine's unless the file names another host
            host: f.host.clone().or_else(|| Some(collector.clone())),
            multiline: f
                .multiline_spec()
                .map_err(|e| ServeError::Config(format!("[[file]] {}: {e}", f.path.display())))?,
        });
    }
    for s in &config.syslog {
        defs.push(SourceDef {
            path: String::new(),
            format: parse_format(&s.format)?,
            tz: server_tz.clone(),
            host: None,
            multiline: None,
        });
    }
    // HTTP ingest (the last source): the format per request
    defs.push(SourceDef {
        path: String::new(),
        format: Format::Auto,
        tz: server_tz.clone(),
        host: None,
        multiline: None,
    });

    // active response: its own connection to the store, a thread fed with new alerts
    let (respond, alert_tx, alert_rx) = match &config.response {
        Some(rc) => {
            let policy = tansa_respond::policy::Policy::new(rc.clone())
                .map_err(|e| ServeError::Config(format!("[response] {e}")))?;
            let fw = tansa_respond::build_firewall(&policy)
                .map_err(|e| ServeError::Config(format!("[response] {e}")))?;
            let mut r = tansa_respond::Responder::open(
                policy,
                reader.try_clone()?,
                fw,
                &collector,
                now_nanos(),
            )
            .map_err(|e| ServeError::Config(format!("[response] {e}")))?;
            if enrich.geo().is_some() {
                r.set_asn_source(Box::new(EnricherAsn(enrich.clone())));
            }
            let hooks =
                crate::respond::HookService::start(r.policy.hooks.clone(), reader.try_clone()?)?;
            let (atx, arx) = bounded::<Alert>(4096);
            (
                Some(Arc::new(crate::respond::Respond::new(r, &data, hooks)?)),
                Some(atx),
                Some(arx),
            )
        }
        None => (None, None, None),
    };
    let responder_thread = match (&respond, alert_rx) {
        (Some(r), Some(arx)) => Some(crate::respond::spawn(r.clone(), arx, stop.clone())?),
        _ => None,
    };

    let (tx, rx) = bounded::<Input>(config.server.queue);
    // HTTP first: a port in use is an error before anything is read
    let token = crate::http::token(&config, &data)?;
    let http = match config.server.http {
        Some(addr) => Some(crate::http::serve(
            addr,
            crate::http::Api {
                metrics: metrics.clone(),
                reader: Arc::new(Mutex::new(reader)),
                token,
                ingest: Arc::new(crate::http::Ingest::new(tx.clone(), metrics.started)),
                respond: respond.clone(),
            },
            match (&config.server.tls_cert, &config.server.tls_key) {
                (Some(c), Some(k)) => Some(crate::tls::server_config(c, k, None, None)?),
                _ => None,
            },
            stop.clone(),
        )?),
        None => None,
    };
    let http_addr = http.as_ref().map(|h| h.addr);
    if let Some(addr) = http_addr {
        crate::http::announce(&data, addr, &config, &metrics)?;
    }

    let (ctx, crx) = bounded::<Commit>(2);
    let writer = {
        let (store, metrics, stop) = (store.clone(), metrics.clone(), stop.clone());
        std::thread::Builder::new()
            .name("tansa-writer".into())
            .spawn(move || write_loop(crx, &store, evidence, &metrics, &stop))?
    };

    // sources
    let mut threads = Vec::new();
    if let Some(w) = fim {
        threads.push(w.spawn(stop.clone())?);
    }
    // feeds are loaded again on their own thread; the processor takes them between batches
    let (feed_tx, feed_rx) = bounded::<Arc<tansa_intel::Intel>>(1);
    if let Some(w) = feeds {
        let (stop, metrics) = (stop.clone(), metrics.clone());
        threads.push(
            std::thread::Builder::new()
                .name("tansa-feeds".into())
                .spawn(move || watch_feeds(w, &feed_tx, &metrics, &stop))?,
        );
    }
    let mut listeners = Vec::new();
    let mut resumed = 0;
    let (wake_tx, watcher) = watch(&config);
    for (i, f) in config.files.iter().enumerate() {
        let resume: Vec<Resume> = known
            .iter()
            .filter(|k| std::path::Path::new(&k.path) == f.path)
            .map(|k| Resume {
                fingerprint: k.fingerprint,
                identity: Identity {
                    dev: k.dev,
                    ino: k.ino,
                    head_len: k.head_len,
                    head_hash: k.head_hash,
                },
                offset: k.next_offset,
            })
            .collect();
        resumed += usize::from(!resume.is_empty());
        let tailer = Tailer::new(f.path.clone(), resume, f.start == Start::End);
        let (wtx, wrx) = bounded::<()>(1);
        wake_tx.lock().unwrap_or_else(|e| e.into_inner()).push(wtx);
        let (tx, stop, metrics) = (tx.clone(), stop.clone(), metrics.clone());
        let poll = Duration::from_millis(config.server.poll_ms);
        threads.push(
            std::thread::Builder::new()
                .name(format!("tansa-tail-{i}"))
                .spawn(move || tail_loop(i, tailer, &tx, &wrx, &stop, poll, &metrics))?,
        );
    }
    for (j, s) in config.syslog.iter().enumerate() {
        let source = config.files.len() + j;
        let counters = Arc::new(syslog::Counters::default());
        let stop = stop.clone();
        let name = match s.protocol {
            Protocol::Tcp | Protocol::Tls => {
                // a stream waits while the queue is full (back-pressure to the sender)
                let (tx, m) = (tx.clone(), metrics.clone());
                let sink: syslog::Sink = Arc::new(move |d: Delivery| {
                    m.queued.fetch_add(1, Ordering::Relaxed);
                    tx.send(Input::Net {
                        source,
                        delivery: d,
                        done: None,
                    })
                    .is_ok()
                });
                let tls = match (s.protocol, &s.cert, &s.key) {
                    (Protocol::Tls, Some(cert), Some(key)) => Some(crate::tls::server_config(
                        cert,
                        key,
                        s.client_ca.as_deref(),
                        s.crl.as_deref(),
                    )?),
                    (Protocol::Tls, _, _) => {
                        return Err(ServeError::Config("tls needs cert and key".into()))
                    }
                    _ => None,
                };
                let scheme = if tls.is_some() {
                    "syslog+tls"
                } else {
                    "syslog+tcp"
                };
                let l = bind(scheme, s.listen)?;
                let name = format!("{scheme}://{}", l.local_addr()?);
                let (c, max) = (counters.clone(), s.max_connections);
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("tansa-syslog-{j}"))
                        .spawn(move || {
                            let _ = syslog::serve_stream(l, tls, sink, stop, c, max);
                        })?,
                );
                name
            }
            Protocol::Udp => {
                let u = std::net::UdpSocket::bind(s.listen).map_err(|e| ServeError::Bind {
                    what: format!("syslog+udp {}", s.listen),
                    source: e,
                })?;
                let addr = u.local_addr()?;
                let name = format!("syslog+udp://{addr}");
                // a datagram cannot wait: behind a full queue it goes to a disk spool
                let spool = Arc::new(
                    crate::udp::UdpSpool::open(
                        &data,
                        addr,
                        config.server.udp_spool_mb,
                        counters.clone(),
                    )
                    .map_err(|e| ServeError::Io {
                        path: data.join("spool"),
                        source: e,
                    })?,
                );
                let sink = spool.sink(source, tx.clone(), metrics.clone());
                let c = counters.clone();
                let (ftx, fstop, m) = (tx.clone(), stop.clone(), metrics.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("tansa-syslog-{j}"))
                        .spawn(move || {
                            let _ = syslog::serve_udp(u, sink, stop, c);
                        })?,
                );
                metrics
                    .spools
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(spool.clone());
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("tansa-udp-spool-{j}"))
                        .spawn(move || spool.feed(source, &ftx, &m, &fstop))?,
                );
                name
            }
        };
        register(&metrics, &mut listeners, name, counters);
    }
    for j in &config.journal {
        let cursor = crate::journal::cursor_path(&data, j);
        let (j, tx, stop, metrics) = (j.clone(), tx.clone(), stop.clone(), metrics.clone());
        threads.push(
            std::thread::Builder::new()
                .name("tansa-journal".into())
                .spawn(move || crate::journal::follow(j, cursor, tx, &stop, &metrics))?,
        );
        listeners.push("journal".into());
    }
    if let Some(a) = &config.agents {
        let tls = crate::tls::server_config(&a.cert, &a.key, Some(&a.client_ca), a.crl.as_deref())?;
        let l = bind("agents", a.listen)?;
        let name = format!("agents://{}", l.local_addr()?);
        let counters = Arc::new(syslog::Counters::default());
        let handler = crate::agents::handler(tx.clone(), metrics.clone(), respond.clone());
        let (c, max, stop) = (counters.clone(), a.max_connections, stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("tansa-agents".into())
                .spawn(move || {
                    let _ = syslog::serve_connections(l, "agent", Some(tls), stop, c, max, handler);
                })?,
        );
        register(&metrics, &mut listeners, name, counters);
    }
    drop(tx);
    on_ready(&Ready {
        http: http_addr,
        https: config.server.tls_cert.is_some(),
        files: config.files.len(),
        listeners,
        resumed,
    });

    let mut p = Processor {
        defs,
        collector: collector.into(),
        classifier: engine.classifier(),
        engine,
        enrich,
        cache: tansa_intel::Cache::default(),
        feeds: feed_rx,
        store: store.clone(),
        streams: HashMap::new(),
        batch: Batch::default(),
        origins: Vec::new(),
        scratch: Vec::new(),
        metrics: metrics.clone(),
        on_alert,
        alert_tx,
        clock: (config.server.clock_skew_s > 0)
            .then(|| crate::clock::ClockWatch::new(config.server.clock_skew_s)),
        drops: Default::default(),
        pending: Vec::new(),
        acks: Vec::new(),
        known: std::collections::HashSet::new(),
        watermark: i64::MIN,
        keep: config.server.keep_alerts_s as i64 * 1_000_000_000,
        last_retire: Instant::now(),
        idle: HashMap::new(),
        stream_idle: Duration::from_secs(config.server.stream_idle_s),
        last_idle: Instant::now(),
        last_now: Instant::now(),
        commit_every: Duration::from_millis(config.server.commit_ms),
        out: ctx,
    };
    let result = p.run(&rx, &stop);
    // the sources end with the processor (their queue is gone) or with `stop`
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    drop(watcher);
    for t in threads {
        let _ = t.join();
    }
    drop(p);
    if let Some(t) = responder_thread {
        let _ = t.join();
    }
    let written = writer.join().map_err(|_| ServeError::Writer)?;
    if let Some(h) = http {
        h.stop();
    }
    crate::http::withdraw(&data);
    result?;
    written?;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(Report {
        lines: n(&metrics.lines),
        events: n(&metrics.events),
        stored: n(&metrics.stored),
        alerts: n(&metrics.alerts),
    })
}

/// A listener's counters in `/metrics`, and its name in the start line.
fn register(
    metrics: &Metrics,
    listeners: &mut Vec<String>,
    name: String,
    counters: Arc<syslog::Counters>,
) {
    metrics
        .listeners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name.clone(), counters));
    listeners.push(name);
}

fn bind(what: &str, addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind {
        what: format!("{what} {addr}"),
        source,
    })
}

fn parse_format(name: &str) -> Result<Format, ServeError> {
    name.parse()
        .map_err(|e: tansa_parse::UnknownFormat| ServeError::Config(e.to_string()))
}

/// Wakes the tail threads when a followed file's directory changes (inotify); polling goes
/// on regardless (the fallback when inotify is unavailable or watches run out).
#[allow(clippy::type_complexity)]
fn watch(
    config: &Config,
) -> (
    Arc<Mutex<Vec<Sender<()>>>>,
    Option<notify::RecommendedWatcher>,
) {
    use notify::Watcher;
    let wakers: Arc<Mutex<Vec<Sender<()>>>> = Arc::default();
    let w = wakers.clone();
    let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        for s in w.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = s.try_send(());
        }
    });
    let Ok(mut watcher) = watcher else {
        return (wakers, None);
    };
    let mut dirs: Vec<PathBuf> = config
        .files
        .iter()
        .filter_map(|f| f.path.parent().map(|p| p.to_owned()))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        let _ = watcher.watch(&d, notify::RecursiveMode::NonRecursive);
    }
    (wakers, Some(watcher))
}

fn tail_loop(
    source: usize,
    mut tailer: Tailer,
    tx: &Sender<Input>,
    wake: &Receiver<()>,
    stop: &AtomicBool,
    poll: Duration,
    metrics: &Metrics,
) {
    let mut out = Vec::new();
    let mut last_error = String::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        match tailer.poll(&mut out) {
            Ok(()) => last_error.clear(),
            Err(e) => {
                metrics.tail_errors.fetch_add(1, Ordering::Relaxed);
                let e = format!("{}: {e}", tailer.path().display());
                if e != last_error {
                    eprintln!("tansa serve: {e}");
                    last_error = e;
                }
            }
        }
        let received = now_nanos();
        for event in out.drain(..) {
            metrics.queued.fetch_add(1, Ordering::Relaxed);
            if tx
                .send(Input::File {
                    source,
                    event,
                    received,
                })
                .is_err()
            {
                return;
            }
        }
        if stopping {
            return;
        }
        let _ = wake.recv_timeout(poll);
    }
}

/// Once a second until `stop`: feeds whose files changed (and then stayed still for a
/// second) are loaded again and sent to the processor. A feed that no longer loads is
/// reported and counted; the indicators loaded before stay.
fn watch_feeds(
    mut w: tansa_intel::FeedWatch,
    tx: &Sender<Arc<tansa_intel::Intel>>,
    metrics: &Metrics,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        match w.poll() {
            None => {}
            Some(Err(e)) => {
                metrics.intel_reload_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("tansa: intel feeds not reloaded, the loaded ones stay: {e}");
            }
            Some(Ok(intel)) => {
                let n = intel.indicators().len();
                eprintln!(
                    "tansa: intel feeds reloaded: {} feeds, {n} indicators",
                    intel.feeds().len()
                );
                if tx.send(Arc::new(intel)).is_err() {
                    return;
                }
                metrics.intel_reloads.fetch_add(1, Ordering::Relaxed);
                metrics.intel_indicators.store(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// What a stream's sender says of it, beyond its source's settings.
#[derive(Default)]
struct Spec<'a> {
    /// `agent.id`: a mutual-TLS client's certificate name, a shipper's name.
    identity: Option<&'a str>,
    /// `host.name` of its lines.
    host: Option<String>,
    format: Option<Format>,
}

struct Processor {
    defs: Vec<SourceDef>,
    collector: Arc<str>,
    engine: Engine,
    classifier: Classifier,
    enrich: Arc<tansa_intel::Enricher>,
    cache: tansa_intel::Cache,
    /// Indicator feeds loaded again ([`watch_feeds`]).
    feeds: Receiver<Arc<tansa_intel::Intel>>,
    store: Arc<Mutex<DuckStore>>,
    streams: HashMap<Key, Stream>,
    batch: Batch,
    origins: Vec<(Arc<str>, u32)>,
    scratch: Vec<Event>,
    metrics: Arc<Metrics>,
    on_alert: Box<dyn FnMut(&Alert) + Send>,
    /// New alerts for the responder.
    alert_tx: crate::respond::AlertTx,
    clock: Option<crate::clock::ClockWatch>,
    drops: crate::udp::DropWatch,
    /// Alerts created or grown since the last commit.
    pending: Vec<Alert>,
    acks: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Ids of the alerts in the engine (announced once).
    known: std::collections::HashSet<String>,
    watermark: i64,
    keep: i64,
    last_retire: Instant,
    /// Streams let go while idle: their store number and next offset.
    idle: HashMap<Key, (u32, u64)>,
    stream_idle: Duration,
    last_idle: Instant,
    last_now: Instant,
    commit_every: Duration,
    out: Sender<Commit>,
}

impl Processor {
    fn run(&mut self, rx: &Receiver<Input>, stop: &AtomicBool) -> Result<(), ServeError> {
        let mut next_commit = Instant::now() + self.commit_every;
        let mut stopping_since: Option<Instant> = None;
        loop {
            let wait = next_commit.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(input) => {
                    self.metrics.queued.fetch_sub(1, Ordering::Relaxed);
                    self.handle(input)?;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if stop.load(Ordering::Relaxed) {
                // the sources stop within their poll or read timeout; what they already
                // queued is still taken
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if rx.is_empty() && since.elapsed() > Duration::from_secs(3) {
                    break;
                }
            }
            // senders waiting for an answer (agents, HTTP shippers) are answered as soon as
            // nothing else is queued: under load their lines share larger commits
            let waiting = !self.acks.is_empty() && rx.is_empty();
            if waiting || Instant::now() >= next_commit || self.batch.events.len() >= MAX_BATCH {
                self.flush_idle();
                self.commit()?;
                next_commit = Instant::now() + self.commit_every;
            }
        }
        for s in self.streams.values_mut() {
            s.closed = true;
        }
        let keys: Vec<Key> = self.streams.keys().copied().collect();
        for k in keys {
            self.finish_stream(k);
        }
        self.commit()
    }

    fn handle(&mut self, input: Input) -> Result<(), ServeError> {
        match input {
            Input::File {
                source,
                event,
                received,
            } => match event {
                TailEvent::Opened {
                    fingerprint,
                    path,
                    identity,
                } => {
                    self.stream(
                        Key::File(fingerprint),
                        source,
                        &path.to_string_lossy(),
                        Spec::default(),
                    )?;
                    self.batch.files.push(FileInstance {
                        fingerprint,
                        path: path.to_string_lossy().into_owned(),
                        dev: identity.dev,
                        ino: identity.ino,
                        head_len: identity.head_len,
                        head_hash: identity.head_hash,
                        next_offset: 0,
                    });
                }
                TailEvent::Lines {
                    fingerprint,
                    lines,
                    next,
                } => {
                    // instances resumed from the store were announced by an earlier run
                    let path = self.defs[source].path.clone();
                    self.stream(Key::File(fingerprint), source, &path, Spec::default())?;
                    self.feed(Key::File(fingerprint), lines, received, Some(next));
                }
            },
            Input::Shipped(s) => {
                let key = Key::Net(s.stream);
                let spec = Spec {
                    identity: s.agent.as_deref(),
                    host: s.host.clone(),
                    format: s.format,
                };
                self.stream(key, self.defs.len() - 1, &s.path, spec)?;
                self.feed(key, s.lines, s.received, s.next);
                self.acks.extend(s.done);
            }
            Input::Net {
                source,
                delivery,
                done,
            } => {
                self.acks.extend(done);
                let key = Key::Net(delivery.stream.id);
                let path = format!("{}/{}", delivery.stream.name, delivery.stream.peer.ip());
                let spec = Spec {
                    identity: delivery.stream.identity.as_deref(),
                    ..Spec::default()
                };
                self.stream(key, source, &path, spec)?;
                self.feed(key, delivery.messages, delivery.received, None);
                if delivery.closed {
                    if let Some(s) = self.streams.get_mut(&key) {
                        s.closed = true;
                    }
                    self.finish_stream(key);
                }
            }
        }
        Ok(())
    }

    /// The stream of `key`, created on first sight (with its store number).
    fn stream(
        &mut self,
        key: Key,
        source: usize,
        path: &str,
        spec: Spec<'_>,
    ) -> Result<(), ServeError> {
        if self.streams.contains_key(&key) {
            return Ok(());
        }
        let fingerprint = match key {
            Key::File(f) | Key::Net(f) => f,
        };
        // a stream let go while idle goes on from where it was (its last checkpoint may
        // still be on its way to the store)
        let (number, stored) = match self.idle.remove(&key) {
            Some(x) => x,
            None => {
                let mut st = self.store.lock().unwrap_or_else(|e| e.into_inner());
                (st.source_number(fingerprint)?, st.checkpoint(fingerprint)?)
            }
        };
        let def = &self.defs[source];
        let host = spec.host.or_else(|| def.host.clone());
        let mut origin = Origin::file(path, host.as_deref().unwrap_or(""));
        origin.agent_id = spec
            .identity
            .map_or_else(|| self.collector.clone(), Arc::from);
        let origin = Arc::new(origin);
        self.origins.push((origin.path.clone(), number));
        let mut parser = Parser::new(
            spec.format.unwrap_or(def.format),
            origin,
            TimeCtx::new(def.tz.clone(), jiff::Timestamp::now()),
        );
        if let Some(m) = &def.multiline {
            parser.set_multiline(m.clone());
        }
        self.streams.insert(
            key,
            Stream {
                parser,
                number,
                fingerprint,
                path: path.to_owned(),
                host,
                // lines below were stored by an earlier run (resent ones are dropped)
                next_offset: stored,
                read_end: stored,
                moved: false,
                lines: 0,
                closed: false,
                last_line: Instant::now(),
                let_go: false,
            },
        );
        self.metrics.streams.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Parses, enriches and detects a delivery's lines; they join the next commit.
    fn feed(&mut self, key: Key, lines: Vec<(Bytes, u64)>, received: i64, next: Option<u64>) {
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        let mut n = 0u64;
        let mut bytes = 0u64;
        s.parser.set_ingested(received);
        let mut end = s.next_offset;
        let floor = s.next_offset;
        for (line, off) in lines {
            // sent again (an agent resending what was stored before its ack was lost)
            if off < floor {
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            n += 1;
            bytes += line.len() as u64 + 1;
            end = end.max(off + line.len() as u64 + 1);
            s.parser.parse_line(line, off, &mut self.scratch);
        }
        s.read_end = next.unwrap_or(end).max(s.read_end).max(s.next_offset);
        // a record still being joined is stored from its first line after a restart
        s.next_offset = match s.parser.pending_offset() {
            Some(p) => p.max(s.next_offset),
            None => s.read_end,
        };
        s.lines += n;
        if n > 0 {
            s.last_line = Instant::now();
        }
        let number = s.number;
        self.metrics.lines.fetch_add(n, Ordering::Relaxed);
        self.metrics.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.detect(number, received);
    }

    /// Indicators loaded again ([`watch_feeds`]) replace the old ones in enrichment and
    /// detection from the next line on.
    fn reload_feeds(&mut self) {
        let Some(intel) = self.feeds.try_iter().last() else {
            return;
        };
        self.enrich = Arc::new(self.enrich.with_intel(Some(intel.clone())));
        self.cache = tansa_intel::Cache::default();
        self.engine.set_intel(intel);
    }

    /// Runs the events in `scratch` through enrichment and detection into the batch.
    fn detect(&mut self, number: u32, received: i64) {
        if self.scratch.is_empty() {
            return;
        }
        self.reload_feeds();
        self.enrich.enrich_all(&mut self.scratch, &mut self.cache);
        let mut unparsed = 0;
        for ev in &mut self.scratch {
            self.classifier.classify(ev);
            self.engine.process(ev);
            self.watermark = self.watermark.max(ev.timestamp);
            unparsed += u64::from(ev.kind == Kind::Unparsed);
            if let (Some(c), false) = (&mut self.clock, ev.kind == Kind::Unparsed) {
                if let Some(h) = ev.host_name() {
                    c.observe(&h, received, ev.timestamp);
                }
            }
        }
        let n = self.scratch.len() as u64;
        self.metrics.events.fetch_add(n, Ordering::Relaxed);
        self.metrics.unparsed.fetch_add(unparsed, Ordering::Relaxed);
        self.metrics
            .observe_latency(now_nanos() - received, self.scratch.len() as u64);
        self.batch
            .sources
            .extend(std::iter::repeat_n(number, self.scratch.len()));
        self.batch.events.append(&mut self.scratch);
        // alerts are announced as soon as they exist, not at the next commit
        for a in self.engine.take_changed() {
            self.pending_alerts_push(a);
        }
    }

    fn pending_alerts_push(&mut self, a: Alert) {
        if self.known.insert(a.id.clone()) {
            self.metrics.alerts.fetch_add(1, Ordering::Relaxed);
            (self.on_alert)(&a);
        }
        // new and grown alerts: an attacker who goes on after a ban ended is banned again
        if let Some(tx) = &self.alert_tx {
            let _ = tx.send(a.clone());
        }
        self.pending.push(a);
    }

    /// Flushes a closed stream's held events (auditd groups); it leaves after the next commit.
    fn finish_stream(&mut self, key: Key) {
        let Some(s) = self.streams.get_mut(&key) else {
            return;
        };
        s.parser.finish(&mut self.scratch);
        s.moved |= s.next_offset != s.read_end;
        s.next_offset = s.read_end;
        let number = s.number;
        self.detect(number, now_nanos());
    }

    /// Emits multi-line records no line has come for within their timeout.
    fn flush_idle(&mut self) {
        let now = now_nanos();
        let keys: Vec<Key> = self
            .streams
            .iter()
            .filter(|(_, s)| s.parser.pending_offset().is_some())
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let Some(s) = self.streams.get_mut(&k) else {
                continue;
            };
            s.parser.flush_idle(now, &mut self.scratch);
            if s.parser.pending_offset().is_none() {
                s.moved = true;
                s.next_offset = s.read_end;
            }
            let number = s.number;
            self.detect(number, now);
        }
    }

    /// Streams without a line for `stream_idle` (a parser each: rotated-away file instances,
    /// agents' old files, UDP senders gone quiet) are flushed and let go at the next commit;
    /// their store number and offset are kept (a few bytes) for when lines come again.
    fn let_go_idle(&mut self) {
        let keys: Vec<Key> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                !s.closed
                    && s.last_line.elapsed() >= self.stream_idle
                    && s.parser.pending_offset().is_none()
            })
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(s) = self.streams.get_mut(&k) {
                s.closed = true;
                s.let_go = true;
            }
            self.finish_stream(k);
        }
    }

    fn commit(&mut self) -> Result<(), ServeError> {
        // (streams let go now leave at the next commit, with their last checkpoint)
        if self.last_idle.elapsed() > self.stream_idle.min(Duration::from_secs(60)) {
            self.last_idle = Instant::now();
            self.let_go_idle();
        }
        let skews = self.clock.as_mut().map(|c| c.check()).unwrap_or_default();
        for s in skews {
            self.pending_alerts_push(s.alert());
        }
        let dropped = self.metrics.dropped.load(Ordering::Relaxed);
        if let Some(a) = self.drops.check(dropped, &self.collector, now_nanos()) {
            self.pending_alerts_push(a);
        }
        let mut batch = std::mem::take(&mut self.batch);
        for s in self.streams.values_mut() {
            if s.lines > 0 || std::mem::take(&mut s.moved) {
                batch.checkpoints.push(Checkpoint {
                    fingerprint: s.fingerprint,
                    path: s.path.clone(),
                    host: s.host.clone(),
                    next_offset: s.next_offset,
                    lines: std::mem::take(&mut s.lines),
                });
            }
        }
        let before = self.streams.len();
        let idle = &mut self.idle;
        self.streams.retain(|k, s| {
            // (a connection that ended never comes back: nothing to keep)
            if s.closed && s.let_go {
                idle.insert(*k, (s.number, s.next_offset));
            }
            !s.closed
        });
        self.metrics
            .streams
            .fetch_sub((before - self.streams.len()) as u64, Ordering::Relaxed);
        // the newest version of each alert that changed
        let mut seen = std::collections::HashSet::new();
        let mut alerts: Vec<Alert> = std::mem::take(&mut self.pending)
            .into_iter()
            .rev()
            .filter(|a| seen.insert(a.id.clone()))
            .collect();
        alerts.reverse();
        if batch.events.is_empty()
            && batch.checkpoints.is_empty()
            && batch.files.is_empty()
            && alerts.is_empty()
            && self.acks.is_empty()
        {
            return Ok(());
        }
        let commit = Commit {
            batch,
            alerts,
            origins: std::mem::take(&mut self.origins),
            acks: std::mem::take(&mut self.acks),
        };
        self.out.send(commit).map_err(|_| ServeError::Writer)?;
        if self.last_now.elapsed() > Duration::from_secs(60) {
            self.last_now = Instant::now();
            let now = jiff::Timestamp::now();
            for s in self.streams.values_mut() {
                s.parser.set_now(now);
            }
        }
        if self.last_retire.elapsed() > Duration::from_secs(60) {
            self.last_retire = Instant::now();
            let n = self.engine.retire(self.watermark.saturating_sub(self.keep));
            if n > 0 {
                self.metrics
                    .alerts_retired
                    .fetch_add(n as u64, Ordering::Relaxed);
                let ids: std::collections::HashSet<&str> =
                    self.engine.alerts().iter().map(|a| a.id.as_str()).collect();
                self.known.retain(|id| ids.contains(id.as_str()));
            }
        }
        Ok(())
    }
}

/// Commits batches and alerts in order; a failed commit stops the server (it resumes from
/// the last checkpoints when restarted: nothing is lost).
fn write_loop(
    rx: Receiver<Commit>,
    store: &Mutex<DuckStore>,
    mut evidence: Option<tansa_evidence::EvidenceLog>,
    metrics: &Metrics,
    stop: &AtomicBool,
) -> Result<(), ServeError> {
    // alert links name events by their stream's path; streams sharing a path (rotated
    // instances, syslog connections) are told apart by the `Arc` their events carry
    let mut numbers: HashMap<usize, (Arc<str>, u32)> = HashMap::new();
    let mut by_path: HashMap<String, u32> = HashMap::new();
    for c in rx.iter() {
        for (path, n) in c.origins {
            by_path.insert(path.to_string(), n);
            numbers.insert(path.as_ptr() as usize, (path, n));
        }
        let n = c.batch.events.len() as u64;
        // in the evidence log (and on disk) before the store has them: no line is stored
        // that the log lacks (a line read again after a crash is logged twice)
        if let Some(log) = evidence.as_mut() {
            if let Err(e) = log.append_events(&c.batch.events, now_nanos()) {
                metrics.commit_errors.fetch_add(1, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
                return Err(e.into());
            }
        }
        let prepared = DuckStore::prepare(&c.batch);
        let r = {
            let mut st = store.lock().unwrap_or_else(|e| e.into_inner());
            st.write_prepared(prepared).and_then(|()| {
                if c.alerts.is_empty() {
                    return Ok(());
                }
                st.write_alerts(&c.alerts, &|p: &str| {
                    numbers
                        .get(&(p.as_ptr() as usize))
                        .map(|x| x.1)
                        .or_else(|| by_path.get(p).copied())
                })
            })
        };
        if let Err(e) = r {
            metrics.commit_errors.fetch_add(1, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
            return Err(e.into());
        }
        for a in c.acks {
            let _ = a.send(());
        }
        metrics.stored.fetch_add(n, Ordering::Relaxed);
        metrics.commits.fetch_add(1, Ordering::Relaxed);
        metrics.last_commit.store(now_nanos(), Ordering::Relaxed);
        // streams gone and no longer named by any alert
        if numbers.len() > 1024 {
            numbers.retain(|_, (a, _)| Arc::strong_count(a) > 1);
        }
    }
    if let Some(log) = evidence.as_mut() {
        log.seal(now_nanos())?;
    }
    Ok(())
}

/// AS numbers and announced prefixes from the server's GeoIP/ASN databases.
struct EnricherAsn(Arc<tansa_intel::Enricher>);

impl tansa_respond::AsnSource for EnricherAsn {
    fn asn_of(&self, ip: std::net::IpAddr) -> Option<u32> {
        self.0.geo()?.lookup(ip).as_number
    }

    fn prefixes(&self, asn: u32) -> Vec<ipnet::IpNet> {
        self.0
            .geo()
            .map(|g| g.asn_prefixes(asn))
            .unwrap_or_default()
    }
}
