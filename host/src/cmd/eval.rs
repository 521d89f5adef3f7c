//! `host eval`: the clinical evaluation report of a trained run (metrics with intervals,
//! operating point pre-set on validation, subgroups, calibration, Grad-CAM, model card).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::ensure;

use crate::eval::{self, EvalConfig};

/// Arguments of `host eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run directory written by `host train` (config.json, split.json, model.bpk).
    #[arg(long)]
    model: PathBuf,
    /// CSV manifest or image folder to evaluate; default: the run's own test split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Report folder.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Sensitivity the operating threshold must reach on the validation split.
    #[arg(long, default_value_t = 0.90)]
    target_sensitivity: f64,
    /// Flag subgroups whose sensitivity trails the overall by more than this (and whose
    /// intervals do not overlap).
    #[arg(long, default_value_t = 0.05)]
    margin: f64,
    /// Images per Grad-CAM montage (true positives, false negatives, false positives).
    #[arg(long, default_value_t = 4)]
    gradcam: usize,
    /// Threads decoding and preparing images.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Runs `host eval`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    ensure!(
        args.target_sensitivity > 0.0 && args.target_sensitivity <= 1.0,
        "--target-sensitivity must be in (0, 1] (got {})",
        args.target_sensitivity
    );
    ensure!(
        (0.0..1.0).contains(&args.margin),
        "--margin must be in [0, 1) (got {})",
        args.margin
    );
    let cfg = EvalConfig {
        run_dir: args.model,
        data: args.data,
        out: args.out,
        target_sensitivity: args.target_sensitivity,
        margin: args.margin,
        gradcam_per_kind: args.gradcam,
        threads: args.threads.max(1),
    };
    let r = eval::run(&cfg)?;
    let t = &r.operating_point.test;
    let flagged: Vec<String> = r
        .subgroups
        .tables
        .iter()
        .flat_map(|t| {
            t.rows
                .iter()
                .filter(|r| r.flagged)
                .map(move |r| format!("{}={}", t.column, r.value))
        })
        .collect();
    println!(
        "threshold {:.4} (validation, target sensitivity {:.2}): sensitivity {}, specificity {}, AUC {}; {} of {} gradable; flagged subgroups: {}",
        r.operating_point.threshold,
        r.operating_point.target_sensitivity,
        eval::html::ci(&t.sensitivity),
        eval::html::ci(&t.specificity),
        eval::html::ci(&r.roc.auc),
        r.imageability.gradable,
        r.imageability.total,
        if flagged.is_empty() {
            "none".into()
        } else {
            flagged.join(", ")
        }
    );
    println!("report: {}/index.html", cfg.out.display());
    Ok(ExitCode::SUCCESS)
}
