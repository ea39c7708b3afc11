//! Web request classification: what attack class a URL, User-Agent or Referer carries.
//!
//! The request text is decoded the way an application sees it (nginx's `\xHH` log escapes,
//! percent-decoding applied twice to undo double encoding, `%uXXXX`, `+` as space, HTML
//! entities), then two detectors look at it:
//!
//! - one Aho-Corasick automaton over every class's indicators (paths, functions, schemes,
//!   tool names), scanning the decoded request once, and a regex set for commands chained
//!   after shell separators;
//! - the SQL and HTML tokenizers of libinjection (`libinjectionrs`, a Rust port that passes
//!   libinjection's own test files) on each parameter value and name, the bare query, path
//!   segments and the User-Agent/Referer — SQL injection is recognised by the shape of the
//!   token stream, not by a word list.
//!
//! Measured against OWASP CRS's regression cases and libinjection's vectors by the test
//! `web_conformance` (figures in docs/CONFORMANCE.md).

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
    PhpInjection,
}

impl Class {
    pub const ALL: [Class; 9] = [
        Class::Sqli,
        Class::Xss,
        Class::Traversal,
        Class::Rfi,
        Class::CommandInjection,
        Class::SensitiveFile,
        Class::Scanner,
        Class::WebShell,
        Class::PhpInjection,
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
            Class::PhpInjection => "php_injection",
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
    // more local files and traversal forms
    ("/etc/", Class::Traversal),
    ("/proc/", Class::Traversal),
    ("/sys/class", Class::Traversal),
    (".ssh/", Class::Traversal),
    ("id_rsa", Class::Traversal),
    (".bash_history", Class::Traversal),
    (".htaccess", Class::Traversal),
    ("boot.ini", Class::Traversal),
    ("web.config", Class::Traversal),
    ("c:\\windows", Class::Traversal),
    ("c:/windows", Class::Traversal),
    ("system32", Class::Traversal),
    ("/var/log/", Class::Traversal),
    (".docker/", Class::Traversal),
    (".kube/", Class::Traversal),
    ("..;", Class::Traversal),
    (".\\.", Class::Traversal),
    // remote inclusion and request forgery schemes
    ("=gopher://", Class::Rfi),
    ("=ldap://", Class::Rfi),
    ("=dict://", Class::Rfi),
    ("=ftps://", Class::Rfi),
    ("=file:", Class::Rfi),
    ("probe=\"http", Class::Rfi),
    // PHP code and wrappers
    ("<?php", Class::PhpInjection),
    ("<?=", Class::PhpInjection),
    ("<? ", Class::PhpInjection),
    ("[php]", Class::PhpInjection),
    ("[/php]", Class::PhpInjection),
    ("{php}", Class::PhpInjection),
    ("phar://", Class::PhpInjection),
    ("zip://", Class::PhpInjection),
    ("zlib://", Class::PhpInjection),
    ("glob://", Class::PhpInjection),
    ("base64_decode(", Class::PhpInjection),
    ("file_put_contents(", Class::PhpInjection),
    ("file_get_contents(", Class::PhpInjection),
    ("call_user_func", Class::PhpInjection),
    ("create_function(", Class::PhpInjection),
    ("shell_exec(", Class::PhpInjection),
    ("passthru(", Class::PhpInjection),
    ("proc_open(", Class::PhpInjection),
    ("system(", Class::PhpInjection),
    ("assert(", Class::PhpInjection),
    ("eval(", Class::PhpInjection),
    ("preg_replace(", Class::PhpInjection),
    ("$_get[", Class::PhpInjection),
    ("$_post[", Class::PhpInjection),
    ("$_request[", Class::PhpInjection),
    ("$_server[", Class::PhpInjection),
    ("$_cookie[", Class::PhpInjection),
    ("$globals", Class::PhpInjection),
    ("__halt_compiler", Class::PhpInjection),
    ("php_uname", Class::PhpInjection),
    ("phpinfo(", Class::PhpInjection),
    ("session_start(", Class::PhpInjection),
    ("fputcsv(", Class::PhpInjection),
    ("auto_prepend_file", Class::PhpInjection),
    ("allow_url_include", Class::PhpInjection),
    ("/tmp/sess_", Class::PhpInjection),
    // command injection: shell tricks with no ordinary use in a URL
    ("${ifs}", Class::CommandInjection),
    ("$ifs", Class::CommandInjection),
    ("${cmd}", Class::CommandInjection),
    ("${jndi", Class::CommandInjection),
    ("${::-", Class::CommandInjection),
    ("${env:", Class::CommandInjection),
    ("${lower:", Class::CommandInjection),
    ("invoke-webrequest", Class::CommandInjection),
    ("invoke-expression", Class::CommandInjection),
    ("downloadstring(", Class::CommandInjection),
    ("powershell", Class::CommandInjection),
    ("cmd.exe", Class::CommandInjection),
    ("cmd /c", Class::CommandInjection),
    ("/bin/bash", Class::CommandInjection),
    ("/dev/tcp/", Class::CommandInjection),
    (":(){", Class::CommandInjection),
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

/// Decodes a URL as the application will see it: nginx's `\xHH` log escapes, `+` → space,
/// percent-decoding twice (double encoding), `%uXXXX`, HTML entities. Borrowed when nothing
/// changes. (Matching is ASCII case-insensitive.)
pub fn normalize(s: &str) -> Cow<'_, str> {
    let mut cur: Cow<'_, str> = Cow::Borrowed(s);
    if cur.contains("\\x") {
        cur = Cow::Owned(unescape_log(&cur));
    }
    for _ in 0..2 {
        if memchr::memchr2(b'%', b'+', cur.as_bytes()).is_none() {
            break;
        }
        let mut replaced = cur.replace('+', " ");
        if replaced.contains("%u") || replaced.contains("%U") {
            replaced = percent_u(&replaced);
        }
        let dec = percent_encoding::percent_decode_str(&replaced)
            .decode_utf8_lossy()
            .into_owned();
        cur = Cow::Owned(dec);
    }
    if memchr::memchr(b'&', cur.as_bytes()).is_some() {
        if let Cow::Owned(d) = html_entities(&cur) {
            cur = Cow::Owned(d);
        }
    }
    cur
}

/// nginx writes `"`, `\` and bytes outside printable ASCII as `\xHH`.
pub(crate) fn unescape_log(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// IIS-style `%uXXXX` escapes.
fn percent_u(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['%']) {
        out.push_str(&rest[..i]);
        let r = &rest[i..];
        let decoded = (r.len() >= 6 && (r.as_bytes()[1] | 0x20) == b'u')
            .then(|| r.get(2..6))
            .flatten()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &r[6..];
            }
            None => {
                out.push('%');
                rest = &r[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `&lt;`, `&#60;`, `&#x3c;` and the other entities an XSS payload hides behind.
pub(crate) fn html_entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let r = &rest[i + 1..];
        let end = r
            .bytes()
            .take(10)
            .position(|b| b == b';' || !(b.is_ascii_alphanumeric() || b == b'#'));
        let (name, used) = match end {
            Some(e) if r.as_bytes().get(e) == Some(&b';') => (&r[..e], e + 1),
            Some(e) => (&r[..e], e),
            None => (r, r.len().min(10)),
        };
        let name = &name[..name.len().min(used)];
        let c = match name.to_ascii_lowercase().as_str() {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "amp" => Some('&'),
            "colon" => Some(':'),
            "lpar" => Some('('),
            "rpar" => Some(')'),
            "newline" => Some('\n'),
            "tab" => Some('\t'),
            n => n
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| n.strip_prefix('#').map(|d| d.parse::<u32>()))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match c {
            Some(c) if !name.is_empty() => {
                out.push(c);
                rest = &r[used..];
                changed = true;
            }
            _ => {
                out.push('&');
                rest = r;
            }
        }
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// Commands chained after a shell separator or substitution.
fn command_set() -> &'static regex::RegexSet {
    static SET: OnceLock<regex::RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        regex::RegexSet::new([
            r"(?i)(?:[;|&`\n]|\$\()\s*(?:/(?:usr/)?(?:s?bin)/)?(?:cat|ls|id|uname|whoami|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|dash|python[23]?|perl|ruby|php|rm|chmod|chown|echo|printf|ping|nslookup|dig|sleep|ifconfig|ip|ps|kill|pkill|nohup|base64|xxd|tftp|scp|ssh|telnet|socat|awk|gawk|sed|find|grep|head|tail|more|less|touch|mkdir|cp|mv|env|set|export|eval|exec|type|dir|copy|del|net|ipconfig|systeminfo|tasklist|certutil|bitsadmin|mshta|rundll32|regsvr32|wmic|iwr|iex|irm|sc)\b",
            r"(?i)`[^`]{1,80}`",
            r"(?i)\$\{[a-z_]*\}|\$\{[^}]*(?:ifs|path|home|shell)[^}]*\}",
            r"(?i)(?:^|\s)/(?:[a-z]+/)+[a-z]*(?:\[!?[a-z]+\]|\*)[a-z*]*",
        ])
        .expect("static patterns")
    })
}

/// A byte set as a lookup table (the gates below run on every request).
const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

fn has_any(v: &str, set: &[bool; 256]) -> bool {
    v.bytes().any(|b| set[b as usize])
}

const ORDINARY: [bool; 256] = {
    let mut t = byte_set(b"-_./,: ");
    let mut b = 0;
    while b < 128 {
        if (b as u8).is_ascii_alphanumeric() {
            t[b] = true;
        }
        b += 1;
    }
    t
};
const XSS_CHARS: [bool; 256] = byte_set(b"<>\"'=`(");
/// What an injected SQL fragment needs besides words, numbers and double-quoted text: a
/// single quote or backtick to leave a string, a parenthesis, a comparison, a statement end,
/// a comment (`--`, `#`, `/*`), or a bitwise/logical operator. Prose that only quotes with `"`
/// (`CHRISTMAS STOCKING "NOT" STUFFER`, `80% ACRYLIC AND 20% WOOL`, `"*"`) has none of them.
const SQL_SYNTAX: [bool; 256] = byte_set(b"'`()=<>;#-/|&^!~+\\@");
const SHELL_CHARS: [bool; 256] = byte_set(b";|&`$\n/");
const HEADER_SUSPECT: [bool; 256] = byte_set(b"'\"<>`|{$%\\&");
const SEGMENT_SUSPECT: [bool; 256] = byte_set(b"%'(\"<");

/// Whether a value has something besides the characters of ordinary identifiers, so the
/// tokenizers are worth running on it.
fn unusual(v: &str) -> bool {
    v.bytes().any(|b| !ORDINARY[b as usize])
}

/// The SQL and HTML tokenizers on one decoded value.
fn tokenize(v: &str, out: &mut Vec<Class>) {
    if v.len() < 2 || !unusual(v) {
        return;
    }
    let push = |c: Class, out: &mut Vec<Class>| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    if !out.contains(&Class::Sqli)
        && has_any(v, &SQL_SYNTAX)
        && libinjectionrs::detect_sqli(v.as_bytes()).is_injection()
    {
        push(Class::Sqli, out);
    }
    if !out.contains(&Class::Xss)
        && has_any(v, &XSS_CHARS)
        && libinjectionrs::detect_xss(v.as_bytes()).is_injection()
    {
        push(Class::Xss, out);
    }
    if !out.contains(&Class::CommandInjection)
        && has_any(v, &SHELL_CHARS)
        && command_set().is_match(v)
    {
        push(Class::CommandInjection, out);
    }
}

/// The classes a request URL carries (at most one of each).
pub fn classify_url(url: &str, out: &mut Vec<Class>) {
    // nginx's log escapes first, once: the parts below are split from the unescaped text
    let unescaped: Cow<'_, str> = if url.contains("\\x") {
        Cow::Owned(unescape_log(url))
    } else {
        Cow::Borrowed(url)
    };
    scan(&normalize(&unescaped), out);
    let (path, query) = unescaped
        .split_once('?')
        .unwrap_or((unescaped.as_ref(), ""));
    // what the application reads: each parameter, the bare query, each path segment
    for seg in path.split('/') {
        if has_any(seg, &SEGMENT_SUSPECT) {
            tokenize(&normalize(seg), out);
        }
    }
    if !query.is_empty() {
        if !query.contains('=') {
            tokenize(&normalize(query), out);
        }
        for p in query.split(['&', ';']) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = normalize(v);
            tokenize(&v, out);
            tokenize(&normalize(k), out);
            if remote_inclusion(k, &v) && !out.contains(&Class::Rfi) {
                out.push(Class::Rfi);
            }
        }
    }
}

