//! The evidence log: every raw line Tansa ingests, with its source, host, offset, original
//! and received times, appended to segment files, hash-chained record by record, and each
//! segment sealed with an Ed25519-signed Merkle root.
//!
//! Beside the data path: the collectors hand lines to the store *and* to the evidence log;
//! `tansa verify` checks the log, export bundles carry lines with their proofs.
//!
//! # Format (version 1)
//!
//! `DATA/evidence/seg-NNNNNNNN.log`:
//!
//! ```text
//! header  := "TANSAEV1" | u64 segment | [32] prev_chain
//! record  := u32 len | body (len bytes) | [32] chain
//! body    := u64 seq | i64 time | i64 received | u64 offset
//!            | u16 n | source (n) | u16 n | host (n) | u32 n | raw (n)
//! leaf    := SHA-256(0x00 | body)                       (RFC 6962 leaf hash)
//! chain   := SHA-256(previous chain | leaf)             (the header's prev_chain first)
//! ```
//!
//! Integers are big-endian; times are Unix nanoseconds (0: unknown). `seq` counts records
//! across segments from 1. `prev_chain` is the last chain value of the segment before (32
//! zero bytes for the first), so segments are chained too.
//!
//! Once sealed, a segment may be replaced by `seg-NNNNNNNN.log.zst` (zstd; `Limits::compress`,
//! the server's and `tansa analyze`'s default): the seal describes the uncompressed bytes,
//! which `zstd -d` gives back.
//!
//! `DATA/evidence/seg-NNNNNNNN.seal`, written when the segment is closed (size, age, the end
//! of a run, or the recovery after a crash): text lines `tansa-evidence/1`, `segment N`,
//! `first SEQ`, `records N`, `bytes N`, `file-sha256 HEX`, `prev-chain HEX`, `chain HEX`,
//! `merkle-root HEX` (RFC 6962 tree hash of the leaves), `sealed-at RFC3339`, optionally
//! `set-aside N` (bytes of a torn tail moved to `seg-N.torn` at recovery), `key HEX`, and last
//! `signature BASE64`: Ed25519 over every byte before that line. With standard tools:
//! `head -n -1 seal > msg; tail -n 1 seal | cut -d' ' -f2 | base64 -d > sig;
//! openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in msg -sigfile sig`.
//!
//! # Invariants
//!
//! - Append only: a record is never rewritten; a sealed segment is never opened for writing.
//! - Every record carries the chain value up to it: a changed, missing, added or moved record
//!   is found at its position (its chain or its sequence number disagrees) — unless the whole
//!   rest was recomputed, which the signed seal (chain head, Merkle root, file hash, count)
//!   then refuses.
//! - The private key (`key.pk8`, mode 0600) never leaves the data directory; `key.pub` and
//!   `evidence.pub.pem` are what others verify with.
//! - A crash leaves at most a torn last record in the open segment: at the next open it is
//!   moved aside (`seg-N.torn`), the seal says how many bytes, and `verify` reports it. Any
//!   other damage to an open segment is not sealed over: the segment is set aside whole
//!   (`seg-N.damaged`) and reported.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}: the evidence log is being written by another tansa process (a running `tansa serve` or `tansa analyze`)")]
    Busy(PathBuf),
}

pub type Result<T> = std::result::Result<T, EvidenceError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_owned(),
        source,
    }
}

const MAGIC: &[u8; 8] = b"TANSAEV1";
const HEADER: usize = 8 + 8 + 32;
pub const FORMAT: &str = "tansa-evidence/1";

/// One line as ingested.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line<'a> {
    pub source: &'a str,
    pub host: Option<&'a str>,
    pub offset: u64,
    /// The line's own time (0: unknown).
    pub time: i64,
    /// When Tansa read it.
    pub received: i64,
    pub raw: &'a [u8],
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub time: i64,
    pub received: i64,
    pub offset: u64,
    pub source: String,
    pub host: String,
    pub raw: Vec<u8>,
}

pub fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Hash> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// RFC 6962 leaf hash.
pub fn leaf_hash(body: &[u8]) -> Hash {
    sha256(&[&[0u8], body])
}

