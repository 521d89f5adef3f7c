//! `host weights inspect` on the golden tiny state dicts and on the real EfficientNet-Lite0 weights.
use crate::cli::host;
use std::path::{Path, PathBuf};

/// `host weights inspect --json PATH`, parsed.
fn inspect_json(path: &Path) -> serde_json::Value {
    let out = host(&["weights", "inspect", "--json", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/weights")
        .join(name)
}

/// `name`'s `[dtype, shape]` in an inspect report.
fn entry(report: &serde_json::Value, name: &str) -> (String, Vec<usize>) {
    let e = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed"));
    (
        e["dtype"].as_str().unwrap().to_owned(),
        serde_json::from_value(e["shape"].clone()).unwrap(),
    )
}

// Written by scripts/gen-golden-weights.py; 11 tensors, 42 elements in all.
#[test]
fn inspects_each_golden_format() {
    for (file, format) in [
        ("legacy.pth", "pytorch-legacy"),
        ("zip.pth", "pytorch-zip"),
        ("tiny.safetensors", "safetensors"),
    ] {
        let r = inspect_json(&golden(file));
        assert_eq!(r["format"], format);
        assert_eq!(
            (r["tensors"].as_u64(), r["parameters"].as_u64()),
            (Some(11), Some(42)),
            "{file}"
        );
        assert_eq!(
            entry(&r, "transposed"),
            ("f32".to_owned(), vec![3, 2]),
            "{file}"
        );
        assert_eq!(entry(&r, "bf16"), ("bf16".to_owned(), vec![3]), "{file}");
        assert_eq!(
            entry(&r, "bn.num_batches_tracked"),
            ("i64".to_owned(), vec![]),
            "{file}"
        );
    }
}

#[test]
fn text_report_lists_names_with_shapes() {
    let out = host(&["weights", "inspect", golden("legacy.pth").to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("format: pytorch-legacy\ntensors: 11\nparameters: 42 "),
        "{text}"
    );
    assert!(text.contains("\nconv.weight f32 [2, 1, 2, 2]\n"), "{text}");
}

#[test]
fn bad_file_fails_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.pth");
    std::fs::write(&path, b"\x80\x02K\x01.").unwrap(); // pickle.dumps(1, protocol=2)
    let out = host(&["weights", "inspect", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "weights {}: a pickle stream but not a torch.save file",
            path.display()
        )),
        "{err}"
    );
}

// for n in 0, 1, 2:
//     sd = torch.load(f'efficientnet-lite{n}.pth', map_location='cpu')
//     len(sd), sum(t.numel() for t in sd.values()), sd['_conv_head.weight'].shape
// (296, 4694073, [1280, 320, 1, 1]) (386, 5470408, [1280, 320, 1, 1]) (386, 6150232, [1280, 352, 1, 1])
// Lite0 without BatchNorm buffers: 4652008 parameters.
#[test]
fn inspects_the_real_efficientnet_lite_weights() {
    let expected = [
        (0, 296, 4_694_073, 320),
        (1, 386, 5_470_408, 320),
        (2, 386, 6_150_232, 352),
    ];
    for (n, tensors, parameters, head_in) in expected {
        let Some(path) = crate::support::weights(&format!("efficientnet-lite{n}.pth")) else {
            continue;
        };
        let r = inspect_json(&path);
        assert_eq!(r["format"], "pytorch-legacy", "lite{n}");
        assert_eq!(
            (r["tensors"].as_u64(), r["parameters"].as_u64()),
            (Some(tensors), Some(parameters)),
            "lite{n}"
        );
        assert_eq!(
            entry(&r, "_conv_stem.weight"),
            ("f32".to_owned(), vec![32, 3, 3, 3]),
            "lite{n}"
        );
        assert_eq!(
            entry(&r, "_conv_head.weight"),
            ("f32".to_owned(), vec![1280, head_in, 1, 1]),
            "lite{n}"
        );
        assert_eq!(
            entry(&r, "_fc.weight"),
            ("f32".to_owned(), vec![1000, 1280]),
            "lite{n}"
        );
        assert_eq!(
            entry(&r, "_bn0.num_batches_tracked"),
            ("i64".to_owned(), vec![]),
            "lite{n}"
        );
    }
}
