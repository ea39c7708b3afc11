//! `tansa whois TARGET…`: who holds an address or an AS and whom to write to about abuse,
//! from RDAP, with every answer cached in the store (offline use reads the cache).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde_json::json;
use tansa_intel::rdap::{self, Bootstrap, Client, Query, Record, Registry};
use tansa_store::{DuckStore, RdapRow};

use super::store::parse_duration;
use crate::cli::{OutputFormat, WhoisArgs};
use crate::output::{clean, io_error};

/// Bootstrap files fetched from a URL are used this long before they are fetched again.
const BOOTSTRAP_AGE: i64 = 30 * 24 * 3600;

pub fn run(
    a: &WhoisArgs,
    format: OutputFormat,
    data: &Path,
    cold: Option<&Path>,
) -> Result<ExitCode> {
    let queries = a
        .targets
        .iter()
        .map(|t| t.parse::<Query>())
        .collect::<Result<Vec<_>, _>>()?;
    let answers = look_up(a, &queries, data, cold)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (q, answer) in queries.iter().zip(&answers) {
        match format {
            OutputFormat::Json => {
                serde_json::to_writer(&mut out, &answer_json(q, answer)).map_err(io_error)?;
                writeln!(out)?;
            }
            _ => print_text(&mut out, q, answer)?,
        }
    }
    out.flush()?;
    Ok(if answers.iter().any(Result::is_err) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Answers each query (from the cache, the registry, or a stale cached answer when the
/// registry cannot be asked), caching what the registries say in the store of `data`.
pub(crate) fn look_up(
    a: &WhoisArgs,
    queries: &[Query],
    data: &Path,
    cold: Option<&Path>,
) -> Result<Vec<Result<Answer>>> {
    let max_age = parse_duration(&a.max_age)
        .and_then(|s| Ok(jiff::SignedDuration::try_from(s)?))
        .with_context(|| format!("--max-age: `{}` is not a duration like 12h, 7d", a.max_age))?;
    let mut store = DuckStore::open(data, cold).context("opening the store (the RDAP cache)")?;
    let mut w = Whois {
        store: &mut store,
        client: Client::new(Duration::from_secs(a.timeout.max(1))),
        bootstrap: Bootstrap::builtin(),
        tried: Vec::new(),
        args: a,
        now: Timestamp::now(),
    };
    Ok(queries.iter().map(|q| w.answer(q, max_age)).collect())
}

/// Where an answer came from.
pub(crate) enum Origin {
    Fetched,
    Cached,
    /// The registry could not be asked (the error); the cached answer is older than asked for.
    Stale(String),
}

pub(crate) enum Answer {
    /// A reserved or private address: no registry holds it.
    Unregistered(&'static str),
    Record {
        record: Box<Record>,
        fetched: String,
        origin: Origin,
    },
}

struct Whois<'a> {
    store: &'a mut DuckStore,
    client: Client,
    bootstrap: Bootstrap,
    /// Registries whose bootstrap file was looked for.
    tried: Vec<Registry>,
    args: &'a WhoisArgs,
    now: Timestamp,
}

impl Whois<'_> {
    fn answer(&mut self, q: &Query, max_age: jiff::SignedDuration) -> Result<Answer> {
        if let Query::Ip(ip) = q {
            if let Some(scope) = tansa_intel::scope(*ip) {
                return Ok(Answer::Unregistered(scope));
            }
        }
        let cached = self.cached(q)?;
        let fresh = cached
            .as_ref()
            .is_some_and(|(_, row)| self.age(&row.fetched) <= max_age);
        if let Some((record, row)) = cached
            .as_ref()
            .filter(|_| self.args.offline || (fresh && !self.args.refresh))
        {
            return Ok(Answer::Record {
                record: Box::new(record.clone()),
                fetched: row.fetched.clone(),
                origin: Origin::Cached,
            });
        }
        if self.args.offline {
            anyhow::bail!("no cached RDAP answer for {q} (--offline)");
        }
        self.ensure_bootstrap(q.registry());
        match self.client.lookup(&self.bootstrap, q) {
            Ok((record, fetched)) => {
                let at = self.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                self.store
                    .put_rdap(&RdapRow {
                        fetched: at.clone(),
                        kind: record.kind.clone(),
                        first: record.first.clone(),
                        last: record.last.clone(),
                        name: record.name.clone(),
                        holder: record.holder.clone(),
                        country: record.country.clone(),
                        abuse_email: record.abuse_email().map(str::to_owned),
                        cidrs: record.cidrs.clone(),
                        url: fetched.url,
                        body: fetched.body,
                    })
                    .context("caching the RDAP answer")?;
                Ok(Answer::Record {
                    record: Box::new(record),
                    fetched: at,
                    origin: Origin::Fetched,
                })
            }
            Err(e) => match cached {
                Some((record, row)) => Ok(Answer::Record {
                    record: Box::new(record),
                    fetched: row.fetched,
                    origin: Origin::Stale(e.to_string()),
                }),
                None => Err(e.into()),
            },
        }
    }

    /// The most specific cached answer that holds `q`.
    fn cached(&self, q: &Query) -> Result<Option<(Record, RdapRow)>> {
        let rows = self.store.rdap_rows(q.kind())?;
        Ok(rows
            .into_iter()
            .filter(|r| rdap::covers(&r.kind, &r.first, &r.last, q))
            .min_by_key(|r| rdap::span(&r.first, &r.last))
            .and_then(|row| {
                let record = rdap::parse(q, &row.body, &row.url).ok()?;
                Some((record, row))
            }))
    }

    fn age(&self, fetched: &str) -> jiff::SignedDuration {
        fetched
            .parse::<Timestamp>()
            .map(|t| self.now.duration_since(t))
            .unwrap_or(jiff::SignedDuration::MAX)
    }

    /// Loads the bootstrap file of a registry once: from the cache when fresh, else from
    /// `--bootstrap` (cached when it is a URL); a stale cached file or the built-in blocks
    /// when that fails.
    fn ensure_bootstrap(&mut self, reg: Registry) {
        if self.tried.contains(&reg) {
            return;
        }
        self.tried.push(reg);
        let source = self.args.bootstrap.as_str();
        let remote = source.starts_with("http://") || source.starts_with("https://");
        let cached = if remote {
            self.store
                .rdap_rows("bootstrap")
                .unwrap_or_default()
                .into_iter()
                .find(|r| r.first == reg.name() && r.url.starts_with(source))
        } else {
            None
        };
        if let Some(c) = &cached {
            if self.age(&c.fetched).as_secs() <= BOOTSTRAP_AGE
                && self.bootstrap.load(reg, &c.body).is_ok()
            {
                return;
            }
        }
        let file = format!("{}.json", reg.name());
        let got = if remote {
            let url = format!("{}/{file}", source.trim_end_matches('/'));
            // kept under the URL asked for (a redirect must not make the cache miss)
            self.client.get(&url).map(|f| (url.clone(), f.body))
        } else {
            let p = Path::new(source).join(&file);
            std::fs::read_to_string(&p)
                .map(|b| (p.display().to_string(), b))
                .map_err(|e| tansa_intel::IntelError::Rdap(format!("{}: {e}", p.display())))
        };
        let loaded = got.and_then(|(url, body)| {
            self.bootstrap.load(reg, &body)?;
            Ok((url, body))
        });
        match loaded {
            Ok((url, body)) if remote => {
                let row = RdapRow {
                    fetched: self.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    kind: "bootstrap".into(),
                    first: reg.name().into(),
                    url,
                    body,
                    ..RdapRow::default()
                };
                if let Err(e) = self.store.put_rdap(&row) {
                    eprintln!("tansa: caching the RDAP bootstrap file: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => {
                let fallback = match cached.map(|c| self.bootstrap.load(reg, &c.body)) {
                    Some(Ok(())) => "the cached copy",
                    _ if reg == Registry::Asn => "nothing (AS numbers need it)",
                    _ => "the address blocks built into tansa",
                };
                eprintln!("tansa: RDAP bootstrap {file}: {e}; using {fallback}");
            }
        }
    }
}

fn answer_json(q: &Query, a: &Result<Answer>) -> serde_json::Value {
    match a {
        Ok(Answer::Unregistered(scope)) => json!({"query": q.to_string(), "scope": scope}),
        Ok(Answer::Record {
            record,
            fetched,
            origin,
        }) => {
            let mut v = json!({
                "query": q.to_string(),
                "record": record,
                "fetched": fetched,
                "cached": !matches!(origin, Origin::Fetched),
            });
            if let Origin::Stale(e) = origin {
                v["stale"] = json!(e);
            }
            v
        }
        Err(e) => json!({"query": q.to_string(), "error": format!("{e:#}")}),
    }
}

fn print_text(out: &mut impl Write, q: &Query, a: &Result<Answer>) -> std::io::Result<()> {
    let (record, fetched, origin) = match a {
        Ok(Answer::Unregistered(scope)) => {
            return writeln!(
                out,
                "{q}: {scope} address; no registry holds it (not looked up)\n"
            );
        }
        Err(e) => {
            eprintln!("tansa: whois {q}: {}", clean(&format!("{e:#}")));
            return Ok(());
        }
        Ok(Answer::Record {
            record,
            fetched,
            origin,
        }) => (record, fetched, origin),
    };
    writeln!(out, "{q}")?;
    let line = |out: &mut dyn Write, k: &str, v: Option<&str>| -> std::io::Result<()> {
        match v {
            Some(v) if !v.is_empty() => writeln!(out, "  {k:<12} {}", clean(v)),
            _ => Ok(()),
        }
    };
    let range = if record.kind == "autnum" {
        if record.first == record.last {
            format!("AS{}", record.first)
        } else {
            format!("AS{} - AS{}", record.first, record.last)
        }
    } else {
        format!(
            "{} - {}  ({})",
            record.first,
            record.last,
            record.cidrs.join(", ")
        )
    };
    line(out, "range", Some(&range))?;
    line(out, "name", record.name.as_deref())?;
    line(out, "handle", record.handle.as_deref())?;
    line(out, "type", record.kind_of.as_deref())?;
    line(out, "holder", record.holder.as_deref())?;
    line(out, "country", record.country.as_deref())?;
    for c in &record.abuse {
        let mut parts: Vec<String> = c.emails.clone();
        parts.extend(c.phones.iter().cloned());
        if let Some(n) = c.name.as_ref().or(c.handle.as_ref()) {
            parts.push(format!("({n})"));
        }
        line(out, "abuse", Some(&parts.join("  ")))?;
    }
    if record.abuse.is_empty() {
        line(out, "abuse", Some("none listed"))?;
    }
    line(out, "registered", record.registered.as_deref())?;
    line(out, "changed", record.changed.as_deref())?;
    let how = match origin {
        Origin::Fetched => format!("fetched {fetched}"),
        Origin::Cached => format!("cached, fetched {fetched}"),
        Origin::Stale(e) => format!("cached, fetched {fetched}; the registry did not answer: {e}"),
    };
    line(out, "source", Some(&format!("{} ({how})", record.url)))?;
    writeln!(out)
}