/// Parameters through which applications include files by name.
const INCLUDE_PARAMS: &[&str] = &[
    "page", "file", "include", "inc", "template", "tpl", "path", "doc", "document", "folder",
    "root", "dir", "style", "pg", "lang", "language", "mod", "module", "conf", "config", "show",
    "view", "content", "layout", "load", "read", "nav", "site", "prefix", "theme", "skin",
];

/// A value that makes an application fetch a remote file: a URL to an address literal, a
/// URL ending in `?` (cutting off the suffix the application appends), or any URL in a
/// parameter named for including files.
fn remote_inclusion(name: &str, v: &str) -> bool {
    let lower = v.trim().to_ascii_lowercase();
    let Some(rest) = ["http://", "https://", "ftp://", "ftps://"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
    else {
        return false;
    };
    let host = rest.split(['/', ':', '?']).next().unwrap_or("");
    host.parse::<std::net::IpAddr>().is_ok()
        || lower.ends_with('?')
        || INCLUDE_PARAMS.contains(&name.to_ascii_lowercase().as_str())
}

/// A header value (User-Agent, Referer): indicators and tokenizers on the decoded text.
pub fn classify_header(v: &str, out: &mut Vec<Class>) {
    // an ordinary User-Agent or Referer has parentheses, semicolons and slashes but no
    // quotes, angle brackets, braces or comments: only those are worth decoding and looking at
    if !(has_any(v, &HEADER_SUSPECT) || v.contains("--") || v.contains("/*")) {
        return;
    }
    let norm = normalize(v);
    scan(&norm, out);
    tokenize(&norm, out);
}

fn scan(norm: &str, out: &mut Vec<Class>) {
    let b = norm.as_bytes();
    for m in url_ac().find_overlapping_iter(norm) {
        let (needle, c) = URL_NEEDLES[m.pattern().as_usize()];
        // a needle that ends with a word ends a word of the text: `union selected` is prose
        // (its start is left free: `\xbealert(` is an encoded `>` before the keyword)
        if needle.as_bytes()[needle.len() - 1].is_ascii_alphanumeric()
            && b.get(m.end()).is_some_and(u8::is_ascii_alphanumeric)
        {
            continue;
        }
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
            // prose that looks like SQL to a tokenizer (libinjection's own false positives)
            "/search?q=O%27connors%20UNION%20selected%20a%20few%20friends",
            "/search?q=CHRISTMAS%20STOCKING%20%22NOT%22%20STUFFER",
            "/search?q=%22LIKE%22%20STAMP",
            "/search?q=80%25%20ACRYLIC%20AND%2020%25%20WOOL",
        ] {
            assert!(classes(u).is_empty(), "{u}: {:?}", classes(u));
        }
        // while the keywords and quoting of an injection still are SQL
        for u in [
            "/item?id=1%20UNION%20SELECT%20password%20FROM%20users",
            "/item?id=1%22%20OR%20%221%22=%221",
            "/item?id=x%22%20or%20%22x",
        ] {
            assert!(classes(u).contains(&Class::Sqli), "{u}: {:?}", classes(u));
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
