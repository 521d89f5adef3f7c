//! `host eval` end to end: a tiny run on the synthetic default, its report re-derived number
//! by number from `predictions.csv`, rendered in headless Chromium; the planted-bias
//! generator; argument errors.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cli::{host, json, ok};

/// Wilson 95 % interval, written out here independently of shared::metrics.
fn wilson(k: usize, n: usize) -> (f64, f64, f64) {
    let z = 1.959963984540054f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    (p, c - h, c + h)
}

fn assert_interval(v: &Value, expected: (f64, f64, f64), what: &str) {
    let got = (
        v["estimate"].as_f64().unwrap(),
        v["lo"].as_f64().unwrap(),
        v["hi"].as_f64().unwrap(),
    );
    for (g, e) in [
        (got.0, expected.0),
        (got.1, expected.1),
        (got.2, expected.2),
    ] {
        assert!((g - e).abs() < 1e-9, "{what}: {got:?} != {expected:?}");
    }
}

/// Mann–Whitney AUC: share of positive–negative pairs ranked right, ties counting half.
fn mann_whitney(pos: &[f64], neg: &[f64]) -> f64 {
    let mut s = 0.0;
    for p in pos {
        for n in neg {
            s += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    s / (pos.len() * neg.len()) as f64
}

type Row = BTreeMap<String, String>;

fn rows(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.deserialize().map(|row| row.unwrap()).collect()
}

#[test]
fn report_numbers_rederive_from_predictions_and_the_page_renders() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    crate::cli::tiny_run(&run, "60", "3");
    let out = dir.path().join("report");
    let o = host(&[
        "eval",
        "--model",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--gradcam",
        "2",
    ]);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("threshold"), "{stdout}");
    let m = json(&out.join("metrics.json"));
    let preds = rows(&out.join("predictions.csv"));

    // The evaluated images are exactly the run's test split.
    let split = json(&run.join("split.json"));
    assert_eq!(preds.len(), split["test"].as_array().unwrap().len());
    assert_eq!(
        m["model"]["weights_sha256"],
        json(&run.join("metrics.json"))["weights_sha256"]
    );
    assert_eq!(
        m["model"]["positive_classes"],
        serde_json::json!(["2", "3", "4"])
    );
    assert_eq!(m["model"]["synthetic_training_data"], true);

    // Imageability: gradable rows over all rows; ungradable rows carry no score.
    let gradable: Vec<&Row> = preds.iter().filter(|r| r["gradable"] == "1").collect();
    for r in preds.iter().filter(|r| r["gradable"] == "0") {
        assert!(r["score"].is_empty() && !r["quality"].is_empty(), "{r:?}");
    }
    let im = &m["imageability"];
    assert_eq!(im["total"].as_u64().unwrap() as usize, preds.len());
    assert_eq!(im["gradable"].as_u64().unwrap() as usize, gradable.len());
    assert_interval(
        &im["share"],
        wilson(gradable.len(), preds.len()),
        "imageability",
    );

    // Operating point: chosen on validation, counts re-derived from scores and labels.
    let op = &m["operating_point"];
    assert_eq!(op["chosen_on"], "validation");
    assert_eq!(op["target_sensitivity"].as_f64().unwrap(), 0.9);
    assert!(op["validation"]["sensitivity"].as_f64().unwrap() >= 0.9);
    let thr = op["threshold"].as_f64().unwrap();
    let positive = |r: &Row| r["label"].parse::<usize>().unwrap() >= 2;
    let score = |r: &Row| r["score"].parse::<f64>().unwrap();
    let (mut tp, mut fn_, mut fp, mut tn) = (0, 0, 0, 0);
    for r in &gradable {
        match (positive(r), score(r) >= thr) {
            (true, true) => tp += 1,
            (true, false) => fn_ += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
        }
        // The score is the sum of the positive classes' probabilities.
        let sum: f64 = ["p_2", "p_3", "p_4"]
            .iter()
            .map(|c| r[*c].parse::<f64>().unwrap())
            .sum();
        assert!((sum - score(r)).abs() < 1e-6, "{r:?}");
    }
    let c = &op["test"]["counts"];
    assert_eq!(
        [&c["tp"], &c["fn"], &c["fp"], &c["tn"]].map(|v| v.as_u64().unwrap() as usize),
        [tp, fn_, fp, tn]
    );
    assert_interval(
        &op["test"]["sensitivity"],
        wilson(tp, tp + fn_),
        "sensitivity",
    );
    assert_interval(
        &op["test"]["specificity"],
        wilson(tn, tn + fp),
        "specificity",
    );

    // AUC against Mann–Whitney, inside its DeLong interval.
    let pos: Vec<f64> = gradable
        .iter()
        .filter(|r| positive(r))
        .map(|r| score(r))
        .collect();
    let neg: Vec<f64> = gradable
        .iter()
        .filter(|r| !positive(r))
        .map(|r| score(r))
        .collect();
    let auc = &m["roc"]["auc"];
    assert!((auc["estimate"].as_f64().unwrap() - mann_whitney(&pos, &neg)).abs() < 1e-12);
    assert!(auc["lo"].as_f64().unwrap() <= auc["estimate"].as_f64().unwrap());

    // Confusion matrix of the arg-max column, and recall per class.
    let mut cm = vec![vec![0u64; 5]; 5];
    for r in &gradable {
        cm[r["label"].parse::<usize>().unwrap()][r["predicted"].parse::<usize>().unwrap()] += 1;
    }
    assert_eq!(m["confusion"], serde_json::json!(cm));
    for (k, class) in m["per_class"].as_array().unwrap().iter().enumerate() {
        let support: u64 = cm[k].iter().sum();
        assert_eq!(class["support"].as_u64().unwrap(), support);
        let recall = if support == 0 {
            0.0
        } else {
            cm[k][k] as f64 / support as f64
        };
        assert!((class["recall"].as_f64().unwrap() - recall).abs() < 1e-12);
    }
    assert!(m["qwk"].as_f64().is_some(), "grading task reports QWK");
    let bins = m["calibration"]["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 10);
    let binned: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(binned as usize, gradable.len());

    // Subgroups: one table per synthetic column, n per value re-counted.
    let tables = m["subgroups"]["tables"].as_array().unwrap();
    let columns: Vec<&str> = tables
        .iter()
        .map(|t| t["column"].as_str().unwrap())
        .collect();
    for c in ["camera", "sex"] {
        assert!(columns.contains(&c), "{columns:?}");
    }
    for t in tables {
        let col = t["column"].as_str().unwrap();
        for row in t["rows"].as_array().unwrap() {
            let v = row["value"].as_str().unwrap();
            let n = gradable.iter().filter(|r| r[col] == v).count();
            assert_eq!(row["n"].as_u64().unwrap() as usize, n, "{col}={v}");
        }
    }

    // Files: page, card, figures, montages.
    let card = std::fs::read_to_string(out.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains(m["model"]["weights_sha256"].as_str().unwrap()));
    assert!(card.contains("Synthetic-data caveat"));
    assert!(card.contains("## Intended use") && card.contains("## Known limits"));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(!html.contains("<script"), "the report needs no JavaScript");
    for svg in ["roc.svg", "reliability.svg", "confusion.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && html.contains(svg), "{svg}");
    }
    for mtg in m["gradcam"].as_array().unwrap() {
        if let Some(f) = mtg["file"].as_str() {
            let img = image::open(out.join(f)).unwrap();
            let n = mtg["images"].as_array().unwrap().len() as u32;
            assert_eq!(img.width(), n * 192 + (n - 1) * 4, "{f}");
            assert!(html.contains(f));
        }
    }
    render_in_chromium(&out);

    // --data: every image of another manifest (here a planted-bias set), threshold still from
    // the run's validation split.
    let biased = dir.path().join("biased");
    ok(&host(&[
        "synth",
        "--n",
        "24",
        "--seed",
        "8",
        "--size",
        "128",
        "--faint-camera",
        "cam_b=0.15",
        "--out",
        biased.to_str().unwrap(),
    ]));
    let out2 = dir.path().join("report2");
    ok(&host(&[
        "eval",
        "--model",
        run.to_str().unwrap(),
        "--data",
        biased.join("train.csv").to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--gradcam",
        "1",
    ]));
    let m2 = json(&out2.join("metrics.json"));
    assert_eq!(m2["data"]["selection"], "all images");
    assert_eq!(
        m2["operating_point"]["threshold"],
        m["operating_point"]["threshold"]
    );
    assert_eq!(rows(&out2.join("predictions.csv")).len(), 24);
}

/// The chromium binary, or `None` after a loud skip (a failure with FOVEA_REQUIRE_CHROMIUM=1).
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(o) = Command::new("which").arg(name).output()
            && o.status.success()
        {
            return Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        }
    }
    let msg = "SKIPPED: headless render of the report: chromium not installed \
               (run scripts/install-chromium.sh)";
    if std::env::var("FOVEA_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
    None
}

