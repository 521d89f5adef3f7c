//! Floating-point RGB canvas with anti-aliased drawing primitives, masks and blur.
//!
//! Colours are display-referred values in `0.0..=1.0`. Pixel `(x, y)` covers the square
//! `[x, x+1) × [y, y+1)`, so its centre is `(x + 0.5, y + 0.5)`; all shapes are placed in
//! these continuous pixel coordinates and their coverage is computed analytically from the
//! distance to the edge, which anti-aliases without supersampling.
use image::RgbImage;

/// An RGB colour with channels in `0.0..=1.0`.
pub type Rgb = [f32; 3];

/// A square RGB raster of `f32` pixels, row-major.
#[derive(Clone, Debug)]
pub struct Canvas {
    /// Width and height in pixels.
    pub size: u32,
    /// Pixels, row-major, `size * size` of them.
    pub px: Vec<Rgb>,
}

/// A coverage layer in `0.0..=1.0`; shapes are merged with `max`, so overlapping segments
/// of one vessel do not darken their joints when the layer is composited once.
#[derive(Clone, Debug)]
pub struct Mask {
    size: u32,
    v: Vec<f32>,
}

/// How the edge of an ellipse falls off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Edge {
    /// One-pixel anti-aliased edge.
    Sharp,
    /// Smooth falloff over the given fraction of the radius (fluffy lesions, glows).
    Soft(f32),
}

/// An ellipse in pixel coordinates, rotated by `angle` radians.
#[derive(Clone, Copy, Debug)]
pub struct Ellipse {
    /// Centre x.
    pub cx: f32,
    /// Centre y.
    pub cy: f32,
    /// Semi-axis along the rotated x direction.
    pub rx: f32,
    /// Semi-axis along the rotated y direction.
    pub ry: f32,
    /// Rotation in radians.
    pub angle: f32,
}

impl Ellipse {
    /// A circle.
    pub fn circle(cx: f32, cy: f32, r: f32) -> Self {
        Self {
            cx,
            cy,
            rx: r,
            ry: r,
            angle: 0.0,
        }
    }

    /// Coverage of the pixel centred at `(px, py)` in `0.0..=1.0`.
    fn coverage(&self, px: f32, py: f32, edge: Edge) -> f32 {
        let (s, c) = self.angle.sin_cos();
        let dx = px - self.cx;
        let dy = py - self.cy;
        let u = (dx * c + dy * s) / self.rx;
        let v = (-dx * s + dy * c) / self.ry;
        let dn = (u * u + v * v).sqrt();
        match edge {
            Edge::Sharp => {
                let rmin = self.rx.min(self.ry);
                // Distance to the edge in pixels, approximated along the short axis; a shape
                // thinner than a pixel never covers one fully.
                let inside = (1.0 - dn) * rmin + 0.5;
                inside.clamp(0.0, (2.0 * rmin).min(1.0))
            }
            Edge::Soft(f) => 1.0 - smoothstep(1.0 - f.max(1e-3), 1.0, dn),
        }
    }

    /// Pixel bounding box `(x0, y0, x1, y1)`, exclusive upper bounds, clipped to `size`.
    fn bounds(&self, size: u32) -> Option<(usize, usize, usize, usize)> {
        let r = self.rx.max(self.ry) + 1.0;
        clip_box(self.cx - r, self.cy - r, self.cx + r, self.cy + r, size)
    }
}

/// Hermite smoothstep from `e0` to `e1`.
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Linear interpolation of colours.
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn clip_box(x0: f32, y0: f32, x1: f32, y1: f32, size: u32) -> Option<(usize, usize, usize, usize)> {
    let s = size as f32;
    if x1 < 0.0 || y1 < 0.0 || x0 >= s || y0 >= s {
        return None;
    }
    let x0 = x0.floor().max(0.0) as usize;
    let y0 = y0.floor().max(0.0) as usize;
    let x1 = (x1.ceil() as usize + 1).min(size as usize);
    let y1 = (y1.ceil() as usize + 1).min(size as usize);
    Some((x0, y0, x1, y1))
}

impl Canvas {
    /// A canvas filled with one colour.
    pub fn new(size: u32, fill: Rgb) -> Self {
        Self {
            size,
            px: vec![fill; (size * size) as usize],
        }
    }

