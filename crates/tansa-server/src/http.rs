//! The server's HTTP side (axum): `/health`, `/metrics` (Prometheus text format) and the API
//! that the CLI uses while the server holds the store (`POST /api/v1/query` with a
//! [`tansa_store::Request`]; `Authorization: Bearer TOKEN`).
//!
//! The address and the token file are written to `DATA/serve.json` while the server runs, so
//! that `tansa sql/search/stats/trace --data DATA` find it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tansa_store::DuckStore;

use std::collections::HashMap;

use crate::config::Config;
use crate::live::{Committed, Input, Metrics, Shipped, LATENCY_BUCKETS_MS};
use crate::ServeError;

/// The file in the data directory that tells the CLI where the running server listens.
pub const ANNOUNCE_FILE: &str = "serve.json";

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    pub metrics: Arc<Metrics>,
    /// A connection of its own to the store (reads see committed data while the writer
    /// goes on).
    pub reader: Arc<Mutex<DuckStore>>,
    pub token: String,
    pub ingest: Arc<Ingest>,
    /// Active response (decisions API, CrowdSec bouncers), when configured.
    pub respond: Option<Arc<crate::respond::Respond>>,
}

/// Largest request body accepted (compressed); a gzip body may expand to 4× that.
pub const MAX_BODY: usize = 64 << 20;

/// The streams of shipped lines: one per sender host and file, numbered for this run.
pub struct Ingest {
    tx: crossbeam_channel::Sender<Input>,
    started: i64,
    /// (host, path) → (stream id, next offset).
    streams: Mutex<HashMap<Sender, (u64, u64)>>,
}

/// Who sent shipped lines: their host and file.
type Sender = (Option<String>, String);

/// An answer that is an error (kept small: handlers return it often).
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// A shipped line and where it belongs.
struct Line {
    host: Option<String>,
    path: String,
    agent: Option<String>,
    text: String,
}

impl Ingest {
    pub(crate) fn new(tx: crossbeam_channel::Sender<Input>, started: i64) -> Ingest {
        Ingest {
            tx,
            started,
            streams: Mutex::default(),
        }
    }

    /// Queues lines (waiting while the queue is full: back-pressure on the sender) and
    /// returns what tells when they are stored.
    fn ship(
        &self,
        lines: Vec<Line>,
        format: Option<tansa_parse::Format>,
        metrics: &Metrics,
    ) -> Result<Vec<Committed>, ()> {
        let received = tansa_event::now_nanos();
        // grouped by stream, in order
        let mut groups: Vec<Shipped> = Vec::new();
        let mut at: HashMap<Sender, usize> = HashMap::new();
        {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            for l in lines {
                let key = (l.host.clone(), l.path.clone());
                let (id, next) = streams.entry(key.clone()).or_insert_with(|| {
                    let id = tansa_collect::fnv(&[
                        b"http",
                        l.host.as_deref().unwrap_or("").as_bytes(),
                        l.path.as_bytes(),
                        &self.started.to_le_bytes(),
                    ]);
                    (id, 0)
                });
                let g = *at.entry(key).or_insert_with(|| {
                    groups.push(Shipped {
                        stream: *id,
                        path: l.path.clone(),
                        host: l.host.clone(),
                        agent: l.agent.clone(),
                        format,
                        lines: Vec::new(),
                        next: None,
                        received,
                        done: None,
                    });
                    groups.len() - 1
                });
                let off = *next;
                *next += l.text.len() as u64 + 1;
                groups[g].lines.push((bytes::Bytes::from(l.text), off));
            }
        }
        groups
            .into_iter()
            .map(|g| g.send(&self.tx, metrics).ok_or(()))
            .collect()
    }
}

/// The running HTTP server.
pub struct Handle {
    pub addr: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl Handle {
    /// Waits for the server to end (after `stop` was set).
    pub fn stop(self) {
        let _ = self.thread.join();
    }
}

/// Reads the API token, or creates the file with a random one (mode 0600).
pub fn token(config: &Config, data: &Path) -> Result<String, ServeError> {
    let path = token_path(config, data);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServeError::Io { path, source: e }),
    }
    let raw = crate::files::random::<32>().map_err(|source| ServeError::Io {
        path: "/dev/urandom".into(),
        source,
    })?;
    let t = crate::files::hex(&raw);
    write_private(&path, &format!("{t}\n"))?;
    Ok(t)
}

