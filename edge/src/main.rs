//! `edge`: the device-side command line of fovea.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod board;
mod cmd;
mod runtime;
mod station;
mod ui;
mod watch;

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
    /// Screen captures with the device's bundle; one JSON line per image, each audit-logged.
    Screen(cmd::screen::Args),
    /// Service mode: watch the camera's export folder and screen each new capture once.
    Run(cmd::run::Args),
    /// Check the audit log's hash chain; report the first bad record or a torn last line.
    VerifyLog(cmd::verify_log::Args),
    /// Make the previous bundle current again.
    Rollback(cmd::rollback::Args),
    /// Time tract on one ONNX model: load+optimize, median ms at batch 1, peak RSS.
    Bench(cmd::bench::Args),
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Check(args) => cmd::check::run(args),
        Command::Screen(args) => cmd::screen::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::VerifyLog(args) => cmd::verify_log::run(args),
        Command::Rollback(args) => cmd::rollback::run(args),
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
