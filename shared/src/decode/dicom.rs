//! DICOM objects (ophthalmic photographs, radiographs) to one 8-bit RGB frame via dicom-rs.
//!
//! Only imaging attributes are read; nothing identifying (patient, study, accession,
//! institution) is copied into [`Source`] or into any error message.
use std::io::Cursor;
use std::path::Path;

use dicom_core::header::HasLength;
use dicom_core::{DicomValue, Tag};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{PixelDecoder, PixelRepresentation, PlanarConfiguration, Rescale};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use image::RgbImage;

use super::colour::{interleave, narrow_to_u8, ybr_full_to_rgb};
use super::error::{DecodeError, error_chain};
use super::grey::{GreyParams, grey_to_u8};
use super::{Decoded, Source, check_size};

/// RLE Lossless: its decoder returns samples in the stored colour space (others return RGB).
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Where the file meta group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preamble {
    /// 128-byte preamble, then `DICM`.
    Present,
    /// `DICM` at offset 0.
    Absent,
}

/// Decode the first frame of a DICOM file held in memory.
pub(crate) fn decode_dicom(
    bytes: &[u8],
    file: &Path,
    preamble: Preamble,
) -> Result<Decoded, DecodeError> {
    let obj = OpenFileOptions::new()
        .read_preamble(match preamble {
            Preamble::Present => ReadPreamble::Always,
            Preamble::Absent => ReadPreamble::Never,
        })
        .from_reader(Cursor::new(bytes))
        .map_err(|e| {
            let (reason, eof) = error_chain(&e);
            if eof {
                DecodeError::Truncated {
                    file: file.to_path_buf(),
                    reason,
                }
            } else {
                DecodeError::Dicom {
                    file: file.to_path_buf(),
                    reason,
                }
            }
        })?;
    decode_object(&obj, file)
}

