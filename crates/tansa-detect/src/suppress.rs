//! Allow lists, suppressions and simulated rules: what a site knows about its own traffic.
//!
//! A suppression names a set of rules (glob over rule ids; every rule when left out) and a
//! tuple of event fields with the values they must have (exact text, `*` globs, or an
//! address range for address fields). An event that matches is not counted for those rules
//! at all: it opens no window, grows no alert (it is still stored and searchable). An allow
//! list is a suppression for every rule. A suppression can end (`until`), and says why
//! (`reason`); the engine counts what each one held back.
//!
//! A simulated rule fires and its alerts are stored and shown, marked `simulated`; the
//! responder makes no decision from them (a rule on trial before it may ban).
//!
//! The file (TOML; `tansa analyze --suppress FILE`, `[detection] suppress` of the server):
//!
//! ```toml
//! simulate = ["tansa.web.scanner", "5d1f*"]     # before the first [[suppress]]
//!
//! [[suppress]]
//! rule = "tansa.web.*"                          # optional: rule ids, `*` globs
//! match = { "source.ip" = "198.51.100.0/24" }   # every field must match
//! reason = "our vulnerability scanner"
//! until = "2027-03-01"                          # optional: a date or RFC 3339 time
//!
//! [[suppress]]
//! match = { "user.name" = "backup", "host.name" = "db*" }
//! ```

use std::borrow::Cow;
use std::path::Path;

use tansa_event::{Event, Field, Nanos};

/// Why a suppression file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

/// A value a field must have.
#[derive(Debug, Clone)]
enum Want {
    Net(ipnet::IpNet),
    Glob(Glob),
}

/// `*` matches any run of characters; everything else is literal (ASCII case-insensitive).
#[derive(Debug, Clone)]
pub struct Glob {
    parts: Vec<String>,
    anchored_start: bool,
    anchored_end: bool,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob {
            parts: pattern
                .split('*')
                .filter(|p| !p.is_empty())
                .map(|p| p.to_ascii_lowercase())
                .collect(),
            anchored_start: !pattern.starts_with('*'),
            anchored_end: !pattern.ends_with('*'),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let t = text.to_ascii_lowercase();
        let mut rest = t.as_str();
        let n = self.parts.len();
        if n == 0 {
            // "" matches "", "*" matches anything
            return !self.anchored_start || rest.is_empty();
        }
        for (i, p) in self.parts.iter().enumerate() {
            let first = i == 0;
            let last = i + 1 == n;
            if first && self.anchored_start {
                let Some(r) = rest.strip_prefix(p.as_str()) else {
                    return false;
                };
                rest = r;
                if last && self.anchored_end {
                    return rest.is_empty();
                }
                continue;
            }
            if last && self.anchored_end {
                return rest.len() >= p.len() && rest.ends_with(p.as_str());
            }
            match rest.find(p.as_str()) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
        !self.anchored_end || rest.is_empty()
    }
}

/// One suppression.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// Rule ids it holds back (empty: every rule).
    pub rules: Vec<Glob>,
    fields: Vec<(Field, Want)>,
    pub reason: Option<String>,
    pub until: Option<Nanos>,
    /// Where it was written (`FILE:LINE`), for reports.
    pub at: String,
}

impl Suppression {
    /// Whether it holds back rule `rule_id` (at all, whatever the event).
    pub fn covers(&self, rule_id: &str) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|g| g.matches(rule_id))
    }

    /// Whether `ev` is one of the events it holds back.
    pub fn matches(&self, ev: &Event) -> bool {
        if self.until.is_some_and(|u| ev.timestamp >= u) {
            return false;
        }
        self.fields.iter().all(|(f, want)| {
            // the typed addresses without text
            match (*f, want) {
                (Field::SOURCE_IP, Want::Net(net)) => {
                    return ev.source_ip.is_some_and(|ip| net.contains(&ip))
                }
                (Field::DESTINATION_IP, Want::Net(net)) => {
                    return ev.destination_ip.is_some_and(|ip| net.contains(&ip))
                }
                _ => {}
            }
            let v: Option<Cow<'_, str>> = ev.get_str(*f);
            match (want, v) {
                (_, None) => false,
                (Want::Net(net), Some(v)) => v
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| net.contains(&ip)),
                (Want::Glob(g), Some(v)) => g.matches(&v),
            }
        })
    }
}

/// The suppressions and simulated rules of a run.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    pub list: Vec<Suppression>,
    /// Rules in simulation.
    pub simulate: Vec<Glob>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    suppress: Vec<toml::Spanned<EntryDoc>>,
    #[serde(default)]
    simulate: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    #[serde(default)]
    rule: Option<OneOrMany>,
    #[serde(rename = "match")]
    fields: std::collections::BTreeMap<String, String>,
    reason: Option<String>,
    until: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// When a suppression ends: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
