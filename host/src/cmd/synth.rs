//! `host synth`: write a labelled synthetic fundus data set.
use std::process::ExitCode;

/// Arguments of `host synth`.
#[derive(clap::Args)]
pub struct Args {}

/// Run `host synth`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("synth: not built yet")
}
