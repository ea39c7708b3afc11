//! Reading indicator feeds: plain lists, CSV, Spamhaus DROP (text and JSON), the TOR project's
//! exit-address list, STIX 2.1 bundles, MISP feeds (manifest and event files) and AlienVault
//! OTX pulse exports. The format is recognised from the content.
//!
//! A feed is given as `PATH` or `PATH#key=value,…` with keys `name` (the feed's name; default
//! the file name without extension), `column` (CSV: header name or 1-based number),
//! `confidence` (0–100 for indicators that carry none) and `flag` (an address flag every
//! address of the feed gets, e.g. `flag=tor_exit`). An entry that cannot be read is reported
//! with its line (or its JSON position) and skipped; the rest of the feed loads.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;
use tansa_event::{IpFlags, Nanos};

use crate::IntelError;

/// What an indicator matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ioc {
    /// An address (a /32 or /128) or a network.
    Net(IpNet),
    /// A domain name, lowercase, without a trailing dot; it matches its subdomains too.
    Domain(Box<str>),
    /// A URL, scheme and host lowercase.
    Url(Box<str>),
    /// An MD5, SHA-1, SHA-256 or SHA-512 hash, lowercase hex.
    Hash(Box<str>),
}

impl Ioc {
    pub fn kind(&self) -> &'static str {
        match self {
            Ioc::Net(n) if n.prefix_len() == n.max_prefix_len() => "ip",
            Ioc::Net(_) => "cidr",
            Ioc::Domain(_) => "domain",
            Ioc::Url(_) => "url",
            Ioc::Hash(_) => "hash",
        }
    }

    /// The indicator as written in reports (an address without `/32`).
    pub fn value(&self) -> String {
        match self {
            Ioc::Net(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
            Ioc::Net(n) => n.to_string(),
            Ioc::Domain(s) | Ioc::Url(s) | Ioc::Hash(s) => s.to_string(),
        }
    }
}

/// One indicator with what its feed says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    pub ioc: Ioc,
    /// Index of its feed in [`crate::Intel::feeds`].
    pub feed: u16,
    /// 0–100.
    pub confidence: Option<u8>,
    pub tags: Vec<Box<str>>,
    /// After this time (UTC nanoseconds) the indicator no longer matches.
    pub expires: Option<Nanos>,
    pub description: Option<Box<str>>,
}

/// A loaded feed.
#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    pub path: PathBuf,
    /// The format recognised (`plain`, `csv`, `drop`, `drop-json`, `tor-exit`, `stix`, `misp`,
    /// `otx`).
    pub format: &'static str,
    pub indicators: usize,
    /// Entries left out: where (line or position) and why.
    pub skipped: Vec<(String, String)>,
    /// The flag the feed gives its addresses.
    pub flag: IpFlags,
}

/// A feed as given on the command line or in the configuration.
#[derive(Debug, Clone, Default)]
pub struct FeedSpec {
    pub path: PathBuf,
    pub name: Option<String>,
    pub column: Option<String>,
    pub confidence: Option<u8>,
    pub flag: IpFlags,
}

impl std::str::FromStr for FeedSpec {
    type Err = IntelError;

    fn from_str(s: &str) -> Result<FeedSpec, IntelError> {
        let (path, opts) = match s.rsplit_once('#') {
            Some((p, o)) if !Path::new(s).exists() => (p, o),
            _ => (s, ""),
        };
        let mut spec = FeedSpec {
            path: path.into(),
            ..Default::default()
        };
        let bad = |reason: String| IntelError::Spec {
            spec: s.to_owned(),
            reason,
        };
        for kv in opts.split(',').filter(|k| !k.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("`{kv}` is not key=value")))?;
            match k {
                "name" => spec.name = Some(v.to_owned()),
                "column" => spec.column = Some(v.to_owned()),
                "confidence" => {
                    spec.confidence = Some(
                        v.parse::<u8>()
                            .ok()
                            .filter(|c| *c <= 100)
                            .ok_or_else(|| bad(format!("confidence `{v}` is not 0-100")))?,
                    )
                }
                "flag" => spec.flag.insert(
                    IpFlags::from_name(v).ok_or_else(|| bad(format!("unknown flag `{v}`")))?,
                ),
                _ => return Err(bad(format!("unknown option `{k}`"))),
            }
        }
        Ok(spec)
    }
}

