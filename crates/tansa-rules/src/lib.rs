//! Sigma rules for Tansa: loading, field and logsource mappings, evaluation on the [`Event`].
//!
//! Part of the detect stage of the data path. Rules are parsed with `rsigma-parser` and
//! compiled with `rsigma-eval` once, at load time; every rule gets a [`RuleReport`] (loaded,
//! unsupported with the reason, or an error with its file and, when the parser knows it, the
//! line), and the rest of a directory loads when one file is broken. Evaluation runs
//! `rsigma-eval`'s matchers directly on Tansa's event through [`SigmaEvent`] (no JSON per
//! event): Sigma field names are translated by a mapping file (`mappings/linux.yml`, embedded
//! by default, resolved to fields once).
//!
//! Rules are indexed by log source: there is one rsigma engine per kind of event Tansa
//! produces (sshd, sudo, cron, auditd, … × process_creation/firewall, nginx, apache), holding
//! only the rules whose logsource covers it, so an sshd line never meets a web rule. Inside an
//! engine, rsigma-eval's candidate index (Aho-Corasick over the rules' literal needles, exact
//! values, field presence) selects the few rules worth evaluating. Detection is stateless and
//! runs on the parser threads ([`SigmaRules::match_numbers`]); correlation rules
//! (`event_count`, `value_count`, `temporal`, `temporal_ordered`, metric types) keep their
//! windows in a [`Correlator`] fed in event time on the detection thread.
//!
//! ```
//! use tansa_rules::SigmaRules;
//! let rules = SigmaRules::from_yaml("inline.yml", r#"
//! title: Root login
//! id: 1b7a0e5c-1111-4d2a-9a44-6a3d0f3f8f11
//! logsource: {product: linux, service: sshd}
//! detection:
//!   sel: {User: root}
//!   condition: sel
//! level: high
//! "#);
//! assert_eq!(rules.loaded(), 1);
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, OnceLock};

use rsigma_eval::event::{Event as SigmaEventTrait, EventValue};
use rsigma_eval::result::{EvaluationResult, ResultBody};
use rsigma_eval::{
    compile_rule, CompiledRule, CorrelationConfig, CorrelationEngine, CorrelationEventMode, Engine,
    TimestampFallback,
};
use rsigma_parser::{CorrelationRule, FilterRule, LogSource, SigmaCollection, SigmaRule};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use tansa_event::{Category, Event, Field, Val};

mod prefilter;
use prefilter::Prefilter;

/// The default field mapping, shipped in the binary.
pub const DEFAULT_MAPPING: &str = include_str!("../../../mappings/linux.yml");

/// Errors of loading mappings.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: {message}")]
    Mapping { path: String, message: String },
}

/// A field mapping file: Sigma name → Tansa field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub version: u32,
    pub fields: HashMap<String, String>,
    /// `fields` resolved to Tansa fields once (rules ask for a field on every evaluation).
    #[serde(skip)]
    resolved: FxHashMap<String, Option<Field>>,
}

impl Mapping {
    pub fn parse(path: &str, text: &str) -> Result<Self, RulesError> {
        let m: Mapping = yaml_serde::from_str(text).map_err(|e| RulesError::Mapping {
            path: path.into(),
            message: e.to_string(),
        })?;
        if m.version != 1 {
            return Err(RulesError::Mapping {
                path: path.into(),
                message: format!("unsupported mapping version {}", m.version),
            });
        }
        let mut m = m;
        m.resolved = m
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Field::lookup(v)))
            .collect();
        Ok(m)
    }

    /// The Tansa field a Sigma field name stands for (mapped, else an ECS name as is).
    pub fn field(&self, name: &str) -> Option<Field> {
        match self.resolved.get(name) {
            Some(f) => *f,
            None => Field::lookup(name),
        }
    }

    pub fn default_linux() -> Self {
        Self::parse("mappings/linux.yml", DEFAULT_MAPPING).expect("the shipped mapping parses")
    }
}

/// What happened to one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Loaded,
    /// Valid Sigma that Tansa cannot evaluate, and why.
    Unsupported(String),
    /// The file or rule is not valid Sigma.
    Error(String),
}

