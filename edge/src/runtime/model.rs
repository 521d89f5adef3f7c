//! Loading an ONNX model into tract once (input fixed to `1×3×S×S` f32, fovea's ops placed,
//! optimized, runnable: [`shared::infer::plan`]) and running it on the thread count `--threads`
//! sets. `edge bench` and the screener use this same loader, so the benchmark measures the
//! runtime.
use anyhow::Context;
use tract_linalg::multithread::{
    Executor, current_tract_executor, set_default_executor, set_threading_panel_threshold,
};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

pub use shared::infer::plan::Plan;

/// Loads `bytes` (ONNX) with the input fixed to `[1, 3, side, side]`, optimized:
/// [`shared::onnx::model::decode`] then [`load_proto`], under the loading heap policy
/// ([`super::heap::loading`]), as the screener loads a bundle's model.
pub fn load_onnx(bytes: &[u8], side: usize) -> anyhow::Result<Plan> {
    super::heap::loading(|| load_proto(shared::onnx::model::decode(bytes)?, side))
}

/// Loads `proto` with the input fixed to `[1, 3, side, side]`, fovea's ops placed, optimized:
/// [`shared::infer::plan::load_proto`], the loader `host quantize`'s accuracy gate scores with.
pub fn load_proto(proto: ModelProto, side: usize) -> anyhow::Result<Plan> {
    Ok(shared::infer::plan::load_proto(proto, side)?)
}

/// How many output panels a tract matrix product needs before it splits over the pool (tract's
/// default: 64). B0's and Lite0's 7×7 products into 192 channels (block 11's projection, 6.3 M
/// multiply-adds, and blocks 12–14's, 10.8 M; 160–325 µs each on one core) fell below the
/// default and ran on one thread. Measured at two threads (`node_profile`, B0 and Lite0 at 224
/// px, 64 and 48 alternated, three rounds): those four products 952–1058 → 599–641 µs (B0) and
/// 874–1016 → 599–716 µs (Lite0); squeeze-excitation's small products unchanged; 24 was no
/// better than 48 (docs/PERFORMANCE.md).
const PANEL_THRESHOLD: usize = 48;

/// Sets how many threads each inference uses (at least 1): above one, tract's default executor
/// becomes an `n`-thread rayon pool ([`infer`] runs on it; tract's matrix products and fovea's
/// depthwise convs split over it) and tract's products split from [`PANEL_THRESHOLD`] panels.
/// One keeps tract's single-thread executor.
pub fn set_threads(n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(n >= 1, "--threads must be at least 1");
    set_default_executor(if n == 1 {
        Executor::SingleThread
    } else {
        Executor::multithread(n)
    });
    set_threading_panel_threshold(PANEL_THRESHOLD);
    Ok(())
}

/// Runs `plan` on `input`. Under a multithread executor ([`set_threads`]) the whole run goes
/// on its pool: tract's serial ops then run on a worker and the parallel ones split from
/// there, instead of the calling thread waking the workers for each op and waiting (measured:
/// B0 224 at 2 threads 20.7 → 19.8 ms, Lite0 17.6 → 14.6 ms, medians of three alternating
/// rounds). The pool's other workers spin until the run ends ([`super::spin`]; B0 at 2 threads
/// ~5 % faster, docs/PERFORMANCE.md).
pub fn infer(plan: &Plan, input: Tensor) -> anyhow::Result<TVec<TValue>> {
    let run = || plan.run(tvec!(input.into())).context("running the model");
    match current_tract_executor() {
        Executor::MultiThread(pool) if spinning() => super::spin::run(&pool, run),
        Executor::MultiThread(pool) => pool.install(run),
        _ => run(),
    }
}

/// Whether [`infer`] keeps the pool's workers spinning ([`super::spin`]); `FOVEA_SPIN=0`
/// turns it off (to measure it). Read once per process, not per inference.
fn spinning() -> bool {
    static SPIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| std::env::var_os("FOVEA_SPIN").is_none_or(|v| v != "0"))
}

/// One model output: its shape and values (row-major).
pub struct Output {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Vec<f32>,
}

/// Runs `plan` on one CHW tensor of side `side`; returns every output.
pub fn run(plan: &Plan, chw: Vec<f32>, side: usize) -> anyhow::Result<Vec<Output>> {
    let input = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), chw)
        .context("input tensor has the wrong length")?;
    let outputs = infer(plan, Tensor::from(input))?;
    outputs
        .iter()
        .map(|t| {
            let view = t
                .to_plain_array_view::<f32>()
                .context("model output is not f32")?;
            Ok(Output {
                shape: view.shape().to_vec(),
                values: view.iter().copied().collect(),
            })
        })
        .collect()
}
