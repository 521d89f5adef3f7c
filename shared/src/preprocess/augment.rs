//! Training augmentation: rotation by any angle, flips, random resized crop, colour jitter.
//!
//! Deterministic for a seed: every draw comes from the caller's RNG, in a fixed order. Works on
//! the prepared (cropped, resized) 8-bit image and keeps track of the FOV disc so the masked
//! steps after it (Graham) still know where the retina is.
use image::{Rgb, RgbImage, imageops};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::circle::Circle;

/// Augmentation strengths; each is off when zero / false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Rotate by a uniform angle in `[-max, max]` degrees about the centre (180 = any angle).
    pub rotate_degrees: f32,
    /// Horizontal flip with probability 1/2.
    pub hflip: bool,
    /// Vertical flip with probability 1/2.
    pub vflip: bool,
    /// Random resized crop: area share range `(min, max)` and aspect ratio range, torchvision style.
    pub crop_scale: (f32, f32),
    /// Aspect-ratio range of the random resized crop.
    pub crop_ratio: (f32, f32),
    /// Brightness factor drawn from `[1−b, 1+b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[1−c, 1+c]` (blend with the mean grey).
    pub contrast: f32,
    /// Saturation factor drawn from `[1−s, 1+s]` (blend with the grey image).
    pub saturation: f32,
}

impl Default for AugmentConfig {
    /// Fundus defaults: any rotation, both flips, mild crops and jitter.
    fn default() -> Self {
        AugmentConfig {
            rotate_degrees: 180.0,
            hflip: true,
            vflip: true,
            crop_scale: (0.85, 1.0),
            crop_ratio: (0.9, 1.1),
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.1,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all (evaluation).
    pub fn none() -> Self {
        AugmentConfig {
            rotate_degrees: 0.0,
            hflip: false,
            vflip: false,
            crop_scale: (1.0, 1.0),
            crop_ratio: (1.0, 1.0),
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
        }
    }
}

/// Applies the augmentation to a square prepared image and its FOV disc.
pub fn augment<R: Rng>(
    img: &RgbImage,
    fov: Option<Circle>,
    cfg: &AugmentConfig,
    rng: &mut R,
) -> (RgbImage, Option<Circle>) {
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    let mut fov = fov;
    if cfg.rotate_degrees > 0.0 {
        let angle = rng
            .random_range(-cfg.rotate_degrees..=cfg.rotate_degrees)
            .to_radians();
        out = rotate_about_centre(&out, angle);
        if let Some(c) = fov.as_mut() {
            let (hx, hy) = (w as f32 / 2.0, h as f32 / 2.0);
            let (dx, dy) = (c.cx - hx, c.cy - hy);
            let (s, co) = angle.sin_cos();
            (c.cx, c.cy) = (hx + co * dx - s * dy, hy + s * dx + co * dy);
        }
    }
    if cfg.hflip && rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut out);
        if let Some(c) = fov.as_mut() {
            c.cx = w as f32 - c.cx;
        }
    }
    if cfg.vflip && rng.random_bool(0.5) {
        imageops::flip_vertical_in_place(&mut out);
        if let Some(c) = fov.as_mut() {
            c.cy = h as f32 - c.cy;
        }
    }
    if cfg.crop_scale.0 < 1.0 || cfg.crop_ratio != (1.0, 1.0) {
        let area = rng.random_range(cfg.crop_scale.0..=cfg.crop_scale.1) * (w * h) as f32;
        let (lr0, lr1) = (cfg.crop_ratio.0.ln(), cfg.crop_ratio.1.ln());
        let ratio = rng.random_range(lr0..=lr1).exp();
        let cw = ((area * ratio).sqrt().round() as u32).clamp(1, w);
        let ch = ((area / ratio).sqrt().round() as u32).clamp(1, h);
        let x0 = rng.random_range(0..=w - cw);
        let y0 = rng.random_range(0..=h - ch);
        let cropped = imageops::crop_imm(&out, x0, y0, cw, ch).to_image();
        out = imageops::resize(&cropped, w, h, imageops::FilterType::Triangle);
        if let Some(c) = fov.as_mut() {
            let (sx, sy) = (w as f32 / cw as f32, h as f32 / ch as f32);
            c.cx = (c.cx - x0 as f32) * sx;
            c.cy = (c.cy - y0 as f32) * sy;
            c.r *= sx.min(sy);
        }
    }
    jitter(&mut out, cfg, fov.as_ref(), rng);
    (out, fov)
}

