//! Installing bundles on a device folder: keep previous, roll back, refuse what is not trusted,
//! survive an interrupted install.
use std::fs;
use std::path::Path;

use shared::bundle::{
    BundleError, FORMAT_VERSION, Manifest, OperatingThreshold, SigningKey, sha256, write_bundle,
};
use shared::device::{DeviceError, DeviceLayout, INCOMING_PREFIX, install, rollback};
use shared::preprocess::PreprocessConfig;
use shared::quality::QualityConfig;
use shared::task::Task;

/// A signed bundle around `model` (arbitrary bytes: nothing here runs the model).
fn bundle_file(dir: &Path, name: &str, model: &[u8], key: &SigningKey) -> std::path::PathBuf {
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        variant: "lite0".into(),
        classes: vec!["no".into(), "yes".into()],
        task: Task::Referable,
        preprocess: PreprocessConfig::default(),
        quality: QualityConfig::default(),
        operating_thresholds: vec![OperatingThreshold {
            name: "referable".into(),
            positive_classes: vec![1],
            threshold: 0.5,
            target_sensitivity: None,
        }],
        train_summary_json: "{}".into(),
        model_format: "onnx".into(),
        model_sha256: sha256(model),
        created_unix: 1_767_225_600,
        tool_version: "test".into(),
    };
    let path = dir.join(name);
    fs::write(&path, write_bundle(&manifest, model, key).unwrap()).unwrap();
    path
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed([seed; 32])
}

#[test]
fn install_keeps_previous_and_rollback_swaps_back() {
    let tmp = tempfile::tempdir().unwrap();
    let device = DeviceLayout::new(tmp.path().join("device"));
    let k = key(1);
    let first = bundle_file(tmp.path(), "a.fovea", b"model one", &k);
    let second = bundle_file(tmp.path(), "b.fovea", b"model two", &k);

    let done = install(&device, &first, &[k.verifying_key()]).unwrap();
    assert!(!done.kept_previous);
    assert_eq!(done.bundle.model, b"model one");
    assert_eq!(
        fs::read(device.current_bundle()).unwrap(),
        fs::read(&first).unwrap()
    );
    let key_file = device
        .keys_dir()
        .join(format!("{}.pub", k.verifying_key().key_id()));
    assert!(key_file.is_file(), "--trust key stored on the device");

    // Second install: no --trust needed now, the first bundle becomes previous.
    let done = install(&device, &second, &[]).unwrap();
    assert!(done.kept_previous);
    assert_eq!(
        fs::read(device.current_bundle()).unwrap(),
        fs::read(&second).unwrap()
    );
    assert_eq!(
        fs::read(device.previous_bundle()).unwrap(),
        fs::read(&first).unwrap()
    );

    let back = rollback(&device).unwrap();
    assert_eq!(back.bundle.model, b"model one");
    assert_eq!(
        fs::read(device.current_bundle()).unwrap(),
        fs::read(&first).unwrap()
    );
    assert_eq!(
        fs::read(device.previous_bundle()).unwrap(),
        fs::read(&second).unwrap()
    );
    let leftovers: Vec<_> = fs::read_dir(device.bundle_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(INCOMING_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unknown_signer_and_tampered_bundle_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let device = DeviceLayout::new(tmp.path());
    let trusted = key(1);
    let good = bundle_file(tmp.path(), "good.fovea", b"model", &trusted);
    install(&device, &good, &[trusted.verifying_key()]).unwrap();
    let before = fs::read(device.current_bundle()).unwrap();

    let stranger = bundle_file(tmp.path(), "evil.fovea", b"other", &key(2));
    let err = install(&device, &stranger, &[]).unwrap_err();
    assert!(
        matches!(&err, DeviceError::Bundle(e) if matches!(e.kind(), BundleError::UnknownKey { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("evil.fovea"), "{err}");

    let mut bytes = fs::read(&good).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // one model byte
    let tampered = tmp.path().join("tampered.fovea");
    fs::write(&tampered, &bytes).unwrap();
    let err = install(&device, &tampered, &[]).unwrap_err();
    assert!(err.to_string().contains("tampered.fovea"), "{err}");

    assert_eq!(fs::read(device.current_bundle()).unwrap(), before);
    assert!(!device.previous_bundle().exists());
}

#[test]
fn first_install_needs_a_key_and_rollback_needs_a_previous() {
    let tmp = tempfile::tempdir().unwrap();
    let device = DeviceLayout::new(tmp.path().join("d"));
    let b = bundle_file(tmp.path(), "b.fovea", b"m", &key(3));
    let err = install(&device, &b, &[]).unwrap_err();
    assert!(matches!(err, DeviceError::NoTrustedKeys { .. }), "{err}");
    assert!(err.to_string().contains("--trust"), "{err}");
    install(&device, &b, &[key(3).verifying_key()]).unwrap();
    let err = rollback(&device).unwrap_err();
    assert!(matches!(err, DeviceError::NoPrevious { .. }), "{err}");
}

#[test]
fn an_interrupted_install_leaves_current_intact_and_is_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let device = DeviceLayout::new(tmp.path());
    let k = key(4);
    let first = bundle_file(tmp.path(), "a.fovea", b"first", &k);
    install(&device, &first, &[k.verifying_key()]).unwrap();
    // A flash cut off mid-write: half a bundle under the incoming name.
    let second = bundle_file(tmp.path(), "b.fovea", b"second", &k);
    let bytes = fs::read(&second).unwrap();
    let partial = device
        .bundle_dir()
        .join(format!("{INCOMING_PREFIX}123-456"));
    fs::write(&partial, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(
        fs::read(device.current_bundle()).unwrap(),
        fs::read(&first).unwrap()
    );
    // The next install finishes cleanly and removes the leftover.
    install(&device, &second, &[]).unwrap();
    assert!(!partial.exists());
    assert_eq!(fs::read(device.current_bundle()).unwrap(), bytes);
}
