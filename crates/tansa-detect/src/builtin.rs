//! The built-in rule pack: SSH/PAM brute force and its variants, host persistence and
//! privilege changes, web attacks, firewall scans, database abuse. Each rule carries ATT&CK
//! tags and a severity. (Sigma rules loaded from files join these in the detection issue.)

use tansa_event::{Category, Event, Field, Outcome};

use crate::web::Class;
use crate::{Condition, DistinctField, Features, KeyBy, Rule, Severity};

const MIN: i64 = 60 * 1_000_000_000;

fn ssh_failure(e: &Event) -> bool {
    e.outcome == Outcome::Failure && e.action.is_some_and(|a| a.starts_with("ssh_"))
}

fn auth_failure(e: &Event) -> bool {
    e.outcome == Outcome::Failure && e.category == Category::Authentication
}

fn cloud(e: &Event, action: &str) -> bool {
    e.dataset == "cloud.audit" && e.action == Some(action)
}

fn cloud_login_failure(e: &Event) -> bool {
    cloud(e, "cloud_console_login") && e.outcome == Outcome::Failure
}

fn cloud_login_success(e: &Event) -> bool {
    cloud(e, "cloud_console_login") && e.outcome == Outcome::Success
}

fn login_success(e: &Event) -> bool {
    e.outcome == Outcome::Success
        && e.category == Category::Authentication
        && matches!(
            e.action,
            Some("ssh_login" | "ftp_login" | "mail_login" | "db_authentication" | "login")
        )
}

/// A globally routed address (not private, loopback, link-local, CGNAT or documentation-free).
pub fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        std::net::IpAddr::V6(v) => {
            let s = v.segments()[0];
            !(v.is_loopback()
                || v.is_unspecified()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80)
        }
    }
}

fn web(e: &Event, f: &Features, c: Class) -> bool {
    e.category == Category::Web && f.web.contains(&c)
}

fn cmdline_has(e: &Event, f: impl Fn(&str) -> bool) -> bool {
    e.get_str(Field::PROCESS_COMMAND_LINE)
        .is_some_and(|c| f(&c))
}

