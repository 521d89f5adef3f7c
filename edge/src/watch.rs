//! Watching the camera's export folder by polling: a file is taken once its size and
//! modification time are unchanged over one poll interval (the camera may still be writing),
//! and each path is taken once; a taken file that does not decode yet can be put back
//! ([`Watcher::retry`]) until it has settled. Hidden files and names ending in `.tmp`, `.part`, `.partial`
//! or `~` (a writer's temp files) are ignored.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Polls one folder.
pub struct Watcher {
    dir: PathBuf,
    last_seen: HashMap<PathBuf, (u64, Option<SystemTime>)>,
    taken: HashSet<PathBuf>,
}

/// Whether a file name looks like a capture rather than a temp file.
pub fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !(name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".partial"]
            .iter()
            .any(|s| name.to_ascii_lowercase().ends_with(s)))
}

impl Watcher {
    /// A watcher of `dir` (which must exist when polled).
    pub fn new(dir: impl Into<PathBuf>) -> Watcher {
        Watcher {
            dir: dir.into(),
            last_seen: HashMap::new(),
            taken: HashSet::new(),
        }
    }

    /// Puts a taken file back: it is offered again once it is unchanged over a poll (for a
    /// file that did not decode yet — its writer may only have paused).
    pub fn retry(&mut self, path: &Path) {
        self.taken.remove(path);
    }

    /// Files that became stable since the previous poll, sorted by name.
    pub fn poll(&mut self) -> std::io::Result<Vec<PathBuf>> {
        let mut ready = Vec::new();
        let mut now = HashMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if self.taken.contains(&path) || !is_candidate(&path) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let stamp = (meta.len(), meta.modified().ok());
            if meta.len() > 0 && self.last_seen.get(&path) == Some(&stamp) {
                ready.push(path);
            } else {
                now.insert(path, stamp);
            }
        }
        self.last_seen = now;
        ready.sort();
        self.taken.extend(ready.iter().cloned());
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_is_taken_once_after_it_stops_changing_and_temp_files_never() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Watcher::new(dir.path());
        let a = dir.path().join("a.png");
        let mut f = std::fs::File::create(&a).unwrap();
        f.write_all(b"first half").unwrap();
        std::fs::write(dir.path().join(".hidden.png"), b"x").unwrap();
        std::fs::write(dir.path().join("b.png.part"), b"x").unwrap();
        assert!(w.poll().unwrap().is_empty(), "first sight: not yet stable");
        f.write_all(b" and the second").unwrap();
        f.flush().unwrap();
        assert!(w.poll().unwrap().is_empty(), "grew since the last poll");
        assert_eq!(w.poll().unwrap(), vec![a.clone()]);
        assert!(w.poll().unwrap().is_empty(), "taken once");
        assert!(!is_candidate(Path::new("x.TMP")) && is_candidate(Path::new("x.dcm")));
    }
}
