//! Fundus field-of-view (FOV) detection: the bright disc of retina inside the camera's black mask.
//!
//! Method: work on a copy shrunk to at most [`DETECT_SIDE`] pixels; estimate the background
//! level from the image border; threshold each pixel's brightest channel at
//! `background + max(MIN_STEP, STEP_FRACTION·(median of the lit pixels − background))` (the
//! median, not a high percentile, so a dark myopic fundus with a bright atrophic patch still
//! counts as lit); keep the largest 8-connected lit region (drops burnt-in text, rulers and
//! flare bars beside the disc); take the horizontal and vertical extents of its rows/columns
//! that are at least 2 % lit; the circle's radius is half the larger extent (the smaller one can
//! be clipped by the sensor, as in many cameras that cut the top and bottom of the disc). The
//! detection is accepted only if the region fills most of that circle.
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Longest side of the working copy used for detection.
pub const DETECT_SIDE: u32 = 256;
const MIN_STEP: f32 = 8.0;
const STEP_FRACTION: f32 = 0.25;
const LINE_FRACTION: f32 = 0.02;
/// Minimum share of the (image-clipped) circle that must be foreground.
const MIN_FILL: f32 = 0.80;
/// Minimum radius as a share of the shorter image side.
const MIN_RADIUS: f32 = 0.2;

/// A detected circular field of view, in pixels of the original image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fov {
    /// Centre column.
    pub cx: f32,
    /// Centre row.
    pub cy: f32,
    /// Radius.
    pub radius: f32,
}

/// Why no field of view was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FovFailure {
    /// Nothing stands out from the background (blank, lens cap, or uniformly lit).
    NoForeground,
    /// Something stands out but it is too small to be a retina.
    TooSmall,
    /// The bright region does not fill a circle (not a fundus photograph, or a bad capture).
    NotCircular,
}

impl std::fmt::Display for FovFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FovFailure::NoForeground => "no field of view: nothing stands out from the background",
            FovFailure::TooSmall => "no field of view: the bright region is too small",
            FovFailure::NotCircular => "no field of view: the bright region is not a disc",
        })
    }
}

/// Brightest channel of each pixel of a working copy shrunk to at most `DETECT_SIDE`.
fn working_copy(img: &RgbImage) -> (Vec<u8>, u32, u32, f32) {
    let (w, h) = img.dimensions();
    let scale = (DETECT_SIDE as f32 / w.max(h) as f32).min(1.0);
    let small;
    let src = if scale < 1.0 {
        let (sw, sh) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        small = image::imageops::thumbnail(img, sw, sh);
        &small
    } else {
        img
    };
    let lum = src
        .pixels()
        .map(|p| p.0[0].max(p.0[1]).max(p.0[2]))
        .collect();
    // The exact per-axis scale back to the original (thumbnail rounds each side).
    let back = w as f32 / src.width() as f32;
    (lum, src.width(), src.height(), back)
}

fn percentile(values: &mut [u8], q: f32) -> f32 {
    let k = ((values.len() - 1) as f32 * q).round() as usize;
    *values.select_nth_unstable(k).1 as f32
}

/// Finds the circular FOV of a fundus photograph.
pub fn detect(img: &RgbImage) -> Result<Fov, FovFailure> {
    let (lum, w, h, back) = working_copy(img);
    if w < 8 || h < 8 {
        return Err(FovFailure::TooSmall);
    }
    let mut border: Vec<u8> = (0..w)
        .flat_map(|x| [lum[x as usize], lum[((h - 1) * w + x) as usize]])
        .chain((0..h).flat_map(|y| [lum[(y * w) as usize], lum[(y * w + w - 1) as usize]]))
        .collect();
    let background = percentile(&mut border, 0.25);
    let mut lit: Vec<u8> = lum
        .iter()
        .copied()
        .filter(|&v| v as f32 > background + MIN_STEP)
        .collect();
    // Fewer than 1 % of pixels lit: nothing there.
    if lit.len() * 100 < lum.len() {
        return Err(FovFailure::NoForeground);
    }
    let median = percentile(&mut lit, 0.5);
    let threshold = background + MIN_STEP.max(STEP_FRACTION * (median - background));
    let fg = largest_region(
        &lum.iter()
            .map(|&v| v as f32 > threshold)
            .collect::<Vec<_>>(),
        w,
        h,
    );

    let extent = |counts: Vec<u32>, across: u32| {
        let need = (LINE_FRACTION * across as f32).max(1.0) as u32;
        let first = counts.iter().position(|&c| c >= need)?;
        let last = counts.iter().rposition(|&c| c >= need)?;
        Some((first as f32, last as f32 + 1.0))
    };
    let cols = (0..w)
        .map(|x| (0..h).filter(|&y| fg[(y * w + x) as usize]).count() as u32)
        .collect();
    let rows = (0..h)
        .map(|y| (0..w).filter(|&x| fg[(y * w + x) as usize]).count() as u32)
        .collect();
    let ((x0, x1), (y0, y1)) = match (extent(cols, h), extent(rows, w)) {
        (Some(xs), Some(ys)) => (xs, ys),
        _ => return Err(FovFailure::NoForeground),
    };
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let radius = (x1 - x0).max(y1 - y0) / 2.0;
    if radius < MIN_RADIUS * w.min(h) as f32 {
        return Err(FovFailure::TooSmall);
    }
    // Fill ratio inside the circle, counting only the part that lies within the image.
    let (mut inside, mut lit) = (0u32, 0u32);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            if dx * dx + dy * dy <= (0.95 * radius).powi(2) {
                inside += 1;
                lit += fg[(y * w + x) as usize] as u32;
            }
        }
    }
    if inside == 0 || (lit as f32) < MIN_FILL * inside as f32 {
        return Err(FovFailure::NotCircular);
    }
    Ok(Fov {
        cx: cx * back,
        cy: cy * back,
        radius: radius * back,
    })
}

