//! ModSecurity rules (the OWASP Core Rule Set and rules written like it) run over access-log
//! requests: the request-side subset of the SecRule language a log can feed.
//!
//! Where it sits: an optional part of detection. `tansa analyze --crs DIR` and the server's
//! `[detection] crs` load every `*.conf` of a directory (with its `.data` files); the
//! [`crate::Classifier`] evaluates the rules on the parser threads for each web request and
//! the engine turns every match into an alert of rule `crs:ID`, aggregated per source
//! address like the other web rules.
//!
//! What a log line can feed, and so what is supported:
//! - variables `ARGS`, `ARGS_GET`, `ARGS_NAMES`, `ARGS_GET_NAMES` (the query string, split at
//!   `&` and `=`, names and values URL-decoded as ModSecurity's argument parser does),
//!   `REQUEST_URI`, `REQUEST_URI_RAW`, `REQUEST_FILENAME`, `REQUEST_BASENAME`,
//!   `QUERY_STRING`, `REQUEST_LINE`, `REQUEST_METHOD`, `REQUEST_PROTOCOL`,
//!   `REQUEST_HEADERS[:User-Agent|:Referer]` and `REQUEST_HEADERS_NAMES`; selectors
//!   (`ARGS:id`, `ARGS:/^pre/`) and exclusions (`!ARGS:x`, `!REQUEST_HEADERS:Referer`);
//!   in chained rules also `MATCHED_VAR(S)`, `MATCHED_VAR(S)_NAMES` and captures `TX:0`–`TX:9`;
//! - operators `@rx` (PCRE semantics with DOTALL, run by the `regex` crate), `@pm`,
//!   `@pmFromFile`, `@contains`, `@containsWord`, `@streq`, `@beginsWith`, `@endsWith`,
//!   `@within`, `@validateByteRange`, `@validateUrlEncoding`, `@eq`/`@gt`/`@ge`/`@lt`/`@le`, `@detectSQLi`, `@detectXSS` (libinjection),
//!   negated with `!`;
//! - transformations `none`, `lowercase`, `urlDecode`, `urlDecodeUni`, `htmlEntityDecode`,
//!   `jsDecode`, `cssDecode`, `cmdLine`, `compressWhitespace`, `removeWhitespace`,
//!   `removeNulls`, `normalizePath`, `normalizePathWin`, `replaceComments`, `removeComments`,
//!   `removeCommentsChar`, `escapeSeqDecode`, `utf8toUnicode`, `hexDecode`, `base64Decode`,
//!   `trim`, `length`; actions `id`, `msg`, `severity`, `tag` (`paranoia-level/N` selects the
//!   rules of the configured level and below), `capture`, `multiMatch`, `chain`.
//!
//! Not fed by a log, and so reported as skipped with that reason: cookies, bodies, XML,
//! uploaded files, other headers, responses, and rules that only read or write transaction
//! variables (the CRS's setup and paranoia-level gates). A chained condition on transaction
//! variables set by other rules (`TX:/rfi_parameter_.*/`) cannot be evaluated from one line;
//! it is taken as met and the rule's report says so.

use std::fmt;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use tansa_event::{Event, Field};

/// An error that stops a rule directory from loading at all.
#[derive(Debug, thiserror::Error)]
pub enum CrsError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: no *.conf rule file")]
    Empty(PathBuf),
}

/// What became of one rule of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrsStatus {
    Loaded,
    /// Loaded with a part taken as met (the reason).
    Partial(String),
    /// Above the configured paranoia level.
    Paranoia(u8),
    /// Reads only what a log line does not carry, or is a control rule (the reason).
    Skipped(String),
    /// Malformed or using an operator/transformation not supported (the reason).
    Error(String),
}

/// One rule's load report, with where it is.
#[derive(Debug, Clone)]
pub struct CrsReport {
    pub file: String,
    pub line: usize,
    pub id: Option<u32>,
    pub status: CrsStatus,
}

impl fmt::Display for CrsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
        match &self.status {
            CrsStatus::Loaded => write!(f, "{}:{}: {id}: loaded", self.file, self.line),
            CrsStatus::Partial(r) => write!(f, "{}:{}: {id}: loaded ({r})", self.file, self.line),
            CrsStatus::Paranoia(p) => {
                write!(f, "{}:{}: {id}: paranoia level {p}", self.file, self.line)
            }
            CrsStatus::Skipped(r) => write!(f, "{}:{}: {id}: skipped: {r}", self.file, self.line),
            CrsStatus::Error(r) => write!(f, "{}:{}: {id}: error: {r}", self.file, self.line),
        }
    }
}

/// A loaded rule: what an alert of it says.
#[derive(Debug, Clone)]
pub struct CrsRule {
    pub id: u32,
    pub msg: String,
    /// ModSecurity's severity word (`CRITICAL`, `ERROR`, `WARNING`, `NOTICE`), upper case.
    pub severity: String,
    pub tags: Vec<String>,
    pub paranoia: u8,
    links: Vec<Link>,
}

/// The rules of a directory.
pub struct CrsRules {
    rules: Vec<CrsRule>,
    reports: Vec<CrsReport>,
    /// The distinct transformation chains of the rules' conditions.
    chains: Vec<Vec<Transform>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Args,
    ArgsNames,
    Uri,
    UriRaw,
    Filename,
    Basename,
    QueryString,
    RequestLine,
    Method,
    Protocol,
    Headers,
    HeaderNames,
    MatchedVars,
    MatchedVarNames,
    Capture(u8),
}

#[derive(Debug, Clone)]
enum Selector {
    All,
    Name(String),
    Pattern(Regex),
}

impl Selector {
    fn picks(&self, name: &[u8]) -> bool {
        match self {
            Selector::All => true,
            Selector::Name(n) => name.eq_ignore_ascii_case(n.as_bytes()),
            Selector::Pattern(r) => r.is_match(name),
        }
    }
}

