//! Export bundles: the lines of one entity, alert or case taken out of the evidence log with
//! what proves them — each line's Merkle inclusion proof (RFC 6962/9162) against its
//! segment's signed seal — so that someone without the data directory (a court's expert, an
//! ISP, the police) can check that they are the lines Tansa recorded, unchanged.
//!
//! # Bundle format (`tansa-bundle/1`), a directory
//!
//! ```text
//! lines.jsonl        one JSON object per exported line, in log order:
//!                    seq, segment, index, source, host, offset, time, received (RFC 3339 or
//!                    null), raw (the line, text), body (hex: the exact bytes hashed),
//!                    leaf (hex), proof (hex list, the audit path from the leaf up)
//! seals/seg-N.seal   the signed seals of the segments the lines come from, verbatim
//! key.pub            the Ed25519 public key, hex
//! evidence.pub.pem   the same key for OpenSSL
//! README.txt         how to check the bundle by hand
//! MANIFEST.sha256    `sha256sum` lines for every file above (`sha256sum -c MANIFEST.sha256`)
//! custody.json       the chain-of-custody record: what was exported (selection), by whom,
//!                    on which host, when, with which tool, how many lines, and
//!                    `bundle_sha256` = SHA-256 of MANIFEST.sha256 (the bundle's hash)
//! custody.sig        Ed25519 signature of custody.json's bytes (base64), same key
//! ```
//!
//! A line is genuine when: `leaf = SHA-256(0x00 | body)`; `body` decodes to the line's fields
//! (see the crate docs); the audit path leads from `leaf` at `index` in a tree of the seal's
//! `records` leaves to the seal's `merkle-root`; `seq = first + index`; and the seal's
//! signature holds under the key. The key itself must be compared with a copy kept apart
//! (printed by `tansa init`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{
    decode_body, hex, io, leaf_hash, scan_segment, seal_path, segments, signature_ok, unhex,
    EvidenceError, Hash, Key, Record, Result, Seal,
};

pub const BUNDLE_FORMAT: &str = "tansa-bundle/1";

fn node(l: &Hash, r: &Hash) -> Hash {
    crate::sha256(&[&[1u8], l, r])
}

/// A segment's Merkle tree, level by level (an odd last node is carried up unhashed, which
/// gives RFC 6962's tree): root and audit paths without recomputing subtrees.
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Tree {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("a level");
            let up = below
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        node(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            levels.push(up);
        }
        Tree { levels }
    }

    pub fn size(&self) -> usize {
        self.levels[0].len()
    }

    pub fn root(&self) -> Hash {
        match self.levels.last().and_then(|l| l.first()) {
            Some(h) if self.size() > 0 => *h,
            _ => crate::sha256(&[]),
        }
    }

    /// The audit path of leaf `index` (RFC 9162 §2.1.3.1), from the leaf's sibling up.
    pub fn proof(&self, index: usize) -> Vec<Hash> {
        let mut out = Vec::new();
        let mut m = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(s) = level.get(m ^ 1) {
                out.push(*s);
            }
            m >>= 1;
        }
        out
    }
}

/// Checks an audit path (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut m, mut c, mut r) = (index, size, *leaf);
    let mut path = proof.iter();
    while c > 1 {
        if m ^ 1 < c {
            let Some(p) = path.next() else {
                return false;
            };
            r = if m & 1 == 1 { node(p, &r) } else { node(&r, p) };
        }
        m >>= 1;
        c = c.div_ceil(2);
    }
    path.next().is_none() && r == *root
}

/// Which lines an export takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// What was asked, for the custody record: `entity`, `alert`, `case`…
    pub kind: String,
    pub value: String,
    /// Lines that contain one of these as a whole token (addresses, user names).
    pub tokens: Vec<String>,
    /// Lines by their source and byte offset (an alert's events).
    pub lines: HashSet<(String, u64)>,
}

impl Selection {
    pub fn matches(&self, r: &Record) -> bool {
        self.lines.contains(&(r.source.clone(), r.offset))
            || self
                .tokens
                .iter()
                .any(|t| contains_token(&r.raw, t.as_bytes()))
    }
}

