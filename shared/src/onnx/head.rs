//! The GAP → linear head of a model `host export` wrote with a `features` output: its
//! `classifier.output.weight` / `.bias` initializers, which the class activation map needs
//! (host `eval` on an ONNX file, the device's `--heatmap`).
use tract_onnx::pb::GraphProto;

use super::OnnxError;
use super::initializer::f32_values;
use crate::heatmap::LinearHead;

/// Name of the feature-map output (the second output, after the logits).
pub const FEATURES: &str = "features";

/// The linear head of `graph`, or `None` when its second output is not [`FEATURES`] (an MLP
/// head has no class activation map).
pub fn linear_head(graph: &GraphProto) -> Result<Option<LinearHead>, OnnxError> {
    if graph.output.get(1).is_none_or(|o| o.name != FEATURES) {
        return Ok(None);
    }
    let find = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                OnnxError::Graph(format!("the model has a features output but no {name}"))
            })
    };
    let (w, b) = (
        find("classifier.output.weight")?,
        find("classifier.output.bias")?,
    );
    let &[channels, classes] = &w.dims[..] else {
        return Err(OnnxError::Graph(
            "classifier.output.weight is not a matrix".into(),
        ));
    };
    let (channels, classes) = (channels.max(0) as usize, classes.max(0) as usize);
    let head = LinearHead {
        weight: f32_values(w)?,
        bias: f32_values(b)?,
        channels,
        classes,
    };
    if head.bias.len() != classes {
        return Err(OnnxError::Graph(format!(
            "classifier.output.bias has {} values for {classes} classes",
            head.bias.len()
        )));
    }
    Ok(Some(head))
}
