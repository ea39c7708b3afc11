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

use crate::config::Config;
use crate::live::{Metrics, LATENCY_BUCKETS_MS};
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
    let mut raw = [0u8; 32];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .map_err(|source| ServeError::Io {
                path: "/dev/urandom".into(),
                source,
            })?;
    }
    let t: String = raw.iter().map(|b| format!("{b:02x}")).collect();
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
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| ServeError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
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
    let v = serde_json::json!({
        "url": format!("http://{a}"),
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

/// Binds `addr` and serves on two tokio worker threads until `stop` is set.
pub fn serve(addr: SocketAddr, api: Api, stop: Arc<AtomicBool>) -> Result<Handle, ServeError> {
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
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let shutdown = async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
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
        .with_state(api)
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

async fn query(State(api): State<Api>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.trim().as_bytes(), api.token.as_bytes()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "a valid token is needed (Authorization: Bearer …)".into(),
        );
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
