//! `host model`: print the expanded architecture of an EfficientNet variant.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::model::arch::{BN_EPS, BN_MOMENTUM, DROP_CONNECT};
use crate::model::{Architecture, Variant};

/// Arguments of `host model`.
#[derive(clap::Args)]
pub struct Args {
    /// EfficientNet variant.
    #[arg(long, value_enum, default_value_t = Variant::B0)]
    variant: Variant,
    /// Number of classifier outputs (5 for ICDR grades, 1000 to compare with ImageNet counts).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    classes: u32,
    /// Also list every block (channels, kernel, stride, SE width, drop-connect rate).
    #[arg(long)]
    blocks: bool,
}

/// Run `host model`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let arch = Architecture::new(args.variant, args.classes);
    let mut out = std::io::stdout().lock();
    match write_report(&mut out, &arch, args.blocks) {
        // `host model | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => {
            other.context("writing to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_report(out: &mut impl Write, a: &Architecture, blocks: bool) -> std::io::Result<()> {
    let s = a.variant.scaling();
    writeln!(
        out,
        "variant       {} ({})",
        a.variant,
        a.variant.timm_name()
    )?;
    writeln!(out, "width         {:?}", s.width)?;
    writeln!(out, "depth         {:?}", s.depth)?;
    writeln!(out, "resolution    {}", a.resolution)?;
    writeln!(out, "dropout       {:?}", a.dropout)?;
    writeln!(out, "drop-connect  {DROP_CONNECT} (scaled by block index)")?;
    writeln!(out, "activation    {}", a.activation.name())?;
    writeln!(out, "bn-eps        {BN_EPS}")?;
    writeln!(out, "bn-momentum   {BN_MOMENTUM}")?;
    writeln!(out, "stem          {}", a.stem_channels)?;
    writeln!(out, "stages")?;
    for stage in &a.stages {
        writeln!(out, "  {stage}")?;
    }
    writeln!(out, "head          {}", a.head_channels)?;
    let f = a.feature_size();
    writeln!(out, "feature-map   {f}x{f}")?;
    writeln!(out, "blocks        {}", a.blocks.len())?;
    writeln!(out, "classes       {}", a.classes)?;
    let n = a.trainable_parameters();
    writeln!(out, "parameters    {n} ({:.2} M)", n as f64 / 1e6)?;
    if blocks {
        writeln!(
            out,
            "#   stage kind  in  mid  out  k  s  se  residual  drop-connect"
        )?;
        for (i, b) in a.blocks.iter().enumerate() {
            writeln!(
                out,
                "{i:<3} {:<5} {:<4} {:>4} {:>4} {:>4} {:>2} {:>2} {:>3} {:<9} {:.4}",
                b.stage,
                b.kind.tag(),
                b.in_channels,
                b.mid_channels,
                b.out_channels,
                b.kernel,
                b.stride,
                b.se_channels.map_or("-".to_owned(), |r| r.to_string()),
                b.residual,
                b.drop_connect,
            )?;
        }
    }
    Ok(())
}
