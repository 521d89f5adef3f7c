//! FOV detection and the quality gate on real, public fundus photographs.
use shared::preprocess::{self, PreprocessConfig};
use shared::quality::{self, QualityConfig, Reason, Verdict};

use crate::support::sample;

/// Circles found by retinalysis-fundusprep 1.1.0 (the package these samples ship in):
///
/// ```python
/// from rtnls_fundusprep.mask_extraction import get_cfi_bounds
/// from rtnls_fundusprep.utils import open_image
/// b = get_cfi_bounds(open_image(path)); print(b.center, b.radius)   # center is (x, y)
/// ```
/// (name, cx, cy, radius, whether the disc is cut by straight edges on two or more sides)
const FUNDUSPREP: &[(&str, f32, f32, f32, bool)] = &[
    ("CHASEDB1_08L.png", 493.2, 478.6, 446.0, false),
    ("CHASEDB1_12R.png", 493.0, 478.4, 459.1, false),
    ("DRIVE_22.png", 283.1, 299.2, 268.2, false),
    ("DRIVE_40.png", 281.3, 299.4, 267.7, false),
    ("HRF_04_g.jpg", 1758.8, 1164.0, 1630.7, false),
    ("HRF_07_dr.jpg", 1760.6, 1166.4, 1631.0, false),
    ("PALM_TR_P0185.png", 512.0, 512.0, 512.0, false),
    ("sample_dark.png", 809.5, 504.6, 571.7, false),
    ("retina.jpg", 704.3, 703.2, 695.7, false),
    ("cropped.png", 699.5, 682.1, 515.9, true),
    ("issue_1.png", 711.1, 698.1, 576.9, true),
    ("issue_2.png", 882.4, 695.4, 427.3, true),
];

fn load(name: &str) -> Option<image::RgbImage> {
    let path = sample(name)?;
    Some(
        shared::decode::decode_file(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .image,
    )
}

#[test]
fn fov_matches_fundusprep_on_every_fundus_sample() {
    for &(name, cx, cy, r, cut) in FUNDUSPREP {
        let Some(img) = load(name) else { return };
        let fov = preprocess::fov::detect(&img).unwrap_or_else(|e| panic!("{name}: {e}"));
        if cut {
            // Discs cut by the frame on several sides: we keep the largest inscribed circle,
            // fundusprep extrapolates the full one. Ours must be most of it, centred inside it.
            assert!(
                fov.radius > 0.85 * r && fov.radius < 1.02 * r,
                "{name}: {fov:?} vs r={r}"
            );
            assert!(
                ((fov.cx - cx).hypot(fov.cy - cy)) < 0.25 * r,
                "{name}: {fov:?}"
            );
        } else {
            // 1.5 % of the radius: 4 px on DRIVE, 25 px on HRF's 3504-px frames.
            let tol = 0.015 * r;
            assert!(
                (fov.radius - r).abs() < tol,
                "{name}: radius {} vs {r}",
                fov.radius
            );
            assert!(
                (fov.cx - cx).abs() < tol && (fov.cy - cy).abs() < tol,
                "{name}: {fov:?} vs ({cx}, {cy})"
            );
        }
        // And it crops: the prepared image is retina in the middle, black in the corners.
        let cfg = PreprocessConfig {
            size: 128,
            ..Default::default()
        };
        let p = preprocess::prepare(&img, &cfg, Some(fov)).unwrap();
        assert_eq!(p.image.get_pixel(0, 0).0, [0, 0, 0], "{name}");
        assert!(
            p.image.get_pixel(64, 64).0.iter().any(|&v| v > 20),
            "{name}: centre is black"
        );
    }
}

#[test]
fn the_dark_sample_is_ungradable_and_the_others_are_gradable() {
    let cfg = QualityConfig::default();
    for &(name, ..) in FUNDUSPREP {
        let Some(img) = load(name) else { return };
        let report = quality::assess(&img, &cfg);
        if name == "sample_dark.png" {
            // Measured: mean luminance 26.0 inside the FOV (the next darkest sample, PALM, is 45.2).
            let Verdict::Ungradable { reasons } = &report.verdict else {
                panic!("{name} judged gradable: {report:?}")
            };
            assert!(
                matches!(reasons[..], [Reason::UnderExposed { mean_luma, .. }] if mean_luma < 30.0),
                "{reasons:?}"
            );
        } else {
            assert_eq!(
                report.verdict,
                Verdict::Gradable,
                "{name}: {:?}",
                report.measures
            );
        }
    }
}

#[test]
fn pictures_that_are_not_fundus_photographs_have_no_fov() {
    // A cat (scikit-image `chelsea.png`) and a 102-px crop of retina without its rim.
    for name in ["chelsea.png", "microaneurysms.png"] {
        let Some(img) = load(name) else { return };
        let report = quality::assess(&img, &QualityConfig::default());
        assert!(
            matches!(&report.verdict, Verdict::Ungradable { reasons } if matches!(reasons[..], [Reason::NoFov { .. }])),
            "{name}: {report:?}"
        );
    }
}
