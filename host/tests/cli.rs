//! Running the `host` binary from the tests: the call, success and failure checks, JSON files,
//! and the tiny training run (Lite0, 64 px, one epoch on the synthetic default) several
//! modules start from.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `host ARGS…`.
pub fn host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .args(args)
        .output()
        .expect("host runs")
}

/// Asserts success (printing both streams otherwise); returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts failure; returns stderr.
pub fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure, got success");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temp path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A JSON file, parsed.
pub fn json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The arguments of a tiny `host train` run of `synth_n` synthetic images (seed `seed`)
/// into `out`; `extra` is appended.
pub fn tiny_train_args<'a>(
    out: &'a Path,
    synth_n: &'a str,
    seed: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--variant",
        "lite0",
        "--img-size",
        "64",
        "--batch-size",
        "8",
        "--synth-n",
        synth_n,
        "--seed",
        seed,
        "--epochs",
        "1",
        "--threads",
        "2",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

/// A tiny trained run in `out` (see [`tiny_train_args`]).
pub fn tiny_run(out: &Path, synth_n: &str, seed: &str) {
    ok(&host(&tiny_train_args(out, synth_n, seed, &[])));
}

/// `n` gradable synthetic photographs (`host synth` of max(2n, 6), seed 5, 256 px; `n` ≤ its
/// gradable ones), by the generator's ground truth, under `dir/synth`.
pub fn synthetic(dir: &Path, n: usize) -> Vec<PathBuf> {
    let out = dir.join("synth");
    ok(&host(&[
        "synth",
        "--out",
        s(&out),
        "--n",
        &(2 * n).max(6).to_string(),
        "--seed",
        "5",
        "--size",
        "256",
    ]));
    let mut rdr = csv::Reader::from_path(out.join("train.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (id, gradable) = (col("id_code"), col("gradable"));
    let files: Vec<PathBuf> = rdr
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[gradable] == "1")
        .map(|r| out.join("train_images").join(format!("{}.png", &r[id])))
        .take(n)
        .collect();
    assert_eq!(files.len(), n);
    files
}
