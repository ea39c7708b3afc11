//! The literal prefilter: one Aho-Corasick automaton per kind of event over the literals the
//! rules need, so an event is matched only against the rules one of whose literals it holds.
//!
//! For every compiled rule, [`requirement`] derives a set of lowercased ASCII literals at
//! least one of which must occur in the event for the rule to match (walking the condition:
//! an `and` needs one of its constrained parts, an `or` needs all of its parts constrained,
//! a `not`, a regex, a number or a CIDR constrains nothing). Rules with such a set are
//! *prunable*. The text scanned per event is the raw line (keyword rules search it, and most
//! fields are slices of it) plus the rendering of the rule fields that are not slices of the
//! line (decoded command lines, addresses, numbers), each folded to lowercase as rsigma-eval
//! folds it (ASCII in place, full Unicode for non-ASCII text). The derivation is conservative:
//! a rule the prefilter drops cannot match, so results are the same as evaluating every rule
//! (test `prefilter_agrees_with_evaluating_every_rule`).
//!
//! rsigma-eval's own candidate index selects rules by field presence and exact values but
//! evaluates every keyword rule and every substring rule on every event, each lowercasing its
//! field again; measured on the SigmaHQ linux+web rules that was most of detection's cost.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use rsigma_eval::compiler::{CompiledDetection, CompiledRule};
use rsigma_eval::CompiledMatcher;
use rsigma_parser::{ConditionExpr, Quantifier, SelectorPattern};

/// What a rule (or a part of it) needs: every clause must be met, a clause by any one of
/// its literals (lowercased ASCII); `None` when it can match without any literal.
type Need = Option<Vec<Clause>>;
type Clause = Vec<String>;

/// At most this many clauses per rule are checked (dropping clauses only widens the filter).
pub const MAX_CLAUSES: usize = 8;

/// Clauses after the most selective are kept only from this selectivity on: a clause of
/// short or common literals (`:`, `get`) matches nearly every line, so checking it costs a
/// match per line and rules out little.
const MIN_EXTRA_SELECTIVITY: usize = 4;

fn literal(s: &str) -> Need {
    if s.is_empty() || !s.is_ascii() {
        // a non-ASCII literal is folded by Unicode rules the scan does not reproduce
        return None;
    }
    Some(vec![vec![s.to_ascii_lowercase()]])
}

/// How selective a literal looks: its length, one more when it holds a character ordinary
/// log text seldom has.
fn score(l: &str) -> usize {
    l.len() + usize::from(l.bytes().any(|b| b"=<>(){}[]$|;'\"`%@!~^*\\".contains(&b)))
}

/// How selective a clause looks: its least selective literal, then fewer literals.
fn selectivity(c: &Clause) -> (usize, usize) {
    let weakest = c.iter().map(|l| score(l)).min().unwrap_or(0);
    (weakest.min(8), usize::MAX - c.len())
}

/// One of the parts must hold: every part must be constrained; the union of one clause of
/// each (the most selective, when a part has several).
fn any(parts: impl IntoIterator<Item = Need>) -> Need {
    let mut parts: Vec<Need> = parts.into_iter().collect();
    if parts.len() == 1 {
        return parts.pop().flatten();
    }
    let mut out = Vec::new();
    for p in parts {
        let p = p?;
        out.extend(p.into_iter().max_by_key(selectivity)?);
    }
    if out.is_empty() {
        return None;
    }
    out.sort();
    out.dedup();
    Some(vec![out])
}

/// Every part must hold: all their clauses.
fn all(parts: impl IntoIterator<Item = Need>) -> Need {
    let mut out: Vec<Clause> = parts.into_iter().flatten().flatten().collect();
    if out.is_empty() {
        return None;
    }
    out.sort();
    out.dedup();
    // the most selective first; weak ones after it are not worth their matches
    out.sort_by_key(|c| std::cmp::Reverse(selectivity(c)));
    let mut keep = 0;
    out.retain(|c| {
        keep += 1;
        keep == 1 || (keep <= MAX_CLAUSES && selectivity(c).0 >= MIN_EXTRA_SELECTIVITY)
    });
    Some(out)
}

