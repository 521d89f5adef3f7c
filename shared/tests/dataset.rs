//! Data set loaders and the patient-grouped split, on temporary folders of empty image files.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::dataset::{CsvOptions, Dataset, DatasetError, Sample, Split, SplitFractions, split};

/// Creates an empty file (and its parent folders); loaders only check that images exist.
fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"").unwrap();
}

fn write(path: &Path, text: &str) -> PathBuf {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn labels(d: &Dataset) -> Vec<usize> {
    d.samples.iter().map(|s| s.label).collect()
}

fn names(d: &Dataset) -> Vec<String> {
    d.samples
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------- image folders

#[test]
fn folder_reads_sorted_classes_and_image_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for f in ["referable/b.PNG", "referable/a.jpg", "referable/scan.dcm"] {
        touch(&root.join(f));
    }
    for f in ["normal/x.tiff", "normal/.hidden.png", "normal/notes.txt"] {
        touch(&root.join(f));
    }
    touch(&root.join("normal/nested/deep.png"));
    touch(&root.join(".cache/c.png"));
    touch(&root.join("loose.png"));

    let d = Dataset::from_folder(root).unwrap();
    assert_eq!(d.classes, vec!["normal", "referable"]);
    assert_eq!(names(&d), vec!["x.tiff", "a.jpg", "b.PNG", "scan.dcm"]);
    assert_eq!(labels(&d), vec![0, 1, 1, 1]);
    assert_eq!(d.class_counts(), vec![1, 3]);
    assert_eq!(d.samples[0].path, root.join("normal/x.tiff"));
    assert_eq!(d.source, root);
    assert!(
        d.samples
            .iter()
            .all(|s| s.patient_id.is_none() && s.attributes.is_empty())
    );
}

#[test]
fn folder_empty_class_names_the_class_folder() {
    let tmp = tempfile::tempdir().unwrap();
    touch(&tmp.path().join("a/1.png"));
    touch(&tmp.path().join("b/readme.txt"));
    let err = Dataset::from_folder(tmp.path()).unwrap_err();
    let class_dir = tmp.path().join("b");
    assert!(matches!(&err, DatasetError::EmptyClass { class, .. } if class == "b"));
    assert_eq!(
        err.to_string(),
        format!("{}: class \"b\" has no images", class_dir.display())
    );
}

#[test]
fn folder_without_class_folders_names_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    touch(&tmp.path().join("loose.png"));
    let err = Dataset::from_folder(tmp.path()).unwrap_err();
    assert!(matches!(err, DatasetError::NoClasses { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: no class sub-folders", tmp.path().display())),
        "{err}"
    );
}

#[test]
fn folder_that_does_not_exist_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = Dataset::from_folder(&missing).unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{err}"
    );
    // The OS's reason is in the message and not chained too (an `{:#}` chain would say it
    // twice).
    assert!(err.to_string().contains("(os error 2)"), "{err}");
    assert!(std::error::Error::source(&err).is_none());
}

// ---------------------------------------------------------------- APTOS

/// An APTOS layout: `train.csv` and `train_images/<id>.png` for every id in `existing`.
fn aptos(root: &Path, csv: &str, existing: &[&str]) -> PathBuf {
    for id in existing {
        touch(&root.join(format!("train_images/{id}.png")));
    }
    write(&root.join("train.csv"), csv)
}

const ALL_GRADES: &str = "id_code,diagnosis\na0,0\na1,1\na2,2\na3,3\na4,4\n";
const ALL_IDS: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];

#[test]
fn aptos_finds_images_in_train_images() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(tmp.path(), ALL_GRADES, &ALL_IDS);
    let d = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap();
    assert_eq!(d.classes, vec!["0", "1", "2", "3", "4"]);
    assert_eq!(labels(&d), vec![0, 1, 2, 3, 4]);
    assert_eq!(d.samples[2].path, tmp.path().join("train_images/a2.png"));
    assert_eq!(d.source, csv);
}

