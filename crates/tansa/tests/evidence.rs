//! The evidence log from the command line: `tansa init` (its key), `tansa verify`.

mod common;

use std::process::Command;

/// `tansa init` makes the store and the evidence key once; the key stays across runs.
#[test]
fn init_creates_the_store_and_a_private_evidence_key_once() {
    use std::os::unix::fs::PermissionsExt;
    let d = common::fresh_dir("hooks", "init");
    let data = d.join("data");
    let run = || {
        let out = common::tansa()
            .arg("--data")
            .arg(&data)
            .args(["--format", "json", "init"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first["evidence_key"].as_str().unwrap().len(), 64);
    assert_eq!(run()["evidence_key"], first["evidence_key"]);
    assert!(data.join("tansa.duckdb").exists());
    let mode = std::fs::metadata(data.join("evidence/key.pk8"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read_to_string(data.join("evidence/evidence.pub.pem")).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(data.join("evidence/evidence.pub.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{pem}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ED25519"));
    let _ = std::fs::remove_dir_all(&d);
}
