//! The fixed 120-byte header: magic, version, flags, section lengths, signer key and signature.
//!
//! Every multi-byte integer is little-endian. The magic and the version sit at the same offsets
//! in every format version, so any reader can tell "not a bundle" from "a newer bundle" before
//! it knows anything else about the layout.
use super::error::BundleError;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"FOVEABND";
/// The format version this crate writes and the newest one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Header flags this version knows; all reserved, so a v1 bundle has flags 0.
pub const KNOWN_FLAGS: u16 = 0;

/// Largest manifest accepted (postcard bytes).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest model accepted (512 MiB: an fp32 EfficientNet-B7 is about 260 MB).
pub const MAX_MODEL_BYTES: u64 = 512 << 20;

/// Offset of the format version (`u16`).
pub const OFFSET_VERSION: usize = 8;
/// Offset of the flags (`u16`).
pub const OFFSET_FLAGS: usize = 10;
/// Offset of the manifest length (`u32`).
pub const OFFSET_MANIFEST_LEN: usize = 12;
/// Offset of the model length (`u64`).
pub const OFFSET_MODEL_LEN: usize = 16;
/// Offset of the signer's ed25519 public key (32 bytes).
pub const OFFSET_SIGNER: usize = 24;
/// Offset of the ed25519 signature (64 bytes); everything before it is signed.
pub const OFFSET_SIGNATURE: usize = 56;
/// Length of the header, and the offset of the manifest.
pub const HEADER_LEN: usize = 120;
/// The header bytes covered by the signature: all of them but the signature itself.
pub const SIGNED_HEADER_LEN: usize = OFFSET_SIGNATURE;
/// Largest possible bundle file.
pub const MAX_BUNDLE_BYTES: u64 = HEADER_LEN as u64 + MAX_MANIFEST_BYTES + MAX_MODEL_BYTES;

// The layout diagram in `bundle/mod.rs` must match these offsets.
const _: () = {
    assert!(MAGIC.len() == OFFSET_VERSION);
    assert!(OFFSET_VERSION + 2 == OFFSET_FLAGS);
    assert!(OFFSET_FLAGS + 2 == OFFSET_MANIFEST_LEN);
    assert!(OFFSET_MANIFEST_LEN + 4 == OFFSET_MODEL_LEN);
    assert!(OFFSET_MODEL_LEN + 8 == OFFSET_SIGNER);
    assert!(OFFSET_SIGNER + 32 == OFFSET_SIGNATURE);
    assert!(OFFSET_SIGNATURE + 64 == HEADER_LEN);
    assert!(HEADER_LEN == 120);
    // The manifest length field is a u32.
    assert!(MAX_MANIFEST_BYTES <= u32::MAX as u64);
    // A whole bundle is addressable on 32-bit boards (armv7), so no length check can overflow.
    assert!(MAX_BUNDLE_BYTES < u32::MAX as u64);
};

/// The decoded header of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Flags (0 in version 1).
    pub flags: u16,
    /// Length of the postcard manifest in bytes.
    pub manifest_len: u32,
    /// Length of the model in bytes.
    pub model_len: u64,
    /// The signer's ed25519 public key.
    pub signer: [u8; 32],
    /// The ed25519 signature (see [`super::sign`] for what it covers).
    pub signature: [u8; 64],
}

impl Header {
    /// The header as written to the file.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..OFFSET_VERSION].copy_from_slice(&MAGIC);
        out[OFFSET_VERSION..OFFSET_FLAGS].copy_from_slice(&self.version.to_le_bytes());
        out[OFFSET_FLAGS..OFFSET_MANIFEST_LEN].copy_from_slice(&self.flags.to_le_bytes());
        out[OFFSET_MANIFEST_LEN..OFFSET_MODEL_LEN]
            .copy_from_slice(&self.manifest_len.to_le_bytes());
        out[OFFSET_MODEL_LEN..OFFSET_SIGNER].copy_from_slice(&self.model_len.to_le_bytes());
        out[OFFSET_SIGNER..OFFSET_SIGNATURE].copy_from_slice(&self.signer);
        out[OFFSET_SIGNATURE..HEADER_LEN].copy_from_slice(&self.signature);
        out
    }

    /// Parses and checks the header at the start of `bytes`, which may be a whole file or any
    /// prefix of one. Checks, in order: magic, version, flags, header length, the declared
    /// lengths against the size limits, and that the file holds exactly header + manifest +
    /// model. Never panics and allocates nothing.
    pub fn parse(bytes: &[u8]) -> Result<Header, BundleError> {
        let got = bytes.len() as u64;
        let magic_seen = &bytes[..bytes.len().min(MAGIC.len())];
        if magic_seen != &MAGIC[..magic_seen.len()] {
            return Err(BundleError::BadMagic {
                found: magic_seen.to_vec(),
            });
        }
        let Some(head) = bytes.first_chunk::<HEADER_LEN>() else {
            // A newer version may have a longer header: report the version first if we can.
            if let Some(v) = bytes.get(OFFSET_VERSION..OFFSET_FLAGS) {
                check_version(u16::from_le_bytes([v[0], v[1]]))?;
            }
            return Err(BundleError::Truncated {
                needed: HEADER_LEN as u64,
                got,
            });
        };
        let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
        let version = u16_at(OFFSET_VERSION);
        check_version(version)?;
        let flags = u16_at(OFFSET_FLAGS);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(BundleError::UnsupportedFlags { flags });
        }
        let mut u32_bytes = [0u8; 4];
        u32_bytes.copy_from_slice(&head[OFFSET_MANIFEST_LEN..OFFSET_MODEL_LEN]);
        let manifest_len = u32::from_le_bytes(u32_bytes);
        let mut u64_bytes = [0u8; 8];
        u64_bytes.copy_from_slice(&head[OFFSET_MODEL_LEN..OFFSET_SIGNER]);
        let model_len = u64::from_le_bytes(u64_bytes);
        let mut signer = [0u8; 32];
        signer.copy_from_slice(&head[OFFSET_SIGNER..OFFSET_SIGNATURE]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&head[OFFSET_SIGNATURE..HEADER_LEN]);
        let header = Header {
            version,
            flags,
            manifest_len,
            model_len,
            signer,
            signature,
        };
        check_limits(manifest_len as u64, model_len)?;
        // Both lengths are within the limits, so this sum cannot overflow (asserted above).
        let needed = header.total_len();
        if got < needed {
            return Err(BundleError::Truncated { needed, got });
        }
        if got > needed {
            return Err(BundleError::TrailingBytes {
                extra: got - needed,
            });
        }
        Ok(header)
    }

    /// Length of the whole bundle this header describes.
    pub fn total_len(&self) -> u64 {
        HEADER_LEN as u64 + self.manifest_len as u64 + self.model_len
    }

    /// Byte range of the manifest in the bundle (valid once [`Header::parse`] accepted it).
    pub fn manifest_range(&self) -> std::ops::Range<usize> {
        HEADER_LEN..HEADER_LEN + self.manifest_len as usize
    }

    /// Byte range of the model in the bundle (valid once [`Header::parse`] accepted it).
    pub fn model_range(&self) -> std::ops::Range<usize> {
        let start = HEADER_LEN + self.manifest_len as usize;
        start..start + self.model_len as usize
    }
}