#[test]
fn aptos_tries_other_extensions_and_the_csv_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    touch(&root.join("train_images/a0.jpg"));
    touch(&root.join("train_images/a1.DCM"));
    touch(&root.join("a2.png"));
    let csv = write(
        &root.join("train.csv"),
        "id_code,diagnosis\na0,0\na1,1\na2,2\n",
    );
    let opts = CsvOptions {
        allow_empty_classes: true,
        ..Default::default()
    };
    let d = Dataset::from_csv(&csv, &opts).unwrap();
    let paths: Vec<&Path> = d.samples.iter().map(|s| s.path.as_path()).collect();
    assert_eq!(
        paths,
        vec![
            root.join("train_images/a0.jpg"),
            root.join("train_images/a1.DCM"),
            root.join("a2.png")
        ]
    );
    assert_eq!(d.class_counts(), vec![1, 1, 1, 0, 0]);
}

#[test]
fn aptos_uses_images_dir_option() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("elsewhere");
    for id in ALL_IDS {
        touch(&images.join(format!("{id}.png")));
    }
    let csv = write(&tmp.path().join("labels/train.csv"), ALL_GRADES);
    let opts = CsvOptions {
        images_dir: Some(images.clone()),
        ..Default::default()
    };
    let d = Dataset::from_csv(&csv, &opts).unwrap();
    assert_eq!(d.samples[4].path, images.join("a4.png"));
}

/// The layout written by the project's synthetic APTOS-style generator.
#[test]
fn synthetic_generator_layout_loads_as_aptos_with_attributes() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "id_code,diagnosis,sex,age_band,camera,site,patient_id,gradable\n\
               syn0000,0,F,40-49,topcon,site_a,p000,1\n\
               syn0001,2,F,40-49,topcon,site_a,p000,1\n\
               syn0002,1,M,60-69,canon,site_b,p001,0\n\
               syn0003,3,M,,canon,site_b,p002,1\n\
               syn0004,4,F,70-79,canon,site_c,,1\n";
    let ids = ["syn0000", "syn0001", "syn0002", "syn0003", "syn0004"];
    let csv = aptos(tmp.path(), csv, &ids);
    let d = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap();
    assert_eq!(labels(&d), vec![0, 2, 1, 3, 4]);
    assert_eq!(
        d.samples[1].path,
        tmp.path().join("train_images/syn0001.png")
    );
    let first: BTreeMap<String, String> = [
        ("age_band", "40-49"),
        ("camera", "topcon"),
        ("gradable", "1"),
        ("patient_id", "p000"),
        ("sex", "F"),
        ("site", "site_a"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(d.samples[0].attributes, first);
    assert_eq!(d.samples[0].patient_id.as_deref(), Some("p000"));
    assert_eq!(d.samples[1].patient_id.as_deref(), Some("p000"));
    assert_eq!(d.samples[2].attributes["gradable"], "0");
    // Empty values are left out rather than stored as "".
    assert!(!d.samples[3].attributes.contains_key("age_band"));
    assert_eq!(d.samples[4].patient_id, None);
    assert_eq!(d.samples[4].attributes.len(), 5);
}

#[test]
fn aptos_missing_image_names_csv_line_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(tmp.path(), ALL_GRADES, &["a0", "a1", "a3", "a4"]);
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(err, DatasetError::MissingImage { line: 4, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}, line 4: image a2 not found (tried ",
            csv.display()
        )),
        "{msg}"
    );
    let tried = tmp
        .path()
        .join("train_images/a2.{png,jpeg,jpg,tif,tiff,bmp,dcm}");
    assert!(msg.contains(&tried.display().to_string()), "{msg}");
}

#[test]
fn aptos_unknown_label_seven_names_csv_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(
        tmp.path(),
        "id_code,diagnosis\na0,0\na1,1\na2,7\na3,3\na4,4\n",
        &ALL_IDS,
    );
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 4: unknown label \"7\"; expected one of 0, 1, 2, 3, 4",
            csv.display()
        )
    );
}

#[test]
fn aptos_label_is_checked_before_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(tmp.path(), "id_code,diagnosis\nzz,2.0\n", &[]);
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DatasetError::UnknownLabel { line: 2, label, .. } if label == "2.0"),
        "{err}"
    );
}

