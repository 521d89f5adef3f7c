//! Image quality gate: is this photograph gradable at all?
//!
//! A screening result is only as good as the photograph. Every image passes this gate before the
//! model sees it; an image that fails is reported as **ungradable** (refer for a re-take or an
//! in-person exam), never as negative. Measures are taken inside the field of view, on a copy
//! resized to `analysis_size` so the thresholds do not depend on the camera's resolution:
//! - exposure: mean luminance (ITU-R BT.601) and the shares of crushed-black / blown-white pixels;
//! - focus: variance of the 4-neighbour Laplacian of luminance (Pech-Pacheco et al. 2000);
//! - contrast: standard deviation of luminance.
use image::{RgbImage, imageops};
use serde::{Deserialize, Serialize};

use crate::preprocess::{Circle, Fov, FovFailure, fov};

/// Thresholds of the gate; stored in the device bundle next to the preprocessing config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityConfig {
    /// Whether a circular fundus FOV is required (false for radiographs: the whole frame counts).
    pub require_fov: bool,
    /// Side of the square analysis copy, in pixels.
    pub analysis_size: u32,
    /// Under-exposed below this mean luminance (0–255).
    pub min_mean_luma: f32,
    /// Over-exposed above this mean luminance (0–255).
    pub max_mean_luma: f32,
    /// Under-exposed when more than this share of FOV pixels has luminance < 12.
    pub max_dark_fraction: f32,
    /// Over-exposed when more than this share of FOV pixels has luminance > 245.
    pub max_bright_fraction: f32,
    /// Out of focus below this Laplacian variance.
    pub min_focus: f32,
    /// Low contrast below this luminance standard deviation.
    pub min_contrast: f32,
}

impl Default for QualityConfig {
    /// Fundus defaults, calibrated on the public samples (see `shared/tests/quality.rs`).
    fn default() -> Self {
        QualityConfig {
            require_fov: true,
            analysis_size: 256,
            min_mean_luma: 35.0,
            max_mean_luma: 200.0,
            max_dark_fraction: 0.35,
            max_bright_fraction: 0.20,
            min_focus: 6.0,
            min_contrast: 6.0,
        }
    }
}

impl QualityConfig {
    /// Defaults for radiographs (no FOV; X-rays are darker and smoother than fundus photos).
    pub fn radiograph() -> Self {
        QualityConfig {
            require_fov: false,
            min_mean_luma: 20.0,
            max_mean_luma: 235.0,
            max_dark_fraction: 0.6,
            ..Self::default()
        }
    }
}

/// One reason an image is ungradable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// No fundus field of view was found.
    NoFov {
        /// What went wrong.
        failure: FovFailure,
    },
    /// Too dark to grade.
    UnderExposed {
        /// Mean luminance inside the FOV.
        mean_luma: f32,
        /// Share of crushed-black pixels.
        dark_fraction: f32,
    },
    /// Washed out.
    OverExposed {
        /// Mean luminance inside the FOV.
        mean_luma: f32,
        /// Share of blown-white pixels.
        bright_fraction: f32,
    },
    /// Blurred (defocus, motion, cataract haze).
    OutOfFocus {
        /// Laplacian variance measured.
        focus: f32,
    },
    /// Flat, featureless image.
    LowContrast {
        /// Luminance standard deviation measured.
        contrast: f32,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NoFov { failure } => write!(f, "{failure}"),
            Reason::UnderExposed {
                mean_luma,
                dark_fraction,
            } => {
                write!(
                    f,
                    "under-exposed (mean luminance {mean_luma:.1}, {:.0} % black)",
                    100.0 * dark_fraction
                )
            }
            Reason::OverExposed {
                mean_luma,
                bright_fraction,
            } => {
                write!(
                    f,
                    "over-exposed (mean luminance {mean_luma:.1}, {:.0} % white)",
                    100.0 * bright_fraction
                )
            }
            Reason::OutOfFocus { focus } => {
                write!(f, "out of focus (Laplacian variance {focus:.1})")
            }
            Reason::LowContrast { contrast } => {
                write!(f, "low contrast (luminance std {contrast:.1})")
            }
        }
    }
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Fit to grade.
    Gradable,
    /// Not fit to grade, with every reason found.
    Ungradable {
        /// All failed checks.
        reasons: Vec<Reason>,
    },
}

impl Verdict {
    /// Whether the image may go on to the model.
    pub fn is_gradable(&self) -> bool {
        matches!(self, Verdict::Gradable)
    }
}

/// The measures behind a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Measures {
    /// Mean luminance inside the FOV.
    pub mean_luma: f32,
    /// Share of FOV pixels with luminance < 12.
    pub dark_fraction: f32,
    /// Share of FOV pixels with luminance > 245.
    pub bright_fraction: f32,
    /// Variance of the Laplacian of luminance inside the FOV.
    pub focus: f32,
    /// Standard deviation of luminance inside the FOV.
    pub contrast: f32,
}

/// Verdict, measures and the FOV (reused by preprocessing so it is detected once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The decision.
    pub verdict: Verdict,
    /// What was measured (zeros when no FOV was found).
    pub measures: Measures,
    /// The FOV found, if one was required and found.
    pub fov: Option<Fov>,
}

