//! The retinal vessel tree: arteries and veins grown from the optic disc by a steered random
//! walk that branches with decreasing calibre, and drawn as anti-aliased tapered capsules.
//!
//! Four arcades leave the disc: the two temporal ones curve around the macula (steered
//! along circles about the fovea), the two nasal ones run radially; a few small
//! papillomacular vessels head for the fovea. Branches stop at the foveal avascular zone,
//! at the rim of the field of view, or when thinner than [`R_MIN`]. Veins are wider and
//! darker than arteries; arteries carry a pale central reflex.
use std::collections::VecDeque;
use std::f32::consts::{FRAC_PI_2, FRAC_PI_4, PI, TAU};

use rand::Rng;

use super::anatomy::Frame;
use super::canvas::{Canvas, Mask};
use super::noise::{normal, uniform};

/// Step length of the random walk (eye units: FOV radius = 1).
const STEP: f32 = 0.012;
/// Vessels thinner than this radius end.
pub const R_MIN: f32 = 0.0022;
/// Radius of the main vein trunks at the disc.
const VEIN_R: f32 = 0.015;
/// Most vessels one tree may hold.
const MAX_VESSELS: usize = 420;

/// Artery or vein.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Thinner, brighter red, with a central light reflex.
    Artery,
    /// Wider and darker; beaded in severe DR.
    Vein,
}

/// One unbranched vessel: a polyline with a radius per point (eye units).
#[derive(Clone, Debug)]
pub struct Vessel {
    /// Artery or vein.
    pub kind: Kind,
    /// Points along the centre line.
    pub pts: Vec<(f32, f32)>,
    /// Radius at each point.
    pub radii: Vec<f32>,
    /// 0 for the trunks from the disc, +1 per branching.
    pub depth: u8,
}

#[derive(Clone, Copy, Debug)]
enum Steer {
    /// Follow a circle of radius `target` about the fovea, superior (`-1`) or inferior (`+1`).
    Arcade { side: f32, target: f32 },
    /// Head away from the disc.
    Radial,
}

#[derive(Clone, Copy, Debug)]
struct Sprout {
    kind: Kind,
    pos: (f32, f32),
    angle: f32,
    r: f32,
    depth: u8,
    steer: Steer,
}

fn wrap(a: f32) -> f32 {
    (a + PI).rem_euclid(TAU) - PI
}

/// Grows the vessel tree of an eye whose disc (radius `rd`) and fovea are given.
pub fn grow(disc: (f32, f32), rd: f32, fovea: (f32, f32), rng: &mut impl Rng) -> Vec<Vessel> {
    let mut queue = VecDeque::new();
    let trunks: [(f32, f32, Steer); 6] = [
        (
            -FRAC_PI_2 - 0.2,
            1.0,
            Steer::Arcade {
                side: -1.0,
                target: uniform(rng, 0.42, 0.55),
            },
        ),
        (
            FRAC_PI_2 + 0.2,
            1.0,
            Steer::Arcade {
                side: 1.0,
                target: uniform(rng, 0.42, 0.55),
            },
        ),
        (-FRAC_PI_4, 0.8, Steer::Radial),
        (FRAC_PI_4, 0.8, Steer::Radial),
        (PI - 0.25, 0.35, Steer::Radial),
        (PI + 0.25, 0.35, Steer::Radial),
    ];
    for (angle, scale, steer) in trunks {
        for (kind, offset, r) in [
            (Kind::Vein, 0.12, VEIN_R),
            (Kind::Artery, -0.12, VEIN_R * 0.72),
        ] {
            let a = angle + offset * angle.cos().signum() + 0.12 * normal(rng);
            let start = (disc.0 + 0.15 * rd * a.cos(), disc.1 + 0.15 * rd * a.sin());
            let r = r * scale * uniform(rng, 0.9, 1.1);
            queue.push_back(Sprout {
                kind,
                pos: start,
                angle: a,
                r,
                depth: 0,
                steer,
            });
        }
    }
    let mut tree = Vec::new();
    while let Some(sprout) = queue.pop_front() {
        if tree.len() >= MAX_VESSELS {
            break;
        }
        tree.push(trace(sprout, disc, fovea, rng, &mut queue));
    }
    tree
}

