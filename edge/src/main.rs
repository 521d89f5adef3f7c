//! `edge`: the device-side command line of fovea.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Screen fundus photographs on the device beside the camera.
#[derive(Parser)]
#[command(name = "edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode images and run the quality gate; one JSON line per image.
    Check(cmd::check::Args),
    /// Time tract on one ONNX model: load+optimize, median ms at batch 1, peak RSS.
    Bench(cmd::bench::Args),
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Check(args) => cmd::check::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("edge: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