/// The built-in rules.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            id: "tansa.ssh.brute_force",
            title: "SSH brute force from one address",
            severity: Severity::High,
            tags: &["attack.credential_access", "attack.t1110.001"],
            key: KeyBy::SourceIp,
            window: 10 * MIN,
            condition: Condition::Count { count: 10 },
            matches: |e, _| ssh_failure(e),
        },
        Rule {
            id: "tansa.ssh.password_spray",
            title: "Password spraying: many accounts tried from one address",
            severity: Severity::High,
            tags: &["attack.credential_access", "attack.t1110.003"],
            key: KeyBy::SourceIp,
            window: 10 * MIN,
            condition: Condition::Distinct {
                field: DistinctField::User,
                count: 5,
            },
            matches: |e, _| auth_failure(e),
        },
        Rule {
            id: "tansa.ssh.invalid_user_enumeration",
            title: "Account enumeration with invalid user names",
            severity: Severity::Medium,
            tags: &["attack.reconnaissance", "attack.t1589.001"],
            key: KeyBy::SourceIp,
            window: 10 * MIN,
            condition: Condition::Distinct {
                field: DistinctField::User,
                count: 5,
            },
            matches: |e, _| e.action == Some("ssh_invalid_user"),
        },
        Rule {
            id: "tansa.auth.distributed_brute_force",
            title: "Distributed brute force: one account attacked from many addresses",
            severity: Severity::High,
            tags: &["attack.credential_access", "attack.t1110"],
            key: KeyBy::User,
            window: 60 * MIN,
            condition: Condition::Distinct {
                field: DistinctField::SourceIp,
                count: 20,
            },
            // attacks come from the internet; colleagues mistyping on the LAN are not one
            matches: |e, _| auth_failure(e) && e.source_ip.is_some_and(is_public),
        },
        Rule {
            id: "tansa.auth.success_after_failures",
            title: "Successful login from an address that was failing to log in",
            severity: Severity::Critical,
            tags: &[
                "attack.initial_access",
                "attack.t1078",
                "attack.credential_access",
                "attack.t1110",
            ],
            key: KeyBy::SourceIp,
            window: 60 * MIN,
            condition: Condition::After {
                before: auth_failure,
                count: 10,
            },
            matches: |e, _| login_success(e),
        },
        Rule {
            id: "tansa.auth.success_after_failures_net",
            title: "Successful login from a /24 that was failing to log in",
            severity: Severity::High,
            tags: &["attack.initial_access", "attack.t1078"],
            key: KeyBy::SourceNet,
            window: 60 * MIN,
            condition: Condition::After {
                before: auth_failure,
                count: 30,
            },
            // a LAN's users share a /24 and mistype: only internet netblocks count
            matches: |e, _| login_success(e) && e.source_ip.is_some_and(is_public),
        },
        Rule {
            id: "tansa.ssh.root_login",
            title: "Direct root login over SSH",
            severity: Severity::Medium,
            tags: &["attack.privilege_escalation", "attack.t1078.003"],
            key: KeyBy::HostUser,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                e.action == Some("ssh_login")
                    && e.outcome == Outcome::Success
                    && e.user_name().as_deref() == Some("root")
            },
        },
        Rule {
            id: "tansa.auth.service_brute_force",
            title: "Brute force against a service (mail, FTP, database, HTTP auth)",
            severity: Severity::High,
            tags: &["attack.credential_access", "attack.t1110"],
            key: KeyBy::SourceIp,
            window: 10 * MIN,
            condition: Condition::Count { count: 10 },
            matches: |e, _| auth_failure(e) && !ssh_failure(e),
        },
        Rule {
            id: "tansa.host.user_created",
            title: "New local user account",
            severity: Severity::Medium,
            tags: &["attack.persistence", "attack.t1136.001"],
            key: KeyBy::HostUser,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| e.action == Some("user_created"),
        },
        Rule {
            id: "tansa.host.admin_group",
            title: "User added to an administrators group (sudo, wheel, admin)",
            severity: Severity::High,
            tags: &[
                "attack.persistence",
                "attack.privilege_escalation",
                "attack.t1098",
            ],
            key: KeyBy::HostUser,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                e.action == Some("user_added_to_group")
                    && e.get_str(Field::GROUP_NAME).is_some_and(|g| {
                        matches!(g.as_ref(), "sudo" | "wheel" | "admin" | "root" | "adm")
                    })
            },
        },
        Rule {
            id: "tansa.host.sudo_shell",
            title: "sudo to an interactive shell",
            severity: Severity::Medium,
            tags: &["attack.privilege_escalation", "attack.t1548.003"],
            key: KeyBy::HostUser,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                e.action == Some("sudo")
                    && e.get_str(Field::PROCESS_EXECUTABLE).is_some_and(|x| {
                        matches!(
                            x.rsplit('/').next(),
                            Some("sh" | "bash" | "zsh" | "dash" | "ksh" | "fish" | "su")
                        )
                    })
            },
        },
        Rule {
            id: "tansa.host.download_execute",
            title: "Download and execute (wget/curl piped to a shell, or run from /tmp)",
            severity: Severity::High,
            tags: &[
                "attack.execution",
                "attack.t1059.004",
                "attack.command_and_control",
                "attack.t1105",
            ],
            key: KeyBy::Host,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                cmdline_has(e, |c| {
                    (c.contains("wget ") || c.contains("curl "))
                        && (c.contains("| sh")
                            || c.contains("|sh")
                            || c.contains("| bash")
                            || c.contains("|bash")
                            || c.contains("chmod +x")
                            || c.contains("/tmp/")
                            || c.contains("/dev/shm"))
                })
            },
        },
        Rule {
            id: "tansa.host.log_tampering",
            title: "Log tampering: history cleared or logging stopped",
            severity: Severity::High,
            tags: &[
                "attack.defense_evasion",
                "attack.t1070.002",
                "attack.t1070.003",
            ],
            key: KeyBy::Host,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                cmdline_has(e, |c| {
                    c.contains("history -c")
                        || c.contains("unset HISTFILE")
                        || c.contains("> /var/log/")
                        || c.contains("shred ") && c.contains("/var/log")
                }) || (matches!(e.action, Some("service_stopped" | "audit_daemon_stopped"))
                    && e.get_str(Field::SERVICE_NAME).is_none_or(|u| {
                        u.contains("audit") || u.contains("syslog") || u.contains("journal")
                    }))
            },
        },
        web_rule(
            "tansa.web.sql_injection",
            "SQL injection attempt",
            Severity::High,
            &["attack.initial_access", "attack.t1190"],
            |e, f| web(e, f, Class::Sqli),
        ),
        web_rule(
            "tansa.web.php_injection",
            "PHP code injection attempt",
            Severity::High,
            &["attack.initial_access", "attack.t1190"],
            |e, f| web(e, f, Class::PhpInjection),
        ),
        web_rule(
            "tansa.web.xss",
            "Cross-site scripting attempt",
            Severity::Medium,
            &["attack.initial_access", "attack.t1189"],
            |e, f| web(e, f, Class::Xss),
        ),
        web_rule(
            "tansa.web.path_traversal",
            "Path traversal / local file inclusion attempt",
            Severity::High,
            &["attack.initial_access", "attack.t1190"],
            |e, f| web(e, f, Class::Traversal),
        ),
        web_rule(
            "tansa.web.rfi",
            "Remote file inclusion attempt",
            Severity::High,
            &["attack.initial_access", "attack.t1190"],
            |e, f| web(e, f, Class::Rfi),
        ),
        web_rule(
            "tansa.web.command_injection",
            "Command injection attempt",
            Severity::High,
            &["attack.execution", "attack.t1059"],
            |e, f| web(e, f, Class::CommandInjection),
        ),
        web_rule(
            "tansa.web.sensitive_file",
            "Probe for sensitive files or admin pages",
            Severity::Medium,
            &["attack.reconnaissance", "attack.t1595.003"],
            |e, f| web(e, f, Class::SensitiveFile),
        ),
        web_rule(
            "tansa.web.web_shell",
            "Web shell access",
            Severity::High,
            &["attack.persistence", "attack.t1505.003"],
            |e, f| web(e, f, Class::WebShell),
        ),
        web_rule(
            "tansa.web.scanner",
            "Vulnerability scanner user agent",
            Severity::Low,
            &["attack.reconnaissance", "attack.t1595.002"],
            |e, f| e.category == Category::Web && f.scanner_agent,
        ),
        Rule {
            id: "tansa.web.not_found_burst",
            title: "Burst of 404 responses (directory brute force)",
            severity: Severity::Medium,
            tags: &["attack.reconnaissance", "attack.t1595.003"],
            key: KeyBy::SourceIp,
            window: MIN,
            condition: Condition::Count { count: 30 },
            matches: |e, _| {
                e.category == Category::Web
                    && e.get(Field::HTTP_STATUS) == Some(&tansa_event::Val::Int(404))
            },
        },
        Rule {
            id: "tansa.web.login_brute_force",
            title: "Login form brute force",
            severity: Severity::High,
            tags: &["attack.credential_access", "attack.t1110"],
            key: KeyBy::SourceIp,
            window: 5 * MIN,
            condition: Condition::Count { count: 20 },
            matches: |e, _| {
                e.category == Category::Web
                    && e.get_str(Field::HTTP_METHOD).as_deref() == Some("POST")
                    && e.get_str(Field::URL_PATH).is_some_and(|p| {
                        let p = p.to_ascii_lowercase();
                        p.contains("login")
                            || p.contains("signin")
                            || p.contains("wp-login")
                            || p.contains("/auth")
                    })
            },
        },
        Rule {
            id: "tansa.firewall.port_scan",
            title: "Port scan: many ports refused from one address",
            severity: Severity::Medium,
            tags: &["attack.discovery", "attack.t1046"],
            key: KeyBy::SourceIp,
            window: 5 * MIN,
            condition: Condition::Distinct {
                field: DistinctField::DestinationPort,
                count: 15,
            },
            matches: |e, _| e.action == Some("firewall_block"),
        },
        Rule {
            id: "tansa.firewall.sweep",
            title: "Network sweep: one port probed on many hosts",
            severity: Severity::Medium,
            tags: &["attack.discovery", "attack.t1046"],
            key: KeyBy::SourceIp,
            window: 5 * MIN,
            condition: Condition::Distinct {
                field: DistinctField::DestinationIp,
                count: 10,
            },
            matches: |e, _| e.action == Some("firewall_block"),
        },
        Rule {
            id: "tansa.db.file_access",
            title: "Database reads or writes server files (INTO OUTFILE, LOAD_FILE)",
            severity: Severity::High,
            tags: &["attack.collection", "attack.t1005", "attack.exfiltration"],
            key: KeyBy::Host,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                e.get_str(Field::DB_STATEMENT).is_some_and(|s| {
                    let l = s.to_ascii_lowercase();
                    l.contains("into outfile")
                        || l.contains("into dumpfile")
                        || l.contains("load_file(")
                        || l.contains("load data infile")
                })
            },
        },
        Rule {
            id: "tansa.cloud.console_brute_force",
            title: "Cloud console password guessing (failed console sign-ins)",
            severity: Severity::High,
            tags: &["attack.credential_access", "attack.t1110.001"],
            key: KeyBy::User,
            window: 10 * MIN,
            condition: Condition::Count { count: 5 },
            matches: |e, _| cloud_login_failure(e),
        },
        Rule {
            id: "tansa.cloud.console_login_after_failures",
            title: "Cloud console sign-in after failed attempts",
            severity: Severity::Critical,
            tags: &[
                "attack.initial_access",
                "attack.t1078.004",
                "attack.credential_access",
                "attack.t1110",
            ],
            key: KeyBy::User,
            window: 60 * MIN,
            condition: Condition::After {
                before: cloud_login_failure,
                count: 3,
            },
            matches: |e, _| cloud_login_success(e),
        },
        Rule {
            id: "tansa.cloud.console_login_countries",
            title: "Cloud console sign-ins of one account from several countries",
            severity: Severity::High,
            tags: &["attack.initial_access", "attack.t1078.004"],
            key: KeyBy::User,
            window: 24 * 60 * MIN,
            condition: Condition::Distinct {
                field: DistinctField::SourceCountry,
                count: 2,
            },
            matches: |e, _| cloud_login_success(e),
        },
        Rule {
            id: "tansa.cloud.root_console_login",
            title: "Cloud root account signed in to the console",
            severity: Severity::High,
            tags: &["attack.privilege_escalation", "attack.t1078.004"],
            key: KeyBy::User,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| cloud_login_success(e) && e.user_name().is_some_and(|u| u == "root"),
        },
        Rule {
            id: "tansa.cloud.api_denied_burst",
            title: "Many denied cloud API calls (a stolen key probing its rights)",
            severity: Severity::Medium,
            tags: &["attack.discovery", "attack.t1580", "attack.t1087.004"],
            key: KeyBy::User,
            window: 10 * MIN,
            condition: Condition::Count { count: 10 },
            matches: |e, _| cloud(e, "cloud_api_call") && e.outcome == Outcome::Failure,
        },
        Rule {
            id: "tansa.cloud.access_key_created",
            title: "Cloud access key or service-account key created",
            severity: Severity::Medium,
            tags: &["attack.persistence", "attack.t1098.001"],
            key: KeyBy::User,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| cloud(e, "cloud_access_key_created") && e.outcome == Outcome::Success,
        },
        Rule {
            id: "tansa.cloud.firewall_open_to_world",
            title: "Cloud security group or firewall opened to the whole internet",
            severity: Severity::High,
            tags: &["attack.defense_evasion", "attack.t1562.007"],
            key: KeyBy::User,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| {
                cloud(e, "cloud_firewall_changed")
                    && e.outcome == Outcome::Success
                    && (e.raw.as_str().contains("0.0.0.0/0") || e.raw.as_str().contains("::/0"))
            },
        },
        Rule {
            id: "tansa.cloud.audit_disabled",
            title: "Cloud audit logging stopped or deleted",
            severity: Severity::Critical,
            tags: &["attack.defense_evasion", "attack.t1562.008"],
            key: KeyBy::User,
            window: 60 * MIN,
            condition: Condition::Each,
            matches: |e, _| cloud(e, "cloud_audit_disabled") && e.outcome == Outcome::Success,
        },
        web_rule(
            "tansa.waf.blocked",
            "Request blocked by the web application firewall",
            Severity::Medium,
            &["attack.initial_access", "attack.t1190"],
            |e, _| {
                e.action == Some("waf_blocked")
                    || (e.action == Some("waf_rule_match")
                        && e.event_type == tansa_event::EventType::Denied)
            },
        ),
        fim_rule(
            "tansa.fim.account_files_changed",
            "Account or sudo files changed (passwd, shadow, group, sudoers)",
            Severity::High,
            &["attack.persistence", "attack.t1136.001", "attack.t1548.003"],
            |e, _| fim_change(e, &["accounts", "sudo"]),
        ),
        fim_rule(
            "tansa.fim.ssh_keys_changed",
            "SSH keys or server configuration changed",
            Severity::High,
            &["attack.persistence", "attack.t1098.004"],
            |e, _| fim_change(e, &["ssh"]),
        ),
        fim_rule(
            "tansa.fim.scheduled_task_changed",
            "Cron job or systemd unit added or changed",
            Severity::High,
            &["attack.persistence", "attack.t1053.003", "attack.t1543.002"],
            |e, _| fim_change(e, &["cron", "systemd"]),
        ),
        fim_rule(
            "tansa.fim.system_binary_changed",
            "System binary replaced, added or removed",
            Severity::Critical,
            &[
                "attack.defense_evasion",
                "attack.t1036.005",
                "attack.persistence",
                "attack.t1554",
            ],
            |e, _| fim_change(e, &["binaries"]),
        ),
        fim_rule(
            "tansa.fim.loader_changed",
            "Dynamic loader preload or PAM configuration changed",
            Severity::Critical,
            &["attack.persistence", "attack.t1574.006", "attack.t1556.003"],
            |e, _| fim_change(e, &["loader"]),
        ),
        fim_rule(
            "tansa.fim.web_shell",
            "Script file created or changed in the web root (web shell)",
            Severity::High,
            &["attack.persistence", "attack.t1505.003"],
            |e, _| {
                fim_change(e, &["web"])
                    && e.action != Some("file_deleted")
                    && e.get_str(Field::intern("file.path")).is_some_and(|p| {
                        let p = p.to_ascii_lowercase();
                        WEB_SCRIPTS.iter().any(|x| p.ends_with(x))
                    })
            },
        ),
        fim_rule(
            "tansa.fim.baseline_altered",
            "File integrity baseline altered outside Tansa",
            Severity::Critical,
            &["attack.defense_evasion", "attack.t1565.001"],
            |e, _| e.dataset == "fim" && e.action == Some("baseline_altered"),
        ),
    ]
}

