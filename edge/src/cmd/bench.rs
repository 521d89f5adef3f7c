//! `edge bench`: time tract on one ONNX model at batch 1 — load+optimize, median run, peak RSS,
//! how many convs run fovea's ops, and which int8 kernel this CPU runs a `compute` model's 1×1
//! convs with (`int8_kernel`: `vnni`, `avx2`, `sdot`, `neon` or `portable`).
//!
//! It loads the file with the runtime's loader (`runtime::model::load_onnx`): input fixed to
//! `1×3×S×S` f32 (S read from the model's input, or `--size`
//! when the model leaves it symbolic), optimizes, runs `--warmup` untimed and `--runs` timed
//! inferences on a fixed pseudo-random input and prints one JSON line.
//!
//! Threads: `--threads N` sets the runtime's threads as `edge screen --threads` does
//! (`runtime::model::set_threads`: above one, tract-linalg's `multithread-mm` executor, an
//! N-thread rayon pool that each inference runs on); 1 keeps tract's single-thread executor.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::runtime::model::infer;
use clap::Parser;
use shared::infer::expand_depthwise::ExpandDepthwise;
use shared::infer::stem_depthwise::StemDepthwise;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// Arguments of `edge bench`.
#[derive(Parser)]
pub struct Args {
    /// ONNX model with one image input (N×3×H×W f32).
    pub model: PathBuf,
    /// Threads for tract's matrix products (1 = single-threaded executor).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Input side when the model's spatial axes are symbolic.
    #[arg(long)]
    pub size: Option<usize>,
}

/// Run the benchmark and print one JSON line.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    crate::runtime::model::set_threads(args.threads)?;
    let path = &args.model;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // The input side first (an untimed parse); the timed load is the runtime's.
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .with_context(|| format!("loading ONNX model {}", path.display()))?;
    let side = input_side(&model, args.size)
        .with_context(|| format!("reading the input shape of {}", path.display()))?;
    drop(model); // not held while the device's load is measured (peak RSS)
    let shape = [1, 3, side, side];
    // The screening runtime's own loader, so the benchmark measures what the device runs.
    let t0 = Instant::now();
    let plan = crate::runtime::model::load_onnx(&bytes, side)
        .with_context(|| format!("preparing {}", path.display()))?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    // How many depthwise, 1×1, int8 1×1 and k×k convs run fovea's ops (`depthwise`, `pointwise`,
    // `int8_pointwise`, `dense_conv` in `shared::infer`) instead of tract's; an MBConv in one op
    // (`expand_depthwise`) counts as one depthwise conv and its 1×1 convs (the expansion, and
    // the projection where it joined); the stem and block 0 in one op (`stem_depthwise`) as one
    // k×k conv, one depthwise conv and the projection where it joined.
    let count = |name: &str| {
        plan.model()
            .nodes()
            .iter()
            .filter(|n| n.op().name() == name)
            .count()
    };
    let fused_pointwise: usize = plan
        .model()
        .nodes()
        .iter()
        .filter_map(|n| n.op_as::<ExpandDepthwise>())
        .map(ExpandDepthwise::pointwise_convs)
        .sum::<usize>()
        + plan
            .model()
            .nodes()
            .iter()
            .filter_map(|n| n.op_as::<StemDepthwise>())
            .map(StemDepthwise::pointwise_convs)
            .sum::<usize>();
    let stems = count("FoveaStemDepthwise");
    let (fovea_depthwise, fovea_pointwise, fovea_int8_pointwise, fovea_dense) = (
        count("FoveaDepthwise") + count("FoveaExpandDepthwise") + stems,
        count("FoveaPointwise") + fused_pointwise,
        count("FoveaInt8Pointwise"),
        count("FoveaDenseConv") + stems,
    );

    let input: Tensor = tract_ndarray::Array4::from_shape_fn(shape, |(_, c, y, x)| {
        // A fixed, non-constant image in roughly normalized range.
        (((c * 7919 + y * 131 + x * 17) % 255) as f32 / 127.5) - 1.0
    })
    .into();
    let mut out_len = 0;
    for _ in 0..args.warmup {
        let out = infer(&plan, input.clone())?;
        out_len = out[0].len();
    }
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let x = input.clone();
        let t = Instant::now();
        let out = infer(&plan, x)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        out_len = out[0].len();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let line = serde_json::json!({
        "model": path.display().to_string(),
        "runtime": "tract",
        "threads": args.threads,
        "input": shape,
        "outputs": out_len,
        "runs": args.runs,
        "median_ms": median,
        "min_ms": times[0],
        "load_ms": load_ms,
        "fovea_depthwise": fovea_depthwise,
        "fovea_pointwise": fovea_pointwise,
        "fovea_int8_pointwise": fovea_int8_pointwise,
        "int8_kernel": shared::infer::int8_pointwise::kernel_name(),
        "fovea_dense": fovea_dense,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// The square input side: from the model's first input when concrete, else `--size`.
fn input_side(model: &InferenceModel, size: Option<usize>) -> anyhow::Result<usize> {
    let fact = model.input_fact(0)?;
    let dims: Vec<Option<usize>> = (0..4)
        .map(|i| {
            fact.shape
                .dim(i)
                .and_then(|d| d.concretize())
                .and_then(|d| d.as_i64().map(|v| v as usize))
        })
        .collect();
    match (
        dims.get(2).copied().flatten(),
        dims.get(3).copied().flatten(),
        size,
    ) {
        (_, _, Some(s)) => Ok(s),
        (Some(h), Some(w), None) if h == w => Ok(h),
        (Some(h), Some(w), None) => bail!("input is {h}×{w}; only square inputs are benched"),
        _ => bail!("input side is symbolic; pass --size"),
    }
}

/// Peak resident set size of this process (VmHWM), in MiB; `None` off Linux.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