/// One rule (or one broken file) and its status.
#[derive(Debug, Clone)]
pub struct RuleReport {
    pub path: PathBuf,
    pub title: String,
    pub id: Option<String>,
    /// `detection`, `correlation`, `filter`, or `file` for a file that did not parse.
    pub kind: &'static str,
    pub status: Status,
}

impl RuleReport {
    pub fn to_json(&self) -> serde_json::Value {
        let (status, reason) = match &self.status {
            Status::Loaded => ("loaded", None),
            Status::Unsupported(r) => ("unsupported", Some(r.as_str())),
            Status::Error(e) => ("error", Some(e.as_str())),
        };
        serde_json::json!({
            "path": self.path.display().to_string(),
            "title": self.title,
            "id": self.id,
            "kind": self.kind,
            "status": status,
            "reason": reason,
        })
    }
}

/// A rule that matched an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the rule in [`SigmaRules::rules`].
    pub rule: usize,
}

/// Metadata of a loaded detection or correlation rule.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    /// Sigma level: informational, low, medium, high, critical.
    pub level: String,
    pub tags: Vec<String>,
    pub logsource: LogSource,
}

impl RuleInfo {
    fn new(id: &Option<String>, title: &str, level: Option<&str>, tags: &[String]) -> Self {
        RuleInfo {
            id: id.clone().unwrap_or_else(|| format!("sigma:{title}")),
            title: title.to_owned(),
            level: level.unwrap_or("medium").to_owned(),
            tags: tags.to_vec(),
            logsource: LogSource::default(),
        }
    }
}

/// Logsource products and categories Tansa produces events for.
const PRODUCTS: &[&str] = &["linux", "unix", "apache", "nginx", "zeek", "suricata"];
const CATEGORIES: &[&str] = &[
    "process_creation",
    "file_event",
    "file_change",
    "network_connection",
    "webserver",
    "proxy",
    "firewall",
    "authentication",
    "dns",
];

fn unsupported_logsource(ls: &LogSource) -> Option<String> {
    if let Some(p) = &ls.product {
        if !PRODUCTS.contains(&p.as_str()) {
            return Some(format!(
                "logsource product `{p}`: Tansa reads no such source"
            ));
        }
    }
    if let Some(c) = &ls.category {
        if !CATEGORIES.contains(&c.as_str()) {
            return Some(format!(
                "logsource category `{c}`: Tansa produces no such events"
            ));
        }
    }
    None
}

/// The kinds of events Tansa produces, as Sigma logsources: a product, the Sigma services an
/// event of it belongs to (an sshd line in auth.log is both `sshd` and `auth`), a category.
struct EventSource {
    product: &'static str,
    services: &'static [&'static str],
    category: Option<&'static str>,
}

const LINUX_SERVICES: &[&[&str]] = &[
    &["sshd", "auth"],
    &["sudo", "auth"],
    &["auth"],
    &["cron", "syslog"],
    &["auditd"],
    &["vsftpd"],
    &["syslog"],
];
const LINUX_CATEGORIES: &[Option<&str>] = &[None, Some("process_creation"), Some("firewall")];
const WEB_PRODUCTS: &[&str] = &["nginx", "apache"];

/// Every kind of event, in [`source_index`] order.
static SOURCES: LazyLock<Vec<EventSource>> = LazyLock::new(|| {
    let mut v = Vec::new();
    for services in LINUX_SERVICES {
        for category in LINUX_CATEGORIES {
            v.push(EventSource {
                product: "linux",
                services,
                category: *category,
            });
        }
    }
    for product in WEB_PRODUCTS {
        v.push(EventSource {
            product,
            services: &[],
            category: Some("webserver"),
        });
    }
    v
});

/// Index into [`SOURCES`] of an event's logsource.
fn source_index(ev: &Event) -> usize {
    if ev.category == Category::Web {
        let apache = usize::from(ev.dataset.starts_with("apache"));
        return LINUX_SERVICES.len() * LINUX_CATEGORIES.len() + apache;
    }
    let service = match ev.dataset {
        "sshd" => 0,
        "sudo" => 1,
        "su" | "shadow-utils" | "login" | "systemd-logind" => 2,
        "cron" => 3,
        "auditd" => 4,
        "vsftpd" => 5,
        _ => 6,
    };
    let category = if ev.action == Some("process_started")
        || (ev.dataset == "sudo" && ev.get(Field::PROCESS_COMMAND_LINE).is_some())
    {
        1
    } else if ev.action.is_some_and(|a| a.starts_with("firewall_")) {
        2
    } else {
        0
    };
    service * LINUX_CATEGORIES.len() + category
}