/// RFC 6962 Merkle tree hash of leaf hashes.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = split(n);
            sha256(&[
                &[1u8],
                &merkle_root(&leaves[..k]),
                &merkle_root(&leaves[k..]),
            ])
        }
    }
}

/// The largest power of two below `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn encode_body(seq: u64, l: &Line) -> Vec<u8> {
    let host = l.host.unwrap_or("");
    let src = &l.source.as_bytes()[..l.source.len().min(u16::MAX as usize)];
    let host = &host.as_bytes()[..host.len().min(u16::MAX as usize)];
    let mut b = Vec::with_capacity(40 + src.len() + host.len() + l.raw.len());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&l.time.to_be_bytes());
    b.extend_from_slice(&l.received.to_be_bytes());
    b.extend_from_slice(&l.offset.to_be_bytes());
    b.extend_from_slice(&(src.len() as u16).to_be_bytes());
    b.extend_from_slice(src);
    b.extend_from_slice(&(host.len() as u16).to_be_bytes());
    b.extend_from_slice(host);
    b.extend_from_slice(&(l.raw.len() as u32).to_be_bytes());
    b.extend_from_slice(l.raw);
    b
}

/// Parses a record body (None: malformed).
pub fn decode_body(b: &[u8]) -> Option<Record> {
    let mut p = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(p..p + n)?;
        p += n;
        Some(s)
    };
    let u64_ = |s: &[u8]| u64::from_be_bytes(s.try_into().unwrap_or([0; 8]));
    let seq = u64_(take(8)?);
    let time = u64_(take(8)?) as i64;
    let received = u64_(take(8)?) as i64;
    let offset = u64_(take(8)?);
    let n = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
    let source = String::from_utf8_lossy(take(n)?).into_owned();
    let n = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
    let host = String::from_utf8_lossy(take(n)?).into_owned();
    let n = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
    let raw = take(n)?.to_vec();
    (p == b.len()).then_some(Record {
        seq,
        time,
        received,
        offset,
        source,
        host,
        raw,
    })
}

/// The signing key of a data directory.
pub struct Key {
    pair: ring::signature::Ed25519KeyPair,
}

impl Key {
    /// Loads `dir/key.pk8` (an error when there is none: `tansa init` creates it).
    pub fn open(dir: &Path) -> Result<Key> {
        let path = dir.join("key.pk8");
        if !path.exists() {
            return Err(EvidenceError::Key(format!(
                "{}: no signing key (run `tansa init`)",
                path.display()
            )));
        }
        Key::open_or_create(dir)
    }

    /// Loads `dir/key.pk8`, creating it (mode 0600) and the public files when there is none.
    pub fn open_or_create(dir: &Path) -> Result<Key> {
        let path = dir.join("key.pk8");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|e| EvidenceError::Key(format!("generating a key: {e}")))?;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io(&path))?;
                f.write_all(doc.as_ref()).map_err(io(&path))?;
                f.sync_all().map_err(io(&path))?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|e| EvidenceError::Key(format!("{}: {e}", path.display())))?;
        let k = Key { pair };
        let public = k.public();
        for (name, text) in [
            ("key.pub", format!("{}\n", hex(&public))),
            ("evidence.pub.pem", public_pem(&public)),
        ] {
            let p = dir.join(name);
            if std::fs::read_to_string(&p).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&p, text).map_err(io(&p))?;
            }
        }
        Ok(k)
    }

    pub fn public(&self) -> Hash {
        use ring::signature::KeyPair;
        self.pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes")
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }
}

/// The public key as PEM (SubjectPublicKeyInfo), for OpenSSL.
pub fn public_pem(public: &Hash) -> String {
    use base64::Engine;
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(public);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// Whether `sig` is `public`'s Ed25519 signature of `msg`.
pub fn signature_ok(public: &Hash, msg: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(msg, sig)
        .is_ok()
}

pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("seg-{n:08}.log"))
}

pub fn seal_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("seg-{n:08}.seal"))
}

