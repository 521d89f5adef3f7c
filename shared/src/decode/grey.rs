//! Greyscale DICOM samples to 8 bits: Modality LUT, VOI window (or min–max), MONOCHROME1 inversion.
//!
//! The pipeline per sample, built once as a 2^BitsStored-entry table with
//! [`dicom_pixeldata::Lut`] (which masks to Bits Stored and sign-extends):
//!
//! ```text
//! raw ──rescale──▶ x = slope·raw + intercept ──VOI──▶ y ∈ [0, 255] ──round──▶ MONOCHROME1? 255 − y
//! ```
//!
//! VOI is the first Window Center/Width with its VOI LUT Function (PS3.3 C.11.2.1.2; the
//! crate's `WindowLevelTransform` with `y_max = 255`), or, without a usable window, the
//! min–max of the rescaled values of this frame: `y = (x − min) / (max − min) · 255`.
//! A VOI LUT Sequence is not applied (min–max is used instead).
use dicom_pixeldata::{Lut, Rescale, VoiLutFunction, WindowLevel, WindowLevelTransform};

/// How to turn one frame of greyscale samples into 8 bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GreyParams {
    /// Bits Stored, 1..=16.
    pub bits_stored: u16,
    /// Pixel Representation 1 (two's complement samples).
    pub signed: bool,
    /// Modality LUT as Rescale Slope/Intercept.
    pub rescale: Rescale,
    /// First window and its function, when present.
    pub window: Option<(WindowLevel, VoiLutFunction)>,
    /// MONOCHROME1: the lowest value is displayed white.
    pub invert: bool,
}

/// Whether a window can be applied: finite, and wide enough for its function
/// (PS3.3 C.11.2.1.2: width ≥ 1 for LINEAR, > 0 otherwise).
fn usable(window: &WindowLevel, function: VoiLutFunction) -> bool {
    let wide_enough = match function {
        VoiLutFunction::Linear => window.width >= 1.0,
        _ => window.width > 0.0,
    };
    window.center.is_finite() && window.width.is_finite() && wide_enough
}

/// Map raw samples (as stored: 8- or 16-bit words, masked to Bits Stored here) to 8 bits.
pub(crate) fn grey_to_u8(samples: &[u16], p: &GreyParams) -> Result<Vec<u8>, String> {
    if !(1..=16).contains(&p.bits_stored) {
        return Err(format!("Bits Stored {} outside 1..=16", p.bits_stored));
    }
    if !(p.rescale.slope.is_finite() && p.rescale.intercept.is_finite()) || p.rescale.slope == 0.0 {
        return Err(format!(
            "unusable Rescale Slope {} / Intercept {}",
            p.rescale.slope, p.rescale.intercept
        ));
    }
    let rescale = p.rescale;
    let invert = p.invert;
    let finish = move |y: f64| {
        let y = y.round().clamp(0.0, 255.0);
        if invert { 255.0 - y } else { y }
    };
    let lut: Lut<u8> = match p.window.filter(|(w, f)| usable(w, *f)) {
        Some((window, function)) => {
            let voi = WindowLevelTransform::new(function, window);
            Lut::new_with_fn(p.bits_stored, p.signed, move |raw| {
                finish(voi.apply(rescale.apply(raw), 255.0))
            })
        }
        None => {
            let rescaled: Lut<f64> =
                Lut::new_rescale(p.bits_stored, p.signed, rescale).map_err(|e| e.to_string())?;
            let (min, max) = samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &s| {
                let x = rescaled.get(s);
                (lo.min(x), hi.max(x))
            });
            let span = max - min;
            Lut::new_with_fn(p.bits_stored, p.signed, move |raw| {
                let x = rescale.apply(raw);
                finish(if span > 0.0 {
                    (x - min) / span * 255.0
                } else {
                    0.0
                })
            })
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(samples.iter().map(|&s| lut.get(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(bits_stored: u16, signed: bool) -> GreyParams {
        GreyParams {
            bits_stored,
            signed,
            rescale: Rescale::new(1.0, 0.0),
            window: None,
            invert: false,
        }
    }

    #[test]
    fn linear_window_follows_ps3_3() {
        // c = 1000, w = 2001: y = ((x − 999.5) / 2000 + 0.5) · 255, 0 at x ≤ −0.5, 255 above 1999.5.
        // x = slope·raw + intercept = 2·raw − 1000.
        let p = GreyParams {
            rescale: Rescale::new(2.0, -1000.0),
            window: Some((
                WindowLevel {
                    center: 1000.0,
                    width: 2001.0,
                },
                VoiLutFunction::Linear,
            )),
            ..params(12, false)
        };
        // raw 0 → x −1000 → 0; raw 500 → x 0 → (−999.5/2000 + 0.5)·255 = 0.06 → 0;
        // raw 1000 → x 1000 → (0.5/2000 + 0.5)·255 = 127.56 → 128;
        // raw 1250 → x 1500 → (500.5/2000 + 0.5)·255 = 191.31 → 191; raw 2000 → x 3000 → 255;
        // raw 4096 + 1000 is masked to 12 bits → 1000.
        let out = grey_to_u8(&[0, 500, 1000, 1250, 2000, 4096 + 1000], &p).unwrap();
        assert_eq!(out, vec![0, 0, 128, 191, 255, 128]);
    }

    #[test]
    fn monochrome1_is_inverted_after_windowing() {
        let p = GreyParams {
            window: Some((
                WindowLevel {
                    center: 128.0,
                    width: 256.0,
                },
                VoiLutFunction::Linear,
            )),
            invert: true,
            ..params(8, false)
        };
        // y = ((x − 127.5) / 255 + 0.5) · 255 = x exactly for 0..=255, then 255 − y.
        assert_eq!(
            grey_to_u8(&[0, 1, 100, 255], &p).unwrap(),
            vec![255, 254, 155, 0]
        );
    }

    #[test]
    fn min_max_without_window_handles_signed_samples() {
        // 16-bit signed: 0xFFFF = −1, 0x8000 = −32768; rescale x = raw + 0.
        let out = grey_to_u8(&[0xFFFF, 0x8000, 100, 0], &params(16, true)).unwrap();
        // min −32768, max 100, span 32868: −1 → 32767/32868·255 = 254.2 → 254; 0 → 254.2.. → 254.
        assert_eq!(out, vec![254, 0, 255, 254]);
    }

    #[test]
    fn too_narrow_window_falls_back_to_min_max() {
        let p = GreyParams {
            window: Some((
                WindowLevel {
                    center: 5.0,
                    width: 0.5,
                },
                VoiLutFunction::Linear,
            )),
            ..params(8, false)
        };
        assert_eq!(grey_to_u8(&[10, 20, 30], &p).unwrap(), vec![0, 128, 255]);
    }

    #[test]
    fn constant_image_is_black_not_nan() {
        assert_eq!(grey_to_u8(&[7, 7], &params(8, false)).unwrap(), vec![0, 0]);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(grey_to_u8(&[0], &params(0, false)).is_err());
        assert!(grey_to_u8(&[0], &params(17, false)).is_err());
        let p = GreyParams {
            rescale: Rescale::new(f64::NAN, 0.0),
            ..params(8, false)
        };
        assert!(grey_to_u8(&[0], &p).unwrap_err().contains("Rescale"));
    }
}
