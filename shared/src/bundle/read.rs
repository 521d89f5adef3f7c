//! Reading a bundle: every check, in a fixed order, before anything in it is trusted.
//!
//! Order: magic, version, flags, header length, size limits, file length (all in
//! [`Header::parse`]), then the signer among the trusted keys, the signature, the manifest
//! decode and validation, and last the model's SHA-256 against the manifest. Nothing is
//! allocated from a declared length before that length passed the limits and the file length,
//! and no input can make these functions panic (fuzzed and tested with random bytes).
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use super::error::BundleError;
use super::format::{Header, MAX_BUNDLE_BYTES, SIGNED_HEADER_LEN};
use super::manifest::Manifest;
use super::sign::{KeyId, VerifyingKey, key_id_of, sha256, signed_digest};

/// A verified bundle: signed by a trusted key, manifest valid, model hash matching.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The manifest.
    pub manifest: Manifest,
    /// The trusted key that signed it.
    pub signer: VerifyingKey,
    /// The model bytes.
    pub model: Vec<u8>,
}

/// A bundle's header and manifest, read **without** checking the signature or the model hash.
///
/// For diagnostics only (`edge info`, support dumps): anyone can write a file that inspects
/// cleanly. Never preprocess, gate or decide with an `Unverified` manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The header as found.
    pub header: Header,
    /// Fingerprint of the key the header names as signer.
    pub signer: KeyId,
    /// The manifest as found (it decodes and validates, nothing more).
    pub manifest: Manifest,
}

/// Verifies `bytes` against `trusted` keys and returns the bundle (the model is copied).
pub fn read_bundle(bytes: &[u8], trusted: &[VerifyingKey]) -> Result<Bundle, BundleError> {
    let v = verify(bytes, trusted)?;
    let model = bytes.get(v.model).map(<[u8]>::to_vec).unwrap_or_default();
    Ok(Bundle {
        manifest: v.manifest,
        signer: v.signer,
        model,
    })
}

/// Reads and verifies a bundle file; every error names the file. The file is read once, and its
/// buffer becomes [`Bundle::model`] (no second copy of the weights).
pub fn read_bundle_file(path: &Path, trusted: &[VerifyingKey]) -> Result<Bundle, BundleError> {
    let mut bytes = read_limited(path)?;
    let v = verify(&bytes, trusted).map_err(|e| e.in_file(path))?;
    bytes.truncate(v.model.end);
    bytes.drain(..v.model.start);
    Ok(Bundle {
        manifest: v.manifest,
        signer: v.signer,
        model: bytes,
    })
}

/// Reads the header and manifest of `bytes` **without verifying** signature or model hash
/// (see [`Unverified`]). The layout checks of [`read_bundle`] still apply.
pub fn inspect(bytes: &[u8]) -> Result<Unverified, BundleError> {
    let header = Header::parse(bytes)?;
    let manifest = Manifest::decode(section(bytes, header.manifest_range())?)?;
    Ok(Unverified {
        header,
        signer: key_id_of(&header.signer),
        manifest,
    })
}

/// What verification yields; the model stays where it is in the buffer.
struct Verified {
    manifest: Manifest,
    signer: VerifyingKey,
    model: Range<usize>,
}

/// All the checks of [`read_bundle`], in the order of the module doc.
fn verify(bytes: &[u8], trusted: &[VerifyingKey]) -> Result<Verified, BundleError> {
    let header = Header::parse(bytes)?;
    let signer = *trusted
        .iter()
        .find(|k| k.to_bytes() == header.signer)
        .ok_or(BundleError::UnknownKey {
            key_id: key_id_of(&header.signer),
        })?;
    let manifest_bytes = section(bytes, header.manifest_range())?;
    let model_range = header.model_range();
    let model_sha256 = sha256(section(bytes, model_range.clone())?);
    let signed_part = bytes
        .first_chunk::<SIGNED_HEADER_LEN>()
        .ok_or(BundleError::Truncated {
            needed: SIGNED_HEADER_LEN as u64,
            got: bytes.len() as u64,
        })?;
    let digest = signed_digest(signed_part, &sha256(manifest_bytes), &model_sha256);
    if !signer.verify_digest(&digest, &header.signature) {
        return Err(BundleError::BadSignature {
            key_id: signer.key_id(),
        });
    }
    let manifest = Manifest::decode(manifest_bytes)?;
    if manifest.model_sha256 != model_sha256 {
        return Err(BundleError::HashMismatch {
            expected: manifest.model_sha256,
            found: model_sha256,
        });
    }
    Ok(Verified {
        manifest,
        signer,
        model: model_range,
    })
}

/// `bytes[range]`, as an error instead of a panic (cannot fail after [`Header::parse`]).
fn section(bytes: &[u8], range: Range<usize>) -> Result<&[u8], BundleError> {
    let needed = range.end as u64;
    bytes.get(range).ok_or(BundleError::Truncated {
        needed,
        got: bytes.len() as u64,
    })
}

/// The whole file, refusing one over [`MAX_BUNDLE_BYTES`] before reading it.
fn read_limited(path: &Path) -> Result<Vec<u8>, BundleError> {
    let io = |cause| BundleError::Io {
        path: path.to_owned(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let too_large = |size| {
        BundleError::TooLarge {
            what: "file",
            size,
            limit: MAX_BUNDLE_BYTES,
        }
        .in_file(path)
    };
    if len > MAX_BUNDLE_BYTES {
        return Err(too_large(len));
    }
    // `take` guards against a file that grows between the size check and the read.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::tests::sample;
    use crate::bundle::sign::SigningKey;
    use crate::bundle::write::{assemble, write_bundle};

    #[test]
    fn validly_signed_but_wrong_model_hash_is_a_hash_mismatch() {
        let key = SigningKey::from_seed([5; 32]);
        let model = b"weights".to_vec();
        let m = Manifest {
            model_sha256: sha256(&model),
            ..sample()
        };
        let good = write_bundle(&m, &model, &key).unwrap();
        // Tamper with the model, then re-sign honestly: the signature holds, the hash does not.
        let tampered = b"weightS".to_vec();
        let bytes = assemble(&m.encode().unwrap(), &tampered, &sha256(&tampered), &key).unwrap();
        assert_eq!(bytes.len(), good.len());
        let e = read_bundle(&bytes, &[key.verifying_key()]).unwrap_err();
        assert!(
            matches!(e, BundleError::HashMismatch { expected, found }
                if expected == sha256(&model) && found == sha256(&tampered)),
            "{e}"
        );
    }

    #[test]
    fn inspect_reads_without_trusting() {
        let key = SigningKey::from_seed([6; 32]);
        let m = Manifest {
            model_sha256: sha256(b"w"),
            ..sample()
        };
        let mut bytes = write_bundle(&m, b"w", &key).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF; // signature and hash are now wrong; inspect does not care
        let u = inspect(&bytes).unwrap();
        assert_eq!(u.manifest, m);
        assert_eq!(u.signer, key.verifying_key().key_id());
        assert!(read_bundle(&bytes, &[key.verifying_key()]).is_err());
    }
}