/// Whether a rule's logsource covers events of `src`: every dimension the rule sets must
/// agree (Sigma's logsource semantics; `unix` rules apply to Linux).
fn applies(rule: &LogSource, src: &EventSource) -> bool {
    let product = match rule.product.as_deref() {
        None => true,
        Some("unix") => src.product == "linux",
        Some(p) => p == src.product,
    };
    let service = rule
        .service
        .as_deref()
        .is_none_or(|s| src.services.contains(&s));
    let category = rule
        .category
        .as_deref()
        .is_none_or(|c| src.category == Some(c));
    product && service && category
}

/// Loaded, compiled Sigma rules. Detection is stateless (`&self`, so parser threads share
/// one set); correlation state lives in a [`Correlator`].
pub struct SigmaRules {
    /// One engine per kind of event ([`SOURCES`]), holding only the rules whose
    /// logsource covers it: an event is matched against its own rules, and rsigma-eval's
    /// candidate index (Aho-Corasick over the rules' needles, exact values, field presence)
    /// picks the few of those worth evaluating.
    ///
    /// Engines are built on first use (building all of them would cost more than a small
    /// run; a log of one kind needs one or two).
    engines: Vec<OnceLock<SourceEngine>>,
    compiled: Vec<CompiledRule>,
    parsed: Vec<SigmaRule>,
    filters: Vec<FilterRule>,
    correlations: Vec<CorrelationRule>,
    rules: Vec<RuleInfo>,
    /// Correlation rules, after the detection rules in alert numbering.
    correlation_info: Vec<RuleInfo>,
    /// Rule index by id, name and title, as results and correlations name them.
    by_key: HashMap<String, usize>,
    /// Detection rules that emit alerts of their own (not `generate: false` correlation inputs).
    generates: Vec<bool>,
    /// Detection rules some correlation counts.
    correlated: Vec<bool>,
    reports: Vec<RuleReport>,
    mapping: Mapping,
}

