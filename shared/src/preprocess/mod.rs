//! Preprocessing shared by training and device: FOV crop, resize, normalisation, augmentation.
//!
//! ```text
//! decoded RGB ──prepare──▶ Prepared { size×size RGB, FOV disc } ──(augment, training only)──▶
//!             ──to_tensor──▶ [Graham] ──▶ normalise ──▶ CHW f32
//! ```
//! Host and edge call the same two functions with the same [`PreprocessConfig`], read from the
//! run directory or the device bundle.
pub mod augment;
pub mod circle;
pub mod config;
pub mod fov;
pub mod graham;
pub mod tensor;

use image::{RgbImage, imageops};

pub use augment::{AugmentConfig, augment};
pub use circle::Circle;
pub use config::{Crop, Graham, Interpolation, Normalize, PreprocessConfig};
pub use fov::{Fov, FovFailure};

/// Why an image could not be preprocessed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PreprocessError {
    /// The config failed validation.
    #[error("invalid preprocessing config: {0}")]
    InvalidConfig(String),
    /// The image has no pixels.
    #[error("the image is empty")]
    Empty,
    /// A fundus crop was asked for but no field of view was found.
    #[error("{0}")]
    NoFov(FovFailure),
}

/// An image cropped and resized to the model resolution, before value normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// `size`×`size` RGB; black outside the FOV for fundus crops.
    pub image: RgbImage,
    /// The valid disc in `image` coordinates (fundus crops only).
    pub circle: Option<Circle>,
    /// The FOV found in the original image (fundus crops only).
    pub fov: Option<Fov>,
}

/// Crops and resizes `img` per `cfg`; `fov` may be passed when already detected (quality gate).
pub fn prepare(
    img: &RgbImage,
    cfg: &PreprocessConfig,
    fov: Option<Fov>,
) -> Result<Prepared, PreprocessError> {
    cfg.validate().map_err(PreprocessError::InvalidConfig)?;
    if img.width() == 0 || img.height() == 0 {
        return Err(PreprocessError::Empty);
    }
    let filter = cfg.interpolation.filter();
    let side = cfg.size;
    match cfg.crop {
        Crop::FundusCircle { shrink } => {
            let fov = match fov {
                Some(f) => f,
                None => fov::detect(img).map_err(PreprocessError::NoFov)?,
            };
            let square = fov::crop_square(img, &fov);
            let mut image = imageops::resize(&square, side, side, filter);
            let circle = Circle::centred(side, shrink);
            for (x, y, p) in image.enumerate_pixels_mut() {
                if !circle.contains(x, y) {
                    p.0 = [0, 0, 0];
                }
            }
            Ok(Prepared {
                image,
                circle: Some(circle),
                fov: Some(fov),
            })
        }
        Crop::TrimBorder { threshold } => {
            let trimmed = trim_border(img, threshold);
            Ok(Prepared {
                image: pad_resize(&trimmed, side, filter),
                circle: None,
                fov: None,
            })
        }
        Crop::None => Ok(Prepared {
            image: pad_resize(img, side, filter),
            circle: None,
            fov: None,
        }),
    }
}

/// Graham step (if configured) and normalisation into a CHW `f32` vector of length `3·size²`.
pub fn to_tensor(image: &RgbImage, circle: Option<&Circle>, cfg: &PreprocessConfig) -> Vec<f32> {
    let mut out = vec![0.0; 3 * (image.width() * image.height()) as usize];
    write_tensor(image, circle, cfg, &mut out);
    out
}

/// [`to_tensor`] into a caller's buffer (one slot of a batch).
pub fn write_tensor(
    image: &RgbImage,
    circle: Option<&Circle>,
    cfg: &PreprocessConfig,
    out: &mut [f32],
) {
    match cfg.graham {
        Some(g) => {
            let radius = circle.map_or(image.width().min(image.height()) as f32 / 2.0, |c| c.r);
            let normalised = graham::apply(image, circle, g.sigma_fraction * radius);
            tensor::write_chw_f32(&normalised, &cfg.normalize, out);
        }
        None => tensor::write_chw_u8(image, &cfg.normalize, out),
    }
}

/// The whole evaluation-time path: prepare, then tensor.
pub fn preprocess(img: &RgbImage, cfg: &PreprocessConfig) -> Result<Vec<f32>, PreprocessError> {
    let p = prepare(img, cfg, None)?;
    Ok(to_tensor(&p.image, p.circle.as_ref(), cfg))
}

