//! Activation quantization (`--mode compute`): each Conv's input is rounded to uint8 through a
//! `QuantizeLinear` → `DequantizeLinear` pair (the QDQ form onnxruntime writes and runs with
//! integer kernels), with one asymmetric scale and zero point per tensor from calibration.
//!
//! For a range `[lo, hi]` (containing 0): scale = (hi − lo) / 255, zero point =
//! round(−lo / scale) clamped to 0…255 — onnxruntime's `compute_scale_zp` for uint8. A tensor
//! feeding several convolutions gets one pair; other consumers (residual adds, the graph
//! outputs) keep the float tensor.
use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, ensure};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, NodeProto};

use super::observer::Range;
use shared::onnx::initializer::raw_tensor;

/// uint8 quantization parameters of one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Step between levels.
    pub scale: f32,
    /// The level that stands for 0.0.
    pub zero_point: u8,
}

impl QParams {
    /// The parameters for `range` (see the module documentation); an empty range (all values
    /// 0) gets scale 1.
    pub fn from_range(range: Range) -> Self {
        let (lo, hi) = (range.lo.min(0.0), range.hi.max(0.0));
        let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
        let zero_point = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as u8;
        QParams { scale, zero_point }
    }

    /// `x` quantized and dequantized, as the QuantizeLinear → DequantizeLinear pair computes it.
    #[cfg(test)]
    pub fn fake_quantize(&self, x: f32) -> f32 {
        let q = ((x / self.scale).round_ties_even() + self.zero_point as f32).clamp(0.0, 255.0);
        (q - self.zero_point as f32) * self.scale
    }
}

/// The distinct input tensors of the graph's Conv nodes, in first-use order.
pub fn conv_inputs(graph: &GraphProto) -> Vec<String> {
    let mut seen = HashSet::new();
    graph
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .filter_map(|n| n.input.first())
        .filter(|x| seen.insert(x.as_str()))
        .cloned()
        .collect()
}

/// Inserts a Q/DQ pair in front of every Conv input named in `params`, just before the first
/// Conv that reads it (so node order stays topological), and points the convs at it.
pub fn insert_qdq(
    graph: &mut GraphProto,
    params: &BTreeMap<String, QParams>,
) -> anyhow::Result<()> {
    let mut nodes = Vec::with_capacity(graph.node.len() + 2 * params.len());
    let mut done = HashSet::new();
    for mut node in std::mem::take(&mut graph.node) {
        if node.op_type == "Conv" {
            let x = node
                .input
                .first()
                .context("a Conv node without inputs")?
                .clone();
            if let Some(p) = params.get(&x) {
                let (sc, zp, q, dq) = (
                    format!("{x}.act_scale"),
                    format!("{x}.act_zero_point"),
                    format!("{x}.uint8"),
                    format!("{x}.fake_quantized"),
                );
                if done.insert(x.clone()) {
                    graph.initializer.push(raw_tensor(
                        &sc,
                        &[],
                        DataType::Float,
                        p.scale.to_le_bytes().to_vec(),
                    ));
                    graph.initializer.push(raw_tensor(
                        &zp,
                        &[],
                        DataType::Uint8,
                        vec![p.zero_point],
                    ));
                    for (op, input, output) in
                        [("QuantizeLinear", &x, &q), ("DequantizeLinear", &q, &dq)]
                    {
                        nodes.push(NodeProto {
                            name: format!("{output}.node"),
                            op_type: op.to_owned(),
                            input: vec![input.clone(), sc.clone(), zp.clone()],
                            output: vec![output.clone()],
                            ..Default::default()
                        });
                    }
                }
                node.input[0] = dq;
            }
        }
        nodes.push(node);
    }
    let missing: Vec<&String> = params.keys().filter(|k| !done.contains(*k)).collect();
    ensure!(missing.is_empty(), "no Conv reads {missing:?}");
    graph.node = nodes;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// onnxruntime.quantization.quant_utils.compute_scale_zp(-1.0, 3.0, 0, 255) gives scale
    /// 4/255 and zero point round(1 / (4/255)) = round(63.75) = 64.
    #[test]
    fn scale_and_zero_point_by_hand() {
        let p = QParams::from_range(Range { lo: -1.0, hi: 3.0 });
        assert_eq!(p.scale, 4.0 / 255.0);
        assert_eq!(p.zero_point, 64);
        // A ReLU6 output: [0, 6] → scale 6/255, zero point 0.
        let r = QParams::from_range(Range { lo: 0.0, hi: 6.0 });
        assert_eq!((r.scale, r.zero_point), (6.0 / 255.0, 0));
        // All zeros: scale 1.
        assert_eq!(QParams::from_range(Range { lo: 0.0, hi: 0.0 }).scale, 1.0);
        // 0.99 / (6/255) = 42.075 → level 42 → 42 · 6/255 = 0.98823…; above the range
        // saturates at level 255 = 6.0, below it at level 0.
        assert!((r.fake_quantize(0.99) - 42.0 * 6.0 / 255.0).abs() < 1e-7);
        assert_eq!(r.fake_quantize(9.0), 6.0);
        assert_eq!(r.fake_quantize(-1.0), 0.0);
    }

    #[test]
    fn one_pair_per_tensor_before_its_first_conv() {
        let conv = |name: &str, x: &str| NodeProto {
            name: name.into(),
            op_type: "Conv".into(),
            input: vec![x.into(), format!("{name}.w")],
            output: vec![name.into()],
            ..Default::default()
        };
        let relu = NodeProto {
            name: "r".into(),
            op_type: "Relu".into(),
            input: vec!["a".into()],
            output: vec!["r".into()],
            ..Default::default()
        };
        let mut g = GraphProto {
            node: vec![conv("a", "input"), relu, conv("b", "r"), conv("c", "r")],
            ..Default::default()
        };
        assert_eq!(conv_inputs(&g), ["input", "r"]);
        let p = QParams::from_range(Range { lo: 0.0, hi: 1.0 });
        let params: BTreeMap<String, QParams> =
            [("r".to_string(), p), ("input".to_string(), p)].into();
        insert_qdq(&mut g, &params).unwrap();
        let ops: Vec<_> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "QuantizeLinear",
                "DequantizeLinear",
                "Conv",
                "Relu",
                "QuantizeLinear",
                "DequantizeLinear",
                "Conv",
                "Conv"
            ]
        );
        assert_eq!(g.node[6].input[0], "r.fake_quantized");
        assert_eq!(g.node[7].input[0], "r.fake_quantized");
        assert_eq!(g.initializer.len(), 4);
        let mut bad = BTreeMap::new();
        bad.insert("nowhere".to_string(), p);
        assert!(insert_qdq(&mut g, &bad).is_err());
    }
}
