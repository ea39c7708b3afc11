//! Tamper tests: thousands of random single-byte flips, deleted, swapped and truncated
//! records, altered seals — every one detected and located, none accepted.

use std::collections::BTreeMap;

use super::*;

const S: i64 = 1_000_000_000;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tansa-ev-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A log of three sealed segments of lines of varied length.
fn build(dir: &Path, lines: usize) -> EvidenceLog {
    let limits = Limits {
        max_bytes: 40_000,
        max_age: i64::MAX,
        compress: false,
    };
    let (mut log, rec) = EvidenceLog::open(dir, limits, 0).unwrap();
    assert!(rec.notes.is_empty());
    for i in 0..lines {
        let raw = format!(
            "Nov 23 10:{:02}:{:02} web01 sshd[{i}]: Failed password for root from 203.0.113.{} port {} ssh2{}",
            i / 60 % 60,
            i % 60,
            i % 250,
            40000 + i,
            "x".repeat(i % 37)
        );
        log.append(
            &Line {
                source: "/var/log/auth.log",
                host: Some("web01"),
                offset: (i * 120) as u64,
                time: 1_700_000_000 * S + i as i64 * S,
                received: 1_700_000_000 * S + i as i64 * S + 5,
                raw: raw.as_bytes(),
            },
            i as i64,
        )
        .unwrap();
    }
    log.seal(lines as i64).unwrap();
    log
}

type Files = BTreeMap<u64, (Option<Vec<u8>>, Option<String>)>;

fn load(dir: &Path) -> Files {
    segments(dir)
        .unwrap()
        .into_iter()
        .map(|n| {
            (
                n,
                (
                    std::fs::read(segment_path(dir, n)).ok(),
                    std::fs::read_to_string(seal_path(dir, n)).ok(),
                ),
            )
        })
        .collect()
}

fn check(key: &Hash, files: &Files) -> Report {
    let segs: Vec<u64> = files.keys().copied().collect();
    verify_segments(key, &segs, |n| Ok(files[&n].clone())).unwrap()
}