/// Bilinear rotation about the image centre; pixels from outside the source are black.
fn rotate_about_centre(img: &RgbImage, angle: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (hx, hy) = (w as f32 / 2.0, h as f32 / 2.0);
    let (s, c) = angle.sin_cos();
    RgbImage::from_fn(w, h, |x, y| {
        // Inverse map: rotate the destination pixel centre by −angle.
        let (dx, dy) = (x as f32 + 0.5 - hx, y as f32 + 0.5 - hy);
        let sx = hx + c * dx + s * dy - 0.5;
        let sy = hy - s * dx + c * dy - 0.5;
        // Pixel centres span [−0.5, w−0.5]; clamp onto the sample grid inside that band.
        let inside = (-0.5..=w as f32 - 0.5).contains(&sx) && (-0.5..=h as f32 - 0.5).contains(&sy);
        if !inside {
            return Rgb([0, 0, 0]);
        }
        let (sx, sy) = (sx.clamp(0.0, (w - 1) as f32), sy.clamp(0.0, (h - 1) as f32));
        imageops::interpolate_bilinear(img, sx, sy).unwrap_or(Rgb([0, 0, 0]))
    })
}

/// Brightness, contrast and saturation jitter (torchvision `ColorJitter` order and formulas),
/// applied inside the FOV only so the black surround stays black.
fn jitter<R: Rng>(img: &mut RgbImage, cfg: &AugmentConfig, fov: Option<&Circle>, rng: &mut R) {
    let mut factor = |amount: f32| {
        if amount > 0.0 {
            rng.random_range(1.0 - amount..=1.0 + amount)
        } else {
            1.0
        }
    };
    let (b, c, s) = (
        factor(cfg.brightness),
        factor(cfg.contrast),
        factor(cfg.saturation),
    );
    if (b, c, s) == (1.0, 1.0, 1.0) {
        return;
    }
    let grey = |p: [f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let inside = |x: u32, y: u32| fov.is_none_or(|f| f.contains(x, y));
    // Contrast blends with the mean grey of the (brightness-adjusted) FOV, as torchvision does.
    let (mut sum, mut n) = (0.0f64, 0u64);
    for (x, y, p) in img.enumerate_pixels() {
        if inside(x, y) {
            sum += grey(p.0.map(|v| (v as f32 * b).min(255.0))) as f64;
            n += 1;
        }
    }
    let mean = if n > 0 { (sum / n as f64) as f32 } else { 0.0 };
    for (x, y, p) in img.enumerate_pixels_mut() {
        if !inside(x, y) {
            continue;
        }
        let v = p.0.map(|v| (v as f32 * b).min(255.0));
        let v = v.map(|v| (c * v + (1.0 - c) * mean).clamp(0.0, 255.0));
        let g = grey(v);
        p.0 = v.map(|v| (s * v + (1.0 - s) * g).clamp(0.0, 255.0).round() as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn test_image() -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, 100]))
    }

    #[test]
    fn same_seed_same_output_other_seed_other_output() {
        let cfg = AugmentConfig::default();
        let run = |seed| {
            augment(
                &test_image(),
                Some(Circle::centred(64, 0.98)),
                &cfg,
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).0, run(8).0);
    }

    #[test]
    fn quarter_turn_moves_pixels_like_a_quarter_turn() {
        let img = test_image();
        let rot = rotate_about_centre(&img, std::f32::consts::FRAC_PI_2);
        // +90° (clockwise on screen with y down): destination (x, y) samples source (y, w−1−x).
        for (x, y) in [(10, 20), (40, 5), (63, 63)] {
            assert_eq!(
                rot.get_pixel(x, y),
                img.get_pixel(y, 63 - x),
                "at ({x},{y})"
            );
        }
    }

    #[test]
    fn no_augmentation_is_identity_and_jitter_spares_the_surround() {
        let img = test_image();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(augment(&img, None, &AugmentConfig::none(), &mut rng).0, img);
        let cfg = AugmentConfig {
            brightness: 0.5,
            ..AugmentConfig::none()
        };
        let mut black = RgbImage::from_pixel(32, 32, Rgb([120, 60, 30]));
        black.put_pixel(0, 0, Rgb([0, 0, 0]));
        let (out, _) = augment(&black, Some(Circle::centred(32, 0.9)), &cfg, &mut rng);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_ne!(out.get_pixel(16, 16).0, [120, 60, 30]);
    }

    #[test]
    fn flips_track_the_fov_centre() {
        let cfg = AugmentConfig {
            hflip: true,
            vflip: true,
            ..AugmentConfig::none()
        };
        let fov = Circle {
            cx: 20.0,
            cy: 30.0,
            r: 10.0,
        };
        for seed in 0..8 {
            let (_, f) = augment(
                &test_image(),
                Some(fov),
                &cfg,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            let f = f.unwrap();
            assert!(
                [20.0, 44.0].contains(&f.cx) && [30.0, 34.0].contains(&f.cy),
                "{f:?}"
            );
        }
    }
}