/// A sealed segment compressed with zstd (`Limits::compress`): the seal's `bytes` and
/// `file-sha256` are those of the uncompressed file, which `zstd -d` gives back.
pub fn compressed_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("seg-{n:08}.log.zst"))
}

/// A segment's bytes: the plain file, else the compressed one decompressed. A compressed
/// file that does not decompress reads as empty bytes (which `verify` then reports).
pub fn read_segment(dir: &Path, n: u64) -> Result<Option<Vec<u8>>> {
    let plain = segment_path(dir, n);
    match std::fs::read(&plain) {
        Ok(b) => return Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&plain)(e)),
    }
    let z = compressed_path(dir, n);
    match std::fs::read(&z) {
        Ok(b) => Ok(Some(zstd::stream::decode_all(&b[..]).unwrap_or_default())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&z)(e)),
    }
}

/// Replaces a sealed segment by its zstd-compressed copy (written and synced under a
/// temporary name first: a crash leaves the plain file, or both).
fn compress_segment(dir: &Path, n: u64) -> Result<()> {
    let plain = segment_path(dir, n);
    let bytes = std::fs::read(&plain).map_err(io(&plain))?;
    let z = compressed_path(dir, n);
    let tmp = z.with_extension("zst.tmp");
    let packed = zstd::stream::encode_all(&bytes[..], 3).map_err(io(&plain))?;
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&packed).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &z).map_err(io(&z))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    std::fs::remove_file(&plain).map_err(io(&plain))
}

/// Segment numbers present (a `.log` or a `.seal`), ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = std::collections::BTreeSet::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    for e in rd {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("seg-")
            .and_then(|r| {
                r.strip_suffix(".log")
                    .or_else(|| r.strip_suffix(".seal"))
                    .or_else(|| r.strip_suffix(".log.zst"))
            })
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.insert(n);
        }
    }
    Ok(out.into_iter().collect())
}

/// The fields of a seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub segment: u64,
    pub first: u64,
    pub records: u64,
    pub bytes: u64,
    pub file_sha256: Hash,
    pub prev_chain: Hash,
    pub chain: Hash,
    pub merkle_root: Hash,
    pub sealed_at: String,
    pub set_aside: u64,
    pub key: Hash,
}

impl Seal {
    /// The signed text (every line before `signature`).
    pub fn text(&self) -> String {
        let mut s = format!(
            "{FORMAT}\nsegment {}\nfirst {}\nrecords {}\nbytes {}\nfile-sha256 {}\nprev-chain {}\nchain {}\nmerkle-root {}\nsealed-at {}\n",
            self.segment,
            self.first,
            self.records,
            self.bytes,
            hex(&self.file_sha256),
            hex(&self.prev_chain),
            hex(&self.chain),
            hex(&self.merkle_root),
            self.sealed_at
        );
        if self.set_aside > 0 {
            s.push_str(&format!("set-aside {}\n", self.set_aside));
        }
        s.push_str(&format!("key {}\n", hex(&self.key)));
        s
    }

