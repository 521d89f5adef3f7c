//! Integration tests of the `host` binary, one module per command.

/// `host bench train`: report fields and arithmetic.
mod bench;
/// `host keygen`, `host bundle`, `host flash`: a tiny run packaged, flashed and refused.
mod bundle;
/// Running the host binary, and the tiny training run the modules start from.
mod cli;
/// Train → export → eval → bundle → flash → `edge run --watch` with a simulated panel.
mod clinic;
/// `host eval`: report numbers re-derived, headless render, planted bias, errors.
mod eval;
/// `host export`: ONNX parity with tract (B0, B3, Lite0, a trained run), metadata, features.
mod export;
/// The synthetic set through shared's loader, decoder and quality gate.
mod gate;
/// `host model`: stage strings and parameter counts of the EfficientNet variants.
mod model;
/// `host quantize`: both modes through the accuracy gate, a forced refusal.
mod quantize;
/// Locating cached samples and weights (shared with fovea-shared's tests).
#[path = "../../shared/tests/support.rs"]
mod support;
/// `host synth`: the synthetic fundus data set.
mod synth;
/// `host train`: a tiny end-to-end run, determinism, resume, argument errors.
mod train;
/// `host weights inspect` on golden tiny state dicts and the real EfficientNet-Lite weights.
mod weights;
