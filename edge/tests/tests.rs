//! Integration tests of the `edge` binary, one module per command.

/// Audit log tampering, torn lines, kill -9; `edge run --watch` on dropped files.
mod audit;
/// `edge bench`: tract timing of one ONNX model, one JSON line.
mod bench;
/// `edge check`: decode + quality gate, one JSON line per image.
mod check;
/// A device folder with a signed bundle around a hand-computable ONNX model.
mod fixture;
/// `edge screen`: probabilities by hand, ungradable, DICOM, errors, audit, bundle refusals.
mod screen;
/// Locating the cached real sample images (shared with fovea-shared's tests).
#[path = "../../shared/tests/support.rs"]
mod support;