fn matcher_need(m: &CompiledMatcher) -> Need {
    use CompiledMatcher as M;
    match m {
        M::Exact { value, .. }
        | M::Contains { value, .. }
        | M::StartsWith { value, .. }
        | M::EndsWith { value, .. } => literal(value),
        M::AhoCorasickSet { needles, .. } => any(needles.iter().map(|n| literal(n))),
        M::Regex(re) => regex_need(re.as_str()),
        M::RegexSetMatch { set, mode } => {
            let needs = set.patterns().iter().map(|p| regex_need(p));
            match mode {
                rsigma_eval::matcher::GroupMode::Any => any(needs),
                rsigma_eval::matcher::GroupMode::All => all(needs),
            }
        }
        M::AnyOf(children) => any(children.iter().map(matcher_need)),
        M::AllOf(children) => all(children.iter().map(matcher_need)),
        M::CaseInsensitiveGroup { children, mode } => match mode {
            rsigma_eval::matcher::GroupMode::Any => any(children.iter().map(matcher_need)),
            rsigma_eval::matcher::GroupMode::All => all(children.iter().map(matcher_need)),
        },
        _ => None,
    }
}

/// How the scan folds a character: Unicode lowercase, and the long s as an s (the regex
/// engine's case folding takes `ſ` for `s`; nothing else folds outside these rules).
pub(crate) fn fold_char(c: char) -> Option<char> {
    if c == 'ſ' {
        return Some('s');
    }
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => Some(x),
        _ => None,
    }
}

/// The literals a regex needs: in a concatenation, the runs of ASCII characters (or classes
/// that fold to one ASCII character, as `(?i)` makes them); alternations need one of their
/// branches', repetitions at least once their body's.
fn regex_need(pattern: &str) -> Need {
    let hir = regex_syntax::parse(pattern).ok()?;
    hir_need(&hir)
}

/// The one ASCII character (folded) a piece of a pattern stands for, if it is that simple.
fn hir_char(h: &regex_syntax::hir::Hir) -> Option<Vec<u8>> {
    use regex_syntax::hir::{Class, HirKind};
    match h.kind() {
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).ok()?;
            s.chars()
                .map(|c| c.is_ascii().then(|| c.to_ascii_lowercase() as u8))
                .collect()
        }
        HirKind::Class(Class::Unicode(cls)) => {
            let mut one = None;
            for r in cls.ranges() {
                if (r.end() as u32) - (r.start() as u32) > 3 {
                    return None;
                }
                for c in (r.start() as u32)..=(r.end() as u32) {
                    let f = fold_char(char::from_u32(c)?)?;
                    if !f.is_ascii() || one.is_some_and(|o| o != f) {
                        return None;
                    }
                    one = Some(f);
                }
            }
            one.map(|c| vec![c as u8])
        }
        HirKind::Class(Class::Bytes(cls)) => {
            let mut one = None;
            for r in cls.ranges() {
                for b in r.start()..=r.end() {
                    let f = b.is_ascii().then(|| b.to_ascii_lowercase())?;
                    if one.is_some_and(|o| o != f) {
                        return None;
                    }
                    one = Some(f);
                }
            }
            one.map(|c| vec![c])
        }
        HirKind::Capture(c) => hir_char(&c.sub),
        _ => None,
    }
}

fn hir_need(h: &regex_syntax::hir::Hir) -> Need {
    use regex_syntax::hir::HirKind;
    match h.kind() {
        HirKind::Concat(parts) => {
            let mut needs = Vec::new();
            let mut run: Vec<u8> = Vec::new();
            let flush = |run: &mut Vec<u8>, needs: &mut Vec<Need>| {
                if !run.is_empty() {
                    needs.push(literal(&String::from_utf8_lossy(run)));
                    run.clear();
                }
            };
            for p in parts {
                match hir_char(p) {
                    Some(cs) => run.extend(cs),
                    None => {
                        flush(&mut run, &mut needs);
                        needs.push(hir_need(p));
                    }
                }
            }
            flush(&mut run, &mut needs);
            all(needs)
        }
        HirKind::Alternation(bs) => any(bs.iter().map(hir_need)),
        HirKind::Repetition(r) if r.min >= 1 => hir_need(&r.sub),
        HirKind::Capture(c) => hir_need(&c.sub),
        _ => hir_char(h).and_then(|cs| literal(&String::from_utf8_lossy(&cs))),
    }
}

fn detection_need(d: &CompiledDetection) -> Need {
    match d {
        CompiledDetection::AllOf(items) => all(items.iter().map(|i| matcher_need(&i.matcher))),
        CompiledDetection::AnyOf(ds) => any(ds.iter().map(detection_need)),
        CompiledDetection::Keywords(m) => matcher_need(m),
        CompiledDetection::And(ds) => all(ds.iter().map(detection_need)),
        _ => None,
    }
}

