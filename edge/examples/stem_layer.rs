//! Benchmark of fovea's k×k convolution (`shared/src/infer/dense_conv.rs`) against tract's own
//! (its im2col and matrix product) on EfficientNet's stem at 224 px: 3→32 channels, 3×3,
//! stride 2, TF "same" padding, batch 1, alone as a decluttered tract model, optimized as tract
//! makes it and with fovea's op, timed in the same process, alternating; and fovea's unfolding
//! (im2col) of the whole input on its own, on the calling thread.
//!
//!   cargo run --release -p fovea-edge --example stem_layer [RUNS] [THREADS]
//!
//! Prints µs (minimum and median of RUNS, default 200).
use std::mem::MaybeUninit;
use std::time::Instant;

use shared::depthwise::Geometry;
use shared::infer::dense_conv;
use tract_core::internal::*;
use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
use tract_core::ops::nn::DataFormat;
use tract_linalg::multithread::{Executor, current_tract_executor, set_default_executor};

#[path = "common/values.rs"]
mod common_values;
use common_values::values;

const SIDE: usize = 224;

/// The stem conv with bias on a `[1, 3, 224, 224]` input, decluttered.
fn stem() -> TractResult<TypedModel> {
    let mut model = TypedModel::default();
    let x = model.add_source("x", f32::fact([1, 3, SIDE, SIDE]))?;
    let k = tract_ndarray::ArrayD::from_shape_vec(vec![32, 3, 3, 3], values(32 * 27, 1))?;
    let k = model.add_const("k", k.into_tensor())?;
    let b = model.add_const("b", tensor1(&values(32, 2)))?;
    let conv = Conv {
        pool_spec: PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: tvec![3, 3],
            padding: PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]),
            dilations: None,
            strides: Some(tvec![2, 2]),
            input_channels: 3,
            output_channels: 32,
        },
        kernel_fmt: KernelFormat::OIHW,
        group: 1,
        q_params: None,
    };
    let y = model.wire_node("stem", conv, &[x, k, b])?[0];
    model.select_output_outlets(&[y])?;
    model.into_decluttered()
}

fn stats(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

fn main() -> TractResult<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(Ok(200), |r| r.parse())?;
    let threads: usize = args.next().map_or(Ok(1), |r| r.parse())?;
    let executor = match threads {
        1 => Executor::SingleThread,
        n => Executor::multithread(n),
    };
    let model = stem()?;
    let mut patched = model.clone();
    ensure!(dense_conv::replace(&mut patched)? == 1);
    let [tract, fovea] = [model, patched].map(|m| m.into_optimized()?.into_runnable());
    let (tract, fovea) = (tract?, fovea?);
    let xs = values(3 * SIDE * SIDE, 3);
    let input =
        tract_ndarray::ArrayD::from_shape_vec(vec![1, 3, SIDE, SIDE], xs.clone())?.into_tensor();
    let geo = Geometry {
        n: 1,
        c: 3,
        h: SIDE,
        w: SIDE,
        kh: 3,
        kw: 3,
        oh: SIDE / 2,
        ow: SIDE / 2,
        sh: 2,
        sw: 2,
        ph: 0,
        pw: 0,
    };
    let mut cols = vec![MaybeUninit::new(0.0f32); 27 * (SIDE / 2) * (SIDE / 2)];
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    // As `edge` runs a model (`runtime::model::infer`): on the executor's pool.
    let mut timed = || -> TractResult<()> {
        for _ in 0..runs {
            for (plan, t) in [&tract, &fovea].into_iter().zip(&mut times) {
                let x = input.clone();
                let start = Instant::now();
                plan.run(tvec!(x.into()))?;
                t.push(start.elapsed().as_secs_f64() * 1e6);
            }
            let start = Instant::now();
            dense_conv::unfold(&xs, &geo, 0..geo.oh, &mut cols);
            times[2].push(start.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    };
    // As `edge --threads` (`runtime::model::set_threads`): the default executor, which the
    // pool's workers see too (a scoped one is the calling thread's only).
    set_default_executor(executor);
    match current_tract_executor() {
        Executor::MultiThread(pool) => pool.install(timed)?,
        _ => timed()?,
    }
    let [t, f, u] = times.map(stats);
    println!("stem 3→32, 3×3 stride 2, 224 px, {threads} thread(s), {runs} runs, µs min / median");
    println!("tract {:.0} / {:.0}", t.0, t.1);
    println!(
        "fovea {:.0} / {:.0} (its unfolding alone {:.0} / {:.0})",
        f.0, f.1, u.0, u.1
    );
    Ok(())
}
