//! `tansa ban …`, `tansa bouncers …`, `tansa approvals …`, `tansa hooks …`: decisions by hand, the firewall brought to the
//! stored decisions, bouncer keys, the approval queue of response hooks. With the store at hand the responder runs in this
//! process; while `tansa serve` holds the store, the server's API does the work (so that the
//! running responder knows of the change at once).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::Value;
use tansa_respond::{Manual, Responder};
use tansa_server::respond::AddRequest;
use tansa_store::{DuckStore, StoreError, Table};

use crate::cli::{
    ApprovalsCommand, BanCommand, BouncersCommand, HooksCommand, OutputFormat, ResponseArgs,
};

/// The responder here, or the server that holds the store.
enum Target {
    Local(Box<Responder>),
    Remote(super::remote::Remote),
}

pub(crate) fn actor() -> String {
    let user = tansa_evidence::bundle::login_name();
    format!(
        "{user}@{}",
        tansa_server::files::hostname().unwrap_or_else(|| "localhost".into())
    )
}

/// The `[response]` settings and where the store is.
struct Settings {
    data: PathBuf,
    config: tansa_respond::Config,
    geoip: Vec<PathBuf>,
    no_geoip: bool,
}

fn settings(data: &Path, args: &ResponseArgs) -> Result<Settings> {
    Ok(match &args.config {
        Some(p) => {
            let c = tansa_server::Config::load(p)?;
            Settings {
                data: c.server.data.clone().unwrap_or_else(|| data.to_owned()),
                config: c.response.clone().unwrap_or_default(),
                geoip: c.detection.geoip.clone(),
                no_geoip: c.detection.no_geoip,
            }
        }
        None => Settings {
            data: data.to_owned(),
            config: tansa_respond::Config::default(),
            geoip: Vec::new(),
            no_geoip: false,
        },
    })
}

/// The store, or the server that holds it.
fn open_store(s: &Settings) -> Result<std::result::Result<DuckStore, super::remote::Remote>> {
    match DuckStore::open(&s.data, None) {
        Ok(st) => Ok(Ok(st)),
        Err(e @ StoreError::Locked { .. }) => match super::remote::Remote::find(&s.data)? {
            Some(r) => Ok(Err(r)),
            None => Err(e).context("opening the store"),
        },
        Err(e) => Err(e).context("opening the store"),
    }
}

fn open(data: &Path, args: &ResponseArgs) -> Result<Target> {
    let s = settings(data, args)?;
    let store = match open_store(&s)? {
        Ok(st) => st,
        Err(r) => return Ok(Target::Remote(r)),
    };
    let policy = tansa_respond::policy::Policy::new(s.config).context("[response]")?;
    let fw = tansa_respond::build_firewall(&policy).context("[response]")?;
    let host = tansa_server::files::hostname().unwrap_or_else(|| "localhost".into());
    let mut r = Responder::open(policy, store, fw, &host, tansa_event::now_nanos())?;
    let geo = if s.no_geoip {
        None
    } else if s.geoip.is_empty() {
        Some(tansa_intel::GeoIp::discover().0)
    } else {
        Some(tansa_intel::GeoIp::open(&s.geoip)?)
    };
    if let Some(g) = geo.filter(|g| !g.is_empty()) {
        r.set_asn_source(Box::new(GeoAsn(g)));
    }
    Ok(Target::Local(Box::new(r)))
}

struct GeoAsn(tansa_intel::GeoIp);

impl tansa_respond::AsnSource for GeoAsn {
    fn asn_of(&self, ip: std::net::IpAddr) -> Option<u32> {
        self.0.lookup(ip).as_number
    }
    fn prefixes(&self, asn: u32) -> Vec<ipnet::IpNet> {
        self.0.asn_prefixes(asn)
    }
}

/// Syncs (unless the change just synced) and says what the firewall did (an error makes the
/// exit code 1: the decision is stored, enforcement failed).
fn sync_note(r: &mut Responder, again: bool) -> (String, bool) {
    let name = r.firewall_name().to_owned();
    let res = if again || r.last_sync().is_none() {
        r.sync(tansa_event::now_nanos())
    } else {
        r.last_sync().cloned()
    };
    match res {
        None => (format!("{name}: nothing to enforce with"), true),
        Some(Ok(rep)) => (
            format!(
                "{name}: {} prefixes in force{}",
                r.want(tansa_event::now_nanos()).len(),
                if rep.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} added, {} removed{})",
                        rep.added,
                        rep.removed,
                        if rep.full { ", written whole" } else { "" }
                    )
                }
            ),
            true,
        ),
        Some(Err(e)) => (format!("{name}: NOT APPLIED: {e}"), false),
    }
}