/// `*` globbing as Sigma selectors use it.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn condition_need(c: &ConditionExpr, rule: &CompiledRule) -> Need {
    match c {
        ConditionExpr::And(cs) => all(cs.iter().map(|c| condition_need(c, rule))),
        ConditionExpr::Or(cs) => any(cs.iter().map(|c| condition_need(c, rule))),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Identifier(name) => detection_need(rule.detections.get(name)?),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let names = rule.detections.keys().filter(|n| match pattern {
                SelectorPattern::Them => true,
                SelectorPattern::Pattern(p) => glob(p, n),
            });
            match quantifier {
                // needs every selected detection: one constrained one is enough (`them` may
                // leave out `_`-prefixed names, so those are not relied on)
                Quantifier::All => all(names
                    .filter(|n| {
                        matches!(pattern, SelectorPattern::Pattern(_)) || !n.starts_with('_')
                    })
                    .map(|n| detection_need(&rule.detections[n]))),
                // needs at least one of them (a superset of names only widens the union)
                Quantifier::Any | Quantifier::Count(_) => {
                    let needs: Vec<Need> =
                        names.map(|n| detection_need(&rule.detections[n])).collect();
                    if needs.is_empty() {
                        None
                    } else {
                        any(needs)
                    }
                }
            }
        }
    }
}

/// The literals one of which `rule` needs, or `None` when it can match without any.
pub fn requirement(rule: &CompiledRule) -> Need {
    // several conditions are alternatives
    any(rule.conditions.iter().map(|c| condition_need(c, rule)))
}

/// The Sigma fields of the items that contribute literals to a rule's requirement (what
/// the scan must cover beyond the raw line, where their values are not slices of it).
pub fn fields(rule: &CompiledRule, out: &mut Vec<String>) {
    fn walk(d: &CompiledDetection, out: &mut Vec<String>) {
        match d {
            CompiledDetection::AllOf(items) => out.extend(
                items
                    .iter()
                    .filter(|i| matcher_need(&i.matcher).is_some())
                    .filter_map(|i| i.field.clone()),
            ),
            CompiledDetection::AnyOf(ds) | CompiledDetection::And(ds) => {
                ds.iter().for_each(|d| walk(d, out))
            }
            CompiledDetection::ArrayMatch { .. }
            | CompiledDetection::Conditional { .. }
            | CompiledDetection::Keywords(_) => {}
        }
    }
    rule.detections.values().for_each(|d| walk(d, out));
}

/// The automaton of one kind of event: which prunable rules an event's text may match.
pub struct Prefilter {
    ac: Option<AhoCorasick>,
    /// Pattern number → (rule, clause bit) it meets; rules are positions in the prunable
    /// rule list.
    meets: Vec<Vec<(u32, u64)>>,
    /// Per rule, the bits of all its clauses.
    full: Vec<u64>,
}

