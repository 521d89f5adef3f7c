//! Synthetic fundus photographs labelled with DR grade: the embedded default data set.
//!
//! [`generate`] plans a cohort ([`cohort::plan`]: two eyes per patient, APTOS-like grade
//! prevalence, demographics, camera, site, a few ungradable shots), renders every eye
//! ([`render_eye`]: anatomy → vessels → lesions → field of view → camera) and writes the
//! APTOS layout ([`writer`]). Each image has its own ChaCha8 stream derived from
//! `(seed, index)`, so output is byte-identical for a seed however many threads render it.
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, ensure};

pub mod anatomy;
pub mod camera;
pub mod canvas;
pub mod cohort;
pub mod lesions;
pub mod noise;
pub mod render;
pub mod vessels;
pub mod writer;

pub use camera::{CameraProfile, default_cameras};
pub use cohort::plan;
pub use render::{image_rng, render_eye};

/// Smallest image side that still shows a recognisable fundus.
pub const MIN_SIZE: u32 = 64;
/// Largest image side accepted (memory: 12 bytes per pixel while drawing).
pub const MAX_SIZE: u32 = 4096;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Number of images (two per patient; the last patient may have one).
    pub n: usize,
    /// Seed of the whole data set.
    pub seed: u64,
    /// Image side in pixels.
    pub size: u32,
    /// Camera models; patients at site `k` mostly use camera `k`.
    pub cameras: Vec<CameraProfile>,
    /// Share of deliberately ungradable photographs.
    pub ungradable_rate: f32,
}

impl SynthConfig {
    /// A validated configuration with the default cameras and a 4 % ungradable share.
    pub fn new(n: usize, seed: u64, size: u32) -> anyhow::Result<Self> {
        ensure!(n >= 1, "--n must be at least 1 image (got {n})");
        ensure!(
            (MIN_SIZE..=MAX_SIZE).contains(&size),
            "--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size})"
        );
        Ok(Self {
            n,
            seed,
            size,
            cameras: default_cameras(),
            ungradable_rate: 0.04,
        })
    }

    /// Plants a bias: camera `name` renders every lesion at `contrast` × its opacity (the
    /// faint-camera experiment of the evaluation report's subgroup table). Errors name an
    /// unknown camera or a contrast outside `[0, 1]`.
    pub fn with_faint_camera(mut self, name: &str, contrast: f32) -> anyhow::Result<Self> {
        ensure!(
            (0.0..=1.0).contains(&contrast),
            "lesion contrast of camera {name} must be in [0, 1] (got {contrast})"
        );
        let names: Vec<String> = self.cameras.iter().map(|c| c.name.clone()).collect();
        let camera = self
            .cameras
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow::anyhow!("unknown camera `{name}` (cameras: {names:?})"))?;
        camera.lesion_contrast = contrast;
        Ok(self)
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Number of images written.
    pub images: usize,
    /// Images per DR grade 0–4.
    pub grade_counts: [usize; 5],
    /// Images marked ungradable.
    pub ungradable: usize,
    /// The label table.
    pub csv: PathBuf,
}

/// Renders the data set of `cfg` into `out` (APTOS layout) using all available cores.
pub fn generate(cfg: &SynthConfig, out: &Path) -> anyhow::Result<Summary> {
    ensure!(
        !cfg.cameras.is_empty(),
        "at least one camera profile is needed"
    );
    let w = writer::Writer::create(out)?;
    let specs = plan(cfg);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(specs.len());
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= specs.len() {
                        break;
                    }
                    let img = render_eye(
                        &specs[i],
                        cfg.size,
                        &mut image_rng(cfg.seed, specs[i].index),
                    );
                    if let Err(e) = w.write_image(&specs[i], &img) {
                        first_error
                            .lock()
                            .expect("no panics while holding the lock")
                            .get_or_insert(e);
                        next.store(specs.len(), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("worker threads finished") {
        return Err(e);
    }
    let csv = w.write_csv(&specs).context("writing the label table")?;
    let mut grade_counts = [0; 5];
    for s in &specs {
        grade_counts[s.grade as usize] += 1;
    }
    let ungradable = specs.iter().filter(|s| s.defect.is_some()).count();
    Ok(Summary {
        images: specs.len(),
        grade_counts,
        ungradable,
        csv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_bad_value() {
        let e = SynthConfig::new(0, 1, 512).unwrap_err().to_string();
        assert!(e.contains("--n") && e.contains("got 0"), "{e}");
        let e = SynthConfig::new(5, 1, 10).unwrap_err().to_string();
        assert!(e.contains("--size") && e.contains("got 10"), "{e}");
        let cfg = SynthConfig::new(5, 1, 64).unwrap();
        assert_eq!(
            (cfg.n, cfg.seed, cfg.size, cfg.cameras.len()),
            (5, 1, 64, 3)
        );
        let e = cfg.clone().with_faint_camera("cam_z", 0.2).unwrap_err();
        assert!(e.to_string().contains("cam_z"), "{e}");
        let e = cfg.clone().with_faint_camera("cam_b", 1.5).unwrap_err();
        assert!(e.to_string().contains("got 1.5"), "{e}");
        let faint = cfg.with_faint_camera("cam_b", 0.2).unwrap();
        let contrast: Vec<f32> = faint.cameras.iter().map(|c| c.lesion_contrast).collect();
        assert_eq!(contrast, [1.0, 0.2, 1.0]);
    }

    #[test]
    fn generate_writes_every_image_and_counts_grades() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig::new(30, 4, 64).unwrap();
        let summary = generate(&cfg, dir.path()).unwrap();
        assert_eq!(summary.images, 30);
        assert_eq!(summary.grade_counts.iter().sum::<usize>(), 30);
        assert!(
            summary.grade_counts.iter().all(|&c| c > 0),
            "{:?}",
            summary.grade_counts
        );
        assert_eq!(summary.ungradable, 1);
        let pngs = std::fs::read_dir(dir.path().join(writer::IMAGES_DIR))
            .unwrap()
            .count();
        assert_eq!(pngs, 30);
        assert_eq!(summary.csv, dir.path().join("train.csv"));
    }
}
