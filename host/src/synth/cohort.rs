//! The synthetic cohort: patients with two eyes each, their DR grades, demographics,
//! camera, site and which photographs are deliberately ungradable.
//!
//! Grade prevalence follows APTOS 2019 (49 % no DR, 10 % mild, 27 % moderate, 5 % severe,
//! 8 % proliferative). The first five photographs are forced through grades 0–4 so every
//! grade is present in any set of five or more; fellow eyes have correlated grades.
use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::SynthConfig;
use super::camera::{CameraProfile, Defect};

/// APTOS 2019 training-set prevalence of grades 0–4.
pub const GRADE_PREVALENCE: [f32; 5] = [0.49, 0.10, 0.27, 0.05, 0.08];

/// Age bands and how common each is among screened diabetics.
const AGE_BANDS: [(&str, f32); 6] = [
    ("30-39", 0.05),
    ("40-49", 0.15),
    ("50-59", 0.28),
    ("60-69", 0.28),
    ("70-79", 0.18),
    ("80-89", 0.06),
];

/// Sites of the default data set; site `k` mostly uses camera `k` (a realistic confounder).
const SITES: usize = 3;

/// Which eye a photograph shows; the left eye is the mirror image of a right eye.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eye {
    /// Oculus dexter: optic disc on the right of the image.
    Right,
    /// Oculus sinister: optic disc on the left of the image.
    Left,
}

/// Everything needed to draw and label one photograph.
#[derive(Clone, Debug)]
pub struct EyeSpec {
    /// Position in the data set (0-based); also selects the per-image random stream.
    pub index: usize,
    /// APTOS-style 12-hex-digit image id.
    pub id_code: String,
    /// Patient id, `P0001` …; two consecutive photographs per patient.
    pub patient_id: String,
    /// Which eye.
    pub eye: Eye,
    /// DR grade 0–4 of the international clinical scale.
    pub grade: u8,
    /// `F` or `M`.
    pub sex: char,
    /// Age band such as `60-69`.
    pub age_band: &'static str,
    /// Site name, `site_1` ….
    pub site: String,
    /// The camera that took the photograph.
    pub camera: CameraProfile,
    /// Why the photograph is ungradable, if it is.
    pub defect: Option<Defect>,
    /// Seed of the eye's anatomy (disc, macula, vessel tree, pigmentation).
    pub anatomy_seed: u64,
}

