//! Fundus anatomy: the field of view, the orange-red retina with its illumination falloff
//! and choroidal texture, the macula with its foveal reflex, and the optic disc with its cup.
//!
//! Anatomy is laid out in *eye coordinates*: the FOV centre is the origin, the FOV radius is
//! 1, `+u` points nasally and `+v` down. [`Frame`] maps eye coordinates to pixels and
//! mirrors the left eye, so one description serves both eyes.
use rand::Rng;

use super::canvas::{Canvas, Edge, Ellipse, Rgb, mix, smoothstep};
use super::cohort::Eye;
use super::noise::{ValueNoise, normal, uniform};
use super::vessels::{self, Vessel};

/// Placement of the field of view in the image, and the eye's handedness.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// FOV centre x in pixels.
    pub cx: f32,
    /// FOV centre y in pixels.
    pub cy: f32,
    /// FOV radius in pixels.
    pub r: f32,
    /// `+1` for a right eye (nasal = image right), `-1` for a left eye.
    pub side: f32,
}

impl Frame {
    /// The frame of a `size`-pixel image whose FOV radius is `fov_radius × size`.
    pub fn new(size: u32, fov_radius: f32, eye: Eye) -> Self {
        let h = size as f32 / 2.0;
        let side = if eye == Eye::Right { 1.0 } else { -1.0 };
        Self {
            cx: h,
            cy: h,
            r: fov_radius * size as f32,
            side,
        }
    }

    /// Pixel position of eye coordinates `(u, v)`.
    pub fn px(&self, u: f32, v: f32) -> (f32, f32) {
        (self.cx + self.side * u * self.r, self.cy + v * self.r)
    }

    /// Eye coordinates of pixel position `(x, y)`.
    pub fn eye(&self, x: f32, y: f32) -> (f32, f32) {
        (self.side * (x - self.cx) / self.r, (y - self.cy) / self.r)
    }

    /// A length in eye units as pixels.
    pub fn len(&self, l: f32) -> f32 {
        l * self.r
    }

    /// Distance of pixel `(x, y)` from the FOV centre in FOV radii.
    pub fn radius_at(&self, x: f32, y: f32) -> f32 {
        ((x - self.cx).powi(2) + (y - self.cy).powi(2)).sqrt() / self.r
    }
}

/// One eye's anatomy, drawn from its anatomy seed.
#[derive(Clone, Debug)]
pub struct Anatomy {
    /// Optic disc centre (eye coordinates).
    pub disc: (f32, f32),
    /// Disc semi-axes (horizontal, vertical).
    pub disc_r: (f32, f32),
    /// Cup-to-disc ratio.
    pub cup: f32,
    /// Fovea centre (eye coordinates).
    pub fovea: (f32, f32),
    /// Retina colour at the posterior pole, before illumination falloff.
    pub retina: Rgb,
    /// Strength of the tessellated (tigroid) choroidal pattern, 0–1.
    pub tessellation: f32,
    /// Arteries and veins grown from the disc.
    pub vessels: Vec<Vessel>,
    texture: ValueNoise,
    choroid: ValueNoise,
}

impl Anatomy {
    /// Draws an eye: disc and fovea positions, pigmentation, texture and vessel tree.
    pub fn sample(rng: &mut impl Rng) -> Self {
        let disc = (0.55 + 0.03 * normal(rng), -0.03 + 0.03 * normal(rng));
        let rd = uniform(rng, 0.13, 0.16);
        let fovea = (-0.13 + 0.03 * normal(rng), 0.03 + 0.02 * normal(rng));
        // Pigmentation: from light orange to deep red-brown fundi.
        let pigment = rng.random::<f32>();
        let retina = mix([0.96, 0.52, 0.24], [0.70, 0.27, 0.11], pigment);
        let tessellation = uniform(rng, 0.0, 1.0).powi(2);
        let texture = ValueNoise::new(rng, 6, 4);
        let choroid = ValueNoise::new(rng, 10, 2);
        let vessels = vessels::grow(disc, rd, fovea, rng);
        Self {
            disc,
            disc_r: (rd * 0.92, rd * 1.06),
            cup: uniform(rng, 0.3, 0.55),
            fovea,
            retina,
            tessellation,
            vessels,
            texture,
            choroid,
        }
    }