/// Walks one vessel until it ends, queueing its branches.
fn trace(
    s: Sprout,
    disc: (f32, f32),
    fovea: (f32, f32),
    rng: &mut impl Rng,
    queue: &mut VecDeque<Sprout>,
) -> Vessel {
    let (mut pos, mut angle, mut r) = (s.pos, s.angle, s.r);
    let mut curv = 0.0f32;
    let mut pts = vec![pos];
    let mut radii = vec![r];
    let taper = if s.depth == 0 { 0.996 } else { 0.989 };
    for step in 0..260 {
        let desired = match s.steer {
            Steer::Arcade { side, target } => {
                let w = (pos.0 - fovea.0, pos.1 - fovea.1);
                let rho = (w.0 * w.0 + w.1 * w.1).sqrt().max(1e-3);
                let t = if side < 0.0 {
                    (w.1 / rho, -w.0 / rho)
                } else {
                    (-w.1 / rho, w.0 / rho)
                };
                let pull = 2.5 * (target + 0.0015 * step as f32 - rho);
                (t.1 + pull * w.1 / rho).atan2(t.0 + pull * w.0 / rho)
            }
            Steer::Radial => (pos.1 - disc.1).atan2(pos.0 - disc.0),
        };
        let gain = if matches!(s.steer, Steer::Arcade { .. }) {
            0.18
        } else {
            0.05
        };
        curv = 0.85 * curv + 0.02 * normal(rng);
        angle += gain * wrap(desired - angle) + curv;
        pos = (pos.0 + STEP * angle.cos(), pos.1 + STEP * angle.sin());
        r *= taper;
        pts.push(pos);
        radii.push(r);
        let from_centre = (pos.0 * pos.0 + pos.1 * pos.1).sqrt();
        let from_fovea = ((pos.0 - fovea.0).powi(2) + (pos.1 - fovea.1).powi(2)).sqrt();
        if r < R_MIN || from_centre > 1.02 || from_fovea < 0.08 {
            break;
        }
        let child_r = r * uniform(rng, 0.5, 0.75);
        if step > 3 && child_r > R_MIN * 1.3 && rng.random::<f32>() < 0.055 {
            let turn = uniform(rng, 0.5, 1.1) * if rng.random::<bool>() { 1.0 } else { -1.0 };
            queue.push_back(Sprout {
                kind: s.kind,
                pos,
                angle: angle + turn,
                r: child_r,
                depth: s.depth + 1,
                steer: Steer::Radial,
            });
            r *= 0.93;
        }
    }
    Vessel {
        kind: s.kind,
        pts,
        radii,
        depth: s.depth,
    }
}