#[test]
fn aptos_empty_grade_names_csv_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(
        tmp.path(),
        "id_code,diagnosis\na0,0\na1,1\na2,2\na4,4\n",
        &ALL_IDS,
    );
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: class \"3\" has no images", csv.display())
    );
    let opts = CsvOptions {
        allow_empty_classes: true,
        ..Default::default()
    };
    let d = Dataset::from_csv(&csv, &opts).unwrap();
    assert_eq!(d.class_counts(), vec![1, 1, 1, 0, 1]);
}

#[test]
fn aptos_rejects_a_fixed_class_list() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(tmp.path(), ALL_GRADES, &ALL_IDS);
    let opts = CsvOptions {
        classes: Some(vec!["0".into(), "1".into()]),
        ..Default::default()
    };
    let err = Dataset::from_csv(&csv, &opts).unwrap_err();
    assert!(matches!(err, DatasetError::BadOptions { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: a fixed class list", csv.display())),
        "{err}"
    );
}

#[test]
fn aptos_to_referable() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(tmp.path(), ALL_GRADES, &ALL_IDS);
    let d = Dataset::from_csv(&csv, &CsvOptions::default())
        .unwrap()
        .to_referable()
        .unwrap();
    assert_eq!(d.classes, vec!["non_referable", "referable"]);
    assert_eq!(labels(&d), vec![0, 0, 1, 1, 1]);
}

// ---------------------------------------------------------------- EyePACS

#[test]
fn eyepacs_finds_jpeg_in_train_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut csv = String::from("image,level\n");
    for (i, side) in ["left", "right"].iter().cycle().take(5).enumerate() {
        let name = format!("{}_{side}", 10 + i / 2);
        touch(&root.join(format!("train/{name}.jpeg")));
        csv.push_str(&format!("{name},{}\n", 4 - i));
    }
    let csv = write(&root.join("trainLabels.csv"), &csv);
    let d = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap();
    assert_eq!(labels(&d), vec![4, 3, 2, 1, 0]);
    assert_eq!(
        names(&d),
        vec![
            "10_left.jpeg",
            "10_right.jpeg",
            "11_left.jpeg",
            "11_right.jpeg",
            "12_left.jpeg"
        ]
    );
    assert_eq!(d.samples[0].path, root.join("train/10_left.jpeg"));
}

#[test]
fn eyepacs_missing_image_names_csv_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = write(
        &tmp.path().join("trainLabels.csv"),
        "image,level\n10_left,0\n",
    );
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}, line 2: image 10_left not found",
            csv.display()
        )),
        "{err}"
    );
}

// ---------------------------------------------------------------- generic

#[test]
fn generic_resolves_relative_and_absolute_paths_and_keeps_extras() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    touch(&root.join("imgs/a.png"));
    touch(&root.join("imgs/b.dcm"));
    let abs = tmp.path().join("other/c.jpg");
    touch(&abs);
    let text = format!(
        "path,label,sex,age,site,camera,patient_id\n\
         imgs/a.png,referable,F,54,s1,topcon,p1\n\
         imgs/b.dcm,normal,M,61,s2,canon,p2\n\
         {},normal,,70,s2,canon,p1\n",
        abs.display()
    );
    let csv = write(&root.join("manifest.csv"), &text);
    let d = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap();
    assert_eq!(d.classes, vec!["normal", "referable"]);
    assert_eq!(labels(&d), vec![1, 0, 0]);
    assert_eq!(d.samples[0].path, root.join("imgs/a.png"));
    assert_eq!(d.samples[2].path, abs);
    assert_eq!(d.samples[1].attributes["age"], "61");
    assert_eq!(d.samples[1].attributes["camera"], "canon");
    assert_eq!(d.samples[2].attributes.get("sex"), None);
    assert_eq!(d.samples[2].patient_id.as_deref(), Some("p1"));
    assert_eq!(
        d.samples[0].attributes.keys().collect::<Vec<_>>(),
        vec!["age", "camera", "patient_id", "sex", "site"]
    );
}

#[test]
fn generic_integer_labels_sort_numerically() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["a.png", "b.png", "c.png"] {
        touch(&tmp.path().join(f));
    }
    let csv = write(
        &tmp.path().join("m.csv"),
        "path,label\na.png,10\nb.png,2\nc.png,2\n",
    );
    let d = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap();
    assert_eq!(d.classes, vec!["2", "10"]);
    assert_eq!(labels(&d), vec![1, 0, 0]);
}