/// Recognises an indicator value: an address, a network, a URL, a hash or a domain. Defanged
/// values (`hxxp://`, `[.]`, `(.)`) are refanged. `None` for anything else.
pub fn classify(raw: &str) -> Option<Ioc> {
    let mut s = raw
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_owned();
    if s.is_empty() {
        return None;
    }
    for (from, to) in [("[.]", "."), ("(.)", "."), ("[:]", ":"), ("[://]", "://")] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    if let Some(rest) = s.strip_prefix("hxxp") {
        s = format!("http{rest}");
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(Ioc::Net(IpNet::from(ip)));
    }
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(Ioc::Net(net.trunc()));
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, path) = rest.split_at(host_end);
        if host.is_empty() {
            return None;
        }
        return Some(Ioc::Url(
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
            .into(),
        ));
    }
    let hex = s.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && matches!(s.len(), 32 | 40 | 64 | 128) {
        return Some(Ioc::Hash(s.to_ascii_lowercase().into()));
    }
    let d = s.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    // a domain has a dot and a top-level label that is not a number
    let tld_ok = d
        .rsplit('.')
        .next()
        .is_some_and(|t| t.bytes().any(|b| b.is_ascii_alphabetic()));
    if d.contains('.') && labels_ok && tld_ok && d.len() <= 253 {
        return Some(Ioc::Domain(d.into()));
    }
    None
}

/// What loading one file produced.
pub(crate) struct Loaded {
    pub feed: Feed,
    pub indicators: Vec<Indicator>,
}

/// Reads one feed (a file, or a MISP feed directory). `feed` is the index it will have.
pub(crate) fn load(spec: &FeedSpec, feed: u16) -> Result<Loaded, IntelError> {
    let io = |e: std::io::Error| IntelError::Io {
        path: spec.path.clone(),
        source: e,
    };
    let name = spec.name.clone().unwrap_or_else(|| {
        spec.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.path.display().to_string())
    });
    let mut out = Out {
        feed,
        spec,
        indicators: Vec::new(),
        skipped: Vec::new(),
    };
    let format = if spec.path.is_dir() {
        let manifest = spec.path.join("manifest.json");
        if !manifest.is_file() {
            return Err(IntelError::Format {
                path: spec.path.clone(),
                reason: "a directory feed must be a MISP feed (with manifest.json)".into(),
            });
        }
        misp_dir(&spec.path, &mut out)?;
        "misp"
    } else {
        let text = std::fs::read(&spec.path).map_err(io)?;
        let text = String::from_utf8_lossy(&text);
        let head = text.trim_start();
        let is_csv = spec.column.is_some()
            || spec
                .path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv {
            csv_feed(&text, &mut out)?;
            "csv"
        } else if head.starts_with('{')
            && head.lines().next().is_some_and(|l| l.contains("\"cidr\""))
        {
            drop_json(&text, &mut out);
            "drop-json"
        } else if head.starts_with('{') || head.starts_with('[') {
            let v: Value = serde_json::from_str(&text).map_err(|e| IntelError::Format {
                path: spec.path.clone(),
                reason: format!("not JSON: {e}"),
            })?;
            json_feed(&v, &mut out)?
        } else if text.lines().any(|l| l.starts_with("ExitNode ")) {
            tor_exits(&text, &mut out);
            "tor-exit"
        } else if text.lines().any(|l| l.contains(" ; SBL")) {
            plain(&text, &mut out);
            "drop"
        } else {
            plain(&text, &mut out);
            "plain"
        }
    };
    let mut flag = spec.flag;
    if format == "tor-exit" {
        flag.insert(IpFlags::TOR_EXIT);
    }
    Ok(Loaded {
        feed: Feed {
            name,
            path: spec.path.clone(),
            format,
            indicators: out.indicators.len(),
            skipped: out.skipped,
            flag,
        },
        indicators: out.indicators,
    })
}

