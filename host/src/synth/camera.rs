//! Fundus cameras: per-device colour cast, vignetting, sharpness and field of view, per-shot
//! exposure and sensor noise, and the defects that make a photograph ungradable.
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::canvas::Canvas;
use super::noise::{normal, uniform};

/// One fundus camera model: how every photograph it takes is coloured and degraded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraProfile {
    /// Name written to the CSV `camera` column, e.g. `cam_a`.
    pub name: String,
    /// Per-channel gain applied to the whole photograph (the colour cast).
    pub cast: [f32; 3],
    /// Extra darkening towards the rim of the field of view (0 = none).
    pub vignetting: f32,
    /// Optical blur as a Gaussian sigma in pixels of a 512-px image (scaled with size).
    pub blur_sigma_512: f32,
    /// Field-of-view radius as a fraction of the image side; above 0.5 the circle is
    /// clipped at the top and bottom, as on many wide-field cameras.
    pub fov_radius: f32,
    /// Mean exposure gain of this camera.
    pub gain: f32,
    /// Multiplier on lesion opacity: 1.0 draws lesions as they are, below 1.0 a biased
    /// camera renders them with less contrast (a hook for shortcut-learning experiments).
    pub lesion_contrast: f32,
}

/// Why a photograph is ungradable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Defect {
    /// Flash failed or pupil too small: almost black.
    UnderExposed,
    /// Flare and haze wash the retina out to near white.
    OverExposed,
    /// Camera far out of focus: no vessel or lesion detail survives.
    Defocused,
    /// Lens cap on, or the lid closed: no field of view at all.
    NoFov,
}

impl Defect {
    /// All defects, in the order they are assigned round-robin.
    pub const ALL: [Defect; 4] = [
        Defect::UnderExposed,
        Defect::OverExposed,
        Defect::Defocused,
        Defect::NoFov,
    ];
}

/// The three cameras of the default data set, one per site by default.
pub fn default_cameras() -> Vec<CameraProfile> {
    vec![
        CameraProfile {
            name: "cam_a".into(),
            cast: [1.0, 0.97, 0.93],
            vignetting: 0.15,
            blur_sigma_512: 0.35,
            fov_radius: 0.46,
            gain: 1.0,
            lesion_contrast: 1.0,
        },
        CameraProfile {
            name: "cam_b".into(),
            cast: [0.9, 1.04, 1.12],
            vignetting: 0.4,
            blur_sigma_512: 0.9,
            fov_radius: 0.47,
            gain: 0.9,
            lesion_contrast: 1.0,
        },
        CameraProfile {
            name: "cam_c".into(),
            cast: [1.07, 0.88, 0.8],
            vignetting: 0.25,
            blur_sigma_512: 0.6,
            fov_radius: 0.54,
            gain: 1.06,
            lesion_contrast: 1.0,
        },
    ]
}

