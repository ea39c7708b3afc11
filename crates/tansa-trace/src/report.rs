//! The incident report: what happened, when and how it was detected; the timeline (from the
//! traces); the hosts, accounts and data affected; the attacker's profile; the indicators; the
//! actions taken; the evidence and how to check it; recommendations derived from what
//! happened; an abuse complaint for the address's network. In English or Chinese (zh-CN), as
//! Markdown, one self-contained HTML file, or JSON.
//!
//! Last box of the investigate side: `tansa report` gathers a [`Report`] from the store (traces,
//! alerts, decisions and hook actions, enrichment, exports of the evidence log) and
//! [`Report::derive`] computes the rest; the renderers only format. Every string that came
//! from a log is escaped in HTML and fenced or escaped in Markdown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use crate::html::escape;
use crate::{Phase, Role, Trace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Zh,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" => Ok(Lang::En),
            "zh" | "zh-cn" | "zh-hans" | "cn" => Ok(Lang::Zh),
            _ => Err(format!("{s:?}: en or zh")),
        }
    }
}

impl Lang {
    fn t<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}

/// What enrichment knows of one attacker address.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Profile {
    pub address: String,
    pub country: Option<String>,
    pub asn: Option<u64>,
    pub as_org: Option<String>,
    /// `tor`, `hosting`, `vpn`, `scanner`…
    pub flags: Vec<String>,
    pub events: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// A response action: a decision (ban) or a hook run.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub time: String,
    /// `ban`, `unban`, `hook`, `refused`…
    pub kind: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

/// An evidence bundle exported for the incident.
#[derive(Debug, Clone, Serialize)]
pub struct Bundle {
    pub sha256: String,
    pub dir: String,
    pub exported_at: String,
    pub exported_by: String,
    pub lines: u64,
}

/// The case the report is for.
#[derive(Debug, Clone, Serialize)]
pub struct CaseBrief {
    pub id: u64,
    pub title: String,
    pub status: String,
    pub owner: String,
    pub notes: Vec<(String, String, String)>,
}

/// The indicators of compromise.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Iocs {
    pub ips: BTreeSet<String>,
    pub domains: BTreeSet<String>,
    pub urls: BTreeSet<String>,
    pub files: BTreeSet<String>,
    pub hashes: BTreeSet<String>,
    pub users: BTreeSet<String>,
}

/// A recommendation and the fact it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub what: String,
    pub because: String,
}

/// A complaint to the abuse contact of an attacker's network.
#[derive(Debug, Clone, Serialize)]
pub struct Complaint {
    pub address: String,
    pub to: Option<String>,
    pub network: Option<String>,
    pub subject: String,
    pub body: String,
}

/// Everything a report says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub lang: Lang,
    pub title: String,
    /// What it covers: `entity 45.141.87.23`, `case 3`, `since 2026-03-14`.
    pub scope: String,
    pub generated: String,
    pub generated_by: String,
    pub case: Option<CaseBrief>,
    pub traces: Vec<Trace>,
    /// Rule id of each alert id of the traces.
    pub rule_ids: BTreeMap<String, String>,
    pub profiles: Vec<Profile>,
    pub actions: Vec<Action>,
    pub bundles: Vec<Bundle>,
    /// The evidence log's public key (hex).
    pub evidence_key: Option<String>,
    // derived
    pub iocs: Iocs,
    pub recommendations: Vec<Recommendation>,
    pub complaints: Vec<Complaint>,
    /// One paragraph: what happened, when, how it was detected.
    pub summary: String,
}

/// Steps of the timeline shown (the rest are in the traces' JSON).
pub const MAX_STEPS: usize = 300;