#[test]
fn generic_fixed_classes_define_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["a.png", "b.png"] {
        touch(&tmp.path().join(f));
    }
    let csv = write(
        &tmp.path().join("m.csv"),
        "path,label\na.png,normal\nb.png,referable\n",
    );
    let opts = CsvOptions {
        classes: Some(vec!["referable".into(), "normal".into()]),
        ..Default::default()
    };
    let d = Dataset::from_csv(&csv, &opts).unwrap();
    assert_eq!(labels(&d), vec![1, 0]);
}

#[test]
fn generic_unknown_label_against_fixed_classes_names_csv_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["a.png", "b.png"] {
        touch(&tmp.path().join(f));
    }
    let csv = write(
        &tmp.path().join("m.csv"),
        "path,label\na.png,normal\nb.png,glaucoma\n",
    );
    let opts = CsvOptions {
        classes: Some(vec!["normal".into(), "referable".into()]),
        ..Default::default()
    };
    let err = Dataset::from_csv(&csv, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 3: unknown label \"glaucoma\"; expected one of normal, referable",
            csv.display()
        )
    );
}

#[test]
fn generic_fixed_class_without_samples_names_csv() {
    let tmp = tempfile::tempdir().unwrap();
    touch(&tmp.path().join("a.png"));
    let csv = write(&tmp.path().join("m.csv"), "path,label\na.png,normal\n");
    let opts = CsvOptions {
        classes: Some(vec!["normal".into(), "referable".into()]),
        ..Default::default()
    };
    let err = Dataset::from_csv(&csv, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: class \"referable\" has no images", csv.display())
    );
}

#[test]
fn generic_missing_file_names_csv_line_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    touch(&tmp.path().join("a.png"));
    let csv = write(
        &tmp.path().join("m.csv"),
        "path,label\na.png,x\nsub/gone.png,y\n",
    );
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 3: image sub/gone.png not found (tried {})",
            csv.display(),
            tmp.path().join("sub/gone.png").display()
        )
    );
}

// ---------------------------------------------------------------- malformed manifests

fn csv_error(text: &str) -> (PathBuf, DatasetError) {
    let tmp = tempfile::tempdir().unwrap();
    let csv = aptos(tmp.path(), text, &ALL_IDS);
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    (csv, err)
}

#[test]
fn wrong_field_count_names_csv_and_line() {
    let (csv, err) = csv_error("id_code,diagnosis\na0,0\na1,1,extra\n");
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 3: 3 field(s), but the header has 2",
            csv.display()
        )
    );
}

#[test]
fn empty_label_names_csv_and_line() {
    let (csv, err) = csv_error("id_code,diagnosis\na0,0\n\na1,\n");
    // The blank line 3 is skipped but still counted.
    assert_eq!(
        err.to_string(),
        format!("{}, line 4: empty `diagnosis`", csv.display())
    );
}

#[test]
fn empty_csv_names_file() {
    let (csv, err) = csv_error("");
    assert!(matches!(err, DatasetError::EmptyManifest { .. }));
    assert_eq!(
        err.to_string(),
        format!("{}: empty manifest (no header line)", csv.display())
    );
}

#[test]
fn header_only_csv_names_file() {
    let (csv, err) = csv_error("id_code,diagnosis\n");
    assert_eq!(err.to_string(), format!("{}: no samples", csv.display()));
}

#[test]
fn missing_column_names_csv_and_column() {
    let (csv, err) = csv_error("id_code,grade\na0,0\n");
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 1: APTOS manifest is missing column `diagnosis`",
            csv.display()
        )
    );
    let (csv, err) = csv_error("path,sex\na0.png,F\n");
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 1: generic manifest is missing column `label`",
            csv.display()
        )
    );
}

#[test]
fn unknown_header_names_csv() {
    let (csv, err) = csv_error("file,grade\na0,0\n");
    assert!(matches!(err, DatasetError::UnknownFormat { .. }));
    assert!(
        err.to_string().starts_with(&format!(
            "{}, line 1: header [\"file\", \"grade\"] is not a known manifest format",
            csv.display()
        )),
        "{err}"
    );
}

