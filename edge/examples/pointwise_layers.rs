//! Per-layer benchmark of fovea's 1×1 convolution (`shared/src/infer/pointwise.rs`) against
//! tract's own (its `OptMatMul`) on EfficientNet-B0's 1×1 convs at 224 px, batch 1, one
//! thread: each layer alone as a decluttered tract model, optimized as tract makes it and with
//! the layer replaced by fovea's op, both timed in the same process, alternating.
//!
//!   cargo run --release -p fovea-edge --example pointwise_layers [RUNS]
//!
//! Prints µs per layer (minimum and median of RUNS, default 50), which of the two `edge`'s
//! loader picks for that layer (`pointwise::replace`), and the B0 totals. `ONLY=N` times the
//! N-th layer of the table alone (from 0); `FLUSH=BYTES` writes a buffer of that many bytes
//! before each timed run, so that the weights and input come from further out than L2 (as in
//! a whole model, whose weights pass through the caches once an inference).
use std::time::Instant;

use shared::infer::pointwise;
use tract_core::internal::*;
use tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
use tract_core::ops::nn::DataFormat;

#[path = "common/values.rs"]
mod common_values;
use common_values::values;

/// B0's 1×1 convs at 224 px, squeeze-excite's aside: `(C_in, C_out, side, count)`.
const LAYERS: [(usize, usize, usize, usize); 19] = [
    (32, 16, 112, 1),
    (16, 96, 112, 1),
    (96, 24, 56, 1),
    (24, 144, 56, 2),
    (144, 24, 56, 1),
    (144, 40, 28, 1),
    (40, 240, 28, 2),
    (240, 40, 28, 1),
    (240, 80, 14, 1),
    (80, 480, 14, 3),
    (480, 80, 14, 2),
    (480, 112, 14, 1),
    (112, 672, 14, 3),
    (672, 112, 14, 2),
    (672, 192, 7, 1),
    (192, 1152, 7, 4),
    (1152, 192, 7, 3),
    (1152, 320, 7, 1),
    (320, 1280, 7, 1),
];

/// One 1×1 conv with bias on a `[C_in, side, side]` input, decluttered.
fn layer(ci: usize, co: usize, side: usize) -> TractResult<TypedModel> {
    let mut model = TypedModel::default();
    let x = model.add_source("x", f32::fact([ci, side, side]))?;
    let k = tract_ndarray::ArrayD::from_shape_vec(vec![co, ci, 1, 1], values(co * ci, 1))?;
    let k = model.add_const("k", k.into_tensor())?;
    let b = model.add_const("b", tensor1(&values(co, 2)))?;
    let conv = Conv {
        pool_spec: PoolSpec {
            data_format: DataFormat::CHW,
            kernel_shape: tvec![1, 1],
            padding: PaddingSpec::Valid,
            dilations: None,
            strides: None,
            input_channels: ci,
            output_channels: co,
        },
        kernel_fmt: KernelFormat::OIHW,
        group: 1,
        q_params: None,
    };
    let y = model.wire_node("pw", conv, &[x, k, b])?[0];
    model.select_output_outlets(&[y])?;
    model.into_decluttered()
}

fn main() -> TractResult<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(50), |r| r.parse())?;
    let env = |name| std::env::var(name).ok().map(|v| v.parse::<usize>());
    let flush = env("FLUSH").transpose()?.unwrap_or(0);
    let only = env("ONLY").transpose()?;
    let mut junk = vec![1.0f32; flush / 4];
    println!(
        "| C_in → C_out | side | × | tract µs min / median | fovea µs min / median | edge uses |"
    );
    println!("|---|---|---|---|---|---|");
    let (mut tract_total, mut fovea_total, mut picked_total) = (0.0, 0.0, 0.0);
    for (li, (ci, co, side, count)) in LAYERS.into_iter().enumerate() {
        if only.is_some_and(|o| o != li) {
            continue;
        }
        let model = layer(ci, co, side)?;
        // What `edge`'s loader does with this layer.
        let uses_fovea = pointwise::replace(&mut model.clone())? == 1;
        let mut patched = model.clone();
        ensure!(pointwise::replace_where(&mut patched, |_, _, _, _| true)? == 1);
        let plans = [model, patched].map(|m| m.into_optimized()?.into_runnable());
        let [tract, fovea] = plans;
        let (tract, fovea) = (tract?, fovea?);
        let input = tract_ndarray::ArrayD::from_shape_vec(
            vec![ci, side, side],
            values(ci * side * side, 3),
        )?
        .into_tensor();
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..runs {
            for (plan, t) in [&tract, &fovea].into_iter().zip(&mut times) {
                let x = input.clone();
                if flush > 0 {
                    for v in junk.iter_mut() {
                        *v += 1.0;
                    }
                    std::hint::black_box(&junk);
                }
                let start = Instant::now();
                plan.run(tvec!(x.into()))?;
                t.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
        let [(tmin, tmed), (fmin, fmed)] = times.map(|mut t| {
            t.sort_by(f64::total_cmp);
            (t[0], t[t.len() / 2])
        });
        let n = count as f64;
        tract_total += tmed * n;
        fovea_total += fmed * n;
        picked_total += if uses_fovea { fmed } else { tmed } * n;
        println!(
            "| {ci} → {co} | {side} | {count} | {tmin:.0} / {tmed:.0} | {fmin:.0} / {fmed:.0} | {} |",
            if uses_fovea { "fovea" } else { "tract" }
        );
    }
    println!(
        "\nB0 total of medians: tract {:.0} µs, fovea everywhere {:.0} µs, as edge picks {:.0} µs",
        tract_total, fovea_total, picked_total
    );
    Ok(())
}
