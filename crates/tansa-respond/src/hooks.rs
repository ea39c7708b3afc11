//! Response hooks: for the alerts the configuration names, a notification (Slack, DingTalk,
//! Feishu/Lark, WeCom, a JSON webhook, e-mail over SMTP) or a program run with the alert's
//! fields — at once, or once a person approves it (`tansa approvals`).
//!
//! [`Hooks`] is the checked configuration and knows how to run one hook; [`Dispatcher`]
//! decides what runs when (once per alert and hook, a rate limit per hook, the approval queue
//! and its timeout policy) and keeps the record: every run, every approval asked, given,
//! refused or timed out is a row of `actions` (kind `hook` or `approval`), approvals are rows
//! of `approvals`.
//!
//! Attacker text (user names, the alert's fields) is data everywhere: programs get it as
//! separate arguments and environment variables (never a shell string), messages get it with
//! control characters escaped and the format's markup neutralised (Slack's `<…>` links and
//! mentions, Feishu's `<at>` tags).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tansa_detect::{Alert, Severity};
use tansa_store::{ActionRow, ApprovalRow, DuckStore};

use crate::policy::rule_matches;
use crate::{format_duration, parse_duration, RespondError, Result, SECOND};

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A Slack incoming webhook (`{"text": …}`).
    Slack,
    /// A DingTalk robot (`msgtype` text; `secret`: the signed URL).
    Dingtalk,
    /// A Feishu/Lark bot (`msg_type` text; `secret`: the signed body).
    Feishu,
    /// A WeCom (企业微信) group robot (`msgtype` text).
    Wecom,
    /// Any HTTP endpoint: the alert as JSON (`headers` added).
    Webhook,
    /// Mail over SMTP (`smtp`, `from`, `to`).
    Email,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::Dingtalk => "dingtalk",
            Format::Feishu => "feishu",
            Format::Wecom => "wecom",
            Format::Webhook => "webhook",
            Format::Email => "email",
        }
    }
}

/// What happens to an approval nobody answered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    /// It is dropped (state `expired`): the safe default for high-impact actions.
    #[default]
    Reject,
    /// It runs (approved by `timeout`).
    Run,
}

/// `[[response.hook]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Unique; named in the record and in `tansa approvals`.
    pub name: String,
    /// Rule ids (a trailing `*` matches a prefix); none: any rule.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The least severity (default: any).
    #[serde(default, deserialize_with = "crate::policy::severity")]
    pub severity: Option<Severity>,
    /// A notification in this format …
    pub notify: Option<Format>,
    pub url: Option<String>,
    /// DingTalk and Feishu signing secret.
    pub secret: Option<String>,
    /// Extra HTTP headers (`webhook`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required`, `smtps://host:465`.
    pub smtp: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// … or a program and its arguments; `{rule_id}`, `{source_ip}`, `{user}`, … are replaced
    /// in each argument (see [`PLACEHOLDERS`]). Never run through a shell.
    #[serde(default)]
    pub run: Vec<String>,
    /// How long one run or request may take (default 30s).
    pub timeout: Option<String>,
    /// Wait for a person: `tansa approvals approve|reject ID`.
    #[serde(default)]
    pub approve: bool,
    /// How long an approval waits (default 1h; `never`).
    pub approve_timeout: Option<String>,
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// A notification hook told of every approval this hook asks for.
    pub ask: Option<String>,
    /// At most this many runs a minute (default 30; 0: no limit); the rest are recorded as
    /// throttled.
    pub max_per_minute: Option<u32>,
}

/// The placeholders of `run` arguments (and the `TANSA_*` environment variables, upper-case).
pub const PLACEHOLDERS: &[&str] = &[
    "alert_id",
    "rule_id",
    "rule_title",
    "severity",
    "source_ip",
    "user",
    "host",
    "count",
    "first_seen",
    "last_seen",
    "decision",
    "hook",
    "approval",
    "approved_by",
];

/// What a hook is run with: the alert's fields, kept as they were (an approval may run the
/// hook hours later, or after a restart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub alert_id: String,
    pub rule_id: String,
    pub rule_title: String,
    pub severity: String,
    pub source_ip: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// What the responder decided (`ban 203.0.113.9 for 1h (#12)`), when it did.
    pub decision: Option<String>,
    /// The alert as JSON.
    pub alert: serde_json::Value,
}

impl Facts {
    pub fn new(a: &Alert, decision: Option<&crate::Decision>) -> Facts {
        Facts {
            alert_id: a.id.clone(),
            rule_id: a.rule_id.into(),
            rule_title: a.rule_title.into(),
            severity: a.severity.as_str().into(),
            source_ip: a.source_ip.map(|i| i.to_string()),
            user: a.user.clone(),
            host: a.host.clone(),
            count: a.count,
            first_seen: tansa_event::format_ts(a.first_seen),
            last_seen: tansa_event::format_ts(a.last_seen),
            decision: decision.map(|d| {
                let r = &d.row;
                let what = if r.refused.is_some() {
                    "refused ban of"
                } else if r.simulated {
                    "simulated ban of"
                } else {
                    "ban"
                };
                let how_long = r.until.map_or("until revoked".into(), |u| {
                    format!("for {}", format_duration(u - r.created))
                });
                format!("{what} {} {how_long} (#{})", r.value, r.id)
            }),
            alert: a.to_json(),
        }
    }
}

/// The approval a run belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum Approval {
    /// Asked for: the notice sent to the `ask` hook.
    Asked {
        id: u64,
        hook: String,
        expires: Option<i64>,
        on_timeout: OnTimeout,
    },
    /// Given (by a person, or `timeout`).
    Given { id: u64, by: String },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `ok`, `error`, `timeout`.
    pub outcome: &'static str,
    pub detail: String,
}

