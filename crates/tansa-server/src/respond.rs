//! The server's active response: a thread that turns new alerts into decisions
//! ([`tansa_respond::Responder`]) and keeps the firewall in step, the decisions API the CLI
//! uses while the server runs (`/api/v1/decisions`, token), and the CrowdSec local-API
//! subset bouncers pull from (`/v1/decisions/stream`, `/v1/decisions`; `X-Api-Key` of a
//! bouncer registered with `tansa bouncers add`). Response hooks run on worker threads of
//! their own ([`HookService`]); their approval queue is served at `/api/v1/approvals`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tansa_detect::Alert;
use tansa_event::now_nanos;
use tansa_respond::hooks::{approval_json, Dispatcher, Hooks, Job, Outcome};
use tansa_respond::lapi::{self, Cursor, Filter};
use tansa_respond::{Manual, RespondError, Responder};
use tansa_store::DuckStore;

use crate::http::Api;
use crate::ServeError;

/// The registry of bouncer API keys (`DATA/bouncers.json`; keys are kept as SHA-256).
pub const BOUNCERS_FILE: &str = "bouncers.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bouncer {
    pub name: String,
    pub key_sha256: String,
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    bouncers: Vec<Bouncer>,
}

fn sha256_hex(s: &str) -> String {
    crate::files::hex(&sha2::Sha256::digest(s.as_bytes()))
}

fn read_registry(data: &Path) -> Result<Registry, ServeError> {
    let path = data.join(BOUNCERS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| ServeError::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
        Err(source) => Err(ServeError::Io { path, source }),
    }
}

fn write_registry(data: &Path, r: &Registry) -> Result<(), ServeError> {
    let path = data.join(BOUNCERS_FILE);
    std::fs::create_dir_all(data).map_err(|source| ServeError::Io {
        path: data.to_owned(),
        source,
    })?;
    let text = serde_json::to_vec_pretty(r).expect("serialisable");
    crate::files::write_atomic(&path, &text, 0o600)
        .map_err(|source| ServeError::Io { path, source })
}

/// Registers a bouncer and returns its key (shown once, as `cscli bouncers add` does).
pub fn add_bouncer(data: &Path, name: &str) -> Result<String, ServeError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        return Err(ServeError::Config(format!(
            "bouncer name {name:?}: letters, digits and - _ . @ only"
        )));
    }
    let mut r = read_registry(data)?;
    if r.bouncers.iter().any(|b| b.name == name) {
        return Err(ServeError::Config(format!(
            "bouncer {name} exists (delete it first)"
        )));
    }
    let key = crate::files::hex(&crate::files::random::<24>()?);
    r.bouncers.push(Bouncer {
        name: name.to_owned(),
        key_sha256: sha256_hex(&key),
        created: jiff::Timestamp::now().to_string(),
    });
    write_registry(data, &r)?;
    Ok(key)
}

pub fn list_bouncers(data: &Path) -> Result<Vec<Bouncer>, ServeError> {
    Ok(read_registry(data)?.bouncers)
}

/// Removes a bouncer (its key stops working at the server's next start or reload).
pub fn delete_bouncer(data: &Path, name: &str) -> Result<bool, ServeError> {
    let mut r = read_registry(data)?;
    let before = r.bouncers.len();
    r.bouncers.retain(|b| b.name != name);
    let gone = r.bouncers.len() != before;
    if gone {
        write_registry(data, &r)?;
    }
    Ok(gone)
}

/// What the HTTP handlers share with the responder thread.
pub struct Respond {
    pub responder: Mutex<Responder>,
    data: PathBuf,
    /// Bouncer key hash → name (re-read when a key is not found, so new bouncers work at once).
    keys: Mutex<HashMap<String, String>>,
    /// When the registry was last read (an unknown key re-reads it at most once a second,
    /// so random keys cannot make every request read the file).
    keys_read: Mutex<std::time::Instant>,
    cursors: Mutex<HashMap<String, Cursor>>,
    /// Response hooks (none configured: `None`).
    pub hooks: Option<HookService>,
}