struct Out<'a> {
    feed: u16,
    spec: &'a FeedSpec,
    indicators: Vec<Indicator>,
    skipped: Vec<(String, String)>,
}

#[derive(Default)]
struct Meta {
    confidence: Option<u8>,
    tags: Vec<Box<str>>,
    expires: Option<Nanos>,
    description: Option<Box<str>>,
}

impl Out<'_> {
    fn push(&mut self, ioc: Ioc, meta: Meta) {
        self.indicators.push(Indicator {
            ioc,
            feed: self.feed,
            confidence: meta.confidence.or(self.spec.confidence),
            tags: meta.tags,
            expires: meta.expires,
            description: meta.description,
        });
    }

    /// Classifies `value` and adds it, or records why not.
    fn value(&mut self, at: impl FnOnce() -> String, value: &str, meta: Meta) {
        match classify(value) {
            Some(ioc) => self.push(ioc, meta),
            None => self
                .skipped
                .push((at(), format!("`{}` is not an indicator", clip(value)))),
        }
    }

    fn skip(&mut self, at: String, why: impl Into<String>) {
        self.skipped.push((at, why.into()));
    }
}

fn clip(s: &str) -> String {
    let s: String = s.chars().take(60).collect();
    s.escape_debug().to_string()
}

/// One value per line; `#` starts a comment; `value ; note` (Spamhaus DROP) keeps the note.
fn plain(text: &str, out: &mut Out) {
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let (value, note) = match line.split_once(';') {
            Some((v, note)) => (v.trim(), Some(note.trim())),
            None => (line, None),
        };
        let value = value.split_whitespace().next().unwrap_or("");
        let meta = Meta {
            description: note.filter(|n| !n.is_empty()).map(Into::into),
            ..Meta::default()
        };
        out.value(|| format!("line {}", n + 1), value, meta);
    }
}

/// Spamhaus DROP in JSON lines (`{"cidr":"…","sblid":"…","rir":"…"}`, then a metadata line).
fn drop_json(text: &str, out: &mut Out) {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("type").is_some_and(|t| t == "metadata") => {}
            Ok(v) => match v.get("cidr").and_then(Value::as_str) {
                Some(c) => {
                    let meta = Meta {
                        description: v.get("sblid").and_then(Value::as_str).map(Into::into),
                        ..Meta::default()
                    };
                    out.value(|| format!("line {}", n + 1), c, meta)
                }
                None => out.skip(format!("line {}", n + 1), "no `cidr`"),
            },
            Err(e) => out.skip(format!("line {}", n + 1), format!("not JSON: {e}")),
        }
    }
}

/// The TOR project's exit list (`ExitNode`, `Published`, `LastStatus`, `ExitAddress` lines).
fn tor_exits(text: &str, out: &mut Out) {
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("ExitAddress ") {
            let ip = rest.split_whitespace().next().unwrap_or("");
            let meta = Meta {
                tags: vec!["tor".into()],
                ..Meta::default()
            };
            out.value(|| format!("line {}", n + 1), ip, meta);
        }
    }
}

/// Header names that hold the indicator, in order of preference.
const VALUE_COLUMNS: &[&str] = &[
    "indicator",
    "ioc",
    "ioc_value",
    "value",
    "ip",
    "ip_address",
    "ipaddress",
    "dst_ip",
    "address",
    "url",
    "domain",
    "hostname",
    "host",
    "sha256",
    "sha256_hash",
    "sha1",
    "sha1_hash",
    "md5",
    "md5_hash",
    "hash",
];

