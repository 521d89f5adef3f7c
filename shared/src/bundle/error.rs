//! `BundleError`: every way writing, reading or verifying a bundle or a key file can fail.
use std::path::PathBuf;

use super::hex;
use super::sign::KeyId;

/// Why a bundle or key could not be written, read or trusted.
///
/// A cause is written into the message rather than chained as `source()`, so an `{:#}` chain
/// (how the binaries print errors) says it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A bundle file was read but is not acceptable; `problem` says why.
    #[error("bundle {}: {problem}", path.display())]
    InFile {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Box<BundleError>,
    },
    /// The file does not start with [`super::MAGIC`]: not a fovea bundle.
    #[error(
        "not a fovea bundle (starts with {}, expected FOVEABND)",
        hex::encode(found)
    )]
    BadMagic {
        /// The first bytes found (up to 8).
        found: Vec<u8>,
    },
    /// The bundle was written by a newer (or unknown) format version.
    #[error(
        "bundle format version {found} is not supported (this build reads version {supported}); update the software"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The header sets flags this version does not know.
    #[error("bundle header has unknown flags {flags:#06x}")]
    UnsupportedFlags {
        /// The flags found.
        flags: u16,
    },
    /// The file is shorter than its header says (an interrupted copy or flash).
    #[error("bundle is truncated: {got} bytes, {needed} needed")]
    Truncated {
        /// Bytes the header (or the header itself) requires.
        needed: u64,
        /// Bytes present.
        got: u64,
    },
    /// The file is longer than its header says; the extra bytes would not be signed.
    #[error("bundle has {extra} unexpected bytes after the model")]
    TrailingBytes {
        /// Bytes past the declared end.
        extra: u64,
    },
    /// A section (or the whole file) is over its size limit.
    #[error("bundle {what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// `manifest`, `model` or `file`.
        what: &'static str,
        /// Declared or actual size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bundle is signed by a key that is not among the trusted ones.
    #[error("bundle is signed by key {key_id}, which is not trusted here")]
    UnknownKey {
        /// Fingerprint of the signer's key.
        key_id: KeyId,
    },
    /// The signature does not match the contents: the bundle was altered or corrupted.
    #[error(
        "bundle signature by key {key_id} does not verify: the bundle was altered or corrupted"
    )]
    BadSignature {
        /// Fingerprint of the claimed signer's key.
        key_id: KeyId,
    },
    /// The manifest bytes do not decode.
    #[error("bundle manifest does not decode: {0}")]
    Manifest(String),
    /// The manifest decodes but its contents are inconsistent or out of range.
    #[error("invalid bundle manifest: {0}")]
    InvalidManifest(String),
    /// The model's SHA-256 differs from the one recorded in the manifest.
    #[error(
        "model SHA-256 is {}, but the manifest records {}",
        hex::encode(found),
        hex::encode(expected)
    )]
    HashMismatch {
        /// Hash recorded in the manifest.
        expected: [u8; 32],
        /// Hash of the model bytes present.
        found: [u8; 32],
    },
    /// A key file has the wrong length, encoding or permissions.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A public key is not 64 hex digits or not a valid ed25519 point.
    #[error("invalid ed25519 public key: {0}")]
    InvalidKey(String),
    /// The operating system's random number generator failed (key generation).
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

impl BundleError {
    /// The error with the bundle file's path attached (I/O errors already carry one).
    pub fn in_file(self, path: impl Into<PathBuf>) -> BundleError {
        match self {
            e @ (BundleError::Io { .. } | BundleError::InFile { .. }) => e,
            e => BundleError::InFile {
                path: path.into(),
                problem: Box::new(e),
            },
        }
    }

    /// The underlying error, looking through [`BundleError::InFile`].
    pub fn kind(&self) -> &BundleError {
        match self {
            BundleError::InFile { problem, .. } => problem.kind(),
            e => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_file_names_the_file_once() {
        let e = BundleError::Truncated {
            needed: 120,
            got: 7,
        }
        .in_file("/boot/model.fovea")
        .in_file("/elsewhere");
        assert_eq!(
            e.to_string(),
            "bundle /boot/model.fovea: bundle is truncated: 7 bytes, 120 needed"
        );
        assert!(matches!(e.kind(), BundleError::Truncated { got: 7, .. }));
        // The problem is in the message, not chained as `source()` too: an `{:#}` chain (how
        // the binaries print errors) would say it twice.
        assert!(std::error::Error::source(&e).is_none());
        let io = BundleError::Io {
            path: "/boot/model.fovea".into(),
            cause: std::io::Error::other("gone"),
        };
        assert!(std::error::Error::source(&io).is_none());
        assert_eq!(io.to_string(), "/boot/model.fovea: gone");
    }
}