/// Syncs if needed, prints what the firewall did, and the exit code that says it.
fn finish(r: &mut Responder, again: bool) -> ExitCode {
    let (note, ok) = sync_note(r, again);
    eprintln!("{note}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

const COLUMNS: [&str; 9] = [
    "id",
    "state",
    "scope",
    "value",
    "remaining",
    "offence",
    "origin",
    "actor",
    "reason",
];

/// JSON lines, or a table of `columns` (a cell from its row by `cell`).
fn print_rows(
    list: &[Value],
    format: OutputFormat,
    columns: &[&str],
    cell: impl Fn(&str, &Value) -> Value,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if format == OutputFormat::Json {
        for v in list {
            serde_json::to_writer(&mut out, v)?;
            out.write_all(b"\n")?;
        }
    } else {
        let t = Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: list
                .iter()
                .map(|v| columns.iter().map(|c| cell(c, v)).collect())
                .collect(),
        };
        super::store::print_table(&mut out, &t, format)?;
    }
    out.flush()?;
    Ok(())
}

fn print(list: &[Value], format: OutputFormat) -> Result<()> {
    print_rows(list, format, &COLUMNS, |c, v| match (c, &v[c]) {
        ("remaining", Value::Null) => Value::from(if v["until"].is_null() { "-" } else { "" }),
        ("reason", r) => {
            let why = v["refused"].as_str().unwrap_or_default();
            Value::from(format!(
                "{}{}",
                r.as_str().unwrap_or_default(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" [refused: {why}]")
                }
            ))
        }
        (_, x) => x.clone(),
    })
}

fn durations(d: &Option<String>) -> Result<Option<i64>> {
    d.as_deref()
        .map(tansa_respond::parse_duration)
        .transpose()
        .context("--for")
}

