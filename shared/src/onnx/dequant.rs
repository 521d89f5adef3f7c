//! Constant weight dequantization done before tract sees a model. `host quantize --mode
//! weights` ships each Conv weight as int8 levels + scale + zero point behind a
//! `DequantizeLinear` node; tract folds such a node into an f32 constant while optimizing, but
//! slowly (it made loading a B0 bundle 0.35 s slower than its fp32 form, docs/PERFORMANCE.md).
//! The device's loader and the host's runner (quantization gate, `host eval`) call this first.
//! Here every `DequantizeLinear` whose inputs are all initializers becomes the f32 initializer it
//! computes, `y = (x − zero_point) · scale` per the ONNX operator (per tensor, or per slice
//! along `axis`), and the initializers only those nodes read are dropped. Nodes this does not
//! recognise (block quantization, non-constant inputs, other element types) are left for tract.
use std::collections::{HashMap, HashSet};

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

use super::OnnxError;
use super::initializer::{floats, levels, raw_tensor};

/// A [`OnnxError::Dequantize`] for `node`.
fn bad(node: &NodeProto, problem: String) -> OnnxError {
    let name = if node.name.is_empty() {
        node.output.first().cloned().unwrap_or_default()
    } else {
        node.name.clone()
    };
    OnnxError::Dequantize {
        node: name,
        problem,
    }
}

/// The f32 tensor a constant `DequantizeLinear` node computes, or `None` when the node is not
/// one this folds.
fn dequantize(
    node: &NodeProto,
    init: &HashMap<&str, &TensorProto>,
) -> Result<Option<TensorProto>, OnnxError> {
    let mut axis = 1i64;
    for a in &node.attribute {
        match a.name.as_str() {
            "axis" => axis = a.i,
            // Blocked quantization (opset 21) and anything newer: tract's business.
            _ => return Ok(None),
        }
    }
    let get = |k: usize| {
        node.input
            .get(k)
            .and_then(|n| init.get(n.as_str()).copied())
    };
    let (Some(x), Some(scale)) = (get(0), get(1)) else {
        return Ok(None);
    };
    let zp = match node.input.get(2).filter(|n| !n.is_empty()) {
        Some(_) => match get(2) {
            Some(z) => Some(z),
            None => return Ok(None),
        },
        None => None,
    };
    let (Some(q), Some(s)) = (levels(x)?, floats(scale)?) else {
        return Ok(None);
    };
    let z = match zp {
        Some(z) => match levels(z)? {
            Some(z) => z,
            None => return Ok(None),
        },
        None => vec![0; s.len()],
    };
    if z.len() != s.len() {
        let problem = format!("{} scales but {} zero points", s.len(), z.len());
        return Err(bad(node, problem));
    }
    let dims: Vec<usize> = x.dims.iter().map(|&d| d.max(0) as usize).collect();
    // Per tensor: one scale for every value; per axis: slice `c` along `axis` uses scale `c`.
    let (channels, inner) = if s.len() == 1 && scale.dims.iter().all(|&d| d == 1) {
        (1, q.len())
    } else {
        let rank = dims.len() as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&a) {
            return Err(bad(node, format!("axis {axis} of a rank-{rank} tensor")));
        }
        let a = a as usize;
        if dims[a] != s.len() {
            let problem = format!("{} scales for axis {a} of length {}", s.len(), dims[a]);
            return Err(bad(node, problem));
        }
        (dims[a], dims[a + 1..].iter().product())
    };
    let output = node
        .output
        .first()
        .ok_or_else(|| bad(node, "no output".to_owned()))?;
    // Block by block of `inner` values (one scale and zero point each), straight into the
    // little-endian bytes: a division per value for its channel and an f32 `Vec` re-collected
    // byte by byte made this 32–38 ms of B0's 4.3 M weights at load (timed phase by phase with
    // a throwaway program); `edge bench`'s B0 load 222–301 → 212–235 ms (docs/PERFORMANCE.md).
    let inner = inner.max(1);
    let mut raw = Vec::with_capacity(q.len() * 4);
    for (k, block) in q.chunks(inner).enumerate() {
        let c = if channels == 1 { 0 } else { k % channels };
        let (zc, sc) = (z[c], s[c]);
        for &v in block {
            // (x − zp) is an exact integer, so this is the one rounding ONNX's reference makes.
            raw.extend_from_slice(&((v - zc) as f32 * sc).to_le_bytes());
        }
    }
    Ok(Some(raw_tensor(output, &x.dims, DataType::Float, raw)))
}