impl Outcome {
    fn ok(detail: String) -> Outcome {
        Outcome {
            outcome: "ok",
            detail,
        }
    }
    fn error(detail: String) -> Outcome {
        Outcome {
            outcome: "error",
            detail,
        }
    }
}

#[derive(Debug, Clone)]
enum Action {
    Notify(Format),
    Run(Vec<String>),
}

/// One checked hook.
#[derive(Debug, Clone)]
pub struct Hook {
    pub config: HookConfig,
    action: Action,
    timeout: Duration,
    approve_timeout: Option<i64>,
    ask: Option<usize>,
}

impl Hook {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    fn matches(&self, a: &Alert) -> bool {
        self.config.severity.is_none_or(|s| a.severity >= s)
            && rule_matches(&self.config.rules, a.rule_id)
    }

    /// What it does, for lists (`slack`, `run /usr/local/sbin/lock-user`).
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Notify(f) => f.as_str().into(),
            Action::Run(argv) => format!("run {}", argv[0]),
        }
    }

    /// Runs the hook once (a request, a mail, a program) and says how it ended.
    pub fn execute(&self, facts: &Facts, approval: Option<&Approval>) -> Outcome {
        match &self.action {
            Action::Notify(f) => self.notify(*f, facts, approval),
            Action::Run(argv) => {
                run_program(argv, &self.vars(facts, approval), facts, self.timeout)
            }
        }
    }

    fn vars(&self, f: &Facts, approval: Option<&Approval>) -> Vec<(&'static str, String)> {
        let (id, by) = match approval {
            Some(Approval::Given { id, by }) => (id.to_string(), by.clone()),
            Some(Approval::Asked { id, .. }) => (id.to_string(), String::new()),
            None => (String::new(), String::new()),
        };
        vec![
            ("alert_id", f.alert_id.clone()),
            ("rule_id", f.rule_id.clone()),
            ("rule_title", f.rule_title.clone()),
            ("severity", f.severity.clone()),
            ("source_ip", f.source_ip.clone().unwrap_or_default()),
            ("user", f.user.clone().unwrap_or_default()),
            ("host", f.host.clone().unwrap_or_default()),
            ("count", f.count.to_string()),
            ("first_seen", f.first_seen.clone()),
            ("last_seen", f.last_seen.clone()),
            ("decision", f.decision.clone().unwrap_or_default()),
            ("hook", self.config.name.clone()),
            ("approval", id),
            ("approved_by", by),
        ]
    }

    fn notify(&self, format: Format, facts: &Facts, approval: Option<&Approval>) -> Outcome {
        let text = message(facts, approval, format);
        if format == Format::Email {
            return self.mail(&text);
        }
        let url = self.config.url.clone().unwrap_or_default();
        let secret = self.config.secret.as_deref();
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let (url, body) = match format {
            Format::Slack => (url, serde_json::json!({ "text": text })),
            Format::Dingtalk => {
                let url = match secret {
                    Some(s) => {
                        let sign = dingtalk_sign(s, now_ms);
                        let sep = if url.contains('?') { '&' } else { '?' };
                        format!("{url}{sep}timestamp={now_ms}&sign={sign}")
                    }
                    None => url,
                };
                (
                    url,
                    serde_json::json!({ "msgtype": "text", "text": { "content": text } }),
                )
            }
            Format::Feishu => {
                let mut body =
                    serde_json::json!({ "msg_type": "text", "content": { "text": text } });
                if let Some(s) = secret {
                    let ts = now_ms / 1000;
                    body["timestamp"] = ts.to_string().into();
                    body["sign"] = feishu_sign(s, ts).into();
                }
                (url, body)
            }
            Format::Wecom => (
                url,
                serde_json::json!({ "msgtype": "text", "text": { "content": text } }),
            ),
            Format::Webhook | Format::Email => {
                let approval = approval.map(|a| match a {
                    Approval::Asked { id, expires, .. } => serde_json::json!({
                        "id": id, "state": "pending", "expires": expires.map(tansa_event::format_ts)
                    }),
                    Approval::Given { id, by } => {
                        serde_json::json!({ "id": id, "state": "approved", "by": by })
                    }
                });
                (
                    url,
                    serde_json::json!({
                        "hook": self.config.name,
                        "text": text,
                        "alert": facts.alert,
                        "decision": facts.decision,
                        "approval": approval,
                    }),
                )
            }
        };
        self.post(format, &url, &body)
    }

    fn post(&self, format: Format, url: &str, body: &serde_json::Value) -> Outcome {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("tansa/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        // where the message went, without a token in its query
        let shown = url.split('?').next().unwrap_or(url);
        let mut errors = Vec::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 << (2 * attempt)));
            }
            let mut req = agent
                .post(url)
                .header("content-type", "application/json; charset=utf-8");
            for (k, v) in &self.config.headers {
                req = req.header(k, v);
            }
            match req.send(body.to_string()) {
                Ok(mut res) => {
                    let status = res.status().as_u16();
                    let text = res
                        .body_mut()
                        .with_config()
                        .limit(64 << 10)
                        .read_to_string()
                        .unwrap_or_default();
                    if (200..300).contains(&status) {
                        return match answer_error(format, &text) {
                            None => Outcome::ok(format!("{shown}: HTTP {status}")),
                            Some(e) => Outcome::error(format!("{shown}: {e}")),
                        };
                    }
                    errors.push(format!("HTTP {status} {}", clip(&text, 200)));
                    // a refusal is final; a server error or a rate limit is worth another try
                    if status != 429 && status < 500 {
                        break;
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Outcome::error(format!("{shown}: {}", errors.join("; ")))
    }

    fn mail(&self, text: &str) -> Outcome {
        use lettre::Transport;
        let c = &self.config;
        let url = c.smtp.as_deref().unwrap_or_default();
        let subject = text.lines().next().unwrap_or("tansa");
        let build = || -> std::result::Result<(lettre::Message, lettre::SmtpTransport), String> {
            let mut m = lettre::Message::builder()
                .from(
                    c.from
                        .as_deref()
                        .unwrap_or_default()
                        .parse()
                        .map_err(|e| format!("from: {e}"))?,
                )
                .subject(subject);
            for to in &c.to {
                m = m.to(to.parse().map_err(|e| format!("to {to}: {e}"))?);
            }
            let m = m
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(text.to_owned())
                .map_err(|e| e.to_string())?;
            let t = lettre::SmtpTransport::from_url(url)
                .map_err(|e| e.to_string())?
                .timeout(Some(self.timeout))
                .build();
            Ok((m, t))
        };
        let shown = smtp_shown(url);
        match build() {
            Ok((m, t)) => match t.send(&m) {
                Ok(r) => Outcome::ok(format!("{shown}: {} to {}", r.code(), c.to.join(", "))),
                Err(e) => Outcome::error(format!("{shown}: {e}")),
            },
            Err(e) => Outcome::error(format!("{shown}: {e}")),
        }
    }
}

/// An SMTP URL without its password.
fn smtp_shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}{}", &url[..s + 3], &url[a + 1..]),
        _ => url.to_owned(),
    }
}

