//! Syslog receivers: UDP (one message per datagram) and TCP (RFC 6587: octet-counting
//! `LEN SP MSG` frames, or messages ended by a newline), so that rsyslog, syslog-ng, `logger`
//! and network devices can send directly.
//!
//! Every connection (and every UDP sender) is a stream of its own, named after the listener
//! and the peer; a message's offset is its position in the stream. A connection that sends a
//! frame larger than the limit, or a broken length, is closed and counted; the others go on.
//! Delivery blocks when the server is busy, so TCP senders are slowed down, not dropped.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tansa_event::now_nanos;

/// The largest message accepted (rsyslog's default maximum is 8 KiB; some senders use 64 KiB).
pub const MAX_MESSAGE: usize = 64 << 10;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the limit of {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("message without an end is over the limit of {MAX_MESSAGE} bytes")]
    Unterminated,
}

/// Splits a TCP byte stream into messages.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Adds received bytes; complete messages go to `out` (without their newline).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Bytes>) -> Result<(), FrameError> {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if rest.is_empty() {
                break;
            }
            // octet-counting: digits, a space, that many bytes
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && digits < rest.len() && rest[digits] == b' ' && rest[0] != b'0' {
                let len: usize = std::str::from_utf8(&rest[..digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                if len > MAX_MESSAGE {
                    return Err(FrameError::TooLarge(len));
                }
                if rest.len() < digits + 1 + len {
                    break;
                }
                let m = &rest[digits + 1..digits + 1 + len];
                out.push(Bytes::copy_from_slice(trim_end(m)));
                pos += digits + 1 + len;
                continue;
            }
            if digits == rest.len() && digits < 8 {
                // possibly the start of a length: wait for more
                break;
            }
            match memchr::memchr2(b'\n', 0, rest) {
                Some(i) => {
                    let m = trim_end(&rest[..i]);
                    if !m.is_empty() {
                        out.push(Bytes::copy_from_slice(m));
                    }
                    pos += i + 1;
                }
                None => {
                    if rest.len() > MAX_MESSAGE {
                        return Err(FrameError::Unterminated);
                    }
                    break;
                }
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// The connection ended: an unterminated last message is complete.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) {
        let m = trim_end(&self.buf);
        if !m.is_empty() {
            out.push(Bytes::copy_from_slice(m));
        }
        self.buf.clear();
    }
}

fn trim_end(m: &[u8]) -> &[u8] {
    let mut m = m;
    while let [rest @ .., b'\n' | b'\r' | 0] = m {
        m = rest;
    }
    m
}

/// One sender's stream.
#[derive(Debug)]
pub struct Stream {
    /// Unique for the stream (listener, peer, start time).
    pub id: u64,
    /// `syslog+tcp://LISTEN` or `syslog+udp://LISTEN`.
    pub name: String,
    pub peer: SocketAddr,
    /// The verified client certificate's subject (common name), over mutual TLS.
    pub identity: Option<String>,
}

/// Messages of a stream, each with its offset; `closed` when the stream ended.
pub struct Delivery {
    pub stream: Arc<Stream>,
    pub messages: Vec<(Bytes, u64)>,
    pub received: i64,
    pub closed: bool,
}

/// Where messages go; false when the server is stopping.
pub type Sink = Arc<dyn Fn(Delivery) -> bool + Send + Sync>;

/// Counters of a listener.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Connections closed for a framing error.
    pub bad_frames: AtomicU64,
    /// TLS connections refused at the handshake (certificate, protocol, timeout).
    pub tls_refused: AtomicU64,
    /// UDP: datagrams put in the disk spool (the queue was full), dropped (the spool was
    /// full too), and dropped by the kernel before they were read (the socket buffer was
    /// full; the socket's count).
    pub spooled: AtomicU64,
    pub dropped: AtomicU64,
    pub kernel_drops: AtomicU64,
}

fn stream_id(name: &str, peer: &SocketAddr) -> u64 {
    crate::fnv(&[
        name.as_bytes(),
        peer.to_string().as_bytes(),
        &now_nanos().to_le_bytes(),
    ])
}

/// Accepts TCP connections until `stop`; each connection is read on its own thread.
pub fn serve_tcp(
    listener: TcpListener,
    sink: Sink,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    max_connections: usize,
) -> std::io::Result<()> {
    serve_stream(listener, None, sink, stop, counters, max_connections)
}

/// Syslog over TLS (RFC 5425: octet-counted frames in a TLS stream; newline framing is
/// accepted too). With a client verifier in `tls`, a client without a certificate of the CA,
/// or with a revoked one, is refused at the handshake; the subject of an accepted client's
/// certificate is the stream's `identity`. A client that does not finish the handshake within
/// [`HANDSHAKE_TIMEOUT`] is dropped; the others are not affected.
pub fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    sink: Sink,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    max_connections: usize,
) -> std::io::Result<()> {
    serve_stream(listener, Some(tls), sink, stop, counters, max_connections)
}