/// CSV: the header is the first row, or the last `#` comment line before the data when it
/// looks like one (abuse.ch's exports). The value column is the one named in the spec, else the
/// first known header name, else the first column whose first value is an indicator.
fn csv_feed(text: &str, out: &mut Out) -> Result<(), IntelError> {
    let mut comment_header = None;
    let mut body_start = 0;
    let mut body_line = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            let h = t.trim_start_matches('#').trim();
            if h.contains(',') {
                comment_header = Some(h.to_owned());
            }
            body_start += line.len();
            body_line += 1;
        } else {
            break;
        }
    }
    let body = &text[body_start..];
    let parse_header = |h: &str| -> Vec<String> {
        h.split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
            .collect()
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(comment_header.is_none())
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(body.as_bytes());
    let header: Vec<String> = match &comment_header {
        Some(h) => parse_header(h),
        None => rdr
            .headers()
            .map(|h| h.iter().map(|c| c.trim().to_ascii_lowercase()).collect())
            .unwrap_or_default(),
    };
    let rows: Vec<(usize, csv::StringRecord)> = rdr
        .records()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Ok(r) => Some((i, r)),
            Err(e) => {
                out.skip(format!("row {}", i + 1), e.to_string());
                None
            }
        })
        .collect();
    let find = |name: &str| header.iter().position(|h| h == name);
    let col = match &out.spec.column {
        Some(c) => match c.parse::<usize>() {
            Ok(n) if n >= 1 => n - 1,
            _ => find(&c.to_ascii_lowercase()).ok_or_else(|| IntelError::Format {
                path: out.spec.path.clone(),
                reason: format!("no column `{c}` (columns: {})", header.join(", ")),
            })?,
        },
        None => VALUE_COLUMNS
            .iter()
            .find_map(|n| find(n))
            .or_else(|| {
                rows.first()
                    .and_then(|(_, r)| r.iter().position(|v| classify(v).is_some()))
            })
            .ok_or_else(|| IntelError::Format {
                path: out.spec.path.clone(),
                reason: "no column holds indicators; name one with #column=".into(),
            })?,
    };
    let conf_col = find("confidence").or_else(|| find("confidence_level"));
    let tag_cols: Vec<usize> = ["tags", "threat", "malware", "threat_type"]
        .iter()
        .filter_map(|n| find(n))
        .collect();
    // data rows start after the header line (when it was not a comment)
    let first = body_line + usize::from(comment_header.is_none()) + 1;
    for (i, row) in rows {
        let Some(v) = row.get(col) else {
            out.skip(
                format!("line {}", first + i),
                format!("no column {}", col + 1),
            );
            continue;
        };
        let meta = Meta {
            confidence: conf_col
                .and_then(|c| row.get(c))
                .and_then(|c| c.trim().parse::<u8>().ok())
                .filter(|c| *c <= 100),
            tags: tag_cols
                .iter()
                .filter_map(|&c| row.get(c))
                .flat_map(|t| t.split([',', '|', ' ']))
                .filter(|t| !t.is_empty() && *t != "None")
                .map(Into::into)
                .collect(),
            ..Meta::default()
        };
        out.value(|| format!("line {}", first + i), v, meta);
    }
    Ok(())
}

/// A JSON document: STIX bundle, MISP event, OTX pulse(s).
fn json_feed(v: &Value, out: &mut Out) -> Result<&'static str, IntelError> {
    if v.get("type").is_some_and(|t| t == "bundle") {
        stix_bundle(v, out);
        return Ok("stix");
    }
    if v.get("Event").is_some() {
        misp_event(v, "", out);
        return Ok("misp");
    }
    let pulses: Vec<&Value> = if let Some(r) = v.get("results").and_then(Value::as_array) {
        r.iter().collect()
    } else if let Some(a) = v.as_array() {
        a.iter().collect()
    } else if v.get("indicators").is_some() {
        vec![v]
    } else {
        return Err(IntelError::Format {
            path: out.spec.path.clone(),
            reason: "JSON that is neither a STIX bundle, a MISP event nor an OTX pulse".into(),
        });
    };
    for (pi, p) in pulses.iter().enumerate() {
        otx_pulse(p, pi, out);
    }
    Ok("otx")
}