fn token_path(config: &Config, data: &Path) -> PathBuf {
    config
        .server
        .token_file
        .clone()
        .unwrap_or_else(|| data.join("api-token"))
}

fn write_private(path: &Path, text: &str) -> Result<(), ServeError> {
    crate::files::write_atomic(path, text.as_bytes(), 0o600).map_err(|source| ServeError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes `DATA/serve.json`: the API's URL (loopback when listening on every address) and the
/// token file.
pub fn announce(
    data: &Path,
    addr: SocketAddr,
    config: &Config,
    metrics: &Metrics,
) -> Result<(), ServeError> {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if config.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let v = serde_json::json!({
        "url": format!("{scheme}://{a}"),
        "ca": config.server.tls_ca,
        "token_file": token_path(config, data),
        "pid": std::process::id(),
        "started": tansa_event::format_ts(metrics.started),
    });
    write_private(&data.join(ANNOUNCE_FILE), &format!("{v}\n"))
}

/// Removes `DATA/serve.json` (clean stop).
pub fn withdraw(data: &Path) {
    let _ = std::fs::remove_file(data.join(ANNOUNCE_FILE));
}

/// Binds `addr` and serves on two tokio worker threads until `stop` is set; over TLS when
/// `tls` is given.
pub fn serve(
    addr: SocketAddr,
    api: Api,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
) -> Result<Handle, ServeError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind {
        what: format!("http {addr}"),
        source,
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tansa-http")
        .enable_all()
        .build()?;
    let app = router(api);
    let thread = std::thread::Builder::new()
        .name("tansa-http".into())
        .spawn(move || {
            rt.block_on(async move {
                let shutdown = async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                if let Some(cfg) = tls {
                    let handle = axum_server::Handle::new();
                    let h = handle.clone();
                    tokio::spawn(async move {
                        shutdown.await;
                        h.graceful_shutdown(Some(Duration::from_secs(5)));
                    });
                    let config = axum_server::tls_rustls::RustlsConfig::from_config(cfg);
                    if let Ok(server) = axum_server::tls_rustls::from_tcp_rustls(listener, config) {
                        let _ = server.handle(handle).serve(app.into_make_service()).await;
                    }
                    return;
                }
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await;
            });
        })?;
    Ok(Handle { addr, thread })
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/query", post(query))
        .route("/api/v1/ingest", post(ingest_lines))
        .route("/api/v1/cases", post(case_op))
        // the Elasticsearch subset shippers need
        .route("/", get(es_info).head(es_head))
        .route("/_cluster/health", get(es_health))
        .route("/_license", get(es_license))
        .route("/_bulk", post(es_bulk))
        .route("/{index}/_bulk", post(es_bulk_index))
        .merge(crate::respond::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Whether the request carries the token: `Bearer T`, `ApiKey T` (or base64 of `id:T`), or
/// `Basic` with T as the password (what Filebeat, Fluent Bit and Vector can send).
pub(crate) fn authorized(headers: &HeaderMap, token: &str) -> bool {
    use base64::Engine;
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, value) = v.trim().split_once(' ').unwrap_or((v, ""));
    let value = value.trim();
    let decoded = || {
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let t = token.as_bytes();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => same(value.as_bytes(), t),
        "apikey" => {
            same(value.as_bytes(), t)
                || decoded().is_some_and(|d| {
                    d.split_once(':')
                        .is_some_and(|(_, k)| same(k.as_bytes(), t))
                })
        }
        "basic" => decoded().is_some_and(|d| {
            d.split_once(':')
                .is_some_and(|(_, p)| same(p.as_bytes(), t))
        }),
        _ => false,
    }
}

pub(crate) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "a valid token is needed (Authorization: Bearer …)".into(),
    )
}

/// The body as text, gunzipped when the sender compressed it.
fn body_text(headers: &HeaderMap, body: &[u8]) -> Result<String, Failure> {
    let gz = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let raw = if gz {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(body)
            .take(4 * MAX_BODY as u64)
            .read_to_end(&mut out)
            .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("gzip body: {e}")))?;
        out
    } else {
        body.to_vec()
    };
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Queues the lines and waits until they are stored (or the server stops).
async fn ship(
    api: &Api,
    lines: Vec<Line>,
    format: Option<tansa_parse::Format>,
) -> Result<(), Response> {
    let (ingest, metrics) = (api.ingest.clone(), api.metrics.clone());
    let waits = tokio::task::spawn_blocking(move || ingest.ship(lines, format, &metrics))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|()| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is stopping".into(),
            )
        })?;
    for w in waits {
        w.await.map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the lines could not be stored; send them again".into(),
            )
        })?;
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct IngestParams {
    host: Option<String>,
    path: Option<String>,
    format: Option<String>,
}