/// The error a chat service reports in a 200 answer (DingTalk and WeCom `errcode`, Feishu
/// `code`/`StatusCode`).
fn answer_error(format: Format, body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let (code, msg) = match format {
        Format::Dingtalk | Format::Wecom => (v.get("errcode"), v.get("errmsg")),
        Format::Feishu => (
            v.get("code").or_else(|| v.get("StatusCode")),
            v.get("msg").or_else(|| v.get("StatusMessage")),
        ),
        _ => return None,
    };
    let code = code?.as_i64()?;
    (code != 0).then(|| {
        format!(
            "error {code}: {}",
            clip(msg.and_then(|m| m.as_str()).unwrap_or(""), 200)
        )
    })
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DingTalk: `sign = urlencode(base64(HMAC-SHA256(secret, "{ms}\n{secret}")))`.
pub fn dingtalk_sign(secret: &str, ms: i64) -> String {
    let sig = b64(&hmac_sha256(
        secret.as_bytes(),
        format!("{ms}\n{secret}").as_bytes(),
    ));
    percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Feishu/Lark: `sign = base64(HMAC-SHA256("{s}\n{secret}", ""))`.
pub fn feishu_sign(secret: &str, secs: i64) -> String {
    b64(&hmac_sha256(format!("{secs}\n{secret}").as_bytes(), b""))
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Attacker text made safe for a message line: control characters (newlines included)
/// escaped, the format's markup neutralised, at most 200 bytes.
fn field(s: &str, format: Format) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clip(s, 200).chars() {
        match c {
            c if c.is_control() => out.extend(c.escape_default()),
            // Slack reads <…> as links and mentions, & as an entity
            '<' if format == Format::Slack => out.push_str("&lt;"),
            '>' if format == Format::Slack => out.push_str("&gt;"),
            '&' if format == Format::Slack => out.push_str("&amp;"),
            // Feishu reads <at user_id="all"> as a mention of everyone
            '<' if format == Format::Feishu => out.push('＜'),
            '>' if format == Format::Feishu => out.push('＞'),
            c => out.push(c),
        }
    }
    out
}

/// The text of a notification (its first line is the mail's subject).
pub fn message(f: &Facts, approval: Option<&Approval>, format: Format) -> String {
    let e = |s: &str| field(s, format);
    let mut lines = Vec::new();
    match approval {
        Some(Approval::Asked {
            id,
            hook,
            expires,
            on_timeout,
        }) => {
            lines.push(format!(
                "[tansa] approval #{id} asked: {} for {} {}",
                e(hook),
                f.severity.to_uppercase(),
                e(&f.rule_id)
            ));
            lines.push(format!(
                "approve: tansa approvals approve {id}    reject: tansa approvals reject {id}"
            ));
            if let Some(x) = expires {
                lines.push(format!(
                    "unanswered at {} it is {}",
                    tansa_event::format_ts(*x),
                    match on_timeout {
                        OnTimeout::Reject => "dropped",
                        OnTimeout::Run => "run",
                    }
                ));
            }
        }
        _ => lines.push(format!(
            "[tansa] {} {} — {}",
            f.severity.to_uppercase(),
            e(&f.rule_id),
            e(&f.rule_title)
        )),
    }
    let mut who = Vec::new();
    if let Some(ip) = &f.source_ip {
        who.push(format!("source {}", e(ip)));
    }
    if let Some(u) = &f.user {
        who.push(format!("user {}", e(u)));
    }
    if let Some(h) = &f.host {
        who.push(format!("host {}", e(h)));
    }
    if !who.is_empty() {
        lines.push(who.join("  "));
    }
    lines.push(format!(
        "{} events {} … {}",
        f.count, f.first_seen, f.last_seen
    ));
    if let Some(d) = &f.decision {
        lines.push(format!("decision: {}", e(d)));
    }
    if let Some(Approval::Given { id, by }) = approval {
        lines.push(format!("approval #{id} given by {}", e(by)));
    }
    lines.push(format!("alert {}", e(&f.alert_id)));
    let text = lines.join("\n");
    // WeCom takes 2048 bytes of text
    if format == Format::Wecom {
        clip(&text, 2000)
    } else {
        text
    }
}

/// Runs a program with the alert in its arguments, environment (`TANSA_*`) and standard input
/// (the alert as JSON); kills its process group when it outlives `timeout`.
fn run_program(
    argv: &[String],
    vars: &[(&'static str, String)],
    facts: &Facts,
    timeout: Duration,
) -> Outcome {
    use std::os::unix::process::CommandExt;
    let args: Vec<String> = argv[1..].iter().map(|a| substitute(a, vars)).collect();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in vars {
        cmd.env(format!("TANSA_{}", k.to_uppercase()), v);
    }
    cmd.env("TANSA_ALERT_JSON", facts.alert.to_string());
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::error(format!("{}: {e}", argv[0])),
    };
    let input = facts.alert.to_string();
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(input.as_bytes());
        }
    });
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if started.elapsed() >= timeout => {
                // the whole group: a script's children go with it
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break Err(());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Outcome::error(format!("{}: {e}", argv[0])),
        }
    };
    let _ = writer.join();
    let tail = |(r, done): (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>)| {
        // the pipe closes when the program (and its group) is gone; a descendant that
        // left the group may keep it open: wait a moment, not for ever
        let deadline = Instant::now() + Duration::from_secs(1);
        while !done.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let b = r.lock().unwrap_or_else(|e| e.into_inner());
        let s = String::from_utf8_lossy(&b);
        clip(s.trim(), 500).escape_debug().to_string()
    };
    let (out, err) = (tail(out), tail(err));
    let took = started.elapsed();
    let mut detail = format!("{} ({:.1}s)", argv[0], took.as_secs_f64());
    if !out.is_empty() {
        detail.push_str(&format!(" stdout: {out}"));
    }
    if !err.is_empty() {
        detail.push_str(&format!(" stderr: {err}"));
    }
    match status {
        Ok(s) if s.success() => Outcome::ok(detail),
        Ok(s) => Outcome::error(format!("{s}: {detail}")),
        Err(()) => Outcome {
            outcome: "timeout",
            detail: format!(
                "killed after {}: {detail}",
                format_duration(timeout.as_nanos() as i64)
            ),
        },
    }
}