/// RFC 3339, or a date-time without zone (taken as UTC, as OTX writes them).
fn parse_time(s: &str) -> Option<Nanos> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_nanosecond() as Nanos);
    }
    let dt = s.parse::<jiff::civil::DateTime>().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_nanosecond() as Nanos)
}

fn strings(v: Option<&Value>) -> Vec<Box<str>> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().or_else(|| t.get("name").and_then(Value::as_str)))
                .map(Into::into)
                .collect()
        })
        .unwrap_or_default()
}

fn stix_bundle(v: &Value, out: &mut Out) {
    let objects = v.get("objects").and_then(Value::as_array);
    for (i, o) in objects.into_iter().flatten().enumerate() {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        let at = || {
            format!(
                "objects[{i}] {}",
                o.get("id").and_then(Value::as_str).unwrap_or("")
            )
        };
        if o.get("revoked").and_then(Value::as_bool) == Some(true) {
            out.skip(at(), "revoked");
            continue;
        }
        if let Some(pt) = o.get("pattern_type").and_then(Value::as_str) {
            if pt != "stix" {
                out.skip(
                    at(),
                    format!("pattern_type `{pt}` (only stix patterns are read)"),
                );
                continue;
            }
        }
        let Some(pattern) = o.get("pattern").and_then(Value::as_str) else {
            out.skip(at(), "no pattern");
            continue;
        };
        let values = match stix_pattern(pattern) {
            Ok(v) => v,
            Err(why) => {
                out.skip(at(), why);
                continue;
            }
        };
        let mut tags = strings(o.get("indicator_types"));
        tags.extend(strings(o.get("labels")));
        for value in values {
            let meta = Meta {
                confidence: o
                    .get("confidence")
                    .and_then(Value::as_u64)
                    .and_then(|c| u8::try_from(c).ok())
                    .filter(|c| *c <= 100),
                tags: tags.clone(),
                expires: o
                    .get("valid_until")
                    .and_then(Value::as_str)
                    .and_then(parse_time),
                description: o
                    .get("name")
                    .or_else(|| o.get("description"))
                    .and_then(Value::as_str)
                    .map(Into::into),
            };
            out.value(at, &value, meta);
        }
    }
}

/// The values of a STIX pattern made of comparisons `object:path = 'v'` (or `ISSUBSET` for
/// networks) joined by `OR`, inside one or more `[…]` joined by `OR`. Anything that needs two
/// observations at once (`AND`, `FOLLOWEDBY`, qualifiers) cannot be one indicator.
fn stix_pattern(p: &str) -> Result<Vec<String>, String> {
    let only_or = || format!("pattern `{}` joins observations other than by OR", clip(p));
    let mut values = Vec::new();
    let mut rest = p.trim();
    let mut in_brackets = false;
    loop {
        if !in_brackets {
            rest = rest
                .strip_prefix('[')
                .ok_or_else(|| format!("pattern `{}` is not [ … ]", clip(p)))?
                .trim_start();
            in_brackets = true;
        }
        let (value, after) =
            stix_comparison(rest).map_err(|why| format!("pattern `{}`: {why}", clip(p)))?;
        values.push(value);
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix(']') {
            rest = r.trim_start();
            in_brackets = false;
            if rest.is_empty() {
                break;
            }
        }
        rest = rest.strip_prefix("OR").ok_or_else(only_or)?.trim_start();
    }
    Ok(values)
}

/// One comparison `object:path = 'value'` at the start of `s`: the value and what follows.
fn stix_comparison(s: &str) -> Result<(String, &str), String> {
    let path_end = s
        .find(|c: char| c == '=' || c.is_whitespace())
        .ok_or("no comparison")?;
    let path = &s[..path_end];
    let object = path.split(':').next().unwrap_or("");
    if !matches!(
        object,
        "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "file"
    ) {
        return Err(format!(
            "object `{object}` is not an address, domain, URL or file"
        ));
    }
    if object == "file" && !path.starts_with("file:hashes") {
        return Err(format!("`{path}` is not a file hash"));
    }
    let after = s[path_end..].trim_start();
    let after = after
        .strip_prefix('=')
        .or_else(|| after.strip_prefix("ISSUBSET"))
        .ok_or("only = and ISSUBSET are read")?
        .trim_start();
    let quoted = after.strip_prefix('\'').ok_or("the value is not quoted")?;
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    value.push(n);
                }
            }
            '\'' => return Ok((value, &quoted[i + 1..])),
            c => value.push(c),
        }
    }
    Err("unterminated value".into())
}

