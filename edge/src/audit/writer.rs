//! Appending records: recover a torn tail, continue the chain, fsync every record.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::record::Record;
use super::verify::verify_bytes;

/// An open audit log positioned after its last valid record.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
    last_hash: String,
    /// Image SHA-256s already recorded (so a service restart never screens a file twice).
    seen: std::collections::HashSet<String>,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`. A torn last line is moved to
    /// `<path>.torn-<ms>` and cut off, with a warning on stderr; a log whose chain is broken
    /// is refused (run `edge verify-log` and move it aside).
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let v = verify_bytes(&bytes);
        if let Some((line, reason)) = &v.first_bad {
            bail!(
                "audit log {} is broken at line {line}: {reason}; keep it for investigation \
                 (move it aside) before screening again",
                path.display()
            );
        }
        if let Some(torn) = v.torn_tail {
            let keep = bytes.len() - torn;
            let aside = PathBuf::from(format!("{}.torn-{}", path.display(), now_ms()));
            std::fs::write(&aside, &bytes[keep..])
                .with_context(|| format!("saving the torn tail to {}", aside.display()))?;
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            f.set_len(keep as u64)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("truncating the torn tail of {}", path.display()))?;
            eprintln!(
                "edge: warning: {}: the last record was cut off ({torn} bytes, power loss?); \
                 moved to {} and continuing after record {}",
                path.display(),
                aside.display(),
                v.valid
            );
        }
        let seen = String::from_utf8_lossy(&bytes[..bytes.len() - v.torn_tail.unwrap_or(0)])
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|r| r["image_sha256"].as_str().map(str::to_owned))
            .collect();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {} for appending", path.display()))?;
        Ok(AuditLog {
            path: path.to_owned(),
            file,
            next_seq: v.valid + 1,
            last_hash: v.last_hash,
            seen,
        })
    }

    /// Whether an image with this SHA-256 (hex) was already recorded.
    pub fn has_image(&self, image_sha256: &str) -> bool {
        self.seen.contains(image_sha256)
    }

    /// Appends a record (its `seq` and `prev` are set here) and fsyncs it to disk.
    pub fn append(&mut self, mut record: Record) -> anyhow::Result<Record> {
        record.seq = self.next_seq;
        record.prev = self.last_hash.clone();
        let (line, hash) = record.encode()?;
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.next_seq += 1;
        self.last_hash = hash;
        self.seen.insert(record.image_sha256.clone());
        Ok(record)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
