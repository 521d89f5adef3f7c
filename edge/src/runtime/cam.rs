//! Class activation maps on the device (no gradients in tract): for a model exported with a
//! GAP → linear head, `logits = GAP(features) · W + b`, so the map
//! `M(y, x) = Σ_c features[c, y, x] · Σ_{k ∈ positive} W[c, k]` shows where the evidence for the
//! positive classes lies, and its mean plus the summed biases equals the summed positive logits.
use anyhow::{Context, ensure};
use prost::Message;
use tract_onnx::pb::{ModelProto, TensorProto};

use super::initializer;

pub use shared::heatmap::{LinearHead, class_map};

/// Name of the feature-map output.
pub const FEATURES: &str = "features";

/// An f32 initializer's values; any other element type is an error.
fn f32s(t: &TensorProto) -> anyhow::Result<Vec<f32>> {
    initializer::floats(t)?.with_context(|| format!("{} is not f32", t.name))
}

/// The head of `onnx`, or `None` when its second output is not `features` (an MLP head has
/// no class activation map).
pub fn read_head(onnx: &[u8]) -> anyhow::Result<Option<LinearHead>> {
    let model = ModelProto::decode(onnx).context("not an ONNX model")?;
    let graph = model.graph.context("the model has no graph")?;
    if graph.output.get(1).is_none_or(|o| o.name != FEATURES) {
        return Ok(None);
    }
    let find = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .with_context(|| format!("the model has a features output but no {name}"))
    };
    let w = find("classifier.output.weight")?;
    let b = find("classifier.output.bias")?;
    ensure!(
        w.dims.len() == 2,
        "classifier.output.weight is not a matrix"
    );
    let (channels, classes) = (w.dims[0] as usize, w.dims[1] as usize);
    let head = LinearHead {
        weight: f32s(w)?,
        bias: f32s(b)?,
        channels,
        classes,
    };
    ensure!(
        head.weight.len() == channels * classes && head.bias.len() == classes,
        "classifier.output shapes disagree"
    );
    Ok(Some(head))
}