/// Decode the first frame of a parsed DICOM object.
pub(crate) fn decode_object(obj: &DefaultDicomObject, file: &Path) -> Result<Decoded, DecodeError> {
    let dicom_err = |reason: String| DecodeError::Dicom {
        file: file.to_path_buf(),
        reason,
    };
    let transfer_syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    match TransferSyntaxRegistry.get(&transfer_syntax) {
        Some(ts) if ts.can_decode_all() => {}
        other => {
            return Err(DecodeError::UnsupportedTransferSyntax {
                file: file.to_path_buf(),
                uid: transfer_syntax,
                name: other.map(|ts| ts.name().to_string()),
            });
        }
    }
    let pixel_data = obj
        .element_opt(tags::PIXEL_DATA)
        .map_err(|e| dicom_err(error_chain(&e).0))?
        .ok_or_else(|| DecodeError::NoPixelData {
            file: file.to_path_buf(),
        })?;
    let encapsulated = matches!(pixel_data.value(), DicomValue::PixelSequence(_));

    let rows = required_uint(obj, tags::ROWS, "Rows").map_err(dicom_err)?;
    let cols = required_uint(obj, tags::COLUMNS, "Columns").map_err(dicom_err)?;
    if rows == 0 || cols == 0 {
        return Err(dicom_err(format!("image is {cols}x{rows} pixels")));
    }
    check_size(file, cols.into(), rows.into())?;
    let samples_per_pixel = optional_uint(obj, tags::SAMPLES_PER_PIXEL, "Samples per Pixel")
        .map_err(dicom_err)?
        .unwrap_or(1);
    let bits_allocated =
        required_uint(obj, tags::BITS_ALLOCATED, "Bits Allocated").map_err(dicom_err)?;
    let bits_stored = optional_uint(obj, tags::BITS_STORED, "Bits Stored")
        .map_err(dicom_err)?
        .unwrap_or(bits_allocated);
    let frames = optional_uint(obj, tags::NUMBER_OF_FRAMES, "Number of Frames")
        .map_err(dicom_err)?
        .unwrap_or(1);
    let photometric = optional_str(obj, tags::PHOTOMETRIC_INTERPRETATION)
        .ok_or_else(|| dicom_err("missing Photometric Interpretation".into()))?;
    let modality = optional_str(obj, tags::MODALITY);

    let unsupported = |reason: &str| DecodeError::UnsupportedPhotometric {
        file: file.to_path_buf(),
        photometric: photometric.clone(),
        samples_per_pixel: samples_per_pixel as u16,
        bits_allocated: bits_allocated as u16,
        bits_stored: bits_stored as u16,
        reason: reason.to_string(),
    };
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(unsupported("only 8- and 16-bit allocations are supported"));
    }
    if bits_stored == 0 || bits_stored > bits_allocated {
        return Err(unsupported("Bits Stored must be within 1..=Bits Allocated"));
    }
    let colour = match (samples_per_pixel, photometric.as_str()) {
        (1, "MONOCHROME1" | "MONOCHROME2") => false,
        (1, _) => return Err(unsupported("only MONOCHROME1/2 greyscale is supported")),
        (3, "YBR_FULL_422") if !encapsulated => {
            return Err(unsupported("uncompressed YBR_FULL_422 is not supported"));
        }
        (3, "RGB" | "YBR_FULL" | "YBR_FULL_422") => true,
        // Only produced by JPEG/JPEG 2000 codecs, whose decoders return RGB.
        (3, "YBR_ICT" | "YBR_RCT" | "YBR_PARTIAL_420") if encapsulated => true,
        (3, _) => return Err(unsupported("colour must be RGB or YBR_FULL(_422)")),
        _ => return Err(unsupported("only 1 or 3 samples per pixel are supported")),
    };
    if !encapsulated {
        // Catch short native pixel data here, with a clear message, rather than as a
        // generic "frame out of range" from the decoder.
        let needed = u64::from(rows)
            * u64::from(cols)
            * u64::from(samples_per_pixel)
            * u64::from(bits_allocated / 8);
        let have = pixel_data.value().to_bytes().map(|b| b.len()).unwrap_or(0) as u64;
        if have < needed {
            return Err(DecodeError::Truncated {
                file: file.to_path_buf(),
                reason: format!("pixel data holds {have} bytes, the first frame needs {needed}"),
            });
        }
    }

    let px = obj.decode_pixel_data_frame(0).map_err(|e| {
        let (reason, eof) = error_chain(&e);
        if eof {
            DecodeError::Truncated {
                file: file.to_path_buf(),
                reason,
            }
        } else {
            DecodeError::Corrupt {
                file: file.to_path_buf(),
                reason,
            }
        }
    })?;
    let pixel_err = |e: dicom_pixeldata::Error| DecodeError::Corrupt {
        file: file.to_path_buf(),
        reason: error_chain(&e).0,
    };

    let rgb: Vec<u8> = if colour {
        let mut samples = match bits_allocated {
            8 => px.frame_data(0).map_err(pixel_err)?.to_vec(),
            _ => narrow_to_u8(&px.frame_data_ow(0).map_err(pixel_err)?, bits_stored as u16),
        };
        if px.planar_configuration() == PlanarConfiguration::PixelFirst {
            samples = interleave(&samples);
        }
        // Native and RLE data are still in the stored colour space; the JPEG-family
        // decoders have already converted to RGB.
        let stored_space = !encapsulated || transfer_syntax == RLE_LOSSLESS;
        if stored_space && photometric.starts_with("YBR_FULL") {
            ybr_full_to_rgb(&mut samples);
        }
        samples
    } else {
        let samples: Vec<u16> = match bits_allocated {
            8 => px
                .frame_data(0)
                .map_err(pixel_err)?
                .iter()
                .map(|&b| u16::from(b))
                .collect(),
            _ => px.frame_data_ow(0).map_err(pixel_err)?,
        };
        let rescale = px
            .rescale()
            .map_err(pixel_err)?
            .first()
            .copied()
            .unwrap_or(Rescale::new(1.0, 0.0));
        let window = px
            .window()
            .map_err(pixel_err)?
            .and_then(|w| w.first().copied());
        let function = px
            .voi_lut_function()
            .map_err(pixel_err)?
            .and_then(|f| f.first().copied())
            .unwrap_or_default();
        let params = GreyParams {
            bits_stored: bits_stored as u16,
            signed: px.pixel_representation() == PixelRepresentation::Signed,
            rescale,
            window: window.map(|w| (w, function)),
            invert: photometric == "MONOCHROME1",
        };
        let grey = grey_to_u8(&samples, &params).map_err(dicom_err)?;
        grey.iter().flat_map(|&g| [g, g, g]).collect()
    };
    let image = RgbImage::from_raw(cols, rows, rgb).ok_or_else(|| DecodeError::Corrupt {
        file: file.to_path_buf(),
        reason: "decoded pixel data is shorter than Rows x Columns".into(),
    })?;
    Ok(Decoded {
        image,
        source: Source::Dicom {
            modality,
            photometric,
            bits_stored: bits_stored as u16,
            transfer_syntax,
            frames,
        },
    })
}

