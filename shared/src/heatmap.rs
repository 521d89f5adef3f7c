//! Heatmaps over the prepared fundus: one type, one colour map and one overlay for the host's
//! Grad-CAM montages and the device's class activation maps, so both look the same.
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma, Rgb, RgbImage};

/// A map at image resolution, row-major, values in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// Side in pixels.
    pub side: u32,
    /// `side × side` values.
    pub values: Vec<f32>,
}

impl Heatmap {
    /// A coarse `w × h` map (any real values) made displayable: negative values clipped to 0
    /// (evidence against the class is not shown), scaled by the maximum, bilinearly upsampled
    /// to `side`. An all-zero map stays zero.
    pub fn from_coarse(coarse: &[f32], w: u32, h: u32, side: u32) -> Heatmap {
        assert_eq!(coarse.len(), (w * h) as usize, "{w}×{h} map");
        let clipped: Vec<f32> = coarse.iter().map(|v| v.max(0.0)).collect();
        let max = clipped.iter().copied().fold(0.0f32, f32::max);
        // Scaled to [0, 1] before resampling: image's resampling clamps f32 pixels to [0, 1].
        let scaled: Vec<f32> = if max > 0.0 {
            clipped.into_iter().map(|v| v / max).collect()
        } else {
            clipped
        };
        let small = ImageBuffer::<Luma<f32>, Vec<f32>>::from_raw(w, h, scaled).expect("w·h values");
        let mut values = imageops::resize(&small, side, side, FilterType::Triangle).into_raw();
        let max = values.iter().copied().fold(0.0f32, f32::max);
        if max > 0.0 {
            values
                .iter_mut()
                .for_each(|v| *v = (*v / max).clamp(0.0, 1.0));
        }
        Heatmap { side, values }
    }

    /// `(x, y)` of the largest value: the centroid of the pixels that hold it, so a plateau
    /// (upsampling clamps the border band to the edge cell's value) reports its middle, not its
    /// first pixel on the image border.
    pub fn peak(&self) -> (u32, u32) {
        let max = self
            .values
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
        for (i, &v) in self.values.iter().enumerate() {
            if v == max {
                sx += i as u64 % self.side as u64;
                sy += i as u64 / self.side as u64;
                n += 1;
            }
        }
        let n = n.max(1);
        (((sx + n / 2) / n) as u32, ((sy + n / 2) / n) as u32)
    }
}

/// The "jet" colour of `v` in `[0, 1]` (blue → cyan → yellow → red).
pub fn jet(v: f32) -> [f32; 3] {
    let c = |x: f32| (1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0);
    [c(3.0), c(2.0), c(1.0)].map(|x| x * 255.0)
}

/// `image` with `heat` blended over it (opacity grows with the heat, up to 0.6). The sizes
/// must agree.
pub fn overlay(image: &RgbImage, heat: &Heatmap) -> RgbImage {
    assert_eq!(
        (image.width(), image.height()),
        (heat.side, heat.side),
        "heatmap and image sizes differ"
    );
    let mut out = image.clone();
    for (i, px) in out.pixels_mut().enumerate() {
        let old = *px;
        let v = heat.values[i];
        let a = 0.6 * v;
        let j = jet(v);
        *px = Rgb(std::array::from_fn(|k| {
            ((1.0 - a) * old[k] as f32 + a * j[k]).round() as u8
        }));
    }
    out
}

/// A GAP → linear classifier (`logits = GAP(features) · weight + bias`), as `host export`
/// writes it (initializers `classifier.output.weight` / `.bias`).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    /// `[channels, classes]`, row-major.
    pub weight: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
    /// Feature channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
}

