//! Diabetic-retinopathy lesions by grade of the international clinical (ICDR) scale.
//!
//! | grade | drawn                                                                      |
//! |-------|----------------------------------------------------------------------------|
//! | 0     | nothing                                                                    |
//! | 1     | a few microaneurysms                                                       |
//! | 2     | more microaneurysms, dot/blot haemorrhages, hard exudates (often circinate |
//! |       | rings near the macula), occasionally cotton-wool spots                     |
//! | 3     | many haemorrhages in all four quadrants, flame haemorrhages, cotton-wool   |
//! |       | spots, IRMA (venous beading is drawn with the vessel tree)                 |
//! | 4     | grade 3 plus neovascular tufts at the disc or on a vein, sometimes a       |
//! |       | boat-shaped preretinal haemorrhage                                         |
//!
//! Sizes are in eye units (FOV radius = 1) so lesions scale with the image, with a floor
//! in pixels so they survive small renders; counts and sizes grow with grade.
use std::f32::consts::{PI, TAU};

use rand::Rng;

use super::anatomy::{Anatomy, Frame};
use super::canvas::{Canvas, Edge, Ellipse, Mask, Rgb};
use super::noise::{count, normal, uniform};
use super::vessels::Kind;

const MA: Rgb = [0.55, 0.06, 0.05];
const HAEM: Rgb = [0.42, 0.04, 0.03];
const EXUDATE: Rgb = [0.98, 0.88, 0.42];
const COTTON: Rgb = [0.96, 0.9, 0.8];
const NEW_VESSEL: Rgb = [0.6, 0.09, 0.06];

/// Venous beading amplitude for a grade (see [`super::vessels::draw`]).
pub fn beading(grade: u8) -> f32 {
    if grade >= 3 { 0.3 } else { 0.0 }
}

/// Draws the lesions of `grade`; `contrast` scales every lesion's opacity (1.0 = normal).
pub fn paint(
    canvas: &mut Canvas,
    frame: &Frame,
    anatomy: &Anatomy,
    grade: u8,
    contrast: f32,
    rng: &mut impl Rng,
) {
    let mut p = Painter {
        canvas,
        frame,
        anatomy,
        contrast,
    };
    match grade {
        0 => {}
        1 => p.microaneurysms(count(rng, 4, 9), rng),
        2 => {
            p.microaneurysms(count(rng, 10, 22), rng);
            p.dot_haemorrhages(count(rng, 5, 12), false, rng);
            p.blot_haemorrhages(count(rng, 1, 4), false, rng);
            p.exudate_rings(count(rng, 1, 2), rng);
            p.exudate_clusters(count(rng, 1, 3), rng);
            p.cotton_wool(count(rng, 0, 2), rng);
        }
        _ => {
            p.microaneurysms(count(rng, 18, 35), rng);
            p.dot_haemorrhages(count(rng, 16, 28), true, rng);
            p.blot_haemorrhages(count(rng, 8, 14), true, rng);
            p.flame_haemorrhages(count(rng, 2, 5), rng);
            p.exudate_rings(count(rng, 1, 3), rng);
            p.exudate_clusters(count(rng, 1, 3), rng);
            p.cotton_wool(count(rng, 2, 5), rng);
            p.irma(count(rng, 2, 5), rng);
            if grade >= 4 {
                p.neovascular_tufts(count(rng, 1, 3), rng);
                if rng.random::<bool>() {
                    p.preretinal_haemorrhage(rng);
                }
            }
        }
    }
}

struct Painter<'a> {
    canvas: &'a mut Canvas,
    frame: &'a Frame,
    anatomy: &'a Anatomy,
    contrast: f32,
}

