//! A device folder holding a signed bundle around a tiny hand-built ONNX model whose outputs
//! can be computed by hand: `input` → GlobalAveragePool → Flatten → Gemm(W, b) → `logits`, so
//! `logits = mean_c(input) · W + b`.
use std::path::{Path, PathBuf};

use prost::Message;
use shared::bundle::{
    FORMAT_VERSION, Manifest, OperatingThreshold, SigningKey, sha256, write_bundle,
};
use shared::device::{DeviceLayout, install};
use shared::preprocess::PreprocessConfig;
use shared::quality::QualityConfig;
use shared::task::Task;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

/// Gemm weights, `[3 channels][2 classes]`, and bias.
pub const W: [[f32; 2]; 3] = [[1.5, -1.0], [-2.0, 0.5], [0.25, 1.0]];
/// Bias of the two logits.
pub const B: [f32; 2] = [0.0, 0.1];
/// Model input side.
pub const SIDE: u32 = 64;
/// Operating threshold on P(referable).
pub const THRESHOLD: f32 = 0.5;

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&v| Dimension {
            value: Some(dimension::Value::DimValue(v)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ONNX bytes of the tiny model.
pub fn model_bytes() -> Vec<u8> {
    build(false)
}

/// The tiny model with a `features` output, as `host export` writes for linear heads:
/// `input` → 1×1 Conv (`W` transposed: channel k of the features = Σ_c W[c][k]·input[c])
/// → `features` → GlobalAveragePool → Flatten → Gemm(identity, `B`) → `logits`. Its logits
/// equal [`model_bytes`]'s.
pub fn model_bytes_with_features() -> Vec<u8> {
    build(true)
}

fn build(features: bool) -> Vec<u8> {
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        op_type: op.into(),
        ..Default::default()
    };
    let tensor = |name: &str, dims: Vec<i64>, data: Vec<f32>| TensorProto {
        name: name.into(),
        dims,
        data_type: 1,
        float_data: data,
        ..Default::default()
    };
    let s = i64::from(SIDE);
    let graph = if features {
        // Conv weight [out 2, in 3, 1, 1]: out k takes W[c][k] from input channel c.
        let conv: Vec<f32> = (0..2).flat_map(|k| (0..3).map(move |c| W[c][k])).collect();
        GraphProto {
            name: "tiny-features".into(),
            node: vec![
                node("Conv", &["input", "conv.weight"], "features"),
                node("GlobalAveragePool", &["features"], "gap"),
                node("Flatten", &["gap"], "flat"),
                node(
                    "Gemm",
                    &["flat", "classifier.output.weight", "classifier.output.bias"],
                    "logits",
                ),
            ],
            initializer: vec![
                tensor("conv.weight", vec![2, 3, 1, 1], conv),
                tensor(
                    "classifier.output.weight",
                    vec![2, 2],
                    vec![1.0, 0.0, 0.0, 1.0],
                ),
                tensor("classifier.output.bias", vec![2], B.to_vec()),
            ],
            input: vec![value_info("input", &[1, 3, s, s])],
            output: vec![
                value_info("logits", &[1, 2]),
                value_info("features", &[1, 2, s, s]),
            ],
            ..Default::default()
        }
    } else {
        GraphProto {
            name: "tiny".into(),
            node: vec![
                node("GlobalAveragePool", &["input"], "gap"),
                node("Flatten", &["gap"], "flat"),
                node("Gemm", &["flat", "w", "b"], "logits"),
            ],
            initializer: vec![
                tensor("w", vec![3, 2], W.iter().flatten().copied().collect()),
                tensor("b", vec![2], B.to_vec()),
            ],
            input: vec![value_info("input", &[1, 3, s, s])],
            output: vec![value_info("logits", &[1, 2])],
            ..Default::default()
        }
    };
    ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The preprocessing in the bundle.
pub fn preprocess() -> PreprocessConfig {
    PreprocessConfig {
        size: SIDE,
        ..PreprocessConfig::default()
    }
}

/// The manifest of the tiny referable model.
pub fn manifest(model: &[u8]) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        variant: "tiny-gap-gemm".into(),
        classes: vec!["not_referable".into(), "referable".into()],
        task: Task::Referable,
        preprocess: preprocess(),
        quality: QualityConfig::default(),
        operating_thresholds: vec![OperatingThreshold {
            name: "referable".into(),
            positive_classes: vec![1],
            threshold: THRESHOLD,
            target_sensitivity: None,
        }],
        train_summary_json: "{}".into(),
        model_format: "onnx".into(),
        model_sha256: sha256(model),
        created_unix: 1_767_225_600,
        tool_version: "edge tests".into(),
    }
}

/// The signing key of the tests.
pub fn key() -> SigningKey {
    SigningKey::from_seed([7; 32])
}

/// Writes the signed bundle to `path`.
pub fn write_bundle_file(path: &Path) {
    write_bundle_of(path, &model_bytes());
}

/// Writes a signed bundle around `model` to `path`.
pub fn write_bundle_of(path: &Path, model: &[u8]) {
    let model = model.to_vec();
    std::fs::write(
        path,
        write_bundle(&manifest(&model), &model, &key()).unwrap(),
    )
    .unwrap();
}

/// A device root under `dir` with the bundle installed and the key trusted.
pub fn device(dir: &Path) -> PathBuf {
    let root = dir.join("device");
    let bundle = dir.join("tiny.fovea");
    write_bundle_file(&bundle);
    install(&DeviceLayout::new(&root), &bundle, &[key().verifying_key()]).unwrap();
    std::fs::write(root.join("device-id"), "clinic-7-board-2\n").unwrap();
    root
}

/// P(referable) computed by hand from the preprocessed tensor of `image`.
pub fn expected_probabilities(image: &Path) -> [f32; 2] {
    let decoded = shared::decode::decode_file(image).unwrap();
    let x = shared::preprocess::preprocess(&decoded.image, &preprocess()).unwrap();
    let n = (SIDE * SIDE) as usize;
    let mean: Vec<f64> = (0..3)
        .map(|c| {
            x[c * n..(c + 1) * n]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / n as f64
        })
        .collect();
    let logit =
        |k: usize| (0..3).map(|c| mean[c] * f64::from(W[c][k])).sum::<f64>() + f64::from(B[k]);
    let (z0, z1) = (logit(0), logit(1));
    let p1 = 1.0 / (1.0 + (z0 - z1).exp());
    [(1.0 - p1) as f32, p1 as f32]
}