impl Prefilter {
    /// `needs[i]` is the requirement (clauses) of prunable rule `i`.
    pub fn new(needs: &[Vec<Clause>]) -> Self {
        let mut index: rustc_hash::FxHashMap<&str, usize> = Default::default();
        let mut patterns: Vec<&str> = Vec::new();
        let mut meets: Vec<Vec<(u32, u64)>> = Vec::new();
        let mut full = Vec::with_capacity(needs.len());
        for (r, clauses) in needs.iter().enumerate() {
            let mut mask = 0u64;
            for (c, lits) in clauses.iter().take(MAX_CLAUSES).enumerate() {
                let bit = 1u64 << c;
                mask |= bit;
                for l in lits {
                    let p = *index.entry(l.as_str()).or_insert_with(|| {
                        patterns.push(l);
                        meets.push(Vec::new());
                        patterns.len() - 1
                    });
                    meets[p].push((r as u32, bit));
                }
            }
            full.push(mask);
        }
        let ac = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&patterns)
                .or_else(|_| {
                    AhoCorasickBuilder::new()
                        .ascii_case_insensitive(true)
                        .build(&patterns)
                })
                .expect("literal patterns build an automaton")
        });
        Prefilter { ac, meets, full }
    }

    /// Records in `met` (one clause mask per prunable rule) the clauses whose literals occur
    /// in `text`, folded as the matchers fold it.
    pub fn scan(&self, text: &str, met: &mut [u64]) {
        let Some(ac) = &self.ac else { return };
        let folded: Cow<'_, str> = if text.is_ascii() {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(text.to_lowercase().replace('ſ', "s"))
        };
        for m in ac.find_overlapping_iter(folded.as_ref()) {
            for &(r, bit) in &self.meets[m.pattern().as_usize()] {
                met[r as usize] |= bit;
            }
        }
    }

    /// Whether prunable rule `r` is worth evaluating: every clause met.
    pub fn candidate(&self, r: usize, met: &[u64]) -> bool {
        met[r] == self.full[r]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(yaml: &str) -> Need {
        let c = rsigma_parser::parse_sigma_yaml(yaml).unwrap();
        requirement(&rsigma_eval::compile_rule(&c.rules[0]).unwrap())
    }

    fn rule(detection: &str) -> String {
        format!("title: t\nlogsource: {{product: linux}}\ndetection:\n{detection}\n")
    }

    fn clauses(n: Need) -> Vec<Vec<String>> {
        n.expect("constrained")
    }

    #[test]
    fn requirements_follow_the_condition() {
        // a keyword list: any of its words
        let n = need(&rule("  k: ['Foo', 'bar baz']\n  condition: k"));
        assert_eq!(clauses(n), [["bar baz", "foo"]]);
        // and: both parts; not: nothing
        let n = need(&rule(
            "  a: {User: x}\n  b: {CommandLine|contains: 'wget http'}\n  condition: a and not b",
        ));
        assert_eq!(clauses(n), [["x"]]);
        let n = need(&rule(
            "  a: {User: xyzzy}\n  b: {CommandLine|contains: 'wget http'}\n  condition: a and b",
        ));
        assert_eq!(clauses(n), [vec!["wget http"], vec!["xyzzy"]]);
        // a weak clause after a selective one is left out (it would match nearly every line)
        let n = need(&rule(
            "  a: {User: x}\n  b: {CommandLine|contains: 'wget http'}\n  condition: a and b",
        ));
        assert_eq!(clauses(n), [["wget http"]]);
        assert!(need(&rule("  a: {User: x}\n  condition: not a")).is_none());
        // or with an unconstrained side: nothing
        assert!(need(&rule(
            "  a: {User: root}\n  b: {CommandLine|re: '.*'}\n  condition: a or b"
        ))
        .is_none());
        let n = need(&rule(
            "  sel_a: {User: root}\n  sel_b: {Image|endswith: '/nc'}\n  condition: 1 of sel_*",
        ));
        assert_eq!(clauses(n), [["/nc", "root"]]);
        let n = need(&rule(
            "  sel_a: {User: root}\n  sel_b: {Image|endswith: '/netcat'}\n  condition: all of sel_*",
        ));
        assert_eq!(clauses(n).len(), 2);
        // CIDR, numeric comparisons constrain nothing
        assert!(need(&rule("  a: {c-ip|cidr: '10.0.0.0/8'}\n  condition: a")).is_none());
        assert!(need(&rule("  a: {sc-status|gte: 400}\n  condition: a")).is_none());
        // non-ASCII literals fold by Unicode rules: not used
        assert!(need(&rule("  a: {User: 'Ünal'}\n  condition: a")).is_none());
    }

    #[test]
    fn regexes_and_wildcards_need_their_literal_runs() {
        // Sigma wildcards compile to regexes: each literal run is needed
        let n = need(&rule("  k: ['cat /dev/null >*sh_history']\n  condition: k"));
        assert_eq!(clauses(n), [vec!["cat /dev/null >"], vec!["sh_history"]]);
        let n = need(&rule(
            "  a: {CommandLine|re: '(?i)(curl|wget) .+\\| *sh'}\n  condition: a",
        ));
        let c = clauses(n);
        assert!(
            c.contains(&vec!["curl".to_string(), "wget".to_string()]),
            "{c:?}"
        );
        // an optional part needs nothing
        assert!(need(&rule("  a: {CommandLine|re: '(abc)?'}\n  condition: a")).is_none());
        assert!(regex_need("[a-z]+").is_none());
        assert_eq!(clauses(regex_need("(?i)Kill")), [["kill"]]);
    }

    #[test]
    fn the_scan_folds_case_like_the_matchers() {
        let p = Prefilter::new(&[
            vec![vec!["select".into()]],
            vec![vec!["kill".into()]],
            vec![vec!["union".into()], vec!["from".into()]],
        ]);
        let mut met = vec![0u64; 3];
        p.scan("GET /?q=1 UNION SeLeCt 2", &mut met);
        let cand = |met: &[u64]| (0..3).map(|r| p.candidate(r, met)).collect::<Vec<_>>();
        // the third rule needs both of its clauses
        assert_eq!(cand(&met), [true, false, false]);
        p.scan("x FROM y", &mut met);
        assert_eq!(cand(&met), [true, false, true]);
        // the Kelvin sign lowercases to an ASCII k under Unicode rules, as rsigma folds it
        let mut met = vec![0u64; 3];
        p.scan("\u{212A}ILL é", &mut met);
        assert_eq!(cand(&met), [false, true, false]);
    }

    #[test]
    fn globs() {
        assert!(glob("selection_*", "selection_a"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("sel*", "filter"));
        assert!(glob("exact", "exact"));
    }
}