    /// Parses a seal file: the seal, the signed text and the signature (None: malformed).
    pub fn parse(file: &str) -> Option<(Seal, &str, Vec<u8>)> {
        use base64::Engine;
        let at = file.rfind("signature ")?;
        if at > 0 && !file[..at].ends_with('\n') {
            return None;
        }
        let signed = &file[..at];
        let sig = base64::engine::general_purpose::STANDARD
            .decode(file[at + 10..].trim())
            .ok()?;
        let mut lines = signed.lines();
        if lines.next()? != FORMAT {
            return None;
        }
        let mut s = Seal {
            segment: 0,
            first: 0,
            records: 0,
            bytes: 0,
            file_sha256: [0; 32],
            prev_chain: [0; 32],
            chain: [0; 32],
            merkle_root: [0; 32],
            sealed_at: String::new(),
            set_aside: 0,
            key: [0; 32],
        };
        let mut seen = 0u32;
        for l in lines {
            let (k, v) = l.split_once(' ')?;
            let bit = match k {
                "segment" => {
                    s.segment = v.parse().ok()?;
                    1
                }
                "first" => {
                    s.first = v.parse().ok()?;
                    2
                }
                "records" => {
                    s.records = v.parse().ok()?;
                    4
                }
                "bytes" => {
                    s.bytes = v.parse().ok()?;
                    8
                }
                "file-sha256" => {
                    s.file_sha256 = unhex(v)?;
                    16
                }
                "prev-chain" => {
                    s.prev_chain = unhex(v)?;
                    32
                }
                "chain" => {
                    s.chain = unhex(v)?;
                    64
                }
                "merkle-root" => {
                    s.merkle_root = unhex(v)?;
                    128
                }
                "sealed-at" => {
                    s.sealed_at = v.to_owned();
                    256
                }
                "set-aside" => {
                    s.set_aside = v.parse().ok()?;
                    0
                }
                "key" => {
                    s.key = unhex(v)?;
                    512
                }
                _ => return None,
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
        }
        (seen == 1023 && s.text() == signed).then_some((s, signed, sig))
    }
}

/// When a segment is sealed and the next begun.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    /// Nanoseconds.
    pub max_age: i64,
    /// Compress segments with zstd once sealed.
    pub compress: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 20,
            max_age: 3600 * 1_000_000_000,
            compress: false,
        }
    }
}

struct Open {
    n: u64,
    file: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
    first: u64,
    prev_chain: Hash,
    leaves: Vec<Hash>,
    opened: i64,
    set_aside: u64,
}

/// The writer of a data directory's evidence log.
pub struct EvidenceLog {
    dir: PathBuf,
    key: Key,
    limits: Limits,
    next_seq: u64,
    next_segment: u64,
    chain: Hash,
    open: Option<Open>,
    /// Set aside at recovery, for `Open::set_aside` of the recovered segment's seal.
    pending_set_aside: u64,
    /// A second directory (another disk, a WORM or append-only mount) sealed segments are
    /// copied to, with the public key.
    copy_to: Option<PathBuf>,
    /// Held while the log is open: one writer per directory.
    _lock: File,
}

/// What opening the log found (a crash's torn tail, a damaged open segment).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    pub notes: Vec<String>,
}