/// Rejects a version this crate cannot read.
fn check_version(found: u16) -> Result<(), BundleError> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(BundleError::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        })
    }
}

/// Rejects section lengths over [`MAX_MANIFEST_BYTES`] / [`MAX_MODEL_BYTES`].
pub(crate) fn check_limits(manifest_len: u64, model_len: u64) -> Result<(), BundleError> {
    if manifest_len > MAX_MANIFEST_BYTES {
        return Err(BundleError::TooLarge {
            what: "manifest",
            size: manifest_len,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    if model_len > MAX_MODEL_BYTES {
        return Err(BundleError::TooLarge {
            what: "model",
            size: model_len,
            limit: MAX_MODEL_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(manifest_len: u32, model_len: u64) -> Header {
        Header {
            version: FORMAT_VERSION,
            flags: 0,
            manifest_len,
            model_len,
            signer: [0xAA; 32],
            signature: [0x55; 64],
        }
    }

    #[test]
    fn header_round_trips_and_is_little_endian() {
        let h = header(0x0102_0304, 0x0506_0708_090A_0B0C);
        let b = h.to_bytes();
        assert_eq!(&b[..8], b"FOVEABND");
        assert_eq!(b[8..10], [1, 0]);
        assert_eq!(b[12..16], [4, 3, 2, 1]);
        assert_eq!(b[16..24], [0x0C, 0x0B, 0x0A, 9, 8, 7, 6, 5]);
        // Lengths this large are over the limits, so parse the fields with small ones instead.
        let h = header(3, 2);
        let mut file = h.to_bytes().to_vec();
        file.extend_from_slice(&[1, 2, 3, 4, 5]);
        assert_eq!(Header::parse(&file).unwrap(), h);
        assert_eq!(h.manifest_range(), 120..123);
        assert_eq!(h.model_range(), 123..125);
    }

    #[test]
    fn rejects_bad_magic_even_on_a_short_prefix() {
        assert!(matches!(
            Header::parse(b"PK\x03\x04"),
            Err(BundleError::BadMagic { found }) if found == b"PK\x03\x04"
        ));
        assert!(matches!(
            Header::parse(b"FOVEA"),
            Err(BundleError::Truncated {
                needed: 120,
                got: 5
            })
        ));
        assert!(matches!(
            Header::parse(b""),
            Err(BundleError::Truncated {
                needed: 120,
                got: 0
            })
        ));
    }

    #[test]
    fn future_version_wins_over_a_short_header() {
        let mut b = header(0, 0).to_bytes();
        b[8] = 2;
        assert!(matches!(
            Header::parse(&b[..20]),
            Err(BundleError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        ));
    }

    #[test]
    fn rejects_unknown_flags_and_trailing_bytes() {
        let mut b = header(0, 0).to_bytes().to_vec();
        b[10] = 1;
        assert!(matches!(
            Header::parse(&b),
            Err(BundleError::UnsupportedFlags { flags: 1 })
        ));
        b[10] = 0;
        b.push(0);
        assert!(matches!(
            Header::parse(&b),
            Err(BundleError::TrailingBytes { extra: 1 })
        ));
    }

    #[test]
    fn limits_are_checked_before_the_length() {
        let b = header(0, MAX_MODEL_BYTES + 1).to_bytes();
        assert!(matches!(
            Header::parse(&b),
            Err(BundleError::TooLarge { what: "model", .. })
        ));
        let b = header(MAX_MANIFEST_BYTES as u32 + 1, 0).to_bytes();
        assert!(matches!(
            Header::parse(&b),
            Err(BundleError::TooLarge {
                what: "manifest",
                ..
            })
        ));
        let b = header(u32::MAX, u64::MAX).to_bytes();
        assert!(matches!(
            Header::parse(&b),
            Err(BundleError::TooLarge { .. })
        ));
    }
}
