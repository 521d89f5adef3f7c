//! Decoding image files and DICOM objects into one 8-bit RGB raster.
//!
//! [`decode_file`] and [`decode_bytes`] sniff the content, never the name:
//!
//! - `DICM` at offset 128 (or at 0, for files written without the preamble): DICOM via
//!   dicom-rs. The first frame is decoded; greyscale goes through the Modality LUT
//!   (rescale), the first VOI window (else min–max) and MONOCHROME1 inversion, see
//!   `grey.rs`; colour (RGB, YBR_FULL, YBR_FULL_422, planar or not, 8 or 16 bits) becomes
//!   RGB, see `colour.rs`. JPEG baseline/extended/lossless and RLE are decoded; JPEG 2000
//!   and JPEG-LS are refused with [`DecodeError::UnsupportedTransferSyntax`].
//! - otherwise PNG, JPEG, TIFF or BMP via `image`, EXIF orientation applied.
//!
//! **Invariant:** no patient identifier (name, ID, birth date, accession number…) is copied
//! out of a DICOM object: [`Source`] holds imaging attributes only, and error messages
//! never quote element values.
//!
//! Images above [`MAX_PIXELS`] are refused before their pixels are decoded.
use std::path::{Path, PathBuf};

mod colour;
mod dicom;
mod error;
mod grey;
mod raster;

pub use error::DecodeError;

/// Largest accepted image, in pixels per frame (100 Mpx; a 3216x2136 fundus photograph is
/// 6.9 Mpx). Larger declared sizes are refused as likely decompression bombs.
pub const MAX_PIXELS: u64 = 100_000_000;

/// A decoded image: always 8-bit RGB (grey replicated to three channels), plus what it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The pixels, 8 bits per channel.
    pub image: image::RgbImage,
    /// The file format and, for DICOM, the imaging attributes that shaped the pixels.
    pub source: Source,
}

/// Where a [`Decoded`] image came from. Deliberately holds no patient or study identifier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// A raster image file.
    Raster {
        /// Lower-case format name: `png`, `jpeg`, `tiff` or `bmp`.
        format: String,
    },
    /// A DICOM object.
    Dicom {
        /// Modality (0008,0060), e.g. `OP` for ophthalmic photography, `CR`/`DX` for radiographs.
        modality: Option<String>,
        /// Photometric Interpretation as stored, e.g. `MONOCHROME1`, `RGB`, `YBR_FULL_422`.
        photometric: String,
        /// Bits Stored per sample.
        bits_stored: u16,
        /// Transfer syntax UID, e.g. `1.2.840.10008.1.2.1`.
        transfer_syntax: String,
        /// Number of frames in the object; only the first is decoded.
        frames: u32,
    },
}

/// Decode the file at `path` (DICOM or raster, sniffed from content) into 8-bit RGB.
pub fn decode_file(path: &Path) -> Result<Decoded, DecodeError> {
    let bytes = std::fs::read(path).map_err(|cause| DecodeError::Io {
        file: path.to_path_buf(),
        cause,
    })?;
    decode_at(&bytes, path)
}

/// Decode an in-memory file; `name` identifies it in error messages (e.g. a watched-folder
/// entry or a fuzzing case) and is not used to guess the format.
pub fn decode_bytes(bytes: &[u8], name: &str) -> Result<Decoded, DecodeError> {
    decode_at(bytes, &PathBuf::from(name))
}

/// Sniff and dispatch.
fn decode_at(bytes: &[u8], file: &Path) -> Result<Decoded, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty {
            file: file.to_path_buf(),
        });
    }
    if bytes.get(128..132) == Some(b"DICM") {
        dicom::decode_dicom(bytes, file, dicom::Preamble::Present)
    } else if bytes.starts_with(b"DICM") {
        dicom::decode_dicom(bytes, file, dicom::Preamble::Absent)
    } else {
        raster::decode_raster(bytes, file)
    }
}

/// Refuse images above [`MAX_PIXELS`] before decoding them.
fn check_size(file: &Path, width: u64, height: u64) -> Result<(), DecodeError> {
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge {
            file: file.to_path_buf(),
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_names_the_file() {
        let e = decode_bytes(&[], "inbox/scan-0001.png").unwrap_err();
        assert_eq!(e.to_string(), "inbox/scan-0001.png: empty file");
    }

    #[test]
    fn dicom_magic_without_valid_meta_is_a_dicom_error() {
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0xFF; 16]);
        let e = decode_bytes(&bytes, "bad.dcm").unwrap_err();
        assert!(
            matches!(e, DecodeError::Dicom { .. } | DecodeError::Truncated { .. }),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("bad.dcm: "), "{e}");
    }

    #[test]
    fn oversized_declared_dimensions_are_refused() {
        assert!(check_size(Path::new("a"), 10_000, 10_000).is_ok());
        let e = check_size(Path::new("bomb.png"), 10_001, 10_000).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge { width: 10_001, .. }));
        assert!(check_size(Path::new("a"), u64::MAX, u64::MAX).is_err());
    }

    #[test]
    fn png_bomb_header_is_refused_before_decoding() {
        // A valid PNG signature and IHDR declaring 50000x50000 (2.5 Gpx), an empty IDAT.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&50_000u32.to_be_bytes());
        ihdr.extend_from_slice(&50_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // The decoder reads up to the first IDAT before reporting dimensions.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let e = decode_bytes(&png, "bomb.png").unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::TooLarge {
                    width: 50_000,
                    height: 50_000,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    /// CRC-32 (IEEE) as PNG chunks use it.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
