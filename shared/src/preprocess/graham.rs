//! Ben Graham's local colour normalisation (Kaggle DR 2015 winner), masked to the field of view.
//!
//! `out = 4·I − 4·G_σ(I) + 128`, clipped to `[0, 255]`, with `128` outside the FOV. Graham
//! blurred the whole frame, so the black surround bled into the rim of the retina and left a
//! bright ring; here the blur is a normalised convolution inside the FOV,
//! `G_σ(I·M) / G_σ(M)`, so rim pixels are compared with retina only.
use image::{ImageBuffer, Luma, Rgb, Rgb32FImage, RgbImage};

use super::circle::Circle;

/// Applies the normalisation to an 8-bit image; `fov` is the valid disc (whole image if `None`).
pub fn apply(img: &RgbImage, fov: Option<&Circle>, sigma: f32) -> Rgb32FImage {
    let (w, h) = img.dimensions();
    let mask: Vec<bool> = match fov {
        Some(c) => c.mask(w, h),
        None => vec![true; (w * h) as usize],
    };
    let masked = Rgb32FImage::from_fn(w, h, |x, y| {
        let p = img.get_pixel(x, y).0;
        let m = mask[(y * w + x) as usize] as u8 as f32;
        Rgb([p[0] as f32 * m, p[1] as f32 * m, p[2] as f32 * m])
    });
    let weights: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_fn(w, h, |x, y| Luma([mask[(y * w + x) as usize] as u8 as f32]));
    let blurred = image::imageops::blur(&masked, sigma);
    let norm = image::imageops::blur(&weights, sigma);
    Rgb32FImage::from_fn(w, h, |x, y| {
        if !mask[(y * w + x) as usize] {
            return Rgb([128.0; 3]);
        }
        let i = img.get_pixel(x, y).0;
        let b = blurred.get_pixel(x, y).0;
        let n = norm.get_pixel(x, y).0[0].max(1e-6);
        Rgb(std::array::from_fn(|c| {
            (4.0 * i[c] as f32 - 4.0 * b[c] / n + 128.0).clamp(0.0, 255.0)
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_retina_becomes_mid_grey_and_a_dark_dot_is_amplified() {
        // Flat orange disc with one dark 3×3 'haemorrhage' at the centre.
        let mut img = RgbImage::from_pixel(64, 64, Rgb([180, 90, 40]));
        for y in 31..34 {
            for x in 31..34 {
                img.put_pixel(x, y, Rgb([100, 50, 20]));
            }
        }
        let fov = Circle::centred(64, 0.9);
        let out = apply(&img, Some(&fov), 2.0);
        // Far from the dot, inside the FOV, I == blur(I): exactly 128 (the masked blur has no rim halo).
        let flat = out.get_pixel(32, 12).0;
        assert!(flat.iter().all(|v| (v - 128.0).abs() < 0.5), "{flat:?}");
        let rim = out.get_pixel(32, 4).0; // 28 px from centre, radius 28.8: inside, at the rim
        assert!(rim.iter().all(|v| (v - 128.0).abs() < 0.5), "{rim:?}");
        // The dot: 4·(100 − blur) + 128 with blur > 100 ⇒ well under 128 on red.
        assert!(out.get_pixel(32, 32).0[0] < 60.0);
        // Outside the FOV: 128.
        assert_eq!(out.get_pixel(0, 0).0, [128.0; 3]);
    }
}