impl Painter<'_> {
    /// A point of the retina away from the disc: Gaussian about the posterior pole, or in a
    /// given quadrant about the FOV centre (0 = superonasal, clockwise in eye coordinates).
    fn spot(&self, quadrant: Option<usize>, rng: &mut impl Rng) -> (f32, f32) {
        let (dx, dy) = self.anatomy.disc;
        loop {
            let (u, v) = match quadrant {
                None => (
                    self.anatomy.fovea.0 + 0.4 * normal(rng),
                    self.anatomy.fovea.1 + 0.4 * normal(rng),
                ),
                Some(q) => {
                    let a = -PI / 2.0 + (q as f32 + uniform(rng, 0.05, 0.95)) * PI / 2.0;
                    let r = uniform(rng, 0.15, 0.85);
                    (r * a.cos(), r * a.sin())
                }
            };
            let from_disc = ((u - dx).powi(2) + (v - dy).powi(2)).sqrt();
            if (u * u + v * v).sqrt() < 0.9 && from_disc > 1.4 * self.anatomy.disc_r.1 {
                return (u, v);
            }
        }
    }

    fn px_len(&self, l: f32, floor: f32) -> f32 {
        self.frame.len(l).max(floor)
    }

    /// Blends an ellipse with pixel semi-axes and rotation `(rx, ry, angle)` centred at `at`.
    fn ellipse(
        &mut self,
        at: (f32, f32),
        (rx, ry, angle): (f32, f32, f32),
        colour: Rgb,
        alpha: f32,
        edge: Edge,
    ) {
        let (cx, cy) = self.frame.px(at.0, at.1);
        let e = Ellipse {
            cx,
            cy,
            rx,
            ry,
            angle,
        };
        self.canvas
            .blend_ellipse(&e, colour, alpha * self.contrast, edge);
    }

    fn microaneurysms(&mut self, n: usize, rng: &mut impl Rng) {
        for _ in 0..n {
            let at = self.spot(None, rng);
            let r = self.px_len(uniform(rng, 0.005, 0.009), 0.8);
            self.ellipse(at, (r, r, 0.0), MA, 0.9, Edge::Sharp);
        }
    }

    fn dot_haemorrhages(&mut self, n: usize, all_quadrants: bool, rng: &mut impl Rng) {
        for i in 0..n {
            let at = self.spot(all_quadrants.then_some(i % 4), rng);
            let r = self.px_len(uniform(rng, 0.011, 0.02), 1.2);
            self.ellipse(
                at,
                (r, r * uniform(rng, 0.8, 1.0), uniform(rng, 0.0, PI)),
                HAEM,
                0.85,
                Edge::Soft(0.3),
            );
        }
    }

    fn blot_haemorrhages(&mut self, n: usize, all_quadrants: bool, rng: &mut impl Rng) {
        for i in 0..n {
            let at = self.spot(all_quadrants.then_some(i % 4), rng);
            let size = uniform(rng, 0.022, 0.045);
            for _ in 0..count(rng, 3, 6) {
                let off = (
                    at.0 + 0.5 * size * normal(rng),
                    at.1 + 0.5 * size * normal(rng),
                );
                let r = self.px_len(size * uniform(rng, 0.5, 0.9), 1.5);
                self.ellipse(
                    off,
                    (r, r * uniform(rng, 0.6, 1.0), uniform(rng, 0.0, PI)),
                    HAEM,
                    0.7,
                    Edge::Soft(0.35),
                );
            }
        }
    }

    /// Flame-shaped haemorrhages, elongated along the nerve fibres (radially from the disc).
    fn flame_haemorrhages(&mut self, n: usize, rng: &mut impl Rng) {
        let disc = self.frame.px(self.anatomy.disc.0, self.anatomy.disc.1);
        for _ in 0..n {
            let at = self.spot(None, rng);
            let (x, y) = self.frame.px(at.0, at.1);
            let angle = (y - disc.1).atan2(x - disc.0);
            let rx = self.px_len(uniform(rng, 0.03, 0.055), 2.5);
            self.ellipse(
                at,
                (rx, rx * uniform(rng, 0.25, 0.4), angle),
                [0.5, 0.07, 0.05],
                0.8,
                Edge::Soft(0.5),
            );
        }
    }

    /// Circinate rings of hard exudates around a leaking area near the macula.
    fn exudate_rings(&mut self, n: usize, rng: &mut impl Rng) {
        for _ in 0..n {
            let a = uniform(rng, 0.0, TAU);
            let d = uniform(rng, 0.1, 0.3);
            let c = (
                self.anatomy.fovea.0 + d * a.cos(),
                self.anatomy.fovea.1 + d * a.sin(),
            );
            let rho = uniform(rng, 0.05, 0.1);
            let arc = uniform(rng, 0.5, 1.0) * TAU;
            let start = uniform(rng, 0.0, TAU);
            for _ in 0..count(rng, 10, 24) {
                let t = start + arc * rng.random::<f32>();
                let rr = rho * (1.0 + 0.12 * normal(rng));
                let r = self.px_len(uniform(rng, 0.004, 0.011), 0.7);
                self.ellipse(
                    (c.0 + rr * t.cos(), c.1 + rr * t.sin()),
                    (r, r, 0.0),
                    EXUDATE,
                    0.9,
                    Edge::Sharp,
                );
            }
        }
    }

    /// Small groups of exudates at the posterior pole.
    fn exudate_clusters(&mut self, n: usize, rng: &mut impl Rng) {
        for _ in 0..n {
            let c = self.spot(None, rng);
            for _ in 0..count(rng, 3, 8) {
                let at = (c.0 + 0.025 * normal(rng), c.1 + 0.025 * normal(rng));
                let r = self.px_len(uniform(rng, 0.004, 0.01), 0.7);
                self.ellipse(
                    at,
                    (r, r * uniform(rng, 0.7, 1.0), 0.0),
                    EXUDATE,
                    0.85,
                    Edge::Sharp,
                );
            }
        }
    }

    /// Fluffy pale cotton-wool spots along the arcades, near the disc.
    fn cotton_wool(&mut self, n: usize, rng: &mut impl Rng) {
        for _ in 0..n {
            let (fx, fy) = self.anatomy.fovea;
            let a = uniform(rng, 0.0, TAU);
            let d = uniform(rng, 0.3, 0.55);
            let at = (fx + 0.3 + d * a.cos(), fy + d * a.sin());
            if (at.0 * at.0 + at.1 * at.1).sqrt() > 0.9 {
                continue;
            }
            let rx = self.px_len(uniform(rng, 0.04, 0.065), 2.5);
            let ry = rx * uniform(rng, 0.55, 0.9);
            let angle = uniform(rng, 0.0, PI);
            self.ellipse(at, (rx, ry, angle), COTTON, 0.7, Edge::Soft(0.7));
            self.ellipse(
                at,
                (rx * 0.6, ry * 0.6, angle),
                COTTON,
                0.35,
                Edge::Soft(0.8),
            );
        }
    }

    /// Draws a thin tortuous walk (IRMA, new vessels) into `mask`.
    fn tortuous(
        &self,
        mask: &mut Mask,
        start: (f32, f32),
        steps: usize,
        step: f32,
        r: f32,
        rng: &mut impl Rng,
    ) {
        let (mut pos, mut angle) = (start, uniform(rng, 0.0, TAU));
        let width = self.px_len(r, 0.6);
        for _ in 0..steps {
            angle += 0.7 * normal(rng);
            let next = (pos.0 + step * angle.cos(), pos.1 + step * angle.sin());
            mask.capsule(
                self.frame.px(pos.0, pos.1),
                self.frame.px(next.0, next.1),
                width,
                width,
            );
            pos = next;
        }
    }

    /// Intraretinal microvascular abnormalities: short, tortuous, thin vessel segments.
    fn irma(&mut self, n: usize, rng: &mut impl Rng) {
        let mut mask = Mask::new(self.canvas.size);
        for _ in 0..n {
            let at = self.spot(None, rng);
            self.tortuous(&mut mask, at, count(rng, 12, 24), 0.008, 0.0028, rng);
        }
        self.canvas
            .composite(&mask, NEW_VESSEL, 0.7 * self.contrast);
    }

    /// Neovascular tufts: fans of fine looping vessels at the disc or on a major vein.
    fn neovascular_tufts(&mut self, n: usize, rng: &mut impl Rng) {
        let veins: Vec<(f32, f32)> = self
            .anatomy
            .vessels
            .iter()
            .filter(|v| v.kind == Kind::Vein && v.depth <= 1)
            .flat_map(|v| v.pts.iter().copied().skip(15))
            .filter(|p| (p.0 * p.0 + p.1 * p.1).sqrt() < 0.85)
            .collect();
        let mut mask = Mask::new(self.canvas.size);
        for k in 0..n {
            let centre = if k == 0 || veins.is_empty() {
                let (dx, dy) = self.anatomy.disc;
                (dx + 0.05 * normal(rng), dy + 0.05 * normal(rng))
            } else {
                veins[rng.random_range(0..veins.len())]
            };
            let width = self.px_len(0.0022, 0.55);
            for _ in 0..count(rng, 8, 16) {
                let rho = uniform(rng, 0.02, 0.06);
                let dir = uniform(rng, 0.0, TAU);
                let c = (centre.0 + rho * dir.cos(), centre.1 + rho * dir.sin());
                let wobble = uniform(rng, 0.1, 0.3);
                let phase = uniform(rng, 0.0, TAU);
                let pts: Vec<(f32, f32)> = (0..=24)
                    .map(|i| {
                        let t = dir + PI + TAU * i as f32 / 24.0;
                        let rr = rho * (1.0 + wobble * (3.0 * t + phase).sin());
                        self.frame.px(c.0 + rr * t.cos(), c.1 + rr * t.sin())
                    })
                    .collect();
                for w in pts.windows(2) {
                    mask.capsule(w[0], w[1], width, width);
                }
            }
            // Fibrous tissue veiling older tufts.
            if rng.random::<f32>() < 0.4 {
                let r = self.frame.len(0.08);
                self.ellipse(
                    centre,
                    (r, r * 0.7, uniform(rng, 0.0, PI)),
                    [0.92, 0.82, 0.72],
                    0.3,
                    Edge::Soft(0.8),
                );
            }
        }
        self.canvas
            .composite(&mask, NEW_VESSEL, 0.85 * self.contrast);
    }

    /// A boat-shaped preretinal haemorrhage: a disc with a flat (fluid-level) upper edge.
    fn preretinal_haemorrhage(&mut self, rng: &mut impl Rng) {
        let at = self.spot(None, rng);
        let (cx, cy) = self.frame.px(at.0, at.1);
        let r = self.frame.len(uniform(rng, 0.07, 0.12));
        let level = cy - r * uniform(rng, 0.0, 0.4);
        let circle = Ellipse::circle(cx, cy, r);
        let mut mask = Mask::new(self.canvas.size);
        // Rasterise the circle into the mask, then cut at the fluid level.
        let mut tmp = Canvas::new(self.canvas.size, [0.0; 3]);
        tmp.blend_ellipse(&circle, [1.0; 3], 1.0, Edge::Sharp);
        let n = self.canvas.size as usize;
        for (i, p) in tmp.px.iter().enumerate() {
            let y = (i / n) as f32 + 0.5;
            let below = (y - level + 0.5).clamp(0.0, 1.0);
            mask.set(i, p[0] * below);
        }
        self.canvas
            .composite(&mask, [0.36, 0.03, 0.02], 0.92 * self.contrast);
    }
}

