//! Model-based test of the tailer: random sequences of writes (whole and split lines),
//! rename-and-create rotations, copytruncate rotations, polls and restarts (a new tailer
//! resumed from what was delivered), on real files. Every numbered line must be delivered
//! exactly once. Prints the figure.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tansa_collect::tail::{Identity, Resume, TailEvent, Tailer, DRAIN_POLLS};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the "store" kept: instances and the offset after their last delivered line.
#[derive(Default)]
struct Delivered {
    identity: HashMap<u64, Identity>,
    next: HashMap<u64, u64>,
    lines: Vec<String>,
}

impl Delivered {
    fn take(&mut self, evs: Vec<TailEvent>) {
        for e in evs {
            match e {
                TailEvent::Opened {
                    fingerprint,
                    identity,
                    ..
                } => {
                    if std::env::var_os("TAIL_TRACE").is_some() {
                        eprintln!("  opened {fingerprint:x} {identity:?}");
                    }
                    self.identity.insert(fingerprint, identity);
                }
                TailEvent::Lines {
                    fingerprint,
                    lines,
                    next,
                } => {
                    assert!(
                        self.identity.contains_key(&fingerprint),
                        "lines before Opened"
                    );
                    let prev = self.next.insert(fingerprint, next).unwrap_or(0);
                    assert!(next >= prev, "offsets go forward");
                    for (l, off) in lines {
                        if std::env::var_os("TAIL_TRACE").is_some() {
                            eprintln!(
                                "  {fingerprint:x} @{off}: {}",
                                String::from_utf8_lossy(&l[..l.len().min(12)])
                            );
                        }
                        self.lines.push(String::from_utf8(l.to_vec()).unwrap());
                    }
                }
            }
        }
    }

    fn resume(&self) -> Vec<Resume> {
        self.identity
            .iter()
            .map(|(&fingerprint, &identity)| Resume {
                fingerprint,
                identity,
                offset: self.next.get(&fingerprint).copied().unwrap_or(0),
            })
            .collect()
    }
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

fn run(seed: u64, steps: usize) -> (usize, usize, usize, usize) {
    let dir = std::env::temp_dir().join(format!("tansa-tail-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("app.log");
    let mut rng = Rng(seed);
    let mut tailer = Tailer::new(path.clone(), Vec::new(), false);
    let mut got = Delivered::default();
    let mut written = 0usize;
    let mut half: Option<String> = None;
    let (mut rotations, mut truncations, mut restarts) = (0, 0, 0);
    // the tailer runs before the first rotation
    let mut rotated = true;
    // the tailer has opened the file now at the path (a file renamed away before it was
    // ever polled was never known)
    let mut seen_current = false;
    let mut polled_lines = 0usize;
    let poll = |t: &mut Tailer, got: &mut Delivered| {
        let mut evs = Vec::new();
        t.poll(&mut evs).unwrap();
        got.take(evs);
    };
    let trace = std::env::var_os("TAIL_TRACE").is_some();
    for _ in 0..steps {
        let op = rng.below(20);
        if trace {
            eprintln!("op {op} written {written} got {}", got.lines.len());
        }
        match op {
            0..=9 => {
                // a few whole lines, possibly finishing a split one
                let mut s = half.take().unwrap_or_default();
                for _ in 0..=rng.below(5) {
                    written += 1;
                    s += &format!("line {written:06} {}\n", "x".repeat(rng.below(80) as usize));
                }
                append(&path, &s);
            }
            10 => {
                // the first half of a line now, the rest later
                if half.is_none() {
                    written += 1;
                    let l = format!("line {written:06} split\n");
                    let cut = 1 + rng.below(l.len() as u64 - 1) as usize;
                    append(&path, &l[..cut]);
                    half = Some(l[cut..].to_owned());
                }
            }
            11..=15 => {
                poll(&mut tailer, &mut got);
                rotated = false;
                seen_current = path.exists();
                polled_lines = std::fs::read(&path)
                    .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                    .unwrap_or(0);
            }
            // at most one rotation between polls: the tailer polls several times a second,
            // logs rotate daily (two rotations unseen lose the file between them)
            16 => {
                if half.is_none() && !rotated && seen_current {
                    rotated = true;
                    rotations += 1;
                    std::fs::rename(&path, dir.join(format!("app.log.{rotations}"))).unwrap_or(());
                    append(&path, "");
                    polled_lines = 0;
                    seen_current = false;
                }
            }
            17 => {
                // a file copied and truncated before the tailer saw any line of it cannot be
                // told from the copy (nothing of its start is known): not modelled
                if half.is_none() && path.exists() && !rotated && polled_lines > 0 {
                    rotated = true;
                    truncations += 1;
                    std::fs::copy(&path, dir.join(format!("app.log.c{truncations}"))).unwrap();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                    polled_lines = 0;
                }
            }
            18 => {
                // restart: a new tailer from what the store kept
                restarts += 1;
                tailer = Tailer::new(path.clone(), got.resume(), false);
            }
            _ => std::thread::sleep(std::time::Duration::from_micros(rng.below(300))),
        }
    }
    if let Some(rest) = half.take() {
        append(&path, &rest);
    }
    for _ in 0..=DRAIN_POLLS {
        poll(&mut tailer, &mut got);
    }
    let mut count: HashMap<usize, usize> = HashMap::new();
    for l in &got.lines {
        let n: usize = l[5..11]
            .parse()
            .unwrap_or_else(|_| panic!("bad line {l:?}"));
        *count.entry(n).or_default() += 1;
    }
    let missing: Vec<usize> = (1..=written).filter(|n| !count.contains_key(n)).collect();
    let twice: Vec<usize> = count
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&n, _)| n)
        .collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "seed {seed}: {written} written, missing {:?}, duplicated {:?}",
        &missing[..missing.len().min(10)],
        &twice[..twice.len().min(10)]
    );
    std::fs::remove_dir_all(&dir).unwrap();
    (written, rotations, truncations, restarts)
}

#[test]
fn no_line_lost_or_duplicated_across_rotations_and_restarts() {
    let mut total = (0, 0, 0, 0);
    let seeds = 40;
    for seed in 1..=seeds {
        let r = run(seed, 400);
        total = (total.0 + r.0, total.1 + r.1, total.2 + r.2, total.3 + r.3);
    }
    println!(
        "tail model: {seeds} runs, {} lines, {} rename rotations, {} copytruncates, {} restarts: every line exactly once",
        total.0, total.1, total.2, total.3
    );
}

fn lines(evs: &[TailEvent]) -> Vec<String> {
    evs.iter()
        .flat_map(|e| match e {
            TailEvent::Lines { lines, .. } => lines
                .iter()
                .map(|(l, _)| String::from_utf8_lossy(l).into_owned())
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn renamed_while_down_is_read_to_its_end() {
    let dir = std::env::temp_dir().join(format!("tansa-tail-down-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("a.log");
    append(&p, "one\n");
    let mut t = Tailer::new(p.clone(), Vec::new(), false);
    let mut evs = Vec::new();
    t.poll(&mut evs).unwrap();
    assert_eq!(lines(&evs), ["one"]);
    let mut got = Delivered::default();
    got.take(evs);
    append(&p, "two\nthree\n");
    std::fs::rename(&p, dir.join("a.log.1")).unwrap();
    append(&p, "four\n");
    let mut t = Tailer::new(p.clone(), got.resume(), false);
    let mut evs = Vec::new();
    t.poll(&mut evs).unwrap();
    assert_eq!(lines(&evs), ["two", "three", "four"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