pub fn run(c: BanCommand, format: OutputFormat, data: &Path) -> Result<ExitCode> {
    let now = tansa_event::now_nanos;
    match c {
        BanCommand::Add {
            value,
            duration,
            permanent,
            reason,
            simulate,
            response,
        } => {
            let req = AddRequest {
                value,
                duration,
                permanent,
                reason,
                actor: actor(),
                simulate,
            };
            match open(data, &response)? {
                Target::Remote(r) => {
                    let v = r.json(
                        "POST",
                        "/api/v1/decisions",
                        Some(&serde_json::to_value(&req)?),
                    )?;
                    print(&[v], format)?;
                    Ok(ExitCode::SUCCESS)
                }
                Target::Local(mut r) => {
                    durations(&req.duration)?;
                    let d = r.add(&req.manual("manual")?, now())?;
                    print(&[d.to_json(now())], format)?;
                    if !d.active(now()) {
                        return Ok(ExitCode::SUCCESS);
                    }
                    Ok(finish(&mut r, false))
                }
            }
        }
        BanCommand::Del { target, response } => match open(data, &response)? {
            Target::Remote(r) => {
                let path = format!(
                    "/api/v1/decisions/{}?by={}",
                    percent_encoding::utf8_percent_encode(
                        &target,
                        percent_encoding::NON_ALPHANUMERIC
                    ),
                    percent_encoding::utf8_percent_encode(
                        &actor(),
                        percent_encoding::NON_ALPHANUMERIC
                    )
                );
                let v = r.json("DELETE", &path, None)?;
                print(v.as_array().map(Vec::as_slice).unwrap_or_default(), format)?;
                Ok(ExitCode::SUCCESS)
            }
            Target::Local(mut r) => {
                let gone = r.revoke(&target, &actor(), now())?;
                let list: Vec<Value> = gone.iter().map(|d| d.to_json(now())).collect();
                print(&list, format)?;
                Ok(finish(&mut r, false))
            }
        },
        BanCommand::List { all, response } => {
            let list: Vec<Value> = match open(data, &response)? {
                Target::Remote(r) => {
                    let v = r.json("GET", &format!("/api/v1/decisions?all={all}"), None)?;
                    v.as_array().cloned().unwrap_or_default()
                }
                Target::Local(r) => {
                    let t = now();
                    r.decisions()
                        .iter()
                        .filter(|d| all || d.active(t))
                        .map(|d| d.to_json(t))
                        .collect()
                }
            };
            print(&list, format)?;
            Ok(ExitCode::SUCCESS)
        }
        BanCommand::Import {
            file,
            duration,
            permanent,
            reason,
            response,
        } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
            let d = durations(&duration)?;
            let mut items = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let v = line.split('#').next().unwrap_or("").trim();
                if v.is_empty() {
                    continue;
                }
                tansa_respond::policy::parse_net(v)
                    .with_context(|| format!("{}:{}", file.display(), i + 1))?;
                items.push(Manual {
                    value: v.to_owned(),
                    duration: d,
                    permanent,
                    reason: reason.clone(),
                    actor: actor(),
                    simulate: false,
                    origin: "import".into(),
                });
            }
            match open(data, &response)? {
                Target::Remote(_) => anyhow::bail!(
                    "`tansa ban import` writes many decisions at once and needs the store: stop `tansa serve`, import, start it again (it enforces what is stored)"
                ),
                Target::Local(mut r) => {
                    let t0 = Instant::now();
                    let (n, refused) = r.add_many(&items, now())?;
                    let stored = t0.elapsed();
                    let t1 = Instant::now();
                    let (note, ok) = sync_note(&mut r, true);
                    eprintln!(
                        "imported {n} decisions ({refused} refused by the allow list): stored in {:.2} s; {note} in {:.2} s",
                        stored.as_secs_f64(),
                        t1.elapsed().as_secs_f64()
                    );
                    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
                }
            }
        }
        BanCommand::Apply { response } => match open(data, &response)? {
            Target::Remote(r) => {
                let v = r.json("POST", "/api/v1/decisions/apply", None)?;
                println!("{v}");
                Ok(ExitCode::SUCCESS)
            }
            Target::Local(mut r) => {
                let t0 = Instant::now();
                let (note, ok) = sync_note(&mut r, true);
                eprintln!("{note} in {:.2} s", t0.elapsed().as_secs_f64());
                Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
        },
        BanCommand::Uninstall { response } => match open(data, &response)? {
            Target::Remote(_) => {
                anyhow::bail!("stop `tansa serve` first (it would put the firewall state back)")
            }
            Target::Local(mut r) => {
                r.uninstall(now())?;
                eprintln!("{}: removed", r.firewall_name());
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

pub fn bouncers(c: BouncersCommand, format: OutputFormat, data: &Path) -> Result<ExitCode> {
    use tansa_server::respond as r;
    match c {
        BouncersCommand::Add { name } => {
            let key = r::add_bouncer(data, &name)?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::json!({"name": name, "key": key}));
            } else {
                eprintln!(
                    "API key for bouncer {name} (shown once; give it to the bouncer as api_key):"
                );
                println!("{key}");
            }
        }
        BouncersCommand::List => {
            let list = r::list_bouncers(data)?;
            for b in list {
                if format == OutputFormat::Json {
                    println!(
                        "{}",
                        serde_json::json!({"name": b.name, "created": b.created})
                    );
                } else {
                    println!("{}\t{}", b.name, b.created);
                }
            }
        }
        BouncersCommand::Del { name } => {
            if !r::delete_bouncer(data, &name)? {
                anyhow::bail!("no bouncer named {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

const APPROVAL_COLUMNS: [&str; 9] = [
    "id",
    "state",
    "hook",
    "action",
    "rule_id",
    "source_ip",
    "user",
    "expires",
    "decided_by",
];

fn print_approvals(list: &[Value], format: OutputFormat) -> Result<()> {
    print_rows(list, format, &APPROVAL_COLUMNS, |c, v| v[c].clone())
}

/// The approval queue: here when the store is free, else through the server.
pub fn approvals(c: ApprovalsCommand, format: OutputFormat, data: &Path) -> Result<ExitCode> {
    let response = match &c {
        ApprovalsCommand::List { response, .. }
        | ApprovalsCommand::Approve { response, .. }
        | ApprovalsCommand::Reject { response, .. } => response,
    };
    let s = settings(data, response)?;
    let policy = tansa_respond::policy::Policy::new(s.config.clone()).context("[response]")?;
    let hooks = policy.hooks.clone();
    let now = tansa_event::now_nanos;
    let target = open_store(&s)?;
    let settle = |id: u64, verb: &str, note: Option<String>| -> Result<Value> {
        let req = tansa_server::respond::SettleRequest { by: actor(), note };
        match &target {
            Err(r) => r.json(
                "POST",
                &format!("/api/v1/approvals/{id}/{verb}"),
                Some(&serde_json::to_value(&req)?),
            ),
            Ok(st) => {
                let mut d = tansa_respond::hooks::Dispatcher::open(hooks.clone(), st.try_clone()?)?;
                if verb == "reject" {
                    let row = d.reject(id, &req.by, req.note.as_deref(), now())?;
                    return Ok(serde_json::json!({
                        "approval": tansa_respond::hooks::approval_json(&row, &hooks)
                    }));
                }
                let (row, job) = d.approve(id, &req.by, req.note.as_deref(), now())?;
                let o = d.run_now(&job, now);
                Ok(serde_json::json!({
                    "approval": tansa_respond::hooks::approval_json(&row, &hooks),
                    "outcome": o.outcome,
                    "detail": o.detail,
                }))
            }
        }
    };
    let approve = matches!(c, ApprovalsCommand::Approve { .. });
    match c {
        ApprovalsCommand::List { all, .. } => {
            let list: Vec<Value> = match &target {
                Err(r) => r
                    .json("GET", &format!("/api/v1/approvals?all={all}"), None)?
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                Ok(st) => tansa_respond::hooks::Dispatcher::open(hooks.clone(), st.try_clone()?)?
                    .list(all, now())?
                    .iter()
                    .map(|a| tansa_respond::hooks::approval_json(a, &hooks))
                    .collect(),
            };
            print_approvals(&list, format)?;
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCommand::Approve { id, note, .. } | ApprovalsCommand::Reject { id, note, .. } => {
            let verb = if approve { "approve" } else { "reject" };
            let v = settle(id, verb, note)?;
            if format == OutputFormat::Json {
                println!("{v}");
            } else {
                print_approvals(std::slice::from_ref(&v["approval"]), format)?;
                if let Some(o) = v["outcome"].as_str() {
                    eprintln!(
                        "hook run: {o}: {}",
                        // a program's output, an endpoint's answer: escaped
                        crate::output::clean(v["detail"].as_str().unwrap_or_default())
                    );
                }
            }
            Ok(if v["outcome"].as_str().is_some_and(|o| o != "ok") {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// The configured hooks; a notification hook tried with a sample alert.
pub fn hooks(c: HooksCommand, format: OutputFormat, data: &Path) -> Result<ExitCode> {
    let response = match &c {
        HooksCommand::List { response } | HooksCommand::Test { response, .. } => response,
    };
    let s = settings(data, response)?;
    let policy = tansa_respond::policy::Policy::new(s.config).context("[response]")?;
    match c {
        HooksCommand::List { .. } => {
            for h in policy.hooks.hooks() {
                let c = &h.config;
                let v = serde_json::json!({
                    "name": c.name,
                    "action": h.describe(),
                    "rules": c.rules,
                    "severity": c.severity.map(|s| s.as_str()),
                    "approve": c.approve,
                    "ask": c.ask,
                });
                if format == OutputFormat::Json {
                    println!("{v}");
                } else {
                    println!(
                        "{}\t{}\trules {}\tseverity ≥ {}{}",
                        c.name,
                        h.describe(),
                        if c.rules.is_empty() {
                            "any".into()
                        } else {
                            c.rules.join(",")
                        },
                        c.severity.map_or("any", |s| s.as_str()),
                        if c.approve { "\tapproval" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HooksCommand::Test { name, .. } => {
            let i = policy
                .hooks
                .index(&name)
                .with_context(|| format!("no hook named {name:?} in [response]"))?;
            let h = &policy.hooks.hooks()[i];
            anyhow::ensure!(
                h.config.notify.is_some(),
                "hook {name} runs a program: a test would act on a sample alert; run the program by hand"
            );
            let host = tansa_server::files::hostname().unwrap_or_else(|| "localhost".into());
            let t = tansa_event::format_ts(tansa_event::now_nanos());
            let facts = tansa_respond::hooks::Facts {
                alert_id: "test".into(),
                rule_id: "tansa.test".into(),
                rule_title: "Test notification (tansa hooks test)".into(),
                severity: "informational".into(),
                source_ip: Some("192.0.2.1".into()),
                user: None,
                host: Some(host),
                count: 1,
                first_seen: t.clone(),
                last_seen: t,
                decision: None,
                alert: serde_json::json!({ "id": "test", "rule": { "id": "tansa.test" } }),
            };
            let o = h.execute(&facts, None);
            println!("{}: {}", o.outcome, crate::output::clean(&o.detail));
            Ok(if o.outcome == "ok" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