/// Runs the gate on a decoded image.
pub fn assess(img: &RgbImage, cfg: &QualityConfig) -> QualityReport {
    let side = cfg.analysis_size.max(16);
    let (square, fov, region) = if cfg.require_fov {
        match fov::detect(img) {
            Ok(f) => {
                let sq = imageops::resize(
                    &fov::crop_square(img, &f),
                    side,
                    side,
                    imageops::FilterType::Triangle,
                );
                // Stay clear of the rim, where the FOV edge itself is the strongest 'detail'.
                (sq, Some(f), Some(Circle::centred(side, 0.9)))
            }
            Err(failure) => {
                let verdict = Verdict::Ungradable {
                    reasons: vec![Reason::NoFov { failure }],
                };
                return QualityReport {
                    verdict,
                    measures: Measures::default(),
                    fov: None,
                };
            }
        }
    } else {
        (
            imageops::resize(img, side, side, imageops::FilterType::Triangle),
            None,
            None,
        )
    };
    let measures = measure(&square, region.as_ref());
    let mut reasons = Vec::new();
    let m = measures;
    if m.mean_luma < cfg.min_mean_luma || m.dark_fraction > cfg.max_dark_fraction {
        reasons.push(Reason::UnderExposed {
            mean_luma: m.mean_luma,
            dark_fraction: m.dark_fraction,
        });
    }
    if m.mean_luma > cfg.max_mean_luma || m.bright_fraction > cfg.max_bright_fraction {
        reasons.push(Reason::OverExposed {
            mean_luma: m.mean_luma,
            bright_fraction: m.bright_fraction,
        });
    }
    if m.focus < cfg.min_focus {
        reasons.push(Reason::OutOfFocus { focus: m.focus });
    }
    if m.contrast < cfg.min_contrast {
        reasons.push(Reason::LowContrast {
            contrast: m.contrast,
        });
    }
    let verdict = if reasons.is_empty() {
        Verdict::Gradable
    } else {
        Verdict::Ungradable { reasons }
    };
    QualityReport {
        verdict,
        measures,
        fov,
    }
}

/// Exposure, focus and contrast of `img` inside `region` (whole image if `None`).
pub fn measure(img: &RgbImage, region: Option<&Circle>) -> Measures {
    let (w, h) = img.dimensions();
    let luma: Vec<f32> = img
        .pixels()
        .map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32)
        .collect();
    let inside = |x: u32, y: u32| region.is_none_or(|c| c.contains(x, y));
    let at = |x: u32, y: u32| luma[(y * w + x) as usize];
    let mut values = Vec::with_capacity(luma.len());
    let mut laplacians = Vec::with_capacity(luma.len());
    for y in 0..h {
        for x in 0..w {
            if !inside(x, y) {
                continue;
            }
            let v = at(x, y);
            values.push(v);
            // The Laplacian needs all four neighbours inside the image and the region.
            let interior = x > 0 && y > 0 && x + 1 < w && y + 1 < h;
            if interior
                && inside(x - 1, y)
                && inside(x + 1, y)
                && inside(x, y - 1)
                && inside(x, y + 1)
            {
                laplacians
                    .push(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * v);
            }
        }
    }
    if values.is_empty() {
        return Measures::default();
    }
    let n = values.len() as f32;
    let (mean, var) = mean_var(&values);
    let focus = if laplacians.is_empty() {
        0.0
    } else {
        mean_var(&laplacians).1
    };
    let dark = values.iter().filter(|&&v| v < 12.0).count() as f32;
    let bright = values.iter().filter(|&&v| v > 245.0).count() as f32;
    Measures {
        mean_luma: mean as f32,
        dark_fraction: dark / n,
        bright_fraction: bright / n,
        focus: focus as f32,
        contrast: var.sqrt() as f32,
    }
}

/// Two-pass mean and population variance, in f64 (no cancellation on flat images).
fn mean_var(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn measures_of_a_checkerboard_are_hand_computable() {
        // 0/200 checkerboard: luma mean 100, std 100; interior Laplacian = ±800 → variance 640 000.
        let img = RgbImage::from_fn(8, 8, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([200, 200, 200])
            }
        });
        let m = measure(&img, None);
        assert!((m.mean_luma - 100.0).abs() < 1e-3, "{m:?}");
        assert!((m.contrast - 100.0).abs() < 1e-2, "{m:?}");
        assert!((m.focus - 640_000.0).abs() < 1.0, "{m:?}");
        assert!((m.dark_fraction - 0.5).abs() < 1e-6 && m.bright_fraction == 0.0);
    }

    #[test]
    fn flat_grey_radiograph_is_out_of_focus_and_low_contrast() {
        let img = RgbImage::from_pixel(300, 300, Rgb([120, 120, 120]));
        let r = assess(&img, &QualityConfig::radiograph());
        let Verdict::Ungradable { reasons } = r.verdict else {
            panic!("flat image judged gradable")
        };
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(matches!(reasons[0], Reason::OutOfFocus { focus } if focus == 0.0));
        assert!(matches!(reasons[1], Reason::LowContrast { contrast } if contrast < 1e-3));
    }

    #[test]
    fn no_fov_is_ungradable_with_that_reason() {
        let r = assess(
            &RgbImage::from_pixel(200, 200, Rgb([3, 3, 3])),
            &QualityConfig::default(),
        );
        assert_eq!(
            r.verdict,
            Verdict::Ungradable {
                reasons: vec![Reason::NoFov {
                    failure: FovFailure::NoForeground
                }]
            }
        );
        assert!(!r.verdict.is_gradable());
        let json = serde_json::to_string(&r.verdict).unwrap();
        assert_eq!(
            json,
            r#"{"verdict":"ungradable","reasons":[{"reason":"no_fov","failure":"no_foreground"}]}"#
        );
    }
}
