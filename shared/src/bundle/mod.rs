//! The signed device bundle: one file holding a manifest and the model, flashed to the boards.
//!
//! ```text
//!  offset  size  field                                  signed
//!  ──────  ────  ─────────────────────────────────────  ──────
//!       0     8  magic "FOVEABND"                        yes
//!       8     2  format version, u16 LE (= 1)            yes
//!      10     2  flags, u16 LE (= 0, reserved)           yes
//!      12     4  manifest length M, u32 LE (≤ 1 MiB)     yes
//!      16     8  model length N, u64 LE (≤ 512 MiB)      yes
//!      24    32  signer's ed25519 public key             yes
//!      56    64  ed25519 signature                       —
//!     120     M  manifest, postcard (see `Manifest`)     yes (by SHA-256)
//!   120+M     N  model bytes                             yes (by SHA-256)
//!  120+M+N       end of file: nothing may follow
//! ```
//!
//! The signature covers the header's first 56 bytes and the SHA-256 of each section
//! ([`sign`] has the exact message); the manifest also records the model's SHA-256. Magic and
//! version keep their offsets in every future version, so an old device reports
//! "unsupported version", not garbage. A reader checks, in order: magic, version, flags, length,
//! size limits, trusted signer, signature, manifest, model hash ([`read`]).
//!
//! ```no_run
//! # fn demo(manifest: shared::bundle::Manifest, model: Vec<u8>) -> Result<(), shared::bundle::BundleError> {
//! use shared::bundle::{SigningKey, read_bundle, write_bundle};
//! let key = SigningKey::generate()?;
//! let bytes = write_bundle(&manifest, &model, &key)?;
//! let bundle = read_bundle(&bytes, &[key.verifying_key()])?;
//! assert_eq!(bundle.model, model);
//! # Ok(()) }
//! ```
pub mod error;
pub mod format;
mod hex;
pub mod manifest;
pub mod read;
pub mod sign;
pub mod write;

pub use error::BundleError;
pub use format::{
    FORMAT_VERSION, HEADER_LEN, Header, MAGIC, MAX_BUNDLE_BYTES, MAX_MANIFEST_BYTES,
    MAX_MODEL_BYTES,
};
pub use manifest::{Manifest, OperatingThreshold};
pub use read::{Bundle, Unverified, inspect, read_bundle, read_bundle_file};
pub use sign::{KeyId, SigningKey, VerifyingKey, sha256, sha256_hex};
pub use write::write_bundle;
