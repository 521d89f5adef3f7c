//! `edge bench`: a tiny hand-built ONNX model (Conv → depthwise Conv → GlobalAveragePool →
//! Flatten) timed by tract.
use std::path::Path;
use std::process::Command;

use prost::Message;
use serde_json::Value;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

const FLOAT: i32 = 1;

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("s".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `input` 1×3×side×side (symbolic side when `None`) → Conv 3→4 k3 → GAP → `logits` 1×4.
fn write_model(path: &Path, side: Option<i64>) {
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        op_type: op.into(),
        ..Default::default()
    };
    let weight = TensorProto {
        name: "w".into(),
        dims: vec![4, 3, 3, 3],
        data_type: FLOAT,
        float_data: (0..108).map(|i| (i as f32 - 54.0) / 100.0).collect(),
        ..Default::default()
    };
    // A depthwise 3×3 conv (group 4, "same" padding), which the loader gives fovea's kernel.
    let depthwise_weight = TensorProto {
        name: "dw".into(),
        dims: vec![4, 1, 3, 3],
        data_type: FLOAT,
        float_data: (0..36).map(|i| (i as f32 - 18.0) / 50.0).collect(),
        ..Default::default()
    };
    let mut depthwise = node("Conv", &["conv", "dw"], "depthwise");
    depthwise.attribute = vec![
        AttributeProto {
            name: "group".into(),
            i: 4,
            r#type: 2, // INT
            ..Default::default()
        },
        AttributeProto {
            name: "pads".into(),
            ints: vec![1, 1, 1, 1],
            r#type: 7, // INTS
            ..Default::default()
        },
    ];
    let graph = GraphProto {
        name: "tiny".into(),
        node: vec![
            node("Conv", &["input", "w"], "conv"),
            depthwise,
            node("GlobalAveragePool", &["depthwise"], "gap"),
            node("Flatten", &["gap"], "logits"),
        ],
        initializer: vec![weight, depthwise_weight],
        input: vec![value_info("input", &[Some(1), Some(3), side, side])],
        output: vec![value_info("logits", &[Some(1), Some(4)])],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn times_a_model_and_reports_load_and_rss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.onnx");
    write_model(&path, Some(32));
    for threads in ["1", "2"] {
        let (code, stdout, stderr) =
            bench(&[path.to_str().unwrap(), "--threads", threads, "--runs", "5"]);
        assert_eq!(code, 0, "{stderr}");
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["input"], serde_json::json!([1, 3, 32, 32]));
        assert_eq!(v["outputs"], 4, "Conv 3→4 then GAP: four logits");
        assert_eq!(v["threads"], threads.parse::<u64>().unwrap());
        assert_eq!(v["runs"], 5);
        let (min, median) = (
            v["min_ms"].as_f64().unwrap(),
            v["median_ms"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= median, "{v}");
        assert!(v["load_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(
            v["fovea_depthwise"], 1,
            "the depthwise conv runs fovea's kernel: {v}"
        );
        assert_eq!(v["fovea_dense"], 1, "so does the 3×3 conv 3→4: {v}");
        // The int8 kernel this CPU would run a `compute` model's 1×1 convs with, read from the
        // CPU's features here, independently of shared's detection.
        #[cfg(target_arch = "x86_64")]
        let kernel = if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            "vnni"
        } else if std::arch::is_x86_feature_detected!("avx2") {
            "avx2"
        } else {
            "portable"
        };
        #[cfg(target_arch = "aarch64")]
        let kernel = if std::arch::is_aarch64_feature_detected!("dotprod") {
            "sdot"
        } else {
            "neon"
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let kernel = "portable";
        assert_eq!(v["int8_kernel"], kernel, "{v}");
        // The process maps at least the binary and tract's plan: more than one MiB.
        assert!(v["peak_rss_mb"].as_f64().unwrap() > 1.0, "{v}");
    }
}

#[test]
fn symbolic_side_needs_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sym.onnx");
    write_model(&path, None);
    let (code, _, stderr) = bench(&[path.to_str().unwrap(), "--runs", "1"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("symbolic") && stderr.contains("sym.onnx"),
        "{stderr}"
    );
    let (code, stdout, stderr) = bench(&[path.to_str().unwrap(), "--runs", "1", "--size", "16"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["input"], serde_json::json!([1, 3, 16, 16]));
}

#[test]
fn names_a_file_that_is_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.onnx");
    std::fs::write(&path, b"not a protobuf at all").unwrap();
    let (code, stdout, stderr) = bench(&[path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("garbage.onnx"), "{stderr}");
}
