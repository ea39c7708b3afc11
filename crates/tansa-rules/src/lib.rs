//! Sigma rules for Tansa: loading, field and logsource mappings, evaluation on the [`Event`].
//!
//! Part of the detect stage of the data path. Rules are parsed with `rsigma-parser` and
//! compiled with `rsigma-eval` once, at load time; every rule gets a [`RuleReport`] (loaded,
//! unsupported with the reason, or an error with its file and, when the parser knows it, the
//! line), and the rest of a directory loads when one file is broken. Evaluation runs
//! `rsigma-eval`'s matchers directly on Tansa's event through [`SigmaEvent`] (no JSON per
//! event): Sigma field names are translated by a mapping file (`mappings/linux.yml`, embedded
//! by default), and each event is routed to the rules of its Sigma logsource
//! ([`logsource_of`]).
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

use rsigma_eval::event::{Event as SigmaEventTrait, EventValue};
use rsigma_eval::Engine;
use rsigma_parser::{LogSource, SigmaCollection};
use serde::Deserialize;
use tansa_event::{Category, Event, Field, Val};

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
        Ok(m)
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

/// Metadata of a loaded detection rule.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    /// Sigma level: informational, low, medium, high, critical.
    pub level: String,
    pub tags: Vec<String>,
    pub logsource: LogSource,
}

/// Loaded, compiled Sigma rules.
pub struct SigmaRules {
    engine: Engine,
    rules: Vec<RuleInfo>,
    /// Rule index by id (or title, for rules without an id), as results name them.
    by_key: HashMap<String, usize>,
    reports: Vec<RuleReport>,
    mapping: Mapping,
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
        me
    }

    /// Loads rules from YAML text (one or more documents).
    pub fn from_yaml(name: &str, text: &str) -> Self {
        let mut me = Self::empty();
        me.add_file(Path::new(name), text);
        me
    }

    fn empty() -> Self {
        SigmaRules {
            engine: Engine::new(),
            rules: Vec::new(),
            by_key: HashMap::new(),
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
                match self.engine.add_rule(rule) {
                    Ok(()) => {
                        let idx = self.rules.len();
                        let id = rule
                            .id
                            .clone()
                            .unwrap_or_else(|| format!("sigma:{}", rule.title));
                        self.by_key
                            .insert(rule.id.clone().unwrap_or_else(|| rule.title.clone()), idx);
                        self.rules.push(RuleInfo {
                            id,
                            title: rule.title.clone(),
                            level: rule
                                .level
                                .as_ref()
                                .map(|l| l.as_str().to_owned())
                                .unwrap_or_else(|| "medium".into()),
                            tags: rule.tags.clone(),
                            logsource: rule.logsource.clone(),
                        });
                    }
                    Err(e) => report.status = Status::Unsupported(e.to_string()),
                }
            }
            self.reports.push(report);
        }
        for corr in &c.correlations {
            self.reports.push(RuleReport {
                path: path.into(),
                title: corr.title.clone(),
                id: corr.id.clone(),
                kind: "correlation",
                // parsed and valid; the streaming correlation stage is not wired in yet
                status: Status::Unsupported(
                    "correlation rules parse; their evaluation is not wired into the engine yet"
                        .into(),
                ),
            });
        }
        for f in &c.filters {
            let status = match self.engine.apply_filter(f) {
                Ok(()) => Status::Loaded,
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

    /// Number of detection rules loaded.
    pub fn loaded(&self) -> usize {
        self.rules.len()
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn reports(&self) -> &[RuleReport] {
        &self.reports
    }

    /// The detection rules that match `ev`, routed by the event's logsource.
    pub fn matches(&self, ev: &Event, out: &mut Vec<Hit>) {
        out.clear();
        if self.rules.is_empty() {
            return;
        }
        let se = SigmaEvent {
            ev,
            map: &self.mapping,
        };
        let ls = logsource_of(ev);
        for r in self.engine.evaluate_with_logsource(&se, &ls) {
            let key = r.header.rule_id.as_ref().unwrap_or(&r.header.rule_title);
            if let Some(&i) = self.by_key.get(key) {
                out.push(Hit { rule: i });
            }
        }
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

/// The Sigma logsource of an event.
pub fn logsource_of(ev: &Event) -> LogSource {
    let mut ls = LogSource::default();
    match ev.category {
        Category::Web => {
            ls.category = Some("webserver".into());
            ls.product = Some(
                if ev.dataset.starts_with("apache") {
                    "apache"
                } else {
                    "nginx"
                }
                .into(),
            );
        }
        _ => {
            ls.product = Some("linux".into());
            let service = match ev.dataset {
                "sshd" => Some("sshd"),
                "sudo" => Some("sudo"),
                "cron" => Some("cron"),
                "auditd" => Some("auditd"),
                "su" | "shadow-utils" | "login" | "systemd-logind" => Some("auth"),
                "vsftpd" => Some("vsftpd"),
                _ => Some("syslog"),
            };
            ls.service = service.map(Into::into);
            if ev.action == Some("process_started")
                || (ev.dataset == "sudo" && ev.get(Field::PROCESS_COMMAND_LINE).is_some())
            {
                ls.category = Some("process_creation".into());
            } else if ev.action.is_some_and(|a| a.starts_with("firewall_")) {
                ls.category = Some("firewall".into());
            }
        }
    }
    ls
}

/// Tansa's event as seen by `rsigma-eval`: fields through the mapping, keywords on the line.
pub struct SigmaEvent<'a> {
    pub ev: &'a Event,
    pub map: &'a Mapping,
}

fn to_value(v: Cow<'_, str>) -> EventValue<'_> {
    EventValue::Str(v)
}

impl SigmaEventTrait for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        let ecs = self
            .map
            .fields
            .get(path)
            .map(String::as_str)
            .unwrap_or(path);
        let field = Field::lookup(ecs)?;
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
    fn the_shipped_mapping_parses() {
        let m = Mapping::default_linux();
        assert_eq!(m.fields.get("c-ip").map(String::as_str), Some("source.ip"));
        assert!(Mapping::parse("x", "version: 2\nfields: {}").is_err());
        assert!(Mapping::parse("x", "version: 1\nfields: {}\nextra: 1").is_err());
    }
}
