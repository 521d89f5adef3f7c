//! `host`: the training-side command line of fovea.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod model;
mod synth;
mod weights;

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
    /// Inspect pretrained weights (PyTorch legacy/zip `.pth`, safetensors).
    Weights(cmd::weights::Args),
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Synth(args) => cmd::synth::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Weights(args) => cmd::weights::run(args),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("host: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
