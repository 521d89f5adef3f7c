//! `host train` end to end on a tiny synthetic set: run directory contents, metrics,
//! determinism for a seed, `--resume`, and argument errors.
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn train(out: &Path, extra: &[&str]) -> Output {
    train_seed(out, "3", extra)
}

fn train_seed(out: &Path, seed: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .args([
            "train",
            "--variant",
            "lite0",
            "--img-size",
            "64",
            "--batch-size",
            "8",
            "--synth-n",
            "40",
            "--seed",
            seed,
        ])
        .args(["--threads", "2", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("host runs")
}

fn json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[test]
fn one_epoch_of_lite0_writes_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let o = train(&run, &["--epochs", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = json(&run.join("config.json"));
    assert_eq!(cfg["variant"], "lite0");
    assert_eq!(cfg["preprocess"]["size"], 64);
    assert_eq!(cfg["classes"].as_array().unwrap().len(), 5);
    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics["headline"], "qwk");
    let qwk = metrics["value"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&qwk), "{metrics}");
    // The confusion matrix counts every validation image once.
    let n: u64 = metrics["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(n, metrics["n"].as_u64().unwrap());
    assert!(n > 0);
    let history = json(&run.join("history.json"));
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert!(history[0]["train_loss"].as_f64().unwrap().is_finite());
    assert!(run.join("model.bpk").is_file() && run.join("checkpoint/optim.bpk").is_file());
    let split = json(&run.join("split.json"));
    let total = ["train", "val", "test"]
        .iter()
        .map(|k| split[k].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(total, 40);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("best validation qwk"), "{stdout}");

    // --resume continues from the checkpoint: a second epoch is appended.
    let o = train(&run, &["--epochs", "2", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming after epoch 1"));
    let history = json(&run.join("history.json"));
    assert_eq!(
        history
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["epoch"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1]
    );
}

#[test]
fn same_seed_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let synth = Command::new(env!("CARGO_BIN_EXE_host"))
        .args([
            "synth", "--n", "40", "--seed", "3", "--size", "128", "--out",
        ])
        .arg(&data)
        .status()
        .unwrap();
    assert!(synth.success());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for run in [&a, &b] {
        let o = train(
            run,
            &[
                "--epochs",
                "1",
                "--data",
                data.join("train.csv").to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // model.bpk embeds random parameter ids, so compare the digest of the values.
    let (ma, mb) = (json(&a.join("metrics.json")), json(&b.join("metrics.json")));
    assert_eq!(ma["weights_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        ma["weights_sha256"], mb["weights_sha256"],
        "two runs with seed 3 gave different weights"
    );
    let loss = |run: &Path| {
        json(&run.join("history.json"))[0]["train_loss"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(loss(&a), loss(&b));
    // And a different seed gives different weights.
    let c = dir.path().join("c");
    let o = train_seed(
        &c,
        "4",
        &[
            "--epochs",
            "1",
            "--data",
            data.join("train.csv").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(
        json(&c.join("metrics.json"))["weights_sha256"],
        ma["weights_sha256"]
    );
}

#[test]
fn bad_arguments_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let o = train(&dir.path().join("r"), &["--epochs", "0"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--epochs must be at least 1"));
    let o = train(
        &dir.path().join("r2"),
        &["--data", "/nonexistent/labels.csv"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/labels.csv"));
}
