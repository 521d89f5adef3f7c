//! The signed bundle end to end: round trip, every rejection path, determinism, random input.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use shared::bundle::format::{OFFSET_MODEL_LEN, OFFSET_SIGNATURE, OFFSET_VERSION};
use shared::bundle::sign::signed_digest;
use shared::bundle::{
    BundleError, FORMAT_VERSION, HEADER_LEN, Header, MAX_BUNDLE_BYTES, MAX_MODEL_BYTES, Manifest,
    OperatingThreshold, SigningKey, VerifyingKey, inspect, read_bundle, read_bundle_file, sha256,
    write_bundle,
};
use shared::preprocess::{Crop, Interpolation, Normalize, PreprocessConfig};
use shared::quality::QualityConfig;
use shared::task::Task;

/// A fixed model: 3000 bytes of a counter pattern.
fn model() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 + 3) as u8).collect()
}

/// A fixed manifest for [`model`]: binary referable task, two operating points.
fn manifest(model: &[u8]) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        variant: "efficientnet_lite0".into(),
        classes: vec!["non_referable".into(), "referable".into()],
        task: Task::Referable,
        preprocess: PreprocessConfig {
            size: 260,
            crop: Crop::FundusCircle { shrink: 0.95 },
            interpolation: Interpolation::Bilinear,
            graham: None,
            normalize: Normalize::Symmetric,
        },
        quality: QualityConfig {
            min_focus: 4.5,
            ..QualityConfig::default()
        },
        operating_thresholds: vec![
            OperatingThreshold {
                name: "referable".into(),
                positive_classes: vec![1],
                threshold: 0.42,
                target_sensitivity: Some(0.87),
            },
            OperatingThreshold {
                name: "high_specificity".into(),
                positive_classes: vec![1],
                threshold: 0.8,
                target_sensitivity: None,
            },
        ],
        train_summary_json: r#"{"epochs":25,"seed":7,"val":{"auc":0.93}}"#.into(),
        model_format: "onnx".into(),
        model_sha256: sha256(model),
        created_unix: 1_767_225_600,
        tool_version: "fovea-host 0.1.0".into(),
    }
}

fn key() -> SigningKey {
    SigningKey::from_seed([42; 32])
}

fn bundle() -> Vec<u8> {
    let model = model();
    write_bundle(&manifest(&model), &model, &key()).unwrap()
}

fn read(bytes: &[u8]) -> Result<shared::bundle::Bundle, BundleError> {
    read_bundle(bytes, &[key().verifying_key()])
}

#[test]
fn round_trip() {
    let model = model();
    let bytes = bundle();
    let b = read(&bytes).unwrap();
    assert_eq!(b.manifest, manifest(&model));
    assert_eq!(b.model, model);
    assert_eq!(b.signer, key().verifying_key());
    // Any of several trusted keys will do.
    let other = SigningKey::from_seed([1; 32]).verifying_key();
    let b2 = read_bundle(&bytes, &[other, key().verifying_key()]).unwrap();
    assert_eq!(b2, b);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.fovea");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        read_bundle_file(&path, &[key().verifying_key()]).unwrap(),
        b
    );
}

#[test]
fn rejects_bad_magic() {
    let mut bytes = bundle();
    bytes[0] = b'X';
    let e = read(&bytes).unwrap_err();
    assert!(matches!(e, BundleError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("not a fovea bundle"), "{e}");
    let e = read(b"\x89PNG\r\n\x1a\n and then an image").unwrap_err();
    assert!(matches!(e, BundleError::BadMagic { .. }), "{e}");
}

#[test]
fn rejects_future_version() {
    let mut bytes = bundle();
    bytes[OFFSET_VERSION..OFFSET_VERSION + 2].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let e = read(&bytes).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::UnsupportedVersion { found, supported: FORMAT_VERSION }
                if found == FORMAT_VERSION + 1
        ),
        "{e}"
    );
    assert!(matches!(
        inspect(&bytes),
        Err(BundleError::UnsupportedVersion { .. })
    ));
}

#[test]
fn truncated_at_every_seventh() {
    let bytes = bundle();
    for k in 0..7 {
        let cut = bytes.len() * k / 7;
        let e = read(&bytes[..cut]).unwrap_err();
        let needed = if cut < HEADER_LEN {
            HEADER_LEN
        } else {
            bytes.len()
        } as u64;
        assert!(
            matches!(e, BundleError::Truncated { needed: n, got } if n == needed && got == cut as u64),
            "cut at {cut}: {e}"
        );
    }
    let e = read(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(matches!(e, BundleError::Truncated { .. }), "{e}");
}

#[test]
fn tampered_model_byte_breaks_the_signature() {
    let clean = bundle();
    for at in [clean.len() - 3000, clean.len() - 1500, clean.len() - 1] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x01;
        let e = read(&bytes).unwrap_err();
        assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
    }
    // A re-signed tampered model whose manifest hash no longer matches is a HashMismatch: see
    // `read::tests::validly_signed_but_wrong_model_hash_is_a_hash_mismatch` (needs crate API).
}

