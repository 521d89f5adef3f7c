//! `host synth`: layout, labels, determinism, pixel statistics and argument errors.
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Output};

use image::RgbImage;

const HEADER: &str = "id_code,diagnosis,sex,age_band,camera,site,patient_id,gradable";

fn synth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("synth")
        .args(args)
        .output()
        .expect("host runs")
}

fn generate(out: &Path, n: usize, seed: u64, size: u32) {
    let o = synth(&[
        "--out",
        out.to_str().unwrap(),
        "--n",
        &n.to_string(),
        "--seed",
        &seed.to_string(),
        "--size",
        &size.to_string(),
    ]);
    assert!(
        o.status.success(),
        "synth failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// CSV rows as maps from column name to value.
fn rows(out: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(out.join("train.csv")).unwrap();
    r.deserialize().map(|row| row.unwrap()).collect()
}

fn load(out: &Path, row: &HashMap<String, String>) -> RgbImage {
    image::open(
        out.join("train_images")
            .join(format!("{}.png", row["id_code"])),
    )
    .unwrap()
    .to_rgb8()
}

/// Mean luminance and Laplacian variance over the central disc of radius `0.35 × size`,
/// which lies inside the field of view of every camera.
fn centre_stats(img: &RgbImage) -> (f64, f64, [f64; 3]) {
    let n = img.width() as i64;
    let lum = |x: i64, y: i64| {
        let p = img.get_pixel(x as u32, y as u32);
        (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0
    };
    let (mut sum, mut rgb, mut laps) = (0.0, [0.0; 3], Vec::new());
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            let (dx, dy) = (x - n / 2, y - n / 2);
            if ((dx * dx + dy * dy) as f64).sqrt() > 0.35 * n as f64 {
                continue;
            }
            sum += lum(x, y);
            let p = img.get_pixel(x as u32, y as u32);
            for c in 0..3 {
                rgb[c] += p[c] as f64;
            }
            laps.push(
                4.0 * lum(x, y) - lum(x - 1, y) - lum(x + 1, y) - lum(x, y - 1) - lum(x, y + 1),
            );
        }
    }
    let k = laps.len() as f64;
    let lm = laps.iter().sum::<f64>() / k;
    let var = laps.iter().map(|l| (l - lm).powi(2)).sum::<f64>() / k;
    (sum / k, var, rgb.map(|c| c / k))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn fifty_images_cover_every_grade_with_aptos_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    generate(&out, 50, 1, 96);
    let text = std::fs::read_to_string(out.join("train.csv")).unwrap();
    assert_eq!(text.lines().next().unwrap(), HEADER);
    let rows = rows(&out);
    assert_eq!(rows.len(), 50);
    let grades: BTreeSet<&str> = rows.iter().map(|r| r["diagnosis"].as_str()).collect();
    assert_eq!(
        grades.into_iter().collect::<Vec<_>>(),
        ["0", "1", "2", "3", "4"]
    );
    assert_eq!(rows.iter().filter(|r| r["gradable"] == "0").count(), 2);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(load(&out, r).dimensions(), (96, 96));
        assert_eq!(r["patient_id"], format!("P{:04}", i / 2 + 1));
        assert!(["F", "M"].contains(&r["sex"].as_str()));
        assert!(
            ["cam_a", "cam_b", "cam_c"].contains(&r["camera"].as_str()),
            "{r:?}"
        );
        assert!(
            r["site"].starts_with("site_") && r["age_band"].len() == 5,
            "{r:?}"
        );
        assert!(["0", "1"].contains(&r["gradable"].as_str()));
    }
    let files = std::fs::read_dir(out.join("train_images")).unwrap().count();
    assert_eq!(files, 50);
}

#[test]
fn same_seed_same_bytes_other_seed_other_data() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    generate(&a, 9, 42, 80);
    generate(&b, 9, 42, 80);
    generate(&c, 9, 43, 80);
    let bytes = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(bytes(&a, "train.csv"), bytes(&b, "train.csv"));
    assert_ne!(bytes(&a, "train.csv"), bytes(&c, "train.csv"));
    let (ra, rc) = (rows(&a), rows(&c));
    for r in &ra {
        let f = format!("train_images/{}.png", r["id_code"]);
        assert_eq!(
            bytes(&a, &f),
            bytes(&b, &f),
            "{f} differs between identical runs"
        );
    }
    assert_ne!(load(&a, &ra[0]).as_raw(), load(&c, &rc[0]).as_raw());
}

#[test]
fn pixels_look_like_a_fundus_and_ungradable_images_stand_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    generate(&out, 100, 7, 128);
    let rows = rows(&out);
    let mut good = Vec::new();
    for r in rows.iter().filter(|r| r["gradable"] == "1") {
        let img = load(&out, r);
        // Corners lie outside the field of view: near black.
        for (x, y) in [(0, 0), (127, 0), (0, 127), (127, 127), (3, 5)] {
            let p = img.get_pixel(x, y);
            assert!(
                p.0.iter().all(|&c| c < 16),
                "{} corner {x},{y} = {p:?}",
                r["id_code"]
            );
        }
        let (mean, lap, rgb) = centre_stats(&img);
        assert!(
            rgb[0] > rgb[1] && rgb[1] > rgb[2],
            "{} is not orange-red: {rgb:?}",
            r["id_code"]
        );
        assert!(rgb[0] > 100.0, "{} retina too dark: {rgb:?}", r["id_code"]);
        good.push((mean, lap));
    }
    let mean = median(good.iter().map(|g| g.0).collect());
    let lap = median(good.iter().map(|g| g.1).collect());
    let bad: Vec<_> = rows.iter().filter(|r| r["gradable"] == "0").collect();
    assert_eq!(bad.len(), 4);
    let mut kinds = BTreeSet::new();
    for r in bad {
        let (m, l, _) = centre_stats(&load(&out, r));
        let kind = if m < 0.3 * mean {
            "dark"
        } else if m > 1.4 * mean {
            "washed out"
        } else if l < 0.3 * lap {
            "blurred"
        } else {
            panic!(
                "ungradable {} looks normal: mean {m} (median {mean}), laplacian {l} (median {lap})",
                r["id_code"]
            )
        };
        kinds.insert(kind);
    }
    // Under-exposed and lens-cap shots are both dark, so three kinds for four defects.
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn bad_arguments_fail_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let out = out.to_str().unwrap();
    let fails = |args: &[&str], needle: &str| {
        let o = synth(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    fails(
        &["--out", out, "--n", "0", "--seed", "1"],
        "--n must be at least 1",
    );
    fails(
        &["--out", out, "--n", "5", "--seed", "1", "--size", "10"],
        "--size must be between 64",
    );
    fails(
        &["--out", out, "--n", "five", "--seed", "1"],
        "invalid value 'five'",
    );
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("out");
    fails(
        &[
            "--out",
            under_file.to_str().unwrap(),
            "--n",
            "2",
            "--seed",
            "1",
        ],
        under_file.to_str().unwrap(),
    );
    assert!(
        !Path::new(out).exists(),
        "nothing is written when the arguments are invalid"
    );
}
