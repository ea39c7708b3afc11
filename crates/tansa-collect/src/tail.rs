//! Following a log file as it grows, across rotations, from where the last run stopped.
//!
//! A [`Tailer`] watches one path. Each file it reads is an *instance* with its own
//! fingerprint (a file's offsets restart when it is replaced or truncated, so they belong to
//! the instance): the device and inode that identify it while it exists, and a hash of its
//! first bytes that tells a reused inode from the same file after a restart.
//!
//! - **rename and create** (logrotate's default, rsyslog): the path names a new inode; the old
//!   file is read to its end through the open handle, then the new one from its start.
//! - **copytruncate**: the file shrinks below the offset read; what follows is a new instance
//!   read from its start.
//! - **restart**: given the instances recorded before ([`Resume`]), the file at the path
//!   continues at its recorded offset when it is the same instance; a recorded instance that
//!   was rotated away while the server was down is found by its inode in the same directory and
//!   read to its end first.
//!
//! Only whole lines are delivered: a line still being written waits for its newline (a file
//! rotated away with a last unterminated line delivers it).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tansa_event::now_nanos;

use crate::fnv;

/// Bytes of a file's start that identify it.
pub const HEAD: usize = 1024;
/// Polls during which a file rotated away is still read.
pub const DRAIN_POLLS: u32 = 8;
/// Bytes read at a time.
const READ: usize = 256 << 10;

/// What identifies a file instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    /// Bytes of its start hashed into `head_hash` (fewer than [`HEAD`] when the file was
    /// shorter when first seen).
    pub head_len: u32,
    pub head_hash: u64,
}

/// A file instance recorded by an earlier run, and the offset up to which its lines are
/// safely stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub fingerprint: u64,
    pub identity: Identity,
    pub offset: u64,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// A new instance (to record before its lines), or a known instance whose identity now
    /// covers more of its start (recorded again: same fingerprint).
    Opened {
        fingerprint: u64,
        path: PathBuf,
        identity: Identity,
    },
    /// Whole lines of an instance, each with its offset; `next` is the offset after the last.
    Lines {
        fingerprint: u64,
        lines: Vec<(Bytes, u64)>,
        next: u64,
    },
}

struct Open {
    file: File,
    path: PathBuf,
    fingerprint: u64,
    identity: Identity,
    /// Offset of the first byte not yet delivered (the start of `pending`).
    offset: u64,
    /// An unterminated last line.
    pending: Vec<u8>,
}

/// Follows one path.
pub struct Tailer {
    path: PathBuf,
    current: Option<Open>,
    /// Files rotated away, still read for a few polls (a writer may not have reopened yet).
    draining: Vec<(Open, u32)>,
    /// Recorded instances not yet matched to a file.
    resume: Vec<Resume>,
    /// Start new instances found at the first poll at their end (lines written before the
    /// server knew the file are skipped) instead of their start.
    from_end: bool,
    first_poll: bool,
    /// Counter mixed into new fingerprints (two instances of one poll differ).
    seq: u64,
}

impl Open {
    /// A recorded instance, read on from its offset.
    fn resumed(file: File, path: &Path, r: &Resume) -> Open {
        Open {
            file,
            path: path.to_owned(),
            fingerprint: r.fingerprint,
            identity: r.identity,
            offset: r.offset,
            pending: Vec::new(),
        }
    }
}