/// Removes rows and columns at the edges whose brightest pixel is `<= threshold`.
fn trim_border(img: &RgbImage, threshold: u8) -> RgbImage {
    let (w, h) = img.dimensions();
    let bright = |x: u32, y: u32| img.get_pixel(x, y).0.iter().any(|&v| v > threshold);
    let row_on = |y: u32| (0..w).any(|x| bright(x, y));
    let col_on = |x: u32| (0..h).any(|y| bright(x, y));
    let (Some(y0), Some(y1)) = (
        (0..h).find(|&y| row_on(y)),
        (0..h).rev().find(|&y| row_on(y)),
    ) else {
        return img.clone(); // all dark: keep it and let the quality gate speak
    };
    let x0 = (0..w).find(|&x| col_on(x)).unwrap_or(0);
    let x1 = (0..w).rev().find(|&x| col_on(x)).unwrap_or(w - 1);
    imageops::crop_imm(img, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image()
}

/// Pads to a centred square with black, then resizes to `side`.
fn pad_resize(img: &RgbImage, side: u32, filter: imageops::FilterType) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = w.max(h);
    let mut square = RgbImage::new(s, s);
    imageops::replace(&mut square, img, ((s - w) / 2) as i64, ((s - h) / 2) as i64);
    imageops::resize(&square, side, side, filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::fov::tests::disc as fundus;
    use image::Rgb;

    #[test]
    fn fundus_is_centred_filling_the_square_and_black_outside() {
        let cfg = PreprocessConfig {
            size: 64,
            ..Default::default()
        };
        let p = prepare(&fundus(600, 400, 250.0, 200.0, 180.0), &cfg, None).unwrap();
        assert_eq!(p.image.dimensions(), (64, 64));
        assert_eq!(p.image.get_pixel(32, 32).0, [180, 90, 40]);
        assert_eq!(p.image.get_pixel(0, 0).0, [0, 0, 0]);
        // The disc touches the square's edges: the middle of the top row is retina-coloured
        // just inside the shrunken circle (row 1, radius 31.36 of 32).
        assert!(
            p.image.get_pixel(32, 1).0[0] > 100,
            "{:?}",
            p.image.get_pixel(32, 1)
        );
    }

    #[test]
    fn tensor_has_chw_shape_and_normalised_values() {
        let cfg = PreprocessConfig {
            size: 32,
            normalize: Normalize::UnitRange,
            ..Default::default()
        };
        let t = preprocess(&fundus(300, 300, 150.0, 150.0, 140.0), &cfg).unwrap();
        assert_eq!(t.len(), 3 * 32 * 32);
        let centre = 16 * 32 + 16;
        assert!((t[centre] - 180.0 / 255.0).abs() < 1e-6);
        assert!((t[32 * 32 + centre] - 90.0 / 255.0).abs() < 1e-6);
        assert!((t[2 * 32 * 32 + centre] - 40.0 / 255.0).abs() < 1e-6);
        assert_eq!(t[0], 0.0);
    }

    #[test]
    fn missing_fov_is_an_error_not_a_tensor() {
        let cfg = PreprocessConfig::default();
        let blank = RgbImage::from_pixel(100, 100, Rgb([1, 1, 1]));
        assert_eq!(
            preprocess(&blank, &cfg),
            Err(PreprocessError::NoFov(FovFailure::NoForeground))
        );
    }

    #[test]
    fn radiograph_trims_black_border_then_pads_to_square() {
        // 100×60 grey X-ray in a 10-px black frame: trimmed to 80×40, padded to 80×80.
        let mut img = RgbImage::new(100, 60);
        for y in 10..50 {
            for x in 10..90 {
                img.put_pixel(x, y, Rgb([90, 90, 90]));
            }
        }
        let p = prepare(&img, &PreprocessConfig::radiograph(80), None).unwrap();
        assert_eq!(p.image.get_pixel(40, 10).0, [0, 0, 0]); // padding above
        assert_eq!(p.image.get_pixel(0, 40).0, [90, 90, 90]); // left edge: X-ray, not frame
        assert_eq!(p.image.get_pixel(40, 59).0, [90, 90, 90]);
        assert_eq!(p.image.get_pixel(40, 61).0, [0, 0, 0]);
    }
}
