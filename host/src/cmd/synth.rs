//! `host synth`: write a labelled synthetic fundus data set.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::synth::{self, SynthConfig};

/// Arguments of `host synth`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder; receives `train.csv` and `train_images/<id_code>.png`.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of images (two eyes per patient).
    #[arg(long)]
    pub n: usize,
    /// Seed; the same seed writes byte-identical images and CSV.
    #[arg(long)]
    pub seed: u64,
    /// Image side in pixels (64–4096).
    #[arg(long, default_value_t = 512)]
    pub size: u32,
    /// Plant a bias: `CAMERA=CONTRAST` draws that camera's lesions at CONTRAST × their
    /// opacity (e.g. `cam_b=0.15`), so its positives are missed more often.
    #[arg(long, value_name = "CAMERA=CONTRAST")]
    pub faint_camera: Option<String>,
}

impl Args {
    /// Validates the raw arguments into a generator configuration.
    fn config(&self) -> anyhow::Result<SynthConfig> {
        let cfg = SynthConfig::new(self.n, self.seed, self.size)?;
        match &self.faint_camera {
            None => Ok(cfg),
            Some(spec) => {
                let (name, contrast) = spec.split_once('=').with_context(|| {
                    format!("--faint-camera {spec}: expected CAMERA=CONTRAST, e.g. cam_b=0.15")
                })?;
                let contrast: f32 = contrast.parse().with_context(|| {
                    format!("--faint-camera {spec}: contrast `{contrast}` is not a number")
                })?;
                cfg.with_faint_camera(name, contrast)
            }
        }
    }
}

/// Run `host synth`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = args.config().context("invalid arguments")?;
    let start = Instant::now();
    let summary = synth::generate(&cfg, &args.out)
        .with_context(|| format!("generating synthetic data set in {}", args.out.display()))?;
    let g = summary.grade_counts;
    println!(
        "wrote {} images of {} px and {} in {:.1} s; grades 0:{} 1:{} 2:{} 3:{} 4:{}; {} ungradable",
        summary.images,
        cfg.size,
        summary.csv.display(),
        start.elapsed().as_secs_f32(),
        g[0],
        g[1],
        g[2],
        g[3],
        g[4],
        summary.ungradable
    );
    Ok(ExitCode::SUCCESS)
}
