//! Writing a signed bundle: header, postcard manifest, model, in one byte vector.
use super::error::BundleError;
use super::format::{FORMAT_VERSION, HEADER_LEN, Header, SIGNED_HEADER_LEN, check_limits};
use super::manifest::Manifest;
use super::sign::{SigningKey, sha256, signed_digest};

/// The complete bundle for `model` described by `manifest`, signed with `key`.
///
/// `manifest.model_sha256` must be the SHA-256 of `model` ([`super::sha256`]) and the manifest
/// must pass [`Manifest::validate`]. The output is a pure function of the inputs (ed25519
/// signatures are deterministic), so the same run and key always give the same file.
pub fn write_bundle(
    manifest: &Manifest,
    model: &[u8],
    key: &SigningKey,
) -> Result<Vec<u8>, BundleError> {
    let found = sha256(model);
    if found != manifest.model_sha256 {
        return Err(BundleError::HashMismatch {
            expected: manifest.model_sha256,
            found,
        });
    }
    let manifest_bytes = manifest.encode()?;
    assemble(&manifest_bytes, model, &found, key)
}

/// Lays out and signs already-encoded parts without checking that they agree (tests use this
/// to build validly signed but inconsistent bundles).
pub(crate) fn assemble(
    manifest: &[u8],
    model: &[u8],
    model_sha256: &[u8; 32],
    key: &SigningKey,
) -> Result<Vec<u8>, BundleError> {
    check_limits(manifest.len() as u64, model.len() as u64)?;
    let mut header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        // Within MAX_MANIFEST_BYTES, which is asserted to fit a u32.
        manifest_len: manifest.len() as u32,
        model_len: model.len() as u64,
        signer: key.verifying_key().to_bytes(),
        signature: [0; 64],
    };
    let unsigned = header.to_bytes();
    let mut signed_part = [0u8; SIGNED_HEADER_LEN];
    signed_part.copy_from_slice(&unsigned[..SIGNED_HEADER_LEN]);
    let digest = signed_digest(&signed_part, &sha256(manifest), model_sha256);
    header.signature = key.sign_digest(&digest);
    let mut out = Vec::with_capacity(HEADER_LEN + manifest.len() + model.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(manifest);
    out.extend_from_slice(model);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::tests::sample;

    #[test]
    fn refuses_a_manifest_that_does_not_describe_the_model() {
        let key = SigningKey::from_seed([1; 32]);
        let m = Manifest {
            model_sha256: sha256(b"weights"),
            ..sample()
        };
        assert!(write_bundle(&m, b"weights", &key).is_ok());
        assert!(matches!(
            write_bundle(&m, b"other weights", &key),
            Err(BundleError::HashMismatch { .. })
        ));
    }
}