/// Record boundaries of a segment: (start, end) of each.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut p = HEADER;
    while p < bytes.len() {
        let len = u32::from_be_bytes(bytes[p..p + 4].try_into().unwrap()) as usize;
        out.push((p, p + 4 + len + 32));
        p += 4 + len + 32;
    }
    out
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn an_untouched_log_verifies_and_the_seal_checks_with_openssl() {
    let dir = tmp("clean");
    let log = build(&dir, 700);
    let r = verify(&dir).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.records, 700);
    assert!(r.segments >= 3, "{}", r.segments);
    assert_eq!(r.open_segment, None);
    assert_eq!(r.key, Some(log.public_key()));
    // the private key is the owner's alone
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("key.pk8"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // a third party with standard tools: sha256sum and openssl
    let seal = std::fs::read_to_string(seal_path(&dir, 1)).unwrap();
    let (s, signed, sig) = Seal::parse(&seal).unwrap();
    std::fs::write(dir.join("msg"), signed).unwrap();
    std::fs::write(dir.join("sig"), &sig).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(dir.join("evidence.pub.pem"))
        .arg("-rawin")
        .arg("-in")
        .arg(dir.join("msg"))
        .arg("-sigfile")
        .arg(dir.join("sig"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sum = std::process::Command::new("sha256sum")
        .arg(segment_path(&dir, 1))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&sum.stdout).starts_with(&hex(&s.file_sha256)));
    // the records read back
    let bytes = std::fs::read(segment_path(&dir, 1)).unwrap();
    let (a, b) = records(&bytes)[3];
    let r = decode_body(&bytes[a + 4..b - 32]).unwrap();
    assert_eq!(r.seq, 4);
    assert_eq!(r.host, "web01");
    assert!(String::from_utf8_lossy(&r.raw).contains("sshd[3]"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_tampering_is_detected_and_located() {
    let dir = tmp("tamper");
    let log = build(&dir, 700);
    let key = log.public_key();
    let clean = load(&dir);
    assert!(check(&key, &clean).problems.is_empty());
    let segs: Vec<u64> = clean.keys().copied().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut counts = BTreeMap::<&str, (usize, usize)>::new();
    let mut tally = |kind: &'static str, located: bool| {
        let e = counts.entry(kind).or_default();
        e.0 += 1;
        e.1 += usize::from(located);
    };
    for trial in 0..4000 {
        let mut f = clean.clone();
        let n = segs[rng.next(segs.len())];
        let bytes = f[&n].0.clone().unwrap();
        let recs = records(&bytes);
        let (kind, want_record): (&str, Option<u64>) = match trial % 8 {
            // a flipped byte anywhere in the segment
            0..=3 => {
                let p = rng.next(bytes.len());
                let mut b = bytes.clone();
                b[p] ^= 1 << rng.next(8);
                f.get_mut(&n).unwrap().0 = Some(b);
                let k = recs.iter().position(|&(a, e)| p >= a && p < e);
                ("flip", k.map(|k| k as u64))
            }
            // a record deleted
            4 => {
                let k = rng.next(recs.len());
                let (a, e) = recs[k];
                let mut b = bytes.clone();
                b.drain(a..e);
                f.get_mut(&n).unwrap().0 = Some(b);
                ("delete", Some(k as u64))
            }
            // two neighbours swapped
            5 => {
                let k = rng.next(recs.len() - 1);
                let (a, _) = recs[k];
                let (m, e) = recs[k + 1];
                let mut b = bytes[..a].to_vec();
                b.extend_from_slice(&bytes[m..e]);
                b.extend_from_slice(&bytes[a..m]);
                b.extend_from_slice(&bytes[e..]);
                f.get_mut(&n).unwrap().0 = Some(b);
                ("swap", Some(k as u64))
            }
            // truncated somewhere after the header
            6 => {
                let p = HEADER + rng.next(bytes.len() - HEADER);
                let mut b = bytes.clone();
                b.truncate(p);
                f.get_mut(&n).unwrap().0 = Some(b);
                let k = recs.iter().position(|&(a, e)| p >= a && p < e).unwrap();
                ("truncate", Some(k as u64))
            }
            // a flipped byte in the seal
            _ => {
                let mut s = f[&n].1.clone().unwrap().into_bytes();
                let p = rng.next(s.len());
                s[p] ^= 1 << rng.next(7);
                f.get_mut(&n).unwrap().1 = Some(String::from_utf8_lossy(&s).into_owned());
                ("seal", None)
            }
        };
        let r = check(&key, &f);
        assert!(
            !r.problems.is_empty(),
            "trial {trial}: {kind} in segment {n} accepted"
        );
        // located: the first problem names the segment (and the record, when one is to blame)
        let first = &r.problems[0];
        let located = first.segment == n
            && (want_record.is_none() || first.record == want_record)
            && r.problems
                .iter()
                .all(|p| p.segment == n || p.segment == n + 1);
        assert!(
            located,
            "trial {trial}: {kind} at segment {n} record {want_record:?}, reported {:?}",
            r.problems
        );
        tally(kind, located);
    }
    // a whole segment (file and seal) removed from the middle
    let mut f = clean.clone();
    f.remove(&segs[1]);
    let r = check(&key, &f);
    assert_eq!(r.problems[0].segment, segs[1], "{:?}", r.problems);
    // segments swapped (renamed)
    let mut f = clean.clone();
    let (a, b) = (f[&segs[0]].clone(), f[&segs[1]].clone());
    f.insert(segs[0], b);
    f.insert(segs[1], a);
    assert!(!check(&key, &f).problems.is_empty());
    // a seal replaced by one signed with another key
    let other = tmp("other");
    let other_log = build(&other, 700);
    let mut f = clean.clone();
    f.get_mut(&segs[0]).unwrap().1 = load(&other)[&segs[0]].1.clone();
    let r = check(&key, &f);
    assert!(
        r.problems.iter().any(|p| p.what.contains("another key")),
        "{:?}",
        r.problems
    );
    drop(other_log);
    for (k, (n, ok)) in &counts {
        println!("{k}: {ok}/{n} detected and located");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn a_torn_tail_after_a_crash_is_set_aside_sealed_and_reported() {
    let dir = tmp("crash");
    let limits = Limits::default();
    let (mut log, _) = EvidenceLog::open(&dir, limits, 0).unwrap();
    for i in 0..10u64 {
        log.append(
            &Line {
                source: "auth.log",
                raw: format!("line {i}").as_bytes(),
                ..Line::default()
            },
            0,
        )
        .unwrap();
    }
    log.flush().unwrap();
    // a crash in the middle of writing the 11th record
    drop(log);
    let p = segment_path(&dir, 1);
    let mut b = std::fs::read(&p).unwrap();
    b.extend_from_slice(&[0, 0, 0, 60, 1, 2, 3]);
    std::fs::write(&p, &b).unwrap();
    let open = verify(&dir).unwrap();
    assert!(open.problems.is_empty(), "{:?}", open.problems);
    assert_eq!(open.open_segment, Some(1));
    assert_eq!(open.records, 10);
    let (mut log, rec) = EvidenceLog::open(&dir, limits, 5 * S).unwrap();
    assert!(
        rec.notes
            .iter()
            .any(|n| n.contains("torn last record (7 bytes, after record 10)")),
        "{rec:?}"
    );
    assert_eq!(log.next_seq(), 11);
    log.append(
        &Line {
            source: "auth.log",
            raw: b"after",
            ..Line::default()
        },
        6 * S,
    )
    .unwrap();
    log.seal(7 * S).unwrap();
    let r = verify(&dir).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.records, 11);
    assert_eq!(r.segments, 2);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("7 bytes of a torn last record")),
        "{:?}",
        r.notes
    );
    assert!(dir.join("seg-00000001.torn").exists());

    // damage that is not a torn tail is never sealed over
    drop(log);
    let (mut log, _) = EvidenceLog::open(&dir, limits, 8 * S).unwrap();
    log.append(
        &Line {
            source: "auth.log",
            raw: b"one",
            ..Line::default()
        },
        8 * S,
    )
    .unwrap();
    log.append(
        &Line {
            source: "auth.log",
            raw: b"two",
            ..Line::default()
        },
        8 * S,
    )
    .unwrap();
    log.flush().unwrap();
    drop(log);
    let p = segment_path(&dir, 3);
    let mut b = std::fs::read(&p).unwrap();
    let at = b.len() - 40;
    b[at] ^= 0x20;
    std::fs::write(&p, &b).unwrap();
    let (_log, rec) = EvidenceLog::open(&dir, limits, 9 * S).unwrap();
    assert!(rec.notes[0].contains("segment 3 was damaged"), "{rec:?}");
    let r = verify(&dir).unwrap();
    assert!(
        r.problems.iter().any(|p| p.segment == 3),
        "{:?}",
        r.problems
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sealed_segments_are_copied_to_a_second_directory_that_verifies_alone() {
    let dir = tmp("copy-src");
    let copy = tmp("copy-dst");
    // compressed once sealed: the copy verifies on its own all the same
    let limits = Limits {
        max_bytes: 2_000,
        max_age: i64::MAX,
        compress: true,
    };
    let (mut log, _) = EvidenceLog::open(&dir, limits, 0).unwrap();
    for i in 0..20u64 {
        log.append(
            &Line {
                source: "a",
                raw: format!("first run {i}").as_bytes(),
                ..Line::default()
            },
            0,
        )
        .unwrap();
    }
    log.seal(0).unwrap();
    drop(log);
    // a later run turns the copy on: earlier seals are copied too
    let (mut log, _) = EvidenceLog::open(&dir, limits, 0).unwrap();
    log.copy_sealed_to(&copy).unwrap();
    for i in 0..40u64 {
        log.append(
            &Line {
                source: "a",
                raw: format!("second run {i} {}", "y".repeat(60)).as_bytes(),
                ..Line::default()
            },
            0,
        )
        .unwrap();
    }
    log.seal(0).unwrap();
    let a = verify(&dir).unwrap();
    let b = verify(&copy).unwrap();
    assert!(
        a.problems.is_empty() && b.problems.is_empty(),
        "{:?} {:?}",
        a.problems,
        b.problems
    );
    assert_eq!((b.records, b.segments), (60, a.segments));
    assert!(b.segments >= 3);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&copy);
}

#[test]
fn merkle_roots_follow_rfc_6962() {
    // RFC 6962 / certificate-transparency test vectors: the empty tree and one leaf
    assert_eq!(
        hex(&merkle_root(&[])),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&merkle_root(&[leaf_hash(b"")])),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let leaves: Vec<Hash> = (0..5u8).map(|i| leaf_hash(&[i])).collect();
    let l01 = sha256(&[&[1], &leaves[0], &leaves[1]]);
    let l23 = sha256(&[&[1], &leaves[2], &leaves[3]]);
    let l03 = sha256(&[&[1], &l01, &l23]);
    assert_eq!(merkle_root(&leaves), sha256(&[&[1], &l03, &leaves[4]]));
}

/// RFC 9162's PATH(m, D[n]), by its recursive definition.
fn rfc_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = rfc_path(m, &leaves[..k]);
        p.push(merkle_root(&leaves[k..]));
        p
    } else {
        let mut p = rfc_path(m - k, &leaves[k..]);
        p.push(merkle_root(&leaves[..k]));
        p
    }
}