    /// Blends `colour` over an ellipse with opacity `alpha` (times coverage).
    pub fn blend_ellipse(&mut self, e: &Ellipse, colour: Rgb, alpha: f32, edge: Edge) {
        let Some((x0, y0, x1, y1)) = e.bounds(self.size) else {
            return;
        };
        let n = self.size as usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let a = alpha * e.coverage(x as f32 + 0.5, y as f32 + 0.5, edge);
                if a > 0.0 {
                    let p = &mut self.px[y * n + x];
                    *p = mix(*p, colour, a);
                }
            }
        }
    }

    /// Blends `colour` wherever `mask` covers, with opacity `opacity * coverage`.
    pub fn composite(&mut self, mask: &Mask, colour: Rgb, opacity: f32) {
        debug_assert_eq!(mask.size, self.size);
        for (p, &m) in self.px.iter_mut().zip(&mask.v) {
            if m > 0.0 {
                *p = mix(*p, colour, m * opacity);
            }
        }
    }

    /// Separable Gaussian blur with standard deviation `sigma` pixels (edges clamped).
    pub fn blur(&mut self, sigma: f32) {
        if sigma < 0.2 {
            return;
        }
        let radius = (3.0 * sigma).ceil() as isize;
        let kernel: Vec<f32> = {
            let k: Vec<f32> = (-radius..=radius)
                .map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp())
                .collect();
            let sum: f32 = k.iter().sum();
            k.into_iter().map(|w| w / sum).collect()
        };
        let n = self.size as isize;
        let mut tmp = vec![[0.0f32; 3]; self.px.len()];
        for pass in 0..2 {
            let (src, dst) = if pass == 0 {
                (&self.px, &mut tmp)
            } else {
                (&tmp, &mut self.px)
            };
            for y in 0..n {
                for x in 0..n {
                    let mut acc = [0.0f32; 3];
                    for (k, w) in kernel.iter().enumerate() {
                        let o = k as isize - radius;
                        let (sx, sy) = if pass == 0 {
                            ((x + o).clamp(0, n - 1), y)
                        } else {
                            (x, (y + o).clamp(0, n - 1))
                        };
                        let s = src[(sy * n + sx) as usize];
                        acc[0] += s[0] * w;
                        acc[1] += s[1] * w;
                        acc[2] += s[2] * w;
                    }
                    dst[(y * n + x) as usize] = acc;
                }
            }
        }
    }

    /// Quantises to 8-bit RGB.
    pub fn to_image(&self) -> RgbImage {
        let mut buf = Vec::with_capacity(self.px.len() * 3);
        for p in &self.px {
            for c in p {
                buf.push((c.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
            }
        }
        RgbImage::from_raw(self.size, self.size, buf).expect("buffer matches size")
    }
}

impl Mask {
    /// An empty mask.
    pub fn new(size: u32) -> Self {
        Self {
            size,
            v: vec![0.0; (size * size) as usize],
        }
    }

    /// Coverage at pixel `(x, y)`.
    #[cfg(test)]
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.v[(y * self.size + x) as usize]
    }

    /// Sets coverage of the pixel with row-major index `i`.
    pub fn set(&mut self, i: usize, v: f32) {
        self.v[i] = v;
    }

    /// Adds a tapered capsule from `a` (radius `ra`) to `b` (radius `rb`), anti-aliased.
    pub fn capsule(&mut self, a: (f32, f32), b: (f32, f32), ra: f32, rb: f32) {
        let r = ra.max(rb) + 1.0;
        let Some((x0, y0, x1, y1)) = clip_box(
            a.0.min(b.0) - r,
            a.1.min(b.1) - r,
            a.0.max(b.0) + r,
            a.1.max(b.1) + r,
            self.size,
        ) else {
            return;
        };
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = (dx * dx + dy * dy).max(1e-12);
        let n = self.size as usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5 - a.0, y as f32 + 0.5 - a.1);
                let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
                let (ex, ey) = (px - t * dx, py - t * dy);
                let d = (ex * ex + ey * ey).sqrt();
                let rad = ra + (rb - ra) * t;
                let cov = (rad - d + 0.5).clamp(0.0, (2.0 * rad).min(1.0));
                let v = &mut self.v[y * n + x];
                if cov > *v {
                    *v = cov;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circle_coverage_is_full_inside_zero_outside_and_partial_on_the_edge() {
        let mut c = Canvas::new(32, [0.0; 3]);
        c.blend_ellipse(
            &Ellipse::circle(16.5, 16.5, 6.0),
            [1.0, 1.0, 1.0],
            1.0,
            Edge::Sharp,
        );
        let at = |x: usize, y: usize| c.px[y * 32 + x][0];
        assert_eq!(at(16, 16), 1.0);
        assert_eq!(at(2, 2), 0.0);
        // Pixel 21 has its centre 5 px from the centre: fully inside.
        assert_eq!(at(21, 16), 1.0);
        // Pixel 22's centre lies exactly on the edge: half covered.
        assert!((at(22, 16) - 0.5).abs() < 1e-6, "edge pixel {}", at(22, 16));
        assert_eq!(at(23, 16), 0.0);
        // Total painted area approximates πr².
        let area: f32 = c.px.iter().map(|p| p[0]).sum();
        assert!(
            (area - std::f32::consts::PI * 36.0).abs() < 4.0,
            "area {area}"
        );
    }

    #[test]
    fn capsule_mask_merges_with_max_so_joints_stay_uniform() {
        let mut m = Mask::new(40);
        m.capsule((5.0, 20.0), (20.0, 20.0), 3.0, 3.0);
        m.capsule((20.0, 20.0), (35.0, 20.0), 3.0, 3.0);
        assert_eq!(m.at(20, 19), 1.0);
        assert_eq!(m.at(10, 19), 1.0);
        assert_eq!(m.at(20, 30), 0.0);
        let mut c = Canvas::new(40, [1.0; 3]);
        c.composite(&m, [0.0; 3], 0.5);
        // Joint and middle of a segment composite to the same value.
        assert_eq!(c.px[19 * 40 + 20], c.px[19 * 40 + 10]);
        assert!((c.px[19 * 40 + 20][0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn blur_preserves_mean_and_reduces_contrast() {
        let mut c = Canvas::new(16, [0.0; 3]);
        c.px[8 * 16 + 8] = [1.0; 3];
        c.blur(1.5);
        let sum: f32 = c.px.iter().map(|p| p[1]).sum();
        assert!((sum - 1.0).abs() < 1e-4, "sum {sum}");
        assert!(c.px[8 * 16 + 8][1] < 0.1);
        assert!(c.px[8 * 16 + 9][1] > c.px[8 * 16 + 11][1]);
    }

    #[test]
    fn quantisation_rounds_and_clamps() {
        let mut c = Canvas::new(2, [0.5, -1.0, 2.0]);
        c.px[3] = [1.0 / 255.0 * 10.4, 0.0, 1.0];
        let img = c.to_image();
        assert_eq!(img.get_pixel(0, 0).0, [128, 0, 255]);
        assert_eq!(img.get_pixel(1, 1).0, [10, 0, 255]);
    }
}