#[derive(Debug, Clone)]
struct Target {
    var: Var,
    sel: Selector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Transform {
    None,
    Lowercase,
    UrlDecode,
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    CmdLine,
    CompressWhitespace,
    RemoveWhitespace,
    RemoveNulls,
    NormalizePath,
    NormalizePathWin,
    ReplaceComments,
    RemoveComments,
    RemoveCommentsChar,
    EscapeSeqDecode,
    Utf8ToUnicode,
    HexDecode,
    Base64Decode,
    Trim,
    Length,
}

impl Transform {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "lowercase" => Self::Lowercase,
            "urlDecode" => Self::UrlDecode,
            "urlDecodeUni" => Self::UrlDecodeUni,
            "htmlEntityDecode" => Self::HtmlEntityDecode,
            "jsDecode" => Self::JsDecode,
            "cssDecode" => Self::CssDecode,
            "cmdLine" => Self::CmdLine,
            "compressWhitespace" => Self::CompressWhitespace,
            "removeWhitespace" => Self::RemoveWhitespace,
            "removeNulls" => Self::RemoveNulls,
            "normalizePath" | "normalisePath" => Self::NormalizePath,
            "normalizePathWin" | "normalisePathWin" => Self::NormalizePathWin,
            "replaceComments" => Self::ReplaceComments,
            "removeComments" => Self::RemoveComments,
            "removeCommentsChar" => Self::RemoveCommentsChar,
            "escapeSeqDecode" => Self::EscapeSeqDecode,
            "utf8toUnicode" => Self::Utf8ToUnicode,
            "hexDecode" => Self::HexDecode,
            "base64Decode" => Self::Base64Decode,
            "trim" => Self::Trim,
            "length" => Self::Length,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Op {
    Rx(Regex),
    Pm(AhoCorasick),
    Contains(Vec<u8>),
    ContainsWord(Regex),
    Streq(Vec<u8>),
    BeginsWith(Vec<u8>),
    EndsWith(Vec<u8>),
    Within(Vec<u8>),
    Num(std::cmp::Ordering, bool, i64),
    DetectSqli,
    DetectXss,
    /// Matches when a byte is outside the allowed ones.
    ValidateByteRange(Box<[bool; 256]>),
    /// Matches a `%` not followed by two hex digits.
    ValidateUrlEncoding,
    /// Always true (a condition a log line cannot decide).
    Met,
    /// Compares with a transaction value (`%{tx.allowed_methods}`): cannot be evaluated.
    Macro(String),
}

#[derive(Debug, Clone)]
struct Link {
    targets: Vec<Target>,
    excludes: Vec<Target>,
    op: Op,
    negate: bool,
    transforms: Vec<Transform>,
    /// `transforms` interned in [`CrsRules`]'s chains.
    chain: usize,
    multi_match: bool,
    capture: bool,
}

/// A web request as the rules see it, taken from an access-log event once.
#[derive(Debug, Default)]
pub struct Request {
    method: Vec<u8>,
    target: Vec<u8>,
    path: Vec<u8>,
    query: Vec<u8>,
    protocol: Vec<u8>,
    args: Vec<(Vec<u8>, Vec<u8>)>,
    headers: Vec<(&'static [u8], Vec<u8>)>,
}

impl Request {
    /// The request of an access-log event (`None` for other events).
    pub fn of(ev: &Event) -> Option<Request> {
        if ev.category != tansa_event::Category::Web {
            return None;
        }
        let url = ev.get_str(Field::URL_ORIGINAL)?;
        let mut r = Request::from_parts(
            ev.get_str(Field::HTTP_METHOD).as_deref().unwrap_or("GET"),
            &crate::web::unescape_log(&url),
            ev.get_str(Field::HTTP_VERSION).as_deref().unwrap_or("1.1"),
        );
        for (name, fld) in [
            (&b"User-Agent"[..], Field::USER_AGENT),
            (&b"Referer"[..], Field::HTTP_REFERRER),
        ] {
            if let Some(v) = ev.get_str(fld) {
                if v.as_ref() != "-" && !v.is_empty() {
                    r.headers
                        .push((name, crate::web::unescape_log(&v).into_bytes()));
                }
            }
        }
        Some(r)
    }

    /// A request from its method, target (`/path?query`) and HTTP version.
    pub fn from_parts(method: &str, target: &str, version: &str) -> Request {
        let t = target.as_bytes();
        let (path, query) = match memchr::memchr(b'?', t) {
            Some(i) => (&t[..i], &t[i + 1..]),
            None => (t, &b""[..]),
        };
        let args = if query.is_empty() {
            Vec::new()
        } else {
            query
                .split(|&b| b == b'&')
                .filter(|p| !p.is_empty())
                .map(|p| match memchr::memchr(b'=', p) {
                    Some(i) => (
                        url_decode(&p[..i], true, false),
                        url_decode(&p[i + 1..], true, false),
                    ),
                    None => (url_decode(p, true, false), Vec::new()),
                })
                .collect()
        };
        let version = version.trim_start_matches("HTTP/");
        Request {
            method: method.as_bytes().to_vec(),
            target: t.to_vec(),
            path: url_decode(path, false, false),
            query: query.to_vec(),
            protocol: format!("HTTP/{version}").into_bytes(),
            args,
            headers: Vec::new(),
        }
    }

    /// Adds a request header (User-Agent, Referer).
    pub fn header(mut self, name: &'static str, value: &str) -> Request {
        self.headers
            .push((name.as_bytes(), value.as_bytes().to_vec()));
        self
    }

    /// Every value the request variables hold: (variable, selector key, value).
    fn base(&self) -> Vec<Base> {
        let mut out = Vec::with_capacity(8 + 2 * self.args.len() + 2 * self.headers.len());
        let mut one = |var: Var, key: &[u8], value: &[u8]| {
            out.push(Base {
                var,
                key: key.to_vec(),
                value: value.to_vec(),
            })
        };
        for (n, v) in &self.args {
            one(Var::Args, n, v);
            one(Var::ArgsNames, n, n);
        }
        one(Var::Uri, b"", &self.target);
        one(Var::UriRaw, b"", &self.target);
        one(Var::Filename, b"", &self.path);
        one(
            Var::Basename,
            b"",
            self.path.rsplit(|&c| c == b'/').next().unwrap_or(&[]),
        );
        one(Var::QueryString, b"", &self.query);
        let mut l = self.method.clone();
        l.push(b' ');
        l.extend_from_slice(&self.target);
        l.push(b' ');
        l.extend_from_slice(&self.protocol);
        one(Var::RequestLine, b"", &l);
        one(Var::Method, b"", &self.method);
        one(Var::Protocol, b"", &self.protocol);
        for (n, v) in &self.headers {
            one(Var::Headers, n, v);
            one(Var::HeaderNames, n, n);
        }
        out
    }
}

/// One value of a request variable; `key` is what a selector picks by (argument or header
/// name).
struct Base {
    var: Var,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Target {
    fn picks(&self, b: &Base) -> bool {
        self.var == b.var && self.sel.picks(&b.key)
    }
}

impl CrsRules {
    /// Loads every `*.conf` of `dir` (in name order) at `paranoia` (1–4). Rules that do not
    /// load are in [`CrsRules::reports`] with their file and line; the others run.
    pub fn load(dir: &Path, paranoia: u8) -> Result<CrsRules, CrsError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| CrsError::Io(dir.into(), e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(CrsError::Empty(dir.into()));
        }
        let mut set = CrsRules {
            rules: Vec::new(),
            reports: Vec::new(),
            chains: Vec::new(),
        };
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| CrsError::Io(f.clone(), e))?;
            set.add(&f, &text, paranoia);
        }
        Ok(set)
    }

