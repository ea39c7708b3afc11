//! Live sources of the server (`tansa serve`): the `sources` box of the data path
//! (`sources → frame → parse → enrich → detect → store → respond`).
//!
//! - [`tail`]: files followed as they grow, across rename-and-create and copytruncate
//!   rotation, resumed after a restart from the offsets the store recorded.
//! - [`syslog`]: syslog receivers on UDP, TCP (newline and octet-counting framing, RFC
//!   6587) and TLS (RFC 5425, optionally requiring client certificates), each message one
//!   line of its connection's stream.
//!
//! Sources deliver lines with their offsets in their stream; the server parses them with one
//! `tansa_parse::Parser` per stream, like the files of `tansa analyze`.

pub mod syslog;
pub mod tail;

/// The common name of a DER certificate's subject (who a mutual-TLS client is).
pub fn subject_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// FNV-1a 64 over the parts in order: fingerprints of file instances and stream ids.
pub fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
