//! Feeds reloaded when they change: the long-running server polls a [`FeedWatch`], which
//! loads the feeds again once their files have changed and then stayed still for one poll (a
//! feed being written is not read half-way).

use std::path::Path;
use std::time::SystemTime;

use crate::feeds::FeedSpec;
use crate::{Intel, IntelError};

/// What the feed files look like: every file's path, size and modification time.
type Stamp = Vec<(std::path::PathBuf, Option<(u64, SystemTime)>)>;

/// Watches the files of some feeds.
#[derive(Debug)]
pub struct FeedWatch {
    specs: Vec<FeedSpec>,
    /// The files as they were when the feeds were last loaded (or tried).
    loaded: Stamp,
    /// The files at the previous poll.
    last: Stamp,
}

impl FeedWatch {
    /// Watches `specs`, whose feeds were just loaded as they are now.
    pub fn new(specs: Vec<FeedSpec>) -> FeedWatch {
        let loaded = stamp(&specs);
        FeedWatch {
            last: loaded.clone(),
            loaded,
            specs,
        }
    }

    /// The feeds loaded again when their files changed since the last load and have not
    /// changed since the previous poll; `None` when there is nothing new. A load that fails is
    /// returned once (the caller keeps what it had) and tried again at the next change.
    pub fn poll(&mut self) -> Option<Result<Intel, IntelError>> {
        let now = stamp(&self.specs);
        let settled = now == self.last;
        self.last = now;
        if !settled || self.last == self.loaded {
            return None;
        }
        self.loaded = self.last.clone();
        Some(Intel::load(&self.specs))
    }
}

fn stamp(specs: &[FeedSpec]) -> Stamp {
    let mut out = Vec::new();
    for s in specs {
        add(&s.path, 0, &mut out);
    }
    out
}

/// A file, or a directory's files (a MISP feed directory's one level down too).
fn add(path: &Path, depth: u8, out: &mut Stamp) {
    let meta = std::fs::metadata(path).ok();
    if meta.as_ref().is_some_and(|m| m.is_dir()) && depth < 2 {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        out.push((path.to_owned(), None));
        for e in entries {
            add(&e, depth + 1, out);
        }
        return;
    }
    let m = meta.and_then(|m| Some((m.len(), m.modified().ok()?)));
    out.push((path.to_owned(), m));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_feed_is_loaded_again_once_it_stays_still() {
        let d = std::env::temp_dir().join(format!("tansa-feedwatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("feeds")).unwrap();
        let f = d.join("feeds/block.txt");
        std::fs::write(&f, "198.51.100.7\n").unwrap();
        let spec: FeedSpec = d.join("feeds").display().to_string().parse().unwrap();
        let mut w = FeedWatch::new(vec![spec]);
        assert!(w.poll().is_none(), "nothing changed");
        // sizes differ, so the change is seen whatever the clock's resolution
        std::fs::write(&f, "198.51.100.7\n203.0.113.9\n").unwrap();
        assert!(w.poll().is_none(), "changed during the last poll: wait");
        let intel = w.poll().expect("reloaded").unwrap();
        assert_eq!(intel.indicators().len(), 2);
        assert!(w.poll().is_none(), "loaded once");
        // a new file in the directory is a new feed
        std::fs::write(d.join("feeds/more.txt"), "evil.example\n").unwrap();
        assert!(w.poll().is_none());
        let intel = w.poll().expect("reloaded").unwrap();
        assert_eq!(intel.feeds().len(), 2);
        // a feed that no longer loads is reported once
        std::fs::write(
            d.join("feeds/broken.json"),
            "{\"type\": \"bundle\", \"objects\": [",
        )
        .unwrap();
        assert!(w.poll().is_none());
        assert!(w.poll().expect("tried").is_err());
        assert!(w.poll().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