/// Whether `needle` occurs in `hay` not glued to a letter, digit, `.`, `:` or `_` on either
/// side (203.0.113.9 is not in 203.0.113.90).
fn contains_token(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || hay.len() < needle.len() {
        return false;
    }
    let glued = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'_');
    let mut from = 0;
    while let Some(i) = find(&hay[from..], needle) {
        let at = from + i;
        let end = at + needle.len();
        let before = at == 0 || !glued(hay[at - 1]);
        let after = match hay.get(end) {
            None => true,
            Some(&c) if !glued(c) => true,
            // a port after an address (`1.2.3.4:22`), a sentence's full stop
            Some(b':') => !needle.contains(&b':'),
            Some(b'.') => hay.get(end + 1).is_none_or(|c| !c.is_ascii_alphanumeric()),
            Some(_) => false,
        };
        if before && after {
            return true;
        }
        from = at + 1;
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Who exports: for the custody record.
#[derive(Debug, Clone)]
pub struct Custodian {
    pub user: String,
    pub host: String,
    /// RFC 3339.
    pub at: String,
    pub tool: String,
    /// Why (a case reference, a request), free text.
    pub note: Option<String>,
}

impl Custodian {
    /// This process: the login name, the host name, now.
    pub fn here(tool: &str, note: Option<String>) -> Custodian {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        Custodian {
            user: login_name(),
            host,
            at: jiff::Timestamp::now().to_string(),
            tool: tool.to_owned(),
            note,
        }
    }
}

/// Who runs this process: `SUDO_USER`, `USER`, else the name of its uid in /etc/passwd.
pub fn login_name() -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|u| !u.is_empty());
    env("SUDO_USER").or_else(|| env("USER")).unwrap_or_else(|| {
        use std::os::unix::fs::MetadataExt;
        let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
            return "unknown".into();
        };
        std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
                })
            })
            .unwrap_or_else(|| format!("uid {uid}"))
    })
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub dir: PathBuf,
    pub lines: u64,
    pub segments: u64,
    /// Matching lines in the open segment, not exported (no seal yet).
    pub unsealed: u64,
    /// SHA-256 of MANIFEST.sha256.
    pub bundle_sha256: String,
    pub custody: Value,
}

