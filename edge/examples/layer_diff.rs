//! Where a quantized (`compute`) model's device outputs part from the model as specified: every
//! activation `QuantizeLinear`'s f32 input is made a model output, then the model runs twice on
//! the same inputs, as the device loads it (`shared::infer::plan::load_proto`: fovea's ops, the
//! 1×1 convs in integers) and with tract's own ops (the ONNX as specified, as `host quantize
//! --reference` computes its `spec_logits`). Per activation, in graph order, it prints how many
//! values land on a different uint8 level in the two runs and by how much the f32 values
//! differ, in quantization steps.
//!
//!   cargo run --release -p fovea-edge --example layer_diff -- MODEL.onnx REFERENCE.json
//!
//! `REFERENCE.json` is what `host quantize --reference DIR` writes (its `input_shape` and
//! `input`; its `logits`, the device's without the taps, are held against this run's to show the
//! taps left the device's plan as it was). Reading the table: a layer whose inputs sit on the
//! same levels in both runs should differ by no more than an f32 sum's rounding (≈1e-4 steps)
//! and change a level only where a value lies that close to a rounding boundary; a level
//! changed with a large step difference there is an arithmetic fault.
use anyhow::{Context, bail};
use shared::infer::fake_quant;
use tract_onnx::pb::{ModelProto, ValueInfoProto};
use tract_onnx::prelude::*;

/// One tapped activation: the tensor `QuantizeLinear` reads and its quantization.
struct Tap {
    tensor: String,
    /// tract's multiplier (`1 / scale`) and the zero point.
    inv_scale: f32,
    zero_point: f32,
}

/// The activation `QuantizeLinear` nodes whose input is computed (not an initializer or the
/// graph input), in graph order.
fn taps(proto: &ModelProto) -> anyhow::Result<Vec<Tap>> {
    let graph = proto.graph.as_ref().context("the model has no graph")?;
    let init = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    let input = graph.input.first().map(|i| i.name.as_str()).unwrap_or("");
    let mut out = Vec::new();
    for node in graph.node.iter().filter(|n| n.op_type == "QuantizeLinear") {
        let (Some(x), Some(scale)) = (node.input.first(), node.input.get(1)) else {
            bail!("QuantizeLinear {} has fewer than two inputs", node.name);
        };
        if x == input || init(x).is_some() {
            continue;
        }
        let scale = init(scale).context("a QuantizeLinear without a constant scale")?;
        let scale = shared::onnx::initializer::f32_values(scale)?[0];
        let zero_point = match node.input.get(2).and_then(|z| init(z)) {
            Some(z) => shared::onnx::initializer::levels(z)?.map_or(0, |l| l[0]),
            None => 0,
        };
        out.push(Tap {
            tensor: x.clone(),
            inv_scale: 1.0 / scale,
            zero_point: zero_point as f32,
        });
    }
    Ok(out)
}

/// tract's uint8 level of `x` (`shared::infer::fake_quant::level`, tested against tract's op).
fn level(x: f32, tap: &Tap) -> f32 {
    fake_quant::level(x, tap.inv_scale, tap.zero_point)
}

/// `reference[key]` as `T`; its absence is an error naming `path`.
fn field<T: serde::de::DeserializeOwned>(
    reference: &serde_json::Value,
    key: &str,
    path: &str,
) -> anyhow::Result<T> {
    serde_json::from_value(reference[key].clone())
        .with_context(|| format!("{path}: no `{key}` as `host quantize --reference` writes it"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, reference] = args.as_slice() else {
        bail!("usage: layer_diff MODEL.onnx REFERENCE.json");
    };
    let bytes = std::fs::read(model).with_context(|| format!("reading {model}"))?;
    let mut proto = shared::onnx::model::decode(&bytes).with_context(|| model.clone())?;
    let path = reference;
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {path}"))?)
            .with_context(|| format!("{path} is not JSON"))?;
    let shape: [usize; 4] = field(&reference, "input_shape", path)?;
    let input: Vec<f32> = field(&reference, "input", path)?;
    let logits: Vec<f32> = field(&reference, "logits", path)?;
    let side = shape[3];
    if shape[1..] != [3, side, side] || input.len() != shape.iter().product::<usize>() {
        bail!(
            "{path}: `input` holds {} values, `input_shape` is {shape:?}",
            input.len()
        );
    }

    let taps = taps(&proto)?;
    let graph = proto.graph.as_mut().context("the model has no graph")?;
    let first = graph.output.len();
    for tap in &taps {
        graph.output.push(ValueInfoProto {
            name: tap.tensor.clone(),
            ..Default::default()
        });
    }
    let device = shared::infer::plan::load_proto(proto.clone(), side)?;
    let spec = shared::infer::plan::load_spec(proto, side, &[])?;

    for (i, chw) in input.chunks(3 * side * side).enumerate() {
        let x = Tensor::from_shape(&[1, 3, side, side], chw)?;
        let d = device.run(tvec!(x.clone().into()))?;
        let s = spec.run(tvec!(x.into()))?;
        let values = |t: &TValue| -> anyhow::Result<Vec<f32>> {
            Ok(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        };
        let (dl, sl) = (values(&d[0])?, values(&s[0])?);
        let logit = dl
            .iter()
            .zip(&sl)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let per = dl.len();
        let untapped = logits
            .get(i * per..(i + 1) * per)
            .context("too few `logits`")?;
        let taps_moved = (dl.iter().zip(untapped))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        println!(
            "image {i}: max |logit difference| {logit:.3e} (the device's logits with the taps \
             against {path}'s without: {taps_moved:.1e})"
        );
        println!("| # | activation | values | levels changed | max level Δ | max f32 Δ (steps) |");
        println!("|---|---|---|---|---|---|");
        for (k, tap) in taps.iter().enumerate() {
            let (dv, sv) = (values(&d[first + k])?, values(&s[first + k])?);
            let (mut changed, mut max_level, mut max_steps) = (0, 0.0f32, 0.0f32);
            for (&a, &b) in dv.iter().zip(&sv) {
                let dlevel = (level(a, tap) - level(b, tap)).abs();
                changed += usize::from(dlevel > 0.0);
                max_level = max_level.max(dlevel);
                max_steps = max_steps.max((a - b).abs() * tap.inv_scale);
            }
            println!(
                "| {k} | {} | {} | {changed} | {max_level} | {max_steps:.2e} |",
                tap.tensor,
                dv.len()
            );
        }
    }
    Ok(())
}
