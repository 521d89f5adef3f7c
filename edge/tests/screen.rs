//! `edge screen` with a signed bundle on a device folder: real fundus photographs and a DICOM
//! give the hand-computed probabilities, a dark photograph is Ungradable (never a negative),
//! a non-image is an error line, and every screened image is in a verifying audit log with no
//! patient identifier in it. Tampered, truncated, future and untrusted bundles are refused.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::fixture::{self, THRESHOLD};
use crate::support::sample;

pub fn edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge"))
        .args(args)
        .env_remove("FOVEA_DEVICE")
        .output()
        .expect("edge runs")
}

pub fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn screens_real_captures_with_hand_computed_probabilities_and_logs_them() {
    let Some(samples) = [
        "DRIVE_22.png",
        "HRF_07_dr.jpg",
        "issue_3.dcm",
        "sample_dark.png",
    ]
    .iter()
    .map(|n| sample(n))
    .collect::<Option<Vec<PathBuf>>>() else {
        return;
    };
    let Some(xray) = sample("RG1_UNCR.dcm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let not_image = dir.path().join("notes.png");
    std::fs::write(&not_image, "this is not a photograph").unwrap();
    let mut args = vec!["screen", "--device", s(&device)];
    args.extend(samples.iter().map(|p| s(p)));
    args.extend([s(&xray), s(&not_image)]);
    let o = edge(&args);
    assert_eq!(o.status.code(), Some(1), "a bad file makes the exit 1");
    let out = lines(&o);
    assert_eq!(out.len(), 6, "{out:?}");
    for (line, path) in out.iter().zip(&samples[..3]) {
        let want = fixture::expected_probabilities(path);
        let got: Vec<f32> = serde_json::from_value(line["probabilities"].clone()).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 1e-5,
                "{}: {got:?} vs {want:?}",
                path.display()
            );
        }
        let finding = if want[1] >= THRESHOLD {
            "referable"
        } else {
            "not_referable"
        };
        assert_eq!(line["finding"], finding, "{line}");
        assert_eq!(line["quality"]["verdict"], "gradable");
    }
    // The dark photograph and the chest X-ray (no fundus field of view) are ungradable:
    // no probabilities, never "not_referable".
    for line in &out[3..5] {
        assert_eq!(line["finding"], "ungradable", "{line}");
        assert!(line.get("probabilities").is_none(), "{line}");
    }
    assert_eq!(out[3]["quality"]["reasons"][0]["reason"], "under_exposed");
    assert!(
        out[5]["error"].as_str().unwrap().contains("notes.png"),
        "{}",
        out[5]
    );

    // Five audit records, chained, naming images by hash only.
    let log = device.join("log/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 5);
    for forbidden in ["CompressedSamples", "9RG1", "DRIVE_22", "issue_3"] {
        assert!(!text.contains(forbidden), "{forbidden} in the audit log");
    }
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["device"], "clinic-7-board-2");
    let image = std::fs::read(&samples[0]).unwrap();
    assert_eq!(first["image_sha256"], hex(&shared::bundle::sha256(&image)));
    let model = fixture::model_bytes();
    assert_eq!(first["model_sha256"], hex(&shared::bundle::sha256(&model)));
    let v = edge(&["verify-log", s(&log)]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    assert!(String::from_utf8_lossy(&v.stdout).contains("5 records verify"));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn refuses_tampered_truncated_future_and_untrusted_bundles() {
    let Some(image) = sample("DRIVE_22.png") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let good = std::fs::read(device.join("bundle/current.fovea")).unwrap();
    let keys = device.join("keys");
    let try_bundle = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = edge(&[
            "screen",
            "--device",
            s(&device),
            "--bundle",
            s(&path),
            "--keys",
            s(&keys),
            s(&image),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name} accepted");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let mut model_byte = good.clone();
    let last = model_byte.len() - 1;
    model_byte[last] ^= 0x20;
    let err = try_bundle("model-byte.fovea", &model_byte);
    assert!(
        err.contains("model-byte.fovea") && err.contains("signature"),
        "{err}"
    );
    let mut manifest = good.clone();
    manifest[130] ^= 0x01; // inside the manifest (it starts at byte 120)
    let err = try_bundle("manifest.fovea", &manifest);
    assert!(
        err.contains("manifest.fovea") && err.contains("signature"),
        "{err}"
    );
    let err = try_bundle("cut.fovea", &good[..good.len() / 2]);
    assert!(
        err.contains("cut.fovea") && err.contains("truncated"),
        "{err}"
    );
    let mut future = good.clone();
    future[8] = 9; // format version, u16 LE at offset 8
    let err = try_bundle("future.fovea", &future);
    assert!(
        err.contains("future.fovea") && err.contains("version 9"),
        "{err}"
    );
    // Signed by a key the device does not trust.
    let stranger = shared::bundle::SigningKey::from_seed([9; 32]);
    let model = fixture::model_bytes();
    let other =
        shared::bundle::write_bundle(&fixture::manifest(&model), &model, &stranger).unwrap();
    let err = try_bundle("stranger.fovea", &other);
    assert!(
        err.contains("stranger.fovea") && err.contains("not trusted"),
        "{err}"
    );
    // Nothing was screened, so nothing was logged.
    assert!(!device.join("log/audit.jsonl").exists());
}

#[test]
fn heatmap_of_a_features_model_and_a_clear_refusal_without_features() {
    let Some(image) = sample("DRIVE_22.png") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let keys = device.join("keys");
    let heat = dir.path().join("heat");
    // The plain model has no features output: --heatmap is refused up front.
    let o = edge(&[
        "screen",
        "--device",
        s(&device),
        "--heatmap",
        s(&heat),
        s(&image),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no features output"));
    // The features model: same probabilities (its logits are the same function), and a
    // SIDE × SIDE overlay whose black corners (outside the fundus circle) stay black.
    let bundle = dir.path().join("features.fovea");
    fixture::write_bundle_of(&bundle, &fixture::model_bytes_with_features());
    let o = edge(&[
        "screen",
        "--device",
        s(&device),
        "--bundle",
        s(&bundle),
        "--keys",
        s(&keys),
        "--heatmap",
        s(&heat),
        s(&image),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = &lines(&o)[0];
    let got: Vec<f32> = serde_json::from_value(line["probabilities"].clone()).unwrap();
    let want = fixture::expected_probabilities(&image);
    assert!((got[1] - want[1]).abs() < 1e-5, "{got:?} vs {want:?}");
    let png = heat.join("DRIVE_22.png.cam.png");
    assert_eq!(line["heatmap"], png.display().to_string());
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (fixture::SIDE, fixture::SIDE));
    let corner = img.get_pixel(0, 0).0;
    assert!(corner.iter().all(|&v| v < 90), "corner {corner:?}");
    let centre = img.get_pixel(fixture::SIDE / 2, fixture::SIDE / 2).0;
    assert_ne!(centre, [0, 0, 0], "the fundus is there");
}

#[test]
fn two_threads_screen_as_one_does_and_zero_threads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let device = fixture::device(dir.path());
    let image = dir.path().join("synthetic.png");
    crate::check::fundus(&image, 1.0);
    let want = fixture::expected_probabilities(&image);
    for threads in ["1", "2"] {
        let o = edge(&[
            "screen",
            "--threads",
            threads,
            "--device",
            s(&device),
            s(&image),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let line = &lines(&o)[0];
        assert_eq!(line["quality"]["verdict"], "gradable", "{line}");
        let got: Vec<f32> = serde_json::from_value(line["probabilities"].clone()).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 1e-5,
                "{threads} threads: {got:?} vs {want:?}"
            );
        }
    }
    let o = edge(&[
        "screen",
        "--threads",
        "0",
        "--device",
        s(&device),
        s(&image),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--threads must be at least 1"), "{err}");
}
