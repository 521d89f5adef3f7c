//! Decoding real fundus photographs, DICOM objects and broken files end to end.
//!
//! Reference numbers come from pydicom 3.0.2 + Pillow (pylibjpeg for JPEG Lossless); the
//! snippet is above each test. Tests on cached samples skip (with a SKIPPED line) when
//! `scripts/fetch-samples.sh` has not run; the bad-input tests build their files.
use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR, dicom_value};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use shared::decode::{DecodeError, Source, decode_bytes, decode_file};

use crate::support::sample;

/// Mean of each channel.
fn channel_means(img: &RgbImage) -> [f64; 3] {
    let mut sum = [0u64; 3];
    for p in img.pixels() {
        for c in 0..3 {
            sum[c] += u64::from(p[c]);
        }
    }
    let n = f64::from(img.width()) * f64::from(img.height());
    sum.map(|s| s as f64 / n)
}

fn assert_means(img: &RgbImage, expected: [f64; 3], tol: f64) {
    let got = channel_means(img);
    for c in 0..3 {
        assert!(
            (got[c] - expected[c]).abs() <= tol,
            "channel {c}: mean {} vs reference {} (±{tol})",
            got[c],
            expected[c]
        );
    }
}

/// `(x, y)` → RGB, for readable assertions.
fn px(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

// d = pydicom.dcmread("issue_3.dcm")            # Topcon, OP, RGB, 8 bit, explicit LE
// a = d.pixel_array                              # (2136, 3216, 3)
// a.mean((0, 1))  → [146.296, 77.251, 31.886]
// a[0,0], a[1068,1608], a[500,1000] → [0,0,0], [201,96,38], [205,103,44]
#[test]
fn topcon_ophthalmic_photograph_decodes_to_rgb() {
    let Some(path) = sample("issue_3.dcm") else {
        return;
    };
    let d = decode_file(&path).unwrap();
    assert_eq!(d.image.dimensions(), (3216, 2136));
    assert_eq!(
        d.source,
        Source::Dicom {
            modality: Some("OP".into()),
            photometric: "RGB".into(),
            bits_stored: 8,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            frames: 1,
        }
    );
    // Uncompressed: exact up to the printed rounding.
    assert_means(&d.image, [146.296, 77.251, 31.886], 0.001);
    assert_eq!(px(&d.image, 0, 0), [0, 0, 0]);
    assert_eq!(px(&d.image, 1608, 1068), [201, 96, 38]);
    assert_eq!(px(&d.image, 1000, 500), [205, 103, 44]);
}

// d = pydicom.dcmread("SC_rgb.dcm"); a = d.pixel_array   # (100, 100, 3), RGB 8 bit
// a.mean((0, 1)) → [127.7, 127.7, 127.7]
// a[0,0], a[50,50], a[99,99] → [255,0,0], [128,128,255], [255,255,255]
#[test]
fn secondary_capture_rgb_is_exact() {
    let Some(path) = sample("SC_rgb.dcm") else {
        return;
    };
    let d = decode_file(&path).unwrap();
    assert_eq!(d.image.dimensions(), (100, 100));
    assert_means(&d.image, [127.7, 127.7, 127.7], 0.001);
    assert_eq!(px(&d.image, 0, 0), [255, 0, 0]);
    assert_eq!(px(&d.image, 50, 50), [128, 128, 255]);
    assert_eq!(px(&d.image, 99, 99), [255, 255, 255]);
}

// d = pydicom.dcmread("RG1_UNCR.dcm")   # CR, MONOCHROME1, 15 of 16 bits, WC 15000 / WW 30000
// raw = d.pixel_array.astype(float); c, w = 15000., 30000.
// y = ((raw - (c - .5)) / (w - 1) + .5) * 255             # PS3.3 C.11.2.1.2.1 LINEAR
// y = np.where(raw <= c - .5 - (w-1)/2, 0, np.where(raw > c - .5 + (w-1)/2, 255, y))
// y8 = 255 - np.floor(y + .5)                            # round, then MONOCHROME1 inversion
// # identical (max diff 0.0) to 255 - apply_windowing(d.pixel_array, d) / (2**15-1) * 255
// y8.mean() → 192.17; y8[0,0] → 94; y8[977,920] → 226 (raw 3441); y8[1500,300] → 230 (raw 2961)
#[test]
fn chest_x_ray_monochrome1_is_windowed_and_inverted() {
    let Some(path) = sample("RG1_UNCR.dcm") else {
        return;
    };
    let d = decode_file(&path).unwrap();
    assert_eq!(d.image.dimensions(), (1841, 1955));
    assert_eq!(
        d.source,
        Source::Dicom {
            modality: Some("CR".into()),
            photometric: "MONOCHROME1".into(),
            bits_stored: 15,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            frames: 1,
        }
    );
    assert!(d.image.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    assert_means(&d.image, [192.17; 3], 0.005);
    // Low raw values are bright after inversion, as bone is in MONOCHROME2.
    assert_eq!(px(&d.image, 0, 0), [94; 3]);
    assert_eq!(px(&d.image, 920, 977), [226; 3]);
    assert_eq!(px(&d.image, 300, 1500), [230; 3]);
}

// d = pydicom.dcmread("JPEG-LL.dcm")   # NM, MONOCHROME2, signed 16 bit, JPEG Lossless, no window
// raw = d.pixel_array.astype(float)    # min 0, max 278 (pylibjpeg)
// y8 = np.floor((raw - raw.min()) / (raw.max() - raw.min()) * 255 + .5)
// y8.mean() → 12.605; y8[0,0] → 0; y8[512,128] → 12 (raw 13); argmax at (420, 143)
#[test]
fn jpeg_lossless_without_window_is_min_max() {
    let Some(path) = sample("JPEG-LL.dcm") else {
        return;
    };
    let d = decode_file(&path).unwrap();
    assert_eq!(d.image.dimensions(), (256, 1024));
    assert!(matches!(
        d.source,
        Source::Dicom { ref transfer_syntax, bits_stored: 16, .. }
            if transfer_syntax == "1.2.840.10008.1.2.4.70"
    ));
    // Lossless: the same samples as pylibjpeg, so the same 8-bit values.
    assert_means(&d.image, [12.605; 3], 0.005);
    assert_eq!(px(&d.image, 0, 0), [0; 3]);
    assert_eq!(px(&d.image, 128, 512), [12; 3]);
    assert_eq!(px(&d.image, 143, 420), [255; 3]);
}

// from PIL import Image; a = np.asarray(Image.open(f).convert("RGB")); a.mean((0, 1)); a[h//2, w//2]
// retina.jpg    1411x1411 → [159.434, 63.545, 46.115], centre [187, 46, 26]
// DRIVE_22.png   565x584  → [144.578, 70.322, 39.419], centre [204, 89, 44]
// HRF_07_dr.jpg 3504x2336 → [136.28, 52.448, 23.452],  centre [169, 73, 31]
// microaneurysms.png (L) 102x102 → [99.34] x 3,        centre [74, 74, 74]
// JPEG: libjpeg (Pillow) and the Rust decoder may differ by 1–2 levels per pixel (IDCT and
// chroma upsampling); the means here differ by 0.07 (retina) and 0.03 (HRF), allowed 0.2.
/// One raster sample and its Pillow reference.
struct RasterCase {
    name: &'static str,
    dims: (u32, u32),
    means: [f64; 3],
    centre: [u8; 3],
    format: &'static str,
    /// Allowed |mean difference| per channel.
    mean_tol: f64,
    /// Allowed difference per channel at the centre pixel.
    px_tol: u8,
}

#[test]
fn raster_fundus_images_match_pillow() {
    let jpeg = |name, dims, means, centre| RasterCase {
        name,
        dims,
        means,
        centre,
        format: "jpeg",
        mean_tol: 0.2,
        px_tol: 2,
    };
    let png = |name, dims, means, centre| RasterCase {
        name,
        dims,
        means,
        centre,
        format: "png",
        mean_tol: 0.001,
        px_tol: 0,
    };
    let cases = [
        jpeg(
            "retina.jpg",
            (1411, 1411),
            [159.434, 63.545, 46.115],
            [187, 46, 26],
        ),
        png(
            "DRIVE_22.png",
            (565, 584),
            [144.578, 70.322, 39.419],
            [204, 89, 44],
        ),
        jpeg(
            "HRF_07_dr.jpg",
            (3504, 2336),
            [136.28, 52.448, 23.452],
            [169, 73, 31],
        ),
        png("microaneurysms.png", (102, 102), [99.34; 3], [74; 3]),
    ];
    for case in cases {
        let Some(path) = sample(case.name) else {
            continue;
        };
        let name = case.name;
        let d = decode_file(&path).unwrap();
        assert_eq!(d.image.dimensions(), case.dims, "{name}");
        assert_eq!(
            d.source,
            Source::Raster {
                format: case.format.into()
            },
            "{name}"
        );
        assert_means(&d.image, case.means, case.mean_tol);
        let got = px(&d.image, case.dims.0 / 2, case.dims.1 / 2);
        for c in 0..3 {
            assert!(
                got[c].abs_diff(case.centre[c]) <= case.px_tol,
                "{name} centre {got:?} vs {:?}",
                case.centre
            );
        }
    }
}

#[test]
fn decode_bytes_matches_decode_file() {
    let Some(path) = sample("SC_rgb.dcm") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        decode_bytes(&bytes, "inbox/a.dcm").unwrap(),
        decode_file(&path).unwrap()
    );
    // The same object without its 128-byte preamble (starts with "DICM").
    assert_eq!(
        decode_bytes(&bytes[128..], "inbox/b.dcm").unwrap(),
        decode_file(&path).unwrap()
    );
}

/// PatientName and PatientID of a DICOM file, read with dicom-object.
fn identifiers(path: &Path) -> Vec<String> {
    let obj = dicom_object::open_file(path).unwrap();
    [tags::PATIENT_NAME, tags::PATIENT_ID]
        .into_iter()
        .map(|t| obj.element(t).unwrap().to_str().unwrap().trim().to_string())
        .collect()
}

// pydicom: RG1_UNCR.dcm PatientName 'CompressedSamples^RG1', PatientID '9RG1';
//          issue_3.dcm PatientName 'Anonymous', PatientID '000000'.
#[test]
fn patient_identifiers_never_leave_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["RG1_UNCR.dcm", "issue_3.dcm"] {
        let Some(path) = sample(name) else {
            continue;
        };
        let ids = identifiers(&path);
        assert!(ids.iter().all(|id| id.len() >= 4), "{name}: {ids:?}");
        let d = decode_file(&path).unwrap();
        let source = format!(
            "{:?} {}",
            d.source,
            serde_json::to_string(&d.source).unwrap()
        );
        // The truncated file fails after the patient module has been parsed.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join(format!("cut-{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = decode_file(&cut).unwrap_err();
        let messages = format!("{err} {err:?}");
        for id in &ids {
            assert!(!source.contains(id.as_str()), "{name}: {id} in {source}");
            assert!(
                !messages.contains(id.as_str()),
                "{name}: {id} in {messages}"
            );
        }
    }
}

