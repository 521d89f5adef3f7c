//! Class activation maps on the device (no gradients in tract): for a model exported with a
//! GAP → linear head, `logits = GAP(features) · W + b`, so the map
//! `M(y, x) = Σ_c features[c, y, x] · Σ_{k ∈ positive} W[c, k]` shows where the evidence for the
//! positive classes lies, and its mean plus the summed biases equals the summed positive logits.
use anyhow::Context;
use tract_onnx::pb::ModelProto;

pub use shared::heatmap::{LinearHead, class_map};

/// The head of `onnx`, or `None` when its second output is not `features` (an MLP head has
/// no class activation map).
pub fn read_head(onnx: &ModelProto) -> anyhow::Result<Option<LinearHead>> {
    let graph = onnx.graph.as_ref().context("the model has no graph")?;
    Ok(shared::onnx::head::linear_head(graph)?)
}
