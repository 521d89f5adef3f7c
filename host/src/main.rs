//! `host`: the training-side command line of fovea.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod eval;
mod export;
mod heap;
mod model;
mod package;
mod quantize;
mod synth;
mod train;
mod weights;

/// Locating cached real samples and weights in unit tests (shared with fovea-shared's tests).
#[cfg(test)]
#[path = "../../shared/tests/support.rs"]
mod test_support;

/// Train, export and package EfficientNet screening models.
#[derive(Parser)]
#[command(name = "host", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Draw a labelled synthetic fundus data set (the embedded default).
    Synth(cmd::synth::Args),
    /// Print an EfficientNet variant's stages, resolution, dropout and parameter count.
    Model(cmd::model::Args),
    /// Train or fine-tune an EfficientNet (default data: the synthetic fundus set).
    Train(cmd::train::Args),
    /// Write a trained run (or a fresh / pretrained network) as ONNX, opset 13.
    Export(cmd::export::Args),
    /// Quantize an export to int8 (weights, or weights + activations), gated on accuracy.
    Quantize(cmd::quantize::Args),
    /// Evaluate a trained run: report with intervals, subgroups, Grad-CAM, model card.
    Eval(cmd::eval::Args),
    /// Write a new ed25519 signing key pair for bundles.
    Keygen(cmd::keygen::Args),
    /// Package an exported run as a signed device bundle (.fovea).
    Bundle(cmd::bundle::Args),
    /// Install a bundle onto a device folder, keeping the previous one for rollback.
    Flash(cmd::flash::Args),
    /// Measure training speed (images/s, peak RSS).
    Bench(cmd::bench::Args),
    /// Inspect pretrained weights (PyTorch legacy/zip `.pth`, safetensors).
    Weights(cmd::weights::Args),
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Synth(args) => cmd::synth::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Quantize(args) => cmd::quantize::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::Bundle(args) => cmd::bundle::run(args),
        Command::Flash(args) => cmd::flash::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Weights(args) => cmd::weights::run(args),
    }
}

fn main() -> ExitCode {
    heap::keep_large_buffers();
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("host: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