    /// Rules from the text of one file (`path` names it in reports and finds `.data` files).
    pub fn from_text(path: &Path, text: &str, paranoia: u8) -> CrsRules {
        let mut set = CrsRules {
            rules: Vec::new(),
            reports: Vec::new(),
            chains: Vec::new(),
        };
        set.add(path, text, paranoia);
        set
    }

    fn add(&mut self, path: &Path, text: &str, paranoia: u8) {
        let file = path.display().to_string();
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut pending: Option<Pending> = None;
        for (line, d) in directives(text) {
            let words = match split_words(&d) {
                Ok(w) => w,
                Err(e) => {
                    self.reports.push(CrsReport {
                        file: file.clone(),
                        line,
                        id: None,
                        status: CrsStatus::Error(e),
                    });
                    continue;
                }
            };
            if words.first().map(String::as_str) != Some("SecRule") {
                continue;
            }
            let actions = words.get(3).map(|a| parse_actions(a)).unwrap_or_default();
            let chained = actions.iter().any(|(k, _)| k == "chain");
            let link = if words.len() < 3 {
                Err(LinkError::Error(
                    "a SecRule needs variables and an operator".into(),
                ))
            } else {
                parse_link(&words[1], &words[2], &actions, dir)
            };
            match pending.as_mut() {
                Some((_, _, rule, notes, broken)) => match link {
                    Ok(l) => rule.links.push(l),
                    Err(LinkError::Unfed(why)) => {
                        notes.push(format!("chained condition on {why} taken as met"))
                    }
                    Err(LinkError::Skip(why)) => notes.push(format!("{SKIP}{why}")),
                    Err(LinkError::Error(e)) => {
                        *broken = true;
                        notes.push(e)
                    }
                },
                None => {
                    let id = actions
                        .iter()
                        .find(|(k, _)| k == "id")
                        .and_then(|(_, v)| v.parse::<u32>().ok());
                    let get = |key: &str| {
                        actions
                            .iter()
                            .find(|(k, _)| k == key)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let tags: Vec<String> = actions
                        .iter()
                        .filter(|(k, _)| k == "tag")
                        .map(|(_, v)| v.clone())
                        .collect();
                    let level = tags
                        .iter()
                        .find_map(|t| t.strip_prefix("paranoia-level/"))
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(1);
                    let mut notes = Vec::new();
                    let mut broken = false;
                    let mut links = Vec::new();
                    let control = actions.iter().any(|(k, _)| k == "nolog")
                        || !actions.iter().any(|(k, _)| k == "severity");
                    let link = if control {
                        Err(LinkError::Skip(
                            "a control rule (no severity, or nolog): it raises no alert".into(),
                        ))
                    } else {
                        link
                    };
                    let skip = match link {
                        Ok(l) => {
                            links.push(l);
                            None
                        }
                        Err(LinkError::Error(e)) => {
                            broken = true;
                            notes.push(e);
                            None
                        }
                        Err(LinkError::Skip(why)) => Some(why),
                        Err(LinkError::Unfed(what)) => Some(format!(
                            "its first condition ({what}) compares with a transaction value"
                        )),
                    };
                    let rule = CrsRule {
                        id: id.unwrap_or(0),
                        msg: get("msg"),
                        severity: get("severity").to_ascii_uppercase(),
                        tags,
                        paranoia: level,
                        links,
                    };
                    if let Some(why) = skip {
                        notes.insert(0, format!("{SKIP}{why}"));
                    }
                    pending = Some((line, id, rule, notes, broken));
                }
            }
            if !chained {
                let (line, id, rule, notes, broken) = pending.take().unwrap();
                self.finish(&file, line, id, rule, notes, broken, paranoia);
            }
        }
        if let Some((line, id, rule, notes, broken)) = pending.take() {
            self.finish(&file, line, id, rule, notes, broken, paranoia);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        file: &str,
        line: usize,
        id: Option<u32>,
        rule: CrsRule,
        notes: Vec<String>,
        broken: bool,
        paranoia: u8,
    ) {
        // a condition that reads nothing a log has: the whole rule is skipped
        let skip = notes.iter().find_map(|n| n.strip_prefix(SKIP));
        let status = if id.is_none() {
            CrsStatus::Error("no id".into())
        } else if let Some(why) = skip {
            CrsStatus::Skipped(why.to_string())
        } else if broken {
            CrsStatus::Error(notes.join("; "))
        } else if rule.paranoia > paranoia {
            CrsStatus::Paranoia(rule.paranoia)
        } else if notes.is_empty() {
            CrsStatus::Loaded
        } else {
            CrsStatus::Partial(notes.join("; "))
        };
        if matches!(status, CrsStatus::Loaded | CrsStatus::Partial(_)) {
            let mut rule = rule;
            for l in &mut rule.links {
                l.chain = self.intern(&l.transforms);
            }
            self.rules.push(rule);
        }
        self.reports.push(CrsReport {
            file: file.into(),
            line,
            id,
            status,
        });
    }

    /// The rules that run.
    pub fn rules(&self) -> &[CrsRule] {
        &self.rules
    }

    /// One report per rule of the files, in file order.
    pub fn reports(&self) -> &[CrsReport] {
        &self.reports
    }

    /// The numbers (indexes into [`CrsRules::rules`]) of the rules `req` matches.
    pub fn matches(&self, req: &Request, out: &mut Vec<u32>) {
        let base = req.base();
        // the transformed values of each (transformation chain, request value), made once
        let mut cache: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
        cache.resize_with(self.chains.len() * base.len(), || None);
        for (i, r) in self.rules.iter().enumerate() {
            if rule_matches(r, &base, &self.chains, &mut cache) {
                out.push(i as u32);
            }
        }
    }

    /// Seconds each rule took over `reqs` (by rule id), dearest first: for finding what
    /// makes a rule set slow (`examples/crs_cost.rs`).
    pub fn rule_costs(&self, reqs: &[Request]) -> Vec<(u32, f64)> {
        let mut secs = vec![0f64; self.rules.len()];
        for req in reqs {
            let base = req.base();
            let mut cache: Vec<Option<Vec<Vec<u8>>>> = Vec::new();
            cache.resize_with(self.chains.len() * base.len(), || None);
            for (i, r) in self.rules.iter().enumerate() {
                let t = std::time::Instant::now();
                rule_matches(r, &base, &self.chains, &mut cache);
                secs[i] += t.elapsed().as_secs_f64();
            }
        }
        let mut out: Vec<(u32, f64)> = self.rules.iter().map(|r| r.id).zip(secs).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    fn intern(&mut self, ts: &[Transform]) -> usize {
        match self.chains.iter().position(|c| c == ts) {
            Some(i) => i,
            None => {
                self.chains.push(ts.to_vec());
                self.chains.len() - 1
            }
        }
    }
}

/// A rule being read, until its chain ends: its line, id, the rule, notes, whether broken.
type Pending = (usize, Option<u32>, CrsRule, Vec<String>, bool);

/// Marks a note that makes the rule skipped (the reason follows).
const SKIP: &str = "\u{0}skip:";

/// Tests `link` on the transformation steps of one value; the matching step.
fn test_steps<'s>(link: &Link, steps: &'s [Vec<u8>], caps: &mut Vec<Vec<u8>>) -> Option<&'s [u8]> {
    let candidates = if link.multi_match {
        steps
    } else {
        &steps[steps.len() - 1..]
    };
    for s in candidates {
        let (hit, c) = evaluate(&link.op, s, link.capture);
        if hit != link.negate {
            if caps.is_empty() {
                *caps = c;
            }
            return Some(s);
        }
    }
    None
}

fn rule_matches(
    r: &CrsRule,
    base: &[Base],
    chains: &[Vec<Transform>],
    cache: &mut [Option<Vec<Vec<u8>>>],
) -> bool {
    // the values the previous condition matched (after its transformations), its captures
    let mut prev: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut caps: Vec<Vec<u8>> = Vec::new();
    for link in &r.links {
        if matches!(link.op, Op::Met) {
            continue;
        }
        let mut matched = Vec::new();
        let mut new_caps = Vec::new();
        for (i, b) in base.iter().enumerate() {
            if !link.targets.iter().any(|t| t.picks(b)) || link.excludes.iter().any(|t| t.picks(b))
            {
                continue;
            }
            let steps = cache[link.chain * base.len() + i]
                .get_or_insert_with(|| transform_steps(&b.value, &chains[link.chain]));
            if let Some(s) = test_steps(link, steps, &mut new_caps) {
                matched.push((b.key.clone(), s.to_vec()));
            }
        }
        for t in &link.targets {
            let derived: Vec<&[u8]> = match t.var {
                Var::MatchedVars => prev.iter().map(|(_, v)| v.as_slice()).collect(),
                Var::MatchedVarNames => prev.iter().map(|(n, _)| n.as_slice()).collect(),
                Var::Capture(i) => caps
                    .get(i as usize)
                    .map(Vec::as_slice)
                    .into_iter()
                    .collect(),
                _ => continue,
            };
            for v in derived {
                let steps = transform_steps(v, &chains[link.chain]);
                if let Some(s) = test_steps(link, &steps, &mut new_caps) {
                    matched.push((v.to_vec(), s.to_vec()));
                }
            }
        }
        if matched.is_empty() {
            return false;
        }
        prev = matched;
        if link.capture {
            caps = new_caps;
        }
    }
    !r.links.is_empty()
}

/// The value after each transformation (the untransformed value first).
fn transform_steps(v: &[u8], ts: &[Transform]) -> Vec<Vec<u8>> {
    let mut steps = vec![v.to_vec()];
    for t in ts {
        let cur = steps.last().unwrap();
        let next = match t {
            Transform::None => v.to_vec(),
            _ => apply(*t, cur),
        };
        if next != *cur {
            steps.push(next);
        }
    }
    steps
}

fn evaluate(op: &Op, v: &[u8], capture: bool) -> (bool, Vec<Vec<u8>>) {
    let hit = match op {
        Op::Rx(re) => {
            if capture {
                // captures are dear: only for a value that matches
                if !re.is_match(v) {
                    return (false, Vec::new());
                }
                return match re.captures(v) {
                    Some(c) => (
                        true,
                        (0..c.len().min(10))
                            .map(|i| c.get(i).map(|m| m.as_bytes().to_vec()).unwrap_or_default())
                            .collect(),
                    ),
                    None => (false, Vec::new()),
                };
            }
            re.is_match(v)
        }
        Op::Pm(ac) => ac.is_match(v),
        Op::Contains(n) => memchr::memmem::find(v, n).is_some(),
        Op::ContainsWord(re) => re.is_match(v),
        Op::Streq(s) => v == s.as_slice(),
        Op::BeginsWith(s) => v.starts_with(s),
        Op::EndsWith(s) => v.ends_with(s),
        Op::Within(s) => memchr::memmem::find(s, v).is_some(),
        Op::Num(ord, or_eq, n) => {
            let x: i64 = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let c = x.cmp(n);
            c == *ord || (*or_eq && c == std::cmp::Ordering::Equal)
        }
        Op::DetectSqli => !single_word(v) && libinjectionrs::detect_sqli(v).is_injection(),
        Op::DetectXss => !single_word(v) && libinjectionrs::detect_xss(v).is_injection(),
        Op::ValidateByteRange(ok) => v.iter().any(|&b| !ok[b as usize]),
        Op::ValidateUrlEncoding => v.iter().enumerate().any(|(i, &b)| {
            b == b'%'
                && !(v.get(i + 1).and_then(|&x| hex(x)).is_some()
                    && v.get(i + 2).and_then(|&x| hex(x)).is_some())
        }),
        Op::Met | Op::Macro(_) => true,
    };
    (hit, Vec::new())
}

/// A value of letters, digits, `_` and `.` only: one token, which libinjection never takes
/// for SQL or HTML injection (so it need not run; the web conformance test checks this over
/// libinjection's own vectors).
pub fn single_word(v: &[u8]) -> bool {
    v.iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
}

enum LinkError {
    /// Reads nothing a log line carries (the reason).
    Skip(String),
    /// Reads transaction variables set elsewhere (what).
    Unfed(String),
    Error(String),
}

fn parse_link(
    vars: &str,
    op: &str,
    actions: &[(String, String)],
    dir: &Path,
) -> Result<Link, LinkError> {
    let mut targets = Vec::new();
    let mut excludes = Vec::new();
    let mut unfed: Vec<String> = Vec::new();
    for v in split_vars(vars) {
        if v.starts_with('&') {
            unfed.push(v.clone());
            continue;
        }
        let (neg, v) = match v.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, v.as_str()),
        };
        let (name, sel) = match v.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (v, None),
        };
        let sel = match sel {
            None => Selector::All,
            Some(s) if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') => {
                match RegexBuilder::new(&s[1..s.len() - 1])
                    .case_insensitive(true)
                    .build()
                {
                    Ok(r) => Selector::Pattern(r),
                    Err(e) => return Err(LinkError::Error(format!("selector {s}: {e}"))),
                }
            }
            Some(s) => Selector::Name(s.trim_matches('\'').to_string()),
        };
        let var = match name.to_ascii_uppercase().as_str() {
            "ARGS" | "ARGS_GET" => Var::Args,
            "ARGS_NAMES" | "ARGS_GET_NAMES" => Var::ArgsNames,
            "REQUEST_URI" => Var::Uri,
            "REQUEST_URI_RAW" => Var::UriRaw,
            "REQUEST_FILENAME" => Var::Filename,
            "REQUEST_BASENAME" => Var::Basename,
            "QUERY_STRING" => Var::QueryString,
            "REQUEST_LINE" => Var::RequestLine,
            "REQUEST_METHOD" => Var::Method,
            "REQUEST_PROTOCOL" => Var::Protocol,
            "REQUEST_HEADERS" => Var::Headers,
            "REQUEST_HEADERS_NAMES" => Var::HeaderNames,
            "MATCHED_VARS" | "MATCHED_VAR" => Var::MatchedVars,
            "MATCHED_VARS_NAMES" | "MATCHED_VAR_NAME" => Var::MatchedVarNames,
            "TX" => match &sel {
                Selector::Name(n) if n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => {
                    Var::Capture(n.as_bytes()[0] - b'0')
                }
                _ => {
                    unfed.push(v.to_string());
                    continue;
                }
            },
            _ => {
                unfed.push(v.to_string());
                continue;
            }
        };
        // headers a log line does not carry read nothing
        if var == Var::Headers || var == Var::HeaderNames {
            if let Selector::Name(n) = &sel {
                if !["user-agent", "referer"].contains(&n.to_ascii_lowercase().as_str()) {
                    if !neg {
                        unfed.push(v.to_string());
                    }
                    continue;
                }
            }
        }
        if neg {
            excludes.push(Target { var, sel });
        } else {
            targets.push(Target { var, sel });
        }
    }
    let (negate, op) = parse_op(op, dir).map_err(LinkError::Error)?;
    if let Op::Macro(text) = &op {
        // `!@endsWith .%{request_headers.host}`: "not one of the site's own values" — taken
        // as met in a chain; a positive comparison with a setting cannot be
        return Err(if negate {
            LinkError::Unfed(format!("{vars} !{text}"))
        } else {
            LinkError::Skip(format!(
                "compares with a transaction value ({text}), which a log line does not carry"
            ))
        });
    }
    if targets.is_empty() {
        let what = unfed.join("|");
        return Err(LinkError::Skip(format!(
            "reads {what}, which a log line does not carry"
        )));
    }
    let mut transforms = Vec::new();
    let mut multi_match = false;
    let mut capture = false;
    for (k, v) in actions {
        match k.as_str() {
            "t" => match Transform::parse(v) {
                Some(Transform::None) => transforms.clear(),
                Some(t) => transforms.push(t),
                None => {
                    return Err(LinkError::Error(format!(
                        "transformation t:{v} not supported"
                    )))
                }
            },
            "multiMatch" => multi_match = true,
            "capture" => capture = true,
            _ => {}
        }
    }
    Ok(Link {
        targets,
        excludes,
        op,
        negate,
        transforms,
        chain: 0,
        multi_match,
        capture,
    })
}