#[test]
fn duplicate_column_names_csv() {
    let (csv, err) = csv_error("id_code,diagnosis,site,SITE\na0,0,x,y\n");
    assert_eq!(
        err.to_string(),
        format!("{}, line 1: duplicate column `SITE`", csv.display())
    );
}

#[test]
fn missing_csv_names_file() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("absent.csv");
    let err = Dataset::from_csv(&csv, &CsvOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
    assert!(
        err.to_string().starts_with(&format!("{}: ", csv.display())),
        "{err}"
    );
}

#[test]
fn byte_order_mark_and_padding_are_tolerated() {
    let (csv, err) = csv_error("\u{feff}id_code , diagnosis\n a0 , 0 \na1,9\n");
    assert_eq!(
        err.to_string(),
        format!(
            "{}, line 3: unknown label \"9\"; expected one of 0, 1, 2, 3, 4",
            csv.display()
        )
    );
}

// ---------------------------------------------------------------- split

/// Approximate APTOS 2019 grade shares (1805/370/999/193/295 of 3662).
const GRADE_PRIOR: [f64; 5] = [0.493, 0.101, 0.273, 0.053, 0.080];

/// 1000 samples from patients with 1–4 images each; a patient's images share a grade
/// three times in four, else differ by one grade.
fn synthetic(seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples = Vec::new();
    let mut patient = 0;
    while samples.len() < 1000 {
        let u: f64 = rng.random();
        let mut grade = 0;
        let mut acc = GRADE_PRIOR[0];
        while u > acc && grade < 4 {
            grade += 1;
            acc += GRADE_PRIOR[grade];
        }
        let images = rng.random_range(1..=4).min(1000 - samples.len());
        for _ in 0..images {
            let label = if rng.random_bool(0.75) {
                grade
            } else if grade == 0 || (grade < 4 && rng.random_bool(0.5)) {
                grade + 1
            } else {
                grade - 1
            };
            samples.push(Sample {
                path: PathBuf::from(format!("img{}.png", samples.len())),
                label,
                patient_id: Some(format!("p{patient:04}")),
                attributes: BTreeMap::new(),
            });
        }
        patient += 1;
    }
    Dataset {
        classes: (0..5).map(|g| g.to_string()).collect(),
        samples,
        source: PathBuf::from("synthetic.csv"),
    }
}

fn parts(s: &Split) -> [&Vec<usize>; 3] {
    [&s.train, &s.val, &s.test]
}

fn counts(d: &Dataset, idx: &[usize]) -> Vec<usize> {
    let mut c = vec![0; d.classes.len()];
    for &i in idx {
        c[d.samples[i].label] += 1;
    }
    c
}

#[test]
fn split_is_a_sorted_partition() {
    let d = synthetic(1);
    let s = split(&d, SplitFractions::default(), 42).unwrap();
    let mut all: Vec<usize> = parts(&s).iter().flat_map(|p| p.iter().copied()).collect();
    for p in parts(&s) {
        assert!(p.windows(2).all(|w| w[0] < w[1]), "not sorted");
        assert!(!p.is_empty());
    }
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
}

#[test]
fn split_keeps_each_patient_in_one_split() {
    let d = synthetic(1);
    let patients = d
        .samples
        .iter()
        .map(|s| s.patient_id.clone())
        .collect::<HashSet<_>>();
    assert!(
        patients.len() < 500,
        "fixture should have multi-image patients"
    );
    let s = split(&d, SplitFractions::default(), 42).unwrap();
    let mut home: HashMap<&str, usize> = HashMap::new();
    for (k, p) in parts(&s).iter().enumerate() {
        for &i in p.iter() {
            let pid = d.samples[i].patient_id.as_deref().unwrap();
            assert_eq!(
                *home.entry(pid).or_insert(k),
                k,
                "patient {pid} in two splits"
            );
        }
    }
}