    /// Paints retina, macula and disc (everything but vessels and lesions) on a new canvas.
    pub fn paint_background(&self, frame: &Frame, size: u32) -> Canvas {
        let mut canvas = Canvas::new(size, [0.0; 3]);
        let n = size as usize;
        let (dx0, dy0) = self.disc;
        let (fx, fy) = self.fovea;
        for y in 0..n {
            for x in 0..n {
                let (u, v) = frame.eye(x as f32 + 0.5, y as f32 + 0.5);
                let r = (u * u + v * v).sqrt();
                if r > 1.0 + 2.0 / frame.r {
                    continue; // outside the field of view: stays black
                }
                let (tu, tv) = ((u + 1.1) / 2.2, (v + 1.1) / 2.2);
                // Radial illumination falloff from the centre of the field of view.
                let illum = 1.0 - 0.5 * r.min(1.2).powf(2.4);
                let tex = 0.06 * self.texture.at(tu, tv);
                // Tigroid pattern: ridges of the choroid noise, stronger in the periphery.
                let ridge = 1.0 - 2.0 * self.choroid.at(tu, tv).abs();
                let tess = self.tessellation * 0.16 * (0.3 + r).min(1.0) * (ridge - 0.3);
                let mut p = [0.0; 3];
                for c in 0..3 {
                    p[c] = self.retina[c] * illum * (1.0 + tex) * (1.0 + tess * [0.6, 1.0, 1.2][c]);
                }
                // Macula: broad darker, browner region, deeper at the fovea.
                let dm2 = (u - fx).powi(2) + (v - fy).powi(2);
                let g = (-dm2 / (2.0 * 0.14 * 0.14)).exp();
                let gf = (-dm2 / (2.0 * 0.04 * 0.04)).exp();
                let dark = [
                    0.32 * g + 0.12 * gf,
                    0.45 * g + 0.2 * gf,
                    0.45 * g + 0.2 * gf,
                ];
                for c in 0..3 {
                    p[c] *= 1.0 - dark[c];
                }
                // Peripapillary glow, then the disc: pale rim with a brighter, whiter cup.
                let ddx = (u - dx0) / self.disc_r.0;
                let ddy = (v - dy0) / self.disc_r.1;
                let dd = (ddx * ddx + ddy * ddy).sqrt();
                let halo = (-(dd - 1.0).max(0.0).powi(2) / 0.5).exp() * 0.08;
                p = mix(p, [1.0, 0.72, 0.45], halo);
                let disc_cov = 1.0 - smoothstep(0.92, 1.03, dd);
                if disc_cov > 0.0 {
                    let rim = mix(
                        [0.97, 0.76, 0.48],
                        [0.92, 0.58, 0.36],
                        smoothstep(0.3, 1.0, dd),
                    );
                    let cdx = (u - dx0 + 0.15 * self.disc_r.0) / (self.cup * self.disc_r.0);
                    let cdy = (v - dy0) / (self.cup * self.disc_r.1);
                    let cup = 1.0 - smoothstep(0.6, 1.15, (cdx * cdx + cdy * cdy).sqrt());
                    let disc = mix(rim, [1.0, 0.93, 0.74], cup);
                    p = mix(p, disc, disc_cov);
                }
                canvas.px[y * n + x] = p;
            }
        }
        canvas
    }

    /// Paints the small bright foveal reflex (after lesions, so nothing covers it).
    pub fn paint_foveal_reflex(&self, canvas: &mut Canvas, frame: &Frame) {
        let (x, y) = frame.px(self.fovea.0, self.fovea.1);
        let r = frame.len(0.012).max(0.9);
        canvas.blend_ellipse(
            &Ellipse::circle(x, y, r),
            [1.0, 0.86, 0.62],
            0.55,
            Edge::Soft(0.8),
        );
    }

    /// Blackens everything outside the field of view with a one-pixel soft edge.
    pub fn apply_fov(canvas: &mut Canvas, frame: &Frame) {
        let n = canvas.size as usize;
        for y in 0..n {
            for x in 0..n {
                let d = frame.radius_at(x as f32 + 0.5, y as f32 + 0.5) * frame.r;
                let cov = (frame.r - d + 0.5).clamp(0.0, 1.0);
                let p = &mut canvas.px[y * n + x];
                for c in p.iter_mut() {
                    *c = *c * cov + 0.012 * (1.0 - cov);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn frame_round_trips_and_mirrors_the_left_eye() {
        let right = Frame::new(200, 0.45, Eye::Right);
        let left = Frame::new(200, 0.45, Eye::Left);
        let (x, y) = right.px(0.5, -0.2);
        assert!((x - 145.0).abs() < 1e-4 && (y - 82.0).abs() < 1e-4);
        let (u, v) = right.eye(x, y);
        assert!((u - 0.5).abs() < 1e-6 && (v + 0.2).abs() < 1e-6);
        assert!((left.px(0.5, -0.2).0 - 55.0).abs() < 1e-4);
        assert!((right.radius_at(190.0, 100.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn disc_is_nasal_and_brighter_than_the_darker_macula() {
        let anatomy = Anatomy::sample(&mut ChaCha8Rng::seed_from_u64(4));
        assert!(anatomy.disc.0 > 0.4 && anatomy.fovea.0 < 0.0);
        for eye in [Eye::Right, Eye::Left] {
            let frame = Frame::new(256, 0.46, eye);
            let mut c = anatomy.paint_background(&frame, 256);
            Anatomy::apply_fov(&mut c, &frame);
            let at = |(x, y): (f32, f32)| c.px[y as usize * 256 + x as usize];
            let disc = at(frame.px(anatomy.disc.0, anatomy.disc.1));
            let fovea = at(frame.px(anatomy.fovea.0, anatomy.fovea.1));
            let lum = |p: Rgb| p[0] + p[1] + p[2];
            assert!(
                lum(disc) > 1.5 * lum(fovea),
                "disc {disc:?} fovea {fovea:?}"
            );
            assert!(disc[1] > 0.6, "disc is pale yellow: {disc:?}");
            assert!(
                fovea[0] > fovea[1] && fovea[1] > fovea[2],
                "retina is orange-red: {fovea:?}"
            );
            assert!(lum(c.px[0]) < 0.05, "corner outside the FOV is black");
            if eye == Eye::Right {
                assert!(frame.px(anatomy.disc.0, 0.0).0 > 128.0);
            } else {
                assert!(frame.px(anatomy.disc.0, 0.0).0 < 128.0);
            }
        }
    }
}
