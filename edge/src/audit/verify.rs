//! Checking an audit log's chain: every record's own hash, its link to the one before, its
//! sequence number, and a torn (unterminated) last line.
use std::path::Path;

use anyhow::Context;

use super::record::{GENESIS, Record, body_hash, split_line};

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Whole records that verify, from the start.
    pub valid: u64,
    /// Hash of the last valid record ([`GENESIS`] if none).
    pub last_hash: String,
    /// The first bad record: 1-based line number and what is wrong.
    pub first_bad: Option<(u64, String)>,
    /// Bytes of an unterminated last line (a write cut by power loss), if any.
    pub torn_tail: Option<usize>,
}

impl Verified {
    /// Whether every record verifies and nothing is torn.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none() && self.torn_tail.is_none()
    }
}

/// Checks the log's bytes.
pub fn verify_bytes(bytes: &[u8]) -> Verified {
    let (whole, torn) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&bytes[..=i], &bytes[i + 1..]),
        None => (&bytes[..0], bytes),
    };
    let mut v = Verified {
        valid: 0,
        last_hash: GENESIS.to_owned(),
        first_bad: None,
        torn_tail: (!torn.is_empty()).then_some(torn.len()),
    };
    let lines: Vec<&[u8]> = match whole.split_last() {
        Some((_newline, body)) => body.split(|&b| b == b'\n').collect(),
        None => Vec::new(),
    };
    for (i, raw) in lines.into_iter().enumerate() {
        let n = i as u64 + 1;
        if let Err(reason) = check_line(raw, n, &v.last_hash) {
            v.first_bad = Some((n, reason));
            return v;
        }
        let line = std::str::from_utf8(raw).unwrap_or_default();
        v.last_hash = split_line(line)
            .map(|(_, h)| h.to_owned())
            .unwrap_or_default();
        v.valid = n;
    }
    v
}

fn check_line(raw: &[u8], n: u64, prev: &str) -> Result<(), String> {
    let line = std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_owned())?;
    let (body, hash) = split_line(line).ok_or("no trailing \"hash\" field")?;
    if body_hash(&body) != hash {
        return Err("the record does not match its hash (altered)".into());
    }
    let record: Record =
        serde_json::from_str(&body).map_err(|e| format!("not an audit record: {e}"))?;
    if record.seq != n {
        return Err(format!(
            "sequence number {} where {n} was expected",
            record.seq
        ));
    }
    if record.prev != prev {
        return Err(
            "prev does not match the previous record's hash (a record was removed, \
                    inserted or reordered)"
                .into(),
        );
    }
    Ok(())
}

/// Checks the log file at `path`.
pub fn verify(path: &Path) -> anyhow::Result<Verified> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(verify_bytes(&bytes))
}