#[test]
fn split_sizes_and_class_proportions_follow_targets() {
    let d = synthetic(1);
    let overall = d.class_counts();
    assert_eq!(overall, vec![381, 222, 225, 98, 74]);
    let s = split(&d, SplitFractions::default(), 42).unwrap();
    let sizes: Vec<usize> = parts(&s).iter().map(|p| p.len()).collect();
    assert_eq!(sizes, vec![700, 150, 150]);
    let per_split: Vec<Vec<usize>> = parts(&s).iter().map(|p| counts(&d, p)).collect();
    assert_eq!(
        per_split,
        vec![
            vec![267, 156, 157, 68, 52],
            vec![57, 33, 34, 15, 11],
            vec![57, 33, 34, 15, 11]
        ]
    );
    // Targets are 0.15 × class total = 57.15, 33.3, 33.75, 14.7, 11.1 for val and test: every
    // class lands within one sample of its target even though 397 patients have 1–4 images.
    // Each class's share within each split is within 0.5 percentage points of its overall share.
    for (p, c) in parts(&s).iter().zip(&per_split) {
        for k in 0..5 {
            let got = c[k] as f64 / p.len() as f64;
            let want = overall[k] as f64 / 1000.0;
            assert!(
                (got - want).abs() < 0.005,
                "class {k}: {got:.4} vs {want:.4}"
            );
        }
    }
}

#[test]
fn split_is_deterministic_per_seed() {
    let d = synthetic(1);
    let a = split(&d, SplitFractions::default(), 7).unwrap();
    let b = split(&d, SplitFractions::default(), 7).unwrap();
    let c = split(&d, SplitFractions::default(), 8).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.test, c.test);
}

#[test]
fn split_without_patient_ids_groups_each_sample_alone() {
    let mut d = synthetic(2);
    for s in &mut d.samples {
        s.patient_id = None;
    }
    let s = split(&d, SplitFractions::new(0.8, 0.2, 0.0).unwrap(), 3).unwrap();
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (800, 200, 0));
    let overall = d.class_counts();
    let val = counts(&d, &s.val);
    for k in 0..5 {
        // Singleton groups can hit each class's target to within one sample.
        assert!(
            (val[k] as f64 - 0.2 * overall[k] as f64).abs() <= 1.0,
            "{val:?} vs {overall:?}"
        );
    }
}

#[test]
fn split_fills_every_split_with_three_groups() {
    let d = Dataset {
        classes: vec!["a".into()],
        samples: (0..3)
            .map(|i| Sample {
                path: PathBuf::from(format!("{i}.png")),
                label: 0,
                patient_id: None,
                attributes: BTreeMap::new(),
            })
            .collect(),
        source: PathBuf::from("three.csv"),
    };
    for seed in 0..5 {
        let s = split(&d, SplitFractions::default(), seed).unwrap();
        let sizes: Vec<usize> = parts(&s).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, vec![1, 1, 1], "seed {seed}");
    }
    let mut two = d.clone();
    two.samples.pop();
    let err = split(&two, SplitFractions::default(), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "three.csv: 2 patient group(s) cannot fill 3 non-empty split(s)"
    );
}

#[test]
fn split_fractions_are_validated() {
    assert!(SplitFractions::new(0.8, 0.1, 0.1).is_ok());
    assert!(SplitFractions::new(1.0, 0.0, 0.0).is_ok());
    let reason = |t, v, s| match SplitFractions::new(t, v, s) {
        Err(DatasetError::InvalidFractions { reason, .. }) => reason,
        other => panic!("expected InvalidFractions, got {other:?}"),
    };
    assert_eq!(reason(0.7, 0.2, 0.2), "fractions must sum to 1");
    assert_eq!(
        reason(1.2, -0.1, -0.1),
        "each fraction must be between 0 and 1"
    );
    assert_eq!(
        reason(f64::NAN, 0.5, 0.5),
        "each fraction must be a finite number"
    );
    assert_eq!(reason(0.0, 0.5, 0.5), "the train fraction must be positive");
    let bad = SplitFractions {
        train: 0.5,
        val: 0.5,
        test: 0.5,
    };
    assert!(matches!(
        split(&synthetic(1), bad, 0),
        Err(DatasetError::InvalidFractions { .. })
    ));
    assert_eq!(
        SplitFractions::new(0.7, 0.2, 0.2).unwrap_err().to_string(),
        "invalid split fractions train=0.7 val=0.2 test=0.2: fractions must sum to 1"
    );
}