/// Develops a rendered scene as `camera` would photograph it: optics (blur), colour cast,
/// vignetting, exposure and gamma, an optional defect, then sensor noise. `fov` maps a pixel
/// to its distance from the field-of-view centre in units of the FOV radius.
pub fn develop(
    canvas: &mut Canvas,
    camera: &CameraProfile,
    defect: Option<Defect>,
    fov: impl Fn(f32, f32) -> f32,
    rng: &mut impl Rng,
) {
    let scale = canvas.size as f32 / 512.0;
    let mut sigma = camera.blur_sigma_512 * scale;
    if defect == Some(Defect::Defocused) {
        sigma = uniform(rng, 0.025, 0.035) * canvas.size as f32;
    }
    canvas.blur(sigma);

    let gain = camera.gain * (1.0 + 0.08 * normal(rng)).clamp(0.75, 1.25);
    let gamma = (1.0 + 0.06 * normal(rng)).clamp(0.85, 1.15);
    let (haze, wash) = match defect {
        Some(Defect::OverExposed) => (uniform(rng, 0.65, 0.8), uniform(rng, 0.75, 0.88)),
        _ => (0.0, 0.0),
    };
    let dark = match defect {
        Some(Defect::UnderExposed) => uniform(rng, 0.08, 0.14),
        _ => 1.0,
    };
    // `v.powf(gamma)` through a table: one `powf` per entry instead of per channel.
    const STEPS: usize = 2048;
    let table: Vec<f32> = (0..=STEPS)
        .map(|i| (2.0 * i as f32 / STEPS as f32).powf(gamma))
        .collect();
    let curve = |v: f32| {
        let f = v.max(0.0) * (STEPS as f32 / 2.0);
        let i = f as usize;
        if i >= STEPS {
            return v.powf(gamma);
        }
        table[i] + (table[i + 1] - table[i]) * (f - i as f32)
    };
    let n = canvas.size as usize;
    for y in 0..n {
        for x in 0..n {
            let r = fov(x as f32 + 0.5, y as f32 + 0.5);
            let vign = 1.0 - camera.vignetting * r.min(1.0).powi(3);
            let p = &mut canvas.px[y * n + x];
            for ((c, cast), tint) in p.iter_mut().zip(camera.cast).zip([1.0, 0.9, 0.78]) {
                let v = curve(*c * cast * vign * gain * dark);
                // Washed out: contrast compressed towards a bright haze inside the pupil.
                let inside = 1.0 - super::canvas::smoothstep(0.9, 1.1, r);
                *c = v + ((haze + (1.0 - haze) * 0.3) * tint - v) * wash * inside;
            }
        }
    }
    if defect == Some(Defect::OverExposed) {
        canvas.blur(0.004 * canvas.size as f32);
    }
    if defect == Some(Defect::NoFov) {
        let glow = uniform(rng, 0.01, 0.03);
        for p in canvas.px.iter_mut() {
            *p = [glow, glow * 0.5, glow * 0.4];
        }
    }
    // Sensor noise, triangular with standard deviation 0.004 (cheaper than Box–Muller).
    let noise = 0.004 * 6.0f32.sqrt();
    for p in canvas.px.iter_mut() {
        for c in p.iter_mut() {
            *c += noise * (rng.random::<f32>() + rng.random::<f32>() - 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn flat(size: u32) -> Canvas {
        Canvas::new(size, [0.8, 0.4, 0.15])
    }

    fn mean(c: &Canvas) -> f32 {
        c.px.iter().map(|p| (p[0] + p[1] + p[2]) / 3.0).sum::<f32>() / c.px.len() as f32
    }

    fn centre_fov(size: u32) -> impl Fn(f32, f32) -> f32 {
        let h = size as f32 / 2.0;
        move |x: f32, y: f32| ((x - h).powi(2) + (y - h).powi(2)).sqrt() / (0.46 * size as f32)
    }

    #[test]
    fn cameras_have_distinct_names_casts_and_unit_lesion_contrast() {
        let cams = default_cameras();
        assert_eq!(
            cams.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["cam_a", "cam_b", "cam_c"]
        );
        assert!(cams.iter().all(|c| c.lesion_contrast == 1.0));
        assert_ne!(cams[0].cast, cams[1].cast);
        assert_ne!(cams[1].cast, cams[2].cast);
    }

    #[test]
    fn defects_move_brightness_the_way_their_names_say() {
        let cam = &default_cameras()[0];
        let shot = |d: Option<Defect>| {
            let mut c = flat(64);
            develop(
                &mut c,
                cam,
                d,
                centre_fov(64),
                &mut ChaCha8Rng::seed_from_u64(1),
            );
            mean(&c)
        };
        let normal = shot(None);
        assert!(
            (normal - 0.45).abs() < 0.12,
            "normal exposure mean {normal}"
        );
        assert!(shot(Some(Defect::UnderExposed)) < 0.2 * normal);
        assert!(shot(Some(Defect::OverExposed)) > 1.3 * normal);
        assert!(shot(Some(Defect::NoFov)) < 0.05);
    }

    #[test]
    fn vignetting_darkens_the_rim_more_than_the_centre() {
        let mut cam = default_cameras()[1].clone();
        cam.blur_sigma_512 = 0.0;
        let mut c = flat(128);
        develop(
            &mut c,
            &cam,
            None,
            centre_fov(128),
            &mut ChaCha8Rng::seed_from_u64(2),
        );
        let centre = c.px[64 * 128 + 64][0];
        let rim = c.px[64 * 128 + 64 + 56][0];
        assert!(rim < 0.8 * centre, "rim {rim} centre {centre}");
    }
}
