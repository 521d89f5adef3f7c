//! The synthetic data set through shared's loader, decoder and quality gate: the gate's verdict
//! must agree with the generator's ground truth on every image.
use std::process::Command;

use shared::dataset::{CsvOptions, Dataset};
use shared::decode::decode_file;
use shared::quality::{QualityConfig, assess};

#[test]
fn gate_agrees_with_the_generator_on_every_synthetic_image() {
    let dir = tempfile::tempdir().unwrap();
    // 150 images at 4 % ungradable: 6 defects, covering all four kinds (they cycle).
    let status = Command::new(env!("CARGO_BIN_EXE_host"))
        .args([
            "synth", "--n", "150", "--seed", "11", "--size", "256", "--out",
        ])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let data = Dataset::from_csv(dir.path().join("train.csv"), &CsvOptions::default()).unwrap();
    assert_eq!(data.len(), 150);
    let cfg = QualityConfig::default();
    let (mut ungradable, mut disagreements) = (0, Vec::new());
    for s in &data.samples {
        let truth = s.attributes["gradable"] == "1";
        let report = assess(&decode_file(&s.path).unwrap().image, &cfg);
        ungradable += !truth as usize;
        if report.verdict.is_gradable() != truth {
            disagreements.push(format!(
                "{}: truth gradable={truth}, gate {:?} {:?}",
                s.path.display(),
                report.verdict,
                report.measures
            ));
        }
    }
    assert_eq!(ungradable, 6);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