/// MISP attribute types we match, and which part of a composite (`a|b`) value is the indicator.
fn misp_value<'v>(ty: &str, value: &'v str) -> Option<Vec<&'v str>> {
    let parts: Vec<&str> = value.split('|').collect();
    Some(match ty {
        "ip-src" | "ip-dst" | "domain" | "hostname" | "url" | "uri" | "link" | "md5" | "sha1"
        | "sha256" | "sha512" => vec![value],
        "ip-src|port" | "ip-dst|port" | "hostname|port" => vec![parts[0]],
        "domain|ip" => parts,
        "filename|md5" | "filename|sha1" | "filename|sha256" | "filename|sha512" => {
            vec![*parts.get(1)?]
        }
        _ => return None,
    })
}

fn misp_event(v: &Value, at: &str, out: &mut Out) {
    let Some(ev) = v.get("Event") else {
        out.skip(at.to_owned(), "no Event");
        return;
    };
    let event_tags = strings(ev.get("Tag"));
    let info = ev.get("info").and_then(Value::as_str);
    let mut attrs: Vec<&Value> = ev
        .get("Attribute")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for o in ev
        .get("Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        attrs.extend(
            o.get("Attribute")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    }
    for (i, a) in attrs.into_iter().enumerate() {
        let ty = a.get("type").and_then(Value::as_str).unwrap_or("");
        let value = a.get("value").and_then(Value::as_str).unwrap_or("");
        let pos = || format!("{at}Attribute[{i}] {ty}");
        if a.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        // MISP's own marker of values meant for detection (`to_ids`)
        if a.get("to_ids").and_then(Value::as_bool) == Some(false) {
            out.skip(pos(), "to_ids is false (not for detection)");
            continue;
        }
        let Some(values) = misp_value(ty, value) else {
            out.skip(pos(), format!("type `{ty}` is not matched"));
            continue;
        };
        let mut tags = event_tags.clone();
        tags.extend(strings(a.get("Tag")));
        for v in values {
            let meta = Meta {
                tags: tags.clone(),
                description: a
                    .get("comment")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                    .or(info)
                    .map(Into::into),
                ..Meta::default()
            };
            out.value(pos, v, meta);
        }
    }
}

/// A MISP feed directory: `manifest.json` lists the events, one `UUID.json` file each.
fn misp_dir(dir: &Path, out: &mut Out) -> Result<(), IntelError> {
    let read = |p: &Path| -> Result<Value, IntelError> {
        let t = std::fs::read(p).map_err(|e| IntelError::Io {
            path: p.to_path_buf(),
            source: e,
        })?;
        serde_json::from_slice(&t).map_err(|e| IntelError::Format {
            path: p.to_path_buf(),
            reason: format!("not JSON: {e}"),
        })
    };
    let manifest = read(&dir.join("manifest.json"))?;
    let Some(events) = manifest.as_object() else {
        return Err(IntelError::Format {
            path: dir.join("manifest.json"),
            reason: "the manifest is not an object of events".into(),
        });
    };
    for uuid in events.keys() {
        let file = dir.join(format!("{uuid}.json"));
        match read(&file) {
            Ok(v) => misp_event(&v, &format!("{uuid}.json "), out),
            Err(e) => out.skip(format!("{uuid}.json"), e.to_string()),
        }
    }
    Ok(())
}