impl SigmaRules {
    /// Loads every `.yml`/`.yaml` file under `paths` (files or directories, recursively).
    pub fn load(paths: &[PathBuf]) -> Self {
        let mut me = Self::empty();
        let mut files = Vec::new();
        for p in paths {
            collect(p, &mut files);
        }
        files.sort();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => me.add_file(&f, &text),
                Err(e) => me.reports.push(RuleReport {
                    path: f.clone(),
                    title: String::new(),
                    id: None,
                    kind: "file",
                    status: Status::Error(e.to_string()),
                }),
            }
        }
        me.build();
        me
    }

    /// Loads rules from YAML text (one or more documents).
    pub fn from_yaml(name: &str, text: &str) -> Self {
        let mut me = Self::empty();
        me.add_file(Path::new(name), text);
        me.build();
        me
    }

    fn empty() -> Self {
        SigmaRules {
            engines: Vec::new(),
            compiled: Vec::new(),
            parsed: Vec::new(),
            filters: Vec::new(),
            correlations: Vec::new(),
            rules: Vec::new(),
            correlation_info: Vec::new(),
            by_key: HashMap::new(),
            generates: Vec::new(),
            correlated: Vec::new(),
            reports: Vec::new(),
            mapping: Mapping::default_linux(),
        }
    }

    /// Replaces the field mapping.
    pub fn set_mapping(&mut self, m: Mapping) {
        self.mapping = m;
    }

    fn add_file(&mut self, path: &Path, text: &str) {
        let collection = match rsigma_parser::parse_sigma_yaml(text) {
            Ok(c) => c,
            Err(e) => {
                self.reports.push(RuleReport {
                    path: path.into(),
                    title: String::new(),
                    id: None,
                    kind: "file",
                    status: Status::Error(e.to_string()),
                });
                return;
            }
        };
        for e in &collection.errors {
            self.reports.push(RuleReport {
                path: path.into(),
                title: String::new(),
                id: None,
                kind: "file",
                status: Status::Error(e.clone()),
            });
        }
        self.add_collection(path, &collection);
    }

    fn add_collection(&mut self, path: &Path, c: &SigmaCollection) {
        for rule in &c.rules {
            let mut report = RuleReport {
                path: path.into(),
                title: rule.title.clone(),
                id: rule.id.clone(),
                kind: "detection",
                status: Status::Loaded,
            };
            if let Some(why) = unsupported_logsource(&rule.logsource) {
                report.status = Status::Unsupported(why);
            } else {
                match compile_rule(rule) {
                    Ok(compiled) => {
                        let idx = self.rules.len();
                        for k in [&rule.id, &rule.name].into_iter().flatten() {
                            self.by_key.insert(k.clone(), idx);
                        }
                        self.by_key.entry(rule.title.clone()).or_insert(idx);
                        let mut info = RuleInfo::new(
                            &rule.id,
                            &rule.title,
                            rule.level.as_ref().map(|l| l.as_str()),
                            &rule.tags,
                        );
                        info.logsource = rule.logsource.clone();
                        self.rules.push(info);
                        self.compiled.push(compiled);
                        self.parsed.push(rule.clone());
                    }
                    Err(e) => report.status = Status::Unsupported(e.to_string()),
                }
            }
            self.reports.push(report);
        }
        for corr in &c.correlations {
            let status = match rsigma_eval::CorrelationEngine::new(Default::default())
                .add_correlation(corr)
            {
                Ok(()) => {
                    self.correlations.push(corr.clone());
                    let mut info = RuleInfo::new(
                        &corr.id,
                        &corr.title,
                        corr.level.as_ref().map(|l| l.as_str()),
                        &corr.tags,
                    );
                    info.logsource.category = Some("correlation".into());
                    self.correlation_info.push(info);
                    Status::Loaded
                }
                Err(e) => Status::Unsupported(e.to_string()),
            };
            self.reports.push(RuleReport {
                path: path.into(),
                title: corr.title.clone(),
                id: corr.id.clone(),
                kind: "correlation",
                status,
            });
        }
        for f in &c.filters {
            let mut probe = Engine::new();
            let status = match probe.apply_filter(f) {
                Ok(()) => {
                    self.filters.push(f.clone());
                    Status::Loaded
                }
                Err(e) => Status::Unsupported(e.to_string()),
            };
            self.reports.push(RuleReport {
                path: path.into(),
                title: f.title.clone(),
                id: f.id.clone(),
                kind: "filter",
                status,
            });
        }
    }

    /// The engine for events of source `k`, built on first use.
    fn engine(&self, k: usize) -> Option<&SourceEngine> {
        let src = SOURCES.get(k)?;
        Some(
            self.engines
                .get(k)?
                .get_or_init(|| SourceEngine::new(self, src)),
        )
    }

    /// Prepares the per-source engines and correlation inputs once every file is read.
    fn build(&mut self) {
        self.engines = SOURCES.iter().map(|_| OnceLock::new()).collect();
        let n = self.rules.len();
        self.generates = vec![true; n];
        self.correlated = vec![false; n];
        for corr in &self.correlations {
            for r in &corr.rules {
                if let Some(&i) = self.by_key.get(r) {
                    self.correlated[i] = true;
                    if !corr.generate {
                        self.generates[i] = false;
                    }
                }
            }
        }
    }

    /// Number of detection rules loaded.
    pub fn loaded(&self) -> usize {
        self.rules.len()
    }

    /// The detection rules, in hit numbering.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// The correlation rules; a correlation's alerts are numbered after the detection rules.
    pub fn correlations(&self) -> &[RuleInfo] {
        &self.correlation_info
    }

    /// Whether detection rule `i` raises alerts itself (`false` for the inputs of
    /// correlations that do not `generate` them).
    pub fn generates(&self, i: usize) -> bool {
        self.generates.get(i).copied().unwrap_or(true)
    }

    pub fn reports(&self) -> &[RuleReport] {
        &self.reports
    }

    fn sigma_event<'a>(&'a self, ev: &'a Event) -> SigmaEvent<'a> {
        SigmaEvent {
            ev,
            map: &self.mapping,
            as_ref: false,
        }
    }

    /// The detection rules that match `ev`, routed by the event's logsource.
    pub fn matches(&self, ev: &Event, out: &mut Vec<Hit>) {
        out.clear();
        if self.rules.is_empty() {
            return;
        }
        let Some(engine) = self.engine(source_index(ev)) else {
            return;
        };
        engine.evaluate(&self.sigma_event(ev), |r| {
            if let Some(i) = self.index_of(&r) {
                out.push(Hit { rule: i });
            }
        });
    }

    /// [`matches`](Self::matches) without the literal prefilter: every rule of the event's
    /// logsource evaluated. The reference the prefilter is tested against.
    #[doc(hidden)]
    pub fn matches_exhaustive(&self, ev: &Event, out: &mut Vec<Hit>) {
        out.clear();
        let Some(engine) = self.engine(source_index(ev)) else {
            return;
        };
        let se = self.sigma_event(ev);
        let results = engine.rest.evaluate(&se).into_iter().chain(
            engine
                .literal
                .iter()
                .filter_map(|r| rsigma_eval::evaluate_rule(r, &se)),
        );
        for r in results {
            if let Some(i) = self.index_of(&r) {
                out.push(Hit { rule: i });
            }
        }
    }

    /// [`matches`](Self::matches) as rule numbers (what parser threads store on the event).
    pub fn match_numbers(&self, ev: &Event) -> Box<[u32]> {
        let mut hits = Vec::new();
        self.matches(ev, &mut hits);
        hits.iter().map(|h| h.rule as u32).collect()
    }

    fn index_of(&self, r: &EvaluationResult) -> Option<usize> {
        let key = r.header.rule_id.as_ref().unwrap_or(&r.header.rule_title);
        self.by_key
            .get(key)
            .or_else(|| self.by_key.get(&r.header.rule_title))
            .copied()
    }

    /// A correlator for these rules' correlations (`None` when there are none).
    pub fn correlator(&self) -> Option<Correlator> {
        if self.correlations.is_empty() {
            return None;
        }
        let mut ce = CorrelationEngine::new(CorrelationConfig {
            timestamp_fallback: TimestampFallback::Skip,
            max_state_entries: 1_000_000,
            max_group_entries: Some(10_000),
            // the events behind a correlation, as references (offset and file)
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: MAX_CORRELATION_REFS,
            ..Default::default()
        });
        for r in &self.parsed {
            // registers the rule's id and name for correlation references
            let _ = ce.add_rule(r);
        }
        for c in &self.correlations {
            let _ = ce.add_correlation(c);
        }
        let mut by_key = HashMap::new();
        for (i, c) in self.correlations.iter().enumerate() {
            for k in [&c.id, &c.name].into_iter().flatten() {
                by_key.insert(k.clone(), i);
            }
            by_key.entry(c.title.clone()).or_insert(i);
        }
        Some(Correlator { ce, by_key })
    }
}