impl EvidenceLog {
    /// Opens the log of `dir` (created with its key when new). An open segment left by a
    /// crash is checked, its torn tail set aside, and sealed.
    pub fn open(dir: &Path, limits: Limits, now: i64) -> Result<(EvidenceLog, Recovery)> {
        let key = Key::open_or_create(dir)?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(EvidenceError::Busy(dir.into())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let mut log = EvidenceLog {
            dir: dir.to_owned(),
            key,
            limits,
            next_seq: 1,
            next_segment: 1,
            chain: [0; 32],
            open: None,
            pending_set_aside: 0,
            copy_to: None,
            _lock: lock,
        };
        let mut rec = Recovery::default();
        let segs = segments(dir)?;
        let Some(&last) = segs.last() else {
            return Ok((log, rec));
        };
        let seal_file = seal_path(dir, last);
        if let Ok(t) = std::fs::read_to_string(&seal_file) {
            let (s, _, _) = Seal::parse(&t).ok_or_else(|| {
                EvidenceError::Invalid(format!(
                    "{}: not a seal (run `tansa verify`)",
                    seal_file.display()
                ))
            })?;
            log.next_seq = s.first + s.records;
            log.next_segment = last + 1;
            log.chain = s.chain;
            return Ok((log, rec));
        }
        // the last segment was never sealed: a crash
        let path = segment_path(dir, last);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let (prev_chain, first) = if last == 1 {
            ([0u8; 32], 1)
        } else {
            let t = std::fs::read_to_string(seal_path(dir, last - 1)).unwrap_or_default();
            let (s, _, _) = Seal::parse(&t).ok_or_else(|| {
                EvidenceError::Invalid(format!(
                    "segment {} has no valid seal (run `tansa verify`)",
                    last - 1
                ))
            })?;
            (s.chain, s.first + s.records)
        };
        let scan = scan_segment(last, &bytes, prev_chain, first);
        if !scan.problems.is_empty() {
            // not a torn tail: damage this log will not seal over
            let aside = dir.join(format!("seg-{last:08}.damaged"));
            std::fs::rename(&path, &aside).map_err(io(&path))?;
            rec.notes.push(format!(
                "segment {last} was damaged ({}); set aside as {} and not sealed",
                scan.problems[0].what,
                aside.display()
            ));
            log.next_segment = last + 1;
            log.chain = prev_chain;
            log.next_seq = first;
            return Ok((log, rec));
        }
        if scan.torn > 0 {
            let keep = bytes.len() - scan.torn;
            let aside = dir.join(format!("seg-{last:08}.torn"));
            std::fs::write(&aside, &bytes[keep..]).map_err(io(&aside))?;
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            f.set_len(keep as u64).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
            rec.notes.push(format!(
                "segment {last}: a torn last record ({} bytes, after record {}) set aside as {}",
                scan.torn,
                scan.records,
                aside.display()
            ));
            log.pending_set_aside = scan.torn as u64;
        }
        let kept = &bytes[..bytes.len() - scan.torn];
        log.chain = scan.chain;
        log.next_seq = first + scan.records;
        log.next_segment = last + 1;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut hasher = Sha256::new();
        hasher.update(kept);
        log.open = Some(Open {
            n: last,
            file: BufWriter::new(file),
            hasher,
            bytes: kept.len() as u64,
            first,
            prev_chain,
            leaves: scan.leaves,
            opened: now,
            set_aside: std::mem::take(&mut log.pending_set_aside),
        });
        log.seal(now)?;
        rec.notes
            .push(format!("segment {last}: sealed at recovery"));
        Ok((log, rec))
    }

    pub fn public_key(&self) -> Hash {
        self.key.public()
    }

    /// Copies every segment sealed from now on (and the public key) to `dir` as well;
    /// segments sealed before and not there yet are copied now.
    pub fn copy_sealed_to(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for name in ["key.pub", "evidence.pub.pem"] {
            let to = dir.join(name);
            std::fs::copy(self.dir.join(name), &to).map_err(io(&to))?;
        }
        self.copy_to = Some(dir.to_owned());
        for n in segments(&self.dir)? {
            let sealed = seal_path(&self.dir, n).exists();
            if sealed && !seal_path(dir, n).exists() {
                self.copy(n)?;
            }
        }
        Ok(())
    }

    /// The segment first, its seal last: a copy with a seal is whole.
    fn copy(&self, n: u64) -> Result<()> {
        let Some(to) = &self.copy_to else {
            return Ok(());
        };
        let data = if segment_path(&self.dir, n).exists() {
            (segment_path(&self.dir, n), segment_path(to, n))
        } else {
            (compressed_path(&self.dir, n), compressed_path(to, n))
        };
        for (from, dest) in [data, (seal_path(&self.dir, n), seal_path(to, n))] {
            std::fs::copy(&from, &dest).map_err(io(&dest))?;
            File::open(&dest)
                .and_then(|f| f.sync_all())
                .map_err(io(&dest))?;
        }
        Ok(())
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn start(&mut self, now: i64) -> Result<&mut Open> {
        if self.open.is_none() {
            let n = self.next_segment;
            let path = segment_path(&self.dir, n);
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io(&path))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&n.to_be_bytes());
            header.extend_from_slice(&self.chain);
            w.write_all(&header).map_err(io(&path))?;
            let mut hasher = Sha256::new();
            hasher.update(&header);
            self.next_segment += 1;
            self.open = Some(Open {
                n,
                file: w,
                hasher,
                bytes: HEADER as u64,
                first: self.next_seq,
                prev_chain: self.chain,
                leaves: Vec::new(),
                opened: now,
                set_aside: 0,
            });
        }
        Ok(self.open.as_mut().expect("just opened"))
    }