#[test]
fn inclusion_proofs_are_rfc_9162_audit_paths() {
    use bundle::{verify_inclusion, Tree};
    for n in 1..70usize {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = Tree::new(leaves.clone());
        let root = merkle_root(&leaves);
        assert_eq!(tree.root(), root, "n={n}");
        for (m, leaf) in leaves.iter().enumerate() {
            let p = tree.proof(m);
            assert_eq!(p, rfc_path(m, &leaves), "n={n} m={m}");
            assert!(verify_inclusion(m as u64, n as u64, leaf, &p, &root));
            // another index, another size, another leaf, a changed or shortened path: refused
            if n > 1 {
                assert!(!verify_inclusion(
                    ((m + 1) % n) as u64,
                    n as u64,
                    leaf,
                    &p,
                    &root
                ));
                let mut q = p.clone();
                q[0][0] ^= 1;
                assert!(!verify_inclusion(m as u64, n as u64, leaf, &q, &root));
                assert!(!verify_inclusion(m as u64, n as u64, leaf, &p[1..], &root));
            }
            assert!(!verify_inclusion(
                m as u64,
                n as u64,
                &leaf_hash(b"x"),
                &p,
                &root
            ));
        }
    }
}

fn custodian() -> bundle::Custodian {
    bundle::Custodian {
        user: "analyst".into(),
        host: "web01".into(),
        at: "2026-11-23T10:00:00Z".into(),
        tool: "tansa test".into(),
        note: Some("case 1".into()),
    }
}

fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_bundle_verifies_offline_and_fails_when_any_byte_changes() {
    let dir = tmp("bundle");
    let mut log = build(&dir, 1500);
    // one more line, not sealed yet: counted, not exported
    log.append(
        &Line {
            source: "/var/log/auth.log",
            raw: b"Failed password for root from 203.0.113.9 port 1 ssh2",
            ..Line::default()
        },
        0,
    )
    .unwrap();
    log.flush().unwrap();
    let sel = bundle::Selection {
        kind: "entity".into(),
        value: "203.0.113.9".into(),
        tokens: vec!["203.0.113.9".into()],
        ..Default::default()
    };
    let out = dir.join("bundle");
    let ex = bundle::export(&dir, &sel, &out, &custodian()).unwrap();
    // 203.0.113.9 is i % 250 == 9, not 90..99 or 190..199
    assert_eq!(ex.lines, (0..1500).filter(|i| i % 250 == 9).count() as u64);
    assert!(ex.segments >= 2, "{ex:?}");
    assert_eq!(ex.unsealed, 1);
    let r = bundle::verify_bundle(&out, Some(&hex(&log.public_key()))).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.lines, ex.lines);
    assert_eq!(r.bundle_sha256, ex.bundle_sha256);
    assert!(std::fs::read_to_string(dir.join("custody.jsonl"))
        .unwrap()
        .contains(&ex.bundle_sha256));
    // a bundle for an alert's lines, by source and offset
    let mut by_line = bundle::Selection {
        kind: "alert".into(),
        value: "a1".into(),
        ..Default::default()
    };
    by_line.lines.insert(("/var/log/auth.log".into(), 120 * 7));
    let out2 = dir.join("bundle2");
    assert_eq!(
        bundle::export(&dir, &by_line, &out2, &custodian())
            .unwrap()
            .lines,
        1
    );
    // another trusted key: refused
    let r = bundle::verify_bundle(&out, Some(&hex(&[7u8; 32]))).unwrap();
    assert!(
        r.problems[0].contains("not the trusted key"),
        "{:?}",
        r.problems
    );

    // every byte of every file, flipped one at a time: each change refused, none accepted
    let (mut tried, mut refused) = (0u64, 0u64);
    for f in files_of(&out) {
        let orig = std::fs::read(&f).unwrap();
        for i in 0..orig.len() {
            let mut b = orig.clone();
            b[i] ^= 0x20;
            std::fs::write(&f, &b).unwrap();
            tried += 1;
            match bundle::verify_bundle(&out, None) {
                Ok(r) if !r.problems.is_empty() => refused += 1,
                Err(_) => refused += 1,
                Ok(_) => panic!("{}: byte {i} changed and accepted", f.display()),
            }
        }
        std::fs::write(&f, &orig).unwrap();
    }
    assert_eq!(tried, refused);
    println!("bundle: {refused}/{tried} single-byte changes refused");
    // a removed line, an added file
    let lines = out.join("lines.jsonl");
    let text = std::fs::read_to_string(&lines).unwrap();
    let fewer: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&lines, fewer).unwrap();
    assert!(!bundle::verify_bundle(&out, None)
        .unwrap()
        .problems
        .is_empty());
    std::fs::write(&lines, &text).unwrap();
    std::fs::write(out.join("seals/extra"), "x").unwrap();
    let r = bundle::verify_bundle(&out, None).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("seals/extra: not in the manifest")),
        "{:?}",
        r.problems
    );
    // a bundle is written to a new directory only
    assert!(bundle::export(&dir, &sel, &out, &custodian()).is_err());
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_writer_per_evidence_directory() {
    let dir = tmp("lock");
    let (log, _) = EvidenceLog::open(&dir, Limits::default(), 0).unwrap();
    assert!(matches!(
        EvidenceLog::open(&dir, Limits::default(), 0),
        Err(EvidenceError::Busy(_))
    ));
    drop(log);
    assert!(EvidenceLog::open(&dir, Limits::default(), 0).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compressed_segments_verify_export_and_refuse_tampering() {
    let dir = tmp("zst");
    let limits = Limits {
        max_bytes: 40_000,
        max_age: i64::MAX,
        compress: true,
    };
    let (mut log, _) = EvidenceLog::open(&dir, limits, 0).unwrap();
    let mut plain = 0usize;
    for i in 0..2000u64 {
        let raw = format!(
            "Mar 14 10:00:{:02} web01 sshd[{i}]: Failed password for root from 203.0.113.{} port {} ssh2",
            i % 60,
            i % 250,
            40000 + i
        );
        plain += raw.len();
        log.append(
            &Line {
                source: "/var/log/auth.log",
                host: Some("web01"),
                offset: i * 100,
                raw: raw.as_bytes(),
                ..Line::default()
            },
            0,
        )
        .unwrap();
    }
    log.seal(1).unwrap();
    let segs = segments(&dir).unwrap();
    assert!(segs.len() >= 4, "{segs:?}");
    let packed: u64 = segs
        .iter()
        .map(|&n| {
            assert!(!segment_path(&dir, n).exists());
            std::fs::metadata(compressed_path(&dir, n)).unwrap().len()
        })
        .sum();
    let sealed: u64 = segs
        .iter()
        .map(|&n| {
            let t = std::fs::read_to_string(seal_path(&dir, n)).unwrap();
            Seal::parse(&t).unwrap().0.bytes
        })
        .sum();
    println!(
        "compressed evidence: {packed} bytes for {sealed} sealed bytes ({plain} bytes of lines; each record's 32-byte chain value does not compress)"
    );
    assert!(packed * 2 < sealed);
    let r = verify(&dir).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.records, 2000);
    // a bundle from compressed segments
    let out = dir.join("bundle");
    let sel = bundle::Selection {
        kind: "entity".into(),
        value: "203.0.113.9".into(),
        tokens: vec!["203.0.113.9".into()],
        ..Default::default()
    };
    assert_eq!(
        bundle::export(&dir, &sel, &out, &custodian())
            .unwrap()
            .lines,
        8
    );
    assert!(bundle::verify_bundle(&out, None)
        .unwrap()
        .problems
        .is_empty());
    // flipped bytes in a compressed segment: every one refused, at that segment
    let z = compressed_path(&dir, segs[1]);
    let orig = std::fs::read(&z).unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for _ in 0..300 {
        let mut b = orig.clone();
        let at = rng.next(b.len());
        b[at] ^= 1 << rng.next(8);
        std::fs::write(&z, &b).unwrap();
        let r = verify(&dir).unwrap();
        assert!(
            r.problems.iter().any(|p| p.segment == segs[1]),
            "byte {at} of {} accepted",
            z.display()
        );
    }
    std::fs::write(&z, &orig).unwrap();
    assert!(verify(&dir).unwrap().problems.is_empty());
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}
