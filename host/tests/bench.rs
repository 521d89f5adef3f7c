//! `host bench train`: the report's fields and their arithmetic.
use std::process::Command;

#[test]
fn bench_reports_images_per_second_from_the_median_step() {
    let o = Command::new(env!("CARGO_BIN_EXE_host"))
        .args([
            "bench",
            "train",
            "--variant",
            "lite0",
            "--img-size",
            "64",
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["variant"], "lite0");
    assert_eq!(r["batch_size"], 4);
    let median = r["median_step_s"].as_f64().unwrap();
    assert!(median > 0.0);
    assert!((r["images_per_second"].as_f64().unwrap() - 4.0 / median).abs() < 1e-9);
    // A Lite0 training step at 64 px holds at least the weights, gradients and AdamW moments.
    assert!(
        r["peak_rss_mib"].as_f64().unwrap() > 4.0 * 4.65 * 4.0,
        "{r}"
    );
}
