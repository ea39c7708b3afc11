//! Web request classification: what attack class a URL, User-Agent or Referer carries.
//!
//! The request text is decoded the way a server would see it (percent-decoding applied twice
//! to undo double encoding, `+` as space, case folded), then one Aho-Corasick automaton over
//! every class's indicators scans it once. This is the first line of the web detector; the
//! detection issue replaces the SQLi/XSS part with a tokenizing (libinjection-style) detector.

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// Attack classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Sqli,
    Xss,
    Traversal,
    Rfi,
    CommandInjection,
    SensitiveFile,
    Scanner,
    WebShell,
}

impl Class {
    pub const ALL: [Class; 8] = [
        Class::Sqli,
        Class::Xss,
        Class::Traversal,
        Class::Rfi,
        Class::CommandInjection,
        Class::SensitiveFile,
        Class::Scanner,
        Class::WebShell,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Sqli => "sql_injection",
            Class::Xss => "xss",
            Class::Traversal => "path_traversal",
            Class::Rfi => "remote_file_inclusion",
            Class::CommandInjection => "command_injection",
            Class::SensitiveFile => "sensitive_file",
            Class::Scanner => "scanner",
            Class::WebShell => "web_shell",
        }
    }
}

const URL_NEEDLES: &[(&str, Class)] = &[
    // SQL injection: operators and functions that ordinary URLs do not contain
    ("union select", Class::Sqli),
    ("union all select", Class::Sqli),
    ("' or '", Class::Sqli),
    ("' or 1=1", Class::Sqli),
    ("\" or \"", Class::Sqli),
    (" or 1=1", Class::Sqli),
    (" and 1=1", Class::Sqli),
    (" and 1=2", Class::Sqli),
    ("'--", Class::Sqli),
    ("sleep(", Class::Sqli),
    ("benchmark(", Class::Sqli),
    ("waitfor delay", Class::Sqli),
    ("pg_sleep(", Class::Sqli),
    ("information_schema", Class::Sqli),
    ("; drop table", Class::Sqli),
    (";drop table", Class::Sqli),
    ("concat(", Class::Sqli),
    ("group_concat(", Class::Sqli),
    ("extractvalue(", Class::Sqli),
    ("updatexml(", Class::Sqli),
    ("load_file(", Class::Sqli),
    ("into outfile", Class::Sqli),
    ("select null", Class::Sqli),
    ("order by 1--", Class::Sqli),
    ("@@version", Class::Sqli),
    ("char(", Class::Sqli),
    ("0x3a", Class::Sqli),
    // XSS
    ("<script", Class::Xss),
    ("</script", Class::Xss),
    ("javascript:", Class::Xss),
    ("onerror=", Class::Xss),
    ("onload=", Class::Xss),
    ("onmouseover=", Class::Xss),
    ("onfocus=", Class::Xss),
    ("<svg", Class::Xss),
    ("<iframe", Class::Xss),
    ("<img", Class::Xss),
    ("alert(", Class::Xss),
    ("document.cookie", Class::Xss),
    ("<body", Class::Xss),
    ("vbscript:", Class::Xss),
    // traversal / local file inclusion
    ("../", Class::Traversal),
    ("..\\", Class::Traversal),
    ("....//", Class::Traversal),
    ("/etc/passwd", Class::Traversal),
    ("/etc/shadow", Class::Traversal),
    ("/etc/hosts", Class::Traversal),
    ("/proc/self/", Class::Traversal),
    ("win.ini", Class::Traversal),
    ("php://filter", Class::Traversal),
    ("php://input", Class::Traversal),
    ("file://", Class::Traversal),
    ("/bin/sh", Class::CommandInjection),
    // remote file inclusion
    ("=http://", Class::Rfi),
    ("=https://", Class::Rfi),
    ("=ftp://", Class::Rfi),
    ("data://text", Class::Rfi),
    ("expect://", Class::Rfi),
    // command injection
    (";id;", Class::CommandInjection),
    ("|id", Class::CommandInjection),
    (";cat ", Class::CommandInjection),
    ("|cat ", Class::CommandInjection),
    ("$(", Class::CommandInjection),
    ("`id`", Class::CommandInjection),
    (";wget ", Class::CommandInjection),
    ("|wget ", Class::CommandInjection),
    (";curl ", Class::CommandInjection),
    ("${jndi:", Class::CommandInjection),
    ("() {", Class::CommandInjection),
    ("eval-stdin.php", Class::CommandInjection),
    ("/_ignition/execute-solution", Class::CommandInjection),
    ("cmd=", Class::WebShell),
    // sensitive files and admin probes
    ("/.env", Class::SensitiveFile),
    ("/.git/", Class::SensitiveFile),
    ("/.svn/", Class::SensitiveFile),
    ("/.aws/", Class::SensitiveFile),
    ("/.ds_store", Class::SensitiveFile),
    ("/.vscode/", Class::SensitiveFile),
    ("/.htpasswd", Class::SensitiveFile),
    ("/wp-config.php", Class::SensitiveFile),
    ("/config.php.bak", Class::SensitiveFile),
    ("/backup.zip", Class::SensitiveFile),
    ("/backup.sql", Class::SensitiveFile),
    ("/dump.sql", Class::SensitiveFile),
    ("/sftp-config.json", Class::SensitiveFile),
    ("/phpinfo.php", Class::SensitiveFile),
    ("/info.php", Class::SensitiveFile),
    ("/server-status", Class::SensitiveFile),
    ("/actuator/", Class::SensitiveFile),
    ("/phpmyadmin", Class::SensitiveFile),
    ("/pma/", Class::SensitiveFile),
    ("/wp-login.php", Class::SensitiveFile),
    ("/xmlrpc.php", Class::SensitiveFile),
    ("/manager/html", Class::SensitiveFile),
    ("/boaform/", Class::SensitiveFile),
    ("/cgi-bin/luci", Class::SensitiveFile),
    ("/hnap1", Class::SensitiveFile),
    ("/shell.php", Class::WebShell),
    ("/c99.php", Class::WebShell),
    ("/r57.php", Class::WebShell),
    ("/wso.php", Class::WebShell),
];