/// Syslog over TCP, or over TLS when `tls` is given ([`serve_tcp`], [`serve_tls`]).
pub fn serve_stream(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    sink: Sink,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    max_connections: usize,
) -> std::io::Result<()> {
    let scheme = if tls.is_some() {
        "syslog+tls"
    } else {
        "syslog+tcp"
    };
    let st = stop.clone();
    let c = counters.clone();
    let handler: Handler = Arc::new(move |conn: Conn, stream: Stream| {
        let _ = conn.set_read_timeout(Duration::from_millis(500));
        read_messages(conn, Arc::new(stream), &sink, &st, &c);
    });
    serve_connections(
        listener,
        scheme,
        tls,
        stop,
        counters,
        max_connections,
        handler,
    )
}

/// Time a TLS client has to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted connection: plain TCP or TLS over it.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    pub fn set_read_timeout(&self, t: Duration) -> std::io::Result<()> {
        self.tcp().set_read_timeout(Some(t))
    }

    pub fn set_write_timeout(&self, t: Duration) -> std::io::Result<()> {
        self.tcp().set_write_timeout(Some(t))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

impl std::io::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}

/// What serves one accepted connection (on its own thread).
pub type Handler = Arc<dyn Fn(Conn, Stream) + Send + Sync>;

/// Accepts connections until `stop`, at most `max_connections` at once; each on its own
/// thread: the TLS handshake (when `tls`; refused clients are counted in `tls_refused`),
/// then `handler`. Stream names are `SCHEME://LISTEN`.
pub fn serve_connections(
    listener: TcpListener,
    scheme: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    max_connections: usize,
    handler: Handler,
) -> std::io::Result<()> {
    let name = format!("{scheme}://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let open = Arc::new(AtomicU64::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, peer)) => {
                if open.load(Ordering::Relaxed) as usize >= max_connections {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    drop(s);
                    continue;
                }
                counters.connections.fetch_add(1, Ordering::Relaxed);
                open.fetch_add(1, Ordering::Relaxed);
                let (counters, open, tls, name, handler) = (
                    counters.clone(),
                    open.clone(),
                    tls.clone(),
                    name.clone(),
                    handler.clone(),
                );
                std::thread::spawn(move || {
                    if let Some((conn, stream)) = establish(s, peer, name, tls, &counters) {
                        handler(conn, stream);
                    }
                    open.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Ok(())
}

/// Reads one connection's messages; any `Read` (plain TCP, or TLS over it).
pub fn read_messages(
    mut r: impl Read,
    stream: Arc<Stream>,
    sink: &Sink,
    stop: &AtomicBool,
    counters: &Counters,
) {
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut offset = 0u64;
    let mut msgs = Vec::new();
    let deliver = |msgs: &mut Vec<Bytes>, offset: &mut u64, closed: bool| -> bool {
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs.drain(..) {
            let at = *offset;
            *offset += m.len() as u64 + 1;
            counters.messages.fetch_add(1, Ordering::Relaxed);
            out.push((m, at));
        }
        if out.is_empty() && !closed {
            return true;
        }
        sink(Delivery {
            stream: stream.clone(),
            messages: out,
            received: now_nanos(),
            closed,
        })
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if framer.push(&buf[..n], &mut msgs).is_err() {
            counters.bad_frames.fetch_add(1, Ordering::Relaxed);
            deliver(&mut msgs, &mut offset, true);
            return;
        }
        if !deliver(&mut msgs, &mut offset, false) {
            return;
        }
    }
    framer.finish(&mut msgs);
    deliver(&mut msgs, &mut offset, true);
}

/// The TLS handshake of an accepted connection (none for plain TCP), and its stream.
fn establish(
    mut s: TcpStream,
    peer: SocketAddr,
    name: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    counters: &Counters,
) -> Option<(Conn, Stream)> {
    let _ = s.set_nonblocking(false);
    let mut stream = Stream {
        id: stream_id(&name, &peer),
        name,
        peer,
        identity: None,
    };
    let Some(cfg) = tls else {
        return Some((Conn::Plain(s), stream));
    };
    let mut conn = rustls::ServerConnection::new(cfg).ok()?;
    let _ = s.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = s.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    while conn.is_handshaking() {
        if conn.complete_io(&mut s).is_err() {
            // wrong, revoked or missing certificate, not TLS, or too slow
            counters.tls_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
    stream.identity = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| crate::subject_name(c.as_ref()));
    Some((
        Conn::Tls(Box::new(rustls::StreamOwned::new(conn, s))),
        stream,
    ))
}

/// Asks for an 8 MiB receive buffer, where datagrams wait while the reader is busy (the
/// kernel's default holds a few hundred). `SO_RCVBUFFORCE` when the process may (root),
/// else `SO_RCVBUF`, which the kernel caps at `net.core.rmem_max`. No error: a smaller
/// buffer only means earlier kernel drops, which are counted.
#[cfg(target_os = "linux")]
fn grow_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn setsockopt(
            fd: i32,
            level: i32,
            name: i32,
            value: *const std::ffi::c_void,
            len: u32,
        ) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_RCVBUF: i32 = 8;
    const SO_RCVBUFFORCE: i32 = 33;
    let size: i32 = 8 << 20;
    for opt in [SO_RCVBUFFORCE, SO_RCVBUF] {
        // SAFETY: an open socket's descriptor, and a pointer to an i32 with its size
        let r = unsafe {
            setsockopt(
                socket.as_raw_fd(),
                SOL_SOCKET,
                opt,
                (&size as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        };
        if r == 0 {
            return;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn grow_receive_buffer(_: &UdpSocket) {}

/// Receives datagrams until `stop`: one message each, a stream per sender.
pub fn serve_udp(
    socket: UdpSocket,
    sink: Sink,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> std::io::Result<()> {
    let name = format!("syslog+udp://{}", socket.local_addr()?);
    grow_receive_buffer(&socket);
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut streams: HashMap<SocketAddr, (Arc<Stream>, u64)> = HashMap::new();
    let mut looked = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if looked.elapsed() >= Duration::from_secs(1) {
            looked = std::time::Instant::now();
            if let Some(d) = kernel_drops(&socket) {
                counters.kernel_drops.store(d, Ordering::Relaxed);
            }
        }
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        // a sender's address: its port changes with each socket it opens
        let key = SocketAddr::new(peer.ip(), 0);
        let (stream, offset) = streams.entry(key).or_insert_with(|| {
            counters.connections.fetch_add(1, Ordering::Relaxed);
            (
                Arc::new(Stream {
                    id: stream_id(&name, &key),
                    name: name.clone(),
                    peer: key,
                    identity: None,
                }),
                0,
            )
        });
        let m = trim_end(&buf[..n]);
        if m.is_empty() {
            continue;
        }
        let at = *offset;
        *offset += m.len() as u64 + 1;
        counters.messages.fetch_add(1, Ordering::Relaxed);
        if !sink(Delivery {
            stream: stream.clone(),
            messages: vec![(Bytes::copy_from_slice(m), at)],
            received: now_nanos(),
            closed: false,
        }) {
            break;
        }
    }
    Ok(())
}

/// Datagrams the kernel dropped on `socket` (its receive buffer was full), from
/// /proc/net/udp and /proc/net/udp6; None where those are not readable.
pub fn kernel_drops(socket: &std::net::UdpSocket) -> Option<u64> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = socket.as_fd().try_clone_to_owned().ok()?;
    let inode = std::fs::File::from(fd).metadata().ok()?.ino();
    ["/proc/net/udp", "/proc/net/udp6"].iter().find_map(|p| {
        let text = std::fs::read_to_string(p).ok()?;
        text.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
            (f.get(9)?.parse::<u64>().ok()? == inode).then(|| f.last()?.parse().ok())?
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Result<Vec<String>, FrameError> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out)?;
        }
        f.finish(&mut out);
        Ok(out
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect())
    }

    #[test]
    fn both_framings_split_anywhere() {
        let counted = "<13>Mar 14 10:00:01 h a: two\n";
        let stream = format!(
            "<13>Mar 14 10:00:00 h a: one\n{} {counted}<13>Mar 14 10:00:02 h a: three\r\n2026-03-14T10:00:03Z h a: four\n",
            counted.len()
        );
        let stream = stream.as_bytes();
        let whole = frames(&[stream]).unwrap();
        assert_eq!(
            whole,
            [
                "<13>Mar 14 10:00:00 h a: one",
                "<13>Mar 14 10:00:01 h a: two",
                "<13>Mar 14 10:00:02 h a: three",
                "2026-03-14T10:00:03Z h a: four"
            ]
        );
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frames(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
        // a counted frame may hold newlines
        let (a, b) = ("<13>a\nb: c", "<13>x: y\nz\n");
        let s = format!("{} {a}{} {b}", a.len(), b.len());
        assert_eq!(
            frames(&[s.as_bytes()]).unwrap(),
            ["<13>a\nb: c", "<13>x: y\nz"]
        );
    }

    #[test]
    fn oversized_frames_are_refused() {
        assert_eq!(
            frames(&[b"99999999 <13>x"]),
            Err(FrameError::TooLarge(99_999_999))
        );
        let long = vec![b'a'; MAX_MESSAGE + 10];
        assert_eq!(frames(&[&long]), Err(FrameError::Unterminated));
    }
}