fn parse_until(s: &str) -> Option<Nanos> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return i64::try_from(t.as_nanosecond()).ok();
    }
    let d: jiff::civil::Date = s.parse().ok()?;
    let t = d.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    i64::try_from(t.as_nanosecond()).ok()
}

impl Suppressions {
    /// Reads a suppression file (errors name the file and line).
    pub fn load(path: &Path) -> Result<Suppressions, SuppressError> {
        let text = std::fs::read_to_string(path).map_err(|source| SuppressError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Suppressions::parse(&path.display().to_string(), &text)
    }

    /// Reads suppressions from `text` (named `path` in errors).
    pub fn parse(path: &str, text: &str) -> Result<Suppressions, SuppressError> {
        let invalid = |line: usize, message: String| SuppressError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let doc: FileDoc = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().to_owned())
        })?;
        let mut out = Suppressions {
            list: Vec::new(),
            simulate: doc.simulate.iter().map(|s| Glob::new(s)).collect(),
        };
        for sp in doc.suppress {
            let line = line_of(text, sp.span().start);
            let e = sp.into_inner();
            if e.fields.is_empty() {
                return Err(invalid(
                    line,
                    "a suppression needs at least one field in `match` (a rule alone would \
                     turn the rule off: remove it from the rules instead)"
                        .into(),
                ));
            }
            let mut fields = Vec::new();
            for (name, value) in &e.fields {
                let Some(f) = Field::lookup(name) else {
                    return Err(invalid(line, format!("unknown field {name:?}")));
                };
                let address = matches!(
                    name.as_str(),
                    "source.ip" | "destination.ip" | "client.ip" | "server.ip"
                );
                let want = if address && !value.contains('*') {
                    let net = value
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            invalid(
                                line,
                                format!("{name}: {value:?} is not an address or a network"),
                            )
                        })?;
                    Want::Net(net)
                } else {
                    Want::Glob(Glob::new(value))
                };
                fields.push((f, want));
            }
            let until = match &e.until {
                None => None,
                Some(u) => Some(parse_until(u).ok_or_else(|| {
                    invalid(
                        line,
                        format!("until: {u:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
                    )
                })?),
            };
            out.list.push(Suppression {
                rules: match e.rule {
                    None => Vec::new(),
                    Some(OneOrMany::One(r)) => vec![Glob::new(&r)],
                    Some(OneOrMany::Many(rs)) => rs.iter().map(|r| Glob::new(r)).collect(),
                },
                fields,
                reason: e.reason,
                until,
                at: format!("{path}:{line}"),
            });
        }
        Ok(out)
    }

    /// Adds another file's entries.
    pub fn extend(&mut self, other: Suppressions) {
        self.list.extend(other.list);
        self.simulate.extend(other.simulate);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.simulate.is_empty()
    }

    /// Whether rule `rule_id` is in simulation.
    pub fn simulated(&self, rule_id: &str) -> bool {
        self.simulate.iter().any(|g| g.matches(rule_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("tansa.web.*", "tansa.web.sqli", true),
            ("tansa.web.*", "tansa.ssh.brute_force", false),
            ("*", "anything", true),
            ("db*", "DB01", true),
            ("*.example.com", "www.example.com", true),
            ("*.example.com", "example.com", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyycd", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(Glob::new(p).matches(t), m, "{p} ~ {t}");
        }
    }

    #[test]
    fn the_example_file_loads() {
        let s = Suppressions::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/suppress.toml"
        )))
        .unwrap();
        assert_eq!(s.list.len(), 2);
        assert!(s.list[0].covers("tansa.web.sqli") && !s.list[0].covers("tansa.ssh.brute_force"));
        assert!(s.list[0].until.is_some());
        assert!(s.simulated("tansa.web.scanner") && !s.simulated("tansa.web.sqli"));
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = Suppressions::parse(
            "s.toml",
            "[[suppress]]\nmatch = { \"source.ip\" = \"10.0.0.0/8\" }\n\n[[suppress]]\nmatch = { \"source.ip\" = \"not-an-ip\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "s.toml:4: source.ip: \"not-an-ip\" is not an address or a network"
        );
        let e = Suppressions::parse("s.toml", "[[suppress]]\nrule = \"x\"\nmatch = {}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:1: a suppression needs"), "{e}");
        let e = Suppressions::parse(
            "s.toml",
            "[[suppress]]\nmatch = { \"no.such.field.x\" = \"1\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = Suppressions::parse("s.toml", "\n\nsimulat = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:3: "), "{e}");
        let e = Suppressions::parse(
            "s.toml",
            "[[suppress]]\nmatch = { \"user.name\" = \"a\" }\nuntil = \"next week\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("s.toml:1: until"), "{e}");
    }
}