    /// Appends a line; its sequence number. Seals the segment when it is full or old.
    pub fn append(&mut self, l: &Line, now: i64) -> Result<u64> {
        let seq = self.next_seq;
        let body = encode_body(seq, l);
        let leaf = leaf_hash(&body);
        let chain = sha256(&[&self.chain, &leaf]);
        let dir = self.dir.clone();
        let limits = self.limits;
        let o = self.start(now)?;
        let len = (body.len() as u32).to_be_bytes();
        for part in [&len[..], &body, &chain] {
            o.file.write_all(part).map_err(io(&dir))?;
            o.hasher.update(part);
        }
        o.bytes += (4 + body.len() + 32) as u64;
        o.leaves.push(leaf);
        let full = o.bytes >= limits.max_bytes || now - o.opened >= limits.max_age;
        self.chain = chain;
        self.next_seq += 1;
        if full {
            self.seal(now)?;
        }
        Ok(seq)
    }

    /// Appends the lines of parsed events (what the server and `tansa analyze` ingest) and
    /// syncs them to disk.
    pub fn append_events(&mut self, events: &[tansa_event::Event], now: i64) -> Result<()> {
        for e in events {
            let host = e.host_name();
            self.append(
                &Line {
                    source: &e.origin.path,
                    host: host.as_deref(),
                    offset: e.offset,
                    time: e.timestamp,
                    received: e.ingested,
                    raw: e.raw.as_bytes(),
                },
                now,
            )?;
        }
        self.flush()
    }

    /// Writes what is buffered and syncs it to disk.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(o) = self.open.as_mut() {
            let path = segment_path(&self.dir, o.n);
            o.file.flush().map_err(io(&path))?;
            o.file.get_ref().sync_data().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Seals the open segment (if any): its signed seal is written, the next append begins
    /// a new segment.
    pub fn seal(&mut self, now: i64) -> Result<Option<Seal>> {
        let Some(mut o) = self.open.take() else {
            return Ok(None);
        };
        let path = segment_path(&self.dir, o.n);
        o.file.flush().map_err(io(&path))?;
        o.file.get_ref().sync_all().map_err(io(&path))?;
        let seal = Seal {
            segment: o.n,
            first: o.first,
            records: o.leaves.len() as u64,
            bytes: o.bytes,
            file_sha256: o.hasher.finalize().into(),
            prev_chain: o.prev_chain,
            chain: self.chain,
            merkle_root: merkle_root(&o.leaves),
            sealed_at: jiff::Timestamp::from_nanosecond(now as i128)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            set_aside: o.set_aside,
            key: self.key.public(),
        };
        use base64::Engine;
        let text = seal.text();
        let sig = self.key.sign(text.as_bytes());
        let file = format!(
            "{text}signature {}\n",
            base64::engine::general_purpose::STANDARD.encode(sig)
        );
        let sp = seal_path(&self.dir, o.n);
        let tmp = sp.with_extension("seal.tmp");
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(file.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &sp).map_err(io(&sp))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        if self.limits.compress {
            compress_segment(&self.dir, o.n)?;
        }
        self.copy(o.n)?;
        Ok(Some(seal))
    }
}

/// One finding of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub segment: u64,
    /// The record's position in its segment (0-based), when one is to blame.
    pub record: Option<u64>,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.record {
            Some(r) => write!(f, "segment {} record {}: {}", self.segment, r, self.what),
            None => write!(f, "segment {}: {}", self.segment, self.what),
        }
    }
}

/// What a scan of one segment's bytes found.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: u64,
    pub chain: Hash,
    pub leaves: Vec<Hash>,
    /// Bytes at the end that do not make a whole record.
    pub torn: usize,
    pub problems: Vec<Problem>,
}

