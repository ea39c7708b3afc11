//! Helpers shared by the command-line tests.

use std::path::PathBuf;
use std::process::Command;

/// The built binary, run from the repository root (where `examples/logs` is).
pub fn tansa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tansa"));
    c.current_dir(root());
    c
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One JSON value per line of a command's output.
pub fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Runs a command that must succeed; a failure shows its arguments and standard error.
pub fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