/// A required unsigned integer attribute.
fn required_uint(obj: &DefaultDicomObject, tag: Tag, name: &str) -> Result<u32, String> {
    optional_uint(obj, tag, name)?.ok_or_else(|| format!("missing {name} {tag}"))
}

/// An optional unsigned integer attribute; an unparsable value is an error naming the attribute
/// (never quoting it).
fn optional_uint(obj: &DefaultDicomObject, tag: Tag, name: &str) -> Result<Option<u32>, String> {
    match obj.element_opt(tag) {
        Ok(Some(e)) if e.is_empty() => Ok(None),
        Ok(Some(e)) => e
            .to_int::<u32>()
            .map(Some)
            .map_err(|_| format!("{name} {tag} is not a non-negative integer")),
        Ok(None) => Ok(None),
        Err(_) => Err(format!("cannot access {name} {tag}")),
    }
}

/// An optional code string attribute, trimmed; empty counts as absent.
fn optional_str(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok()??;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(['\0', ' ']).to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR, dicom_value};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    use image::Rgb;

    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
    const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

    /// A file object with the given image attributes and native pixel data.
    fn object(
        rows: u16,
        cols: u16,
        photometric: &str,
        samples: u16,
        bits: u16,
        pixels: PrimitiveValue,
        extra: Vec<DataElement<InMemDicomObject>>,
    ) -> DefaultDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            SECONDARY_CAPTURE,
        ));
        obj.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4"));
        obj.put(DataElement::new(tags::PATIENT_NAME, VR::PN, "Doe^Jane"));
        obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, "MRN-123456"));
        obj.put(DataElement::new(tags::MODALITY, VR::CS, "OT"));
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            dicom_value!(U16, [rows]),
        ));
        obj.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            dicom_value!(U16, [cols]),
        ));
        obj.put(DataElement::new(
            tags::SAMPLES_PER_PIXEL,
            VR::US,
            dicom_value!(U16, [samples]),
        ));
        obj.put(DataElement::new(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            photometric,
        ));
        obj.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            dicom_value!(U16, [bits]),
        ));
        obj.put(DataElement::new(
            tags::BITS_STORED,
            VR::US,
            dicom_value!(U16, [bits]),
        ));
        obj.put(DataElement::new(
            tags::HIGH_BIT,
            VR::US,
            dicom_value!(U16, [bits - 1]),
        ));
        obj.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            dicom_value!(U16, [0]),
        ));
        for e in extra {
            obj.put(e);
        }
        let vr = if bits == 8 { VR::OB } else { VR::OW };
        obj.put(DataElement::new(tags::PIXEL_DATA, vr, pixels));
        obj.with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_LE)
                .media_storage_sop_class_uid(SECONDARY_CAPTURE)
                .media_storage_sop_instance_uid("1.2.3.4"),
        )
        .unwrap()
    }

    #[test]
    fn monochrome2_16_bit_with_rescale_and_window() {
        // x = 0.5·raw − 100; window c = 400, w = 801 (LINEAR):
        // y = ((x − 399.5) / 800 + 0.5) · 255, 0 for x ≤ −0.5, 255 for x > 799.5.
        // raw 0 → x −100 → 0; raw 200 → x 0 → 0.16 → 0; raw 1000 → x 400 → 127.66 → 128;
        // raw 1400 → x 600 → 191.41 → 191; raw 1799 → x 799.5 → 254.84 → 255;
        // raw 4000 → x 1900 → 255.
        let obj = object(
            2,
            3,
            "MONOCHROME2",
            1,
            16,
            dicom_value!(U16, [0, 200, 1000, 1400, 1799, 4000]),
            vec![
                DataElement::new(tags::RESCALE_SLOPE, VR::DS, "0.5"),
                DataElement::new(tags::RESCALE_INTERCEPT, VR::DS, "-100"),
                DataElement::new(tags::WINDOW_CENTER, VR::DS, "400"),
                DataElement::new(tags::WINDOW_WIDTH, VR::DS, "801"),
            ],
        );
        let d = decode_object(&obj, Path::new("mono.dcm")).unwrap();
        let grey: Vec<u8> = d.image.pixels().map(|p| p[0]).collect();
        assert_eq!(grey, vec![0, 0, 128, 191, 255, 255]);
        assert!(d.image.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        assert_eq!(
            d.source,
            Source::Dicom {
                modality: Some("OT".into()),
                photometric: "MONOCHROME2".into(),
                bits_stored: 16,
                transfer_syntax: EXPLICIT_LE.into(),
                frames: 1,
            }
        );
    }

    #[test]
    fn monochrome1_without_window_is_min_max_inverted() {
        // min 10, max 50: y = (x − 10)/40 · 255 → 0, 127.5 → 128, 255; inverted 255, 127, 0.
        let obj = object(
            1,
            3,
            "MONOCHROME1",
            1,
            8,
            PrimitiveValue::from(vec![10u8, 30, 50]),
            vec![],
        );
        let d = decode_object(&obj, Path::new("m1.dcm")).unwrap();
        let grey: Vec<u8> = d.image.pixels().map(|p| p[0]).collect();
        assert_eq!(grey, vec![255, 127, 0]);
    }

    #[test]
    fn rgb_planar_is_interleaved() {
        // Planar Configuration 1: R plane, G plane, B plane.
        let obj = object(
            1,
            2,
            "RGB",
            3,
            8,
            PrimitiveValue::from(vec![255u8, 1, 0, 2, 9, 3]),
            vec![DataElement::new(
                tags::PLANAR_CONFIGURATION,
                VR::US,
                dicom_value!(U16, [1]),
            )],
        );
        let d = decode_object(&obj, Path::new("planar.dcm")).unwrap();
        assert_eq!(d.image.get_pixel(0, 0), &Rgb([255, 0, 9]));
        assert_eq!(d.image.get_pixel(1, 0), &Rgb([1, 2, 3]));
    }

    #[test]
    fn ybr_full_becomes_rgb() {
        // Values from colour::tests (pydicom convert_color_space): pure red and blue.
        let obj = object(
            1,
            2,
            "YBR_FULL",
            3,
            8,
            PrimitiveValue::from(vec![76u8, 85, 255, 29, 255, 107]),
            vec![DataElement::new(
                tags::PLANAR_CONFIGURATION,
                VR::US,
                dicom_value!(U16, [0]),
            )],
        );
        let d = decode_object(&obj, Path::new("ybr.dcm")).unwrap();
        assert_eq!(d.image.get_pixel(0, 0), &Rgb([254, 0, 0]));
        assert_eq!(d.image.get_pixel(1, 0), &Rgb([0, 0, 254]));
        assert!(
            matches!(d.source, Source::Dicom { ref photometric, .. } if photometric == "YBR_FULL")
        );
    }

    #[test]
    fn short_pixel_data_is_truncated() {
        let obj = object(
            4,
            4,
            "MONOCHROME2",
            1,
            8,
            PrimitiveValue::from(vec![0u8; 10]),
            vec![],
        );
        let e = decode_object(&obj, Path::new("short.dcm")).unwrap_err();
        assert!(matches!(e, DecodeError::Truncated { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "short.dcm: truncated file (pixel data holds 10 bytes, the first frame needs 16)"
        );
    }

    #[test]
    fn palette_colour_is_refused_by_name() {
        let obj = object(
            1,
            1,
            "PALETTE COLOR",
            1,
            8,
            PrimitiveValue::from(vec![0u8, 0]),
            vec![],
        );
        let e = decode_object(&obj, Path::new("pal.dcm")).unwrap_err();
        assert!(
            matches!(e, DecodeError::UnsupportedPhotometric { .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("pal.dcm: unsupported DICOM pixel layout: PALETTE COLOR")
        );
    }

    #[test]
    fn missing_pixel_data_is_reported() {
        let mut obj = object(
            1,
            1,
            "MONOCHROME2",
            1,
            8,
            PrimitiveValue::from(vec![0u8, 0]),
            vec![],
        );
        obj.remove_element(tags::PIXEL_DATA);
        let e = decode_object(&obj, Path::new("sr.dcm")).unwrap_err();
        assert_eq!(e.to_string(), "sr.dcm: DICOM object has no pixel data");
    }

    #[test]
    fn unknown_transfer_syntax_is_named() {
        let mut obj = object(
            1,
            1,
            "MONOCHROME2",
            1,
            8,
            PrimitiveValue::from(vec![0u8, 0]),
            vec![],
        );
        obj.meta_mut().set_transfer_syntax(
            TransferSyntaxRegistry
                .get("1.2.840.10008.1.2.4.90")
                .unwrap(),
        );
        let e = decode_object(&obj, Path::new("j2k.dcm")).unwrap_err();
        assert!(
            matches!(e, DecodeError::UnsupportedTransferSyntax { .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("j2k.dcm: unsupported DICOM transfer syntax 1.2.840.10008.1.2.4.90"),
            "{e}"
        );
    }
}