/// Response hooks in the server: the dispatcher (what runs when, the approval queue) and a
/// worker thread per hook, so that a slow webhook or script holds up neither the responder
/// nor the other hooks.
pub struct HookService {
    pub dispatcher: Mutex<Dispatcher>,
    hooks: Arc<Hooks>,
    workers: Vec<Sender<Job>>,
}

/// Runs a hook may have waiting before new ones are dropped (and recorded as dropped).
const HOOK_QUEUE: usize = 256;

impl HookService {
    /// Starts a worker per hook, each with a connection of its own to the store (none when no
    /// hook is configured).
    pub fn start(hooks: Arc<Hooks>, store: DuckStore) -> Result<Option<HookService>, ServeError> {
        if hooks.is_empty() {
            return Ok(None);
        }
        let dispatcher = Dispatcher::open(hooks.clone(), store)
            .map_err(|e| ServeError::Config(format!("[response] hooks: {e}")))?;
        let mut workers = Vec::new();
        for h in hooks.hooks() {
            let (tx, rx) = crossbeam_channel::bounded::<Job>(HOOK_QUEUE);
            let mut st = dispatcher
                .store_clone()
                .map_err(|e| ServeError::Config(format!("[response] hooks: {e}")))?;
            let hs = hooks.clone();
            std::thread::Builder::new()
                .name(format!("tansa-hook-{}", h.name()))
                .spawn(move || {
                    for job in rx {
                        let o = job.run(&hs, &mut st, now_nanos);
                        print_outcome(&hs, &job, &o);
                    }
                })
                .map_err(|source| ServeError::Io {
                    path: PathBuf::from("hook worker"),
                    source,
                })?;
            workers.push(tx);
        }
        Ok(Some(HookService {
            dispatcher: Mutex::new(dispatcher),
            hooks,
            workers,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Dispatcher> {
        self.dispatcher.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&self, jobs: Vec<Job>) {
        for job in jobs {
            if let Err(e) = self.workers[job.hook].try_send(job) {
                let job = e.into_inner();
                self.lock().dropped(&job, "its queue is full", now_nanos());
            }
        }
    }

    /// A new or grown alert (and the decision made of it).
    pub fn on_alert(&self, a: &Alert, d: Option<&tansa_respond::Decision>) {
        let jobs = self.lock().on_alert(a, d, now_nanos());
        self.submit(jobs);
    }

    /// Approvals past their time.
    pub fn tick(&self) {
        let jobs = self.lock().tick(now_nanos());
        self.submit(jobs);
    }

    /// Approves (and runs here, so that the answer says how it went) or rejects.
    pub fn settle(
        &self,
        id: u64,
        approve: bool,
        by: &str,
        note: Option<&str>,
    ) -> Result<serde_json::Value, RespondError> {
        let now = now_nanos();
        if !approve {
            let row = self.lock().reject(id, by, note, now)?;
            return Ok(serde_json::json!({ "approval": approval_json(&row, &self.hooks) }));
        }
        let (row, job, mut store) = {
            let mut d = self.lock();
            let (row, job) = d.approve(id, by, note, now)?;
            (row, job, d.store_clone()?)
        };
        let o = job.run(&self.hooks, &mut store, now_nanos);
        print_outcome(&self.hooks, &job, &o);
        Ok(serde_json::json!({
            "approval": approval_json(&row, &self.hooks),
            "outcome": o.outcome,
            "detail": o.detail,
        }))
    }
}

fn print_outcome(hooks: &Hooks, job: &Job, o: &Outcome) {
    // the detail holds a program's output: escaped
    eprintln!(
        "tansa: hook {} for alert {}: {} {}",
        hooks.hooks()[job.hook].name(),
        job.facts.alert_id,
        o.outcome,
        o.detail.escape_debug()
    );
}

impl Respond {
    pub fn new(
        responder: Responder,
        data: &Path,
        hooks: Option<HookService>,
    ) -> Result<Respond, ServeError> {
        let r = Respond {
            hooks,
            responder: Mutex::new(responder),
            data: data.to_owned(),
            keys: Mutex::new(HashMap::new()),
            keys_read: Mutex::new(std::time::Instant::now()),
            cursors: Mutex::new(HashMap::new()),
        };
        r.reload_keys()?;
        Ok(r)
    }

    fn reload_keys(&self) -> Result<(), ServeError> {
        let reg = read_registry(&self.data)?;
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = reg
            .bouncers
            .into_iter()
            .map(|b| (b.key_sha256, b.name))
            .collect();
        Ok(())
    }

    /// The bouncer a key belongs to.
    fn bouncer(&self, headers: &HeaderMap) -> Option<String> {
        let key = headers.get("x-api-key")?.to_str().ok()?.trim();
        let h = sha256_hex(key);
        let found = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .cloned();
        if found.is_some() {
            return found;
        }
        {
            let mut t = self.keys_read.lock().unwrap_or_else(|e| e.into_inner());
            if t.elapsed() < Duration::from_secs(1) {
                return None;
            }
            *t = std::time::Instant::now();
        }
        let _ = self.reload_keys();
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .cloned()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Responder> {
        self.responder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The responder thread: new alerts in, a tick every second (expiry, retries).
pub fn spawn(
    respond: Arc<Respond>,
    alerts: Receiver<Alert>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tansa-respond".into())
        .spawn(move || {
            {
                let mut r = respond.lock();
                if let Some(Err(e)) = r.sync(now_nanos()) {
                    eprintln!("tansa: {}: {e}", r.firewall_name());
                }
            }
            let mut last_tick = std::time::Instant::now();
            loop {
                match alerts.recv_timeout(Duration::from_secs(1)) {
                    Ok(a) => {
                        let d = match respond.lock().on_alert(&a, now_nanos()) {
                            Ok(d) => d,
                            Err(e) => {
                                eprintln!("tansa: decision for alert {}: {e}", a.id);
                                None
                            }
                        };
                        if let Some(d) = &d {
                            print_decision(d);
                        }
                        if let Some(h) = &respond.hooks {
                            h.on_alert(&a, d.as_ref());
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                if stop.load(Ordering::Relaxed) && alerts.is_empty() {
                    break;
                }
                // once a second, not once per alert (a tick looks at every decision)
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    last_tick = std::time::Instant::now();
                    respond.lock().tick(now_nanos());
                    if let Some(h) = &respond.hooks {
                        h.tick();
                    }
                }
            }
        })
}

fn print_decision(d: &tansa_respond::Decision) {
    let r = &d.row;
    let what = if let Some(why) = &r.refused {
        format!("refused ({why})")
    } else if r.simulated {
        "simulated".into()
    } else {
        "ban".into()
    };
    // values are parsed addresses/prefixes/AS numbers; the reason is a rule title
    eprintln!(
        "tansa: decision {} {what} {} {} for {} (offence {}, {})",
        r.id,
        r.scope,
        r.value,
        r.until
            .map_or("ever".into(), |u| tansa_respond::format_duration(
                u - r.created
            )),
        r.offence,
        r.reason.escape_debug()
    );
}

/// Where new alerts go (none when `[response]` is absent).
pub type AlertTx = Option<Sender<Alert>>;

pub fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/decisions", get(api_list).post(api_add))
        .route("/api/v1/decisions/apply", post(api_apply))
        .route(
            "/api/v1/decisions/{target}",
            axum::routing::delete(api_delete),
        )
        .route("/api/v1/approvals", get(api_approvals))
        .route("/api/v1/approvals/{id}/{verb}", post(api_settle))
        .route("/v1/decisions/stream", get(lapi_stream).head(lapi_head))
        .route("/v1/decisions", get(lapi_query).head(lapi_head))
}

fn message(code: StatusCode, m: String) -> Response {
    (code, Json(serde_json::json!({ "message": m, "error": m }))).into_response()
}

fn respond_of(api: &Api) -> Result<Arc<Respond>, Box<Response>> {
    api.respond.clone().ok_or_else(|| {
        Box::new(message(
            StatusCode::NOT_FOUND,
            "active response is off (no [response] section in the configuration)".into(),
        ))
    })
}

/// The responder, for a request that carries the API token.
fn guard(api: &Api, headers: &HeaderMap) -> Result<Arc<Respond>, Box<Response>> {
    if !crate::http::authorized(headers, &api.token) {
        return Err(Box::new(crate::http::unauthorized()));
    }
    respond_of(api)
}

/// The responder, for a request with the API token: the argument of every handler of the
/// decisions and approvals API (a request without the token is answered 401 before it).
struct Guarded(Arc<Respond>);

impl axum::extract::FromRequestParts<Api> for Guarded {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        api: &Api,
    ) -> Result<Self, Response> {
        guard(api, &parts.headers).map(Guarded).map_err(|e| *e)
    }
}

/// The responder and the bouncer's name, for a request with a registered `X-Api-Key`.
fn bouncer_guard(api: &Api, headers: &HeaderMap) -> Result<(Arc<Respond>, String), Box<Response>> {
    let r = respond_of(api)?;
    match r.bouncer(headers) {
        Some(name) => Ok((r, name)),
        None => Err(Box::new(message(
            StatusCode::FORBIDDEN,
            "access forbidden".into(),
        ))),
    }
}

#[derive(Deserialize)]
struct StreamParams {
    startup: Option<bool>,
    scopes: Option<String>,
    origins: Option<String>,
    scenarios_containing: Option<String>,
    scenarios_not_containing: Option<String>,
}

async fn lapi_head(State(api): State<Api>, headers: HeaderMap) -> Response {
    match bouncer_guard(&api, &headers) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => e.status().into_response(),
    }
}

async fn lapi_stream(
    State(api): State<Api>,
    Query(q): Query<StreamParams>,
    headers: HeaderMap,
) -> Response {
    let (r, name) = match bouncer_guard(&api, &headers) {
        Ok(x) => x,
        Err(e) => return *e,
    };
    let filter = Filter::new(
        q.scopes.as_deref(),
        q.origins.as_deref(),
        q.scenarios_containing.as_deref(),
        q.scenarios_not_containing.as_deref(),
    );
    let now = now_nanos();
    let cursor = r
        .cursors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&name)
        .copied();
    let (body, next) = {
        let resp = r.lock();
        lapi::stream(
            resp.decisions(),
            cursor,
            q.startup.unwrap_or(false),
            &filter,
            now,
        )
    };
    r.cursors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name, next);
    Json(body).into_response()
}

#[derive(Deserialize)]
struct QueryParams {
    ip: Option<String>,
    range: Option<String>,
    scope: Option<String>,
    value: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn lapi_query(
    State(api): State<Api>,
    Query(q): Query<QueryParams>,
    headers: HeaderMap,
) -> Response {
    let (r, _) = match bouncer_guard(&api, &headers) {
        Ok(x) => x,
        Err(e) => return *e,
    };
    let bad = |m: String| message(StatusCode::BAD_REQUEST, m);
    let mut ip = None;
    let mut range = None;
    let value = match (&q.ip, &q.range, q.scope.as_deref(), &q.value) {
        (Some(v), _, _, _) => Some((true, v.clone())),
        (None, Some(v), _, _) => Some((false, v.clone())),
        (None, None, Some(s), Some(v)) => Some((s.eq_ignore_ascii_case("ip"), v.clone())),
        _ => None,
    };
    if let Some((is_ip, v)) = value {
        if is_ip {
            match v.trim().parse() {
                Ok(a) => ip = Some(a),
                Err(_) => return bad(format!("{v:?}: not an address")),
            }
        } else {
            match tansa_respond::policy::parse_net(&v) {
                Ok(n) => range = Some(n),
                Err(e) => return bad(e.to_string()),
            }
        }
    }
    let resp = r.lock();
    Json(lapi::query(
        resp.decisions(),
        ip,
        range,
        q.kind.as_deref(),
        now_nanos(),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    all: bool,
}

async fn api_list(Guarded(r): Guarded, Query(q): Query<ListParams>) -> Response {
    let now = now_nanos();
    let resp = r.lock();
    let list: Vec<serde_json::Value> = resp
        .decisions()
        .iter()
        .filter(|d| q.all || d.active(now))
        .map(|d| d.to_json(now))
        .collect();
    Json(list).into_response()
}

/// `POST /api/v1/decisions`: a decision by hand.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddRequest {
    pub value: String,
    /// `90s`, `4h`, `7d`; none: the policy's ban time (escalated).
    pub duration: Option<String>,
    #[serde(default)]
    pub permanent: bool,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub simulate: bool,
}

impl AddRequest {
    pub fn manual(&self, origin: &str) -> Result<Manual, RespondError> {
        Ok(Manual {
            value: self.value.clone(),
            duration: self
                .duration
                .as_deref()
                .map(tansa_respond::parse_duration)
                .transpose()?,
            permanent: self.permanent,
            reason: self.reason.clone(),
            actor: self.actor.clone(),
            simulate: self.simulate,
            origin: origin.into(),
        })
    }
}

/// Runs `f` off the async threads (it takes the responder's lock, may run a hook); its
/// value as JSON, or its error as the answer.
async fn blocking<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, Box<Response>> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => *e,
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn respond_error(e: RespondError) -> Response {
    let code = match e {
        RespondError::NotFound(_) => StatusCode::NOT_FOUND,
        RespondError::Invalid(_) => StatusCode::BAD_REQUEST,
        RespondError::Refused(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(code, e.to_string())
}

async fn api_add(Guarded(r): Guarded, Json(req): Json<AddRequest>) -> Response {
    let m = match req.manual("manual") {
        Ok(m) => m,
        Err(e) => return respond_error(e),
    };
    let now = now_nanos();
    blocking(move || {
        r.lock()
            .add(&m, now)
            .map(|d| d.to_json(now))
            .map_err(|e| Box::new(respond_error(e)))
    })
    .await
}

#[derive(Deserialize)]
struct DeleteParams {
    #[serde(default)]
    by: String,
}

async fn api_delete(
    Guarded(r): Guarded,
    axum::extract::Path(target): axum::extract::Path<String>,
    Query(q): Query<DeleteParams>,
) -> Response {
    let now = now_nanos();
    blocking(move || {
        r.lock()
            .revoke(&target, &q.by, now)
            .map(|v| v.iter().map(|d| d.to_json(now)).collect::<Vec<_>>())
            .map_err(|e| Box::new(respond_error(e)))
    })
    .await
}

async fn api_apply(Guarded(r): Guarded) -> Response {
    let res = tokio::task::spawn_blocking(move || {
        let mut resp = r.lock();
        let name = resp.firewall_name().to_owned();
        (name, resp.sync(now_nanos()))
    })
    .await;
    match res {
        Ok((name, Some(Ok(rep)))) => Json(serde_json::json!({
            "firewall": name, "added": rep.added, "removed": rep.removed, "full": rep.full
        }))
        .into_response(),
        Ok((name, None)) => Json(serde_json::json!({ "firewall": name })).into_response(),
        Ok((name, Some(Err(e)))) => message(StatusCode::BAD_GATEWAY, format!("{name}: {e}")),
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn hooks_of(r: &Respond) -> Result<&HookService, Box<Response>> {
    r.hooks.as_ref().ok_or_else(|| {
        Box::new(message(
            StatusCode::NOT_FOUND,
            "no response hooks are configured ([[response.hook]])".into(),
        ))
    })
}

async fn api_approvals(Guarded(r): Guarded, Query(q): Query<ListParams>) -> Response {
    blocking(move || {
        let h = hooks_of(&r)?;
        let rows = h
            .lock()
            .list(q.all, now_nanos())
            .map_err(|e| Box::new(respond_error(e)))?;
        Ok(rows
            .iter()
            .map(|a| approval_json(a, &h.hooks))
            .collect::<Vec<_>>())
    })
    .await
}

/// `POST /api/v1/approvals/{id}/approve|reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SettleRequest {
    #[serde(default)]
    pub by: String,
    pub note: Option<String>,
}

async fn api_settle(
    Guarded(r): Guarded,
    axum::extract::Path((id, verb)): axum::extract::Path<(u64, String)>,
    Json(req): Json<SettleRequest>,
) -> Response {
    let approve = match verb.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return message(
                StatusCode::NOT_FOUND,
                format!("{verb:?}: approve or reject"),
            )
        }
    };
    blocking(move || {
        let h = hooks_of(&r)?;
        h.settle(id, approve, &req.by, req.note.as_deref())
            .map_err(|e| Box::new(respond_error(e)))
    })
    .await
}
