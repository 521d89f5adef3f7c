//! Raster image files (PNG, JPEG, TIFF, BMP) through the `image` crate, format sniffed from content.
use std::io::Cursor;
use std::path::Path;

use image::error::UnsupportedErrorKind;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::error::{DecodeError, error_chain};
use super::{Decoded, MAX_PIXELS, Source, check_size};

/// Decode a raster image whose format is guessed from its first bytes, never from the name.
///
/// The EXIF orientation, where present, is applied; alpha is dropped; grey is replicated
/// to three channels; 16-bit samples are scaled to 8 bits by `image`.
pub(crate) fn decode_raster(bytes: &[u8], file: &Path) -> Result<Decoded, DecodeError> {
    let format = image::guess_format(bytes).map_err(|_| DecodeError::NotAnImage {
        file: file.to_path_buf(),
        reason: describe_unknown(bytes).to_string(),
    })?;
    let name = format_name(format);
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| map_image_error(e, file, &name))?;
    let (width, height) = decoder.dimensions();
    check_size(file, u64::from(width), u64::from(height))?;
    // A broken EXIF block must not cost the image: fall back to the stored orientation.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        ImageError::Limits(_) => DecodeError::TooLarge {
            file: file.to_path_buf(),
            width: width.into(),
            height: height.into(),
            limit: MAX_PIXELS,
        },
        e => map_image_error(e, file, &name),
    })?;
    image.apply_orientation(orientation);
    Ok(Decoded {
        image: image.to_rgb8(),
        source: Source::Raster { format: name },
    })
}

/// Lower-case format name as stored in [`Source::Raster`]: `png`, `jpeg`, `tiff`, `bmp`.
fn format_name(format: ImageFormat) -> String {
    format!("{format:?}").to_lowercase()
}

/// A short, content-free description of unrecognised bytes (the content itself is never
/// echoed: a mis-named report could hold patient data).
fn describe_unknown(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(512)];
    let texty = head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80);
    if texty {
        "content looks like text"
    } else {
        "unrecognised binary signature"
    }
}

/// Turn an `image` error into a [`DecodeError`] naming the file.
fn map_image_error(err: ImageError, file: &Path, format: &str) -> DecodeError {
    let file = file.to_path_buf();
    match err {
        ImageError::Unsupported(u) => {
            let format = match u.kind() {
                UnsupportedErrorKind::Format(hint) => hint.to_string(),
                _ => format.to_string(),
            };
            DecodeError::UnsupportedFormat {
                format,
                file,
                detail: u.to_string(),
            }
        }
        ImageError::Limits(l) => DecodeError::Corrupt {
            file,
            reason: format!("{format}: {l}"),
        },
        other => {
            let (reason, eof) = error_chain(&other);
            // Decoders report running out of data in their own words rather than as an
            // `UnexpectedEof` I/O error; treat both as truncation.
            let lower = reason.to_lowercase();
            if eof || lower.contains("end of") || lower.contains("eof") {
                DecodeError::Truncated {
                    file,
                    reason: format!("{format}: {reason}"),
                }
            } else {
                DecodeError::Corrupt {
                    file,
                    reason: format!("{format}: {reason}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage};

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn png_rgb_round_trips_exactly() {
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([x as u8 * 40, y as u8 * 100, 7]));
        let bytes = encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png);
        let d = decode_raster(&bytes, Path::new("a.png")).unwrap();
        assert_eq!(d.image, img);
        assert_eq!(
            d.source,
            Source::Raster {
                format: "png".into()
            }
        );
    }

    #[test]
    fn grey_is_replicated_and_16_bit_is_scaled() {
        let grey = GrayImage::from_fn(2, 1, |x, _| Luma([if x == 0 { 10 } else { 200 }]));
        let bmp = encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Png);
        let d = decode_raster(&bmp, Path::new("g.png")).unwrap();
        assert_eq!(d.image.get_pixel(0, 0), &Rgb([10, 10, 10]));
        assert_eq!(d.image.get_pixel(1, 0), &Rgb([200, 200, 200]));

        // 65535 → 255, 257·128 = 32896 → 128 exactly.
        let deep: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_raw(2, 1, vec![65535, 32896]).unwrap();
        let tiff = encode(&DynamicImage::ImageLuma16(deep), ImageFormat::Tiff);
        let d = decode_raster(&tiff, Path::new("deep.tif")).unwrap();
        assert_eq!(d.image.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(d.image.get_pixel(1, 0), &Rgb([128, 128, 128]));
        assert_eq!(
            d.source,
            Source::Raster {
                format: "tiff".into()
            }
        );
    }

    #[test]
    fn format_comes_from_content_not_name() {
        let img = RgbImage::from_pixel(4, 4, Rgb([1, 2, 3]));
        let bmp = encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Bmp);
        let d = decode_raster(&bmp, Path::new("misnamed.jpg")).unwrap();
        assert_eq!(d.image, img);
        assert_eq!(
            d.source,
            Source::Raster {
                format: "bmp".into()
            }
        );
    }

    #[test]
    fn gif_is_recognised_but_unsupported() {
        let e =
            decode_raster(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", Path::new("x.gif")).unwrap_err();
        assert!(matches!(e, DecodeError::UnsupportedFormat { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("x.gif: unsupported image: "),
            "{e}"
        );
        assert!(e.to_string().contains("Gif"), "{e}");
    }

    #[test]
    fn text_is_not_an_image_and_is_not_echoed() {
        let e = decode_raster(b"Patient: Jane Doe\n", Path::new("notes.png")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "notes.png: not a supported image (expected PNG, JPEG, TIFF, BMP or DICOM; \
             content looks like text)"
        );
    }
}
