//! The audit log: one JSON line per screened image, hash-chained and fsynced, append-only.
//!
//! ```text
//! {"seq":1,"prev":"000…0","time_unix_ms":…,"device":…,"bundle_sha256":…,…,"hash":"<64 hex>"}
//! {"seq":2,"prev":"<hash of line 1>",…,"hash":"…"}
//! ```
//! `hash` is the SHA-256 (hex) of the line's bytes before `,"hash":…` plus a closing `}` — the
//! record without its hash, exactly as written — so any change to a record breaks its own hash,
//! and `prev` ties it to the record before (a deleted or reordered record breaks the next
//! `prev`). No patient name, identifier or pixel is ever recorded: the image is named by its
//! SHA-256 only.
//!
//! A power cut can leave a torn last line (no newline). [`verify()`] reports it while the records
//! before it stay valid; [`AuditLog::open`] moves the torn fragment to `audit.jsonl.torn-<ms>`
//! (kept for inspection) and truncates the log to its last whole record before appending.
pub mod record;
pub mod verify;
pub mod writer;

pub use record::Record;
pub use verify::verify;
pub use writer::AuditLog;