fn rfc3339(nanos: i64) -> Value {
    if nanos == 0 {
        return Value::Null;
    }
    jiff::Timestamp::from_nanosecond(nanos as i128)
        .map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

/// Writes the bundle of `sel`'s lines from the evidence log in `evidence` to `out` (a new or
/// empty directory). Only sealed segments are exported, each checked against its seal first:
/// a segment that does not verify stops the export.
pub fn export(evidence: &Path, sel: &Selection, out: &Path, who: &Custodian) -> Result<Exported> {
    let key = Key::open(evidence)?;
    let public = key.public();
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(EvidenceError::Invalid(format!(
            "{}: not empty (a bundle goes to a new directory)",
            out.display()
        )));
    }
    std::fs::create_dir_all(out.join("seals")).map_err(|e| io(out)(e))?;
    let mut lines_out = Vec::new();
    let (mut lines, mut segs, mut unsealed) = (0u64, 0u64, 0u64);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for n in segments(evidence)? {
        let Some(bytes) = crate::read_segment(evidence, n)? else {
            continue;
        };
        let seal_text = std::fs::read_to_string(seal_path(evidence, n)).ok();
        let Some(seal_text) = seal_text else {
            // the open segment: counted, not exported
            unsealed += records_of(&bytes).filter(|r| sel.matches(r)).count() as u64;
            continue;
        };
        let bad = |what: &str| {
            EvidenceError::Invalid(format!(
                "segment {n} does not verify ({what}); run `tansa verify` — nothing exported from a damaged log"
            ))
        };
        let (seal, signed, sig) = Seal::parse(&seal_text).ok_or_else(|| bad("malformed seal"))?;
        if seal.key != public || !signature_ok(&public, signed.as_bytes(), &sig) {
            return Err(bad("seal signature"));
        }
        let scan = scan_segment(n, &bytes, seal.prev_chain, seal.first);
        if !scan.problems.is_empty() || scan.torn > 0 || scan.records != seal.records {
            return Err(bad("records"));
        }
        let tree = Tree::new(scan.leaves);
        if tree.root() != seal.merkle_root {
            return Err(bad("Merkle root"));
        }
        let mut taken = 0u64;
        for (index, (body, r)) in bodies(&bytes).enumerate() {
            if !sel.matches(&r) {
                continue;
            }
            taken += 1;
            let proof: Vec<String> = tree.proof(index).iter().map(|h| hex(h)).collect();
            let v = json!({
                "seq": r.seq,
                "segment": n,
                "index": index,
                "source": r.source,
                "host": r.host,
                "offset": r.offset,
                "time": rfc3339(r.time),
                "received": rfc3339(r.received),
                "raw": String::from_utf8_lossy(&r.raw),
                "body": hex(body),
                "leaf": hex(&leaf_hash(body)),
                "proof": proof,
            });
            lines_out.extend_from_slice(v.to_string().as_bytes());
            lines_out.push(b'\n');
        }
        if taken > 0 {
            segs += 1;
            lines += taken;
            files.insert(format!("seals/seg-{n:08}.seal"), seal_text.into_bytes());
        }
    }
    files.insert("lines.jsonl".into(), lines_out);
    files.insert("key.pub".into(), format!("{}\n", hex(&public)).into_bytes());
    files.insert(
        "evidence.pub.pem".into(),
        crate::public_pem(&public).into_bytes(),
    );
    files.insert("README.txt".into(), README.as_bytes().to_vec());
    let mut manifest = String::new();
    for (name, bytes) in &files {
        let p = out.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))?;
        manifest.push_str(&format!("{}  {name}\n", hex(&crate::sha256(&[bytes]))));
    }
    let mp = out.join("MANIFEST.sha256");
    std::fs::write(&mp, &manifest).map_err(io(&mp))?;
    let bundle_sha256 = hex(&crate::sha256(&[manifest.as_bytes()]));
    let custody = json!({
        "format": BUNDLE_FORMAT,
        "selection": {"kind": sel.kind, "value": sel.value},
        "exported_by": who.user,
        "host": who.host,
        "exported_at": who.at,
        "tool": who.tool,
        "note": who.note,
        "lines": lines,
        "segments": segs,
        "unsealed_not_exported": unsealed,
        "key": hex(&public),
        "bundle_sha256": bundle_sha256,
    });
    let text = format!("{:#}\n", custody);
    let cp = out.join("custody.json");
    std::fs::write(&cp, &text).map_err(io(&cp))?;
    let sp = out.join("custody.sig");
    use base64::Engine;
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(text.as_bytes()));
    std::fs::write(&sp, format!("{sig}\n")).map_err(io(&sp))?;
    // the data directory keeps its own record of every export
    let log = evidence.join("custody.jsonl");
    let mut entry = custody.clone();
    entry["bundle"] = json!(out.canonicalize().unwrap_or_else(|_| out.to_owned()));
    append_line(&log, &entry.to_string())?;
    Ok(Exported {
        dir: out.to_owned(),
        lines,
        segments: segs,
        unsealed,
        bundle_sha256,
        custody,
    })
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(io(path))
}

/// The exports recorded in an evidence directory (`custody.jsonl`), oldest first.
pub fn exports(evidence: &Path) -> Result<Vec<Value>> {
    let p = evidence.join("custody.jsonl");
    match std::fs::read_to_string(&p) {
        Ok(t) => Ok(t
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(&p)(e)),
    }
}

/// A segment's record bodies with their decoded records (malformed ones skipped: callers
/// verify first).
fn bodies(bytes: &[u8]) -> impl Iterator<Item = (&[u8], Record)> {
    let mut p = crate::HEADER.min(bytes.len());
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(bytes.get(p..p + 4)?.try_into().ok()?) as usize;
        let body = bytes.get(p + 4..p + 4 + len)?;
        bytes.get(p + 4 + len..p + 4 + len + 32)?;
        p += 4 + len + 32;
        Some((body, decode_body(body)?))
    })
}

fn records_of(bytes: &[u8]) -> impl Iterator<Item = Record> + '_ {
    bodies(bytes).map(|(_, r)| r)
}

