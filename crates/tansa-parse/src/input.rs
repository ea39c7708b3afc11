//! Framing: files and directories to lines with byte offsets.
//!
//! Files are read in large chunks; each chunk is one reference-counted buffer ([`Bytes`]) and
//! every line is a slice of it, so framing allocates once per chunk, not per line. Compressed
//! files are recognised by their magic bytes (gzip, zstd), whatever their name. Offsets are
//! positions in the decompressed stream.
//!
//! Directory layout: a directory whose subdirectories hold logs is read as a central syslog
//! server lays them out (`/var/log/remote/<host>/…`): each subdirectory's name is the host
//! name of the files below it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

/// Errors of reading inputs.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
}

/// Compression of a stream, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Opens a file, decompressing it transparently.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
    let io_err = |source| InputError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut head = [0u8; 4];
    let n = read_up_to(&mut f, &mut head).map_err(io_err)?;
    let head_reader = io::Cursor::new(head[..n].to_vec()).chain(f);
    Ok(match Compression::sniff(&head[..n]) {
        Compression::None => Box::new(head_reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(head_reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(head_reader).map_err(io_err)?)
        }
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A block of whole lines and the stream offset of its first byte.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub data: Bytes,
    pub offset: u64,
}

impl Chunk {
    /// The chunk's lines (without `\n`) with their stream offsets.
    pub fn lines(&self) -> impl Iterator<Item = (Bytes, u64)> + '_ {
        let mut pos = 0usize;
        std::iter::from_fn(move || {
            if pos >= self.data.len() {
                return None;
            }
            let end = memchr::memchr(b'\n', &self.data[pos..]).map_or(self.data.len(), |i| pos + i);
            let line = self.data.slice(pos..end);
            let off = self.offset + pos as u64;
            pos = end + 1;
            Some((line, off))
        })
    }
}

/// Reads a stream as chunks of whole lines.
pub struct ChunkReader<R> {
    r: R,
    carry: BytesMut,
    offset: u64,
    eof: bool,
    chunk_size: usize,
}

/// The default chunk size.
pub const CHUNK_SIZE: usize = 1 << 20;

impl<R: Read> ChunkReader<R> {
    pub fn new(r: R) -> Self {
        Self::with_chunk_size(r, CHUNK_SIZE)
    }

    pub fn with_chunk_size(r: R, chunk_size: usize) -> Self {
        ChunkReader {
            r,
            carry: BytesMut::new(),
            offset: 0,
            eof: false,
            chunk_size: chunk_size.max(16),
        }
    }

    /// The next chunk, or `None` at the end. A final line without `\n` is returned too.
    /// A single line longer than the chunk size grows the chunk until its end is found.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        loop {
            if let Some(last_nl) = memchr::memrchr(b'\n', &self.carry) {
                if self.carry.len() >= self.chunk_size || self.eof {
                    let data = self.carry.split_to(last_nl + 1).freeze();
                    let chunk = Chunk {
                        offset: self.offset,
                        data,
                    };
                    self.offset += chunk.data.len() as u64;
                    return Ok(Some(chunk));
                }
            }
            if self.eof {
                if self.carry.is_empty() {
                    return Ok(None);
                }
                let data = self.carry.split().freeze();
                let chunk = Chunk {
                    offset: self.offset,
                    data,
                };
                self.offset += chunk.data.len() as u64;
                return Ok(Some(chunk));
            }
            let want = self.chunk_size.max(self.carry.len() + 64 * 1024);
            let old = self.carry.len();
            self.carry.resize(want, 0);
            let n = loop {
                match self.r.read(&mut self.carry[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.carry.truncate(old);
                        return Err(e);
                    }
                }
            };
            self.carry.truncate(old + n);
            if n == 0 {
                self.eof = true;
            }
        }
    }
}

/// One input file and the host its directory names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub host: Option<String>,
}

/// Files that are binary or not logs, by name, skipped when walking directories.
fn skip_name(name: &str) -> bool {
    name.starts_with('.')
        || matches!(name, "wtmp" | "btmp" | "lastlog" | "faillog" | "utmp")
        || name.ends_with(".journal")
        || name.ends_with(".journal~")
        || name.ends_with(".pos")
        || name.ends_with(".lock")
}

/// Expands paths: files as given; directories walked (sorted), with per-host subdirectories.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|_| InputError::Missing(p.clone()))?;
        if meta.is_dir() {
            walk_top(p, &mut out)?;
        } else {
            out.push(Source {
                path: p.clone(),
                host: None,
            });
        }
    }
    Ok(out)
}

fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, InputError> {
    let rd = std::fs::read_dir(dir).map_err(|source| InputError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut v: Vec<(PathBuf, bool)> = rd
        .filter_map(Result::ok)
        .filter(|e| !skip_name(&e.file_name().to_string_lossy()))
        .map(|e| {
            let p = e.path();
            let is_dir = p.is_dir();
            (p, is_dir)
        })
        .collect();
    v.sort();
    Ok(v)
}

fn walk_top(dir: &Path, out: &mut Vec<Source>) -> Result<(), InputError> {
    for (p, is_dir) in sorted_entries(dir)? {
        if is_dir {
            let host = p.file_name().map(|n| n.to_string_lossy().into_owned());
            walk_host(&p, host.as_deref(), out)?;
        } else {
            out.push(Source {
                path: p,
                host: None,
            });
        }
    }
    Ok(())
}

fn walk_host(dir: &Path, host: Option<&str>, out: &mut Vec<Source>) -> Result<(), InputError> {
    for (p, is_dir) in sorted_entries(dir)? {
        if is_dir {
            walk_host(&p, host, out)?;
        } else {
            out.push(Source {
                path: p,
                host: host.map(str::to_owned),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(data: &[u8], size: usize) -> Vec<(String, u64)> {
        let mut r = ChunkReader::with_chunk_size(data, size);
        let mut v = vec![];
        while let Some(c) = r.next_chunk().unwrap() {
            for (l, o) in c.lines() {
                v.push((String::from_utf8(l.to_vec()).unwrap(), o));
            }
        }
        v
    }

    #[test]
    fn lines_and_offsets_across_chunk_sizes() {
        let data = b"alpha\nbeta\n\ngamma-long-line-here\nlast";
        let expect = vec![
            ("alpha".to_string(), 0),
            ("beta".to_string(), 6),
            ("".to_string(), 11),
            ("gamma-long-line-here".to_string(), 12),
            ("last".to_string(), 33),
        ];
        for size in [16, 17, 20, 64, 1 << 20] {
            assert_eq!(collect(data, size), expect, "chunk size {size}");
        }
    }

    #[test]
    fn compressed_files_are_read_transparently() {
        let dir = std::env::temp_dir().join(format!("tansa-input-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("web01")).unwrap();
        let text = b"line one\nline two\n";
        let gz = dir.join("web01/auth.log.2.gz");
        let mut e =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap();
        let zst = dir.join("web01/auth.log.1");
        std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();
        std::fs::write(dir.join("top.log"), text).unwrap();
        for p in [&gz, &zst] {
            let mut s = String::new();
            open(p).unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s.as_bytes(), text);
        }
        let found = discover(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[2].path, dir.join("web01/auth.log.2.gz"));
        assert_eq!(found[0].host.as_deref(), None);
        assert_eq!(found[1].host.as_deref(), Some("web01"));
        assert!(discover(&[dir.join("nope")]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