const UA_NEEDLES: &[&str] = &[
    "sqlmap",
    "nikto",
    "masscan",
    "zgrab",
    "nuclei",
    "nmap",
    "acunetix",
    "netsparker",
    "wpscan",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "ffuf",
    "wfuzz",
    "hydra",
    "jaeles",
    "openvas",
    "nessus",
    "whatweb",
    "zmeu",
    "morfeus",
    "havij",
    "w3af",
    "arachni",
    "skipfish",
    "joomscan",
    "commix",
    "xsstrike",
    "censysinspect",
    "l9explore",
    "expanse",
];

fn url_ac() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(URL_NEEDLES.iter().map(|(n, _)| n))
            .expect("static needles")
    })
}

fn ua_ac() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(UA_NEEDLES)
            .expect("static needles")
    })
}

/// Decodes a URL as the application will see it: `+` → space, percent-decoding twice (double
/// encoding), `\` kept. Borrowed when nothing changes. (Matching is ASCII case-insensitive.)
pub fn normalize(s: &str) -> Cow<'_, str> {
    let mut cur: Cow<'_, str> = Cow::Borrowed(s);
    for _ in 0..2 {
        if memchr::memchr2(b'%', b'+', cur.as_bytes()).is_none() {
            break;
        }
        let replaced = cur.replace('+', " ");
        let dec = percent_encoding::percent_decode_str(&replaced)
            .decode_utf8_lossy()
            .into_owned();
        cur = Cow::Owned(dec);
    }
    cur
}

/// The classes a request URL carries (at most one of each).
pub fn classify_url(url: &str, out: &mut Vec<Class>) {
    let norm = normalize(url);
    for m in url_ac().find_overlapping_iter(norm.as_ref()) {
        let c = URL_NEEDLES[m.pattern().as_usize()].1;
        if !out.contains(&c) {
            out.push(c);
        }
    }
}

/// Whether a User-Agent is a known attack or scanning tool.
pub fn scanner_agent(ua: &str) -> bool {
    ua_ac().is_match(ua)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(u: &str) -> Vec<Class> {
        let mut v = vec![];
        classify_url(u, &mut v);
        v
    }

    #[test]
    fn attacks_are_classified_through_encodings() {
        assert!(
            classes("/search?q=%27%20UNION%20SELECT%20username,password%20FROM%20users--")
                .contains(&Class::Sqli)
        );
        assert!(classes("/search?q=%253Cscript%253Ealert(1)").contains(&Class::Xss));
        assert!(classes("/static/%2e%2e/%2e%2e/etc/shadow").contains(&Class::Traversal));
        assert!(classes("/index.php?page=http://evil.example/x.txt").contains(&Class::Rfi));
        assert!(classes("/.git/config").contains(&Class::SensitiveFile));
        assert!(classes("/products?id=1%20AND%20SLEEP(5)").contains(&Class::Sqli));
    }

    #[test]
    fn ordinary_urls_are_quiet() {
        for u in [
            "/",
            "/blog/2026/03/release-notes",
            "/search?q=red+dress&page=2",
            "/api/v1/products?limit=20",
            "/static/js/app.8b21e0.js",
            "/products/42",
            "/account/orders",
            "/docs/getting-started",
            "/search?q=union+station+selection",
        ] {
            assert!(classes(u).is_empty(), "{u}: {:?}", classes(u));
        }
    }

    #[test]
    fn scanner_agents() {
        assert!(scanner_agent("sqlmap/1.8.2#stable (https://sqlmap.org)"));
        assert!(scanner_agent("Mozilla/5.00 (Nikto/2.5.0) (Evasions:None)"));
        assert!(!scanner_agent(
            "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0"
        ));
    }
}
