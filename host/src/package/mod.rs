//! Packaging a trained run for the device: the bundle manifest from the run (and its
//! evaluation report), checked against the exported ONNX model it will carry.
//!
//! ```text
//! RUN_DIR/config.json ─┐
//! RUN_DIR/metrics.json ├─ manifest.rs ─┐
//! REPORT/metrics.json ─┘ (threshold)    ├─ shared::bundle::write_bundle ─ NAME.fovea
//! model.onnx ── onnx_check.rs ──────────┘   (signed with the host key)
//! ```
pub mod manifest;
pub mod onnx_check;
