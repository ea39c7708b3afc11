//! File integrity monitoring: the SHA-256, size, mode, owner and mtime of key files (account
//! databases, sudoers, SSH keys and configuration, cron, systemd units, system binaries, the
//! web root) recorded as a baseline, and every later difference reported.
//!
//! Beside the data path, feeding it: the baseline and every change are written as ECS JSON
//! lines to `DATA/fim/baseline.log` and `DATA/fim/changes.log`, which Tansa ingests like any
//! log — so they are stored, searchable, covered by the evidence log, and run through
//! detection (the built-in `tansa.fim.*` rules). `DATA/fim/baseline.json` is the working copy
//! the checks compare with; its SHA-256 is in `baseline.log`, and a check whose baseline no
//! longer has that hash reports it (a baseline edited to hide a change).
//!
//! A change is reported once: `observed.json` keeps the state last reported, so a server
//! checking every few minutes does not repeat itself; a new baseline (`tansa fim baseline`)
//! accepts the current state.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{hex, io, EvidenceError, Result};

/// What is watched without configuration (missing ones are skipped).
pub const DEFAULT_PATHS: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/root/.ssh",
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/ld.so.preload",
    "/etc/hosts",
    "/etc/pam.d",
    "/usr/bin",
    "/usr/sbin",
];

/// The default paths, each home's `.ssh/authorized_keys`, and the web root when given.
pub fn default_paths(web_root: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
    if let Ok(rd) = std::fs::read_dir("/home") {
        let mut homes: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path().join(".ssh/authorized_keys"))
            .collect();
        homes.sort();
        out.extend(homes);
    }
    out.extend(web_root.map(Path::to_owned));
    out
}

/// What a path falls under: decides which rule an alert comes from. Matched on the path's
/// end, so that a container's or a mounted system's root (`/srv/rootfs/etc/shadow`) counts too.
pub fn area(path: &str, web_root: Option<&str>) -> &'static str {
    let under = |p: &str| path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/')));
    // `dir` anywhere as a directory of the path, or `file` as its end
    let in_dir = |d: &str| path.contains(&format!("{d}/"));
    let is = |f: &str| path.ends_with(f);
    if web_root.is_some_and(under) {
        "web"
    } else if ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"]
        .iter()
        .any(|f| is(f))
    {
        "accounts"
    } else if is("/etc/sudoers") || in_dir("/etc/sudoers.d") {
        "sudo"
    } else if in_dir("/etc/ssh") || in_dir("/.ssh") || is("/.ssh") || is("/etc/ssh") {
        "ssh"
    } else if in_dir("/etc/cron.d")
        || in_dir("/etc/cron.hourly")
        || in_dir("/etc/cron.daily")
        || in_dir("/etc/cron.weekly")
        || in_dir("/etc/cron.monthly")
        || in_dir("/var/spool/cron")
        || is("/etc/crontab")
    {
        "cron"
    } else if in_dir("/systemd/system") {
        "systemd"
    } else if is("/etc/ld.so.preload") || in_dir("/etc/pam.d") {
        "loader"
    } else if [
        "/usr/bin",
        "/usr/sbin",
        "/bin",
        "/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ]
    .iter()
    .any(|d| in_dir(d))
    {
        "binaries"
    } else {
        "other"
    }
}

/// One file's recorded state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `file`, `dir`, `symlink`, `other`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Unix seconds.
    pub mtime: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
}

pub type State = BTreeMap<String, Entry>;

/// Files beyond this many are not scanned (reported): a misconfigured path must not hash a
/// whole disk.
pub const MAX_FILES: usize = 200_000;

fn entry(path: &Path, md: &std::fs::Metadata) -> Entry {
    use std::os::unix::fs::MetadataExt;
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else {
        "other"
    };
    let sha256 = ft.is_file().then(|| hash_file(path)).flatten();
    Entry {
        kind: kind.into(),
        sha256,
        size: if ft.is_file() { md.size() } else { 0 },
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: md.mtime(),
        target: ft
            .is_symlink()
            .then(|| std::fs::read_link(path).ok())
            .flatten()
            .map(|t| t.to_string_lossy().into_owned()),
    }
}

fn hash_file(path: &Path) -> Option<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(hex(&h.finalize()))
}

/// The state of `paths` (directories walked, symbolic links not followed; missing paths left
/// out), and what could not be read.
pub fn scan(paths: &[PathBuf]) -> (State, Vec<String>) {
    let mut state = State::new();
    let mut errors = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(p) = stack.pop() {
        if state.len() >= MAX_FILES {
            errors.push(format!("more than {MAX_FILES} files: the rest not scanned"));
            break;
        }
        let md = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        if md.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    let mut kids: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                    kids.sort();
                    stack.extend(kids.into_iter().rev());
                }
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
        state.insert(p.to_string_lossy().into_owned(), entry(&p, &md));
    }
    (state, errors)
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    /// `file_created`, `file_deleted`, `file_modified` (content), `file_attributes_changed`.
    pub action: String,
    /// What differs: `sha256`, `size`, `mode`, `owner`, `mtime`, `kind`, `target`.
    pub changed: Vec<String>,
    pub before: Option<Entry>,
    pub after: Option<Entry>,
}