/// A small valid DICOM file (MONOCHROME2, 8 bit, 16x16) carrying patient identifiers.
fn small_dicom() -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::SOP_CLASS_UID,
        VR::UI,
        "1.2.840.10008.5.1.4.1.1.7",
    ));
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        "1.2.3.4.5",
    ));
    obj.put(DataElement::new(tags::PATIENT_NAME, VR::PN, "Roe^Richard"));
    obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, "PID-778899"));
    for (tag, v) in [
        (tags::ROWS, 16u16),
        (tags::COLUMNS, 16),
        (tags::SAMPLES_PER_PIXEL, 1),
        (tags::BITS_ALLOCATED, 8),
        (tags::BITS_STORED, 8),
        (tags::HIGH_BIT, 7),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        obj.put(DataElement::new(tag, VR::US, dicom_value!(U16, [v])));
    }
    obj.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    let pixels: Vec<u8> = (0..=255).collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    ));
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
                .media_storage_sop_instance_uid("1.2.3.4.5"),
        )
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

fn small_png() -> Vec<u8> {
    let img = RgbImage::from_fn(64, 64, |x, y| Rgb([x as u8 * 4, y as u8 * 4, 99]));
    let mut out = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[test]
fn small_dicom_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.dcm");
    std::fs::write(&path, small_dicom()).unwrap();
    let d = decode_file(&path).unwrap();
    // 0..=255 with no window: min–max is the identity.
    let grey: Vec<u8> = d.image.pixels().map(|p| p[0]).collect();
    assert_eq!(grey, (0..=255).collect::<Vec<u8>>());
    assert!(!format!("{:?}", d.source).contains("Roe"));
}

