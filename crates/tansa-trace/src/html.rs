//! A trace as one self-contained HTML page (inline CSS, no script, no outside resource) that a
//! person can mail to a colleague. Every text from the logs is HTML-escaped, and the page's
//! Content-Security-Policy forbids scripts, so a User-Agent or URL that carries markup stays
//! text.

use std::fmt::Write;

use crate::{Phase, Trace};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn phase_colour(p: Phase) -> &'static str {
    match p {
        Phase::Reconnaissance => "#6b7280",
        Phase::InitialAccess => "#b91c1c",
        Phase::Execution => "#c2410c",
        Phase::Persistence => "#7c3aed",
        Phase::PrivilegeEscalation => "#be185d",
        Phase::DefenseEvasion => "#0f766e",
        Phase::CredentialAccess => "#a16207",
        Phase::Discovery => "#4d7c0f",
        Phase::LateralMovement => "#1d4ed8",
        Phase::Collection => "#0e7490",
        Phase::CommandAndControl => "#9333ea",
        Phase::Exfiltration => "#991b1b",
        Phase::Impact => "#111827",
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f3f4f6}.phase{color:#fff;border-radius:4px;padding:1px 6px;white-space:nowrap;font-size:12px}\
.raw{font:12px ui-monospace,monospace;color:#374151;word-break:break-all;white-space:pre-wrap}\
.link{color:#6b7280;font-size:12px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{font-weight:600}\
.time{white-space:nowrap;font:12px ui-monospace,monospace}";

/// The page.
pub fn render(t: &Trace) -> String {
    let mut h = String::new();
    let s = &t.summary;
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>Tansa trace: {e}</title><style>{STYLE}</style></head><body>\
         <h1>Trace of <span id=\"entity\">{e}</span></h1><dl id=\"summary\">",
        e = escape(&s.entity)
    );
    let row = |h: &mut String, k: &str, v: String| {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(k), v);
    };
    let join = |v: &[String]| escape(&v.join(", "));
    row(
        &mut h,
        "First / last seen (UTC)",
        format!(
            "{} — {}",
            escape(s.first_seen.as_deref().unwrap_or("-")),
            escape(s.last_seen.as_deref().unwrap_or("-"))
        ),
    );
    row(&mut h, "Hosts reached", join(&s.hosts_reached));
    row(&mut h, "Hosts touched", join(&s.hosts_touched));
    row(&mut h, "Accounts used", join(&s.accounts));
    row(&mut h, "Attacker addresses", join(&s.addresses));
    if !s.origin.is_empty() {
        row(&mut h, "Origin", join(&s.origin));
    }
    row(
        &mut h,
        "Phases",
        escape(
            &s.phases
                .iter()
                .map(|p| p.label())
                .collect::<Vec<_>>()
                .join(" → "),
        ),
    );
    row(&mut h, "Events", s.events.to_string());
    h.push_str("</dl>");
    list_section(&mut h, "How access was gained", "access", &s.access);
    list_section(&mut h, "What was changed", "changes", &s.changes);
    if !t.sessions.is_empty() {
        h.push_str("<h2>Sessions</h2><table id=\"sessions\"><tr><th>Host</th><th>Start</th><th>End / last activity</th><th>How</th><th>Hop</th></tr>");
        for se in &t.sessions {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"time\">{}</td><td class=\"time\">{}</td><td>{}{}</td><td>{}</td></tr>",
                escape(&se.host),
                escape(&se.start),
                escape(se.end.as_deref().unwrap_or(&se.last_activity)),
                escape(&se.how),
                if se.shared { " (shared with another session: attributed by time)" } else { "" },
                se.depth
            );
        }
        h.push_str("</table>");
    }
    if let Some(nb) = &t.netblock {
        let _ = write!(
            h,
            "<h2>Netblock {}</h2><p>{}.</p>\
             <table id=\"members\"><tr><th>Address</th><th>First seen</th><th>Last seen</th><th>Events</th><th>Roles</th><th>Alerts</th></tr>",
            escape(&nb.block),
            escape(&nb.totals())
        );
        for m in &nb.members {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"time\">{}</td><td class=\"time\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.ip),
                escape(&m.first_seen),
                escape(&m.last_seen),
                m.events,
                join(&m.roles),
                join(&m.alerts)
            );
        }
        h.push_str("</table>");
    }
    if !t.registrations.is_empty() {
        h.push_str("<h2>Who holds the addresses (RDAP)</h2><table id=\"registrations\"><tr><th>Address</th><th>Network</th><th>Name</th><th>Holder</th><th>Country</th><th>Abuse contact</th><th>Answered</th></tr>");
        for r in &t.registrations {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"time\">{}</td></tr>",
                escape(&r.address),
                escape(&r.network),
                escape(r.name.as_deref().unwrap_or("")),
                escape(r.holder.as_deref().unwrap_or("")),
                escape(r.country.as_deref().unwrap_or("")),
                escape(r.abuse_email.as_deref().unwrap_or("none listed")),
                escape(&r.fetched)
            );
        }
        h.push_str("</table>");
    }
    if !t.indicators.is_empty() {
        h.push_str("<h2>Indicators</h2><table id=\"indicators\"><tr><th>Kind</th><th>Value</th><th>First seen</th><th>Host</th><th>Events</th></tr>");
        for i in &t.indicators {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"time\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&i.kind),
                escape(&i.value),
                escape(&i.first_seen),
                escape(i.host.as_deref().unwrap_or("")),
                i.events
            );
        }
        h.push_str("</table>");
    }
    if !t.neighbours.is_empty() {
        h.push_str("<h2>Neighbours acting in concert (same /24 or /64, same time)</h2><table id=\"neighbours\"><tr><th>Address</th><th>Events</th><th>First seen</th><th>Last seen</th><th>Roles</th></tr>");
        for n in &t.neighbours {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"time\">{}</td><td class=\"time\">{}</td><td>{}</td></tr>",
                escape(&n.ip),
                n.events,
                escape(&n.first_seen),
                escape(&n.last_seen),
                join(&n.roles)
            );
        }
        h.push_str("</table>");
    }
    if !t.alerts.is_empty() {
        h.push_str("<h2>Related alerts</h2><table id=\"alerts\"><tr><th>Severity</th><th>First seen</th><th>Rule</th><th>Entity</th><th>Count</th></tr>");
        for a in &t.alerts {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"time\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.severity),
                escape(&a.first_seen),
                escape(&a.rule),
                escape(&a.entity),
                a.count
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Timeline</h2><table id=\"timeline\"><tr><th>Time (UTC) / local</th><th>Host</th><th>Phase</th><th>What happened</th></tr>");
    for st in &t.steps {
        let _ = write!(
            h,
            "<tr class=\"step\" data-phase=\"{ph}\" data-host=\"{host}\"><td class=\"time\">{time}<br>{local}</td><td>{host}<br><span class=\"link\">{src}</span></td>\
             <td><span class=\"phase\" style=\"background:{col}\">{label}</span></td>\
             <td><div class=\"summary\">{sum}</div><div class=\"raw\">{raw}</div><div class=\"link\">{link}{rules}</div></td></tr>",
            ph = serde_json::to_value(st.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            host = escape(st.host.as_deref().unwrap_or("")),
            time = escape(&st.time),
            local = escape(st.local.as_deref().unwrap_or("")),
            src = escape(&st.source),
            col = phase_colour(st.phase),
            label = escape(st.phase.label()),
            sum = escape(&st.summary),
            raw = escape(&st.raw),
            link = escape(&st.link),
            rules = if st.rules.is_empty() {
                String::new()
            } else {
                format!(" — rules: {}", escape(&st.rules.join("; ")))
            },
        );
    }
    h.push_str("</table>");
    list_section(&mut h, "Notes", "notes", &t.notes);
    h.push_str("</body></html>\n");
    h
}

fn list_section(h: &mut String, title: &str, id: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(h, "<h2>{}</h2><ul id=\"{id}\">", escape(title));
    for i in items {
        let _ = write!(h, "<li>{}</li>", escape(i));
    }
    h.push_str("</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_logs_stays_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{1b}[31mb"), "a\\u{1b}[31mb");
    }
}
