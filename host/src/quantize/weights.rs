//! Per-channel symmetric int8 convolution weights (`--mode weights`, and the weight half of
//! `--mode compute`): each Conv's f32 weight initializer `W` [out, in/g, kh, kw] becomes
//! `W.int8` (int8), `W.scale` (f32 `[out]`, `max |W[c]| / 127`) and `W.zero_point` (int8 zeros),
//! and a `DequantizeLinear(axis = 0)` node gives back the float tensor under the old name `W`,
//! so the Conv itself is untouched. The device folds the dequantization into an f32 constant
//! before tract loads the model (shared/src/onnx/dequant.rs; tract would fold it itself, more
//! slowly), so the model runs at fp32 speed from a file a quarter the size.
//!
//! Levels use the symmetric range −127…127 (not −128), as onnxruntime's per-channel weights do,
//! and round half to even, as ONNX `QuantizeLinear` does. The classifier (Gemm) stays f32: with
//! 5 classes it is under 0.2 % of Lite0's weights, and the device's class activation map reads
//! it by name.
use std::collections::HashMap;

use anyhow::{Context, bail, ensure};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, NodeProto};

use shared::onnx::initializer::{f32_values, raw_tensor};

use crate::export::graph::attr_int;

/// Per-channel symmetric int8 levels of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct PerChannel {
    /// Levels, in the tensor's row-major order.
    pub levels: Vec<i8>,
    /// One scale per channel (axis 0).
    pub scales: Vec<f32>,
}

/// Quantizes `w` (row-major, `channels` equal slices along axis 0): scale = max |w| / 127
/// per channel (1 for an all-zero channel, so its levels are 0), level = round_ties_even(w /
/// scale) clamped to ±127.
pub fn per_channel(w: &[f32], channels: usize) -> PerChannel {
    assert!(
        channels > 0 && w.len().is_multiple_of(channels),
        "{} values in {channels} channels",
        w.len()
    );
    let per = w.len() / channels;
    let mut levels = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for chunk in w.chunks(per) {
        let max = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        levels.extend(
            chunk
                .iter()
                .map(|v| (v / scale).round_ties_even().clamp(-127.0, 127.0) as i8),
        );
    }
    PerChannel { levels, scales }
}

/// What [`quantize_conv_weights`] changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightsSummary {
    /// Convolutions whose weights are now int8.
    pub convs: usize,
    /// f32 weight values replaced.
    pub values: usize,
    /// Largest |w − dequantized w| over all of them.
    pub max_abs_error: f32,
}