/// The rules of one kind of event: those a literal prefilter can rule out, and the rest.
struct SourceEngine {
    /// Rules that can match without any literal (regexes, numbers, negations, exact field
    /// values): rsigma-eval's engine, whose candidate index selects them by field shape.
    rest: Engine,
    /// Rules that need one of their literals, evaluated only when the prefilter finds one.
    literal: Vec<CompiledRule>,
    prefilter: Prefilter,
    /// Fields of the literal rules whose values may not be slices of the raw line.
    fields: Vec<Field>,
}

impl SourceEngine {
    fn new(rules: &SigmaRules, src: &EventSource) -> Self {
        // filters first: they rewrite the rules they name
        let mut all = Engine::new();
        all.extend_compiled_rules(
            rules
                .rules
                .iter()
                .zip(&rules.compiled)
                .filter(|(info, _)| applies(&info.logsource, src))
                .map(|(_, c)| c.clone()),
        );
        for f in &rules.filters {
            // a filter whose rules are elsewhere changes nothing here
            let _ = all.apply_filter(f);
        }
        let mut literal = Vec::new();
        let mut needs = Vec::new();
        let mut rest = Vec::new();
        let mut names = Vec::new();
        for r in all.rules() {
            match prefilter::requirement(r) {
                Some(n) => {
                    prefilter::fields(r, &mut names);
                    needs.push(n);
                    literal.push(r.clone());
                }
                None => rest.push(r.clone()),
            }
        }
        let mut fields: Vec<Field> = names
            .iter()
            .filter_map(|n| rules.mapping.field(n))
            .collect();
        fields.sort_unstable_by_key(|f| f.0);
        fields.dedup();
        let mut e = Engine::new();
        e.extend_compiled_rules(rest);
        SourceEngine {
            rest: e,
            literal,
            prefilter: Prefilter::new(&needs),
            fields,
        }
    }

