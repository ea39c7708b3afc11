//! Allow lists, suppressions and rules in simulation, through `tansa analyze --suppress`.

mod common;

use common::{fresh_dir, json_lines, root, succeed, tansa};

fn analyze(extra: &[&str], data: &std::path::Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    let out = succeed(
        tansa()
            .arg("--data")
            .arg(data)
            .args(["--format", "json", "analyze"])
            .arg(root().join("examples/logs/web01/auth.log"))
            .args(extra),
    );
    let mut lines = json_lines(&out.stdout);
    let summary = lines.pop().unwrap()["summary"].clone();
    (lines, summary)
}

fn of<'a>(alerts: &'a [serde_json::Value], rule: &str, ip: &str) -> Vec<&'a serde_json::Value> {
    alerts
        .iter()
        .filter(|a| a["rule"]["id"] == rule && a["source"]["ip"] == ip)
        .collect()
}

#[test]
fn suppressed_matches_raise_nothing_and_simulated_rules_are_stored_but_marked() {
    let d = fresh_dir("suppress", "cli");
    let (before, _) = analyze(&["--no-store"], &d.join("none"));
    let attacker = "45.141.87.12";
    assert!(
        !of(&before, "tansa.ssh.brute_force", attacker).is_empty(),
        "the sample's brute force alerts without suppressions"
    );
    let file = d.join("suppress.toml");
    std::fs::write(
        &file,
        format!(
            "simulate = [\"tansa.ssh.brute_force\"]\n\n[[suppress]]\nrule = \"tansa.ssh.*\"\nmatch = {{ \"source.ip\" = \"{attacker}\" }}\nreason = \"pen test\"\n"
        ),
    )
    .unwrap();
    let data = d.join("data");
    let (after, summary) = analyze(&["--suppress", file.to_str().unwrap()], &data);
    // the suppressed address raises no ssh rule; its other rules and other addresses still do
    assert!(after
        .iter()
        .filter(|a| a["source"]["ip"] == attacker)
        .all(|a| !a["rule"]["id"].as_str().unwrap().starts_with("tansa.ssh.")));
    let held = summary["suppressed"][0]["matches"].as_u64().unwrap();
    assert!(held >= 10, "{summary}");
    assert_eq!(summary["suppressed"][0]["reason"], "pen test");
    assert!(summary["suppressed"][0]["at"]
        .as_str()
        .unwrap()
        .ends_with("suppress.toml:3"));
    // the simulated rule fires for the others, marked, and so it is stored
    let sim: Vec<_> = after
        .iter()
        .filter(|a| a["rule"]["id"] == "tansa.ssh.brute_force")
        .collect();
    assert!(!sim.is_empty());
    assert!(sim.iter().all(|a| a["simulated"] == true));
    assert!(after
        .iter()
        .filter(|a| a["rule"]["id"] != "tansa.ssh.brute_force")
        .all(|a| a.get("simulated").is_none()));
    let rows = json_lines(
        &succeed(tansa().arg("--data").arg(&data).args([
            "--format",
            "json",
            "sql",
            "SELECT rule_id, simulated FROM alerts WHERE simulated",
        ]))
        .stdout,
    );
    assert_eq!(rows.len(), sim.len());
    assert!(rows.iter().all(|r| r["rule_id"] == "tansa.ssh.brute_force"));
    // the text output says which alerts are simulated and what each suppression held back
    let text = succeed(
        tansa()
            .args([
                "analyze",
                "--no-store",
                "--suppress",
                file.to_str().unwrap(),
            ])
            .arg(root().join("examples/logs/web01/auth.log")),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("(pen test): {held} matches")),
        "{text}"
    );
    assert!(text.contains("(sim)"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_bad_suppression_file_is_refused_with_its_line() {
    let d = fresh_dir("suppress", "bad");
    let file = d.join("bad.toml");
    std::fs::write(
        &file,
        "[[suppress]]\nmatch = { \"user.name\" = \"ok\" }\n\n[[suppress]]\nmatch = { \"source.ip\" = \"300.1.2.3\" }\n",
    )
    .unwrap();
    let out = tansa()
        .args([
            "analyze",
            "--no-store",
            "--suppress",
            file.to_str().unwrap(),
        ])
        .arg(root().join("examples/logs/web01/auth.log"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4: source.ip: \"300.1.2.3\" is not an address or a network"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