/// Rewrites every Conv weight initializer of `graph` as int8 + DequantizeLinear (see the
/// module documentation). Node order stays topological: each DequantizeLinear is inserted
/// before the first node.
pub fn quantize_conv_weights(graph: &mut GraphProto) -> anyhow::Result<WeightsSummary> {
    let conv_weights: Vec<String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .filter_map(|n| n.input.get(1).cloned())
        .collect();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, t) in graph.initializer.iter().enumerate() {
        index.insert(t.name.clone(), i);
    }
    let mut summary = WeightsSummary::default();
    let mut dequantize = Vec::new();
    let mut added = Vec::new();
    for name in conv_weights {
        let Some(&i) = index.get(&name) else {
            let dequantized = graph
                .node
                .iter()
                .any(|n| n.op_type == "DequantizeLinear" && n.output.contains(&name));
            if dequantized {
                continue; // already int8 (a second pass)
            }
            bail!("Conv weight {name} is neither an initializer nor dequantized");
        };
        let t = &graph.initializer[i];
        if t.data_type != DataType::Float as i32 {
            bail!("Conv weight {name} has data type {}, not f32", t.data_type);
        }
        let values = f32_values(t).with_context(|| format!("reading Conv weight {name}"))?;
        let dims = t.dims.clone();
        ensure!(
            dims.len() == 4,
            "Conv weight {name} has shape {dims:?}, not 4-D"
        );
        let channels = dims[0] as usize;
        let q = per_channel(&values, channels);
        let per = values.len() / channels;
        for (k, (&v, &l)) in values.iter().zip(&q.levels).enumerate() {
            let err = (v - l as f32 * q.scales[k / per]).abs();
            summary.max_abs_error = summary.max_abs_error.max(err);
        }
        summary.convs += 1;
        summary.values += values.len();
        let (lv, sc, zp) = (
            format!("{name}.int8"),
            format!("{name}.scale"),
            format!("{name}.zero_point"),
        );
        added.push(raw_tensor(
            &lv,
            &dims,
            DataType::Int8,
            q.levels.iter().map(|&l| l as u8).collect(),
        ));
        added.push(raw_tensor(
            &sc,
            &[channels as i64],
            DataType::Float,
            q.scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
        ));
        added.push(raw_tensor(
            &zp,
            &[channels as i64],
            DataType::Int8,
            vec![0; channels],
        ));
        dequantize.push(NodeProto {
            name: format!("{name}.dequantize"),
            op_type: "DequantizeLinear".to_owned(),
            input: vec![lv, sc, zp],
            output: vec![name.clone()],
            attribute: vec![attr_int("axis", 0)],
            ..Default::default()
        });
    }
    let replaced: std::collections::HashSet<&str> =
        dequantize.iter().map(|n| n.output[0].as_str()).collect();
    graph
        .initializer
        .retain(|t| !replaced.contains(t.name.as_str()));
    graph.initializer.extend(added);
    graph.node.splice(0..0, dequantize);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed, with values exact in binary: channel 0 max 127/128 → scale 1/128, −63.5/128
    /// → −63.5 → −64 (ties to even), 0.375/128 → 0; channel 1 max 127/256 → scale 1/256,
    /// 62.5/256 → 62 (ties to even), −127/256 → −127; an all-zero channel gets scale 1, levels 0.
    #[test]
    fn levels_and_scales_by_hand() {
        let w = [
            127.0 / 128.0,
            -63.5 / 128.0,
            0.375 / 128.0,
            127.0 / 256.0,
            62.5 / 256.0,
            -127.0 / 256.0,
            0.0,
            0.0,
            0.0,
        ];
        let q = per_channel(&w, 3);
        assert_eq!(q.levels, [127, -64, 0, 127, 62, -127, 0, 0, 0]);
        assert_eq!(q.scales, [1.0 / 128.0, 1.0 / 256.0, 1.0]);
    }

    #[test]
    fn conv_weights_become_int8_behind_a_dequantize_node() {
        let w = [127.0f32 / 128.0, -63.5 / 128.0, 1.0, 0.125];
        let mut g = GraphProto {
            node: vec![NodeProto {
                name: "c".into(),
                op_type: "Conv".into(),
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            initializer: vec![raw_tensor(
                "w",
                &[2, 2, 1, 1],
                DataType::Float,
                w.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )],
            ..Default::default()
        };
        let s = quantize_conv_weights(&mut g).unwrap();
        assert_eq!((s.convs, s.values), (1, 4));
        let names: Vec<_> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["w.int8", "w.scale", "w.zero_point"]);
        assert_eq!(g.node[0].op_type, "DequantizeLinear");
        assert_eq!(g.node[0].output, ["w"]);
        assert_eq!(g.node[1].op_type, "Conv");
        // Scale 1/128: 127, −63.5 → −64 (ties to even); scale 1/127: 127, 15.875 → 16.
        let levels: Vec<i8> = g.initializer[0].raw_data.iter().map(|&b| b as i8).collect();
        assert_eq!(levels, [127, -64, 127, 16]);
        // The tie costs most: |−63.5/128 − (−64/128)| = 0.5/128 (vs |0.125 − 16/127| ≈ 0.00098).
        assert_eq!(s.max_abs_error, 0.5 / 128.0);
        // A second pass changes nothing.
        assert_eq!(quantize_conv_weights(&mut g).unwrap().convs, 0);
    }
}