    /// Calls `found` with every rule that matches.
    fn evaluate(&self, se: &SigmaEvent<'_>, mut found: impl FnMut(EvaluationResult)) {
        if self.rest.rule_count() > 0 {
            self.rest.evaluate(se).into_iter().for_each(&mut found);
        }
        if self.literal.is_empty() {
            return;
        }
        let ev = se.ev;
        let mut small = [0u64; 64];
        let mut big = Vec::new();
        let met: &mut [u64] = if self.literal.len() <= small.len() {
            &mut small[..self.literal.len()]
        } else {
            big.resize(self.literal.len(), 0);
            &mut big
        };
        self.prefilter.scan(ev.raw_str(), met);
        for &f in &self.fields {
            if matches!(ev.get(f), Some(Val::Span(..))) {
                continue; // a slice of the line, scanned with it
            }
            if let Some(text) = ev.get_str(f) {
                if !std::ptr::eq(text.as_ptr(), ev.raw_str().as_ptr()) {
                    self.prefilter.scan(&text, met);
                }
            }
        }
        for (i, rule) in self.literal.iter().enumerate() {
            if self.prefilter.candidate(i, met) {
                if let Some(r) = rsigma_eval::evaluate_rule(rule, se) {
                    found(r);
                }
            }
        }
    }
}

/// A correlation rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index in [`SigmaRules::correlations`].
    pub rule: usize,
    /// The group-by fields and their values.
    pub group: Vec<(String, String)>,
    /// The count (or other aggregate) that met the condition.
    pub value: f64,
    /// The events in the window behind it (file and offset; the newest
    /// [`MAX_CORRELATION_REFS`]).
    pub events: Vec<(String, u64)>,
}

/// Events a correlation keeps references of, per group.
pub const MAX_CORRELATION_REFS: usize = 20;

/// Sigma correlation state (`event_count`, `value_count`, `temporal`, `temporal_ordered`
/// and the metric types) over the detection hits of a time-ordered event stream; the
/// window arithmetic is rsigma-eval's `CorrelationEngine`, fed with event time.
pub struct Correlator {
    ce: CorrelationEngine,
    by_key: HashMap<String, usize>,
}

impl Correlator {
    /// Feeds the detection hits of one event; returns the correlations that fired.
    pub fn feed(&mut self, rules: &SigmaRules, ev: &Event, hits: &[u32]) -> Vec<CorrelationHit> {
        if !hits
            .iter()
            .any(|&h| rules.correlated.get(h as usize).copied().unwrap_or(false))
        {
            return Vec::new();
        }
        // the results carry what the correlation stage reads; hits are rare, so evaluating
        // the event again here costs less than carrying results from the parser threads
        let Some(engine) = rules.engine(source_index(ev)) else {
            return Vec::new();
        };
        let mut se = rules.sigma_event(ev);
        se.as_ref = true;
        let mut detections = Vec::new();
        engine.evaluate(&se, |r| detections.push(r));
        // rsigma-eval finds a result's rule by id; a rule referenced by its name has none
        for d in &mut detections {
            if d.header.rule_id.is_none() {
                if let Some(&i) = rules.by_key.get(&d.header.rule_title) {
                    d.header.rule_id = rules.parsed[i].name.clone();
                }
            }
        }
        let ts = ev.timestamp.div_euclid(1_000_000_000);
        let mut out = Vec::new();
        for r in self.ce.process_with_detections(&se, detections, ts) {
            if let ResultBody::Correlation(body) = &r.body {
                let key = r.header.rule_id.as_ref().unwrap_or(&r.header.rule_title);
                if let Some(&i) = self
                    .by_key
                    .get(key)
                    .or_else(|| self.by_key.get(&r.header.rule_title))
                {
                    let events = body
                        .event_refs
                        .iter()
                        .flatten()
                        .filter_map(|r| parse_ref_id(r.id.as_deref()?))
                        .map(|(off, path)| (path.to_owned(), off))
                        .collect();
                    out.push(CorrelationHit {
                        rule: i,
                        group: body.group_key.clone(),
                        value: body.aggregated_value,
                        events,
                    });
                }
            }
        }
        out
    }