/// Reads a segment's records: every chain link and sequence number checked, every problem
/// located.
pub fn scan_segment(n: u64, bytes: &[u8], prev_chain: Hash, first: u64) -> Scan {
    let mut s = Scan {
        chain: prev_chain,
        ..Scan::default()
    };
    let problem = |record: Option<u64>, what: String| Problem {
        segment: n,
        record,
        what,
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        s.problems
            .push(problem(None, "not an evidence segment (header)".into()));
        return s;
    }
    let num = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if num != n {
        s.problems.push(problem(
            None,
            format!("the header says segment {num} (segments renamed or moved)"),
        ));
    }
    if bytes[16..48] != prev_chain {
        s.problems.push(problem(
            None,
            "does not follow the segment before (a segment removed, replaced or altered)".into(),
        ));
    }
    let mut p = HEADER;
    let mut chain = prev_chain;
    while p < bytes.len() {
        let k = s.records;
        let Some(len) = bytes.get(p..p + 4) else {
            s.torn = bytes.len() - p;
            break;
        };
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let end = p + 4 + len + 32;
        if end > bytes.len() {
            s.torn = bytes.len() - p;
            break;
        }
        let body = &bytes[p + 4..p + 4 + len];
        let stored: Hash = bytes[p + 4 + len..end].try_into().expect("32 bytes");
        let leaf = leaf_hash(body);
        let computed = sha256(&[&chain, &leaf]);
        match decode_body(body) {
            None => s.problems.push(problem(
                Some(k),
                "malformed record (its length or fields were altered)".into(),
            )),
            Some(r) if r.seq != first + k => s.problems.push(problem(
                Some(k),
                format!(
                    "sequence {} where {} belongs (records deleted, inserted or reordered)",
                    r.seq,
                    first + k
                ),
            )),
            Some(_) if computed != stored => s.problems.push(problem(
                Some(k),
                "content does not match its chain hash (modified)".into(),
            )),
            Some(_) => {}
        }
        // go on from the stored link: later records are judged on their own
        chain = stored;
        s.leaves.push(leaf);
        s.records += 1;
        p = end;
    }
    s.chain = chain;
    s
}

/// The outcome of `tansa verify`.
#[derive(Debug, Default)]
pub struct Report {
    pub segments: u64,
    pub records: u64,
    /// The open (unsealed) last segment, if any: checked link by link, not yet signed.
    pub open_segment: Option<u64>,
    pub problems: Vec<Problem>,
    /// Recorded events that are not tampering (a crash's torn tail set aside).
    pub notes: Vec<String>,
    pub key: Option<Hash>,
}

/// Checks one segment against its seal (if sealed) and the state the previous one left;
/// returns the chain and next sequence number to carry on with.
#[allow(clippy::too_many_arguments)]
pub fn verify_segment(
    n: u64,
    bytes: Option<&[u8]>,
    seal: Option<&str>,
    prev_chain: Hash,
    first: u64,
    key: &Hash,
    is_last: bool,
    report: &mut Report,
) -> (Hash, u64) {
    let problem = |record: Option<u64>, what: String| Problem {
        segment: n,
        record,
        what,
    };
    let parsed = seal.map(Seal::parse);
    let seal = match parsed {
        Some(Some((s, signed, sig))) => {
            if s.key != *key {
                report
                    .problems
                    .push(problem(None, "sealed with another key".into()));
            } else if !signature_ok(key, signed.as_bytes(), &sig) {
                report.problems.push(problem(
                    None,
                    "the seal's signature is not valid (seal altered)".into(),
                ));
            }
            if s.segment != n {
                report.problems.push(problem(
                    None,
                    format!("the seal is segment {}'s", s.segment),
                ));
            }
            Some(s)
        }
        Some(None) => {
            report
                .problems
                .push(problem(None, "the seal is malformed (seal altered)".into()));
            None
        }
        None => None,
    };
    let Some(bytes) = bytes else {
        report.problems.push(problem(
            None,
            "the segment file is missing (deleted)".into(),
        ));
        return seal.map_or((prev_chain, first), |s| (s.chain, s.first + s.records));
    };
    let scan = scan_segment(n, bytes, prev_chain, first);
    report.problems.extend(scan.problems.iter().cloned());
    report.records += scan.records;
    report.segments += 1;
    match &seal {
        Some(s) => {
            if scan.torn > 0 {
                report.problems.push(problem(
                    Some(scan.records),
                    format!("{} bytes after the last whole record (appended to or truncated inside a record)", scan.torn),
                ));
            }
            if scan.records != s.records {
                report.problems.push(problem(
                    Some(scan.records.min(s.records)),
                    format!(
                        "{} records where the seal says {} ({})",
                        scan.records,
                        s.records,
                        if scan.records < s.records {
                            "records removed or the segment truncated"
                        } else {
                            "records added"
                        }
                    ),
                ));
            }
            if s.first != first {
                report.problems.push(problem(
                    None,
                    format!(
                        "the seal begins at sequence {} where {first} belongs",
                        s.first
                    ),
                ));
            }
            if s.prev_chain != prev_chain {
                report.problems.push(problem(
                    None,
                    "the seal does not follow the segment before".into(),
                ));
            }
            if bytes.len() as u64 != s.bytes || sha256(&[bytes]) != s.file_sha256 {
                report.problems.push(problem(
                    None,
                    "the file differs from its sealed SHA-256".into(),
                ));
            }
            if scan.chain != s.chain || merkle_root(&scan.leaves) != s.merkle_root {
                report.problems.push(problem(
                    None,
                    "the chain head or Merkle root differs from the seal (records rewritten)"
                        .into(),
                ));
            }
            if s.set_aside > 0 {
                report.notes.push(format!(
                    "segment {n}: {} bytes of a torn last record were set aside at recovery after a crash",
                    s.set_aside
                ));
            }
            // carry on from what was signed
            (s.chain, s.first + s.records)
        }
        None if is_last => {
            report.open_segment = Some(n);
            if scan.torn > 0 {
                report.notes.push(format!(
                    "segment {n} (open): {} bytes of a record being written (or torn by a crash)",
                    scan.torn
                ));
            }
            (scan.chain, first + scan.records)
        }
        None => {
            report
                .problems
                .push(problem(None, "has no seal (its seal was deleted)".into()));
            (scan.chain, first + scan.records)
        }
    }
}