/// A file integrity change (`tansa fim`) in one area (`accounts`, `ssh`, `binaries`, …).
fn fim_change(e: &Event, areas: &[&str]) -> bool {
    e.dataset == "fim"
        && matches!(
            e.action,
            Some("file_created" | "file_deleted" | "file_modified" | "file_attributes_changed")
        )
        && e.get_str(Field::intern("fim.area"))
            .is_some_and(|a| areas.contains(&&*a))
}

fn fim_rule(
    id: &'static str,
    title: &'static str,
    severity: Severity,
    tags: &'static [&'static str],
    matches: fn(&Event, &Features) -> bool,
) -> Rule {
    Rule {
        key: KeyBy::Host,
        ..web_rule(id, title, severity, tags, matches)
    }
}

/// Script extensions a web server runs: a new one in the web root is a web shell until shown
/// otherwise.
const WEB_SCRIPTS: &[&str] = &[
    ".php", ".phtml", ".php5", ".php7", ".phar", ".jsp", ".jspx", ".asp", ".aspx", ".cgi", ".pl",
    ".py", ".sh",
];

fn web_rule(
    id: &'static str,
    title: &'static str,
    severity: Severity,
    tags: &'static [&'static str],
    matches: fn(&Event, &Features) -> bool,
) -> Rule {
    Rule {
        id,
        title,
        severity,
        tags,
        key: KeyBy::SourceIp,
        window: 60 * MIN,
        condition: Condition::Each,
        matches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use std::sync::Arc;
    use tansa_event::Origin;
    use tansa_parse::{Format, Parser, TimeCtx};

    /// Runs lines through the real parser and the built-in rules; returns the rule ids that fired.
    fn fired(lines: &[String]) -> Vec<&'static str> {
        let mut p = Parser::new(
            Format::Auto,
            Arc::new(Origin::file("/t", "web01")),
            TimeCtx::new(
                jiff::tz::TimeZone::UTC,
                "2026-03-15T00:00:00Z".parse().unwrap(),
            ),
        );
        let mut evs = vec![];
        for (i, l) in lines.iter().enumerate() {
            p.parse_line(
                bytes::Bytes::copy_from_slice(l.as_bytes()),
                i as u64,
                &mut evs,
            );
        }
        p.finish(&mut evs);
        let mut e = Engine::new(rules(), Default::default());
        for ev in &evs {
            e.process(ev);
        }
        let mut ids: Vec<_> = e.finish().iter().map(|a| a.rule_id).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn ssh(sec: u32, msg: &str) -> String {
        format!(
            "Mar 14 10:{:02}:{:02} web01 sshd[{}]: {msg}",
            sec / 60,
            sec % 60,
            1000 + sec
        )
    }

    #[test]
    fn brute_force_then_success_is_critical() {
        let mut l: Vec<String> = (0..14)
            .map(|i| {
                ssh(
                    i,
                    &format!(
                        "Failed password for root from 203.0.113.9 port {} ssh2",
                        40000 + i
                    ),
                )
            })
            .collect();
        l.push(ssh(
            30,
            "Accepted password for root from 203.0.113.9 port 41000 ssh2",
        ));
        let f = fired(&l);
        assert!(f.contains(&"tansa.ssh.brute_force"), "{f:?}");
        assert!(f.contains(&"tansa.auth.success_after_failures"), "{f:?}");
        assert!(f.contains(&"tansa.ssh.root_login"), "{f:?}");
    }

    #[test]
    fn a_user_mistyping_once_is_quiet() {
        let l = vec![
            ssh(0, "Failed password for alice from 10.0.0.5 port 40000 ssh2"),
            ssh(
                5,
                "Accepted password for alice from 10.0.0.5 port 40001 ssh2",
            ),
        ];
        assert!(fired(&l).is_empty());
    }

    #[test]
    fn spraying_and_enumeration() {
        let users = ["admin", "test", "oracle", "ubuntu", "guest", "pi"];
        let l: Vec<String> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                ssh(
                    i as u32,
                    &format!("Invalid user {u} from 198.51.100.4 port 5000"),
                )
            })
            .collect();
        let f = fired(&l);
        assert!(f.contains(&"tansa.ssh.invalid_user_enumeration"), "{f:?}");
        assert!(f.contains(&"tansa.ssh.password_spray"), "{f:?}");
    }

    #[test]
    fn web_attacks_and_benign_requests() {
        let req = |ip: &str, url: &str, ua: &str| {
            format!(
                r#"{ip} - - [14/Mar/2026:10:00:00 +0000] "GET {url} HTTP/1.1" 200 100 "-" "{ua}""#
            )
        };
        let f = fired(&[
            req(
                "203.0.113.7",
                "/products?id=1%27%20UNION%20SELECT%20NULL--",
                "curl/8",
            ),
            req(
                "203.0.113.8",
                "/download?file=../../../../etc/passwd",
                "Mozilla/5.0",
            ),
            req("203.0.113.9", "/.env", "sqlmap/1.8"),
        ]);
        for r in [
            "tansa.web.sql_injection",
            "tansa.web.path_traversal",
            "tansa.web.sensitive_file",
            "tansa.web.scanner",
        ] {
            assert!(f.contains(&r), "{r} missing in {f:?}");
        }
        let quiet = fired(&[
            req(
                "198.51.100.1",
                "/search?q=red+dress&page=2",
                "Mozilla/5.0 (X11; Linux x86_64)",
            ),
            req(
                "198.51.100.1",
                "/static/js/app.8b21e0.js",
                "Mozilla/5.0 (X11; Linux x86_64)",
            ),
        ]);
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn host_rules() {
        let f = fired(&[
            "Mar 14 10:00:00 web01 useradd[900]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash".into(),
            "Mar 14 10:00:01 web01 usermod[901]: add 'backdoor' to group 'sudo'".into(),
            "Mar 14 10:00:02 web01 sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/bash".into(),
        ]);
        for r in [
            "tansa.host.user_created",
            "tansa.host.admin_group",
            "tansa.host.sudo_shell",
        ] {
            assert!(f.contains(&r), "{r} missing in {f:?}");
        }
    }

    #[test]
    fn file_integrity_changes() {
        use tansa_evidence::fim::{change_line, diff, Entry, State};
        let e = |sha: &str, mode: u32| Entry {
            kind: "file".into(),
            sha256: Some(sha.into()),
            size: 10,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1,
            target: None,
        };
        let mut before = State::new();
        for p in [
            "/etc/shadow",
            "/usr/bin/ls",
            "/var/www/html/index.html",
            "/etc/motd",
        ] {
            before.insert(p.into(), e("aa", 0o644));
        }
        let mut after = before.clone();
        after.insert("/etc/shadow".into(), e("bb", 0o644));
        after.insert("/usr/bin/ls".into(), e("cc", 0o755));
        after.insert("/var/www/html/up/x.php".into(), e("dd", 0o644));
        after.insert("/root/.ssh/authorized_keys".into(), e("ee", 0o600));
        after.insert("/etc/cron.d/job".into(), e("ff", 0o644));
        after.insert("/etc/motd".into(), e("aa", 0o600));
        let lines: Vec<String> = diff(&before, &after)
            .iter()
            .map(|c| change_line(c, "web01", Some("/var/www/html"), 1_773_482_400_000_000_000))
            .collect();
        let f = fired(&lines);
        for r in [
            "tansa.fim.account_files_changed",
            "tansa.fim.ssh_keys_changed",
            "tansa.fim.scheduled_task_changed",
            "tansa.fim.system_binary_changed",
            "tansa.fim.web_shell",
        ] {
            assert!(f.contains(&r), "{r} missing in {f:?}");
        }
        // an HTML page in the web root, /etc/motd's mode: recorded, no alert
        assert_eq!(f.len(), 5, "{f:?}");
    }

    #[test]
    fn cloud_audit_rules_fire_on_the_sample_records() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cloud/");
        let mut lines = Vec::new();
        for f in ["cloudtrail.json", "actiontrail.jsonl", "gcp-audit.jsonl"] {
            let text = std::fs::read_to_string(format!("{root}{f}")).unwrap();
            lines.extend(text.lines().map(str::to_owned));
        }
        let f = fired(&lines);
        for r in [
            "tansa.cloud.console_brute_force",
            "tansa.cloud.console_login_after_failures",
            "tansa.cloud.api_denied_burst",
            "tansa.cloud.access_key_created",
            "tansa.cloud.firewall_open_to_world",
            "tansa.cloud.audit_disabled",
        ] {
            assert!(f.contains(&r), "{r} missing in {f:?}");
        }
        assert!(!f.contains(&"tansa.cloud.root_console_login"), "{f:?}");
    }

    #[test]
    fn waf_blocks_are_alerted_and_detections_only_are_not() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/waf/");
        let json = std::fs::read_to_string(format!("{root}modsec_audit.json")).unwrap();
        assert!(fired(&[json.trim().to_owned()]).contains(&"tansa.waf.blocked"));
        // an error-log line of a denial
        let apache = r#"[Sat Mar 14 10:00:05.184201 2026] [security2:error] [pid 1234:tid 140] [client 203.0.113.5:51234] [client 203.0.113.5] ModSecurity: Access denied with code 403 (phase 2). [id "949110"] [msg "Inbound Anomaly Score Exceeded (Total Score: 10)"] [uri "/search.php"] [unique_id "ZfRb1X8AAQEAAC3xbWgAAAAB"]"#;
        assert!(fired(&[apache.to_owned()]).contains(&"tansa.waf.blocked"));
        let warn = apache.replace(
            "Access denied with code 403 (phase 2).",
            "Warning. Pattern match.",
        );
        assert!(!fired(&[warn]).contains(&"tansa.waf.blocked"));
    }

    #[test]
    fn cloud_console_sign_ins_from_two_countries() {
        use std::sync::Arc;
        use tansa_event::IpInfo;
        let line = |c: &str, ip: &str, t: &str| {
            let mut p = Parser::new(
                Format::Auto,
                Arc::new(Origin::file("/t", "h")),
                TimeCtx::new(
                    jiff::tz::TimeZone::UTC,
                    "2026-03-15T00:00:00Z".parse().unwrap(),
                ),
            );
            let mut evs = vec![];
            let l = format!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","userName":"alice"}},"eventTime":"{t}","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"{ip}","responseElements":{{"ConsoleLogin":"Success"}}}}"#
            );
            p.parse_line(bytes::Bytes::from(l), 0, &mut evs);
            let mut ev = evs.pop().unwrap();
            ev.source_info = Some(Arc::new(IpInfo {
                country_iso_code: Some(c.into()),
                ..IpInfo::default()
            }));
            ev
        };
        let mut e = Engine::new(rules(), Default::default());
        e.process(&line("JP", "203.0.113.5", "2026-03-14T01:00:00Z"));
        e.process(&line("JP", "203.0.113.6", "2026-03-14T02:00:00Z"));
        assert!(e
            .finish()
            .iter()
            .all(|a| a.rule_id != "tansa.cloud.console_login_countries"));
        let mut e = Engine::new(rules(), Default::default());
        e.process(&line("JP", "203.0.113.5", "2026-03-14T01:00:00Z"));
        e.process(&line("RU", "198.51.100.9", "2026-03-14T05:00:00Z"));
        assert!(e
            .finish()
            .iter()
            .any(|a| a.rule_id == "tansa.cloud.console_login_countries"));
    }

    #[test]
    fn port_scan() {
        let l: Vec<String> = (0..20)
            .map(|p| format!("Mar 14 10:00:{p:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=45.141.87.12 DST=10.0.0.5 PROTO=TCP SPT=4444 DPT={} SYN", 20 + p))
            .collect();
        assert!(fired(&l).contains(&"tansa.firewall.port_scan"));
    }
}