    /// Groups held in correlation windows (for memory figures).
    pub fn state_count(&self) -> usize {
        self.ce.state_count()
    }
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                collect(&e.path(), out);
            }
        }
    } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
        out.push(p.to_owned());
    }
}

/// The Sigma logsource of an event (the most specific service: `sshd` rather than `auth`).
pub fn logsource_of(ev: &Event) -> LogSource {
    let src = &SOURCES[source_index(ev)];
    LogSource {
        product: Some(src.product.into()),
        service: src.services.first().map(|s| (*s).into()),
        category: src.category.map(Into::into),
        ..Default::default()
    }
}

/// Tansa's event as seen by `rsigma-eval`: fields through the mapping, keywords on the line.
pub struct SigmaEvent<'a> {
    pub ev: &'a Event,
    pub map: &'a Mapping,
    /// As JSON, only the event's reference (`{"id": "OFFSET␟PATH"}`): what the correlation
    /// stage keeps of the events in its windows.
    pub as_ref: bool,
}

/// The reference a correlation keeps of an event, and back.
fn event_ref_id(ev: &Event) -> String {
    format!("{}\u{1f}{}", ev.offset, ev.origin.path)
}

fn parse_ref_id(id: &str) -> Option<(u64, &str)> {
    let (off, path) = id.split_once('\u{1f}')?;
    Some((off.parse().ok()?, path))
}