fn parse_op(s: &str, dir: &Path) -> Result<(bool, Op), String> {
    let (negate, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (name, arg) = match s.strip_prefix('@') {
        Some(r) => match r.split_once(' ') {
            Some((n, a)) => (n, a),
            None => (r, ""),
        },
        None => ("rx", s),
    };
    if arg.contains("%{") {
        // a macro: a value of the transaction (its setup, the Host header) the log does not have
        return Ok((negate, Op::Macro(s.to_string())));
    }
    let phrases = |words: Vec<String>| -> Result<Op, String> {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(words)
            .map(Op::Pm)
            .map_err(|e| e.to_string())
    };
    let op = match name {
        "rx" => Op::Rx(
            RegexBuilder::new(&pcre_to_rust(arg))
                // PCRE as ModSecurity runs it: bytes, not UTF-8 (`\x{bc}` is a byte; `\w`,
                // case folding ASCII)
                .unicode(false)
                .dot_matches_new_line(true)
                .size_limit(256 << 20)
                .dfa_size_limit(64 << 20)
                .build()
                .map_err(|e| format!("@rx: {}", e.to_string().lines().last().unwrap_or("")))?,
        ),
        "pm" => phrases(arg.split_whitespace().map(String::from).collect())?,
        "pmFromFile" | "pmf" => {
            let mut words = Vec::new();
            for f in arg.split_whitespace() {
                let p = dir.join(f);
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                words.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(String::from),
                );
            }
            phrases(words)?
        }
        "contains" => Op::Contains(arg.as_bytes().to_vec()),
        "containsWord" => Op::ContainsWord(
            Regex::new(&format!(r"(?-u:\b){}(?-u:\b)", regex::escape(arg)))
                .map_err(|e| e.to_string())?,
        ),
        "streq" => Op::Streq(arg.as_bytes().to_vec()),
        "beginsWith" => Op::BeginsWith(arg.as_bytes().to_vec()),
        "endsWith" => Op::EndsWith(arg.as_bytes().to_vec()),
        "within" => Op::Within(arg.as_bytes().to_vec()),
        "eq" | "gt" | "ge" | "lt" | "le" => {
            let n: i64 = arg
                .trim()
                .parse()
                .map_err(|_| format!("@{name} {arg}: not a number"))?;
            use std::cmp::Ordering::*;
            let (o, e) = match name {
                "eq" => (Equal, false),
                "gt" => (Greater, false),
                "ge" => (Greater, true),
                "lt" => (Less, false),
                _ => (Less, true),
            };
            Op::Num(o, e, n)
        }
        "detectSQLi" => Op::DetectSqli,
        "detectXSS" => Op::DetectXss,
        "unconditionalMatch" => Op::Met,
        "validateUrlEncoding" => Op::ValidateUrlEncoding,
        "validateByteRange" => {
            let mut ok = Box::new([false; 256]);
            for part in arg.split(',') {
                let part = part.trim();
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (a, b): (u8, u8) = match (a.trim().parse(), b.trim().parse()) {
                    (Ok(a), Ok(b)) if a <= b => (a, b),
                    _ => return Err(format!("@validateByteRange {arg}: bad range {part}")),
                };
                ok[a as usize..=b as usize]
                    .iter_mut()
                    .for_each(|x| *x = true);
            }
            Op::ValidateByteRange(ok)
        }
        other => return Err(format!("operator @{other} not supported")),
    };
    Ok((negate, op))
}