/// Folds every constant `DequantizeLinear` of `graph` into an f32 initializer (see the module
/// documentation); returns how many it folded.
pub fn fold_constant_dequantize(graph: &mut GraphProto) -> Result<usize, OnnxError> {
    let mut folded = Vec::new();
    let mut consumed = HashSet::new();
    let mut keep = Vec::with_capacity(graph.node.len());
    {
        let init: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        for node in &graph.node {
            let done = if node.op_type == "DequantizeLinear" && node.domain.is_empty() {
                dequantize(node, &init)?
            } else {
                None
            };
            match done {
                Some(t) => {
                    folded.push(t);
                    consumed.extend(node.input.iter().cloned());
                }
                None => keep.push(node.clone()),
            }
        }
    }
    let n = folded.len();
    if n == 0 {
        return Ok(0);
    }
    graph.node = keep;
    // The folded nodes' own initializers (int8 levels, scales, zero points) go unless something
    // else still reads them: a remaining node, a graph output, or a graph input (IR < 4 lists
    // initializers as inputs too). Other initializers are not this function's business.
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .chain(graph.input.iter().map(|i| i.name.as_str()))
        .collect();
    graph
        .initializer
        .retain(|t| !consumed.contains(&t.name) || used.contains(t.name.as_str()));
    graph.initializer.extend(folded);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::AttributeProto;
    use tract_onnx::pb::attribute_proto::AttributeType;

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn dq(inputs: &[&str], output: &str, axis: Option<i64>) -> NodeProto {
        NodeProto {
            op_type: "DequantizeLinear".to_owned(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_owned()],
            attribute: axis
                .map(|a| AttributeProto {
                    name: "axis".to_owned(),
                    i: a,
                    r#type: AttributeType::Int as i32,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    /// Per-axis int8 on axis 0, per-tensor uint8, and per-axis int8 on a middle axis (the
    /// channel repeats for every outer index), by hand: w[c, k] = (q − zp[c]) · s[c].
    #[test]
    fn folds_per_axis_and_per_tensor_by_hand() {
        let mut g = GraphProto {
            node: vec![
                dq(&["w.q", "w.s", "w.z"], "w", Some(0)),
                dq(&["u.q", "u.s", "u.z"], "u", None),
                dq(&["v.q", "v.s", "v.z"], "v", Some(1)),
                NodeProto {
                    op_type: "Conv".to_owned(),
                    input: vec!["x".into(), "w".into(), "u".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                },
            ],
            initializer: vec![
                // [2, 3] levels: channel 0 = [−127, 0, 5], channel 1 = [1, 2, 127].
                raw_tensor(
                    "w.q",
                    &[2, 3],
                    DataType::Int8,
                    [-127i8, 0, 5, 1, 2, 127].map(|v| v as u8).to_vec(),
                ),
                raw_tensor("w.s", &[2], DataType::Float, f32s(&[0.5, 0.25])),
                raw_tensor("w.z", &[2], DataType::Int8, vec![0, 1]),
                raw_tensor("u.q", &[3], DataType::Uint8, vec![0, 128, 255]),
                raw_tensor("u.s", &[], DataType::Float, f32s(&[0.1])),
                raw_tensor("u.z", &[], DataType::Uint8, vec![128]),
                // [2, 2, 2] levels 1..=8, scales and zero points along axis 1.
                raw_tensor("v.q", &[2, 2, 2], DataType::Int8, (1..=8).collect()),
                raw_tensor("v.s", &[2], DataType::Float, f32s(&[0.5, 2.0])),
                raw_tensor("v.z", &[2], DataType::Int8, vec![1, 0]),
            ],
            ..Default::default()
        };
        // An initializer no node reads stays (not this fold's); a folded node's scale that is
        // also a graph input (IR < 4 style) stays too.
        g.initializer
            .push(raw_tensor("spare", &[1], DataType::Float, f32s(&[7.0])));
        g.input.push(tract_onnx::pb::ValueInfoProto {
            name: "u.s".into(),
            ..Default::default()
        });
        assert_eq!(fold_constant_dequantize(&mut g).unwrap(), 3);
        assert_eq!(g.node.len(), 1, "only the Conv is left");
        let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["u.s", "spare", "w", "u", "v"],
            "the folded nodes' other initializers are gone"
        );
        let w = floats(&g.initializer[2]).unwrap().unwrap();
        // (−127 − 0)·0.5, 0, 2.5 | (1 − 1)·0.25, 0.25, 126·0.25
        assert_eq!(w, [-63.5, 0.0, 2.5, 0.0, 0.25, 31.5]);
        assert_eq!(g.initializer[2].dims, [2, 3]);
        let u = floats(&g.initializer[3]).unwrap().unwrap();
        assert_eq!(u, [-128.0 * 0.1f32, 0.0, 127.0 * 0.1f32]);
        let v = floats(&g.initializer[4]).unwrap().unwrap();
        // [0][0]: (1, 2 − 1)·0.5 | [0][1]: (3, 4)·2 | [1][0]: (5, 6 − 1)·0.5 | [1][1]: (7, 8)·2
        assert_eq!(v, [0.0, 0.5, 6.0, 8.0, 2.0, 2.5, 14.0, 16.0]);
        assert_eq!(g.initializer[4].dims, [2, 2, 2]);
    }

    /// A node whose levels come from another node, or with an attribute this does not know,
    /// is left alone; a scale count that disagrees with the axis is an error naming the node.
    #[test]
    fn leaves_what_it_does_not_know_and_names_bad_nodes() {
        let init = vec![
            raw_tensor("q", &[2, 2], DataType::Int8, vec![1, 2, 3, 4]),
            raw_tensor("s", &[3], DataType::Float, f32s(&[1.0, 2.0, 3.0])),
        ];
        let mut g = GraphProto {
            node: vec![dq(&["dynamic", "s"], "a", Some(0))],
            initializer: init.clone(),
            ..Default::default()
        };
        assert_eq!(fold_constant_dequantize(&mut g).unwrap(), 0);
        let mut blocked = dq(&["q", "s"], "b", Some(0));
        blocked.attribute.push(AttributeProto {
            name: "block_size".to_owned(),
            i: 2,
            ..Default::default()
        });
        let mut g = GraphProto {
            node: vec![blocked],
            initializer: init.clone(),
            ..Default::default()
        };
        assert_eq!(fold_constant_dequantize(&mut g).unwrap(), 0);
        let mut bad = dq(&["q", "s"], "c", Some(0));
        bad.name = "dq7".to_owned();
        let mut g = GraphProto {
            node: vec![bad],
            initializer: init,
            ..Default::default()
        };
        let e = fold_constant_dequantize(&mut g).unwrap_err().to_string();
        assert_eq!(e, "DequantizeLinear dq7: 3 scales for axis 0 of length 2");
    }

    /// tract on a Conv with int8 weights behind a per-channel `DequantizeLinear`: the folded
    /// graph gives the same outputs as tract folding the unmodified one itself.
    #[test]
    fn folded_model_runs_like_tracts_own_folding() {
        use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
        use tract_onnx::pb::{
            ModelProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
        };
        use tract_onnx::prelude::*;

        let io = |name: &str, dims: &[i64]| ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&v| Dimension {
                                value: Some(dimension::Value::DimValue(v)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let levels: Vec<u8> = (0..4 * 3 * 9)
            .map(|i: i32| (i * 37 % 255 - 127) as i8 as u8)
            .collect();
        let conv = NodeProto {
            op_type: "Conv".to_owned(),
            input: vec!["input".into(), "w".into()],
            output: vec!["logits".into()],
            attribute: vec![AttributeProto {
                name: "pads".to_owned(),
                ints: vec![1, 1, 1, 1],
                r#type: AttributeType::Ints as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(GraphProto {
                node: vec![dq(&["w.q", "w.s", "w.z"], "w", Some(0)), conv],
                initializer: vec![
                    raw_tensor("w.q", &[4, 3, 3, 3], DataType::Int8, levels),
                    raw_tensor(
                        "w.s",
                        &[4],
                        DataType::Float,
                        f32s(&[0.01, 0.02, 0.003, 0.5]),
                    ),
                    raw_tensor("w.z", &[4], DataType::Int8, vec![0, 3, 0, 255]),
                ],
                input: vec![io("input", &[1, 3, 8, 8])],
                output: vec![io("logits", &[1, 4, 8, 8])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut graph = model.graph.clone().unwrap();
        assert_eq!(fold_constant_dequantize(&mut graph).unwrap(), 1);
        let chw: Vec<f32> = (0..3 * 64)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
            .collect();
        let run = |proto: &ModelProto| -> Vec<f32> {
            let plan = tract_onnx::onnx()
                .model_for_proto_model(proto)
                .unwrap()
                .into_optimized()
                .unwrap()
                .into_runnable()
                .unwrap();
            let x = tract_ndarray::Array4::from_shape_vec((1, 3, 8, 8), chw.clone()).unwrap();
            let out = plan.run(tvec!(Tensor::from(x).into())).unwrap();
            out[0]
                .to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect()
        };
        let theirs = run(&model);
        let mut folded = model.clone();
        folded.graph = Some(graph);
        let ours = run(&folded);
        assert_eq!(ours.len(), 4 * 64);
        // Bit for bit: tract's constant is the same (x − zp) · scale. (The same held on host
        // quantize's B0 and Lite0 `weights` files at 224 px: logits and features, 2026-11-25.)
        assert_eq!(ours, theirs);
        assert!(theirs.iter().any(|v| v.abs() > 1.0), "a non-trivial output");
    }
}