/// What a pipe says (the first 64 KiB), read by a thread so that a chatty program never
/// blocks on a full pipe.
fn reader(
    r: Option<impl Read + Send + 'static>,
) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let done = std::thread::spawn(move || {
        if let Some(mut r) = r {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
                let room = (64usize << 10).saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    });
    (buf, done)
}

/// `{name}` replaced by its value in one argument (the value is never re-read).
fn substitute(arg: &str, vars: &[(&'static str, String)]) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after
            .find('}')
            .and_then(|j| vars.iter().find(|(k, _)| *k == &after[..j]).map(|v| (j, v)))
        {
            Some((j, (_, v))) => {
                out.push_str(v);
                rest = &after[j + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The hooks of the configuration, checked.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    hooks: Vec<Hook>,
}

impl Hooks {
    pub fn new(configs: &[HookConfig]) -> Result<Hooks> {
        let mut hooks: Vec<Hook> = Vec::new();
        for c in configs {
            let bad =
                |m: String| RespondError::Invalid(format!("[[response.hook]] {:?}: {m}", c.name));
            if c.name.is_empty() {
                return Err(RespondError::Invalid(
                    "[[response.hook]]: every hook needs a name".into(),
                ));
            }
            if hooks.iter().any(|h| h.config.name == c.name) {
                return Err(bad("a second hook of that name".into()));
            }
            let action = match (c.notify, c.run.is_empty()) {
                (Some(_), false) => return Err(bad("notify or run, not both".into())),
                (None, true) => return Err(bad("notify = \"slack\"|\"dingtalk\"|\"feishu\"|\"wecom\"|\"webhook\"|\"email\", or run = [program, args…]".into())),
                (None, false) => {
                    for a in &c.run {
                        let mut rest = a.as_str();
                        while let Some(i) = rest.find('{') {
                            let after = &rest[i + 1..];
                            if let Some(j) = after.find('}') {
                                let name = &after[..j];
                                if !name.is_empty()
                                    && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                                    && !PLACEHOLDERS.contains(&name)
                                {
                                    return Err(bad(format!(
                                        "{{{name}}}: no such placeholder (known: {})",
                                        PLACEHOLDERS.join(", ")
                                    )));
                                }
                            }
                            rest = after;
                        }
                    }
                    Action::Run(c.run.clone())
                }
                (Some(Format::Email), true) => {
                    if c.smtp.is_none() || c.from.is_none() || c.to.is_empty() {
                        return Err(bad("email needs smtp, from and to".into()));
                    }
                    lettre::SmtpTransport::from_url(c.smtp.as_deref().unwrap_or_default())
                        .map_err(|e| bad(format!("smtp: {e}")))?;
                    for a in c.to.iter().chain(c.from.iter()) {
                        a.parse::<lettre::message::Mailbox>()
                            .map_err(|e| bad(format!("{a:?}: {e}")))?;
                    }
                    Action::Notify(Format::Email)
                }
                (Some(f), true) => {
                    match c.url.as_deref() {
                        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                        _ => return Err(bad(format!("{} needs url = \"https://…\"", f.as_str()))),
                    }
                    if c.secret.is_some() && !matches!(f, Format::Dingtalk | Format::Feishu) {
                        return Err(bad("secret signs DingTalk and Feishu messages only".into()));
                    }
                    Action::Notify(f)
                }
            };
            let timeout = c
                .timeout
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .unwrap_or(30 * SECOND);
            let approve_timeout = match c.approve_timeout.as_deref() {
                Some("never") => None,
                Some(t) => Some(parse_duration(t)?),
                None => Some(3600 * SECOND),
            };
            hooks.push(Hook {
                config: c.clone(),
                action,
                timeout: Duration::from_nanos(timeout.max(0) as u64),
                approve_timeout,
                ask: None,
            });
        }
        for i in 0..hooks.len() {
            if let Some(ask) = hooks[i].config.ask.clone() {
                let name = hooks[i].config.name.clone();
                let j = hooks
                    .iter()
                    .position(|h| h.config.name == ask)
                    .ok_or_else(|| {
                        RespondError::Invalid(format!(
                            "[[response.hook]] {name:?}: ask = {ask:?}: no such hook"
                        ))
                    })?;
                if !matches!(hooks[j].action, Action::Notify(_)) || hooks[j].config.approve {
                    return Err(RespondError::Invalid(format!(
                        "[[response.hook]] {name:?}: ask = {ask:?} must name a notification hook without approval"
                    )));
                }
                if !hooks[i].config.approve {
                    return Err(RespondError::Invalid(format!(
                        "[[response.hook]] {name:?}: ask needs approve = true"
                    )));
                }
                hooks[i].ask = Some(j);
            }
        }
        Ok(Hooks { hooks })
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    pub fn hooks(&self) -> &[Hook] {
        &self.hooks
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.hooks.iter().position(|h| h.config.name == name)
    }
}

/// One run to make: a hook, what it is run with, and the approval it belongs to.
#[derive(Debug, Clone)]
pub struct Job {
    pub hook: usize,
    pub facts: Facts,
    pub approval: Option<Approval>,
}

impl Job {
    /// Runs it and records the outcome (`actions`, kind `hook`).
    pub fn run(&self, hooks: &Hooks, store: &mut DuckStore, now: impl Fn() -> i64) -> Outcome {
        let h = &hooks.hooks[self.hook];
        let o = h.execute(&self.facts, self.approval.as_ref());
        let about = match &self.approval {
            Some(Approval::Asked { id, .. }) => format!("approval #{id} asked; "),
            Some(Approval::Given { id, by }) => format!("approval #{id} by {by}; "),
            None => String::new(),
        };
        record(
            store,
            now(),
            "hook",
            h.name(),
            o.outcome,
            format!(
                "{about}alert {} {}: {}",
                self.facts.alert_id, self.facts.rule_id, o.detail
            ),
        );
        o
    }
}

fn record(
    store: &mut DuckStore,
    time: i64,
    kind: &str,
    target: &str,
    outcome: &str,
    detail: String,
) {
    let row = ActionRow {
        time,
        kind: kind.into(),
        decision_id: None,
        target: target.into(),
        outcome: outcome.into(),
        detail,
    };
    if let Err(e) = store.put_actions(&[row]) {
        eprintln!("tansa: recording a {kind} action: {e}");
    }
}

/// The approval as JSON (`tansa approvals list`, the API).
pub fn approval_json(a: &ApprovalRow, hooks: &Hooks) -> serde_json::Value {
    let facts: Facts = serde_json::from_str(&a.facts).unwrap_or_default();
    serde_json::json!({
        "id": a.id,
        "state": a.state,
        "created": tansa_event::format_ts(a.created),
        "expires": a.expires.map(tansa_event::format_ts),
        "hook": a.hook,
        "action": hooks.index(&a.hook).map(|i| hooks.hooks[i].describe()),
        "alert_id": a.alert_id,
        "rule_id": a.rule_id,
        "severity": facts.severity,
        "source_ip": facts.source_ip,
        "user": facts.user,
        "host": facts.host,
        "decision": facts.decision,
        "summary": a.summary,
        "decided": a.decided.map(tansa_event::format_ts),
        "decided_by": a.decided_by,
        "note": a.note,
    })
}

/// Decides what runs when: hooks once per alert, a rate limit per hook, the approval queue
/// and its timeouts. The runs themselves happen elsewhere (a worker per hook in the server,
/// in line for the command line), each recorded by [`Job::run`].
pub struct Dispatcher {
    pub hooks: Arc<Hooks>,
    store: DuckStore,
    /// (hook, alert id) → when it fired: an alert that grows does not fire again.
    fired: HashMap<(usize, String), i64>,
    /// Per hook: the minute counted, runs in it, runs held back.
    window: Vec<(i64, u32, u32)>,
    next_approval: u64,
    /// The earliest expiry among pending approvals (`None`: to be read from the store), so
    /// the tick reads the store only when one may be due.
    next_due: Option<Option<i64>>,
}

/// How long an alert's firing is remembered.
const REMEMBER_FIRED: i64 = 24 * 3600 * SECOND;

impl Dispatcher {
    pub fn open(hooks: Arc<Hooks>, store: DuckStore) -> Result<Dispatcher> {
        let next_approval = store.last_approval_id()? + 1;
        let n = hooks.len();
        Ok(Dispatcher {
            hooks,
            store,
            fired: HashMap::new(),
            window: vec![(0, 0, 0); n],
            next_approval,
            next_due: None,
        })
    }

    /// A new (or grown) alert: the runs to make now. Hooks that need approval are queued
    /// (and their `ask` hook told).
    pub fn on_alert(
        &mut self,
        a: &Alert,
        decision: Option<&crate::Decision>,
        now: i64,
    ) -> Vec<Job> {
        // a rule in simulation triggers no response (its alerts are only stored and shown)
        if a.simulated {
            return Vec::new();
        }
        let matching: Vec<usize> = (0..self.hooks.len())
            .filter(|&i| self.hooks.hooks[i].matches(a))
            .filter(|&i| !self.fired.contains_key(&(i, a.id.clone())))
            .collect();
        if matching.is_empty() {
            return Vec::new();
        }
        let facts = Facts::new(a, decision);
        let mut jobs = Vec::new();
        for i in matching {
            self.fired.insert((i, a.id.clone()), now);
            if !self.admit(i, now) {
                continue;
            }
            let h = self.hooks.hooks[i].clone();
            if !h.config.approve {
                jobs.push(Job {
                    hook: i,
                    facts: facts.clone(),
                    approval: None,
                });
                continue;
            }
            let id = self.next_approval;
            let expires = h.approve_timeout.map(|t| now + t);
            let row = ApprovalRow {
                id,
                created: now,
                expires,
                hook: h.name().into(),
                alert_id: Some(a.id.clone()),
                rule_id: Some(a.rule_id.into()),
                summary: format!(
                    "{} for {} {}{}",
                    h.describe(),
                    a.rule_id,
                    facts.source_ip.as_deref().unwrap_or(""),
                    facts
                        .user
                        .as_deref()
                        .map(|u| format!(" user {}", field(u, Format::Webhook)))
                        .unwrap_or_default()
                ),
                facts: serde_json::to_string(&facts).expect("serialisable"),
                state: "pending".into(),
                decided: None,
                decided_by: None,
                note: None,
            };
            if let Err(e) = self.store.put_approval(&row) {
                eprintln!("tansa: queueing approval for hook {}: {e}", h.name());
                continue;
            }
            self.next_approval += 1;
            // the earliest expiry, when known, may be this one
            self.next_due = self.next_due.map(|d| match (d, expires) {
                (Some(d), Some(e)) => Some(d.min(e)),
                (d, e) => d.or(e),
            });
            record(
                &mut self.store,
                now,
                "approval",
                h.name(),
                "pending",
                format!("#{id} {}: alert {}", row.summary, a.id),
            );
            if let Some(j) = h.ask {
                jobs.push(Job {
                    hook: j,
                    facts: facts.clone(),
                    approval: Some(Approval::Asked {
                        id,
                        hook: h.name().into(),
                        expires,
                        on_timeout: h.config.on_timeout,
                    }),
                });
            }
        }
        jobs
    }

    /// Counts a run against the hook's limit; false (and counted as held back) past it.
    fn admit(&mut self, i: usize, now: i64) -> bool {
        let limit = self.hooks.hooks[i].config.max_per_minute.unwrap_or(30);
        let minute = now / (60 * SECOND);
        let (m, _, held) = self.window[i];
        if m != minute {
            if held > 0 {
                let name = self.hooks.hooks[i].name().to_owned();
                record(
                    &mut self.store,
                    now,
                    "hook",
                    &name,
                    "throttled",
                    format!(
                        "{held} runs held back in the minute from {} (max_per_minute = {limit})",
                        tansa_event::format_ts(m * 60 * SECOND)
                    ),
                );
            }
            self.window[i] = (minute, 0, 0);
        }
        let w = &mut self.window[i];
        if limit > 0 && w.1 >= limit {
            w.2 += 1;
            return false;
        }
        w.1 += 1;
        true
    }

    /// Approves a pending approval: the run to make.
    pub fn approve(
        &mut self,
        id: u64,
        by: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<(ApprovalRow, Job)> {
        self.settle(id, "approved", by, note, now)
    }

    /// Rejects a pending approval.
    pub fn reject(
        &mut self,
        id: u64,
        by: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<ApprovalRow> {
        self.settle(id, "rejected", by, note, now).map(|(a, _)| a)
    }

    fn settle(
        &mut self,
        id: u64,
        state: &str,
        by: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<(ApprovalRow, Job)> {
        let row = self
            .store
            .approval(id)?
            .ok_or_else(|| RespondError::NotFound(format!("approval #{id}")))?;
        if row.state != "pending" {
            return Err(RespondError::Refused(format!(
                "approval #{id} is {} already{}",
                row.state,
                row.decided_by
                    .as_deref()
                    .map(|b| format!(" (by {b})"))
                    .unwrap_or_default()
            )));
        }
        let hook = self.hooks.index(&row.hook).ok_or_else(|| {
            RespondError::Invalid(format!(
                "approval #{id}: hook {:?} is no longer configured (reject it)",
                row.hook
            ))
        });
        let hook = match (state, hook) {
            ("approved", Err(e)) => return Err(e),
            (_, h) => h.unwrap_or(usize::MAX),
        };
        if !self.store.settle_approval(id, state, now, by, note)? {
            return Err(RespondError::Refused(format!(
                "approval #{id} was settled meanwhile"
            )));
        }
        record(
            &mut self.store,
            now,
            "approval",
            &row.hook,
            state,
            format!(
                "#{id} by {by}{}",
                note.map(|n| format!(": {}", field(n, Format::Webhook)))
                    .unwrap_or_default()
            ),
        );
        let facts: Facts = serde_json::from_str(&row.facts).unwrap_or_default();
        let settled = ApprovalRow {
            state: state.into(),
            decided: Some(now / 1000 * 1000),
            decided_by: Some(by.into()),
            note: note.map(str::to_owned),
            ..row
        };
        Ok((
            settled,
            Job {
                hook,
                facts,
                approval: Some(Approval::Given { id, by: by.into() }),
            },
        ))
    }

    /// Applies the timeout policy to approvals past their time: the runs to make (those whose
    /// policy is `run`). Forgets old firings.
    pub fn tick(&mut self, now: i64) -> Vec<Job> {
        self.fired.retain(|_, t| *t > now - REMEMBER_FIRED);
        let due: Vec<ApprovalRow> = match self.store.approvals(false, 0) {
            Ok(p) => p
                .into_iter()
                .filter(|a| a.expires.is_some_and(|e| e <= now))
                .collect(),
            Err(e) => {
                eprintln!("tansa: reading approvals: {e}");
                return Vec::new();
            }
        };
        let mut jobs = Vec::new();
        for a in due {
            let policy = self
                .hooks
                .index(&a.hook)
                .map_or(OnTimeout::Reject, |i| self.hooks.hooks[i].config.on_timeout);
            let res = match policy {
                OnTimeout::Run => self
                    .approve(
                        a.id,
                        "timeout",
                        Some("no answer in time; the policy runs it"),
                        now,
                    )
                    .map(|(_, j)| Some(j)),
                OnTimeout::Reject => self
                    .settle(a.id, "expired", "timeout", Some("no answer in time"), now)
                    .map(|_| None),
            };
            match res {
                Ok(Some(j)) => jobs.push(j),
                Ok(None) => {}
                Err(e) => eprintln!("tansa: approval #{}: {e}", a.id),
            }
        }
        jobs
    }

    /// Pending approvals, or (`all`) every one of the last 30 days.
    pub fn list(&self, all: bool, now: i64) -> Result<Vec<ApprovalRow>> {
        Ok(self.store.approvals(all, now - 30 * 24 * 3600 * SECOND)?)
    }

    /// A run that could not be queued: recorded as dropped.
    pub fn dropped(&mut self, job: &Job, why: &str, now: i64) {
        let name = self.hooks.hooks[job.hook].name().to_owned();
        record(
            &mut self.store,
            now,
            "hook",
            &name,
            "dropped",
            format!("alert {} {}: {why}", job.facts.alert_id, job.facts.rule_id),
        );
    }

    /// A connection of its own to the store (for a worker that records runs).
    pub fn store_clone(&self) -> Result<DuckStore> {
        Ok(self.store.try_clone()?)
    }

    /// Runs a job here and now (the command line; a hook's test).
    pub fn run_now(&mut self, job: &Job, now: impl Fn() -> i64) -> Outcome {
        let hooks = self.hooks.clone();
        job.run(&hooks, &mut self.store, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(user: &str) -> Facts {
        Facts {
            alert_id: "a1".into(),
            rule_id: "tansa.ssh.brute_force".into(),
            rule_title: "SSH brute force".into(),
            severity: "high".into(),
            source_ip: Some("203.0.113.9".into()),
            user: Some(user.into()),
            host: Some("web1".into()),
            count: 12,
            first_seen: "2026-11-23T10:00:00Z".into(),
            last_seen: "2026-11-23T10:01:00Z".into(),
            decision: Some("ban 203.0.113.9 for 1h (#3)".into()),
            alert: serde_json::json!({"id": "a1"}),
        }
    }

    fn hook(name: &str, run: &[&str]) -> HookConfig {
        HookConfig {
            name: name.into(),
            rules: vec![],
            severity: None,
            notify: None,
            url: None,
            secret: None,
            headers: BTreeMap::new(),
            smtp: None,
            from: None,
            to: vec![],
            run: run.iter().map(|s| s.to_string()).collect(),
            timeout: None,
            approve: false,
            approve_timeout: None,
            on_timeout: OnTimeout::Reject,
            ask: None,
            max_per_minute: None,
        }
    }

    #[test]
    fn once_per_alert_a_limit_per_minute_and_approvals_that_time_out() {
        use crate::responder::tests::{alert, store};
        use tansa_detect::Severity::High;
        let (dir, st) = store("hooks");
        let limited = HookConfig {
            max_per_minute: Some(2),
            ..hook("page", &["/bin/true"])
        };
        let ask = HookConfig {
            approve: true,
            approve_timeout: Some("10s".into()),
            on_timeout: OnTimeout::Run,
            ..hook("isolate", &["/bin/true", "{source_ip}"])
        };
        let never = HookConfig {
            approve: true,
            approve_timeout: Some("10s".into()),
            rules: vec!["other.*".into()],
            ..hook("never", &["/bin/true"])
        };
        let hooks = Arc::new(Hooks::new(&[limited, ask, never]).unwrap());
        let mut d = Dispatcher::open(hooks, st).unwrap();
        let t = 1_700_000_000 * SECOND;
        // a rule in simulation runs no hook
        let mut trial = alert("203.0.113.8", "tansa.ssh.brute_force", High);
        trial.simulated = true;
        assert!(d.on_alert(&trial, None, t).is_empty());
        assert!(d.list(false, t).unwrap().is_empty());
        let a = alert("203.0.113.9", "tansa.ssh.brute_force", High);
        let jobs = d.on_alert(&a, None, t);
        // "page" now; "isolate" queued; "never" does not match
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].hook, 0);
        assert_eq!(d.list(false, t).unwrap().len(), 1);
        // the alert grows: nothing again
        assert!(d.on_alert(&a, None, t + SECOND).is_empty());
        // two more alerts in the minute: the second is held back
        let b = alert("203.0.113.10", "tansa.ssh.brute_force", High);
        let c = alert("203.0.113.11", "tansa.ssh.brute_force", High);
        assert_eq!(
            d.on_alert(&b, None, t + 2 * SECOND)
                .iter()
                .filter(|j| j.hook == 0)
                .count(),
            1
        );
        assert_eq!(
            d.on_alert(&c, None, t + 3 * SECOND)
                .iter()
                .filter(|j| j.hook == 0)
                .count(),
            0
        );
        // a person rejects one; the others run when their time is up
        let pending = d.list(false, t).unwrap();
        assert_eq!(pending.len(), 3);
        d.reject(pending[0].id, "ops", Some("known scanner"), t + 4 * SECOND)
            .unwrap();
        assert!(d.tick(t + 9 * SECOND).is_empty());
        let ran = d.tick(t + 14 * SECOND);
        assert_eq!(ran.len(), 2);
        assert!(ran.iter().all(|j| j.hook == 1
            && matches!(&j.approval, Some(Approval::Given { by, .. }) if by == "timeout")));
        assert!(d.list(false, t).unwrap().is_empty());
        // the next minute records what was held back
        d.on_alert(
            &alert("198.51.100.1", "tansa.ssh.brute_force", High),
            None,
            t + 61 * SECOND,
        );
        let acts = d.store.actions(None).unwrap();
        let throttled: Vec<_> = acts.iter().filter(|a| a.outcome == "throttled").collect();
        assert_eq!(throttled.len(), 1, "{acts:?}");
        assert!(
            throttled[0].detail.starts_with("1 runs held back"),
            "{:?}",
            throttled[0]
        );
        for (state, n) in [("pending", 4), ("rejected", 1), ("approved", 2)] {
            assert_eq!(
                acts.iter()
                    .filter(|a| a.kind == "approval" && a.outcome == state)
                    .count(),
                n,
                "{state}: {acts:?}"
            );
        }
        drop(d);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn messages_escape_attacker_text_per_format() {
        let f = facts("<!channel>\nroot & <at user_id=\"all\">");
        let slack = message(&f, None, Format::Slack);
        assert!(
            slack.contains("user &lt;!channel&gt;\\nroot &amp; &lt;at"),
            "{slack}"
        );
        assert!(!slack.contains("<!channel>"));
        let feishu = message(&f, None, Format::Feishu);
        assert!(!feishu.contains("<at"), "{feishu}");
        assert!(feishu.contains("＜at user_id=\"all\"＞"));
        // a newline in a user name never starts a line of its own
        for m in [&slack, &feishu, &message(&f, None, Format::Wecom)] {
            assert!(m.lines().all(|l| !l.starts_with("root")), "{m}");
        }
        let asked = message(
            &f,
            Some(&Approval::Asked {
                id: 4,
                hook: "lock".into(),
                expires: Some(1_700_000_000_000_000_000),
                on_timeout: OnTimeout::Reject,
            }),
            Format::Dingtalk,
        );
        assert!(
            asked.starts_with("[tansa] approval #4 asked: lock"),
            "{asked}"
        );
        assert!(asked.contains("tansa approvals approve 4"));
        assert!(asked.contains("it is dropped"));
        let long = facts(&"x".repeat(5000));
        assert!(message(&long, None, Format::Wecom).len() <= 2004);
    }

    #[test]
    fn signatures_agree_with_openssl() {
        let openssl = |key: &str, msg: &str| {
            let mut c = Command::new("openssl")
                .args(["dgst", "-sha256", "-binary", "-hmac", key])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("openssl");
            c.stdin.take().unwrap().write_all(msg.as_bytes()).unwrap();
            let out = c.wait_with_output().unwrap();
            b64(&out.stdout)
        };
        let secret = "SEC000example";
        let ms = 1_700_000_000_123;
        let want = openssl(secret, &format!("{ms}\n{secret}"));
        let got = dingtalk_sign(secret, ms);
        assert_eq!(
            percent_encoding::percent_decode_str(&got)
                .decode_utf8()
                .unwrap(),
            want
        );
        assert!(!got.contains('+') && !got.contains('/') && !got.contains('='));
        assert_eq!(
            feishu_sign(secret, 1_700_000_000),
            openssl(&format!("1700000000\n{secret}"), "")
        );
    }

    #[test]
    fn placeholders_are_replaced_once_and_checked() {
        let vars = vec![
            ("user", "{rule_id}; rm -rf /".to_string()),
            ("rule_id", "r".into()),
        ];
        assert_eq!(
            substitute("--user={user}", &vars),
            "--user={rule_id}; rm -rf /"
        );
        assert_eq!(substitute("{nope}{rule_id}{", &vars), "{nope}r{");
        let cfg = |run: &[&str]| hook("x", run);
        assert!(Hooks::new(&[cfg(&["/bin/true", "{source_ip}"])]).is_ok());
        let e = Hooks::new(&[cfg(&["/bin/true", "{sourceip}"])]).unwrap_err();
        assert!(
            e.to_string().contains("{sourceip}: no such placeholder"),
            "{e}"
        );
        let mut twice = vec![cfg(&["/bin/true"]), cfg(&["/bin/true"])];
        assert!(Hooks::new(&twice).is_err());
        twice[1].name = "y".into();
        twice[1].ask = Some("x".into());
        twice[1].approve = true;
        let e = Hooks::new(&twice).unwrap_err();
        assert!(
            e.to_string().contains("must name a notification hook"),
            "{e}"
        );
    }

    #[test]
    fn a_program_gets_the_alert_verbatim_and_is_killed_on_timeout() {
        let dir = std::env::temp_dir().join(format!("tansa-hook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let f = facts("$(touch PWNED); `id`");
        let vars = vec![
            ("user", f.user.clone().unwrap()),
            ("source_ip", "203.0.113.9".into()),
        ];
        let argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "printf '%s|%s|%s|' \"$1\" \"$2\" \"$TANSA_USER\" > \"$0\"; cat >> \"$0\"; echo done",
            out.to_str().unwrap(),
            "{user}",
            "{source_ip}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = run_program(&argv, &vars, &f, Duration::from_secs(10));
        assert_eq!(o.outcome, "ok", "{o:?}");
        assert!(o.detail.contains("stdout: done"), "{o:?}");
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            "$(touch PWNED); `id`|203.0.113.9|$(touch PWNED); `id`|{\"id\":\"a1\"}"
        );
        assert!(!std::path::Path::new("PWNED").exists());
        // a script whose child outlives it: the whole group goes at the timeout
        let slow: Vec<String> = ["/bin/sh", "-c", "sleep 30 & sleep 30"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = Instant::now();
        let o = run_program(&slow, &vars, &f, Duration::from_millis(300));
        assert_eq!(o.outcome, "timeout", "{o:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let fail: Vec<String> = ["/bin/sh", "-c", "echo no >&2; exit 3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = run_program(&fail, &vars, &f, Duration::from_secs(5));
        assert_eq!(o.outcome, "error");
        assert!(
            o.detail.contains("exit status: 3") && o.detail.contains("stderr: no"),
            "{o:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