async fn ingest_lines(
    State(api): State<Api>,
    axum::extract::Query(q): axum::extract::Query<IngestParams>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&headers, &api.token) {
        return unauthorized();
    }
    let format = match q.format.as_deref().map(str::parse::<tansa_parse::Format>) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let text = match body_text(&headers, &body) {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let path = q.path.unwrap_or_else(|| "http-ingest".into());
    let lines: Vec<Line> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .map(|l| Line {
            host: q.host.clone(),
            path: path.clone(),
            agent: None,
            text: l.to_owned(),
        })
        .collect();
    let n = lines.len();
    match ship(&api, lines, format).await {
        Ok(()) => Json(serde_json::json!({ "accepted": n })).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn es_bulk_index(
    State(api): State<Api>,
    axum::extract::Path(index): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    bulk(api, Some(index), headers, body).await
}

async fn es_bulk(State(api): State<Api>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    bulk(api, None, headers, body).await
}

async fn bulk(
    api: Api,
    default_index: Option<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let started = std::time::Instant::now();
    if !authorized(&headers, &api.token) {
        return unauthorized();
    }
    let text = match body_text(&headers, &body) {
        Ok(t) => t,
        Err(f) => return f.into_response(),
    };
    let items = crate::ingest::bulk(&text);
    let mut lines = Vec::new();
    for it in &items {
        if let crate::ingest::Item::Doc { doc, .. } = it {
            lines.push(Line {
                host: doc.host.clone(),
                path: doc.path.clone().unwrap_or_else(|| "http-bulk".into()),
                agent: doc.agent.clone(),
                text: doc.line.clone(),
            });
        }
    }
    if let Err(f) = ship(&api, lines, None).await {
        return f.into_response();
    }
    let mut errors = false;
    let out: Vec<serde_json::Value> = items
        .iter()
        .enumerate()
        .map(|(n, it)| match it {
            crate::ingest::Item::Doc {
                action, index, id, ..
            } => serde_json::json!({ action.as_str(): {
                "_index": index.clone().or_else(|| default_index.clone()).unwrap_or_else(|| "tansa".into()),
                "_id": id.clone().unwrap_or_else(|| format!("{}-{n}", api.metrics.started)),
                "_version": 1, "result": "created", "status": 201,
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": n, "_primary_term": 1,
            }}),
            crate::ingest::Item::Refused {
                action,
                status,
                reason,
            } => {
                errors = true;
                serde_json::json!({ action.as_str(): {
                    "_index": default_index.clone().unwrap_or_else(|| "tansa".into()),
                    "status": status,
                    "error": {"type": "illegal_argument_exception", "reason": reason},
                }})
            }
        })
        .collect();
    Json(serde_json::json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": out,
    }))
    .into_response()
}

