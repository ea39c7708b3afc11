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

fn tansa_in(data: &std::path::Path) -> Command {
    let mut c = common::tansa();
    c.arg("--data").arg(data);
    c
}

/// An attacker's lines exported for others: the bundle verifies offline (Tansa, and the
/// README's standard tools: sha256sum, openssl), a changed byte fails it, cases link it.
#[test]
fn a_bundle_for_an_address_or_a_case_verifies_offline_with_tansa_and_standard_tools() {
    let d = common::fresh_dir("evidence", "bundle");
    let data = d.join("data");
    common::succeed(
        tansa_in(&data)
            .arg("analyze")
            .arg(common::root().join("examples/logs")),
    );
    let out = d.join("bundle");
    let ex = common::succeed(
        tansa_in(&data)
            .args([
                "--format",
                "json",
                "evidence",
                "export",
                "--entity",
                "45.141.87.23",
            ])
            .arg("--out")
            .arg(&out),
    );
    let custody: serde_json::Value = serde_json::from_slice(&ex.stdout).unwrap();
    let lines = custody["lines"].as_u64().unwrap();
    // every stored line naming the address, none other
    let raw = std::fs::read_to_string(out.join("lines.jsonl")).unwrap();
    assert_eq!(raw.lines().count() as u64, lines);
    for l in raw.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["raw"].as_str().unwrap().contains("45.141.87.23"), "{l}");
    }
    let sql = common::succeed(tansa_in(&data).args([
        "--format",
        "json",
        "sql",
        "SELECT count(*) AS n FROM events WHERE raw LIKE '%45.141.87.23%'",
    ]));
    let n = common::json_lines(&sql.stdout)[0]["n"].as_u64().unwrap();
    assert!(lines >= n && n > 100, "bundle {lines}, store {n}");

    let key = std::fs::read_to_string(data.join("evidence/key.pub")).unwrap();
    let verify = |extra: &[&str]| {
        tansa_in(&d.join("elsewhere"))
            .args(["evidence", "verify"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = verify(&["--key", key.trim()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));
    // by hand, as the bundle's README says
    let sh = |script: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&out)
            .output()
            .unwrap()
    };
    let o = sh("sha256sum -c --quiet MANIFEST.sha256 && test \"$(sha256sum MANIFEST.sha256 | cut -d' ' -f1)\" = \"$(sed -n 's/.*\"bundle_sha256\": \"\\(.*\\)\".*/\\1/p' custody.json)\"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sh("base64 -d custody.sig > ../sig && openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in custody.json -sigfile ../sig");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sh("for s in seals/*.seal; do head -n -1 $s > ../msg; tail -n 1 $s | cut -d' ' -f2 | base64 -d > ../sig; openssl pkeyutl -verify -pubin -inkey evidence.pub.pem -rawin -in ../msg -sigfile ../sig || exit 1; done");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // the by-hand check of docs/EVIDENCE.md, as written there
    let doc = std::fs::read_to_string(common::root().join("docs/EVIDENCE.md")).unwrap();
    let at = doc
        .find("## Checking a bundle with standard tools")
        .unwrap();
    let block = &doc[at..];
    let block = &block[block.find("```sh\n").unwrap() + 6..];
    let block = &block[..block.find("\n```\n").unwrap()];
    let o = sh(&format!("set -e\n{block}"));
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("{lines}/{lines} lines proven")));
    // its Python part alone refuses a line whose body was changed
    let py = &block[block.find("python3 - <<'PY'").unwrap()..];
    let mut first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    let body = first["body"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &body[..body.len() - 1],
        if body.ends_with('0') { '1' } else { '0' }
    );
    first["body"] = flipped.into();
    let rest: String = raw.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(out.join("lines.jsonl"), format!("{first}\n{rest}")).unwrap();
    let o = sh(py);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("line 1: NOT in its sealed segment"));
    std::fs::write(out.join("lines.jsonl"), &raw).unwrap();

    // one changed character in a line: refused by Tansa and by sha256sum
    let changed = raw.replacen("45.141.87.23", "45.141.87.24", 1);
    std::fs::write(out.join("lines.jsonl"), changed).unwrap();
    let bad = verify(&[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("TAMPERED lines.jsonl"));
    assert!(!sh("sha256sum -c --quiet MANIFEST.sha256").status.success());
    std::fs::write(out.join("lines.jsonl"), &raw).unwrap();

    // a case: its entity's lines, and the bundle linked to it
    common::succeed(tansa_in(&data).args([
        "case",
        "open",
        "Attack from 45.141.87.23",
        "--entity",
        "45.141.87.23",
    ]));
    let out2 = d.join("bundle-case");
    common::succeed(
        tansa_in(&data)
            .args(["evidence", "export", "--case", "1", "--note", "for the ISP"])
            .arg("--out")
            .arg(&out2),
    );
    let show = common::succeed(tansa_in(&data).args(["--format", "json", "case", "show", "1"]));
    let case: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let bundles: Vec<&serde_json::Value> = case["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "bundle")
        .collect();
    assert_eq!(bundles.len(), 1, "{case}");
    let exports =
        common::succeed(tansa_in(&data).args(["--format", "json", "evidence", "exports"]));
    let exports = common::json_lines(&exports.stdout);
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[1]["note"], "for the ISP");
    assert!(bundles[0]["value"]
        .as_str()
        .unwrap()
        .starts_with(exports[1]["bundle_sha256"].as_str().unwrap()));
    let _ = std::fs::remove_dir_all(&d);
}
