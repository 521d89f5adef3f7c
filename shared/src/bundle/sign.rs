//! Ed25519 keys, key files, and what exactly a bundle signature covers.
//!
//! The signature is ed25519 ([RFC 8032], `ed25519-dalek`, strict verification) over a 32-byte
//! digest:
//!
//! ```text
//! digest = SHA-256( "fovea bundle signature\0"
//!                   ‖ header[0..56]          magic, version, flags, lengths, signer key
//!                   ‖ SHA-256(manifest)
//!                   ‖ SHA-256(model) )
//! ```
//!
//! so every byte of the file except the signature itself is covered, and the model is hashed
//! only once: the same SHA-256 is then compared with the manifest's `model_sha256`.
//!
//! Key files: the secret key is its raw 32-byte seed, written with mode 0600 on unix and
//! refused on read when group or others may read it (as OpenSSH does); the public key is 64 hex
//! digits and a newline, safe to copy onto every device.
//!
//! [RFC 8032]: https://www.rfc-editor.org/rfc/rfc8032
use std::fmt;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::Signer;
use rand::TryRngCore;
use sha2::{Digest, Sha256};

use super::error::BundleError;
use super::format::SIGNED_HEADER_LEN;
use super::hex;

/// Domain separation: these signatures can never be mistaken for signatures of anything else.
const SIGNING_CONTEXT: &[u8] = b"fovea bundle signature\0";
/// Length of a secret key file.
const SECRET_KEY_FILE_LEN: usize = 32;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of `bytes`, lower-case hex (as `sha256sum` prints it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest a bundle signature signs (see the module doc).
pub fn signed_digest(
    signed_header: &[u8; SIGNED_HEADER_LEN],
    manifest_sha256: &[u8; 32],
    model_sha256: &[u8; 32],
) -> [u8; 32] {
    Sha256::new()
        .chain_update(SIGNING_CONTEXT)
        .chain_update(signed_header)
        .chain_update(manifest_sha256)
        .chain_update(model_sha256)
        .finalize()
        .into()
}

/// Short fingerprint of a public key: the first 8 bytes of its SHA-256, shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A secret signing key (stays on the training host; zeroed on drop).
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// The key for a 32-byte seed (deterministic; for tests and reproducible fixtures).
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A fresh key from the operating system's random number generator (`host keygen`).
    pub fn generate() -> Result<SigningKey, BundleError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| BundleError::Random(e.to_string()))?;
        Ok(SigningKey::from_seed(seed))
    }

    /// A key drawn from `rng`, which must be cryptographically secure.
    pub fn generate_from(rng: &mut impl rand::CryptoRng) -> SigningKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        SigningKey::from_seed(seed)
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs a bundle digest (see [`signed_digest`]).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 64] {
        self.0.sign(digest).to_bytes()
    }

    /// Writes the secret key file; refuses to overwrite an existing file. Mode 0600 on unix.
    pub fn write_file(&self, path: &Path) -> Result<(), BundleError> {
        let io = |cause| BundleError::Io {
            path: path.to_owned(),
            cause,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.0.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a secret key file written by [`SigningKey::write_file`].
    pub fn read_file(path: &Path) -> Result<SigningKey, BundleError> {
        let bad = |reason: String| BundleError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|cause| BundleError::Io {
            path: path.to_owned(),
            cause,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "permissions {mode:04o} let others read this secret key; run chmod 600"
                )));
            }
        }
        if meta.len() != SECRET_KEY_FILE_LEN as u64 {
            return Err(bad(format!(
                "a secret key file holds {SECRET_KEY_FILE_LEN} bytes, this one {}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|cause| BundleError::Io {
            path: path.to_owned(),
            cause,
        })?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            bad(format!(
                "a secret key file holds {SECRET_KEY_FILE_LEN} bytes, this one {}",
                bytes.len()
            ))
        })?;
        Ok(SigningKey::from_seed(seed))
    }
}

impl fmt::Debug for SigningKey {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.verifying_key().key_id())
    }
}

/// A public key that devices trust to sign bundles.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// The key for 32 public-key bytes; fails if they are not a valid curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, BundleError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(VerifyingKey)
            .map_err(|e| BundleError::InvalidKey(e.to_string()))
    }

    /// The 32 public-key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key's fingerprint.
    pub fn key_id(&self) -> KeyId {
        key_id_of(&self.to_bytes())
    }

    /// Whether `signature` over `digest` verifies with this key (strict RFC 8032 checks).
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(digest, &sig).is_ok()
    }

    /// Writes the public key file: 64 hex digits and a newline.
    pub fn write_file(&self, path: &Path) -> Result<(), BundleError> {
        std::fs::write(path, format!("{self}\n")).map_err(|cause| BundleError::Io {
            path: path.to_owned(),
            cause,
        })
    }

    /// Reads a public key file written by [`VerifyingKey::write_file`] (surrounding whitespace
    /// is ignored).
    pub fn read_file(path: &Path) -> Result<VerifyingKey, BundleError> {
        let bad = |reason: String| BundleError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|cause| BundleError::Io {
            path: path.to_owned(),
            cause,
        })?;
        if meta.len() > 1024 {
            return Err(bad(format!(
                "{} bytes is far too long for a public key (64 hex digits)",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|cause| BundleError::Io {
            path: path.to_owned(),
            cause,
        })?;
        text.trim().parse().map_err(|e| match e {
            BundleError::InvalidKey(reason) => bad(reason),
            e => e,
        })
    }
}

/// The fingerprint of raw public-key bytes (also for keys that fail to parse).
pub(crate) fn key_id_of(public: &[u8; 32]) -> KeyId {
    let h = sha256(public);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    KeyId(id)
}

impl fmt::Display for VerifyingKey {
    /// 64 lower-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.to_bytes()))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.key_id())
    }
}

impl std::str::FromStr for VerifyingKey {
    type Err = BundleError;
    /// Parses 64 hex digits.
    fn from_str(s: &str) -> Result<VerifyingKey, BundleError> {
        let bytes = hex::decode::<32>(s).ok_or_else(|| {
            BundleError::InvalidKey(format!(
                "expected 64 hex digits, found {:?}",
                s.chars().take(80).collect::<String>()
            ))
        })?;
        VerifyingKey::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn signs_and_verifies_digests() {
        let key = SigningKey::generate_from(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1));
        let public = key.verifying_key();
        let digest = signed_digest(&[7; SIGNED_HEADER_LEN], &sha256(b"m"), &sha256(b"w"));
        let sig = key.sign_digest(&digest);
        assert!(public.verify_digest(&digest, &sig));
        let mut other = digest;
        other[0] ^= 1;
        assert!(!public.verify_digest(&other, &sig));
        let stranger = SigningKey::from_seed([9; 32]).verifying_key();
        assert!(!stranger.verify_digest(&digest, &sig));
    }

    #[test]
    fn os_rng_gives_distinct_keys() {
        let a = SigningKey::generate().unwrap().verifying_key();
        let b = SigningKey::generate().unwrap().verifying_key();
        assert_ne!(a, b);
    }

    #[test]
    fn public_key_hex_round_trips() {
        let public = SigningKey::from_seed([3; 32]).verifying_key();
        let text = public.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<VerifyingKey>().unwrap(), public);
        assert!("zz".parse::<VerifyingKey>().is_err());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = SigningKey::from_seed([0xAB; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.starts_with("SigningKey(public "), "{shown}");
    }
}
