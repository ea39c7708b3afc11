//! Every rule of SigmaHQ's `rules/linux` and `rules/web` loads (or is unsupported for a stated
//! reason), and every example of the Sigma specification's tests parses. Target ≥ 99% loaded.

use std::path::PathBuf;

use tansa_rules::{SigmaRules, Status};

fn corpus() -> PathBuf {
    let base = std::env::var_os("TANSA_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    assert!(
        base.join("sigma").is_dir(),
        "Sigma corpus not found: set TANSA_CONFORMANCE"
    );
    base
}

#[test]
fn sigmahq_linux_and_web_rules_load() {
    let base = corpus();
    let rules = SigmaRules::load(&[base.join("sigma/rules/linux"), base.join("sigma/rules/web")]);
    let reports = rules.reports();
    let detections: Vec<_> = reports.iter().filter(|r| r.kind == "detection").collect();
    let loaded = detections
        .iter()
        .filter(|r| r.status == Status::Loaded)
        .count();
    let errors: Vec<_> = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Error(_)))
        .collect();
    let rate = 100.0 * loaded as f64 / detections.len().max(1) as f64;
    println!("\nSigmaHQ rules/linux + rules/web: {loaded}/{} detection rules loaded ({rate:.1}%), {} errors", detections.len(), errors.len());
    for r in reports.iter().filter(|r| r.status != Status::Loaded) {
        println!("  {:?} {}: {}", r.status, r.path.display(), r.title);
    }
    assert!(
        detections.len() >= 250,
        "corpus: {} rules",
        detections.len()
    );
    assert!(errors.is_empty(), "no SigmaHQ rule is an error");
    assert!(rate >= 99.0, "{rate:.1}% < 99%");
}

#[test]
fn specification_examples_parse() {
    let base = corpus();
    let rules = SigmaRules::load(&[base.join("sigma-specification/tests")]);
    let errors: Vec<_> = rules
        .reports()
        .iter()
        .filter(|r| matches!(r.status, Status::Error(_)))
        .collect();
    println!(
        "sigma-specification tests: {} rules/correlations/filters, {} errors",
        rules.reports().len(),
        errors.len()
    );
    for e in &errors {
        println!("  {} {:?}", e.path.display(), e.status);
    }
    assert!(rules.reports().len() >= 12);
    assert!(errors.is_empty());
}
