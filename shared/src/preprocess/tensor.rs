//! Model input layout: planar CHW `f32`, normalised per channel.
use image::{Rgb32FImage, RgbImage};

use super::config::Normalize;

/// Writes `img` (values 0–255) as CHW `f32` into `out` (length `3·w·h`), normalised.
pub fn write_chw_f32(img: &Rgb32FImage, norm: &Normalize, out: &mut [f32]) {
    write_planes(img.pixels().map(|p| p.0), norm, out);
}

/// Same as [`write_chw_f32`] for an 8-bit image.
pub fn write_chw_u8(img: &RgbImage, norm: &Normalize, out: &mut [f32]) {
    write_planes(img.pixels().map(|p| p.0.map(f32::from)), norm, out);
}

/// Scatters interleaved RGB pixels into three planes of `out`, normalised.
fn write_planes(
    pixels: impl ExactSizeIterator<Item = [f32; 3]>,
    norm: &Normalize,
    out: &mut [f32],
) {
    let plane = pixels.len();
    assert_eq!(out.len(), 3 * plane, "output slice must hold 3 planes");
    let affine = norm.affine();
    for (i, p) in pixels.enumerate() {
        for (c, &(s, o)) in affine.iter().enumerate() {
            out[c * plane + i] = p[c] * s + o;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn planar_layout_and_imagenet_values() {
        // 2×1 image: pixel 0 = (255, 0, 128), pixel 1 = (0, 255, 64).
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([255, 0, 128]));
        img.put_pixel(1, 0, Rgb([0, 255, 64]));
        let mut out = vec![0.0; 6];
        write_chw_u8(&img, &Normalize::ImageNet, &mut out);
        // numpy: ((np.array([[255,0],[0,255],[128,64]])/255).T - mean).T / std, flattened by channel
        let expected = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (1.0 - 0.456) / 0.224,
            (128.0 / 255.0 - 0.406) / 0.225,
            (64.0 / 255.0 - 0.406) / 0.225,
        ];
        for (a, e) in out.iter().zip(expected) {
            assert!((a - e).abs() < 1e-5, "{out:?}");
        }
        let mut f = vec![0.0; 6];
        write_chw_f32(
            &image::DynamicImage::ImageRgb8(img).to_rgb32f(),
            &Normalize::UnitRange,
            &mut f,
        );
        // to_rgb32f already divides by 255, so UnitRange divides again: guard the contract.
        assert!(f[0] < 0.01, "write_chw_f32 expects 0–255 values, got {f:?}");
    }
}
