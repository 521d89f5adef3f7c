//! `edge check`: decode + quality gate from the command line, one JSON line per image.
use std::path::Path;
use std::process::Command;

use image::{Rgb, RgbImage};
use serde_json::Value;

use crate::support::sample;

fn edge(args: &[&std::ffi::OsStr]) -> (i32, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        out.status.code().unwrap(),
        lines,
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An orange disc with a vessel-like grid inside, on black; `gain` scales its brightness.
pub(crate) fn fundus(path: &Path, gain: f32) {
    let img = RgbImage::from_fn(400, 400, |x, y| {
        let (dx, dy) = (x as f32 - 200.0, y as f32 - 200.0);
        if dx * dx + dy * dy > 180.0 * 180.0 {
            return Rgb([0, 0, 0]);
        }
        let vessel = x % 23 < 3 || y % 31 < 3;
        let base = if vessel {
            [120.0, 40.0, 20.0]
        } else {
            [200.0, 100.0, 45.0]
        };
        Rgb(base.map(|v: f32| (v * gain).min(255.0) as u8))
    });
    img.save(path).unwrap();
}

#[test]
fn gradable_dark_and_unreadable_images_each_get_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let (good, dark, text) = (
        dir.path().join("good.png"),
        dir.path().join("dark.png"),
        dir.path().join("notes.jpg"),
    );
    fundus(&good, 1.0);
    fundus(&dark, 0.12);
    std::fs::write(&text, "not an image").unwrap();
    let (code, lines, _) = edge(&[good.as_os_str(), dark.as_os_str(), text.as_os_str()]);
    assert_eq!(code, 1, "an unreadable file sets exit code 1");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["verdict"], "gradable", "{}", lines[0]);
    assert_eq!(lines[0]["source"]["Raster"]["format"], "png");
    // Dark copy: luminance ≈ 0.12 × that of the bright one (≈ 15), well under the 35 threshold.
    assert_eq!(lines[1]["verdict"], "ungradable", "{}", lines[1]);
    assert_eq!(lines[1]["reasons"][0]["reason"], "under_exposed");
    let mean = lines[1]["measures"]["mean_luma"].as_f64().unwrap();
    let bright = lines[0]["measures"]["mean_luma"].as_f64().unwrap();
    assert!((mean / bright - 0.12).abs() < 0.02, "{mean} vs {bright}");
    let err = lines[2]["error"].as_str().unwrap();
    assert!(lines[2].get("measures").is_none());
    assert!(
        err.contains("notes.jpg") && err.contains("not a supported image"),
        "{err}"
    );
}

#[test]
fn real_samples_fundus_and_chest_xray() {
    let (Some(drive), Some(dark), Some(xray)) = (
        sample("DRIVE_22.png"),
        sample("sample_dark.png"),
        sample("RG1_UNCR.dcm"),
    ) else {
        return;
    };
    let (code, lines, _) = edge(&[drive.as_os_str(), dark.as_os_str()]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["verdict"], "gradable");
    assert_eq!(lines[1]["verdict"], "ungradable");
    let (code, lines, _) = edge(&[
        "--modality".as_ref(),
        "radiograph".as_ref(),
        xray.as_os_str(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["verdict"], "gradable", "{}", lines[0]);
    assert_eq!(lines[0]["source"]["Dicom"]["photometric"], "MONOCHROME1");
    // No patient identifier in the output (RG1_UNCR's PatientName is set in the file).
    let text = lines[0].to_string();
    assert!(!text.to_lowercase().contains("patient"), "{text}");
}

#[test]
fn no_images_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<IMAGES>"));
}