/// `GET /`: what Elasticsearch clients check before sending (a version they accept).
async fn es_info() -> Response {
    Json(serde_json::json!({
        "name": "tansa",
        "cluster_name": "tansa",
        "cluster_uuid": "tansa",
        "version": {
            "number": "8.11.0",
            "build_flavor": "default",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }))
    .into_response()
}

async fn es_head() -> StatusCode {
    StatusCode::OK
}

async fn es_health() -> Response {
    Json(serde_json::json!({"cluster_name": "tansa", "status": "green", "number_of_nodes": 1}))
        .into_response()
}

async fn es_license() -> Response {
    Json(serde_json::json!({"license": {"status": "active", "type": "basic", "uid": "tansa"}}))
        .into_response()
}

async fn health(State(api): State<Api>) -> Response {
    let m = &api.metrics;
    let now = tansa_event::now_nanos();
    let last = m.last_commit.load(Ordering::Relaxed);
    let failed = m.commit_errors.load(Ordering::Relaxed) > 0;
    let body = serde_json::json!({
        "status": if failed { "failing" } else { "ok" },
        "uptime_seconds": (now - m.started) as f64 / 1e9,
        "last_commit_seconds_ago": (last > 0).then(|| (now - last) as f64 / 1e9),
        "lines": m.lines.load(Ordering::Relaxed),
        "events": m.events.load(Ordering::Relaxed),
        "stored": m.stored.load(Ordering::Relaxed),
        "alerts": m.alerts.load(Ordering::Relaxed),
    });
    let code = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

/// A Prometheus label value.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in Prometheus text format.
pub fn render(m: &Metrics) -> String {
    let mut o = String::new();
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    one(
        "tansa_lines_received_total",
        "counter",
        "Lines received from all sources.",
        l(&m.lines),
    );
    one(
        "tansa_bytes_received_total",
        "counter",
        "Bytes of the lines received.",
        l(&m.bytes),
    );
    one(
        "tansa_events_total",
        "counter",
        "Events through detection.",
        l(&m.events),
    );
    one(
        "tansa_events_unparsed_total",
        "counter",
        "Lines no parser understood (stored as they are).",
        l(&m.unparsed),
    );
    one(
        "tansa_events_stored_total",
        "counter",
        "Events committed to the store.",
        l(&m.stored),
    );
    one(
        "tansa_commits_total",
        "counter",
        "Store commits.",
        l(&m.commits),
    );
    one(
        "tansa_commit_errors_total",
        "counter",
        "Store commits that failed.",
        l(&m.commit_errors),
    );
    one(
        "tansa_alerts_total",
        "counter",
        "Alerts raised.",
        l(&m.alerts),
    );
    one(
        "tansa_alerts_retired_total",
        "counter",
        "Alerts dropped from memory once stored and closed.",
        l(&m.alerts_retired),
    );
    one(
        "tansa_intel_reloads_total",
        "counter",
        "Indicator feeds loaded again after their files changed.",
        l(&m.intel_reloads),
    );
    one(
        "tansa_intel_reload_errors_total",
        "counter",
        "Feed reloads that failed (the indicators before them stay).",
        l(&m.intel_reload_errors),
    );
    one(
        "tansa_intel_indicators",
        "gauge",
        "Indicators in use.",
        l(&m.intel_indicators),
    );
    one(
        "tansa_streams",
        "gauge",
        "Streams being parsed (file instances, syslog connections and senders).",
        l(&m.streams),
    );
    one(
        "tansa_queue_batches",
        "gauge",
        "Line batches waiting for the parser.",
        l(&m.queued),
    );
    one(
        "tansa_duplicates_dropped_total",
        "counter",
        "Lines received again (resent by an agent) and dropped.",
        l(&m.duplicates),
    );
    one(
        "tansa_lines_dropped_total",
        "counter",
        "Lines lost: UDP datagrams that found the queue and the disk spool full.",
        l(&m.dropped),
    );
    let spooled: u64 = m
        .spools
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|s| s.waiting())
        .sum();
    one(
        "tansa_udp_spool_bytes",
        "gauge",
        "Bytes of UDP datagrams waiting in the disk spools.",
        spooled as f64,
    );
    one(
        "tansa_tail_errors_total",
        "counter",
        "Polls of followed files that failed.",
        l(&m.tail_errors),
    );
    one(
        "tansa_start_time_seconds",
        "gauge",
        "When the server started (Unix time).",
        m.started as f64 / 1e9,
    );
    one(
        "tansa_last_commit_time_seconds",
        "gauge",
        "When the store last committed (Unix time; 0: not yet).",
        m.last_commit.load(Ordering::Relaxed) as f64 / 1e9,
    );
    let name = "tansa_detection_latency_seconds";
    let _ = writeln!(
        o,
        "# HELP {name} Time from receiving a line to its detection.\n# TYPE {name} histogram"
    );
    let mut cum = 0;
    for (i, b) in LATENCY_BUCKETS_MS.iter().enumerate() {
        cum += m.latency[i].load(Ordering::Relaxed);
        let _ = writeln!(o, "{name}_bucket{{le=\"{}\"}} {cum}", *b as f64 / 1000.0);
    }
    cum += m.latency[LATENCY_BUCKETS_MS.len()].load(Ordering::Relaxed);
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {cum}");
    let _ = writeln!(
        o,
        "{name}_sum {}\n{name}_count {cum}",
        m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let listeners = m.listeners.lock().unwrap_or_else(|e| e.into_inner());
    for (metric, help, get) in [
        (
            "tansa_syslog_connections_total",
            "Connections (TCP) or senders (UDP) accepted.",
            (|c: &tansa_collect::syslog::Counters| &c.connections)
                as fn(&tansa_collect::syslog::Counters) -> &std::sync::atomic::AtomicU64,
        ),
        (
            "tansa_syslog_refused_total",
            "Connections refused (limit reached).",
            |c| &c.refused,
        ),
        ("tansa_syslog_messages_total", "Messages received.", |c| {
            &c.messages
        }),
        (
            "tansa_syslog_bad_frames_total",
            "Connections closed for a framing error.",
            |c| &c.bad_frames,
        ),
        (
            "tansa_syslog_tls_refused_total",
            "TLS connections refused at the handshake.",
            |c| &c.tls_refused,
        ),
        (
            "tansa_syslog_spooled_total",
            "UDP datagrams put in the disk spool (the queue was full).",
            |c| &c.spooled,
        ),
        (
            "tansa_syslog_dropped_total",
            "UDP datagrams dropped (the queue and the disk spool were full).",
            |c| &c.dropped,
        ),
        (
            "tansa_syslog_kernel_drops_total",
            "UDP datagrams the kernel dropped before they were read (socket buffer full).",
            |c| &c.kernel_drops,
        ),
    ] {
        let _ = writeln!(o, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (n, c) in listeners.iter() {
            let _ = writeln!(
                o,
                "{metric}{{listener=\"{}\"}} {}",
                label(n),
                get(c).load(Ordering::Relaxed)
            );
        }
    }
    drop(listeners);
    let agents = m.agents.lock().unwrap_or_else(|e| e.into_inner());
    for (metric, kind, help, get) in [
        (
            "tansa_agent_lines_read_total",
            "counter",
            "Lines an agent read (its last report).",
            (|r: &crate::live::AgentReport| r.read) as fn(&crate::live::AgentReport) -> u64,
        ),
        (
            "tansa_agent_lines_sent_total",
            "counter",
            "Lines of an agent the server acknowledged (its last report).",
            |r| r.sent,
        ),
        (
            "tansa_agent_reconnects_total",
            "counter",
            "Failed connection attempts of an agent (its last report).",
            |r| r.reconnects,
        ),
        (
            "tansa_agent_spool_bytes",
            "gauge",
            "Bytes in an agent's spool not yet acknowledged (its last report).",
            |r| r.spooled,
        ),
    ] {
        let _ = writeln!(o, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
        for (a, (r, _)) in agents.iter() {
            let _ = writeln!(o, "{metric}{{agent=\"{}\"}} {}", label(a), get(r));
        }
    }
    let metric = "tansa_agent_last_report_time_seconds";
    let _ = writeln!(
        o,
        "# HELP {metric} When an agent last reported (Unix time).\n# TYPE {metric} gauge"
    );
    for (a, (_, at)) in agents.iter() {
        let _ = writeln!(o, "{metric}{{agent=\"{}\"}} {}", label(a), *at as f64 / 1e9);
    }
    o
}

async fn metrics(State(api): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&api.metrics),
    )
        .into_response()
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /api/v1/cases`: a [`tansa_store::cases::CaseOp`] applied to the store (the command
/// line's `tansa case` while the server holds it); answers `{"id": N}`.
async fn case_op(State(api): State<Api>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&headers, &api.token) {
        return unauthorized();
    }
    let op: tansa_store::cases::CaseOp = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    let reader = api.reader.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut st = reader.lock().unwrap_or_else(|e| e.into_inner());
        st.case_op(&op, tansa_event::now_nanos())
    })
    .await;
    match r {
        Ok(Ok(id)) => Json(serde_json::json!({ "id": id })).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn query(State(api): State<Api>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&headers, &api.token) {
        return unauthorized();
    }
    let req: tansa_store::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
    };
    let reader = api.reader.clone();
    let r = tokio::task::spawn_blocking(move || {
        let st = reader.lock().unwrap_or_else(|e| e.into_inner());
        tansa_store::execute(&*st, &req)
    })
    .await;
    match r {
        Ok(Ok(resp)) => Json(resp).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
