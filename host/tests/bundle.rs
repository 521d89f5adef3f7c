//! `host keygen`, `host bundle` and `host flash` end to end on a tiny trained run: the bundle
//! verifies with the public key and carries the run's configuration and the exported model;
//! a report's threshold is taken only from a report of the same weights; a model exported for
//! another configuration, an unknown signer and an existing key are refused.

use serde_json::{Value, json};

use crate::cli::{fails, host, json, ok, s, tiny_run};
use shared::bundle::{VerifyingKey, read_bundle_file, sha256};
use shared::device::DeviceLayout;
use shared::preprocess::PreprocessConfig;

#[test]
fn train_export_bundle_flash_and_the_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = d.join("run");
    tiny_run(&run, "40", "6");
    let onnx = d.join("model.onnx");
    ok(&host(&["export", "--run", s(&run), "--out", s(&onnx)]));
    let key = d.join("keys/signer.key");
    ok(&host(&["keygen", "--out", s(&key)]));
    let err = fails(&host(&["keygen", "--out", s(&key)]));
    assert!(err.contains("signer.key: exists"), "{err}");
    let public = VerifyingKey::read_file(&d.join("keys/signer.key.pub")).unwrap();

    // Without a report: the documented default operating point.
    let plain = d.join("plain.fovea");
    let args = [
        "bundle",
        "--model",
        s(&onnx),
        "--run",
        s(&run),
        "--key",
        s(&key),
    ];
    ok(&host(&[&args[..], &["--out", s(&plain)]].concat()));
    let b = read_bundle_file(&plain, &[public]).unwrap();
    let cfg = json(&run.join("config.json"));
    let model = std::fs::read(&onnx).unwrap();
    assert_eq!(b.model, model);
    assert_eq!(b.manifest.model_sha256, sha256(&model));
    assert_eq!(b.manifest.variant, "lite0");
    assert_eq!(b.manifest.task.name(), cfg["task"].as_str().unwrap());
    let classes: Vec<String> = serde_json::from_value(cfg["classes"].clone()).unwrap();
    assert_eq!(b.manifest.classes, classes);
    let pre: PreprocessConfig = serde_json::from_value(cfg["preprocess"].clone()).unwrap();
    assert_eq!(b.manifest.preprocess, pre);
    assert_eq!(
        b.manifest.quality,
        serde_json::from_value(cfg["quality"].clone()).unwrap()
    );
    let op = &b.manifest.operating_thresholds[0];
    // The synthetic default is a 5-grade task: referable = grade 2 or worse.
    assert_eq!(
        (op.positive_classes.as_slice(), op.threshold),
        (&[2, 3, 4][..], 0.5)
    );
    let summary: Value = serde_json::from_str(&b.manifest.train_summary_json).unwrap();
    assert_eq!(summary["metrics"], json(&run.join("metrics.json")));

    // A report of these weights: its threshold and target sensitivity are used.
    let weights = json(&run.join("metrics.json"))["weights_sha256"].clone();
    let report = d.join("report");
    std::fs::create_dir_all(&report).unwrap();
    let rep = |w: &Value| {
        json!({"model": {"weights_sha256": w},
               "operating_point": {"threshold": 0.125, "target_sensitivity": 0.9}})
    };
    std::fs::write(report.join("metrics.json"), rep(&weights).to_string()).unwrap();
    let chosen = d.join("chosen.fovea");
    ok(&host(
        &[&args[..], &["--report", s(&report), "--out", s(&chosen)]].concat(),
    ));
    let b = read_bundle_file(&chosen, &[public]).unwrap();
    let op = &b.manifest.operating_thresholds[0];
    assert_eq!((op.threshold, op.target_sensitivity), (0.125, Some(0.9)));
    // A report of other weights is refused, naming the report.
    std::fs::write(report.join("metrics.json"), rep(&json!("00ff")).to_string()).unwrap();
    let err = fails(&host(
        &[&args[..], &["--report", s(&report), "--out", s(&chosen)]].concat(),
    ));
    assert!(
        err.contains("report/metrics.json") && err.contains("00ff"),
        "{err}"
    );

    // A model exported for another configuration (2 classes) is refused.
    let other = d.join("other.onnx");
    let o = [
        "export",
        "--variant",
        "lite0",
        "--img-size",
        "64",
        "--num-classes",
        "2",
        "--out",
    ];
    ok(&host(&[&o[..], &[s(&other)]].concat()));
    let args2 = [
        "bundle",
        "--model",
        s(&other),
        "--run",
        s(&run),
        "--key",
        s(&key),
    ];
    let err = fails(&host(
        &[&args2[..], &["--out", s(&d.join("x.fovea"))]].concat(),
    ));
    assert!(err.contains("other.onnx"), "{err}");
    // Not ONNX at all.
    let args3 = [
        "bundle",
        "--model",
        s(&key),
        "--run",
        s(&run),
        "--key",
        s(&key),
    ];
    let err = fails(&host(
        &[&args3[..], &["--out", s(&d.join("y.fovea"))]].concat(),
    ));
    assert!(err.contains("not an ONNX model"), "{err}");
    // Bytes that decode as a protobuf message but no model: an empty file is the empty
    // message (so were, now and then, the 32 random bytes of the key above, and the bundle then
    // blamed the model's metadata instead of the file).
    let empty = d.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let args4 = [
        "bundle",
        "--model",
        s(&empty),
        "--run",
        s(&run),
        "--key",
        s(&key),
    ];
    let err = fails(&host(
        &[&args4[..], &["--out", s(&d.join("z.fovea"))]].concat(),
    ));
    assert!(
        err.contains("empty.onnx") && err.contains("not an ONNX model"),
        "{err}"
    );

    // Flash: first install needs --trust; the second keeps the first as previous.
    let device = d.join("device");
    let err = fails(&host(&["flash", s(&plain), "--to", s(&device)]));
    assert!(err.contains("--trust"), "{err}");
    let public_file = d.join("keys/signer.key.pub");
    ok(&host(&[
        "flash",
        s(&plain),
        "--to",
        s(&device),
        "--trust",
        s(&public_file),
    ]));
    let out = ok(&host(&["flash", s(&chosen), "--to", s(&device)]));
    assert!(out.contains("previous kept"), "{out}");
    let layout = DeviceLayout::new(&device);
    assert_eq!(
        std::fs::read(layout.current_bundle()).unwrap(),
        std::fs::read(&chosen).unwrap()
    );
    assert_eq!(
        std::fs::read(layout.previous_bundle()).unwrap(),
        std::fs::read(&plain).unwrap()
    );
    // A bundle signed by a key the device does not trust changes nothing.
    let stranger = d.join("keys/stranger.key");
    ok(&host(&["keygen", "--out", s(&stranger)]));
    let evil = d.join("evil.fovea");
    let args4 = [
        "bundle",
        "--model",
        s(&onnx),
        "--run",
        s(&run),
        "--key",
        s(&stranger),
    ];
    ok(&host(&[&args4[..], &["--out", s(&evil)]].concat()));
    let err = fails(&host(&["flash", s(&evil), "--to", s(&device)]));
    assert!(
        err.contains("evil.fovea") && err.contains("not trusted"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(layout.current_bundle()).unwrap(),
        std::fs::read(&chosen).unwrap()
    );
}