#[cfg(test)]
mod tests {
    use super::super::cohort::Eye;
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Pixels that differ visibly from the grade-0 rendering of the same eye, and the total
    /// absolute colour change.
    fn lesion_change(grade: u8, contrast: f32, seed: u64) -> (usize, f32) {
        let anatomy = Anatomy::sample(&mut ChaCha8Rng::seed_from_u64(seed));
        let frame = Frame::new(256, 0.46, Eye::Right);
        let base = anatomy.paint_background(&frame, 256);
        let mut c = base.clone();
        paint(
            &mut c,
            &frame,
            &anatomy,
            grade,
            contrast,
            &mut ChaCha8Rng::seed_from_u64(seed + 100),
        );
        let diffs: Vec<f32> = base
            .px
            .iter()
            .zip(&c.px)
            .map(|(a, b)| (0..3).map(|k| (a[k] - b[k]).abs()).sum())
            .collect();
        (
            diffs.iter().filter(|&&d| d > 0.08).count(),
            diffs.iter().sum(),
        )
    }

    fn lesion_pixels(grade: u8, contrast: f32, seed: u64) -> usize {
        lesion_change(grade, contrast, seed).0
    }

    #[test]
    fn lesion_area_grows_with_grade() {
        for seed in 0..4 {
            let px: Vec<usize> = (0..=4).map(|g| lesion_pixels(g, 1.0, seed)).collect();
            assert_eq!(px[0], 0);
            assert!(px[1] > 10, "grade 1 draws microaneurysms: {px:?}");
            assert!(px.windows(2).all(|w| w[1] > w[0]), "seed {seed}: {px:?}");
            assert!(px[3] > 4 * px[1], "seed {seed}: {px:?}");
        }
    }