/// The largest 8-connected `true` region of a row-major mask, as a new mask.
fn largest_region(mask: &[bool], w: u32, h: u32) -> Vec<bool> {
    let (w, h) = (w as usize, h as usize);
    let mut label = vec![0u32; mask.len()];
    let (mut best, mut best_size, mut next) = (0u32, 0usize, 0u32);
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if mask[j] && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if size > best_size {
            (best, best_size) = (next, size);
        }
    }
    label.iter().map(|&l| l == best && l != 0).collect()
}

/// The square of side `2·radius` around the FOV, cut from `img` (black where it overhangs).
pub fn crop_square(img: &RgbImage, fov: &Fov) -> RgbImage {
    let side = (2.0 * fov.radius).round().max(1.0) as u32;
    let x0 = (fov.cx - fov.radius).round() as i64;
    let y0 = (fov.cy - fov.radius).round() as i64;
    let mut out = RgbImage::new(side, side);
    image::imageops::replace(&mut out, img, -x0, -y0);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::Rgb;

    /// A synthetic 'fundus': black frame, orange disc of radius r at (cx, cy), clipped by the frame.
    pub(crate) fn disc(w: u32, h: u32, cx: f32, cy: f32, r: f32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                Rgb([180, 90, 40])
            } else {
                Rgb([3, 2, 2])
            }
        })
    }

    #[test]
    fn finds_a_centred_disc_to_within_two_percent() {
        let fov = detect(&disc(800, 600, 410.0, 290.0, 260.0)).unwrap();
        assert!((fov.cx - 410.0).abs() < 6.0, "{fov:?}");
        assert!((fov.cy - 290.0).abs() < 6.0, "{fov:?}");
        assert!((fov.radius - 260.0).abs() < 6.0, "{fov:?}");
    }

    #[test]
    fn disc_clipped_top_and_bottom_keeps_its_full_radius() {
        // Radius 320 in a 500-row frame: rows are clipped, columns give the diameter.
        let fov = detect(&disc(900, 500, 450.0, 250.0, 320.0)).unwrap();
        assert!((fov.radius - 320.0).abs() < 8.0, "{fov:?}");
        assert!((fov.cy - 250.0).abs() < 8.0, "{fov:?}");
    }

    #[test]
    fn blank_and_tiny_and_non_disc_images_are_rejected() {
        assert_eq!(
            detect(&RgbImage::from_pixel(300, 300, Rgb([4, 4, 4]))),
            Err(FovFailure::NoForeground)
        );
        assert_eq!(
            detect(&disc(400, 400, 200.0, 200.0, 30.0)),
            Err(FovFailure::TooSmall)
        );
        // A bright ring: the extents look like a disc but its centre is dark.
        let ring = RgbImage::from_fn(400, 400, |x, y| {
            let d = ((x as f32 - 200.0).powi(2) + (y as f32 - 200.0).powi(2)).sqrt();
            if (150.0..190.0).contains(&d) {
                Rgb([200, 100, 50])
            } else {
                Rgb([0, 0, 0])
            }
        });
        assert_eq!(detect(&ring), Err(FovFailure::NotCircular));
    }

    #[test]
    fn crop_square_pads_with_black_where_the_circle_overhangs() {
        let img = RgbImage::from_pixel(100, 60, Rgb([200, 100, 50]));
        let sq = crop_square(
            &img,
            &Fov {
                cx: 50.0,
                cy: 30.0,
                radius: 40.0,
            },
        );
        assert_eq!(sq.dimensions(), (80, 80));
        assert_eq!(sq.get_pixel(40, 5).0, [0, 0, 0]); // row -5 of the original
        assert_eq!(sq.get_pixel(40, 40).0, [200, 100, 50]);
    }
}