#[test]
fn bad_inputs_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let png = small_png();
    let dcm = small_dicom();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("x.png", b"this is not an image, just some text\n".to_vec()),
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("truncated.dcm", dcm[..dcm.len() - 100].to_vec()),
        ("header-only.dcm", dcm[..200].to_vec()),
        ("empty.jpg", Vec::new()),
    ];
    for (name, bytes) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = decode_file(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(name), "{name}: {msg}");
        assert!(
            msg.starts_with(&path.display().to_string()),
            "{name}: {msg}"
        );
        assert_eq!(err.file(), path.as_path());
        assert!(!msg.contains("Roe") && !msg.contains("778899"), "{msg}");
        // decode_bytes names the file by the given name instead.
        let err = decode_bytes(bytes, name).unwrap_err();
        assert!(err.to_string().starts_with(&format!("{name}: ")), "{err}");
        match *name {
            "x.png" => assert!(matches!(err, DecodeError::NotAnImage { .. }), "{err:?}"),
            "truncated.png" | "truncated.dcm" | "header-only.dcm" => {
                assert!(
                    matches!(err, DecodeError::Truncated { .. }),
                    "{name}: {err:?}"
                )
            }
            "empty.jpg" => assert!(matches!(err, DecodeError::Empty { .. }), "{err:?}"),
            _ => unreachable!(),
        }
    }
    let missing = dir.path().join("missing.png");
    let err = decode_file(&missing).unwrap_err();
    assert!(matches!(err, DecodeError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.png"), "{err}");
}