const CHROMIUM_FLAGS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=10000",
];

/// Screenshot of index.html is not blank, and every `<img>` of the page loaded: a copy of
/// the page beside it (same relative paths) gets an inline check that counts images with
/// `complete && naturalWidth > 0` after `load`; `--dump-dom` prints the count.
fn render_in_chromium(report: &Path) {
    let Some(chromium) = chromium() else { return };
    let shot = report.join("screenshot.png");
    let o = Command::new(&chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2400")
        .arg(format!("file://{}", report.join("index.html").display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&shot).unwrap().to_rgb8();
    let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 50,
        "blank screenshot: {} colours",
        colours.len()
    );

    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    let check = "<script>addEventListener('load',()=>{const i=[...document.images];\
        const ok=i.filter(x=>x.complete&&x.naturalWidth>0).length;\
        const p=document.createElement('pre');p.id='imgcheck';\
        p.textContent=ok+' of '+i.length;document.body.appendChild(p);});</script>";
    let page = report.join("imgcheck.html");
    std::fs::write(&page, html.replace("</body>", &format!("{check}</body>"))).unwrap();
    let o = Command::new(&chromium)
        .args(CHROMIUM_FLAGS)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let marker = "<pre id=\"imgcheck\">";
    let at = dom.find(marker).expect("the check ran") + marker.len();
    let result = &dom[at..at + dom[at..].find('<').unwrap()];
    let (ok, total) = result.split_once(" of ").unwrap();
    let expected = html.matches("<img ").count();
    assert!(expected >= 4, "{expected} images in the page");
    assert_eq!(
        (ok, total),
        (&*expected.to_string(), &*expected.to_string())
    );
}

#[test]
fn faint_camera_changes_only_that_cameras_lesion_images() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, faint) = (dir.path().join("plain"), dir.path().join("faint"));
    for (out, extra) in [(&plain, None), (&faint, Some("cam_b=0.1"))] {
        let mut args = vec!["synth", "--n", "24", "--seed", "2", "--size", "96", "--out"];
        args.push(out.to_str().unwrap());
        if let Some(e) = extra {
            args.extend(["--faint-camera", e]);
        }
        ok(&host(&args));
    }
    let a = rows(&plain.join("train.csv"));
    assert_eq!(a, rows(&faint.join("train.csv")), "same labels and columns");
    let (mut changed, mut checked_b) = (0, 0);
    for r in &a {
        let f = format!("train_images/{}.png", r["id_code"]);
        let same = std::fs::read(plain.join(&f)).unwrap() == std::fs::read(faint.join(&f)).unwrap();
        let lesions = r["diagnosis"] != "0";
        if r["camera"] == "cam_b" && lesions {
            checked_b += 1;
            changed += usize::from(!same);
        } else {
            assert!(same, "{r:?} should be untouched");
        }
    }
    assert!(
        checked_b >= 2 && changed == checked_b,
        "{changed} of {checked_b} changed"
    );

    let bad = dir.path().join("bad");
    let o = host(&[
        "synth",
        "--n",
        "4",
        "--seed",
        "1",
        "--out",
        bad.to_str().unwrap(),
        "--faint-camera",
        "cam_q=0.1",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown camera `cam_q`"));
}

#[test]
fn eval_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let o = host(&[
        "eval",
        "--model",
        "/nonexistent/run",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/run"));
    let o = host(&["eval", "--model", "x", "--target-sensitivity", "1.2"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--target-sensitivity"));
}

/// `host eval --model RUN/model.onnx` scores the export with tract and gives the numbers the
/// burn model gives (`host eval --model RUN`); its heatmaps are class activation maps; a bundle
/// takes that report's threshold only for the very file it scored.
#[test]
fn an_onnx_export_is_scored_by_tract_with_the_host_numbers() {
    use crate::cli::{fails, s};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = d.join("run");
    crate::cli::tiny_run(&run, "60", "3");
    let onnx = run.join("model.onnx");
    ok(&host(&["export", "--run", s(&run)]));
    let (rh, ro) = (d.join("host-report"), d.join("onnx-report"));
    ok(&host(&[
        "eval",
        "--model",
        s(&run),
        "--out",
        s(&rh),
        "--gradcam",
        "0",
    ]));
    ok(&host(&[
        "eval",
        "--model",
        s(&onnx),
        "--out",
        s(&ro),
        "--gradcam",
        "1",
    ]));
    let (mh, mo) = (
        json(&rh.join("metrics.json")),
        json(&ro.join("metrics.json")),
    );
    assert!(mh["model"].get("onnx").is_none());
    assert_eq!(mo["model"]["onnx"]["file"], s(&onnx));
    assert_eq!(mo["model"]["weights_sha256"], mh["model"]["weights_sha256"]);
    // Same images, same scores within float noise (burn and tract sum in different orders).
    let (ph, po) = (
        rows(&rh.join("predictions.csv")),
        rows(&ro.join("predictions.csv")),
    );
    assert_eq!(ph.len(), po.len());
    let mut scored = 0;
    for (a, b) in ph.iter().zip(&po) {
        assert_eq!((&a["path"], &a["gradable"]), (&b["path"], &b["gradable"]));
        if !a["score"].is_empty() {
            let (x, y): (f64, f64) = (a["score"].parse().unwrap(), b["score"].parse().unwrap());
            assert!((x - y).abs() < 1e-5, "{} vs {}", a["score"], b["score"]);
            scored += 1;
        }
    }
    assert!(scored > 0);
    let num = |m: &Value, path: &[&str]| {
        path.iter()
            .fold(m, |v, k| &v[*k])
            .as_f64()
            .unwrap_or_else(|| panic!("{path:?}"))
    };
    for path in [
        &["operating_point", "threshold"][..],
        &["operating_point", "test", "sensitivity", "estimate"],
        &["operating_point", "test", "specificity", "estimate"],
        &["roc", "auc", "estimate"],
    ] {
        let (a, b) = (num(&mh, path), num(&mo, path));
        assert!((a - b).abs() < 1e-5, "{path:?}: host {a}, onnx {b}");
    }
    // Class activation maps from the features output stand in for Grad-CAM.
    let montages: Vec<&Value> = mo["gradcam"].as_array().unwrap().iter().collect();
    assert!(
        montages.iter().any(|m| m["file"].is_string()),
        "{montages:?}"
    );
    for m in montages.iter().filter_map(|m| m["file"].as_str()) {
        assert!(ro.join(m).is_file(), "{m}");
    }

    // The report of model.onnx sets the threshold of a bundle of model.onnx, not of another file.
    let key = d.join("k.key");
    ok(&host(&["keygen", "--out", s(&key)]));
    let bundle = |model: &Path| {
        host(&[
            "bundle",
            "--model",
            s(model),
            "--run",
            s(&run),
            "--report",
            s(&ro),
            "--key",
            s(&key),
            "--out",
            s(&d.join("b.fovea")),
        ])
    };
    ok(&bundle(&onnx));
    let int8 = d.join("int8.onnx");
    ok(&host(&[
        "quantize",
        "--model",
        s(&onnx),
        "--run",
        s(&run),
        "--max-drop",
        "1",
        "--out",
        s(&int8),
    ]));
    let err = fails(&bundle(&int8));
    assert!(err.contains("not the model being bundled"), "{err}");
}
