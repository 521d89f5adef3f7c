//! `host bundle --model M.onnx --run DIR [--report REPORT] --key KEY --out NAME.fovea`: the
//! signed device bundle of an exported run.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use shared::bundle::{SigningKey, write_bundle};

use crate::package::{manifest, onnx_check};

/// Arguments of `host bundle`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model written by `host export` for this run.
    #[arg(long)]
    model: PathBuf,
    /// The `host train` run directory.
    #[arg(long)]
    run: PathBuf,
    /// A `host eval` report folder of this run: its operating threshold goes into the bundle
    /// (without it: probability 0.5 on the positive classes).
    #[arg(long)]
    report: Option<PathBuf>,
    /// The signing key (from `host keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Output bundle file.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `host bundle`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = std::fs::read(&args.model)
        .with_context(|| format!("reading the model {}", args.model.display()))?;
    let cfg = manifest::read_config(&args.run)?;
    onnx_check::check_model(&args.model, &model, &cfg.classes, &cfg.preprocess)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let manifest = manifest::build(&args.run, args.report.as_deref(), &model, now)?;
    let key = SigningKey::read_file(&args.key)?;
    let bytes = write_bundle(&manifest, &model, &key)?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let op = manifest
        .operating_thresholds
        .first()
        .map_or("none".to_owned(), |t| {
            format!(
                "{} ≥ {:.4} on classes {:?}",
                t.name, t.threshold, t.positive_classes
            )
        });
    println!(
        "bundle {}: {} bytes, {} {} ({} classes, {} px), operating point {op}, signed by {}",
        args.out.display(),
        bytes.len(),
        manifest.variant,
        manifest.task.name(),
        manifest.classes.len(),
        manifest.preprocess.size,
        key.verifying_key().key_id()
    );
    Ok(ExitCode::SUCCESS)
}
