//! Helpers shared by the conformance tests of this crate.

use std::path::PathBuf;

/// The other projects' test data (`TANSA_CONFORMANCE`, default `../shared/conformance` next
/// to the repository); `sub` must exist in it.
pub fn corpus(sub: &str) -> PathBuf {
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    assert!(
        base.join(sub).is_dir(),
        "conformance corpus ({sub}) not found: set TANSA_CONFORMANCE"
    );
    base
}
