//! The agent protocol (inside mutual TLS): length-prefixed frames.
//!
//! - agent → server: `u32 BE length | zstd(batch)`; a batch is `u64 seq`, `u32 streams`, and
//!   per stream `u64 id | u16 len path | u16 len host (0: none) | u32 lines`, then per line
//!   `u64 offset | i64 read time (ns) | u32 len | bytes`. Binary, so that log lines that are
//!   not UTF-8 arrive byte for byte.
//! - server → agent: `u32 BE length | JSON {"seq": n}` once every line of batch `n` is
//!   committed (or `{"seq": n, "error": "..."}`). The agent forgets a batch only then; a
//!   batch sent again after a lost answer is de-duplicated by offset on the server.

use std::io::{Read, Write};

use bytes::Bytes;

/// Largest frame accepted (compressed), and largest batch once decompressed.
pub const MAX_FRAME: usize = 32 << 20;
pub const MAX_BATCH: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes (at most {MAX_FRAME})")]
    TooLarge(usize),
    #[error("malformed batch: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub offset: u64,
    /// When the agent read it (ns).
    pub read: i64,
    pub text: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLines {
    /// The agent's id of the file instance (stable across its restarts).
    pub id: u64,
    pub path: String,
    pub host: Option<String>,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub seq: u64,
    pub streams: Vec<StreamLines>,
}

impl Batch {
    pub fn lines(&self) -> usize {
        self.streams.iter().map(|s| s.lines.len()).sum()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// The compressed frame payload of a batch.
pub fn encode(b: &Batch) -> Vec<u8> {
    let mut raw = Vec::with_capacity(64 + b.lines() * 96);
    raw.extend_from_slice(&b.seq.to_be_bytes());
    raw.extend_from_slice(&(b.streams.len() as u32).to_be_bytes());
    for s in &b.streams {
        raw.extend_from_slice(&s.id.to_be_bytes());
        put_str(&mut raw, &s.path);
        put_str(&mut raw, s.host.as_deref().unwrap_or(""));
        raw.extend_from_slice(&(s.lines.len() as u32).to_be_bytes());
        for l in &s.lines {
            raw.extend_from_slice(&l.offset.to_be_bytes());
            raw.extend_from_slice(&l.read.to_be_bytes());
            raw.extend_from_slice(&(l.text.len() as u32).to_be_bytes());
            raw.extend_from_slice(&l.text);
        }
    }
    zstd::bulk::compress(&raw, 1).unwrap_or_default()
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or(WireError::Malformed("truncated"))?;
        self.at += n;
        Ok(s)
    }
    fn u16(&mut self) -> Result<usize, WireError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default()) as usize)
    }
    fn u32(&mut self) -> Result<usize, WireError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or_default()) as usize)
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn text(&mut self) -> Result<String, WireError> {
        let n = self.u16()?;
        std::str::from_utf8(self.take(n)?)
            .map(str::to_owned)
            .map_err(|_| WireError::Malformed("a name is not UTF-8"))
    }
}

/// Reads a frame payload back.
pub fn decode(payload: &[u8]) -> Result<Batch, WireError> {
    let raw = zstd::bulk::decompress(payload, MAX_BATCH)
        .map_err(|_| WireError::Malformed("not zstd, or too large"))?;
    let raw = Bytes::from(raw);
    let mut c = Cursor { b: &raw, at: 0 };
    let seq = c.u64()?;
    let n = c.u32()?;
    let mut streams = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let id = c.u64()?;
        let path = c.text()?;
        let host = Some(c.text()?).filter(|h| !h.is_empty());
        let k = c.u32()?;
        let mut lines = Vec::with_capacity(k.min(1 << 16));
        for _ in 0..k {
            let offset = c.u64()?;
            let read = c.u64()? as i64;
            let len = c.u32()?;
            let start = c.at;
            c.take(len)?;
            lines.push(Line {
                offset,
                read,
                text: raw.slice(start..start + len),
            });
        }
        streams.push(StreamLines {
            id,
            path,
            host,
            lines,
        });
    }
    if c.at != raw.len() {
        return Err(WireError::Malformed("bytes after the last stream"));
    }
    Ok(Batch { seq, streams })
}

pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&(payload.len() as u32).to_be_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Takes the first whole frame out of `buf` (bytes read so far), if there is one.
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, WireError> {
    let Some(len) = buf.get(..4) else {
        return Ok(None);
    };
    let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if n > MAX_FRAME {
        return Err(WireError::TooLarge(n));
    }
    if buf.len() < 4 + n {
        return Ok(None);
    }
    let frame = buf[4..4 + n].to_vec();
    buf.drain(..4 + n);
    Ok(Some(frame))
}

/// The next frame; None at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(WireError::TooLarge(n));
    }
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)?;
    Ok(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_byte_for_byte_and_damage_is_refused() {
        let b = Batch {
            seq: 42,
            streams: vec![
                StreamLines {
                    id: 7,
                    path: "/var/log/auth.log".into(),
                    host: Some("web01".into()),
                    lines: vec![
                        Line {
                            offset: 0,
                            read: 5,
                            text: Bytes::from_static(b"plain"),
                        },
                        Line {
                            offset: 6,
                            read: -1,
                            text: Bytes::from_static(b"not \xff utf-8"),
                        },
                    ],
                },
                StreamLines {
                    id: 8,
                    path: "x".into(),
                    host: None,
                    lines: vec![],
                },
            ],
        };
        let e = encode(&b);
        assert_eq!(decode(&e).unwrap(), b);
        let mut framed = Vec::new();
        write_frame(&mut framed, &e).unwrap();
        let mut r = &framed[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), e);
        assert!(read_frame(&mut r).unwrap().is_none());
        assert!(decode(b"garbage").is_err());
        let cut =
            zstd::bulk::compress(&zstd::bulk::decompress(&e, 1 << 20).unwrap()[..30], 1).unwrap();
        assert!(decode(&cut).is_err());
        let mut big = &(u32::MAX.to_be_bytes())[..];
        assert!(matches!(read_frame(&mut big), Err(WireError::TooLarge(_))));
        // frames taken from bytes as they arrive, whatever the split
        let mut twice = framed.clone();
        twice.extend_from_slice(&framed);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in twice.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(f) = take_frame(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, [e.clone(), e]);
        assert!(buf.is_empty());
    }
}