/// The class activation map (Zhou et al. 2016) for `positive` classes from one
/// `[channels, h·w]` feature map: `M = Σ_c features[c] · Σ_{k ∈ positive} weight[c, k]`; its
/// mean plus the positive biases is the sum of the positive logits.
pub fn class_map(features: &[f32], head: &LinearHead, positive: &[usize]) -> Vec<f32> {
    let hw = features.len() / head.channels;
    let mut map = vec![0.0f32; hw];
    for c in 0..head.channels {
        let w: f32 = positive
            .iter()
            .map(|&k| head.weight[c * head.classes + k])
            .sum();
        for (m, f) in map.iter_mut().zip(&features[c * hw..(c + 1) * hw]) {
            *m += w * f;
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_jet_ends_and_overlay() {
        let h = Heatmap {
            side: 3,
            values: vec![0.0, 0.1, 0.2, 0.3, 0.2, 1.0, 0.0, 0.0, 0.0],
        };
        assert_eq!(h.peak(), (2, 1));
        assert_eq!(jet(0.0), [0.0, 0.0, 127.5]);
        assert_eq!(jet(1.0), [127.5, 0.0, 0.0]);
        let img = RgbImage::from_pixel(3, 3, Rgb([100, 100, 100]));
        let o = overlay(&img, &h);
        assert_eq!(
            o.get_pixel(0, 0),
            &Rgb([100, 100, 100]),
            "zero heat leaves it"
        );
        // Full heat: 0.4 · 100 + 0.6 · jet(1) = [116.5, 40, 40] (±1 for f32 rounding).
        let p = o.get_pixel(2, 1);
        assert!(
            (116..=117).contains(&p[0]) && p[1] == 40 && p[2] == 40,
            "{p:?}"
        );
    }

    #[test]
    fn coarse_maps_clip_negatives_and_peak_where_the_evidence_is() {
        // 2×2 map, strongest at (1, 0); a negative cell reads as 0.
        let h = Heatmap::from_coarse(&[1.0, 3.0, -2.0, 0.0], 2, 2, 8);
        assert_eq!(h.values.len(), 64);
        assert_eq!(h.values.iter().copied().fold(0.0f32, f32::max), 1.0);
        let (x, y) = h.peak();
        assert!(x >= 4 && y < 4, "peak ({x}, {y}) in the top-right quadrant");
        assert_eq!(
            h.values[7 * 8],
            0.0,
            "bottom-left (from the negative cell) is dark"
        );
        let zero = Heatmap::from_coarse(&[-1.0; 4], 2, 2, 4);
        assert!(zero.values.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn class_map_by_hand_and_its_mean_is_the_logit() {
        // 2 channels of a 2×2 map, 3 classes; positive = classes 1 and 2.
        let head = LinearHead {
            weight: vec![0.5, 1.0, -2.0, 0.25, 3.0, 1.0],
            bias: vec![0.0, 0.1, -0.2],
            channels: 2,
            classes: 3,
        };
        let features = [1.0, 2.0, 0.0, -1.0, 4.0, 0.0, 2.0, 1.0];
        // Σ_k∈{1,2} W[c,k]: channel 0: 1 − 2 = −1; channel 1: 3 + 1 = 4.
        // map = −1·[1, 2, 0, −1] + 4·[4, 0, 2, 1] = [15, −2, 8, 5].
        let map = class_map(&features, &head, &[1, 2]);
        assert_eq!(map, vec![15.0, -2.0, 8.0, 5.0]);
        // GAP(features) = [0.5, 1.75]; logits 1 and 2: 0.5·1 + 1.75·3 + 0.1 = 5.85,
        // 0.5·(−2) + 1.75·1 − 0.2 = 0.55; their sum 6.4 = mean(map) 6.5 + biases −0.1.
        let mean = map.iter().sum::<f32>() / 4.0;
        assert!((mean + 0.1 - 0.2 - 6.4).abs() < 1e-6);
    }

    /// A 2×2 map whose top-left cell is largest, upsampled to 64: bilinear resampling clamps the
    /// band between the border and the cell centre to the cell's value, so the maximum is the
    /// 16×16 plateau [0, 15]² (measured) whose centroid (7.5, 7.5) rounds to (8, 8) — not
    /// (0, 0), its first pixel, which the first-maximum rule used to report.
    #[test]
    fn the_peak_of_a_plateau_is_its_centroid() {
        let h = Heatmap::from_coarse(&[1.0, 0.2, 0.2, 0.2], 2, 2, 64);
        let plateau = h.values.iter().filter(|&&v| v == 1.0).count();
        let (x, y) = h.peak();
        assert_eq!(plateau, 256);
        assert_eq!((x, y), (8, 8));
    }
}