fn weighted(rng: &mut impl Rng, weights: impl IntoIterator<Item = f32>) -> usize {
    let weights: Vec<f32> = weights.into_iter().collect();
    let mut x = rng.random::<f32>() * weights.iter().sum::<f32>();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// The fellow eye's grade: equal 60 %, one step away 35 %, two steps 5 % (clamped to 0–4).
fn fellow_grade(rng: &mut impl Rng, grade: u8) -> u8 {
    let step = match weighted(rng, [0.6, 0.35, 0.05]) {
        0 => 0,
        k => k as i8 * if rng.random::<bool>() { 1 } else { -1 },
    };
    (grade as i8 + step).clamp(0, 4) as u8
}

/// Plans the whole data set from `cfg`: labels, demographics, cameras and defects.
pub fn plan(cfg: &SynthConfig) -> Vec<EyeSpec> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut ids = HashSet::new();
    let mut specs = Vec::with_capacity(cfg.n);
    let mut patient = 0;
    while specs.len() < cfg.n {
        patient += 1;
        let sex = if rng.random::<bool>() { 'F' } else { 'M' };
        let age_band = AGE_BANDS[weighted(&mut rng, AGE_BANDS.map(|a| a.1))].0;
        let site = rng.random_range(0..SITES);
        let camera = if rng.random::<f32>() < 0.8 {
            site
        } else {
            rng.random_range(0..cfg.cameras.len())
        };
        let camera = &cfg.cameras[camera % cfg.cameras.len()];
        let first = weighted(&mut rng, GRADE_PREVALENCE) as u8;
        let second = fellow_grade(&mut rng, first);
        for (eye, mut grade) in [(Eye::Right, first), (Eye::Left, second)] {
            let index = specs.len();
            if index >= cfg.n {
                break;
            }
            if index < 5 {
                grade = index as u8;
            }
            let id_code = loop {
                let id = format!("{:012x}", rng.random::<u64>() >> 16);
                if ids.insert(id.clone()) {
                    break id;
                }
            };
            specs.push(EyeSpec {
                index,
                id_code,
                patient_id: format!("P{patient:04}"),
                eye,
                grade,
                sex,
                age_band,
                site: format!("site_{}", site + 1),
                camera: camera.clone(),
                defect: None,
                anatomy_seed: rng.random(),
            });
        }
    }
    // A few deliberately ungradable photographs, never among the five grade anchors.
    let bad = ((cfg.n as f32 * cfg.ungradable_rate).round() as usize).min(cfg.n.saturating_sub(5));
    let mut candidates: Vec<usize> = (5..cfg.n).collect();
    candidates.shuffle(&mut rng);
    for (k, &i) in candidates.iter().take(bad).enumerate() {
        specs[i].defect = Some(Defect::ALL[k % Defect::ALL.len()]);
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize, seed: u64) -> SynthConfig {
        SynthConfig::new(n, seed, 64).unwrap()
    }

    #[test]
    fn first_five_cover_all_grades_and_patients_have_two_eyes() {
        let specs = plan(&cfg(7, 1));
        assert_eq!(specs.len(), 7);
        assert_eq!(
            specs.iter().take(5).map(|s| s.grade).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(specs[0].patient_id, "P0001");
        assert_eq!(specs[1].patient_id, "P0001");
        assert_eq!(specs[2].patient_id, "P0002");
        assert_eq!(specs[6].patient_id, "P0004");
        assert_eq!((specs[0].eye, specs[1].eye), (Eye::Right, Eye::Left));
        // Both eyes of a patient share sex, age, site and camera.
        assert_eq!(
            (specs[2].sex, specs[2].age_band, &specs[2].site),
            (specs[3].sex, specs[3].age_band, &specs[3].site)
        );
        assert_eq!(specs[2].camera.name, specs[3].camera.name);
        assert!(
            specs
                .iter()
                .all(|s| s.id_code.len() == 12 && s.id_code.chars().all(|c| c.is_ascii_hexdigit()))
        );
    }

    #[test]
    fn prevalence_fellow_eye_correlation_and_ungradable_share_are_realistic() {
        let specs = plan(&cfg(4000, 7));
        let mut counts = [0usize; 5];
        for s in &specs {
            counts[s.grade as usize] += 1;
        }
        let share0 = counts[0] as f32 / 4000.0;
        assert!(
            (0.42..0.56).contains(&share0),
            "grade 0 share {share0} ({counts:?})"
        );
        assert!(counts[3] < counts[2] && counts[1] < counts[0], "{counts:?}");
        let same = specs.chunks(2).filter(|p| p[0].grade == p[1].grade).count() as f32 / 2000.0;
        assert!((0.5..0.75).contains(&same), "fellow eyes agree in {same}");
        let bad = specs.iter().filter(|s| s.defect.is_some()).count();
        assert_eq!(bad, 160);
        for d in Defect::ALL {
            assert_eq!(specs.iter().filter(|s| s.defect == Some(d)).count(), 40);
        }
        let ids: HashSet<_> = specs.iter().map(|s| &s.id_code).collect();
        assert_eq!(ids.len(), 4000);
        for cam in ["cam_a", "cam_b", "cam_c"] {
            assert!(
                specs.iter().filter(|s| s.camera.name == cam).count() > 800,
                "{cam} too rare"
            );
        }
    }

    #[test]
    fn plans_are_deterministic_per_seed() {
        let a = plan(&cfg(30, 5));
        let b = plan(&cfg(30, 5));
        let c = plan(&cfg(30, 6));
        let key = |s: &[EyeSpec]| {
            s.iter()
                .map(|e| (e.id_code.clone(), e.grade, e.anatomy_seed))
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
    }
}
