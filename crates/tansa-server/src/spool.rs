//! The disk spool: segments of length-framed line records (stream id, offset, time read,
//! path, host, text), appended by one writer and read in order by a sender that remembers
//! its [`Cursor`]. `tansa agent` spools every line it reads before shipping it; the server
//! spools UDP syslog datagrams when its queue is full (a datagram cannot wait).
//!
//! A record: `u32 length | u64 stream | u64 offset | i64 read | u16 path length | path |
//! u16 host length | host | text` (big-endian). A segment cut by a crash in the middle of a
//! record is trimmed to its whole records when it is opened again.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::wire;

/// Bytes of a spool segment before the next is started.
pub const SEGMENT: u64 = 16 << 20;

/// Where the sender is: segment number and byte position in it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub segment: u64,
    pub pos: u64,
}

pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:012}.seg"))
}

/// Segment numbers in the spool, in order.
pub fn segments(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// The length of a segment's whole records (the end of the last one that is complete).
pub fn whole_records(path: &Path) -> std::io::Result<u64> {
    let len = std::fs::metadata(path)?.len();
    let mut r = BufReader::new(File::open(path)?);
    let mut pos = 0u64;
    let mut h = [0u8; 4];
    while pos + 4 <= len {
        r.read_exact(&mut h)?;
        let body = u64::from(u32::from_be_bytes(h));
        if pos + 4 + body > len {
            break;
        }
        r.seek_relative(body as i64)?;
        pos += 4 + body;
    }
    Ok(pos)
}

/// What a line takes in the spool, roughly (for the spool's bound).
pub fn spooled_bytes(text: &[u8]) -> u64 {
    text.len() as u64 + 50
}

/// Appends lines to the spool (one writer: the tail threads share it under a lock).
pub struct SpoolWriter {
    dir: PathBuf,
    segment: u64,
    file: File,
    len: u64,
    /// Records staged in memory (see [`SpoolWriter::stage`]), and how many.
    staged: Vec<u8>,
    staged_records: u64,
}

impl SpoolWriter {
    pub fn open(dir: &Path) -> std::io::Result<SpoolWriter> {
        std::fs::create_dir_all(dir)?;
        let segment = segments(dir).last().copied().unwrap_or(1);
        let path = segment_path(dir, segment);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        // a run killed in the middle of an append leaves part of a record: cut it off, or
        // the records appended after it would be read with the wrong framing
        let len = whole_records(&path)?;
        if len < file.metadata()?.len() {
            file.set_len(len)?;
        }
        Ok(SpoolWriter {
            dir: dir.to_owned(),
            segment,
            file,
            len,
            staged: Vec::new(),
            staged_records: 0,
        })
    }

    /// Appends records to the spool file (written when this returns).
    pub fn append(
        &mut self,
        id: u64,
        path: &str,
        host: &str,
        lines: &[(Bytes, u64)],
        read: i64,
    ) -> std::io::Result<()> {
        self.stage(id, path, host, lines, read);
        self.flush().map(|_| ()).map_err(|(e, _)| e)
    }

    /// Stages records in memory (one write for many: UDP datagrams come one by one);
    /// [`SpoolWriter::flush`] writes them.
    pub fn stage(&mut self, id: u64, path: &str, host: &str, lines: &[(Bytes, u64)], read: i64) {
        let buf = &mut self.staged;
        self.staged_records += lines.len() as u64;
        for (text, off) in lines {
            let body = 8 + 8 + 8 + 2 + path.len() + 2 + host.len() + text.len();
            buf.extend_from_slice(&(body as u32).to_be_bytes());
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&off.to_be_bytes());
            buf.extend_from_slice(&read.to_be_bytes());
            buf.extend_from_slice(&(path.len() as u16).to_be_bytes());
            buf.extend_from_slice(path.as_bytes());
            buf.extend_from_slice(&(host.len() as u16).to_be_bytes());
            buf.extend_from_slice(host.as_bytes());
            buf.extend_from_slice(text);
        }
    }

    /// Bytes staged and not yet written.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Writes the staged records; on failure they are gone, and how many is returned in the
    /// error's place: `Err((error, records lost))`.
    pub fn flush(&mut self) -> Result<u64, (std::io::Error, u64)> {
        if self.staged.is_empty() {
            return Ok(0);
        }
        let n = std::mem::take(&mut self.staged_records);
        let r = self.file.write_all(&self.staged);
        let len = self.staged.len() as u64;
        self.staged.clear();
        if let Err(e) = r {
            // no partial record stays behind (the sender would wait for its end forever)
            let _ = self.file.set_len(self.len);
            return Err((e, n));
        }
        self.len += len;
        self.roll().map_err(|e| (e, 0))?;
        Ok(n)
    }

    /// Starts the next segment once this one is full.
    fn roll(&mut self) -> std::io::Result<()> {
        if self.len >= SEGMENT {
            self.file.sync_data()?;
            self.segment += 1;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, self.segment))?;
            self.len = 0;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// Reads the next batch from `at` (None when nothing is there yet); returns it with the
/// cursor after it.
pub fn read_batch(
    dir: &Path,
    at: Cursor,
    max: usize,
) -> std::io::Result<Option<(wire::Batch, Cursor)>> {
    let mut cur = at;
    let mut streams: Vec<wire::StreamLines> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut n = 0;
    'segments: loop {
        let path = segment_path(dir, cur.segment);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // a later segment? (an empty spool starts at 1)
                match segments(dir).into_iter().find(|&s| s > cur.segment) {
                    Some(s) if n == 0 => {
                        cur = Cursor { segment: s, pos: 0 };
                        continue;
                    }
                    _ => break,
                }
            }
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(cur.pos))?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        while cur.pos + 4 <= len && n < max {
            let mut h = [0u8; 4];
            r.read_exact(&mut h)?;
            let body = u32::from_be_bytes(h) as u64;
            if cur.pos + 4 + body > len {
                break; // being written
            }
            let mut b = vec![0u8; body as usize];
            r.read_exact(&mut b)?;
            cur.pos += 4 + body;
            let id = u64::from_be_bytes(b[0..8].try_into().unwrap_or_default());
            let offset = u64::from_be_bytes(b[8..16].try_into().unwrap_or_default());
            let read = i64::from_be_bytes(b[16..24].try_into().unwrap_or_default());
            let pl = u16::from_be_bytes(b[24..26].try_into().unwrap_or_default()) as usize;
            let path = String::from_utf8_lossy(&b[26..26 + pl]).into_owned();
            let hl =
                u16::from_be_bytes(b[26 + pl..28 + pl].try_into().unwrap_or_default()) as usize;
            let host = String::from_utf8_lossy(&b[28 + pl..28 + pl + hl]).into_owned();
            let text = Bytes::from(b).slice(28 + pl + hl..);
            let i = *index.entry(id).or_insert_with(|| {
                streams.push(wire::StreamLines {
                    id,
                    path,
                    host: Some(host).filter(|h| !h.is_empty()),
                    lines: Vec::new(),
                });
                streams.len() - 1
            });
            streams[i].lines.push(wire::Line { offset, read, text });
            n += 1;
        }
        if n >= max {
            break;
        }
        // the end of this segment: go on in the next one, if it exists
        match segments(dir).into_iter().find(|&s| s > cur.segment) {
            Some(s) if cur.pos >= len => {
                cur = Cursor { segment: s, pos: 0 };
                continue 'segments;
            }
            _ => break,
        }
    }
    Ok((n > 0).then_some((wire::Batch { seq: 0, streams }, cur)))
}