/// OTX indicator types we match.
fn otx_type(t: &str) -> bool {
    matches!(
        t,
        "IPv4"
            | "IPv6"
            | "CIDR"
            | "domain"
            | "hostname"
            | "URL"
            | "URI"
            | "FileHash-MD5"
            | "FileHash-SHA1"
            | "FileHash-SHA256"
    )
}

fn otx_pulse(p: &Value, pi: usize, out: &mut Out) {
    let tags = strings(p.get("tags"));
    let name = p.get("name").and_then(Value::as_str);
    for (i, ind) in p
        .get("indicators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ty = ind.get("type").and_then(Value::as_str).unwrap_or("");
        let at = || format!("pulse {pi} indicators[{i}] {ty}");
        if !otx_type(ty) {
            out.skip(at(), format!("type `{ty}` is not matched"));
            continue;
        }
        if ind.get("is_active").and_then(Value::as_i64) == Some(0) {
            out.skip(at(), "inactive");
            continue;
        }
        let value = ind.get("indicator").and_then(Value::as_str).unwrap_or("");
        let meta = Meta {
            tags: tags.clone(),
            expires: ind
                .get("expiration")
                .and_then(Value::as_str)
                .and_then(parse_time),
            description: ind
                .get("title")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .or(name)
                .map(Into::into),
            ..Meta::default()
        };
        out.value(at, value, meta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_classified_and_refanged() {
        let net = |s: &str| Ioc::Net(s.parse().unwrap());
        assert_eq!(classify("45.141.87.23"), Some(net("45.141.87.23/32")));
        assert_eq!(classify("1.10.16.5/20"), Some(net("1.10.16.0/20")));
        assert_eq!(classify("2001:db8::/32"), Some(net("2001:db8::/32")));
        assert_eq!(
            classify("evil[.]example"),
            Some(Ioc::Domain("evil.example".into()))
        );
        assert_eq!(
            classify("hxxp://EVIL.example/x.sh"),
            Some(Ioc::Url("http://evil.example/x.sh".into()))
        );
        assert_eq!(
            classify("D41D8CD98F00B204E9800998ECF8427E"),
            Some(Ioc::Hash("d41d8cd98f00b204e9800998ecf8427e".into()))
        );
        assert_eq!(classify("not an indicator"), None);
        assert_eq!(classify("1.2.3"), None);
        assert_eq!(classify("localhost"), None);
    }

    #[test]
    fn stix_patterns_of_one_observable() {
        assert_eq!(
            stix_pattern("[ipv4-addr:value = '198.51.100.1']").unwrap(),
            ["198.51.100.1"]
        );
        assert_eq!(
            stix_pattern("[ipv4-addr:value ISSUBSET '198.51.100.0/24']").unwrap(),
            ["198.51.100.0/24"]
        );
        assert_eq!(
            stix_pattern("[domain-name:value = 'a.example' OR domain-name:value = 'b.example']")
                .unwrap(),
            ["a.example", "b.example"]
        );
        assert_eq!(
            stix_pattern("[url:value = 'http://x.example/a'] OR [file:hashes.'SHA-256' = 'ab']")
                .unwrap(),
            ["http://x.example/a", "ab"]
        );
        assert!(
            stix_pattern("[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 22]")
                .is_err()
        );
        assert!(stix_pattern("[process:name = 'x']").is_err());
        assert!(stix_pattern(
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '5.6.7.8']"
        )
        .is_err());
    }

    #[test]
    fn specs_carry_options() {
        let s: FeedSpec = "/x/feed.csv#name=urlhaus,column=url,confidence=80,flag=tor_exit"
            .parse()
            .unwrap();
        assert_eq!(s.path, PathBuf::from("/x/feed.csv"));
        assert_eq!(s.name.as_deref(), Some("urlhaus"));
        assert_eq!(s.column.as_deref(), Some("url"));
        assert_eq!(s.confidence, Some(80));
        assert!(s.flag.contains(IpFlags::TOR_EXIT));
        assert!("/x#confidence=200".parse::<FeedSpec>().is_err());
        assert!("/x#bogus=1".parse::<FeedSpec>().is_err());
    }
}