/// A PCRE pattern in the syntax of the `regex` crate where the two differ only in spelling:
/// an escaped punctuation character becomes `\x{HH}` (`\<`, `\>` are word boundaries for
/// `regex`), a `{` that opens no repetition and a `}` that closes none are escaped. What
/// `regex` cannot do (look-around, back-references) stays and is reported by the compiler.
fn pcre_to_rust(p: &str) -> String {
    let b: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut class = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            '\\' if i + 1 < b.len() => {
                let n = b[i + 1];
                if n == 'x' && b.get(i + 2) == Some(&'{') {
                    // \x{HH}: a byte, in the two-digit form (the only one allowed above
                    // 0x7F without Unicode); a wider code point copied whole
                    let end = b[i..]
                        .iter()
                        .position(|&c| c == '}')
                        .map_or(b.len(), |e| i + e + 1);
                    let digits: String = b[i + 3..end.max(i + 4) - 1].iter().collect();
                    match u32::from_str_radix(&digits, 16) {
                        Ok(v) if v <= 0xff => out.push_str(&format!("\\x{v:02X}")),
                        _ => out.extend(&b[i..end]),
                    }
                    i = end;
                    continue;
                }
                if n.is_ascii_punctuation() {
                    out.push_str(&format!("\\x{:02X}", n as u32));
                } else {
                    out.push(c);
                    out.push(n);
                }
                i += 2;
                continue;
            }
            '[' if !class => {
                class = true;
                out.push(c);
                // a `]` or `^]` right after the opening is a literal
                if b.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if b.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if class => {
                class = false;
                out.push(c);
            }
            '{' if !class => {
                let rest: String = b[i + 1..].iter().take(24).collect();
                let quant = rest.find('}').map(|e| &rest[..e]).is_some_and(|q| {
                    let (a, z) = q.split_once(',').unwrap_or((q, "0"));
                    !a.is_empty()
                        && a.bytes().all(|d| d.is_ascii_digit())
                        && z.bytes().all(|d| d.is_ascii_digit())
                }) && !out.is_empty();
                if quant {
                    let e = rest.find('}').unwrap();
                    out.push('{');
                    out.push_str(&rest[..e]);
                    out.push('}');
                    i += e + 2;
                    continue;
                }
                out.push_str("\\{");
            }
            '}' if !class => out.push_str("\\}"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `VAR|!VAR:sel|VAR:/re|ge/`: the variables, `|` inside a `/regex/` selector kept.
fn split_vars(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_re = false;
    let mut prev = ' ';
    for c in s.chars() {
        if c == '/' && (prev == ':' || in_re) && prev != '\\' {
            in_re = !in_re;
        }
        if c == '|' && !in_re {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
        prev = c;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The directives of a file with the line each starts on: `\`-continued lines joined,
/// comments and blank lines dropped.
fn directives(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        match cur.as_mut() {
            Some((_, s)) => s.push_str(line.trim_start()),
            None => {
                let t = line.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                cur = Some((i + 1, t.to_string()));
            }
        }
        let s = &mut cur.as_mut().unwrap().1;
        if s.ends_with('\\') {
            s.pop();
            // a continued action list or operand: the line break was a separator
            if !s.ends_with(',') && !s.ends_with(' ') && !s.ends_with('"') {
                s.push(' ');
            }
        } else {
            out.push(cur.take().unwrap());
        }
    }
    out.extend(cur);
    out
}

/// Splits a directive into words; a `"…"` word keeps its backslashes but `\"`.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut w = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'"') => {
                        w.push('"');
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => w.push(c),
                }
            }
            if !closed {
                return Err("a quoted argument is not closed".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        out.push(w);
    }
    Ok(out)
}

/// `id:1,t:none,msg:'a, b',chain`: (key, value) pairs, quotes removed.
fn parse_actions(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c)
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .filter(|a| !a.trim().is_empty())
        .map(|a| {
            let a = a.trim();
            match a.split_once(':') {
                Some((k, v)) => (
                    k.trim().to_string(),
                    v.trim().trim_matches('\'').to_string(),
                ),
                None => (a.to_string(), String::new()),
            }
        })
        .collect()
}

/// The byte ModSecurity's decoders make of a code point: its low byte, but full-width ASCII
/// (U+FF01–FF5E) becomes its ASCII character.
fn low_byte(cp: u32) -> u8 {
    if (0xff01..=0xff5e).contains(&cp) {
        (cp - 0xff00 + 0x20) as u8
    } else {
        (cp & 0xff) as u8
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` (and with `uni` `%uXXXX`; with `plus` `+` as a space) decoded; invalid escapes kept.
fn url_decode(v: &[u8], plus: bool, uni: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' if uni && i + 5 < v.len() && (v[i + 1] | 0x20) == b'u' => {
                let h: Option<u32> = v[i + 2..i + 6]
                    .iter()
                    .try_fold(0u32, |a, &b| hex(b).map(|d| a * 16 + d as u32));
                match h {
                    Some(cp) => {
                        out.push(low_byte(cp));
                        i += 6;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'%' if i + 2 < v.len() => match (hex(v[i + 1]), hex(v[i + 2])) {
                (Some(a), Some(b)) => {
                    out.push(a * 16 + b);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn apply(t: Transform, v: &[u8]) -> Vec<u8> {
    match t {
        Transform::None => v.to_vec(),
        Transform::Lowercase => v.to_ascii_lowercase(),
        Transform::UrlDecode => url_decode(v, true, false),
        Transform::UrlDecodeUni => url_decode(v, true, true),
        Transform::HtmlEntityDecode => {
            let s = String::from_utf8_lossy(v);
            crate::web::html_entities(&s).into_owned().into_bytes()
        }
        Transform::JsDecode => js_decode(v),
        Transform::CssDecode => css_decode(v),
        Transform::CmdLine => cmd_line(v),
        Transform::CompressWhitespace => {
            let mut out = Vec::with_capacity(v.len());
            let mut ws = false;
            for &b in v {
                if b.is_ascii_whitespace() || b == 0x0b || b == 0xa0 {
                    if !ws {
                        out.push(b' ');
                    }
                    ws = true;
                } else {
                    out.push(b);
                    ws = false;
                }
            }
            out
        }
        Transform::RemoveWhitespace => v
            .iter()
            .copied()
            .filter(|b| !(b.is_ascii_whitespace() || *b == 0x0b || *b == 0xa0))
            .collect(),
        Transform::RemoveNulls => v.iter().copied().filter(|&b| b != 0).collect(),
        Transform::NormalizePath => normalize_path(v),
        Transform::NormalizePathWin => {
            let s: Vec<u8> = v
                .iter()
                .map(|&b| if b == b'\\' { b'/' } else { b })
                .collect();
            normalize_path(&s)
        }
        Transform::ReplaceComments => replace_comments(v, true),
        Transform::RemoveComments => replace_comments(v, false),
        Transform::RemoveCommentsChar => {
            let mut out = Vec::with_capacity(v.len());
            let mut i = 0;
            while i < v.len() {
                let two = v.get(i..i + 2);
                if matches!(two, Some(b"/*") | Some(b"*/") | Some(b"--")) {
                    i += 2;
                } else if v[i] == b'#' {
                    i += 1;
                } else {
                    out.push(v[i]);
                    i += 1;
                }
            }
            out
        }
        Transform::EscapeSeqDecode => js_decode(v),
        Transform::Utf8ToUnicode => {
            let s = String::from_utf8_lossy(v);
            let mut out = String::with_capacity(v.len());
            for c in s.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    out.push_str(&format!("%u{:04x}", c as u32));
                }
            }
            out.into_bytes()
        }
        Transform::HexDecode => v
            .chunks(2)
            .filter_map(|p| match p {
                [a, b] => Some(hex(*a)? * 16 + hex(*b)?),
                _ => None,
            })
            .collect(),
        Transform::Base64Decode => base64_decode(v),
        Transform::Trim => v.trim_ascii().to_vec(),
        Transform::Length => v.len().to_string().into_bytes(),
    }
}

/// JavaScript / C escapes: `\xHH`, `\uHHHH` (low byte, full-width ASCII to ASCII), `\OOO`,
/// `\n` and the other one-letter escapes, `\c` → `c`.
fn js_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'\\' || i + 1 >= v.len() {
            out.push(v[i]);
            i += 1;
            continue;
        }
        let n = v[i + 1];
        let hexes = |from: usize, k: usize| -> Option<u32> {
            v.get(from..from + k)?
                .iter()
                .try_fold(0u32, |a, &b| hex(b).map(|d| a * 16 + d as u32))
        };
        match n {
            b'x' => {
                if let Some(h) = hexes(i + 2, 2) {
                    out.push(h as u8);
                    i += 4;
                    continue;
                }
            }
            b'u' => {
                if let Some(cp) = hexes(i + 2, 4) {
                    out.push(low_byte(cp));
                    i += 6;
                    continue;
                }
            }
            b'0'..=b'7' => {
                let mut k = i + 1;
                let mut val = 0u32;
                while k < v.len() && k < i + 4 && (b'0'..=b'7').contains(&v[k]) {
                    val = val * 8 + (v[k] - b'0') as u32;
                    k += 1;
                }
                out.push(val as u8);
                i = k;
                continue;
            }
            _ => {}
        }
        out.push(match n {
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            c => c,
        });
        i += 2;
    }
    out
}

/// CSS escapes: `\` and 1–6 hex digits (one following space eaten), or `\` and a character.
fn css_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'\\' || i + 1 >= v.len() {
            out.push(v[i]);
            i += 1;
            continue;
        }
        let mut k = i + 1;
        let mut val = 0u32;
        while k < v.len() && k < i + 7 && hex(v[k]).is_some() {
            val = val * 16 + hex(v[k]).unwrap() as u32;
            k += 1;
        }
        if k > i + 1 {
            out.push(low_byte(val));
            if k < v.len() && v[k] == b' ' {
                k += 1;
            }
            i = k;
        } else if v[i + 1] == b'\n' {
            i += 2;
        } else {
            out.push(v[i + 1]);
            i += 2;
        }
    }
    out
}

/// ModSecurity's `cmdLine`: `\ " ' ^` removed, spaces before `/` and `(` removed, `,` and
/// `;` as spaces, whitespace compressed, lower case.
fn cmd_line(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let mut space = false;
    for &b in v {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                out.push(b);
                space = false;
            }
            b => {
                out.push(b.to_ascii_lowercase());
                space = false;
            }
        }
    }
    out
}

fn normalize_path(v: &[u8]) -> Vec<u8> {
    let absolute = v.first() == Some(&b'/');
    let trailing = v.last() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in v.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(v.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if trailing && !parts.is_empty() {
        out.push(b'/');
    }
    out
}

/// C comments replaced by a space (`replace`) or removed, and with `!replace` also `--` and
/// `#` to the end.
fn replace_comments(v: &[u8], replace: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i..].starts_with(b"/*") {
            let end = memchr::memmem::find(&v[i + 2..], b"*/").map(|e| i + 2 + e + 2);
            if replace {
                out.push(b' ');
            }
            i = end.unwrap_or(v.len());
        } else if !replace && (v[i..].starts_with(b"--") || v[i] == b'#') {
            let end = memchr::memchr(b'\n', &v[i..]).map(|e| i + e);
            i = end.unwrap_or(v.len());
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

fn base64_decode(v: &[u8]) -> Vec<u8> {
    let val = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &b in v {
        let Some(d) = val(b) else {
            if b == b'=' {
                break;
            }
            continue;
        };
        acc = (acc << 6) | d;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
# a comment
SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 1" "id:942011,phase:1,pass,nolog,skipAfter:END"
SecRule REQUEST_COOKIES|REQUEST_COOKIES_NAMES|ARGS_NAMES|ARGS|XML:/* "@detectSQLi" \
    "id:942100,\
    phase:2,\
    block,\
    t:none,t:utf8toUnicode,t:urlDecodeUni,t:removeNulls,\
    msg:'SQL Injection Attack Detected via libinjection',\
    tag:'attack-sqli',\
    tag:'paranoia-level/1',\
    severity:'CRITICAL'"
SecRule REQUEST_FILENAME|ARGS "@rx (?:\.\./|etc/passwd)" \
    "id:930100,phase:2,block,t:none,t:urlDecodeUni,t:normalizePath,multiMatch,msg:'Traversal',severity:'CRITICAL'"
SecRule REQUEST_HEADERS:User-Agent "@pm nikto sqlmap" "id:913100,phase:1,t:lowercase,msg:'scanner',tag:'paranoia-level/1',severity:'CRITICAL'"
SecRule ARGS "@rx ^([a-z]+):" "id:931130,phase:2,capture,t:none,msg:'RFI',severity:'CRITICAL',tag:'paranoia-level/2',chain"
    SecRule TX:1 "@streq http" "t:none,chain"
        SecRule TX:/rfi_parameter_.*/ "!@endsWith .%{request_headers.host}" "t:none"
SecRule REQUEST_BODY "@rx x" "id:920000,phase:2,msg:'body',severity:'CRITICAL'"
SecRule ARGS "@bogus x" "id:920001,phase:2,msg:'bad',severity:'CRITICAL'"
SecRule ARGS "@rx (" "id:920002,phase:2,msg:'bad re',severity:'CRITICAL'"
"#;

    fn ids(set: &CrsRules, req: &Request) -> Vec<u32> {
        let mut out = Vec::new();
        set.matches(req, &mut out);
        out.iter().map(|&i| set.rules()[i as usize].id).collect()
    }

    #[test]
    fn rules_load_with_reports_per_rule() {
        let set = CrsRules::from_text(Path::new("t.conf"), RULES, 2);
        let got: Vec<String> = set.reports().iter().map(|r| r.to_string()).collect();
        assert_eq!(set.rules().len(), 4, "{got:#?}");
        assert!(
            got[0].contains("t.conf:3: 942011: skipped: a control rule"),
            "{got:#?}"
        );
        assert_eq!(got[1], "t.conf:4: 942100: loaded");
        assert!(
            got[4].starts_with("t.conf:16: 931130: loaded (chained condition on TX:/rfi"),
            "{got:#?}"
        );
        assert!(
            got[5].contains("920000: skipped: reads REQUEST_BODY"),
            "{got:#?}"
        );
        assert!(
            got[6].contains("920001: error: operator @bogus"),
            "{got:#?}"
        );
        assert!(
            got[7].starts_with("t.conf:21: 920002: error: @rx"),
            "{got:#?}"
        );
        let pl1 = CrsRules::from_text(Path::new("t.conf"), RULES, 1);
        assert_eq!(pl1.rules().len(), 3);
        assert!(pl1.reports()[4]
            .to_string()
            .ends_with("931130: paranoia level 2"));
    }

    #[test]
    fn requests_match_through_variables_transformations_and_chains() {
        let set = CrsRules::from_text(Path::new("t.conf"), RULES, 2);
        let req = |t: &str| Request::from_parts("GET", t, "1.1");
        assert_eq!(
            ids(&set, &req("/item?id=1%27%20OR%20%271%27%3D%271")),
            vec![942100]
        );
        assert_eq!(
            ids(&set, &req("/item?id=42&q=hello+world")),
            Vec::<u32>::new()
        );
        // double-encoded traversal: the argument parser decodes once, t:urlDecodeUni again
        assert_eq!(ids(&set, &req("/f?p=%252e%252e%252fetc")), vec![930100]);
        assert_eq!(ids(&set, &req("/a/b/../../etc/passwd")), vec![930100]);
        assert_eq!(
            ids(
                &set,
                &req("/").header("User-Agent", "Mozilla/5.0 (Nikto/2.1.6)")
            ),
            vec![913100]
        );
        // chain: capture group 1 must be "http"; the host condition is taken as met
        assert_eq!(ids(&set, &req("/?u=http://evil.example/x")), vec![931130]);
        assert_eq!(
            ids(&set, &req("/?u=ftp://evil.example/x")),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn pcre_spellings_become_regex_ones() {
        let re = |p: &str| Regex::new(&pcre_to_rust(p)).unwrap();
        assert!(re(r"^[^:\(\)\&\|\!\<\>\~]*\)").is_match(b"a)"));
        assert!(!re(r"^[^:\(\)\&\|\!\<\>\~]*\)").is_match(b"<)"));
        assert!(re(r"\${IFS}").is_match(b"${IFS}"));
        assert!(re(r"a{2,3}b{1}").is_match(b"aab"));
        assert!(re(r"{x}").is_match(b"{x}"));
        assert!(re(r"[]a]").is_match(b"]"));
        let bytes = |p: &str| {
            RegexBuilder::new(&pcre_to_rust(p))
                .unicode(false)
                .build()
                .unwrap()
        };
        assert!(bytes(r"\x{bc}[^>\x{be}]*").is_match(b"\xbcab"));
        assert!(Regex::new(&pcre_to_rust(r"a(?=b)")).is_err());
    }

    #[test]
    fn transformations_behave_like_modsecurity() {
        assert_eq!(
            url_decode(b"a%2fb+c%zz%u0041%uff0e", true, true),
            b"a/b c%zzA."
        );
        assert_eq!(js_decode(br"\x3cscript\u003e\101\n"), b"<script>A\n");
        assert_eq!(css_decode(br"\3c \73 cript\:"), b"<script:");
        assert_eq!(
            cmd_line(br#"C^at /E"tc/pa'ss\wd ; ID"#),
            b"cat/etc/passwd id"
        );
        assert_eq!(normalize_path(b"/a/./b//../c/"), b"/a/c/");
        assert_eq!(
            replace_comments(b"UNION/**/SELECT/*x", true),
            b"UNION SELECT "
        );
        assert_eq!(replace_comments(b"1 -- x\nb", false), b"1 \nb");
        assert_eq!(base64_decode(b"PHNjcmlwdD4="), b"<script>");
        assert_eq!(apply(Transform::Utf8ToUnicode, "é<".as_bytes()), b"%u00e9<");
    }
}
