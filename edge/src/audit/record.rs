//! One audit record and its line encoding with the trailing hash.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::runtime::Finding;
use shared::quality::Verdict;

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Length of the `,"hash":"<64 hex>"}` suffix of every line.
pub const SUFFIX_LEN: usize = 75;

/// What is recorded per screened image. Field order is the line's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1-based position in the log.
    pub seq: u64,
    /// `hash` of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// When the image was screened, ms since the Unix epoch (UTC).
    pub time_unix_ms: u64,
    /// This device.
    pub device: String,
    /// SHA-256 of the bundle file in service.
    pub bundle_sha256: String,
    /// SHA-256 of its model.
    pub model_sha256: String,
    /// SHA-256 of the image file's bytes (never the pixels or the file name).
    pub image_sha256: String,
    /// The quality gate's verdict with its reasons.
    pub quality: Verdict,
    /// Softmax probabilities (absent when ungradable).
    pub probabilities: Option<Vec<f32>>,
    /// Operating threshold applied.
    pub threshold: f32,
    /// The result.
    pub result: Finding,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Record {
    /// The record's line (no newline) and its hash.
    pub fn encode(&self) -> anyhow::Result<(String, String)> {
        let body = serde_json::to_string(self)?;
        let hash = hex(&Sha256::digest(body.as_bytes()));
        let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
        debug_assert_eq!(line.len(), body.len() - 1 + SUFFIX_LEN);
        Ok((line, hash))
    }
}

/// Splits a line into the record body (as hashed) and the stated hash; `None` when the line
/// does not end in a well-formed `,"hash":"<64 hex>"}`.
pub fn split_line(line: &str) -> Option<(String, &str)> {
    let cut = line.len().checked_sub(SUFFIX_LEN)?;
    let (head, suffix) = (line.get(..cut)?, line.get(cut..)?);
    let hash = suffix.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (format!("{head}}}"), hash))
}

/// SHA-256 hex of a record body.
pub fn body_hash(body: &str) -> String {
    hex(&Sha256::digest(body.as_bytes()))
}
