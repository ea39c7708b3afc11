//! One module per subcommand; each takes its own arguments and returns an exit code.

mod analyze;
mod ban;
mod case;
mod evidence;
mod fim;
mod hunt;
mod parse;
mod remote;
mod report;
mod rules;
mod serve;
mod store;
mod trace;
mod whois;

use std::process::ExitCode;

use anyhow::{Context, Result};
use tansa_pipeline::Options;

use crate::cli::{Cli, Command, InputArgs};

pub fn run(cli: Cli) -> Result<ExitCode> {
    if cli.format == crate::cli::OutputFormat::Html
        && !matches!(cli.command, Command::Trace(_) | Command::Report(_))
    {
        anyhow::bail!(
            "--format html is for `tansa trace` and `tansa report`; use text or json here"
        );
    }
    if cli.format == crate::cli::OutputFormat::Md && !matches!(cli.command, Command::Report(_)) {
        anyhow::bail!("--format md is for `tansa report`; use text or json here");
    }
    match cli.command {
        Command::Analyze(a) => analyze::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Parse(a) => parse::run(&a, cli.format),
        Command::Sql(a) => store::sql(&a.query, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Search(a) => store::search(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Trace(a) => trace::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Hunt(a) => hunt::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Whois(a) => whois::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Agent(a) => serve::agent(&a),
        Command::Ca(c) => ca(&c, cli.format, &cli.data),
        Command::Ban(c) => ban::run(c, cli.format, &cli.data),
        Command::Bouncers(c) => ban::bouncers(c, cli.format, &cli.data),
        Command::Approvals(c) => ban::approvals(c, cli.format, &cli.data),
        Command::Hooks(c) => ban::hooks(c, cli.format, &cli.data),
        Command::Verify(a) => verify(&a, cli.format, &cli.data),
        Command::Evidence(c) => evidence::run(c, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Case(c) => case::run(c, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Fim(c) => fim::run(c, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Report(a) => report::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Init => init(cli.format, &cli.data, cli.cold.as_deref()),
        Command::Serve(a) => serve::run(&a, cli.format, &cli.data, cli.cold.as_deref()),
        Command::Stats => store::stats(cli.format, &cli.data, cli.cold.as_deref()),
        Command::Retention(crate::cli::RetentionCommand::Run { retention, today }) => {
            store::retention(
                &retention,
                today.as_deref(),
                cli.format,
                &cli.data,
                cli.cold.as_deref(),
            )
        }
        Command::Rules(crate::cli::RulesCommand::Check(a)) => rules::check(&a, cli.format),
    }
}

/// `tansa ca`.
fn ca(
    c: &crate::cli::CaCommand,
    format: crate::cli::OutputFormat,
    data: &std::path::Path,
) -> Result<ExitCode> {
    use crate::cli::CaCommand;
    use tansa_server::ca;
    let dir = |d: &crate::cli::CaDir| d.path.clone().unwrap_or_else(|| data.join("ca"));
    match c {
        CaCommand::Init { dir: d, name } => {
            let p = ca::init(&dir(d), name)?;
            println!("created {} (and ca.key, crl.pem beside it)", p.display());
        }
        CaCommand::Issue {
            dir: d,
            name,
            server,
            san,
            days,
        } => {
            let kind = if *server {
                ca::Kind::Server {
                    names: if san.is_empty() {
                        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
                    } else {
                        san.clone()
                    },
                }
            } else {
                ca::Kind::Client
            };
            let (cert, key) = ca::issue(&dir(d), name, &kind, *days)?;
            println!("issued {} and {}", cert.display(), key.display());
        }
        CaCommand::Revoke { dir: d, name } => {
            let crl = ca::revoke(&dir(d), name)?;
            println!(
                "revoked {name}; {} rewritten (servers refuse it from their next start)",
                crl.display()
            );
        }
        CaCommand::List { dir: d } => {
            for i in ca::list(&dir(d))? {
                if format == crate::cli::OutputFormat::Json {
                    println!(
                        "{}",
                        serde_json::json!({"name": i.name, "kind": i.kind, "serial": i.serial,
                            "issued": i.issued, "revoked": i.revoked})
                    );
                } else {
                    println!(
                        "{:<24} {:<7} {:<26} {}",
                        i.name,
                        i.kind,
                        i.issued.get(..19).unwrap_or(&i.issued),
                        i.revoked
                            .as_deref()
                            .map_or("in force".to_owned(), |r| format!(
                                "revoked {}",
                                r.get(..19).unwrap_or(r)
                            ))
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The detection engine: the built-in rules, the Sigma rules of `rules` (files or
/// directories; those that do not load are counted on stderr), the indicators.
pub fn engine(
    rules: &[std::path::PathBuf],
    suppress: &[std::path::PathBuf],
    crs: &crate::cli::CrsArgs,
    intel: Option<&std::sync::Arc<tansa_intel::Intel>>,
) -> Result<tansa_detect::Engine> {
    use tansa_detect::{builtin, Engine, Limits};
    let engine = if rules.is_empty() {
        Engine::new(builtin::rules(), Limits::default())
    } else {
        let sigma = tansa_rules::SigmaRules::load(rules);
        let bad = sigma
            .reports()
            .iter()
            .filter(|r| !matches!(r.status, tansa_rules::Status::Loaded))
            .count();
        if bad > 0 {
            eprintln!("tansa: {bad} Sigma rules not loaded (see `tansa rules check`)");
        }
        if sigma.loaded() == 0 {
            anyhow::bail!("no Sigma rule loaded from {rules:?}");
        }
        Engine::with_sigma(builtin::rules(), sigma, Limits::default())
    };
    let engine = match load_crs(crs)? {
        Some(c) => engine.with_crs(std::sync::Arc::new(c)),
        None => engine,
    };
    let engine = match intel {
        Some(intel) => engine.with_intel(intel.clone()),
        None => engine,
    };
    let mut s = tansa_detect::suppress::Suppressions::default();
    for p in suppress {
        s.extend(tansa_detect::suppress::Suppressions::load(p)?);
    }
    Ok(if s.is_empty() {
        engine
    } else {
        engine.with_suppressions(s)
    })
}

/// The ModSecurity rules of `--crs` (none without it); the rules that do not load are
/// counted on stderr (`tansa rules check --crs DIR` lists them).
pub fn load_crs(a: &crate::cli::CrsArgs) -> Result<Option<tansa_detect::crs::CrsRules>> {
    let Some(c) = load_crs_reports(a)? else {
        return Ok(None);
    };
    let bad = c
        .reports()
        .iter()
        .filter(|r| matches!(r.status, tansa_detect::crs::CrsStatus::Error(_)))
        .count();
    if bad > 0 {
        eprintln!("tansa: {bad} ModSecurity rules not loaded (see `tansa rules check --crs`)");
    }
    if c.rules().is_empty() {
        anyhow::bail!("no ModSecurity rule loaded from {:?}", a.crs);
    }
    Ok(Some(c))
}

/// The ModSecurity rules of `--crs` with their reports, whatever loaded.
pub fn load_crs_reports(a: &crate::cli::CrsArgs) -> Result<Option<tansa_detect::crs::CrsRules>> {
    match &a.crs {
        None => Ok(None),
        Some(dir) => Ok(Some(tansa_detect::crs::CrsRules::load(
            dir,
            a.paranoia.max(1),
        )?)),
    }
}

/// Pipeline options from the input arguments.
pub fn options(a: &InputArgs) -> Result<Options> {
    let mut o = Options::new(a.paths.clone());
    o.format = a.log_format.parse().context("--log-format")?;
    if let Some(tz) = &a.timezone {
        o.timezone = jiff::tz::TimeZone::get(tz)
            .with_context(|| format!("--timezone: unknown time zone `{tz}`"))?;
    }
    if let Some(now) = &a.now {
        o.now = now
            .parse()
            .with_context(|| format!("--now: `{now}` is not an RFC 3339 time"))?;
    }
    o.host = a.host.clone();
    o.multiline = a
        .multiline
        .iter()
        .map(|m| tansa_parse::multiline::Rule::parse(m))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)
        .context("--multiline")?;
    o.enrich = std::sync::Arc::new(enricher(&a.enrich)?);
    Ok(o)
}

/// The indicator feeds of `--intel` arguments; entries a feed skips are reported on stderr.
pub fn load_intel(args: &[String]) -> Result<tansa_intel::Intel> {
    let specs = feed_specs(args)?;
    let intel = tansa_intel::Intel::load(&specs).context("--intel")?;
    for f in intel.feeds() {
        if let Some((at, why)) = f.skipped.first() {
            eprintln!(
                "tansa: intel feed {} ({}): {} entries skipped (first: {at}: {why})",
                f.name,
                f.path.display(),
                f.skipped.len()
            );
        }
    }
    Ok(intel)
}

/// The feeds `--intel` arguments name.
pub fn feed_specs(args: &[String]) -> Result<Vec<tansa_intel::FeedSpec>> {
    args.iter()
        .map(|s| s.parse::<tansa_intel::FeedSpec>())
        .collect::<Result<Vec<_>, _>>()
        .context("--intel")
}

/// The enrichment stage the arguments ask for. Databases and feeds named explicitly must load;
/// databases found in the usual places that do not are reported and left out.
pub fn enricher(a: &crate::cli::EnrichArgs) -> Result<tansa_intel::Enricher> {
    if a.no_enrich {
        return Ok(tansa_intel::Enricher::off());
    }
    let geo = if !a.geoip.is_empty() {
        Some(tansa_intel::GeoIp::open(&a.geoip).context("--geoip")?)
    } else if a.no_geoip {
        None
    } else {
        let (g, errors) = tansa_intel::GeoIp::discover();
        for e in errors {
            eprintln!("tansa: GeoIP database left out: {e}");
        }
        Some(g)
    };
    let intel = if a.intel.is_empty() {
        None
    } else {
        Some(std::sync::Arc::new(load_intel(&a.intel)?))
    };
    Ok(tansa_intel::Enricher::new(geo, intel))
}

/// `tansa verify`: the evidence log checked.
fn verify(
    a: &crate::cli::VerifyArgs,
    format: crate::cli::OutputFormat,
    data: &std::path::Path,
) -> Result<ExitCode> {
    let dir = a.evidence.clone().unwrap_or_else(|| data.join("evidence"));
    let r = tansa_evidence::verify(&dir)?;
    let key = r.key.map(|k| tansa_evidence::hex(&k)).unwrap_or_default();
    if format == crate::cli::OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({
                "directory": dir,
                "segments": r.segments,
                "records": r.records,
                "open_segment": r.open_segment,
                "key": key,
                "ok": r.problems.is_empty(),
                "problems": r.problems.iter().map(|p| serde_json::json!({
                    "segment": p.segment, "record": p.record, "what": p.what
                })).collect::<Vec<_>>(),
                "notes": r.notes,
            })
        );
    } else {
        for p in &r.problems {
            println!("TAMPERED {p}");
        }
        for n in &r.notes {
            println!("note: {n}");
        }
        println!(
            "{}: {} segments, {} records{}; key {key}: {}",
            dir.display(),
            r.segments,
            r.records,
            r.open_segment
                .map(|n| format!(" (segment {n} open: linked, not yet sealed)"))
                .unwrap_or_default(),
            if r.problems.is_empty() {
                "intact".to_owned()
            } else {
                format!("{} problems", r.problems.len())
            }
        );
    }
    Ok(if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tansa init`: the store and the evidence key.
fn init(
    format: crate::cli::OutputFormat,
    data: &std::path::Path,
    cold: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let store = tansa_store::DuckStore::open(data, cold)
        .with_context(|| format!("creating the store in {}", data.display()))?;
    drop(store);
    let dir = data.join("evidence");
    let key = tansa_evidence::Key::open_or_create(&dir)?;
    let public = tansa_evidence::hex(&key.public());
    if format == crate::cli::OutputFormat::Json {
        println!(
            "{}",
            serde_json::json!({
                "data": data,
                "evidence_key": public,
                "evidence_key_pem": dir.join("evidence.pub.pem"),
            })
        );
    } else {
        println!("data directory {} ready", data.display());
        println!("evidence signing key (public): {public}");
        println!(
            "  as PEM for OpenSSL: {}",
            dir.join("evidence.pub.pem").display()
        );
        println!("  keep a copy of it elsewhere: seals and bundles verify against it");
    }
    Ok(ExitCode::SUCCESS)
}