/// Deletes the segments wholly behind `cursor` (not the one being written).
pub fn release(dir: &Path, cursor: Cursor) {
    for s in segments(dir) {
        if s < cursor.segment {
            let _ = std::fs::remove_file(segment_path(dir, s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_cut_by_a_kill_is_dropped_when_the_spool_is_opened_again() {
        let d = std::env::temp_dir().join(format!("tansa-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let lines = |r: std::ops::Range<u64>| -> Vec<(Bytes, u64)> {
            r.map(|i| (Bytes::from(format!("line {i}")), i * 7))
                .collect()
        };
        let mut w = SpoolWriter::open(&d).unwrap();
        w.append(1, "app", "h", &lines(0..3), 0).unwrap();
        drop(w);
        // the kill: a header and part of a body
        let seg = segment_path(&d, 1);
        let whole = std::fs::metadata(&seg).unwrap().len();
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&200u32.to_be_bytes()).unwrap();
        f.write_all(&[7u8; 30]).unwrap();
        drop(f);
        let mut w = SpoolWriter::open(&d).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), whole);
        w.append(1, "app", "h", &lines(3..5), 0).unwrap();
        let (batch, _) = read_batch(&d, Cursor { segment: 1, pos: 0 }, 100)
            .unwrap()
            .unwrap();
        let got: Vec<String> = batch.streams[0]
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.text).into_owned())
            .collect();
        assert_eq!(got, (0..5).map(|i| format!("line {i}")).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&d);
    }
}
