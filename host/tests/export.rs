//! `host export` against tract: every export loads, optimizes and runs in tract, and its logits
//! match the host (burn) model's on real fundus samples and synthetic images within 1e-4 — B0
//! with random BatchNorm statistics (so the folding is exercised), B3 at 96 px with the MLP
//! head, Lite0 (random, symmetric padding; and with the ImageNet weights when cached), and a
//! run trained by `host train`. Also the metadata and the `features` output.
use std::path::{Path, PathBuf};

use prost::Message;
use serde_json::Value;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use crate::cli::{host, ok, s, synthetic, tiny_run, tiny_train_args};
use crate::support::{sample, weights};

/// The parity bound on every logit.
const TOL: f32 = 1e-4;

/// Real fundus photographs from the sample cache (none, loudly, when it is cold).
fn real() -> Vec<PathBuf> {
    ["DRIVE_22.png", "HRF_07_dr.jpg"]
        .iter()
        .filter_map(|n| sample(n))
        .collect()
}

/// reference.json written by `host export --reference`.
struct Reference {
    shape: Vec<usize>,
    input: Vec<f32>,
    logits: Vec<f32>,
    classes: usize,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn read_reference(dir: &Path) -> Reference {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let shape: Vec<usize> = v["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    Reference {
        shape,
        input: floats(&v["input"]),
        logits: floats(&v["logits"]),
        classes: v["logits_shape"][1].as_u64().unwrap() as usize,
    }
}

/// One output of tract: shape and row-major values.
struct Out {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Loads `onnx` in tract, optimizes it and runs it on the reference inputs: every output.
fn tract_outputs(onnx: &Path, r: &Reference) -> Vec<Out> {
    let model = tract_onnx::onnx()
        .model_for_path(onnx)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x = Tensor::from_shape(&r.shape, &r.input).unwrap();
    model
        .run(tvec!(x.into()))
        .unwrap()
        .into_iter()
        .map(|v| {
            let t = v.into_tensor();
            let view = t.to_plain_array_view::<f32>().unwrap();
            Out {
                shape: view.shape().to_vec(),
                values: view.iter().copied().collect(),
            }
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn proto(onnx: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(onnx).unwrap().as_slice()).unwrap()
}

fn metadata(m: &ModelProto) -> std::collections::BTreeMap<String, String> {
    m.metadata_props
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

fn initializer(m: &ModelProto, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = m
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"));
    let values = t
        .raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.dims.iter().map(|&d| d as usize).collect(), values)
}

/// Exports with `args` plus reference images, runs tract, asserts parity; returns the ONNX
/// path, the reference and tract's outputs.
fn export_and_compare(
    dir: &Path,
    name: &str,
    args: &[&str],
    images: &[PathBuf],
) -> (PathBuf, Reference, Vec<Out>) {
    let onnx = dir.join(format!("{name}.onnx"));
    let refdir = dir.join(format!("{name}-ref"));
    let mut all: Vec<String> = ["export", "--out", s(&onnx), "--reference", s(&refdir)]
        .iter()
        .map(|a| a.to_string())
        .collect();
    all.extend(args.iter().map(|a| a.to_string()));
    all.push("--images".into());
    all.extend(images.iter().map(|p| s(p).to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let stdout = ok(&host(&all));
    assert!(stdout.contains("opset 13"), "{stdout}");
    let r = read_reference(&refdir);
    assert_eq!(r.shape[0], images.len());
    let out = tract_outputs(&onnx, &r);
    let logits = &out[0].values;
    let diff = max_abs_diff(logits, &r.logits);
    let spread = r.logits.iter().map(|v| v.abs()).fold(0.0, f32::max);
    eprintln!(
        "{name}: max |tract − burn| = {diff:e} over {} logits (max |logit| {spread})",
        logits.len()
    );
    assert!(diff <= TOL, "{name}: tract vs burn logits differ by {diff}");
    // Not degenerate: non-zero logits that depend on the image (random networks are nearly
    // input-insensitive, so the bound is small, but above float noise).
    assert!(spread > 0.1, "{name}: logits {:?}", r.logits);
    let between = max_abs_diff(&r.logits[..r.classes], &r.logits[r.classes..2 * r.classes]);
    assert!(
        between > 1e-5,
        "{name}: the first two images give the same logits"
    );
    (onnx, r, out)
}

fn images(dir: &Path) -> Vec<PathBuf> {
    let mut v = real();
    v.extend(synthetic(dir, 2));
    v
}

/// B0 at 64 px with random BN statistics and affine: parity, metadata, and
/// `GAP(features) · W + b == logits` with W and b read from the file's initializers.
#[test]
fn b0_with_random_batchnorm_matches_tract_and_carries_metadata_and_features() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let args = [
        "--variant",
        "b0",
        "--num-classes",
        "5",
        "--img-size",
        "64",
        "--seed",
        "1",
        "--randomize-bn",
        "--task",
        "grade",
    ];
    let (onnx, r, out) = export_and_compare(dir.path(), "b0", &args, &imgs);

    let m = proto(&onnx);
    assert_eq!(m.opset_import[0].version, 13);
    let meta = metadata(&m);
    assert_eq!(meta["variant"], "b0");
    assert_eq!(meta["task"], "grade");
    assert_eq!(meta["head"], "linear");
    assert_eq!(meta["class_names"], r#"["0","1","2","3","4"]"#);
    let pre: shared::preprocess::PreprocessConfig =
        serde_json::from_str(&meta["preprocess"]).unwrap();
    assert_eq!(pre.size, 64);
    assert_eq!(meta["preprocess_sha256"], pre.sha256_hex());
    assert_eq!(meta["fovea_version"], env!("CARGO_PKG_VERSION"));
    let graph = m.graph.as_ref().unwrap();
    let names =
        |v: &[tract_onnx::pb::ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&graph.input), ["input"]);
    assert_eq!(names(&graph.output), ["logits", "features"]);
    // BatchNorm is folded away: no BatchNormalization node, every conv has a bias.
    assert!(graph.node.iter().all(|n| n.op_type != "BatchNormalization"));
    assert!(
        graph
            .node
            .iter()
            .filter(|n| n.op_type == "Conv")
            .all(|n| n.input.len() == 3)
    );

    // features: [n, 1280, 2, 2] at 64 px; its pooled dot product with the head is the logits.
    let f = &out[1];
    let n = r.shape[0];
    assert_eq!(f.shape, [n, 1280, 2, 2]);
    let f = &f.values;
    let (wd, w) = initializer(&m, "classifier.output.weight");
    let (_, b) = initializer(&m, "classifier.output.bias");
    assert_eq!(wd, [1280, 5]);
    for i in 0..n {
        for k in 0..5 {
            let mut z = f64::from(b[k]);
            for c in 0..1280 {
                let cell = &f[(i * 1280 + c) * 4..(i * 1280 + c + 1) * 4];
                let gap = cell.iter().map(|&v| f64::from(v)).sum::<f64>() / 4.0;
                z += gap * f64::from(w[c * 5 + k]);
            }
            let got = out[0].values[i * 5 + k];
            assert!(
                (z as f32 - got).abs() < TOL,
                "image {i} class {k}: {z} vs {got}"
            );
        }
    }
}

/// A larger variant at a small resolution, with the seed model's MLP head (no `features`).
#[test]
fn b3_at_96_px_with_the_mlp_head_matches_tract() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let args = [
        "--variant",
        "b3",
        "--num-classes",
        "2",
        "--img-size",
        "96",
        "--seed",
        "2",
        "--randomize-bn",
        "--head",
        "mlp",
        "--task",
        "referable",
    ];
    let (onnx, _, out) = export_and_compare(dir.path(), "b3", &args, &imgs);
    assert_eq!(out.len(), 1);
    let meta = metadata(&proto(&onnx));
    assert_eq!(meta["head"], "mlp");
    assert_eq!(meta["variant"], "b3");
}

/// Lite0 (ReLU6 as Clip, no SE) with random BN and symmetric padding.
#[test]
fn lite0_random_with_symmetric_padding_matches_tract() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let args = [
        "--variant",
        "lite0",
        "--num-classes",
        "5",
        "--img-size",
        "64",
        "--seed",
        "3",
        "--randomize-bn",
        "--symmetric-padding",
    ];
    let (onnx, _, _) = export_and_compare(dir.path(), "lite0", &args, &imgs);
    let m = proto(&onnx);
    let ops: std::collections::BTreeSet<_> = m
        .graph
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect();
    assert!(ops.contains("Clip") && !ops.contains("Sigmoid"), "{ops:?}");
}

/// Lite0 with its ImageNet weights (1000 classes) at 224 px.
#[test]
fn lite0_imagenet_weights_match_tract() {
    let Some(w) = weights("efficientnet-lite0.pth") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path());
    let args = [
        "--variant",
        "lite0",
        "--num-classes",
        "1000",
        "--img-size",
        "224",
        "--pretrained",
        s(&w),
    ];
    export_and_compare(dir.path(), "lite0-imagenet", &args, &imgs);
}

/// `host train` → `host export --run`: the run's classes, task and preprocessing reach the
/// metadata, and the trained weights (real BN statistics) match tract.
#[test]
fn a_trained_run_exports_with_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    tiny_run(&run, "40", "4");
    let imgs = images(dir.path());
    let onnx_default = run.join("model.onnx");
    let refdir = dir.path().join("run-ref");
    let mut args = vec![
        "export",
        "--run",
        s(&run),
        "--reference",
        s(&refdir),
        "--images",
    ];
    args.extend(imgs.iter().map(|p| s(p)));
    ok(&host(&args));
    let r = read_reference(&refdir);
    let out = tract_outputs(&onnx_default, &r);
    let diff = max_abs_diff(&out[0].values, &r.logits);
    assert!(diff <= TOL, "trained run: {diff}");
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let meta = metadata(&proto(&onnx_default));
    assert_eq!(meta["variant"], "lite0");
    assert_eq!(meta["task"], cfg["task"].as_str().unwrap());
    assert_eq!(meta["class_names"], cfg["classes"].to_string());
    let pre: shared::preprocess::PreprocessConfig =
        serde_json::from_value(cfg["preprocess"].clone()).unwrap();
    assert_eq!(meta["preprocess"], pre.canonical_json());
    assert_eq!(meta["preprocess_sha256"], pre.sha256_hex());
}

/// Bad input: a missing run directory and an image that is not one are named in the error.
#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = host(&["export", "--run", s(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope/config.json"), "{err}");

    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    let o = host(&[
        "export",
        "--variant",
        "lite0",
        "--img-size",
        "32",
        "--out",
        s(&dir.path().join("m.onnx")),
        "--reference",
        s(&dir.path().join("r")),
        "--images",
        s(&junk),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("junk.png"), "{err}");
    let o = host(&["export", "--variant", "b0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out"));
}

/// `host train --pretrained X.onnx` takes a fovea export's weights (folded BN undone) and
/// reports them like a `.pth` import.
#[test]
fn train_accepts_a_fovea_onnx_export_as_pretrained_weights() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("lite0.onnx");
    ok(&host(&[
        "export",
        "--variant",
        "lite0",
        "--num-classes",
        "5",
        "--img-size",
        "64",
        "--seed",
        "6",
        "--randomize-bn",
        "--out",
        s(&onnx),
    ]));
    let run = dir.path().join("run");
    let o = host(&tiny_train_args(
        &run,
        "40",
        "4",
        &["--pretrained", s(&onnx)],
    ));
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("0 unexpected []; head imported"), "{err}");
    // A file that fits no variant is refused with the names that are missing.
    let o = host(&[
        "train",
        "--variant",
        "b0",
        "--img-size",
        "64",
        "--synth-n",
        "40",
        "--epochs",
        "1",
        "--pretrained",
        s(&onnx),
        "--out",
        s(&dir.path().join("run-b0")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not fit b0") && err.contains("se.reduce.weight"),
        "{err}"
    );
}