/// The differences from `base` to `now`, in path order.
pub fn diff(base: &State, now: &State) -> Vec<Change> {
    let mut out = Vec::new();
    for (p, b) in base {
        match now.get(p) {
            None => out.push(Change {
                path: p.clone(),
                action: "file_deleted".into(),
                changed: vec![],
                before: Some(b.clone()),
                after: None,
            }),
            Some(a) if a != b => {
                let mut changed = Vec::new();
                for (name, differs) in [
                    ("kind", a.kind != b.kind),
                    ("sha256", a.sha256 != b.sha256),
                    ("size", a.size != b.size),
                    ("mode", a.mode != b.mode),
                    ("owner", a.uid != b.uid || a.gid != b.gid),
                    ("target", a.target != b.target),
                    ("mtime", a.mtime != b.mtime),
                ] {
                    if differs {
                        changed.push(name.to_owned());
                    }
                }
                // a directory's mtime moves with every entry added or removed: those are
                // reported themselves
                if a.kind == "dir" && changed == ["mtime"] {
                    continue;
                }
                let content = changed
                    .iter()
                    .any(|c| matches!(c.as_str(), "kind" | "sha256" | "size" | "target"));
                out.push(Change {
                    path: p.clone(),
                    action: if content {
                        "file_modified"
                    } else {
                        "file_attributes_changed"
                    }
                    .into(),
                    changed,
                    before: Some(b.clone()),
                    after: Some(a.clone()),
                });
            }
            Some(_) => {}
        }
    }
    for (p, a) in now {
        if !base.contains_key(p) {
            out.push(Change {
                path: p.clone(),
                action: "file_created".into(),
                changed: vec![],
                before: None,
                after: Some(a.clone()),
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn file_json(e: &Entry) -> serde_json::Value {
    json!({
        "type": e.kind, "hash": {"sha256": e.sha256}, "size": e.size,
        "mode": format!("{:04o}", e.mode), "uid": e.uid, "gid": e.gid,
        "mtime": rfc3339(e.mtime.saturating_mul(1_000_000_000)), "target": e.target,
    })
}

/// A change as an ECS JSON line (what `changes.log` holds).
pub fn change_line(c: &Change, host: &str, web_root: Option<&str>, now: i64) -> String {
    let cur = c.after.as_ref().or(c.before.as_ref());
    let mut file = cur.map(file_json).unwrap_or_else(|| json!({}));
    file["path"] = json!(c.path);
    let area = area(&c.path, web_root);
    json!({
        "@timestamp": rfc3339(now),
        "event": {"module": "fim", "dataset": "fim", "kind": "event", "category": "file",
                  "type": "change", "action": c.action, "outcome": "success"},
        "host": {"name": host},
        "file": file,
        "fim": {"area": area, "changed": c.changed,
                "before": c.before.as_ref().map(file_json)},
        "message": format!("{} {} ({area}{})", c.action, c.path,
            if c.changed.is_empty() { String::new() } else { format!(": {}", c.changed.join(", ")) }),
    })
    .to_string()
}

/// The baseline file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// RFC 3339.
    pub taken: String,
    pub host: String,
    pub paths: Vec<PathBuf>,
    pub web_root: Option<PathBuf>,
    pub entries: State,
}

/// The FIM files of a data directory.
pub struct Fim {
    dir: PathBuf,
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Every difference from the baseline.
    pub changes: Vec<Change>,
    /// How many of them were not reported before (written to changes.log now).
    pub new: usize,
    pub files: usize,
    pub errors: Vec<String>,
    /// The baseline file no longer has the hash recorded when it was taken.
    pub baseline_altered: bool,
}

impl Fim {
    pub fn new(data: &Path) -> Fim {
        Fim {
            dir: data.join("fim"),
        }
    }

    pub fn baseline_path(&self) -> PathBuf {
        self.dir.join("baseline.json")
    }
    pub fn baseline_log(&self) -> PathBuf {
        self.dir.join("baseline.log")
    }
    pub fn changes_log(&self) -> PathBuf {
        self.dir.join("changes.log")
    }

    pub fn load(&self) -> Result<Option<Baseline>> {
        let p = self.baseline_path();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| EvidenceError::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// Records the state of `paths` as the baseline (replacing any before) and writes it to
    /// `baseline.log`; returns it and what could not be read.
    pub fn take(
        &self,
        paths: &[PathBuf],
        web_root: Option<&Path>,
        host: &str,
        now: i64,
    ) -> Result<(Baseline, Vec<String>)> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let (entries, errors) = scan(paths);
        let b = Baseline {
            taken: rfc3339(now),
            host: host.to_owned(),
            paths: paths.to_vec(),
            web_root: web_root.map(Path::to_owned),
            entries,
        };
        let text =
            serde_json::to_vec_pretty(&b).map_err(|e| EvidenceError::Invalid(e.to_string()))?;
        let p = self.baseline_path();
        write_atomic(&p, &text)?;
        let wr = web_root.map(|w| w.to_string_lossy().into_owned());
        let mut lines = String::new();
        for (path, e) in &b.entries {
            let mut file = file_json(e);
            file["path"] = json!(path);
            lines.push_str(
                &json!({
                    "@timestamp": b.taken, "host": {"name": host},
                    "event": {"module": "fim", "dataset": "fim", "kind": "state", "category": "file",
                              "type": "info", "action": "file_baseline", "outcome": "success"},
                    "file": file, "fim": {"area": area(path, wr.as_deref())},
                })
                .to_string(),
            );
            lines.push('\n');
        }
        lines.push_str(
            &json!({
                "@timestamp": b.taken, "host": {"name": host},
                "event": {"module": "fim", "dataset": "fim", "kind": "state", "category": "file",
                          "type": "info", "action": "baseline_taken", "outcome": "success"},
                "fim": {"files": b.entries.len(), "baseline_sha256": hex(&crate::sha256(&[&text]))},
                "message": format!("file integrity baseline of {} files", b.entries.len()),
            })
            .to_string(),
        );
        lines.push('\n');
        append(&self.baseline_log(), &lines)?;
        // the accepted state is the baseline
        let _ = std::fs::remove_file(self.dir.join("observed.json"));
        let _ = std::fs::remove_file(self.dir.join("altered.sha256"));
        Ok((b, errors))
    }

    /// Compares the current state with the baseline; changes not reported before are
    /// appended to `changes.log`. None: no baseline yet.
    pub fn check(&self, host: &str, now: i64) -> Result<Option<Checked>> {
        let Some(base) = self.load()? else {
            return Ok(None);
        };
        let (state, errors) = scan(&base.paths);
        let wr = base
            .web_root
            .as_ref()
            .map(|w| w.to_string_lossy().into_owned());
        let mut out = Checked {
            changes: diff(&base.entries, &state),
            files: state.len(),
            errors,
            ..Checked::default()
        };
        // the baseline's own hash, as recorded when it was taken
        let text = std::fs::read(self.baseline_path()).map_err(io(&self.baseline_path()))?;
        let now_hash = hex(&crate::sha256(&[&text]));
        let recorded = std::fs::read_to_string(self.baseline_log())
            .unwrap_or_default()
            .lines()
            .rev()
            .find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["fim"]["baseline_sha256"].as_str().map(str::to_owned)
            });
        out.baseline_altered = recorded.as_deref() != Some(now_hash.as_str());
        let observed_path = self.dir.join("observed.json");
        let observed: State = std::fs::read(&observed_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| base.entries.clone());
        let fresh = diff(&observed, &state);
        let mut lines = String::new();
        // an altered baseline is reported once per altered content
        let altered_mark = self.dir.join("altered.sha256");
        if out.baseline_altered
            && std::fs::read_to_string(&altered_mark).ok().as_deref() != Some(now_hash.as_str())
        {
            lines.push_str(
                &json!({
                    "@timestamp": rfc3339(now), "host": {"name": host},
                    "event": {"module": "fim", "dataset": "fim", "kind": "event", "category": "file",
                              "type": "change", "action": "baseline_altered", "outcome": "success"},
                    "file": {"path": self.baseline_path()},
                    "fim": {"area": "tansa", "baseline_sha256": recorded,
                            "baseline_sha256_now": now_hash},
                    "message": "the file integrity baseline differs from the one recorded when it was taken",
                })
                .to_string(),
            );
            lines.push('\n');
        }
        for c in &fresh {
            lines.push_str(&change_line(c, host, wr.as_deref(), now));
            lines.push('\n');
        }
        out.new = fresh.len();
        if !lines.is_empty() {
            append(&self.changes_log(), &lines)?;
        }
        if out.baseline_altered {
            // after the report is written: a failed write reports it again next time
            write_atomic(&altered_mark, now_hash.as_bytes())?;
        }
        if !fresh.is_empty() {
            let b =
                serde_json::to_vec(&state).map_err(|e| EvidenceError::Invalid(e.to_string()))?;
            write_atomic(&observed_path, &b)?;
        }
        Ok(Some(out))
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(io(path))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