fn to_value(v: Cow<'_, str>) -> EventValue<'_> {
    EventValue::Str(v)
}

impl SigmaEventTrait for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let field = self.map.field(path)?;
        match field {
            Field::SOURCE_PORT => return self.ev.source_port.map(|p| EventValue::Int(p as i64)),
            Field::DESTINATION_PORT => {
                return self.ev.destination_port.map(|p| EventValue::Int(p as i64))
            }
            _ => {}
        }
        if let Some(Val::Int(i)) = self.ev.get(field) {
            return Some(EventValue::Int(*i));
        }
        self.ev.get_str(field).map(to_value)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        // keyword rules search the raw message
        pred(self.ev.raw_str())
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        vec![Cow::Borrowed(self.ev.raw_str())]
    }

    fn to_json(&self) -> serde_json::Value {
        if self.as_ref {
            return serde_json::json!({ "id": event_ref_id(self.ev) });
        }
        self.ev.to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sshd_event(line: &'static str, user: &str) -> Event {
        let mut ev = Event::new(
            bytes::Bytes::from_static(line.as_bytes()),
            Arc::new(tansa_event::Origin::default()),
            0,
        );
        ev.dataset = "sshd";
        ev.category = Category::Authentication;
        ev.set_str(Field::USER_NAME, user);
        ev
    }

    #[test]
    fn a_rule_matches_through_the_mapping_and_logsource() {
        let rules = SigmaRules::from_yaml(
            "t.yml",
            r#"
title: Root over ssh
logsource: {product: linux, service: sshd}
detection:
  sel: {User: root}
  condition: sel
level: high
tags: [attack.t1078]
"#,
        );
        assert_eq!(rules.loaded(), 1);
        let mut hits = vec![];
        rules.matches(&sshd_event("Accepted password for root", "root"), &mut hits);
        assert_eq!(hits.len(), 1);
        assert_eq!(rules.rules()[0].level, "high");
        rules.matches(&sshd_event("Accepted password for bob", "bob"), &mut hits);
        assert!(hits.is_empty());
        // the same user in a web event: another logsource, no match
        let mut web = sshd_event("GET /", "root");
        web.category = Category::Web;
        web.dataset = "http.access";
        rules.matches(&web, &mut hits);
        assert!(hits.is_empty());
    }

    #[test]
    fn keywords_search_the_raw_line() {
        let rules = SigmaRules::from_yaml(
            "t.yml",
            "title: k\nlogsource: {product: linux}\ndetection:\n  keywords: ['POSSIBLE BREAK-IN']\n  condition: keywords\n",
        );
        let mut hits = vec![];
        rules.matches(
            &sshd_event(
                "Address 1.2.3.4 maps to x - POSSIBLE BREAK-IN ATTEMPT!",
                "x",
            ),
            &mut hits,
        );
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn broken_and_foreign_rules_are_reported_the_rest_loads() {
        let rules = SigmaRules::from_yaml(
            "t.yml",
            "title: ok\nlogsource: {product: linux}\ndetection:\n  s: {User: a}\n  condition: s\n---\ntitle: win\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s: {Image|endswith: '\\\\cmd.exe'}\n  condition: s\n---\ntitle: bad\nlogsource: {product: linux}\ndetection:\n  s: {User: a}\n  condition: nothere\n",
        );
        assert_eq!(rules.loaded(), 1);
        let st: Vec<_> = rules
            .reports()
            .iter()
            .map(|r| (r.title.as_str(), matches!(r.status, Status::Loaded)))
            .collect();
        assert!(st.contains(&("ok", true)));
        assert!(rules.reports().iter().any(|r| r.title == "win"
            && matches!(&r.status, Status::Unsupported(w) if w.contains("windows"))));
        assert!(rules
            .reports()
            .iter()
            .any(|r| r.title == "bad" && !matches!(r.status, Status::Loaded)));
    }

    #[test]
    fn an_sshd_line_is_also_an_auth_log_line() {
        let rules = SigmaRules::from_yaml(
            "t.yml",
            "title: a\nlogsource: {product: linux, service: auth}\ndetection:\n  k: ['Invalid user']\n  condition: k\n---\ntitle: c\nlogsource: {product: linux, service: cron}\ndetection:\n  k: ['Invalid user']\n  condition: k\n",
        );
        assert_eq!(rules.loaded(), 2);
        let mut hits = vec![];
        rules.matches(&sshd_event("Invalid user x from 1.2.3.4", "x"), &mut hits);
        assert_eq!(hits, vec![Hit { rule: 0 }]);
        assert_eq!(
            &*rules.match_numbers(&sshd_event("Invalid user y", "y")),
            &[0]
        );
    }

    const CORRELATION: &str = r#"
title: Failed ssh login
name: failed_ssh
logsource: {product: linux, service: sshd}
detection:
  k: ['Failed password']
  condition: k
level: low
---
title: Many failed logins for one user
id: 2a3b6f40-0000-4000-8000-00000000c001
correlation:
  type: event_count
  rules: [failed_ssh]
  group-by: [User]
  timespan: 5m
  condition: {gte: 3}
level: high
"#;

    #[test]
    fn correlations_count_detections_in_event_time_per_group() {
        let rules = SigmaRules::from_yaml("c.yml", CORRELATION);
        assert_eq!(rules.loaded(), 1);
        assert_eq!(rules.correlations().len(), 1);
        assert!(
            rules.reports().iter().all(|r| r.status == Status::Loaded),
            "{:?}",
            rules.reports()
        );
        // the input of a correlation without `generate: true` raises no alert of its own
        assert!(!rules.generates(0));
        let mut c = rules.correlator().unwrap();
        let feed = |c: &mut Correlator, user: &str, secs: i64| {
            let mut ev = sshd_event("Failed password for x", user);
            ev.timestamp = 1_700_000_000_000_000_000 + secs * 1_000_000_000;
            let hits = rules.match_numbers(&ev);
            c.feed(&rules, &ev, &hits)
        };
        assert!(feed(&mut c, "root", 0).is_empty());
        assert!(feed(&mut c, "admin", 10).is_empty());
        assert!(feed(&mut c, "root", 20).is_empty());
        // 10 minutes later: the first root attempt left the window
        assert!(feed(&mut c, "root", 400).is_empty());
        assert!(feed(&mut c, "root", 410).is_empty());
        let fired = feed(&mut c, "root", 420);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].rule, 0);
        assert_eq!(
            fired[0].group,
            vec![("User".to_string(), "root".to_string())]
        );
        assert_eq!(fired[0].value, 3.0);
    }

    #[test]
    fn the_shipped_mapping_parses() {
        let m = Mapping::default_linux();
        assert_eq!(m.fields.get("c-ip").map(String::as_str), Some("source.ip"));
        assert!(Mapping::parse("x", "version: 2\nfields: {}").is_err());
        assert!(Mapping::parse("x", "version: 1\nfields: {}\nextra: 1").is_err());
    }
}