/// The outcome of checking a bundle.
#[derive(Debug, Default)]
pub struct BundleReport {
    pub lines: u64,
    pub seals: u64,
    pub key: String,
    pub bundle_sha256: String,
    pub custody: Value,
    /// Everything wrong, each with the file (and line) it concerns.
    pub problems: Vec<String>,
}

/// Checks a bundle offline: the custody record's signature and hash, every file against the
/// manifest (and no file beside it), every seal's signature, every line's body, leaf and
/// audit path. `trusted_key` (hex), when given, must be the bundle's key.
pub fn verify_bundle(dir: &Path, trusted_key: Option<&str>) -> Result<BundleReport> {
    let mut r = BundleReport::default();
    let read = |name: &str| std::fs::read(dir.join(name));
    let key_text = read("key.pub").map_err(io(&dir.join("key.pub")))?;
    let key = unhex(&String::from_utf8_lossy(&key_text)).ok_or_else(|| {
        EvidenceError::Invalid(format!(
            "{}: not a public key",
            dir.join("key.pub").display()
        ))
    })?;
    r.key = hex(&key);
    if let Some(t) = trusted_key {
        if unhex(t) != Some(key) {
            r.problems.push(format!(
                "key.pub: the bundle's key {} is not the trusted key {t}",
                r.key
            ));
        }
    }
    // custody: signed, and naming the manifest's hash
    let custody = read("custody.json").unwrap_or_default();
    let sig = read("custody.sig").unwrap_or_default();
    use base64::Engine;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&sig).trim())
        .unwrap_or_default();
    if custody.is_empty() {
        r.problems.push("custody.json: missing".into());
    } else if !signature_ok(&key, &custody, &sig) {
        r.problems
            .push("custody.json: its signature (custody.sig) does not hold".into());
    }
    r.custody = serde_json::from_slice(&custody).unwrap_or(Value::Null);
    let manifest = read("MANIFEST.sha256").unwrap_or_default();
    r.bundle_sha256 = hex(&crate::sha256(&[&manifest]));
    if r.custody["bundle_sha256"].as_str() != Some(r.bundle_sha256.as_str()) {
        r.problems
            .push("MANIFEST.sha256: its SHA-256 is not the custody record's bundle_sha256".into());
    }
    // every file as listed, nothing added
    let mut listed = BTreeSet::new();
    for (i, l) in String::from_utf8_lossy(&manifest).lines().enumerate() {
        let Some((h, name)) = l.split_once("  ") else {
            r.problems
                .push(format!("MANIFEST.sha256 line {}: malformed", i + 1));
            continue;
        };
        listed.insert(name.to_owned());
        if name.contains("..") || name.starts_with('/') {
            r.problems.push(format!(
                "MANIFEST.sha256 line {}: path outside the bundle",
                i + 1
            ));
            continue;
        }
        match read(name) {
            Ok(b) if hex(&crate::sha256(&[&b])) == h => {}
            Ok(_) => r
                .problems
                .push(format!("{name}: differs from its SHA-256 in the manifest")),
            Err(_) => r
                .problems
                .push(format!("{name}: listed in the manifest, missing")),
        }
    }
    for f in walk(dir) {
        let name = f
            .strip_prefix(dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !listed.contains(&name)
            && !matches!(
                name.as_str(),
                "MANIFEST.sha256" | "custody.json" | "custody.sig"
            )
        {
            r.problems
                .push(format!("{name}: not in the manifest (added)"));
        }
    }
    // seals
    let mut seals: BTreeMap<u64, Seal> = BTreeMap::new();
    for name in listed.iter().filter(|n| n.starts_with("seals/")) {
        let text = String::from_utf8_lossy(&read(name).unwrap_or_default()).into_owned();
        match Seal::parse(&text) {
            Some((s, signed, sig))
                if s.key == key && signature_ok(&key, signed.as_bytes(), &sig) =>
            {
                r.seals += 1;
                seals.insert(s.segment, s);
            }
            Some(_) => r.problems.push(format!(
                "{name}: the seal's signature does not hold under key.pub"
            )),
            None => r.problems.push(format!("{name}: malformed seal")),
        }
    }
    // lines
    let lines = read("lines.jsonl").unwrap_or_default();
    for (i, l) in String::from_utf8_lossy(&lines).lines().enumerate() {
        let at = format!("lines.jsonl line {}", i + 1);
        match check_line(l, &seals) {
            Ok(()) => r.lines += 1,
            Err(why) => r.problems.push(format!("{at}: {why}")),
        }
    }
    if r.custody["lines"].as_u64() != Some(r.lines) && r.problems.is_empty() {
        r.problems.push(format!(
            "custody.json: says {} lines, the bundle has {}",
            r.custody["lines"], r.lines
        ));
    }
    Ok(r)
}