/// A segment's file and seal (either may be missing).
pub type Loaded = (Option<Vec<u8>>, Option<String>);

/// Verifies segments `segs` (ascending) with `load` giving each one's bytes and seal.
pub fn verify_segments(
    key: &Hash,
    segs: &[u64],
    mut load: impl FnMut(u64) -> Result<Loaded>,
) -> Result<Report> {
    let mut report = Report {
        key: Some(*key),
        ..Report::default()
    };
    let mut chain = [0u8; 32];
    let mut next = 1u64;
    let mut expected = 1u64;
    for (i, &n) in segs.iter().enumerate() {
        while expected < n {
            report.problems.push(Problem {
                segment: expected,
                record: None,
                what: "missing (segment and seal deleted)".into(),
            });
            expected += 1;
        }
        let (bytes, seal) = load(n)?;
        (chain, next) = verify_segment(
            n,
            bytes.as_deref(),
            seal.as_deref(),
            chain,
            next,
            key,
            i + 1 == segs.len(),
            &mut report,
        );
        expected = n + 1;
    }
    Ok(report)
}

/// Verifies the evidence log of `dir`: every segment, link, seal and signature.
pub fn verify(dir: &Path) -> Result<Report> {
    let pubfile = dir.join("key.pub");
    let key = std::fs::read_to_string(&pubfile)
        .ok()
        .and_then(|t| unhex(&t))
        .ok_or_else(|| {
            EvidenceError::Invalid(format!(
                "{}: no public key (is this a Tansa data directory's evidence/?)",
                pubfile.display()
            ))
        })?;
    let read = |p: PathBuf| -> Result<Option<Vec<u8>>> {
        match File::open(&p) {
            Ok(mut f) => {
                let mut b = Vec::new();
                f.read_to_end(&mut b).map_err(io(&p))?;
                Ok(Some(b))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        }
    };
    let mut report = verify_segments(&key, &segments(dir)?, |n| {
        Ok((
            read_segment(dir, n)?,
            read(seal_path(dir, n))?.map(|b| String::from_utf8_lossy(&b).into_owned()),
        ))
    })?;
    for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("seg-")
            .and_then(|r| r.strip_suffix(".damaged"))
        {
            report.problems.push(Problem {
                segment: n.parse().unwrap_or(0),
                record: None,
                what: format!("{name}: an open segment found damaged at recovery, set aside"),
            });
        }
    }
    Ok(report)
}

pub mod bundle;
pub mod fim;

#[cfg(test)]
mod tests;