/// The hash of a file's first `len` bytes (None when it is shorter).
fn head_hash(file: &File, len: usize) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(Some(fnv(&[&buf]))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

impl Tailer {
    pub fn new(path: PathBuf, resume: Vec<Resume>, from_end: bool) -> Tailer {
        Tailer {
            path,
            current: None,
            draining: Vec::new(),
            resume,
            from_end,
            first_poll: true,
            seq: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was added since the last poll, following rotation.
    pub fn poll(&mut self, out: &mut Vec<TailEvent>) -> std::io::Result<()> {
        let first = std::mem::replace(&mut self.first_poll, false);
        for (o, left) in &mut self.draining {
            read_to_end(o, out)?;
            *left = left.saturating_sub(1);
            if *left == 0 {
                // its last line is complete: nobody writes to it any more
                flush_pending(o, out);
            }
        }
        self.draining.retain(|(_, left)| *left > 0);
        if first {
            self.drain_rotated_away(out);
        }
        if let Some(cur) = &mut self.current {
            // truncated or rewritten since the last poll? Asked before and after reading, so
            // that bytes of a rewritten file are never delivered as the old file's.
            let (offset, pending) = (cur.offset, cur.pending.clone());
            let mut read = Vec::new();
            let mut truncated = rewritten(cur)?;
            if !truncated {
                read_to_end(cur, &mut read)?;
                truncated = rewritten(cur)?;
            }
            if truncated {
                (cur.offset, cur.pending) = (offset, pending);
                // copytruncate: what was written since the last poll is in the copy
                if let Some(mut copy) = find_copy(&self.path, cur) {
                    read_to_end(&mut copy, out)?;
                    flush_pending(&mut copy, out);
                }
                // the file starts over: a new instance
                self.current = None;
            } else {
                out.append(&mut read);
                let at_path = match std::fs::metadata(&self.path) {
                    Ok(m) => Some(m),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                };
                match at_path {
                    Some(m) if m.dev() == cur.identity.dev && m.ino() == cur.identity.ino => {
                        grow_identity(&self.path, cur, m.len(), out)?;
                        return Ok(());
                    }
                    _ => {
                        // renamed away (or deleted): read a while longer through the handle
                        if let Some(cur) = self.current.take() {
                            self.draining.push((cur, DRAIN_POLLS));
                        }
                    }
                }
            }
        }
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if meta.is_none() {
            return Ok(());
        }
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let m = file.metadata()?;
        let mut open = match self.take_resume(&mut file, m.dev(), m.ino(), m.len())? {
            Some(r) => Open::resumed(file, &self.path, &r),
            None => {
                self.seq += 1;
                let fingerprint = fnv(&[
                    self.path.as_os_str().as_encoded_bytes(),
                    &m.dev().to_le_bytes(),
                    &m.ino().to_le_bytes(),
                    &now_nanos().to_le_bytes(),
                    &self.seq.to_le_bytes(),
                ]);
                let mut open = Open {
                    file,
                    path: self.path.clone(),
                    fingerprint,
                    identity: Identity {
                        dev: m.dev(),
                        ino: m.ino(),
                        head_len: 0,
                        head_hash: 0,
                    },
                    offset: 0,
                    pending: Vec::new(),
                };
                if first && self.from_end {
                    open.offset = last_line_end(&mut open.file, m.len())?;
                }
                // recorded before its lines; known by its inode alone while empty (read
                // from its start, so a reused inode loses nothing), by its start once
                // written (grow_identity)
                announce(&mut open, out)?;
                open
            }
        };
        read_to_end(&mut open, out)?;
        let len = open.file.metadata()?.len();
        grow_identity(&self.path, &mut open, len, out)?;
        self.current = Some(open);
        Ok(())
    }

    /// The recorded instance that the file at the path is, if any (removed from the list).
    fn take_resume(
        &mut self,
        file: &mut File,
        dev: u64,
        ino: u64,
        len: u64,
    ) -> std::io::Result<Option<Resume>> {
        let mut found = None;
        for (i, r) in self.resume.iter().enumerate() {
            if r.identity.dev != dev || r.identity.ino != ino || len < r.offset {
                continue;
            }
            let same = r.identity.head_len == 0
                || head_hash(file, r.identity.head_len as usize)? == Some(r.identity.head_hash);
            if same {
                found = Some(i);
                break;
            }
        }
        Ok(found.map(|i| self.resume.remove(i)))
    }

    /// At start: recorded instances no longer at the path (renamed away, or copied and
    /// truncated while the server was down) are found in its directory and read to their end.
    fn drain_rotated_away(&mut self, out: &mut Vec<TailEvent>) {
        let mut keep = Vec::new();
        for r in std::mem::take(&mut self.resume) {
            let at_path = std::fs::File::open(&self.path)
                .ok()
                .filter(|f| is_instance(f, &r.identity, r.offset, true));
            if at_path.is_some() {
                keep.push(r);
                continue;
            }
            let Some(file) = find_instance(&self.path, &r.identity, r.offset) else {
                continue;
            };
            let mut open = Open::resumed(file, &self.path, &r);
            if read_to_end(&mut open, out).is_ok() {
                flush_pending(&mut open, out);
            }
        }
        self.resume = keep;
    }
}

/// Whether an open file is the instance `id` read up to `offset`: the same inode (or, for a
/// copy, any other) and the same first bytes, and at least `offset` long.
fn is_instance(f: &File, id: &Identity, offset: u64, same_inode: bool) -> bool {
    let Ok(m) = f.metadata() else {
        return false;
    };
    if m.len() < offset || ((m.dev(), m.ino()) == (id.dev, id.ino)) != same_inode {
        return false;
    }
    if id.head_len == 0 {
        // nothing to compare: only the inode tells
        return same_inode;
    }
    head_hash(f, id.head_len as usize).ok().flatten() == Some(id.head_hash)
}

/// Instance `id` under another name in the directory of `path`: renamed (same inode) or
/// copied (same start, another inode).
fn find_instance(path: &Path, id: &Identity, offset: u64) -> Option<File> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != path)
        .collect();
    for same_inode in [true, false] {
        for p in &files {
            if let Ok(f) = File::open(p) {
                if f.metadata().is_ok_and(|m| m.is_file())
                    && is_instance(&f, id, offset, same_inode)
                {
                    return Some(f);
                }
            }
        }
    }
    None
}

/// Whether the file under an open instance is shorter than what was read of it, or starts
/// with other bytes than it did.
fn rewritten(o: &mut Open) -> std::io::Result<bool> {
    let len = o.file.metadata()?.len();
    if len < o.offset + o.pending.len() as u64 {
        return Ok(true);
    }
    Ok(o.identity.head_len > 0
        && head_hash(&o.file, o.identity.head_len as usize)? != Some(o.identity.head_hash))
}

/// An instance first seen shorter than [`HEAD`] is identified by more of its start once it
/// has grown (announced again, for the store to record).
fn grow_identity(
    path: &Path,
    o: &mut Open,
    len: u64,
    out: &mut Vec<TailEvent>,
) -> std::io::Result<()> {
    let have = o.identity.head_len as usize;
    if have >= HEAD || len as usize <= have {
        return Ok(());
    }
    let n = (len as usize).min(HEAD);
    if let Some(h) = head_hash(&o.file, n)? {
        o.identity.head_len = n as u32;
        o.identity.head_hash = h;
        out.push(TailEvent::Opened {
            fingerprint: o.fingerprint,
            path: path.to_owned(),
            identity: o.identity,
        });
    }
    Ok(())
}

/// The copy copytruncate made of an instance, positioned where reading stopped.
fn find_copy(path: &Path, cur: &Open) -> Option<Open> {
    let file = find_instance(path, &cur.identity, cur.offset)?;
    let r = Resume {
        fingerprint: cur.fingerprint,
        identity: cur.identity,
        offset: cur.offset,
    };
    Some(Open::resumed(file, &cur.path, &r))
}

fn read_to_end(o: &mut Open, out: &mut Vec<TailEvent>) -> std::io::Result<()> {
    let start = o.offset + o.pending.len() as u64;
    o.file.seek(SeekFrom::Start(start))?;
    let mut lines = Vec::new();
    loop {
        let mut buf = std::mem::take(&mut o.pending);
        let had = buf.len();
        buf.resize(had + READ, 0);
        let n = o.file.read(&mut buf[had..])?;
        buf.truncate(had + n);
        if n == 0 {
            o.pending = buf;
            break;
        }
        let data = Bytes::from(buf);
        let mut pos = 0;
        for nl in memchr::memchr_iter(b'\n', &data) {
            lines.push((data.slice(pos..nl), o.offset));
            o.offset += (nl + 1 - pos) as u64;
            pos = nl + 1;
        }
        o.pending = data[pos..].to_vec();
        if lines.len() >= 4096 {
            out.push(TailEvent::Lines {
                fingerprint: o.fingerprint,
                lines: std::mem::take(&mut lines),
                next: o.offset,
            });
        }
    }
    if !lines.is_empty() {
        out.push(TailEvent::Lines {
            fingerprint: o.fingerprint,
            lines,
            next: o.offset,
        });
    }
    Ok(())
}

/// Sends `Opened` for a new instance, identified by its start as it is now.
fn announce(o: &mut Open, out: &mut Vec<TailEvent>) -> std::io::Result<()> {
    let n = (o.file.metadata()?.len() as usize).min(HEAD);
    if let Some(h) = head_hash(&o.file, n)? {
        o.identity.head_len = n as u32;
        o.identity.head_hash = h;
    }
    out.push(TailEvent::Opened {
        fingerprint: o.fingerprint,
        path: o.path.clone(),
        identity: o.identity,
    });
    Ok(())
}

/// Delivers an unterminated last line (the file will not grow any more).
fn flush_pending(o: &mut Open, out: &mut Vec<TailEvent>) {
    if o.pending.is_empty() {
        return;
    }
    let line = Bytes::from(std::mem::take(&mut o.pending));
    let at = o.offset;
    o.offset += line.len() as u64;
    out.push(TailEvent::Lines {
        fingerprint: o.fingerprint,
        lines: vec![(line, at)],
        next: o.offset,
    });
}

/// The offset after the last newline of a file of `len` bytes.
fn last_line_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    let from = len.saturating_sub(64 << 10);
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    file.take(len - from).read_to_end(&mut buf)?;
    Ok(match memchr::memrchr(b'\n', &buf) {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => len,
    })
}
