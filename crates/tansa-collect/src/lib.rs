//! Live sources of the server (`tansa serve`): the `sources` box of the data path
//! (`sources → frame → parse → enrich → detect → store → respond`).
//!
//! - [`tail`]: files followed as they grow, across rename-and-create and copytruncate
//!   rotation, resumed after a restart from the offsets the store recorded.
//! - [`syslog`]: syslog receivers on UDP and TCP (newline and octet-counting framing, RFC
//!   6587), each message one line of its connection's stream.
//!
//! Sources deliver lines with their offsets in their stream; the server parses them with one
//! `tansa_parse::Parser` per stream, like the files of `tansa analyze`.

pub mod syslog;
pub mod tail;