/// Draws the tree. `beading` (0 = none, ~0.4 in severe DR) modulates the calibre of the
/// larger veins sinusoidally along their length (venous beading).
pub fn draw(canvas: &mut Canvas, frame: &Frame, tree: &[Vessel], beading: f32) {
    let mut veins = Mask::new(canvas.size);
    let mut arteries = Mask::new(canvas.size);
    let mut reflex = Mask::new(canvas.size);
    let wavelength = 0.05;
    for (k, v) in tree.iter().enumerate() {
        let beaded = v.kind == Kind::Vein && beading > 0.0 && v.radii[0] > 0.0045;
        let sub = if beaded { 4 } else { 1 };
        let phase = k as f32 * 1.7;
        let mut s = 0.0f32;
        for i in 1..v.pts.len() {
            let (a, b) = (v.pts[i - 1], v.pts[i]);
            let (ra, rb) = (v.radii[i - 1], v.radii[i]);
            for j in 0..sub {
                let (t0, t1) = (j as f32 / sub as f32, (j + 1) as f32 / sub as f32);
                let p0 = (a.0 + (b.0 - a.0) * t0, a.1 + (b.1 - a.1) * t0);
                let p1 = (a.0 + (b.0 - a.0) * t1, a.1 + (b.1 - a.1) * t1);
                let bead = |s: f32| {
                    if beaded && s > 0.12 {
                        1.0 + beading * (TAU * s / wavelength + phase).sin()
                    } else {
                        1.0
                    }
                };
                let s1 = s + STEP / sub as f32;
                let r0 = frame.len(ra + (rb - ra) * t0) * bead(s);
                let r1 = frame.len(ra + (rb - ra) * t1) * bead(s1);
                let (q0, q1) = (frame.px(p0.0, p0.1), frame.px(p1.0, p1.1));
                match v.kind {
                    Kind::Vein => veins.capsule(q0, q1, r0, r1),
                    Kind::Artery => {
                        arteries.capsule(q0, q1, r0, r1);
                        if r0 > 1.4 {
                            reflex.capsule(q0, q1, 0.28 * r0, 0.28 * r1);
                        }
                    }
                }
                s = s1;
            }
        }
    }
    canvas.composite(&veins, [0.40, 0.07, 0.05], 0.82);
    canvas.composite(&arteries, [0.70, 0.17, 0.08], 0.62);
    canvas.composite(&reflex, [0.95, 0.6, 0.4], 0.35);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn tree(seed: u64) -> Vec<Vessel> {
        grow(
            (0.55, -0.03),
            0.12,
            (-0.13, 0.03),
            &mut ChaCha8Rng::seed_from_u64(seed),
        )
    }

    #[test]
    fn tree_branches_with_decreasing_calibre_and_veins_wider_than_arteries() {
        let t = tree(1);
        assert!(t.len() > 40, "only {} vessels", t.len());
        assert!(t.iter().any(|v| v.depth >= 2));
        let max_r = |d: u8| {
            t.iter()
                .filter(|v| v.depth == d)
                .map(|v| v.radii[0])
                .fold(0.0f32, f32::max)
        };
        assert!(max_r(0) > max_r(1) && max_r(1) > max_r(2));
        let trunk = |k: Kind| {
            t.iter()
                .filter(|v| v.depth == 0 && v.kind == k)
                .map(|v| v.radii[0])
                .sum::<f32>()
        };
        assert!(trunk(Kind::Vein) > 1.2 * trunk(Kind::Artery));
        for v in &t {
            assert!(
                v.radii.windows(2).all(|w| w[1] <= w[0] + 1e-6),
                "vessel widens along its length"
            );
        }
    }

    #[test]
    fn temporal_arcades_pass_above_and_below_the_fovea_and_spare_it() {
        let t = tree(2);
        let fovea = (-0.13f32, 0.03f32);
        // The superior arcade reaches temporal of the fovea while staying above it.
        let sup = &t[0];
        let temporal = sup
            .pts
            .iter()
            .find(|p| p.0 < fovea.0)
            .expect("arcade reaches temporal retina");
        assert!(
            temporal.1 < fovea.1 - 0.25,
            "superior arcade at {temporal:?}"
        );
        let inf = &t[2];
        let temporal = inf
            .pts
            .iter()
            .find(|p| p.0 < fovea.0)
            .expect("arcade reaches temporal retina");
        assert!(
            temporal.1 > fovea.1 + 0.25,
            "inferior arcade at {temporal:?}"
        );
        for v in &t {
            for p in &v.pts {
                let d = ((p.0 - fovea.0).powi(2) + (p.1 - fovea.1).powi(2)).sqrt();
                assert!(
                    d > 0.08 - STEP,
                    "vessel enters the foveal avascular zone at {p:?}"
                );
                assert!((p.0 * p.0 + p.1 * p.1).sqrt() < 1.05);
            }
        }
    }

    #[test]
    fn beading_changes_vein_calibre_along_the_vessel() {
        let t = tree(3);
        let frame = Frame::new(256, 0.46, super::super::cohort::Eye::Right);
        let mut plain = Canvas::new(256, [1.0; 3]);
        draw(&mut plain, &frame, &t, 0.0);
        let mut beaded = Canvas::new(256, [1.0; 3]);
        draw(&mut beaded, &frame, &t, 0.45);
        let dark = |c: &Canvas| c.px.iter().filter(|p| p[0] < 0.8).count();
        assert!(dark(&plain) > 2000, "tree covers {} px", dark(&plain));
        let changed = plain
            .px
            .iter()
            .zip(&beaded.px)
            .filter(|(a, b)| (a[0] - b[0]).abs() > 0.1)
            .count();
        assert!(changed > 200, "beading changed only {changed} px");
    }
}