    #[test]
    fn lower_lesion_contrast_makes_fewer_visible_lesion_pixels() {
        let (full_px, full) = lesion_change(3, 1.0, 5);
        let (faint_px, faint) = lesion_change(3, 0.25, 5);
        assert!(
            faint < 0.3 * full,
            "contrast 0.25 kept {faint} of {full} colour change"
        );
        assert!(
            faint_px < full_px,
            "{faint_px} vs {full_px} visible lesion px"
        );
        assert_eq!(lesion_change(3, 0.0, 5), (0, 0.0));
    }

    #[test]
    fn severe_haemorrhages_reach_all_four_quadrants() {
        let anatomy = Anatomy::sample(&mut ChaCha8Rng::seed_from_u64(1));
        let frame = Frame::new(256, 0.46, Eye::Right);
        let base = anatomy.paint_background(&frame, 256);
        let mut c = base.clone();
        paint(
            &mut c,
            &frame,
            &anatomy,
            3,
            1.0,
            &mut ChaCha8Rng::seed_from_u64(2),
        );
        let mut quadrants = [0usize; 4];
        for (i, (a, b)) in base.px.iter().zip(&c.px).enumerate() {
            // Darkened red pixels are haemorrhages (exudates and spots brighten).
            if a[1] - b[1] > 0.1 && b[0] < a[0] {
                let (u, v) = frame.eye((i % 256) as f32 + 0.5, (i / 256) as f32 + 0.5);
                quadrants[(u < 0.0) as usize * 2 + (v < 0.0) as usize] += 1;
            }
        }
        assert!(quadrants.iter().all(|&q| q > 30), "{quadrants:?}");
    }
}