fn hex_run(s: &str, min: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            cur.push(c.to_ascii_lowercase());
        } else {
            if [32, 40, 64].contains(&cur.len()) && cur.len() >= min {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    out
}

impl Report {
    fn rules(&self) -> BTreeSet<&str> {
        self.traces
            .iter()
            .flat_map(|t| &t.alerts)
            .filter_map(|a| self.rule_ids.get(&a.id).map(String::as_str))
            .collect()
    }

    fn steps(&self) -> impl Iterator<Item = &crate::Step> {
        self.traces.iter().flat_map(|t| &t.steps)
    }

    /// Fills the indicators, recommendations, complaints and summary from the rest.
    pub fn derive(&mut self) {
        let l = self.lang;
        let mut iocs = Iocs::default();
        for t in &self.traces {
            iocs.ips.extend(t.summary.addresses.iter().cloned());
            iocs.users.extend(t.summary.accounts.iter().cloned());
            for i in &t.indicators {
                let set = match i.kind.as_str() {
                    "ip" => &mut iocs.ips,
                    "domain" => &mut iocs.domains,
                    "url" => &mut iocs.urls,
                    "file" => &mut iocs.files,
                    "user" => &mut iocs.users,
                    _ => continue,
                };
                set.insert(i.value.clone());
            }
            for s in &t.steps {
                if s.source == "fim" {
                    iocs.hashes.extend(hex_run(&s.raw, 64));
                }
                // attacked URLs: web requests a rule fired on
                if s.source.starts_with("http") && !s.rules.is_empty() {
                    if let Some(u) = s.raw.split('"').nth(1).and_then(|r| r.split(' ').nth(1)) {
                        iocs.urls.insert(u.to_owned());
                    }
                }
            }
        }
        self.iocs = iocs;

        let rules = self.rules();
        let any = |prefix: &str| rules.iter().any(|r| r.starts_with(prefix));
        let mut rec = Vec::new();
        let mut add = |what: String, because: String| rec.push(Recommendation { what, because });
        let sessions: Vec<&crate::Session> = self.traces.iter().flat_map(|t| &t.sessions).collect();
        let password_in: Vec<&str> = sessions
            .iter()
            .filter(|s| s.how.contains("password"))
            .map(|s| s.how.as_str())
            .collect();
        let accounts: Vec<String> = sessions
            .iter()
            .filter_map(|s| s.user.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let reached: BTreeSet<&str> = self
            .traces
            .iter()
            .flat_map(|t| &t.summary.hosts_reached)
            .map(String::as_str)
            .collect();
        if !password_in.is_empty() {
            add(
                format!(
                    "{} {}",
                    l.t(
                        "Disable SSH password login (PasswordAuthentication no; keys only) and change the passwords of:",
                        "关闭 SSH 密码登录（PasswordAuthentication no，仅用密钥），并修改以下账号的密码："
                    ),
                    accounts.join(", ")
                ),
                format!(
                    "{} {}",
                    l.t("The attacker got in with a password:", "攻击者通过密码登录成功："),
                    password_in.join("; ")
                ),
            );
        }
        if any("tansa.ssh.") || any("tansa.auth.") {
            add(
                l.t(
                    "Ban repeated login failures automatically (tansa serve with [response]) and allow SSH only from known addresses or a VPN.",
                    "自动封禁反复登录失败的地址（tansa serve 配置 [response]），并仅允许已知地址或 VPN 访问 SSH。",
                )
                .into(),
                l.t("Passwords were guessed from the attacker's addresses (brute force, spraying, enumeration).",
                    "攻击者地址进行了口令猜测（暴力破解、密码喷洒、用户名枚举）。").into(),
            );
        }
        if !reached.is_empty() {
            add(
                format!(
                    "{} {}",
                    l.t(
                        "Treat these hosts as compromised: isolate them, rotate every credential and key on them, rebuild from a trusted image:",
                        "将以下主机视为已失陷：隔离，轮换其上全部凭据和密钥，从可信镜像重建："
                    ),
                    reached.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                l.t("The attacker had a session on them.", "攻击者在这些主机上获得了会话。").into(),
            );
        }
        let changes: Vec<&str> = self
            .traces
            .iter()
            .flat_map(|t| &t.summary.changes)
            .map(String::as_str)
            .collect();
        if !changes.is_empty() || any("tansa.host.user_created") || any("tansa.host.admin_group") {
            add(
                l.t(
                    "Undo the attacker's changes (accounts, groups, sudoers, cron, authorized_keys) and review them on every host the attacker reached.",
                    "撤销攻击者的更改（账号、用户组、sudoers、计划任务、authorized_keys），并在其到达的所有主机上复查。",
                )
                .into(),
                format!("{} {}", l.t("Changed:", "更改："), changes.join("; ")),
            );
        }
        if any("tansa.db.file_access") {
            add(
                l.t(
                    "Revoke the FILE privilege from application database accounts (REVOKE FILE ON *.* FROM …) and set secure_file_priv.",
                    "收回应用数据库账号的 FILE 权限（REVOKE FILE ON *.* FROM …），并设置 secure_file_priv。",
                )
                .into(),
                l.t("The database read or wrote server files (INTO OUTFILE / LOAD_FILE).",
                    "数据库读写了服务器文件（INTO OUTFILE / LOAD_FILE）。").into(),
            );
        }
        let web: Vec<&str> = rules
            .iter()
            .copied()
            .filter(|r| {
                r.starts_with("tansa.web.")
                    && !matches!(
                        *r,
                        "tansa.web.scanner"
                            | "tansa.web.sensitive_file"
                            | "tansa.web.not_found_burst"
                    )
            })
            .collect();
        if !web.is_empty() {
            add(
                l.t(
                    "Fix input handling at the attacked URLs (parameterised queries, output encoding, no shell calls with request data) and put WAF rules in front of them.",
                    "修复被攻击 URL 的输入处理（参数化查询、输出编码、不以请求数据调用 shell），并在其前部署 WAF 规则。",
                )
                .into(),
                format!("{} {}", l.t("Web attacks detected:", "检测到的 Web 攻击："), web.join(", ")),
            );
        }
        if any("tansa.web.sensitive_file") || any("tansa.web.not_found_burst") {
            add(
                l.t(
                    "Deny public access to admin pages and sensitive files (/.env, /.git, backups, phpMyAdmin) at the web server.",
                    "在 Web 服务器上禁止公网访问管理页面和敏感文件（/.env、/.git、备份、phpMyAdmin）。",
                )
                .into(),
                l.t("The attacker probed for exposed admin paths and files.", "攻击者探测了暴露的管理路径和文件。").into(),
            );
        }
        if any("tansa.host.log_tampering") {
            add(
                l.t(
                    "Ship logs off the host as they are written (tansa agent); the evidence log keeps the original lines.",
                    "日志实时发送到主机之外（tansa agent）；证据日志保存原始记录。",
                )
                .into(),
                l.t("Logs or shell history were erased on a reached host.", "已到达主机上的日志或命令历史被清除。").into(),
            );
        }
        if any("tansa.host.download_execute")
            || !self.iocs.urls.iter().all(|u| !u.starts_with("http"))
        {
            add(
                l.t(
                    "Remove downloaded payloads, look for the processes they started, and block the download addresses.",
                    "删除下载的恶意载荷，排查其启动的进程，并封禁下载地址。",
                )
                .into(),
                format!(
                    "{} {}",
                    l.t("Downloads:", "下载："),
                    self.iocs
                        .urls
                        .iter()
                        .filter(|u| u.starts_with("http"))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        let exfil: Vec<&str> = self
            .steps()
            .filter(|s| matches!(s.phase, Phase::Exfiltration | Phase::Collection))
            .map(|s| s.summary.as_str())
            .collect();
        if !exfil.is_empty() {
            add(
                l.t(
                    "Assess which data left (see the timeline), notify the people and authorities the law requires, and change any secret it held.",
                    "评估外泄了哪些数据（见时间线），按法律要求通知相关人员和监管机构，并更换其中包含的密钥口令。",
                )
                .into(),
                exfil.join("; "),
            );
        }
        if any("tansa.fim.") {
            add(
                l.t(
                    "Restore changed system files from packages or a trusted backup (reinstall binaries) and take a new baseline afterwards.",
                    "从软件包或可信备份恢复被改动的系统文件（重装二进制），之后重新建立基线。",
                )
                .into(),
                l.t("File integrity monitoring found changes to key files.", "文件完整性监控发现关键文件被改动。").into(),
            );
        }
        let flagged: Vec<String> = self
            .profiles
            .iter()
            .filter(|p| {
                p.flags
                    .iter()
                    .any(|f| f == "tor" || f == "hosting" || f == "vpn")
            })
            .map(|p| format!("{} ({})", p.address, p.flags.join(", ")))
            .collect();
        if !flagged.is_empty() {
            add(
                l.t(
                    "Consider refusing TOR exits and hosting networks on administrative services.",
                    "考虑在管理类服务上拒绝 TOR 出口和 IDC/云主机网段。",
                )
                .into(),
                flagged.join(", "),
            );
        }
        if rec.is_empty() {
            rec.push(Recommendation {
                what: l
                    .t(
                        "No compromise was seen: keep the bans, and watch the attacker's network.",
                        "未发现失陷：保持封禁，并持续关注攻击者所在网段。",
                    )
                    .into(),
                because: l
                    .t(
                        "Only failed attempts were recorded.",
                        "仅记录到失败的尝试。",
                    )
                    .into(),
            });
        }
        self.recommendations = rec;

        // one complaint per attacker address
        let mut complaints = Vec::new();
        for t in &self.traces {
            for addr in &t.summary.addresses {
                let reg = t.registrations.iter().find(|r| &r.address == addr);
                let steps: Vec<&crate::Step> = t
                    .steps
                    .iter()
                    .filter(|s| s.source_ip.as_deref() == Some(addr) && s.role == Role::Direct)
                    .collect();
                if steps.is_empty() {
                    continue;
                }
                let events: u64 = steps.iter().map(|s| s.count).sum();
                let first = &steps[0].time;
                let last = steps
                    .last()
                    .map(|s| s.last.clone().unwrap_or_else(|| s.time.clone()))
                    .unwrap_or_default();
                let kinds: BTreeSet<&str> = steps.iter().map(|s| s.phase.label()).collect();
                let mut sample = String::new();
                for s in steps.iter().take(5) {
                    let _ = writeln!(sample, "  {} {}", s.time, s.raw);
                }
                let bundle = self.bundles.last().map(|b| b.sha256.clone());
                let subject = format!(
                    "{} {addr} ({first} – {last} UTC)",
                    l.t("Abuse report: attack from", "滥用投诉：来自该地址的攻击")
                );
                let body = match l {
                    Lang::En => format!(
                        "Hello,\n\nthe address {addr}{net} attacked our servers between {first} and {last} (UTC): {events} logged events ({kinds}).\n\nSample log lines (times UTC):\n{sample}\n{bundle}Please investigate this host and stop the activity. We can provide the full, signed log extract on request.\n",
                        net = reg.map(|r| format!(" (network {})", r.network)).unwrap_or_default(),
                        kinds = kinds.iter().copied().collect::<Vec<_>>().join(", "),
                        bundle = bundle.map(|b| format!("The lines are kept as signed evidence (bundle SHA-256 {b}).\n\n")).unwrap_or_default(),
                    ),
                    Lang::Zh => format!(
                        "您好：\n\n地址 {addr}{net} 于 {first} 至 {last}（UTC）期间攻击了我们的服务器，共记录 {events} 条事件（{kinds}）。\n\n日志样例（UTC 时间）：\n{sample}\n{bundle}请调查该主机并制止相关行为。如需完整的签名日志摘录，我们可以提供。\n",
                        net = reg.map(|r| format!("（网段 {}）", r.network)).unwrap_or_default(),
                        kinds = kinds.iter().copied().collect::<Vec<_>>().join("、"),
                        bundle = bundle.map(|b| format!("相关日志已作为签名证据保存（证据包 SHA-256 {b}）。\n\n")).unwrap_or_default(),
                    ),
                };
                complaints.push(Complaint {
                    address: addr.clone(),
                    to: reg.and_then(|r| r.abuse_email.clone()),
                    network: reg.map(|r| r.network.clone()),
                    subject,
                    body,
                });
            }
        }
        self.complaints = complaints;

        // the summary paragraph
        let first = self
            .traces
            .iter()
            .filter_map(|t| t.summary.first_seen.clone())
            .min();
        let last = self
            .traces
            .iter()
            .filter_map(|t| t.summary.last_seen.clone())
            .max();
        let phases: BTreeSet<Phase> = self
            .traces
            .iter()
            .flat_map(|t| t.summary.phases.iter().copied())
            .collect();
        let detected = self
            .traces
            .iter()
            .flat_map(|t| &t.alerts)
            .min_by(|a, b| a.first_seen.cmp(&b.first_seen));
        let events: u64 = self.traces.iter().map(|t| t.summary.events).sum();
        let alerts: usize = self.traces.iter().map(|t| t.alerts.len()).sum();
        let hosts: BTreeSet<&str> = self
            .traces
            .iter()
            .flat_map(|t| &t.summary.hosts_touched)
            .map(String::as_str)
            .collect();
        let attackers: Vec<&str> = self.iocs.ips.iter().map(String::as_str).collect();
        self.summary = match l {
            Lang::En => format!(
                "Between {} and {} (UTC), {} acted against {} host(s) ({}): {} events in the logs, {} alerts. Phases: {}. {}{}",
                first.as_deref().unwrap_or("?"),
                last.as_deref().unwrap_or("?"),
                if attackers.is_empty() { "the attacker".to_owned() } else { attackers.join(", ") },
                hosts.len(),
                hosts.iter().copied().collect::<Vec<_>>().join(", "),
                events,
                alerts,
                phases.iter().map(|p| p.label()).collect::<Vec<_>>().join(" → "),
                detected
                    .map(|a| format!("First detected at {} by the rule \"{}\". ", a.first_seen, a.rule))
                    .unwrap_or_default(),
                if reached.is_empty() {
                    "No session on any host was seen.".to_owned()
                } else {
                    format!("The attacker got a session on {}.", reached.iter().copied().collect::<Vec<_>>().join(", "))
                }
            ),
            Lang::Zh => format!(
                "{} 至 {}（UTC），{} 针对 {} 台主机（{}）发起活动：日志事件 {} 条，告警 {} 条。阶段：{}。{}{}",
                first.as_deref().unwrap_or("?"),
                last.as_deref().unwrap_or("?"),
                if attackers.is_empty() { "攻击者".to_owned() } else { attackers.join("、") },
                hosts.len(),
                hosts.iter().copied().collect::<Vec<_>>().join("、"),
                events,
                alerts,
                phases.iter().map(|p| phase_zh(*p)).collect::<Vec<_>>().join(" → "),
                detected
                    .map(|a| format!("首次检测于 {}，规则「{}」。", a.first_seen, a.rule))
                    .unwrap_or_default(),
                if reached.is_empty() {
                    "未发现攻击者在任何主机上获得会话。".to_owned()
                } else {
                    format!("攻击者在 {} 上获得了会话。", reached.iter().copied().collect::<Vec<_>>().join("、"))
                }
            ),
        };
    }
}

/// A text in both languages.
struct Both(&'static str, &'static str);

impl Both {
    fn get(&self, l: Lang) -> &'static str {
        l.t(self.0, self.1)
    }
}

const NO_BUNDLE: Both = Both(
    "No bundle exported yet: tansa evidence export --entity ADDRESS --out DIR",
    "尚未导出证据包：tansa evidence export --entity 地址 --out 目录",
);
const NO_ABUSE: Both = Both(
    "(abuse contact unknown: tansa whois ADDRESS)",
    "（滥用联系人未知：tansa whois 地址）",
);
const MORE_STEPS: Both = Both(
    "more steps (JSON format has all)",
    "个步骤未列出（JSON 格式包含全部）",
);

/// ATT&CK tactic names as Chinese security teams write them.
pub fn phase_zh(p: Phase) -> &'static str {
    match p {
        Phase::Reconnaissance => "侦察",
        Phase::InitialAccess => "初始访问",
        Phase::Execution => "执行",
        Phase::Persistence => "持久化",
        Phase::PrivilegeEscalation => "权限提升",
        Phase::DefenseEvasion => "防御规避",
        Phase::CredentialAccess => "凭据访问",
        Phase::Discovery => "发现",
        Phase::LateralMovement => "横向移动",
        Phase::Collection => "收集",
        Phase::CommandAndControl => "命令与控制",
        Phase::Exfiltration => "数据外泄",
        Phase::Impact => "影响",
    }
}

fn phase_name(l: Lang, p: Phase) -> &'static str {
    match l {
        Lang::En => p.label(),
        Lang::Zh => phase_zh(p),
    }
}

/// Text for a Markdown table cell or line: no markup, no line breaks, no table pipes.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A fenced block that no line inside can close.
fn fence(s: &str) -> String {
    let mut f = "```".to_owned();
    while s.contains(&f) {
        f.push('`');
    }
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    format!("{f}text\n{clean}\n{f}\n")
}

impl Report {
    /// Section titles, in order: (anchor, English, Chinese).
    const SECTIONS: &'static [(&'static str, &'static str, &'static str)] = &[
        ("summary", "Summary", "概要"),
        ("timeline", "Timeline", "时间线"),
        (
            "affected",
            "Affected hosts, accounts and data",
            "受影响的主机、账号和数据",
        ),
        ("attacker", "Attacker profile", "攻击者画像"),
        ("iocs", "Indicators of compromise", "失陷指标（IOC）"),
        ("actions", "Actions taken", "已采取的处置"),
        ("evidence", "Evidence", "证据"),
        ("recommendations", "Recommendations", "建议"),
        ("abuse", "Abuse complaint", "滥用投诉"),
    ];

    fn title_of(&self, anchor: &str) -> &str {
        let (_, en, zh) = Self::SECTIONS
            .iter()
            .find(|s| s.0 == anchor)
            .expect("a known section");
        self.lang.t(en, zh)
    }

    /// Rows of the affected-things table: (label, values).
    fn affected(&self) -> Vec<(&str, Vec<String>)> {
        let l = self.lang;
        let set = |f: &dyn Fn(&Trace) -> Vec<String>| -> Vec<String> {
            self.traces
                .iter()
                .flat_map(f)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        vec![
            (
                l.t("Hosts reached (sessions)", "已获得会话的主机"),
                set(&|t| t.summary.hosts_reached.clone()),
            ),
            (
                l.t("Hosts touched", "涉及的主机"),
                set(&|t| t.summary.hosts_touched.clone()),
            ),
            (
                l.t("Accounts used", "使用的账号"),
                set(&|t| t.summary.accounts.clone()),
            ),
            (
                l.t("How access was gained", "入侵方式"),
                set(&|t| t.summary.access.clone()),
            ),
            (
                l.t("Changes made", "所做更改"),
                set(&|t| t.summary.changes.clone()),
            ),
            (
                l.t("Data collected or sent out", "被收集或外泄的数据"),
                set(&|t| {
                    t.steps
                        .iter()
                        .filter(|s| matches!(s.phase, Phase::Exfiltration | Phase::Collection))
                        .map(|s| {
                            format!(
                                "{} {}: {}",
                                s.time,
                                s.host.as_deref().unwrap_or("?"),
                                s.summary
                            )
                        })
                        .collect()
                }),
            ),
        ]
    }

    fn ioc_rows(&self) -> Vec<(&str, &BTreeSet<String>)> {
        let l = self.lang;
        vec![
            (l.t("IP addresses", "IP 地址"), &self.iocs.ips),
            (l.t("Domains", "域名"), &self.iocs.domains),
            (l.t("URLs", "URL"), &self.iocs.urls),
            (l.t("Files", "文件"), &self.iocs.files),
            (
                l.t("Hashes (SHA-256)", "哈希（SHA-256）"),
                &self.iocs.hashes,
            ),
            (l.t("User names", "用户名"), &self.iocs.users),
        ]
    }

    /// Every step of the traces in time order, steps the traces share once.
    fn timeline(&self) -> Vec<&crate::Step> {
        let mut steps: Vec<&crate::Step> = self.steps().collect();
        steps.sort_by(|a, b| a.time.cmp(&b.time));
        steps.dedup_by(|a, b| a.time == b.time && a.raw == b.raw);
        steps
    }

    /// Who holds each address and the netblock views, escaped with `esc`.
    fn network_lines(&self, esc: &dyn Fn(&str) -> String) -> Vec<String> {
        let l = self.lang;
        let mut out = Vec::new();
        for t in &self.traces {
            for r in &t.registrations {
                out.push(format!(
                    "{} {}: {} {} ({}), {}: {}",
                    l.t("Network of", "网段归属"),
                    esc(&r.address),
                    esc(&r.network),
                    esc(r.name.as_deref().unwrap_or("")),
                    esc(r.holder.as_deref().unwrap_or("?")),
                    l.t("abuse contact", "滥用联系人"),
                    esc(r.abuse_email.as_deref().unwrap_or("?"))
                ));
            }
            if let Some(nb) = &t.netblock {
                out.push(format!(
                    "{} {}: {}",
                    l.t("Netblock", "网段"),
                    esc(&nb.block),
                    esc(&nb.totals())
                ));
            }
        }
        out
    }

    fn verify_command(&self, b: &Bundle) -> String {
        format!(
            "tansa evidence verify {}{}",
            b.dir,
            self.evidence_key
                .as_ref()
                .map(|k| format!(" --key {k}"))
                .unwrap_or_default()
        )
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let l = self.lang;
        let mut m = String::new();
        let _ = writeln!(m, "# {}\n", md(&self.title));
        let _ = writeln!(
            m,
            "{}: {} · {}: {} · {}: {}\n",
            l.t("Scope", "范围"),
            md(&self.scope),
            l.t("Generated", "生成时间"),
            self.generated,
            l.t("By", "生成者"),
            md(&self.generated_by)
        );
        if let Some(c) = &self.case {
            let _ = writeln!(
                m,
                "{} #{} — {} ({}, {} {})\n",
                l.t("Case", "工单"),
                c.id,
                md(&c.title),
                md(&c.status),
                l.t("owner", "负责人"),
                md(if c.owner.is_empty() { "-" } else { &c.owner })
            );
        }
        let _ = writeln!(
            m,
            "## {}\n\n{}\n",
            self.title_of("summary"),
            md(&self.summary)
        );
        let _ = writeln!(m, "## {}\n", self.title_of("timeline"));
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |\n|---|---|---|---|---|",
            l.t("Time (UTC)", "时间（UTC）"),
            l.t("Host", "主机"),
            l.t("Phase", "阶段"),
            l.t("What", "事件"),
            l.t("Log line", "日志原文")
        );
        let steps = self.timeline();
        for s in steps.iter().take(MAX_STEPS) {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | `{}` |",
                s.time,
                md(s.host.as_deref().unwrap_or("-")),
                phase_name(l, s.phase),
                md(&s.summary),
                s.raw
                    .replace('`', "'")
                    .replace('|', "\\|")
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect::<String>()
            );
        }
        if steps.len() > MAX_STEPS {
            let _ = writeln!(m, "\n… {} {}", steps.len() - MAX_STEPS, MORE_STEPS.get(l));
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("affected"));
        for (k, v) in self.affected() {
            let _ = writeln!(
                m,
                "- **{k}**: {}",
                if v.is_empty() {
                    "-".into()
                } else {
                    v.iter().map(|x| md(x)).collect::<Vec<_>>().join("; ")
                }
            );
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("attacker"));
        for p in &self.profiles {
            let _ = writeln!(
                m,
                "- **{}**: {} {}, AS{} {}, {}: {}, {}: {}",
                md(&p.address),
                l.t("country", "国家/地区"),
                md(p.country.as_deref().unwrap_or("?")),
                p.asn.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
                md(p.as_org.as_deref().unwrap_or("")),
                l.t("flags", "标记"),
                md(&if p.flags.is_empty() {
                    "-".into()
                } else {
                    p.flags.join(", ")
                }),
                l.t("events", "事件数"),
                p.events
            );
        }
        for line in self.network_lines(&md) {
            let _ = writeln!(m, "- {line}");
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("iocs"));
        for (k, v) in self.ioc_rows() {
            if !v.is_empty() {
                let _ = writeln!(
                    m,
                    "- **{k}**: {}",
                    v.iter()
                        .map(|x| format!("`{}`", x.replace('`', "'")))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("actions"));
        if self.actions.is_empty() {
            let _ = writeln!(m, "{}", l.t("None recorded.", "无记录。"));
        }
        for a in &self.actions {
            let _ = writeln!(
                m,
                "- {} {} {} → {} {}",
                a.time,
                md(&a.kind),
                md(&a.target),
                md(&a.outcome),
                md(&a.detail)
            );
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("evidence"));
        if self.bundles.is_empty() {
            let _ = writeln!(m, "{}", NO_BUNDLE.get(l));
        }
        for b in &self.bundles {
            let _ = writeln!(
                m,
                "- {} `{}` ({} {}, {} {}, {} {})\n  {}: `{}`",
                l.t("Bundle", "证据包"),
                md(&b.dir),
                b.lines,
                l.t("lines", "行"),
                l.t("exported", "导出于"),
                b.exported_at,
                l.t("by", "导出人"),
                md(&b.exported_by),
                l.t("SHA-256", "SHA-256"),
                b.sha256
            );
            let _ = writeln!(
                m,
                "  {}: `{}`",
                l.t("Verify", "校验"),
                self.verify_command(b).replace('`', "'")
            );
        }
        if let Some(k) = &self.evidence_key {
            let _ = writeln!(
                m,
                "\n{}: `{k}`",
                l.t(
                    "Evidence signing key (Ed25519, public)",
                    "证据签名公钥（Ed25519）"
                )
            );
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("recommendations"));
        for (i, r) in self.recommendations.iter().enumerate() {
            let _ = writeln!(
                m,
                "{}. {}  \n   _{}_ {}",
                i + 1,
                md(&r.what),
                l.t("Because:", "原因："),
                md(&r.because)
            );
        }
        let _ = writeln!(m, "\n## {}\n", self.title_of("abuse"));
        for c in &self.complaints {
            let _ = writeln!(
                m,
                "**{}** {} — {}: {}\n\n{}: {}\n",
                md(&c.address),
                md(c.network.as_deref().unwrap_or("")),
                l.t("to", "收件人"),
                md(c.to.as_deref().unwrap_or(NO_ABUSE.get(l))),
                l.t("Subject", "主题"),
                md(&c.subject)
            );
            m.push_str(&fence(&c.body));
            m.push('\n');
        }
        m
    }

    /// The report as one self-contained HTML file (inline style, no script, nothing loaded).
    pub fn html(&self) -> String {
        let l = self.lang;
        let e = |s: &str| escape(s);
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
             <title>{}</title><style>{STYLE}</style></head><body><h1 id=\"title\">{}</h1>\
             <p class=\"meta\">{}: {} · {}: {} · {}: {}</p>",
            l.t("en", "zh-CN"),
            e(&self.title),
            e(&self.title),
            l.t("Scope", "范围"),
            e(&self.scope),
            l.t("Generated", "生成时间"),
            e(&self.generated),
            l.t("By", "生成者"),
            e(&self.generated_by)
        );
        let section = |h: &mut String, id: &str| {
            let _ = write!(h, "<h2 id=\"{id}\">{}</h2>", e(self.title_of(id)));
        };
        if let Some(c) = &self.case {
            let _ = write!(
                h,
                "<p id=\"case\">{} #{} — {} ({})</p>",
                l.t("Case", "工单"),
                c.id,
                e(&c.title),
                e(&c.status)
            );
        }
        section(&mut h, "summary");
        let _ = write!(h, "<p class=\"summary\">{}</p>", e(&self.summary));
        section(&mut h, "timeline");
        let _ = write!(
            h,
            "<table class=\"timeline\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            l.t("Time (UTC)", "时间（UTC）"),
            l.t("Host", "主机"),
            l.t("Phase", "阶段"),
            l.t("What", "事件"),
            l.t("Log line", "日志原文")
        );
        let steps = self.timeline();
        for s in steps.iter().take(MAX_STEPS) {
            let _ = write!(
                h,
                "<tr class=\"step\" data-phase=\"{:?}\"><td class=\"time\">{}</td><td>{}</td><td class=\"phase\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
                s.phase,
                e(&s.time),
                e(s.host.as_deref().unwrap_or("-")),
                e(phase_name(l, s.phase)),
                e(&s.summary),
                e(&s.raw)
            );
        }
        h.push_str("</table>");
        if steps.len() > MAX_STEPS {
            let _ = write!(
                h,
                "<p>… {} {}</p>",
                steps.len() - MAX_STEPS,
                MORE_STEPS.get(l)
            );
        }
        section(&mut h, "affected");
        h.push_str("<dl>");
        for (k, v) in self.affected() {
            let _ = write!(
                h,
                "<dt>{}</dt><dd>{}</dd>",
                e(k),
                if v.is_empty() {
                    "-".into()
                } else {
                    v.iter().map(|x| e(x)).collect::<Vec<_>>().join("<br>")
                }
            );
        }
        h.push_str("</dl>");
        section(&mut h, "attacker");
        let _ = write!(
            h,
            "<table class=\"profiles\"><tr><th>{}</th><th>{}</th><th>AS</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            l.t("Address", "地址"),
            l.t("Country", "国家/地区"),
            l.t("Flags", "标记"),
            l.t("Events", "事件数"),
            l.t("First / last seen", "首次 / 最后出现")
        );
        for p in &self.profiles {
            let _ = write!(
                h,
                "<tr class=\"profile\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} — {}</td></tr>",
                e(&p.address),
                e(p.country.as_deref().unwrap_or("?")),
                e(&format!("{} {}", p.asn.map(|a| format!("AS{a}")).unwrap_or_default(), p.as_org.as_deref().unwrap_or(""))),
                e(&p.flags.join(", ")),
                p.events,
                e(p.first_seen.as_deref().unwrap_or("?")),
                e(p.last_seen.as_deref().unwrap_or("?"))
            );
        }
        h.push_str("</table><ul>");
        for line in self.network_lines(&|x: &str| e(x)) {
            let _ = write!(h, "<li>{line}</li>");
        }
        h.push_str("</ul>");
        section(&mut h, "iocs");
        h.push_str("<dl class=\"iocs\">");
        for (k, v) in self.ioc_rows() {
            if !v.is_empty() {
                let _ = write!(
                    h,
                    "<dt>{}</dt><dd>{}</dd>",
                    e(k),
                    v.iter()
                        .map(|x| format!("<code class=\"ioc\">{}</code>", e(x)))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        h.push_str("</dl>");
        section(&mut h, "actions");
        if self.actions.is_empty() {
            let _ = write!(h, "<p>{}</p>", l.t("None recorded.", "无记录。"));
        } else {
            h.push_str("<ul class=\"actions\">");
            for a in &self.actions {
                let _ = write!(
                    h,
                    "<li>{} {} {} → {} {}</li>",
                    e(&a.time),
                    e(&a.kind),
                    e(&a.target),
                    e(&a.outcome),
                    e(&a.detail)
                );
            }
            h.push_str("</ul>");
        }
        section(&mut h, "evidence");
        if self.bundles.is_empty() {
            let _ = write!(h, "<p>{}</p>", NO_BUNDLE.get(l));
        }
        for b in &self.bundles {
            let _ = write!(
                h,
                "<p class=\"bundle\">{} <code>{}</code>: {} {}, SHA-256 <code>{}</code><br>{}: <code>{}</code></p>",
                l.t("Bundle", "证据包"),
                e(&b.dir),
                b.lines,
                l.t("lines", "行"),
                e(&b.sha256),
                l.t("Verify", "校验"),
                e(&self.verify_command(b))
            );
        }
        if let Some(k) = &self.evidence_key {
            let _ = write!(
                h,
                "<p>{}: <code>{}</code></p>",
                l.t(
                    "Evidence signing key (Ed25519, public)",
                    "证据签名公钥（Ed25519）"
                ),
                e(k)
            );
        }
        section(&mut h, "recommendations");
        h.push_str("<ol class=\"recommendations\">");
        for r in &self.recommendations {
            let _ = write!(
                h,
                "<li>{}<br><small>{} {}</small></li>",
                e(&r.what),
                l.t("Because:", "原因："),
                e(&r.because)
            );
        }
        h.push_str("</ol>");
        section(&mut h, "abuse");
        for c in &self.complaints {
            let _ = write!(
                h,
                "<div class=\"complaint\"><p>{}: {}<br>{}: {}</p><pre>{}</pre></div>",
                l.t("To", "收件人"),
                e(c.to.as_deref().unwrap_or(NO_ABUSE.get(l))),
                l.t("Subject", "主题"),
                e(&c.subject),
                e(&c.body)
            );
        }
        h.push_str("</body></html>\n");
        h
    }
}

const STYLE: &str = "body{font:14px/1.5 system-ui,'Noto Sans CJK SC','PingFang SC',sans-serif;margin:2em;color:#111;max-width:80em}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.25em .5em;vertical-align:top;text-align:left}\
td code{white-space:pre-wrap;word-break:break-all;font-size:.85em}.meta{color:#555}dt{font-weight:600}\
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}.time,.phase{white-space:nowrap}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_become_markup() {
        assert_eq!(
            md("a|b <x> [l](u) `c` *e*"),
            "a\\|b \\<x\\> \\[l\\](u) \\`c\\` \\*e\\*"
        );
        assert_eq!(md("line\nbreak"), "line break");
        // a fence longer than any backtick run inside
        let f = fence("x ``` y ```` z");
        assert!(
            f.starts_with("`````text\n") && f.ends_with("\n`````\n"),
            "{f}"
        );
        assert_eq!("zh-CN".parse::<Lang>(), Ok(Lang::Zh));
        assert!("fr".parse::<Lang>().is_err());
        assert_eq!(
            hex_run(&format!("sha {} end", "ab".repeat(32)), 64),
            vec!["ab".repeat(32)]
        );
    }
}