#[test]
fn tampered_manifest_byte_breaks_the_signature() {
    let clean = bundle();
    let manifest_len = Header::parse(&clean).unwrap().manifest_len as usize;
    for at in [
        HEADER_LEN,
        HEADER_LEN + manifest_len / 2,
        HEADER_LEN + manifest_len - 1,
    ] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x20;
        let e = read(&bytes).unwrap_err();
        assert!(matches!(e, BundleError::BadSignature { .. }), "{e}");
    }
    let mut bytes = clean;
    bytes[OFFSET_SIGNATURE + 10] ^= 0x80;
    assert!(matches!(
        read(&bytes),
        Err(BundleError::BadSignature { .. })
    ));
}

#[test]
fn unknown_key_is_refused() {
    let bytes = bundle();
    let stranger = SigningKey::from_seed([7; 32]).verifying_key();
    let e = read_bundle(&bytes, &[stranger]).unwrap_err();
    assert!(
        matches!(e, BundleError::UnknownKey { key_id } if key_id == key().verifying_key().key_id()),
        "{e}"
    );
    assert!(matches!(
        read_bundle(&bytes, &[]),
        Err(BundleError::UnknownKey { .. })
    ));
}

#[test]
fn over_size_declared_lengths_are_refused_before_allocating() {
    let mut bytes = bundle()[..HEADER_LEN].to_vec();
    bytes[OFFSET_MODEL_LEN..OFFSET_MODEL_LEN + 8]
        .copy_from_slice(&(MAX_MODEL_BYTES + 1).to_le_bytes());
    let e = read(&bytes).unwrap_err();
    assert!(
        matches!(e, BundleError::TooLarge { what: "model", size, .. } if size == MAX_MODEL_BYTES + 1),
        "{e}"
    );
    bytes[OFFSET_MODEL_LEN..OFFSET_MODEL_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(read(&bytes), Err(BundleError::TooLarge { .. })));

    // A file over the limit is refused from its size alone (sparse: takes no disk space).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.fovea");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_BUNDLE_BYTES + 1)
        .unwrap();
    let e = read_bundle_file(&path, &[key().verifying_key()]).unwrap_err();
    assert!(
        matches!(e.kind(), BundleError::TooLarge { what: "file", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("huge.fovea"), "{e}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.fovea");
    let bytes = bundle();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = read_bundle_file(&path, &[key().verifying_key()]).unwrap_err();
    assert!(matches!(e.kind(), BundleError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("cut.fovea"), "{e}");
    let missing = dir.path().join("missing.fovea");
    let e = read_bundle_file(&missing, &[key().verifying_key()]).unwrap_err();
    assert!(matches!(e, BundleError::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.fovea"), "{e}");
}

// The signer key and signature were reproduced independently with Python `cryptography`
// 48.0.0 (OpenSSL 3.0 ed25519), from the header and manifest bytes this test pins:
//
//   import hashlib
//   from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
//   from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
//   sk = Ed25519PrivateKey.from_private_bytes(bytes([42] * 32))
//   sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()   # == header[24:56]
//   model = bytes((i * 7 + 3) & 0xFF for i in range(3000))
//   digest = hashlib.sha256(b"fovea bundle signature\0" + header[:56]
//       + hashlib.sha256(manifest).digest() + hashlib.sha256(model).digest()).digest()
//   sk.sign(digest).hex()                                                 # == header[56:120]
#[test]
fn deterministic_with_golden_header() {
    let a = bundle();
    assert_eq!(a, bundle());
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let golden = concat!(
        "464f564541424e44", // magic "FOVEABND"
        "0100",             // version 1
        "0000",             // flags
        "fb010000",         // manifest length 507
        "b80b000000000000", // model length 3000
        // signer: the public key of seed [42; 32]
        "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61",
        // signature
        "89cd5aaaecf11185f84dbd0f94017d24ed5fbfec6ccf01b5df011d80ed5d2d79",
        "df27b2ef2db57a6122aede0d148d6e965facfce111ab0d0ddd8f9093b0429008",
    );
    assert_eq!(hex(&a[..HEADER_LEN]), golden);
    // The manifest encoding is pinned too (postcard field order, JSON config text).
    assert_eq!(
        hex(&sha256(&a[HEADER_LEN..HEADER_LEN + 507])),
        "9ac7a9757e3ef6a0b36803a7f91b25c9939c9656631b53ff716ec9db14fdb4f0"
    );
    assert_eq!(
        key().verifying_key().to_string(),
        "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x00F0_7EA5);
    let trusted = [key().verifying_key()];
    let clean = bundle();
    for i in 0..3000 {
        // Pure noise, noise behind a valid magic and version, and noise behind a valid header.
        let len = rng.random_range(0..600);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        match i % 3 {
            1 if len >= 10 => {
                bytes[..8].copy_from_slice(b"FOVEABND");
                bytes[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
            }
            2 if len >= HEADER_LEN => bytes[..HEADER_LEN].copy_from_slice(&clean[..HEADER_LEN]),
            _ => {}
        }
        assert!(read_bundle(&bytes, &trusted).is_err());
        let _ = inspect(&bytes);
    }
    for _ in 0..3000 {
        // Mutations of a valid bundle: flipped bytes, cuts, appended bytes. All signed, so any
        // real change must be refused.
        let mut bytes = clean.clone();
        match rng.random_range(0..4) {
            0 => {
                for _ in 0..rng.random_range(1..5) {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
            }
            1 => bytes.truncate(rng.random_range(0..bytes.len())),
            2 => bytes.extend((0..rng.random_range(1..40)).map(|_| rng.random::<u8>())),
            _ => {
                // Mutate only the header's fields, where lengths and versions live.
                let at = rng.random_range(0..OFFSET_SIGNATURE);
                bytes[at] = rng.random();
            }
        }
        let result = read_bundle(&bytes, &trusted);
        assert_eq!(result.is_ok(), bytes == clean);
        let _ = inspect(&bytes);
    }
}

#[test]
fn signed_garbage_manifests_are_refused_without_panic() {
    // A trusted key signing nonsense (a host bug, not an attacker): the manifest decoder sees
    // arbitrary bytes behind a valid signature and must fail cleanly.
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let key = key();
    let valid = bundle();
    let header = Header::parse(&valid).unwrap();
    let real_manifest = valid[header.manifest_range()].to_vec();
    for i in 0..1000 {
        let mut manifest: Vec<u8> = if i % 2 == 0 {
            (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect()
        } else {
            real_manifest.clone()
        };
        if i % 2 == 1 {
            let at = rng.random_range(0..manifest.len());
            manifest[at] = rng.random();
        }
        let model = model();
        let bytes = sign(&manifest, &model, &key);
        match read_bundle(&bytes, &[key.verifying_key()]) {
            // A one-byte change can leave a valid manifest (another variant name, say).
            Ok(b) => assert_eq!(b.manifest.model_sha256, sha256(&b.model)),
            Err(e) => assert!(
                matches!(
                    e,
                    BundleError::Manifest(_)
                        | BundleError::InvalidManifest(_)
                        | BundleError::HashMismatch { .. }
                ),
                "{e}"
            ),
        }
    }
}

/// A bundle of raw parts, signed through the public API (as a third-party tool could).
fn sign(manifest: &[u8], model: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        manifest_len: manifest.len() as u32,
        model_len: model.len() as u64,
        signer: key.verifying_key().to_bytes(),
        signature: [0; 64],
    };
    let unsigned = header.to_bytes();
    let signed_part = unsigned.first_chunk().unwrap();
    header.signature = key.sign_digest(&signed_digest(
        signed_part,
        &sha256(manifest),
        &sha256(model),
    ));
    [&header.to_bytes()[..], manifest, model].concat()
}

#[test]
fn key_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("bundle.key");
    let public = dir.path().join("bundle.pub");
    let key = SigningKey::generate().unwrap();
    key.write_file(&secret).unwrap();
    key.verifying_key().write_file(&public).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let back = SigningKey::read_file(&secret).unwrap();
    assert_eq!(back.verifying_key(), key.verifying_key());
    assert_eq!(
        VerifyingKey::read_file(&public).unwrap(),
        key.verifying_key()
    );
    let text = std::fs::read_to_string(&public).unwrap();
    assert_eq!(text.len(), 65);
    // A bundle signed with the reloaded key verifies with the reloaded public key.
    let model = model();
    let bytes = write_bundle(&manifest(&model), &model, &back).unwrap();
    read_bundle(&bytes, &[VerifyingKey::read_file(&public).unwrap()]).unwrap();
    // Never overwrite a secret key.
    let e = key.write_file(&secret).unwrap_err();
    assert!(matches!(e, BundleError::Io { .. }), "{e}");
}

#[test]
fn bad_key_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("short.key");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write;
        options.open(&secret).unwrap().write_all(&[1; 31]).unwrap();
    }
    let e = SigningKey::read_file(&secret).unwrap_err();
    assert!(matches!(e, BundleError::KeyFile { .. }), "{e}");
    assert!(e.to_string().contains("short.key"), "{e}");
    assert!(e.to_string().contains("32 bytes"), "{e}");

    let public = dir.path().join("short.pub");
    std::fs::write(&public, "abcd\n").unwrap();
    let e = VerifyingKey::read_file(&public).unwrap_err();
    assert!(matches!(e, BundleError::KeyFile { .. }), "{e}");
    assert!(e.to_string().contains("short.pub"), "{e}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open = dir.path().join("open.key");
        SigningKey::from_seed([2; 32]).write_file(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SigningKey::read_file(&open).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(e.to_string().contains("open.key"), "{e}");
    }
}