fn check_line(l: &str, seals: &BTreeMap<u64, Seal>) -> std::result::Result<(), String> {
    let v: Value = serde_json::from_str(l).map_err(|e| format!("not JSON ({e})"))?;
    let body = v["body"].as_str().and_then(unhex_any).ok_or("no body")?;
    let rec = decode_body(&body).ok_or("the body is not a record")?;
    let leaf = leaf_hash(&body);
    if v["leaf"].as_str() != Some(hex(&leaf).as_str()) {
        return Err("the leaf hash is not the body's".into());
    }
    let same = v["seq"].as_u64() == Some(rec.seq)
        && v["source"].as_str() == Some(rec.source.as_str())
        && v["host"].as_str() == Some(rec.host.as_str())
        && v["offset"].as_u64() == Some(rec.offset)
        && v["raw"].as_str() == Some(String::from_utf8_lossy(&rec.raw).as_ref())
        && v["time"] == rfc3339(rec.time)
        && v["received"] == rfc3339(rec.received);
    if !same {
        return Err("its fields differ from the signed body (altered)".into());
    }
    let seg = v["segment"].as_u64().ok_or("no segment")?;
    let seal = seals
        .get(&seg)
        .ok_or_else(|| format!("segment {seg}'s seal is not in the bundle"))?;
    let index = v["index"].as_u64().ok_or("no index")?;
    if seal.first + index != rec.seq {
        return Err(format!(
            "sequence {} is not at index {index} of segment {seg}",
            rec.seq
        ));
    }
    let proof = v["proof"]
        .as_array()
        .ok_or("no proof")?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(unhex)
                .ok_or("a proof hash is malformed")
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if !verify_inclusion(index, seal.records, &leaf, &proof, &seal.merkle_root) {
        return Err(format!(
            "its inclusion proof does not lead to segment {seg}'s signed Merkle root"
        ));
    }
    Ok(())
}

fn unhex_any(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

const README: &str = "\
Tansa evidence bundle (tansa-bundle/1)

Check it with Tansa:   tansa evidence verify THIS-DIRECTORY [--key HEX]
Check it by hand:

1. The key. Compare key.pub with the key the data directory's owner gave you apart from this
   bundle (printed by `tansa init`). Everything below only proves that this key signed it.
2. The custody record.
     base64 -d custody.sig > /tmp/sig
     openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in custody.json -sigfile /tmp/sig
   custody.json's bundle_sha256 must equal `sha256sum MANIFEST.sha256`.
3. The files.   sha256sum -c MANIFEST.sha256   (and no file besides these, custody.json,
   custody.sig and MANIFEST.sha256).
4. Each seal (seals/seg-N.seal): its last line is `signature BASE64`, over every byte before it.
     head -n -1 seg-N.seal > /tmp/msg; tail -n 1 seg-N.seal | cut -d' ' -f2 | base64 -d > /tmp/sig
     openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in /tmp/msg -sigfile /tmp/sig
5. Each line of lines.jsonl: leaf = SHA-256(0x00 || body bytes); body holds the line's fields
   (big-endian: u64 seq, i64 time ns, i64 received ns, u64 offset, u16+source, u16+host,
   u32+raw); the audit path `proof` leads from leaf at `index` in a tree of the seal's `records`
   leaves to its `merkle-root` (RFC 9162 section 2.1.3.2, node = SHA-256(0x01 || left || right));
   seq = the seal's `first` + index.
";
